package config

import (
	"strings"
	"testing"
	"time"
)

func TestRecordsAndLogDefaults(t *testing.T) {
	// The embedded file states the defaults; without the sections they are the same.
	for _, doc := range []string{defaultDoc(t), stripSections(t, defaultDoc(t), "records:", "log:")} {
		c, err := Load(name, []byte(doc), Known{})
		if err != nil {
			t.Fatal(err)
		}
		if c.Records.RetentionDays != 0 || c.Records.RetentionAt != DefaultRetentionAt || c.Records.RetentionTime() != 3*time.Hour+30*time.Minute {
			t.Errorf("records defaults %+v", c.Records)
		}
		if !c.Log.Masked() {
			t.Error("numbers are not masked by default")
		}
	}
	doc := edit(t, defaultDoc(t), "  retention_days: 0 ", "  retention_days: 180 ")
	doc = edit(t, doc, `  retention_at: "03:30" `, `  retention_at: "23:05" `)
	doc = edit(t, doc, "  mask_numbers: true ", "  mask_numbers: false ")
	c, err := Load(name, []byte(doc), Known{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Records.RetentionDays != 180 || c.Records.RetentionTime() != 23*time.Hour+5*time.Minute || c.Log.Masked() {
		t.Errorf("records %+v, log masked %v", c.Records, c.Log.Masked())
	}
}

// stripSections removes the top-level sections that start with the given keys.
func stripSections(t *testing.T, doc string, keys ...string) string {
	t.Helper()
	var out []string
	skip := false
	for _, l := range strings.Split(doc, "\n") {
		top := l != "" && l[0] != ' ' && l[0] != '#'
		if top {
			skip = false
			for _, k := range keys {
				skip = skip || strings.HasPrefix(l, k)
			}
		}
		if !skip {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestRecordsErrors(t *testing.T) {
	for _, tc := range []struct{ old, new, field, problem string }{
		{"  retention_days: 0 ", "  retention_days: -1 ", "records.retention_days", "want 0 (keep forever) or 1-36500 days, got -1"},
		{"  retention_days: 0 ", "  retention_days: 99999 ", "records.retention_days", "got 99999"},
		{`  retention_at: "03:30" `, `  retention_at: "3:30" `, "records.retention_at", `want HH:MM between 00:00 and 23:59, got "3:30"`},
		{`  retention_at: "03:30" `, `  retention_at: "24:00" `, "records.retention_at", `got "24:00"`},
		{`  retention_at: "03:30" `, `  retention_at: "ab:cd" `, "records.retention_at", `got "ab:cd"`},
	} {
		doc := edit(t, defaultDoc(t), tc.old, tc.new)
		_, err := Load(name, []byte(doc), Known{})
		if err == nil {
			t.Errorf("%q: loaded", tc.new)
			continue
		}
		got := problems(t, err)
		if len(got) != 1 || got[0].Field != tc.field || !strings.Contains(got[0].Problem, tc.problem) ||
			got[0].Line != lineWith(t, doc, tc.new, 1) {
			t.Errorf("%q: %v (line %d)", tc.new, err, got[0].Line)
		}
	}
}
