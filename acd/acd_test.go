package acd

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

type env struct {
	t   *testing.T
	a   *ACD
	clk *fakeClock
	out *fakeOut
}

func newEnv(t *testing.T, qs []QueueConfig, ags []AgentConfig) *env {
	t.Helper()
	clk := newFakeClock()
	out := &fakeOut{}
	a, err := New(qs, ags, clk, out, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	return &env{t: t, a: a, clk: clk, out: out}
}

// agentsWith returns agents a1..an with the given skills.
func agentsWith(n int, skills map[string]int) []AgentConfig {
	var r []AgentConfig
	for i := 1; i <= n; i++ {
		r = append(r, AgentConfig{ID: fmt.Sprintf("a%d", i), Name: fmt.Sprintf("agent %d", i), Skills: skills})
	}
	return r
}

// login logs agents in one second apart (so longest-idle order is their order).
func (e *env) login(ids ...string) {
	e.t.Helper()
	for _, id := range ids {
		if err := e.a.Login(id); err != nil {
			e.t.Fatal(err)
		}
		e.clk.Advance(time.Second)
	}
}

func (e *env) enqueue(id, q string, prio int) int {
	e.t.Helper()
	pos, err := e.a.Enqueue(Caller{CallID: id, Number: "138" + id, Queue: q, Priority: prio})
	if err != nil {
		e.t.Fatalf("enqueue %s: %v", id, err)
	}
	return pos
}

func (e *env) state(id string) AgentState {
	e.t.Helper()
	for _, v := range e.a.Agents() {
		if v.ID == id {
			return v.State
		}
	}
	e.t.Fatalf("no agent %s", id)
	return ""
}

func (e *env) wantState(id string, want AgentState) {
	e.t.Helper()
	if got := e.state(id); got != want {
		e.t.Fatalf("agent %s: state %s, want %s", id, got, want)
	}
}

// offers returns the offers since the last call as "call>agent".
func (e *env) offers() string {
	var s []string
	for _, o := range e.out.takeOffers() {
		s = append(s, o.CallID+">"+o.AgentID)
	}
	return strings.Join(s, " ")
}

func (e *env) wantOffers(want string) {
	e.t.Helper()
	if got := e.offers(); got != want {
		e.t.Fatalf("offers %q, want %q", got, want)
	}
}

// connect answers and immediately ends a call, then skips the wrap-up.
func (e *env) serve(call, agent string) {
	e.t.Helper()
	if !e.a.RingAnswered(call, agent) {
		e.t.Fatalf("answer %s by %s refused", call, agent)
	}
	e.clk.Advance(time.Second)
	e.a.CallEnded(call, agent, "caller")
	if err := e.a.Ready(agent); err != nil {
		e.t.Fatal(err)
	}
}

func TestStrategies(t *testing.T) {
	sk := map[string]int{"consult": 5}
	tests := []struct {
		name     string
		strategy Strategy
		agents   []AgentConfig
		run      func(e *env)
	}{
		{"longest idle", LongestIdle, agentsWith(3, sk), func(e *env) {
			e.login("a2", "a3", "a1")
			e.enqueue("c1", "consult", 0)
			e.wantOffers("c1>a2")
			e.enqueue("c2", "consult", 0)
			e.wantOffers("c2>a3")
			e.serve("c1", "a2") // a2 becomes ready again: now the newest
			e.enqueue("c3", "consult", 0)
			e.wantOffers("c3>a1")
		}},
		{"fewest calls", FewestCalls, agentsWith(3, sk), func(e *env) {
			e.login("a1", "a2", "a3")
			e.enqueue("c1", "consult", 0)
			e.wantOffers("c1>a1")
			e.serve("c1", "a1")
			e.enqueue("c2", "consult", 0)
			e.wantOffers("c2>a2")
			e.serve("c2", "a2")
			e.enqueue("c3", "consult", 0)
			e.wantOffers("c3>a3")
			e.serve("c3", "a3")
			e.enqueue("c4", "consult", 0) // all have 1 call: longest idle (a1)
			e.wantOffers("c4>a1")
		}},
		{"round robin with memory", RoundRobin, agentsWith(3, sk), func(e *env) {
			e.login("a3", "a2", "a1")
			for i, want := range []string{"a1", "a2", "a3", "a1", "a2"} {
				c := fmt.Sprintf("c%d", i)
				e.enqueue(c, "consult", 0)
				e.wantOffers(c + ">" + want)
				e.serve(c, want)
			}
		}},
		{"best skill, ties by longest idle", BestSkill, []AgentConfig{
			{ID: "a1", Skills: map[string]int{"consult": 5}},
			{ID: "a2", Skills: map[string]int{"consult": 9}},
			{ID: "a3", Skills: map[string]int{"consult": 9}},
			{ID: "a4", Skills: map[string]int{"consult": 7}},
		}, func(e *env) {
			e.login("a1", "a3", "a2", "a4")
			e.enqueue("c1", "consult", 0)
			e.wantOffers("c1>a3")
			e.enqueue("c2", "consult", 0)
			e.wantOffers("c2>a2")
			e.enqueue("c3", "consult", 0)
			e.wantOffers("c3>a4")
		}},
		{"random picks only eligible agents, all of them", Random, append(agentsWith(4, sk),
			AgentConfig{ID: "x", Skills: map[string]int{"other": 9}}), func(e *env) {
			e.login("a1", "a2", "a3", "a4", "x")
			seen := map[string]int{}
			for i := range 200 {
				c := fmt.Sprintf("c%d", i)
				e.enqueue(c, "consult", 0)
				o := e.out.takeOffers()
				if len(o) != 1 {
					e.t.Fatalf("offers %v", o)
				}
				seen[o[0].AgentID]++
				e.serve(c, o[0].AgentID)
			}
			if len(seen) != 4 || seen["x"] > 0 {
				e.t.Fatalf("random choices %v", seen)
			}
		}},
		{"ring all: first answer wins", RingAll, agentsWith(3, sk), func(e *env) {
			e.login("a1", "a2", "a3")
			e.enqueue("c1", "consult", 0)
			if got := e.offers(); strings.Count(got, "c1>") != 3 {
				e.t.Fatalf("offers %q", got)
			}
			if !e.a.RingAnswered("c1", "a2") {
				e.t.Fatal("answer refused")
			}
			if e.a.RingAnswered("c1", "a1") {
				e.t.Fatal("second answer accepted")
			}
			if c := e.out.takeCancels(); len(c) != 2 {
				e.t.Fatalf("cancels %v", c)
			}
			e.wantState("a1", AgentReady)
			e.wantState("a2", AgentOnCall)
			e.wantState("a3", AgentReady)
			if n := len(e.out.eventsOf(EvRingCanceled)); n != 2 {
				e.t.Fatalf("%d RINGCANCELED", n)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, []QueueConfig{{Name: "consult", Strategy: tt.strategy}}, tt.agents)
			tt.run(e)
		})
	}
}

func TestPriorityAndFIFO(t *testing.T) {
	e := newEnv(t, []QueueConfig{{Name: "consult"}}, agentsWith(1, map[string]int{"consult": 3}))
	e.login("a1")
	e.enqueue("c0", "consult", 0)
	e.wantOffers("c0>a1")
	if !e.a.RingAnswered("c0", "a1") {
		t.Fatal("refused")
	}
	e.clk.Advance(time.Second)
	if pos := e.enqueue("c1", "consult", 0); pos != 1 {
		t.Fatalf("c1 position %d", pos)
	}
	e.clk.Advance(time.Second)
	e.enqueue("c2", "consult", 0)
	e.clk.Advance(time.Second)
	if pos := e.enqueue("vip", "consult", 5); pos != 1 {
		t.Fatalf("vip position %d", pos)
	}
	e.enqueue("c3", "consult", 0)
	if p, _, _ := e.a.Position("c1"); p != 2 {
		t.Fatalf("c1 now at %d", p)
	}
	var order []string
	e.a.CallEnded("c0", "a1", "caller")
	e.a.Ready("a1")
	prev := e.out.takeOffers()[0].CallID
	order = append(order, prev)
	for range 3 {
		e.serve(prev, "a1")
		o := e.out.takeOffers()
		prev = o[0].CallID
		order = append(order, prev)
	}
	if got := strings.Join(order, " "); got != "vip c1 c2 c3" {
		t.Fatalf("order %s", got)
	}
}

func TestPriorityRules(t *testing.T) {
	e := newEnv(t, []QueueConfig{{Name: "consult", Priority: PriorityRules{
		Numbers: map[string]int{"13800000001": 9}, Prefixes: map[string]int{"0571": 2, "05718": 3}}}},
		agentsWith(1, map[string]int{"consult": 3}))
	for _, c := range []Caller{{CallID: "x", Number: "13900000000"}, {CallID: "p2", Number: "057100"},
		{CallID: "p3", Number: "0571800"}, {CallID: "vip", Number: "13800000001"}, {CallID: "given", Number: "1", Priority: 4}} {
		c.Queue = "consult"
		if _, err := e.a.Enqueue(c); err != nil && !errors.Is(err, ErrNoAgents) {
			t.Fatal(err)
		}
	}
	// JoinEmpty false: all refused; check the rule function instead.
	r := e.a.queues[0].cfg.Priority
	for num, want := range map[string]int{"13900000000": 0, "057100": 2, "0571800": 3, "13800000001": 9} {
		if got := r.priorityFor(num, 0); got != want {
			t.Errorf("%s: priority %d, want %d", num, got, want)
		}
	}
	if got := r.priorityFor("0571800", 7); got != 7 {
		t.Errorf("rules lowered a given priority to %d", got)
	}
}

func TestEscalation(t *testing.T) {
	t.Run("min level lowered", func(t *testing.T) {
		e := newEnv(t, []QueueConfig{{Name: "consult", Skills: map[string]int{"consult": 8},
			Escalations: []Escalation{{After: 30 * time.Second, Skill: "consult", MinLevel: 5}}}},
			[]AgentConfig{{ID: "hi", Skills: map[string]int{"consult": 9}}, {ID: "lo", Skills: map[string]int{"consult": 5}}})
		e.login("lo")
		e.enqueue("c1", "consult", 0)
		e.wantOffers("")
		e.clk.Advance(29 * time.Second)
		e.wantOffers("")
		e.clk.Advance(time.Second)
		e.wantOffers("c1>lo")
		if n := len(e.out.eventsOf(EvEscalate)); n != 1 {
			t.Fatalf("%d ESCALATE", n)
		}
	})
	t.Run("second skill", func(t *testing.T) {
		e := newEnv(t, []QueueConfig{{Name: "business", Escalations: []Escalation{{After: 20 * time.Second, Skill: "consult", MinLevel: 6}}}},
			[]AgentConfig{{ID: "b", Skills: map[string]int{"business": 9}}, {ID: "c5", Skills: map[string]int{"consult": 5}}, {ID: "c7", Skills: map[string]int{"consult": 7}}})
		e.login("b", "c5", "c7")
		e.enqueue("x", "business", 0)
		e.wantOffers("x>b")
		e.enqueue("y", "business", 0)
		e.clk.Advance(20 * time.Second)
		e.wantOffers("y>c7")
	})
	t.Run("older escalated caller is eligible first", func(t *testing.T) {
		e := newEnv(t, []QueueConfig{{Name: "consult", Skills: map[string]int{"consult": 8},
			Escalations: []Escalation{{After: 30 * time.Second, Skill: "consult", MinLevel: 5}}}},
			[]AgentConfig{{ID: "lo", Skills: map[string]int{"consult": 5}}})
		e.enqueueJoinEmpty(t)
	})
	t.Run("overflow keeps place", func(t *testing.T) {
		e := newEnv(t, []QueueConfig{
			{Name: "complaint", Escalations: []Escalation{{After: time.Minute, Overflow: "consult"}}},
			{Name: "consult"},
		}, []AgentConfig{{ID: "c", Skills: map[string]int{"consult": 5}}, {ID: "p", Skills: map[string]int{"complaint": 5}}})
		e.login("c", "p")
		e.enqueue("k0", "complaint", 0)
		e.enqueue("n0", "consult", 0)
		e.wantOffers("k0>p n0>c")
		e.a.RingAnswered("k0", "p")
		e.a.RingAnswered("n0", "c")
		e.enqueue("k1", "complaint", 0) // waits in complaint
		e.clk.Advance(10 * time.Second)
		e.enqueue("n1", "consult", 0) // later than k1
		e.clk.Advance(50 * time.Second)
		if p, _, ok := e.a.Position("k1"); !ok || p != 1 {
			t.Fatalf("k1 after overflow at %d %v", p, ok)
		}
		if ev := e.out.eventsOf(EvOverflow); len(ev) != 1 || ev[0].Data.Target != "consult" {
			t.Fatalf("overflow events %v", ev)
		}
		if e.out.left["k1"] != 0 {
			t.Fatal("overflow reported as leaving")
		}
		e.a.CallEnded("n0", "c", "caller")
		e.a.Ready("c")
		e.wantOffers("k1>c")
		q := e.a.Queues()
		if q[0].Overflowed != 1 || q[1].Offered != 3 {
			t.Fatalf("queue views %+v", q)
		}
	})
}

// enqueueJoinEmpty: an escalated caller (older) takes the agent before a
// newer one who is not yet eligible.
func (e *env) enqueueJoinEmpty(t *testing.T) {
	e.a.queues[0].cfg.JoinEmpty = true
	e.enqueue("old", "consult", 0)
	e.clk.Advance(31 * time.Second)
	e.enqueue("new", "consult", 0)
	e.login("lo")
	e.wantOffers("old>lo")
}

func TestRingNoAnswer(t *testing.T) {
	e := newEnv(t, []QueueConfig{{Name: "consult"}}, agentsWith(2, map[string]int{"consult": 5}))
	e.login("a1", "a2")
	e.enqueue("c1", "consult", 0)
	e.wantOffers("c1>a1")
	e.clk.Advance(DefaultRingTimeout)
	if c := e.out.takeCancels(); len(c) != 1 || c[0].AgentID != "a1" {
		t.Fatalf("cancels %v", c)
	}
	e.wantOffers("c1>a2")
	e.wantState("a1", AgentPaused)
	if v := e.a.Agents()[0]; v.Reason != "no-answer" {
		t.Fatalf("reason %q", v.Reason)
	}
	if ev := e.out.eventsOf(EvRingNoAnswer); len(ev) != 1 || ev[0].Data.Ring != DefaultRingTimeout {
		t.Fatalf("events %v", ev)
	}
	// call/ reports the no-answer itself: no CancelOffer from the ACD.
	e.a.RingFailed("c1", "a2", NoAnswer)
	if c := e.out.takeCancels(); len(c) != 0 {
		t.Fatalf("cancels %v", c)
	}
	e.wantState("a2", AgentPaused)
	if p, _, ok := e.a.Position("c1"); !ok || p != 1 {
		t.Fatal("caller lost their place")
	}
	// An agent who unpauses gets the caller.
	if err := e.a.Ready("a1"); err != nil {
		t.Fatal(err)
	}
	e.wantOffers("c1>a1")
	if e.out.offers == nil && len(e.out.eventsOf(EvUnpause)) != 1 {
		t.Fatal("no UNPAUSE")
	}
}

func TestAutoPauseOff(t *testing.T) {
	off := false
	e := newEnv(t, []QueueConfig{{Name: "consult", AutoPause: &off, RetryDelay: 7 * time.Second}}, agentsWith(1, map[string]int{"consult": 5}))
	e.login("a1")
	e.enqueue("c1", "consult", 0)
	e.wantOffers("c1>a1")
	e.a.RingFailed("c1", "a1", NoAnswer)
	e.wantState("a1", AgentReady)
	e.wantOffers("")
	e.clk.Advance(7 * time.Second)
	e.wantOffers("c1>a1")
}

func TestReject(t *testing.T) {
	e := newEnv(t, []QueueConfig{{Name: "consult"}}, agentsWith(2, map[string]int{"consult": 5}))
	e.login("a1", "a2")
	e.enqueue("c1", "consult", 0)
	e.wantOffers("c1>a1")
	e.a.RingFailed("c1", "a1", Rejected)
	e.wantOffers("c1>a2")
	e.wantState("a1", AgentReady) // resting, not paused
	e.a.RingFailed("c1", "a2", Rejected)
	e.wantOffers("") // both rest
	e.clk.Advance(DefaultRetryDelay)
	e.wantOffers("c1>a1")
	if ev := e.out.eventsOf(EvRingNoAnswer); len(ev) != 2 || ev[0].Data.Reason != "rejected" {
		t.Fatalf("events %v", ev)
	}
}

func TestAbandonWhileRinging(t *testing.T) {
	e := newEnv(t, []QueueConfig{{Name: "consult"}}, agentsWith(2, map[string]int{"consult": 5}))
	e.login("a1", "a2")
	e.enqueue("c1", "consult", 0)
	e.wantOffers("c1>a1")
	e.clk.Advance(3 * time.Second)
	e.a.Abandon("c1")
	if c := e.out.takeCancels(); len(c) != 1 || c[0].AgentID != "a1" || c[0].CallID != "c1" {
		t.Fatalf("cancels %v", c)
	}
	e.wantState("a1", AgentReady)
	if e.a.RingAnswered("c1", "a1") {
		t.Fatal("stale answer accepted")
	}
	// a1 kept its longest-idle place.
	e.enqueue("c2", "consult", 0)
	e.wantOffers("c2>a1")
	if ev := e.out.eventsOf(EvAbandon); len(ev) != 1 || ev[0].Data.Wait != 3*time.Second {
		t.Fatalf("abandon events %v", ev)
	}
	if q := e.a.Queues()[0]; q.Abandoned != 1 || q.Offered != 2 {
		t.Fatalf("view %+v", q)
	}
}

func TestWrapUp(t *testing.T) {
	w := 3 * time.Second
	e := newEnv(t, []QueueConfig{{Name: "consult", WrapUp: 20 * time.Second}},
		[]AgentConfig{{ID: "a1", Skills: map[string]int{"consult": 5}}, {ID: "a2", Skills: map[string]int{"consult": 5}, WrapUp: &w}})
	e.login("a1", "a2")
	e.enqueue("c1", "consult", 0)
	e.enqueue("c2", "consult", 0)
	e.wantOffers("c1>a1 c2>a2")
	e.a.RingAnswered("c1", "a1")
	e.a.RingAnswered("c2", "a2")
	e.clk.Advance(60 * time.Second)
	e.a.CallEnded("c1", "a1", "agent")
	e.a.CallEnded("c2", "a2", "caller")
	e.wantState("a1", AgentWrapUp)
	e.wantState("a2", AgentWrapUp)
	e.clk.Advance(3 * time.Second)
	e.wantState("a2", AgentReady)
	e.wantState("a1", AgentWrapUp)
	e.clk.Advance(17 * time.Second)
	e.wantState("a1", AgentReady)
	v := e.a.Agents()[0]
	if v.CallsToday != 1 || v.TalkToday != 60*time.Second {
		t.Fatalf("view %+v", v)
	}
	if len(e.out.eventsOf(EvCompleteAgent)) != 1 || len(e.out.eventsOf(EvCompleteCaller)) != 1 || len(e.out.eventsOf(EvWrapUpEnd)) != 2 {
		t.Fatal("missing events")
	}
	// A late or repeated CallEnded changes nothing.
	e.a.CallEnded("c1", "a1", "agent")
	e.wantState("a1", AgentReady)
}

func TestPauseDuringWrapUpAndCall(t *testing.T) {
	e := newEnv(t, []QueueConfig{{Name: "consult"}}, agentsWith(2, map[string]int{"consult": 5}))
	e.login("a1", "a2")
	e.enqueue("c1", "consult", 0)
	e.enqueue("c2", "consult", 0)
	e.wantOffers("c1>a1 c2>a2")
	e.a.RingAnswered("c1", "a1")
	e.a.RingAnswered("c2", "a2")
	e.a.CallEnded("c1", "a1", "caller")
	if err := e.a.Pause("a1", "lunch"); err != nil {
		t.Fatal(err)
	}
	e.wantState("a1", AgentPaused)
	if err := e.a.Pause("a2", "meeting"); err != nil { // on a call: pending
		t.Fatal(err)
	}
	e.wantState("a2", AgentOnCall)
	if v := e.a.Agents()[1]; v.Pending != "pause: meeting" {
		t.Fatalf("pending %q", v.Pending)
	}
	e.a.CallEnded("c2", "a2", "caller")
	e.wantState("a2", AgentWrapUp)
	e.clk.Advance(time.Hour)
	e.wantState("a1", AgentPaused)
	e.wantState("a2", AgentPaused)
	if v := e.a.Agents()[1]; v.Reason != "meeting" {
		t.Fatalf("reason %q", v.Reason)
	}
	// Ready in wrap-up ends it early.
	e.a.Ready("a1")
	e.enqueue("c3", "consult", 0)
	e.wantOffers("c3>a1")
	e.a.RingAnswered("c3", "a1")
	e.a.CallEnded("c3", "a1", "caller")
	e.a.Ready("a1")
	e.wantState("a1", AgentReady)
}

func TestJoinAndLeaveWhenEmpty(t *testing.T) {
	e := newEnv(t, []QueueConfig{{Name: "strict"}, {Name: "open", JoinEmpty: true}, {Name: "leave", JoinEmpty: true, LeaveWhenEmpty: true}},
		[]AgentConfig{{ID: "a1", Skills: map[string]int{"strict": 1, "open": 1, "leave": 1}}})
	for _, q := range []string{"strict", "leave"} {
		if _, err := e.a.Enqueue(Caller{CallID: "x" + q, Queue: q}); !errors.Is(err, ErrNoAgents) {
			t.Fatalf("%s: %v", q, err)
		}
	}
	e.enqueue("o1", "open", 0)
	e.login("a1")
	e.wantOffers("o1>a1")
	e.a.RingFailed("o1", "a1", NoAnswer) // auto-paused: not staffed
	e.wantState("a1", AgentPaused)
	if _, err := e.a.Enqueue(Caller{CallID: "y", Queue: "strict"}); !errors.Is(err, ErrNoAgents) {
		t.Fatalf("paused agents staff no queue: %v", err)
	}
	_ = e.a.Ready("a1")
	e.wantOffers("o1>a1")
	e.a.RingAnswered("o1", "a1")
	e.enqueue("y", "strict", 0) // a1 on a call still staffs it
	e.enqueue("l1", "leave", 0)
	e.enqueue("l2", "leave", 0)
	e.a.Logout("a1", "end of shift") // on a call: pending
	e.wantState("a1", AgentOnCall)
	if len(e.out.left) != 0 {
		t.Fatal("left while an agent is still on a call")
	}
	e.a.CallEnded("o1", "a1", "caller")
	e.wantState("a1", AgentLoggedOut)
	if p, _, ok := e.a.Position("y"); !ok || p != 1 {
		t.Fatal("y left a queue without LeaveWhenEmpty")
	}
	if e.out.left["l1"] != ExitEmpty || e.out.left["l2"] != ExitEmpty || e.out.left["y"] != 0 {
		t.Fatalf("left %v", e.out.left)
	}
	if len(e.out.eventsOf(EvExitEmpty)) != 2 {
		t.Fatal("EXITEMPTY")
	}
}

func TestMaxCallers(t *testing.T) {
	e := newEnv(t, []QueueConfig{{Name: "consult", MaxCallers: 2, JoinEmpty: true}}, nil)
	e.enqueue("c1", "consult", 0)
	e.enqueue("c2", "consult", 0)
	if _, err := e.a.Enqueue(Caller{CallID: "c3", Queue: "consult"}); !errors.Is(err, ErrQueueFull) {
		t.Fatal(err)
	}
	e.a.Abandon("c1")
	e.enqueue("c3", "consult", 0)
	if _, err := e.a.Enqueue(Caller{CallID: "c3", Queue: "consult"}); !errors.Is(err, ErrDuplicateCall) {
		t.Fatal(err)
	}
	if _, err := e.a.Enqueue(Caller{CallID: "z", Queue: "nope"}); !errors.Is(err, ErrUnknownQueue) {
		t.Fatal(err)
	}
}

func TestExitKeyAndTimeout(t *testing.T) {
	e := newEnv(t, []QueueConfig{{Name: "consult", JoinEmpty: true, MaxWait: time.Minute}}, agentsWith(1, map[string]int{"consult": 1}))
	e.enqueue("k", "consult", 0)
	e.enqueue("t", "consult", 0)
	e.a.ExitKey("k")
	if ev := e.out.eventsOf(EvExitKey); len(ev) != 1 || ev[0].CallID != "k" {
		t.Fatalf("%v", ev)
	}
	e.clk.Advance(time.Minute)
	if e.out.left["t"] != ExitTimeout || e.out.left["k"] != 0 {
		t.Fatalf("left %v", e.out.left)
	}
	// Max wait while ringing: the ring runs on; the caller leaves when it fails.
	e.a.queues[0].cfg.RingTimeout = 2 * time.Minute
	e.login("a1")
	e.enqueue("r", "consult", 0)
	e.wantOffers("r>a1")
	e.clk.Advance(time.Minute)
	if e.out.left["r"] != 0 {
		t.Fatal("left while ringing")
	}
	e.a.RingFailed("r", "a1", NoAnswer)
	if e.out.left["r"] != ExitTimeout {
		t.Fatalf("left %v", e.out.left)
	}
	e.wantState("a1", AgentPaused)
}

func TestTransfer(t *testing.T) {
	e := newEnv(t, []QueueConfig{{Name: "consult"}, {Name: "complaint"}},
		[]AgentConfig{{ID: "c", Skills: map[string]int{"consult": 5}}, {ID: "p", Skills: map[string]int{"complaint": 5}}})
	e.login("c", "p")
	e.enqueue("x", "consult", 0)
	e.wantOffers("x>c")
	e.a.RingAnswered("x", "c")
	e.enqueue("p0", "complaint", 0)
	e.wantOffers("p0>p")
	e.a.RingAnswered("p0", "p")
	e.clk.Advance(time.Minute)
	e.enqueue("p1", "complaint", 0) // joined after x
	if _, err := e.a.Transferred("x", "c", "nope"); !errors.Is(err, ErrUnknownQueue) {
		t.Fatal(err)
	}
	e.wantState("c", AgentOnCall)
	pos, err := e.a.Transferred("x", "c", "complaint")
	if err != nil || pos != 1 {
		t.Fatalf("pos %d err %v", pos, err)
	}
	e.wantState("c", AgentWrapUp)
	if ev := e.out.eventsOf(EvTransfer); len(ev) != 1 || ev[0].Data.Talk != time.Minute || ev[0].Data.Target != "complaint" {
		t.Fatalf("%v", ev)
	}
	e.a.CallEnded("x", "c", "caller") // stale: the call left c
	e.a.CallEnded("p0", "p", "caller")
	e.a.Ready("p")
	e.wantOffers("x>p")
	if _, err := e.a.Transferred("x", "c", "complaint"); !errors.Is(err, ErrUnknownCall) {
		t.Fatal(err)
	}
}

func TestUnreachable(t *testing.T) {
	e := newEnv(t, []QueueConfig{{Name: "consult"}}, agentsWith(3, map[string]int{"consult": 5}))
	e.login("a1", "a2", "a3")
	e.enqueue("c1", "consult", 0)
	e.enqueue("c2", "consult", 0)
	e.wantOffers("c1>a1 c2>a2")
	e.a.Unreachable("a1")
	if c := e.out.takeCancels(); len(c) != 1 || c[0].AgentID != "a1" {
		t.Fatalf("cancels %v", c)
	}
	e.wantOffers("c1>a3")
	e.wantState("a1", AgentLoggedOut)
	e.a.RingAnswered("c2", "a2")
	e.a.Unreachable("a2") // lost BYE: the call is taken as ended
	e.wantState("a2", AgentLoggedOut)
	if ev := e.out.eventsOf(EvCompleteAgent); len(ev) != 1 || ev[0].Data.Reason != ReasonUnreachable {
		t.Fatalf("%v", ev)
	}
	e.a.CallEnded("c2", "a2", "caller")
	e.wantState("a2", AgentLoggedOut)
	if err := e.a.Login("a2"); err != nil {
		t.Fatal(err)
	}
	e.wantState("a2", AgentReady)
	if err := e.a.Login("zz"); !errors.Is(err, ErrUnknownAgent) {
		t.Fatal(err)
	}
}

// A vanished phone: the call completes with reason agent-lost and, after the wrap-up, the
// agent is paused with that reason, not offered again; a later CallEnded is stale.
func TestAgentLost(t *testing.T) {
	e := newEnv(t, []QueueConfig{{Name: "consult", WrapUp: 5 * time.Second, JoinEmpty: true}}, agentsWith(2, map[string]int{"consult": 5}))
	e.login("a1")
	e.enqueue("c1", "consult", 0)
	e.wantOffers("c1>a1")
	e.a.RingAnswered("c1", "a1")
	e.a.AgentLost("c1", "a1")
	if ev := e.out.eventsOf(EvCompleteAgent); len(ev) != 1 || ev[0].Data.Reason != ReasonAgentLost {
		t.Fatalf("COMPLETEAGENT %v", ev)
	}
	e.wantState("a1", AgentWrapUp)
	e.a.CallEnded("c1", "a1", "agent") // the loop's own report: stale
	e.a.AgentLost("c1", "a1")          // repeated: stale
	e.clk.Advance(5 * time.Second)
	e.wantState("a1", AgentPaused)
	if v := e.a.Agents()[0]; v.Reason != ReasonAgentLost {
		t.Fatalf("paused with reason %q", v.Reason)
	}
	e.enqueue("c2", "consult", 0)
	e.wantOffers("")                        // the paused agent is not rung
	if err := e.a.Ready("a1"); err != nil { // the phone is back
		t.Fatal(err)
	}
	e.wantOffers("c2>a1")

	// A logout asked for during the call wins over the pause.
	e.login("a2")
	e.a.RingAnswered("c2", "a1")
	if err := e.a.Logout("a1", "end of shift"); err != nil {
		t.Fatal(err)
	}
	e.a.AgentLost("c2", "a1")
	e.wantState("a1", AgentLoggedOut)
}

func TestStaleAnswer(t *testing.T) {
	e := newEnv(t, []QueueConfig{{Name: "consult"}}, agentsWith(2, map[string]int{"consult": 5}))
	e.login("a1", "a2")
	e.enqueue("c1", "consult", 0)
	e.wantOffers("c1>a1")
	e.clk.Advance(DefaultRingTimeout) // times out, moves to a2
	if e.a.RingAnswered("c1", "a1") {
		t.Fatal("timed-out offer answered")
	}
	if e.a.RingAnswered("nope", "a2") {
		t.Fatal("unknown call answered")
	}
	if !e.a.RingAnswered("c1", "a2") {
		t.Fatal("live offer refused")
	}
	if e.a.RingAnswered("c1", "a2") {
		t.Fatal("answered twice")
	}
	e.a.RingFailed("c1", "a2", NoAnswer) // stale: nothing happens
	e.wantState("a2", AgentOnCall)
}

func TestLogoutWhileRinging(t *testing.T) {
	e := newEnv(t, []QueueConfig{{Name: "consult"}}, agentsWith(2, map[string]int{"consult": 5}))
	e.login("a1", "a2")
	e.enqueue("c1", "consult", 0)
	e.wantOffers("c1>a1")
	e.a.Logout("a1", "bye")
	e.wantOffers("c1>a2")
	e.wantState("a1", AgentLoggedOut)
	if err := e.a.Pause("a1", "x"); !errors.Is(err, ErrNotLoggedIn) {
		t.Fatal(err)
	}
	e.a.Pause("a2", "after") // pending while ringing
	e.a.RingFailed("c1", "a2", Rejected)
	e.wantState("a2", AgentPaused)
	if v := e.a.Agents()[1]; v.Reason != "after" {
		t.Fatalf("reason %q", v.Reason)
	}
}

func TestEWT(t *testing.T) {
	e := newEnv(t, []QueueConfig{{Name: "consult", MaxWait: time.Hour, WrapUp: -1}}, agentsWith(2, map[string]int{"consult": 5}))
	e.a.queues[0].cfg.JoinEmpty = true
	e.enqueue("w", "consult", 0)
	if _, ewt, ok := e.a.Position("w"); !ok || ewt != time.Hour {
		t.Fatalf("no agents: ewt %v, want the max wait", ewt)
	}
	e.login("a1", "a2")
	e.a.RingAnswered("w", "a1")
	e.enqueue("x", "consult", 0)
	e.a.RingAnswered("x", "a2")
	for i := range 3 {
		e.enqueue(fmt.Sprint("q", i), "consult", 0)
	}
	pos, ewt, _ := e.a.Position("q2")
	if pos != 3 || ewt != 3*DefaultHandleTime/2 {
		t.Fatalf("before data: pos %d ewt %v", pos, ewt)
	}
	// Calls of 60 s pull the average down towards 60 s.
	prevAHT := e.a.Queues()[0].AHT
	e.clk.Advance(time.Minute)
	e.a.CallEnded("w", "a1", "caller")
	e.a.CallEnded("x", "a2", "caller")
	aht := e.a.Queues()[0].AHT
	if !(aht < prevAHT && aht > time.Minute) {
		t.Fatalf("AHT %v", aht)
	}
	// q0 and q1 are now ringing; q2 is first waiting.
	pos, ewt, _ = e.a.Position("q2")
	if pos != 3 || ewt != 3*aht/2 {
		t.Fatalf("after data: pos %d ewt %v (aht %v)", pos, ewt, aht)
	}
	if _, ewt, _ := e.a.Position("q0"); ewt != 0 {
		t.Fatalf("ringing caller ewt %v", ewt)
	}
	if _, _, ok := e.a.Position("nope"); ok {
		t.Fatal("unknown call has a position")
	}
}

func TestConfigErrors(t *testing.T) {
	two := 11
	tests := []struct {
		qs   []QueueConfig
		ags  []AgentConfig
		want string
	}{
		{[]QueueConfig{{Name: "a"}, {Name: "a"}}, nil, `queue "a": name: duplicate`},
		{[]QueueConfig{{Name: "a", Skills: map[string]int{"a": 0}}}, nil, `queue "a": skills.a: level 0`},
		{[]QueueConfig{{Name: "a", Strategy: "linear"}}, nil, `queue "a": strategy: unknown strategy "linear"`},
		{[]QueueConfig{{Name: "a", RingTimeout: -1}}, nil, `queue "a": ring_timeout`},
		{[]QueueConfig{{Name: "a", Escalations: []Escalation{{After: time.Second, Overflow: "b"}}}}, nil, `escalations[0].overflow: unknown queue "b"`},
		{[]QueueConfig{{Name: "a", Escalations: []Escalation{{After: time.Second, Overflow: "a"}}}}, nil, `overflows into itself`},
		{[]QueueConfig{{Name: "a", Skills: map[string]int{"a": 5}, Escalations: []Escalation{{After: time.Second, Skill: "a", MinLevel: 6}}}}, nil, `does not lower`},
		{[]QueueConfig{{Name: "a", Escalations: []Escalation{{After: 2 * time.Second, Skill: "b", MinLevel: 1}, {After: time.Second, Skill: "c", MinLevel: 1}}}}, nil, `escalations[1].after`},
		{[]QueueConfig{{Name: "a", ExitDigit: "x"}}, nil, `exit_digit`},
		{nil, []AgentConfig{{ID: "1", Skills: map[string]int{"a": two}}}, `agent "1": skills.a: level 11`},
		{nil, []AgentConfig{{ID: "1"}, {ID: "1"}}, `agent "1": id: duplicate`},
	}
	for _, tt := range tests {
		_, err := New(tt.qs, tt.ags, newFakeClock(), &fakeOut{}, nil)
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("got %v, want %q", err, tt.want)
		}
	}
	if _, err := New([]QueueConfig{{Name: "a", Strategy: "rrmemory"}}, nil, nil, &fakeOut{}, nil); err != nil {
		t.Errorf("alias: %v", err)
	}
}

func TestSystemClock(t *testing.T) {
	out := &fakeOut{}
	a, err := New([]QueueConfig{{Name: "consult", RingTimeout: 20 * time.Millisecond}}, agentsWith(1, map[string]int{"consult": 1}), nil, out, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	a.Login("a1")
	if _, err := a.Enqueue(Caller{CallID: "c", Queue: "consult"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if len(out.eventsOf(EvRingNoAnswer)) == 1 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("the ring timeout did not fire")
}
