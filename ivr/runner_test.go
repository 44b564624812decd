package ivr

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"
)

const mainPrompts = "play zh/welcome,zh/menu_main"

// testMenus is the default 12345 menu plus a small tree and an input menu.
func testMenus() map[string]Menu {
	return map[string]Menu{
		"main": {
			Prompts: []string{"zh/welcome", "zh/menu_main"},
			Options: map[string]string{
				"1": "queue consult", "2": "queue complaint", "3": "queue business",
				"4": "menu sub", "5": "menu case", "0": "repeat",
			},
			InvalidPrompt: "zh/invalid",
			TimeoutPrompt: "zh/timeout",
			Fallback:      "queue consult",
		},
		"sub": {
			Prompts: []string{"zh/menu_sub"},
			Options: map[string]string{"1": "play zh/info", "2": "menu sub2", "*": "back", "9": "hangup"},
		},
		"sub2": {
			Prompts: []string{"zh/menu_sub2"},
			Options: map[string]string{"*": "back", "#": "menu main"},
		},
		"case": {
			Prompts:       []string{"zh/enter_case"},
			InvalidPrompt: "zh/invalid",
			MaxRetries:    2,
			Input:         &Input{MinDigits: 4, MaxDigits: 6, Store: "case_number", Next: "queue complaint"},
		},
	}
}

// timeoutCycle is one unanswered pass through main: prompts, 5 s of
// silence, the timeout prompt.
func timeoutCycle() []step {
	return seq(expect(mainPrompts), finish(), expect("timer 5s"), fire(), expect("play zh/timeout"), finish())
}

func TestRun(t *testing.T) {
	tests := []struct {
		name      string
		menus     map[string]Menu // nil: testMenus()
		entry     string
		joinBlock bool
		script    []step
		wantPath  string
		wantFinal string
		wantVars  map[string]string
		wantErr   error
	}{
		{
			name:     "digit during prompt barges in",
			script:   seq(expect(mainPrompts), press("2"), expect("stop"), expect("join complaint")),
			wantPath: "main>2>complaint", wantFinal: "queue complaint",
		},
		{
			name:     "digit after prompt",
			script:   seq(expect(mainPrompts), finish(), expect("timer 5s"), press("1"), expect("join consult")),
			wantPath: "main>1>consult", wantFinal: "queue consult",
		},
		{
			name:     "three timeouts fall back",
			script:   seq(timeoutCycle(), timeoutCycle(), timeoutCycle(), expect("join consult")),
			wantPath: "main>T>T>T>F>consult", wantFinal: "queue consult",
		},
		{
			name: "invalid digit plays invalid prompt and replays",
			script: seq(expect(mainPrompts), press("9"), expect("stop"), expect("play zh/invalid"), finish(),
				expect(mainPrompts), press("3"), expect("stop"), expect("join business")),
			wantPath: "main>9!>3>business", wantFinal: "queue business",
		},
		{
			name: "invalid and timeout failures add up",
			script: seq(expect(mainPrompts), press("9"), expect("stop"), expect("play zh/invalid"), finish(),
				timeoutCycle(),
				expect(mainPrompts), finish(), expect("timer 5s"), press("8"), expect("play zh/invalid"), finish(),
				expect("join consult")),
			wantPath: "main>9!>T>8!>F>consult", wantFinal: "queue consult",
		},
		{
			name: "digit during invalid prompt is kept for the next attempt",
			script: seq(expect(mainPrompts), press("9"), expect("stop"), expect("play zh/invalid"),
				press("2"), expect("stop"), expect("join complaint")),
			wantPath: "main>9!>2>complaint", wantFinal: "queue complaint",
		},
		{
			name: "repeat replays and keeps the failure count",
			script: seq(expect(mainPrompts), press("9"), expect("stop"), expect("play zh/invalid"), finish(),
				expect(mainPrompts), press("0"), expect("stop"),
				expect(mainPrompts), press("8"), expect("stop"), expect("play zh/invalid"), finish(),
				expect(mainPrompts), press("7"), expect("stop"), expect("play zh/invalid"), finish(),
				expect("join consult")),
			wantPath: "main>9!>0>8!>7!>F>consult", wantFinal: "queue consult",
		},
		{
			name: "nested menus and back",
			script: seq(expect(mainPrompts), press("4"), expect("stop"),
				expect("play zh/menu_sub"), press("2"), expect("stop"),
				expect("play zh/menu_sub2"), press("*"), expect("stop"),
				expect("play zh/menu_sub"), press("*"), expect("stop"),
				expect(mainPrompts), press("1"), expect("stop"), expect("join consult")),
			wantPath: "main>4>sub>2>sub2>*>sub>*>main>1>consult", wantFinal: "queue consult",
		},
		{
			name:  "back at the entry menu replays it",
			entry: "menu sub",
			script: seq(expect("play zh/menu_sub"), press("*"), expect("stop"),
				expect("play zh/menu_sub"), press("9"), expect("stop")),
			wantPath: "sub>*>9>hangup", wantFinal: "hangup",
		},
		{
			name: "menu already on the stack truncates it",
			script: seq(expect(mainPrompts), press("4"), expect("stop"),
				expect("play zh/menu_sub"), press("2"), expect("stop"),
				expect("play zh/menu_sub2"), press("#"), expect("stop"),
				expect(mainPrompts), press("4"), expect("stop"),
				expect("play zh/menu_sub"), press("*"), expect("stop"), // back goes to main, not sub2
				expect(mainPrompts), press("3"), expect("stop"), expect("join business")),
			wantPath: "main>4>sub>2>sub2>#>main>4>sub>*>main>3>business", wantFinal: "queue business",
		},
		{
			name: "play action plays to the end, ignoring digits",
			script: seq(expect(mainPrompts), press("4"), expect("stop"),
				expect("play zh/menu_sub"), finish(), expect("timer 5s"), press("1"),
				expect("play zh/info"), press("5"), finish()),
			wantPath: "main>4>sub>1>play zh/info", wantFinal: "play zh/info",
		},
		{
			name: "type-ahead reaches the next menu",
			script: seq(press("41"), // "1" is read by sub while its prompt plays
				expect(mainPrompts), expect("stop"), expect("play zh/menu_sub"), expect("stop"), expect("play zh/info"), finish()),
			wantPath: "main>4>sub>1>play zh/info", wantFinal: "play zh/info",
		},
		{
			name: "input ended by terminator",
			script: seq(expect(mainPrompts), press("5"), expect("stop"),
				expect("play zh/enter_case"), press("2026#"), expect("stop"),
				expect("timer 3s"), expect("timer 3s"), expect("timer 3s"), expect("timer 3s"),
				expect("join complaint")),
			wantPath: "main>5>case>2026#>complaint", wantFinal: "queue complaint",
			wantVars: map[string]string{"case_number": "2026"},
		},
		{
			name:  "input ended by max digits",
			entry: "menu case",
			script: seq(expect("play zh/enter_case"), finish(), expect("timer 5s"), press("123456"),
				expect("timer 3s"), expect("timer 3s"), expect("timer 3s"), expect("timer 3s"), expect("timer 3s"),
				expect("join complaint")),
			wantPath: "case>123456>complaint", wantFinal: "queue complaint",
			wantVars: map[string]string{"case_number": "123456"},
		},
		{
			name:  "input ended by inter-digit timeout",
			entry: "menu case",
			script: seq(expect("play zh/enter_case"), press("12345"), expect("stop"),
				expect("timer 3s"), expect("timer 3s"), expect("timer 3s"), expect("timer 3s"), expect("timer 3s"),
				fire(), expect("join complaint")),
			wantPath: "case>12345>complaint", wantFinal: "queue complaint",
			wantVars: map[string]string{"case_number": "12345"},
		},
		{
			name:  "input too short is invalid",
			entry: "menu case",
			script: seq(expect("play zh/enter_case"), press("12#"), expect("stop"), expect("timer 3s"), expect("timer 3s"),
				expect("play zh/invalid"), finish(),
				expect("play zh/enter_case"), press("4321#"), expect("stop"),
				expect("timer 3s"), expect("timer 3s"), expect("timer 3s"), expect("timer 3s"),
				expect("join complaint")),
			wantPath: "case>12#!>4321#>complaint", wantFinal: "queue complaint",
			wantVars: map[string]string{"case_number": "4321"},
		},
		{
			name:  "terminator alone is invalid; second failure falls back",
			entry: "menu case",
			script: seq(expect("play zh/enter_case"), press("#"), expect("stop"), expect("play zh/invalid"), finish(),
				expect("play zh/enter_case"), finish(), expect("timer 5s"), fire()),
			wantPath: "case>#!>T>F>hangup", wantFinal: "hangup",
		},
		{
			name:     "ctx cancelled mid-prompt",
			script:   seq(expect(mainPrompts), cancel(), expect("stop")),
			wantPath: "main", wantErr: context.Canceled,
		},
		{
			name:     "ctx cancelled mid-wait",
			script:   seq(expect(mainPrompts), finish(), expect("timer 5s"), cancel()),
			wantPath: "main", wantErr: context.Canceled,
		},
		{
			name:  "ctx cancelled mid-entry",
			entry: "menu case",
			script: seq(expect("play zh/enter_case"), press("12"), expect("stop"), expect("timer 3s"), expect("timer 3s"),
				cancel()),
			wantPath: "case", wantErr: context.Canceled,
		},
		{
			name:      "ctx cancelled while queued keeps the queue as final",
			joinBlock: true,
			script:    seq(expect(mainPrompts), press("1"), expect("stop"), expect("join consult"), cancel()),
			wantPath:  "main>1>consult", wantFinal: "queue consult", wantErr: context.Canceled,
		},
		{
			name:     "entry queue is the menu-less profile",
			entry:    "queue consult",
			script:   seq(expect("join consult")),
			wantPath: "consult", wantFinal: "queue consult",
		},
		{
			name:     "entry play",
			entry:    "play zh/closed",
			script:   seq(expect("play zh/closed"), finish()),
			wantPath: "play zh/closed", wantFinal: "play zh/closed",
		},
		{
			name:     "menu without prompts waits at once",
			menus:    map[string]Menu{"m": {Options: map[string]string{"1": "hangup"}}},
			entry:    "menu m",
			script:   seq(expect("timer 5s"), press("1")),
			wantPath: "m>1>hangup", wantFinal: "hangup",
		},
		{
			name:     "unknown menu target",
			menus:    map[string]Menu{"m": {Options: map[string]string{"1": "menu nowhere"}}},
			entry:    "menu m",
			script:   seq(expect("timer 5s"), press("1")),
			wantPath: "m>1", wantErr: ErrUnknownMenu,
		},
		{
			name:    "back is no entry",
			entry:   "back",
			wantErr: ErrBadEntry,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			menus := tc.menus
			if menus == nil {
				menus = testMenus()
			}
			entry := tc.entry
			if entry == "" {
				entry = "menu main"
			}
			h := newHarness(t)
			h.queue.block = tc.joinBlock
			h.start(menus, mustAction(t, entry))
			for _, s := range tc.script {
				s(h)
			}
			h.wait()
			if !errors.Is(h.err, tc.wantErr) || (tc.wantErr == nil && h.err != nil) {
				t.Errorf("error %v, want %v", h.err, tc.wantErr)
			}
			if got := h.res.PathString(); got != tc.wantPath {
				t.Errorf("path %q, want %q", got, tc.wantPath)
			}
			if got := h.res.Final.String(); got != tc.wantFinal {
				t.Errorf("final %q, want %q", got, tc.wantFinal)
			}
			wantVars := tc.wantVars
			if wantVars == nil {
				wantVars = map[string]string{}
			}
			if !maps.Equal(h.res.Vars, wantVars) {
				t.Errorf("vars %v, want %v", h.res.Vars, wantVars)
			}
		})
	}
}

func TestRunLoopGuard(t *testing.T) {
	// a and b fall back to each other on every silent attempt.
	menus := map[string]Menu{
		"a": {Prompts: []string{"a"}, MaxRetries: 1, Fallback: "menu b", Options: map[string]string{"1": "hangup"}},
		"b": {Prompts: []string{"b"}, MaxRetries: 1, Fallback: "menu a", Options: map[string]string{"1": "hangup"}},
	}
	h := newHarness(t)
	h.start(menus, mustAction(t, "menu a"))
	for i := range MaxTransitionsWithoutInput {
		name := "a"
		if i%2 == 1 {
			name = "b"
		}
		for _, s := range seq(expect("play "+name), finish(), expect("timer 5s"), fire()) {
			s(h)
		}
	}
	h.wait()
	if h.err != nil {
		t.Fatal(h.err)
	}
	if h.res.Final.Kind != ActHangup {
		t.Errorf("final %v, want hangup", h.res.Final)
	}
	last := h.res.Path[len(h.res.Path)-1]
	if last != (Step{Menu: "a", Input: "loop", Event: EventFallback}) {
		t.Errorf("last step %+v, want the loop guard", last)
	}
	if got, want := strings.Count(h.res.PathString(), ">T>F>"), MaxTransitionsWithoutInput; got != want {
		t.Errorf("%d visits, want %d: %s", got, want, h.res.PathString())
	}
}

func TestRunLoopGuardResetsOnDigits(t *testing.T) {
	// A caller who keeps pressing keys is never cut off: "0" repeats main.
	h := newHarness(t)
	h.start(testMenus(), mustAction(t, "menu main"))
	for range MaxTransitionsWithoutInput + 10 {
		for _, s := range seq(expect(mainPrompts), press("0"), expect("stop")) {
			s(h)
		}
	}
	for _, s := range seq(expect(mainPrompts), press("2"), expect("stop"), expect("join complaint")) {
		s(h)
	}
	h.wait()
	if h.err != nil || h.res.Final.String() != "queue complaint" {
		t.Fatalf("final %v, err %v", h.res.Final, h.err)
	}
}

func TestRunConfigErrors(t *testing.T) {
	r := &Runner{Menus: testMenus()}
	if _, err := r.Run(context.Background(), mustAction(t, "menu main")); !errors.Is(err, ErrNotConfigured) {
		t.Errorf("no media: %v", err)
	}
	if _, err := r.Run(context.Background(), Action{}); !errors.Is(err, ErrBadEntry) {
		t.Errorf("zero entry: %v", err)
	}
	res, err := r.Run(context.Background(), mustAction(t, "queue consult"))
	if !errors.Is(err, ErrNotConfigured) || res.Final.String() != "queue consult" {
		t.Errorf("no queue: %v %v", res.Final, err)
	}
	res, err = r.Run(context.Background(), mustAction(t, "hangup"))
	if err != nil || res.PathString() != "hangup" {
		t.Errorf("hangup: %q %v", res.PathString(), err)
	}
}

func TestRunDoesNotModifyMenus(t *testing.T) {
	menus := testMenus()
	h := newHarness(t)
	h.start(menus, mustAction(t, "menu case"))
	for _, s := range seq(expect("play zh/enter_case"), cancel(), expect("stop")) {
		s(h)
	}
	h.wait()
	if in := menus["case"].Input; in.Terminator != "" || in.InterDigitTimeout != 0 || menus["case"].Timeout != 0 {
		t.Errorf("Run applied defaults to the shared menus: %+v", in)
	}
}

func TestPathString(t *testing.T) {
	tests := []struct {
		res  Result
		want string
	}{
		{Result{}, ""},
		{Result{Final: Action{Kind: ActQueue, Target: "consult"}}, "consult"},
		{Result{
			Path: []Step{
				{Menu: "main", Event: EventEntry},
				{Menu: "main", Input: "2", Event: EventDigit},
			},
			Final: Action{Kind: ActQueue, Target: "complaint"},
		}, "main>2>complaint"},
		{Result{
			Path: []Step{
				{Menu: "main", Event: EventEntry},
				{Menu: "main", Input: "9", Event: EventInvalid},
				{Menu: "main", Event: EventTimeout},
				{Menu: "main", Event: EventFallback},
				{Menu: "closed", Event: EventEntry},
			},
			Final: Action{Kind: ActPlay, Target: "zh/closed"},
		}, "main>9!>T>F>closed>play zh/closed"},
		{Result{
			Path:  []Step{{Menu: "case", Event: EventEntry}, {Menu: "case", Input: "12#", Event: EventInvalid}},
			Final: Action{Kind: ActHangup},
		}, "case>12#!>hangup"},
	}
	for _, tc := range tests {
		if got := tc.res.PathString(); got != tc.want {
			t.Errorf("PathString() = %q, want %q", got, tc.want)
		}
	}
}

// The greeting plays on the first visit only; retries and returns replay just the menu prompts.
func TestGreetingOnlyOnFirstVisit(t *testing.T) {
	menus := testMenus()
	m := menus["main"]
	m.Greeting, m.Prompts = []string{"zh/welcome"}, []string{"zh/menu_main"}
	menus["main"] = m
	h := newHarness(t)
	h.start(menus, mustAction(t, "menu main"))
	for _, st := range seq(
		expect("play zh/welcome,zh/menu_main"), finish(), expect("timer 5s"), fire(), expect("play zh/timeout"), finish(),
		expect("play zh/menu_main"), press("4"), expect("stop"), expect("play zh/menu_sub"), press("*"), expect("stop"),
		expect("play zh/menu_main"), press("1"), expect("stop"), expect("join consult"),
	) {
		st(h)
	}
	h.wait()
	if got := h.res.PathString(); got != "main>T>4>sub>*>main>1>consult" {
		t.Fatalf("path %q", got)
	}
}

// A caller coming back to the IVR later in the call is not greeted again.
func TestNoGreeting(t *testing.T) {
	menus := testMenus()
	m := menus["main"]
	m.Greeting, m.Prompts = []string{"zh/welcome"}, []string{"zh/menu_main"}
	menus["main"] = m
	h := newHarness(t)
	h.noGreeting = true
	h.start(menus, mustAction(t, "menu main"))
	for _, st := range seq(expect("play zh/menu_main"), press("2"), expect("stop"), expect("join complaint")) {
		st(h)
	}
	h.wait()
	if got := h.res.PathString(); got != "main>2>complaint" {
		t.Fatalf("path %q", got)
	}
}

// The Run's machine takes the events of the diagram in runner_fsm.go and
// refuses the others: a stray event is a bug that ends the IVR.
func TestRunStateMachine(t *testing.T) {
	c := &callRun{f: newRunFSM(), fsmCtx: context.Background(), log: testLogger(t)}
	for _, tc := range []struct {
		ev, want string // want "": refused
	}{
		{evTimeout, ""},
		{evVisit, stPrompting},
		{evDigit, stCollecting},
		{evDigit, stCollecting}, // another key of the entry
		{evTimeout, ""},         // only waiting times out
		{evInvalid, stFailing},
		{evRetry, stPrompting},
		{evPromptDone, stWaiting},
		{evTimeout, stFailing},
		{evFallback, stRouting},
		{evQueue, stQueued},
		{evPlayed, ""},
		{evLeft, stDone},
		{evVisit, ""},
	} {
		from := c.f.Current()
		err := c.fire(tc.ev)
		switch {
		case tc.want == "" && !errors.Is(err, ErrStateMachine):
			t.Fatalf("%s in %s: %v, want refused", tc.ev, from, err)
		case tc.want != "" && err != nil:
			t.Fatalf("%s in %s: %v", tc.ev, from, err)
		case tc.want != "" && c.f.Current() != tc.want:
			t.Fatalf("%s in %s: now %s, want %s", tc.ev, from, c.f.Current(), tc.want)
		}
	}
}
