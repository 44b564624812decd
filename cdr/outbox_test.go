package cdr

import (
	"context"
	"slices"
	"testing"
	"time"
)

// outboxIDs lists the stored feed events' IDs by seq, checking seq rises.
func outboxIDs(t *testing.T, s Store) ([]string, []OutboxEvent) {
	t.Helper()
	evs, err := s.(Outbox).ListOutbox(context.Background(), 0, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i, e := range evs {
		if i > 0 && e.Seq <= evs[i-1].Seq {
			t.Fatalf("seq not rising: %d after %d", e.Seq, evs[i-1].Seq)
		}
		ids = append(ids, e.ID)
	}
	return ids, evs
}

// Records and agent events derive the feed's events in the transaction that stores them;
// stored again (a replay), or derived again from the record (the fallback start and
// answer), they add nothing: one event per ID.
func TestOutboxDerivedOnce(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		r := testRecord(2) // answered, consult, agent 1003
		r.Visits = "consult/1003>complaint/1004"
		r.Satisfaction = SatisfactionSatisfied
		enter := AgentEvent{ID: "e1", Time: r.EnqueueTime, CallID: r.ID, Queue: "consult", Event: EventEnterQueue, Data2: r.Caller, NodeID: "node-1"}
		connect := AgentEvent{ID: "e2", Time: r.Connect, CallID: r.ID, Queue: "consult", AgentID: "1003", Event: EventConnect, Data1: "15.000", NodeID: "node-1"}
		transfer := AgentEvent{ID: "e3", Time: r.Connect.Add(time.Minute), CallID: r.ID, Queue: "consult", AgentID: "1003", Event: EventTransfer, Data1: "complaint"}
		rating := AgentEvent{ID: "e4", Time: r.End, CallID: r.ID, Queue: "complaint", AgentID: "1004", Event: EventRating, Data1: SatisfactionSatisfied}
		pause := AgentEvent{ID: "e5", Time: r.End, AgentID: "1003", Event: EventPause, Data1: "lunch"}
		for range 2 { // twice: a replay
			if err := s.AppendEvents(ctx, []AgentEvent{enter, connect, transfer, rating, pause}); err != nil {
				t.Fatal(err)
			}
			if err := s.Upsert(ctx, []Record{r}); err != nil {
				t.Fatal(err)
			}
		}
		ids, evs := outboxIDs(t, s)
		want := []string{
			r.ID + "/answer/consult/1003", "e2/agent", "e3/transfer", r.ID + "/rating", "e5/agent",
			r.ID + "/start", r.ID + "/answer/complaint/1004", r.ID + "/end",
		}
		if !slices.Equal(ids, want) {
			t.Fatalf("outbox %q\nwant   %q", ids, want)
		}
		byID := map[string]OutboxEvent{}
		for _, e := range evs {
			byID[e.ID] = e
		}
		if a := byID[r.ID+"/answer/consult/1003"]; a.Type != EventTypeCallAnswer || a.Data.Caller != r.Caller || a.Data.Wait != 15 || !a.Time.Equal(r.Connect) {
			t.Errorf("answer %+v: want the caller from ENTERQUEUE, a 15 s wait", a)
		}
		if e := byID[r.ID+"/end"]; e.Data.Disposition != r.Disposition || e.Data.Caller != r.Caller || e.Data.Satisfaction != SatisfactionSatisfied || e.NodeID != "node-1" {
			t.Errorf("end %+v", e)
		}
		if p := byID["e5/agent"]; p.Type != EventTypeAgentState || p.Data.State != "paused" || p.Data.Reason != "lunch" || p.Data.Agent != "1003" {
			t.Errorf("agent state %+v", p)
		}
		// Published events: once per ID too.
		ob := s.(Outbox)
		vm := VoicemailEvent("call-9", "13800138000", "consult", "vm/call-9.wav", 12*time.Second, r.End, "node-1")
		for range 2 {
			if err := ob.AppendOutbox(ctx, []OutboxEvent{vm}); err != nil {
				t.Fatal(err)
			}
		}
		if ids, _ := outboxIDs(t, s); len(ids) != len(want)+1 || ids[len(ids)-1] != "call-9/voicemail" {
			t.Fatalf("after the voicemail: %q", ids)
		}
		// Cursors and dead letters.
		if err := ob.SaveWebhook(ctx, "crm", 3, []DeadLetter{{Event: evs[1], Attempts: 5, LastError: "HTTP 500", Dead: r.End}}); err != nil {
			t.Fatal(err)
		}
		if err := ob.SaveWebhook(ctx, "crm", 2, nil); err != nil { // never backwards
			t.Fatal(err)
		}
		cur, err := ob.WebhookCursors(ctx)
		if err != nil || cur["crm"] != 3 {
			t.Fatalf("cursors %v, %v", cur, err)
		}
		dead, err := ob.DeadLetters(ctx, "crm", 10)
		if err != nil || len(dead) != 1 || dead[0].Event.ID != evs[1].ID || dead[0].Event.Seq != evs[1].Seq || dead[0].Attempts != 5 {
			t.Fatalf("dead letters %+v, %v", dead, err)
		}
		if err := ob.ResolveDeadLetter(ctx, "crm", evs[1].ID, "HTTP 503"); err != nil {
			t.Fatal(err)
		}
		if dead, _ := ob.DeadLetters(ctx, "crm", 10); len(dead) != 1 || dead[0].Replays != 1 || dead[0].LastError != "HTTP 503" {
			t.Fatalf("after a failed replay: %+v", dead)
		}
		if err := ob.ResolveDeadLetter(ctx, "crm", evs[1].ID, ""); err != nil {
			t.Fatal(err)
		}
		if dead, _ := ob.DeadLetters(ctx, "crm", 10); len(dead) != 0 {
			t.Fatalf("after a replay: %+v", dead)
		}
		if n, err := ob.PruneOutbox(ctx, time.Now(), 3); err != nil || n != 3 {
			t.Fatalf("pruned %d, %v: want 3", n, err)
		}
	})
}

// Kinds of records: a survey's answers, a virtual-hold callback request and the callback
// task that returns it.
func TestOutboxRecordKinds(t *testing.T) {
	r := testRecord(1)
	r.Direction, r.Caller, r.Called, r.Satisfaction, r.SurveyAnswers, r.Agent, r.Visits = DirectionSurvey, "12345", "13900000001", SatisfactionDissatisfied, "3", "", ""
	types := func(evs []OutboxEvent) (out []string) {
		for _, e := range evs {
			out = append(out, e.Type)
		}
		return out
	}
	if got := types(eventsFromRecord(&r)); !slices.Equal(got, []string{EventTypeCallStart, EventTypeCallEnd, EventTypeSurveyResult}) {
		t.Errorf("survey: %v", got)
	}
	in := testRecord(3)
	in.Disposition, in.Agent, in.Connect, in.Visits = DispositionCallback, "", time.Time{}, "consult"
	evs := eventsFromRecord(&in)
	if got := types(evs); !slices.Equal(got, []string{EventTypeCallStart, EventTypeCallEnd, EventTypeCallbackTask}) || evs[2].Data.Task != CallbackTaskRequested || evs[2].Data.Number != in.Caller {
		t.Errorf("virtual hold: %v %+v", got, evs[len(evs)-1])
	}
	cb := testRecord(5)
	cb.Direction, cb.Parent = DirectionCallback, in.ID
	evs = eventsFromRecord(&cb)
	if last := evs[len(evs)-1]; last.Type != EventTypeCallbackTask || last.Data.Task != CallbackTaskClosed || last.Data.Parent != in.ID {
		t.Errorf("callback task: %+v", last)
	}
	vm := testRecord(7)
	vm.Disposition, vm.Agent, vm.Connect, vm.Visits = DispositionIVRHangup, "", time.Time{}, ""
	vm.Voicemail, vm.RecordingFile, vm.RecordingDuration = true, "recordings/2026/12/08/x.wav", 2*time.Second
	vmEvs := eventsFromRecord(&vm)
	if last := vmEvs[len(vmEvs)-1]; last.Type != EventTypeVoicemail || last.ID != vm.ID+"/voicemail" || last.Data.Caller != vm.Caller || last.Data.File != vm.RecordingFile {
		t.Errorf("voicemail: %+v", last)
	}
	bare := Record{ID: "bare", Agent: "1001"} // no times at all: still stored, with its events
	for _, e := range eventsFromRecord(&bare) {
		if e.Time.IsZero() {
			t.Errorf("event %s of a record without times has no time", e.ID)
		}
	}
	masked := evs[0].Data.MaskNumbers(func(s string) string { return "x" + s[len(s)/2:] })
	if masked.Caller == cb.Caller || masked.CallID != cb.ID {
		t.Errorf("MaskNumbers: %+v", masked)
	}
}

// Published events survive a store outage and a crash through the journal, and the first
// Begin of a call publishes its call.start.
func TestWriterPublishSurvivesCrash(t *testing.T) {
	s, _ := openTestSQLite(t)
	dir := t.TempDir()
	w, err := NewWriter(s, fastOpts(dir))
	if err != nil {
		t.Fatal(err)
	}
	r := testRecord(1)
	w.Begin(r)
	w.Begin(r) // a newer snapshot: no second start
	waitFor(t, "call.start stored", func() bool { ids, _ := outboxIDs(t, s); return slices.Equal(ids, []string{r.ID + "/start"}) })
	// The queue full (closed writer): Publish journals.
	w.abandonForTest()
	w.Publish(VoicemailEvent(r.ID, r.Caller, "consult", "vm.wav", time.Second, time.Time{}, "node-1"))
	w2, err := NewWriter(s, fastOpts(dir))
	if err != nil {
		t.Fatal(err)
	}
	closeWriter(t, w2)
	ids, _ := outboxIDs(t, s)
	// The crash left the call open: its record is rebuilt (interrupted), with its end.
	if !slices.Contains(ids, r.ID+"/voicemail") || !slices.Contains(ids, r.ID+"/end") || len(ids) != len(slices.Compact(slices.Sorted(slices.Values(ids)))) {
		t.Fatalf("outbox after the crash: %q", ids)
	}
}
