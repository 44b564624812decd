package cdr

import (
	"errors"
	"testing"
	"time"

	"github.com/hotline12345/hotline/internal/fulldisk"
)

// A full disk under the journal while the store is down: records wait in
// memory, Accepting refuses new calls past SpillLimit, records of calls
// never answered are dropped past twice the limit (answered calls' never),
// and everything kept is written once space returns.
func TestWriterDiskFull(t *testing.T) {
	dir := fulldisk.Mount(t, 1<<20)
	store, m := newMemStore()
	m.fail.Store(true)
	opts := fastOpts(dir)
	opts.SpillLimit = 5
	w, err := NewWriter(store, opts)
	if err != nil {
		t.Fatal(err)
	}
	free := fulldisk.Fill(t, dir)

	// The last page of the journal may take a few more lines; then memory.
	var kept []Record
	for n := 0; w.Accepting() == nil; n++ {
		if n == 200 {
			t.Fatalf("still accepting after %d records with a full disk and the store down: %+v", n, w.Stats())
		}
		r := testRecord(n)
		w.Write(r)
		kept = append(kept, r)
		waitFor(t, "the record journaled or kept in memory", func() bool {
			st := w.Stats()
			return st.Queued == 0 && st.Spilled+int(st.Journaled) == n+1
		})
	}
	if err := w.Accepting(); !errors.Is(err, ErrBacklogged) {
		t.Fatalf("Accepting: %v, want ErrBacklogged", err)
	}
	// Up to twice the limit and past it: unanswered calls' records may be
	// dropped past it (and counted), answered ones are always kept.
	var unanswered []Record
	for i := range 4 * opts.SpillLimit {
		r := testRecord(1000 + i)
		if i%2 == 1 {
			r.Answer, r.Connect, r.EnqueueTime, r.Agent, r.Disposition = time.Time{}, time.Time{}, time.Time{}, "", DispositionAbandoned
			unanswered = append(unanswered, r)
		} else {
			kept = append(kept, r)
		}
		w.Write(r)
		waitFor(t, "the record taken", func() bool { return w.Stats().Queued == 0 })
	}
	st := w.Stats()
	if st.Dropped == 0 || st.Spilled <= 2*opts.SpillLimit {
		t.Fatalf("stats %+v: want answered records kept past twice the limit (%d) and unanswered ones dropped", st, 2*opts.SpillLimit)
	}
	free()
	m.fail.Store(false)
	waitFor(t, "everything kept written", func() bool {
		st := w.Stats()
		return m.len() >= len(kept) && st.Spilled == 0 && st.JournalBacklog == 0 && st.Queued == 0
	})
	if err := w.Accepting(); err != nil {
		t.Fatalf("Accepting after space returned: %v", err)
	}
	closeWriter(t, w)
	stored := 0
	for _, r := range unanswered {
		if got, ok := m.get(r.ID); ok {
			if !recordEqual(got, r) {
				t.Fatalf("record %s:\n got  %+v\n want %+v", r.ID, got, r)
			}
			stored++
		}
	}
	if uint64(len(unanswered)-stored) != w.Stats().Dropped {
		t.Fatalf("%d unanswered records missing from the store, %d counted dropped", len(unanswered)-stored, w.Stats().Dropped)
	}
	for _, r := range kept {
		got, ok := m.get(r.ID)
		if !ok || !recordEqual(got, r) {
			t.Fatalf("answered record %s lost or changed: %+v", r.ID, got)
		}
	}
}
