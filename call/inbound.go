package call

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
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
	StageEnding  = "ending"
)

// Call is one inbound call: its leg, its media session and its record.
type Call struct {
	m      *Manager
	id     string
	leg    *sip.Inbound
	sess   *media.Session
	log    *slog.Logger
	digits chan rune
	ctx    context.Context     // the call's lifetime (set before the call is visible to others)
	agent  chan *agentLeg      // an agent answered for this caller
	exit   chan acd.ExitReason // the ACD took the caller out of its queue

	mu        sync.Mutex
	rec       cdr.Record
	stage     string
	leftByKey bool // the caller's last queue visit ended with the exit digit
}

func (c *Call) setStage(stage string) {
	c.mu.Lock()
	old := c.stage
	c.stage = stage
	c.mu.Unlock()
	c.m.metrics.stage(old, stage)
}

// session is the call's RTP session, nil before it exists.
func (c *Call) session() *media.Session {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess
}

// swapStage moves the call from stage from to stage to, if it is still in from.
func (c *Call) swapStage(from, to string) {
	c.mu.Lock()
	if c.stage != from {
		c.mu.Unlock()
		return
	}
	c.stage = to
	c.mu.Unlock()
	c.m.metrics.stage(from, to)
}

func (c *Call) view() LiveCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	return LiveCall{
		ID: c.id, SIPCallID: c.rec.SIPCallID, Trunk: c.rec.Trunk, Caller: c.rec.Caller, Called: c.rec.Called,
		Stage: c.stage, Queue: c.rec.Queue, Codec: c.rec.Codec, Start: c.rec.Start, Answer: c.rec.Answer,
	}
}

// HandleInbound runs an inbound call from INVITE to record; it is sip.Config.OnCall.
func (m *Manager) HandleInbound(leg *sip.Inbound) {
	c := &Call{m: m, id: newID(), leg: leg, digits: make(chan rune, 32), agent: make(chan *agentLeg), exit: make(chan acd.ExitReason, 1)}
	c.log = m.log.With("call_id", c.id, "sip_call_id", leg.SIPCallID(), "from", leg.Caller(), "to", leg.Called())
	c.rec = cdr.Record{
		ID: c.id, SIPCallID: leg.SIPCallID(), Direction: "inbound", Trunk: leg.Trunk(),
		Caller: leg.Caller(), Called: leg.Called(), Start: leg.Received(), NodeID: m.cfg.NodeID,
	}
	ctx, cancel := context.WithCancelCause(m.base)
	defer cancel(nil)
	c.ctx = ctx
	trunk := m.metrics.trunk.WithLabelValues(leg.Trunk())
	trunk.Inc()
	defer trunk.Dec()
	m.track(c)
	defer m.untrack(c)
	c.setStage(StageSetup)
	defer c.setStage("")
	c.run(ctx, cancel)
}

func (c *Call) run(ctx context.Context, cancel context.CancelCauseFunc) {
	m := c.m
	route := m.routes[c.leg.Called()]
	if route == nil { // the trunk serves the number but no route does; config validation prevents it
		c.reject(404, "Not Found")
		return
	}
	conn, err := m.cfg.Ports.Listen()
	if err != nil {
		c.log.Error("no RTP port for the call", "error", err)
		c.reject(503, "Service Unavailable")
		return
	}
	sess := media.NewSession(media.SessionConfig{
		Conn: conn, Scheduler: m.cfg.Scheduler, Timeout: m.cfg.RTPTimeout, Logger: c.log,
	})
	c.mu.Lock()
	c.sess = sess
	c.mu.Unlock()
	defer c.sess.Close()

	if d := c.leg.AnswerDelay(); d > 0 {
		c.leg.Ring()
		t := m.cfg.Clock.NewTimer(d)
		select {
		case <-t.C():
		case <-c.leg.Done():
		case <-ctx.Done():
		}
		t.Stop()
	}
	remote, err := c.leg.Answer(ctx, c.sess.LocalAddr())
	if err != nil {
		c.unanswered(err)
		return
	}
	now := time.Now()
	codec := media.Codec(remote.PayloadType)
	setRemote(c.sess, remote)
	c.sess.Start(ctx)
	c.mu.Lock()
	c.rec.Answer = now
	c.rec.Codec = codec.String()
	c.rec.SIPStatus = 200
	rec := c.rec
	c.mu.Unlock()
	m.metrics.setup.Observe(now.Sub(c.leg.Received()).Seconds())
	m.cfg.Records.Begin(rec)
	c.applyMedia(remote)

	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); c.watch(ctx, cancel) }()

	entry := route.Entry(m.cfg.Clock.Now())
	closed := entry.Kind == ivr.ActMenu && route.ClosedMenu != "" && entry.Target == route.ClosedMenu
	c.setStage(StageIVR)
	runner := ivr.Runner{Menus: m.cfg.Menus, Media: c, Queue: c, Clock: m.cfg.Clock, Logger: c.log}
	var paths []string
	var caseNumber string
	var runErr error
	for {
		var res ivr.Result
		res, runErr = runner.Run(ctx, entry)
		paths = append(paths, res.PathString())
		if v := res.Vars["case_number"]; v != "" {
			caseNumber = v
		}
		var em exitToMenu
		if !errors.As(runErr, &em) || ctx.Err() != nil {
			break
		}
		entry = ivr.Action{Kind: ivr.ActMenu, Target: em.menu} // the caller left a queue for a menu
		runner.NoGreeting = true
		c.setStage(StageIVR)
	}

	c.setStage(StageEnding)
	cause := context.Cause(ctx)
	if cause == nil {
		cause = runErr
	}
	c.mu.Lock()
	c.rec.IVRPath = strings.Join(paths, ">")
	c.rec.CaseNumber = caseNumber
	dispCause := cause
	if c.leftByKey && c.rec.Agent == "" {
		dispCause = ErrExitKey // hung up after leaving the queue with the exit digit: not an abandon
	}
	c.rec.Disposition = disposition(c.rec, closed, dispCause)
	c.mu.Unlock()

	if !errors.Is(cause, ErrCallerHangup) && !c.leg.Ended() {
		teardown, stop := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		if err := c.leg.Hangup(teardown, causeText(cause)); err != nil {
			c.log.Debug("BYE failed", "error", err)
		}
		stop()
	}
	cancel(cause)
	wg.Wait()
	c.end(cause)
}

// watch ends the call when the caller hangs up or RTP stops, and applies re-INVITEs.
func (c *Call) watch(ctx context.Context, cancel context.CancelCauseFunc) {
	infoDigits := c.leg.Digits()
	rtpDigits := c.sess.Digits()
	for {
		var d rune
		select {
		case <-ctx.Done():
			return
		case <-c.leg.Done():
			cancel(ErrCallerHangup)
			return
		case <-c.sess.Done():
			cancel(ErrRTPTimeout)
			return
		case m := <-c.leg.MediaUpdates():
			c.applyMedia(m)
			continue
		case d = <-infoDigits:
		case d = <-rtpDigits:
		}
		select {
		case c.digits <- d:
		default:
			c.log.Debug("digit dropped: input buffer full", "digit", string(d))
		}
	}
}

// applyMedia follows hold/unhold and address changes from the caller.
func (c *Call) applyMedia(m sip.Media) {
	if addrOK(m.Addr) && !m.Addr.Addr().IsUnspecified() {
		setRemote(c.sess, m)
	}
	if m.OnHold() {
		c.sess.SetInactivityTimeout(-1) // a held caller sends no RTP; that is not a dead call
	} else {
		c.sess.SetInactivityTimeout(c.m.cfg.RTPTimeout)
	}
}

// reject refuses the INVITE before answer and records it.
func (c *Call) reject(code int, reason string) {
	c.leg.Reject(code, reason)
	c.mu.Lock()
	c.rec.End = time.Now()
	c.rec.Disposition, c.rec.HangupSide, c.rec.HangupCause, c.rec.SIPStatus = "failed", sip.SideSystem, reason, code
	rec := c.rec
	c.mu.Unlock()
	c.m.finish(rec)
}

// unanswered records a call that ended while we answered it (CANCEL, no ACK, shutdown).
func (c *Call) unanswered(err error) {
	side, cause, code := c.leg.End()
	c.mu.Lock()
	c.rec.End = time.Now()
	switch {
	case cause == "CANCEL":
		c.rec.Disposition, c.rec.HangupSide, c.rec.HangupCause, c.rec.SIPStatus = cdr.DispositionCallerCancelled, sip.SideCaller, "CANCEL", 487
	default:
		if side == "" {
			side, cause, code = sip.SideSystem, err.Error(), 500
		}
		c.rec.Disposition, c.rec.HangupSide, c.rec.HangupCause, c.rec.SIPStatus = "failed", side, cause, code
	}
	rec := c.rec
	c.mu.Unlock()
	c.log.Info("call not answered", "error", err, "cause", rec.HangupCause)
	c.m.finish(rec)
}

// end completes the record of an answered call.
func (c *Call) end(cause error) {
	c.mu.Lock()
	c.rec.End = time.Now()
	switch {
	case errors.Is(cause, ErrCallerHangup):
		_, legCause, _ := c.leg.End()
		c.rec.HangupSide, c.rec.HangupCause = sip.SideCaller, legCause
	case errors.Is(cause, ErrAgentHangup):
		c.rec.HangupSide, c.rec.HangupCause = sip.SideAgent, "BYE"
	default:
		c.rec.HangupSide, c.rec.HangupCause = sip.SideSystem, causeText(cause)
	}
	rec := c.rec
	c.mu.Unlock()
	st := c.sess.Stats()
	c.log.Info("call ended", "disposition", rec.Disposition, "hangup_side", rec.HangupSide, "cause", rec.HangupCause,
		"ivr_path", rec.IVRPath, "duration", rec.End.Sub(rec.Start).Round(time.Millisecond),
		"rtp_in", st.PacketsIn, "rtp_out", st.PacketsOut, "rtp_lost", st.Lost)
	c.m.finish(rec)
}

// disposition classifies an answered call that never reached an agent.
func disposition(rec cdr.Record, closed bool, cause error) cdr.Disposition {
	switch {
	case rec.Agent != "":
		return "answered"
	case rec.Queue != "" && errors.Is(cause, ErrNoAgent):
		return "no-agent"
	case rec.Queue != "" && errors.Is(cause, ErrExitKey):
		return "exit-key"
	case rec.Queue != "" && errors.Is(cause, ErrDrain):
		return "failed" // we hung up a waiting caller at shutdown: not the caller's abandon
	case rec.Queue != "" && errors.Is(cause, ErrMaxWait):
		return "timeout"
	case rec.Queue != "":
		return "abandoned"
	case closed:
		return "closed-hours"
	}
	return "ivr-hangup"
}

// causeText is the hangup cause written to the record for an error that ended a call.
func causeText(err error) string {
	switch {
	case err == nil:
		return "normal"
	case errors.Is(err, ErrRTPTimeout):
		return "rtp-timeout"
	case errors.Is(err, ErrMaxWait):
		return "max-wait"
	case errors.Is(err, ErrDrain):
		return "drain"
	case errors.Is(err, ErrCallerHangup), errors.Is(err, ErrAgentHangup):
		return "BYE"
	case errors.Is(err, ErrNoAgent):
		return "no-agent"
	case errors.Is(err, ErrExitKey):
		return "exit-key"
	case errors.Is(err, context.Canceled):
		return "shutdown"
	}
	return err.Error()
}

// setRemote points a session at the negotiated media, with the codec's payload type as the
// SDP gave it (a dynamic number for G.711 is rare but allowed).
func setRemote(s *media.Session, m sip.Media) {
	s.SetRemote(m.Addr, media.Codec(m.PayloadType), m.DTMFType)
	if m.RTPType != 0 {
		s.SetAudioPayloadType(m.RTPType)
	}
}
