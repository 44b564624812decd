package call

import (
	"context"
	"fmt"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/hotline12345/hotline/cdr"
	"github.com/hotline12345/hotline/ivr"
	"github.com/hotline12345/hotline/sip"
)

// fakeTrunks is an outbound trunk whose far end the test steers: each dial waits for the
// test to answer or refuse it, or for its ctx (ring timeout, cancel).
type fakeTrunks struct {
	mu    sync.Mutex
	dials []*fakeTrunkLeg
}

var mobile = regexp.MustCompile(`^1[3-9]\d{9}$`)

type fakeTrunkLeg struct {
	*fakeLeg
	number  string
	ctx     context.Context
	outcome chan error
}

func (l *fakeTrunkLeg) Wait() error {
	select {
	case err := <-l.outcome:
		if err != nil {
			l.end(sip.SideAgent, "refused", 0)
		}
		return err
	case <-l.ctx.Done():
		l.end(sip.SideSystem, "CANCEL", 487)
		return sip.ErrDialCanceled
	}
}

func (t *fakeTrunks) TrunkAllows(trunk, number string) bool { return mobile.MatchString(number) }

func (t *fakeTrunks) DialTrunk(ctx context.Context, trunk, number string, o sip.DialOptions) (TrunkLeg, error) {
	if !t.TrunkAllows(trunk, number) {
		return nil, fmt.Errorf("%w: %s", sip.ErrNotInDialPlan, number)
	}
	l := &fakeTrunkLeg{fakeLeg: newLeg("out-" + number), number: number, ctx: ctx, outcome: make(chan error, 1)}
	t.mu.Lock()
	t.dials = append(t.dials, l)
	t.mu.Unlock()
	return l, nil
}

func (t *fakeTrunks) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.dials)
}

func (t *fakeTrunks) waitDial(tb *testing.T, i int) *fakeTrunkLeg {
	tb.Helper()
	var l *fakeTrunkLeg
	eventually(tb, fmt.Sprintf("dial #%d", i), func() bool {
		t.mu.Lock()
		defer t.mu.Unlock()
		if i < len(t.dials) {
			l = t.dials[i]
		}
		return l != nil
	})
	return l
}

var satisfaction = ivr.Survey{
	Intro: []string{"survey_intro"},
	Questions: []ivr.Question{{Name: "service", Prompts: []string{"survey_question"},
		Answers: map[string]string{"1": cdr.SatisfactionSatisfied, "2": cdr.SatisfactionBasicallySatisfied, "3": cdr.SatisfactionDissatisfied}}},
	Thanks: []string{"survey_thanks"}, Timeout: ivr.Duration(6 * time.Second), MaxRetries: 1,
}

func newOutboundHarness(t *testing.T, edit ...func(*Config)) (*harness, *fakeTrunks) {
	tr := &fakeTrunks{}
	h := newHarness(t, append([]func(*Config){func(c *Config) {
		c.Trunks, c.CallbackTrunk, c.CallerIDs = tr, "loopback-out", map[string]string{"loopback-out": "12345"}
		c.Surveys = map[string]ivr.Survey{"satisfaction": satisfaction}
	}}, edit...)...)
	return h, tr
}

// survey runs a survey call on its own goroutine.
func (h *harness) survey(r SurveyRequest) chan SurveyResult {
	out := make(chan SurveyResult, 1)
	done := make(chan struct{})
	h.calls = append(h.calls, done)
	go func() { defer close(done); out <- h.m.Survey(context.Background(), r) }()
	return out
}

func result[T any](t *testing.T, ch chan T) T {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("the call did not end")
	}
	var zero T
	return zero
}

func surveyReq(number string) SurveyRequest {
	return SurveyRequest{Trunk: "loopback-out", Number: number, Script: "satisfaction", Campaign: "c1", CaseID: "2026120700001", Attempt: 1}
}

func TestSurveySatisfied(t *testing.T) {
	h, tr := newOutboundHarness(t)
	res := h.survey(surveyReq("13900000001"))
	leg := tr.waitDial(t, 0)
	leg.outcome <- nil
	h.waitStage(StageSurvey)
	eventually(t, "question asked", func() bool {
		return len(h.media.stream(0).playedFlat()) >= 2
	})
	leg.digits <- '1'
	r := result(t, res)
	want(t, "disposition", r.Disposition, cdr.DispositionAnswered)
	want(t, "satisfaction", r.Satisfaction, cdr.SatisfactionSatisfied)
	want(t, "status", r.Status, 200)
	if len(r.Answers) != 1 || r.Answers[0].Digit != "1" {
		t.Errorf("answers = %+v", r.Answers)
	}
	if leg.hungUpWith() == "" {
		t.Error("the server did not hang up after the thanks")
	}
	rec := h.recs.records()[0]
	want(t, "direction", rec.Direction, cdr.DirectionSurvey)
	want(t, "record satisfaction", rec.Satisfaction, cdr.SatisfactionSatisfied)
	want(t, "record answers", rec.SurveyAnswers, "1")
	want(t, "campaign", rec.Campaign, "c1")
	want(t, "target", rec.Target, "2026120700001")
	want(t, "attempt", rec.Attempt, 1)
	want(t, "called", rec.Called, "13900000001")
	want(t, "caller", rec.Caller, "12345")
	if rec.Answer.IsZero() || rec.ID != r.CallID {
		t.Errorf("record %+v", rec)
	}
	played := h.media.stream(0).playedFlat()
	want(t, "last prompt", played[len(played)-1], "zh/survey_thanks")
}

func TestSurveyRefusals(t *testing.T) {
	for _, tc := range []struct {
		code int
		want cdr.Disposition
	}{{486, cdr.DispositionBusy}, {600, cdr.DispositionBusy}, {480, cdr.DispositionNoAnswer}, {404, cdr.DispositionInvalidNumber}, {503, cdr.DispositionFailed}, {403, cdr.DispositionFailed}} {
		t.Run(fmt.Sprint(tc.code), func(t *testing.T) {
			h, tr := newOutboundHarness(t)
			res := h.survey(surveyReq("13900000002"))
			tr.waitDial(t, 0).outcome <- &sip.DialError{Code: tc.code, Reason: "x"}
			r := result(t, res)
			want(t, "disposition", r.Disposition, tc.want)
			want(t, "status", r.Status, tc.code)
			rec := h.recs.records()[0]
			want(t, "record disposition", rec.Disposition, tc.want)
			want(t, "record status", rec.SIPStatus, tc.code)
			if !rec.Answer.IsZero() {
				t.Error("an unanswered call has an answer time")
			}
		})
	}
}

func TestSurveyRingTimeout(t *testing.T) {
	h, tr := newOutboundHarness(t)
	req := surveyReq("13900000003")
	req.RingTimeout = 30 * time.Millisecond
	res := h.survey(req)
	tr.waitDial(t, 0)
	r := result(t, res)
	want(t, "disposition", r.Disposition, cdr.DispositionNoAnswer)
	want(t, "cause", h.recs.records()[0].HangupCause, "ring-timeout")
}

func TestSurveyOutsideDialPlan(t *testing.T) {
	h, tr := newOutboundHarness(t)
	r := result(t, h.survey(surveyReq("110")))
	want(t, "disposition", r.Disposition, cdr.DispositionInvalidNumber)
	want(t, "dials", tr.count(), 0)
}

func TestSurveyHangupBeforeRating(t *testing.T) {
	h, tr := newOutboundHarness(t)
	res := h.survey(surveyReq("13900000004"))
	leg := tr.waitDial(t, 0)
	leg.outcome <- nil
	h.waitStage(StageSurvey)
	leg.end(sip.SideCaller, "BYE", 0)
	r := result(t, res)
	want(t, "disposition", r.Disposition, cdr.DispositionAnswered)
	want(t, "satisfaction", r.Satisfaction, cdr.SatisfactionNotRated)
	want(t, "side", h.recs.records()[0].HangupSide, sip.SideCaller)
}

func TestSurveyShutdownWhileRinging(t *testing.T) {
	h, tr := newOutboundHarness(t)
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan SurveyResult, 1)
	go func() { out <- h.m.Survey(ctx, surveyReq("13900000005")) }()
	tr.waitDial(t, 0)
	cancel()
	r := result(t, out)
	want(t, "disposition", r.Disposition, cdr.DispositionInterrupted)
}

// task runs a callback task on its own goroutine.
func (h *harness) task(r TaskRequest) chan TaskResult {
	out := make(chan TaskResult, 1)
	done := make(chan struct{})
	h.calls = append(h.calls, done)
	go func() { defer close(done); out <- h.m.Task(context.Background(), r) }()
	return out
}

func TestTaskProgressive(t *testing.T) {
	h, tr := newOutboundHarness(t)
	h.ready("1001")
	res := h.task(TaskRequest{Queue: "consult", Trunk: "loopback-out", Number: "13900000006", CaseID: "42", Campaign: "c1", Attempt: 1})
	ring := h.waitRing("1001")
	want(t, "shown to the agent", ring.req.Caller, "13900000006")
	if tr.count() != 0 {
		t.Fatal("the citizen was dialled before the agent answered")
	}
	ag := h.answer(ring, "a1")
	citizen := tr.waitDial(t, 0)
	agentHeard := h.media.stream(0).playedFlat()
	want(t, "whisper", fmt.Sprint(agentHeard), "[zh/task_whisper zh/digit_4 zh/digit_2]")
	citizen.outcome <- nil
	h.waitBridged(0)
	h.waitStage(StageTalking)
	h.clock.Advance(40 * time.Second)
	ag.end(sip.SideAgent, "BYE", 0)
	r := result(t, res)
	want(t, "disposition", r.Disposition, cdr.DispositionAnswered)
	want(t, "agent", r.Agent, "1001")
	rec := h.recs.records()[0]
	want(t, "direction", rec.Direction, cdr.DirectionCallback)
	want(t, "record agent", rec.Agent, "1001")
	want(t, "talk", rec.Talk, 40*time.Second)
	if citizen.hungUpWith() == "" {
		t.Error("the citizen leg was not hung up after the agent left")
	}
	eventually(t, "agent in wrap-up", func() bool { return h.agentState("1001") == "wrap_up" })
}

func TestTaskCitizenBusy(t *testing.T) {
	h, tr := newOutboundHarness(t)
	h.ready("1001")
	res := h.task(TaskRequest{Queue: "consult", Trunk: "loopback-out", Number: "13900000007", CaseID: "7"})
	ag := h.answer(h.waitRing("1001"), "a1")
	tr.waitDial(t, 0).outcome <- &sip.DialError{Code: 486, Reason: "Busy Here"}
	r := result(t, res)
	want(t, "disposition", r.Disposition, cdr.DispositionBusy)
	want(t, "status", r.Status, 486)
	want(t, "agent", r.Agent, "1001")
	eventually(t, "agent hung up", func() bool { return ag.hungUpWith() != "" })
}

func TestTaskAgentLeavesWhileDialling(t *testing.T) {
	h, tr := newOutboundHarness(t)
	h.ready("1001")
	res := h.task(TaskRequest{Queue: "consult", Trunk: "loopback-out", Number: "13900000008", CaseID: "8"})
	ag := h.answer(h.waitRing("1001"), "a1")
	citizen := tr.waitDial(t, 0)
	ag.end(sip.SideAgent, "BYE", 0)
	r := result(t, res)
	if r.Disposition == cdr.DispositionAnswered {
		t.Errorf("disposition = %s, the citizen never answered", r.Disposition)
	}
	eventually(t, "citizen dial cancelled", func() bool { return citizen.ctx.Err() != nil })
}

func TestVirtualHold(t *testing.T) {
	h, tr := newOutboundHarness(t, func(c *Config) {
		q := c.Queues["consult"]
		q.CallbackAfter, q.CallbackDigit, q.ExitDigit = time.Second, "1", ""
		c.Queues["consult"] = q
	})
	leg := newLeg("c1")
	leg.caller = "13800138000"
	done := h.dial(leg)
	eventually(t, "caller's stream", func() bool { return h.media.stream(0) != nil })
	caller := func() *fakeStream { return h.media.stream(0) }
	eventually(t, "callback offered", func() bool {
		for _, p := range caller().playedFlat() {
			if p == "zh/"+PromptCallbackOffer {
				return true
			}
		}
		return false
	})
	eventually(t, "music on hold", func() bool { return caller().loop() != "" })
	leg.digits <- '1'
	eventually(t, "number read back", func() bool {
		p := caller().playedFlat()
		return len(p) > 0 && p[len(p)-1] == "zh/"+PromptCallbackConfirmPost
	})
	leg.digits <- '1'
	eventually(t, "caller hung up by us", func() bool { return leg.hungUpWith() == "callback" })
	h.waitStage(StageCallback)
	in := h.recs.records()[0]
	want(t, "inbound disposition", in.Disposition, cdr.DispositionCallback)
	want(t, "inbound queue", in.Queue, "consult")

	h.ready("1001")
	ag := h.answer(h.waitRing("1001"), "a1")
	citizen := tr.waitDial(t, 0)
	want(t, "dialled", citizen.number, "13800138000")
	citizen.outcome <- nil
	h.waitStage(StageTalking)
	ag.end(sip.SideAgent, "BYE", 0)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the callback did not end")
	}
	recs := h.recs.records()
	if len(recs) != 2 {
		t.Fatalf("records = %d, want the request and the callback", len(recs))
	}
	cb := recs[1]
	want(t, "callback direction", cb.Direction, cdr.DirectionCallback)
	want(t, "callback parent", cb.Parent, in.ID)
	want(t, "callback disposition", cb.Disposition, cdr.DispositionAnswered)
	want(t, "callback agent", cb.Agent, "1001")
	want(t, "kept place", cb.EnqueueTime, in.EnqueueTime)
}
