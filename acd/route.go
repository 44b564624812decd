package acd

import "time"

// This file holds the routing decisions and the caller's life in a queue.
//
// Routing keeps one invariant after every input: no routable agent (ready,
// not resting) is eligible for a waiting caller. Each input makes at most a
// few agents routable or callers waiting; settle routes exactly those, agents
// first. An agent that becomes routable takes the best caller it is eligible
// for (pickCaller); a caller who becomes waiting takes the agent its queue's
// strategy prefers (pickAgent). Because of the invariant, a newly waiting
// caller who finds an agent cannot jump an earlier eligible caller, and FIFO
// within a priority holds by construction.

// pickAgent chooses, by the queue's strategy, a routable agent eligible for
// c at its current escalation step; nil if none. It allocates nothing.
func (a *ACD) pickAgent(c *caller) *agent {
	q := c.q
	e := c.step
	qi := q.idx
	alts := q.steps[e].alts
	var best *agent
	switch q.strat {
	case LongestIdle, BestSkill:
		bestLvl := -1
		for i := range alts {
			al := &alts[i]
			s := al.index
			single := len(al.req) == 1 // then every agent listed here qualifies
			for lvl := MaxSkillLevel; lvl >= al.minLevel; lvl-- {
				for ag := a.lists[s][lvl].head; ag != nil; ag = ag.nodes[s].next {
					if !single && int(ag.minStep[qi]) > e {
						continue
					}
					if q.strat == BestSkill {
						if lvl > bestLvl || (lvl == bestLvl && earlier(ag, best)) {
							best, bestLvl = ag, lvl
						}
					} else if best == nil || earlier(ag, best) {
						best = ag
					}
					break // the rest of this list has been ready for less time
				}
				if q.strat == BestSkill && bestLvl >= lvl {
					break // lower levels of this alternative cannot win
				}
			}
		}
	default:
		a.epoch++
		n := 0
		bestD := 0
		for i := range alts {
			al := &alts[i]
			s := al.index
			single := len(al.req) == 1
			for lvl := al.minLevel; lvl <= MaxSkillLevel; lvl++ {
				for ag := a.lists[s][lvl].head; ag != nil; ag = ag.nodes[s].next {
					if !single && int(ag.minStep[qi]) > e {
						continue
					}
					switch q.strat {
					case FewestCalls:
						if best == nil || ag.callsToday < best.callsToday || (ag.callsToday == best.callsToday && earlier(ag, best)) {
							best = ag
						}
					case RoundRobin:
						d := ag.idx - q.rrLast - 1
						if d < 0 {
							d += len(a.agents)
						}
						if best == nil || d < bestD {
							best, bestD = ag, d
						}
					default: // Random: reservoir sampling, each agent once
						if ag.mark == a.epoch {
							continue
						}
						ag.mark = a.epoch
						n++
						if a.rng.IntN(n) == 0 {
							best = ag
						}
					}
				}
			}
		}
	}
	return best
}

// earlier: ready for longer (ties by configuration order).
func earlier(x, y *agent) bool {
	if y == nil {
		return true
	}
	if x.readyNs != y.readyNs {
		return x.readyNs < y.readyNs
	}
	return x.idx < y.idx
}

// allEligible collects every routable agent eligible for c (RingAll) into
// a.scratch.
func (a *ACD) allEligible(c *caller) []*agent {
	q := c.q
	e := c.step
	a.epoch++
	a.scratch = a.scratch[:0]
	for _, al := range q.steps[e].alts {
		s := al.index
		for lvl := al.minLevel; lvl <= MaxSkillLevel; lvl++ {
			for ag := a.lists[s][lvl].head; ag != nil; ag = ag.nodes[s].next {
				if int(ag.minStep[q.idx]) > e || ag.mark == a.epoch {
					continue
				}
				ag.mark = a.epoch
				a.scratch = append(a.scratch, ag)
			}
		}
	}
	return a.scratch
}

// pickCaller chooses the caller a newly routable agent should take: among
// the queues it serves and the escalation steps at which it is eligible, the
// head of each waiting heap, best by priority + queue weight, then original
// enqueue time. It allocates nothing.
func (a *ACD) pickCaller(ag *agent) *caller {
	var best *caller
	for _, sv := range ag.serves {
		hs := sv.q.heaps
		for e := sv.minStep; e < len(hs); e++ {
			if len(hs[e]) == 0 {
				continue
			}
			if c := hs[e][0]; best == nil || betterAcross(c, best) {
				best = c
			}
		}
	}
	return best
}

// settle restores the routing invariant after an input.
func (a *ACD) settle() {
	for {
		if n := len(a.emptyQ); n > 0 {
			q := a.emptyQ[n-1]
			a.emptyQ = a.emptyQ[:n-1]
			if q.cfg.LeaveWhenEmpty && q.staffed[len(q.staffed)-1] == 0 {
				for i := len(q.all) - 1; i >= 0; i-- {
					if i < len(q.all) && q.all[i].st == cWaiting {
						a.exitQueue(q.all[i], EvExitEmpty, ExitEmpty, "caller-empty", "")
					}
				}
			}
			continue
		}
		if a.dirtyAHead < len(a.dirtyA) {
			ag := a.dirtyA[a.dirtyAHead]
			a.dirtyA[a.dirtyAHead] = nil
			a.dirtyAHead++
			if a.dirtyAHead == len(a.dirtyA) {
				a.dirtyA, a.dirtyAHead = a.dirtyA[:0], 0
			}
			if ag.listed {
				if c := a.pickCaller(ag); c != nil {
					a.ring(c, ag)
				}
			}
			continue
		}
		if a.dirtyCHead < len(a.dirtyC) {
			c := a.dirtyC[a.dirtyCHead]
			a.dirtyC[a.dirtyCHead] = nil
			a.dirtyCHead++
			if a.dirtyCHead == len(a.dirtyC) {
				a.dirtyC, a.dirtyCHead = a.dirtyC[:0], 0
			}
			if c.st != cWaiting {
				continue
			}
			if c.q.strat == RingAll {
				ags := a.allEligible(c)
				if len(ags) > 0 {
					a.ring(c, ags...)
				}
			} else if ag := a.pickAgent(c); ag != nil {
				a.ring(c, ag)
			}
			continue
		}
		return
	}
}

// ring offers waiting caller c to the agents.
func (a *ACD) ring(c *caller, ags ...*agent) {
	q := c.q
	if a.hook != nil {
		for _, ag := range ags {
			a.hook(ag, c)
		}
	}
	q.heaps[c.step].remove(c)
	c.st = cRinging
	c.attempt++
	for _, ag := range ags {
		o := &offer{c: c, ag: ag, attempt: c.attempt, start: a.now, live: true}
		a.fire(ag, evReserve)
		ag.offer = o
		c.offers = append(c.offers, o)
		q.rrLast = ag.idx
		a.emitOffer(o.public())
		o.timer = a.clock.AfterFunc(q.cfg.RingTimeout, func() {
			a.lock()
			if o.live && !a.closed {
				o.timer = nil
				a.emitCancel(o.public())
				a.failOffer(o, NoAnswer)
			}
			a.unlock()
		})
	}
}

// endOffer takes o out of the books, without touching the agent's state.
func (a *ACD) endOffer(o *offer) {
	o.live = false
	if o.timer != nil {
		o.timer.Stop()
		o.timer = nil
	}
	c := o.c
	for i, x := range c.offers {
		if x == o {
			last := len(c.offers) - 1
			c.offers[i] = c.offers[last]
			c.offers[last] = nil
			c.offers = c.offers[:last]
			break
		}
	}
	if o.ag.offer == o {
		o.ag.offer = nil
	}
}

// failOffer: the agent did not take the call. The caller keeps their place
// and is routed again at once; the agent is paused (AutoPause), or rests
// for RetryDelay.
func (a *ACD) failOffer(o *offer, why RingFailure) {
	a.endOffer(o)
	c, ag, q := o.c, o.ag, o.c.q
	a.emitEvent(Event{Type: EvRingNoAnswer, Queue: q.cfg.Name, CallID: c.id, AgentID: ag.id,
		Data: EventData{Reason: why.String(), Ring: a.now.Sub(o.start)}})
	a.backToWaiting(c)
	switch {
	case ag.pending != pendNone:
		a.release(ag, false)
	case why == NoAnswer && q.autoPause:
		a.pause(ag, q.cfg.AutoPauseReason)
	case why == Unreachable && q.autoPause:
		a.pause(ag, Unreachable.String())
	default:
		a.rest(ag, q.cfg.RetryDelay)
	}
}

// cancelOffer withdraws o (call/ stops ringing); with release the agent goes
// back to ready keeping its longest-idle place (or its pending pause/logout).
func (a *ACD) cancelOffer(o *offer, reason string, release bool) {
	a.endOffer(o)
	a.emitCancel(o.public())
	a.emitEvent(Event{Type: EvRingCanceled, Queue: o.c.q.cfg.Name, CallID: o.c.id, AgentID: o.ag.id,
		Data: EventData{Reason: reason, Ring: a.now.Sub(o.start)}})
	if release {
		a.release(o.ag, true)
	}
}

// backToWaiting returns a ringing caller with no offers left to the queue.
func (a *ACD) backToWaiting(c *caller) {
	if c.st != cRinging || len(c.offers) > 0 {
		return
	}
	c.st = cWaiting
	c.q.heaps[c.step].push(c)
	a.dirtyC = append(a.dirtyC, c)
	a.callerDue(c)
}

// answer connects o, answered on agent leg leg; other offers of a RingAll
// round are cancelled.
func (a *ACD) answer(o *offer, leg string) {
	c, ag, q := o.c, o.ag, o.c.q
	a.endOffer(o)
	a.fire(ag, evConnect)
	ag.call = c
	ag.callsToday++
	c.st = cConnected
	c.agent = ag
	c.connected = a.now
	q.removeAll(c)
	a.stopCallerTimer(c)
	wait := a.now.Sub(c.joined)
	q.stats.answered++
	q.stats.waitAnswered += wait
	if wait <= q.cfg.ServiceLevel {
		q.stats.answeredWithin++
	}
	a.emitEvent(Event{Type: EvConnect, Queue: q.cfg.Name, CallID: c.id, AgentID: ag.id,
		Data: EventData{Wait: wait, Ring: a.now.Sub(o.start), Position: c.entryPos, Leg: leg}})
	for len(c.offers) > 0 {
		a.cancelOffer(c.offers[len(c.offers)-1], "answered-elsewhere", true)
	}
}

// join starts a queue visit for c (a new caller, an overflow or a transfer).
func (a *ACD) join(c *caller, q *queue, reason, from string) {
	c.q = q
	c.step = 0
	c.joined = a.now
	c.st = cWaiting
	c.expired, c.overTried = false, false
	c.prio = q.cfg.Priority.priorityFor(c.number, c.prio)
	q.heaps[0].push(c)
	q.addAll(c)
	c.entryPos = q.position(c)
	q.stats.offered++
	a.emitEvent(Event{Type: EvEnterQueue, Queue: q.cfg.Name, CallID: c.id,
		Data: EventData{Position: c.entryPos, Number: c.number, Priority: c.prio, Reason: reason, Target: from}})
	a.armCaller(c)
	a.dirtyC = append(a.dirtyC, c)
}

// refuses reports why q would not take a caller now (nil: it would).
func (q *queue) refuses() error {
	if q.cfg.MaxCallers > 0 && len(q.all) >= q.cfg.MaxCallers {
		return ErrQueueFull
	}
	if q.staffed[len(q.staffed)-1] == 0 && (!q.cfg.JoinEmpty || q.cfg.LeaveWhenEmpty) {
		return ErrNoAgents
	}
	return nil
}

// exitQueue ends c's visit without an agent; key is the exit digit (EvExitKey).
func (a *ACD) exitQueue(c *caller, typ EventType, left ExitReason, cancelReason, key string) {
	q := c.q
	pos := q.position(c)
	for len(c.offers) > 0 {
		a.cancelOffer(c.offers[len(c.offers)-1], cancelReason, true)
	}
	if c.st == cWaiting {
		q.heaps[c.step].remove(c)
	}
	q.removeAll(c)
	a.stopCallerTimer(c)
	c.st = cGone
	delete(a.callers, c.id)
	switch typ {
	case EvAbandon:
		q.stats.abandoned++
	case EvExitTimeout:
		q.stats.timedOut++
	case EvExitEmpty:
		q.stats.empty++
	case EvExitKey:
		q.stats.exitKey++
	}
	a.emitEvent(Event{Type: typ, Queue: q.cfg.Name, CallID: c.id,
		Data: EventData{Position: pos, Wait: a.now.Sub(c.joined), Key: key}})
	if left != 0 {
		a.emitLeft(c.id, left)
	}
}

// callerDue applies what is due for c now: MaxWait, escalation steps,
// overflow. A ringing caller only escalates; the rest waits for the ring to
// resolve (backToWaiting calls this again).
func (a *ACD) callerDue(c *caller) {
	q := c.q
	waited := a.now.Sub(c.joined)
	if q.cfg.MaxWait > 0 && waited >= q.cfg.MaxWait {
		if c.st == cRinging {
			c.expired = true
		} else {
			a.exitQueue(c, EvExitTimeout, ExitTimeout, "caller-timeout", "")
			return
		}
	}
	moved := false
	for c.step+1 < len(q.steps) && waited >= q.steps[c.step+1].after {
		if c.st == cWaiting {
			q.heaps[c.step].remove(c)
			q.heaps[c.step+1].push(c)
		}
		c.step++
		moved = true
		a.emitEvent(Event{Type: EvEscalate, Queue: q.cfg.Name, CallID: c.id, Data: EventData{Position: c.step, Wait: waited}})
	}
	if q.overflow != nil && !c.overTried && waited >= q.overAfter && c.st == cWaiting {
		t := q.overflow
		if err := t.refuses(); err != nil {
			c.overTried = true
			a.logf(levelDebug, "acd: overflow refused", "call_id", c.id, "queue", q.cfg.Name, "to", t.cfg.Name, "error", err)
		} else {
			q.heaps[c.step].remove(c)
			q.removeAll(c)
			q.stats.overflowed++
			a.emitEvent(Event{Type: EvOverflow, Queue: q.cfg.Name, CallID: c.id, Data: EventData{Target: t.cfg.Name, Wait: waited}})
			a.join(c, t, "overflow", q.cfg.Name)
			return
		}
	}
	if moved && c.st == cWaiting {
		a.dirtyC = append(a.dirtyC, c)
	}
	a.armCaller(c)
}

// armCaller sets c's timer for its next future deadline.
func (a *ACD) armCaller(c *caller) {
	a.stopCallerTimer(c)
	q := c.q
	waited := a.now.Sub(c.joined)
	next := time.Duration(-1)
	consider := func(d time.Duration) {
		if d > waited && (next < 0 || d < next) {
			next = d
		}
	}
	if c.step+1 < len(q.steps) {
		consider(q.steps[c.step+1].after)
	}
	if q.overflow != nil && !c.overTried {
		consider(q.overAfter)
	}
	if q.cfg.MaxWait > 0 && !c.expired {
		consider(q.cfg.MaxWait)
	}
	if next < 0 {
		return
	}
	g := c.tgen
	c.timer = a.clock.AfterFunc(next-waited, func() {
		a.lock()
		if c.tgen == g && c.st != cGone && c.st != cConnected && !a.closed {
			c.timer = nil
			a.callerDue(c)
		}
		a.unlock()
	})
}

func (a *ACD) stopCallerTimer(c *caller) {
	c.tgen++
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
}
