package sip

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// Leg states.
const (
	legEarly int32 = iota
	legAnswered
	legConfirmed
	legEnded
)

// Sides that end a leg, as recorded in call records.
const (
	SideCaller = "caller" // the remote party of an inbound leg
	SideAgent  = "agent"  // the remote party of an outbound leg to an agent
	SideSystem = "system" // we ended it
)

// dialog is what inbound and outbound legs share: the dialog identifiers and route, the
// negotiated media, in-dialog requests from the remote party (ACK, BYE, INFO, re-INVITE,
// REFER) and how the leg ended. Bookkeeping is ours, not sipgo's dialog caches, so a
// B2BUA sees every in-dialog request.
type dialog struct {
	s          *Server
	log        *slog.Logger
	callID     string
	localTag   string
	localHdr   *sip.FromHeader // our party, with our tag
	remoteHdr  *sip.ToHeader   // the remote party, with its tag once known
	target     sip.Uri         // remote target (Contact) for requests we send
	routes     []string        // route set, in the order to put in Route headers
	dest       string          // where requests go (the remote's source: symmetric signalling)
	transport  string
	remoteSide string // SideCaller or SideAgent

	prefs   []uint8
	srtp    SRTPPolicy // the peer's SRTP policy (re-INVITEs are answered under it)
	local   *localSDP
	contact sip.Header

	state  atomic.Int32
	cseq   atomic.Uint32 // our last CSeq in this dialog
	acks   chan *sip.Request
	digits chan rune
	update chan Media
	refers chan *Refer

	mu       sync.Mutex
	media    Media
	reinvite bool // a re-INVITE is being answered
	endSide  string
	endCause string
	endCode  int
	done     chan struct{}
}

func (d *dialog) init(s *Server, remoteSide string) {
	d.s = s
	d.remoteSide = remoteSide
	d.acks = make(chan *sip.Request, 4)
	d.digits = make(chan rune, 32)
	d.update = make(chan Media, 1)
	d.refers = make(chan *Refer, 1)
	d.done = make(chan struct{})
}

// SIPCallID is the Call-ID of the leg.
func (d *dialog) SIPCallID() string { return d.callID }

// Media is the negotiated media of the leg.
func (d *dialog) Media() Media {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.media
}

// SignalAddr is the address the remote party's signalling comes from (where our requests
// go), or the zero Addr when that is a host name: RTP from it may be latched as well as
// from the SDP's address, for a peer behind a NAT whose SDP carries a private address.
func (d *dialog) SignalAddr() netip.Addr {
	if ap, err := netip.ParseAddrPort(d.dest); err == nil { // dest is set before the dialog is shared
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

func (d *dialog) setMedia(m Media) {
	d.mu.Lock()
	d.media = m
	d.mu.Unlock()
}

// Digits yields DTMF digits received by SIP INFO.
func (d *dialog) Digits() <-chan rune { return d.digits }

// MediaUpdates yields the new media after each accepted re-INVITE (hold, unhold, new address).
func (d *dialog) MediaUpdates() <-chan Media { return d.update }

// Refers yields blind-transfer requests (REFER) from the remote party.
func (d *dialog) Refers() <-chan *Refer { return d.refers }

// Done is closed when the leg ended.
func (d *dialog) Done() <-chan struct{} { return d.done }

// End tells who ended the leg, why, and the SIP status that ended it.
func (d *dialog) End() (side, cause string, status int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.endSide, d.endCause, d.endCode
}

// end marks the leg ended; the first cause wins.
func (d *dialog) end(side, cause string, code int) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.state.Load() == legEnded {
		return false
	}
	d.state.Store(legEnded)
	d.endSide, d.endCause, d.endCode = side, cause, code
	close(d.done)
	return true
}

func (d *dialog) ended() bool { return d.state.Load() == legEnded }

// Ended reports whether the leg has ended.
func (d *dialog) Ended() bool { return d.ended() }

// newRequest builds an in-dialog request from us to the remote party.
func (d *dialog) newRequest(method sip.RequestMethod) *sip.Request {
	req := sip.NewRequest(method, d.target)
	from := *d.localHdr
	from.Params = d.localHdr.Params.Clone()
	to := *d.remoteHdr
	to.Params = d.remoteHdr.Params.Clone()
	cid := sip.CallIDHeader(d.callID)
	cseq := &sip.CSeqHeader{SeqNo: d.cseq.Add(1), MethodName: method}
	maxFwd := sip.MaxForwardsHeader(70)
	req.AppendHeader(&from)
	req.AppendHeader(&to)
	req.AppendHeader(&cid)
	req.AppendHeader(cseq)
	req.AppendHeader(&maxFwd)
	for _, r := range d.routes {
		req.AppendHeader(sip.NewHeader("Route", r))
	}
	req.AppendHeader(sip.NewHeader("User-Agent", d.s.cfg.UserAgent))
	req.SetTransport(d.transport)
	req.SetDestination(d.dest)
	req.SetBody(nil) // Content-Length: 0 until a body is set: mandatory on TCP
	d.s.fromListener(req)
	return req
}

// request sends an in-dialog request and waits for its final response.
func (d *dialog) request(ctx context.Context, req *sip.Request) (*sip.Response, error) {
	if d.s.closed.Load() {
		return nil, ErrServerClosed
	}
	ctx, cancel := context.WithTimeout(ctx, 8*time.Second)
	defer cancel()
	tx, err := d.s.client.TransactionRequest(ctx, req, sipgo.ClientRequestAddVia)
	if err != nil {
		return nil, err
	}
	defer tx.Terminate()
	for {
		select {
		case res := <-tx.Responses():
			if res.IsProvisional() {
				continue
			}
			return res, nil
		case <-tx.Done():
			return nil, tx.Err()
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// bye ends a confirmed leg from our side.
func (d *dialog) bye(ctx context.Context, cause string) error {
	if !d.end(SideSystem, cause, 200) {
		return nil
	}
	bye := d.newRequest(sip.BYE)
	if cause != "" {
		bye.AppendHeader(sip.NewHeader("Reason", `Q.850;cause=16;text="`+cause+`"`))
	}
	_, err := d.request(ctx, bye)
	return err
}

// waitACK retransmits with resend at T1, doubling up to T2, until the ACK with CSeq seq arrives.
func (d *dialog) waitACK(ctx context.Context, seq uint32, resend func() error) (*sip.Request, error) {
	interval := sip.T1
	timer := time.NewTimer(interval)
	defer timer.Stop()
	deadline := time.NewTimer(64 * sip.T1)
	defer deadline.Stop()
	for {
		select {
		case ack := <-d.acks:
			if ack.CSeq().SeqNo == seq {
				return ack, nil
			}
		case <-timer.C:
			d.s.retransmits.Add(1)
			if err := resend(); err != nil {
				d.log.Debug("200 retransmission failed", "error", err)
			}
			interval = min(2*interval, sip.T2)
			timer.Reset(interval)
		case <-deadline.C:
			return nil, ErrNoACK
		case <-d.done:
			return nil, ErrLegEnded
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
}

// onReinvite answers a re-INVITE in the dialog: hold, unhold, new address, refresh.
func (d *dialog) onReinvite(req *sip.Request, tx sip.ServerTransaction) {
	s := d.s
	d.mu.Lock()
	busy := d.reinvite || d.local == nil
	if !busy {
		d.reinvite = true
	}
	d.mu.Unlock()
	if busy {
		// RFC 3261 §14.2: an INVITE while another is pending gets 500 with Retry-After.
		s.respond(req, tx, 500, "Server Internal Error", sip.NewHeader("Retry-After", "1"))
		return
	}
	defer func() {
		d.mu.Lock()
		d.reinvite = false
		d.mu.Unlock()
	}()
	current := d.Media()
	var next Media
	var body []byte
	if len(req.Body()) > 0 {
		var o offer
		var err error
		if o, err = parseSDP(req.Body()); err == nil {
			// Keep the codec we have if it is still offered.
			next, err = negotiate(o, append([]uint8{current.PayloadType}, d.prefs...))
		}
		if err == nil {
			next.SRTP, err = answerSRTP(o, d.srtp, current.SRTP)
		}
		if err != nil {
			code, reason := statusFor(err)
			s.respond(req, tx, code, reason)
			return
		}
		d.local.version++
		d.local.keys = next.SRTP
		body = d.local.answer(&o, []uint8{next.PayloadType}, next.DTMFType, answerDirection(next.Direction))
	} else {
		d.local.version++
		if k := current.SRTP; k != nil && len(d.local.offered) == 0 {
			// Our offer keeps the leg's keying: the line we answered with before.
			d.local.offered = []cryptoAttr{{tag: k.Tag, suite: k.Suite, key: k.LocalKey}}
			d.local.secure = d.srtp == SRTPRequired
		}
		body = d.local.marshal(d.prefs, DefaultDTMFPayloadType, SendRecv)
	}
	res := sip.NewResponseFromRequest(req, 200, "OK", body)
	res.AppendHeader(d.contact)
	res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	res.AppendHeader(sip.NewHeader("Server", s.cfg.UserAgent))
	if err := tx.Respond(res); err != nil {
		return
	}
	ack, err := d.waitACK(context.Background(), req.CSeq().SeqNo, func() error { return s.srv.WriteResponse(res) })
	if err != nil {
		return
	}
	if len(req.Body()) == 0 {
		o, err := parseSDP(ack.Body())
		if err != nil {
			return
		}
		if next, err = negotiate(o, d.prefs); err != nil {
			return
		}
		if next.SRTP, err = answeredSRTP(o, d.local.offered, d.srtp); err != nil {
			return
		}
	}
	d.setMedia(next)
	d.mu.Lock()
	d.reinvite = false // before publishing, so that the next re-INVITE is not refused
	d.mu.Unlock()
	select { // keep only the latest update
	case <-d.update:
	default:
	}
	d.update <- next
}

func (d *dialog) onBye(req *sip.Request, tx sip.ServerTransaction) {
	d.s.respond(req, tx, 200, "OK")
	d.s.byesAnswered.end(byeKey(req), time.Now(), lingerFor())
	tx.Terminate() // a retransmission of this BYE is answered from byesAnswered (linger.go)
	d.end(d.remoteSide, "BYE", 200)
}

func (d *dialog) onInfo(req *sip.Request, tx sip.ServerTransaction) {
	s := d.s
	ct := ""
	if h := req.ContentType(); h != nil {
		ct = h.Value()
	}
	digit, ok, known := parseInfoDTMF(ct, req.Body())
	if !known {
		s.respond(req, tx, 415, "Unsupported Media Type", sip.NewHeader("Accept", "application/dtmf-relay, application/dtmf"))
		return
	}
	if !ok {
		s.respond(req, tx, 400, "Bad DTMF")
		return
	}
	select { // queued before the 200: a sender waiting for each answer keeps its order
	case d.digits <- digit:
	default: // a DTMF flood: the call is not reading; drop
	}
	s.respond(req, tx, 200, "OK")
}

// dialogs maps (Call-ID, our tag) to the leg.
type dialogKey struct{ callID, tag string }

type dialogs struct {
	mu sync.Mutex
	m  map[dialogKey]*dialog
}

func (ds *dialogs) add(d *dialog) {
	ds.mu.Lock()
	ds.m[dialogKey{d.callID, d.localTag}] = d
	ds.mu.Unlock()
}

func (ds *dialogs) remove(d *dialog) {
	ds.mu.Lock()
	delete(ds.m, dialogKey{d.callID, d.localTag})
	ds.mu.Unlock()
}

// lookup finds the dialog of an in-dialog request from the remote party (our tag is in To).
func (s *Server) lookup(req *sip.Request) *dialog {
	to := req.To()
	if to == nil {
		return nil
	}
	tag, _ := to.Params.Get("tag")
	s.dialogs.mu.Lock()
	defer s.dialogs.mu.Unlock()
	return s.dialogs.m[dialogKey{callID(req), tag}]
}
