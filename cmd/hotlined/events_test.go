package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"
)

func runEvents(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = eventsMain(args, &o, &e)
	return code, o.String(), e.String()
}

func TestEventsCommand(t *testing.T) {
	dir := seedReportDB(t)
	// The day in the config's zone (Asia/Shanghai): all 16 events (2 of them RATING).
	code, out, errOut := runEvents(t, "--data-dir", dir, "--from", "2026-03-15", "--to", "2026-03-15")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 1+16 || !strings.HasPrefix(lines[0], "time") ||
		!strings.Contains(lines[1], "2026-03-15 08:00:00.000  LOGIN") || !strings.Contains(lines[1], "data1=sip:1001@127.0.0.1:5062") {
		t.Fatalf("text: exit %d: %s\n%s", code, errOut, out)
	}

	code, out, errOut = runEvents(t, "--data-dir", dir, "--agent", "1001", "--event", "connect,WRAPUPEND", "--format", "csv")
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if code != 0 || err != nil || len(rows) != 3 || rows[1][5] != "CONNECT" || rows[2][5] != "WRAPUPEND" || rows[2][6] != "20.000" || rows[2][2] != "a" {
		t.Fatalf("csv: exit %d %v: %s\n%s", code, err, errOut, out)
	}

	code, out, errOut = runEvents(t, "--data-dir", dir, "--queue", "consult", "--from", "2026-03-15 11:00", "--format", "json")
	var j struct {
		Events []struct{ Event, Queue, CallID string }
	}
	if err := json.Unmarshal([]byte(out), &j); code != 0 || err != nil || len(j.Events) != 4 || j.Events[0].Event != "ENTERQUEUE" {
		t.Fatalf("json: exit %d %v: %s\n%s", code, err, errOut, out)
	}

	code, out, errOut = runEvents(t, "--data-dir", dir, "--limit", "2")
	if code != 0 || len(strings.Split(strings.TrimSpace(out), "\n")) != 3 || !strings.Contains(errOut, "stopped at --limit 2") {
		t.Fatalf("limit: exit %d: %s\n%s", code, errOut, out)
	}
}

func TestEventsCommandBadInput(t *testing.T) {
	dir := seedReportDB(t)
	for _, tt := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--data-dir", dir, "--event", "DANCE"}, 2, `--event "DANCE"`},
		{[]string{"--data-dir", dir, "--format", "xml"}, 2, `--format "xml"`},
		{[]string{"--data-dir", dir, "--limit", "0"}, 2, "--limit 0"},
		{[]string{"--data-dir", dir, "--from", "2026-03-16", "--to", "2026-03-15"}, 2, "impossible range"},
		{[]string{"--data-dir", dir, "--tz", "Mars/Olympus"}, 2, "--tz"},
		{[]string{"--data-dir", dir + "/nope"}, 1, "no call records at"},
		{[]string{"--data-dir", dir, "extra"}, 2, "unexpected argument"},
	} {
		code, _, errOut := runEvents(t, tt.args...)
		if code != tt.code || !strings.Contains(errOut, tt.msg) {
			t.Errorf("%v: exit %d, %q; want %d and %q", tt.args, code, errOut, tt.code, tt.msg)
		}
	}
}
