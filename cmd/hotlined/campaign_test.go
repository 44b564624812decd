package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hotline12345/hotline/cdr"
)

// End-to-end tests of outbound campaigns (云回访): a real server, a real SIPp as the citizen
// at the far end of the outbound trunk (on a free port, put into the trunk's gateway), the
// campaign driven through /api/v1/campaigns. SIPp runs in the background as a UAS; the
// helpers below start it, wait until it listens, and read its message trace.

// trunkTestConfig is the default config with the outbound trunk's gateway on gwPort, then
// each further old→new replacement.
func trunkTestConfig(t *testing.T, gwPort int, replace ...string) string {
	t.Helper()
	return testConfig(t, append([]string{"gateway: sip:127.0.0.1:5090", fmt.Sprintf("gateway: sip:127.0.0.1:%d", gwPort)}, replace...)...)
}

// uasMediaPort returns an even loopback UDP port p with p and p+2 free (SIPp binds both
// for its media; its default, 6000, would collide between parallel tests).
func uasMediaPort(t *testing.T) int {
	t.Helper()
	for range 100 {
		a, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := a.LocalAddr().(*net.UDPAddr).Port
		if p%2 != 0 || p+2 > 65535 {
			a.Close()
			continue
		}
		b, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p+2))
		a.Close()
		if err != nil {
			continue
		}
		b.Close()
		return p
	}
	t.Fatal("no free even UDP port pair")
	return 0
}

// sippUAS is a SIPp process playing the citizen (or the carrier gateway) at the far end of
// the outbound trunk.
type sippUAS struct {
	cmd  *exec.Cmd
	dir  string
	port int
	out  bytes.Buffer // written by exec until done
	done chan struct{}
	err  error // Wait's result, once done
}

// startSIPpUAS runs SIPp scenario (testdata/sipp) as a UAS on 127.0.0.1:port for calls calls,
// with extra arguments; it returns once SIPp listens. The process is killed at cleanup if
// still running.
func startSIPpUAS(t *testing.T, port int, scenario string, calls int, extra ...string) *sippUAS {
	t.Helper()
	needSIPp(t)
	abs, err := filepath.Abs(filepath.Join("..", "..", "testdata", "sipp", scenario))
	if err != nil {
		t.Fatal(err)
	}
	u := &sippUAS{dir: t.TempDir(), port: port, done: make(chan struct{})}
	args := []string{
		"-sf", abs, "-i", "127.0.0.1", "-p", fmt.Sprint(port), "-m", fmt.Sprint(calls),
		"-nostdin", "-timeout", "40s", "-timeout_error", "-trace_msg", "-trace_err",
	}
	hasMP := false
	for _, a := range extra {
		hasMP = hasMP || a == "-mp"
	}
	if !hasMP {
		args = append(args, "-mp", fmt.Sprint(uasMediaPort(t)))
	}
	args = append(args, extra...)
	u.cmd = exec.Command("sipp", args...)
	u.cmd.Dir = u.dir
	u.cmd.Stdout, u.cmd.Stderr = &u.out, &u.out
	if err := u.cmd.Start(); err != nil {
		t.Fatalf("start sipp: %v", err)
	}
	go func() { u.err = u.cmd.Wait(); close(u.done) }()
	t.Cleanup(func() {
		select {
		case <-u.done:
		default:
			u.cmd.Process.Kill() // only this SIPp, by its own process
			<-u.done
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for !udpBound(port) {
		select {
		case <-u.done:
			t.Fatalf("sipp %s exited before listening: %v\n%s", scenario, u.err, u.output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("sipp %s does not listen on %d", scenario, port)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return u
}

// udpBound reports whether a socket is bound to 127.0.0.1:port (read from
// /proc/net/udp, so that probing cannot steal the port from SIPp).
func udpBound(port int) bool {
	b, err := os.ReadFile("/proc/net/udp")
	if err != nil {
		return false
	}
	want := fmt.Sprintf("0100007F:%04X ", port)
	wild := fmt.Sprintf("00000000:%04X ", port)
	return bytes.Contains(b, []byte(want)) || bytes.Contains(b, []byte(wild))
}

// wait waits for SIPp to exit and reports whether it succeeded (exit 0: every call of
// the scenario went as scripted), with its output and traces.
func (u *sippUAS) wait(t *testing.T, timeout time.Duration) (bool, string) {
	t.Helper()
	select {
	case <-u.done:
	case <-time.After(timeout):
		u.cmd.Process.Kill()
		<-u.done
		return false, fmt.Sprintf("sipp still running after %v (killed)\n%s", timeout, u.output())
	}
	return u.err == nil, u.output()
}

// output is SIPp's output and its trace files; call it once SIPp has exited.
func (u *sippUAS) output() string {
	s := u.out.String()
	files, _ := filepath.Glob(filepath.Join(u.dir, "*"))
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil && len(b) < 64<<10 {
			s += "\n--- " + filepath.Base(f) + " ---\n" + string(b)
		}
	}
	return s
}

// receivedInvites counts the INVITEs (retransmissions included) in SIPp's message trace.
func (u *sippUAS) receivedInvites(t *testing.T) int {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(u.dir, "*_messages.log"))
	if len(files) != 1 {
		t.Fatalf("sipp message traces: %v", files)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	return len(sippInviteRE.FindAll(b, -1))
}

var sippInviteRE = regexp.MustCompile(`message received \[\d+\] bytes :\s*\n\s*INVITE `)

// targetView is a target as GET /api/v1/campaigns/{id} lists it.
type targetView struct {
	CaseID       string    `json:"case_id"`
	State        string    `json:"state"`
	Outcome      string    `json:"outcome"`
	Attempts     int       `json:"attempts"`
	Satisfaction string    `json:"satisfaction"`
	Phone        string    `json:"phone"`
	LastCall     string    `json:"last_call"`
	Answers      string    `json:"answers"`
	ReachedBy    string    `json:"reached_by"`
	Human        string    `json:"human"`
	HumanAgent   string    `json:"human_agent"`
	HumanTries   int       `json:"human_tries"`
	NextAt       time.Time `json:"next_at"`
}

type campaignStatusView struct {
	ID      string       `json:"id"`
	State   string       `json:"state"`
	Targets []targetView `json:"targets"`
	Counts  struct {
		Pending    int            `json:"pending"`
		InProgress int            `json:"in_progress"`
		Done       int            `json:"done"`
		Failed     int            `json:"failed"`
		Outcomes   map[string]int `json:"outcomes"`
		Satisfied  map[string]int `json:"satisfaction"`
	} `json:"counts"`
}

type refusedView struct {
	Index  int    `json:"index"`
	CaseID string `json:"case_id"`
	Err    string `json:"error"`
}

// createdView is POST /api/v1/campaigns's answer.
type createdView struct {
	ID      string        `json:"id"`
	Added   int           `json:"added"`
	Refused []refusedView `json:"refused"`
}

// postBody sends body as JSON and checks the status; it returns the answer.
func postBody(t *testing.T, url string, body any, want int) []byte {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	res, err := httpClient.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		t.Fatalf("POST %s %s: status %d, want %d: %s", url, b, res.StatusCode, want, out)
	}
	return out
}

// survey is a campaign body of the satisfaction script on loopback-out, dialling at once,
// with settings (max_attempts, retry, ring_timeout...) merged in.
func surveyBody(name string, targets []map[string]string, settings map[string]any) map[string]any {
	body := map[string]any{
		"name": name, "script": "satisfaction", "trunk": "loopback-out",
		"window":  map[string]string{"from": "00:00", "to": "24:00"},
		"targets": targets,
	}
	for k, v := range settings {
		body[k] = v
	}
	return body
}

// postCampaign POSTs body and returns the answer (201 expected).
func postCampaign(t *testing.T, s *testServer, body map[string]any) createdView {
	t.Helper()
	var r createdView
	if err := json.Unmarshal(postBody(t, "http://"+s.httpAddr()+"/api/v1/campaigns", body, http.StatusCreated), &r); err != nil {
		t.Fatal(err)
	}
	if r.ID == "" {
		t.Fatalf("campaign created without an id: %+v", r)
	}
	return r
}

// getCampaign is GET /api/v1/campaigns/{id}.
func getCampaign(t *testing.T, s *testServer, id string) campaignStatusView {
	t.Helper()
	var v campaignStatusView
	if err := json.Unmarshal([]byte(httpGet(t, "http://"+s.httpAddr()+"/api/v1/campaigns/"+id, http.StatusOK)), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// waitTargetState polls the campaign until its target caseID satisfies ok.
func waitTargetState(t *testing.T, s *testServer, id, caseID string, timeout time.Duration, ok func(targetView) bool) targetView {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		v := getCampaign(t, s, id)
		for _, tg := range v.Targets {
			if tg.CaseID == caseID && ok(tg) {
				return tg
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("campaign %s: target %s never became as wanted: %+v", id, caseID, v.Targets)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitDirectionRecords waits until n records of direction dir exist and returns them, oldest first.
func waitDirectionRecords(t *testing.T, s *testServer, dir string, n int) []cdr.Record {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		recs, err := s.store.List(context.Background(), cdr.Filter{Direction: dir})
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) >= n {
			slices.SortFunc(recs, func(a, b cdr.Record) int { return a.Start.Compare(b.Start) })
			return recs
		}
		if time.Now().After(deadline) {
			t.Fatalf("want %d %s records, have %d: %+v", n, dir, len(recs), recs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// 1. The citizen answers the survey call and presses 1 (RFC 2833) during the greeting:
// the target is done, answered, satisfied after one attempt; the server thanks and hangs
// up (SIPp's scenario succeeds only after our BYE); the call's record is a survey record
// of the campaign and target, attempt 1, satisfied, answers "1".
func TestCampaignSurveyAnsweredSatisfied(t *testing.T) {
	t.Parallel()
	gw := freeUDPPort(t)
	s := startServer(t, trunkTestConfig(t, gw))
	far := startSIPpUAS(t, gw, "uas_survey_rate1.xml", 1, "-d", "1500")
	begin := time.Now()
	c := postCampaign(t, s, surveyBody("e2e-satisfied", []map[string]string{{"case_id": "C1", "phone": "13900000001"}}, nil))
	if c.Added != 1 || len(c.Refused) != 0 {
		t.Fatalf("create: %+v, want 1 added", c)
	}
	tg := waitTargetState(t, s, c.ID, "C1", 25*time.Second, func(tg targetView) bool { return tg.State == "done" })
	if tg.Outcome != "answered" || tg.Satisfaction != cdr.SatisfactionSatisfied || tg.Attempts != 1 || tg.ReachedBy != "machine" || tg.Answers != "service=1" {
		t.Fatalf("target %+v: want done, answered, satisfied, 1 attempt, reached by machine, answers service=1", tg)
	}
	if ok, out := far.wait(t, 10*time.Second); !ok {
		t.Fatalf("SIPp (the citizen) did not end with our BYE:\n%s", out)
	}
	if n := far.receivedInvites(t); n != 1 {
		t.Fatalf("SIPp received %d INVITEs, want 1", n)
	}
	t.Logf("survey done %v after the campaign was created", time.Since(begin).Round(time.Millisecond))

	var list struct{ CDRs []cdr.Record }
	deadline := time.Now().Add(10 * time.Second)
	for len(list.CDRs) == 0 {
		if err := json.Unmarshal([]byte(httpGet(t, "http://"+s.httpAddr()+"/api/v1/cdrs?direction=survey", http.StatusOK)), &list); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("no survey record in /api/v1/cdrs?direction=survey")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(list.CDRs) != 1 {
		t.Fatalf("%d survey records, want 1: %+v", len(list.CDRs), list.CDRs)
	}
	r := list.CDRs[0]
	if r.Direction != cdr.DirectionSurvey || r.Campaign != c.ID || r.Target != "C1" || r.Attempt != 1 ||
		r.Satisfaction != cdr.SatisfactionSatisfied || r.SurveyAnswers != "1" || r.Disposition != cdr.DispositionAnswered ||
		r.Called != "13900000001" || r.Trunk != "loopback-out" || r.SIPStatus != 200 || r.Answer.IsZero() || r.ID != tg.LastCall {
		t.Fatalf("record %+v: want an answered survey record of campaign %s, target C1, attempt 1, satisfied, answers 1 (the target's last call %s)", r, c.ID, tg.LastCall)
	}
	if r.HangupSide != cdr.HangupSideSystem {
		t.Errorf("record hangup side %q, want system (the server hung up after the thanks)", r.HangupSide)
	}
	if inbound := httpGet(t, "http://"+s.httpAddr()+"/api/v1/cdrs?direction=inbound", http.StatusOK); strings.Contains(inbound, r.ID) {
		t.Error("the survey call is listed as inbound")
	}
}

// 2. The first attempt gets 486 Busy; after the campaign's (shortened) busy retry delay
// the second attempt is answered: the target ends answered after 2 attempts, with two
// survey records (busy, then answered), the second dialled no earlier than the delay.
func TestCampaignBusyThenAnsweredAfterRetryDelay(t *testing.T) {
	t.Parallel()
	const retry = 3 * time.Second
	gw := freeUDPPort(t)
	s := startServer(t, trunkTestConfig(t, gw))
	busy := startSIPpUAS(t, gw, "uas_trunk_busy.xml", 1)
	c := postCampaign(t, s, surveyBody("e2e-busy", []map[string]string{{"case_id": "C2", "phone": "13900000002"}},
		map[string]any{"max_attempts": 3, "retry": map[string]string{"busy": retry.String(), "no_answer": "1m", "failed": "1m"}}))
	if ok, out := busy.wait(t, 15*time.Second); !ok {
		t.Fatalf("SIPp (busy) failed:\n%s", out)
	}
	tg := waitTargetState(t, s, c.ID, "C2", 5*time.Second, func(tg targetView) bool { return tg.Attempts == 1 && tg.State == "pending" })
	if tg.Outcome != "busy" || tg.NextAt.IsZero() {
		t.Fatalf("target after the 486: %+v, want pending, busy, a retry time", tg)
	}
	answer := startSIPpUAS(t, gw, "uas_survey_rate1.xml", 1, "-d", "1500")
	tg = waitTargetState(t, s, c.ID, "C2", 25*time.Second, func(tg targetView) bool { return tg.State == "done" })
	if tg.Outcome != "answered" || tg.Attempts != 2 || tg.Satisfaction != cdr.SatisfactionSatisfied {
		t.Fatalf("target %+v: want done, answered, 2 attempts, satisfied", tg)
	}
	if ok, out := answer.wait(t, 10*time.Second); !ok {
		t.Fatalf("SIPp (answering) failed:\n%s", out)
	}
	recs := waitDirectionRecords(t, s, cdr.DirectionSurvey, 2)
	if len(recs) != 2 {
		t.Fatalf("%d survey records, want 2: %+v", len(recs), recs)
	}
	first, second := recs[0], recs[1]
	if first.Disposition != cdr.DispositionBusy || first.SIPStatus != 486 || first.Attempt != 1 || first.Target != "C2" || !first.Answer.IsZero() {
		t.Fatalf("first record %+v: want busy, 486, attempt 1, never answered", first)
	}
	if second.Disposition != cdr.DispositionAnswered || second.Attempt != 2 || second.Target != "C2" || second.Satisfaction != cdr.SatisfactionSatisfied {
		t.Fatalf("second record %+v: want answered, attempt 2, satisfied", second)
	}
	if gap := second.Start.Sub(first.End); gap < retry {
		t.Fatalf("second attempt dialled %v after the first ended, before the %v busy retry delay", gap, retry)
	} else {
		t.Logf("second attempt dialled %v after the first ended (retry delay %v)", gap.Round(time.Millisecond), retry)
	}
}

// 5. Numbers outside the trunk's dial plan are refused at POST (by index, the error
// naming the dial plan) and never dialled: only the valid target reaches SIPp, and no
// record or target exists for the refused ones.
func TestCampaignRefusesNumbersOutsideDialPlan(t *testing.T) {
	t.Parallel()
	gw := freeUDPPort(t)
	s := startServer(t, trunkTestConfig(t, gw))
	far := startSIPpUAS(t, gw, "uas_survey_rate1.xml", 1, "-d", "1500")
	bad := []string{"110", "12345678901", "+8613900000005", "1390000000", "139000000055", "1390000000a", "0086139000000"}
	targets := []map[string]string{}
	for i, p := range bad[:3] {
		targets = append(targets, map[string]string{"case_id": fmt.Sprintf("BAD%d", i), "phone": p})
	}
	targets = append(targets, map[string]string{"case_id": "GOOD", "phone": "13900000005"})
	for i, p := range bad[3:] {
		targets = append(targets, map[string]string{"case_id": fmt.Sprintf("BAD%d", i+3), "phone": p})
	}
	c := postCampaign(t, s, surveyBody("e2e-dialplan", targets, nil))
	if c.Added != 1 || len(c.Refused) != len(bad) {
		t.Fatalf("create: %+v, want 1 added and %d refused", c, len(bad))
	}
	for _, r := range c.Refused {
		if r.Index == 3 || r.Index < 0 || r.Index >= len(targets) || targets[r.Index]["case_id"] != r.CaseID ||
			!strings.Contains(r.Err, "dial plan") || !strings.Contains(r.Err, targets[r.Index]["phone"]) {
			t.Errorf("refused %+v: want the index and case of a bad number, an error naming the dial plan and the number", r)
		}
	}
	// Adding more later is refused the same way.
	var add struct {
		Added   int           `json:"added"`
		Refused []refusedView `json:"refused"`
	}
	body := postBody(t, "http://"+s.httpAddr()+"/api/v1/campaigns/"+c.ID+"/targets",
		map[string]any{"targets": []map[string]string{{"case_id": "LATE", "phone": "95588"}}}, http.StatusOK)
	if err := json.Unmarshal(body, &add); err != nil {
		t.Fatal(err)
	}
	if add.Added != 0 || len(add.Refused) != 1 || add.Refused[0].Index != 0 || !strings.Contains(add.Refused[0].Err, "dial plan") {
		t.Fatalf("add targets: %s, want 0 added and index 0 refused for the dial plan", body)
	}

	waitTargetState(t, s, c.ID, "GOOD", 25*time.Second, func(tg targetView) bool { return tg.State == "done" })
	if ok, out := far.wait(t, 10*time.Second); !ok {
		t.Fatalf("SIPp failed:\n%s", out)
	}
	// The campaign becomes done once the loop sees no target left (just after the target).
	v := getCampaign(t, s, c.ID)
	for deadline := time.Now().Add(5 * time.Second); v.State != "done" && time.Now().Before(deadline); v = getCampaign(t, s, c.ID) {
		time.Sleep(50 * time.Millisecond)
	}
	if len(v.Targets) != 1 || v.Targets[0].CaseID != "GOOD" || v.State != "done" {
		t.Fatalf("campaign %+v: want only the valid target, and the campaign done", v)
	}
	if n := far.receivedInvites(t); n != 1 {
		t.Fatalf("SIPp received %d INVITEs, want only the valid target's", n)
	}
	recs, err := s.store.List(context.Background(), cdr.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Called != "13900000005" || r.Target != "GOOD" {
			t.Errorf("record %+v: a refused number was dialled", r)
		}
	}
}
