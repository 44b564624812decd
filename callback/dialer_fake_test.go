package callback

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"
	_ "time/tzdata" // Asia/Shanghai on hosts without a zone database

	"github.com/hotline12345/hotline/call"
	"github.com/hotline12345/hotline/cdr"
	"github.com/hotline12345/hotline/ivr"
)

// The dialer's tests run it on a manual clock against fakes. A test moves
// time only when the dialer is quiet (its loop blocked with nothing to
// receive, every call it started entered, every call that ended applied), so
// what happens at a fake instant happens completely before time moves on.

// testClock is a manual clock: channel timers for the dialer, function timers
// for the fakes; time moves only in advance.
type testClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*testTimer
	// fired counts the channel timers that fired, discarded those of them
	// stopped before their tick was received.
	fired, discarded int64
}

type testTimer struct {
	c       *testClock
	at      time.Time
	ch      chan time.Time
	f       func()
	stopped bool
}

func newTestClock(now time.Time) *testClock { return &testClock{now: now} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) NewTimer(d time.Duration) ivr.Timer {
	return c.add(d, &testTimer{ch: make(chan time.Time, 1)})
}

func (c *testClock) afterFunc(d time.Duration, f func()) { c.add(d, &testTimer{f: f}) }

func (c *testClock) add(d time.Duration, t *testTimer) *testTimer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t.c, t.at = c, c.now.Add(d)
	c.timers = append(c.timers, t)
	return t
}

func (t *testTimer) C() <-chan time.Time { return t.ch }

func (t *testTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.stopped && slices.Contains(t.c.timers, t)
	if !t.stopped && t.ch != nil && len(t.ch) > 0 {
		t.c.discarded++
	}
	t.stopped = true
	t.c.timers = slices.DeleteFunc(t.c.timers, func(x *testTimer) bool { return x == t })
	return was
}

// advanceTo moves time to end, firing the timers that fall due, in order.
func (c *testClock) advanceTo(end time.Time) {
	for {
		c.mu.Lock()
		var next *testTimer
		for _, t := range c.timers {
			if !t.at.After(end) && (next == nil || t.at.Before(next.at)) {
				next = t
			}
		}
		if next == nil {
			if end.After(c.now) {
				c.now = end
			}
			c.mu.Unlock()
			return
		}
		c.timers = slices.DeleteFunc(c.timers, func(x *testTimer) bool { return x == next })
		if next.at.After(c.now) {
			c.now = next.at
		}
		if next.f == nil {
			next.ch <- next.at
			c.fired++
		}
		c.mu.Unlock()
		if next.f != nil {
			next.f()
		}
	}
}

// advanceToNext moves to the earliest timer (false if there is none).
func (c *testClock) advanceToNext() bool {
	c.mu.Lock()
	if len(c.timers) == 0 {
		c.mu.Unlock()
		return false
	}
	next := c.timers[0].at
	for _, t := range c.timers[1:] {
		if t.at.Before(next) {
			next = t.at
		}
	}
	c.mu.Unlock()
	c.advanceTo(next)
	return true
}

// unread is the number of timer ticks the receiver has not taken (received
// ticks are counted by the receiver: received).
func (c *testClock) unread(received int64) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fired - c.discarded - received
}

// testTrunks is a trunk table: mobile numbers only, limits per trunk.
type testTrunks struct {
	mu     sync.Mutex
	limits map[string][2]float64 // channels, cps
	plan   *regexp.Regexp
}

func newTestTrunks() *testTrunks {
	return &testTrunks{
		limits: map[string][2]float64{"out": {0, 0}},
		plan:   regexp.MustCompile(`^1[3-9][0-9]{9}$`),
	}
}

func (tr *testTrunks) set(name string, channels int, cps float64) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.limits[name] = [2]float64{float64(channels), cps}
}

func (tr *testTrunks) setPlan(re string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.plan = regexp.MustCompile(re)
}

func (tr *testTrunks) TrunkAllows(trunk, number string) bool {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	_, ok := tr.limits[trunk]
	return ok && tr.plan.MatchString(number)
}

func (tr *testTrunks) TrunkLimits(trunk string) (int, float64, bool) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	l, ok := tr.limits[trunk]
	return int(l[0]), l[1], ok
}

// callLog is one survey call or task as the far end saw it.
type callLog struct {
	task     bool
	campaign string
	caseID   string
	trunk    string
	queue    string
	attempt  int
	prio     int
	at, end  time.Time
}

// hold says how a fake call lasts: 0 ends at once, > 0 after that much fake
// time, < 0 until the test releases it (or the context ends).
type hold = time.Duration

const untilReleased hold = -1

// testCalls is the far end: it scripts each call's result and duration,
// records start times, and checks concurrency and that no target is ever
// in two calls (a survey and a task included).
type testCalls struct {
	clock  *testClock
	survey func(r call.SurveyRequest) (call.SurveyResult, hold)
	task   func(r call.TaskRequest) (call.TaskResult, hold)

	mu          sync.Mutex
	started     int64
	finished    int64
	log         []callLog
	inCall      map[tkey]bool
	active      map[string]int // by campaign (surveys)
	trunkActive map[string]int // by trunk (surveys)
	maxActive   map[string]int
	maxTrunk    map[string]int
	held        map[tkey]*heldCall
	violations  []string
}

type heldCall struct {
	done   chan struct{}
	survey call.SurveyResult
	task   call.TaskResult
}

func newTestCalls(clock *testClock) *testCalls {
	return &testCalls{
		clock:  clock,
		survey: func(call.SurveyRequest) (call.SurveyResult, hold) { return answered(cdr.SatisfactionSatisfied), 0 },
		task: func(call.TaskRequest) (call.TaskResult, hold) {
			return call.TaskResult{Disposition: cdr.DispositionAnswered, Agent: "1001"}, 0
		},
		inCall: map[tkey]bool{}, active: map[string]int{}, trunkActive: map[string]int{},
		maxActive: map[string]int{}, maxTrunk: map[string]int{}, held: map[tkey]*heldCall{},
	}
}

func answered(satisfaction string) call.SurveyResult {
	digit := map[string]string{cdr.SatisfactionSatisfied: "1", cdr.SatisfactionBasicallySatisfied: "2", cdr.SatisfactionDissatisfied: "3"}[satisfaction]
	return call.SurveyResult{Disposition: cdr.DispositionAnswered, Status: 200, Satisfaction: satisfaction,
		Answers: []ivr.Answer{{Question: "service", Digit: digit, Meaning: satisfaction}}}
}

func failedWith(d cdr.Disposition, status int) call.SurveyResult {
	return call.SurveyResult{Disposition: d, Status: status}
}

// begin records a call's start; with h > 0 or untilReleased it returns the
// channel that its end closes.
func (f *testCalls) begin(l callLog, h hold, hc *heldCall) chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := tkey{l.campaign, l.caseID}
	if f.inCall[k] {
		f.violations = append(f.violations, fmt.Sprintf("%s/%s called twice at once", l.campaign, l.caseID))
	}
	f.inCall[k] = true
	if !l.task {
		f.active[l.campaign]++
		f.trunkActive[l.trunk]++
		f.maxActive[l.campaign] = max(f.maxActive[l.campaign], f.active[l.campaign])
		f.maxTrunk[l.trunk] = max(f.maxTrunk[l.trunk], f.trunkActive[l.trunk])
	}
	l.at = f.clock.Now()
	f.log = append(f.log, l)
	f.started++
	switch {
	case h == 0:
		f.finished++
		return nil
	case h > 0:
		hc.done = make(chan struct{})
		f.clock.afterFunc(h, func() {
			f.mu.Lock()
			f.finished++
			f.mu.Unlock()
			close(hc.done)
		})
	default:
		hc.done = make(chan struct{})
		f.held[k] = hc
	}
	return hc.done
}

func (f *testCalls) end(l callLog) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.inCall, tkey{l.campaign, l.caseID})
	if !l.task {
		f.active[l.campaign]--
		f.trunkActive[l.trunk]--
	}
	for i := len(f.log) - 1; i >= 0; i-- {
		if x := &f.log[i]; x.campaign == l.campaign && x.caseID == l.caseID && x.task == l.task && x.end.IsZero() {
			x.end = f.clock.Now()
			break
		}
	}
}

func (f *testCalls) Survey(ctx context.Context, r call.SurveyRequest) call.SurveyResult {
	f.mu.Lock()
	res, h := f.survey(r)
	f.mu.Unlock()
	l := callLog{campaign: r.Campaign, caseID: r.CaseID, trunk: r.Trunk, attempt: r.Attempt}
	hc := &heldCall{survey: res}
	if done := f.begin(l, h, hc); done != nil {
		select {
		case <-done:
			res = hc.survey
		case <-ctx.Done():
			res = failedWith(cdr.DispositionInterrupted, 0)
		}
	}
	f.end(l)
	return res
}

func (f *testCalls) Task(ctx context.Context, r call.TaskRequest) call.TaskResult {
	f.mu.Lock()
	res, h := f.task(r)
	f.mu.Unlock()
	l := callLog{task: true, campaign: r.Campaign, caseID: r.CaseID, trunk: r.Trunk, queue: r.Queue, attempt: r.Attempt, prio: r.Priority}
	hc := &heldCall{task: res}
	if done := f.begin(l, h, hc); done != nil {
		select {
		case <-done:
			res = hc.task
		case <-ctx.Done():
			res = call.TaskResult{Disposition: cdr.DispositionInterrupted}
		}
	}
	f.end(l)
	return res
}

// release ends a held call with a survey result (or a task result for a task).
func (f *testCalls) release(t *testing.T, campaign, caseID string, survey call.SurveyResult, task call.TaskResult) {
	t.Helper()
	f.mu.Lock()
	k := tkey{campaign, caseID}
	hc := f.held[k]
	if hc == nil {
		f.mu.Unlock()
		t.Fatalf("no held call for %s/%s", campaign, caseID)
	}
	delete(f.held, k)
	hc.survey, hc.task = survey, task
	f.finished++
	f.mu.Unlock()
	close(hc.done)
}

// calls returns the log (surveys, tasks or both).
func (f *testCalls) calls(filter func(callLog) bool) []callLog {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []callLog
	for _, l := range f.log {
		if filter == nil || filter(l) {
			out = append(out, l)
		}
	}
	return out
}

func surveys(l callLog) bool { return !l.task }
func tasks(l callLog) bool   { return l.task }

func (f *testCalls) counts() (started, finished int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.started, f.finished
}
