package call

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/cdr"
	"github.com/hotline12345/hotline/ivr"
	"github.com/hotline12345/hotline/media"
	"github.com/hotline12345/hotline/sip"
)

// Stages of a live call.
const (
	StageSetup   = "setup"
	StageIVR     = "ivr"
	StageQueued  = "queued"
	StageRinging = "ringing" // queued, with an agent's phone ringing
	StageTalking = "talking"
	StageRating  = "rating" // the agent hung up; the caller rates the service
	StageEnding  = "ending"
)

// Events of a call's loop, posted by the ACD, ring goroutines and the IVR runner.
type (
	evOffer       struct{ acd.Offer }             // ring this agent
	evCancelOffer struct{ acd.Offer }             // stop ringing this agent
	evLeft        struct{ reason acd.ExitReason } // the ACD took the caller out of its queue
	evOverflow    struct{ target string }         // an escalation moved the caller to another queue
	evJoin        struct {
		queue, path, caseNumber string // the IVR's path and case number so far
		reply                   chan error
	} // the IVR hands the caller to a queue
	evIVRDone struct {
		res ivr.Result
		err error
	}
	evRing struct { // a ring ended: answered (leg, stream) or failed (err)
		offer  acd.Offer
		leg    AgentLeg
		stream Stream
		err    error
	}
)

// Call is one inbound call. Everything below "owned by the loop" is read and written only by
// the goroutine running loop; others talk to it through post.
type Call struct {
	m      *Manager
	id     string
	log    *slog.Logger
	leg    InboundLeg
	ctx    context.Context // the call's lifetime; ends with the call's cause
	cancel context.CancelCauseFunc
	box    mailbox
	view   atomic.Pointer[LiveCall] // the API's snapshot, replaced by the loop
	stream atomic.Pointer[Stream]   // for the RTP metrics
	wg     sync.WaitGroup           // goroutines the call started (IVR, rings, teardowns)

	// owned by the loop
	s         Stream
	stage     string
	rec       cdr.Record
	visits    []string
	rings     map[string]*ring
	ivr       *ivrTask
	q         *visit
	agent     *agentLeg
	rating    *rating
	agentEnd  bool // the agent ended the conversation (BYE), even if the caller hangs up later
	leftByKey bool
	queueExit error // the last queue took the caller out (max wait, no agent)
	closed    bool  // the entry was the closed-hours menu
	cause     error // set once the call is ending
}

// HandleInbound runs an inbound call from INVITE to record; it is sip.Config.OnCall.
func (m *Manager) HandleInbound(leg *sip.Inbound) { m.run(leg) }

// run is HandleInbound for any InboundLeg (tests pass fakes).
func (m *Manager) run(leg InboundLeg) {
	c := &Call{m: m, id: newID(), leg: leg, rings: map[string]*ring{}}
	c.box.init()
	c.log = m.log.With("call_id", c.id, "sip_call_id", leg.SIPCallID(), "from", leg.Caller(), "to", leg.Called())
	c.rec = cdr.Record{
		ID: c.id, SIPCallID: leg.SIPCallID(), Direction: cdr.DirectionInbound, Trunk: leg.Trunk(),
		Caller: leg.Caller(), Called: leg.Called(), Start: leg.Received(), NodeID: m.cfg.NodeID,
	}
	c.ctx, c.cancel = context.WithCancelCause(m.base)
	defer c.cancel(nil)
	trunk := m.metrics.trunk.WithLabelValues(leg.Trunk())
	trunk.Inc()
	defer trunk.Dec()
	c.setStage(StageSetup)
	m.track(c)
	c.run()
	c.setStage("")
	var st media.SessionStats
	if c.s != nil {
		st = c.s.Stats()
	}
	m.untrack(c, st)
	c.box.close(c.orphan)
	// Every goroutine of the call ends on its own timeouts; do not hold the handler forever
	// if one does not (it is logged, and goleak catches it in tests).
	waited := make(chan struct{})
	go func() { c.wg.Wait(); close(waited) }()
	t := time.NewTimer(callGrace)
	defer t.Stop()
	select {
	case <-waited:
	case <-t.C:
		c.log.Error("a goroutine of the call has not ended; leaving it", "grace", callGrace)
	}
}

// callGrace bounds how long an ended call waits for its goroutines (rings being cancelled,
// agent legs being hung up: each has its own shorter timeout).
const callGrace = 45 * time.Second

// run answers the call, starts its IVR and runs the loop until the call is over.
func (c *Call) run() {
	m := c.m
	route := m.routes[c.leg.Called()]
	if route == nil { // the trunk serves the number but no route does; config validation prevents it
		c.refuse(404, "Not Found")
		return
	}
	s, err := m.media.NewStream(c.log)
	if err != nil {
		c.log.Error("no RTP port for the call", "error", err)
		c.refuse(503, "Service Unavailable")
		return
	}
	c.s = s
	c.stream.Store(&s)
	defer s.Close()
	if err := c.answer(); err != nil {
		c.unanswered(err)
		return
	}
	entry := route.Entry(m.cfg.Clock.Now())
	c.closed = entry.Kind == ivr.ActMenu && route.ClosedMenu != "" && entry.Target == route.ClosedMenu
	c.startIVR(entry, false)
	c.loop()
	c.finish()
}

// answer rings for the trunk's answer delay, then answers with our RTP address.
func (c *Call) answer() error {
	if d := c.leg.AnswerDelay(); d > 0 {
		c.leg.Ring()
		t := c.m.cfg.Clock.NewTimer(d)
		select {
		case <-t.C():
		case <-c.leg.Done():
		case <-c.ctx.Done():
		}
		t.Stop()
	}
	select {
	case <-c.leg.Done():
		return ErrCallerHangup
	default:
	}
	remote, err := c.leg.Answer(c.ctx, c.s.LocalAddr())
	if err != nil {
		if side, _, _ := c.leg.End(); side == sip.SideCaller {
			return ErrCallerHangup
		}
		return errors.Join(ErrNotAnswered, err)
	}
	now := c.m.cfg.Clock.Now()
	c.rec.Answer, c.rec.Codec, c.rec.SIPStatus = now, media.Codec(remote.PayloadType).String(), 200
	c.m.metrics.setup.Observe(now.Sub(c.leg.Received()).Seconds())
	setRemote(c.s, remote)
	c.s.Start(c.ctx)
	c.applyMedia(remote)
	c.m.cfg.Records.Begin(c.rec)
	return nil
}

// loop is the call's one select loop; it returns when the call is over and its IVR done.
func (c *Call) loop() {
	legDone, rtpDone, ctxDone := c.leg.Done(), c.s.Done(), c.ctx.Done()
	var stuck <-chan time.Time // the IVR must return soon after the call is ending
	for c.cause == nil || c.ivr != nil {
		if c.cause != nil && stuck == nil {
			t := time.NewTimer(ivrGrace)
			defer t.Stop()
			stuck = t.C
		}
		var (
			ag            *agentLeg
			agDone, agRTP <-chan struct{}
			agMedia       <-chan sip.Media
			agRefers      <-chan *sip.Refer
			playing       <-chan struct{}
			announceTick  <-chan time.Time
			ratePlaying   <-chan struct{}
			rateWindow    <-chan time.Time
		)
		if r := c.rating; r != nil {
			ratePlaying = r.playing
			if r.window != nil {
				rateWindow = r.window.C()
			}
		}
		if ag = c.agent; ag != nil {
			agDone, agRTP, agMedia, agRefers = ag.leg.Done(), ag.s.Done(), ag.leg.MediaUpdates(), ag.leg.Refers()
		}
		if c.q != nil {
			playing = c.q.playing
			if c.q.announce != nil {
				announceTick = c.q.announce.C()
			}
		}
		select {
		case <-c.box.signal:
			for _, e := range c.box.take() {
				c.handle(e)
			}
		case <-legDone:
			legDone = nil
			c.stop(ErrCallerHangup)
		case <-rtpDone:
			rtpDone = nil
			c.log.Warn("caller's RTP stopped", "error", c.s.Err())
			c.stop(ErrRTPTimeout)
		case <-ctxDone:
			ctxDone = nil
			c.stop(context.Cause(c.ctx))
		case md := <-c.leg.MediaUpdates():
			c.applyMedia(md)
		case r := <-c.leg.Refers():
			r.Reject(403) // callers (trunks) do not transfer
		case d := <-c.leg.Digits():
			c.digit(d)
		case d := <-c.s.Digits():
			c.digit(d)
		case <-playing:
			c.playDone()
		case <-announceTick:
			c.announce()
		case <-ratePlaying:
			c.ratingPlayed()
		case <-rateWindow:
			c.ratingTimeout()
		case <-agDone:
			c.agentGone(ErrAgentHangup, "")
		case <-agRTP:
			c.log.Warn("agent's RTP stopped; ending the call", "agent", ag.id, "error", ag.s.Err())
			c.agentGone(ErrAgentHangup, "rtp-timeout")
		case md := <-agMedia:
			c.agentMedia(md)
		case r := <-agRefers:
			c.transfer(r)
		case <-stuck:
			c.log.Error("the IVR did not return after the call ended; recording the call without its last path", "grace", ivrGrace)
			c.ivr = nil
		}
	}
}

// ivrGrace is how long an ending call waits for its IVR runner to return.
const ivrGrace = 5 * time.Second

func (c *Call) handle(e any) {
	switch e := e.(type) {
	case evOffer:
		c.offer(e.Offer)
	case evCancelOffer:
		if r := c.rings[e.AgentID]; r != nil {
			r.cancel()
		}
	case evLeft:
		c.left(e.reason)
	case evOverflow:
		c.overflow(e.target)
	case evRing:
		c.ringEnded(e)
	case evJoin:
		if c.ivr != nil && e.path != "" {
			c.rec.IVRPath = strings.Join(append(slices.Clone(c.ivr.paths), e.path), ">")
		}
		if e.caseNumber != "" {
			c.rec.CaseNumber = e.caseNumber
		}
		c.join(e.queue, e.reply)
	case evIVRDone:
		c.ivrDone(e.res, e.err)
	}
}

// stop begins the end of the call: the queue and the agent are let go, rings cancelled and
// the IVR told; the loop then waits for the IVR to return.
func (c *Call) stop(cause error) {
	if c.cause != nil {
		return
	}
	if c.ctx.Err() != nil {
		// The manager ended the call (drain, shutdown): that is the cause, whatever ended with it
		// (the RTP session and the IVR stop on the same context) and reached the loop first.
		cause = context.Cause(c.ctx)
	}
	if cause == nil {
		cause = ErrIVREnded
	}
	c.cause = cause
	c.setStage(StageEnding)
	side := sip.SideSystem
	if errors.Is(cause, ErrCallerHangup) {
		side = sip.SideCaller
	}
	if c.rating != nil { // hung up before rating: not_rated
		c.endRating()
	}
	switch {
	case c.agent != nil:
		c.endTalk(side, causeText(cause), true)
	case c.q != nil && c.q.exit == nil:
		c.m.dist.Abandon(c.id)
	}
	c.leaveQueue(cause)
	for _, r := range c.rings {
		r.cancel()
	}
	if c.ivr != nil {
		c.ivr.cancel(cause)
	}
}

// finish hangs up the caller if needed and writes the record.
func (c *Call) finish() {
	if !errors.Is(c.cause, ErrCallerHangup) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), byeTimeout)
		if err := c.leg.Hangup(ctx, causeText(c.cause)); err != nil {
			c.log.Debug("BYE failed", "error", err)
		}
		cancel()
	}
	c.cancel(c.cause)
	side, legCause, status := c.leg.End()
	cause := c.cause
	if c.agentEnd && errors.Is(cause, ErrCallerHangup) {
		cause = ErrAgentHangup // the agent ended the conversation; the caller left during the rating
	}
	o := Classify(Ending{
		Cause: cause, Answered: true, Queued: c.rec.Queue != "", Agent: c.rec.Agent != "",
		LeftByKey: c.leftByKey, QueueExit: c.queueExit, Closed: c.closed, LegSide: side, LegCause: legCause, LegStatus: status,
	})
	c.rec.End = c.m.cfg.Clock.Now()
	c.rec.Disposition, c.rec.HangupSide, c.rec.HangupCause = o.Disposition, o.Side, o.Cause
	c.rec.Visits = strings.Join(c.visits, cdr.VisitSeparator)
	st := c.s.Stats()
	c.log.Info("call ended", "disposition", o.Disposition, "hangup_side", o.Side, "cause", o.Cause,
		"ivr_path", c.rec.IVRPath, "visits", c.rec.Visits, "duration", c.rec.End.Sub(c.rec.Start).Round(time.Millisecond),
		"rtp_in", st.PacketsIn, "rtp_out", st.PacketsOut, "rtp_lost", st.Lost)
	c.m.finish(c.rec)
}

// snapshot journals the record as it stands (queue, agent, connect, visits), so that a
// crash rebuilds the call as far as it got.
func (c *Call) snapshot() {
	c.rec.Visits = strings.Join(c.visits, cdr.VisitSeparator)
	c.m.cfg.Records.Begin(c.rec)
}

// refuse rejects the INVITE before answer and records it.
func (c *Call) refuse(code int, reason string) {
	c.leg.Reject(code, reason)
	c.end(Ending{Cause: ErrRejected, LegSide: sip.SideSystem, LegCause: reason, LegStatus: code})
}

// unanswered records a call that ended while we answered it (CANCEL, no ACK, shutdown).
func (c *Call) unanswered(err error) {
	side, cause, code := c.leg.End()
	if errors.Is(err, ErrCallerHangup) {
		side = sip.SideCaller
	}
	c.log.Info("call not answered", "error", err, "cause", cause)
	c.end(Ending{Cause: err, LegSide: side, LegCause: cause, LegStatus: code})
}

func (c *Call) end(e Ending) {
	o := Classify(e)
	c.rec.End = c.m.cfg.Clock.Now()
	c.rec.Disposition, c.rec.HangupSide, c.rec.HangupCause, c.rec.SIPStatus = o.Disposition, o.Side, o.Cause, o.Status
	c.m.finish(c.rec)
}

func (c *Call) setStage(stage string) {
	old := c.stage
	c.stage = stage
	c.m.metrics.stage(old, stage)
	c.publish()
}

// publish replaces the API's view of the call.
func (c *Call) publish() {
	v := LiveCall{
		ID: c.id, SIPCallID: c.rec.SIPCallID, Trunk: c.rec.Trunk, Caller: c.rec.Caller, Called: c.rec.Called,
		Stage: c.stage, Codec: c.rec.Codec, Start: c.rec.Start, Answer: c.rec.Answer,
	}
	if c.q != nil {
		v.Queue = c.q.name
	}
	if c.agent != nil {
		v.Agent, v.Queue = c.agent.id, c.agent.queue
	}
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
	case c.rating != nil:
		c.ratingKey(d)
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
	if addrOK(md) {
		setRemote(c.s, md)
	}
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
// SDP gave it (a dynamic number for G.711 is rare but allowed).
func setRemote(s Stream, md sip.Media) {
	s.SetRemote(md.Addr, media.Codec(md.PayloadType), md.DTMFType)
	if md.RTPType != 0 {
		s.SetAudioPayloadType(md.RTPType)
	}
}
