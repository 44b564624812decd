package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hotline12345/hotline/cdr"
	"github.com/hotline12345/hotline/loadtest/phone"
)

// acdConfig is the default config with quick ACD timers for tests.
func acdTestConfig(t *testing.T) string {
	return testConfig(t, "    ring_timeout: 15s ", "    ring_timeout: 2s ", "    wrap_up: 10s ", "    wrap_up: 1s ")
}

// agent is a test phone registered as an agent, answering (or not) as told.
type agent struct {
	id    string
	phone *phone.Phone
	calls chan *phone.Call
}

// newAgent registers a test phone as agent id with its password; answer decides each call.
func newAgent(t *testing.T, s *testServer, id string, cfg phone.Config, answer func(*phone.Call) bool) *agent {
	t.Helper()
	a := &agent{id: id, calls: make(chan *phone.Call, 4)}
	cfg.OnInvite = func(c *phone.Call) bool {
		a.calls <- c
		return answer(c)
	}
	a.phone = newPhone(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.phone.Register(ctx, s.sipAddr(), id, "agent"+id, 5*time.Minute); err != nil {
		t.Fatalf("agent %s register: %v", id, err)
	}
	return a
}

func answerAlways(*phone.Call) bool { return true }

// post sends POST url with an empty body and checks the status.
func post(t *testing.T, url string, want int) string {
	t.Helper()
	res, err := httpClient.Post(url, "application/json", strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := res.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	if res.StatusCode != want {
		t.Fatalf("POST %s: %d, want %d: %s", url, res.StatusCode, want, b.String())
	}
	return b.String()
}

// agentState returns the agent's state and reason from /api/v1/agents.
func agentState(t *testing.T, s *testServer, id string) (state, reason string) {
	t.Helper()
	var body struct {
		Agents []struct{ ID, State, Reason string }
	}
	if err := json.Unmarshal([]byte(httpGet(t, "http://"+s.httpAddr()+"/api/v1/agents", http.StatusOK)), &body); err != nil {
		t.Fatal(err)
	}
	for _, a := range body.Agents {
		if a.ID == id {
			return a.State, a.Reason
		}
	}
	t.Fatalf("agent %s not listed", id)
	return "", ""
}

// waitAgentState polls until the agent is in state.
func waitAgentState(t *testing.T, s *testServer, id, state string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got, _ := agentState(t, s, id)
		if got == state {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent %s is %s, want %s", id, got, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// citizenToConsult dials 12345 and presses 1.
func citizenToConsult(t *testing.T, s *testServer, cfg phone.Config) *phone.Call {
	t.Helper()
	p := newPhone(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := p.Dial(ctx, "sip:12345@"+s.sipAddr(), "13700137000")
	if err != nil {
		t.Fatalf("citizen dial: %v", err)
	}
	if err := c.SendDTMF("1", 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	return c
}

// waitTone waits until the call hears freq clearly.
func waitTone(t *testing.T, c *phone.Call, freq float64, who string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if c.DetectTone(freq) > 0.3 {
			return
		}
		time.Sleep(40 * time.Millisecond)
	}
	t.Fatalf("%s did not hear %.0f Hz (detector %.3f, audio %+v)", who, freq, c.DetectTone(freq), c.Audio())
}

// The whole path: an agent registers with digest auth and is made ready by the API; a
// citizen presses 1 and is bridged to the agent; audio crosses both ways (transcoded when
// the legs' laws differ); after the hang-up the agent wraps up, then is ready again, and
// the record shows queue, wait, agent and talk time.
func TestAgentAnswersAndAudioCrosses(t *testing.T) {
	for _, tc := range []struct {
		name           string
		citizen, agent []uint8
	}{
		{"same law", []uint8{8, 0}, []uint8{8, 0}},
		{"PCMU caller, PCMA agent", []uint8{0}, []uint8{8}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, acdTestConfig(t))
			ag := newAgent(t, s, "1001", phone.Config{Codecs: tc.agent}, answerAlways)
			post(t, "http://"+s.httpAddr()+"/api/v1/agents/1001/ready", http.StatusOK)
			waitAgentState(t, s, "1001", "ready")

			citizen := citizenToConsult(t, s, phone.Config{Codecs: tc.citizen})
			var agentCall *phone.Call
			select {
			case agentCall = <-ag.calls:
			case <-time.After(15 * time.Second):
				t.Fatal("the agent's phone never rang")
			}
			if agentCall.From() != "13700137000" {
				t.Fatalf("agent sees caller %q", agentCall.From())
			}
			<-agentCall.Answered()
			if agentCall.Codec() != tc.agent[0] || citizen.Codec() != tc.citizen[0] {
				t.Fatalf("codecs: agent %d citizen %d", agentCall.Codec(), citizen.Codec())
			}
			waitAgentState(t, s, "1001", "on_call")

			go citizen.SendTone(1000, 3*time.Second)
			go agentCall.SendTone(600, 3*time.Second)
			waitTone(t, agentCall, 1000, "agent")
			waitTone(t, citizen, 600, "citizen")

			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := citizen.Hangup(ctx); err != nil {
				t.Fatal(err)
			}
			select {
			case <-agentCall.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("the agent's leg was not hung up")
			}
			waitAgentState(t, s, "1001", "wrap_up")
			waitAgentState(t, s, "1001", "ready")

			rec := s.records(t, 1)[0]
			if rec.Disposition != "answered" || rec.Agent != "1001" || rec.Queue != "consult" || rec.IVRPath != "main>1>consult" {
				t.Fatalf("record %+v: want answered by 1001 in consult via main>1>consult", rec)
			}
			if talk := rec.End.Sub(rec.Connect); rec.Connect.Before(rec.EnqueueTime) || rec.Talk <= 0 || (rec.Talk-talk).Abs() > 50*time.Millisecond || rec.HangupSide != "caller" {
				t.Fatalf("record times: enqueue %v connect %v talk %v side %s", rec.EnqueueTime, rec.Connect, rec.Talk, rec.HangupSide)
			}
			// The actual wrap-up (the queue's 1 s timer here) reaches the record with WRAPUPEND.
			rec = s.record(t, rec.ID, func(r cdr.Record) bool { return r.WrapUp > 0 })
			if rec.WrapUp < time.Second || rec.WrapUp > 3*time.Second || rec.RingAttempts != 1 {
				t.Fatalf("record wrap-up %v ring attempts %d, want the 1 s wrap-up actually taken and 1", rec.WrapUp, rec.RingAttempts)
			}
			if body := httpGet(t, "http://"+s.httpAddr()+"/api/v1/cdrs?agent=1001", 200); !strings.Contains(body, rec.ID) {
				t.Fatal("/api/v1/cdrs?agent=1001 does not list the agent's call")
			}
			if body := httpGet(t, "http://"+s.httpAddr()+"/api/v1/cdrs?agent=1002", 200); strings.Contains(body, rec.ID) {
				t.Fatal("/api/v1/cdrs?agent=1002 lists another agent's call")
			}
			// The report API computes the KPIs from the stored record.
			var sum struct {
				Total struct {
					Offered, Answered int
					AnswerRate        float64 `json:"answer_rate"`
				}
			}
			if err := json.Unmarshal([]byte(httpGet(t, "http://"+s.httpAddr()+"/api/v1/reports/summary", 200)), &sum); err != nil {
				t.Fatal(err)
			}
			if sum.Total.Offered != 1 || sum.Total.Answered != 1 || sum.Total.AnswerRate != 1 {
				t.Fatalf("summary %+v: want 1 offered, 1 answered, answer rate 1", sum.Total)
			}
		})
	}
}

// An agent who does not answer within the ring timeout is paused (auto-pause) and the
// next agent gets the call; the caller keeps their place.
func TestRingNoAnswerMovesToNextAgentAndPauses(t *testing.T) {
	t.Parallel()
	s := startServer(t, acdTestConfig(t))
	silent := newAgent(t, s, "1001", phone.Config{}, func(c *phone.Call) bool { <-c.Done(); return false })
	answering := newAgent(t, s, "1002", phone.Config{}, answerAlways)
	post(t, "http://"+s.httpAddr()+"/api/v1/agents/1001/ready", http.StatusOK)
	time.Sleep(50 * time.Millisecond) // 1001 has been idle longest: rung first
	post(t, "http://"+s.httpAddr()+"/api/v1/agents/1002/ready", http.StatusOK)

	citizen := citizenToConsult(t, s, phone.Config{})
	var rung *phone.Call
	select {
	case rung = <-silent.calls:
	case <-time.After(15 * time.Second):
		t.Fatal("agent 1001 (longest idle) was not rung first")
	}
	select {
	case <-rung.Done(): // CANCEL after the ring timeout
	case <-time.After(10 * time.Second):
		t.Fatal("the unanswered ring was not cancelled")
	}
	var answered *phone.Call
	select {
	case answered = <-answering.calls:
	case <-time.After(10 * time.Second):
		t.Fatal("the next agent was not rung")
	}
	<-answered.Answered()
	waitLiveStage(t, s, "talking") // the server has the 200 OK and bridged: the call is answered
	if state, reason := agentState(t, s, "1001"); state != "paused" || reason != "no-answer" {
		t.Fatalf("agent 1001 is %s (%s), want paused (no-answer)", state, reason)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	citizen.Hangup(ctx)
	rec := s.records(t, 1)[0]
	if rec.Agent != "1002" || rec.RingAttempts != 2 || rec.Disposition != "answered" {
		t.Fatalf("record %+v: want answered by 1002 after 2 ring attempts", rec)
	}
}

// An agent who rejects (486) is skipped; the caller goes to the next agent at once.
func TestAgentRejectsThenNextAgent(t *testing.T) {
	t.Parallel()
	s := startServer(t, acdTestConfig(t))
	rejecting := newAgent(t, s, "1001", phone.Config{}, func(*phone.Call) bool { return false })
	answering := newAgent(t, s, "1002", phone.Config{}, answerAlways)
	post(t, "http://"+s.httpAddr()+"/api/v1/agents/1001/ready", http.StatusOK)
	time.Sleep(50 * time.Millisecond)
	post(t, "http://"+s.httpAddr()+"/api/v1/agents/1002/ready", http.StatusOK)
	citizen := citizenToConsult(t, s, phone.Config{})
	<-rejecting.calls
	select {
	case c := <-answering.calls:
		<-c.Answered()
	case <-time.After(10 * time.Second):
		t.Fatal("the next agent was not rung after the rejection")
	}
	if state, _ := agentState(t, s, "1001"); state == "reserved" || state == "on_call" {
		t.Fatalf("the rejecting agent is stuck %s", state)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	citizen.Hangup(ctx)
	waitAgentState(t, s, "1002", "wrap_up")
}

// The caller hangs up while the agent's phone rings: the agent gets CANCEL and is ready
// again, not stuck reserved; the record is an abandon.
func TestCallerHangsUpWhileAgentRings(t *testing.T) {
	t.Parallel()
	s := startServer(t, acdTestConfig(t))
	ag := newAgent(t, s, "1001", phone.Config{}, func(c *phone.Call) bool { <-c.Done(); return false })
	post(t, "http://"+s.httpAddr()+"/api/v1/agents/1001/ready", http.StatusOK)
	citizen := citizenToConsult(t, s, phone.Config{})
	var rung *phone.Call
	select {
	case rung = <-ag.calls:
	case <-time.After(15 * time.Second):
		t.Fatal("the agent was not rung")
	}
	waitAgentState(t, s, "1001", "reserved")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	citizen.Hangup(ctx)
	select {
	case <-rung.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the agent's phone kept ringing after the caller hung up (no CANCEL)")
	}
	waitAgentState(t, s, "1001", "ready")
	rec := s.records(t, 1)[0]
	if rec.Disposition != "abandoned" || rec.Agent != "" {
		t.Fatalf("record %+v: want abandoned with no agent", rec)
	}
}

// Feature codes from the agent's own phone: *21 logs in ready, *23 pauses, *22 logs out.
func TestFeatureCodes(t *testing.T) {
	t.Parallel()
	s := startServer(t, acdTestConfig(t))
	ag := newAgent(t, s, "1003", phone.Config{}, answerAlways)
	for _, step := range []struct{ code, state string }{{"*21", "ready"}, {"*23", "paused"}, {"*24", "ready"}, {"*22", "logged_out"}} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := ag.phone.Dial(ctx, "sip:"+step.code+"@"+s.sipAddr(), "1003")
		if err != nil {
			cancel()
			t.Fatalf("dial %s: %v", step.code, err)
		}
		if err := c.WaitAudio(ctx, -40, 200*time.Millisecond); err != nil {
			t.Fatalf("%s: no confirmation prompt: %v", step.code, err)
		}
		select {
		case <-c.Done(): // the server hangs up after the confirmation
		case <-ctx.Done():
			t.Fatalf("%s: the confirmation call was not ended by the server", step.code)
		}
		cancel()
		waitAgentState(t, s, "1003", step.state)
	}
}

// connected sets up a citizen bridged to agent 1001 and returns both ends.
func connected(t *testing.T, s *testServer, ag *agent) (citizen, agentCall *phone.Call) {
	t.Helper()
	post(t, "http://"+s.httpAddr()+"/api/v1/agents/"+ag.id+"/ready", http.StatusOK)
	waitAgentState(t, s, ag.id, "ready")
	citizen = citizenToConsult(t, s, phone.Config{})
	select {
	case agentCall = <-ag.calls:
	case <-time.After(15 * time.Second):
		t.Fatal("the agent's phone never rang")
	}
	<-agentCall.Answered()
	waitAgentState(t, s, ag.id, "on_call")
	return citizen, agentCall
}

// The agent holds the caller (re-INVITE sendonly): the caller hears music on hold, not the
// agent; unhold bridges them again; the hold time is recorded apart from talk.
func TestAgentHoldAndUnhold(t *testing.T) {
	t.Parallel()
	s := startServer(t, acdTestConfig(t))
	ag := newAgent(t, s, "1001", phone.Config{}, answerAlways)
	citizen, agentCall := connected(t, s, ag)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	if err := agentCall.Hold(ctx); err != nil {
		t.Fatalf("hold: %v", err)
	}
	go agentCall.SendTone(600, 1500*time.Millisecond) // a held agent's audio must not reach the caller
	if err := citizen.WaitAudio(ctx, -40, 400*time.Millisecond); err != nil {
		t.Fatalf("no music on hold: %v", err)
	}
	if d := citizen.DetectTone(600); d > 0.3 {
		t.Fatalf("the caller hears the agent while on hold (600 Hz detector %.2f)", d)
	}
	time.Sleep(1200 * time.Millisecond)
	if err := agentCall.Unhold(ctx); err != nil {
		t.Fatalf("unhold: %v", err)
	}
	go agentCall.SendTone(600, 2*time.Second)
	waitTone(t, citizen, 600, "citizen after unhold")
	citizen.Hangup(ctx)
	rec := s.records(t, 1)[0]
	if rec.Hold < time.Second || rec.Talk <= 0 || rec.Disposition != "answered" {
		t.Fatalf("record %+v: want ≥1 s of hold recorded apart from talk", rec)
	}
}

// The agent blind-transfers the caller to another queue with REFER: 202, NOTIFY 200, the
// agent leg ends and goes to wrap-up, the caller waits in the new queue and is answered
// there by another agent; the record counts the transfer.
func TestAgentTransfersToQueue(t *testing.T) {
	t.Parallel()
	s := startServer(t, acdTestConfig(t))
	first := newAgent(t, s, "1001", phone.Config{}, answerAlways)
	second := newAgent(t, s, "1002", phone.Config{}, answerAlways) // 1002 also has the complaint skill
	citizen, agentCall := connected(t, s, first)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	if err := agentCall.Refer(ctx, "sip:nowhere@"+s.sipAddr()); err == nil {
		t.Fatal("REFER to an unknown target was accepted")
	}
	post(t, "http://"+s.httpAddr()+"/api/v1/agents/1002/ready", http.StatusOK)
	if err := agentCall.Refer(ctx, "sip:complaint@"+s.sipAddr()); err != nil {
		t.Fatalf("REFER: %v", err)
	}
	select {
	case frag := <-agentCall.Notifies():
		if !strings.Contains(frag, "200") {
			t.Fatalf("NOTIFY sipfrag %q, want 200", frag)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no NOTIFY after the REFER")
	}
	select {
	case <-agentCall.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the transferring agent's leg was not ended")
	}
	var next *phone.Call
	select {
	case next = <-second.calls:
	case <-time.After(10 * time.Second):
		t.Fatal("the complaint queue's agent was not rung after the transfer")
	}
	<-next.Answered()
	waitAgentState(t, s, "1002", "on_call")
	if state, _ := agentState(t, s, "1001"); state != "wrap_up" && state != "ready" {
		t.Fatalf("the transferring agent is %s", state)
	}
	citizen.Hangup(ctx)
	rec := s.records(t, 1)[0]
	// The record keeps the first queue and agent; Visits lists the transfer.
	if rec.Transfers != 1 || rec.Queue != "consult" || rec.Agent != "1001" || rec.Visits != "consult/1001>complaint/1002" || rec.Disposition != "answered" {
		t.Fatalf("record %+v: want one transfer, consult/1001>complaint/1002", rec)
	}
}

// Escalation: a complaint caller with no complaint agent free overflows to the business
// queue after 1 s, keeping their place, and is answered there; the record keeps the queue
// entered and its visits name the one that answered.
func TestOverflowToAnotherQueue(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig(t, "    name: 投诉举报\n    max_wait: 10m\n", "    name: 投诉举报\n    max_wait: 10m\n    escalations: [{after: 1s, overflow: business}]\n"))
	ag := newAgent(t, s, "1006", phone.Config{}, answerAlways) // business and consult, not complaint
	post(t, "http://"+s.httpAddr()+"/api/v1/agents/1006/ready", http.StatusOK)
	p := newPhone(t, phone.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	citizen, err := p.Dial(ctx, "sip:12345@"+s.sipAddr(), "13500135000")
	if err != nil {
		t.Fatal(err)
	}
	pressed := time.Now()
	citizen.SendDTMF("2", 100*time.Millisecond)
	var c *phone.Call
	select {
	case c = <-ag.calls:
	case <-time.After(10 * time.Second):
		t.Fatal("the business agent was not rung after the overflow")
	}
	if waited := time.Since(pressed); waited < time.Second {
		t.Fatalf("rung after %v, before the 1 s escalation", waited)
	}
	<-c.Answered()
	waitAgentState(t, s, "1006", "on_call")
	citizen.Hangup(ctx)
	rec := s.records(t, 1)[0]
	if rec.Queue != "complaint" || rec.Agent != "1006" || rec.Visits != "complaint>business/1006" || rec.IVRPath != "main>2>complaint" {
		t.Fatalf("record %+v: want entered complaint, answered by 1006 in business", rec)
	}
}
