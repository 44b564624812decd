package kamailiotest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// SIPp processes standing in for hotlined nodes, phones and carriers.

func requireSIPp(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("sipp")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("sipp is not installed (CI=true: failing instead of skipping)")
		}
		t.Skip("sipp is not installed (apt-get install sip-tester)")
	}
	return p
}

func testdata(t testing.TB, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// uas is a SIPp UAS child process.
type uas struct {
	t    *testing.T
	port int
	cmd  *exec.Cmd
	done chan struct{}
	out  *bytes.Buffer
}

// startUAS runs sipp as a UAS on 127.0.0.1:port (0: a free one) with the scenario (a
// testdata file, or "" for uas_call.xml), answering OPTIONS itself (-aa). It is killed
// when the test ends. A free port can be taken between the pick and sipp's bind: then it
// tries another one (or, for a given port, the same one again) until a deadline.
func startUAS(t *testing.T, port int, scenario string) *uas {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		u, err := tryUAS(t, port, scenario)
		if err == nil {
			return u
		}
		if !strings.Contains(err.Error(), "Unable to bind") || time.Now().After(deadline) {
			t.Fatal(err)
		}
		t.Logf("retrying: %v", err)
		time.Sleep(50 * time.Millisecond) // let the port go
	}
}

func tryUAS(t *testing.T, port int, scenario string) (*uas, error) {
	t.Helper()
	bin := requireSIPp(t)
	if port == 0 {
		var err error
		if port, err = FreePort("127.0.0.1"); err != nil {
			t.Fatal(err)
		}
	}
	if scenario == "" {
		scenario = "uas_call.xml"
	}
	args := []string{"-i", "127.0.0.1", "-p", strconv.Itoa(port), "-aa", "-nostdin",
		"-m", "10000", "-timeout", "60s", "-trace_err",
		"-error_file", filepath.Join(t.TempDir(), "err.log"),
		"-sf", testdata(t, scenario)}
	u := &uas{t: t, port: port, done: make(chan struct{}), out: new(bytes.Buffer)}
	u.cmd = exec.Command(bin, args...)
	u.cmd.Dir = t.TempDir()
	u.cmd.Stdout, u.cmd.Stderr = u.out, u.out
	u.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := u.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { u.cmd.Wait(); close(u.done) }()
	t.Cleanup(u.kill)
	// Ready when it answers an OPTIONS.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for Ping(ctx, u.addr(), 100*time.Millisecond) != nil {
		select {
		case <-u.done:
			return nil, fmt.Errorf("sipp uas on %d exited: %s", port, u.out)
		case <-ctx.Done():
			return nil, fmt.Errorf("sipp uas on %d does not answer OPTIONS", port)
		default:
		}
	}
	return u, nil
}

func (u *uas) addr() string { return "127.0.0.1:" + strconv.Itoa(u.port) }

func (u *uas) kill() {
	select {
	case <-u.done:
		return
	default:
	}
	_ = syscall.Kill(-u.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-u.done:
	case <-time.After(5 * time.Second):
		u.t.Errorf("sipp uas on %d did not die", u.port)
	}
}

// uacResult is what a SIPp UAC run logged, one line per successful call.
type uacResult struct {
	port  int // the UAC's local port
	lines []string
	dur   time.Duration
	err   error
	out   string
}

var nodeRe = regexp.MustCompile(`(?:node|phone) (\d+)`)

// perNode counts successful calls by the port of the answering node.
func (r uacResult) perNode() map[int]int {
	m := map[int]int{}
	for _, l := range r.lines {
		if s := nodeRe.FindStringSubmatch(l); s != nil {
			p, _ := strconv.Atoi(s[1])
			m[p]++
		}
	}
	return m
}

// runUAC runs calls sequential SIPp UAC calls of scenario to target and waits for it (at
// most 20 s). The R-URI user is 12345 unless extra has -s.
func runUAC(t *testing.T, target, scenario string, calls int, extra ...string) uacResult {
	t.Helper()
	return runUACFrom(t, 0, target, scenario, calls, extra...)
}

// runUACFrom is runUAC from local port (0: a free one).
func runUACFrom(t *testing.T, port int, target, scenario string, calls int, extra ...string) uacResult {
	t.Helper()
	bin := requireSIPp(t)
	dir := t.TempDir()
	logf := filepath.Join(dir, "log.log")
	if port == 0 {
		var err error
		if port, err = FreePort("127.0.0.1"); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{target, "-sf", testdata(t, scenario), "-i", "127.0.0.1",
		"-p", strconv.Itoa(port), "-m", strconv.Itoa(calls), "-l", "1", "-r", "50",
		"-nostdin", "-timeout", "20s", "-timeout_error",
		"-trace_logs", "-log_file", logf, "-trace_err", "-error_file", filepath.Join(dir, "err.log")}
	if !slices.Contains(extra, "-s") {
		args = append(args, "-s", "12345")
	}
	args = append(args, extra...)
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	start := time.Now()
	out, err := cmd.CombinedOutput()
	r := uacResult{port: port, dur: time.Since(start), err: err}
	if err != nil {
		errs, _ := os.ReadFile(filepath.Join(dir, "err.log"))
		r.out = tail(out, 30) + "\n" + tail(errs, 30)
	}
	b, _ := os.ReadFile(logf)
	for _, l := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(l) != "" {
			r.lines = append(r.lines, l)
		}
	}
	return r
}

// waitFor polls cond every 50 ms until it holds or d passes, and returns the time taken.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}

// nodeFlags is the dispatcher flags of node (host:port) in f, "" if unknown.
func nodeFlags(t *testing.T, f *Front, node string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ds, err := f.Dispatchers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if d.URI == NodeURI(node) {
			return d.Flags
		}
	}
	return ""
}

// isUp: active ("AP"); a node that missed a probe is "TP" (trying, still selected) until
// DS_PROBING_THRESHOLD misses make it "IP" (inactive: isDown).
func isUp(flags string) bool   { return strings.HasPrefix(flags, "A") }
func isDown(flags string) bool { return strings.HasPrefix(flags, "I") }

func (r uacResult) check(t *testing.T, calls int) {
	t.Helper()
	if r.err != nil {
		t.Fatalf("sipp uac: %v\n%s", r.err, r.out)
	}
	if len(r.lines) != calls {
		t.Fatalf("sipp uac logged %d calls, want %d: %q", len(r.lines), calls, r.lines)
	}
}

func fmtCounts(m map[int]int) string {
	var b strings.Builder
	for p, n := range m {
		fmt.Fprintf(&b, " %d:%d", p, n)
	}
	return b.String()
}
