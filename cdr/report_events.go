package cdr

import (
	"cmp"
	"slices"
	"time"
)

// The event side of a report: queue visits per queue and the agents'
// figures, from the agent and queue events read in time order (see Summary
// and AgentStats for the definitions).

// eventRank orders the events of one instant so that a visit opens before
// it connects, a call connects before its hold, talk and wrap-up end.
func eventRank(name string) int {
	switch name {
	case EventEnterQueue:
		return 0
	case EventConnect:
		return 1
	case EventHold, EventUnhold:
		return 2
	case EventCompleteCaller, EventCompleteAgent, EventTransfer:
		return 3
	case EventWrapUpEnd:
		return 4
	}
	return 5
}

// compareEvents orders events by time, then eventRank, then ID.
func compareEvents(x, y AgentEvent) int {
	return cmp.Or(x.Time.Compare(y.Time), cmp.Compare(eventRank(x.Event), eventRank(y.Event)), cmp.Compare(x.ID, y.ID))
}

// visit is one queue visit of a call.
type visit struct {
	queue, agent string
	enter        time.Time
	counted      bool          // entered within the window (and the queue filter): its figures count
	hold         time.Duration // UNHOLDs of the connected agent so far: the ACD's talk includes them
}

// visitKey names an open visit (call and queue) or a wrap-up (call and agent).
type visitKey struct{ call, name string }

// interval is a logged-in or paused span; a zero from means since before
// the events began, a zero to until the window ends.
type interval struct{ from, to time.Time }

// agentState is an agent's login and pause state while reading events.
type agentState struct {
	started, in, paused bool // started: a LOGIN, LOGOUT, PAUSE or UNPAUSE was seen
	inSince, pauseSince time.Time
	logins, pauses      []interval
}

// eventAccumulator reads events in time order (add) and yields the queue
// summaries and agent figures (finish, agentStats).
type eventAccumulator struct {
	opts      ReportOptions
	queues    map[string]*Summary
	agents    map[string]*AgentStats
	states    map[string]*agentState
	open      map[visitKey]*visit // by call and queue: visits not ended yet
	connected map[string]*visit   // by call: the visit whose agent has the call
	wrapping  map[visitKey]*visit // by call and agent: talk over, wrap-up not ended
	ended     map[string]ended    // by call: the visit whose agent's talk ended last, for a RATING
	pending   []AgentEvent        // the events of the latest instant, to be ranked

	endedSwept time.Time // when ended was last pruned
}

func newEventAccumulator(opts ReportOptions) *eventAccumulator {
	opts.defaults()
	return &eventAccumulator{
		opts: opts, queues: map[string]*Summary{}, agents: map[string]*AgentStats{}, states: map[string]*agentState{},
		open: map[visitKey]*visit{}, connected: map[string]*visit{}, wrapping: map[visitKey]*visit{},
		ended: map[string]ended{},
	}
}

// add takes the next event; events must come in time order (any order
// within one instant).
func (a *eventAccumulator) add(e *AgentEvent) {
	if len(a.pending) > 0 && !e.Time.Equal(a.pending[0].Time) {
		a.flush()
	}
	a.pending = append(a.pending, *e)
}

func (a *eventAccumulator) flush() {
	slices.SortFunc(a.pending, compareEvents)
	for i := range a.pending {
		a.apply(&a.pending[i])
	}
	a.pending = a.pending[:0]
}

func (a *eventAccumulator) inWindow(t time.Time) bool {
	o := &a.opts
	return (o.From.IsZero() || !t.Before(o.From)) && (o.To.IsZero() || t.Before(o.To))
}

func (a *eventAccumulator) queue(name string) *Summary {
	s := group(a.queues, name)
	s.hists(a.opts.WaitBuckets)
	return s
}

func (a *eventAccumulator) agent(id string) *AgentStats {
	s := a.agents[id]
	if s == nil {
		s = &AgentStats{Agent: id}
		a.agents[id] = s
	}
	return s
}

func take[K comparable](m map[K]*visit, k K) *visit {
	v := m[k]
	delete(m, k)
	return v
}

// seconds reads an event's duration field; a missing or bad one is 0.
func seconds(s string) time.Duration {
	d, err := ParseSeconds(s)
	if err != nil || d < 0 {
		return 0
	}
	return d
}

func (a *eventAccumulator) apply(e *AgentEvent) {
	switch e.Event {
	case EventEnterQueue:
		k := visitKey{e.CallID, e.Queue}
		if old := take(a.open, k); old != nil && old.counted {
			a.queue(old.queue).OtherUnanswered++ // its end is missing
		}
		v := &visit{queue: e.Queue, enter: e.Time,
			counted: a.inWindow(e.Time) && (a.opts.Queue == "" || a.opts.Queue == e.Queue)}
		a.open[k] = v
		if v.counted {
			s := a.queue(e.Queue)
			s.Calls++
			s.Offered++
		}
	case EventConnect:
		v := take(a.open, visitKey{e.CallID, e.Queue})
		if v == nil {
			return // entered before the events begin
		}
		v.agent = e.AgentID
		a.connected[e.CallID] = v
		if !v.counted {
			return
		}
		s := a.queue(v.queue)
		wait := max(e.Time.Sub(v.enter), 0)
		s.LongestWait = max(s.LongestWait, wait)
		s.answered(wait, wait <= a.opts.threshold(v.queue), wait <= GBTAnswerWithin, a.opts.WaitBuckets)
		a.agent(e.AgentID).Calls++
	case EventAbandon, EventExitWithTimeout, EventExitEmpty, EventExitWithKey, EventOverflow:
		v := take(a.open, visitKey{e.CallID, e.Queue})
		if v == nil || !v.counted {
			return
		}
		s := a.queue(v.queue)
		wait := max(e.Time.Sub(v.enter), 0)
		s.LongestWait = max(s.LongestWait, wait)
		switch e.Event {
		case EventAbandon:
			s.abandoned(wait, wait < a.opts.ShortAbandon, a.opts.WaitBuckets)
		case EventExitWithTimeout:
			s.TimedOut++
		case EventExitEmpty:
			s.NoAgent++
		case EventExitWithKey:
			s.ExitKey++
		case EventOverflow:
			s.Overflowed++
		}
	case EventUnhold:
		if v := a.connected[e.CallID]; v != nil {
			d := seconds(e.Data1)
			v.hold += d
			if v.counted {
				a.queue(v.queue).Hold += d
				a.agent(cmp.Or(e.AgentID, v.agent)).Hold += d
			}
		}
	case EventCompleteCaller, EventCompleteAgent, EventTransfer:
		v := take(a.connected, e.CallID)
		if v == nil {
			return
		}
		agent := cmp.Or(e.AgentID, v.agent)
		a.wrapping[visitKey{e.CallID, agent}] = v
		if e.Event != EventTransfer {
			a.talkEnded(e.CallID, v, e.Time)
		}
		if !v.counted {
			return
		}
		talk := seconds(e.Data2)
		if e.Event == EventTransfer {
			talk = seconds(e.Data4)
			a.queue(v.queue).Transfers++
			a.agent(agent).Transfers++
		}
		// The ACD's talk runs from connect to the end (it does not see hold): take the
		// hold out, so that talk + hold is the time with the caller, as in the records.
		talk = max(talk-v.hold, 0)
		a.queue(v.queue).Talk += talk
		a.agent(agent).Talk += talk
	case EventWrapUpEnd:
		d := seconds(e.Data1)
		if e.CallID == "" { // an event of an older build: no visit to follow
			if a.inWindow(e.Time) {
				a.agent(e.AgentID).WrapUp += d
			}
			return
		}
		if v := take(a.wrapping, visitKey{e.CallID, e.AgentID}); v != nil && v.counted {
			a.queue(v.queue).WrapUp += d
			a.agent(e.AgentID).WrapUp += d
		}
	case EventRating:
		a.rating(e)
	case EventRingNoAnswer:
		if e.AgentID != "" && a.inWindow(e.Time) {
			a.agent(e.AgentID).RingNoAnswer++
		}
	case EventLogin, EventLogout, EventPause, EventUnpause:
		if e.AgentID != "" {
			a.agentTime(e)
		}
	}
}

// agentTime follows an agent's login and pause state. An agent whose first
// such event is LOGOUT (UNPAUSE) was logged in (paused) since before the
// events began; one still logged in (paused) at the end stays so until the
// window ends.
func (a *eventAccumulator) agentTime(e *AgentEvent) {
	st := a.states[e.AgentID]
	if st == nil {
		st = &agentState{}
		a.states[e.AgentID] = st
	}
	switch e.Event {
	case EventLogin:
		if !st.in {
			st.in, st.inSince = true, e.Time
		}
	case EventLogout:
		if !st.started {
			st.in, st.inSince = true, time.Time{}
		}
		if st.paused {
			st.pauses = append(st.pauses, interval{st.pauseSince, e.Time})
		}
		if st.in {
			st.logins = append(st.logins, interval{st.inSince, e.Time})
		}
		st.in, st.paused = false, false
	case EventPause:
		if !st.paused {
			st.paused, st.pauseSince = true, e.Time
		}
	case EventUnpause:
		if !st.started {
			st.paused, st.pauseSince = true, time.Time{}
		}
		if st.paused {
			st.pauses = append(st.pauses, interval{st.pauseSince, e.Time})
		}
		st.paused = false
	}
	st.started = true
}

// finish ends the reading: visits whose end was not seen are
// OtherUnanswered. It returns the queue summaries (not finalized).
func (a *eventAccumulator) finish() map[string]*Summary {
	a.flush()
	for k, v := range a.open {
		if v.counted {
			a.queue(v.queue).OtherUnanswered++
		}
		delete(a.open, k)
	}
	return a.queues
}

// agentStats returns the agents' figures, logged-in and paused time
// clipped to [from, to), ordered by agent.
func (a *eventAccumulator) agentStats(from, to time.Time) []AgentStats {
	clip := func(iv interval) time.Duration {
		s, e := iv.from, iv.to
		if s.Before(from) {
			s = from
		}
		if e.IsZero() || e.After(to) {
			e = to
		}
		return max(e.Sub(s), 0)
	}
	for id, st := range a.states {
		logins, pauses := st.logins, st.pauses
		if st.in {
			logins = append(logins, interval{from: st.inSince})
		}
		if st.paused {
			pauses = append(pauses, interval{from: st.pauseSince})
		}
		var l, p time.Duration
		for _, iv := range logins {
			l += clip(iv)
		}
		for _, iv := range pauses {
			p += clip(iv)
		}
		if l > 0 || p > 0 {
			ag := a.agent(id)
			ag.LoggedIn += l
			ag.Paused += p
		}
	}
	out := make([]AgentStats, 0, len(a.agents))
	for _, ag := range a.agents {
		ag.AHT = mean(ag.Talk+ag.Hold+ag.WrapUp, ag.Calls)
		if avail := ag.LoggedIn - ag.Paused; avail > 0 {
			ag.Occupancy = float64(ag.Talk+ag.Hold+ag.WrapUp) / float64(avail)
		}
		ag.Ratings.finalize()
		out = append(out, *ag)
	}
	slices.SortFunc(out, func(x, y AgentStats) int { return cmp.Compare(x.Agent, y.Agent) })
	return out
}
