package ivr

import (
	"slices"
	"strings"
	"testing"
)

func set(names ...string) func(string) bool {
	return func(s string) bool { return slices.Contains(names, s) }
}

var (
	knownPrompts = set("zh/welcome", "zh/menu_main", "zh/invalid", "zh/timeout", "zh/menu_sub", "zh/menu_sub2",
		"zh/info", "zh/enter_case", "zh/closed")
	knownQueues = set("consult", "complaint", "business")
)

func TestValidateMenusClean(t *testing.T) {
	if errs := ValidateMenus(testMenus(), knownPrompts, knownQueues); len(errs) != 0 {
		t.Errorf("test menus: %v", errs)
	}
}

func TestValidateMenus(t *testing.T) {
	tests := []struct {
		name     string
		edit     func(m map[string]Menu)
		wantPath string
		wantText string
	}{
		{"unknown target menu", func(m map[string]Menu) { m["main"].Options["7"] = "menu nowhere" },
			"menus.main.options.7", `unknown menu "nowhere"`},
		{"unknown queue", func(m map[string]Menu) { m["main"].Options["7"] = "queue sales" },
			"menus.main.options.7", `unknown queue "sales"`},
		{"bad digit key", func(m map[string]Menu) { m["main"].Options["12"] = "queue consult" },
			"menus.main.options.12", "bad key"},
		{"bad action", func(m map[string]Menu) { m["main"].Options["7"] = "dial 110" },
			"menus.main.options.7", `unknown action "dial"`},
		{"unknown prompt", func(m map[string]Menu) { x := m["sub"]; x.Prompts = []string{"zh/menu_sub", "zh/nope"}; m["sub"] = x },
			"menus.sub.prompts[1]", `unknown prompt "zh/nope"`},
		{"unknown play prompt", func(m map[string]Menu) { m["sub"].Options["1"] = "play zh/nope" },
			"menus.sub.options.1", `unknown prompt "zh/nope"`},
		{"negative timeout", func(m map[string]Menu) { x := m["main"]; x.Timeout = -1; m["main"] = x },
			"menus.main.timeout", "negative"},
		{"fallback repeat", func(m map[string]Menu) { x := m["main"]; x.Fallback = "repeat"; m["main"] = x },
			"menus.main.fallback", "forever"},
		{"bad fallback", func(m map[string]Menu) { x := m["main"]; x.Fallback = "queue"; m["main"] = x },
			"menus.main.fallback", "one name"},
		{"input without store", func(m map[string]Menu) { m["case"].Input.Store = "" },
			"menus.case.input.store", "required"},
		{"input min above max", func(m map[string]Menu) { m["case"].Input.MinDigits = 9 },
			"menus.case.input.min_digits", "more than max_digits 6"},
		{"input bad terminator", func(m map[string]Menu) { m["case"].Input.Terminator = "##" },
			"menus.case.input.terminator", "bad key"},
		{"input with options", func(m map[string]Menu) { x := m["case"]; x.Options = map[string]string{"1": "hangup"}; m["case"] = x },
			"menus.case.options", "not used"},
		{"bad menu name", func(m map[string]Menu) { m["my menu"] = Menu{} },
			"menus.my menu", "bad menu name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			menus := testMenus()
			tc.edit(menus)
			errs := ValidateMenus(menus, knownPrompts, knownQueues)
			if len(errs) != 1 {
				t.Fatalf("want one error, got %v", errs)
			}
			if errs[0].Path != tc.wantPath || !strings.Contains(errs[0].Problem, tc.wantText) {
				t.Errorf("got %q, want path %q with %q", errs[0].Error(), tc.wantPath, tc.wantText)
			}
		})
	}
}

func TestRouteValidate(t *testing.T) {
	good := func() Route {
		return Route{Number: "12345", Menu: "main", ClosedMenu: "sub",
			Hours:    []Hours{{Days: []string{"mon-fri"}, Open: "08:30", Close: "17:30"}},
			Holidays: []string{"2026-10-01"}, Workdays: []string{"2026-09-27"}}
	}
	tests := []struct {
		name     string
		edit     func(r *Route)
		wantPath string
		wantText string
	}{
		{"bad open hour", func(r *Route) { r.Hours = append(r.Hours, Hours{Open: "25:00", Close: "17:00"}) }, "routes[0].hours[1].open", "bad time"},
		{"bad close", func(r *Route) { r.Hours[0].Close = "5pm" }, "routes[0].hours[0].close", "bad time"},
		{"24:00 is no opening time", func(r *Route) { r.Hours[0].Open = "24:00" }, "routes[0].hours[0].open", "bad time"},
		{"bad day", func(r *Route) { r.Hours[0].Days = []string{"mon", "xyz"} }, "routes[0].hours[0].days[1]", "bad day"},
		{"unknown menu", func(r *Route) { r.Menu = "nowhere" }, "routes[0].menu", `unknown menu "nowhere"`},
		{"unknown closed menu", func(r *Route) { r.ClosedMenu = "nowhere" }, "routes[0].closed_menu", `unknown menu "nowhere"`},
		{"unknown queue", func(r *Route) { r.Menu, r.Queue = "", "sales" }, "routes[0].queue", `unknown queue "sales"`},
		{"menu and queue", func(r *Route) { r.Queue = "consult" }, "routes[0].queue", "exclusive"},
		{"neither menu nor queue", func(r *Route) { r.Menu = "" }, "routes[0].menu", "required"},
		{"no number", func(r *Route) { r.Number = "" }, "routes[0].number", "required"},
		{"bad zone", func(r *Route) { r.Timezone = "Mars/Olympus" }, "routes[0].timezone", "unknown time zone"},
		{"bad holiday", func(r *Route) { r.Holidays = []string{"2026-13-01"} }, "routes[0].holidays[0]", "bad date"},
		{"workday on a weekday", func(r *Route) { r.Workdays = []string{"2026-10-02"} }, "routes[0].workdays[0]", "weekend"},
		{"hours without closed menu", func(r *Route) { r.ClosedMenu = "" }, "routes[0].closed_menu", "required"},
	}
	if errs := func() []FieldError { r := good(); return r.Validate("routes[0]", testMenus(), knownQueues) }(); len(errs) != 0 {
		t.Fatalf("good route: %v", errs)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := good()
			tc.edit(&r)
			errs := r.Validate("routes[0]", testMenus(), knownQueues)
			if len(errs) != 1 {
				t.Fatalf("want one error, got %v", errs)
			}
			if errs[0].Path != tc.wantPath || !strings.Contains(errs[0].Problem, tc.wantText) {
				t.Errorf("got %q, want path %q with %q", errs[0].Error(), tc.wantPath, tc.wantText)
			}
		})
	}
}

func TestFieldErrorString(t *testing.T) {
	e := FieldError{Path: "menus.main.options.7", Problem: `unknown menu "x"`}
	if got, want := e.Error(), `menus.main.options.7: unknown menu "x"`; got != want {
		t.Errorf("%q, want %q", got, want)
	}
}
