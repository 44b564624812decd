package callback

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hotline12345/hotline/call"
	"github.com/hotline12345/hotline/cdr"
)

// seed stores a campaign and targets as a previous process left them.
func seed(t *testing.T, s Store, c Campaign, ts ...Target) {
	t.Helper()
	ctx := context.Background()
	if err := s.CreateCampaign(ctx, c); err != nil {
		t.Fatal(err)
	}
	if _, refused, err := s.AddTargets(ctx, c.ID, ts); err != nil || len(refused) > 0 {
		t.Fatalf("AddTargets: %v %v", err, refused)
	}
}

func seededCampaign(now time.Time) Campaign {
	return Campaign{ID: "old", Name: "old", Script: "satisfaction", Trunk: "out", Window: Window{From: "00:00", To: "24:00"},
		MaxConcurrent: 5, CPS: 10, MaxAttempts: 3, Fallback: "callback", State: CampaignRunning, Created: now.Add(-time.Hour),
		Retry: RetryDelays{Busy: time.Minute, NoAnswer: time.Minute, Failed: time.Minute, Interrupted: 4 * time.Minute}}
}

func TestDialerRecovery(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := newHarness(t, monday10, func(c *Config) { c.Registerer = reg })
	seed(t, h.store, seededCampaign(monday10),
		Target{CaseID: "mid-call", Phone: "13900000001", State: TargetDialing, Attempts: 1, Deadline: monday10.Add(time.Hour)},
		Target{CaseID: "last-try", Phone: "13900000002", State: TargetDialing, Attempts: 3, Outcome: OutcomeBusy},
		Target{CaseID: "with-human", Phone: "13900000003", State: TargetHuman, Attempts: 3, HumanTries: 1, Deadline: monday10.Add(30 * time.Minute)},
		Target{CaseID: "done", Phone: "13900000004", State: TargetDone, Attempts: 1, Outcome: OutcomeAnswered},
	)
	h.start()

	if got := h.store.target("old", "mid-call"); got.State != TargetPending || got.Outcome != OutcomeInterrupted || got.Attempts != 1 ||
		!got.NextAt.Equal(monday10.Add(4*time.Minute)) {
		t.Errorf("mid-call after recovery %+v, want pending, interrupted, retry in 4 min", got)
	}
	h.runUntil(time.Hour, "all final", func() bool { return h.finalCount("old") == 4 })
	var got []string
	for _, l := range h.calls.calls(nil) {
		got = append(got, fmt.Sprintf("%s task=%v attempt=%d +%v prio=%d", l.caseID, l.task, l.attempt, l.at.Sub(monday10), l.prio))
	}
	want := []string{
		"with-human task=true attempt=2 +0s prio=1", // its task started again; at risk (deadline in 30 min)
		"last-try task=true attempt=1 +0s prio=0",   // exhausted by the interrupted attempt: to a human at once
		"mid-call task=false attempt=2 +4m0s prio=0",
	}
	slices.Sort(got) // calls started at one instant enter the far end in any order
	slices.Sort(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("calls\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if v := metricValue(t, reg, "hotline_campaign_calls_total", OutcomeInterrupted); v != 2 {
		t.Errorf("interrupted calls counted %v, want 2", v)
	}
	if v := metricValue(t, reg, "hotline_campaign_calls_total", OutcomeAnswered); v != 1 {
		t.Errorf("answered calls counted %v, want 1", v)
	}
	if v := metricValue(t, reg, "hotline_campaign_tasks_total", OutcomeAnswered); v != 2 {
		t.Errorf("answered tasks counted %v, want 2", v)
	}
	if v := metricValue(t, reg, "hotline_campaign_calls_active", ""); v != 0 {
		t.Errorf("active calls %v, want 0", v)
	}
	if s := h.store.campaign("old").State; s != CampaignDone {
		t.Errorf("campaign %s, want done", s)
	}
}

// metricValue reads a counter or gauge from reg, the one with a label valued
// label (any, when label is "").
func metricValue(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := label == ""
			for _, lp := range m.GetLabel() {
				match = match || lp.GetValue() == label
			}
			if !match {
				continue
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

func TestDialerShutdownSavesCallsInFlight(t *testing.T) {
	h := newHarness(t, monday10, nil)
	h.calls.survey = func(call.SurveyRequest) (call.SurveyResult, hold) { return call.SurveyResult{}, untilReleased }
	h.calls.task = func(call.TaskRequest) (call.TaskResult, hold) { return call.TaskResult{}, untilReleased }
	seed(t, h.store, seededCampaign(monday10),
		Target{CaseID: "human", Phone: "13900000001", State: TargetHuman, Attempts: 3, HumanTries: 1},
		Target{CaseID: "survey", Phone: "13900000002"})
	h.start()
	h.runUntil(time.Second, "a call and a task", func() bool { return len(h.calls.calls(nil)) == 2 })
	h.stop()
	if got := h.store.target("old", "survey"); got.State != TargetPending || got.Outcome != OutcomeInterrupted || got.Attempts != 1 {
		t.Errorf("survey in flight at shutdown %+v, want pending, interrupted, attempt counted", got)
	}
	if got := h.store.target("old", "human"); got.State != TargetHuman || got.HumanTries != 1 {
		t.Errorf("task in flight at shutdown %+v, want human, the try not counted", got)
	}
	if err := h.d.Pause(context.Background(), "old"); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Pause after Run: %v, want ErrNotRunning", err)
	}
	if err := h.d.Run(context.Background()); !errors.Is(err, ErrRunning) {
		t.Errorf("second Run: %v", err)
	}
}

func TestDialerAfterCall(t *testing.T) {
	rule := &AfterCallRule{Queues: []string{"complaint"}, Delay: 10 * time.Minute, Script: "satisfaction", Trunk: "out"}
	h := newHarness(t, monday10, func(c *Config) { c.AfterCall = rule }).start()
	end := monday10.Add(-time.Minute)
	base := cdr.Record{Direction: cdr.DirectionInbound, Disposition: cdr.DispositionAnswered, Queue: "complaint", Agent: "1002", End: end}
	recs := []cdr.Record{
		{ID: "call-1", Caller: "13900000001", CaseNumber: "CASE-1"},
		{ID: "call-2", Caller: "13900000002"},                                                     // no case number: the call id
		{ID: "call-3", Caller: "13900000003", Queue: "consult"},                                   // another queue
		{ID: "call-4", Caller: "13900000004", Queue: "consult", Visits: "consult>complaint/1005"}, // transferred into the queue
		{ID: "call-5", Caller: "13900000005", Disposition: cdr.DispositionAbandoned},
		{ID: "call-6", Caller: "02161234567"}, // a landline: outside the dial plan
	}
	for _, r := range recs {
		rec := base
		rec.ID, rec.Caller, rec.CaseNumber = r.ID, r.Caller, r.CaseNumber
		if r.Queue != "" {
			rec.Queue, rec.Visits = r.Queue, r.Visits
		}
		if r.Disposition != "" {
			rec.Disposition = r.Disposition
		}
		h.d.AfterCall(rec)
	}
	h.settle()
	c := h.store.campaign(AfterCallCampaign)
	if c.State != CampaignRunning || c.Script != "satisfaction" || c.Trunk != "out" {
		t.Fatalf("after-call campaign %+v", c)
	}
	var ids []string
	for _, tg := range h.store.all(AfterCallCampaign) {
		ids = append(ids, tg.CaseID)
	}
	if strings.Join(ids, ",") != "CASE-1,call-2,call-4" {
		t.Errorf("targets %v, want CASE-1, call-2, call-4", ids)
	}
	if tg := h.store.target(AfterCallCampaign, "CASE-1"); tg.CallID != "call-1" || tg.Agent != "1002" || tg.Queue != "complaint" ||
		!tg.ClosedAt.Equal(end) || !tg.Deadline.Equal(end.Add(DefaultDeadline)) || !tg.NextAt.Equal(end.Add(10*time.Minute)) {
		t.Errorf("target %+v", tg)
	}
	h.runUntil(time.Hour, "the surveys", func() bool { return h.finalCount(AfterCallCampaign) == 3 })
	for _, l := range h.calls.calls(nil) {
		if due := end.Add(10 * time.Minute); l.at.Before(due) || l.at.After(due.Add(pollEvery)) {
			t.Errorf("survey at %v, want within a poll of %v", l.at, due)
		}
	}
	// The campaign is done; a later call reopens it.
	h.runUntil(time.Minute, "done", func() bool { return h.store.campaign(AfterCallCampaign).State == CampaignDone })
	rec := base
	rec.ID, rec.Caller, rec.End = "call-7", "13900000007", h.clock.Now()
	h.d.AfterCall(rec)
	h.settle()
	if s := h.store.campaign(AfterCallCampaign).State; s != CampaignRunning {
		t.Errorf("after a new call the campaign is %s, want running", s)
	}
	h.runUntil(time.Hour, "the new survey", func() bool { return h.finalCount(AfterCallCampaign) == 4 })
}

func TestDialerCreateValidation(t *testing.T) {
	h := newHarness(t, monday10, nil).start()
	ctx := context.Background()
	for _, c := range []Campaign{
		{Name: "", Script: "satisfaction", Trunk: "out"},
		{Name: "x", Script: "nope", Trunk: "out"},
		{Name: "x", Script: "satisfaction", Trunk: "nope"},
		{Name: "x", Script: "satisfaction", Trunk: "out", Window: Window{From: "9", To: "20:00"}},
	} {
		if _, _, err := h.d.Create(ctx, c, nil); !errors.Is(err, ErrBadCampaign) {
			t.Errorf("Create(%+v) = %v, want ErrBadCampaign", c, err)
		}
	}
	c, _, err := h.d.Create(ctx, Campaign{Name: "defaults", Script: "satisfaction", Trunk: "out", Window: Window{From: "08:00", To: "21:00"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.ID == "" || c.State != CampaignRunning || !c.Created.Equal(monday10) || c.MaxAttempts != DefaultMaxAttempts || c.CPS != 100 ||
		c.Retry.Busy != time.Minute || c.RingTimeout != 0 || c.Deadline != DefaultDeadline || c.Window.From != "08:00" {
		t.Errorf("campaign with defaults %+v", c)
	}
	h.settle()
	if s := h.store.campaign(c.ID).State; s != CampaignDone {
		t.Errorf("a campaign without targets is %s, want done", s)
	}
	n, _, err := h.d.AddTargets(ctx, c.ID, []Target{{CaseID: "late", Phone: "13900000001", ClosedAt: monday10.Add(-23 * time.Hour)}})
	if err != nil || n != 1 {
		t.Fatalf("AddTargets: %d %v", n, err)
	}
	h.runUntil(time.Minute, "the new target", func() bool { return h.finalCount(c.ID) == 1 })
	if tg := h.store.target(c.ID, "late"); !tg.Deadline.Equal(monday10.Add(time.Hour)) {
		t.Errorf("deadline %v, want closed-at + 24 h", tg.Deadline)
	}
	if _, _, err := h.d.AddTargets(ctx, "nope", nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("AddTargets to an unknown campaign: %v", err)
	}
	list, err := h.d.List(ctx)
	if err != nil || len(list) != 1 || list[0].ID != c.ID || list[0].Counts.Done != 1 || list[0].Targets != nil {
		t.Errorf("List %+v %v", list, err)
	}
}

func TestDialerRetriesFailedWrites(t *testing.T) {
	h := newHarness(t, monday10, nil)
	var down atomic.Bool
	h.store.fail = func(op string) error {
		if down.Load() && op == "Update" {
			return errors.New("database is down")
		}
		return nil
	}
	h.calls.survey = func(call.SurveyRequest) (call.SurveyResult, hold) {
		down.Store(true) // the database goes down during the call
		return answered(cdr.SatisfactionSatisfied), 10 * time.Second
	}
	h.start()
	c := h.create(Campaign{}, 1)
	h.runFor(time.Minute)
	if got := h.store.target(c.ID, "c00"); got.State != TargetDialing {
		t.Fatalf("target %+v, want still dialing in the store", got)
	}
	down.Store(false)
	h.runUntil(time.Minute, "the result saved", func() bool { return h.finalCount(c.ID) == 1 })
	if n := len(h.calls.calls(nil)); n != 1 {
		t.Errorf("%d calls, want 1", n)
	}
}

// TestDialerSimulation runs several campaigns with random outcomes and
// durations through the dialer and checks the invariants at the end: every
// target final, attempts within bounds, no call outside the window, limits
// kept (the far end checks no target is in two calls at once).
func TestDialerSimulation(t *testing.T) {
	sh := shanghaiLoc(t)
	h := newHarness(t, time.Date(2026, 12, 7, 8, 0, 0, 0, sh), nil)
	h.trunks.set("out", 8, 5)
	rng := rand.New(rand.NewPCG(1, 2))
	outcomes := []call.SurveyResult{answered(cdr.SatisfactionSatisfied), answered(cdr.SatisfactionDissatisfied),
		failedWith(cdr.DispositionBusy, 486), failedWith(cdr.DispositionNoAnswer, 480), failedWith(cdr.DispositionFailed, 503),
		failedWith(cdr.DispositionInvalidNumber, 404)}
	h.calls.survey = func(call.SurveyRequest) (call.SurveyResult, hold) {
		return outcomes[rng.IntN(len(outcomes))], time.Duration(5+rng.IntN(120)) * time.Second
	}
	h.calls.task = func(call.TaskRequest) (call.TaskResult, hold) {
		d := []cdr.Disposition{cdr.DispositionAnswered, cdr.DispositionNoAnswer, cdr.DispositionBusy}[rng.IntN(3)]
		return call.TaskResult{Disposition: d, Agent: "1001"}, time.Duration(30+rng.IntN(300)) * time.Second
	}
	h.start()
	w := Window{From: "09:00", To: "20:00"}
	var ids []string
	for i, max := range []int{3, 4, 6} {
		c := h.create(Campaign{Name: fmt.Sprint("sim", i), Window: w, MaxConcurrent: max, CPS: 2, MaxAttempts: 3, Fallback: "callback",
			FallbackDissatisfied: i%2 == 0, Retry: RetryDelays{Busy: time.Minute, NoAnswer: 3 * time.Minute, Failed: 2 * time.Minute}}, 30)
		ids = append(ids, c.ID)
	}
	h.runUntil(48*time.Hour, "every target final", func() bool {
		n := 0
		for _, id := range ids {
			n += h.finalCount(id)
		}
		return n == 90
	})
	for _, l := range h.calls.calls(nil) {
		if !w.Open(l.at, sh) {
			t.Errorf("call at %v outside the window", l.at.In(sh))
		}
	}
	for _, id := range ids {
		for _, tg := range h.store.all(id) {
			if tg.Attempts < 1 || tg.Attempts > 3 || tg.HumanTries > 3 {
				t.Errorf("%s: attempts %d, human tries %d", tg.CaseID, tg.Attempts, tg.HumanTries)
			}
			if tg.State == TargetDone && tg.ReachedBy == "" {
				t.Errorf("%s done, never reached", tg.CaseID)
			}
		}
		if s := h.store.campaign(id).State; s != CampaignDone {
			t.Errorf("campaign %s", s)
		}
	}
	h.calls.mu.Lock()
	defer h.calls.mu.Unlock()
	if h.calls.maxTrunk["out"] > 8 {
		t.Errorf("trunk concurrency %d > 8", h.calls.maxTrunk["out"])
	}
	for i, id := range ids {
		if m := h.calls.maxActive[id]; m > []int{3, 4, 6}[i] {
			t.Errorf("campaign %d concurrency %d", i, m)
		}
	}
}

// TestDialerWithSQLiteStore runs a retry and a restart against the real SQLite store.
func TestDialerWithSQLiteStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hotline.db")
	open := func() Store {
		s, err := OpenStore(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	h := newHarness(t, monday10, func(c *Config) { c.Store = s })
	h.calls.survey = func(r call.SurveyRequest) (call.SurveyResult, hold) {
		if r.Attempt == 1 {
			return failedWith(cdr.DispositionBusy, 486), 10 * time.Second
		}
		return call.SurveyResult{}, untilReleased
	}
	h.start()
	c := h.create(Campaign{MaxAttempts: 3}, 3)
	h.runUntil(10*time.Minute, "the second attempts", func() bool { return len(h.calls.calls(surveys)) == 6 })
	h.stop() // a restart: the calls in flight end interrupted and are saved
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open()
	t.Cleanup(func() { s.Close() }) // after h2 stops (cleanups run last first)
	h2 := newHarness(t, h.clock.Now(), func(c *Config) { c.Store = s })
	h2.start()
	h2.runUntil(time.Hour, "all done", func() bool {
		ts, err := s.Targets(context.Background(), c.ID, TargetDone, 0)
		return err == nil && len(ts) == 3
	})
	ts, err := s.Targets(context.Background(), c.ID, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, tg := range ts {
		if tg.Attempts != 3 || tg.Outcome != OutcomeAnswered || tg.Satisfaction != cdr.SatisfactionSatisfied || tg.Answers != "service=1" {
			t.Errorf("target %+v", tg)
		}
	}
	if n := len(h2.calls.calls(nil)); n != 3 {
		t.Errorf("%d calls after the restart, want 3", n)
	}
}

// TestDialerCrashRestart cuts the store off mid-campaign (as a kill -9 would:
// nothing more is saved), then runs a new dialer on what was stored: every
// target ends, and its attempts are exactly the survey calls made to it.
func TestDialerCrashRestart(t *testing.T) {
	h := newHarness(t, monday10, nil)
	var crashed atomic.Bool
	h.store.fail = func(string) error {
		if crashed.Load() {
			return errors.New("process killed")
		}
		return nil
	}
	rng := rand.New(rand.NewPCG(3, 4))
	script := func(call.SurveyRequest) (call.SurveyResult, hold) {
		r := []call.SurveyResult{answered(cdr.SatisfactionSatisfied), failedWith(cdr.DispositionBusy, 486), failedWith(cdr.DispositionNoAnswer, 480)}[rng.IntN(3)]
		return r, time.Duration(10+rng.IntN(50)) * time.Second
	}
	h.calls.survey = script
	h.calls.task = func(call.TaskRequest) (call.TaskResult, hold) {
		return call.TaskResult{Disposition: cdr.DispositionNoAnswer}, time.Minute
	}
	h.start()
	c := h.create(Campaign{MaxConcurrent: 4, CPS: 2, MaxAttempts: 3, Fallback: "callback"}, 20)
	h.runFor(4 * time.Minute)
	crashed.Store(true)
	h.stop()
	crashed.Store(false)
	inFlight := 0
	for _, tg := range h.store.all(c.ID) {
		if tg.State == TargetDialing || tg.State == TargetHuman {
			inFlight++
		}
	}
	if inFlight == 0 {
		t.Fatal("nothing was in flight at the crash; the test proves nothing")
	}

	h2 := newHarness(t, h.clock.Now(), func(cfg *Config) { cfg.Store = h.store })
	h2.store = h.store
	h2.calls.survey, h2.calls.task = script, h.calls.task
	h2.start()
	h2.runUntil(24*time.Hour, "every target final", func() bool { return h2.finalCount(c.ID) == 20 })
	calls := map[string]int{}
	for _, l := range append(h.calls.calls(surveys), h2.calls.calls(surveys)...) {
		calls[l.caseID]++
	}
	for _, tg := range h.store.all(c.ID) {
		if tg.Attempts != calls[tg.CaseID] {
			t.Errorf("%s: %d attempts stored, %d calls made", tg.CaseID, tg.Attempts, calls[tg.CaseID])
		}
	}
}

// TestDialerHoldsWhileRecordsCannotBeWritten: while Config.Admit refuses (a full disk),
// no call starts; when it admits again, the campaign goes on.
func TestDialerHoldsWhileRecordsCannotBeWritten(t *testing.T) {
	var full atomic.Bool
	full.Store(true)
	h := newHarness(t, monday10, func(c *Config) {
		c.Admit = func() error {
			if full.Load() {
				return cdr.ErrBacklogged
			}
			return nil
		}
	})
	h.calls.survey = func(call.SurveyRequest) (call.SurveyResult, hold) {
		return answered(cdr.SatisfactionSatisfied), 10 * time.Second
	}
	h.start()
	c := h.create(Campaign{}, 3)
	h.runFor(10 * time.Minute)
	if n := len(h.calls.calls(nil)); n != 0 {
		t.Fatalf("%d calls started while records could not be written, want 0", n)
	}
	if got := h.store.target(c.ID, "c00"); got.State != TargetPending || got.Attempts != 0 {
		t.Fatalf("target %+v, want pending with no attempt", got)
	}
	full.Store(false)
	h.runUntil(10*time.Minute, "the campaign done", func() bool { return h.finalCount(c.ID) == 3 })
	if n := len(h.calls.calls(nil)); n != 3 {
		t.Errorf("%d calls, want 3", n)
	}
}
