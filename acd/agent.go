package acd

import (
	"context"
	"time"

	"github.com/looplab/fsm"
)

// AgentState is an agent's state as shown to operators.
type AgentState string

// Agent states.
const (
	AgentLoggedOut AgentState = "logged_out"
	AgentReady     AgentState = "ready"
	AgentReserved  AgentState = "reserved" // ringing for a caller
	AgentOnCall    AgentState = "on_call"
	AgentWrapUp    AgentState = "wrap_up"
	AgentPaused    AgentState = "paused"
)

// The agent state machine (looplab/fsm, no callbacks: the ACD does its
// bookkeeping after each Event, under its own lock, and never calls Event
// re-entrantly). The machine is the agent's state: nothing else stores it
// (agent.state reads it).
//
//	logged_out --login--> ready
//	ready, paused, wrap_up, reserved --ready--> ready        (unpause, wrap-up end, offer cancelled)
//	ready, paused, wrap_up, reserved --pause--> paused       (pause, auto-pause after a no-answer)
//	ready --reserve--> reserved --connect--> on_call --complete--> wrap_up
//	any but logged_out --logout--> logged_out
const (
	evLogin    = "login"
	evReady    = "ready"
	evPause    = "pause"
	evReserve  = "reserve"
	evConnect  = "connect"
	evComplete = "complete"
	evLogout   = "logout"
)

var agentEvents = fsm.Events{
	{Name: evLogin, Src: []string{string(AgentLoggedOut)}, Dst: string(AgentReady)},
	{Name: evReady, Src: []string{string(AgentPaused), string(AgentWrapUp), string(AgentReserved)}, Dst: string(AgentReady)},
	{Name: evPause, Src: []string{string(AgentReady), string(AgentWrapUp), string(AgentReserved)}, Dst: string(AgentPaused)},
	{Name: evReserve, Src: []string{string(AgentReady)}, Dst: string(AgentReserved)},
	{Name: evConnect, Src: []string{string(AgentReserved)}, Dst: string(AgentOnCall)},
	{Name: evComplete, Src: []string{string(AgentOnCall)}, Dst: string(AgentWrapUp)},
	{Name: evLogout, Src: []string{string(AgentReady), string(AgentPaused), string(AgentWrapUp), string(AgentReserved), string(AgentOnCall)}, Dst: string(AgentLoggedOut)},
}

type pendingOp uint8

const (
	pendNone pendingOp = iota
	pendPause
	pendLogout
)

type node struct{ prev, next *agent }

type serve struct {
	q       *queue
	minStep int
}

const noStep = 255

type agent struct {
	idx     int
	id      string
	name    string
	wrapUp  *time.Duration
	level   []uint8 // per skill index; 0: lacks the skill
	has     []int   // skill indexes with level > 0
	nodes   []node  // per skill index: links in the ready list of (skill, level)
	minStep []uint8 // per queue: first escalation step at which the agent is eligible; noStep: never
	serves  []serve // the queues with minStep != noStep

	fsm     *fsm.FSM // the agent's state (AgentState names)
	reason  string
	since   time.Time
	readyNs int64 // when the agent last became ready (longest-idle order)
	listed  bool  // in the ready lists: ready and not resting
	resting bool  // ready, but out of routing until the timer (RetryDelay)

	pending       pendingOp
	pendingReason string

	offer *offer  // reserved
	call  *caller // on_call

	wrapQ     *queue // the queue, call, end and talk time of the call wrapped up
	wrapCall  string
	wrapStart time.Time
	wrapTalk  time.Duration
	loginAt   time.Time // the last LOGIN

	timer Timer // wrap-up end or rest end
	tgen  uint64

	callsToday int
	talkToday  time.Duration
	mark       uint64
}

// state is the agent's state: the current state of its machine.
func (ag *agent) state() AgentState { return AgentState(ag.fsm.Current()) }

// staffedIn: an agent in state st counts as staffing its queues.
func staffedIn(st AgentState) bool { return st != AgentLoggedOut && st != AgentPaused }

// fire moves ag through its state machine and keeps the ACD's books: the
// staffing counts of the queues it serves and its place in the ready lists.
// A refusal is a bug (every caller checks the state first, and routing only
// offers listed agents, who are ready): it is logged and changes nothing.
func (a *ACD) fire(ag *agent, ev string) {
	from := ag.state()
	if err := ag.fsm.Event(context.Background(), ev); err != nil {
		a.logf(levelError, "acd: agent state machine refused an event", "agent", ag.id, "state", string(from), "event", ev, "error", err)
		return
	}
	dst := ag.state()
	ag.since = a.now
	if was, now := staffedIn(from), staffedIn(dst); now != was {
		d := 1
		if !now {
			d = -1
		}
		for _, sv := range ag.serves {
			for e := sv.minStep; e < len(sv.q.staffed); e++ {
				sv.q.staffed[e] += d
			}
			if !now && sv.q.staffed[len(sv.q.staffed)-1] == 0 && sv.q.cfg.LeaveWhenEmpty {
				a.emptyQ = append(a.emptyQ, sv.q)
			}
		}
	}
	if dst != AgentReady {
		a.unlist(ag)
		ag.resting = false
	}
	if dst != AgentWrapUp && dst != AgentReady {
		a.stopAgentTimer(ag)
	}
}

// becomeReady makes ag ready and routable. keepIdle keeps its place in the
// longest-idle order (an offer that was cancelled is not the agent's doing).
func (a *ACD) becomeReady(ag *agent, keepIdle bool) {
	a.stopAgentTimer(ag)
	if ag.state() != AgentReady {
		a.fire(ag, evReady)
	}
	ag.resting = false
	ag.reason = ""
	if !keepIdle {
		ag.readyNs = a.now.UnixNano()
	}
	a.list(ag)
	a.dirtyA = append(a.dirtyA, ag)
}

// release frees ag after an offer or a wrap-up: a pending logout or pause
// applies now, otherwise the agent is ready.
func (a *ACD) release(ag *agent, keepIdle bool) {
	switch ag.pending {
	case pendLogout:
		a.logout(ag, ag.pendingReason)
	case pendPause:
		a.pause(ag, ag.pendingReason)
	default:
		a.becomeReady(ag, keepIdle)
	}
}

func (a *ACD) pause(ag *agent, reason string) {
	ag.pending, ag.pendingReason = pendNone, ""
	if ag.state() == AgentPaused && ag.reason == reason {
		return
	}
	if ag.state() != AgentPaused {
		a.fire(ag, evPause)
	}
	ag.reason = reason
	a.emitEvent(Event{Type: EvPause, AgentID: ag.id, Data: EventData{Reason: reason}})
}

func (a *ACD) logout(ag *agent, reason string) {
	ag.pending, ag.pendingReason = pendNone, ""
	if ag.state() == AgentLoggedOut {
		return
	}
	a.fire(ag, evLogout)
	ag.reason = reason
	a.emitEvent(Event{Type: EvLogout, AgentID: ag.id, Data: EventData{Reason: reason, LoggedIn: a.now.Sub(ag.loginAt)}})
}

// rest keeps ag ready but out of routing for d.
func (a *ACD) rest(ag *agent, d time.Duration) {
	if ag.state() != AgentReady {
		a.fire(ag, evReady)
	}
	a.unlist(ag)
	ag.resting = true
	ag.readyNs = a.now.UnixNano()
	a.startAgentTimer(ag, d, a.restEnd)
}

func (a *ACD) restEnd(ag *agent) {
	if ag.state() == AgentReady && ag.resting {
		a.becomeReady(ag, true)
	}
}

// startWrapUp moves ag from on_call to wrap_up after call callID of queue q
// ended now, counting the handle time into q. Every call that ends gets one
// WRAPUPEND: at once when there is no wrap-up (WrapUp 0) or a pending logout
// applies (WrapUp 0, Reason "logout"), else when the wrap-up ends.
func (a *ACD) startWrapUp(ag *agent, q *queue, callID string, talk time.Duration) {
	if ag.pending == pendLogout {
		q.sampleHandle(talk)
		a.emitEvent(Event{Type: EvWrapUpEnd, Queue: q.cfg.Name, CallID: callID, AgentID: ag.id, Data: EventData{Reason: "logout"}})
		a.logout(ag, ag.pendingReason)
		return
	}
	a.fire(ag, evComplete)
	ag.wrapQ, ag.wrapCall, ag.wrapStart, ag.wrapTalk = q, callID, a.now, talk
	d := q.wrapUp
	if ag.wrapUp != nil {
		d = *ag.wrapUp
	}
	if d <= 0 {
		a.endWrapUp(ag, "")
		return
	}
	a.startAgentTimer(ag, d, func(ag *agent) { a.endWrapUp(ag, "") })
}

// endWrapUp ends ag's wrap-up; why is "" (timer), "ready", "paused" or
// "logout". Without why, the agent is released (pending pause/logout apply).
func (a *ACD) endWrapUp(ag *agent, why string) {
	if ag.state() != AgentWrapUp {
		return
	}
	a.stopAgentTimer(ag)
	wrap := a.now.Sub(ag.wrapStart)
	e := Event{Type: EvWrapUpEnd, CallID: ag.wrapCall, AgentID: ag.id, Data: EventData{Reason: why, WrapUp: wrap}}
	if q := ag.wrapQ; q != nil {
		q.sampleHandle(ag.wrapTalk + wrap)
		e.Queue = q.cfg.Name
	}
	ag.wrapQ, ag.wrapCall = nil, ""
	a.emitEvent(e)
	if why == "" {
		a.release(ag, false)
	}
}

func (a *ACD) startAgentTimer(ag *agent, d time.Duration, f func(*agent)) {
	a.stopAgentTimer(ag)
	g := ag.tgen
	ag.timer = a.clock.AfterFunc(d, func() {
		a.lock()
		if ag.tgen == g && !a.closed {
			ag.timer = nil
			f(ag)
		}
		a.unlock()
	})
}

func (a *ACD) stopAgentTimer(ag *agent) {
	ag.tgen++
	if ag.timer != nil {
		ag.timer.Stop()
		ag.timer = nil
	}
}

// The ready lists: one per (skill, level), ordered by readyNs, holding the
// routable agents (ready, not resting). An agent is in one list per skill.
type alist struct{ head, tail *agent }

func (a *ACD) list(ag *agent) {
	if ag.listed {
		return
	}
	ag.listed = true
	for _, s := range ag.has {
		l := &a.lists[s][ag.level[s]]
		n := &ag.nodes[s]
		// Usually the newest: walk back from the tail while the tail is newer.
		at := l.tail
		for at != nil && at.readyNs > ag.readyNs {
			at = at.nodes[s].prev
		}
		n.prev = at
		if at == nil {
			n.next = l.head
			l.head = ag
		} else {
			n.next = at.nodes[s].next
			at.nodes[s].next = ag
		}
		if n.next == nil {
			l.tail = ag
		} else {
			n.next.nodes[s].prev = ag
		}
	}
}

func (a *ACD) unlist(ag *agent) {
	if !ag.listed {
		return
	}
	ag.listed = false
	for _, s := range ag.has {
		l := &a.lists[s][ag.level[s]]
		n := &ag.nodes[s]
		if n.prev == nil {
			l.head = n.next
		} else {
			n.prev.nodes[s].next = n.next
		}
		if n.next == nil {
			l.tail = n.prev
		} else {
			n.next.nodes[s].prev = n.prev
		}
		n.prev, n.next = nil, nil
	}
}
