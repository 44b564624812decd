package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hotline12345/hotline/loadtest"
)

// Bad input to `hotline-loadtest day`: each case gets a clear message, a clean stop in
// bounded time, and the partial results (report, truth) kept.

// dayReportJSON is the part of the day command's --json report these tests read.
type dayReportJSON struct {
	Stopped     string         `json:"stopped"`
	Error       string         `json:"error"`
	Calls       int            `json:"calls"`
	Failed      int            `json:"failed"`
	FailReasons map[string]int `json:"fail_reasons"`
}

// badRun runs the command in this process, bounded, and returns how long it took.
func badRun(args ...string) (code int, stdout, stderr string, took time.Duration) {
	start := time.Now()
	code, stdout, stderr = runCmd(args...)
	return code, stdout, stderr, time.Since(start)
}

// badHole returns a loopback UDP address that nobody answers: a socket this test holds
// (so no one else takes the port) and never reads.
func badHole(t *testing.T) string {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.LocalAddr().String()
}

// badFreeUDPPort returns a loopback UDP port that was free a moment ago.
func badFreeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// badReadTruth reads the truth file the run wrote: it must exist and be valid JSON.
func badReadTruth(t *testing.T, path string) *loadtest.Truth {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("truth file not written: %v", err)
	}
	if !json.Valid(b) {
		t.Fatalf("truth file is not valid JSON:\n%s", b)
	}
	tr, err := loadtest.ReadTruth(path)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func badReport(t *testing.T, stdout string) dayReportJSON {
	t.Helper()
	var rep dayReportJSON
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("stdout is not the JSON report: %v\n%s", err, stdout)
	}
	return rep
}

// A target that never answers: with no agents the first INVITE goes unanswered, with
// agents their REGISTER does. The day command has no --setup-timeout flag, so the run
// waits DayConfig's default (loadtest.DefaultSetupTimeout, 10 s) before it gives up.
func TestDayUnreachableTarget(t *testing.T) {
	t.Parallel()
	target := "127.0.0.1:" + strconv.Itoa(badFreeUDPPort(t)) // nobody listens (the ICMP reply never reaches an unconnected socket)
	for _, tc := range []struct {
		name, agents string
		calls        int
		stopped      string
		want         string
	}{
		{"first INVITE", "0", 1, "unreachable", "first INVITE"},
		{"agents' REGISTER", "2", 0, "agents", "REGISTER"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			truthFile := filepath.Join(t.TempDir(), "truth.json")
			// No --quiet: the progress bar a person sees is on.
			code, stdout, stderr, took := badRun("day", "--target", target, "--api", "http://127.0.0.1:1",
				"--agents", tc.agents, "--rate", "5", "--duration", "10s", "--truth", truthFile, "--json")
			t.Logf("exit %d after %s; stderr:\n%s", code, took, stderr)
			if code != 1 || took > 20*time.Second {
				t.Fatalf("exit %d after %s: want 1 within 20 s", code, took)
			}
			if !strings.Contains(stderr, target) || !strings.Contains(stderr, "unreachable") || !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr %q: want the target %s, %q and %q", stderr, target, "unreachable", tc.want)
			}
			if strings.Contains(stderr, "panic") {
				t.Errorf("stderr has a panic:\n%s", stderr)
			}
			rep := badReport(t, stdout)
			if rep.Stopped != tc.stopped || rep.Calls != tc.calls || !strings.Contains(rep.Error, "unreachable") {
				t.Errorf("report stopped %q with %d calls, error %q: want %q, %d calls, unreachable", rep.Stopped, rep.Calls, rep.Error, tc.stopped, tc.calls)
			}
			tr := badReadTruth(t, truthFile)
			if len(tr.Calls) != tc.calls {
				t.Fatalf("truth has %d calls, want %d", len(tr.Calls), tc.calls)
			}
			for _, c := range tr.Calls {
				if c.Outcome != loadtest.OutcomeFailed || c.SIPCallID == "" || !strings.Contains(c.Error, "setup timeout") {
					t.Errorf("truth call %+v: want failed by a setup timeout, with its Call-ID", c)
				}
			}
		})
	}
}

// badNeedSIPp returns sipp's path; without it the test is skipped, except under CI=true.
func badNeedSIPp(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("sipp")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("sipp is required under CI (Debian package sip-tester): %v", err)
		}
		t.Skipf("sipp not installed (Debian package sip-tester): %v", err)
	}
	return path
}

// badStartSIPp runs sipp as a UAS with testdata/scenario on a free loopback port until the
// test ends, and returns its address once it listens.
func badStartSIPp(t *testing.T, scenario string) string {
	t.Helper()
	sipp := badNeedSIPp(t)
	path, err := filepath.Abs(filepath.Join("testdata", scenario))
	if err != nil {
		t.Fatal(err)
	}
	port := badFreeUDPPort(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a bound if cleanup never came
	cmd := exec.CommandContext(ctx, sipp, "-sf", path, "-i", "127.0.0.1", "-p", strconv.Itoa(port),
		"-mp", strconv.Itoa(badFreeUDPPort(t)), "-nostdin", "-trace_err")
	cmd.Dir = t.TempDir()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		cmd.Wait()
	}()
	t.Cleanup(func() {
		cancel()
		<-exited
		if t.Failed() {
			t.Logf("sipp output:\n%s", out.String())
		}
	})
	for deadline := time.Now().Add(10 * time.Second); !badUDPListening(port); time.Sleep(10 * time.Millisecond) {
		select {
		case <-exited:
			t.Fatalf("sipp exited:\n%s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("sipp does not listen on %d", port)
		}
	}
	return "127.0.0.1:" + strconv.Itoa(port)
}

// badUDPListening reports whether a socket is bound to 127.0.0.1:port (from /proc/net/udp:
// probing by binding the port ourselves could take it from SIPp).
func badUDPListening(port int) bool {
	b, err := os.ReadFile("/proc/net/udp")
	if err != nil {
		return true // cannot tell: the INVITE's retransmissions cover SIPp's start
	}
	return bytes.Contains(b, fmt.Appendf(nil, " 0100007F:%04X ", port))
}

// A server answering 503 to every INVITE (SIPp): each call is counted as failed, the run
// goes to its end, the table and the JSON show the 503s, the exit status is 1, and nothing
// of the run is left behind. Not parallel: the goroutine check needs the process to itself.
func TestDay503Failures(t *testing.T) {
	target := badStartSIPp(t, "uas_503.xml")
	for _, asJSON := range []bool{true, false} {
		t.Run(map[bool]string{true: "json", false: "table"}[asJSON], func(t *testing.T) {
			truthFile := filepath.Join(t.TempDir(), "truth.json")
			args := []string{"day", "--target", target, "--agents", "0", "--rate", "10", "--duration", "1s",
				"--quiet", "--truth", truthFile}
			if asJSON {
				args = append(args, "--json")
			}
			before := goleak.IgnoreCurrent()
			code, stdout, stderr, took := badRun(args...)
			t.Logf("exit %d after %s\n%s%s", code, took, stdout, stderr)
			if code != 1 || took > 15*time.Second {
				t.Fatalf("exit %d after %s: want 1 within 15 s", code, took)
			}
			goleak.VerifyNone(t, before) // every phone, call and timer of the run ended
			tr := badReadTruth(t, truthFile)
			if len(tr.Calls) == 0 {
				t.Fatal("no call in the truth")
			}
			for _, c := range tr.Calls {
				if c.Outcome != loadtest.OutcomeFailed || c.HungUpBy != loadtest.ByServer || c.Error != "503 Service Unavailable" || c.SIPCallID == "" {
					t.Errorf("truth call %+v: want failed by the server's 503", c)
				}
			}
			n := len(tr.Calls)
			if asJSON {
				rep := badReport(t, stdout)
				if rep.Calls != n || rep.Failed != n || rep.FailReasons["503 Service Unavailable"] != n || rep.Stopped != "duration" || rep.Error != "" {
					t.Errorf("report %+v: want all %d calls failed by 503, stopped at the duration, no run error", rep, n)
				}
				return
			}
			for _, want := range []string{fmt.Sprintf("%d failed: 503 Service Unavailable ×%d", n, n), "FAIL"} {
				if !strings.Contains(stdout, want) {
					t.Errorf("table lacks %q:\n%s", want, stdout)
				}
			}
		})
	}
}

// Against the real server: agents refused for a wrong password, and a tester that runs
// out of sockets (ulimit -n) while calls are up.
func TestDayBadInputAgainstServer(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	var hotlined, cli string
	var cerr error
	var wg sync.WaitGroup
	wg.Go(func() {
		cli = filepath.Join(dir, "hotline-loadtest")
		if out, err := exec.CommandContext(ctx, "go", "build", "-o", cli, ".").CombinedOutput(); err != nil {
			cerr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	hotlined = hotlinedBinary(t)
	wg.Wait()
	if cerr != nil {
		t.Fatal(cerr)
	}

	// Agent 1002's password on the server is not the agent1002 the tester uses.
	t.Run("wrong agent password", func(t *testing.T) {
		t.Parallel()
		h := badStartServer(t, hotlined, "58000-58998", "password: agent1002", "password: secret1002")
		truthFile := filepath.Join(t.TempDir(), "truth.json")
		code, stdout, stderr, took := badRun("day", "--target", h.SIP, "--api", "http://"+h.HTTP, "--agents", "2",
			"--rate", "5", "--duration", "10s", "--quiet", "--truth", truthFile)
		t.Logf("exit %d after %s\n%s%s", code, took, stdout, stderr)
		if code != 1 || took > 20*time.Second {
			t.Fatalf("exit %d after %s: want 1 within 20 s", code, took)
		}
		if !strings.Contains(stderr, "agent 1002") || !strings.Contains(stderr, "refused") || strings.Contains(stderr, "agent 1001") {
			t.Errorf("stderr %q: want agent 1002 named as refused (and not 1001)", stderr)
		}
		if !strings.Contains(stdout, "agents") || !strings.Contains(stdout, "FAIL") {
			t.Errorf("table %q: want stopped by the agents and FAIL", stdout)
		}
		if tr := badReadTruth(t, truthFile); len(tr.Calls) != 0 {
			t.Errorf("truth has %d calls: want none placed", len(tr.Calls))
		}
		var cdrs struct{ CDRs []json.RawMessage }
		badGetJSON(t, "http://"+h.HTTP+"/api/v1/cdrs?limit=100", &cdrs)
		if len(cdrs.CDRs) != 0 {
			t.Errorf("the server recorded %d calls: want none", len(cdrs.CDRs))
		}
		var agents struct{ Agents []struct{ ID, State string } }
		badGetJSON(t, "http://"+h.HTTP+"/api/v1/agents", &agents)
		for _, a := range agents.Agents {
			if (a.ID == "1001" || a.ID == "1002") && a.State != "logged_out" {
				t.Errorf("agent %s is %s after the refused run: want logged_out", a.ID, a.State)
			}
		}
	})

	// 40 file descriptors: the citizens' RTP sockets run out after some thirty calls.
	t.Run("no free local port", func(t *testing.T) {
		t.Parallel()
		h := badStartServer(t, hotlined, "59000-59998")
		out := t.TempDir()
		truthFile, htmlFile := filepath.Join(out, "truth.json"), filepath.Join(out, "day.html")
		rctx, rcancel := context.WithTimeout(context.Background(), time.Minute)
		defer rcancel()
		cmd := exec.CommandContext(rctx, "sh", "-c", `ulimit -n 40 && exec "$0" "$@"`, cli, "day",
			"--target", h.SIP, "--api", "http://"+h.HTTP, "--token", h.Token, "--agents", "0", "--rate", "20", "--duration", "10s",
			"--quiet", "--json", "--truth", truthFile, "--html", htmlFile)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		start := time.Now()
		err := cmd.Run()
		took := time.Since(start)
		t.Logf("%v after %s; stderr:\n%s", err, took, stderr.String())
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 || took > 30*time.Second {
			t.Fatalf("%v after %s: want exit status 1 within 30 s", err, took)
		}
		if !strings.Contains(stderr.String(), loadtest.ErrNoLocalPort.Error()) {
			t.Errorf("stderr %q: want %q", stderr.String(), loadtest.ErrNoLocalPort.Error())
		}
		if strings.Contains(stderr.String(), "panic") || strings.Contains(stderr.String(), "goroutine ") {
			t.Errorf("stderr has a panic or a stack:\n%s", stderr.String())
		}
		rep := badReport(t, stdout.String())
		if rep.Stopped != "no-local-port" || rep.Calls < 2 || !strings.Contains(rep.Error, "no free local port") {
			t.Errorf("report %+v: want stopped no-local-port after some calls", rep)
		}
		tr := badReadTruth(t, truthFile)
		if len(tr.Calls) != rep.Calls {
			t.Errorf("truth has %d calls, the report %d", len(tr.Calls), rep.Calls)
		}
		for _, c := range tr.Calls {
			if c.Outcome == "" || c.HungUpBy == "" || c.Invite.IsZero() {
				t.Errorf("truth call %+v: want an outcome and who hung up", c)
			}
		}
		if page, err := os.ReadFile(htmlFile); err != nil || !bytes.Contains(page, []byte("<svg")) {
			t.Errorf("HTML report: %v, %d bytes: want the partial run's plots", err, len(page))
		}
		// Every call the run placed was hung up.
		deadline := time.Now().Add(15 * time.Second)
		for {
			var live struct{ Calls []json.RawMessage }
			badGetJSON(t, "http://"+h.HTTP+"/api/v1/calls", &live)
			if len(live.Calls) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d calls still up on the server after the run", len(live.Calls))
			}
			time.Sleep(50 * time.Millisecond) // polling the server to a deadline
		}
	})
}

// badStartServer runs hotlined with configs/hotline.yaml (quick wrap-up and ring timeout,
// no position announcements) and the further old, new replacements.
func badStartServer(t *testing.T, bin, rtpPorts string, replace ...string) *loadtest.Hotlined {
	t.Helper()
	conf, err := os.ReadFile(filepath.Join("..", "..", "configs", "hotline.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(conf)
	replace = append([]string{"    wrap_up: 10s ", "    wrap_up: 1s ", "    ring_timeout: 15s ", "    ring_timeout: 2s ",
		"announce_frequency: 60s", "announce_frequency: 0s"}, replace...)
	for i := 0; i+1 < len(replace); i += 2 {
		if !strings.Contains(s, replace[i]) {
			t.Fatalf("test config: %q not found in configs/hotline.yaml", replace[i])
		}
		s = strings.ReplaceAll(s, replace[i], replace[i+1])
	}
	h, err := loadtest.StartHotlined(bin, s, t.TempDir(), rtpPorts, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Stop)
	return h
}

func badGetJSON(t *testing.T, url string, v any) {
	t.Helper()
	c := http.Client{Timeout: 10 * time.Second, Transport: loadtest.WithToken(nil)}
	res, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", url, res.StatusCode)
	}
	if err := json.NewDecoder(res.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	c.CloseIdleConnections()
}

// Bad flags: exit 2 before any call, with one line on stderr naming the flag.
func TestDayBadFlags(t *testing.T) {
	t.Parallel()
	hole := badHole(t) // where a call would go if a check let one through
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"rate above max-rate", []string{"--rate", "30"}, "--rate 30 is above --max-rate 20"},
		{"rate above a lowered max-rate", []string{"--max-rate", "2", "--rate", "3"}, "--max-rate 2"},
		{"citizens above max-calls", []string{"--rate", "5", "--duration", "10s", "--max-calls", "10"}, "above --max-calls 10"},
		{"max-calls above the tester's limit", []string{"--max-calls", "30000"}, "--max-calls 30000"},
		{"max-calls zero", []string{"--max-calls", "0"}, "--max-calls 0"},
		{"non-numeric agent-start", []string{"--agent-start", "agent7"}, `--agent-start "agent7"`},
		{"non-numeric agents", []string{"--agents", "many"}, `invalid value "many" for flag -agents`},
		{"non-numeric rate", []string{"--rate", "fast"}, `invalid value "fast" for flag -rate`},
		{"target without port", []string{"--target", "127.0.0.1"}, "--target"},
		{"target not an address", []string{"--target", "sip:12345@127.0.0.1"}, "--target"},
		{"target port 0", []string{"--target", "127.0.0.1:0"}, "--target"},
		{"target off loopback", []string{"--target", "192.0.2.1:5060"}, "--target"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"day", "--target", hole, "--agents", "0"}, tc.args...)
			code, stdout, stderr, took := badRun(args...)
			if code != 2 || stdout != "" || took > 5*time.Second {
				t.Fatalf("exit %d after %s, stdout %q, stderr %q: want exit 2 at once, nothing on stdout", code, took, stdout, stderr)
			}
			if line := strings.TrimSuffix(stderr, "\n"); strings.Contains(line, "\n") || !strings.Contains(line, tc.want) {
				t.Fatalf("stderr %q: want one line with %q", stderr, tc.want)
			}
		})
	}
}
