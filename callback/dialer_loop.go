package callback

import (
	"context"
	"errors"
	"math"
	"slices"
	"time"

	"github.com/hotline12345/hotline/call"
	"github.com/hotline12345/hotline/cdr"
)

// Loop timing.
const (
	pollEvery    = time.Second // a running campaign inside its window looks for due targets this often
	idleSleep    = time.Minute // the longest sleep when nothing is due
	minSleep     = time.Millisecond
	storeTimeout = 10 * time.Second // one store operation of the loop
	maxBatch     = 100              // targets fetched at once
	sweepBatch   = 1000             // pending targets cancelled per store read
)

// loopState is everything Run's goroutine owns.
type loopState struct {
	camps    map[string]*camp
	order    []*camp // by creation; the loop starts with a different one each tick
	rr       int
	trunks   map[string]*trunkState
	inflight map[tkey]bool // targets in a call or a task
	unsaved  []write       // target writes that failed, retried each tick
	stopping bool
	held     error           // Config.Admit's refusal while it lasts: nothing new starts
	lead     claimLead       // how long claims take: dials are prepared that much before their slot
	base     context.Context // Run's context without its cancellation: store writes
	callCtx  context.Context // Run's context: calls and tasks
}

func (l *loopState) init() {
	l.camps = map[string]*camp{}
	l.trunks = map[string]*trunkState{}
	l.inflight = map[tkey]bool{}
}

type tkey struct{ campaign, caseID string }

func key(t Target) tkey { return tkey{t.Campaign, t.CaseID} }

// camp is the loop's view of one campaign.
type camp struct {
	c         Campaign
	active    int // survey calls in flight
	tasks     int // human tasks in flight
	pace      pacer
	ready     []Target // due targets fetched, not yet claimed
	readyAt   time.Time
	idleUntil time.Time   // nothing due before (the store said so)
	retries   []time.Time // the retry times the loop set, ascending (at most maxRetryTimes)
	opensAt   time.Time   // the window's next opening while closed
	humans    []Target    // human targets waiting for a task, by deadline
	dirty     bool        // a target became final: check whether the campaign is done
	sweep     bool        // cancelled with pending targets left to cancel
}

// maxRetryTimes bounds camp.retries; later retries are found by polling.
const maxRetryTimes = 4096

// addRetry remembers that a target comes due at at, to look for it then.
func (c *camp) addRetry(at time.Time) {
	i, _ := slices.BinarySearchFunc(c.retries, at, time.Time.Compare)
	if i < maxRetryTimes {
		c.retries = slices.Insert(c.retries, i, at)
		c.retries = c.retries[:min(len(c.retries), maxRetryTimes)]
	}
}

// addHuman queues t for a task (replacing a copy already queued).
func (c *camp) addHuman(t Target) {
	if i := slices.IndexFunc(c.humans, func(x Target) bool { return x.CaseID == t.CaseID }); i >= 0 {
		c.humans = slices.Delete(c.humans, i, i+1)
	}
	i, _ := slices.BinarySearchFunc(c.humans, t, byDeadline)
	c.humans = slices.Insert(c.humans, i, t)
}

type trunkState struct {
	ok       bool
	channels int
	cps      float64
	active   int
	pace     pacer
}

// pacer spaces events at least gap apart (a token bucket of depth one): with
// gap = 1/cps there are never more than cps events in any one second.
type pacer struct {
	gap  time.Duration
	next time.Time
}

func gapFor(cps float64) time.Duration {
	if cps <= 0 {
		return 0
	}
	return time.Duration(math.Ceil(float64(time.Second) / cps))
}

// ready: a dial may be prepared now (its claim stored) to go out at p.next; lead is how
// long a claim takes, so that the call starts on its slot rather than a claim late.
func (p *pacer) ready(now time.Time, lead time.Duration) bool {
	return p.gap == 0 || !now.Before(p.next.Add(-lead))
}
func (p *pacer) take(at time.Time) { p.next = at.Add(p.gap) }

// claimLead is the store's claim time as the loop has seen it (a moving average), at most
// maxLead: the dialer prepares the next dial that much before its slot.
type claimLead struct{ avg time.Duration }

const maxLead = 20 * time.Millisecond

func (c *claimLead) observe(d time.Duration) { c.avg = min(maxLead, (7*c.avg+max(d, 0))/8) }

func batchFor(cps float64) int {
	if cps <= 0 {
		return maxBatch
	}
	return min(max(int(math.Ceil(cps)), 1), maxBatch)
}

type write struct {
	t    Target
	from string
}

// result is a call's or a task's end, posted to the loop.
type result struct {
	target Target
	task   bool
	survey call.SurveyResult
	taskr  call.TaskResult
}

type command struct {
	fn    func(context.Context) error
	reply chan error
}

type noteKind int

const (
	noteCampaign  noteKind = iota // a campaign was created
	noteTargets                   // targets were added to a campaign
	noteAfterCall                 // an answered inbound call for the after-call rule
)

type note struct {
	kind     noteKind
	campaign Campaign
	rec      cdr.Record
}

// Run is the dialer's loop. It recovers what a previous process left (dialing
// and human targets), then dials until ctx ends; then the calls and tasks in
// flight end (their context is ctx), their results are saved, and Run returns
// nil. It returns an error only if the recovery could not read the store.
func (d *Dialer) Run(ctx context.Context) error {
	if !d.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer close(d.done)
	l := &d.loop
	l.base, l.callCtx = context.WithoutCancel(ctx), ctx
	if err := d.recover(); err != nil {
		return err
	}
	var timer interface{ Stop() bool }
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		wake := d.tick()
		if timer != nil {
			timer.Stop()
		}
		t := d.clock.NewTimer(max(wake.Sub(d.clock.Now()), minSleep))
		timer = t
		d.probe.seq.Add(1)
		d.probe.idle.Store(true)
		select {
		case r := <-d.results:
			d.probe.idle.Store(false)
			d.handle(r)
		case c := <-d.cmds:
			d.probe.idle.Store(false)
			sctx, cancel := d.sctx()
			c.reply <- c.fn(sctx)
			cancel()
		case <-d.wakeCh:
			d.probe.idle.Store(false)
		case <-t.C():
			d.probe.idle.Store(false)
			d.probe.ticks.Add(1)
		case <-ctx.Done():
			d.probe.idle.Store(false)
			l.stopping = true
			for len(l.inflight) > 0 {
				d.handle(<-d.results)
			}
			d.flush()
			d.log.Info("dialer stopped", "unsaved", len(l.unsaved))
			return nil
		}
	}
}

// sctx is the context of one store operation of the loop.
func (d *Dialer) sctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(d.loop.base, storeTimeout)
}

// tick does everything due now and returns when to tick next.
func (d *Dialer) tick() time.Time {
	l := &d.loop
	now := d.clock.Now()
	wake := now.Add(idleSleep)
	d.flush()
	if len(l.unsaved) > 0 {
		wake = now.Add(pollEvery)
	}
	d.drainInbox()
	for name, tr := range l.trunks {
		channels, cps, ok := d.cfg.Trunks.TrunkLimits(name)
		if ok != tr.ok {
			d.log.Warn("outbound trunk availability changed", "trunk", name, "known", ok)
		}
		tr.ok, tr.channels, tr.cps, tr.pace.gap = ok, channels, cps, gapFor(cps)
	}
	if !d.admitted() {
		d.checkDone()
		return earliest(wake, now.Add(pollEvery))
	}
	n := len(l.order)
	for i := range n {
		c := l.order[(l.rr+i)%n]
		if c.sweep {
			d.sweepPending(c)
		}
		wake = earliest(wake, d.serve(c))
	}
	if n > 0 {
		l.rr = (l.rr + 1) % n
	}
	d.checkDone()
	return wake
}

// admitted asks Config.Admit whether new calls may start, and logs when
// the answer changes.
func (d *Dialer) admitted() bool {
	if d.cfg.Admit == nil {
		return true
	}
	err := d.cfg.Admit()
	switch {
	case err != nil && d.loop.held == nil:
		d.log.Error("campaigns hold: no new calls while records cannot be written", "err", err)
	case err == nil && d.loop.held != nil:
		d.log.Info("campaigns resume: records can be written again")
	}
	d.loop.held = err
	return err == nil
}

// serve starts what campaign c may start now and returns when it wants the
// next tick (zero: no wish; a call's result wakes the loop anyway).
func (d *Dialer) serve(c *camp) time.Time {
	if c.c.State != CampaignRunning {
		return time.Time{}
	}
	now := d.clock.Now()
	if !c.c.Window.Open(now, d.loc) {
		c.ready = nil
		if !c.opensAt.After(now) {
			c.opensAt = c.c.Window.Next(now, d.loc)
		}
		return c.opensAt
	}
	tr := d.trunk(c.c.Trunk)
	if !tr.ok {
		return now.Add(pollEvery)
	}
	wake := d.startHumans(c, now)
	if n := len(c.retries); n > 0 {
		i, _ := slices.BinarySearchFunc(c.retries, now, func(a, b time.Time) int {
			if a.After(b) {
				return 1
			}
			return -1
		})
		if i > 0 { // retries came due: look
			c.idleUntil = time.Time{}
			c.retries = slices.Delete(c.retries, 0, i)
		}
		if len(c.retries) > 0 {
			wake = earliest(wake, c.retries[0])
		}
	}
	for c.active < c.c.MaxConcurrent && (tr.channels <= 0 || tr.active < tr.channels) {
		now = d.clock.Now()
		switch {
		case now.Before(c.idleUntil):
			return earliest(wake, c.idleUntil)
		case !c.pace.ready(now, d.loop.lead.avg):
			return earliest(wake, c.pace.next.Add(-d.loop.lead.avg))
		case !tr.pace.ready(now, d.loop.lead.avg):
			return earliest(wake, tr.pace.next.Add(-d.loop.lead.avg))
		}
		t, ok := d.nextTarget(c, tr, now)
		if !ok {
			return earliest(wake, c.idleUntil)
		}
		d.dial(c, tr, t, now)
	}
	return wake // no free slot: a result will wake the loop
}

// earliest is the earlier of a and b, the zero time meaning none.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

func (d *Dialer) trunk(name string) *trunkState {
	l := &d.loop
	tr := l.trunks[name]
	if tr == nil {
		channels, cps, ok := d.cfg.Trunks.TrunkLimits(name)
		tr = &trunkState{ok: ok, channels: channels, cps: cps, pace: pacer{gap: gapFor(cps)}}
		l.trunks[name] = tr
	}
	return tr
}

// nextTarget returns the next due target of c, fetching a batch from the
// store when the last one is used up or a poll period old.
func (d *Dialer) nextTarget(c *camp, tr *trunkState, now time.Time) (Target, bool) {
	if len(c.ready) == 0 || now.Sub(c.readyAt) >= pollEvery {
		limit := c.c.MaxConcurrent - c.active
		if tr.channels > 0 {
			limit = min(limit, tr.channels-tr.active)
		}
		limit = min(limit, batchFor(c.c.CPS), batchFor(tr.cps))
		ctx, cancel := d.sctx()
		ts, err := d.store.Due(ctx, c.c.ID, now, max(limit, 1))
		cancel()
		if err != nil {
			d.log.Warn("due targets", "campaign", c.c.ID, "err", err)
		}
		c.ready, c.readyAt = ts, now
		if len(ts) == 0 {
			c.idleUntil = now.Add(pollEvery)
			return Target{}, false
		}
	}
	t := c.ready[0]
	c.ready = c.ready[1:]
	return t, true
}

// dial claims t and starts its survey call, unless a rule forbids it.
func (d *Dialer) dial(c *camp, tr *trunkState, t Target, now time.Time) {
	l := &d.loop
	log := d.log.With("campaign", c.c.ID, "case_id", t.CaseID)
	switch {
	case l.inflight[key(t)]:
		log.Error("target already in a call; not dialled again")
		return
	case slices.Contains(c.c.DoNotCall, t.Phone):
		t.State, t.Outcome, t.Updated = TargetDone, OutcomeDNC, now
		d.apply(c, t, TargetPending)
		return
	case !d.cfg.Trunks.TrunkAllows(c.c.Trunk, t.Phone):
		log.Warn("number outside the trunk's dial plan; not dialled", "trunk", c.c.Trunk)
		t.State, t.Outcome, t.Updated = TargetFailed, OutcomeInvalid, now
		d.apply(c, t, TargetPending)
		return
	}
	t.State, t.Attempts, t.Updated = TargetDialing, t.Attempts+1, now
	ctx, cancel := d.sctx()
	err := d.store.Update(ctx, t, TargetPending)
	cancel()
	if err != nil {
		if !errors.Is(err, ErrNotFound) {
			log.Warn("claiming target", "err", err)
			c.ready, c.idleUntil = nil, now.Add(pollEvery)
		}
		return
	}
	// The call starts on its slot (the later of the campaign's and the trunk's), or as soon as
	// the claim is stored if that took longer: a slow claim (a busy disk) never lets the next
	// dial follow this one closer than the pace, and a fast one costs the rate nothing.
	claimed := d.clock.Now()
	l.lead.observe(claimed.Sub(now))
	launch := claimed
	for _, next := range []time.Time{c.pace.next, tr.pace.next} {
		if next.After(launch) {
			launch = next
		}
	}
	c.pace.take(launch)
	tr.pace.take(launch)
	c.active++
	tr.active++
	l.inflight[key(t)] = true
	d.metrics.active.Inc()
	d.probe.launched.Add(1)
	req := call.SurveyRequest{Trunk: c.c.Trunk, Number: t.Phone, Script: c.c.Script, Campaign: c.c.ID,
		CaseID: t.CaseID, Attempt: t.Attempts, RingTimeout: c.c.RingTimeout}
	log.Debug("dialling", "attempt", t.Attempts)
	calls, callCtx, clock := d.cfg.Calls, l.callCtx, d.clock
	go func() {
		if wait := launch.Sub(claimed); wait > 0 {
			t := clock.NewTimer(wait)
			select {
			case <-t.C():
			case <-callCtx.Done(): // the call still runs, and ends interrupted at once
			}
			t.Stop()
		}
		r := calls.Survey(callCtx, req)
		d.results <- result{target: t, survey: r}
	}()
}

// startHumans starts the tasks of c's human targets that are due, and
// returns the earliest NextAt of those that are not.
func (d *Dialer) startHumans(c *camp, now time.Time) time.Time {
	l := &d.loop
	var wake time.Time
	kept := c.humans[:0]
	for _, t := range c.humans {
		k := key(t)
		switch {
		case t.NextAt.After(now):
			if wake.IsZero() || t.NextAt.Before(wake) {
				wake = t.NextAt
			}
			kept = append(kept, t)
		case c.tasks >= c.c.MaxConcurrent || l.inflight[k] || d.isUnsaved(k):
			kept = append(kept, t)
		case c.c.Fallback == "" || !d.cfg.Trunks.TrunkAllows(c.c.Trunk, t.Phone):
			d.log.Warn("human target without a callback queue or outside the dial plan: failed", "campaign", c.c.ID, "case_id", t.CaseID)
			t.State, t.Updated = TargetFailed, now
			d.apply(c, t, TargetHuman)
		default:
			d.startTask(c, t, now)
		}
	}
	clear(c.humans[len(kept):])
	c.humans = kept
	return wake
}

func (d *Dialer) startTask(c *camp, t Target, now time.Time) {
	l := &d.loop
	prio := 0
	if atRisk(t, now, d.cfg.AtRisk) {
		prio = 1
	}
	req := call.TaskRequest{Queue: c.c.Fallback, Trunk: c.c.Trunk, Number: t.Phone, CaseID: t.CaseID,
		Campaign: c.c.ID, Attempt: t.HumanTries + 1, Priority: prio}
	c.tasks++
	l.inflight[key(t)] = true
	d.metrics.tasksActive.Inc()
	d.probe.launched.Add(1)
	d.log.Debug("callback task", "campaign", c.c.ID, "case_id", t.CaseID, "queue", c.c.Fallback, "attempt", req.Attempt)
	calls, callCtx := d.cfg.Calls, l.callCtx
	go func() {
		r := calls.Task(callCtx, req)
		d.results <- result{target: t, task: true, taskr: r}
	}()
}

// handle applies a call's or a task's result.
func (d *Dialer) handle(r result) {
	defer d.probe.handled.Add(1)
	l := &d.loop
	t := r.target
	delete(l.inflight, key(t))
	c := l.camps[t.Campaign]
	now := d.clock.Now()
	if r.task {
		c.tasks--
		d.metrics.tasksActive.Dec()
		d.metrics.tasks.WithLabelValues(outcome(r.taskr.Disposition)).Inc()
		if l.stopping && outcome(r.taskr.Disposition) == OutcomeInterrupted {
			return // our own shutdown is not a human try: the target stays human
		}
		d.apply(c, taskOutcome(c.c, t, r.taskr, now), TargetHuman)
		return
	}
	c.active--
	if tr := l.trunks[c.c.Trunk]; tr != nil {
		tr.active--
	}
	d.metrics.active.Dec()
	d.metrics.calls.WithLabelValues(outcome(r.survey.Disposition)).Inc()
	if r.survey.Err != nil {
		d.log.Info("survey call failed", "campaign", c.c.ID, "case_id", t.CaseID, "disposition", r.survey.Disposition, "status", r.survey.Status, "err", r.survey.Err)
	}
	d.apply(c, surveyOutcome(c.c, t, r.survey, now), TargetDialing)
}

// apply saves t's new state (stored in state from) and updates c's view.
func (d *Dialer) apply(c *camp, t Target, from string) {
	d.save(t, from)
	switch t.State {
	case TargetPending:
		c.addRetry(t.NextAt)
	case TargetHuman:
		c.addHuman(t)
	default:
		c.dirty = true
	}
}
