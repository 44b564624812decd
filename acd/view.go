package acd

import (
	"maps"
	"slices"
	"time"
)

// AgentView is an agent as shown by the API.
type AgentView struct {
	ID, Name   string
	State      AgentState
	Reason     string // pause or logout reason
	Pending    string // "pause: REASON" or "logout: REASON" while ringing or on a call
	Since      time.Time
	CallsToday int // answered calls
	TalkToday  time.Duration
	CallID     string // the call ringing (reserved) or connected (on_call)
	Queue      string // its queue
}

// AgentCounts counts a queue's agents (those eligible at some escalation
// step) by state.
type AgentCounts struct {
	LoggedOut, Ready, Reserved, OnCall, WrapUp, Paused int
}

// QueueView is a queue as shown by the API and the wallboard. The day's
// counters reset at local midnight (of the Clock's times).
//
// The counters are per queue visit, like the event log (one ENTERQUEUE, then
// exactly one of CONNECT, ABANDON, EXITWITHTIMEOUT, EXITEMPTY, EXITWITHKEY or
// OVERFLOW): a call that overflows or is transferred from queue A to queue B
// is offered in both. A counts it as offered and Overflowed (or, after its
// CONNECT there, Answered and Transferred); B counts it as offered (overflow
// or transfer in) and then answered, abandoned, ... there. Waits are those of
// the visit: from entering that queue to the answer there, so ASA, the
// service level and AnsweredWithin of B measure B's own wait, and an
// overflow is a visit that A offered and did not answer.
type QueueView struct {
	Name        string
	Waiting     int // callers in the queue, ringing ones included
	Ringing     int
	LongestWait time.Duration // of the callers in the queue, this visit
	Agents      AgentCounts
	// Today, per visit: Offered = entered this queue (overflows and transfers
	// in included); each visit then ends as one of Answered, Abandoned,
	// TimedOut, ExitedEmpty, ExitedKey or Overflowed (out), or is still
	// Waiting. Transferred counts the answered visits that an agent then
	// transferred to another queue (out).
	Offered, Answered, Abandoned, TimedOut, ExitedEmpty, ExitedKey, Overflowed, Transferred int
	AnsweredWithin                                                                          int // answered within the service-level threshold of this visit's wait
	// ServiceLevel = AnsweredWithin / Offered (GB/T 33358 style);
	// ServiceLevelAnswered = AnsweredWithin / Answered (Asterisk's). 0 without data.
	ServiceLevel, ServiceLevelAnswered float64
	ASA                                time.Duration // mean wait (this visit) of answered visits
	AHT                                time.Duration // handle-time moving average used for EWT
	EWT                                time.Duration // estimated wait for a caller joining now
}

// Position returns the caller's place in their queue (1 = next; callers
// being rung count), and the estimated wait. ok is false unless the caller
// is waiting or ringing.
//
// EWT = position × AHT / N, where AHT is the queue's moving average of handle
// time (talk + wrap-up; DefaultHandleTime until calls complete, the first
// samples averaged with it, then α = 0.1) and N the agents logged in and
// unpaused who are eligible for the caller's current escalation step (or
// any step); capped by what is left of MaxWait, which is also the answer
// when N = 0. A ringing caller's EWT is 0.
func (a *ACD) Position(callID string) (pos int, ewt time.Duration, ok bool) {
	a.lock()
	defer a.unlock()
	c, found := a.callers[callID]
	if !found || (c.st != cWaiting && c.st != cRinging) {
		return 0, 0, false
	}
	pos = c.q.position(c)
	if c.st == cRinging {
		return pos, 0, true
	}
	return pos, c.q.ewt(pos, c.step, a.now.Sub(c.joined)), true
}

// Agents returns every agent, in configuration order.
func (a *ACD) Agents() []AgentView {
	a.lock()
	defer a.unlock()
	vs := make([]AgentView, len(a.agents))
	for i, ag := range a.agents {
		v := AgentView{ID: ag.id, Name: ag.name, State: ag.state(), Reason: ag.reason, Since: ag.since,
			CallsToday: ag.callsToday, TalkToday: ag.talkToday}
		switch ag.pending {
		case pendPause:
			v.Pending = "pause: " + ag.pendingReason
		case pendLogout:
			v.Pending = "logout: " + ag.pendingReason
		}
		if ag.offer != nil {
			v.CallID, v.Queue = ag.offer.c.id, ag.offer.c.q.cfg.Name
		} else if ag.call != nil {
			v.CallID, v.Queue = ag.call.id, ag.call.q.cfg.Name
		}
		vs[i] = v
	}
	return vs
}

// Queues returns every queue, in configuration order.
func (a *ACD) Queues() []QueueView {
	a.lock()
	defer a.unlock()
	vs := make([]QueueView, len(a.queues))
	for i, q := range a.queues {
		s := q.stats
		v := QueueView{Name: q.cfg.Name, Waiting: len(q.all),
			Offered: s.offered, Answered: s.answered, Abandoned: s.abandoned, TimedOut: s.timedOut,
			ExitedEmpty: s.empty, ExitedKey: s.exitKey, Overflowed: s.overflowed, Transferred: s.transferred,
			AnsweredWithin: s.answeredWithin, AHT: q.aht}
		for _, c := range q.all {
			if c.st == cRinging {
				v.Ringing++
			}
			v.LongestWait = max(v.LongestWait, a.now.Sub(c.joined))
		}
		if s.offered > 0 {
			v.ServiceLevel = float64(s.answeredWithin) / float64(s.offered)
		}
		if s.answered > 0 {
			v.ServiceLevelAnswered = float64(s.answeredWithin) / float64(s.answered)
			v.ASA = s.waitAnswered / time.Duration(s.answered)
		}
		v.EWT = q.ewt(len(q.all)+1, 0, 0)
		vs[i] = v
	}
	for _, ag := range a.agents {
		st := ag.state()
		for _, sv := range ag.serves {
			c := &vs[sv.q.idx].Agents
			switch st {
			case AgentLoggedOut:
				c.LoggedOut++
			case AgentReady:
				c.Ready++
			case AgentReserved:
				c.Reserved++
			case AgentOnCall:
				c.OnCall++
			case AgentWrapUp:
				c.WrapUp++
			case AgentPaused:
				c.Paused++
			}
		}
	}
	return vs
}

// QueueConfig returns a queue's configuration with defaults applied (for
// call/: AnnounceFrequency, ExitDigit, ...).
func (a *ACD) QueueConfig(name string) (QueueConfig, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	q, ok := a.qByName[name]
	if !ok {
		return QueueConfig{}, false
	}
	c := q.cfg
	c.Skills = maps.Clone(c.Skills)
	c.Escalations = slices.Clone(c.Escalations)
	c.Priority.Numbers = maps.Clone(c.Priority.Numbers)
	c.Priority.Prefixes = maps.Clone(c.Priority.Prefixes)
	return c, true
}
