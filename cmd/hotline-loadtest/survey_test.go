package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hotline12345/hotline/loadtest"
)

// runSurveyCmd runs `hotline-loadtest survey args...` (called directly: the command table is
// main.go's).
func runSurveyCmd(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second) // a bound: a run stops by itself
	defer cancel()
	code = runSurvey(ctx, args, &out, &errb)
	return code, out.String(), errb.String()
}

// Bad usage exits 2 with a message naming the problem, before any call; an API that does not
// answer exits 1 with the reason.
func TestSurveyCommandUsage(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"neither targets nor duration", nil, 2, "want --targets N"},
		{"targets and duration", []string{"--targets", "5", "--duration", "10s"}, 2, "--duration is for taking calls without a campaign"},
		{"targets above max-calls", []string{"--targets", "2000"}, 2, "--targets 2000 is above --max-calls 1000"},
		{"negative targets", []string{"--targets", "-3", "--duration", "1s"}, 2, "--targets -3"},
		{"listen off loopback", []string{"--listen", "192.0.2.7:5090", "--duration", "1s"}, 2, "not a loopback address"},
		{"listen a name", []string{"--listen", "gw.example.com:5090", "--duration", "1s"}, 2, "not a loopback address"},
		{"API off loopback", []string{"--api", "http://203.0.113.9:8080", "--targets", "3"}, 2, "not a loopback address"},
		{"bad rating mix", []string{"--rating-mix", "1=x", "--duration", "1s"}, 2, "--rating-mix"},
		{"rating key 9", []string{"--rating-mix", "9=1", "--duration", "1s"}, 2, `key "9"`},
		{"shares above 1", []string{"--busy-share", "0.7", "--no-answer-share", "0.6", "--duration", "1s"}, 2, "above 1"},
		{"four shares above 1", []string{"--busy-share", "0.5", "--no-answer-share", "0.2", "--reject-share", "0.2", "--invalid-share", "0.2", "--duration", "1s"}, 2, "above 1"},
		{"reject share above 1", []string{"--reject-share", "1.5", "--duration", "1s"}, 2, "reject share 1.5"},
		{"negative invalid share", []string{"--invalid-share", "-0.5", "--duration", "1s"}, 2, "invalid share -0.5"},
		{"unknown flag", []string{"--bogus"}, 2, "-bogus"},
		{"stray argument", []string{"--duration", "1s", "now"}, 2, `unexpected argument "now"`},
	} {
		code, stdout, stderr := runSurveyCmd(tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) || stdout != "" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit %d and %q", tc.name, code, stdout, stderr, tc.code, tc.want)
		}
	}

	// Nobody on the API's port: the run fails (1) with the reason and the partial report.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	code, stdout, stderr := runSurveyCmd("--listen", freeUDPAddr(t), "--api", dead, "--targets", "2", "--quiet")
	if code != 1 || !strings.Contains(stderr, "survey campaign") || !strings.Contains(stdout, "FAIL") {
		t.Errorf("dead API: exit %d, stdout %q, stderr %q; want 1, the campaign error and a FAIL table", code, stdout, stderr)
	}
}

func freeUDPAddr(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

// A small campaign against the real server from the command line: exit 0, the JSON report
// agrees (no failure, no mismatch, every call recorded, the declines and invalid numbers
// counted), and the truth file holds every call.
func TestSurveyCommandAgainstServer(t *testing.T) {
	dir := t.TempDir()
	far := freeUDPAddr(t)
	h := startServer(t, "51500-51998", "gateway: sip:127.0.0.1:5090", "gateway: sip:"+far)
	truth := filepath.Join(dir, "survey.json")
	code, stdout, stderr := runSurveyCmd("--listen", far, "--api", "http://"+h.HTTP, "--targets", "6",
		"--retry", "1s", "--ring-timeout", "1500ms", "--answer-delay", "100ms", "--busy-share", "0.3", "--no-answer-share", "0.2",
		"--reject-share", "0.1", "--invalid-share", "0.1", // seed 3 draws one of each
		"--hangup-share", "0.2", "--info-share", "0.5", "--seed", "3", "--max-calls", "30", "--truth", truth, "--json", "--quiet")
	var rep struct {
		Campaign   string
		Stopped    string
		Calls      int
		Answered   int
		Declined   int
		Invalid    int
		Failures   int
		Mismatches []string
		Server     *struct{ Records int }
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("exit %d: output is not the JSON report: %v\n%s\n%s", code, err, stdout, stderr)
	}
	if code != 0 || rep.Stopped != "campaign-done" || rep.Campaign == "" || rep.Failures != 0 || len(rep.Mismatches) != 0 ||
		rep.Server == nil || rep.Server.Records != rep.Calls || rep.Calls < 6 || rep.Answered == 0 {
		t.Fatalf("exit %d, report %+v\n%s\n%s", code, rep, stdout, stderr)
	}
	tr, err := loadtest.ReadTruth(truth)
	if err != nil || tr.Scenario != "survey" || len(tr.Calls) != rep.Calls {
		t.Fatalf("truth: %v, scenario %q, %d calls; want %d", err, tr.Scenario, len(tr.Calls), rep.Calls)
	}
	statuses, attempts := map[int]int{}, map[string]int{}
	for _, c := range tr.Calls {
		statuses[c.SIPStatus]++
		if attempts[c.Called]++; c.Attempt != attempts[c.Called] || !strings.HasPrefix(c.Called, "1390000") || c.Caller == c.Called {
			t.Errorf("truth call %+v: want the generated number called, attempt %d", c, attempts[c.Called])
		}
	}
	if rep.Declined == 0 || rep.Invalid == 0 || statuses[603] != rep.Declined || statuses[404] != rep.Invalid {
		t.Errorf("report: %d declined, %d invalid; the truth's statuses %v (want at least one 603 and one 404)", rep.Declined, rep.Invalid, statuses)
	}

	// The same run as a table, taking calls without a campaign for a moment: none come, and
	// that passes.
	code, stdout, stderr = runSurveyCmd("--listen", far, "--duration", "300ms", "--quiet")
	if code != 0 || !strings.Contains(stdout, "PASS") || !strings.Contains(stdout, fmt.Sprintf("far end on %s", far)) {
		t.Fatalf("taking calls: exit %d\n%s\n%s", code, stdout, stderr)
	}
}
