package cdr

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// A journal of thousands of records (a storm's overflow, an outage) is
// replayed BatchSize records per transaction while new records keep going
// straight to the store between the chunks.
func TestWriterReplaysInChunksBetweenDrains(t *testing.T) {
	store, m := newMemStore()
	var (
		w            atomic.Pointer[Writer]
		biggest      atomic.Int64 // largest Upsert seen
		interleaved  atomic.Int64 // new records stored while the journal still had a backlog
		newRecordIDs = map[string]bool{}
	)
	upsert := store.UpsertFunc
	store.UpsertFunc = func(ctx context.Context, recs []Record) error {
		if int64(len(recs)) > biggest.Load() {
			biggest.Store(int64(len(recs)))
		}
		if !m.fail.Load() {
			time.Sleep(time.Millisecond) // a store that takes its time
		}
		err := upsert(ctx, recs)
		if wr := w.Load(); err == nil && wr != nil && newRecordIDs[recs[0].ID] && wr.Stats().JournalBacklog > 0 {
			interleaved.Add(int64(len(recs)))
		}
		return err
	}
	all := records(2300)
	old, fresh := all[:2000], all[2000:]
	for _, r := range fresh {
		newRecordIDs[r.ID] = true
	}
	opts := fastOpts(t.TempDir())
	opts.QueueSize = 1000
	m.fail.Store(true)
	wr, err := NewWriter(store, opts)
	if err != nil {
		t.Fatal(err)
	}
	w.Store(wr)
	for _, r := range old {
		wr.Write(r)
	}
	waitFor(t, "the outage's records journaled", func() bool { return wr.Stats().JournalBacklog == int64(len(old)) })
	m.fail.Store(false)
	waitFor(t, "the replay under way", func() bool { return m.len() > 0 })
	for _, r := range fresh {
		wr.Write(r)
		time.Sleep(200 * time.Microsecond) // calls ending, not a burst
	}
	waitFor(t, "everything stored", func() bool {
		st := wr.Stats()
		return m.len() == len(all) && st.JournalBacklog == 0 && st.Queued == 0
	})
	closeWriter(t, wr)
	checkAll(t, m, all)
	if b := biggest.Load(); b > int64(opts.BatchSize) {
		t.Errorf("an Upsert of %d records: the replay must store at most BatchSize (%d) per transaction", b, opts.BatchSize)
	}
	if interleaved.Load() == 0 {
		t.Errorf("no new record reached the store while the journal was replayed: they waited behind the backlog")
	}
	if n := len(segmentFiles(t, opts.JournalDir)); n != 0 {
		t.Errorf("%d journal files left", n)
	}
}

// A record whose earlier version waits in the journal is journaled behind
// it rather than stored at once, so the replay cannot overwrite the newer
// version with the older.
func TestWriterNewerVersionWaitsBehindJournal(t *testing.T) {
	store, m := newMemStore()
	gate := make(chan struct{})
	m.block = gate
	opts := fastOpts(t.TempDir())
	opts.QueueSize, opts.BatchSize = 1, 1
	w, err := NewWriter(store, opts)
	if err != nil {
		t.Fatal(err)
	}
	a, b, x := testRecord(1), testRecord(2), testRecord(3)
	w.Write(a) // the writer takes it and hangs in the store
	waitFor(t, "the writer in the store", func() bool { return m.calls.Load() == 1 && w.Stats().Queued == 0 })
	w.Write(b) // queued
	v1 := x
	v1.Queue = "v1"
	w.Write(v1) // queue full: journaled by Write
	if st := w.Stats(); st.Journaled != 1 {
		t.Fatalf("want v1 journaled by Write (queue full), stats %+v", st)
	}
	close(gate)
	v2 := x
	v2.Queue = "v2"
	w.Write(v2)
	waitFor(t, "all stored", func() bool {
		st := w.Stats()
		got, ok := m.get(x.ID)
		return ok && got.Queue == "v2" && m.len() == 3 && st.JournalBacklog == 0 && st.Queued == 0
	})
	closeWriter(t, w)
	if got, _ := m.get(x.ID); got.Queue != "v2" {
		t.Fatalf("record %s ended as %q: the journaled older version overwrote the newer", x.ID, got.Queue)
	}
}
