package ivr

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
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
// consult is "main>T>T>T>F>consult"; the menu-less profile is just "consult".
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
	Menus      map[string]Menu
	Media      Media
	Queue      Queue
	Clock      Clock
	Logger     *slog.Logger
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
		fsmCtx: context.WithoutCancel(ctx),
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
	err := c.run(entry)
	c.log.Debug("ivr end", "path", c.res.PathString(), "error", err)
	return c.res, err
}

// callRun is the state of one Run; only the Run goroutine touches it.
type callRun struct {
	r      *Runner
	ctx    context.Context
	fsmCtx context.Context // ctx without cancellation: a cancelled ctx would make looplab/fsm skip transitions
	log    *slog.Logger
	clock  Clock
	digits <-chan rune // nil once closed
	res    Result

	cur      string          // current menu
	stack    []string        // menus to go "back" to, oldest first
	failures int             // failures of the current visit
	pending  []rune          // digits read during a failure prompt, not yet used
	noInput  int             // visits started since the caller's last digit
	greeted  map[string]bool // menus whose Greeting was played in this call
}

func (c *callRun) step(menu, input, event string) {
	c.res.Path = append(c.res.Path, Step{Menu: menu, Input: input, Event: event})
	c.log.Debug("ivr step", "menu", menu, "input", input, "event", event)
}

func (c *callRun) run(act Action) error {
	for {
		if err := c.ctx.Err(); err != nil {
			return err
		}
		switch act.Kind {
		case ActQueue:
			c.res.Final = act
			c.dropPending()
			if c.r.Queue == nil {
				return fmt.Errorf("%w: no Queue for %q", ErrNotConfigured, act.String())
			}
			if err := c.r.Queue.Join(c.ctx, act.Target); err != nil {
				return fmt.Errorf("ivr: queue %s: %w", act.Target, err)
			}
			return nil
		case ActPlay:
			c.res.Final = act
			c.dropPending()
			return c.playToEnd(act.Target)
		case ActHangup:
			c.res.Final = act
			c.dropPending()
			return nil
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
			act = Action{Kind: ActHangup}
			continue
		}
		var err error
		if act, err = c.visit(); err != nil {
			return err
		}
	}
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

func (c *callRun) dropPending() {
	if len(c.pending) > 0 {
		c.log.Debug("ivr dropping buffered digits", "digits", string(c.pending))
		c.pending = nil
	}
}

// attempt outcomes.
const (
	outChosen = iota
	outInvalid
	outTimeout
)

// visit runs attempts at the current menu until one yields an action or the
// failures reach MaxRetries.
func (c *callRun) visit() (Action, error) {
	name := c.cur
	m := c.r.Menus[name].withDefaults()
	f := newVisitFSM()
	for {
		out, input, act, err := c.attempt(name, &m, f)
		if err != nil || out == outChosen {
			return act, err
		}
		c.failures++
		prompt := m.InvalidPrompt
		if out == outTimeout {
			prompt = m.TimeoutPrompt
			c.step(name, "", EventTimeout)
		} else {
			c.step(name, input, EventInvalid)
		}
		if prompt != "" {
			if err := c.playFailure(prompt); err != nil {
				return Action{}, err
			}
		}
		if c.failures >= m.MaxRetries {
			if err := c.fire(f, evFallback); err != nil {
				return Action{}, err
			}
			c.step(name, "", EventFallback)
			act, err := ParseAction(m.Fallback)
			if err != nil {
				return Action{}, fmt.Errorf("menu %s fallback: %w", name, err)
			}
			c.log.Info("ivr fallback", "menu", name, "failures", c.failures, "action", act.String())
			return act, nil
		}
		if err := c.fire(f, evRetry); err != nil {
			return Action{}, err
		}
	}
}

// attempt plays the menu's prompts and takes one choice or entry. It returns
// outChosen with the action to run, or outInvalid (with the keys) or
// outTimeout; the FSM is then in stDone or stFailing.
func (c *callRun) attempt(name string, m *Menu, f *visitFSM) (out int, input string, act Action, err error) {
	var (
		playing <-chan struct{} // non-nil while the menu prompts play
		timer   Timer
		timerC  <-chan time.Time
		keys    []rune // input menus: keys collected so far
	)
	stopTimer := func() {
		if timer != nil {
			timer.Stop()
			timer, timerC = nil, nil
		}
	}
	defer stopTimer()
	arm := func(d Duration) {
		stopTimer()
		timer = c.clock.NewTimer(d.D())
		timerC = timer.C()
	}
	// finishEntry ends an input menu's entry; raw includes a pressed terminator.
	finishEntry := func(raw string) (int, string, Action, error) {
		value := string(keys)
		if len(keys) < m.Input.MinDigits {
			return outInvalid, raw, Action{}, c.fire(f, evInvalid)
		}
		a, err := ParseAction(m.Input.Next)
		if err != nil {
			return 0, "", Action{}, fmt.Errorf("menu %s input next: %w", name, err)
		}
		if err := c.fire(f, evChoose); err != nil {
			return 0, "", Action{}, err
		}
		if m.Input.Store != "" {
			c.res.Vars[m.Input.Store] = value
		}
		c.step(name, raw, EventDigit)
		return outChosen, raw, a, nil
	}
	// onDigit handles one key; done reports whether the attempt is over.
	onDigit := func(d rune) (done bool, out int, input string, act Action, err error) {
		if playing != nil {
			c.r.Media.StopPlay()
			if err := c.waitStopped(playing); err != nil {
				return true, 0, "", Action{}, err
			}
			playing = nil
		}
		key := string(d)
		if m.Input == nil {
			s, ok := m.Options[key]
			if !ok {
				return true, outInvalid, key, Action{}, c.fire(f, evInvalid)
			}
			a, err := ParseAction(s)
			if err != nil {
				return true, 0, "", Action{}, fmt.Errorf("menu %s option %s: %w", name, key, err)
			}
			if err := c.fire(f, evChoose); err != nil {
				return true, 0, "", Action{}, err
			}
			c.step(name, key, EventDigit)
			return true, outChosen, key, a, nil
		}
		if key == m.Input.Terminator {
			out, input, act, err := finishEntry(string(keys) + key)
			return true, out, input, act, err
		}
		keys = append(keys, d)
		if err := c.fire(f, evDigit); err != nil {
			return true, 0, "", Action{}, err
		}
		if len(keys) >= m.Input.MaxDigits {
			out, input, act, err := finishEntry(string(keys))
			return true, out, input, act, err
		}
		arm(m.Input.InterDigitTimeout)
		return false, 0, "", Action{}, nil
	}

	// A digit kept from the failure prompt is this attempt's first input: the
	// caller already answered, so the prompts are not replayed.
	for len(c.pending) > 0 {
		d := c.pending[0]
		c.pending = c.pending[1:]
		if done, out, input, act, err := onDigit(d); done {
			return out, input, act, err
		}
	}
	if len(keys) == 0 {
		prompts := m.Prompts
		if len(m.Greeting) > 0 && !c.greeted[name] && !c.r.NoGreeting {
			if c.greeted == nil {
				c.greeted = map[string]bool{}
			}
			c.greeted[name] = true
			prompts = append(slices.Clip(m.Greeting), prompts...)
		}
		if len(prompts) > 0 {
			playing = c.play(prompts)
		} else {
			if err := c.fire(f, evPromptDone); err != nil {
				return 0, "", Action{}, err
			}
			arm(m.Timeout)
		}
	}
	for {
		select {
		case <-c.ctx.Done():
			if playing != nil {
				c.r.Media.StopPlay()
			}
			return 0, "", Action{}, c.ctx.Err()
		case <-playing:
			playing = nil
			if err := c.fire(f, evPromptDone); err != nil {
				return 0, "", Action{}, err
			}
			arm(m.Timeout)
		case <-timerC:
			timer, timerC = nil, nil
			if f.Current() == stWaiting {
				return outTimeout, "", Action{}, c.fire(f, evTimeout)
			}
			// Inter-digit timeout: the entry is complete.
			return finishEntry(string(keys))
		case d, ok := <-c.digits:
			if !ok {
				c.log.Debug("ivr digit channel closed")
				c.digits = nil
				continue
			}
			c.noInput = 0
			if done, out, input, act, err := onDigit(d); done {
				return out, input, act, err
			}
		}
	}
}

// playFailure plays the invalid or timeout prompt. A digit stops it and is
// kept in c.pending for the next attempt.
func (c *callRun) playFailure(prompt string) error { return c.playPrompt(prompt, true) }

// playToEnd plays a final prompt to its end; digits are read and ignored so
// the producer never blocks.
func (c *callRun) playToEnd(prompt string) error { return c.playPrompt(prompt, false) }

// playPrompt plays one prompt until it ends or the call does. With bargeIn a digit stops
// it and is kept in c.pending; without, digits are read and dropped.
func (c *callRun) playPrompt(prompt string, bargeIn bool) error {
	done := c.play([]string{prompt})
	for {
		select {
		case <-c.ctx.Done():
			c.r.Media.StopPlay()
			return c.ctx.Err()
		case <-done:
			return nil
		case d, ok := <-c.digits:
			if !ok {
				c.digits = nil
				continue
			}
			if !bargeIn {
				c.log.Debug("ivr ignoring digit during final prompt", "digit", string(d))
				continue
			}
			c.noInput = 0
			c.r.Media.StopPlay()
			c.pending = append(c.pending, d)
			return c.waitStopped(done)
		}
	}
}

var closedChan = func() chan struct{} { ch := make(chan struct{}); close(ch); return ch }()

func (c *callRun) play(prompts []string) <-chan struct{} {
	if ch := c.r.Media.Play(prompts); ch != nil {
		return ch
	}
	return closedChan
}

// waitStopped waits until a stopped playback's channel is closed.
func (c *callRun) waitStopped(done <-chan struct{}) error {
	select {
	case <-done:
		return nil
	case <-c.ctx.Done():
		return c.ctx.Err()
	}
}
