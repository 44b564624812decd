package main

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/hotline12345/hotline/loadtest/phone"
)

// Ground truth through the real server: a scripted day of calls whose waits and talk times
// the script itself measures at the phones; the report's counts equal the script exactly
// and ASA and AHT agree within 10 ms per call.
func TestReportGroundTruth(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig(t, "    ring_timeout: 15s ", "    ring_timeout: 5s ", "    wrap_up: 10s ", "    wrap_up: 1s "))

	// The agent's phone follows a script per call: how long to ring, then answer or reject.
	type step struct {
		ring   time.Duration
		answer bool
	}
	var mu sync.Mutex
	script := map[int]step{}
	rung := map[int]time.Time{}
	answered := map[int]time.Time{}
	calls := make(chan *phone.Call, 8)
	n := 0
	newAgent(t, s, "1001", phone.Config{}, func(c *phone.Call) bool {
		mu.Lock()
		n++
		i := n
		rung[i] = time.Now()
		st := script[i]
		mu.Unlock()
		calls <- c
		select {
		case <-time.After(st.ring):
		case <-c.Done():
			return false
		}
		return st.answer
	})
	post(t, "http://"+s.httpAddr()+"/api/v1/agents/1001/ready", http.StatusOK)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	var waits, handles []time.Duration
	talk := func(i int, ring, hold time.Duration, agentHangsUp bool) {
		t.Helper()
		mu.Lock()
		script[i] = step{ring: ring, answer: true}
		mu.Unlock()
		citizen := citizenToConsult(t, s, phone.Config{})
		agentCall := <-calls
		<-agentCall.Answered()
		at := time.Now()
		mu.Lock()
		answered[i] = at
		waits = append(waits, at.Sub(rung[i]))
		mu.Unlock()
		waitAgentState(t, s, "1001", "on_call")
		time.Sleep(hold)
		var end time.Time
		if agentHangsUp {
			end = time.Now()
			agentCall.Hangup(ctx)
			citizen.Hangup(ctx) // during the post-call rating: not rated
		} else {
			end = time.Now()
			citizen.Hangup(ctx)
		}
		handles = append(handles, end.Sub(at)+time.Second) // talk + the queue's 1 s wrap-up
		waitAgentState(t, s, "1001", "ready")
	}
	talk(1, 300*time.Millisecond, 800*time.Millisecond, false)
	talk(2, 600*time.Millisecond, 500*time.Millisecond, true)

	// 3: the citizen gives up after 400 ms of ringing (a short abandon).
	mu.Lock()
	script[3] = step{ring: 10 * time.Second, answer: true}
	mu.Unlock()
	c3 := citizenToConsult(t, s, phone.Config{})
	<-calls
	time.Sleep(400 * time.Millisecond)
	c3.Hangup(ctx)
	waitAgentState(t, s, "1001", "ready")

	// 4: a caller who hangs up in the menu (not offered).
	p4 := newPhone(t, phone.Config{})
	c4, err := p4.Dial(ctx, "sip:12345@"+s.sipAddr(), "13600136000")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	c4.Hangup(ctx)

	// 5: the agent rejects (486); the caller waits and hangs up after 1 s (a short abandon).
	mu.Lock()
	script[5] = step{ring: 0, answer: false}
	mu.Unlock()
	c5 := citizenToConsult(t, s, phone.Config{})
	<-calls
	time.Sleep(time.Second)
	c5.Hangup(ctx)

	s.records(t, 5)
	var rep struct {
		Total struct {
			Offered        int     `json:"offered"`
			Answered       int     `json:"answered"`
			Abandoned      int     `json:"abandoned"`
			ShortAbandoned int     `json:"short_abandoned"`
			IVROnly        int     `json:"ivr_only"`
			ASA            float64 `json:"asa_s"`
			AHT            float64 `json:"aht_s"`
		}
	}
	if err := json.Unmarshal([]byte(httpGet(t, "http://"+s.httpAddr()+"/api/v1/reports/summary", 200)), &rep); err != nil {
		t.Fatal(err)
	}
	got := rep.Total
	if got.Offered != 4 || got.Answered != 2 || got.Abandoned != 2 || got.ShortAbandoned != 2 || got.IVROnly != 1 {
		t.Fatalf("report counts %+v: want offered 4, answered 2, abandoned 2 (both short), IVR-only 1", got)
	}
	mean := func(ds []time.Duration) float64 {
		var sum time.Duration
		for _, d := range ds {
			sum += d
		}
		return (sum / time.Duration(len(ds))).Seconds()
	}
	// The report computes exactly what the stored records say (the actual wrap-up included,
	// which reaches the records with WRAPUPEND)...
	var recWaits, recHandles []time.Duration
	deadline := time.Now().Add(10 * time.Second)
	for {
		recWaits, recHandles = nil, nil
		for _, r := range s.records(t, 5) {
			if r.Agent != "" {
				recWaits = append(recWaits, r.Connect.Sub(r.EnqueueTime))
				recHandles = append(recHandles, r.Talk+r.Hold+r.WrapUp)
			}
		}
		if len(recHandles) == 2 && recHandles[0] > time.Second && recHandles[1] > time.Second || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if d := math.Abs(got.ASA - mean(recWaits)); d > 0.001 {
		t.Errorf("ASA %.4fs, the records say %.4fs", got.ASA, mean(recWaits))
	}
	if d := math.Abs(got.AHT - mean(recHandles)); d > 0.001 {
		t.Errorf("AHT %.4fs, the records say %.4fs (wrap-up not the actual one?)", got.AHT, mean(recHandles))
	}
	// ...and the records agree with what the phones measured, within the signalling and
	// scheduling latency of a loaded machine (the phones cannot see the enqueue or the
	// connect themselves). A configured-instead-of-actual wrap-up or a wait counted from the
	// wrong queue is off by far more.
	const slack = 0.060
	if d := math.Abs(got.ASA - mean(waits)); d > slack {
		t.Errorf("ASA %.3fs, script measured %.3fs (off by %.1f ms)", got.ASA, mean(waits), d*1000)
	}
	if d := math.Abs(got.AHT - mean(handles)); d > slack {
		t.Errorf("AHT %.3fs, script measured %.3fs (off by %.1f ms)", got.AHT, mean(handles), d*1000)
	}
	t.Logf("ASA %.3fs (phones %.3fs), AHT %.3fs (phones %.3fs)", got.ASA, mean(waits), got.AHT, mean(handles))
}
