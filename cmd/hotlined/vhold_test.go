package main

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/hotline12345/hotline/call"
	"github.com/hotline12345/hotline/cdr"
	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/loadtest/phone"
)

// Virtual hold end to end. Nobody is logged in to consult, so the estimated wait is the
// queue's 10 min and above its 1 s callback threshold. A citizen (the Go test phone, caller
// id 13800138000) calls 12345 straight into consult, hears the join prompt and the
// callback offer, presses 1 (RFC 4733), hears the number read back, presses 1 to confirm,
// hears the booking and is hung up by the server; the inbound record is a callback
// request. Agent 1001 then logs in and is made ready: the server rings them first, and
// once they answer (and heard the whisper) dials 13800138000 through the outbound trunk,
// where SIPp answers and echoes RTP: the agent hears their own tone through the bridge.
// The agent hangs up; the callback record names the inbound call as its parent, is
// answered by 1001; the report counts one callback requested, made and reached.
func TestVirtualHoldEndToEnd(t *testing.T) {
	t.Parallel()
	started := time.Now()
	const number = "13800138000"
	far := startFarEnd(t, "uas_answer_echo.xml", "-rtp_echo", "-m", "1")
	yaml := testConfig(t,
		"gateway: sip:127.0.0.1:5090", "gateway: "+far.gateway(),
		"    menu: main ", "    queue: consult ",
		`callback: {after: 2m, digit: "1"}`, `callback: {after: 1s, digit: "1"}`,
		// No post-call rating here: the citizen leg is SIPp, which cannot rate; the
		// rating has its own test (rating_test.go).
		"    rating: true ", "    rating: false ",
	)
	// The queue's callback offer reaches the calls (call.Queue) from the config.
	cfg, err := config.Load("vhold.yaml", []byte(yaml), config.Known{})
	if err != nil {
		t.Fatal(err)
	}
	if queues, _, _ := acdConfig(cfg); queues["consult"].CallbackAfter != time.Second || queues["consult"].CallbackDigit != "1" {
		t.Fatalf("consult's callback offer is not wired: after %v, digit %q", queues["consult"].CallbackAfter, queues["consult"].CallbackDigit)
	}
	s := startServer(t, yaml)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()

	citizen, err := newPhone(t, phone.Config{}).Dial(ctx, "sip:12345@"+s.sipAddr(), number)
	if err != nil {
		t.Fatalf("citizen dial: %v", err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if lc, ok := liveCall(t, s.httpAddr(), citizen.SIPCallID()); ok && lc.Stage == call.StageQueued && lc.Queue == "consult" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the citizen never queued in consult")
		}
	}
	// The join prompt (2 s) and then the offer: 3 s of speech.
	if err := citizen.WaitAudio(ctx, -40, 3*time.Second); err != nil {
		t.Fatalf("no join prompt and callback offer: %v (audio %+v)", err, citizen.Audio())
	}
	if err := citizen.SendDTMF("1", 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	// The read-back: "您的号码是" and the first digits of 13800138000.
	if err := citizen.WaitAudio(ctx, -40, 2*time.Second); err != nil {
		t.Fatalf("no read-back after the callback digit: %v (audio %+v)", err, citizen.Audio())
	}
	if err := citizen.SendDTMF("1", 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	select {
	case <-citizen.Done():
		if r := citizen.ByeReason(); r != "remote BYE" {
			t.Fatalf("the citizen's call ended by %q, want the server's BYE", r)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the server did not hang up after the booking")
	}
	in := s.records(t, 1)[0]
	if in.Direction != cdr.DirectionInbound || in.Disposition != cdr.DispositionCallback || in.Caller != number || in.Queue != "consult" {
		t.Fatalf("inbound record %+v: want a callback request from %s in consult", in, number)
	}
	if calls := farCalls(far.messages(t)); len(calls) != 0 {
		t.Fatalf("the citizen was dialled before an agent took the callback: %d INVITEs", len(calls))
	}

	// Agent 1001 logs in: rung first, answers, hears the whisper; then the citizen is dialled.
	ag := newAgent(t, s, "1001", phone.Config{}, answerAlways)
	post(t, "http://"+s.httpAddr()+"/api/v1/agents/1001/ready", http.StatusOK)
	var agentCall *phone.Call
	select {
	case agentCall = <-ag.calls:
	case <-time.After(15 * time.Second):
		t.Fatal("agent 1001 was not rung for the callback")
	}
	<-agentCall.Answered()
	if err := agentCall.Err(); err != nil {
		t.Fatalf("agent call: %v", err)
	}
	fc := far.waitFarCalls(t, 15*time.Second, "the callback answered", func(cs []*farCall) bool {
		return len(cs) == 1 && cs[0].acked
	})
	if fc[0].number != number {
		t.Fatalf("the callback dialled %q, want %s", fc[0].number, number)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var body struct{ Calls []call.LiveCall }
		if err := json.Unmarshal([]byte(httpGet(t, "http://"+s.httpAddr()+"/api/v1/calls", http.StatusOK)), &body); err != nil {
			t.Fatal(err)
		}
		if len(body.Calls) == 1 && body.Calls[0].Stage == call.StageTalking {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the callback never reached talking: %+v", body.Calls)
		}
	}
	go agentCall.SendTone(1000, 4*time.Second)
	waitTone(t, agentCall, 1000, "agent (own tone echoed by the citizen's far end)")
	if err := agentCall.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	far.waitFarCalls(t, 10*time.Second, "the server's BYE", func(cs []*farCall) bool { return !cs[0].bye.IsZero() })

	recs := s.records(t, 2)
	var cb cdr.Record
	for _, r := range recs {
		if r.Direction == cdr.DirectionCallback {
			cb = r
		}
	}
	cb = s.record(t, cb.ID, func(r cdr.Record) bool { return !r.End.IsZero() })
	if cb.Parent != in.ID || cb.Disposition != cdr.DispositionAnswered || cb.Agent != "1001" || cb.Called != number ||
		cb.Queue != "consult" || cb.SIPCallID != fc[0].callID {
		t.Fatalf("callback record %+v: want parent %s, answered by 1001, to %s, in consult, Call-ID %s", cb, in.ID, number, fc[0].callID)
	}

	var sum struct {
		Outbound struct {
			VirtualHold cdr.VirtualHold `json:"virtual_hold"`
		} `json:"outbound"`
	}
	if err := json.Unmarshal([]byte(httpGet(t, "http://"+s.httpAddr()+"/api/v1/reports/summary", http.StatusOK)), &sum); err != nil {
		t.Fatal(err)
	}
	if v := sum.Outbound.VirtualHold; v != (cdr.VirtualHold{Requested: 1, Made: 1, Reached: 1}) {
		t.Fatalf("report virtual_hold %+v: want requested 1, made 1, reached 1", v)
	}
	t.Logf("virtual hold end to end in %v", time.Since(started).Round(time.Millisecond))
}
