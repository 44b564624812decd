package acd

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestConcurrentInputs drives the ACD from many goroutines with the system
// clock, an Outbox that calls back into the ACD synchronously (reject) and
// asynchronously (answer, hang up), for the race detector and the ordering of
// deliveries.
func TestConcurrentInputs(t *testing.T) {
	var (
		a       *ACD
		wg      sync.WaitGroup
		mu      sync.Mutex
		n       int
		perCall = map[string][]string{} // delivery order per call
	)
	out := &fakeOut{noRecord: true}
	out.onOffer = func(o Offer) {
		mu.Lock()
		n++
		k := n
		perCall[o.CallID] = append(perCall[o.CallID], "offer:"+o.AgentID)
		mu.Unlock()
		if k%7 == 0 {
			a.RingFailed(o.CallID, o.AgentID, Rejected) // re-entrant
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Millisecond)
			if a.RingAnswered(o.CallID, o.AgentID) {
				time.Sleep(time.Millisecond)
				a.CallEnded(o.CallID, o.AgentID, "caller")
			}
		}()
	}
	out.onCancel = func(o Offer) {
		mu.Lock()
		perCall[o.CallID] = append(perCall[o.CallID], "cancel:"+o.AgentID)
		mu.Unlock()
	}
	one := 2 * time.Millisecond
	var ags []AgentConfig
	for i := range 20 {
		ags = append(ags, AgentConfig{ID: fmt.Sprint(i), Skills: map[string]int{"consult": 1 + i%10}, WrapUp: &one})
	}
	var err error
	a, err = New([]QueueConfig{{Name: "consult", RingTimeout: 50 * time.Millisecond, RetryDelay: 5 * time.Millisecond,
		JoinEmpty: true, AutoPause: new(bool)}}, ags, nil, out, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, ag := range ags {
		a.Login(ag.ID)
	}
	var callers sync.WaitGroup
	for g := range 8 {
		callers.Add(1)
		go func() {
			defer callers.Done()
			for i := range 100 {
				id := fmt.Sprintf("g%d-%d", g, i)
				if _, err := a.Enqueue(Caller{CallID: id, Queue: "consult"}); err != nil {
					t.Error(err)
				}
				if i%10 == 0 {
					a.Abandon(id)
				}
				if i%25 == 0 {
					a.Pause(fmt.Sprint(i%20), "x")
					a.Ready(fmt.Sprint(i % 20))
				}
				_ = a.Agents()
				_ = a.Queues()
			}
		}()
	}
	callers.Wait()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if q := a.Queues()[0]; q.Waiting == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("callers still waiting: %+v", a.Queues()[0])
		}
		time.Sleep(5 * time.Millisecond)
	}
	wg.Wait()
	settled := func() string { // "" when every agent is ready or paused
		for _, v := range a.Agents() {
			if v.State != AgentReady && v.State != AgentPaused {
				return "agent " + v.ID + " " + string(v.State)
			}
		}
		return ""
	}
	for msg := settled(); msg != ""; msg = settled() { // the last wrap-ups
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
		time.Sleep(5 * time.Millisecond)
	}
	a.Close()
	for _, v := range a.Agents() {
		if v.State != AgentLoggedOut || v.Reason != ReasonShutdown {
			t.Errorf("agent %s %s (%s) after Close", v.ID, v.State, v.Reason)
		}
	}
	// Per call, deliveries alternate: an agent's offer is followed by at most
	// one cancel, never a cancel before its offer.
	mu.Lock()
	defer mu.Unlock()
	for id, seq := range perCall {
		open := map[string]bool{}
		for _, s := range seq {
			switch s[:6] {
			case "offer:":
				open[s[6:]] = true
			case "cancel":
				ag := s[7:]
				if !open[ag] {
					t.Fatalf("%s: cancel before offer: %v", id, seq)
				}
				open[ag] = false
			}
		}
	}
}
