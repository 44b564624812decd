package config

import (
	"strings"
	"testing"
	"time"
)

// selfServiceDoc is the default config with its self-service example switched on: the
// commented case menu and lookup uncommented, and 9 leading to the case menu.
func selfServiceDoc(t *testing.T) string {
	t.Helper()
	doc := edit(t, defaultDoc(t), `      "3": queue business       # 营商环境专席`, `      "3": queue business
      "9": menu case`)
	var out []string
	on := false
	for _, l := range strings.Split(doc, "\n") {
		switch {
		case strings.HasPrefix(l, "#   case:"):
			on = true
		case on && !strings.HasPrefix(l, "#"):
			on = false
		}
		if on {
			l = strings.TrimPrefix(l, "# ")
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

// The documented example is valid as written (in both prompt languages) and reads as meant.
func TestLookupExample(t *testing.T) {
	doc := selfServiceDoc(t)
	for _, lang := range []string{"zh", "en"} {
		c, err := Load(name, []byte(doc), Known{Prompt: embeddedPrompt(lang)})
		if err != nil {
			t.Fatalf("%s: %v", lang, err)
		}
		l, ok := c.Lookups["case_status"]
		if !ok || l.URL != "http://127.0.0.1:8090/case" || l.Timeout.D() != 3*time.Second || l.Fallback != "queue consult" ||
			len(l.Statuses) != 4 || l.Statuses["processing"][1] != "status_processing" {
			t.Fatalf("lookup %+v", l)
		}
		if c.Menus["case"].Input.Next != "lookup case_status" || c.Menus["main"].Options["9"] != "menu case" {
			t.Fatalf("case menu %+v", c.Menus["case"])
		}
	}
}

// Bad lookups are reported at their line.
func TestLookupErrors(t *testing.T) {
	doc := selfServiceDoc(t)
	for _, tc := range []struct{ old, new, field, problem string }{
		{"url: http://127.0.0.1:8090/case", "url: 127.0.0.1:8090/case", "lookups.case_status.url", `want an http:// or https:// URL, got "127.0.0.1:8090/case"`},
		{"timeout: 3s               # the whole", "timeout: 1m               # the whole", "lookups.case_status.timeout", "must be between 0 (default 3s) and 30s"},
		{"done: [case_status_pre, status_done]", "done: [case_status_pre, status_finished]", "lookups.case_status.statuses.done[1]", `unknown prompt "status_finished"`},
		{"fallback: queue consult   # ...", "fallback: queue nosuch   # ...", "lookups.case_status.fallback", `unknown queue "nosuch"`},
		{"next: lookup case_status}", "next: lookup case_state}", "menus.case.input.next", `unknown lookup "case_state"`},
	} {
		d := edit(t, doc, tc.old, tc.new)
		_, err := Load(name, []byte(d), Known{Prompt: embeddedPrompt("zh")})
		if err == nil {
			t.Errorf("%s: loaded", tc.new)
			continue
		}
		got := problems(t, err)
		if len(got) != 1 || got[0].Field != tc.field || got[0].Problem != tc.problem || got[0].Line != lineWith(t, d, tc.new, 1) {
			t.Errorf("%s: %v, want line %d %s: %s", tc.new, err, lineWith(t, d, tc.new, 1), tc.field, tc.problem)
		}
	}
}
