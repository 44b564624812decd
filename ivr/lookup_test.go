package ivr

import (
	"context"
	"errors"
	"testing"
)

// fakeHooks answers lookups from a table and reports each question.
type fakeHooks struct {
	post    func(string)
	status  string
	prompts []string
	err     error
}

func (f *fakeHooks) Lookup(ctx context.Context, name, value string) (string, []string, error) {
	f.post("lookup " + name + " " + value)
	return f.status, f.prompts, f.err
}

// entry keys an input menu's entry: the first key stops the prompt, each next one is
// read with the inter-digit timer running.
func entry(keys string) []step {
	out := []step{press(keys[:1]), expect("stop")}
	for _, k := range keys[1:] {
		out = append(out, expect("timer 3s"), press(string(k)))
	}
	return out
}

func lookupMenus() (map[string]Menu, map[string]Lookup) {
	menus := map[string]Menu{
		"case": {Prompts: []string{"zh/enter_case"}, Input: &Input{MinDigits: 4, Store: "case_number", Next: "lookup case_status"}},
	}
	lookups := map[string]Lookup{
		"case_status": {URL: "http://127.0.0.1:1/case", Statuses: map[string][]string{"processing": {"zh/status_processing"}},
			Next: "play zh/goodbye", Fallback: "queue consult"},
	}
	return menus, lookups
}

func TestRunLookup(t *testing.T) {
	for _, tc := range []struct {
		name      string
		hooks     fakeHooks
		script    func(h *harness) []step
		wantPath  string
		wantFinal string
	}{
		{
			name:  "answer spoken, then next",
			hooks: fakeHooks{status: "processing", prompts: []string{"zh/case_status_pre", "zh/status_processing"}},
			script: func(h *harness) []step {
				return seq(expect("play zh/enter_case"), entry("20261208#"), expect("lookup case_status 20261208"),
					expect("play zh/case_status_pre,zh/status_processing"), press("5"), finish(),
					expect("play zh/goodbye"), finish())
			},
			wantPath: "case>20261208#>lookup:processing>play zh/goodbye", wantFinal: "play zh/goodbye",
		},
		{
			name:  "failure: fallback prompt, then the fallback queue",
			hooks: fakeHooks{err: errors.New("timeout")},
			script: func(h *harness) []step {
				return seq(expect("play zh/enter_case"), entry("1234#"), expect("lookup case_status 1234"),
					expect("play lookup_failed"), finish(), expect("join consult"))
			},
			wantPath: "case>1234#>lookup!>consult", wantFinal: "queue consult",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			menus, lookups := lookupMenus()
			hooks := tc.hooks
			hooks.post = func(ev string) { h.events <- ev }
			r := &Runner{Menus: menus, Media: h.media, Queue: h.queue, Clock: h.clock, Logger: testLogger(t),
				Lookups: lookups, Hooks: &hooks}
			go func() {
				defer close(h.done)
				h.res, h.err = r.Run(h.ctx, Action{Kind: ActMenu, Target: "case"})
			}()
			for _, s := range tc.script(h) {
				s(h)
			}
			h.wait()
			if h.err != nil {
				t.Fatalf("Run: %v", h.err)
			}
			if got := h.res.PathString(); got != tc.wantPath {
				t.Errorf("path %q, want %q", got, tc.wantPath)
			}
			if got := h.res.Final.String(); got != tc.wantFinal {
				t.Errorf("final %q, want %q", got, tc.wantFinal)
			}
		})
	}
}

func TestValidateLookups(t *testing.T) {
	menus, lookups := lookupMenus()
	menus["main"] = Menu{Options: map[string]string{"9": "lookup nosuch"}}
	l := lookups["case_status"]
	bad := Lookup{URL: "ftp://x", Timeout: -1, Statuses: map[string][]string{"done": nil, "a>b": {"x"}}, Next: "repeat"}
	lookups["bad"] = bad
	lookups["case_status"] = l
	got := ValidateLookups(lookups, menus, func(p string) bool { return p != "lookup_failed" }, nil)
	want := []FieldError{
		{"lookups.bad.url", `want an http:// or https:// URL, got "ftp://x"`},
		{"lookups.bad.timeout", "must be between 0 (default 3s) and 30s"},
		{"lookups.bad.statuses.a>b", `bad status "a>b" (letters, digits and _-./: only)`},
		{"lookups.bad.statuses.done", "needs at least one prompt"},
		{"lookups.bad.fallback_prompt", `unknown prompt "lookup_failed"`},
		{"lookups.bad.next", `"repeat" cannot follow a lookup (want menu, queue, play or hangup)`},
		{"lookups.bad.fallback", "required (where the caller goes when the hook fails, e.g. queue consult)"},
		{"lookups.case_status.fallback_prompt", `unknown prompt "lookup_failed"`},
		{"menus.main.options.9", `unknown lookup "nosuch"`},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d errors %v, want %v", len(got), got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("error %d: %v, want %v", i, got[i], want[i])
		}
	}
}
