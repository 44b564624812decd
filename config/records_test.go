package config

import (
	"strings"
	"testing"
	"time"
)

func TestRecordsAndLogDefaults(t *testing.T) {
	c, err := Load(name, []byte(defaultDoc(t)), Known{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Records.RetentionDays != 0 || c.Records.RetentionAt != DefaultRetentionAt || c.Records.RetentionTime() != 3*time.Hour+30*time.Minute {
		t.Errorf("records defaults %+v", c.Records)
	}
	if !c.Log.Masked() {
		t.Error("numbers are not masked by default")
	}
	doc := defaultDoc(t) + "\nrecords:\n  retention_days: 180\n  retention_at: \"23:05\"\nlog:\n  mask_numbers: false\n"
	if c, err = Load(name, []byte(doc), Known{}); err != nil {
		t.Fatal(err)
	}
	if c.Records.RetentionDays != 180 || c.Records.RetentionTime() != 23*time.Hour+5*time.Minute || c.Log.Masked() {
		t.Errorf("records %+v, log masked %v", c.Records, c.Log.Masked())
	}
}

func TestRecordsErrors(t *testing.T) {
	for _, tc := range []struct{ section, field, problem string }{
		{"records:\n  retention_days: -1\n", "records.retention_days", "want 0 (keep forever) or 1-36500 days, got -1"},
		{"records:\n  retention_days: 99999\n", "records.retention_days", "got 99999"},
		{"records:\n  retention_at: \"3:30\"\n", "records.retention_at", `want HH:MM between 00:00 and 23:59, got "3:30"`},
		{"records:\n  retention_at: \"24:00\"\n", "records.retention_at", `got "24:00"`},
		{"records:\n  retention_at: \"ab:cd\"\n", "records.retention_at", `got "ab:cd"`},
	} {
		doc := defaultDoc(t) + "\n" + tc.section
		_, err := Load(name, []byte(doc), Known{})
		if err == nil {
			t.Errorf("%q: loaded", tc.section)
			continue
		}
		got := problems(t, err)
		if len(got) != 1 || got[0].Field != tc.field || !strings.Contains(got[0].Problem, tc.problem) ||
			got[0].Line != strings.Count(defaultDoc(t), "\n")+3 {
			t.Errorf("%q: %v (line %d)", tc.section, err, got[0].Line)
		}
	}
}
