package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
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
// 1 s, no position announcements, a 2 s ring timeout (consult and complaint, the transfer
// queue); replace are further old, new pairs.
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
		"    name: 投诉举报\n", "    name: 投诉举报\n    wrap_up: 1s\n    ring_timeout: 2s\n",
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
	ID           string    `json:"id"`
	SIPCallID    string    `json:"sip_call_id"`
	Caller       string    `json:"caller"`
	End          time.Time `json:"end"`
	Agent        string    `json:"agent"`
	Disposition  string    `json:"disposition"`
	Satisfaction string    `json:"satisfaction"`
	Transfers    int       `json:"transfers"`
	Visits       string    `json:"visits"`
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

// A short day against the real server: 20 citizens, 5 agents, 2 citizens/s, 1.5 s talks,
// with INFO and RFC 4733 keys, a menu mix, unanswered and declined rings, abandons,
// ratings and blind transfers to complaint. No call fails, every conversation's audio
// crosses both ways (both agents' after a transfer), and the ground truth agrees call by
// call with the server's records: outcome, first agent, transfers, queue visits, rating.
// Seed 290 plans 6 transfers among the 20 citizens and has agents 1001-1004 each decline
// (486) or let ring one of their first three rings.
func TestRunDayAgainstServer(t *testing.T) {
	t.Parallel()
	h := startDayServer(t, "54000-55998")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a bound, not a pace: RunDay stops by itself
	defer cancel()
	var mu sync.Mutex
	var progress []Sample
	rep, truth, err := RunDay(ctx, DayConfig{
		Target: h.SIP, API: "http://" + h.HTTP, Agents: 5,
		Rate: 2, Duration: time.Minute, MaxCalls: 20, MaxDuration: 90 * time.Second,
		Mix: map[string]float64{"1": 0.7, "2": 0.3}, InfoShare: 0.3,
		Talk: 1500 * time.Millisecond, RingDelay: 200 * time.Millisecond, NoAnswerShare: 0.1, BusyShare: 0.15,
		Patience: 20 * time.Second, RateShare: 0.7, HangupByAgentShare: 0.5, TransferShare: 0.3, Seed: 290,
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
	answered, infos, transferred, transferAnswered := 0, 0, 0, 0
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
			first := c.Queue + "/" + c.Agent
			switch {
			case c.Transfers == 0 && c.Visits != first:
				t.Errorf("answered call %+v: want visits %q", c, first)
			case c.Transfers == 1:
				transferred++
				rest, ok := strings.CutPrefix(c.Visits, first+">complaint")
				if !ok || rest != "" && (!strings.HasPrefix(rest, "/") || len(rest) != len("/1001")) {
					t.Errorf("transferred call %+v: want visits %s>complaint[/agent]", c, first)
				}
				if rest != "" {
					transferAnswered++
				}
			case c.Transfers > 1:
				t.Errorf("call %+v: more than one transfer", c)
			}
		case OutcomeAbandoned:
			if c.AbandonAt <= 0 || c.Agent != "" || c.HungUpBy != ByCaller || c.Transfers != 0 || c.Visits != c.Queue {
				t.Errorf("abandoned call %+v", c)
			}
		}
	}
	if infos == 0 || infos == 20 {
		t.Errorf("%d of 20 citizens pressed by INFO: want a mix", infos)
	}
	if transferAnswered == 0 || rep.Transferred != transferred || rep.TransferAnswered != transferAnswered || rep.TransferFailed != 0 {
		t.Errorf("%d transferred calls, %d answered again; the report has %d, %d, %d failed (%v): want some answered again and the same counts",
			transferred, transferAnswered, rep.Transferred, rep.TransferAnswered, rep.TransferFailed, rep.TransferErrors)
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
	transferIDs := map[string]TruthCall{} // by the record's id
	for _, c := range truth.Calls {
		r := recs[c.SIPCallID]
		if r.Disposition != c.Outcome || r.Agent != c.Agent || r.Caller != c.Caller || r.Satisfaction != c.Rating {
			t.Errorf("call %s: server has %s by %q from %s rated %q, truth %s by %q from %s rated %q (%s)",
				c.SIPCallID, r.Disposition, r.Agent, r.Caller, r.Satisfaction, c.Outcome, c.Agent, c.Caller, c.Rating, c.Error)
		}
		if r.Transfers != c.Transfers || r.Visits != c.Visits {
			t.Errorf("call %s: server has %d transfers, visits %q; truth %d, %q (%s)", c.SIPCallID, r.Transfers, r.Visits, c.Transfers, c.Visits, c.Error)
		}
		if c.Transfers > 0 {
			transferIDs[r.ID] = c
		}
	}

	// The comparison hotline-loadtest compare makes: outcomes, agents, transfers, visits,
	// ratings and the report's totals are exact by construction; times depend on the
	// scheduling of two processes, so a busy machine may put one past 50 ms: logged only.
	compareExact(t, truth, h)

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
	// declined with 486 (rejected); each transfer is the first agent's TRANSFER from the
	// citizen's queue to complaint. Events are written behind the calls: poll.
	reasons := map[string]int{}
	var transfers []string
	type event struct {
		CallID string `json:"call_id"`
		Queue  string `json:"queue"`
		Agent  string `json:"agent"`
		Data1  string `json:"data1"`
		Data2  string `json:"data2"`
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var rings, xfers struct{ Events []event }
		dayGetJSON(t, "http://"+h.HTTP+"/api/v1/events?event=RINGNOANSWER&limit=1000", &rings)
		clear(reasons)
		for _, e := range rings.Events {
			reasons[e.Data2]++
		}
		dayGetJSON(t, "http://"+h.HTTP+"/api/v1/events?event=TRANSFER&limit=1000", &xfers)
		transfers = transfers[:0]
		for _, e := range xfers.Events {
			c, ok := transferIDs[e.CallID]
			if !ok || e.Agent != c.Agent || e.Queue != c.Queue || e.Data1 != "complaint" {
				t.Fatalf("TRANSFER event %+v: want one of the truth's transfers (%d)", e, len(transferIDs))
			}
			transfers = append(transfers, e.CallID)
		}
		// Which rings are declined depends on which agent the ACD picks, which depends on
		// timing: the server must log exactly the 486s the agents sent, and some ring of
		// the run must have gone unanswered one way or the other.
		if reasons["rejected"] == rep.AgentsDeclined && reasons["rejected"]+reasons["no-answer"] > 0 && len(transfers) == len(transferIDs) {
			t.Logf("unanswered rings: %d declined (486), %d let ring", reasons["rejected"], reasons["no-answer"])
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("RINGNOANSWER reasons %v, the agents declined %d: want the declines logged as rejected, and some unanswered ring; %d TRANSFER events, want %d", reasons, rep.AgentsDeclined, len(transfers), len(transferIDs))
			break
		}
	}
	for id, st := range agentStates(t, h) {
		if id >= "1001" && id <= "1005" && st != "logged_out" {
			t.Errorf("agent %s is %s after the run, want logged_out", id, st)
		}
	}
}

// Transfers that reach no second agent, against the real server. To a queue none of the
// run's agents serves (business): the citizens wait there and give up after their patience;
// the server keeps the calls answered by the first agent, with the transfer and the visit
// without an agent. To a queue the server does not know: it refuses the REFER (404), the
// conversation goes on, nothing is recorded as transferred, and the run fails on it.
// Seed 112: both citizens would wait 6 s and more for the first agent, under 1 s after the
// transfer.
func TestRunDayTransferAbandonedAndRefused(t *testing.T) {
	t.Parallel()
	h := startDayServer(t, "64000-64998")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a bound: each run stops by itself
	defer cancel()
	base := DayConfig{
		Target: h.SIP, API: "http://" + h.HTTP, Agents: 2, Rate: 5, Duration: time.Minute, MaxCalls: 2, MaxDuration: time.Minute,
		Talk: 1500 * time.Millisecond, RingDelay: 200 * time.Millisecond, Patience: 4 * time.Second, TransferShare: 1, Seed: 112,
	}
	cfg := base
	cfg.TransferQueue = "business"
	rep, truth, err := RunDay(ctx, cfg, nil)
	if err != nil {
		t.Fatalf("RunDay: %v", err)
	}
	if rep.Answered != 2 || rep.Transferred != 2 || rep.TransferAbandoned != 2 || rep.TransferAnswered != 0 || rep.TransferFailed != 0 ||
		rep.AudioPassed != 2 || !rep.Passed() {
		var out bytes.Buffer
		rep.WriteText(&out)
		t.Fatalf("want 2 answered calls transferred and abandoned in business, passed:\n%s", out.String())
	}
	recs := serverRecords(t, h, truth)
	for _, c := range truth.Calls {
		r := recs[c.SIPCallID]
		want := "consult/" + c.Agent + ">business"
		if c.Outcome != OutcomeAnswered || c.Transfers != 1 || c.Visits != want || c.HungUpBy != ByCaller || c.Talk <= 0 || c.Error != "" {
			t.Errorf("truth %+v: want answered, transferred, %s, the citizen hanging up", c, want)
		}
		if r.Disposition != OutcomeAnswered || r.Agent != c.Agent || r.Transfers != 1 || r.Visits != want {
			t.Errorf("record %+v: want answered by %s, transferred, %s", r, c.Agent, want)
		}
	}
	compareExact(t, truth, h)

	cfg = base
	cfg.TransferQueue, cfg.MaxCalls = "nosuch", 1
	rep, truth, err = RunDay(ctx, cfg, nil)
	if err != nil {
		t.Fatalf("RunDay: %v", err)
	}
	const refused = "transfer to nosuch: 404 Not Found"
	if rep.Answered != 1 || rep.Transferred != 0 || rep.TransferFailed != 1 || rep.TransferErrors[refused] != 1 || rep.AudioPassed != 1 || rep.Passed() {
		var out bytes.Buffer
		rep.WriteText(&out)
		t.Fatalf("want the call answered, its REFER refused (404), and the run failed:\n%s", out.String())
	}
	c := truth.Calls[0]
	r := serverRecords(t, h, truth)[c.SIPCallID]
	if c.Outcome != OutcomeAnswered || c.Transfers != 0 || c.Visits != "consult/"+c.Agent || c.HungUpBy != ByCaller || c.Error != refused ||
		r.Transfers != 0 || r.Visits != c.Visits || r.Agent != c.Agent {
		t.Errorf("truth %+v, record %+v: want answered to the end by the first agent, no transfer", c, r)
	}
	compareExact(t, truth, h)
}

// compareExact runs Compare and fails on any mismatch but of times, which a busy machine
// may put past 50 ms: those are logged.
func compareExact(t *testing.T, truth *Truth, h *Hotlined) {
	t.Helper()
	cmp, err := Compare(context.Background(), truth, "http://"+h.HTTP)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	cmp.WriteText(&b)
	for _, m := range cmp.Mismatches {
		if m.Field != FieldWait && m.Field != FieldTalk && m.Field != FieldAbandonAt {
			t.Errorf("compare: %+v\n%s", m, b.String())
		}
	}
	t.Logf("compare: %s", b.String())
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
		{"transfer share above 1", func(c *DayConfig) { c.TransferShare = 1.01 }, ErrConfig},
		{"transfer queue not a name", func(c *DayConfig) { c.TransferQueue = "complaint@evil" }, ErrConfig},
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

// The transfer draws come last and only with a transfer share: a seed's day without
// transfers is the day it was, and with them the first citizen's other draws are unchanged.
func TestSamplePlanTransferDraws(t *testing.T) {
	cfg := DayConfig{Mix: map[string]float64{"1": 0.7, "2": 0.3}, RatingMix: map[string]float64{"1": 0.8, "2": 0.2},
		InfoShare: 0.3, Talk: 10 * time.Second, Patience: 20 * time.Second, RateShare: 0.5, HangupByAgentShare: 0.5}
	draw := func(share float64, n int) []citizenPlan {
		c := cfg
		c.TransferShare = share
		rng := rand.New(rand.NewPCG(7, 0x1234_5678))
		var ps []citizenPlan
		for range n {
			ps = append(ps, samplePlan(&c, rng, "13900000001"))
		}
		return ps
	}
	// Seed 7's first three citizens as the code before transfers drew them.
	want := []struct {
		digit    rune
		talkMS   int64
		patience int64
	}{{'1', 6565, 30369}, {'2', 17709, 29592}, {'2', 4834, 14498}}
	for i, p := range draw(0, 3) {
		if p.transfer || p.patience2 != 0 || p.digit != want[i].digit || p.talk.Milliseconds() != want[i].talkMS || p.patience.Milliseconds() != want[i].patience {
			t.Errorf("citizen %d without transfers: %+v, want digit %c, talk %d ms, patience %d ms", i, p, want[i].digit, want[i].talkMS, want[i].patience)
		}
	}
	without, with := draw(0, 1)[0], draw(0.999, 1)[0]
	with.transfer, with.patience2 = false, 0
	if with != without || !draw(0.999, 1)[0].transfer || draw(0.999, 1)[0].patience2 <= 0 {
		t.Errorf("first citizen with transfers %+v, without %+v: want the same draws before the transfer's", draw(0.999, 1)[0], without)
	}
	transfers := 0
	for _, p := range draw(0.3, 200) {
		if p.transfer {
			transfers++
		}
	}
	if transfers < 40 || transfers > 80 {
		t.Errorf("%d of 200 citizens transferred at share 0.3", transfers)
	}
}

// The states a transferred call goes through, as the agents and the citizen drive them.
func TestDayCallTransferStates(t *testing.T) {
	t0 := time.Now()
	dc := newDayCall(citizenPlan{transfer: true, talk: 3 * time.Second}, false)
	if dc.referring() {
		t.Fatal("referring before any agent answered")
	}
	if !dc.commit() || dc.connect("1001", t0) != 0 || dc.commit() {
		t.Fatal("first agent: want commit, turn 0, and no other agent while they talk")
	}
	// A refused REFER: the conversation goes on, the refusal is in the truth.
	if !dc.referring() {
		t.Fatal("first agent could not start a transfer")
	}
	dc.referred(t0.Add(time.Second), false, "transfer to complaint: 503 Declined")
	if dc.commit() {
		t.Fatal("an agent committed to a call whose transfer was refused")
	}
	select {
	case <-dc.transferred:
		t.Fatal("refused transfer closed transferred")
	default:
	}
	// An accepted one: the next agent may commit, and the citizen stays with them.
	if !dc.referring() {
		t.Fatal("no second try")
	}
	dc.referred(t0.Add(time.Second), true, "")
	<-dc.transferred
	if !dc.referTime().Equal(t0.Add(time.Second)) || !dc.commit() {
		t.Fatal("second agent: want the transfer's time and a commit")
	}
	if ok, busy := dc.abandon(false); ok || !busy {
		t.Fatalf("citizen gave up while the second agent answers: ok %v busy %v", ok, busy)
	}
	if dc.connect("1002", t0.Add(2*time.Second)) != 1 || dc.commit() || dc.referring() {
		t.Fatal("second agent: want turn 1, no third agent, no second transfer")
	}
	<-dc.connected2
	if a, at := dc.connection(); a != "1001" || !at.Equal(t0) {
		t.Errorf("connection %s at %s: want the first agent's", a, at)
	}
	if a, _ := dc.connection2(); a != "1002" {
		t.Errorf("second agent %q", a)
	}
	if dc.audioOf(0) != &dc.audio || dc.audioOf(1) != &dc.audio2 || dc.audioOf(-1) != &dc.audio {
		t.Error("audio pairs of the turns")
	}
	dc.tc.Outcome = OutcomeAnswered
	for _, side := range []int{sideCitizen, sideAgent} {
		dc.audio.report(side, true)
		dc.audio2.report(side, side == sideCitizen) // the second agent did not hear the citizen
	}
	if tc := dc.truth(); tc.AudioOK == nil || *tc.AudioOK || tc.Error != "transfer to complaint: 503 Declined" {
		t.Errorf("truth %+v: want the second conversation's audio failure and the refused REFER", tc)
	}

	// The citizen gives up in the transfer's queue: no agent answers after that.
	dc = newDayCall(citizenPlan{transfer: true}, false)
	dc.commit()
	dc.connect("1001", t0)
	dc.referring()
	dc.referred(t0, true, "")
	if ok, _ := dc.abandon(false); !ok || dc.commit() || dc.connect("1002", t0) != -1 {
		t.Fatal("want the abandon in the second queue, and no agent after it")
	}
}

// The report counts transfers from the truth: answered again, abandoned in the second queue,
// dropped by the server there (failed), and the REFERs the server refused (failed).
func TestDayReportTransfers(t *testing.T) {
	ok := true
	calls := []TruthCall{
		{Outcome: OutcomeAnswered, Agent: "1001", Visits: "consult/1001", AudioOK: &ok, HungUpBy: ByAgent},
		{Outcome: OutcomeAnswered, Agent: "1001", Transfers: 1, Visits: "consult/1001>complaint/1002", AudioOK: &ok, HungUpBy: ByCaller},
		{Outcome: OutcomeAnswered, Agent: "1002", Transfers: 1, Visits: "consult/1002>complaint", AudioOK: &ok, HungUpBy: ByCaller},
		{Outcome: OutcomeAnswered, Agent: "1003", Transfers: 1, Visits: "complaint/1003>complaint", AudioOK: &ok, HungUpBy: ByServer,
			Error: "the server hung up in the queue after the transfer: BYE"},
	}
	cfg := DayConfig{}
	rep := buildDayReport(&cfg, &Truth{Calls: calls}, nil, 0, 0, map[string]int{"transfer to complaint: 404 Not Found": 2})
	if rep.Transferred != 3 || rep.TransferAnswered != 1 || rep.TransferAbandoned != 1 || rep.TransferFailed != 3 ||
		rep.TransferErrors["transfer to complaint: 404 Not Found"] != 2 || rep.Answered != 4 || rep.Passed() {
		t.Fatalf("report %+v: want 3 transferred (1 answered again, 1 abandoned, 1 dropped), 2 refused, not passed", rep)
	}
	var out bytes.Buffer
	rep.WriteText(&out)
	if !strings.Contains(out.String(), "3: 1 answered again, 1 abandoned in the second queue, 3 failed: transfer to complaint: 404 Not Found ×2") {
		t.Errorf("table:\n%s", out.String())
	}
	rep = buildDayReport(&cfg, &Truth{Calls: calls[:2]}, nil, 0, 0, nil)
	if !rep.Passed() || rep.TransferFailed != 0 {
		t.Errorf("report %+v: want passed", rep)
	}
}
