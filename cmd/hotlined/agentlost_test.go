package main

import (
	"syscall"
	"testing"
	"time"

	"github.com/hotline12345/hotline/loadtest/phone"
)

// An agent's softphone vanishes mid-call (baresip killed with SIGKILL: no BYE, no more
// RTP). Once the agent leg's RTP timeout (rtp.timeout, 2 s here) runs out, the server ends
// both legs — the citizen gets a BYE —, the agent is paused (reason agent-lost) instead of
// going back to ready and being rung into a dead phone, and the record says agent-lost.
func TestBaresipAgentVanishes(t *testing.T) {
	needBaresip(t)
	t.Parallel()
	s := startServer(t, testConfig(t, "  timeout: 30s ", "  timeout: 2s ",
		"    ring_timeout: 15s ", "    ring_timeout: 2s ", "    wrap_up: 10s ", "    wrap_up: 1s "))
	bs := startBaresipAgent(t, t.Context(), s, "", "") // registered and ready
	citizen := citizenToConsult(t, s, phone.Config{})
	waitAgentState(t, s, "1001", "on_call")
	waitTone(t, citizen, 600, "citizen (baresip's tone)")
	go citizen.SendTone(1000, 30*time.Second) // the citizen goes on talking: only the agent's RTP stops

	killed := time.Now()
	if err := bs.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	bs.cmd.Wait()
	select {
	case <-citizen.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the citizen's call was not ended after the agent's phone vanished")
	}
	if r := citizen.ByeReason(); r != "remote BYE" {
		t.Fatalf("citizen's call ended by %q, want the server's BYE", r)
	}
	// The timeout runs from baresip's last packet, a little before the kill.
	if took := time.Since(killed); took < 1500*time.Millisecond {
		t.Fatalf("call ended %v after the kill, well before the 2 s RTP timeout", took)
	}
	waitAgentState(t, s, "1001", "paused")
	if state, reason := agentState(t, s, "1001"); state != "paused" || reason != "agent-lost" {
		t.Fatalf("agent 1001 is %s (%s), want paused (agent-lost)", state, reason)
	}
	rec := s.records(t, 1)[0]
	if rec.Agent != "1001" || rec.Disposition != "answered" || rec.HangupSide != "agent" || rec.HangupCause != "agent-lost" {
		t.Fatalf("record %+v: want answered by 1001, hung up on the agent's side, cause agent-lost", rec)
	}
	// Paused means not rung: a second citizen waits (no agent ready) instead of ringing the dead phone.
	second := citizenToConsult(t, s, phone.Config{})
	defer second.Hangup(t.Context())
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if state, _ := agentState(t, s, "1001"); state != "paused" {
			t.Fatalf("agent 1001 became %s while their phone is gone", state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
