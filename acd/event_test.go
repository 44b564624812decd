package acd

import (
	"fmt"
	"testing"
	"time"
)

// takeEvents returns the events of type t since the last take, and forgets all.
func (e *env) takeEvents(t EventType) []Event {
	e.out.mu.Lock()
	defer e.out.mu.Unlock()
	var r []Event
	for _, ev := range e.out.events {
		if ev.Type == t {
			r = append(r, ev)
		}
	}
	e.out.events = nil
	return r
}

// oneEvent asserts exactly one event of type t since the last take.
func (e *env) oneEvent(t EventType) Event {
	e.t.Helper()
	evs := e.takeEvents(t)
	if len(evs) != 1 {
		e.t.Fatalf("%d %s events, want 1: %+v", len(evs), t, evs)
	}
	return evs[0]
}

func TestExitWithKey(t *testing.T) {
	e := newEnv(t, []QueueConfig{{Name: "consult", JoinEmpty: true}}, nil)
	e.enqueue("k", "consult", 0)
	e.enqueue("old", "consult", 0)
	e.clk.Advance(4 * time.Second)
	e.takeEvents("")
	e.a.ExitWithKey("k", "0")
	ev := e.oneEvent(EvExitKey)
	if ev.CallID != "k" || ev.Queue != "consult" || ev.Data.Key != "0" || ev.Data.Wait != 4*time.Second || ev.Data.Position != 1 {
		t.Fatalf("EXITWITHKEY %+v", ev)
	}
	e.a.ExitKey("old") // the wrapper: no key
	if ev := e.oneEvent(EvExitKey); ev.CallID != "old" || ev.Data.Key != "" {
		t.Fatalf("EXITWITHKEY %+v", ev)
	}
	if q := e.a.Queues()[0]; q.ExitedKey != 2 || q.Waiting != 0 {
		t.Fatalf("view %+v", q)
	}
}

func TestConnectLeg(t *testing.T) {
	e := newEnv(t, []QueueConfig{{Name: "consult"}}, agentsWith(2, map[string]int{"consult": 5}))
	e.login("a1", "a2")
	e.enqueue("c1", "consult", 0)
	e.enqueue("c2", "consult", 0)
	e.wantOffers("c1>a1 c2>a2")
	e.clk.Advance(2 * time.Second)
	e.takeEvents("")
	if !e.a.RingAnsweredLeg("c1", "a1", "leg-1@10.0.0.7") {
		t.Fatal("answer refused")
	}
	ev := e.oneEvent(EvConnect)
	if ev.CallID != "c1" || ev.AgentID != "a1" || ev.Data.Leg != "leg-1@10.0.0.7" || ev.Data.Ring != 2*time.Second {
		t.Fatalf("CONNECT %+v", ev)
	}
	if e.a.RingAnsweredLeg("c1", "a1", "again") {
		t.Fatal("stale answer accepted")
	}
	if e.a.RingAnswered("c2", "a2") != true {
		t.Fatal("answer refused")
	}
	if ev := e.oneEvent(EvConnect); ev.CallID != "c2" || ev.Data.Leg != "" {
		t.Fatalf("CONNECT %+v", ev)
	}
}

// TestLogoutLoggedIn: LOGOUT carries the time since LOGIN, whatever ended it.
func TestLogoutLoggedIn(t *testing.T) {
	tests := []struct {
		name   string
		reason string
		takes  time.Duration // how long end advances the clock
		end    func(e *env)  // ends the login 90 s after it began
	}{
		{"api or feature code", "feature-code", 0, func(e *env) { e.a.Logout("a1", "feature-code") }},
		{"unreachable", ReasonUnreachable, 0, func(e *env) { e.a.Unreachable("a1") }},
		{"shutdown", ReasonShutdown, 0, func(e *env) { e.a.Close() }},
		{"while paused", "bye", 0, func(e *env) {
			e.a.Pause("a1", "lunch")
			e.a.Logout("a1", "bye")
		}},
		{"pending until the call ends", "shift", 30 * time.Second, func(e *env) {
			e.enqueue("c1", "consult", 0)
			e.a.RingAnswered("c1", "a1")
			e.a.Logout("a1", "shift")
			e.clk.Advance(30 * time.Second)
			if n := len(e.takeEvents(EvLogout)); n != 0 {
				e.t.Fatal("logged out during the call")
			}
			e.a.CallEnded("c1", "a1", "caller")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, []QueueConfig{{Name: "consult"}}, agentsWith(1, map[string]int{"consult": 5}))
			e.clk.Advance(time.Hour)
			if err := e.a.Login("a1"); err != nil {
				t.Fatal(err)
			}
			e.clk.Advance(90*time.Second - tt.takes)
			tt.end(e)
			ev := e.oneEvent(EvLogout)
			if ev.AgentID != "a1" || ev.Data.Reason != tt.reason || ev.Data.LoggedIn != 90*time.Second {
				t.Fatalf("LOGOUT %+v", ev)
			}
			e.wantState("a1", AgentLoggedOut)
		})
	}
}

// TestWrapUpEnd: every call that ends gets exactly one WRAPUPEND, with the
// actual wrap-up from the call's end, the call's id and its queue, however
// the wrap-up ended.
func TestWrapUpEnd(t *testing.T) {
	const configured = 20 * time.Second
	tests := []struct {
		name      string
		wrapUp    time.Duration // the queue's
		end       func(e *env)  // called 7 s after the call ended (the transfer, for "transfer")
		reason    string
		wrap      time.Duration
		wantState AgentState
	}{
		{"timer", configured, func(e *env) { e.clk.Advance(configured - 7*time.Second) }, "", configured, AgentReady},
		{"early ready", configured, func(e *env) { e.a.Ready("a1") }, "ready", 7 * time.Second, AgentReady},
		{"pause", configured, func(e *env) { e.a.Pause("a1", "lunch") }, "paused", 7 * time.Second, AgentPaused},
		{"logout", configured, func(e *env) { e.a.Logout("a1", "bye") }, "logout", 7 * time.Second, AgentLoggedOut},
		{"unreachable", configured, func(e *env) { e.a.Unreachable("a1") }, "logout", 7 * time.Second, AgentLoggedOut},
		{"shutdown", configured, func(e *env) { e.a.Close() }, "logout", 7 * time.Second, AgentLoggedOut},
		{"none configured", -1, func(e *env) {}, "", 0, AgentReady},
	}
	for _, tt := range tests {
		for _, how := range []string{"call ended", "transfer"} {
			t.Run(tt.name+"/"+how, func(t *testing.T) {
				e := newEnv(t, []QueueConfig{{Name: "consult", WrapUp: tt.wrapUp}, {Name: "other", JoinEmpty: true}},
					agentsWith(1, map[string]int{"consult": 5}))
				e.login("a1")
				e.enqueue("c1", "consult", 0)
				e.wantOffers("c1>a1")
				e.a.RingAnswered("c1", "a1")
				e.clk.Advance(time.Minute)
				if how == "transfer" {
					if _, err := e.a.Transferred("c1", "a1", "other"); err != nil {
						t.Fatal(err)
					}
				} else {
					e.a.CallEnded("c1", "a1", "caller")
				}
				if tt.wrapUp > 0 {
					if n := len(e.takeEvents(EvWrapUpEnd)); n != 0 {
						t.Fatalf("%d WRAPUPEND at the call's end", n)
					}
					e.clk.Advance(7 * time.Second)
				}
				tt.end(e)
				e.wantWrapUpEnd(tt.reason, tt.wrap)
				e.wantState("a1", tt.wantState)
				e.clk.Advance(time.Hour) // no second one, by timer or otherwise
				e.a.Ready("a1")
				e.a.Close()
				if n := len(e.takeEvents(EvWrapUpEnd)); n != 0 {
					t.Fatalf("%d more WRAPUPEND", n)
				}
			})
		}
	}
}

// wantWrapUpEnd asserts one WRAPUPEND since the last take, of call c1 of
// queue consult by agent a1.
func (e *env) wantWrapUpEnd(reason string, wrap time.Duration) {
	e.t.Helper()
	ev := e.oneEvent(EvWrapUpEnd)
	if ev.CallID != "c1" || ev.Queue != "consult" || ev.AgentID != "a1" || ev.Data.Reason != reason || ev.Data.WrapUp != wrap {
		e.t.Fatalf("WRAPUPEND %+v, want reason %q wrap-up %v", ev, reason, wrap)
	}
}

// onCall: agent a1 of queue consult (wrap-up 20 s) has answered c1.
func onCall(t *testing.T) *env {
	e := newEnv(t, []QueueConfig{{Name: "consult", WrapUp: 20 * time.Second}}, agentsWith(1, map[string]int{"consult": 5}))
	e.login("a1")
	e.enqueue("c1", "consult", 0)
	e.wantOffers("c1>a1")
	if !e.a.RingAnswered("c1", "a1") {
		t.Fatal("answer refused")
	}
	return e
}

// TestWrapUpEndPending: a logout or pause asked during the call applies at its
// end; the call still gets its WRAPUPEND.
func TestWrapUpEndPending(t *testing.T) {
	t.Run("logout", func(t *testing.T) {
		e := onCall(t)
		e.a.Logout("a1", "shift")
		e.clk.Advance(time.Minute)
		e.a.CallEnded("c1", "a1", "agent")
		e.wantWrapUpEnd("logout", 0)
		e.wantState("a1", AgentLoggedOut)
	})
	t.Run("unreachable during the call", func(t *testing.T) {
		e := onCall(t)
		e.clk.Advance(time.Minute)
		e.a.Unreachable("a1")
		e.wantWrapUpEnd("logout", 0)
		e.wantState("a1", AgentLoggedOut)
	})
	t.Run("pause, then ready during the wrap-up", func(t *testing.T) {
		e := onCall(t)
		e.a.Pause("a1", "lunch")
		e.a.CallEnded("c1", "a1", "caller")
		e.clk.Advance(3 * time.Second)
		e.a.Ready("a1") // takes back the pause
		e.wantWrapUpEnd("ready", 3*time.Second)
		if v := e.a.Agents()[0]; v.State != AgentReady || v.Pending != "" {
			t.Fatalf("agent %+v", v)
		}
		// The next ring fails by rejection: the agent rests, the old pause
		// does not come back.
		e.enqueue("c2", "consult", 0)
		e.wantOffers("c2>a1")
		e.a.RingFailed("c2", "a1", Rejected)
		e.wantState("a1", AgentReady)
	})
	t.Run("pause applies after the timer", func(t *testing.T) {
		e := onCall(t)
		e.a.Pause("a1", "lunch")
		e.a.CallEnded("c1", "a1", "caller")
		e.clk.Advance(20 * time.Second)
		e.wantWrapUpEnd("", 20*time.Second)
		e.wantState("a1", AgentPaused)
	})
}

// TestWrapUpEndEveryCall: over many calls with random wrap-up endings, each
// answered call has exactly one WRAPUPEND, naming it.
func TestWrapUpEndEveryCall(t *testing.T) {
	e := newEnv(t, []QueueConfig{{Name: "consult", WrapUp: 10 * time.Second, JoinEmpty: true}}, agentsWith(3, map[string]int{"consult": 5}))
	e.login("a1", "a2", "a3")
	ends := []func(id string){
		func(string) {},
		func(id string) { e.a.Ready(id) },
		func(id string) { e.a.Pause(id, "x"); e.a.Ready(id) },
		func(id string) { e.a.Logout(id, "x"); e.a.Login(id) },
		func(id string) { e.a.Unreachable(id); e.a.Login(id) },
	}
	for i := range 60 {
		id := fmt.Sprint("c", i)
		e.enqueue(id, "consult", 0)
		o := e.out.takeOffers()
		for len(o) == 0 { // all three in wrap-up
			e.clk.Advance(time.Second)
			o = e.out.takeOffers()
		}
		if len(o) != 1 {
			t.Fatalf("offers %v", o)
		}
		e.a.RingAnswered(id, o[0].AgentID)
		e.clk.Advance(time.Second)
		e.a.CallEnded(id, o[0].AgentID, "agent")
		e.clk.Advance(time.Duration(i%12) * time.Second)
		ends[i%len(ends)](o[0].AgentID)
	}
	e.clk.Advance(time.Minute)
	got := map[string]int{}
	for _, ev := range e.out.eventsOf(EvWrapUpEnd) {
		got[ev.CallID]++
		if ev.Data.WrapUp > 10*time.Second {
			t.Fatalf("WRAPUPEND %+v longer than configured", ev)
		}
	}
	for i := range 60 {
		if id := fmt.Sprint("c", i); got[id] != 1 {
			t.Fatalf("%s: %d WRAPUPEND", id, got[id])
		}
	}
}
