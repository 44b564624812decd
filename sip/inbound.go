package sip

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/google/uuid"
)

// Inbound is one inbound call leg: an INVITE we accepted from a trunk, and its dialog.
// Its methods are safe for concurrent use; the call package owns it from OnCall.
type Inbound struct {
	dialog
	invite   *sip.Request // the INVITE, with our To tag added
	tx       sip.ServerTransaction
	trunk    *Trunk
	source   netip.AddrPort
	received time.Time
	offer    *offer // nil for a late offer (INVITE without SDP)
}

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

// Ring sends 180 Ringing.
func (l *Inbound) Ring() error {
	if l.ended() {
		return ErrLegEnded
	}
	return l.tx.Respond(l.newResponse(180, "Ringing", nil))
}

// Reject answers the INVITE with a final error status (a 503 with Retry-After).
func (l *Inbound) Reject(code int, reason string) error {
	if l.state.Load() != legEarly {
		return ErrLegEnded
	}
	if !l.end(SideSystem, reason, code) {
		return ErrLegEnded
	}
	l.s.rejected.Add(1)
	res := l.newResponse(code, reason, nil)
	if code == 503 { // overload: tell the trunk when to try again
		res.AppendHeader(l.s.retryAfter())
	}
	return l.tx.Respond(res)
}

func (l *Inbound) newResponse(code int, reason string, body []byte) *sip.Response {
	res := sip.NewResponseFromRequest(l.invite, code, reason, body)
	res.AppendHeader(sip.NewHeader("Server", l.s.cfg.UserAgent))
	if code > 100 && code < 300 {
		res.AppendHeader(l.contact)
		res.AppendHeader(sip.NewHeader("Allow", l.s.allow()))
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
		m := l.Media()
		l.local.keys = m.SRTP
		body = l.local.answer(l.offer, []uint8{m.PayloadType}, m.DTMFType, answerDirection(m.Direction))
	} else {
		body = l.local.marshal(l.prefs, DefaultDTMFPayloadType, SendRecv)
	}
	res := l.newResponse(200, "OK", body)
	l.s.dialogs.add(&l.dialog)
	if !l.state.CompareAndSwap(legEarly, legAnswered) {
		return Media{}, ErrLegEnded
	}
	if err := l.tx.Respond(res); err != nil {
		l.end(SideSystem, "transport", 500)
		return Media{}, fmt.Errorf("sip: send 200: %w", err)
	}
	ack, err := l.waitACK(ctx, l.invite.CSeq().SeqNo, func() error { return l.s.srv.WriteResponse(res) })
	if err != nil {
		return Media{}, err
	}
	l.state.CompareAndSwap(legAnswered, legConfirmed)
	// The INVITE transaction has done its work: end it now rather than after Timer L
	// (32 s of the INVITE, our 200 and their headers held per call). Late retransmissions
	// of the INVITE are absorbed by invitesSeen (linger.go).
	l.tx.Terminate()
	if l.offer == nil {
		o, err := parseSDP(ack.Body())
		if err == nil {
			var m Media
			if m, err = negotiate(o, l.prefs); err == nil {
				l.setMedia(m)
			}
		}
		if err != nil {
			return Media{}, fmt.Errorf("sip: answer in ACK: %w", err)
		}
	}
	return l.Media(), nil
}

// Hangup ends the leg from our side: BYE after answer, 480 before.
func (l *Inbound) Hangup(ctx context.Context, cause string) error {
	switch l.state.Load() {
	case legEnded:
		return nil
	case legEarly:
		return l.Reject(480, "Temporarily Unavailable")
	}
	l.tx.Terminate()
	return l.bye(ctx, cause)
}

// onInvite handles initial INVITEs and re-INVITEs.
func (s *Server) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if req.From() == nil || req.To() == nil || req.CallID() == nil || req.CSeq() == nil {
		s.respond(req, tx, 400, "Missing Mandatory Header")
		return
	}
	if _, ok := req.To().Params.Get("tag"); ok {
		s.inDialog((*dialog).onReinvite)(req, tx)
		return
	}
	if s.invitesSeen.has(inviteKey(req), time.Now()) {
		// A copy of an INVITE whose call is up or has just ended, arriving after its
		// transaction ended: absorbed (linger.go).
		s.absorbed.Add(1)
		tx.Terminate()
		return
	}
	src, ok := sourceAddr(req)
	if !ok {
		s.respond(req, tx, 400, "Bad Request")
		return
	}
	if !s.trusted(src.Addr()) && !s.inviteLimit.allow(src.Addr()) {
		s.shed(req, tx, src.Addr())
		return
	}
	if req.Contact() == nil {
		s.respond(req, tx, 400, "Missing Contact")
		return
	}
	number := req.Recipient.User
	if s.cfg.OnAgentCall != nil && s.fromAgent(req, src) {
		s.agentCall(req, tx, src)
		return
	}
	trunk, served := match(*s.trunks.Load(), src.Addr(), number)
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
		if err == nil {
			media.SRTP, err = answerSRTP(parsed, trunk.srtpPolicy(), nil)
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

	s.serveLeg(s.newInbound(req, tx, trunk, src, o, media), s.cfg.OnCall)
}

// serveLeg sends 100 Trying and runs the leg's owner on this goroutine; when the owner
// returns, a leg still up is hung up (500 before answer, BYE after).
func (s *Server) serveLeg(l *Inbound, owner func(*Inbound)) {
	if err := l.tx.Respond(sip.NewResponseFromRequest(l.invite, 100, "Trying", nil)); err != nil {
		return
	}
	if !l.tx.OnCancel(func(*sip.Request) { l.end(SideCaller, "CANCEL", 487) }) {
		return // cancelled or gone already; sipgo answered 487
	}
	s.legs.Add(1)
	defer s.legs.Done()
	key := inviteKey(l.invite)
	s.invitesSeen.add(key)
	defer func() { s.invitesSeen.end(key, time.Now(), lingerFor()) }()
	defer s.dialogs.remove(&l.dialog)

	owner(l)

	switch l.state.Load() {
	case legEarly:
		l.Reject(500, "Server Internal Error")
	case legAnswered, legConfirmed:
		l.Hangup(context.Background(), "done")
	}
}

func (s *Server) newInbound(req *sip.Request, tx sip.ServerTransaction, trunk *Trunk, src netip.AddrPort, o *offer, m Media) *Inbound {
	tag := uuid.NewString()
	invite := req.Clone()
	invite.To().Params.Add("tag", tag)
	l := &Inbound{invite: invite, tx: tx, trunk: trunk, source: src, received: time.Now(), offer: o}
	l.init(s, SideCaller)
	l.srtp = trunk.srtpPolicy()
	from := invite.To().AsFrom() // our party, with our tag
	to := invite.From().AsTo()
	l.callID, l.localTag, l.localHdr, l.remoteHdr = callID(req), tag, &from, &to
	l.target = invite.Recipient
	if c := invite.Contact(); c != nil {
		l.target = c.Address
	}
	for _, rr := range invite.GetHeaders("Record-Route") {
		l.routes = append(l.routes, rr.Value())
	}
	// Symmetric signalling: send where the INVITE came from, as carriers' SBCs and NATs expect.
	l.dest, l.transport = req.Source(), req.Transport()
	l.prefs, l.media = trunk.codecs(), m
	l.contact = s.contactHeader(req.Transport())
	l.log = s.log.With("sip_call_id", l.callID)
	return l
}

func (s *Server) onAck(req *sip.Request, tx sip.ServerTransaction) {
	d := s.lookup(req)
	if d == nil {
		return // ACK for a non-2xx final response is absorbed by its transaction
	}
	select {
	case d.acks <- req:
	default:
	}
}

// onCancel sees only CANCELs that matched no INVITE transaction (sipgo answers the others).
func (s *Server) onCancel(req *sip.Request, tx sip.ServerTransaction) {
	s.noSuchDialog(req, tx)
}

// inDialog returns a handler that hands in-dialog requests to their dialog and answers
// 481 for requests that match none.
func (s *Server) inDialog(handle func(*dialog, *sip.Request, sip.ServerTransaction)) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		if d := s.lookup(req); d != nil {
			handle(d, req, tx)
			return
		}
		if req.Method == sip.BYE && s.byesAnswered.has(byeKey(req), time.Now()) {
			// A BYE retransmitted because our 200 was lost: the dialog is gone, and the
			// answer the peer waits for is still 200.
			s.respond(req, tx, 200, "OK")
			tx.Terminate()
			return
		}
		s.noSuchDialog(req, tx)
	}
}

// noSuchDialog answers a request for a dialog or transaction we do not have.
func (s *Server) noSuchDialog(req *sip.Request, tx sip.ServerTransaction) {
	s.noDialog.Add(1)
	s.respond(req, tx, 481, "Call/Transaction Does Not Exist")
}

// FrontSourceHeader is where a trusted front (deploy/kamailio) says which address a
// request really came from (IP:port); it is believed only from a trusted front.
const FrontSourceHeader = "X-Hotline-Source"

// fromAgent reports whether the INVITE comes from a registered agent's phone: the From
// user has a binding registered from this very source address (through a trusted front:
// the address it names in FrontSourceHeader). In a cluster the binding may be another
// node's (Config.Agents).
func (s *Server) fromAgent(req *sip.Request, src netip.AddrPort) bool {
	if s.cfg.Registrar == nil {
		return false
	}
	if s.cfg.Registrar.IsTrustedFront(src.Addr()) { // through the front: where the phone really is
		h := req.GetHeader(FrontSourceHeader)
		if h == nil {
			return false
		}
		ap, err := netip.ParseAddrPort(strings.TrimSpace(h.Value()))
		if err != nil {
			return false
		}
		src = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	var bindings []Binding
	if s.cfg.Agents != nil {
		bindings = s.cfg.Agents.Bindings(req.From().Address.User)
	} else {
		bindings = s.cfg.Registrar.Bindings(req.From().Address.User)
	}
	for _, b := range bindings {
		if b.Source == src {
			return true
		}
	}
	return false
}

// agentTrunk is the pseudo-trunk of calls from agents' phones.
var agentTrunk = &Trunk{Name: "agents"}

// agentCall hands an INVITE from an agent's phone to OnAgentCall.
func (s *Server) agentCall(req *sip.Request, tx sip.ServerTransaction, src netip.AddrPort) {
	var o *offer
	media := Media{}
	if len(req.Body()) > 0 {
		parsed, err := parseSDP(req.Body())
		if err == nil {
			media, err = negotiate(parsed, agentTrunk.codecs())
		}
		if err == nil {
			media.SRTP, err = answerSRTP(parsed, agentTrunk.srtpPolicy(), nil)
		}
		if err != nil {
			code, reason := statusFor(err)
			s.respond(req, tx, code, reason)
			return
		}
		o = &parsed
	}
	s.serveLeg(s.newInbound(req, tx, agentTrunk, src, o, media), s.cfg.OnAgentCall)
}

// Agent is the agent id (From user) of a call from an agent's phone, or "".
func (l *Inbound) Agent() string {
	if l.trunk != agentTrunk {
		return ""
	}
	return l.Caller()
}
