package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// dayServerConfig is the default configuration with quick queues for day runs: wrap-up
// 1 s, no position announcements, a 2 s ring timeout; replace are further old, new pairs.
func dayServerConfig(t *testing.T, replace ...string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "configs", "hotline.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	replace = append([]string{
		"    wrap_up: 10s ", "    wrap_up: 1s ",
		"    ring_timeout: 15s ", "    ring_timeout: 2s ",
		"announce_frequency: 60s", "announce_frequency: 0s",
	}, replace...)
	for i := 0; i+1 < len(replace); i += 2 {
		if !strings.Contains(s, replace[i]) {
			t.Fatalf("test config: %q not found in configs/hotline.yaml", replace[i])
		}
		s = strings.ReplaceAll(s, replace[i], replace[i+1])
	}
	return s
}

func startDayServer(t *testing.T, rtpPorts string) *Hotlined {
	t.Helper()
	h, err := StartHotlined(hotlinedBinary(t), dayServerConfig(t), t.TempDir(), rtpPorts, testLog{t})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Stop)
	return h
}

// getJSON decodes GET url into v.
func dayGetJSON(t *testing.T, url string, v any) {
	t.Helper()
	res, err := scrapeClient.Get(url)
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
}

type serverRecord struct {
	SIPCallID    string    `json:"sip_call_id"`
	Caller       string    `json:"caller"`
	End          time.Time `json:"end"`
	Agent        string    `json:"agent"`
	Disposition  string    `json:"disposition"`
	Satisfaction string    `json:"satisfaction"`
}

// serverRecords polls /api/v1/cdrs until every call of truth has its final record.
func serverRecords(t *testing.T, h *Hotlined, truth *Truth) map[string]serverRecord {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var body struct{ CDRs []serverRecord }
		dayGetJSON(t, "http://"+h.HTTP+"/api/v1/cdrs?limit=10000", &body)
		recs := map[string]serverRecord{}
		for _, r := range body.CDRs {
			if !r.End.IsZero() {
				recs[r.SIPCallID] = r
			}
		}
		missing := 0
		for _, c := range truth.Calls {
			if _, ok := recs[c.SIPCallID]; !ok {
				missing++
			}
		}
		if missing == 0 {
			return recs
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server has no final record of %d of the %d calls", missing, len(truth.Calls))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// agentStates returns the agents' states from /api/v1/agents.
func agentStates(t *testing.T, h *Hotlined) map[string]string {
	t.Helper()
	var body struct{ Agents []struct{ ID, State string } }
	dayGetJSON(t, "http://"+h.HTTP+"/api/v1/agents", &body)
	m := map[string]string{}
	for _, a := range body.Agents {
		m[a.ID] = a.State
	}
	return m
}

// A short day against the real server: 20 citizens, 4 agents, 2 citizens/s, 1.5 s talks,
// with INFO and RFC 4733 keys, a menu mix, unanswered rings, abandons and ratings. No call
// fails, every conversation's audio crosses both ways, and the ground truth agrees call by
// call with the server's records.
func TestRunDayAgainstServer(t *testing.T) {
	t.Parallel()
	h := startDayServer(t, "54000-55998")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a bound, not a pace: RunDay stops by itself
	defer cancel()
	var mu sync.Mutex
	var progress []Sample
	rep, truth, err := RunDay(ctx, DayConfig{
		Target: h.SIP, API: "http://" + h.HTTP, Agents: 4,
		Rate: 2, Duration: time.Minute, MaxCalls: 20, MaxDuration: 90 * time.Second,
		Mix: map[string]float64{"1": 0.7, "2": 0.3}, InfoShare: 0.3,
		Talk: 1500 * time.Millisecond, RingDelay: 200 * time.Millisecond, NoAnswerShare: 0.1, BusyShare: 0.15,
		Patience: 20 * time.Second, RateShare: 0.7, HangupByAgentShare: 0.5, Seed: 7,
	}, func(s Sample) {
		mu.Lock()
		defer mu.Unlock()
		progress = append(progress, s)
	})
	if err != nil {
		t.Fatalf("RunDay: %v", err)
	}
	var out bytes.Buffer
	rep.WriteText(&out)
	t.Logf("report:\n%s", out.String())

	if rep.Calls != 20 || len(truth.Calls) != 20 || rep.Stopped != "max-calls" {
		t.Fatalf("%d calls, %d in the truth, stopped by %q: want 20 and max-calls", rep.Calls, len(truth.Calls), rep.Stopped)
	}
	if rep.Failed != 0 || rep.Other != 0 {
		t.Fatalf("%d failed calls (%v), %d other", rep.Failed, rep.FailReasons, rep.Other)
	}
	if rep.Answered+rep.Abandoned != 20 || rep.Answered == 0 {
		t.Fatalf("answered %d + abandoned %d: want 20 with some answered", rep.Answered, rep.Abandoned)
	}
	if rep.AudioFailed != 0 || rep.AudioPassed != rep.Answered {
		t.Fatalf("audio passed on %d, failed on %d of %d answered calls", rep.AudioPassed, rep.AudioFailed, rep.Answered)
	}
	seen := map[string]bool{}
	answered, infos := 0, 0
	for _, c := range truth.Calls {
		if c.SIPCallID == "" || seen[c.SIPCallID] || seen[c.Caller] || !strings.HasPrefix(c.Caller, "139") || len(c.Caller) != 11 {
			t.Fatalf("call %+v: want a distinct Call-ID and caller 139xxxxxxxx", c)
		}
		seen[c.SIPCallID], seen[c.Caller] = true, true
		if c.DTMF == "info" {
			infos++
		}
		switch c.Outcome {
		case OutcomeAnswered:
			answered++
			if c.AudioOK == nil || !*c.AudioOK || c.Agent == "" || c.Connected.Before(c.Answered) || c.Wait <= 0 || c.Talk <= 0 {
				t.Errorf("answered call %+v: want audio both ways, an agent, a wait and a talk time", c)
			}
		case OutcomeAbandoned:
			if c.AbandonAt <= 0 || c.Agent != "" || c.HungUpBy != ByCaller {
				t.Errorf("abandoned call %+v", c)
			}
		}
	}
	if infos == 0 || infos == 20 {
		t.Errorf("%d of 20 citizens pressed by INFO: want a mix", infos)
	}

	// The server's records agree call by call: outcome, agent, rating.
	recs := serverRecords(t, h, truth)
	serverAnswered := 0
	for _, r := range recs {
		if r.Disposition == OutcomeAnswered {
			serverAnswered++
		}
	}
	if serverAnswered != answered {
		t.Errorf("the server has %d answered records, the truth %d", serverAnswered, answered)
	}
	for _, c := range truth.Calls {
		r := recs[c.SIPCallID]
		if r.Disposition != c.Outcome || r.Agent != c.Agent || r.Caller != c.Caller || r.Satisfaction != c.Rating {
			t.Errorf("call %s: server has %s by %q from %s rated %q, truth %s by %q from %s rated %q (%s)",
				c.SIPCallID, r.Disposition, r.Agent, r.Caller, r.Satisfaction, c.Outcome, c.Agent, c.Caller, c.Rating, c.Error)
		}
	}

	// The comparison hotline-loadtest compare makes: times within 50 ms, the report's totals.
	cmp, err := Compare(context.Background(), truth, "http://"+h.HTTP)
	if err != nil {
		t.Fatal(err)
	}
	// Outcomes, agents, ratings and totals are exact by construction; times depend on the
	// scheduling of two processes, so a busy machine may put one past 50 ms: logged only.
	var b bytes.Buffer
	cmp.WriteText(&b)
	for _, m := range cmp.Mismatches {
		if m.Field != FieldWait && m.Field != FieldTalk && m.Field != FieldAbandonAt {
			t.Errorf("compare: %+v\n%s", m, b.String())
		}
	}
	t.Logf("compare: %s", b.String())

	mu.Lock()
	samples := progress
	mu.Unlock()
	active, setups := 0, 0
	for _, s := range samples {
		active = max(active, s.Active)
		setups += s.Setups
	}
	if len(samples) < 10 || len(samples) != len(rep.Samples) || active == 0 || setups != 20 {
		t.Errorf("%d progress samples (%d in the report), peak active %d, %d setups: want one a second, all 20 setups", len(samples), len(rep.Samples), active, setups)
	}
	// The agents' unanswered rings reached the ACD as such: let ring (no-answer) and
	// declined with 486 (rejected). Events are written behind the calls: poll.
	reasons := map[string]int{}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var evs struct{ Events []struct{ Data2 string } }
		dayGetJSON(t, "http://"+h.HTTP+"/api/v1/events?event=RINGNOANSWER&limit=1000", &evs)
		clear(reasons)
		for _, e := range evs.Events {
			reasons[e.Data2]++
		}
		if reasons["rejected"] > 0 && reasons["no-answer"] > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("RINGNOANSWER reasons %v: want rejections (busy share) and no-answers", reasons)
			break
		}
	}
	for id, st := range agentStates(t, h) {
		if id >= "1001" && id <= "1004" && st != "logged_out" {
			t.Errorf("agent %s is %s after the run, want logged_out", id, st)
		}
	}
}

// A server that answers every INVITE 503: each call is a failure and the run goes on.
func TestRunDayCounts503(t *testing.T) {
	t.Parallel()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("busy"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	srv.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
		tx.Respond(sip.NewResponseFromRequest(req, 503, "Service Unavailable", nil))
	})
	srv.OnAck(func(*sip.Request, sip.ServerTransaction) {})
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		srv.ServeUDP(conn)
	}()
	defer func() {
		conn.Close()
		<-served
		ua.Close()
	}()
	rep, truth, err := RunDay(context.Background(), DayConfig{
		Target: conn.LocalAddr().String(), Rate: 20, Duration: 10 * time.Second, MaxCalls: 3, SetupTimeout: 5 * time.Second,
	}, nil)
	if err != nil {
		t.Fatalf("RunDay: %v", err)
	}
	if rep.Failed != 3 || rep.FailReasons["503 Service Unavailable"] != 3 || len(truth.Calls) != 3 {
		t.Fatalf("failed %d (%v), %d in the truth: want 3 failed by 503", rep.Failed, rep.FailReasons, len(truth.Calls))
	}
	for _, c := range truth.Calls {
		if c.Outcome != OutcomeFailed || c.SIPCallID == "" || c.HungUpBy != ByServer {
			t.Fatalf("call %+v: want failed by the server, with its Call-ID", c)
		}
	}
	if rep.Passed() {
		t.Fatal("a run of failed calls passed")
	}
}

// A target that never answers: the first INVITE (or an agent's REGISTER) times out and the
// run stops with ErrUnreachable, keeping what it has.
func TestRunDayUnreachable(t *testing.T) {
	t.Parallel()
	hole, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer hole.Close()
	cfg := DayConfig{Target: hole.LocalAddr().String(), Rate: 50, Duration: 10 * time.Second, MaxCalls: 10, SetupTimeout: time.Second}
	rep, truth, err := RunDay(context.Background(), cfg, nil)
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "first INVITE") {
		t.Fatalf("RunDay: %v, want ErrUnreachable for the first INVITE", err)
	}
	if rep == nil || truth == nil || len(truth.Calls) != 1 || truth.Calls[0].Outcome != OutcomeFailed || rep.Stopped != "unreachable" {
		t.Fatalf("report %+v, truth %+v: want the one failed call and stopped unreachable", rep, truth)
	}

	cfg.Agents, cfg.API = 2, "http://127.0.0.1:1"
	rep, truth, err = RunDay(context.Background(), cfg, nil)
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "REGISTER") {
		t.Fatalf("RunDay with agents: %v, want ErrUnreachable for the REGISTER", err)
	}
	if rep == nil || truth == nil || len(truth.Calls) != 0 {
		t.Fatalf("report %+v, truth %+v: want no calls", rep, truth)
	}
}

// A wrong agent password stops the run before any call, naming the agent; the agents that
// did get ready are logged out. Then a run cancelled while calls are up hangs them all up,
// logs the agent out and returns what happened with ctx's error.
func TestRunDayWrongPasswordAndCancel(t *testing.T) {
	t.Parallel()
	h := startDayServer(t, "56000-57998")
	cfg := DayConfig{
		Target: h.SIP, API: "http://" + h.HTTP, Agents: 2, Passwords: map[string]string{"1002": "not-agent1002"},
		Rate: 5, Duration: 30 * time.Second, MaxCalls: 60, Talk: 20 * time.Second, RingDelay: 100 * time.Millisecond,
	}
	_, truth, err := RunDay(context.Background(), cfg, nil)
	if !errors.Is(err, ErrAgentRefused) || !strings.Contains(err.Error(), "agent 1002") {
		t.Fatalf("RunDay: %v, want ErrAgentRefused naming agent 1002", err)
	}
	if truth == nil || len(truth.Calls) != 0 {
		t.Fatalf("truth %+v: want no calls", truth)
	}
	if st := agentStates(t, h)["1001"]; st != "logged_out" {
		t.Fatalf("agent 1001 is %s after the refused run, want logged_out", st)
	}

	cfg.Agents, cfg.Passwords = 1, nil
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rep, truth, err := RunDay(ctx, cfg, func(s Sample) {
		if s.Active >= 3 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("RunDay: %v, want context.Canceled", err)
	}
	if rep.Stopped != "cancelled" || len(truth.Calls) < 3 || rep.Calls != len(truth.Calls) {
		t.Fatalf("stopped %q with %d calls (report %d): want cancelled after ≥ 3", rep.Stopped, len(truth.Calls), rep.Calls)
	}
	for _, c := range truth.Calls {
		if c.Outcome == "" || c.Ended.IsZero() || c.HungUpBy == "" {
			t.Fatalf("call %+v: want an outcome, an end and who hung up", c)
		}
	}
	if st := agentStates(t, h)["1001"]; st != "logged_out" {
		t.Fatalf("agent 1001 is %s after the cancelled run, want logged_out", st)
	}
	waitNoCalls(t, h)

	// A run still busy at its maximum duration is cut short the same way.
	cfg.MaxDuration = 3 * time.Second
	rep, truth, err = RunDay(context.Background(), cfg, nil)
	if !errors.Is(err, ErrCutShort) || rep.Stopped != "max-duration" || len(truth.Calls) == 0 || rep.Elapsed.D() > 15*time.Second {
		t.Fatalf("RunDay: %v, stopped %q after %s with %d calls: want ErrCutShort at 3 s", err, rep.Stopped, rep.Elapsed, len(truth.Calls))
	}
	for _, c := range truth.Calls {
		if c.Outcome == "" || c.Ended.IsZero() {
			t.Fatalf("call %+v: want an outcome and an end", c)
		}
	}
	waitNoCalls(t, h)
}

// waitNoCalls polls until the server has no call up.
func waitNoCalls(t *testing.T, h *Hotlined) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var live struct{ Calls []json.RawMessage }
		dayGetJSON(t, "http://"+h.HTTP+"/api/v1/calls", &live)
		if len(live.Calls) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d calls still up on the server after the cancelled run", len(live.Calls))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestDayConfigErrors(t *testing.T) {
	ok := DayConfig{Target: "127.0.0.1:5060", API: "http://127.0.0.1:8080", Agents: 2, Rate: 1, Duration: time.Second}
	for _, tc := range []struct {
		name string
		edit func(*DayConfig)
		want error
	}{
		{"no target", func(c *DayConfig) { c.Target = "" }, ErrConfig},
		{"remote target", func(c *DayConfig) { c.Target = "192.0.2.1:5060" }, ErrNotLoopback},
		{"remote API", func(c *DayConfig) { c.API = "http://192.0.2.1:8080" }, ErrNotLoopback},
		{"no API with agents", func(c *DayConfig) { c.API = "" }, ErrConfig},
		{"no rate", func(c *DayConfig) { c.Rate = 0 }, ErrConfig},
		{"no duration", func(c *DayConfig) { c.Duration = 0 }, ErrConfig},
		{"too many calls", func(c *DayConfig) { c.MaxCalls = MaxCalls + 1 }, ErrConfig},
		{"too many agents", func(c *DayConfig) { c.Agents = MaxDayAgents + 1 }, ErrConfig},
		{"share above 1", func(c *DayConfig) { c.InfoShare = 1.5 }, ErrConfig},
		{"bad mix key", func(c *DayConfig) { c.Mix = map[string]float64{"12": 1} }, ErrConfig},
		{"zero mix", func(c *DayConfig) { c.Mix = map[string]float64{"1": 0} }, ErrConfig},
		{"bad rating key", func(c *DayConfig) { c.RatingMix = map[string]float64{"4": 1} }, ErrConfig},
		{"bad agent start", func(c *DayConfig) { c.AgentStart = "agent" }, ErrConfig},
		{"nobody answers", func(c *DayConfig) { c.NoAnswerShare = 1 }, ErrConfig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ok
			tc.edit(&cfg)
			rep, truth, err := RunDay(context.Background(), cfg, nil)
			if !errors.Is(err, tc.want) || rep != nil || truth != nil {
				t.Fatalf("RunDay: %v, want %v and no run", err, tc.want)
			}
		})
	}
}

func TestPortErrors(t *testing.T) {
	for _, e := range []error{syscall.EADDRINUSE, syscall.EMFILE} {
		err := &net.OpError{Op: "listen", Net: "udp", Err: os.NewSyscallError("bind", e)}
		if got := portError("citizen phone", err); !errors.Is(got, ErrNoLocalPort) || !strings.Contains(got.Error(), "citizen phone") {
			t.Errorf("portError(%v) = %v, want ErrNoLocalPort naming the phone", err, got)
		}
	}
	if got := portError("agent 1001 phone", errors.New("other")); errors.Is(got, ErrNoLocalPort) {
		t.Errorf("portError(other) = %v, want no ErrNoLocalPort", got)
	}
}
