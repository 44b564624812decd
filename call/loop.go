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
	evAgentGone   struct{ agent string }          // the registrar lost the bridged agent's phone (acd.Unreachable)
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

// Call is one call: an inbound call, an outbound survey, or a callback task. Everything
// below "owned by the loop" is read and written only by the goroutine running loop; others
// talk to it through post.
type Call struct {
	m    *Manager
	id   string
	plan *plan // the menus, routes and queue settings in force when the call started
	// preamble: the emergency notice's prompts, played before the entry (once)
	preamble []string
	log      *slog.Logger
	in       InboundLeg      // an inbound call's leg; nil for outbound calls
	ctx      context.Context // the call's lifetime; ends with the call's cause
	cancel   context.CancelCauseFunc
	box      mailbox
	view     atomic.Pointer[LiveCall] // the API's snapshot, replaced by the loop
	stream   atomic.Pointer[Stream]   // for the RTP metrics
	wg       sync.WaitGroup           // goroutines the call started (IVR, rings, teardowns)

	// owned by the loop
	leg       Leg    // the citizen's leg: in, or the outbound leg once answered; nil before
	s         Stream // the citizen's stream; nil while a callback task has no citizen leg
	survey    *surveyState
	task      *taskState
	vh        *vhold // the caller is booking a callback
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
	recCall         // recording and voicemail (recording.go, voicemail.go)

	conf *conference // supervisor and department parties (conference.go); nil if none ever
}

// HandleInbound runs an inbound call from INVITE to record; it is sip.Config.OnCall.
func (m *Manager) HandleInbound(leg *sip.Inbound) { m.run(leg) }

// run is HandleInbound for any InboundLeg (tests pass fakes).
func (m *Manager) run(leg InboundLeg) {
	c := m.newCall(cdr.Record{
		SIPCallID: leg.SIPCallID(), Direction: cdr.DirectionInbound, Trunk: leg.Trunk(),
		Caller: leg.Caller(), Called: leg.Called(), Start: leg.Received(),
	}, "sip_call_id", leg.SIPCallID())
	c.in, c.leg = leg, leg
	m.runCall(c, c.run)
}

// newCall makes a call with its record; logAttrs go on every line it logs.
func (m *Manager) newCall(rec cdr.Record, logAttrs ...any) *Call {
	c := &Call{m: m, id: newID(), rings: map[string]*ring{}, plan: m.plan.Load()}
	c.box.init()
	c.log = m.log.With(append([]any{"call_id", c.id, "direction", rec.Direction, "from", rec.Caller, "to", rec.Called}, logAttrs...)...)
	rec.ID, rec.NodeID = c.id, m.cfg.NodeID
	c.rec = rec
	return c
}

// runCall runs body as the call's life, tracked for the API and metrics, and returns when
// the call and its goroutines are over.
func (m *Manager) runCall(c *Call, body func()) {
	c.ctx, c.cancel = context.WithCancelCause(m.base)
	defer c.cancel(nil)
	trunk := m.metrics.trunk.WithLabelValues(c.rec.Trunk)
	trunk.Inc()
	defer trunk.Dec()
	c.setStage(StageSetup)
	m.track(c)
	body()
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
	if c.task != nil { // a citizen answered as the task ended
		select {
		case e := <-c.task.dialled:
			if e.leg != nil {
				discard(e.leg, e.s, "task over")
			}
		default:
		}
	}
}

// callGrace bounds how long an ended call waits for its goroutines (rings being cancelled,
// agent legs being hung up: each has its own shorter timeout).
const callGrace = 45 * time.Second

// run answers the call, starts its IVR and runs the loop until the call is over.
func (c *Call) run() {
	m := c.m
	route := c.plan.routes[c.in.Called()]
	if route == nil { // the trunk serves the number but no route does; config validation prevents it
		c.refuse(404, "Not Found")
		return
	}
	if m.cfg.Admit != nil {
		if err := m.cfg.Admit(); err != nil {
			c.log.Error("call refused: records cannot be written", "error", err)
			c.refuse(503, "Service Unavailable")
			return
		}
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
	c.inbandDTMF()
	if err := c.answer(); err != nil {
		c.unanswered(err)
		return
	}
	now := m.cfg.Clock.Now()
	entry := route.Entry(now)
	c.closed = entry.Kind == ivr.ActMenu && route.ClosedMenu != "" && entry.Target == route.ClosedMenu
	notice, menu := m.notice(route.Number, now)
	if _, ok := c.plan.Menus[menu]; !ok {
		menu = "" // a menu a reload removed
	}
	if menu != "" { // an emergency menu replaces the entry, open or closed
		entry, c.closed = ivr.Action{Kind: ivr.ActMenu, Target: menu}, false
	}
	if len(notice) > 0 || menu != "" {
		c.log.Info("emergency notice", "prompts", notice, "menu", menu)
	}
	c.preamble = notice
	c.startIVR(entry, false)
	c.loop()
	c.finish()
}

// answer rings for the trunk's answer delay, then answers with our RTP address.
func (c *Call) answer() error {
	if d := c.in.AnswerDelay(); d > 0 {
		c.in.Ring()
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
	remote, err := c.in.Answer(c.ctx, c.s.LocalAddr())
	if err != nil {
		if side, _, _ := c.leg.End(); side == sip.SideCaller {
			return ErrCallerHangup
		}
		return errors.Join(ErrNotAnswered, err)
	}
	now := c.m.cfg.Clock.Now()
	c.rec.Answer, c.rec.Codec, c.rec.SIPStatus = now, media.Codec(remote.PayloadType).String(), 200
	c.m.metrics.setup.Observe(now.Sub(c.in.Received()).Seconds())
	setRemote(c.s, remote, c.leg.SignalAddr())
	c.s.Start(c.ctx)
	c.applyMedia(remote)
	c.m.cfg.Records.Begin(c.rec)
	return nil
}

// loop is the call's one select loop; it returns when the call is over and its IVR done.
func (c *Call) loop() {
	ctxDone := c.ctx.Done()
	var stuck <-chan time.Time // the IVR must return soon after the call is ending
	for c.cause == nil || c.ivr != nil {
		if c.cause != nil && stuck == nil {
			t := time.NewTimer(ivrGrace)
			defer t.Stop()
			stuck = t.C
		}
		var (
			legDone, rtpDone     <-chan struct{}
			legMedia             <-chan sip.Media
			legRefers            <-chan *sip.Refer
			legDigits, rtpDigits <-chan rune
			citizen              <-chan evCitizen
			whisper              <-chan struct{}
			ag                   *agentLeg
			agDone, agRTP        <-chan struct{}
			agMedia              <-chan sip.Media
			agRefers             <-chan *sip.Refer
			playing              <-chan struct{}
			announceTick         <-chan time.Time
			ratePlaying          <-chan struct{}
			rateWindow           <-chan time.Time
			vmPlaying, vmSilent  <-chan struct{}
			vmMax                <-chan time.Time
		)
		if vm := c.vm; vm != nil {
			vmPlaying, vmSilent = vm.playing, vm.silent
			if vm.max != nil {
				vmMax = vm.max.C()
			}
		}
		if r := c.rating; r != nil {
			ratePlaying = r.playing
			if r.window != nil {
				rateWindow = r.window.C()
			}
		}
		if c.leg != nil {
			legMedia, legRefers, legDigits = c.leg.MediaUpdates(), c.leg.Refers(), c.leg.Digits()
			if c.cause == nil {
				legDone = c.leg.Done()
			}
		}
		if c.s != nil {
			rtpDigits = c.s.Digits()
			if c.cause == nil {
				rtpDone = c.s.Done()
			}
		}
		if c.task != nil {
			citizen, whisper = c.task.dialled, c.task.whisper
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
			c.stop(ErrCallerHangup)
		case <-rtpDone:
			c.log.Warn("caller's RTP stopped", "error", c.s.Err())
			c.stop(ErrRTPTimeout)
		case e := <-citizen:
			c.citizenDialled(e)
		case <-whisper:
			c.whispered()
		case <-ctxDone:
			ctxDone = nil
			c.stop(context.Cause(c.ctx))
		case md := <-legMedia:
			c.applyMedia(md)
		case r := <-legRefers:
			r.Reject(403) // callers (trunks) do not transfer
		case d := <-legDigits:
			c.digit(d)
		case d := <-rtpDigits:
			c.digit(d)
		case <-playing:
			c.playDone()
		case <-announceTick:
			c.announce()
		case <-ratePlaying:
			c.ratingPlayed()
		case <-rateWindow:
			c.ratingTimeout()
		case <-vmPlaying:
			c.voicemailPlayed()
		case <-vmSilent:
			c.voicemailEnd("silence")
		case <-vmMax:
			c.voicemailEnd("max-duration")
		case <-agDone:
			c.agentGone(ErrAgentHangup, "")
		case <-agRTP:
			c.log.Warn("agent's RTP stopped; ending the call", "agent", ag.id, "error", ag.s.Err())
			c.agentGone(ErrAgentLost, "rtp-timeout")
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
	case evAgentGone:
		// Its RTP may not tell (an agent holding the caller sends none): the phone is lost.
		if c.agent != nil && c.agent.id == e.agent {
			c.log.Warn("agent's phone unreachable mid-call; ending the call", "agent", e.agent)
			c.agentGone(ErrAgentLost, "unreachable")
		}
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
	case evSurvey:
		c.surveyAnswered(e.res)
	default:
		c.handleConf(e)
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
	c.endConference()
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
	if c.task != nil && c.task.dialing != nil {
		c.task.dialing()
	}
	if c.ivr != nil {
		c.ivr.cancel(cause)
	}
}

// finish hangs up the caller if needed and writes the record.
func (c *Call) finish() {
	if c.leg != nil && !errors.Is(c.cause, ErrCallerHangup) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), byeTimeout)
		if err := c.leg.Hangup(ctx, causeText(c.cause)); err != nil {
			c.log.Debug("BYE failed", "error", err)
		}
		cancel()
	}
	c.cancel(c.cause)
	c.stopRecording()
	var side, legCause string
	var status int
	if c.leg != nil {
		side, legCause, status = c.leg.End()
	}
	if c.task != nil {
		c.finishTask(side, legCause, status)
		return
	}
	cause := c.cause
	if c.agentEnd && errors.Is(cause, ErrCallerHangup) {
		cause = ErrAgentHangup // the agent ended the conversation; the caller left during the rating
	}
	o := Classify(Ending{
		Cause: cause, Answered: true, Outbound: c.in == nil, Queued: c.rec.Queue != "", Agent: c.rec.Agent != "",
		LeftByKey: c.leftByKey, QueueExit: c.queueExit, Closed: c.closed, LegSide: side, LegCause: legCause, LegStatus: status,
	})
	c.rec.End = c.m.cfg.Clock.Now()
	c.rec.Disposition, c.rec.HangupSide, c.rec.HangupCause = o.Disposition, o.Side, o.Cause
	c.rec.Visits = strings.Join(c.visits, cdr.VisitSeparator)
	var st media.SessionStats
	if c.s != nil {
		st = c.s.Stats()
	}
	c.log.Info("call ended", "disposition", o.Disposition, "hangup_side", o.Side, "cause", o.Cause,
		"ivr_path", c.rec.IVRPath, "visits", c.rec.Visits, "duration", c.rec.End.Sub(c.rec.Start).Round(time.Millisecond),
		"rtp_in", st.PacketsIn, "rtp_out", st.PacketsOut, "rtp_lost", st.Lost)
	c.m.finish(c.rec)
	c.voicemailTask()
}

// snapshot journals the record as it stands (queue, agent, connect, visits), so that a
// crash rebuilds the call as far as it got.
func (c *Call) snapshot() {
	c.rec.Visits = strings.Join(c.visits, cdr.VisitSeparator)
	c.m.cfg.Records.Begin(c.rec)
}

// refuse rejects the INVITE before answer and records it.
func (c *Call) refuse(code int, reason string) {
	c.in.Reject(code, reason)
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
