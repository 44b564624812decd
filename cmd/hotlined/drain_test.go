package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hotline12345/hotline/cdr"
	"github.com/hotline12345/hotline/loadtest/phone"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// hotlinedBinary builds the server once per test run.
func hotlinedBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "hotlined-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "hotlined")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = err
			binPath = string(out)
		}
	})
	if buildErr != nil {
		t.Fatalf("build hotlined: %v\n%s", buildErr, binPath)
	}
	return binPath
}

// process is the real hotlined binary started by a test.
type process struct {
	cmd      *exec.Cmd
	sip      string
	http     string
	dataDir  string
	config   string // the config file
	exited   chan struct{}
	exitErr  error
	logLines chan string
}

var startedRe = regexp.MustCompile(`msg="hotline started" sip=(\S+) http=(\S+)`)

// startProcess runs hotlined with config text on free ports and waits until it serves;
// extra flags override the defaults (--sip-listen 127.0.0.1:PORT).
func startProcess(t *testing.T, yaml string, extra ...string) *process {
	t.Helper()
	bin := hotlinedBinary(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "hotline.yaml")
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &process{dataDir: filepath.Join(dir, "data"), config: cfg, exited: make(chan struct{}), logLines: make(chan string, 1024)}
	args := append([]string{"--config", cfg, "--sip-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
		"--data-dir", p.dataDir, "--rtp-ports", "20000-29998"}, extra...)
	p.cmd = exec.Command(bin, args...)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan [2]string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			t.Log("hotlined: " + line)
			if m := startedRe.FindStringSubmatch(line); m != nil {
				ready <- [2]string{m[1], m[2]}
			}
			select {
			case p.logLines <- line:
			default:
			}
		}
		p.exitErr = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
	})
	select {
	case addrs := <-ready:
		p.sip, p.http = addrs[0], addrs[1]
		useAdminToken(t, p.http, p.dataDir)
	case <-p.exited:
		t.Fatalf("hotlined exited before serving: %v", p.exitErr)
	case <-time.After(20 * time.Second):
		t.Fatal("hotlined did not start within 20 s")
	}
	return p
}

func TestSIGTERMDrainsThenHangsUp(t *testing.T) {
	needSIPp(t)
	t.Parallel()
	p := startProcess(t, testConfig(t, "drain_timeout: 60s", "drain_timeout: 3s"))

	// A caller who stays until the server hangs up.
	first := make(chan sippResult, 1)
	go func() { first <- runSIPp(t, p.sip, "uac_wait_bye.xml") }()
	waitLiveCalls(t, p.http, 1)

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, "http://"+p.http+"/healthz", 503)

	// New calls are refused with 503 and Retry-After while the live one goes on.
	if res := runSIPp(t, p.sip, "uac_503.xml"); !res.ok {
		t.Fatalf("new call while draining was not refused with 503 + Retry-After:\n%s", res.output)
	}
	select {
	case res := <-first:
		t.Fatalf("the live call ended before the new call was refused (drain must let it run):\n%s", res.output)
	default:
	}
	// After the drain timeout the live call gets BYE and the process exits cleanly.
	select {
	case res := <-first:
		if !res.ok {
			t.Fatalf("live call was not ended with BYE:\n%s", res.output)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("live call not hung up after the drain timeout")
	}
	select {
	case <-p.exited:
		if p.exitErr != nil {
			t.Fatalf("hotlined exit: %v", p.exitErr)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("hotlined did not exit after draining")
	}

	// Both calls are recorded: the drained one and the refused one.
	store, err := cdr.OpenSQLite(filepath.Join(p.dataDir, "cdr.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	recs, err := store.List(context.Background(), cdr.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 {
		t.Fatalf("want 2 records, have %d: %+v", len(recs), recs)
	}
	drained, refused := recs[0], recs[1]
	if drained.HangupCause != "drain" || drained.HangupSide != "system" || drained.Answer.IsZero() || drained.End.IsZero() {
		t.Fatalf("drained call record %+v: want answered, ended by the system with cause drain", drained)
	}
	if refused.SIPStatus != 503 || refused.Disposition != "failed" {
		t.Fatalf("refused call record %+v: want failed with 503", refused)
	}
}

// waitLiveCalls polls /api/v1/calls until n calls are live.
func waitLiveCalls(t *testing.T, httpAddr string, n int) {
	t.Helper()
	re := regexp.MustCompile(`"sip_call_id"`)
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		body := httpGet(t, "http://"+httpAddr+"/api/v1/calls", 200)
		if len(re.FindAllString(body, -1)) >= n {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%d live calls not seen within 15 s", n)
}

// waitStatus polls url until it answers with status.
func waitStatus(t *testing.T, url string, status int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if res, err := httpClient.Get(url); err == nil {
			res.Body.Close()
			if res.StatusCode == status {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not answer %d within 10 s", url, status)
}

// A second SIGINT does not wait for the drain timeout: live calls are hung up at once.
func TestSecondSIGINTHangsUpAtOnce(t *testing.T) {
	needSIPp(t)
	t.Parallel()
	p := startProcess(t, testConfig(t, "drain_timeout: 60s", "drain_timeout: 10m"))
	first := make(chan sippResult, 1)
	go func() { first <- runSIPp(t, p.sip, "uac_wait_bye.xml") }()
	waitLiveCalls(t, p.http, 1)
	p.cmd.Process.Signal(syscall.SIGINT)
	waitStatus(t, "http://"+p.http+"/healthz", 503)
	p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case res := <-first:
		if !res.ok {
			t.Fatalf("live call was not ended with BYE:\n%s", res.output)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("second SIGINT did not hang up the live call (drain_timeout is 10m)")
	}
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		t.Fatal("hotlined did not exit after the second SIGINT")
	}
	store, err := cdr.OpenSQLite(filepath.Join(p.dataDir, "cdr.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	recs, err := store.List(context.Background(), cdr.Filter{})
	if err != nil || len(recs) != 1 || recs[0].HangupCause != "drain" {
		t.Fatalf("records %+v (%v): want the one call, hung up with cause drain", recs, err)
	}
}

// kill -9 with answered calls up: after a restart every call has its record, closed as
// interrupted (the writer journals a call when it is answered).
func TestKill9LosesNoAnsweredCall(t *testing.T) {
	needSIPp(t)
	t.Parallel()
	yaml := testConfig(t)
	p := startProcess(t, yaml)
	const calls = 3
	done := make(chan sippResult, 1)
	go func() {
		done <- runSIPp(t, p.sip, "uac_wait_bye.xml", "-m", "3", "-l", "3", "-r", "10", "-recv_timeout", "20000")
	}()
	waitLiveCalls(t, p.http, calls)
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.exited

	store := restartAfterKill(t, p)
	var recs []cdr.Record
	var err error
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if recs, err = store.List(context.Background(), cdr.Filter{}); err == nil && len(recs) >= calls {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(recs) != calls {
		t.Fatalf("after kill -9 and restart: %d records, want %d: %+v", len(recs), calls, recs)
	}
	for _, r := range recs {
		// No agent had them: interrupted (not "ended in the IVR").
		if r.Disposition != cdr.DispositionInterrupted || r.HangupCause != cdr.HangupCauseCrash || r.Answer.IsZero() || r.End.Before(r.Answer) {
			t.Fatalf("record %+v: want answered and closed as interrupted", r)
		}
	}
	<-done // SIPp gives up on its own (its calls were cut)
}

// hangUpOnTheDead ends the test phones' calls with a server that was killed: their BYE
// finds nobody, but their RTP stops. Left running, it kept arriving at the dead server's
// ports, where another test's new call could take it for its peer's media.
func hangUpOnTheDead(ctx context.Context, calls ...*phone.Call) {
	hctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	for _, c := range calls {
		c.Hangup(hctx)
	}
}

// restartAfterKill starts hotlined again on the data dir of p, which was
// killed, waits until it serves (the journal is replayed before) and opens
// its record store.
func restartAfterKill(t *testing.T, p *process) *cdr.SQLite {
	t.Helper()
	bin := hotlinedBinary(t)
	cfg := filepath.Join(filepath.Dir(p.dataDir), "hotline.yaml")
	restart := exec.Command(bin, "--config", cfg, "--sip-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
		"--data-dir", p.dataDir, "--rtp-ports", "20000-29998")
	out, _ := restart.StderrPipe()
	if err := restart.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { restart.Process.Kill(); restart.Wait() })
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		t.Log("hotlined (restart): " + sc.Text())
		if startedRe.MatchString(sc.Text()) {
			break
		}
	}
	go func() {
		for sc.Scan() {
		}
	}()
	store, err := cdr.OpenSQLite(filepath.Join(p.dataDir, "cdr.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

// kill -9 while a citizen talks to an agent: after the restart the call is rebuilt with
// its queue, agent and connect time, counted answered, and ended at the last heartbeat
// (after the connect); the agent logged in at the crash gets a LOGOUT (crash).
func TestKill9RebuildsTalkingCall(t *testing.T) {
	t.Parallel()
	p := startProcess(t, testConfig(t))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rung := make(chan *phone.Call, 1)
	ag := newPhone(t, phone.Config{OnInvite: func(c *phone.Call) bool { rung <- c; return true }})
	if err := ag.Register(ctx, p.sip, "1001", "agent1001", 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	post(t, "http://"+p.http+"/api/v1/agents/1001/ready", http.StatusOK)
	citizen, err := newPhone(t, phone.Config{}).Dial(ctx, "sip:12345@"+p.sip, "13900139000")
	if err != nil {
		t.Fatal(err)
	}
	if err := citizen.SendDTMF("1", 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	var agentLeg *phone.Call
	select {
	case agentLeg = <-rung:
		<-agentLeg.Answered()
	case <-time.After(20 * time.Second):
		t.Fatal("agent 1001 not rung")
	}
	// Talking: let a heartbeat (every 5 s) or two pass, then kill -9.
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(httpGet(t, "http://"+p.http+"/api/v1/calls", http.StatusOK), `"talking"`) {
		if time.Now().After(deadline) {
			t.Fatal("the call never reached talking")
		}
		time.Sleep(50 * time.Millisecond)
	}
	talking := time.Now()
	time.Sleep(cdr.DefaultHeartbeat + time.Second)
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.exited
	killed := time.Now()
	hangUpOnTheDead(ctx, citizen, agentLeg)

	store := restartAfterKill(t, p)
	var recs []cdr.Record
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if recs, err = store.List(ctx, cdr.Filter{}); err == nil && len(recs) >= 1 {
			break
		}
	}
	if len(recs) != 1 {
		t.Fatalf("after kill -9 and restart: %d records, want 1: %+v", len(recs), recs)
	}
	r := recs[0]
	if r.Disposition != cdr.DispositionAnswered || r.HangupCause != cdr.HangupCauseCrash || r.Queue != "consult" || r.Agent != "1001" ||
		r.Connect.IsZero() || r.EnqueueTime.IsZero() || r.Visits != "consult/1001" || r.IVRPath != "main>1>consult" {
		t.Fatalf("rebuilt record %+v: want answered in consult by 1001 (visits consult/1001, path main>1>consult)", r)
	}
	// Ended at the last heartbeat: after the connect (a heartbeat passed while they
	// talked), not after the kill.
	if !r.End.After(r.Connect) || r.End.Before(talking) || r.End.After(killed) {
		t.Fatalf("rebuilt record ends %v: connect %v, talking from %v, killed %v", r.End, r.Connect, talking, killed)
	}
	rep, err := cdr.ReportFromStore(ctx, store, cdr.ReportOptions{})
	if err != nil || rep.Total.Offered != 1 || rep.Total.Answered != 1 || rep.Total.IVROnly != 0 {
		t.Fatalf("report after the crash: %v %+v", err, rep.Total)
	}
	var evs []cdr.AgentEvent
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if evs, err = store.ListEvents(ctx, cdr.EventFilter{AgentID: "1001", Events: []string{cdr.EventLogout}}); err == nil && len(evs) > 0 {
			break
		}
	}
	if len(evs) != 1 || evs[0].Data1 != cdr.LogoutReasonCrash || !evs[0].Time.Equal(r.End) {
		t.Fatalf("LOGOUT events of 1001 after the crash: %+v (record ends %v)", evs, r.End)
	}
}

// SIGHUP reloads the configuration without ending the server: a live call goes on under
// the menus it started with and ends normally with the caller's BYE and its record; the
// next call follows the new menus.
func TestSIGHUPReloadsLiveCallContinues(t *testing.T) {
	needSIPp(t)
	t.Parallel()
	p := startProcess(t, testConfig(t))
	done := make(chan sippResult, 1)
	go func() { done <- runSIPp(t, p.sip, "uac_rfc2833.xml") }()
	waitLiveCalls(t, p.http, 1)
	// Key 2 of the main menu now leads to the business queue.
	if err := os.WriteFile(p.config, []byte(testConfig(t, `"2": queue complaint`, `"2": queue business`)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(10 * time.Second)
	for logged := false; !logged; {
		select {
		case line := <-p.logLines:
			logged = strings.Contains(line, `msg="configuration reloaded" applied=[menus]`)
		case <-p.exited:
			t.Fatalf("hotlined exited on SIGHUP: %v", p.exitErr)
		case <-deadline:
			t.Fatal("no log line for SIGHUP within 10 s")
		}
	}
	select {
	case res := <-done:
		if !res.ok {
			t.Fatalf("the live call did not end normally after SIGHUP:\n%s", res.output)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the live call did not end")
	}
	var recs struct{ CDRs []cdr.Record }
	for end := time.Now().Add(10 * time.Second); len(recs.CDRs) == 0 && time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if err := json.Unmarshal([]byte(httpGet(t, "http://"+p.http+"/api/v1/cdrs?format=json", 200)), &recs); err != nil {
			t.Fatal(err)
		}
	}
	if len(recs.CDRs) != 1 || recs.CDRs[0].IVRPath != "main>2>complaint" || recs.CDRs[0].HangupCause != "BYE" ||
		recs.CDRs[0].HangupSide != "caller" || recs.CDRs[0].Answer.IsZero() {
		t.Fatalf("records %+v: want the call, answered, ended by the caller's BYE", recs.CDRs)
	}
	select {
	case <-p.exited:
		t.Fatalf("hotlined exited: %v", p.exitErr)
	default:
	}
	// Still serving: a second call is taken, and follows the new menu.
	if res := runSIPp(t, p.sip, "uac_rfc2833.xml"); !res.ok {
		t.Fatalf("a call after SIGHUP failed:\n%s", res.output)
	}
	for end := time.Now().Add(10 * time.Second); len(recs.CDRs) < 2 && time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if err := json.Unmarshal([]byte(httpGet(t, "http://"+p.http+"/api/v1/cdrs?format=json", 200)), &recs); err != nil {
			t.Fatal(err)
		}
	}
	paths := []string{}
	for _, r := range recs.CDRs {
		paths = append(paths, r.IVRPath)
	}
	if !slices.Contains(paths, "main>2>business") {
		t.Fatalf("paths after the reload %v: want the second call in business", paths)
	}
}
