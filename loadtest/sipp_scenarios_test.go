package loadtest

import (
	"bytes"
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
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The SIPp scenarios shipped for operations teams (loadtest/sipp) against a real hotlined:
// a citizen and an agent together, and the far end of a survey campaign. Each test runs its
// own server on free ports, with the embedded default configuration.

// sippScnConfig is configs/hotline.yaml with the outbound trunk's gateway on gwPort (0: as is).
func sippScnConfig(t *testing.T, gwPort int) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "configs", "hotline.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if gwPort != 0 {
		const gw = "gateway: sip:127.0.0.1:5090"
		if !strings.Contains(s, gw) {
			t.Fatalf("test config: %q not found in configs/hotline.yaml", gw)
		}
		s = strings.Replace(s, gw, "gateway: sip:127.0.0.1:"+strconv.Itoa(gwPort), 1)
	}
	return s
}

// sippScnServer starts hotlined with config on rtpPorts; it stops when the test ends.
func sippScnServer(t *testing.T, config, rtpPorts string) *Hotlined {
	t.Helper()
	h, err := StartHotlined(hotlinedBinary(t), config, t.TempDir(), rtpPorts, testLog{t})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Stop)
	return h
}

// sippScnPath is the absolute path of a file of loadtest/sipp.
func sippScnPath(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("sipp", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// sippScnUDPPort returns a loopback UDP port free a moment ago.
func sippScnUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// sippScnMediaPort returns an even port p with p..p+3 free on loopback: SIPp binds its audio
// and video RTP ports (p, p+2) and their RTCP ports; its default, 6000, would be shared.
func sippScnMediaPort(t *testing.T) int {
	t.Helper()
	for range 100 {
		p := sippScnUDPPort(t) &^ 1
		if p+3 > 65535 {
			continue
		}
		var held []net.PacketConn
		for i := range 4 {
			c, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(p+i))
			if err != nil {
				break
			}
			held = append(held, c)
		}
		for _, c := range held {
			c.Close()
		}
		if len(held) == 4 {
			return p
		}
	}
	t.Fatal("no 4 free UDP ports in a row for SIPp's media")
	return 0
}

// sippScnRun is a SIPp process; its output and error log stay readable after it ends.
type sippScnRun struct {
	cmd  *exec.Cmd
	dir  string
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
	err  error
}

func (r *sippScnRun) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.out.Write(p)
}

// report is the tail of SIPp's output and its error log, for failure messages.
func (r *sippScnRun) report() string {
	r.mu.Lock()
	out := r.out.String()
	r.mu.Unlock()
	if len(out) > 6000 {
		out = "…" + out[len(out)-6000:]
	}
	logs, _ := filepath.Glob(filepath.Join(r.dir, "*_errors.log"))
	for _, l := range logs {
		if b, err := os.ReadFile(l); err == nil {
			out += "\n--- " + filepath.Base(l) + "\n" + string(b)
		}
	}
	return out
}

// sippScnStart runs sipp with args (SIPp's own files go to a temporary directory) until it
// ends or the test does.
func sippScnStart(t *testing.T, args ...string) *sippScnRun {
	t.Helper()
	r := &sippScnRun{dir: t.TempDir(), done: make(chan struct{})}
	r.cmd = exec.Command(needSIPp(t), append(args, "-nostdin", "-trace_err")...)
	r.cmd.Dir = r.dir
	r.cmd.Stdout, r.cmd.Stderr = r, r
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("start sipp: %v", err)
	}
	go func() { r.err = r.cmd.Wait(); close(r.done) }()
	t.Cleanup(func() {
		select {
		case <-r.done:
		default:
			r.cmd.Process.Kill()
			<-r.done
		}
	})
	return r
}

// wait waits up to timeout for SIPp to end and fails the test unless it exited 0 (every
// call of its scenario successful).
func (r *sippScnRun) wait(t *testing.T, what string, timeout time.Duration) {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(timeout):
		t.Fatalf("%s: SIPp still running after %v:\n%s", what, timeout, r.report())
	}
	if r.err != nil {
		t.Fatalf("%s: SIPp: %v (exit 0 means every call succeeded):\n%s", what, r.err, r.report())
	}
}

// waitBound waits until SIPp listens on 127.0.0.1:port (UDP).
func (r *sippScnRun) waitBound(t *testing.T, port int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			return // SIPp has it
		}
		c.Close()
		select {
		case <-r.done:
			t.Fatalf("SIPp ended at start: %v\n%s", r.err, r.report())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("SIPp does not listen on %d:\n%s", port, r.report())
		}
	}
}

// sippScnHTTP has no keep-alive: no connection outlives a test (goleak).
var sippScnHTTP = &http.Client{Timeout: 5 * time.Second, Transport: WithToken(&http.Transport{DisableKeepAlives: true})}

// sippScnDo sends a request to the server's API and decodes the JSON answer into v.
func sippScnDo(t *testing.T, method, url, body string, want int, v any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := sippScnHTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, url, res.StatusCode, want, b)
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s %s: %v: %s", method, url, err, b)
		}
	}
}

// sippScnPoll calls check every 100 ms until it returns "" or timeout passes; then it fails
// the test with check's last answer.
func sippScnPoll(t *testing.T, timeout time.Duration, check func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		why := check()
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", timeout, why)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sippScnRecord is a call record as GET /api/v1/cdrs lists it.
type sippScnRecord struct {
	SIPCallID     string        `json:"sip_call_id"`
	Direction     string        `json:"direction"`
	Caller        string        `json:"caller"`
	Called        string        `json:"called"`
	IVRPath       string        `json:"ivr_path"`
	Agent         string        `json:"agent"`
	Visits        string        `json:"visits"`
	Disposition   string        `json:"disposition"`
	HangupSide    string        `json:"hangup_side"`
	Talk          time.Duration `json:"talk"`
	Campaign      string        `json:"campaign"`
	Target        string        `json:"target"`
	SurveyAnswers string        `json:"survey_answers"`
	Satisfaction  string        `json:"satisfaction"`
}

// sippScnRecords returns the records of direction dir.
func sippScnRecords(t *testing.T, h *Hotlined, dir string) []sippScnRecord {
	t.Helper()
	var list struct {
		CDRs []sippScnRecord `json:"cdrs"`
	}
	sippScnDo(t, http.MethodGet, "http://"+h.HTTP+"/api/v1/cdrs?direction="+dir, "", http.StatusOK, &list)
	return list.CDRs
}

// sippScnAgentState returns agent id's state in GET /api/v1/agents.
func sippScnAgentState(t *testing.T, h *Hotlined, id string) string {
	t.Helper()
	var list struct {
		Agents []struct {
			ID    string `json:"id"`
			State string `json:"state"`
		} `json:"agents"`
	}
	sippScnDo(t, http.MethodGet, "http://"+h.HTTP+"/api/v1/agents", "", http.StatusOK, &list)
	for _, a := range list.Agents {
		if a.ID == id {
			return a.State
		}
	}
	t.Fatalf("agent %s not in /api/v1/agents", id)
	return ""
}

// agent.xml registers agent 1001 (the first line of agents.csv) with digest auth and goes
// ready by *21; citizen.xml calls 12345, presses 1 (consult) by RFC 2833 and stays on 5 s.
// The call is bridged to 1001: the record is answered by 1001 after main>1>consult, with
// talk time, the citizen hanging up; both SIPps exit 0, the agent after unregistering
// (calls=1), which logs 1001 out.
func TestSIPpScenarioCitizenAndAgent(t *testing.T) {
	t.Parallel()
	h := sippScnServer(t, sippScnConfig(t, 0), "58000-58998")

	agentFile := sippScnPath(t, "agent.xml")
	agent := sippScnStart(t, h.SIP, "-sf", agentFile, "-oocsf", agentFile, "-inf", sippScnPath(t, "agents.csv"),
		"-i", "127.0.0.1", "-p", strconv.Itoa(sippScnUDPPort(t)), "-mp", strconv.Itoa(sippScnMediaPort(t)),
		"-m", "1", "-set", "calls", "1", "-set", "session", "40000")
	sippScnPoll(t, 15*time.Second, func() string {
		select {
		case <-agent.done:
			t.Fatalf("agent SIPp ended before 1001 was ready: %v\n%s", agent.err, agent.report())
		default:
		}
		if s := sippScnAgentState(t, h, "1001"); s != "ready" {
			return "agent 1001 is " + s + ", want ready (REGISTER with digest auth, then *21)"
		}
		return ""
	})

	citizen := sippScnStart(t, h.SIP, "-sf", sippScnPath(t, "citizen.xml"), "-s", "12345",
		"-i", "127.0.0.1", "-p", strconv.Itoa(sippScnUDPPort(t)), "-mp", strconv.Itoa(sippScnMediaPort(t)),
		"-m", "1", "-set", "digit", "1", "-set", "hold", "5000", "-set", "caller", "13912345678")
	citizen.wait(t, "citizen", 30*time.Second)
	agent.wait(t, "agent", 15*time.Second)

	// SIPp's Call-IDs are <call number>-<pid>@<ip>: the record is this SIPp's call.
	callID := regexp.MustCompile(`^\d+-` + strconv.Itoa(citizen.cmd.Process.Pid) + `@127\.0\.0\.1$`)
	var recs []sippScnRecord
	sippScnPoll(t, 10*time.Second, func() string {
		recs = sippScnRecords(t, h, "inbound")
		if len(recs) != 1 {
			return fmt.Sprintf("%d inbound records, want 1: %+v", len(recs), recs)
		}
		return ""
	})
	r := recs[0]
	if !callID.MatchString(r.SIPCallID) || r.Caller != "13912345678" || r.Called != "12345" || r.IVRPath != "main>1>consult" ||
		r.Disposition != "answered" || r.Agent != "1001" || r.Visits != "consult/1001" || r.HangupSide != "caller" ||
		r.Talk < 500*time.Millisecond || r.Talk > 10*time.Second {
		t.Fatalf("record %+v: want citizen.xml's call (Call-ID like %s) from 13912345678, main>1>consult, answered by 1001, "+
			"hung up by the caller after some 4.5 s of talk", r, callID)
	}
	if s := sippScnAgentState(t, h, "1001"); s != "logged_out" {
		t.Errorf("agent 1001 is %s after agent.xml unregistered, want logged_out", s)
	}
}

// survey_uas.xml answers the server's survey calls of a campaign of three targets, presses
// 2 by RFC 2833 during the question and waits for the server's BYE: every target is done,
// answered, basically satisfied; the three survey records carry the answer and the
// campaign; SIPp exits 0 after its three calls.
func TestSIPpScenarioSurvey(t *testing.T) {
	t.Parallel()
	gw := sippScnUDPPort(t)
	h := sippScnServer(t, sippScnConfig(t, gw), "59000-59998")
	far := sippScnStart(t, "-sf", sippScnPath(t, "survey_uas.xml"), "-i", "127.0.0.1", "-p", strconv.Itoa(gw),
		"-mp", strconv.Itoa(sippScnMediaPort(t)), "-m", "3", "-set", "rating", "2")
	far.waitBound(t, gw)

	var created struct {
		ID    string `json:"id"`
		Added int    `json:"added"`
	}
	sippScnDo(t, http.MethodPost, "http://"+h.HTTP+"/api/v1/campaigns", `{"name": "sipp", "script": "satisfaction",
		"trunk": "loopback-out", "window": {"from": "00:00", "to": "24:00"},
		"targets": [{"case_id": "S1", "phone": "13900000001"}, {"case_id": "S2", "phone": "13900000002"},
		            {"case_id": "S3", "phone": "13900000003"}]}`, http.StatusCreated, &created)
	if created.ID == "" || created.Added != 3 {
		t.Fatalf("campaign created %+v, want an id and 3 targets added", created)
	}

	type target struct {
		CaseID       string `json:"case_id"`
		State        string `json:"state"`
		Outcome      string `json:"outcome"`
		Satisfaction string `json:"satisfaction"`
		Answers      string `json:"answers"`
	}
	var targets []target
	sippScnPoll(t, 30*time.Second, func() string {
		var v struct {
			Targets []target `json:"targets"`
		}
		sippScnDo(t, http.MethodGet, "http://"+h.HTTP+"/api/v1/campaigns/"+created.ID, "", http.StatusOK, &v)
		targets = v.Targets
		if len(targets) != 3 || slices.ContainsFunc(targets, func(tg target) bool { return tg.State != "done" }) {
			return fmt.Sprintf("targets %+v, want 3 done", targets)
		}
		return ""
	})
	for _, tg := range targets {
		if tg.Outcome != "answered" || tg.Satisfaction != "basically_satisfied" || tg.Answers != "service=2" {
			t.Errorf("target %+v: want answered, basically_satisfied, answers service=2", tg)
		}
	}
	far.wait(t, "survey_uas", 15*time.Second)

	var recs []sippScnRecord
	sippScnPoll(t, 10*time.Second, func() string {
		recs = sippScnRecords(t, h, "survey")
		if len(recs) != 3 {
			return fmt.Sprintf("%d survey records, want 3: %+v", len(recs), recs)
		}
		return ""
	})
	var cases []string
	for _, r := range recs {
		cases = append(cases, r.Target)
		if r.Campaign != created.ID || r.Disposition != "answered" || r.SurveyAnswers != "2" ||
			r.Satisfaction != "basically_satisfied" || r.HangupSide != "system" {
			t.Errorf("record %+v: want an answered survey of campaign %s, answers 2, basically_satisfied, ended by the server",
				r, created.ID)
		}
	}
	slices.Sort(cases)
	if !slices.Equal(cases, []string{"S1", "S2", "S3"}) {
		t.Errorf("survey records of targets %v, want S1, S2, S3", cases)
	}
}
