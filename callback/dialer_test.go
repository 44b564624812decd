package callback

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hotline12345/hotline/call"
	"github.com/hotline12345/hotline/cdr"
)

// monday10 is Monday 2026-12-07 10:00 in Shanghai, as UTC.
var monday10 = time.Date(2026, 12, 7, 2, 0, 0, 0, time.UTC)

func TestDialerWindow(t *testing.T) {
	sh := shanghaiLoc(t)
	// Friday 2026-12-04 19:50. Saturday is a holiday, Sunday a worked day (调休), and the
	// window is on weekdays only: after Friday 20:00 the next call is on Sunday at 09:00.
	start := time.Date(2026, 12, 4, 19, 50, 0, 0, sh)
	h := newHarness(t, start, nil)
	h.calls.survey = func(call.SurveyRequest) (call.SurveyResult, hold) {
		return answered(cdr.SatisfactionSatisfied), 5 * time.Minute
	}
	h.start()
	w := Window{From: "09:00", To: "20:00", Days: []string{"mon-fri"}, Holidays: []string{"2026-12-05"}, Workdays: []string{"2026-12-06"}}
	c := h.create(Campaign{Window: w, MaxConcurrent: 1}, 10)
	h.runUntil(72*time.Hour, "all targets done", func() bool { return h.finalCount(c.ID) == 10 })

	var got []string
	for _, l := range h.calls.calls(surveys) {
		if !w.Open(l.at, sh) {
			t.Errorf("call at %s outside the window", l.at.In(sh))
		}
		got = append(got, l.at.In(sh).Format("Mon 15:04:05"))
	}
	want := []string{"Fri 19:50:00", "Fri 19:55:00", "Sun 09:00:00", "Sun 09:05:00", "Sun 09:10:00",
		"Sun 09:15:00", "Sun 09:20:00", "Sun 09:25:00", "Sun 09:30:00", "Sun 09:35:00"}
	if !slices.Equal(got, want) {
		t.Errorf("call times\n got %v\nwant %v", got, want)
	}
	if s := h.store.campaign(c.ID).State; s != CampaignDone {
		t.Errorf("campaign state %s, want done", s)
	}
}

func TestDialerWindowAllDay(t *testing.T) {
	sh := shanghaiLoc(t)
	start := time.Date(2026, 12, 7, 3, 0, 0, 0, sh)
	h := newHarness(t, start, nil).start()
	c := h.create(Campaign{Window: Window{From: "00:00", To: "24:00"}}, 1)
	h.runUntil(time.Minute, "the call", func() bool { return h.finalCount(c.ID) == 1 })
	if l := h.calls.calls(surveys); len(l) != 1 || !l[0].at.Equal(start) {
		t.Errorf("calls %+v, want one at 03:00", l)
	}
}

func TestDialerPacing(t *testing.T) {
	t.Run("campaign", func(t *testing.T) {
		h := newHarness(t, monday10, nil).start()
		c := h.create(Campaign{CPS: 2, MaxConcurrent: 100}, 20)
		h.runUntil(time.Minute, "all targets done", func() bool { return h.finalCount(c.ID) == 20 })
		checkPacing(t, h.calls.calls(surveys), 2, 20)
	})
	t.Run("trunk across campaigns", func(t *testing.T) {
		h := newHarness(t, monday10, nil)
		h.trunks.set("out", 0, 2)
		h.start()
		a := h.create(Campaign{CPS: 10, MaxConcurrent: 100}, 10)
		b := h.create(Campaign{CPS: 10, MaxConcurrent: 100}, 10)
		h.runUntil(time.Minute, "all targets done", func() bool { return h.finalCount(a.ID)+h.finalCount(b.ID) == 20 })
		ls := h.calls.calls(surveys)
		checkPacing(t, ls, 2, 20)
		perCampaign := map[string]int{}
		for _, l := range ls[:10] {
			perCampaign[l.campaign]++
		}
		if perCampaign[a.ID] < 3 || perCampaign[b.ID] < 3 {
			t.Errorf("the first 10 calls by campaign %v: one campaign starved the other", perCampaign)
		}
	})
}

// checkPacing checks n start times: spaced >= 1/cps, never more than cps in
// any 1 s window, and paced exactly (the last at (n-1)/cps).
func checkPacing(t *testing.T, ls []callLog, cps float64, n int) {
	t.Helper()
	if len(ls) != n {
		t.Fatalf("%d calls, want %d", len(ls), n)
	}
	gap := time.Duration(float64(time.Second) / cps)
	for i := 1; i < len(ls); i++ {
		if d := ls[i].at.Sub(ls[i-1].at); d < gap {
			t.Errorf("calls %d and %d %v apart, want >= %v", i-1, i, d, gap)
		}
	}
	for i := range ls {
		in := 0
		for _, l := range ls {
			if !l.at.Before(ls[i].at) && l.at.Before(ls[i].at.Add(time.Second)) {
				in++
			}
		}
		if float64(in) > cps {
			t.Errorf("%d calls in the second from %v", in, ls[i].at)
		}
	}
	if d := ls[n-1].at.Sub(ls[0].at); d != time.Duration(n-1)*gap {
		t.Errorf("%d calls took %v, want %v", n, d, time.Duration(n-1)*gap)
	}
}

func TestDialerConcurrency(t *testing.T) {
	h := newHarness(t, monday10, nil)
	h.trunks.set("out", 5, 0)
	n := 0
	h.calls.survey = func(call.SurveyRequest) (call.SurveyResult, hold) {
		n++
		return answered(cdr.SatisfactionSatisfied), time.Duration(10+n%7) * time.Second
	}
	h.start()
	a := h.create(Campaign{MaxConcurrent: 3, CPS: 50}, 30)
	b := h.create(Campaign{MaxConcurrent: 3, CPS: 50}, 30)
	h.runUntil(10*time.Minute, "all targets done", func() bool { return h.finalCount(a.ID)+h.finalCount(b.ID) == 60 })
	h.calls.mu.Lock()
	defer h.calls.mu.Unlock()
	if h.calls.maxActive[a.ID] > 3 || h.calls.maxActive[b.ID] > 3 {
		t.Errorf("campaign concurrency %v, want <= 3", h.calls.maxActive)
	}
	if m := h.calls.maxTrunk["out"]; m != 5 {
		t.Errorf("trunk concurrency reached %d, want 5 (its channels, not more)", m)
	}
}

func TestDialerRetryByOutcome(t *testing.T) {
	h := newHarness(t, monday10, nil)
	h.calls.survey = func(r call.SurveyRequest) (call.SurveyResult, hold) {
		if r.Attempt == 1 {
			return failedWith(cdr.DispositionBusy, 486), 10 * time.Second
		}
		r2 := answered(cdr.SatisfactionBasicallySatisfied)
		r2.CallID = "call-2"
		return r2, 30 * time.Second
	}
	h.start()
	c := h.create(Campaign{MaxAttempts: 3, Retry: RetryDelays{Busy: 2 * time.Minute}}, 1)
	h.runUntil(10*time.Minute, "done", func() bool { return h.finalCount(c.ID) == 1 })
	ls := h.calls.calls(surveys)
	if len(ls) != 2 {
		t.Fatalf("%d calls, want 2", len(ls))
	}
	if want := ls[0].end.Add(2 * time.Minute); !ls[1].at.Equal(want) {
		t.Errorf("retry at %v, want %v (busy delay after the first call's end)", ls[1].at, want)
	}
	got := h.store.target(c.ID, "c00")
	want := Target{State: TargetDone, Outcome: OutcomeAnswered, Attempts: 2, Satisfaction: cdr.SatisfactionBasicallySatisfied,
		Answers: "service=2", ReachedAt: ls[1].end, ReachedBy: ReachedByMachine, LastCall: "call-2"}
	if got.State != want.State || got.Outcome != want.Outcome || got.Attempts != want.Attempts || got.Satisfaction != want.Satisfaction ||
		got.Answers != want.Answers || !got.ReachedAt.Equal(want.ReachedAt) || got.ReachedBy != want.ReachedBy || got.LastCall != want.LastCall {
		t.Errorf("target %+v\nwant %+v", got, want)
	}
	if ls[0].attempt != 1 || ls[1].attempt != 2 {
		t.Errorf("attempts %d, %d", ls[0].attempt, ls[1].attempt)
	}
}

func TestDialerInvalidNumberNotRetried(t *testing.T) {
	h := newHarness(t, monday10, nil)
	h.calls.survey = func(call.SurveyRequest) (call.SurveyResult, hold) {
		return failedWith(cdr.DispositionInvalidNumber, 404), time.Second
	}
	h.start()
	c := h.create(Campaign{MaxAttempts: 5, Fallback: "callback"}, 1)
	h.runUntil(time.Minute, "final", func() bool { return h.finalCount(c.ID) == 1 })
	h.runFor(time.Hour)
	if n := len(h.calls.calls(nil)); n != 1 {
		t.Errorf("%d calls and tasks, want the one survey call", n)
	}
	if got := h.store.target(c.ID, "c00"); got.State != TargetFailed || got.Outcome != OutcomeInvalid || got.Attempts != 1 {
		t.Errorf("target %+v, want failed invalid-number after 1 attempt", got)
	}
}

func TestDialerExhaustedToHuman(t *testing.T) {
	t.Run("answered by the agent", func(t *testing.T) {
		h := newHarness(t, monday10, nil)
		h.calls.survey = func(call.SurveyRequest) (call.SurveyResult, hold) {
			return failedWith(cdr.DispositionNoAnswer, 480), 30 * time.Second
		}
		h.calls.task = func(call.TaskRequest) (call.TaskResult, hold) {
			return call.TaskResult{Disposition: cdr.DispositionAnswered, Agent: "1003", CallID: "task-1"}, 3 * time.Minute
		}
		h.start()
		c := h.create(Campaign{MaxAttempts: 2, Fallback: "callback", Retry: RetryDelays{NoAnswer: 10 * time.Minute}}, 1)
		h.runUntil(time.Hour, "done", func() bool { return h.finalCount(c.ID) == 1 })
		ss, ts := h.calls.calls(surveys), h.calls.calls(tasks)
		if len(ss) != 2 || len(ts) != 1 {
			t.Fatalf("%d surveys and %d tasks, want 2 and 1", len(ss), len(ts))
		}
		if !ts[0].at.Equal(ss[1].end) || ts[0].queue != "callback" || ts[0].attempt != 1 {
			t.Errorf("task %+v, want queue callback attempt 1 at %v", ts[0], ss[1].end)
		}
		got := h.store.target(c.ID, "c00")
		if got.State != TargetDone || got.Outcome != OutcomeNoAnswer || got.Attempts != 2 || got.Human != OutcomeAnswered ||
			got.HumanAgent != "1003" || got.ReachedBy != ReachedByHuman || !got.ReachedAt.Equal(ts[0].end) || got.HumanTries != 0 {
			t.Errorf("target %+v", got)
		}
	})
	t.Run("the human fails too", func(t *testing.T) {
		h := newHarness(t, monday10, nil)
		h.calls.survey = func(call.SurveyRequest) (call.SurveyResult, hold) {
			return failedWith(cdr.DispositionFailed, 503), time.Second
		}
		h.calls.task = func(call.TaskRequest) (call.TaskResult, hold) {
			return call.TaskResult{Disposition: cdr.DispositionBusy, Agent: "1004"}, time.Minute
		}
		h.start()
		c := h.create(Campaign{MaxAttempts: 2, Fallback: "callback", Retry: RetryDelays{Failed: time.Minute, Busy: 7 * time.Minute}}, 1)
		h.runUntil(time.Hour, "final", func() bool { return h.finalCount(c.ID) == 1 })
		ts := h.calls.calls(tasks)
		if len(ts) != 2 || ts[1].attempt != 2 || !ts[1].at.Equal(ts[0].end.Add(7*time.Minute)) {
			t.Errorf("tasks %+v, want 2, the second 7 min (busy) after the first", ts)
		}
		got := h.store.target(c.ID, "c00")
		if got.State != TargetFailed || got.Human != OutcomeBusy || got.HumanTries != 2 || got.ReachedBy != "" {
			t.Errorf("target %+v, want failed with human busy after 2 tries", got)
		}
		if s := h.store.campaign(c.ID).State; s != CampaignDone {
			t.Errorf("campaign %s, want done", s)
		}
	})
	t.Run("no fallback", func(t *testing.T) {
		h := newHarness(t, monday10, nil)
		h.calls.survey = func(call.SurveyRequest) (call.SurveyResult, hold) {
			return failedWith(cdr.DispositionBusy, 486), time.Second
		}
		h.start()
		c := h.create(Campaign{MaxAttempts: 3}, 1)
		h.runUntil(time.Hour, "final", func() bool { return h.finalCount(c.ID) == 1 })
		if got := h.store.target(c.ID, "c00"); got.State != TargetFailed || got.Attempts != 3 || len(h.calls.calls(tasks)) != 0 {
			t.Errorf("target %+v, want failed after 3 attempts and no task", got)
		}
	})
}

func TestDialerDissatisfied(t *testing.T) {
	for _, toAgent := range []bool{false, true} {
		t.Run(fmt.Sprint("to agent ", toAgent), func(t *testing.T) {
			h := newHarness(t, monday10, nil)
			h.calls.survey = func(call.SurveyRequest) (call.SurveyResult, hold) {
				r := answered(cdr.SatisfactionDissatisfied)
				r.ToAgent = toAgent
				return r, 40 * time.Second
			}
			h.start()
			c := h.create(Campaign{Fallback: "callback", FallbackDissatisfied: true}, 1)
			h.runUntil(time.Hour, "final", func() bool { return h.finalCount(c.ID) == 1 })
			got := h.store.target(c.ID, "c00")
			wantTasks := map[bool]int{false: 1, true: 0}[toAgent]
			if n := len(h.calls.calls(tasks)); n != wantTasks {
				t.Errorf("%d tasks, want %d", n, wantTasks)
			}
			if got.State != TargetDone || got.Satisfaction != cdr.SatisfactionDissatisfied || got.ReachedBy != ReachedByMachine {
				t.Errorf("target %+v", got)
			}
			if !toAgent && got.HumanAgent != "1001" {
				t.Errorf("human agent %q, want 1001", got.HumanAgent)
			}
		})
	}
}

func TestDialerDNCAndDialPlan(t *testing.T) {
	h := newHarness(t, monday10, func(c *Config) { c.Defaults.DoNotCall = []string{"13900000002"} }).start()
	ts := []Target{
		{CaseID: "a", Phone: "13900000001"},
		{CaseID: "b", Phone: "13900000002"}, // DNC (the defaults')
		{CaseID: "c", Phone: "13900000003"}, // DNC (the campaign's)
		{CaseID: "d", Phone: "110"},         // outside the dial plan
		{CaseID: "a", Phone: "13900000004"}, // duplicate
		{CaseID: "", Phone: "13900000005"},
	}
	c, refused, err := h.d.Create(context.Background(), Campaign{Name: "dnc", Script: "satisfaction", Trunk: "out", DoNotCall: []string{"13900000003"}}, ts)
	if err != nil {
		t.Fatal(err)
	}
	var idx []int
	for _, r := range refused {
		idx = append(idx, r.Index)
	}
	if !slices.Equal(idx, []int{3, 4, 5}) || !strings.Contains(refused[0].Err, ErrNotInDialPlan.Error()) {
		t.Errorf("refused %+v, want 3 (dial plan), 4 (duplicate), 5 (no case id)", refused)
	}
	h.runUntil(time.Minute, "done", func() bool { return h.store.campaign(c.ID).State == CampaignDone })
	for _, l := range h.calls.calls(nil) {
		if l.caseID != "a" {
			t.Errorf("called %s", l.caseID)
		}
	}
	for _, id := range []string{"b", "c"} {
		if got := h.store.target(c.ID, id); got.State != TargetDone || got.Outcome != OutcomeDNC || got.Attempts != 0 {
			t.Errorf("target %s %+v, want done dnc", id, got)
		}
	}
}

func TestDialerDialPlanCheckedBeforeDialling(t *testing.T) {
	h := newHarness(t, monday10, nil).start()
	c := h.create(Campaign{Window: Window{From: "11:00", To: "12:00"}}, 2)
	h.trunks.setPlan(`^13900000001$`) // the plan changed before the window opened
	h.runUntil(2*time.Hour, "final", func() bool { return h.finalCount(c.ID) == 2 })
	ls := h.calls.calls(nil)
	if len(ls) != 1 || ls[0].caseID != "c01" {
		t.Errorf("calls %+v, want only c01", ls)
	}
	if got := h.store.target(c.ID, "c00"); got.State != TargetFailed || got.Attempts != 0 {
		t.Errorf("c00 %+v, want failed without an attempt", got)
	}
}

func TestDialerPauseResumeCancel(t *testing.T) {
	h := newHarness(t, monday10, nil)
	h.calls.survey = func(call.SurveyRequest) (call.SurveyResult, hold) { return call.SurveyResult{}, untilReleased }
	h.start()
	ctx := context.Background()
	c := h.create(Campaign{MaxConcurrent: 2}, 6)
	h.runUntil(time.Second, "two calls", func() bool { return len(h.calls.calls(nil)) == 2 })

	if err := h.d.Pause(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	h.calls.release(t, c.ID, "c00", answered(cdr.SatisfactionSatisfied), call.TaskResult{})
	h.calls.release(t, c.ID, "c01", failedWith(cdr.DispositionBusy, 486), call.TaskResult{})
	h.runFor(10 * time.Minute)
	if n := len(h.calls.calls(nil)); n != 2 {
		t.Fatalf("%d calls while paused, want 2", n)
	}
	if st, err := h.d.Status(ctx, c.ID, 0); err != nil || st.State != CampaignPaused || st.Counts.Pending != 5 || st.Counts.Done != 1 || len(st.Targets) != 6 {
		t.Errorf("status %+v %v", st, err)
	}

	if err := h.d.Resume(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	resumed := h.clock.Now()
	h.runFor(time.Second)
	ls := h.calls.calls(nil)
	if len(ls) != 4 || !ls[2].at.Equal(resumed) {
		t.Fatalf("calls after resume %+v, want 2 more, the first at once", ls)
	}

	if err := h.d.Cancel(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	h.calls.release(t, c.ID, ls[2].caseID, failedWith(cdr.DispositionNoAnswer, 480), call.TaskResult{})
	h.calls.release(t, c.ID, ls[3].caseID, answered(cdr.SatisfactionSatisfied), call.TaskResult{})
	h.runFor(time.Hour)
	if n := len(h.calls.calls(nil)); n != 4 {
		t.Errorf("%d calls after cancel, want 4", n)
	}
	st, err := h.d.Status(ctx, c.ID, -1)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != CampaignCancelled || st.Counts.Done != 2 || st.Counts.Cancelled != 4 || st.Counts.Pending != 0 || st.Counts.InProgress != 0 {
		t.Errorf("status %+v", st)
	}
	if got := h.store.target(c.ID, ls[2].caseID); got.State != TargetCancelled || got.Outcome != OutcomeNoAnswer || got.Attempts != ls[2].attempt || !got.NextAt.IsZero() {
		t.Errorf("call in flight at cancel %+v, want cancelled with its outcome", got)
	}
	for _, f := range []func(context.Context, string) error{h.d.Pause, h.d.Resume, h.d.Cancel} {
		if err := f(ctx, c.ID); !errors.Is(err, ErrFinal) {
			t.Errorf("on a cancelled campaign: %v, want ErrFinal", err)
		}
	}
	if _, _, err := h.d.AddTargets(ctx, c.ID, []Target{{CaseID: "x", Phone: "13900000099"}}); !errors.Is(err, ErrFinal) {
		t.Errorf("AddTargets on a cancelled campaign: %v, want ErrFinal", err)
	}
	if err := h.d.Pause(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Pause of an unknown campaign: %v", err)
	}
}
