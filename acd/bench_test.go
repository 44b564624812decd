package acd

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// benchACD builds 20 queues over 20 skills and 1,000 agents with 3 random
// skills each (levels 1–10). Each queue requires its skill at level 3, lowers
// it to 1 after 30 s and adds the next skill at level 5 after 60 s.
func benchACD(tb testing.TB, strat Strategy, out *fakeOut) (*ACD, *fakeClock) {
	rng := rand.New(rand.NewPCG(1, 2))
	var qs []QueueConfig
	for i := range 20 {
		qs = append(qs, QueueConfig{
			Name: fmt.Sprintf("q%02d", i), Strategy: strat, JoinEmpty: true, MaxWait: -1,
			Skills: map[string]int{fmt.Sprintf("s%02d", i): 3},
			Escalations: []Escalation{
				{After: 30 * time.Second, Skill: fmt.Sprintf("s%02d", i), MinLevel: 1},
				{After: 60 * time.Second, Skill: fmt.Sprintf("s%02d", (i+1)%20), MinLevel: 5},
			},
		})
	}
	var ags []AgentConfig
	for i := range 1000 {
		sk := map[string]int{}
		for len(sk) < 3 {
			sk[fmt.Sprintf("s%02d", rng.IntN(20))] = 1 + rng.IntN(10)
		}
		ags = append(ags, AgentConfig{ID: fmt.Sprint(i), Skills: sk})
	}
	clk := newFakeClock()
	a, err := New(qs, ags, clk, out, nil)
	if err != nil {
		tb.Fatal(err)
	}
	for _, ag := range ags {
		a.Login(ag.ID)
		clk.Advance(10 * time.Millisecond)
	}
	return a, clk
}

// BenchmarkRouteDecision measures the routing decisions alone (the code run
// under the lock to choose; not the state-machine transition and output that
// follow):
//
//   - agent_ready: an agent becomes ready with 10,000 callers waiting over
//     20 queues at several escalation steps and priorities; pickCaller.
//   - caller_arrives/STRATEGY: a caller arrives with all 1,000 agents ready;
//     pickAgent (RingAll: collecting every eligible agent).
func BenchmarkRouteDecision(b *testing.B) {
	b.Run("agent_ready", func(b *testing.B) {
		out := &fakeOut{}
		var a *ACD
		out.onOffer = func(o Offer) { a.RingAnswered(o.CallID, o.AgentID) }
		a, clk := benchACD(b, LongestIdle, out)
		rng := rand.New(rand.NewPCG(3, 4))
		waiting := func() int {
			n := 0
			for _, q := range a.queues {
				n += len(q.all)
			}
			return n
		}
		for i := 0; waiting() < 10000; i++ {
			a.Enqueue(Caller{CallID: fmt.Sprint("c", i), Queue: fmt.Sprintf("q%02d", rng.IntN(20)), Priority: rng.IntN(3)})
			if i%100 == 99 {
				clk.Advance(time.Second) // spread over escalation steps
			}
		}
		out.events, out.offers = nil, nil
		steps := map[int]int{}
		for _, c := range a.callers {
			if c.st == cWaiting {
				steps[c.step]++
			}
		}
		b.Logf("waiting %d by step %v, agents busy %d", waiting(), steps, len(a.callers)-waiting())
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			if a.pickCaller(a.agents[i%len(a.agents)]) == nil && i < len(a.agents) && len(a.agents[i].serves) > 0 {
				b.Fatal("no caller")
			}
		}
	})
	for _, s := range []Strategy{LongestIdle, BestSkill, FewestCalls, RoundRobin, Random, RingAll} {
		b.Run("caller_arrives/"+string(s), func(b *testing.B) {
			a, _ := benchACD(b, s, &fakeOut{})
			probes := make([]*caller, 60)
			for i := range probes {
				probes[i] = &caller{q: a.queues[i%20], step: i % 3}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				c := probes[i%len(probes)]
				if s == RingAll {
					if len(a.allEligible(c)) == 0 {
						b.Fatal("nobody")
					}
				} else if a.pickAgent(c) == nil {
					b.Fatal("nobody")
				}
			}
		})
	}
}

// BenchmarkCallCycle measures a whole call through the public API with 1,000
// agents: Enqueue (routing, state machine, Offer), RingAnswered, CallEnded
// (no wrap-up) — locks, looplab/fsm transitions and output included.
func BenchmarkCallCycle(b *testing.B) {
	out := &fakeOut{}
	var last Offer
	out.onOffer = func(o Offer) { last = o }
	a, _ := benchACD(b, LongestIdle, out)
	for _, q := range a.queues {
		q.wrapUp = 0
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		id := fmt.Sprint(i)
		a.Enqueue(Caller{CallID: id, Queue: a.queues[i%20].cfg.Name})
		a.RingAnswered(id, last.AgentID)
		a.CallEnded(id, last.AgentID, "caller")
		if i%1024 == 0 {
			out.events = out.events[:0]
			out.offers = out.offers[:0]
		}
	}
}
