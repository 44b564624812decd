package call

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	sipgosip "github.com/emiago/sipgo/sip"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/sip"
)

// Directory finds where an agent's softphone is registered (the registrar).
type Directory interface {
	Bindings(user string) []sip.Binding
}

// Dialer places outbound legs (the SIP server).
type Dialer interface {
	Dial(ctx context.Context, o sip.DialOptions) (*sip.Outbound, error)
}

// sipPhones rings agents at their registered contact (Phones over SIP).
type sipPhones struct {
	dir    Directory
	dialer Dialer
	srtp   sip.SRTPPolicy
}

func (p sipPhones) Contact(agent string) string {
	if b := p.dir.Bindings(agent); len(b) > 0 {
		return b[0].Contact.String()
	}
	return ""
}

func (p sipPhones) Ring(ctx context.Context, r RingRequest) (AgentLeg, error) {
	binds := p.dir.Bindings(r.Agent)
	if len(binds) == 0 {
		return nil, fmt.Errorf("%w: no registered phone", ErrUnreachable)
	}
	b := binds[0]
	dest := b.Source
	if len(b.Path) > 0 {
		dest = netip.AddrPort{} // through the front that registered it: the first Path hop
	}
	out, err := p.dialer.Dial(ctx, sip.DialOptions{
		Target: b.Contact, Destination: dest, Route: b.Path, Transport: b.Transport,
		FromUser: r.Caller, AssertedID: r.Caller, ToUser: r.Agent, Local: r.Local, Codecs: r.Codecs, SRTP: p.srtp,
		Headers: []sipgosip.Header{sipgosip.NewHeader("X-Hotline-Queue", r.Queue), sipgosip.NewHeader("X-Hotline-Call-ID", r.CallID)},
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrLocal, err)
	}
	werr := out.Wait()
	var de *sip.DialError
	switch {
	case werr == nil:
		return out, nil
	case errors.Is(werr, sip.ErrDialCanceled) || ctx.Err() != nil:
		return nil, ErrRingCancelled
	case errors.As(werr, &de) && (de.Code == 486 || de.Code == 600 || de.Code == 603):
		return nil, fmt.Errorf("%w: %w", ErrBusy, werr)
	}
	return nil, fmt.Errorf("%w: %w", ErrUnreachable, werr)
}

// ringFailure is how the ACD treats an agent whose phone did not answer: not answering or
// being unreachable pauses the agent; a decline or our own failure only rests them.
func ringFailure(err error) acd.RingFailure {
	if errors.Is(err, ErrUnreachable) {
		return acd.Unreachable
	}
	return acd.Rejected
}

// ring is one agent's phone ringing for this caller; the goroutine that rings reports to
// the loop with evRing and touches nothing of the call.
type ring struct {
	offer  acd.Offer
	ctx    context.Context // ends when the ring is cancelled
	cancel context.CancelFunc
}

// startRing rings the agent off the loop: it makes the agent's stream, dials, and posts
// the outcome.
func (c *Call) startRing(of acd.Offer) {
	ctx, cancel := context.WithCancel(c.ctx)
	c.rings[of.AgentID] = &ring{offer: of, ctx: ctx, cancel: cancel}
	codecs := []uint8{sip.PayloadPCMA, sip.PayloadPCMU}
	if c.leg != nil {
		if pt := c.leg.Media().PayloadType; pt != sip.PayloadPCMA {
			codecs = []uint8{pt, sip.PayloadPCMA}
		}
	}
	shown := c.rec.Caller
	if c.task != nil {
		shown = c.task.req.Number // the agent sees whom they will call back
	}
	req := RingRequest{Agent: of.AgentID, Caller: shown, CallID: c.id, Queue: of.Queue, Codecs: codecs}
	log := c.log.With("agent", of.AgentID)
	c.spawn(func() {
		defer cancel()
		res := evRing{offer: of}
		if c.m.phones == nil {
			res.err = fmt.Errorf("%w: no phones", ErrLocal)
			c.post(res)
			return
		}
		s, err := c.m.media.NewStream(log)
		if err != nil {
			res.err = fmt.Errorf("%w: %w", ErrLocal, err)
			c.post(res)
			return
		}
		req.Local = s.LocalAddr()
		leg, err := c.m.phones.Ring(ctx, req)
		if err != nil {
			s.Close()
			res.err = err
		} else {
			res.leg, res.stream = leg, s
		}
		c.post(res)
	})
}
