package loadtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hotline12345/hotline/cdr"
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
	transfer   bool          // the first agent transfers the call (DayConfig.TransferShare)
	patience2  time.Duration // the patience in the transfer's queue; 0: waits as long as it takes
}

// transferPart: the first agent of a transferred call transfers after talk/transferPart,
// and the second talks the rest, so a transferred call talks as long as the plan says.
const transferPart = 3

// referAfter is when, after their answer, the first agent sends the REFER.
func (p *citizenPlan) referAfter() time.Duration { return p.talk / transferPart }

// turnTalk is how long the conversation with the agent of the turn (0: the first, 1: the
// one after the transfer) lasts from their answer, unless the agent transfers first: the
// whole talk (also when the REFER was refused), then the rest after the transfer.
func (p *citizenPlan) turnTalk(turn int) time.Duration {
	if turn == 0 {
		return p.talk
	}
	return p.talk - p.referAfter()
}

type callState uint8

const (
	stWaiting   callState = iota // no agent yet, or the first agent's transfer is under way
	stCommitted                  // an agent's phone is answering: the citizen does not give up now
	stConnected
	stAbandoned
)

// dayCall is one citizen's call: the plan, the truth its goroutine writes, and what the
// citizen and the agents who answer share. The agent side decides to answer under mu
// (commit) and the citizen to give up under mu (abandon), so the ground truth cannot call
// abandoned a call the server saw answered, or the reverse. A transfer (plan.transfer)
// takes the call from stConnected back to stWaiting (referring) for the next agent's
// commit: its answer is the second turn (connected2, audio2).
type dayCall struct {
	plan      citizenPlan
	first     bool
	tc        TruthCall     // written by the citizen's goroutine; read once every goroutine ended
	setup     chan struct{} // closed by resolveSetup (in a bridge run, by its citizen)
	setupOnce sync.Once

	mu          sync.Mutex
	st          callState
	turns       int    // agents connected so far
	agent       string // the first agent, as the server's record keeps it
	connectedAt time.Time
	agentByeAt  time.Time
	connected   chan struct{} // closed with st = stConnected, the first agent
	agentBye    chan struct{} // closed just before the (last) agent sends BYE
	audio       audioPair     // the first agent's conversation

	referAt      time.Time     // the first agent sent the REFER that the server accepted
	referErr     string        // why the server refused it
	transferred  chan struct{} // closed once the server accepted it (202)
	agent2       string        // the agent who answered after the transfer
	connected2At time.Time
	connected2   chan struct{} // closed with the second agent's answer
	audio2       audioPair     // the second agent's conversation
}

func newDayCall(plan citizenPlan, first bool) *dayCall {
	return &dayCall{
		plan: plan, first: first, setup: make(chan struct{}),
		connected: make(chan struct{}), agentBye: make(chan struct{}),
		audio:       audioPair{done: make(chan struct{})},
		transferred: make(chan struct{}), connected2: make(chan struct{}),
		audio2: audioPair{done: make(chan struct{})},
	}
}

// resolveSetup closes setup: the INVITE was answered, or the citizen's call is over (after
// the run was stopped for the error it returned, so that arrivals see the stop).
func (dc *dayCall) resolveSetup() { dc.setupOnce.Do(func() { close(dc.setup) }) }

// commit: an agent is about to answer; false if the citizen has given up (or is talking
// with an agent already).
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

// connect: the agent's phone answered (200 OK sent at at, ACK received). It returns the
// agent's turn: 0 for the first agent, 1 for the one after a transfer, -1 when the call
// was not committed to them (the citizen gave up).
func (dc *dayCall) connect(agent string, at time.Time) int {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	if dc.st != stCommitted || dc.turns > 1 {
		return -1
	}
	dc.st = stConnected
	turn := dc.turns
	dc.turns++
	if turn == 0 {
		dc.agent, dc.connectedAt = agent, at
		close(dc.connected)
	} else {
		dc.agent2, dc.connected2At = agent, at
		close(dc.connected2)
	}
	return turn
}

// referring: the first agent is about to send the REFER; false if the conversation is
// over. The call waits for the next agent from now on: the server may offer it to them
// as soon as it accepted the REFER, before the 202 reaches the agent.
func (dc *dayCall) referring() bool {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	if dc.st != stConnected || dc.turns != 1 {
		return false
	}
	dc.st = stWaiting
	return true
}

// referred: the REFER sent at at was accepted (the citizen is back in a queue), or not
// (refused: why, if it counts; the conversation goes on).
func (dc *dayCall) referred(at time.Time, accepted bool, refused string) {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	if !accepted {
		if dc.st == stWaiting {
			dc.st = stConnected
		}
		dc.referErr = refused
		return
	}
	dc.referAt = at
	close(dc.transferred)
}

// audioOf is the audio pair of an agent's turn.
func (dc *dayCall) audioOf(turn int) *audioPair {
	if turn == 1 {
		return &dc.audio2
	}
	return &dc.audio
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

func (dc *dayCall) connection2() (agent string, at time.Time) {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	return dc.agent2, dc.connected2At
}

func (dc *dayCall) referTime() time.Time {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	return dc.referAt
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
		dc.mu.Lock()
		second := dc.turns > 1
		dc.mu.Unlock()
		if second { // both conversations of a transferred call
			ok = ok && dc.audio2.both()
		}
		tc.AudioOK = &ok
	}
	dc.mu.Lock()
	if dc.referErr != "" && tc.Error == "" {
		tc.Error = dc.referErr
	}
	dc.mu.Unlock()
	return tc
}

// citizen runs one citizen's call to its end and writes its truth. It returns an error
// only for what must stop the whole run (the first INVITE unanswered, no local port); the
// caller stops the run, then resolves the setup.
func (d *day) citizen(ctx context.Context, p *phone.Phone, dc *dayCall) error {
	cfg := &d.cfg
	plan := dc.plan
	tc := &dc.tc
	tc.Caller, tc.Digits, tc.Queue, tc.DTMF = plan.caller, string(plan.digit), cfg.Queues[string(plan.digit)], "rfc4733"
	if plan.info {
		tc.DTMF = "info"
	}

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
	dc.resolveSetup()
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

	// The queue, then the conversation; a transfer takes the citizen back to a queue and a
	// second conversation. The truth keeps the first agent, connection and wait, as the
	// server's record does, and the talk of both agents.
	if !d.queue(ctx, c, dc, dc.connected, chose, plan.patience, false) {
		return
	}
	agent, at := dc.connection()
	tc.Outcome, tc.Agent, tc.Connected, tc.Wait = OutcomeAnswered, agent, at.UTC(), Dur(at.Sub(chose))
	tc.Visits = tc.Queue + "/" + agent
	d.meter.connected(at.Sub(chose))
	audioCheck(ctx, c, CitizenTone, AgentTone, &dc.audio, sideCitizen, cfg.ToneTimeout)
	var talked time.Duration // by the agents before this one
	talkTo := func(end time.Time) { tc.Talk = Dur(talked + end.Sub(at)) }
	var transferred <-chan struct{}
	if plan.transfer {
		transferred = dc.transferred
	}
	for turn := 0; ; turn++ {
		remoteEnd := func() {
			now := time.Now()
			tc.Ended, tc.HungUpBy = now.UTC(), ByServer
			talkTo(now)
			select {
			case <-dc.agentBye:
				tc.HungUpBy = ByAgent
				talkTo(dc.byeAt())
			default:
			}
		}
		var end <-chan time.Time // the citizen hangs up
		if !plan.agentHangs {
			t := time.NewTimer(time.Until(at.Add(plan.turnTalk(turn))))
			defer t.Stop()
			end = t.C
		}
		select {
		case <-transferred: // the first agent's REFER was accepted: back to a queue
			refer := dc.referTime()
			talked += refer.Sub(at)
			tc.Talk, tc.Transfers = Dur(talked), 1
			tc.Visits += cdr.VisitSeparator + cfg.TransferQueue
			transferred = nil
			if !d.queue(ctx, c, dc, dc.connected2, refer, plan.patience2, true) {
				return
			}
			var agent2 string
			agent2, at = dc.connection2()
			tc.Visits += "/" + agent2
			d.meter.connected(at.Sub(refer))
			audioCheck(ctx, c, CitizenTone, AgentTone, &dc.audio2, sideCitizen, cfg.ToneTimeout)
			continue
		case <-dc.agentBye:
			tc.HungUpBy = ByAgent
			talkTo(dc.byeAt())
			d.rate(ctx, c, dc)
			return
		case <-c.Done():
			remoteEnd()
			return
		case <-ctx.Done():
			tc.Error = "run stopped"
		case <-end:
		}
		talkTo(time.Now())
		bye(ByCaller)
		return
	}
}

// queue waits in a queue (entered at since) for an agent's answer (connected closed), or
// gives up after patience (0: never); false when the call ended there, its truth written.
// After a transfer the server keeps the call answered by the first agent, whoever ends it
// now.
func (d *day) queue(ctx context.Context, c *phone.Call, dc *dayCall, connected <-chan struct{}, since time.Time, patience time.Duration, transferred bool) bool {
	tc := &dc.tc
	d.meter.queued(1)
	defer d.meter.queued(-1)
	var giveUpAt <-chan time.Time
	if patience > 0 {
		t := time.NewTimer(patience)
		defer t.Stop()
		giveUpAt = t.C
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
	for {
		select {
		case <-connected:
			return true
		case <-c.Done():
			tc.Ended = time.Now().UTC()
			if transferred {
				tc.HungUpBy, tc.Error = ByServer, "the server hung up in the queue after the transfer: "+c.ByeReason()
				d.meter.failure()
				return false
			}
			d.failed(tc, ByServer, "the server hung up in the queue: "+c.ByeReason())
			return false
		case <-giveUpAt:
			giveUpAt, why = nil, ""
		case <-done:
			done, why, force = nil, "run stopped", time.Now().Add(2*time.Second)
		case <-poll:
		}
		if giveUp() {
			if !transferred {
				tc.Outcome, tc.AbandonAt, tc.Visits = OutcomeAbandoned, Dur(time.Since(since)), tc.Queue
			}
			tc.Error = why
			tc.HungUpBy, tc.Ended = ByCaller, time.Now().UTC()
			hangup(ctx, c)
			return false
		}
	}
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
