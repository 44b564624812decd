package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/hotline12345/hotline/cdr"
	"github.com/hotline12345/hotline/loadtest/phone"
)

// directoryServer starts the server with the departments trunk pointed at a SIPp UAS that
// answers and echoes what it hears (-rtp_echo): the department. With the mixer's N-1 rule
// nobody is sent their own voice, so a party that hears its own tone heard it through the
// department: proof that audio reaches the department and comes back.
func directoryServer(t *testing.T, scenario string) (*testServer, *sippUAS) {
	t.Helper()
	gw := freeUDPPort(t)
	dept := startSIPpUAS(t, gw, scenario, 1, "-rtp_echo")
	s := startServer(t, testConfig(t, "    ring_timeout: 15s ", "    ring_timeout: 2s ", "    wrap_up: 10s ", "    wrap_up: 1s ",
		"gateway: sip:127.0.0.1:5092", fmt.Sprintf("gateway: sip:127.0.0.1:%d", gw)))
	return s, dept
}

// An agent conferences 12315 from the directory (API): all three hear each other; the
// agent drops out and citizen and department go on talking; a number outside the
// directory is refused and never dialled; the record keeps the conference.
func TestDirectoryThreeWayAndDropOut(t *testing.T) {
	t.Parallel()
	s, dept := directoryServer(t, "uas_answer_echo.xml")
	ag := newAgent(t, s, "1001", phone.Config{}, answerAlways)
	citizen, agentCall := connected(t, s, ag)
	id := callID(t, s, citizen)
	url := "http://" + s.httpAddr() + "/api/v1/calls/" + id + "/conference"
	playTone(citizen, toneCitizen)
	playTone(agentCall, toneAgent)
	waitTone(t, citizen, toneAgent, "citizen")

	send(t, "POST", url, `{"entry":"13800138000"}`, http.StatusNotFound) // outside the directory
	send(t, "DELETE", url, ``, http.StatusConflict)                      // no department yet
	send(t, "POST", url, `{"entry":"12315"}`, http.StatusAccepted)
	hears(t, citizen, toneCitizen, 0.1, "citizen (its voice back from the department)")
	hears(t, citizen, toneAgent, 0.1, "citizen (three-way)")
	hears(t, agentCall, toneAgent, 0.1, "agent (its voice back from the department)")
	hears(t, agentCall, toneCitizen, 0.1, "agent (three-way)")
	send(t, "POST", url, `{"entry":"12369"}`, http.StatusConflict) // one department at a time

	send(t, "DELETE", url, ``, http.StatusAccepted) // the agent drops out
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	select {
	case <-agentCall.Done():
	case <-ctx.Done():
		t.Fatal("the agent's leg was not hung up when they dropped out")
	}
	time.Sleep(300 * time.Millisecond) // the detector's window forgets the agent
	waitTone(t, citizen, toneCitizen, "citizen with the department alone")
	neverHears(t, citizen, toneAgent, 500*time.Millisecond, "citizen after the agent left")
	waitAgentState(t, s, "1001", "wrap_up")

	rec := endWithDepartment(t, s, dept, citizen, id)
	hs := rec.Handoffs.List()
	if len(hs) != 1 || hs[0].Kind != cdr.HandoffConference || hs[0].Entry != "12315" || hs[0].Number != "12315" ||
		hs[0].Trunk != "departments" || hs[0].Agent != "1001" || hs[0].Outcome != "answered" || hs[0].AgentLeft.IsZero() {
		t.Errorf("record handoffs %+v, want the answered conference with 12315 that the agent left", hs)
	}
	if rec.Disposition != cdr.DispositionAnswered || rec.Agent != "1001" {
		t.Errorf("record %s agent %q, want answered by 1001", rec.Disposition, rec.Agent)
	}
}

// hears waits until c hears freq with at least share of the power (a mix of several
// sources shares it).
func hears(t *testing.T, c *phone.Call, freq, share float64, who string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for c.DetectTone(freq) < share {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not hear %.0f Hz (detector %.3f, want %.2f)", who, freq, c.DetectTone(freq), share)
		}
		time.Sleep(40 * time.Millisecond)
	}
}

// An agent blind-transfers the citizen by REFER: to a number outside the directory, 404
// and nothing dialled; to 12315, 202, the agent is let go and the citizen lands with the
// department; the record keeps the transfer.
func TestDirectoryBlindTransfer(t *testing.T) {
	t.Parallel()
	s, dept := directoryServer(t, "uas_answer_echo.xml")
	ag := newAgent(t, s, "1001", phone.Config{}, answerAlways)
	citizen, agentCall := connected(t, s, ag)
	id := callID(t, s, citizen)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	err := agentCall.Refer(ctx, "sip:13800138000@"+s.sipAddr())
	var se *phone.StatusError
	if !errors.As(err, &se) || se.Code != 404 {
		t.Fatalf("REFER outside the directory: %v, want 404", err)
	}
	if err := agentCall.Refer(ctx, "sip:12315@"+s.sipAddr()); err != nil {
		t.Fatalf("REFER to 12315: %v", err)
	}
	select {
	case <-agentCall.Done():
	case <-ctx.Done():
		t.Fatal("the transferring agent's leg was not hung up")
	}
	playTone(citizen, toneCitizen)
	waitTone(t, citizen, toneCitizen, "citizen (its voice back from the department)")
	lc, ok := liveCall(t, s.httpAddr(), citizen.SIPCallID())
	if !ok || lc.Stage != "talking" {
		t.Errorf("live call %+v, want talking", lc)
	}
	rec := endWithDepartment(t, s, dept, citizen, id)
	hs := rec.Handoffs.List()
	if len(hs) != 1 || hs[0].Kind != cdr.HandoffTransfer || hs[0].Entry != "12315" || hs[0].Outcome != "answered" || hs[0].Answered.IsZero() {
		t.Errorf("record handoffs %+v, want the answered transfer to 12315", hs)
	}
	if rec.Transfers != 1 || rec.Disposition != cdr.DispositionAnswered {
		t.Errorf("record transfers %d disposition %s, want 1 and answered", rec.Transfers, rec.Disposition)
	}
}

// endWithDepartment hangs up the citizen, checks that the department's SIPp got exactly
// one INVITE (nothing outside the directory is dialled) and ended cleanly, and returns the
// call's record.
func endWithDepartment(t *testing.T, s *testServer, dept *sippUAS, citizen *phone.Call, id string) cdr.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	citizen.Hangup(ctx)
	if ok, out := dept.wait(t, 15*time.Second); !ok {
		t.Fatalf("the department's SIPp failed:\n%s", out)
	}
	if n := dept.receivedInvites(t); n != 1 {
		t.Errorf("the department got %d INVITEs, want 1", n)
	}
	return s.record(t, id, func(r cdr.Record) bool { return r.Disposition != "" })
}

// The agent presses *31 on their phone: the first directory entry (12315) joins a
// three-way call; the agent hangs up and citizen and department go on talking.
func TestDirectoryThreeWayByKeysAgentHangsUp(t *testing.T) {
	t.Parallel()
	s, dept := directoryServer(t, "uas_answer_echo.xml")
	ag := newAgent(t, s, "1001", phone.Config{}, answerAlways)
	citizen, agentCall := connected(t, s, ag)
	id := callID(t, s, citizen)
	playTone(citizen, toneCitizen)
	if err := agentCall.SendDTMF("*31", 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	playTone(agentCall, toneAgent)
	hears(t, agentCall, toneAgent, 0.1, "agent (its voice back from the department)")
	hears(t, citizen, toneCitizen, 0.1, "citizen (its voice back from the department)")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := agentCall.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the detector's window forgets the agent
	hears(t, citizen, toneCitizen, 0.3, "citizen with the department alone")
	neverHears(t, citizen, toneAgent, 500*time.Millisecond, "citizen after the agent hung up")
	if lc, ok := liveCall(t, s.httpAddr(), citizen.SIPCallID()); !ok || lc.Stage != "talking" {
		t.Errorf("live call %+v after the agent hung up, want talking", lc)
	}
	rec := endWithDepartment(t, s, dept, citizen, id)
	hs := rec.Handoffs.List()
	if len(hs) != 1 || hs[0].Kind != cdr.HandoffConference || hs[0].Entry != "12315" || hs[0].AgentLeft.IsZero() {
		t.Errorf("record handoffs %+v, want the conference with 12315 that the agent left", hs)
	}
}

// A blind transfer to a department that is busy: the citizen goes back to the queue the
// agent took them from and the next agent answers; the record keeps the busy transfer.
func TestDirectoryTransferBusyRequeues(t *testing.T) {
	t.Parallel()
	s, dept := directoryServer(t, "uas_trunk_busy.xml")
	ag := newAgent(t, s, "1001", phone.Config{}, answerAlways)
	next := newAgent(t, s, "1002", phone.Config{}, answerAlways)
	citizen, agentCall := connected(t, s, ag)
	id := callID(t, s, citizen)
	post(t, "http://"+s.httpAddr()+"/api/v1/agents/1002/ready", http.StatusOK)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := agentCall.Refer(ctx, "sip:12315@"+s.sipAddr()); err != nil {
		t.Fatalf("REFER to 12315: %v", err)
	}
	var second *phone.Call
	select {
	case second = <-next.calls:
	case <-ctx.Done():
		t.Fatal("the citizen was not offered to the next agent after the department was busy")
	}
	<-second.Answered()
	playTone(second, toneAgent)
	waitTone(t, citizen, toneAgent, "citizen with the next agent")
	rec := endWithDepartment(t, s, dept, citizen, id)
	hs := rec.Handoffs.List()
	if len(hs) != 1 || hs[0].Kind != cdr.HandoffTransfer || hs[0].Outcome != "busy" || hs[0].Status != 486 {
		t.Errorf("record handoffs %+v, want the busy transfer (486)", hs)
	}
	if rec.Visits != "consult/1001>consult/1002" {
		t.Errorf("record visits %q, want consult/1001>consult/1002", rec.Visits)
	}
}
