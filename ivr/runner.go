package ivr

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/looplab/fsm"
)

// Media is what the runner needs from the call's media session. The call
// package implements it with its RTP session and prompt cache.
type Media interface {
	// Play starts playing the prompts in order and returns a channel that is
	// closed when they are done or stopped. After StopPlay the channel must be
	// closed promptly: the runner waits for it before its next Play, so
	// prompts never overlap. A nil channel counts as already done.
	Play(prompts []string) <-chan struct{}
	// StopPlay stops the current playback (barge-in). It is a no-op when
	// nothing plays.
	StopPlay()
	// Digits yields DTMF digits from any source (RFC 4733 and SIP INFO merged
	// by the caller). The runner reads it only while it takes input; unread
	// digits stay queued for the next state (type-ahead). A closed channel
	// means no more digits; the runner then only times out.
	Digits() <-chan rune
}

// Queue hands a call to the ACD.
type Queue interface {
	// Join blocks while the caller waits and talks, and returns when the call
	// left the queue. It must return promptly when ctx ends.
	Join(ctx context.Context, queue string) error
}

// Step events recorded in [Result.Path].
const (
	EventEntry    = "entry"    // a visit of Menu began (Input empty)
	EventDigit    = "digit"    // a valid choice (Input "2") or a valid entry (Input "2026112900123#", terminator included if pressed)
	EventInvalid  = "invalid"  // an unknown choice or a too-short entry; Input as for EventDigit
	EventTimeout  = "timeout"  // no digit within Menu.Timeout after the prompts (Input empty)
	EventFallback = "fallback" // Menu.Fallback ran after MaxRetries failures (Input empty), or the loop guard hung up (Input "loop")
	EventLookup   = "lookup"   // a self-service hook answered (Input: the answer's status)
	// EventLookupFailed: the hook timed out, failed or answered badly (Input empty).
	EventLookupFailed = "lookup_failed"
)

// Step is one entry of a call's IVR path.
type Step struct {
	Menu  string
	Input string
	Event string // one of EventEntry, EventDigit, EventInvalid, EventTimeout, EventFallback
}

// Result is what a Run did: the path through the menus, the variables the
// caller entered, and the action that ended the IVR.
type Result struct {
	Path  []Step
	Vars  map[string]string // e.g. "case_number" → "2026112900123"; never nil after Run
	Final Action            // the action that ended the IVR (queue X, hangup, play P); zero when Run ended early (hang-up, error)
}

// PathString returns a compact, operator-readable form of the path, the
// tokens joined by ">":
//
//	entry of a menu       its name          main
//	valid digit/entry     the keys          2          2026112900123#
//	invalid digit/entry   the keys and "!"  9!         12#!
//	timeout               T
//	fallback              F
//	final queue X         X                 complaint
//	other final action    its String()      hangup     play zh/closed
//
// A call that entered main, pressed 2 and went to queue complaint is
// "main>2>complaint"; one that timed out three times and fell back to queue
// consult is "main>T>T>T>F>consult"; the menu-less profile is just "consult". A
// lookup that answered is "lookup:" and the answer's status
// ("case>2026120800012#>lookup:processing>hangup"), one that failed "lookup!"
// ("case>2026120800012#>lookup!>consult").
// A call that hung up in the IVR has no final token: "main>1>sub".
func (r Result) PathString() string {
	var b strings.Builder
	add := func(s string) {
		if b.Len() > 0 {
			b.WriteByte('>')
		}
		b.WriteString(s)
	}
	for _, s := range r.Path {
		switch s.Event {
		case EventEntry:
			add(s.Menu)
		case EventDigit:
			add(s.Input)
		case EventInvalid:
			add(s.Input + "!")
		case EventTimeout:
			add("T")
		case EventFallback:
			add("F")
		case EventLookup:
			add("lookup:" + s.Input)
		case EventLookupFailed:
			add("lookup!")
		}
	}
	switch r.Final.Kind {
	case 0:
	case ActQueue:
		add(r.Final.Target)
	default:
		add(r.Final.String())
	}
	return b.String()
}

// Runner runs the IVR of one call. Menus is shared read-only between calls;
// the other fields belong to the call. Clock defaults to SystemClock and
// Logger to a discarding logger. A Runner is used by one goroutine at a time.
type Runner struct {
	// NoGreeting skips menus' Greeting prompts: for a caller coming back to the IVR later in
	// the call (e.g. leaving a queue with its exit digit), who has been greeted already.
	NoGreeting bool
	// Preamble is played before the entry, whole (digits during it are dropped): an
	// emergency notice (应急公告) in front of the menu.
	Preamble []string
	Menus    map[string]Menu
	Media    Media
	Queue    Queue
	Clock    Clock
	Logger   *slog.Logger
	// OnQueue, if set, is called with the path and variables so far just before the
	// runner hands the caller to a queue (the call journals them: a crash during the
	// queue or the talk then keeps how the caller got there). It must not keep res.
	OnQueue func(res Result)
	// Lookups are the self-service hooks "lookup NAME" actions run (shared read-only);
	// Hooks asks them. Both may be nil when no menu has a lookup.
	Lookups map[string]Lookup
	Hooks   Hooks
}

// Run runs the IVR from entry until a terminal action:
//   - "queue X": calls Queue.Join(ctx, X) and returns after it, with Join's
//     error wrapped;
//   - "play P": plays P to the end (digits are ignored) and returns;
//   - "hangup": returns at once.
//
// Final is set to that action before it is carried out. When ctx ends (the
// caller hung up) Run stops any prompt and returns promptly with ctx.Err()
// and the partial Result. Run starts no goroutines.
func (r *Runner) Run(ctx context.Context, entry Action) (Result, error) {
	c := &callRun{
		r:      r,
		ctx:    ctx,
		log:    r.Logger,
		clock:  r.Clock,
		res:    Result{Vars: map[string]string{}},
		f:      newRunFSM(),
		fsmCtx: context.WithoutCancel(ctx),
		next:   entry,
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.clock == nil {
		c.clock = SystemClock()
	}
	switch entry.Kind {
	case ActMenu, ActQueue, ActPlay, ActHangup:
	default:
		return c.res, fmt.Errorf("%w: %q", ErrBadEntry, entry.String())
	}
	if r.Media == nil && (entry.Kind == ActMenu || entry.Kind == ActPlay) {
		return c.res, fmt.Errorf("%w: no Media", ErrNotConfigured)
	}
	if r.Media != nil {
		c.digits = r.Media.Digits()
	}
	c.log.Debug("ivr start", "entry", entry.String())
	if len(r.Preamble) > 0 && r.Media != nil {
		if _, _, err := c.playAll(r.Preamble, false); err != nil {
			return c.res, err
		}
	}
	err := c.run()
	c.log.Debug("ivr end", "path", c.res.PathString(), "error", err)
	return c.res, err
}

// callRun is the state of one Run; only the Run goroutine touches it.
type callRun struct {
	r      *Runner
	ctx    context.Context
	f      *fsm.FSM        // what the Run does next (runner_fsm.go)
	fsmCtx context.Context // ctx without cancellation: a cancelled ctx would make looplab/fsm skip transitions
	log    *slog.Logger
	clock  Clock
	digits <-chan rune // nil once closed
	res    Result

	next     Action          // routing: the action to carry out; queued, playing: the final action
	cur      string          // current menu
	menu     Menu            // cur with defaults applied
	stack    []string        // menus to go "back" to, oldest first
	failures int             // failures of the current visit
	failure  string          // failing: EventInvalid or EventTimeout
	keys     []rune          // input menus: the entry of this attempt so far
	pending  []rune          // digits read during a failure prompt, not yet used
	noInput  int             // visits started since the caller's last digit
	greeted  map[string]bool // menus whose Greeting was played in this call
}

// run carries out the handler of the machine's current state until done.
// Each handler does its I/O and sends one event, which picks the next.
func (c *callRun) run() error {
	for {
		var err error
		switch st := c.f.Current(); st {
		case stRouting:
			err = c.route()
		case stPrompting:
			err = c.prompt()
		case stWaiting:
			err = c.waitFirst()
		case stCollecting:
			err = c.collect()
		case stFailing:
			err = c.fail()
		case stQueued:
			err = c.join()
		case stLookingUp:
			err = c.lookup()
		case stPlaying:
			if _, _, err = c.playAll([]string{c.next.Target}, false); err == nil {
				err = c.fire(evPlayed)
			}
		case stDone:
			return nil
		default:
			err = fmt.Errorf("%w: no handler for state %s", ErrStateMachine, st)
		}
		if err != nil {
			return err
		}
	}
}

// route carries out c.next: a terminal action ends the IVR; menu, repeat and
// back start an attempt of the menu they lead to.
func (c *callRun) route() error {
	if err := c.ctx.Err(); err != nil {
		return err
	}
	act := c.next
	switch act.Kind {
	case ActQueue:
		return c.finish(act, evQueue)
	case ActPlay:
		return c.finish(act, evPlay)
	case ActHangup, ActVoicemail: // the call carries out a voicemail after the IVR
		return c.finish(act, evHangup)
	case ActLookup:
		return c.fire(evLookup)
	case ActMenu:
		if _, ok := c.r.Menus[act.Target]; !ok {
			return fmt.Errorf("%w: %q (from menu %q)", ErrUnknownMenu, act.Target, c.cur)
		}
		c.enter(act.Target)
	case ActRepeat:
		// Same menu, failures kept.
	case ActBack:
		if n := len(c.stack); n > 0 {
			prev := c.stack[n-1]
			c.stack = c.stack[:n-1]
			c.cur, c.failures = prev, 0
			c.step(prev, "", EventEntry)
		} // else: at the entry menu, replay it like repeat
	default:
		return fmt.Errorf("%w: %q", ErrBadAction, act.String())
	}
	c.noInput++
	if c.noInput > MaxTransitionsWithoutInput {
		c.log.Error("ivr loop guard: too many menu visits without caller input; hanging up",
			"menu", c.cur, "visits", c.noInput-1, "path", c.res.PathString())
		c.step(c.cur, "loop", EventFallback)
		return c.finish(Action{Kind: ActHangup}, evHangup)
	}
	c.menu = c.r.Menus[c.cur].withDefaults()
	return c.fire(evVisit)
}

// finish makes act the Run's final action; ev leads to carrying it out.
func (c *callRun) finish(act Action, ev string) error {
	c.res.Final, c.next = act, act
	c.dropPending()
	return c.fire(ev)
}

// join hands the call to the queue of the final action.
func (c *callRun) join() error {
	if c.r.Queue == nil {
		return fmt.Errorf("%w: no Queue for %q", ErrNotConfigured, c.next.String())
	}
	if c.r.OnQueue != nil {
		c.r.OnQueue(c.res)
	}
	if err := c.r.Queue.Join(c.ctx, c.next.Target); err != nil {
		return fmt.Errorf("ivr: queue %s: %w", c.next.Target, err)
	}
	return c.fire(evLeft)
}

// enter starts a fresh visit of menu name (see the package doc on the stack).
func (c *callRun) enter(name string) {
	if c.cur != "" && c.cur != name {
		c.stack = append(c.stack, c.cur)
	}
	if i := slices.Index(c.stack, name); i >= 0 {
		c.stack = c.stack[:i]
	}
	c.cur, c.failures = name, 0
	c.step(name, "", EventEntry)
}

func (c *callRun) step(menu, input, event string) {
	c.res.Path = append(c.res.Path, Step{Menu: menu, Input: input, Event: event})
	c.log.Debug("ivr step", "menu", menu, "input", input, "event", event)
}

func (c *callRun) dropPending() {
	if len(c.pending) > 0 {
		c.log.Debug("ivr dropping buffered digits", "digits", string(c.pending))
		c.pending = nil
	}
}
