package call

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	sipgosip "github.com/emiago/sipgo/sip"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/cdr"
	"github.com/hotline12345/hotline/ivr"
	"github.com/hotline12345/hotline/sip"
)

func TestAnsweredCallerHangsUp(t *testing.T) {
	h := newHarness(t)
	h.ready("1001")
	leg := newLeg("c1")
	done := h.dial(leg)
	r := h.waitRing("1001")
	want(t, "ring caller", r.req.Caller, "13800138000")
	h.clock.Advance(3 * time.Second) // rings 3 s
	h.answer(r, "a1")
	h.waitBridged(0)
	h.waitStage(StageTalking)
	h.clock.Advance(100 * time.Second)
	leg.end(sip.SideCaller, "BYE", 0)
	rec := h.record(done)
	want(t, "disposition", rec.Disposition, cdr.DispositionAnswered)
	want(t, "side", rec.HangupSide, sip.SideCaller)
	want(t, "agent", rec.Agent, "1001")
	want(t, "queue", rec.Queue, "consult")
	want(t, "visits", rec.Visits, "consult/1001")
	want(t, "wait", rec.Wait(), 3*time.Second)
	want(t, "talk", rec.Talk, 100*time.Second)
	want(t, "ring attempts", rec.RingAttempts, 1)
	want(t, "status", rec.SIPStatus, 200)
	want(t, "agent state", h.agentState("1001"), acd.AgentWrapUp)
	if c := h.recs.eventsOf("CONNECT"); len(c) != 1 || c[0].Data2 != "a1" {
		t.Errorf("CONNECT events %+v, want one naming the agent leg a1", c)
	}
	eventually(t, "the agent leg hung up", func() bool { return h.phones.ringing("1001") == nil })
}

func TestAnsweredAgentHangsUp(t *testing.T) {
	h := newHarness(t)
	leg, done := talkThenAgentHangsUp(t, h)
	rec := h.record(done)
	want(t, "disposition", rec.Disposition, cdr.DispositionAnswered)
	want(t, "side", rec.HangupSide, sip.SideAgent)
	want(t, "talk", rec.Talk, 30*time.Second)
	want(t, "caller hung up by us", leg.hungUpWith() != "", true)
	// The actual wrap-up: 10 s by the queue's timer, credited to the call.
	h.clock.Advance(10 * time.Second)
	eventually(t, "WRAPUPEND", func() bool { return len(h.recs.eventsOf("WRAPUPEND")) == 1 })
	w := h.recs.eventsOf("WRAPUPEND")[0]
	want(t, "WRAPUPEND call", w.CallID, rec.ID)
	want(t, "WRAPUPEND seconds", w.Data1, "10.000")
}

func TestAbandonedWhileQueued(t *testing.T) {
	h := newHarness(t)
	leg := newLeg("c1")
	done := h.dial(leg)
	h.waitStage(StageQueued)
	eventually(t, "music on hold after the join prompt", func() bool { return h.media.stream(0).loop() == "zh/moh" })
	h.clock.Advance(20 * time.Second)
	leg.end(sip.SideCaller, "BYE", 0)
	rec := h.record(done)
	want(t, "disposition", rec.Disposition, cdr.DispositionAbandoned)
	want(t, "side", rec.HangupSide, sip.SideCaller)
	want(t, "wait", rec.Wait(), 20*time.Second)
	want(t, "abandon events", len(h.recs.eventsOf("ABANDON")), 1)
}

func TestCallerHangsUpWhileAgentRings(t *testing.T) {
	h := newHarness(t)
	h.ready("1001")
	leg := newLeg("c1")
	done := h.dial(leg)
	r := h.waitRing("1001")
	h.waitStage(StageRinging)
	leg.end(sip.SideCaller, "BYE", 0)
	rec := h.record(done)
	want(t, "disposition", rec.Disposition, cdr.DispositionAbandoned)
	want(t, "ring attempts", rec.RingAttempts, 1)
	if r.ctx.Err() == nil {
		t.Error("the ring was not cancelled")
	}
	want(t, "agent state", h.agentState("1001"), acd.AgentReady)
}

func TestRingNoAnswerNextAgent(t *testing.T) {
	h := newHarness(t)
	h.ready("1001", "1002")
	leg := newLeg("c1")
	done := h.dial(leg)
	first := h.phones.rung()
	eventually(t, "first ring", func() bool { first = h.phones.rung(); return len(first) == 1 })
	h.clock.Advance(15 * time.Second) // the ring timeout
	eventually(t, "second ring", func() bool { return len(h.phones.rung()) == 2 })
	second := h.phones.rung()[1]
	if second == first[0] {
		t.Fatalf("the same agent %s was rung twice", second)
	}
	want(t, "silent agent", h.agentState(first[0]), acd.AgentPaused)
	h.answer(h.waitRing(second), "a2")
	h.waitBridged(0)
	leg.end(sip.SideCaller, "BYE", 0)
	rec := h.record(done)
	want(t, "agent", rec.Agent, second)
	want(t, "ring attempts", rec.RingAttempts, 2)
	want(t, "wait", rec.Wait(), 15*time.Second)
}

func TestAgentDeclinesNextAgent(t *testing.T) {
	h := newHarness(t)
	h.ready("1001", "1002")
	leg := newLeg("c1")
	done := h.dial(leg)
	var first string
	eventually(t, "first ring", func() bool { r := h.phones.rung(); first = strings.Join(r, ""); return len(r) == 1 })
	h.waitRing(first).outcome <- ringOutcome{err: ErrBusy}
	eventually(t, "second ring", func() bool { return len(h.phones.rung()) == 2 })
	second := h.phones.rung()[1]
	h.answer(h.waitRing(second), "a2")
	h.waitBridged(0)
	leg.end(sip.SideCaller, "BYE", 0)
	rec := h.record(done)
	want(t, "agent", rec.Agent, second)
	want(t, "declining agent not paused", h.agentState(first) != acd.AgentPaused, true)
}

func TestRingAllTwoAnswersRace(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.ACDQueues[0].Strategy = acd.RingAll })
	h.ready("1001", "1002")
	leg := newLeg("c1")
	done := h.dial(leg)
	h.phones.gate = make(chan struct{})
	r1, r2 := h.waitRing("1001"), h.waitRing("1002")
	// Both answer before the call hears of either (200 OKs that cross): the first result
	// the loop takes is bridged, the other agent's leg is hung up.
	a1, a2 := newLeg("a1"), newLeg("a2")
	r1.outcome <- ringOutcome{leg: a1}
	r2.outcome <- ringOutcome{leg: a2}
	eventually(t, "both rings answered", func() bool { return h.phones.heldCount() == 2 })
	close(h.phones.gate)
	eventually(t, "one bridged", func() bool { b := h.media.bridge(0); return b != nil && b.on() })
	var won, lost *fakeLeg
	eventually(t, "the late agent hung up", func() bool {
		switch {
		case a1.hungUpWith() == "answered elsewhere":
			won, lost = a2, a1
		case a2.hungUpWith() == "answered elsewhere":
			won, lost = a1, a2
		}
		return lost != nil
	})
	winner, loser := map[*fakeLeg]string{a1: "1001", a2: "1002"}[won], map[*fakeLeg]string{a1: "1001", a2: "1002"}[lost]
	leg.end(sip.SideCaller, "BYE", 0)
	rec := h.record(done)
	want(t, "agent", rec.Agent, winner)
	want(t, "ring attempts", rec.RingAttempts, 2)
	want(t, "bridges", len(h.media.bridges), 1)
	eventually(t, "late agent ready again", func() bool { return h.agentState(loser) == acd.AgentReady })
}

// An agent holding the caller sends no RTP, so only the registrar notices the phone is
// gone (its qualify pings fail): the ACD logs the agent out, and the call ends both legs
// with cause agent-lost instead of leaving the caller on music on hold.
func TestAgentUnreachableWhileHolding(t *testing.T) {
	h := newHarness(t)
	leg, ag, _, done := h.connected()
	h.clock.Advance(10 * time.Second)
	hold(ag)
	eventually(t, "hold: music to the caller", func() bool { return h.media.stream(0).loop() == "zh/moh" })
	h.m.AgentReachability("1001", nil, sip.ReasonUnreachable)
	rec := h.record(done)
	want(t, "disposition", rec.Disposition, cdr.DispositionAnswered)
	want(t, "side", rec.HangupSide, sip.SideAgent)
	want(t, "cause", rec.HangupCause, "agent-lost")
	if leg.hungUpWith() == "" {
		t.Error("the caller got no BYE")
	}
	eventually(t, "the agent's leg hung up", func() bool { return ag.hungUpWith() != "" })
	want(t, "agent state", h.agentState("1001"), acd.AgentLoggedOut)
}

func TestHoldAndUnhold(t *testing.T) {
	h := newHarness(t)
	leg, ag, br, done := h.connected()
	h.clock.Advance(10 * time.Second)
	hold(ag)
	eventually(t, "hold: bridge stopped, music to the caller", func() bool { return !br.on() && h.media.stream(0).loop() == "zh/moh" })
	h.clock.Advance(7 * time.Second)
	ag.updates <- ag.media
	eventually(t, "unhold: bridge again", func() bool { return br.on() && h.media.stream(0).loop() == "" })
	h.clock.Advance(5 * time.Second)
	leg.end(sip.SideCaller, "BYE", 0)
	rec := h.record(done)
	want(t, "talk", rec.Talk, 15*time.Second)
	want(t, "hold", rec.Hold, 7*time.Second)
	if u := h.recs.eventsOf("UNHOLD"); len(u) != 1 || u[0].AgentID != "1001" || u[0].Data1 != "7.000" {
		t.Errorf("UNHOLD events %+v, want one for 1001 of 7.000 s", u)
	}
	want(t, "HOLD events", len(h.recs.eventsOf("HOLD")), 1)
}

// A blind transfer to a queue with nobody ready: the caller hears music on hold at once,
// the transferring phone gets 202 and its NOTIFY and BYE off the loop (here it never
// answers the BYE), and the next agent is bridged the moment they answer.
func TestBlindTransferToQueue(t *testing.T) {
	h := newHarness(t)
	h.ready("1001")
	leg := newLeg("c1")
	done := h.dial(leg)
	first := h.answer(h.waitRing("1001"), "a1")
	first.hangupBlock = make(chan struct{}) // the transferor stops answering after its REFER
	h.waitBridged(0)
	h.clock.Advance(30 * time.Second)

	bad := sip.NewRefer(sipgosip.Uri{User: "nowhere", Host: "127.0.0.1"}, "1001")
	first.refers <- bad
	eventually(t, "unknown target refused", func() bool { return bad.Answer() == 404 })

	refer := sip.NewRefer(sipgosip.Uri{User: "complaint", Host: "127.0.0.1"}, "1001")
	first.refers <- refer
	eventually(t, "202", func() bool { return refer.Answer() == 202 })
	eventually(t, "music on hold for the transferred caller", func() bool { return h.media.stream(0).loop() == "zh/moh2" })
	h.waitStage(StageQueued)
	eventually(t, "the final NOTIFY", func() bool { return slices.Equal(refer.Notified(), []int{200}) })

	eventually(t, "the snapshot journaled after the transfer", func() bool {
		b := h.recs.lastBegun()
		return b.Visits == "consult/1001>complaint" && b.Agent == "1001" && b.Transfers == 1 && b.IVRPath == "consult"
	})
	h.clock.Advance(8 * time.Second)
	h.ready("1002")
	h.answer(h.waitRing("1002"), "a2")
	h.waitBridged(1) // while the first phone's BYE is still unanswered
	if first.hungUpWith() != "transferred" {
		t.Errorf("transferor hung up with %q", first.hungUpWith())
	}
	h.clock.Advance(20 * time.Second)
	leg.end(sip.SideCaller, "BYE", 0)
	close(first.hangupBlock) // the call waits (10 s at most) for the transferor's BYE before it returns
	rec := h.record(done)
	want(t, "disposition", rec.Disposition, cdr.DispositionAnswered)
	want(t, "agent (first)", rec.Agent, "1001")
	want(t, "queue (first)", rec.Queue, "consult")
	want(t, "visits", rec.Visits, "consult/1001>complaint/1002")
	want(t, "transfers", rec.Transfers, 1)
	want(t, "talk", rec.Talk, 50*time.Second)
	if tr := h.recs.eventsOf("TRANSFER"); len(tr) != 1 || tr[0].AgentID != "1001" || tr[0].Data1 != "complaint" {
		t.Errorf("TRANSFER events %+v", tr)
	}
	if eq := h.recs.eventsOf("ENTERQUEUE"); len(eq) != 2 || eq[1].Queue != "complaint" {
		t.Errorf("ENTERQUEUE events %+v: the target queue must count an offered call", eq)
	}
}

func TestDrainWhileQueued(t *testing.T) {
	h := newHarness(t)
	leg := newLeg("c1")
	done := h.dial(leg)
	h.waitStage(StageQueued)
	h.m.HangupAll(ErrDrain)
	rec := h.record(done)
	want(t, "disposition", rec.Disposition, cdr.DispositionFailed)
	want(t, "side", rec.HangupSide, sip.SideSystem)
	want(t, "cause", rec.HangupCause, "drain")
	want(t, "BYE cause", leg.hungUpWith(), "drain")
}

// A drain cancels the call's context, which also ends its RTP session: both are ready when
// the loop looks (here: after a slow journal write); the cause is the drain, every time.
func TestDrainWhileSessionEnds(t *testing.T) {
	for i := range 20 {
		h := newHarness(t)
		gate := make(chan struct{})
		h.recs.mu.Lock()
		h.recs.gate = gate
		h.recs.mu.Unlock()
		leg := newLeg("c1")
		done := h.dial(leg)
		eventually(t, "answer journaled", func() bool { h.recs.mu.Lock(); defer h.recs.mu.Unlock(); return len(h.recs.begun) == 1 })
		h.m.HangupAll(ErrDrain)
		close(h.media.stream(0).done)
		h.recs.mu.Lock()
		h.recs.gate = nil
		h.recs.mu.Unlock()
		close(gate)
		rec := h.record(done)
		if rec.HangupCause != "drain" {
			t.Fatalf("run %d: cause %q, want drain", i, rec.HangupCause)
		}
	}
}

func TestCallerCancelsBeforeAnswer(t *testing.T) {
	h := newHarness(t)
	leg := newLeg("c1")
	leg.delay = 2 * time.Second
	done := h.dial(leg)
	h.waitStage(StageSetup)
	leg.end(sip.SideCaller, "CANCEL", 487)
	rec := h.record(done)
	want(t, "disposition", rec.Disposition, cdr.DispositionCallerCancelled)
	want(t, "status", rec.SIPStatus, 487)
	want(t, "cause", rec.HangupCause, "CANCEL")
	want(t, "answered", rec.Answer.IsZero(), true)
}

func TestRefusedCalls(t *testing.T) {
	t.Run("no route", func(t *testing.T) {
		h := newHarness(t)
		leg := newLeg("c1")
		leg.called = "99999"
		rec := h.record(h.dial(leg))
		want(t, "disposition", rec.Disposition, cdr.DispositionFailed)
		want(t, "status", rec.SIPStatus, 404)
		want(t, "rejected", leg.rejected, 404)
	})
	t.Run("no RTP port", func(t *testing.T) {
		h := newHarness(t)
		h.media.fail = errTest
		leg := newLeg("c1")
		rec := h.record(h.dial(leg))
		want(t, "disposition", rec.Disposition, cdr.DispositionFailed)
		want(t, "status", rec.SIPStatus, 503)
	})
}

func TestMaxWaitTimeout(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.ACDQueues[0].MaxWait = time.Minute; c.ACDQueues[0].JoinEmpty = true })
	leg := newLeg("c1")
	done := h.dial(leg)
	h.waitStage(StageQueued)
	eventually(t, "music on hold", func() bool { return h.media.stream(0).loop() != "" })
	h.clock.Advance(time.Minute)
	rec := h.record(done)
	want(t, "disposition", rec.Disposition, cdr.DispositionTimeout)
	want(t, "cause", rec.HangupCause, "max-wait")
	if p := h.media.stream(0).playedFlat(); !slices.Contains(p, "zh/exit") {
		t.Errorf("played %v: want the exit prompt", p)
	}
}

func TestNoAgentLoggedIn(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.ACDQueues[0].JoinEmpty = false })
	rec := h.record(h.dial(newLeg("c1")))
	want(t, "disposition", rec.Disposition, cdr.DispositionNoAgent)
	want(t, "queue", rec.Queue, "consult")
}

func TestExitKey(t *testing.T) {
	h := newHarness(t)
	leg := newLeg("c1")
	done := h.dial(leg)
	h.waitStage(StageQueued)
	leg.digits <- '0'
	rec := h.record(done)
	want(t, "disposition", rec.Disposition, cdr.DispositionExitKey)
	if k := h.recs.eventsOf("EXITWITHKEY"); len(k) != 1 || k[0].Data1 != "0" {
		t.Errorf("EXITWITHKEY events %+v, want key 0", k)
	}
}

func TestIVRHangupAndClosedHours(t *testing.T) {
	t.Run("ivr", func(t *testing.T) {
		h := newHarness(t, func(c *Config) { c.Routes = []ivr.Route{{Number: "12345", Menu: "main"}} })
		leg := newLeg("c1")
		done := h.dial(leg)
		h.waitStage(StageIVR)
		leg.digits <- '9' // "hangup"
		rec := h.record(done)
		want(t, "disposition", rec.Disposition, cdr.DispositionIVRHangup)
		want(t, "path", rec.IVRPath, "main>9>hangup")
		want(t, "side", rec.HangupSide, sip.SideSystem)
	})
	t.Run("closed", func(t *testing.T) {
		h := newHarness(t, func(c *Config) {
			c.Routes = []ivr.Route{{Number: "12345", Menu: "main", ClosedMenu: "main", Holidays: []string{"2026-12-07"}}}
		})
		leg := newLeg("c1")
		done := h.dial(leg)
		h.waitStage(StageIVR)
		leg.end(sip.SideCaller, "BYE", 0)
		rec := h.record(done)
		want(t, "disposition", rec.Disposition, cdr.DispositionClosedHours)
	})
}

func TestCallerRTPTimeout(t *testing.T) {
	h := newHarness(t)
	leg := newLeg("c1")
	done := h.dial(leg)
	h.waitStage(StageQueued)
	close(h.media.stream(0).done)
	rec := h.record(done)
	want(t, "disposition", rec.Disposition, cdr.DispositionFailed)
	want(t, "cause", rec.HangupCause, "rtp-timeout")
	want(t, "side", rec.HangupSide, sip.SideSystem)
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name string
		e    Ending
		want cdr.Disposition
		side string
	}{
		{"cancel", Ending{Cause: ErrCallerHangup, LegStatus: 487}, cdr.DispositionCallerCancelled, sip.SideCaller},
		{"refused", Ending{Cause: ErrRejected, LegSide: sip.SideSystem, LegStatus: 403}, cdr.DispositionFailed, sip.SideSystem},
		{"no ack", Ending{Cause: errors.Join(ErrNotAnswered, errTest)}, cdr.DispositionFailed, sip.SideSystem},
		{"ivr", Ending{Cause: ErrIVREnded, Answered: true}, cdr.DispositionIVRHangup, sip.SideSystem},
		{"closed", Ending{Cause: ErrCallerHangup, Answered: true, Closed: true}, cdr.DispositionClosedHours, sip.SideCaller},
		{"answered", Ending{Cause: ErrAgentHangup, Answered: true, Queued: true, Agent: true}, cdr.DispositionAnswered, sip.SideAgent},
		{"agent lost", Ending{Cause: ErrAgentLost, Answered: true, Queued: true, Agent: true}, cdr.DispositionAnswered, sip.SideAgent},
		{"abandoned", Ending{Cause: ErrCallerHangup, Answered: true, Queued: true}, cdr.DispositionAbandoned, sip.SideCaller},
		{"timeout", Ending{Cause: ErrMaxWait, Answered: true, Queued: true}, cdr.DispositionTimeout, sip.SideSystem},
		{"no agent", Ending{Cause: ErrNoAgent, Answered: true, Queued: true}, cdr.DispositionNoAgent, sip.SideSystem},
		{"exit key", Ending{Cause: ErrCallerHangup, Answered: true, Queued: true, LeftByKey: true}, cdr.DispositionExitKey, sip.SideCaller},
		{"drained", Ending{Cause: ErrDrain, Answered: true, Queued: true}, cdr.DispositionFailed, sip.SideSystem},
	} {
		o := Classify(tc.e)
		if o.Disposition != tc.want || o.Side != tc.side {
			t.Errorf("%s: %+v, want %s by %s", tc.name, o, tc.want, tc.side)
		}
		if !o.Disposition.Valid() {
			t.Errorf("%s: %q is not in the taxonomy", tc.name, o.Disposition)
		}
	}
	// A vanished agent phone has its own cause; an agent's BYE stays BYE.
	if o := Classify(Ending{Cause: ErrAgentLost, Answered: true, Queued: true, Agent: true}); o.Cause != "agent-lost" {
		t.Errorf("agent lost: cause %q, want agent-lost", o.Cause)
	}
	if o := Classify(Ending{Cause: ErrAgentHangup, Answered: true, Queued: true, Agent: true}); o.Cause != "BYE" {
		t.Errorf("agent BYE: cause %q, want BYE", o.Cause)
	}
}

// An escalation overflow: the caller's visits show both queues, answered or not, and the
// overflowed caller is answered in the target queue with their place kept.
func TestOverflowVisits(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.Routes = []ivr.Route{{Number: "12345", Queue: "complaint"}}
		c.ACDQueues[1].Escalations = []acd.Escalation{{After: 3 * time.Second, Overflow: "consult"}}
		c.Agents = []acd.AgentConfig{{ID: "1006", Skills: map[string]int{"consult": 5}}}
	})
	leg := newLeg("c1")
	done := h.dial(leg)
	h.waitStage(StageQueued)
	eventually(t, "queued, music on hold", func() bool { return h.media.stream(0).loop() == "zh/moh2" }) // the escalation runs from here
	h.clock.Advance(3 * time.Second)
	eventually(t, "overflowed", func() bool { l := h.m.Live(); return len(l) == 1 && l[0].Queue == "consult" })
	eventually(t, "the snapshot journaled after the overflow", func() bool {
		b := h.recs.lastBegun()
		return b.Visits == "complaint>consult" && b.Queue == "complaint"
	})
	h.clock.Advance(2 * time.Second)
	h.ready("1006")
	h.answer(h.waitRing("1006"), "a6")
	h.waitBridged(0)
	leg.end(sip.SideCaller, "BYE", 0)
	rec := h.record(done)
	want(t, "visits", rec.Visits, "complaint>consult/1006")
	want(t, "queue (first)", rec.Queue, "complaint")
	want(t, "wait (from the first queue)", rec.Wait(), 5*time.Second)
}

// A softphone that holds the caller before its REFER: the hold is closed with an UNHOLD for
// the transferring agent, and the caller goes on hearing music in the target queue.
func TestTransferWhileHeld(t *testing.T) {
	h := newHarness(t)
	leg, ag, br, done := h.connected()
	h.clock.Advance(10 * time.Second)
	hold(ag)
	eventually(t, "held", func() bool { return !br.on() })
	h.clock.Advance(5 * time.Second)
	refer := sip.NewRefer(sipgosip.Uri{User: "complaint", Host: "127.0.0.1"}, "1001")
	ag.refers <- refer
	eventually(t, "202", func() bool { return refer.Answer() == 202 })
	eventually(t, "music of the target queue", func() bool { return h.media.stream(0).loop() == "zh/moh2" })
	leg.end(sip.SideCaller, "BYE", 0)
	rec := h.record(done)
	want(t, "talk", rec.Talk, 10*time.Second)
	want(t, "hold", rec.Hold, 5*time.Second)
	if u := h.recs.eventsOf("UNHOLD"); len(u) != 1 || u[0].AgentID != "1001" || u[0].Data1 != "5.000" {
		t.Errorf("UNHOLD events %+v, want one for 1001 of 5.000 s", u)
	}
}

// The queue's maximum wait ran out and the caller hangs up during the exit prompt: still a
// timeout, as the queue log says (EXITWITHTIMEOUT), not an abandon.
func TestHangupDuringExitPrompt(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.ACDQueues[0].MaxWait = time.Minute })
	leg := newLeg("c1")
	done := h.dial(leg)
	h.waitStage(StageQueued)
	s := h.media.stream(0)
	eventually(t, "queued, music on hold", func() bool { return s.loop() == "zh/moh" }) // the max wait runs from here
	s.mu.Lock()
	s.instant = false // prompts now play until they are stopped
	s.mu.Unlock()
	h.clock.Advance(time.Minute)
	eventually(t, "exit prompt", func() bool { return slices.Contains(s.playedFlat(), "zh/exit") })
	leg.end(sip.SideCaller, "BYE", 0)
	rec := h.record(done)
	want(t, "disposition", rec.Disposition, cdr.DispositionTimeout)
	want(t, "side", rec.HangupSide, sip.SideCaller)
}
