package call

import (
	"context"
	"errors"
	"time"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/cdr"
	"github.com/hotline12345/hotline/sip"
)

// agentLeg is the agent bridged with the caller: their leg, stream and the bridge.
type agentLeg struct {
	id     string
	queue  string // the queue the ACD offered the caller from (after an overflow, not the one joined)
	leg    AgentLeg
	s      Stream
	cancel context.CancelFunc // ends the agent's stream
	bridge Bridge
	since  time.Time // start of the current talk or hold period
	held   bool
}

// connect bridges the caller with the agent who answered.
func (c *Call) connect(e evRing) {
	v := c.q
	c.s.StopPlay()
	v.playing, v.moh = nil, false
	c.vh = nil // an agent came while the caller was booking a callback: no need for one
	a, now := c.takeAgent(e)
	a.bridge = c.m.media.Bridge(c.s, a.s)
	a.bridge.Start()
	c.recordBridge(a)
	c.watchAgentKeys(a)
	c.setStage(StageTalking)
	c.snapshot()
	c.log.Info("caller connected to agent", "agent", a.id, "queue", a.queue, "wait", now.Sub(v.entered).Round(time.Millisecond))
}

// takeAgent makes the answered agent leg the call's agent: their stream starts, the queue
// visit is answered (announcements stop, the wait is observed), the record and visits name
// them. The caller is bridged to them (connect) or, for a callback task, not yet (taskAgent).
func (c *Call) takeAgent(e evRing) (*agentLeg, time.Time) {
	now := c.m.cfg.Clock.Now()
	v := c.q
	ctx, cancel := context.WithCancel(context.WithoutCancel(c.ctx))
	a := &agentLeg{id: e.offer.AgentID, queue: e.offer.Queue, leg: e.leg, s: e.stream, cancel: cancel, since: now}
	setRemote(a.s, a.leg.Media(), a.leg.SignalAddr())
	a.s.Start(ctx)
	if v.announce != nil {
		v.announce.Stop()
		v.announce = nil
	}
	c.agent = a
	if c.rec.Agent == "" { // the record keeps the first agent; Visits has them all
		c.rec.Agent, c.rec.Connect = a.id, now
	}
	if a.queue != "" && a.queue != v.name { // overflowed into another queue
		c.visits = append(c.visits, a.queue)
	}
	c.visits[len(c.visits)-1] += "/" + a.id
	c.m.metrics.queueLeave(a.queue, now.Sub(v.entered))
	v.answered = true
	return a, now
}

// account adds the period since a.since to talk or hold time.
func (c *Call) account(a *agentLeg, now time.Time) {
	if a.held {
		c.rec.Hold += now.Sub(a.since)
	} else {
		c.rec.Talk += now.Sub(a.since)
	}
	a.since = now
}

// endTalk ends the bridge: the ACD starts the agent's wrap-up; the agent leg is hung up
// (bye) and released off the loop.
func (c *Call) endTalk(side, cause string, bye bool) {
	c.dropSupervisor("agent left", true) // a supervisor stays only as long as the agent
	a := c.agent
	now := c.m.cfg.Clock.Now()
	if a.held {
		c.m.agentEvent(now, c.id, a.queue, a.id, cdr.EventUnhold, cdr.FormatSeconds(now.Sub(a.since)))
	}
	c.account(a, now)
	if a.bridge != nil { // nil: a callback task's agent before the citizen answered
		a.bridge.Stop()
	}
	c.agent = nil
	c.m.dist.CallEnded(c.id, a.id, side)
	c.spawn(func() { c.release(a, cause, bye, nil) })
}

// release hangs up (if bye) and frees an agent leg that left the call; a transferred leg
// first gets the transfer's final NOTIFY. It runs off the loop, so a phone that stops
// answering delays nobody.
func (c *Call) release(a *agentLeg, cause string, bye bool, refer *sip.Refer) {
	if refer != nil {
		ctx, cancel := context.WithTimeout(context.Background(), notifyTimeout)
		if err := refer.Notify(ctx, 200, "OK"); err != nil {
			c.log.Info("transfer NOTIFY failed", "agent", a.id, "error", err)
		}
		cancel()
	}
	if bye {
		ctx, cancel := context.WithTimeout(context.Background(), byeTimeout)
		if err := a.leg.Hangup(ctx, cause); err != nil {
			c.log.Debug("agent BYE failed", "agent", a.id, "error", err)
		}
		cancel()
	}
	a.leg.Release()
	a.cancel()
	a.s.Close()
}

// How long a leaving agent leg's final NOTIFY and BYE may take.
const (
	notifyTimeout = 5 * time.Second
	byeTimeout    = 10 * time.Second
)

// agentGone: the agent hung up, or their RTP stopped (ErrAgentLost: the agent is paused); after the post-call rating (if the
// queue has it) the caller's queue visit is over.
func (c *Call) agentGone(cause error, byeCause string) {
	if byeCause == "" && c.dropOut("") { // a three-way call: citizen and department go on
		return
	}
	a := c.agent
	if errors.Is(cause, ErrAgentLost) { // before endTalk: its CallEnded is then stale
		c.m.dist.AgentLost(c.id, a.id)
		c.log.Warn("agent's phone lost mid-call: the agent is paused", "agent", a.id, "reason", acd.ReasonAgentLost)
	}
	c.endTalk(sip.SideAgent, byeCause, byeCause != "")
	c.agentEnd = true
	if c.s == nil { // a callback task's agent left before the citizen answered
		c.stop(cause)
		return
	}
	if byeCause == "" && c.startRating(a.id, a.queue) { // the agent's BYE: the caller rates them
		return
	}
	c.leaveQueue(cause)
}

// agentMedia follows the agent's re-INVITEs: hold plays music on hold to the caller.
func (c *Call) agentMedia(md sip.Media) {
	a := c.agent
	setRemote(a.s, md, a.leg.SignalAddr())
	if a.bridge == nil { // a callback task's agent before the citizen answered: nothing to hold
		return
	}
	now := c.m.cfg.Clock.Now()
	switch {
	case md.OnHold() && !a.held:
		c.account(a, now)
		a.held = true
		a.bridge.Stop()
		a.s.SetInactivityTimeout(-1)
		if p, ok := c.m.prompt(c.plan.Queues[a.queue].MusicOnHold); ok {
			c.s.Loop(p)
		}
		c.m.agentEvent(now, c.id, a.queue, a.id, cdr.EventHold, "")
		c.log.Info("agent put the caller on hold", "agent", a.id)
	case !md.OnHold() && a.held:
		held := now.Sub(a.since)
		c.account(a, now)
		a.held = false
		c.s.StopPlay()
		a.s.SetInactivityTimeout(c.m.cfg.RTPTimeout)
		a.bridge.Start()
		c.m.agentEvent(now, c.id, a.queue, a.id, cdr.EventUnhold, cdr.FormatSeconds(held))
		c.log.Info("agent took the caller off hold", "agent", a.id)
	}
}

// transfer is the agent's blind transfer (REFER) to a queue. The caller hears music on
// hold at once and waits in the target queue; the 202, the final NOTIFY and the BYE to the
// transferring phone leave off the loop, so a phone that stops answering holds up nobody.
func (c *Call) transfer(r *sip.Refer) {
	a := c.agent
	if a.bridge == nil { // a callback task before the citizen answered: nobody to transfer
		r.Reject(403)
		return
	}
	if c.conf != nil && (c.conf.dept != nil || c.conf.deptDial != nil) {
		r.Reject(403) // a three-way call: the agent drops out instead
		return
	}
	target := r.Target.User
	q, ok := c.plan.Queues[target]
	if !ok && c.referEntry(r) { // a directory entry (directory.go)
		return
	}
	if !ok {
		c.log.Info("transfer refused: unknown target", "agent", a.id, "target", r.Target.String())
		r.Reject(404)
		return
	}
	c.dropSupervisor("agent transferred", true) // the agent's bridge relays again, then stops
	now := c.m.cfg.Clock.Now()
	var heldFor time.Duration // softphones often hold the caller before they transfer
	if a.held {
		heldFor = now.Sub(a.since)
	}
	c.account(a, now)
	a.bridge.Stop()
	if _, err := c.m.dist.Transferred(c.id, a.id, target); err != nil {
		c.log.Warn("transfer failed", "agent", a.id, "target", target, "error", err)
		r.Reject(503)
		if !a.held { // a held caller keeps hearing music on hold
			a.bridge.Start()
		}
		return
	}
	if a.held {
		c.m.agentEvent(now, c.id, a.queue, a.id, cdr.EventUnhold, cdr.FormatSeconds(heldFor))
	}
	r.Accept() // returns once the 202 has left: no NOTIFY can overtake it
	c.rec.Transfers++
	c.agent = nil
	c.spawn(func() { c.release(a, "transferred", true, r) })
	c.log.Info("agent transferred the caller", "agent", a.id, "queue", target)

	v := c.q
	v.name, v.cfg, v.entered, v.exit, v.answered = target, q, now, nil, false
	c.visits = append(c.visits, target)
	c.setStage(StageQueued)
	c.startMOH()
	c.armAnnouncement()
	c.snapshot()
}
