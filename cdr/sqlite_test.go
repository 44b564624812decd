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
		Disposition: []Disposition{DispositionAnswered, DispositionAbandoned}[i%2],
		HangupSide:  "caller",
		HangupCause: "BYE",
		SIPStatus:   200,
		Codec:       "PCMA",
		NodeID:      "node-1",

		RingAttempts:  1 + i%3,
		Talk:          60 * time.Second,
		Hold:          time.Duration(i%4) * time.Second,
		WrapUp:        10 * time.Second,
		Transfers:     i % 2,
		RecordingFile: fmt.Sprintf("recordings/2026/03/15/call-%05d.wav", i),
		SurveyAnswers: "1,2",
		Satisfaction:  []string{SatisfactionSatisfied, SatisfactionBasicallySatisfied, ""}[i%3],
		Visits:        []string{"consult/1001", "complaint/1002>consult/1003", "business>consult/1001"}[i%3],
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
	if _, err := s.db.Exec(`INSERT INTO schema_version (version, name, applied_at) VALUES (?, 'future.sql', '')`, SQLiteSchemaVersion()+1); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err := OpenSQLite(path)
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("err = %v, want ErrSchemaTooNew", err)
	}
	want := fmt.Sprintf("%s: schema version %d is newer than this build (%d); upgrade hotlined", path, SQLiteSchemaVersion()+1, SQLiteSchemaVersion())
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %q, want it to contain %q", err, want)
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
