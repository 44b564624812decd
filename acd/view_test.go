package acd

import (
	"slices"
	"testing"
	"time"
)

// TestQueueCountersPerVisit: a call that overflows from complaint to consult
// by escalation, is answered there and transferred back to complaint counts
// one visit per queue entered, each with its own wait.
func TestQueueCountersPerVisit(t *testing.T) {
	e := newEnv(t, []QueueConfig{
		{Name: "complaint", JoinEmpty: true, Escalations: []Escalation{{After: 30 * time.Second, Overflow: "consult"}}},
		{Name: "consult"},
	}, []AgentConfig{{ID: "c", Skills: map[string]int{"consult": 5}}, {ID: "p", Skills: map[string]int{"complaint": 5}}})
	e.login("c")
	e.enqueue("x", "complaint", 0) // nobody for complaint: x waits
	e.wantOffers("")
	e.clk.Advance(30 * time.Second) // overflow to consult, offered to c at once
	e.wantOffers("x>c")
	e.clk.Advance(4 * time.Second)
	if !e.a.RingAnswered("x", "c") { // 4 s in consult: within 15 s
		t.Fatal("answer refused")
	}
	e.clk.Advance(time.Minute)
	if _, err := e.a.Transferred("x", "c", "complaint"); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(20 * time.Second)
	e.login("p") // offered at once; login advances 1 s
	e.wantOffers("x>p")
	e.clk.Advance(time.Second)
	if !e.a.RingAnswered("x", "p") { // 22 s in complaint since the transfer
		t.Fatal("answer refused")
	}

	v := e.a.Queues()
	complaint, consult := v[0], v[1]
	type counts struct {
		Offered, Answered, Abandoned, Overflowed, Transferred, AnsweredWithin int
		ASA                                                                   time.Duration
		ServiceLevel, ServiceLevelAnswered                                    float64
	}
	pick := func(q QueueView) counts {
		return counts{q.Offered, q.Answered, q.Abandoned, q.Overflowed, q.Transferred, q.AnsweredWithin, q.ASA, q.ServiceLevel, q.ServiceLevelAnswered}
	}
	// complaint: offered twice (the caller, the transfer in); the first visit
	// overflowed out, the second was answered after 22 s.
	if got, want := pick(complaint), (counts{Offered: 2, Answered: 1, Overflowed: 1, ASA: 22 * time.Second}); got != want {
		t.Errorf("complaint %+v, want %+v", got, want)
	}
	// consult: offered once (overflow in), answered after 4 s, transferred out.
	if got, want := pick(consult), (counts{Offered: 1, Answered: 1, Transferred: 1, AnsweredWithin: 1, ASA: 4 * time.Second,
		ServiceLevel: 1, ServiceLevelAnswered: 1}); got != want {
		t.Errorf("consult %+v, want %+v", got, want)
	}

	// The event log tells the same story, visit by visit.
	var story []string
	for _, ev := range e.out.events {
		if ev.CallID != "x" {
			continue
		}
		s := string(ev.Type) + " " + ev.Queue
		switch ev.Type {
		case EvEnterQueue:
			s += " " + ev.Data.Reason + " " + ev.Data.Target
		case EvConnect, EvOverflow, EvTransfer:
			s += " " + ev.Data.Wait.String()
		}
		story = append(story, s)
	}
	want := []string{
		"ENTERQUEUE complaint  ",
		"OVERFLOW complaint 30s",
		"ENTERQUEUE consult overflow complaint",
		"CONNECT consult 4s",
		"TRANSFER consult 4s",
		"ENTERQUEUE complaint transfer consult",
		"WRAPUPEND consult", // c's, 10 s after the transfer
		"CONNECT complaint 22s",
	}
	if !slices.Equal(story, want) {
		t.Fatalf("events of x:\n%q\nwant\n%q", story, want)
	}
}
