package call

import (
	"context"
	"net/netip"

	"github.com/hotline12345/hotline/media"
	"github.com/hotline12345/hotline/sip"
)

// The loop's plumbing: the API snapshot, goroutines of the call, the mailbox, digits and
// media updates.

// publish replaces the API's view of the call.
func (c *Call) publish() {
	v := LiveCall{
		ID: c.id, SIPCallID: c.rec.SIPCallID, Trunk: c.rec.Trunk, Caller: c.rec.Caller, Called: c.rec.Called,
		Stage: c.stage, Codec: c.rec.Codec, Start: c.rec.Start, Answer: c.rec.Answer, Node: c.m.cfg.NodeID,
	}
	if c.q != nil {
		v.Queue = c.q.name
	}
	if c.agent != nil {
		v.Agent, v.Queue = c.agent.id, c.agent.queue
	}
	c.conf.view(&v)
	c.view.Store(&v)
}

// spawn runs f on a goroutine the call waits for before HandleInbound returns.
func (c *Call) spawn(f func()) {
	c.wg.Add(1)
	go func() { defer c.wg.Done(); f() }()
}

// post hands an event to the loop; it never blocks. After the call is over, events that
// hold resources are released by orphan.
func (c *Call) post(e any) {
	if !c.box.post(e) {
		c.orphan(e)
	}
}

// orphan releases what an event holds when no loop will handle it.
func (c *Call) orphan(e any) {
	switch e := e.(type) {
	case evRing:
		if e.leg != nil {
			c.log.Info("agent answered after the caller left", "agent", e.offer.AgentID)
			discard(e.leg, e.stream, "caller gone")
		}
	case evJoin:
		e.reply <- c.cause
	case evParty: // a supervisor or department answered after the call ended
		if e.leg != nil {
			discard(e.leg, e.s, "call over")
		}
	case evMonitor: // a supervisor's own leg the loop never took
		if e.leg != nil {
			discard(e.leg, e.s, "call over")
		}
	}
}

// discard hangs up an agent leg nobody will use and frees its media.
func discard(leg AgentLeg, s Stream, cause string) {
	ctx, cancel := context.WithTimeout(context.Background(), byeTimeout)
	defer cancel()
	leg.Hangup(ctx, cause)
	leg.Release()
	s.Close()
}

// digit handles a DTMF digit: the IVR's while it runs a menu, the queue's exit digit while
// the caller waits; ignored while talking (RFC 4733 passes through the bridge).
func (c *Call) digit(d rune) {
	switch {
	case c.cause != nil || c.agent != nil:
	case c.conf != nil && (c.conf.alone != nil || c.conf.transfer): // with a department, or being transferred to one
	case c.rating != nil:
		c.ratingKey(d)
	case c.vm != nil:
		c.voicemailDigit(d)
	case c.q != nil:
		c.queueDigit(d)
	case c.ivr != nil:
		select {
		case c.ivr.digits <- d:
		default:
			c.log.Debug("digit dropped: input buffer full", "digit", string(d))
		}
	}
}

// applyMedia follows hold/unhold and address changes from the caller.
func (c *Call) applyMedia(md sip.Media) {
	setRemote(c.s, md, c.leg.SignalAddr())
	if md.OnHold() {
		c.s.SetInactivityTimeout(-1) // a held caller sends no RTP; that is not a dead call
	} else {
		c.s.SetInactivityTimeout(c.m.cfg.RTPTimeout)
	}
}

func addrOK(md sip.Media) bool {
	return md.Addr.IsValid() && md.Addr.Port() != 0 && !md.Addr.Addr().IsUnspecified()
}

// setRemote points a stream at the negotiated media, with the codec's payload type as the
// SDP gave it (a dynamic number for G.711 is rare but allowed), lets RTP be latched from
// the signalling's address too (NAT), and sends only if the remote wants our media (not
// sendonly, inactive or a 0.0.0.0 hold). An SDP without a usable address keeps the old one.
func setRemote(s Stream, md sip.Media, signal netip.Addr) {
	if addrOK(md) {
		s.SetRemote(md.Addr, media.Codec(md.PayloadType), md.DTMFType)
		if md.RTPType != 0 {
			s.SetAudioPayloadType(md.RTPType)
		}
		s.AllowSource(signal)
	}
	var keys *media.SRTPKeys
	if k := md.SRTP; k != nil {
		keys = &media.SRTPKeys{Suite: k.Suite, LocalKey: k.LocalKey, RemoteKey: k.RemoteKey}
	}
	// The sip package checked suite and key lengths; should SetSRTP refuse them anyway,
	// nothing is sent in clear to a peer that asked for SRTP.
	srtpOK := s.SetSRTP(keys) == nil
	s.SetSending(addrOK(md) && md.Receives() && srtpOK)
}
