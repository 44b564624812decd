package call

import (
	"context"
	"errors"
	"fmt"

	"github.com/hotline12345/hotline/cdr"
	"github.com/hotline12345/hotline/sip"
)

// PromptWhisper is what the agent hears before the citizen is dialled: "回访任务，工单号"
// followed by the case number read digit by digit.
const PromptWhisper = "task_whisper"

// evCitizen: the dial of a callback task's citizen leg ended (answered: leg and stream).
type evCitizen struct {
	leg TrunkLeg
	s   Stream
	err error
}

// taskState is what the loop knows of a callback task: it waits in a queue with no citizen
// leg; the chosen agent is rung and bridged first, hears the whisper, then the citizen is
// dialled (progressive dialling).
type taskState struct {
	req     TaskRequest
	whisper <-chan struct{} // the whisper to the agent is playing
	dialled chan evCitizen  // the citizen dial's result (one dial per task)
	dialing context.CancelFunc
	status  int
	err     error
}

// Task runs a human callback task from queue to record and returns when it is over.
// ctx ending ends the task (interrupted unless the citizen was reached).
func (m *Manager) Task(ctx context.Context, r TaskRequest) TaskResult {
	c := m.newCall(cdr.Record{
		Direction: cdr.DirectionCallback, Trunk: r.Trunk, Caller: m.cfg.CallerIDs[r.Trunk], Called: r.Number, Start: m.cfg.Clock.Now(),
		Campaign: r.Campaign, Target: r.CaseID, Attempt: r.Attempt, CaseNumber: r.CaseID, Parent: r.Parent,
	}, "campaign", r.Campaign, "case", r.CaseID)
	c.task = &taskState{req: r, dialled: make(chan evCitizen, 1)}
	m.runCall(c, func() {
		stop := context.AfterFunc(ctx, func() { c.cancel(ErrShutdown) })
		defer stop()
		c.join(r.Queue, make(chan error, 1))
		c.loop()
		c.finish()
	})
	return TaskResult{CallID: c.id, Disposition: c.rec.Disposition, Agent: c.rec.Agent, Status: c.task.status, Err: c.task.err}
}

// taskAgent: the agent for a callback task answered. They are on the call from now (talk
// time runs), hear the whisper, and then the citizen is dialled.
func (c *Call) taskAgent(e evRing) {
	a, _ := c.takeAgent(e)
	c.setStage(StageDialing)
	c.snapshot()
	c.log.Info("agent took the callback task; whispering", "agent", a.id)
	names := []string{PromptWhisper}
	for _, d := range c.task.req.CaseID {
		if d >= '0' && d <= '9' {
			names = append(names, "digit_"+string(d))
		}
	}
	if ps := c.m.prompts(c.log, names); len(ps) > 0 {
		c.task.whisper = a.s.Play(ps...)
		return
	}
	c.dialTask()
}

// whispered: the agent heard the task; dial the citizen.
func (c *Call) whispered() {
	c.task.whisper = nil
	if c.cause == nil && c.agent != nil {
		c.dialTask()
	}
}

// dialTask dials the citizen off the loop, offering the agent's codec first.
func (c *Call) dialTask() {
	t := c.task
	ctx, cancel := context.WithCancel(c.ctx)
	t.dialing = cancel
	pt := c.agent.leg.Media().PayloadType
	codecs := []uint8{pt, sip.PayloadPCMA}
	if pt == sip.PayloadPCMA {
		codecs[1] = sip.PayloadPCMU
	}
	c.spawn(func() {
		defer cancel()
		s, err := c.m.media.NewStream(c.log)
		if err != nil {
			t.dialled <- evCitizen{err: fmt.Errorf("%w: %w", ErrLocal, err)}
			return
		}
		leg, err := c.m.dialCitizen(ctx, t.req.Trunk, t.req.Number, 0, s.LocalAddr(), codecs)
		if err != nil {
			s.Close()
		}
		t.dialled <- evCitizen{leg: leg, s: s, err: err}
	})
}

// citizenDialled bridges the answered citizen with the waiting agent, or ends the task.
func (c *Call) citizenDialled(e evCitizen) {
	t := c.task
	t.dialing = nil
	if c.cause != nil || c.agent == nil {
		if e.leg != nil {
			c.spawn(func() { discard(e.leg, e.s, "task over") })
		}
		return
	}
	if e.err != nil {
		t.err = e.err
		var de *sip.DialError
		if errors.As(e.err, &de) {
			t.status = de.Code
		}
		c.log.Info("citizen not reached for the callback", "agent", c.agent.id, "error", e.err)
		c.stop(e.err)
		return
	}
	c.leg, c.s = e.leg, e.s
	c.stream.Store(&e.s)
	c.citizenAnswered(e.leg, e.s)
	a := c.agent
	a.bridge = c.m.media.Bridge(c.s, a.s)
	a.bridge.Start()
	c.recordBridge(a)
	c.setStage(StageTalking)
	c.snapshot()
	c.log.Info("citizen connected to agent", "agent", a.id)
}

// finishTask writes a callback task's record: answered if the citizen picked up.
func (c *Call) finishTask(side, legCause string, status int) {
	t := c.task
	e := Ending{Outbound: true, Answered: !c.rec.Answer.IsZero(), Cause: c.cause, LegSide: side, LegCause: legCause, LegStatus: status}
	if !e.Answered {
		e = dialEnding(c.cause)
	}
	if t.status == 0 && !e.Answered {
		t.status = e.LegStatus
	}
	c.end(e)
	c.log.Info("callback task ended", "disposition", c.rec.Disposition, "agent", c.rec.Agent, "cause", c.rec.HangupCause)
}

// dialEnding describes an outbound call that was never answered, from why.
func dialEnding(err error) Ending {
	e := Ending{Outbound: true, Cause: err, LegSide: sip.SideSystem}
	var de *sip.DialError
	switch {
	case errors.As(err, &de):
		e.LegSide, e.LegCause, e.LegStatus = sip.SideCaller, de.Reason, de.Code
	case errors.Is(err, ErrLocal):
		e.LegCause, e.LegStatus = "local-failure", 500
	}
	return e
}
