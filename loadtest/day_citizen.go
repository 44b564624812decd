package loadtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hotline12345/hotline/loadtest/phone"
	"github.com/hotline12345/hotline/media"
)

// Outcomes, hang-up sides and ratings of the ground truth (the server's names).
const (
	OutcomeAnswered  = "answered"
	OutcomeAbandoned = "abandoned"
	OutcomeFailed    = "failed"
	OutcomeIVRHangup = "ivr-hangup" // the run stopped while the citizen was in the menu
	OutcomeCancelled = "cancelled"  // the run stopped before the server answered (CANCEL)

	ByCaller = "caller"
	ByAgent  = "agent"
	ByServer = "server"

	RatingNotRated = "not_rated"
)

// rfc4733EndLag: SendDTMF returns after the third of the end packets, 20 ms apart; the
// server takes the digit at the first (media.DTMFReceiver).
const rfc4733EndLag = 2 * media.FrameDuration

// ratingValues maps the post-call rating keys to the server's satisfaction values.
var ratingValues = map[rune]string{'1': "satisfied", '2': "basically_satisfied", '3': "dissatisfied"}

// citizenPlan is what one citizen will do, drawn from the seed at arrival.
type citizenPlan struct {
	caller     string
	digit      rune
	info       bool // keys by SIP INFO, else RFC 4733
	talk       time.Duration
	patience   time.Duration // 0: waits as long as it takes
	agentHangs bool          // the agent ends the conversation
	rates      bool          // rates when the agent hung up
	ratingKey  rune
}

type callState uint8

const (
	stWaiting   callState = iota // no agent yet
	stCommitted                  // an agent's phone is answering: the citizen does not give up now
	stConnected
	stAbandoned
)

// dayCall is one citizen's call: the plan, the truth its goroutine writes, and what the
// citizen and the agent who answers share. The agent side decides to answer under mu
// (commit) and the citizen to give up under mu (abandon), so the ground truth cannot call
// abandoned a call the server saw answered, or the reverse.
type dayCall struct {
	plan  citizenPlan
	first bool
	tc    TruthCall     // written by the citizen's goroutine; read once every goroutine ended
	setup chan struct{} // closed when the INVITE got its final answer

	mu          sync.Mutex
	st          callState
	agent       string
	connectedAt time.Time
	agentByeAt  time.Time
	connected   chan struct{} // closed with st = stConnected
	agentBye    chan struct{} // closed just before the agent sends BYE
	audio       audioPair
}

func newDayCall(plan citizenPlan, first bool) *dayCall {
	return &dayCall{
		plan: plan, first: first, setup: make(chan struct{}),
		connected: make(chan struct{}), agentBye: make(chan struct{}),
		audio: audioPair{done: make(chan struct{})},
	}
}

// commit: an agent is about to answer; false if the citizen has given up.
func (dc *dayCall) commit() bool {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	if dc.st != stWaiting {
		return false
	}
	dc.st = stCommitted
	return true
}

// uncommit: the agent's answer did not complete.
func (dc *dayCall) uncommit() {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	if dc.st == stCommitted {
		dc.st = stWaiting
	}
}

// connect: the agent's phone answered (200 OK sent at at, ACK received).
func (dc *dayCall) connect(agent string, at time.Time) {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	if dc.st != stCommitted {
		return
	}
	dc.st, dc.agent, dc.connectedAt = stConnected, agent, at
	close(dc.connected)
}

// abandon gives up waiting unless an agent is answering (busy) or has answered.
func (dc *dayCall) abandon(force bool) (ok, busy bool) {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	switch {
	case dc.st == stWaiting, dc.st == stCommitted && force:
		dc.st = stAbandoned
		return true, false
	case dc.st == stCommitted:
		return false, true
	}
	return false, false
}

func (dc *dayCall) markAgentBye(at time.Time) {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	dc.agentByeAt = at
	close(dc.agentBye)
}

func (dc *dayCall) connection() (agent string, at time.Time) {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	return dc.agent, dc.connectedAt
}

func (dc *dayCall) byeAt() time.Time {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	return dc.agentByeAt
}

// truth returns the call's ground truth once every goroutine of the run has ended.
func (dc *dayCall) truth() TruthCall {
	tc := dc.tc
	if tc.Outcome == OutcomeAnswered {
		ok := dc.audio.both()
		tc.AudioOK = &ok
	}
	return tc
}

// citizen runs one citizen's call to its end and writes its truth. It returns an error
// only for what must stop the whole run (the first INVITE unanswered, no local port).
func (d *day) citizen(ctx context.Context, p *phone.Phone, dc *dayCall) error {
	cfg := &d.cfg
	plan := dc.plan
	tc := &dc.tc
	tc.Caller, tc.Digits, tc.Queue, tc.DTMF = plan.caller, string(plan.digit), cfg.Queues[string(plan.digit)], "rfc4733"
	if plan.info {
		tc.DTMF = "info"
	}
	resolved := sync.OnceFunc(func() { close(dc.setup) })
	defer resolved()

	invite := time.Now()
	tc.Invite = invite.UTC()
	dctx, dcancel := context.WithTimeout(ctx, cfg.SetupTimeout)
	defer dcancel()
	c, err := p.DialAsync(dctx, d.target, plan.caller)
	if err != nil {
		tc.Ended = time.Now().UTC()
		d.failed(tc, ByCaller, "dial: "+err.Error())
		if isPortExhausted(err) {
			return portError("citizen call", err)
		}
		return nil
	}
	tc.SIPCallID = c.SIPCallID()
	select {
	case <-c.Answered():
	case <-dctx.Done(): // CANCEL sent: give its 487 (or a crossing 200) a moment
		t := time.NewTimer(cancelGrace)
		select {
		case <-c.Answered():
		case <-t.C:
		}
		t.Stop()
	}
	select {
	case <-c.Answered():
	default: // no final answer at all: the phone ends the call when it closes
		tc.Ended = time.Now().UTC()
		if ctx.Err() != nil {
			tc.Outcome, tc.HungUpBy, tc.Error = OutcomeCancelled, ByCaller, "run stopped"
			return nil
		}
		d.failed(tc, ByCaller, "setup timeout (no final response)")
		if dc.first {
			return fmt.Errorf("%w: no answer to the first INVITE to %s within %s", ErrUnreachable, d.target, cfg.SetupTimeout)
		}
		return nil
	}
	if err := c.Err(); err != nil {
		hangup(ctx, c)
		tc.Ended = time.Now().UTC()
		var se *phone.StatusError
		if errors.As(err, &se) {
			d.failed(tc, ByServer, failureReason(err))
			return nil
		}
		if ctx.Err() != nil {
			tc.Outcome, tc.HungUpBy, tc.Error = OutcomeCancelled, ByCaller, "run stopped"
			return nil
		}
		d.failed(tc, ByCaller, failureReason(err))
		if dc.first {
			return fmt.Errorf("%w: no answer to the first INVITE to %s within %s (%s)", ErrUnreachable, d.target, cfg.SetupTimeout, failureReason(err))
		}
		return nil
	}
	answered := time.Now()
	tc.Answered = answered.UTC()
	d.meter.setup(answered.Sub(invite))
	resolved()
	d.meter.addLive(c, true)
	defer d.meter.endLive(c)
	d.inCall(ctx, c, dc)
	if tc.Ended.IsZero() {
		tc.Ended = time.Now().UTC()
	}
	return nil
}

// failed records a failed call.
func (d *day) failed(tc *TruthCall, by, why string) {
	tc.Outcome, tc.HungUpBy, tc.Error = OutcomeFailed, by, why
	d.meter.failure()
}

// inCall is the answered citizen: menu, queue, conversation, rating.
func (d *day) inCall(ctx context.Context, c *phone.Call, dc *dayCall) {
	cfg := &d.cfg
	plan := dc.plan
	tc := &dc.tc
	bye := func(by string) { // the citizen hangs up
		tc.HungUpBy, tc.Ended = by, time.Now().UTC()
		hangup(ctx, c)
	}

	// The menu: press the digit once the menu prompt plays.
	pctx, pcancel := context.WithTimeout(ctx, promptTimeout)
	err := c.WaitAudio(pctx, promptLevel, promptFrames)
	pcancel()
	if err == nil {
		err = press(ctx, c, plan.digit, plan.info, cfg.SetupTimeout)
	}
	switch {
	case errors.Is(err, phone.ErrCallEnded):
		tc.Ended = time.Now().UTC()
		d.failed(tc, ByServer, "the server hung up in the menu: "+c.ByeReason())
		return
	case ctx.Err() != nil:
		tc.Outcome, tc.Error = OutcomeIVRHangup, "run stopped"
		bye(ByCaller)
		return
	case err != nil:
		d.failed(tc, ByCaller, "menu: "+err.Error())
		bye(ByCaller)
		return
	}
	chose := time.Now()
	if !plan.info {
		chose = chose.Add(-rfc4733EndLag)
	}

	// The queue: wait for an agent, or give up after the patience.
	d.meter.queued(1)
	var patience <-chan time.Time
	if plan.patience > 0 {
		t := time.NewTimer(plan.patience)
		defer t.Stop()
		patience = t.C
	}
	done := ctx.Done()
	var poll <-chan time.Time // while an agent is answering
	var force time.Time       // the run stopped: give up anyway after a moment
	why := ""
	giveUp := func() bool {
		ok, busy := dc.abandon(!force.IsZero() && time.Now().After(force))
		if busy {
			poll = time.After(tonePoll)
		}
		return ok
	}
wait:
	for {
		select {
		case <-dc.connected:
			break wait
		case <-c.Done():
			d.meter.queued(-1)
			tc.Ended = time.Now().UTC()
			d.failed(tc, ByServer, "the server hung up in the queue: "+c.ByeReason())
			return
		case <-patience:
			patience, why = nil, ""
		case <-done:
			done, why, force = nil, "run stopped", time.Now().Add(2*time.Second)
		case <-poll:
		}
		if giveUp() {
			d.meter.queued(-1)
			tc.Outcome, tc.AbandonAt, tc.Error = OutcomeAbandoned, Dur(time.Since(chose)), why
			bye(ByCaller)
			return
		}
	}
	d.meter.queued(-1)

	// The conversation.
	agent, at := dc.connection()
	tc.Outcome, tc.Agent, tc.Connected, tc.Wait = OutcomeAnswered, agent, at.UTC(), Dur(at.Sub(chose))
	d.meter.connected(at.Sub(chose))
	audioCheck(ctx, c, CitizenTone, AgentTone, &dc.audio, sideCitizen, cfg.ToneTimeout)
	remoteEnd := func() {
		now := time.Now()
		tc.Ended, tc.Talk, tc.HungUpBy = now.UTC(), Dur(now.Sub(at)), ByServer
		select {
		case <-dc.agentBye:
			tc.HungUpBy, tc.Talk = ByAgent, Dur(dc.byeAt().Sub(at))
		default:
		}
	}
	if !plan.agentHangs {
		t := time.NewTimer(time.Until(at.Add(plan.talk)))
		defer t.Stop()
		select {
		case <-c.Done():
			remoteEnd()
			return
		case <-ctx.Done():
			tc.Error = "run stopped"
		case <-t.C:
		}
		tc.Talk = Dur(time.Since(at))
		bye(ByCaller)
		return
	}
	select {
	case <-dc.agentBye:
	case <-c.Done():
		remoteEnd()
		return
	case <-ctx.Done():
		tc.Talk, tc.Error = Dur(time.Since(at)), "run stopped"
		bye(ByCaller)
		return
	}
	tc.HungUpBy, tc.Talk = ByAgent, Dur(dc.byeAt().Sub(at))
	d.rate(ctx, c, dc)
}

// rate: the agent hung up; the citizen rates once the rating prompt plays (or hangs up
// then, not rating). A queue without the rating ends the call instead.
func (d *day) rate(ctx context.Context, c *phone.Call, dc *dayCall) {
	tc := &dc.tc
	pctx, pcancel := context.WithTimeout(ctx, promptTimeout)
	err := c.WaitAudio(pctx, promptLevel, promptFrames)
	pcancel()
	switch {
	case errors.Is(err, phone.ErrCallEnded): // no rating: the server hung up
		tc.Ended = time.Now().UTC()
		return
	case err != nil:
		if ctx.Err() == nil {
			tc.Error = "no rating prompt within " + promptTimeout.String()
		}
		tc.Rating, tc.Ended = RatingNotRated, time.Now().UTC()
		hangup(ctx, c)
		return
	case !dc.plan.rates:
		tc.Rating, tc.Ended = RatingNotRated, time.Now().UTC()
		hangup(ctx, c)
		return
	}
	if err := press(ctx, c, dc.plan.ratingKey, dc.plan.info, d.cfg.SetupTimeout); err != nil {
		if errors.Is(err, phone.ErrCallEnded) {
			tc.Rating, tc.Ended, tc.Error = RatingNotRated, time.Now().UTC(), "the server hung up before the rating key"
			return
		}
		tc.Rating, tc.Error = RatingNotRated, "rating key: "+err.Error()
		tc.Ended = time.Now().UTC()
		hangup(ctx, c)
		return
	}
	tc.Rating = ratingValues[dc.plan.ratingKey]
	t := time.NewTimer(ratingEndTimeout)
	defer t.Stop()
	select {
	case <-c.Done(): // the thanks, then the server's BYE
	case <-t.C:
		tc.Error = "the server did not hang up after the rating"
		hangup(ctx, c)
	case <-ctx.Done():
		hangup(ctx, c)
	}
	tc.Ended = time.Now().UTC()
}

// press sends one key by SIP INFO or RFC 4733.
func press(ctx context.Context, c *phone.Call, key rune, info bool, timeout time.Duration) error {
	if info {
		ictx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		return c.SendInfo(ictx, key, "application/dtmf-relay")
	}
	return c.SendDTMF(string(key), digitDuration)
}

// hangup ends c (BYE, CANCEL) even when ctx has ended, bounded by teardownTimeout.
func hangup(ctx context.Context, c *phone.Call) {
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), teardownTimeout)
	defer cancel()
	c.Hangup(hctx)
}
