package call

import (
	"errors"
	"strconv"
	"time"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/ivr"
)

// visit is the caller's time in one queue (a transfer moves it to another queue without
// ending it: the IVR's Join is answered when the caller is done with queues).
type visit struct {
	name     string
	cfg      Queue
	entered  time.Time
	reply    chan error      // the IVR's Join, answered by leaveQueue
	playing  <-chan struct{} // the join prompt, an announcement or the exit prompt
	moh      bool            // music on hold is looping
	announce ivr.Timer       // next position/wait announcement; nil = none
	exit     error           // leaving without an agent once the exit prompt ends
	answered bool            // an agent took the caller in this queue (its wait is observed)
	offered  bool            // the caller heard the callback offer (virtual hold)
}

// join puts the caller in a queue (the IVR's "queue NAME").
func (c *Call) join(name string, reply chan error) {
	if c.cause != nil {
		reply <- c.cause
		return
	}
	q, ok := c.plan.Queues[name]
	if !ok {
		c.log.Error("unknown queue", "queue", name)
		reply <- ErrNoAgent
		return
	}
	now := c.m.cfg.Clock.Now()
	c.leftByKey, c.queueExit = false, nil
	if c.rec.Queue == "" { // the record keeps the first queue; Visits has them all
		c.rec.Queue, c.rec.EnqueueTime = name, now
	}
	c.visits = append(c.visits, name)
	c.q = &visit{name: name, cfg: q, entered: now, reply: reply}
	c.setStage(StageQueued)
	caller := acd.Caller{CallID: c.id, Number: c.rec.Caller, Queue: name, Enqueued: now}
	if c.task != nil {
		caller.Number, caller.Priority = c.task.req.Number, c.task.req.Priority
		if !c.task.req.Enqueued.IsZero() { // a lost node's caller called back keeps their place
			caller.Enqueued = c.task.req.Enqueued
		}
	}
	if _, err := c.m.dist.Enqueue(caller); err != nil {
		c.log.Info("queue refused the caller", "queue", name, "error", err)
		c.exitQueue(ErrNoAgent)
		c.snapshot()
		return
	}
	join := []string{q.JoinPrompt}
	if p := c.recordingAnnounce(name); p != "" { // 您的通话可能被录音, before any agent
		join = append([]string{p}, join...)
	}
	if c.callbackDue() {
		join, c.q.offered = append(join, PromptCallbackOffer), true
	}
	c.q.playing = c.play(join...)
	if c.q.playing == nil {
		c.startMOH()
	}
	c.armAnnouncement()
	c.snapshot() // last: the caller is queued and hears the prompt while the journal syncs
}

// play starts prompts by name on the caller's stream; nil if there is nothing to play.
func (c *Call) play(names ...string) <-chan struct{} {
	if c.s == nil { // a callback task: nobody listens yet
		return nil
	}
	ps := c.m.prompts(c.log, names)
	if len(ps) == 0 {
		return nil
	}
	return c.s.Play(ps...)
}

func (c *Call) startMOH() {
	if c.s == nil {
		return
	}
	if p, ok := c.m.prompt(c.q.cfg.MusicOnHold); ok {
		c.s.Loop(p)
		c.q.moh = true
	}
}

func (c *Call) armAnnouncement() {
	if c.q.announce != nil {
		c.q.announce.Stop()
		c.q.announce = nil
	}
	if f := c.q.cfg.AnnounceFrequency; f > 0 && c.s != nil {
		c.q.announce = c.m.cfg.Clock.NewTimer(f)
	}
}

// playDone: the join prompt or an announcement ended (music on hold resumes), or the exit
// prompt ended (the caller leaves).
func (c *Call) playDone() {
	v := c.q
	if c.vh != nil {
		c.vholdPlayed()
		return
	}
	v.playing = nil
	if v.exit != nil {
		c.leaveQueue(v.exit)
		return
	}
	c.startMOH()
}

// announce tells the caller their position and estimated wait, unless a prompt is playing.
func (c *Call) announce() {
	v := c.q
	if c.vh != nil {
		c.vholdTimeout()
		return
	}
	c.armAnnouncement()
	if v.playing != nil || v.exit != nil {
		return
	}
	if pos, ewt, ok := c.m.dist.Position(c.id); ok {
		names := c.positionPrompts(pos, ewt)
		if c.callbackDue() {
			names, v.offered = append(names, PromptCallbackOffer), true
		}
		if p := c.play(names...); p != nil {
			v.playing, v.moh = p, false
		}
	}
}

// queueDigit: the exit digit takes the caller out of the queue (to a menu, or to the end).
func (c *Call) queueDigit(d rune) {
	v := c.q
	if c.task == nil && c.callbackDigit(d) {
		return
	}
	if v.cfg.ExitDigit == "" || string(d) != v.cfg.ExitDigit || v.exit != nil {
		return
	}
	c.m.dist.ExitWithKey(c.id, string(d))
	c.leftByKey = true
	c.s.StopPlay()
	if v.cfg.ExitMenu != "" {
		c.leaveQueue(exitToMenu{v.cfg.ExitMenu})
		return
	}
	c.leaveQueue(ErrExitKey)
}

// left: the ACD took the caller out (maximum wait, no agents); the exit prompt plays first.
func (c *Call) left(reason acd.ExitReason) {
	if c.q == nil || c.agent != nil {
		return
	}
	err := ErrNoAgent
	if reason == acd.ExitTimeout {
		err = ErrMaxWait
	}
	c.exitQueue(err)
}

// exitQueue plays the queue's exit prompt, then leaves with err.
func (c *Call) exitQueue(err error) {
	v := c.q
	v.exit, c.queueExit = err, err
	if c.s != nil {
		c.s.StopPlay()
	}
	v.moh = false
	if v.playing = c.play(v.cfg.ExitPrompt); v.playing == nil {
		c.leaveQueue(err)
	}
}

// leaveQueue ends the queue visit and answers the IVR's Join with err.
func (c *Call) leaveQueue(err error) {
	v := c.q
	if v == nil {
		return
	}
	if v.announce != nil {
		v.announce.Stop()
	}
	if !v.answered { // an answered caller's wait was observed at connect
		c.m.metrics.queueLeave(v.name, c.m.cfg.Clock.Now().Sub(v.entered))
	}
	for _, r := range c.rings {
		r.cancel()
	}
	c.q = nil
	v.reply <- err
	if c.task != nil { // a callback task has no IVR to go back to
		c.stop(err)
		return
	}
	if c.cause == nil {
		c.setStage(StageIVR)
	}
}

// overflow: an escalation moved the waiting caller to another queue, keeping their place;
// they go on hearing the music they hear, and the visit is now the target queue's.
func (c *Call) overflow(target string) {
	v := c.q
	if v == nil || c.agent != nil || v.name == target {
		return
	}
	q, ok := c.plan.Queues[target]
	if !ok {
		return
	}
	now := c.m.cfg.Clock.Now()
	c.m.metrics.queueLeave(v.name, now.Sub(v.entered))
	v.name, v.cfg, v.entered = target, q, now
	c.visits = append(c.visits, target)
	c.publish()
	c.snapshot()
}

// offer rings an agent the ACD chose for this caller.
func (c *Call) offer(of acd.Offer) {
	if r := c.rings[of.AgentID]; r != nil && r.ctx.Err() == nil {
		return // already ringing this agent for this offer
	}
	if c.q == nil || c.q.exit != nil || c.agent != nil || c.cause != nil {
		// Withdrawn already (the caller left, or another agent answered): the ACD has
		// cancelled or will cancel this offer, and it needs no answer.
		return
	}
	c.rec.RingAttempts++
	c.startRing(of)
	if c.stage == StageQueued {
		c.setStage(StageRinging)
	}
}

// ringEnded takes a ring's outcome: the first agent to answer is bridged; a ring that
// failed is reported to the ACD, which offers the caller to the next agent.
func (c *Call) ringEnded(e evRing) {
	r := c.rings[e.offer.AgentID]
	if r == nil || r.offer != e.offer {
		// An older ring of this agent, cancelled and since replaced by a new offer (a phone
		// that is slow to take its CANCEL): the ACD is done with it.
		if e.leg != nil {
			c.spawn(func() { discard(e.leg, e.stream, "answered elsewhere") })
		}
		return
	}
	delete(c.rings, e.offer.AgentID)
	defer func() {
		if c.stage == StageRinging && len(c.rings) == 0 {
			c.setStage(StageQueued)
		}
	}()
	log := c.log.With("agent", e.offer.AgentID)
	if e.err != nil {
		switch {
		case errors.Is(e.err, ErrRingCancelled):
		case errors.Is(e.err, ErrLocal):
			log.Error("ringing the agent failed here", "error", e.err)
			c.m.dist.RingFailed(c.id, e.offer.AgentID, acd.Rejected) // our fault: rest the agent, do not pause
		default:
			log.Info("agent did not take the call", "error", e.err)
			c.m.dist.RingFailed(c.id, e.offer.AgentID, ringFailure(e.err))
		}
		return
	}
	if c.q == nil || c.agent != nil || c.cause != nil || !c.m.dist.RingAnsweredLeg(c.id, e.offer.AgentID, e.leg.SIPCallID()) {
		// Stale: the caller left, or another agent answered first.
		log.Info("agent answered after the offer was withdrawn: hanging up", "error", errStale)
		c.spawn(func() { discard(e.leg, e.stream, "answered elsewhere") })
		return
	}
	if c.task != nil && c.leg == nil {
		c.taskAgent(e)
		return
	}
	c.connect(e)
}

// positionPrompts builds the position and estimated-wait announcement.
func (c *Call) positionPrompts(pos int, ewt time.Duration) []string {
	var names []string
	lang := c.plan.Language
	ahead := pos - 1 // Mandarin says how many are ahead; English says the position
	n := ahead
	if lang != "zh" {
		n = pos
	}
	if n > 0 {
		names = append(names, "position_pre")
		names = append(names, numberPrompts(lang, n)...)
		names = append(names, "position_post")
	}
	names = append(names, "wait_pre")
	if mins := int((ewt + 30*time.Second) / time.Minute); mins < 1 {
		names = append(names, "less_than_one_minute")
	} else {
		names = append(names, numberPrompts(lang, mins)...)
		names = append(names, "minutes")
	}
	return names
}

// numberPrompts reads n (capped at 999) with the digit, ten and hundred prompts: Chinese
// reading for zh (二十三, 一百零五), digit by digit otherwise.
func numberPrompts(lang string, n int) []string {
	n = min(max(n, 0), 999)
	d := func(i int) string { return "digit_" + strconv.Itoa(i) }
	if lang != "zh" {
		var out []string
		for _, ch := range strconv.Itoa(n) {
			out = append(out, d(int(ch-'0')))
		}
		return out
	}
	h, t, u := n/100, n/10%10, n%10
	var out []string
	if h > 0 {
		out = append(out, d(h), "hundred")
		if t == 0 && u != 0 {
			return append(out, d(0), d(u))
		}
	}
	if t > 0 {
		if !(t == 1 && h == 0) { // 十五, but 一百一十五
			out = append(out, d(t))
		}
		out = append(out, "ten")
	}
	if u > 0 || n == 0 {
		out = append(out, d(u))
	}
	return out
}
