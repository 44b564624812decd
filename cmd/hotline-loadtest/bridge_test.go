package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hotline12345/hotline/loadtest"
)

// The bridge command against a real server: every pair bridged with audio both ways, the
// JSON report, the truth and the HTML report written, and compare agreeing.
func TestBridgeCommandThenCompare(t *testing.T) {
	dir := t.TempDir()
	h := startServer(t, "62000-63998")
	truth, html := filepath.Join(dir, "bridge.json"), filepath.Join(dir, "bridge.html")
	code, stdout, stderr := runCmd("bridge", "--target", h.SIP, "--api", "http://"+h.HTTP, "--agents", "8",
		"--rate", "8", "--duration", "2s", "--max-skip", "0.5", "--truth", truth, "--html", html, "--json", "--quiet")
	if code != 0 {
		t.Fatalf("bridge: exit %d\n%s\n%s", code, stdout, stderr)
	}
	var rep loadtest.BridgeReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("JSON report: %v\n%s", err, stdout)
	}
	if rep.Bridged != 8 || rep.PeakBridged != 8 || rep.AudioPassed != 8 || rep.ServerCores <= 0 {
		t.Errorf("report %+v: want 8 pairs up together with audio both ways, server CPU from /metrics", rep)
	}
	page, err := os.ReadFile(html)
	if err != nil || strings.Count(string(page), "<svg") < 4 || !strings.Contains(string(page), "bridged") {
		t.Fatalf("HTML report: %v, %d plots", err, strings.Count(string(page), "<svg"))
	}
	code, stdout, stderr = runCmd("compare", "--truth", truth, "--api", "http://"+h.HTTP)
	if code == 2 || !strings.Contains(stdout, "compare: ") {
		t.Fatalf("compare: exit %d\n%s\n%s", code, stdout, stderr)
	}
	for line := range strings.SplitSeq(stdout, "\n") {
		if f := strings.Fields(line); strings.HasPrefix(line, "MISMATCH") && !(len(f) >= 3 && (f[2] == "wait:" || f[2] == "talk:")) {
			t.Errorf("compare: %s", line)
		}
	}

	// The same run from a scenario file (hotline-loadtest run FILE), a flag overriding it.
	sc := filepath.Join(dir, "bridge.yaml")
	if err := os.WriteFile(sc, []byte("scenario: bridge\ntarget: "+h.SIP+"\napi: http://"+h.HTTP+"\nagents: 4\nrate: 8\nduration: 1s\nquiet: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// (--max-skip: the test is about the server and the command, not about the tester's
	// share of a CI machine that other work may saturate.)
	code, stdout, stderr = runCmd("run", sc, "--json", "--agents", "3", "--max-skip", "0.5")
	rep = loadtest.BridgeReport{}
	if err := json.Unmarshal([]byte(stdout), &rep); code != 0 || err != nil || rep.Bridged != 3 || rep.Hold != loadtest.Dur(time.Second) {
		t.Errorf("run %s --agents 3: exit %d, %v, report %+v\n%s", sc, code, err, rep, stderr)
	}

	// Above the safety limits nothing is dialled.
	for _, args := range [][]string{
		{"bridge", "--target", h.SIP, "--agents", "2000"},
		{"bridge", "--target", h.SIP, "--rate", "500"},
		{"bridge", "--target", h.SIP, "--codec", "G729"},
		{"bridge", "--target", "192.0.2.1:5060"},
	} {
		if code, _, stderr := runCmd(args...); code != 2 || stderr == "" {
			t.Errorf("%v: exit %d, %q; want 2 with a message", args, code, stderr)
		}
	}
}
