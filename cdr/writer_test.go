package cdr

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// fakeStore is a Store made of function fields.
type fakeStore struct {
	UpsertFunc        func(ctx context.Context, recs []Record) error
	InsertMissingFunc func(ctx context.Context, recs []Record) error
	ListFunc          func(ctx context.Context, f Filter) ([]Record, error)
	AppendEventsFunc  func(ctx context.Context, evs []AgentEvent) error
}

func (f *fakeStore) Upsert(ctx context.Context, recs []Record) error { return f.UpsertFunc(ctx, recs) }
func (f *fakeStore) InsertMissing(ctx context.Context, recs []Record) error {
	return f.InsertMissingFunc(ctx, recs)
}
func (f *fakeStore) List(ctx context.Context, fl Filter) ([]Record, error) {
	return f.ListFunc(ctx, fl)
}
func (f *fakeStore) Scan(context.Context, Filter, func(*Record) error) error {
	return errors.New("not implemented")
}
func (f *fakeStore) AppendEvents(ctx context.Context, evs []AgentEvent) error {
	return f.AppendEventsFunc(ctx, evs)
}
func (f *fakeStore) ListEvents(context.Context, EventFilter) ([]AgentEvent, error) {
	return nil, errors.New("not implemented")
}
func (f *fakeStore) Close() error { return nil }

// memDB backs a fakeStore with a map and fails on demand.
type memDB struct {
	mu    sync.Mutex
	rows  map[string]Record
	evs   map[string]AgentEvent
	fail  atomic.Bool
	block chan struct{} // if non-nil, Upsert waits for it to close
	calls atomic.Int64
}

var errDown = errors.New("database is down")

func newMemStore() (*fakeStore, *memDB) {
	m := &memDB{rows: map[string]Record{}, evs: map[string]AgentEvent{}}
	write := func(ctx context.Context, recs []Record, replace bool) error {
		m.calls.Add(1)
		if b := m.block; b != nil {
			select {
			case <-b:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if m.fail.Load() {
			return errDown
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		for _, r := range recs {
			if _, ok := m.rows[r.ID]; ok && !replace {
				continue
			}
			m.rows[r.ID] = r
		}
		return nil
	}
	return &fakeStore{
		UpsertFunc:        func(ctx context.Context, recs []Record) error { return write(ctx, recs, true) },
		InsertMissingFunc: func(ctx context.Context, recs []Record) error { return write(ctx, recs, false) },
		ListFunc: func(context.Context, Filter) ([]Record, error) {
			return nil, errors.New("not implemented")
		},
		AppendEventsFunc: func(ctx context.Context, evs []AgentEvent) error {
			m.calls.Add(1)
			if b := m.block; b != nil {
				select {
				case <-b:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			if m.fail.Load() {
				return errDown
			}
			m.mu.Lock()
			defer m.mu.Unlock()
			for _, e := range evs {
				if _, ok := m.evs[e.ID]; !ok {
					m.evs[e.ID] = e
				}
			}
			return nil
		},
	}, m
}

func (m *memDB) get(id string) (Record, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.rows[id]
	return r, ok
}

func (m *memDB) lenEvents() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.evs)
}

func (m *memDB) len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.rows)
}

func fastOpts(dir string) WriterOptions {
	return WriterOptions{
		JournalDir:    dir,
		QueueSize:     100,
		BatchSize:     10,
		FlushInterval: 5 * time.Millisecond,
		RetryMin:      10 * time.Millisecond,
		RetryMax:      40 * time.Millisecond,
		StoreTimeout:  2 * time.Second,
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func closeWriter(t *testing.T, w *Writer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func segmentFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, segmentPrefix+"*"+segmentSuffix))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// checkAll checks the store holds exactly the records want, as written.
func checkAll(t *testing.T, m *memDB, want []Record) {
	t.Helper()
	if m.len() != len(want) {
		t.Fatalf("store has %d rows, want %d", m.len(), len(want))
	}
	for _, r := range want {
		got, ok := m.get(r.ID)
		if !ok {
			t.Fatalf("record %s missing", r.ID)
		}
		if !recordEqual(got, r) {
			t.Fatalf("record %s:\n got  %+v\n want %+v", r.ID, got, r)
		}
	}
}

// recordEqual compares records whose times may have lost their monotonic
// reading or location in a JSON round trip.
func recordEqual(a, b Record) bool {
	return fmt.Sprintf("%+v", normal(a)) == fmt.Sprintf("%+v", normal(b))
}

func normal(r Record) Record {
	for _, t := range []*time.Time{&r.Start, &r.Answer, &r.End, &r.EnqueueTime, &r.Connect} {
		if !t.IsZero() {
			*t = t.UTC()
		}
	}
	return r
}

func records(n int) []Record {
	out := make([]Record, n)
	for i := range out {
		out[i] = testRecord(i)
	}
	return out
}

func TestWriterHappyPath(t *testing.T) {
	store, m := newMemStore()
	dir := t.TempDir()
	w, err := NewWriter(store, fastOpts(dir))
	if err != nil {
		t.Fatal(err)
	}
	want := records(35)
	for _, r := range want {
		w.Write(r)
	}
	waitFor(t, "records stored", func() bool { return m.len() == len(want) })
	closeWriter(t, w)
	checkAll(t, m, want)
	if st := w.Stats(); st.Written != 35 || st.Journaled != 0 || st.Errors != 0 || st.JournalBacklog != 0 {
		t.Fatalf("stats %+v", st)
	}
	if f := segmentFiles(t, dir); len(f) != 0 {
		t.Fatalf("journal not empty: %v", f)
	}
}

func TestWriterOutageThenRecovery(t *testing.T) {
	store, m := newMemStore()
	m.fail.Store(true)
	dir := t.TempDir()
	w, err := NewWriter(store, fastOpts(dir))
	if err != nil {
		t.Fatal(err)
	}
	want := records(100)
	for _, r := range want {
		w.Write(r)
	}
	waitFor(t, "records journaled", func() bool { return w.Stats().JournalBacklog == 100 })
	if len(segmentFiles(t, dir)) == 0 {
		t.Fatal("no journal files during the outage")
	}
	calls := m.calls.Load()
	time.Sleep(100 * time.Millisecond)
	if calls == m.calls.Load() {
		t.Fatal("writer does not retry during the outage")
	}
	if m.len() != 0 {
		t.Fatal("rows stored while the store was down")
	}
	// A few more during the outage.
	more := records(110)[100:]
	for _, r := range more {
		w.Write(r)
	}
	m.fail.Store(false)
	want = append(want, more...)
	waitFor(t, "journal replayed", func() bool {
		st := w.Stats()
		return m.len() == len(want) && st.JournalBacklog == 0 && st.Queued == 0
	})
	closeWriter(t, w)
	checkAll(t, m, want)
	st := w.Stats()
	if st.Errors == 0 || st.Journaled < 100 || st.Written < uint64(len(want)) {
		t.Fatalf("stats %+v", st)
	}
	if f := segmentFiles(t, dir); len(f) != 0 {
		t.Fatalf("journal not cleaned: %v", f)
	}
}

func TestWriterQueueFullJournals(t *testing.T) {
	store, m := newMemStore()
	m.block = make(chan struct{})
	dir := t.TempDir()
	opts := fastOpts(dir)
	opts.QueueSize = 2
	opts.BatchSize = 2
	w, err := NewWriter(store, opts)
	if err != nil {
		t.Fatal(err)
	}
	want := records(50)
	start := time.Now()
	for _, r := range want {
		w.Write(r) // must not block although the store hangs
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Write blocked for %v", d)
	}
	if st := w.Stats(); st.Journaled == 0 {
		t.Fatalf("queue full but nothing journaled: %+v", st)
	}
	close(m.block)
	waitFor(t, "all stored", func() bool { return m.len() == len(want) && w.Stats().JournalBacklog == 0 })
	closeWriter(t, w)
	checkAll(t, m, want)
}

func TestWriterCloseDrains(t *testing.T) {
	store, m := newMemStore()
	dir := t.TempDir()
	opts := fastOpts(dir)
	opts.FlushInterval = time.Hour
	opts.BatchSize = 1000
	w, err := NewWriter(store, opts)
	if err != nil {
		t.Fatal(err)
	}
	want := records(20)
	for _, r := range want {
		w.Write(r)
	}
	if m.len() != 0 {
		t.Fatal("flushed before interval")
	}
	closeWriter(t, w)
	checkAll(t, m, want)
	if err := w.Close(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
}

func TestWriterCloseDeadlineKeepsJournal(t *testing.T) {
	store, m := newMemStore()
	m.fail.Store(true)
	dir := t.TempDir()
	opts := fastOpts(dir)
	opts.FlushInterval = time.Hour
	w, err := NewWriter(store, opts)
	if err != nil {
		t.Fatal(err)
	}
	want := records(5)
	for _, r := range want {
		w.Write(r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := w.Close(ctx); err == nil || !strings.Contains(err.Error(), "5 records left in journal") {
		t.Fatalf("Close = %v, want records-left error", err)
	}
	late := testRecord(99)
	w.Write(late) // after Close: straight to the journal
	want = append(want, late)

	m.fail.Store(false)
	w2, err := NewWriter(store, opts)
	if err != nil {
		t.Fatal(err)
	}
	checkAll(t, m, want) // replayed before NewWriter returned
	closeWriter(t, w2)
	if f := segmentFiles(t, dir); len(f) != 0 {
		t.Fatalf("journal not cleaned: %v", f)
	}
}

func TestWriterCrashLeavesInterrupted(t *testing.T) {
	store, m := newMemStore()
	dir := t.TempDir()
	w, err := NewWriter(store, fastOpts(dir))
	if err != nil {
		t.Fatal(err)
	}
	begun := records(3)
	for i := range begun {
		begun[i].End, begun[i].Disposition, begun[i].HangupCause, begun[i].HangupSide = time.Time{}, "", "", ""
		if i == 0 { // still in the queue, say
			begun[i].Agent, begun[i].Connect = "", time.Time{}
		}
		w.Begin(begun[i])
	}
	w.abandonForTest() // kill -9
	if m.len() != 0 {
		t.Fatal("Begin wrote to the store")
	}
	segs := segmentFiles(t, dir)
	if len(segs) == 0 {
		t.Fatal("no journal after Begin")
	}
	fi, err := os.Stat(segs[len(segs)-1])
	if err != nil {
		t.Fatal(err)
	}

	w2, err := NewWriter(store, fastOpts(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer closeWriter(t, w2)
	if m.len() != 3 {
		t.Fatalf("%d rows after restart, want 3", m.len())
	}
	for i, b := range begun {
		got, _ := m.get(b.ID)
		disp := DispositionAnswered // an agent had it
		if i == 0 {
			disp = DispositionInterrupted
		}
		if got.Disposition != disp || got.HangupCause != HangupCauseCrash || got.HangupSide != HangupSideSystem {
			t.Fatalf("record %s: %+v", b.ID, got)
		}
		// No heartbeat yet: the journal's last write.
		wantEnd := fi.ModTime().UTC()
		for _, t := range []time.Time{b.Answer, b.EnqueueTime, b.Connect} {
			if t.After(wantEnd) {
				wantEnd = t.UTC()
			}
		}
		if !got.End.Equal(wantEnd) {
			t.Fatalf("record %s: End %v, want %v", b.ID, got.End, wantEnd)
		}
		if got.Caller != b.Caller || !got.Answer.Equal(b.Answer) {
			t.Fatalf("record %s lost its fields: %+v", b.ID, got)
		}
	}
	if f := segmentFiles(t, dir); len(f) != 0 {
		t.Fatalf("journal not cleaned: %v", f)
	}
	if st := w2.Stats(); st.Written != 3 {
		t.Fatalf("stats %+v", st)
	}
}

func TestWriterCrashDoesNotClobberStoredRecord(t *testing.T) {
	store, m := newMemStore()
	dir := t.TempDir()
	w, err := NewWriter(store, fastOpts(dir))
	if err != nil {
		t.Fatal(err)
	}
	r := testRecord(1)
	w.Begin(r)
	w.Write(r)
	waitFor(t, "stored", func() bool { _, ok := m.get(r.ID); return ok })
	w.abandonForTest() // the begin entry is still in the journal
	if len(segmentFiles(t, dir)) == 0 {
		t.Fatal("expected the begin entry to remain in the journal")
	}
	w2, err := NewWriter(store, fastOpts(dir))
	if err != nil {
		t.Fatal(err)
	}
	closeWriter(t, w2)
	checkAll(t, m, []Record{r})
}

func TestWriterBeginThenWrite(t *testing.T) {
	store, m := newMemStore()
	dir := t.TempDir()
	w, err := NewWriter(store, fastOpts(dir))
	if err != nil {
		t.Fatal(err)
	}
	final := testRecord(7)
	begin := final
	begin.End, begin.Disposition = time.Time{}, ""
	w.Begin(begin)
	if st := w.Stats(); st.Open != 1 {
		t.Fatalf("stats %+v", st)
	}
	w.Write(final)
	closeWriter(t, w)
	checkAll(t, m, []Record{final})
	if f := segmentFiles(t, dir); len(f) != 0 {
		t.Fatalf("journal not cleaned: %v", f)
	}
	if st := w.Stats(); st.Open != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestWriterTornLastLine(t *testing.T) {
	dir := t.TempDir()
	want := records(2)
	data, err := encodeEntries(journalOpEnd, want)
	if err != nil {
		t.Fatal(err)
	}
	torn, _ := encodeEntries(journalOpEnd, records(3)[2:])
	data = append(data, torn[:len(torn)/2]...) // crash mid-write
	if err := os.WriteFile(filepath.Join(dir, segmentName(4)), data, 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	opts := fastOpts(dir)
	opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	store, m := newMemStore()
	w, err := NewWriter(store, opts)
	if err != nil {
		t.Fatal(err)
	}
	checkAll(t, m, want)
	closeWriter(t, w)
	if !strings.Contains(logs.String(), "skipping unreadable line") || !strings.Contains(logs.String(), "torn_last_line=true") {
		t.Fatalf("no log line for the torn line:\n%s", logs.String())
	}
	// The new writer's segments continue after the old numbering.
	if w.j.seq <= 4 {
		t.Fatalf("segment sequence restarted: %d", w.j.seq)
	}
}

func TestWriterCorruptMiddleLine(t *testing.T) {
	dir := t.TempDir()
	a, _ := encodeEntries(journalOpEnd, records(1))
	b, _ := encodeEntries(journalOpEnd, records(2)[1:])
	data := slices.Concat(a, []byte("{\"op\":\"end\",\"rec\":{\"id\":\n"), b)
	if err := os.WriteFile(filepath.Join(dir, segmentName(1)), data, 0o600); err != nil {
		t.Fatal(err)
	}
	store, m := newMemStore()
	w, err := NewWriter(store, fastOpts(dir))
	if err != nil {
		t.Fatal(err)
	}
	closeWriter(t, w)
	checkAll(t, m, records(2))
}

func TestWriterStartsWhileStoreDown(t *testing.T) {
	dir := t.TempDir()
	store, m := newMemStore()
	w, err := NewWriter(store, fastOpts(dir))
	if err != nil {
		t.Fatal(err)
	}
	begun := testRecord(1)
	w.Begin(begun)
	w.abandonForTest()
	ended := testRecord(2)
	w.Write(ended) // after "crash": journaled

	m.fail.Store(true)
	w2, err := NewWriter(store, fastOpts(dir))
	if err != nil {
		t.Fatalf("NewWriter must start while the store is down: %v", err)
	}
	if st := w2.Stats(); st.JournalBacklog != 1 {
		t.Fatalf("stats %+v", st)
	}
	time.Sleep(50 * time.Millisecond)
	m.fail.Store(false)
	waitFor(t, "replayed", func() bool { return m.len() == 2 })
	closeWriter(t, w2)
	got, _ := m.get(begun.ID)
	if got.Disposition != DispositionAnswered || got.HangupCause != HangupCauseCrash {
		t.Fatalf("begun call: %+v", got)
	}
	got, _ = m.get(ended.ID)
	if !recordEqual(got, ended) {
		t.Fatalf("ended call: %+v", got)
	}
}

func TestWriterCompactionCarriesOpenCalls(t *testing.T) {
	store, m := newMemStore()
	dir := t.TempDir()
	opts := fastOpts(dir)
	opts.CompactBytes = 1 // compact on every tick
	w, err := NewWriter(store, opts)
	if err != nil {
		t.Fatal(err)
	}
	done, live, late := testRecord(1), testRecord(2), testRecord(3)
	w.Begin(done)
	w.Begin(live)
	w.Write(done)
	waitFor(t, "done stored", func() bool { _, ok := m.get(done.ID); return ok })
	w.Begin(late) // the segment grows: compaction follows
	// Wait for a compaction that leaves only the live calls' begins.
	waitFor(t, "compaction", func() bool {
		var ids []string
		for _, f := range segmentFiles(t, dir) {
			seg := segment{path: f}
			_ = w.j.readSegment(seg, false, func(e journalEntry) {
				if e.Op != journalOpBeat {
					ids = append(ids, e.Op+":"+e.Rec.ID)
				}
			})
		}
		slices.Sort(ids)
		return fmt.Sprint(ids) == fmt.Sprint([]string{"begin:" + live.ID, "begin:" + late.ID})
	})
	w.abandonForTest()
	w2, err := NewWriter(store, opts)
	if err != nil {
		t.Fatal(err)
	}
	closeWriter(t, w2)
	checkAll(t, m, []Record{done, w2.interrupt(live), w2.interrupt(late)})
}

func TestWriterConcurrentFlakyStore(t *testing.T) {
	store, m := newMemStore()
	dir := t.TempDir()
	opts := fastOpts(dir)
	opts.QueueSize = 20
	up := store.UpsertFunc
	var n atomic.Int64
	store.UpsertFunc = func(ctx context.Context, recs []Record) error {
		if n.Add(1)%3 == 0 {
			return errDown
		}
		return up(ctx, recs)
	}
	w, err := NewWriter(store, opts)
	if err != nil {
		t.Fatal(err)
	}
	const workers, per = 8, 100
	var wg sync.WaitGroup
	var want []Record
	var wantMu sync.Mutex
	for g := range workers {
		wg.Go(func() {
			for i := range per {
				r := testRecord(g*per + i)
				w.Begin(r)
				w.Write(r)
				wantMu.Lock()
				want = append(want, r)
				wantMu.Unlock()
			}
		})
	}
	wg.Wait()
	closeWriter(t, w)
	checkAll(t, m, want)
	if f := segmentFiles(t, dir); len(f) != 0 {
		t.Fatalf("journal not cleaned: %v", f)
	}
}

func TestWriterMetrics(t *testing.T) {
	store, _ := newMemStore()
	reg := prometheus.NewRegistry()
	opts := fastOpts(t.TempDir())
	opts.Registerer = reg
	w, err := NewWriter(store, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewWriter(store, opts); err == nil {
		t.Fatal("second writer on the same registry: want a registration error")
	}
	w.Write(testRecord(1))
	closeWriter(t, w)
	names := func() []string {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var s []string
		for _, mf := range mfs {
			s = append(s, fmt.Sprintf("%s=%v", mf.GetName(), mf.GetMetric()[0].GetCounter().GetValue()+mf.GetMetric()[0].GetGauge().GetValue()))
		}
		return s
	}
	w2, err := NewWriter(store, opts) // Close unregistered the first writer's
	if err != nil {
		t.Fatal(err)
	}
	w2.Write(testRecord(2))
	waitFor(t, "stored", func() bool { return w2.Stats().Written == 1 })
	got := fmt.Sprint(names())
	for _, want := range []string{"hotline_cdr_queue_depth=0", "hotline_cdr_journal_backlog=0",
		"hotline_cdr_write_errors_total=0", "hotline_cdr_records_written_total=1"} {
		if !strings.Contains(got, want) {
			t.Errorf("metrics %s: missing %s", got, want)
		}
	}
	closeWriter(t, w2)
	if n := names(); len(n) != 0 {
		t.Fatalf("still registered after Close: %v", n)
	}
}

func TestWriterOptions(t *testing.T) {
	store, _ := newMemStore()
	if _, err := NewWriter(store, WriterOptions{}); !errors.Is(err, ErrNoJournalDir) {
		t.Fatalf("err = %v", err)
	}
	afile := filepath.Join(t.TempDir(), "afile")
	os.WriteFile(afile, nil, 0o600)
	if _, err := NewWriter(store, WriterOptions{JournalDir: filepath.Join(afile, "journal")}); err == nil || !strings.Contains(err.Error(), afile) {
		t.Fatalf("unusable journal dir: err = %v", err)
	}
}

func TestWriterWithSQLite(t *testing.T) {
	s, _ := openTestSQLite(t)
	dir := t.TempDir()
	w, err := NewWriter(s, fastOpts(dir))
	if err != nil {
		t.Fatal(err)
	}
	want := records(25)
	for _, r := range want {
		w.Begin(r)
		w.Write(r)
	}
	closeWriter(t, w)
	got, err := s.List(context.Background(), Filter{})
	if err != nil || len(got) != len(want) {
		t.Fatalf("%d rows, %v", len(got), err)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("row %d:\n got  %+v\n want %+v", i, got[i], want[i])
		}
	}
}

func BenchmarkWriterBegin(b *testing.B) {
	store, _ := newMemStore()
	w, err := NewWriter(store, WriterOptions{JournalDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer w.abandonForTest()
	r := testRecord(1)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r.ID = fmt.Sprint("bench-", i)
		i++
		w.Begin(r)
	}
	b.ReportMetric(float64(i)/b.Elapsed().Seconds(), "begins/s")
}

// BenchmarkWriterBeginParallel shows the group commit: concurrent Begins
// share fsyncs.
func BenchmarkWriterBeginParallel(b *testing.B) {
	store, _ := newMemStore()
	w, err := NewWriter(store, WriterOptions{JournalDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer w.abandonForTest()
	var n atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		r := testRecord(1)
		for pb.Next() {
			r.ID = fmt.Sprint("bench-", n.Add(1))
			w.Begin(r)
		}
	})
	b.ReportMetric(float64(n.Load())/b.Elapsed().Seconds(), "begins/s")
}
