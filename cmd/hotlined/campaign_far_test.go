package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hotline12345/hotline/call"
	"github.com/hotline12345/hotline/cdr"
	"github.com/hotline12345/hotline/loadtest/phone"
)

// Campaign end-to-end tests where the far end misbehaves or the machine gives up: the
// human fallback (callback task), a gateway that refuses our credentials, garbage DTMF
// and silence. Helpers are in campaign_test.go.

// waitAgentCallStage polls /api/v1/calls until a call of agent is in stage.
func waitAgentCallStage(t *testing.T, s *testServer, agent, stage string, timeout time.Duration) call.LiveCall {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, c := range s.calls.Live() {
			if c.Agent == agent && c.Stage == stage {
				return c
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no call of agent %s in stage %s: %+v", agent, stage, s.calls.Live())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// 3. The citizen never answers: after max_attempts (2) no-answers at the 1 s ring timeout
// the target goes to a human. Agent 1001 (skill callback) is rung for the callback task
// and answers; then the citizen leg is dialled through the trunk to SIPp (answering and
// echoing RTP) and bridged: a tone the agent sends crosses the bridge, is echoed by SIPp
// and comes back through the bridge (both directions). The agent hangs up; the target is
// done, reached by a human (1001); the callback record is answered by 1001.
func TestCampaignExhaustedGoesToHumanCallback(t *testing.T) {
	t.Parallel()
	gw := freeUDPPort(t)
	// The post-call rating (on for every queue by default) would keep the citizen on for
	// its question and 8 s after the agent's BYE; it has its own test (rating_test.go).
	s := startServer(t, trunkTestConfig(t, gw, "    name: 回访\n", "    name: 回访\n    rating: false\n"))
	ringing := startSIPpUAS(t, gw, "uas_ring_forever.xml", 2)
	c := postCampaign(t, s, surveyBody("e2e-human", []map[string]string{{"case_id": "3", "phone": "13900000003"}},
		map[string]any{"max_attempts": 2, "ring_timeout": "1s", "retry": map[string]string{"no_answer": "1s", "busy": "1m", "failed": "1m"}, "fallback": "callback"}))
	if ok, out := ringing.wait(t, 15*time.Second); !ok {
		t.Fatalf("SIPp (ringing forever) did not take two cancelled calls:\n%s", out)
	}
	if n := ringing.receivedInvites(t); n != 2 {
		t.Fatalf("SIPp received %d INVITEs, want 2 (max_attempts)", n)
	}
	tg := waitTargetState(t, s, c.ID, "3", 5*time.Second, func(tg targetView) bool { return tg.State == "human" })
	if tg.Outcome != "no-answer" || tg.Attempts != 2 {
		t.Fatalf("target %+v: want human after 2 no-answer attempts", tg)
	}
	recs := waitDirectionRecords(t, s, cdr.DirectionSurvey, 2)
	for i, r := range recs {
		if r.Disposition != cdr.DispositionNoAnswer || r.Attempt != i+1 || !r.Answer.IsZero() {
			t.Errorf("survey record %d %+v: want no-answer, attempt %d", i, r, i+1)
		}
		if ring := r.End.Sub(r.Start); ring < 900*time.Millisecond || ring > 5*time.Second {
			t.Errorf("survey record %d rang %v, want about the 1 s ring timeout", i, ring)
		}
	}

	// The citizen now answers (and echoes); only then is the agent made ready, so that
	// the citizen leg reaches this SIPp and not the one that has just exited.
	echo := startSIPpUAS(t, gw, "uas_answer_echo.xml", 1, "-rtp_echo")
	ag := newAgent(t, s, "1001", phone.Config{}, answerAlways)
	post(t, "http://"+s.httpAddr()+"/api/v1/agents/1001/ready", http.StatusOK)
	var agentCall *phone.Call
	select {
	case agentCall = <-ag.calls:
	case <-time.After(15 * time.Second):
		t.Fatal("agent 1001 was not rung for the callback task")
	}
	<-agentCall.Answered()
	waitAgentCallStage(t, s, "1001", call.StageTalking, 15*time.Second)
	go agentCall.SendTone(1000, 4*time.Second)
	waitTone(t, agentCall, 1000, "agent (own tone echoed by the citizen through the bridge)")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := agentCall.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, out := echo.wait(t, 20*time.Second); !ok {
		t.Fatalf("SIPp (the citizen) was not hung up with BYE after the agent left:\n%s", out)
	}
	tg = waitTargetState(t, s, c.ID, "3", 10*time.Second, func(tg targetView) bool { return tg.State == "done" })
	if tg.ReachedBy != "human" || tg.HumanAgent != "1001" || tg.Human != "answered" || tg.Attempts != 2 {
		t.Fatalf("target %+v: want done, reached by human 1001, human outcome answered", tg)
	}
	cb := waitDirectionRecords(t, s, cdr.DirectionCallback, 1)
	if len(cb) != 1 {
		t.Fatalf("%d callback records, want 1: %+v", len(cb), cb)
	}
	r := cb[0]
	if r.Agent != "1001" || r.Disposition != cdr.DispositionAnswered || r.Campaign != c.ID || r.Target != "3" ||
		r.Attempt != 1 || r.Called != "13900000003" || r.Answer.IsZero() || r.Connect.IsZero() || r.Queue != "callback" {
		t.Fatalf("callback record %+v: want answered by 1001 in queue callback, campaign %s, target 3, attempt 1", r, c.ID)
	}
	if r.Answer.Before(r.Connect) {
		t.Errorf("callback record: citizen answered %v before the agent took the task %v (progressive dialling rings the agent first)", r.Answer, r.Connect)
	}
}

// 4. A gateway that answers 401 to every INVITE, on a trunk with credentials: the INVITE
// is retried once with the digest, then the attempt ends failed with status 401 on the
// record; exactly two INVITEs reach SIPp (its scenario fails on a third), and the target
// waits for its next attempt by the campaign's retry rule instead of looping.
func TestCampaignTrunkAuthRejectedForever(t *testing.T) {
	t.Parallel()
	gw := freeUDPPort(t)
	s := startServer(t, trunkTestConfig(t, gw,
		"    # username: hotline ", "    username: trunkuser ",
		"    # password: secret", "    password: s3cret"))
	gate := startSIPpUAS(t, gw, "uas_trunk_auth_forever.xml", 1)
	c := postCampaign(t, s, surveyBody("e2e-auth", []map[string]string{{"case_id": "C4", "phone": "13900000004"}},
		map[string]any{"max_attempts": 2, "retry": map[string]string{"failed": "10m", "busy": "10m", "no_answer": "10m"}}))
	tg := waitTargetState(t, s, c.ID, "C4", 10*time.Second, func(tg targetView) bool { return tg.Attempts == 1 && tg.State != "dialing" })
	if tg.State != "pending" || tg.Outcome != "failed" || tg.NextAt.Before(time.Now().Add(9*time.Minute)) {
		t.Fatalf("target %+v: want pending with outcome failed and the next attempt 10m later", tg)
	}
	if ok, out := gate.wait(t, 15*time.Second); !ok {
		t.Fatalf("SIPp (401 forever) did not get exactly two INVITEs:\n%s", out)
	}
	if n := gate.receivedInvites(t); n != 2 {
		t.Fatalf("SIPp received %d INVITEs, want 2 (the first and one authenticated retry)", n)
	}
	recs := waitDirectionRecords(t, s, cdr.DirectionSurvey, 1)
	if len(recs) != 1 {
		t.Fatalf("%d survey records, want 1: %+v", len(recs), recs)
	}
	r := recs[0]
	if r.Disposition != cdr.DispositionFailed || r.SIPStatus != 401 || !r.Answer.IsZero() || r.Attempt != 1 || r.Target != "C4" {
		t.Fatalf("record %+v: want failed with sip_status 401, never answered, attempt 1", r)
	}
	if r.HangupCause == "" {
		t.Errorf("record %+v: no hangup cause", r)
	}
	t.Logf("record: disposition %s, sip_status %d, hangup %s/%q", r.Disposition, r.SIPStatus, r.HangupSide, r.HangupCause)
}

// 6a. A far end that presses only keys the survey does not know (9, then *) and never
// rates: both are invalid, the question is asked again and times out (max_retries 3,
// timeout 1 s here), the thanks play and the server hangs up; the target is answered and
// not rated.
func TestCampaignSurveyGarbageDTMFNotRated(t *testing.T) {
	t.Parallel()
	gw := freeUDPPort(t)
	s := startServer(t, trunkTestConfig(t, gw,
		"    timeout: 6s                 # per question", "    timeout: 1s                 # per question",
		"    max_retries: 2              # invalid keys", "    max_retries: 3              # invalid keys"))
	far := startSIPpUAS(t, gw, "uas_garbage_dtmf.xml", 1)
	c := postCampaign(t, s, surveyBody("e2e-garbage", []map[string]string{{"case_id": "C6", "phone": "13900000006"}}, nil))
	tg := waitTargetState(t, s, c.ID, "C6", 40*time.Second, func(tg targetView) bool { return tg.State == "done" })
	if tg.Outcome != "answered" || tg.Satisfaction != cdr.SatisfactionNotRated || tg.Attempts != 1 || strings.ContainsAny(tg.Answers, "123456789*#") {
		t.Fatalf("target %+v: want done, answered, not_rated, no answer digit", tg)
	}
	if ok, out := far.wait(t, 10*time.Second); !ok {
		t.Fatalf("SIPp (garbage DTMF) was not hung up with our BYE:\n%s", out)
	}
	r := waitDirectionRecords(t, s, cdr.DirectionSurvey, 1)[0]
	if r.Disposition != cdr.DispositionAnswered || r.Satisfaction != cdr.SatisfactionNotRated || r.SurveyAnswers != "" || r.HangupSide != cdr.HangupSideSystem {
		t.Fatalf("record %+v: want answered, not_rated, no answers, hung up by us", r)
	}
	// Two invalid keys alone would end it after the invalid prompt; the third failure
	// is the timeout after the question was asked again (its prompt alone is 9 s).
	if d := r.End.Sub(r.Answer); d < 10*time.Second {
		t.Fatalf("survey lasted %v: the question was not asked again and timed out", d)
	}
}

// 6b. A far end that answers and then sends nothing at all (no RTP, no DTMF, no BYE):
// our RTP timeout (2 s here) ends the call with our BYE; the target is answered, not rated.
func TestCampaignSurveySilentFarEndRTPTimeout(t *testing.T) {
	t.Parallel()
	gw := freeUDPPort(t)
	s := startServer(t, trunkTestConfig(t, gw, "  timeout: 30s                  # no RTP", "  timeout: 2s                  # no RTP"))
	far := startSIPpUAS(t, gw, "uas_answer_echo.xml", 1) // without -rtp_echo: silent
	c := postCampaign(t, s, surveyBody("e2e-silent", []map[string]string{{"case_id": "C7", "phone": "13900000007"}}, nil))
	tg := waitTargetState(t, s, c.ID, "C7", 20*time.Second, func(tg targetView) bool { return tg.State == "done" })
	if tg.Outcome != "answered" || tg.Satisfaction != cdr.SatisfactionNotRated || tg.Attempts != 1 {
		t.Fatalf("target %+v: want done, answered, not_rated", tg)
	}
	if ok, out := far.wait(t, 10*time.Second); !ok {
		t.Fatalf("SIPp (silent) was not hung up with our BYE:\n%s", out)
	}
	r := waitDirectionRecords(t, s, cdr.DirectionSurvey, 1)[0]
	if r.Disposition != cdr.DispositionAnswered || r.HangupCause != "rtp-timeout" || r.HangupSide != cdr.HangupSideSystem {
		t.Fatalf("record %+v: want answered, ended by us for rtp-timeout", r)
	}
	if d := r.End.Sub(r.Answer); d < 2*time.Second || d > 8*time.Second {
		t.Fatalf("silent call lasted %v, want about the 2 s RTP timeout", d)
	}
}
