package main

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/hotline12345/hotline/loadtest/phone"
)

// The report and the live API tell the same story about the same calls, per queue visit:
// an overflow (complaint → business), a transfer (consult → business) and an abandon
// (consult). Counts are exact and equal on both sides; ASA agrees to the millisecond.
func TestReportAgreesWithLiveQueues(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig(t,
		"    ring_timeout: 15s ", "    ring_timeout: 2s ", "    wrap_up: 10s ", "    wrap_up: 1s ",
		"    name: 投诉举报\n    max_wait: 10m\n", "    name: 投诉举报\n    max_wait: 10m\n    escalations: [{after: 1s, overflow: business}]\n"))
	business := newAgent(t, s, "1006", phone.Config{}, answerAlways) // business and consult
	consult := newAgent(t, s, "1001", phone.Config{}, answerAlways)  // consult and complaint
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	base := "http://" + s.httpAddr()
	answer := func(a *agent) *phone.Call {
		t.Helper()
		select {
		case c := <-a.calls:
			<-c.Answered()
			return c
		case <-time.After(15 * time.Second):
			t.Fatalf("agent %s not rung", a.id)
			return nil
		}
	}
	dial := func(digit string) *phone.Call {
		t.Helper()
		c, err := newPhone(t, phone.Config{}).Dial(ctx, "sip:12345@"+s.sipAddr(), "13900139000")
		if err != nil {
			t.Fatal(err)
		}
		c.SendDTMF(digit, 100*time.Millisecond)
		return c
	}

	// 1. Overflow: complaint has nobody; after 1 s the caller overflows to business.
	post(t, base+"/api/v1/agents/1006/ready", http.StatusOK)
	a := dial("2")
	answer(business)
	waitAgentState(t, s, "1006", "on_call")
	a.Hangup(ctx)
	waitAgentState(t, s, "1006", "ready")

	// 2. Transfer: consult is answered by 1001 (1006 paused meanwhile), who transfers to
	// business, where 1006 answers.
	post(t, base+"/api/v1/agents/1006/pause", http.StatusOK)
	post(t, base+"/api/v1/agents/1001/ready", http.StatusOK)
	b := dial("1")
	first := answer(consult)
	waitAgentState(t, s, "1001", "on_call")
	if err := first.Refer(ctx, "sip:business@"+s.sipAddr()); err != nil {
		t.Fatal(err)
	}
	post(t, base+"/api/v1/agents/1006/ready", http.StatusOK)
	answer(business)
	waitAgentState(t, s, "1006", "on_call")
	b.Hangup(ctx)

	// 3. Abandon: consult with nobody ready.
	post(t, base+"/api/v1/agents/1001/pause", http.StatusOK)
	waitAgentState(t, s, "1001", "paused")
	c := dial("1")
	waitLiveStage(t, s, "queued")
	c.Hangup(ctx)
	s.records(t, 3)

	type queueFigures struct {
		offered, answered, abandoned int
		asa                          float64
	}
	live := map[string]queueFigures{}
	var lq struct {
		Queues []struct {
			Name      string
			Offered   int     `json:"offered_today"`
			Answered  int     `json:"answered_today"`
			Abandoned int     `json:"abandoned_today"`
			ASA       float64 `json:"asa_seconds"`
		}
	}
	if err := json.Unmarshal([]byte(httpGet(t, base+"/api/v1/queues", 200)), &lq); err != nil {
		t.Fatal(err)
	}
	for _, q := range lq.Queues {
		live[q.Name] = queueFigures{q.Offered, q.Answered, q.Abandoned, q.ASA}
	}
	var rep struct {
		Queues []struct {
			Key       string
			Offered   int     `json:"offered"`
			Answered  int     `json:"answered"`
			Abandoned int     `json:"abandoned"`
			ASA       float64 `json:"asa_s"`
		}
	}
	// The report reads what the writer stored: wait until the events are all there.
	deadline := time.Now().Add(10 * time.Second)
	report := map[string]queueFigures{}
	for {
		if err := json.Unmarshal([]byte(httpGet(t, base+"/api/v1/reports/summary", 200)), &rep); err != nil {
			t.Fatal(err)
		}
		report = map[string]queueFigures{}
		for _, q := range rep.Queues {
			report[q.Key] = queueFigures{q.Offered, q.Answered, q.Abandoned, q.ASA}
		}
		if report["consult"].abandoned == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	want := map[string][3]int{"complaint": {1, 0, 0}, "business": {2, 2, 0}, "consult": {2, 1, 1}}
	for q, w := range want {
		l, r := live[q], report[q]
		if got := [3]int{l.offered, l.answered, l.abandoned}; got != w {
			t.Errorf("live %s: offered/answered/abandoned %v, want %v", q, got, w)
		}
		if got := [3]int{r.offered, r.answered, r.abandoned}; got != w {
			t.Errorf("report %s: offered/answered/abandoned %v, want %v", q, got, w)
		}
		if math.Abs(l.asa-r.asa) > 0.002 {
			t.Errorf("%s ASA: live %.3f s, report %.3f s", q, l.asa, r.asa)
		}
	}
}

// waitLiveStage waits until a live call is in stage.
func waitLiveStage(t *testing.T, s *testServer, stage string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var body struct{ Calls []struct{ Stage string } }
		json.Unmarshal([]byte(httpGet(t, "http://"+s.httpAddr()+"/api/v1/calls", 200)), &body)
		for _, c := range body.Calls {
			if c.Stage == stage {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no live call reached stage %s", stage)
}
