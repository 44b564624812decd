package cdr

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 15, 9, 0, 0, 0, time.UTC)

func openTestSQLite(t testing.TB) (*SQLite, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "data", "cdr.db")
	s, err := OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func testRecord(i int) Record {
	start := t0.Add(time.Duration(i) * time.Minute)
	return Record{
		ID:          fmt.Sprintf("call-%05d", i),
		SIPCallID:   fmt.Sprintf("sip-%d@127.0.0.1", i),
		Direction:   "inbound",
		Trunk:       "loopback",
		Caller:      fmt.Sprintf("1380000%04d", i%7),
		Called:      "12345",
		Start:       start,
		Answer:      start.Add(2 * time.Second),
		End:         start.Add(95 * time.Second),
		IVRPath:     "main>2>complaint",
		CaseNumber:  fmt.Sprintf("C2026%06d", i),
		Queue:       []string{"consult", "complaint", "business"}[i%3],
		EnqueueTime: start.Add(10 * time.Second),
		Agent:       fmt.Sprint(1001 + i%10),
		Connect:     start.Add(25 * time.Second),
		Disposition: []string{"answered", "abandoned"}[i%2],
		HangupSide:  "caller",
		HangupCause: "BYE",
		SIPStatus:   200,
		Codec:       "PCMA",
		NodeID:      "node-1",
	}
}

func TestSQLiteMigrations(t *testing.T) {
	s, path := openTestSQLite(t)
	versions := func(s *SQLite) (n, max int) {
		t.Helper()
		if err := s.db.QueryRow(`SELECT COUNT(*), MAX(version) FROM schema_version`).Scan(&n, &max); err != nil {
			t.Fatal(err)
		}
		return n, max
	}
	if n, v := versions(s); n != SQLiteSchemaVersion() || v != SQLiteSchemaVersion() || v < 1 {
		t.Fatalf("schema_version rows=%d max=%d, want %d", n, v, SQLiteSchemaVersion())
	}
	var mode string
	if err := s.db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q, %v; want wal", mode, err)
	}
	for _, idx := range []string{"cdr_start", "cdr_queue", "cdr_disposition", "cdr_caller"} {
		var name string
		if err := s.db.QueryRow(`SELECT name FROM sqlite_master WHERE type='index' AND name=?`, idx).Scan(&name); err != nil {
			t.Errorf("index %s: %v", idx, err)
		}
	}
	if err := s.Upsert(context.Background(), []Record{testRecord(1)}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// Re-open: no migration runs again, data stays.
	s2, err := OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if n, _ := versions(s2); n != SQLiteSchemaVersion() {
		t.Fatalf("re-open added schema_version rows: %d", n)
	}
	got, err := s2.List(context.Background(), Filter{})
	if err != nil || len(got) != 1 {
		t.Fatalf("after re-open: %d records, %v", len(got), err)
	}
}

func TestSQLiteNewerSchema(t *testing.T) {
	s, path := openTestSQLite(t)
	if _, err := s.db.Exec(`INSERT INTO schema_version (version, name, applied_at) VALUES (7, '0007_future.sql', '')`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err := OpenSQLite(path)
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("err = %v, want ErrSchemaTooNew", err)
	}
	want := fmt.Sprintf("%s: schema version 7 is newer than this build (%d); upgrade hotlined", path, SQLiteSchemaVersion())
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %q, want it to contain %q", err, want)
	}
}

func TestSQLiteUpsertLastWins(t *testing.T) {
	s, _ := openTestSQLite(t)
	ctx := context.Background()
	r := testRecord(1)
	if err := s.Upsert(ctx, []Record{r}); err != nil {
		t.Fatal(err)
	}
	r2 := r
	r2.Disposition, r2.HangupSide, r2.CaseNumber = "abandoned", "agent", "C-NEW"
	r2.Answer = time.Time{}
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
}

func TestSQLiteRoundTrip(t *testing.T) {
	s, _ := openTestSQLite(t)
	ctx := context.Background()
	loc := time.FixedZone("CST", 8*3600)
	r := testRecord(3)
	r.Start = time.Date(2026, 3, 15, 17, 0, 0, 123456789, loc) // ns and a zone
	r.End = time.Time{}                                        // unset stays unset
	if err := s.Upsert(ctx, []Record{r}); err != nil {
		t.Fatal(err)
	}
	got, err := s.List(ctx, Filter{})
	if err != nil || len(got) != 1 {
		t.Fatal(len(got), err)
	}
	want := r
	want.Start = r.Start.UTC().Truncate(time.Microsecond)
	if got[0] != want {
		t.Fatalf("got  %+v\nwant %+v", got[0], want)
	}
	if !got[0].End.IsZero() {
		t.Fatal("zero End came back non-zero")
	}
}

func TestSQLiteInsertMissing(t *testing.T) {
	s, _ := openTestSQLite(t)
	ctx := context.Background()
	final := testRecord(1)
	if err := s.Upsert(ctx, []Record{final}); err != nil {
		t.Fatal(err)
	}
	placeholder := final
	placeholder.Disposition = DispositionInterrupted
	other := testRecord(2)
	other.Disposition = DispositionInterrupted
	if err := s.InsertMissing(ctx, []Record{placeholder, other}); err != nil {
		t.Fatal(err)
	}
	got, _ := s.List(ctx, Filter{})
	if len(got) != 2 || got[0].Disposition != final.Disposition || got[1].Disposition != DispositionInterrupted {
		t.Fatalf("got %+v", got)
	}
}

func TestSQLiteList(t *testing.T) {
	s, _ := openTestSQLite(t)
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
		})
	}
	if (Filter{}).limit() != DefaultListLimit || (Filter{Limit: 1e9}).limit() != MaxListLimit {
		t.Fatal("limit defaults")
	}
}

func seq(a, b int) []int {
	var s []int
	for i := a; i <= b; i++ {
		s = append(s, i)
	}
	return s
}

func TestSQLiteUnwritable(t *testing.T) {
	dir := t.TempDir()
	// A path under a regular file fails even for root.
	afile := filepath.Join(dir, "afile")
	if err := os.WriteFile(afile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(afile, "cdr.db")
	if _, err := OpenSQLite(bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("path under a file: err = %v, want one naming %s", err, bad)
	}

	if os.Geteuid() == 0 {
		t.Log("running as root: permission bits are not enforced; read-only directory and file cases skipped")
		return
	}
	ro := filepath.Join(dir, "ro")
	if err := os.Mkdir(ro, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(ro, 0o700) })
	p := filepath.Join(ro, "cdr.db")
	if _, err := OpenSQLite(p); err == nil || !strings.Contains(err.Error(), p) {
		t.Fatalf("read-only dir: err = %v, want one naming %s", err, p)
	}

	rw := filepath.Join(dir, "rw", "cdr.db")
	s, err := OpenSQLite(rw)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := os.Chmod(rw, 0o400); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenSQLite(rw); err == nil || !strings.Contains(err.Error(), rw) {
		t.Fatalf("read-only file: err = %v, want one naming %s", err, rw)
	}
}

func BenchmarkSQLiteUpsertBatch(b *testing.B) {
	s, _ := openTestSQLite(b)
	ctx := context.Background()
	const batch = 500
	recs := make([]Record, batch)
	for i := range recs {
		recs[i] = testRecord(i)
	}
	ids := make([]string, 0, 1<<16)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		for i := range recs {
			if n >= len(ids) { // IDs made outside the timer
				b.StopTimer()
				for range 1 << 14 {
					ids = append(ids, fmt.Sprintf("bench-%09d", len(ids)))
				}
				b.StartTimer()
			}
			recs[i].ID = ids[n]
			recs[i].Start = t0.Add(time.Duration(n) * time.Millisecond) // calls arrive in time order
			n++
		}
		if err := s.Upsert(ctx, recs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "rows/s")
}
