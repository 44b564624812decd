package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hotline12345/hotline/loadtest/phone"
)

// Tones of the audibility tests: each party plays its own.
const (
	toneCitizen    = 600
	toneAgent      = 1000
	toneSupervisor = 1500
	toneDepartment = 1900
)

// send does an HTTP request with a JSON body through the test client and checks the status.
func send(t *testing.T, method, url, body string, want int) string {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		t.Fatalf("%s %s: %d, want %d: %s", method, url, res.StatusCode, want, b)
	}
	return string(b)
}

// playTone plays freq on c until the call ends, in 1 s pieces so that keys pressed
// meanwhile go out between them.
func playTone(c *phone.Call, freq float64) {
	go func() {
		for c.SendTone(freq, time.Second) == nil {
		}
	}()
}

// neverHears checks for d that c does not hear freq.
func neverHears(t *testing.T, c *phone.Call, freq float64, d time.Duration, who string) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(40 * time.Millisecond) {
		if g := c.DetectTone(freq); g > 0.05 {
			t.Fatalf("%s hears %.0f Hz (detector %.3f); it must not", who, freq, g)
		}
	}
}

// callID is the server's id of the live call of the citizen's SIP call.
func callID(t *testing.T, s *testServer, citizen *phone.Call) string {
	t.Helper()
	lc, ok := liveCall(t, s.httpAddr(), citizen.SIPCallID())
	if !ok {
		t.Fatal("the citizen's call is not live")
	}
	return lc.ID
}

// A supervisor listens, then whispers, then barges in on a live call, from the API and
// the keys of their phone, with each phone playing its own tone: listening, the supervisor
// hears citizen and agent and nobody hears the supervisor; whispering, the agent hears the
// supervisor and the citizen does not; barging, everyone hears everyone but themselves.
// When the citizen hangs up, the supervisor's leg ends too.
func TestSupervisorListenWhisperBarge(t *testing.T) {
	t.Parallel()
	s := startServer(t, acdTestConfig(t))
	ag := newAgent(t, s, "1001", phone.Config{}, answerAlways)
	sup := newAgent(t, s, "1010", phone.Config{}, answerAlways)
	citizen, agentCall := connected(t, s, ag)
	id := callID(t, s, citizen)
	url := "http://" + s.httpAddr() + "/api/v1/calls/" + id + "/monitor"

	// Refusals: not a supervisor, a bad mode, no such call.
	send(t, "POST", url, `{"mode":"listen","supervisor":"1002"}`, http.StatusForbidden)
	send(t, "POST", url, `{"mode":"shout","supervisor":"1010"}`, http.StatusBadRequest)
	send(t, "POST", "http://"+s.httpAddr()+"/api/v1/calls/nope/monitor", `{"mode":"listen","supervisor":"1010"}`, http.StatusNotFound)

	send(t, "POST", url, `{"mode":"listen","supervisor":"1010"}`, http.StatusAccepted)
	var supCall *phone.Call
	select {
	case supCall = <-sup.calls:
	case <-time.After(15 * time.Second):
		t.Fatal("the supervisor's phone was not rung")
	}
	<-supCall.Answered()
	playTone(citizen, toneCitizen)
	playTone(agentCall, toneAgent)
	playTone(supCall, toneSupervisor)

	// listen
	waitTone(t, supCall, toneCitizen, "listening supervisor")
	waitTone(t, supCall, toneAgent, "listening supervisor")
	waitTone(t, citizen, toneAgent, "citizen")
	waitTone(t, agentCall, toneCitizen, "agent")
	neverHears(t, citizen, toneSupervisor, time.Second, "citizen (listen)")
	neverHears(t, agentCall, toneSupervisor, 200*time.Millisecond, "agent (listen)")
	if lc, _ := liveCall(t, s.httpAddr(), citizen.SIPCallID()); lc.Supervisor != "1010" || lc.Monitor != "listen" {
		t.Errorf("/api/v1/calls shows %+v, want supervisor 1010 listening", lc)
	}

	// whisper, from the API
	send(t, "PATCH", url, `{"mode":"whisper","supervisor":"1010"}`, http.StatusAccepted)
	waitTone(t, agentCall, toneSupervisor, "agent (whisper)")
	waitTone(t, agentCall, toneCitizen, "agent (whisper)")
	waitTone(t, supCall, toneCitizen, "supervisor (whisper)")
	neverHears(t, citizen, toneSupervisor, time.Second, "citizen (whisper)")

	// barge, by key 7 from the supervisor's phone
	if err := supCall.SendDTMF("7", 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	waitTone(t, citizen, toneSupervisor, "citizen (barge)")
	waitTone(t, citizen, toneAgent, "citizen (barge)")
	waitTone(t, agentCall, toneSupervisor, "agent (barge)")
	waitTone(t, agentCall, toneCitizen, "agent (barge)")
	waitTone(t, supCall, toneCitizen, "supervisor (barge)")
	waitTone(t, supCall, toneAgent, "supervisor (barge)")
	neverHears(t, supCall, toneSupervisor, 200*time.Millisecond, "supervisor (own tone)")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	citizen.Hangup(ctx)
	select {
	case <-supCall.Done():
	case <-ctx.Done():
		t.Fatal("the supervisor's leg outlived the call")
	}
	if !strings.Contains(httpGet(t, "http://"+s.httpAddr()+"/api/v1/events?event=MONITOR", 200), `"barge"`) {
		t.Error("no MONITOR event with barge")
	}
}

// A supervisor dials *26<agent> from their softphone: their own call joins the agent's
// live call whispering (the agent hears them, the citizen does not); key 5 switches to
// listening; the supervisor hangs up and citizen and agent talk on as before.
func TestSupervisorFeatureCode(t *testing.T) {
	t.Parallel()
	s := startServer(t, acdTestConfig(t))
	ag := newAgent(t, s, "1001", phone.Config{}, answerAlways)
	sup := newAgent(t, s, "1010", phone.Config{}, answerAlways)
	other := newAgent(t, s, "1002", phone.Config{}, answerAlways)
	citizen, agentCall := connected(t, s, ag)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Not a supervisor: refused.
	if _, err := other.phone.Dial(ctx, "sip:*251001@"+s.sipAddr(), "1002"); err == nil {
		t.Fatal("a plain agent's *25 was answered")
	}
	supCall, err := sup.phone.Dial(ctx, "sip:*261001@"+s.sipAddr(), "1010")
	if err != nil {
		t.Fatalf("*26: %v", err)
	}
	playTone(citizen, toneCitizen)
	playTone(agentCall, toneAgent)
	playTone(supCall, toneSupervisor)
	waitTone(t, agentCall, toneSupervisor, "agent (whisper)")
	waitTone(t, supCall, toneCitizen, "supervisor (whisper)")
	neverHears(t, citizen, toneSupervisor, time.Second, "citizen (whisper)")

	if err := supCall.SendDTMF("5", 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for agentCall.DetectTone(toneSupervisor) > 0.05 {
		if time.Now().After(deadline) {
			t.Fatal("key 5 did not switch to listening: the agent still hears the supervisor")
		}
		time.Sleep(40 * time.Millisecond)
	}
	waitTone(t, supCall, toneAgent, "supervisor (listen)")

	supCall.Hangup(ctx)
	waitTone(t, citizen, toneAgent, "citizen after the supervisor left")
	waitTone(t, agentCall, toneCitizen, "agent after the supervisor left")
}
