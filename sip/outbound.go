package sip

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/google/uuid"
	"github.com/icholy/digest"
)

// DialOptions describe an outbound leg: to an agent's softphone or through an outbound trunk.
type DialOptions struct {
	Target      sip.Uri        // Request-URI: the registered Contact or the callee at the trunk
	Destination netip.AddrPort // where to send (the agent's REGISTER source, for NAT); zero = the first Route's host, else Target's
	// Route is a preloaded route set (a binding's Path, RFC 3327): Route headers in this
	// order, each name-addr with lr (loose routing; strict routing is not supported). The
	// INVITE goes to the first one's host and port (and its transport param, if any); the
	// Request-URI stays Target. The route set of the dialog is then the 2xx's Record-Route.
	Route      []string
	Transport  string // "UDP" (default) or "TCP"
	FromUser   string // the caller's number, shown on the agent's phone
	FromName   string
	AssertedID string         // P-Asserted-Identity user (the caller's number); empty = none
	ToUser     string         // To user; default Target's user
	Local      netip.AddrPort // our RTP address
	Codecs     []uint8        // offered in this order (put the other leg's codec first to avoid transcoding)
	SRTP       SRTPPolicy     // "" or off: plain RTP/AVP; optional: RTP/AVP with a=crypto; required: RTP/SAVP
	Headers    []sip.Header   // extra headers (e.g. X-Hotline-Queue)
	// Auth answers one digest challenge (401/407) of the INVITE; nil = none (agents' phones).
	Auth *DigestCredentials
}

// DigestCredentials are what we answer a digest challenge with (an outbound trunk's
// account). (Credentials is the registrar's password lookup.)
type DigestCredentials struct {
	Username, Password string
}

// reasonAuthFailed is the reason of the DialError that ends a dial the trunk keeps challenging.
const reasonAuthFailed = "trunk authentication failed"

// DialError is a final non-2xx answer to our INVITE.
type DialError struct {
	Code   int
	Reason string
}

func (e *DialError) Error() string { return fmt.Sprintf("sip: dial: %d %s", e.Code, e.Reason) }

// ErrDialCanceled is returned by Wait when we cancelled the INVITE.
var ErrDialCanceled = errors.New("sip: dial cancelled")

// Outbound is an outbound call leg (UAC). Its methods are safe for concurrent use.
type Outbound struct {
	dialog
	invite *sip.Request          // the INVITE of the current transaction (after a challenge: the retry)
	tx     sip.ClientTransaction // owned by run once started
	auth   *DigestCredentials
	// preloaded: dialled through a route set (DialOptions.Route); in-dialog requests then
	// go to the first hop of the 2xx's Record-Route, or to the first preloaded hop.
	preloaded bool
	ringing   chan struct{}
	answered  chan struct{}
	result    chan error
}

// Ringing is closed when the callee's phone rings (180/183).
func (o *Outbound) Ringing() <-chan struct{} { return o.ringing }

// Dial sends an INVITE with our SDP offer and returns at once; Wait gives the outcome.
func (s *Server) Dial(ctx context.Context, opt DialOptions) (*Outbound, error) {
	if s.draining.Load() {
		return nil, errors.New("sip: draining")
	}
	if len(opt.Codecs) == 0 {
		opt.Codecs = []uint8{PayloadPCMA, PayloadPCMU}
	}
	transport := strings.ToUpper(opt.Transport)
	if transport == "" {
		transport = "UDP"
	}
	o := &Outbound{ringing: make(chan struct{}), answered: make(chan struct{}), result: make(chan error, 1)}
	o.init(s, SideAgent)
	o.callID = uuid.NewString()
	o.localTag = uuid.NewString()
	o.prefs = opt.Codecs
	o.auth = opt.Auth
	o.local = newLocalSDP(opt.Local)
	o.srtp = opt.SRTP
	var err error
	if o.local.offered, err = offerCryptos(opt.SRTP); err != nil {
		return nil, err
	}
	o.local.secure = opt.SRTP == SRTPRequired
	o.transport = transport
	o.log = s.log.With("sip_call_id", o.callID)

	toUser := opt.ToUser
	if toUser == "" {
		toUser = opt.Target.User
	}
	o.localHdr = &sip.FromHeader{
		DisplayName: opt.FromName,
		Address:     sip.Uri{Scheme: "sip", User: opt.FromUser, Host: s.addr.Addr().String(), Port: int(s.addr.Port())},
		Params:      sip.NewParams(),
	}
	o.localHdr.Params.Add("tag", o.localTag)
	o.remoteHdr = &sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: toUser, Host: opt.Target.Host, Port: opt.Target.Port}, Params: sip.NewParams()}
	o.target = opt.Target
	o.dest = opt.Target.HostPort()
	if len(opt.Route) > 0 {
		dest, tp, err := routeDestination(opt.Route[0])
		if err != nil {
			return nil, fmt.Errorf("sip: dial: bad Route %q: %w", opt.Route[0], err)
		}
		if tp != "" && opt.Transport == "" {
			o.transport, transport = tp, tp
		}
		o.dest = dest
		o.preloaded = true
		o.routes = slices.Clone(opt.Route)
	}
	if opt.Destination.IsValid() {
		o.dest = opt.Destination.String()
	}
	o.contact = s.contactHeader(transport)

	inv := o.newRequest(sip.INVITE)
	inv.AppendHeader(o.contact)
	if opt.AssertedID != "" {
		inv.AppendHeader(sip.NewHeader("P-Asserted-Identity", fmt.Sprintf("<sip:%s@%s>", opt.AssertedID, s.addr.Addr())))
	}
	inv.AppendHeader(sip.NewHeader("Allow", s.allow()))
	for _, h := range opt.Headers {
		inv.AppendHeader(h)
	}
	inv.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	inv.SetBody(o.local.marshal(opt.Codecs, DefaultDTMFPayloadType, SendRecv))
	o.invite = inv

	tx, err := s.client.TransactionRequest(context.WithoutCancel(ctx), inv, sipgo.ClientRequestAddVia)
	if err != nil {
		return nil, fmt.Errorf("sip: send INVITE: %w", err)
	}
	o.tx = tx
	go o.run(ctx)
	return o, nil
}

// run follows the INVITE transaction: provisional, final, cancel. A digest challenge,
// when we have credentials, is answered once with a new INVITE whose transaction run
// follows instead.
func (o *Outbound) run(ctx context.Context) {
	defer func() { o.tx.Terminate() }()
	cancelled := false
	cancelSent := false
	early := false // the current transaction had a provisional response: CANCEL may be sent
	retried := false
	var cancelTimeout <-chan time.Time
	for {
		var ctxDone <-chan struct{}
		if !cancelled {
			ctxDone = ctx.Done()
		}
		select {
		case res := <-o.tx.Responses():
			switch {
			case res.StatusCode == 100:
			case res.IsProvisional():
				if tag, ok := res.To().Params.Get("tag"); ok {
					o.remoteHdr.Params.Add("tag", tag)
				}
				early = true
				select {
				case <-o.ringing:
				default:
					close(o.ringing)
				}
				if cancelled && !cancelSent { // CANCEL only after a provisional (RFC 3261 §9.1)
					cancelSent = true
					o.sendCancel()
				}
			case res.IsSuccess():
				o.answeredWith(res, cancelled)
				return
			default:
				code := res.StatusCode
				if cancelled && code == 487 {
					o.end(SideSystem, "CANCEL", 487)
					o.result <- ErrDialCanceled
					return
				}
				if (code == 401 || code == 407) && o.auth != nil {
					if cancelled {
						o.end(SideSystem, "CANCEL", 487)
						o.result <- ErrDialCanceled
						return
					}
					if !retried {
						retried = true
						err := o.authenticate(ctx, res)
						if err == nil {
							early = false
							continue
						}
						o.log.Warn("cannot answer the digest challenge", "status", code, "error", err)
					}
					o.end(SideAgent, reasonAuthFailed, code)
					o.result <- &DialError{Code: code, Reason: reasonAuthFailed}
					return
				}
				o.end(SideAgent, res.Reason, code)
				o.result <- &DialError{Code: code, Reason: res.Reason}
				return
			}
		case <-ctxDone:
			cancelled = true
			cancelTimeout = time.After(32 * time.Second)
			if early {
				cancelSent = true
				o.sendCancel()
			} else { // wait for a provisional response before cancelling
				cancelTimeout = time.After(4 * time.Second)
			}
		case <-cancelTimeout:
			o.end(SideSystem, "CANCEL", 487)
			o.result <- ErrDialCanceled
			return
		case <-o.tx.Done():
			err := o.tx.Err()
			if cancelled {
				o.end(SideSystem, "CANCEL", 487)
				o.result <- ErrDialCanceled
				return
			}
			o.end(SideSystem, "timeout", 408)
			o.result <- &DialError{Code: 408, Reason: fmt.Sprintf("Request Timeout (%v)", err)}
			return
		}
	}
}

// authenticate answers a 401/407 challenge: the same INVITE (Call-ID, From tag, To, body)
// with the next CSeq, a new Via branch and our credentials, in a new transaction that
// replaces the challenged one (the transaction layer has ACKed the challenge).
func (o *Outbound) authenticate(ctx context.Context, res *sip.Response) error {
	challengeHdr, credHdr := "WWW-Authenticate", "Authorization"
	if res.StatusCode == 407 {
		challengeHdr, credHdr = "Proxy-Authenticate", "Proxy-Authorization"
	}
	chal, err := pickChallenge(res.GetHeaders(challengeHdr))
	if err != nil {
		return err
	}
	inv := o.invite.Clone()
	inv.RemoveHeader("Via")
	inv.RemoveHeader(credHdr)
	inv.CSeq().SeqNo = o.cseq.Add(1)
	body := inv.Body()
	cred, err := digest.Digest(chal, digest.Options{
		Method: string(sip.INVITE), URI: inv.Recipient.String(),
		Username: o.auth.Username, Password: o.auth.Password, Count: 1,
		GetBody: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil },
	})
	if err != nil {
		return err
	}
	inv.AppendHeader(sip.NewHeader(credHdr, cred.String()))
	// A tag from a provisional of the challenged transaction belongs to no dialog of ours.
	o.remoteHdr.Params.Remove("tag")
	tx, err := o.s.client.TransactionRequest(context.WithoutCancel(ctx), inv, sipgo.ClientRequestAddVia)
	if err != nil {
		return fmt.Errorf("sip: send INVITE: %w", err)
	}
	o.tx.Terminate()
	o.tx, o.invite = tx, inv
	o.log.Debug("answered the digest challenge", "status", res.StatusCode, "realm", chal.Realm)
	return nil
}

// pickChallenge returns the first Digest challenge among hdrs that we can answer.
func pickChallenge(hdrs []sip.Header) (*digest.Challenge, error) {
	for _, h := range hdrs {
		c, err := digest.ParseChallenge(h.Value())
		if err != nil {
			continue
		}
		c.Algorithm = strings.ToUpper(c.Algorithm) // some carriers send "md5"
		for i, q := range c.QOP {
			c.QOP[i] = strings.TrimSpace(q)
		}
		if digest.CanDigest(c) {
			return c, nil
		}
	}
	return nil, errNoChallenge
}

var errNoChallenge = errors.New("sip: no digest challenge we can answer")

func (o *Outbound) sendCancel() {
	inv := o.invite
	c := sip.NewRequest(sip.CANCEL, inv.Recipient)
	c.AppendHeader(sip.HeaderClone(inv.Via())) // same branch as the INVITE
	c.AppendHeader(sip.HeaderClone(inv.From()))
	c.AppendHeader(sip.HeaderClone(inv.To()))
	c.AppendHeader(sip.HeaderClone(inv.CallID()))
	c.AppendHeader(&sip.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: sip.CANCEL})
	maxFwd := sip.MaxForwardsHeader(70)
	c.AppendHeader(&maxFwd)
	sip.CopyHeaders("Route", inv, c)
	c.SetTransport(inv.Transport())
	c.SetDestination(inv.Destination())
	c.Laddr = inv.Laddr
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
		defer cancel()
		tx, err := o.s.client.TransactionRequest(ctx, c, func(*sipgo.Client, *sip.Request) error { return nil })
		if err != nil {
			o.log.Debug("CANCEL failed", "error", err)
			return
		}
		defer tx.Terminate()
		select {
		case <-tx.Responses():
		case <-tx.Done():
		case <-ctx.Done():
		}
	}()
}

// answeredWith completes the dialog on 2xx: remote tag, target, route set, SDP answer, ACK.
func (o *Outbound) answeredWith(res *sip.Response, cancelled bool) {
	select { // sipgo may hand us the 200 before a 180 it received earlier
	case <-o.ringing:
	default:
		close(o.ringing)
	}
	if tag, ok := res.To().Params.Get("tag"); ok {
		o.remoteHdr.Params.Add("tag", tag)
	}
	if c := res.Contact(); c != nil {
		o.target = c.Address
	}
	rrs := res.GetHeaders("Record-Route")
	var routes []string
	for i := len(rrs) - 1; i >= 0; i-- { // UAC: route set is Record-Route reversed
		routes = append(routes, splitHeaderValues(rrs[i].Value())...)
	}
	if o.preloaded && len(routes) > 0 {
		// The route set is the Record-Route (RFC 3261 §12.1.2), not the preloaded one, and
		// requests go to its first hop. A bad first hop keeps the preloaded destination.
		if dest, _, err := routeDestination(routes[0]); err == nil {
			o.dest = dest
		} else {
			o.log.Warn("bad Record-Route in 2xx", "route", routes[0], "error", err)
		}
	}
	// Without Record-Route, a preloaded dial keeps sending to the first Path hop (the
	// front), with no Route header: the phone behind it is seldom reachable directly.
	o.routes = routes
	ack := sip.NewRequest(sip.ACK, o.target)
	from := *o.localHdr
	to := *o.remoteHdr
	cid := sip.CallIDHeader(o.callID)
	maxFwd := sip.MaxForwardsHeader(70)
	ack.AppendHeader(&from)
	ack.AppendHeader(&to)
	ack.AppendHeader(&cid)
	ack.AppendHeader(&sip.CSeqHeader{SeqNo: o.invite.CSeq().SeqNo, MethodName: sip.ACK})
	ack.AppendHeader(&maxFwd)
	for _, r := range o.routes {
		ack.AppendHeader(sip.NewHeader("Route", r))
	}
	ack.SetTransport(o.transport)
	ack.SetDestination(o.dest)
	ack.SetBody(nil)
	o.s.fromListener(ack)
	if err := o.s.client.WriteRequest(ack, sipgo.ClientRequestAddVia); err != nil {
		o.log.Warn("ACK failed", "error", err)
	}
	o.s.dialogs.add(&o.dialog)
	o.state.Store(legConfirmed)

	var err error
	if cancelled { // answered while we cancelled: the call is no longer wanted
		o.bye(context.Background(), "cancelled")
		o.result <- ErrDialCanceled
		return
	}
	offer, perr := parseSDP(res.Body())
	if perr == nil {
		var m Media
		if m, perr = negotiate(offer, o.prefs); perr == nil {
			if m.SRTP, perr = answeredSRTP(offer, o.local.offered, o.srtp); perr == nil {
				o.setMedia(m)
			}
		}
	}
	if perr != nil {
		o.bye(context.Background(), "bad SDP answer")
		err = fmt.Errorf("sip: SDP answer: %w", perr)
	}
	close(o.answered)
	o.result <- err
}

// Wait blocks until the INVITE is answered (nil), fails (*DialError), or was cancelled
// (ErrDialCanceled). Cancel by cancelling the ctx given to Dial.
func (o *Outbound) Wait() error {
	err := <-o.result
	o.result <- err // later Waits see the same outcome
	return err
}

// Answered is closed when the leg was answered.
func (o *Outbound) Answered() <-chan struct{} { return o.answered }

// Hangup ends an answered leg with BYE; an unanswered one must be cancelled through Dial's ctx.
func (o *Outbound) Hangup(ctx context.Context, cause string) error {
	if o.state.Load() != legConfirmed {
		return nil
	}
	defer o.s.dialogs.remove(&o.dialog)
	return o.bye(ctx, cause)
}

// Release forgets the dialog after the leg ended (called by the owner when done).
func (o *Outbound) Release() { o.s.dialogs.remove(&o.dialog) }

// setRoute gives req a preloaded route set (a binding's Path): Route headers in order, and
// the first hop as destination. Used by Server.Ping (qualify through a front).
func setRoute(req *sip.Request, routes []string) error {
	dest, _, err := routeDestination(routes[0])
	if err != nil {
		return err
	}
	for _, r := range routes {
		req.AppendHeader(sip.NewHeader("Route", r))
	}
	req.SetDestination(dest)
	return nil
}
