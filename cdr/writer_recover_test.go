package cdr

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// lastBeat reads the newest heartbeat in the journal dir.
func lastBeat(t *testing.T, dir string) (journalBeat, bool) {
	t.Helper()
	var last journalBeat
	found := false
	for _, f := range segmentFiles(t, dir) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.SplitSeq(string(b), "\n") {
			var e journalEntry
			if json.Unmarshal([]byte(line), &e) == nil && e.Op == journalOpBeat && !e.Beat.Time.Before(last.Time) {
				last, found = *e.Beat, true
			}
		}
	}
	return last, found
}

// copyDir copies the journal files of src into a new directory.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	for _, f := range segmentFiles(t, src) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, filepath.Base(f)), b, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// TestWriterCrashRecovery: kill -9 while a call talks to an agent and
// agents are logged in. The call is rebuilt from its latest Begin snapshot
// (queue, agent, connect, visits), counted answered, ended at the last
// heartbeat; each agent logged in at the crash gets a LOGOUT at that time.
// A second recovery of the same journal (a crash during recovery) adds
// nothing.
func TestWriterCrashRecovery(t *testing.T) {
	store, m := newMemStore()
	dir := t.TempDir()
	opts := fastOpts(dir)
	opts.Heartbeat = 5 * time.Millisecond
	w, err := NewWriter(store, opts)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	login := now.Add(-time.Hour)
	w.Event(AgentEvent{ID: "in-1001", Time: login, AgentID: "1001", Event: EventLogin, Data1: "sip:1001@127.0.0.1:5062", NodeID: "n1"})
	w.Event(AgentEvent{ID: "in-1002", Time: login, AgentID: "1002", Event: EventLogin, NodeID: "n1"})
	w.Event(AgentEvent{ID: "out-1002", Time: login.Add(time.Minute), AgentID: "1002", Event: EventLogout, Data1: "api", NodeID: "n1"})
	waitFor(t, "events stored", func() bool { return m.lenEvents() == 3 }) // a crash loses the events still queued

	// Answered by the IVR, then queued, then an agent took it: three
	// snapshots, the journal keeps the last.
	talking := Record{ID: "talking", Direction: DirectionInbound, Caller: "13900000001", Start: now.Add(-time.Minute),
		Answer: now.Add(-time.Minute), IVRPath: "main>1"}
	w.Begin(talking)
	talking.Queue, talking.EnqueueTime, talking.Visits = "consult", now.Add(-50*time.Second), "consult"
	w.Begin(talking)
	talking.Agent, talking.Connect, talking.Visits = "1001", now.Add(-40*time.Second), "consult/1001"
	w.Begin(talking)
	// Queued, no agent yet; and one whose agent connected after the last
	// heartbeat can have been written (End is never before Connect).
	waiting := Record{ID: "waiting", Direction: DirectionInbound, Start: now.Add(-20 * time.Second), Answer: now.Add(-20 * time.Second),
		Queue: "complaint", EnqueueTime: now.Add(-10 * time.Second), Visits: "complaint"}
	w.Begin(waiting)
	future := Record{ID: "future", Direction: DirectionInbound, Start: now, Answer: now, Queue: "consult", EnqueueTime: now,
		Agent: "1003", Connect: now.Add(time.Hour), Visits: "consult/1003"}
	w.Begin(future)

	waitFor(t, "a heartbeat with the agents", func() bool {
		b, ok := lastBeat(t, dir)
		return ok && b.Time.After(now)
	})
	w.abandonForTest() // kill -9
	beat, _ := lastBeat(t, dir)
	if len(beat.Agents) != 0 && (len(beat.Agents) != 1 || beat.Agents[0].ID != "1001") {
		t.Fatalf("last heartbeat's agents: %+v", beat.Agents)
	}
	again := copyDir(t, dir)

	w2, err := NewWriter(store, opts)
	if err != nil {
		t.Fatal(err)
	}
	closeWriter(t, w2)
	got, _ := m.get("talking")
	want := talking
	want.Disposition, want.HangupSide, want.HangupCause, want.End = DispositionAnswered, HangupSideSystem, HangupCauseCrash, beat.Time
	if !recordEqual(got, want) {
		t.Fatalf("talking call:\n got  %+v\n want %+v", got, want)
	}
	if got, _ := m.get("waiting"); got.Disposition != DispositionInterrupted || !got.End.Equal(beat.Time) || got.Queue != "complaint" {
		t.Fatalf("waiting call: %+v", got)
	}
	if got, _ := m.get("future"); got.Disposition != DispositionAnswered || !got.End.Equal(future.Connect) {
		t.Fatalf("call connected after the last heartbeat: %+v", got)
	}
	checkLogouts := func() {
		t.Helper()
		m.mu.Lock()
		defer m.mu.Unlock()
		var logouts []AgentEvent
		for _, e := range m.evs {
			if e.Event == EventLogout {
				logouts = append(logouts, e)
			}
		}
		if len(m.evs) != 4 || len(logouts) != 2 {
			t.Fatalf("events after recovery: %+v", m.evs)
		}
		for _, e := range logouts {
			if e.AgentID == "1002" {
				continue // the real one
			}
			if e.AgentID != "1001" || !e.Time.Equal(beat.Time) || e.Data1 != LogoutReasonCrash || e.NodeID != "n1" ||
				e.Data2 != FormatSeconds(beat.Time.Sub(login)) {
				t.Fatalf("crash logout: %+v (heartbeat %v)", e, beat.Time)
			}
		}
	}
	checkLogouts()
	if m.len() != 3 {
		t.Fatalf("%d records, want 3", m.len())
	}

	// The same journal recovered once more (the node died again while
	// recovering): nothing new.
	opts.JournalDir = again
	w3, err := NewWriter(store, opts)
	if err != nil {
		t.Fatal(err)
	}
	closeWriter(t, w3)
	checkLogouts()
	if m.len() != 3 {
		t.Fatalf("%d records after a second recovery, want 3", m.len())
	}
}

// TestWriterHeartbeatIdle: no calls and no agents, no heartbeats (the
// journal stays empty).
func TestWriterHeartbeatIdle(t *testing.T) {
	store, _ := newMemStore()
	dir := t.TempDir()
	opts := fastOpts(dir)
	opts.Heartbeat = time.Millisecond
	w, err := NewWriter(store, opts)
	if err != nil {
		t.Fatal(err)
	}
	w.Event(AgentEvent{ID: "in", AgentID: "1001", Event: EventLogin})
	w.Event(AgentEvent{ID: "out", AgentID: "1001", Event: EventLogout})
	waitFor(t, "the heartbeat saying nobody is logged in", func() bool {
		b, ok := lastBeat(t, dir)
		return ok && b.Full && len(b.Agents) == 0
	})
	closeWriter(t, w) // replays: the journal is emptied
	w, err = NewWriter(store, opts)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * opts.Heartbeat) // what must not happen: a heartbeat
	if f := segmentFiles(t, dir); len(f) != 0 {
		t.Fatalf("idle writer wrote %v", f)
	}
	closeWriter(t, w)
}
