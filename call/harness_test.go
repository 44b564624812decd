package call

import (
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/cdr"
	"github.com/hotline12345/hotline/ivr"
	"github.com/hotline12345/hotline/sip"
)

// harness runs calls through a Manager whose outside world is all fakes, with the real ACD
// on the same fake clock.
type harness struct {
	t      *testing.T
	clock  *fakeClock
	media  *fakeMedia
	phones *fakePhones
	recs   *fakeRecords
	m      *Manager
	calls  []chan struct{}
}

func newHarness(t *testing.T, edit ...func(*Config)) *harness {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t, goleak.IgnoreCurrent()) })
	h := &harness{t: t, clock: newFakeClock(), media: &fakeMedia{}, phones: &fakePhones{}, recs: &fakeRecords{}}
	both := map[string]int{"consult": 5, "complaint": 5}
	cfg := Config{
		NodeID: "test", Media: h.media, Prompts: fakePrompts{}, Language: "zh", RTPTimeout: 30 * time.Second,
		Routes: []ivr.Route{{Number: "12345", Queue: "consult"}},
		Menus: map[string]ivr.Menu{"main": {Prompts: []string{"menu"}, Options: map[string]string{"1": "queue consult", "9": "hangup"},
			Timeout: ivr.Duration(5 * time.Second), MaxRetries: 1, Fallback: "hangup"}},
		Queues: map[string]Queue{
			"consult":   {Name: "咨询", MusicOnHold: "moh", JoinPrompt: "join", ExitPrompt: "exit", ExitDigit: "0"},
			"complaint": {Name: "投诉举报", MusicOnHold: "moh2"},
		},
		ACDQueues: []acd.QueueConfig{
			{Name: "consult", Skills: map[string]int{"consult": 1}, RingTimeout: 15 * time.Second, WrapUp: 10 * time.Second, MaxWait: 5 * time.Minute, JoinEmpty: true},
			{Name: "complaint", Skills: map[string]int{"complaint": 1}, RingTimeout: 15 * time.Second, WrapUp: 10 * time.Second, MaxWait: 5 * time.Minute, JoinEmpty: true},
		},
		Agents:  []acd.AgentConfig{{ID: "1001", Skills: both}, {ID: "1002", Skills: both}},
		Records: h.recs, Clock: h.clock, ACDClock: h.clock, Logger: discardLog,
	}
	for _, e := range edit {
		e(&cfg)
	}
	m, err := NewManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.SetPhones(h.phones)
	h.m = m
	t.Cleanup(func() {
		m.HangupAll(ErrShutdown)
		for _, c := range h.calls {
			<-c
		}
		m.Close()
	})
	return h
}

// dial runs an inbound call on its own goroutine, as the SIP server does.
func (h *harness) dial(leg *fakeLeg) chan struct{} {
	leg.received = h.clock.Now()
	done := make(chan struct{})
	h.calls = append(h.calls, done)
	go func() { defer close(done); h.m.run(leg) }()
	return done
}

func (h *harness) ready(ids ...string) {
	h.t.Helper()
	for _, id := range ids {
		if err := h.m.ACD().Login(id); err != nil {
			h.t.Fatal(err)
		}
		if err := h.m.ACD().Ready(id); err != nil {
			h.t.Fatal(err)
		}
	}
}

func (h *harness) agentState(id string) acd.AgentState {
	for _, a := range h.m.ACD().Agents() {
		if a.ID == id {
			return a.State
		}
	}
	return ""
}

// record waits for the call's record (the only one written so far, or the n-th).
func (h *harness) record(done chan struct{}) cdr.Record {
	h.t.Helper()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		h.t.Fatal("the call did not end")
	}
	recs := h.recs.records()
	if len(recs) == 0 {
		h.t.Fatal("no record written")
	}
	return recs[len(recs)-1]
}

func (h *harness) waitRing(agent string) *fakeRing {
	h.t.Helper()
	var r *fakeRing
	eventually(h.t, "agent "+agent+" rung", func() bool { r = h.phones.ringing(agent); return r != nil })
	return r
}

func (h *harness) waitStage(stage string) {
	h.t.Helper()
	eventually(h.t, "stage "+stage, func() bool {
		live := h.m.Live()
		return len(live) > 0 && live[0].Stage == stage
	})
}

// answer answers a ringing agent and waits until they are bridged (a new agent leg).
func (h *harness) answer(r *fakeRing, id string) *fakeLeg {
	h.t.Helper()
	leg := newLeg(id)
	r.outcome <- ringOutcome{leg: leg}
	return leg
}

func (h *harness) waitBridged(i int) *fakeBridge {
	h.t.Helper()
	var b *fakeBridge
	eventually(h.t, "bridge", func() bool { b = h.media.bridge(i); return b != nil && b.on() })
	return b
}

func want[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// connected dials a caller whom agent 1001 answers; it returns once they are bridged.
func (h *harness) connected() (leg, ag *fakeLeg, br *fakeBridge, done chan struct{}) {
	h.t.Helper()
	h.ready("1001")
	leg = newLeg("c1")
	done = h.dial(leg)
	ag = h.answer(h.waitRing("1001"), "a1")
	return leg, ag, h.waitBridged(0), done
}

// hold is the agent's re-INVITE putting the caller on hold (sendonly).
func hold(ag *fakeLeg) {
	held := ag.media
	held.Direction = sip.SendOnly
	ag.updates <- held
}
