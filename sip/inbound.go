package sip

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/google/uuid"
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
	SideCaller = "caller"
	SideSystem = "system"
)

// Inbound is one inbound call leg: an INVITE we accepted from a trunk, and its dialog.
// Its methods are safe for concurrent use; the call package owns it from OnCall.
type Inbound struct {
	s        *Server
	log      *slog.Logger
	invite   *sip.Request // the INVITE, with our To tag added
	tx       sip.ServerTransaction
	trunk    *Trunk
	localTag string
	source   netip.AddrPort
	received time.Time

	prefs    []uint8
	offer    *offer // nil for a late offer (INVITE without SDP)
	media    Media  // negotiated from the offer; updated by re-INVITEs and late-offer ACKs
	local    *localSDP
	contact  sip.Header
	response *sip.Response // our 200 OK, retransmitted until ACK

	state  atomic.Int32
	cseq   atomic.Uint32 // our last CSeq in this dialog
	acks   chan *sip.Request
	digits chan rune
	update chan Media

	mu       sync.Mutex
	reinvite bool // a re-INVITE is being answered
	endSide  string
	endCause string
	endCode  int
	done     chan struct{}
}

// SIPCallID is the Call-ID of the leg.
func (l *Inbound) SIPCallID() string { return callID(l.invite) }

// Caller is the calling number (From user part).
func (l *Inbound) Caller() string { return l.invite.From().Address.User }

// CallerName is the display name of From, if any.
func (l *Inbound) CallerName() string { return l.invite.From().DisplayName }

// Called is the called number (Request-URI user part).
func (l *Inbound) Called() string { return l.invite.Recipient.User }

// Trunk is the name of the trunk the call came in on.
func (l *Inbound) Trunk() string { return l.trunk.Name }

// AnswerDelay is how long the trunk wants callers to hear ringing before we answer.
func (l *Inbound) AnswerDelay() time.Duration { return l.trunk.AnswerDelay }

// Source is the address the INVITE came from.
func (l *Inbound) Source() netip.AddrPort { return l.source }

// Received is when the INVITE arrived.
func (l *Inbound) Received() time.Time { return l.received }

// Transport is "UDP" or "TCP".
func (l *Inbound) Transport() string { return l.invite.Transport() }

// Header returns the value of a header of the INVITE, or "".
func (l *Inbound) Header(name string) string {
	if h := l.invite.GetHeader(name); h != nil {
		return h.Value()
	}
	return ""
}

// Media is the negotiated media of the leg (valid after Answer).
func (l *Inbound) Media() Media {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.media
}

// Digits yields DTMF digits received by SIP INFO.
func (l *Inbound) Digits() <-chan rune { return l.digits }

// MediaUpdates yields the new media after each accepted re-INVITE (hold, unhold, new address).
func (l *Inbound) MediaUpdates() <-chan Media { return l.update }

// Done is closed when the leg ended: remote BYE, CANCEL, our hangup or rejection.
func (l *Inbound) Done() <-chan struct{} { return l.done }

// End tells who ended the leg, why, and the SIP status that ended it.
func (l *Inbound) End() (side, cause string, status int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.endSide, l.endCause, l.endCode
}

// end marks the leg ended; the first cause wins.
func (l *Inbound) end(side, cause string, code int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.state.Load() == legEnded {
		return false
	}
	l.state.Store(legEnded)
	l.endSide, l.endCause, l.endCode = side, cause, code
	close(l.done)
	return true
}

func (l *Inbound) ended() bool { return l.state.Load() == legEnded }

// Ring sends 180 Ringing.
func (l *Inbound) Ring() error {
	if l.ended() {
		return ErrLegEnded
	}
	return l.tx.Respond(l.newResponse(180, "Ringing", nil))
}

// Reject answers the INVITE with a final error status.
func (l *Inbound) Reject(code int, reason string) error {
	if l.state.Load() != legEarly {
		return ErrLegEnded
	}
	if !l.end(SideSystem, reason, code) {
		return ErrLegEnded
	}
	l.s.rejected.Add(1)
	return l.tx.Respond(l.newResponse(code, reason, nil))
}

func (l *Inbound) newResponse(code int, reason string, body []byte) *sip.Response {
	res := sip.NewResponseFromRequest(l.invite, code, reason, body)
	res.AppendHeader(sip.NewHeader("Server", l.s.cfg.UserAgent))
	if code > 100 && code < 300 {
		res.AppendHeader(l.contact)
		res.AppendHeader(sip.NewHeader("Allow", allowMethods))
	}
	if body != nil {
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	return res
}

// Answer sends 200 OK with our SDP for RTP at local, retransmits it until the ACK arrives
// (RFC 3261 §13.3.1.4) and returns the negotiated media. For a late offer (INVITE without
// SDP) we offer in the 200 and take the answer from the ACK.
func (l *Inbound) Answer(ctx context.Context, local netip.AddrPort) (Media, error) {
	if l.ended() {
		return Media{}, ErrLegEnded
	}
	l.local = newLocalSDP(local)
	var body []byte
	if l.offer != nil {
		body = l.local.marshal([]uint8{l.media.PayloadType}, l.media.DTMFType, answerDirection(l.media.Direction))
	} else {
		body = l.local.marshal(l.prefs, DefaultDTMFPayloadType, SendRecv)
	}
	res := l.newResponse(200, "OK", body)
	l.response = res
	l.s.dialogs.add(l)
	if !l.state.CompareAndSwap(legEarly, legAnswered) {
		return Media{}, ErrLegEnded
	}
	if err := l.tx.Respond(res); err != nil {
		l.end(SideSystem, "transport", 500)
		return Media{}, fmt.Errorf("sip: send 200: %w", err)
	}
	ack, err := l.waitACK(ctx, l.invite.CSeq().SeqNo, func() error { return l.tx.Respond(res) })
	if err != nil {
		return Media{}, err
	}
	l.state.CompareAndSwap(legAnswered, legConfirmed)
	if l.offer == nil {
		o, err := parseSDP(ack.Body())
		if err == nil {
			var m Media
			if m, err = negotiate(o, l.prefs); err == nil {
				l.mu.Lock()
				l.media = m
				l.mu.Unlock()
			}
		}
		if err != nil {
			return Media{}, fmt.Errorf("sip: answer in ACK: %w", err)
		}
	}
	return l.Media(), nil
}

// waitACK retransmits with resend at T1, doubling up to T2, until the ACK with CSeq seq arrives.
func (l *Inbound) waitACK(ctx context.Context, seq uint32, resend func() error) (*sip.Request, error) {
	interval := sip.T1
	timer := time.NewTimer(interval)
	defer timer.Stop()
	deadline := time.NewTimer(64 * sip.T1)
	defer deadline.Stop()
	for {
		select {
		case ack := <-l.acks:
			if ack.CSeq().SeqNo == seq {
				return ack, nil
			}
		case <-timer.C:
			l.s.retransmits.Add(1)
			if err := resend(); err != nil {
				l.log.Debug("200 retransmission failed", "error", err)
			}
			interval = min(2*interval, sip.T2)
			timer.Reset(interval)
		case <-deadline.C:
			return nil, ErrNoACK
		case <-l.done:
			return nil, ErrLegEnded
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
}

// Hangup ends the leg from our side: BYE after answer, 480 before.
func (l *Inbound) Hangup(ctx context.Context, cause string) error {
	switch l.state.Load() {
	case legEnded:
		return nil
	case legEarly:
		return l.Reject(480, "Temporarily Unavailable")
	}
	if !l.end(SideSystem, cause, 200) {
		return nil
	}
	l.tx.Terminate()
	bye := l.newRequest(sip.BYE)
	if cause != "" {
		bye.AppendHeader(sip.NewHeader("Reason", `Q.850;cause=16;text="`+cause+`"`))
	}
	ctx, cancel := context.WithTimeout(ctx, 8*time.Second)
	defer cancel()
	tx, err := l.s.client.TransactionRequest(ctx, bye, sipgo.ClientRequestAddVia)
	if err != nil {
		return fmt.Errorf("sip: send BYE: %w", err)
	}
	defer tx.Terminate()
	for {
		select {
		case res := <-tx.Responses():
			if res.IsProvisional() {
				continue
			}
			return nil
		case <-tx.Done():
			return tx.Err()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// newRequest builds an in-dialog request from us (the UAS) to the caller.
func (l *Inbound) newRequest(method sip.RequestMethod) *sip.Request {
	target := l.invite.Recipient
	if c := l.invite.Contact(); c != nil {
		target = c.Address
	}
	req := sip.NewRequest(method, target)
	from := l.invite.To().AsFrom() // carries our tag
	to := l.invite.From().AsTo()
	cseq := &sip.CSeqHeader{SeqNo: l.cseq.Add(1), MethodName: method}
	maxFwd := sip.MaxForwardsHeader(70)
	req.AppendHeader(&from)
	req.AppendHeader(&to)
	req.AppendHeader(sip.HeaderClone(l.invite.CallID()))
	req.AppendHeader(cseq)
	req.AppendHeader(&maxFwd)
	for _, rr := range l.invite.GetHeaders("Record-Route") {
		req.AppendHeader(sip.NewHeader("Route", rr.Value()))
	}
	req.AppendHeader(sip.NewHeader("User-Agent", l.s.cfg.UserAgent))
	req.SetTransport(l.invite.Transport())
	// Symmetric signalling: send where the INVITE came from, as carriers' SBCs and NATs expect.
	req.SetDestination(l.invite.Source())
	return req
}

// onInvite handles initial INVITEs and re-INVITEs.
func (s *Server) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if req.From() == nil || req.To() == nil || req.CallID() == nil || req.CSeq() == nil {
		s.respond(req, tx, 400, "Missing Mandatory Header")
		return
	}
	if _, ok := req.To().Params.Get("tag"); ok {
		s.onReinvite(req, tx)
		return
	}
	src, err := netip.ParseAddrPort(req.Source())
	if err != nil {
		s.respond(req, tx, 400, "Bad Request")
		return
	}
	src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	if req.Contact() == nil {
		s.respond(req, tx, 400, "Missing Contact")
		return
	}
	number := req.Recipient.User
	trunk, served := match(s.cfg.Trunks, src.Addr(), number)
	if trunk == nil {
		s.forbidden.Add(1)
		if s.warnLimit.allow() {
			s.log.Warn("INVITE from a source outside every trunk", "source", src, "to", number, "sip_call_id", callID(req))
		}
		s.respond(req, tx, 403, "Forbidden")
		return
	}
	if s.draining.Load() {
		s.reject(req, tx, trunk, 503, "Service Unavailable", s.retryAfter())
		return
	}
	if !served {
		s.reject(req, tx, trunk, 404, "Not Found")
		return
	}
	var o *offer
	media := Media{}
	if len(req.Body()) > 0 {
		if ct := req.ContentType(); ct == nil || !strings.EqualFold(strings.TrimSpace(strings.Split(ct.Value(), ";")[0]), "application/sdp") {
			s.reject(req, tx, trunk, 415, "Unsupported Media Type", sip.NewHeader("Accept", "application/sdp"))
			return
		}
		parsed, err := parseSDP(req.Body())
		if err == nil {
			media, err = negotiate(parsed, trunk.codecs())
		}
		if err != nil {
			code, reason := statusFor(err)
			if s.warnLimit.allow() {
				s.log.Info("INVITE refused", "status", code, "error", err, "source", src, "sip_call_id", callID(req))
			}
			s.reject(req, tx, trunk, code, reason)
			return
		}
		o = &parsed
	}
	if !trunk.acquire() {
		s.reject(req, tx, trunk, 503, "Service Unavailable", s.retryAfter())
		return
	}
	defer trunk.release()
	s.invites.Add(1)

	tag := uuid.NewString()
	invite := req.Clone()
	invite.To().Params.Add("tag", tag)
	transport := ""
	if strings.EqualFold(req.Transport(), "TCP") {
		transport = ";transport=tcp"
	}
	l := &Inbound{
		s: s, invite: invite, tx: tx, trunk: trunk, localTag: tag, source: src, received: time.Now(),
		prefs: trunk.codecs(), offer: o, media: media,
		contact: sip.NewHeader("Contact", fmt.Sprintf("<sip:hotline@%s%s>", s.addr, transport)),
		acks:    make(chan *sip.Request, 4),
		digits:  make(chan rune, 32),
		update:  make(chan Media, 1),
		done:    make(chan struct{}),
	}
	l.log = s.log.With("sip_call_id", l.SIPCallID())
	if err := tx.Respond(sip.NewResponseFromRequest(req, 100, "Trying", nil)); err != nil {
		return
	}
	if !tx.OnCancel(func(*sip.Request) { l.end(SideCaller, "CANCEL", 487) }) {
		return // cancelled or gone already; sipgo answered 487
	}
	s.legs.Add(1)
	defer s.legs.Done()
	defer s.dialogs.remove(l)

	s.cfg.OnCall(l)

	switch l.state.Load() {
	case legEarly:
		l.Reject(500, "Server Internal Error")
	case legAnswered, legConfirmed:
		l.Hangup(context.Background(), "done")
	}
}

// onReinvite answers a re-INVITE in an existing dialog: hold, unhold, new address, refresh.
func (s *Server) onReinvite(req *sip.Request, tx sip.ServerTransaction) {
	l := s.lookup(req)
	if l == nil {
		s.noDialog.Add(1)
		s.respond(req, tx, 481, "Call/Transaction Does Not Exist")
		return
	}
	l.mu.Lock()
	busy := l.reinvite || l.local == nil
	if !busy {
		l.reinvite = true
	}
	l.mu.Unlock()
	if busy {
		// RFC 3261 §14.2: an INVITE while another is pending gets 500 with Retry-After.
		s.respond(req, tx, 500, "Server Internal Error", sip.NewHeader("Retry-After", "1"))
		return
	}
	defer func() {
		l.mu.Lock()
		l.reinvite = false
		l.mu.Unlock()
	}()
	current := l.Media()
	var next Media
	var body []byte
	if len(req.Body()) > 0 {
		o, err := parseSDP(req.Body())
		if err == nil {
			// Keep the codec we have if it is still offered.
			next, err = negotiate(o, append([]uint8{current.PayloadType}, l.prefs...))
		}
		if err != nil {
			code, reason := statusFor(err)
			s.respond(req, tx, code, reason)
			return
		}
		l.local.version++
		body = l.local.marshal([]uint8{next.PayloadType}, next.DTMFType, answerDirection(next.Direction))
	} else {
		l.local.version++
		body = l.local.marshal(l.prefs, DefaultDTMFPayloadType, SendRecv)
	}
	res := sip.NewResponseFromRequest(req, 200, "OK", body)
	res.AppendHeader(l.contact)
	res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	res.AppendHeader(sip.NewHeader("Server", s.cfg.UserAgent))
	if err := tx.Respond(res); err != nil {
		return
	}
	ack, err := l.waitACK(context.Background(), req.CSeq().SeqNo, func() error { return tx.Respond(res) })
	if err != nil {
		return
	}
	if len(req.Body()) == 0 {
		o, err := parseSDP(ack.Body())
		if err != nil {
			return
		}
		if next, err = negotiate(o, l.prefs); err != nil {
			return
		}
	}
	l.mu.Lock()
	l.media = next
	l.mu.Unlock()
	select { // keep only the latest update
	case <-l.update:
	default:
	}
	l.update <- next
}

func (s *Server) onAck(req *sip.Request, tx sip.ServerTransaction) {
	l := s.lookup(req)
	if l == nil {
		return // ACK for a non-2xx final response is absorbed by its transaction
	}
	select {
	case l.acks <- req:
	default:
	}
}

func (s *Server) onBye(req *sip.Request, tx sip.ServerTransaction) {
	l := s.lookup(req)
	if l == nil {
		s.noDialog.Add(1)
		s.respond(req, tx, 481, "Call/Transaction Does Not Exist")
		return
	}
	s.respond(req, tx, 200, "OK")
	l.end(SideCaller, "BYE", 200)
	l.tx.Terminate()
}

// onCancel sees only CANCELs that matched no INVITE transaction (sipgo answers the others).
func (s *Server) onCancel(req *sip.Request, tx sip.ServerTransaction) {
	s.noDialog.Add(1)
	s.respond(req, tx, 481, "Call/Transaction Does Not Exist")
}

func (s *Server) onInfo(req *sip.Request, tx sip.ServerTransaction) {
	l := s.lookup(req)
	if l == nil {
		s.noDialog.Add(1)
		s.respond(req, tx, 481, "Call/Transaction Does Not Exist")
		return
	}
	ct := ""
	if h := req.ContentType(); h != nil {
		ct = h.Value()
	}
	d, ok, known := parseInfoDTMF(ct, req.Body())
	if !known {
		s.respond(req, tx, 415, "Unsupported Media Type", sip.NewHeader("Accept", "application/dtmf-relay, application/dtmf"))
		return
	}
	if !ok {
		s.respond(req, tx, 400, "Bad DTMF")
		return
	}
	s.respond(req, tx, 200, "OK")
	select {
	case l.digits <- d:
	default: // a DTMF flood: the call is not reading; drop
	}
}

// dialogs maps (Call-ID, our tag) to the leg.
type dialogKey struct{ callID, tag string }

type dialogs struct {
	mu sync.Mutex
	m  map[dialogKey]*Inbound
}

func (d *dialogs) add(l *Inbound) {
	d.mu.Lock()
	d.m[dialogKey{l.SIPCallID(), l.localTag}] = l
	d.mu.Unlock()
}

func (d *dialogs) remove(l *Inbound) {
	d.mu.Lock()
	delete(d.m, dialogKey{l.SIPCallID(), l.localTag})
	d.mu.Unlock()
}

func (d *dialogs) len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.m)
}

func (s *Server) lookup(req *sip.Request) *Inbound {
	to := req.To()
	if to == nil {
		return nil
	}
	tag, _ := to.Params.Get("tag")
	s.dialogs.mu.Lock()
	defer s.dialogs.mu.Unlock()
	return s.dialogs.m[dialogKey{callID(req), tag}]
}
