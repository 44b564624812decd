package cdr

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotline12345/hotline/internal/pgtest"
)

// Every store test runs against SQLite and PostgreSQL. PostgreSQL comes
// from HOTLINE_TEST_PG_DSN (default: trust auth on 127.0.0.1:5432, database
// test); each test gets a fresh schema, dropped when it ends. Without a
// server the PostgreSQL variants skip, saying why, except under CI=true,
// where they fail.

// The PostgreSQL helpers are internal/pgtest's (one per test: a fresh schema).

func testPGDSN() string               { return pgtest.DSN() }
func requirePostgres(t testing.TB)    { t.Helper(); pgtest.Require(t) }
func newPGSchema(t testing.TB) string { t.Helper(); return pgtest.Schema(t) }
func withSearchPath(t testing.TB, dsn, schema string) string {
	return pgtest.WithSearchPath(t, dsn, schema)
}

func openTestPostgres(t testing.TB) (*Postgres, string) {
	t.Helper()
	dsn := newPGSchema(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := OpenPostgres(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, dsn
}

// eachStore runs fn against a fresh SQLite and a fresh PostgreSQL store.
func eachStore(t *testing.T, fn func(t *testing.T, s Store)) {
	t.Run("sqlite", func(t *testing.T) {
		s, _ := openTestSQLite(t)
		fn(t, s)
	})
	t.Run("postgres", func(t *testing.T) {
		p, _ := openTestPostgres(t)
		fn(t, p)
	})
}

func TestStoreUpsertLastWins(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		r := testRecord(1)
		if err := s.Upsert(ctx, []Record{r}); err != nil {
			t.Fatal(err)
		}
		r2 := r
		r2.Disposition, r2.HangupSide, r2.CaseNumber = "abandoned", "agent", "C-NEW"
		r2.Answer = time.Time{}
		r2.Talk, r2.Satisfaction = 0, ""
		if err := s.Upsert(ctx, []Record{r2}); err != nil {
			t.Fatal(err)
		}
		// Same ID twice in one batch: the later one wins.
		r3 := r2
		r3.Codec = "PCMU"
		if err := s.Upsert(ctx, []Record{r2, r3}); err != nil {
			t.Fatal(err)
		}
		got, err := s.List(ctx, Filter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 {
			t.Fatalf("%d rows, want 1", len(got))
		}
		if got[0] != r3 {
			t.Fatalf("got  %+v\nwant %+v", got[0], r3)
		}
		if err := s.Upsert(ctx, []Record{{Caller: "x"}}); !errors.Is(err, ErrInvalidRecord) {
			t.Fatalf("record without ID: err = %v", err)
		}
	})
}

func TestStoreRoundTrip(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		loc := time.FixedZone("CST", 8*3600)
		r := testRecord(3)
		r.Start = time.Date(2026, 3, 15, 17, 0, 0, 123456789, loc) // ns and a zone
		r.End = time.Time{}                                        // unset stays unset
		r.Talk = 61*time.Second + 1500*time.Nanosecond             // below µs is dropped
		r.Caller = "张三 '; DROP TABLE cdr; --"
		if err := s.Upsert(ctx, []Record{r}); err != nil {
			t.Fatal(err)
		}
		got, err := s.List(ctx, Filter{})
		if err != nil || len(got) != 1 {
			t.Fatal(len(got), err)
		}
		want := r
		want.Start = r.Start.UTC().Truncate(time.Microsecond)
		want.Talk = 61*time.Second + time.Microsecond
		if got[0] != want {
			t.Fatalf("got  %+v\nwant %+v", got[0], want)
		}
		if !got[0].End.IsZero() {
			t.Fatal("zero End came back non-zero")
		}
		// Scan sees the same record.
		var scanned []Record
		if err := s.Scan(ctx, Filter{}, func(r *Record) error { scanned = append(scanned, *r); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(scanned) != 1 || scanned[0] != want {
			t.Fatalf("Scan: %+v", scanned)
		}
		stop := errors.New("stop")
		if err := s.Scan(ctx, Filter{}, func(*Record) error { return stop }); err != stop {
			t.Fatalf("Scan returned %v, want fn's error", err)
		}
	})
}

func TestStoreInsertMissing(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		final := testRecord(1)
		if err := s.Upsert(ctx, []Record{final}); err != nil {
			t.Fatal(err)
		}
		placeholder := final
		placeholder.Disposition = DispositionInterrupted
		other := testRecord(2)
		other.Disposition = DispositionInterrupted
		if err := s.(MissingInserter).InsertMissing(ctx, []Record{placeholder, other}); err != nil {
			t.Fatal(err)
		}
		got, _ := s.List(ctx, Filter{})
		if len(got) != 2 || got[0].Disposition != final.Disposition || got[1].Disposition != DispositionInterrupted {
			t.Fatalf("got %+v", got)
		}
	})
}

func TestStoreList(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		var recs []Record
		for i := 30; i > 0; i-- { // inserted out of order
			recs = append(recs, testRecord(i))
		}
		if err := s.Upsert(ctx, recs); err != nil {
			t.Fatal(err)
		}
		at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Minute) }
		tests := []struct {
			name string
			f    Filter
			want []int // record numbers, in order
		}{
			{"all", Filter{}, seq(1, 30)},
			{"from", Filter{From: at(25)}, seq(25, 30)},
			{"to exclusive", Filter{To: at(4)}, seq(1, 3)},
			{"range", Filter{From: at(10), To: at(13)}, seq(10, 12)},
			{"queue", Filter{Queue: "complaint", To: at(12)}, []int{1, 4, 7, 10}},
			{"disposition", Filter{Disposition: "answered", From: at(20)}, []int{20, 22, 24, 26, 28, 30}},
			{"caller", Filter{Caller: "13800000003"}, []int{3, 10, 17, 24}},
			{"combined", Filter{Caller: "13800000003", Disposition: "answered"}, []int{10, 24}},
			{"limit", Filter{Limit: 2}, []int{1, 2}},
			{"limit over max", Filter{Limit: MaxListLimit + 1, From: at(29)}, []int{29, 30}},
			{"none", Filter{Queue: "nope"}, nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := s.List(ctx, tt.f)
				if err != nil {
					t.Fatal(err)
				}
				var ids []string
				for _, r := range got {
					ids = append(ids, r.ID)
				}
				var want []string
				for _, i := range tt.want {
					want = append(want, testRecord(i).ID)
				}
				if fmt.Sprint(ids) != fmt.Sprint(want) {
					t.Fatalf("got  %v\nwant %v", ids, want)
				}
				// Scan selects the same set.
				n := 0
				if tt.f.Limit == 0 {
					if err := s.Scan(ctx, tt.f, func(*Record) error { n++; return nil }); err != nil || n != len(want) {
						t.Fatalf("Scan: %d records, %v; want %d", n, err, len(want))
					}
				}
			})
		}
	})
}

func testEvent(i int) AgentEvent {
	evs := []string{EventEnterQueue, EventConnect, EventCompleteCaller, EventPause, EventRingNoAnswer}
	return AgentEvent{
		ID:      fmt.Sprintf("ev-%05d", i),
		Time:    t0.Add(time.Duration(i) * time.Second),
		CallID:  fmt.Sprintf("call-%05d", i/5),
		Queue:   []string{"consult", "complaint"}[i%2],
		AgentID: fmt.Sprint(1001 + i%3),
		Event:   evs[i%len(evs)],
		Data1:   fmt.Sprint(i),
		Data2:   "午休",
		Data3:   "3",
		Data4:   "4",
		Data5:   "5",
		NodeID:  "node-1",
	}
}

func TestStoreEvents(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		var evs []AgentEvent
		for i := 19; i >= 0; i-- {
			evs = append(evs, testEvent(i))
		}
		if err := s.AppendEvents(ctx, evs); err != nil {
			t.Fatal(err)
		}
		// A replay (with a changed copy, and a duplicate within the batch)
		// changes nothing: events are immutable once stored.
		changed := testEvent(3)
		changed.Data1 = "changed"
		if err := s.AppendEvents(ctx, []AgentEvent{changed, testEvent(4), testEvent(4)}); err != nil {
			t.Fatal(err)
		}
		all, err := s.ListEvents(ctx, EventFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 20 {
			t.Fatalf("%d events, want 20", len(all))
		}
		for i, e := range all {
			if e != testEvent(i) {
				t.Fatalf("event %d:\n got  %+v\n want %+v", i, e, testEvent(i))
			}
		}
		at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) }
		tests := []struct {
			name string
			f    EventFilter
			want []int
		}{
			{"range", EventFilter{From: at(3), To: at(6)}, []int{3, 4, 5}},
			{"agent", EventFilter{AgentID: "1002", To: at(10)}, []int{1, 4, 7}},
			{"call", EventFilter{CallID: "call-00002"}, seq(10, 14)},
			{"queue", EventFilter{Queue: "complaint", To: at(6)}, []int{1, 3, 5}},
			{"events", EventFilter{Events: []string{EventPause, EventRingNoAnswer}}, []int{3, 4, 8, 9, 13, 14, 18, 19}},
			{"limit", EventFilter{Limit: 2, From: at(17)}, []int{17, 18}},
		}
		for _, tt := range tests {
			got, err := s.ListEvents(ctx, tt.f)
			if err != nil {
				t.Fatal(tt.name, err)
			}
			var ids, want []string
			for _, e := range got {
				ids = append(ids, e.ID)
			}
			for _, i := range tt.want {
				want = append(want, testEvent(i).ID)
			}
			if fmt.Sprint(ids) != fmt.Sprint(want) {
				t.Errorf("%s: got %v, want %v", tt.name, ids, want)
			}
		}
		if err := s.AppendEvents(ctx, []AgentEvent{{ID: "x", Event: EventLogin}}); !errors.Is(err, ErrInvalidEvent) {
			t.Fatalf("event without time: %v", err)
		}
	})
}

func TestPostgresMigrations(t *testing.T) {
	p, dsn := openTestPostgres(t)
	ctx := context.Background()
	var n, v int
	if err := p.pool.QueryRow(ctx, `SELECT COUNT(*), MAX(version) FROM schema_version`).Scan(&n, &v); err != nil {
		t.Fatal(err)
	}
	if n != PostgresSchemaVersion() || v != PostgresSchemaVersion() || v != SQLiteSchemaVersion() {
		t.Fatalf("schema_version rows=%d max=%d, want %d (= SQLite's %d)", n, v, PostgresSchemaVersion(), SQLiteSchemaVersion())
	}
	if err := p.Upsert(ctx, []Record{testRecord(1)}); err != nil {
		t.Fatal(err)
	}
	p.Close()
	// Re-open: nothing runs again, the data stays.
	p2, err := OpenPostgres(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	if err := p2.pool.QueryRow(ctx, `SELECT COUNT(*) FROM schema_version`).Scan(&n); err != nil || n != PostgresSchemaVersion() {
		t.Fatalf("re-open: %d schema_version rows, %v", n, err)
	}
	if got, err := p2.List(ctx, Filter{}); err != nil || len(got) != 1 {
		t.Fatalf("after re-open: %d records, %v", len(got), err)
	}
	// A newer schema is refused with a clear error.
	future := PostgresSchemaVersion() + 1
	if _, err := p2.pool.Exec(ctx, `INSERT INTO schema_version VALUES ($1, 'future.sql', now())`, future); err != nil {
		t.Fatal(err)
	}
	_, err = OpenPostgres(ctx, dsn)
	if !errors.Is(err, ErrSchemaTooNew) || !strings.Contains(err.Error(), fmt.Sprintf("schema version %d is newer than this build", future)) {
		t.Fatalf("newer schema: err = %v", err)
	}
}

func TestPostgresConcurrentOpen(t *testing.T) {
	dsn := newPGSchema(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			p, err := OpenPostgres(context.Background(), dsn)
			if err == nil {
				p.Close()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestOpenChoosesStore(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir()+"/cdr.db")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.(*SQLite); !ok {
		t.Fatalf("path opened %T", s)
	}
	s.Close()
	// A closed port fails fast with an error naming host and database, not
	// the password.
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = Open(ctx, "postgres://u:secret@127.0.0.1:1/nodb?sslmode=disable&connect_timeout=2")
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1/nodb") || strings.Contains(err.Error(), "secret") {
		t.Fatalf("closed port: err = %v", err)
	}
	_, err = Open(ctx, "postgres://u:secret@127.0.0.1:1/nodb?sslmode=bogus")
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Fatalf("bad DSN: err = %v", err)
	}
	requirePostgres(t)
	dsn := newPGSchema(t)
	s, err = Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, ok := s.(*Postgres); !ok {
		t.Fatalf("DSN opened %T", s)
	}
}
