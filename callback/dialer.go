package callback

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hotline12345/hotline/call"
	"github.com/hotline12345/hotline/cdr"
	"github.com/hotline12345/hotline/ivr"
)

// The Dialer is the one goroutine (Run) that owns campaign scheduling: which
// target is dialled next, the calls and human tasks in flight, the pacing
// state, and every write of a target's state after it was added. The API
// methods add campaigns and targets to the store themselves and then post a
// note to the loop; Pause, Resume and Cancel run on the loop.
//
// Rules:
//   - Ticks. The loop ticks at once on Create, AddTargets, Resume, a call's
//     result and an after-call record; else on a timer for the earliest
//     moment it knows of (a pacing slot, a retry it scheduled, a human task's
//     retry, a window's opening). A running campaign inside its window with a
//     free slot and nothing due asks the store again every second (targets may
//     come due that only the store knows of); with nothing to do the loop
//     still ticks once a minute.
//   - Dialling. Paced by a token bucket of depth one; unlimited when cps
//     or channels is 0. For each running campaign inside its window, while free
//     slots remain — the campaign's MaxConcurrent survey calls, the trunk's
//     channels counted across campaigns, and CPS pacing: a campaign's and a
//     trunk's dial times are at least 1/cps apart (so never more than cps in
//     any 1 s) on the injected clock — the loop takes Due targets (earliest
//     deadline first), checks the dial plan (Trunks.TrunkAllows) and the DNC
//     list again, claims the target (Store.Update pending → dialing,
//     Attempts+1) before dialling, and runs Calls.Survey on a goroutine that
//     posts the result back. Only the loop updates the target.
//   - Survey outcome → next state. answered → done (Satisfaction, Answers
//     "question=digit,…", ReachedAt, ReachedBy "machine"), unless dissatisfied
//     with FallbackDissatisfied and a Fallback queue and the citizen was not
//     already put through to an agent by the call (ToAgent) → human.
//     busy, no-answer, failed, interrupted (and any unknown disposition, as
//     failed) → pending at now + the outcome's retry delay while Attempts <
//     MaxAttempts, then human if the campaign has a Fallback queue, else
//     failed. invalid-number → failed, never retried.
//   - Human. A human target waits for a callback task: Calls.Task with the
//     Fallback queue, started inside the window (a task waiting for an agent
//     is not stopped when the window closes), at most MaxConcurrent tasks per
//     campaign, at-risk targets with priority 1. Tasks are not counted
//     against the trunk's channels or pacing (the call layer dials their
//     citizen leg). answered → done (HumanAgent; ReachedAt and ReachedBy
//     "human" unless the machine reached the citizen before); invalid-number
//     → failed. Other outcomes → HumanTries+1 and another task
//     after the outcome's retry delay while HumanTries < MaxAttempts, then
//     failed with Human = the last outcome. A task cut by the dialer's own
//     shutdown is not a try: the target stays human and is started again.
//   - Never: two calls for one target (a survey and a task included); a
//     call outside the window or the dial plan; a new call of a paused or
//     cancelled campaign. Cancel turns pending and waiting human targets into
//     cancelled; calls and tasks in flight finish, and their results end
//     cancelled instead of pending or human.
//   - Recovery (Run start). Targets left dialing (the process died
//     mid-call) count their attempt as interrupted and follow the retry rule;
//     human targets get their tasks started again.
//   - A running campaign becomes done when no target is pending, dialing or
//     human; new targets (AddTargets, the after-call rule) reopen it.
//   - Shutdown. When Run's context ends, calls and tasks in flight are
//     cancelled with it, end as interrupted, and are saved before Run returns.

// Calls places survey calls and callback tasks (call.Manager).
type Calls interface {
	// Survey blocks until the survey call ends.
	Survey(ctx context.Context, r call.SurveyRequest) call.SurveyResult
	// Task blocks until the callback task ends.
	Task(ctx context.Context, r call.TaskRequest) call.TaskResult
}

// Trunks answers for the outbound trunks (sip.Server).
type Trunks interface {
	// TrunkAllows reports whether number is in trunk's dial plan.
	TrunkAllows(trunk, number string) bool
	// TrunkLimits returns trunk's channels and calls per second (0: no
	// limit); ok is false for an unknown trunk. The dialer counts its survey
	// calls against them across campaigns.
	TrunkLimits(trunk string) (channels int, cps float64, ok bool)
}

// AfterCallRule schedules a survey Delay after each answered inbound call of
// one of Queues (every queue when empty), in the campaign AfterCallCampaign.
type AfterCallRule struct {
	Queues []string
	Delay  time.Duration
	Script string
	Trunk  string
}

// AfterCallCampaign is the id and name of the after-call rule's campaign,
// created on first use with the dialer's defaults.
const AfterCallCampaign = "after-call"

// Campaign defaults used when neither the campaign nor Config.Defaults sets a value.
const (
	DefaultMaxConcurrent    = 10
	DefaultCPS              = 1.0
	DefaultMaxAttempts      = 3
	DefaultRetryBusy        = 10 * time.Minute
	DefaultRetryNoAnswer    = 30 * time.Minute
	DefaultRetryFailed      = 5 * time.Minute
	DefaultRetryInterrupted = time.Minute
	DefaultDeadline         = 24 * time.Hour
	DefaultAtRisk           = 2 * time.Hour
	DefaultStatusTargets    = 1000 // Status's targets when its limit is 0
)

// Dialer errors (with the model's in campaign.go).
var (
	ErrNotRunning = errors.New("dialer not running")
	ErrRunning    = errors.New("dialer already running")
)

// Config configures a Dialer. Store, Calls and Trunks are required.
type Config struct {
	Store  Store
	Calls  Calls
	Trunks Trunks
	// Scripts reports whether a survey script exists; nil accepts any name.
	Scripts  func(name string) bool
	Clock    ivr.Clock      // nil: the system clock
	Location *time.Location // the windows' time zone; nil: Asia/Shanghai
	// AtRisk is the horizon of Counts.AtRisk: a target not final whose
	// deadline is within it (or past). 0: DefaultAtRisk.
	AtRisk time.Duration
	// Defaults fill the zero fields of new campaigns: Window, MaxConcurrent,
	// CPS, MaxAttempts, each Retry delay, RingTimeout, Deadline, Fallback
	// (with FallbackDissatisfied, when the campaign names no Fallback); the
	// DoNotCall lists are merged.
	Defaults  Campaign
	AfterCall *AfterCallRule
	// Admit, if set, is asked each tick before new calls and tasks start; while it
	// returns an error (the records cannot be written: cdr.Writer.Accepting) none
	// starts, and calls under way go on.
	Admit      func() error
	Logger     *slog.Logger
	Registerer prometheus.Registerer // nil: metrics are not registered
}

// Status is a campaign with its counts and (some of) its targets.
type Status struct {
	Campaign
	Counts  Counts   `json:"counts"`
	Targets []Target `json:"targets,omitempty"`
}

// Dialer runs the campaigns. Create it with New, run Run once.
type Dialer struct {
	cfg     Config
	store   Store
	log     *slog.Logger
	clock   ivr.Clock
	loc     *time.Location
	metrics *metrics

	cmds    chan command
	results chan result
	wakeCh  chan struct{}
	done    chan struct{} // closed when Run returns
	running atomic.Bool

	mu    sync.Mutex
	inbox []note // posted by the API methods and AfterCall, drained by the loop

	loop  loopState // owned by Run's goroutine
	probe probe
}

// probe lets tests see when the loop is idle (dialer_test.go).
type probe struct {
	idle     atomic.Bool
	seq      atomic.Uint64
	launched atomic.Int64 // calls and tasks started
	handled  atomic.Int64 // results applied
	ticks    atomic.Int64 // timer ticks received
}

// maxInbox bounds the notes waiting for the loop (after-call records beyond it are dropped).
const maxInbox = 100_000

// New checks cfg and returns a Dialer; nothing runs until Run.
func New(cfg Config) (*Dialer, error) {
	if cfg.Store == nil || cfg.Calls == nil || cfg.Trunks == nil {
		return nil, errors.New("callback: Store, Calls and Trunks are required")
	}
	if cfg.Clock == nil {
		cfg.Clock = ivr.SystemClock()
	}
	if cfg.Location == nil {
		loc, err := time.LoadLocation(ivr.DefaultTimezone)
		if err != nil {
			loc = time.FixedZone("CST", 8*60*60)
		}
		cfg.Location = loc
	}
	if cfg.AtRisk <= 0 {
		cfg.AtRisk = DefaultAtRisk
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	d := &Dialer{
		cfg: cfg, store: cfg.Store, clock: cfg.Clock, loc: cfg.Location,
		log:     cfg.Logger.With("caller", "callback.Dialer"),
		cmds:    make(chan command),
		results: make(chan result, 64),
		wakeCh:  make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	if r := cfg.AfterCall; r != nil {
		if _, err := d.complete(Campaign{ID: AfterCallCampaign, Name: AfterCallCampaign, Script: r.Script, Trunk: r.Trunk}, time.Time{}); err != nil {
			return nil, fmt.Errorf("callback: after-call rule: %w", err)
		}
	}
	m, err := newMetrics(cfg.Registerer, d)
	if err != nil {
		return nil, fmt.Errorf("callback: metrics: %w", err)
	}
	d.metrics = m
	d.loop.init()
	return d, nil
}

// Create validates c, fills its defaults, gives it a new id, stores it with
// its targets and wakes the loop. Targets outside the trunk's dial plan or
// malformed are refused (the others are added); numbers on the do-not-call
// list are stored done with outcome dnc and never dialled.
func (d *Dialer) Create(ctx context.Context, c Campaign, ts []Target) (Campaign, []TargetError, error) {
	now := d.clock.Now()
	c.ID = uuid.NewString()
	c, err := d.complete(c, now)
	if err != nil {
		return Campaign{}, nil, err
	}
	if err := d.store.CreateCampaign(ctx, c); err != nil {
		return Campaign{}, nil, fmt.Errorf("callback: create campaign: %w", err)
	}
	_, refused, err := d.addTargets(ctx, c, ts, now)
	d.post(note{kind: noteCampaign, campaign: c})
	if err != nil {
		return c, refused, err
	}
	d.log.Info("campaign created", "campaign", c.ID, "name", c.Name, "targets", len(ts), "refused", len(refused))
	return c, refused, nil
}

// AddTargets adds targets to campaign id (ErrNotFound; ErrFinal once
// cancelled); a done campaign runs again.
func (d *Dialer) AddTargets(ctx context.Context, id string, ts []Target) (int, []TargetError, error) {
	c, err := d.store.Campaign(ctx, id)
	if err != nil {
		return 0, nil, err
	}
	if c.State == CampaignCancelled {
		return 0, nil, ErrFinal
	}
	n, refused, err := d.addTargets(ctx, c, ts, d.clock.Now())
	if n > 0 {
		d.post(note{kind: noteTargets, campaign: c})
	}
	return n, refused, err
}

// Pause stops new calls of campaign id; calls in flight finish.
func (d *Dialer) Pause(ctx context.Context, id string) error {
	return d.do(ctx, func(ctx context.Context) error { return d.pause(ctx, id) })
}

// Resume lets a paused campaign dial again (a running or done one is left as it is).
func (d *Dialer) Resume(ctx context.Context, id string) error {
	return d.do(ctx, func(ctx context.Context) error { return d.resume(ctx, id) })
}

// Cancel ends campaign id: its pending and waiting human targets become
// cancelled; calls and tasks in flight finish. ErrFinal if done or cancelled.
func (d *Dialer) Cancel(ctx context.Context, id string) error {
	return d.do(ctx, func(ctx context.Context) error { return d.cancel(ctx, id) })
}

// Status returns campaign id with its counts and up to limit targets (0:
// DefaultStatusTargets, negative: all).
func (d *Dialer) Status(ctx context.Context, id string, limit int) (Status, error) {
	c, err := d.store.Campaign(ctx, id)
	if err != nil {
		return Status{}, err
	}
	n, err := d.store.Counts(ctx, id, d.clock.Now(), d.cfg.AtRisk)
	if err != nil {
		return Status{}, err
	}
	switch {
	case limit == 0:
		limit = DefaultStatusTargets
	case limit < 0:
		limit = 0
	}
	ts, err := d.store.Targets(ctx, id, "", limit)
	if err != nil {
		return Status{}, err
	}
	return Status{Campaign: c, Counts: n, Targets: ts}, nil
}

// Targets lists up to limit targets of campaign id in state ("" = all), earliest deadline
// first, straight from the store (the API's ?state= filter).
func (d *Dialer) Targets(ctx context.Context, id, state string, limit int) ([]Target, error) {
	if _, err := d.store.Campaign(ctx, id); err != nil {
		return nil, err
	}
	return d.store.Targets(ctx, id, state, limit)
}

// List returns every campaign, newest first, with its counts (no targets).
func (d *Dialer) List(ctx context.Context) ([]Status, error) {
	cs, err := d.store.Campaigns(ctx)
	if err != nil {
		return nil, err
	}
	now := d.clock.Now()
	out := make([]Status, 0, len(cs))
	for _, c := range cs {
		n, err := d.store.Counts(ctx, c.ID, now, d.cfg.AtRisk)
		if err != nil {
			return nil, err
		}
		out = append(out, Status{Campaign: c, Counts: n})
	}
	return out, nil
}

// AfterCall takes a finished call's record and, if it is an answered inbound
// call of one of the rule's queues, schedules a survey of the caller in the
// campaign AfterCallCampaign at the call's end + Delay; the case is
// rec.CaseNumber, else the call's id. It never blocks.
func (d *Dialer) AfterCall(rec cdr.Record) {
	r := d.cfg.AfterCall
	if r == nil || rec.Disposition != cdr.DispositionAnswered || rec.Caller == "" ||
		(rec.Direction != "" && rec.Direction != cdr.DirectionInbound) {
		return
	}
	if len(r.Queues) > 0 {
		match := slices.Contains(r.Queues, rec.Queue)
		for _, v := range cdr.ParseVisits(rec.Visits) {
			match = match || (v.Agent != "" && slices.Contains(r.Queues, v.Queue))
		}
		if !match {
			return
		}
	}
	d.post(note{kind: noteAfterCall, rec: rec})
}

// post queues a note for the loop and wakes it.
func (d *Dialer) post(n note) {
	d.mu.Lock()
	full := len(d.inbox) >= maxInbox && n.kind == noteAfterCall
	if !full {
		d.inbox = append(d.inbox, n)
	}
	d.mu.Unlock()
	if full {
		d.log.Warn("after-call record dropped: the dialer is behind", "call_id", n.rec.ID)
		return
	}
	d.wake()
}

func (d *Dialer) wake() {
	select {
	case d.wakeCh <- struct{}{}:
	default:
	}
}

// do runs fn on the loop and returns its error; it waits for Run to start.
func (d *Dialer) do(ctx context.Context, fn func(context.Context) error) error {
	c := command{fn: fn, reply: make(chan error, 1)}
	select {
	case d.cmds <- c:
	case <-ctx.Done():
		return ctx.Err()
	case <-d.done:
		return ErrNotRunning
	}
	select {
	case err := <-c.reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
