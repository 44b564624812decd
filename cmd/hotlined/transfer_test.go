package main

import (
	"bytes"
	"context"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/hotline12345/hotline/cdr"
	"github.com/hotline12345/hotline/loadtest/phone"
)

// The transfer defect found with a real phone: agent 1001 is SIPp with -rtp_echo; it
// answers, blind-transfers the citizen to the complaint queue, requires the 202 before any
// NOTIFY (SIPp aborts on a NOTIFY that overtakes it), then answers nothing — neither the
// NOTIFY nor the BYE. The citizen must hear music on hold while complaint has nobody ready,
// and agent 1002, made ready later, must be bridged the moment they answer: audio crosses
// both ways while the dead phone's NOTIFY and BYE are still being retransmitted.
func TestTransferByPhoneThatStopsAnswering(t *testing.T) {
	t.Parallel()
	needSIPp(t)
	s := startServer(t, acdTestConfig(t))

	// Register 1001 from a port, free it, and run SIPp there: the registrar reaches the
	// agent at the REGISTER's source.
	port := freeUDPPort(t)
	reg := newPhone(t, phone.Config{SIPPort: port})
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	if err := reg.Register(ctx, s.sipAddr(), "1001", "agent1001", 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	reg.Close()
	scenario, _ := filepath.Abs(filepath.Join("..", "..", "testdata", "sipp", "uas_agent_refer.xml"))
	sipp := exec.CommandContext(ctx, "sipp", "-sf", scenario, "-i", "127.0.0.1", "-p", strconv.Itoa(port),
		"-mp", strconv.Itoa(freeUDPPort(t)), "-rtp_echo", "-m", "1", "-nostdin", "-timeout", "35s", "-timeout_error",
		"-trace_err", "-trace_msg")
	sipp.Dir = t.TempDir()
	var out bytes.Buffer
	sipp.Stdout, sipp.Stderr = &out, &out
	if err := sipp.Start(); err != nil {
		t.Fatal(err)
	}
	sippDone := make(chan error, 1)
	go func() { sippDone <- sipp.Wait() }()
	t.Cleanup(func() {
		cancel()
		<-sippDone
	})

	second := newAgent(t, s, "1002", phone.Config{}, answerAlways)
	post(t, "http://"+s.httpAddr()+"/api/v1/agents/1001/ready", http.StatusOK)
	citizen := citizenToConsult(t, s, phone.Config{})
	waitAgentState(t, s, "1001", "on_call")

	// The REFER comes 1 s after the answer; then the citizen waits in complaint with music.
	waitAgentState(t, s, "1001", "wrap_up")
	mohCtx, mohCancel := context.WithTimeout(ctx, 5*time.Second)
	if err := citizen.WaitAudio(mohCtx, -40, 500*time.Millisecond); err != nil {
		t.Fatalf("the transferred citizen hears no music on hold: %v (audio %+v)", err, citizen.Audio())
	}
	mohCancel()

	post(t, "http://"+s.httpAddr()+"/api/v1/agents/1002/ready", http.StatusOK)
	var next *phone.Call
	select {
	case next = <-second.calls:
	case <-time.After(10 * time.Second):
		t.Fatal("agent 1002 was not rung after the transfer")
	}
	<-next.Answered()
	answered := time.Now()
	go next.SendTone(1200, 4*time.Second)
	go citizen.SendTone(700, 4*time.Second)
	waitTone(t, citizen, 1200, "citizen")
	waitTone(t, next, 700, "agent 1002")
	if d := time.Since(answered); d > 4*time.Second {
		// The old controller kept the answered agent waiting for the dead phone's BYE.
		t.Errorf("audio crossed %v after 1002 answered", d)
	}
	select {
	case err := <-sippDone:
		sippDone <- err
		if err != nil {
			t.Errorf("SIPp transferor failed (a NOTIFY before the 202?): %v\n%s", err, out.String())
		}
	default: // still waiting for its BYE timeout: fine
	}
	citizen.Hangup(ctx)
	rec := s.record(t, recordID(t, s), func(r cdr.Record) bool { return r.End.After(r.Start) })
	if rec.Agent != "1001" || rec.Queue != "consult" || rec.Visits != "consult/1001>complaint/1002" || rec.Transfers != 1 || rec.Disposition != cdr.DispositionAnswered {
		t.Fatalf("record %+v: want first agent 1001 in consult, visits consult/1001>complaint/1002, one transfer", rec)
	}
	select {
	case err := <-sippDone:
		sippDone <- err
		if err != nil {
			t.Errorf("SIPp transferor: %v\n%s", err, out.String())
		}
	case <-time.After(30 * time.Second):
		t.Error("SIPp did not finish")
	}
}

// recordID is the id of the only record.
func recordID(t *testing.T, s *testServer) string {
	t.Helper()
	return s.records(t, 1)[0].ID
}
