package cdr

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"
)

// benchWriter measures sustained rows/s through a Writer into s: the
// producer keeps the queue from overflowing (so the journal is not what is
// measured) and the clock stops when Close has stored everything.
func benchWriter(b *testing.B, s Store) {
	w, err := NewWriter(s, WriterOptions{JournalDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	r := testRecord(1)
	ids := make([]string, 0, 1<<20)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if n >= len(ids) { // IDs made outside the timer
			b.StopTimer()
			for range 1 << 14 {
				ids = append(ids, fmt.Sprintf("bench-%09d", len(ids)))
			}
			b.StartTimer()
		}
		for len(w.queue) > DefaultQueueSize*3/4 {
			runtime.Gosched()
		}
		r.ID = ids[n]
		r.Start = t0.Add(time.Duration(n) * time.Millisecond)
		w.Write(r)
		n++
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := w.Close(ctx); err != nil {
		b.Fatal(err)
	}
	st := w.Stats()
	if st.Written != uint64(n) {
		b.Fatalf("%d written of %d", st.Written, n)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(st.Journaled), "journaled")
}

func BenchmarkWriterSQLite(b *testing.B) {
	s, _ := openTestSQLite(b)
	benchWriter(b, s)
}

func BenchmarkWriterPostgres(b *testing.B) {
	p, _ := openTestPostgres(b)
	benchWriter(b, p)
}

// BenchmarkReportSQLite1M: the report of a month of 1,000,000 calls
// (about a large city's 12345 volume) read from SQLite.
func BenchmarkReportSQLite1M(b *testing.B) {
	s, _ := openTestSQLite(b)
	ctx := context.Background()
	const days, perDay = 30, 1_000_000 / 30
	day0 := time.Date(2026, 3, 1, 0, 0, 0, 0, cst)
	total := 0
	for d := range days {
		n := perDay
		if d == days-1 {
			n = 1_000_000 - total
		}
		recs := syntheticCalls(n, day0.AddDate(0, 0, d), uint64(d))
		for len(recs) > 0 {
			k := min(len(recs), 5000)
			if err := s.Upsert(ctx, recs[:k]); err != nil {
				b.Fatal(err)
			}
			recs = recs[k:]
		}
		total += n
		var evs []AgentEvent
		for _, e := range syntheticAgentEvents(day0.AddDate(0, 0, d)) {
			e.ID = fmt.Sprintf("d%d-%s", d, e.ID)
			evs = append(evs, e)
		}
		if err := s.AppendEvents(ctx, evs); err != nil {
			b.Fatal(err)
		}
	}
	opts := ReportOptions{From: day0, To: day0.AddDate(0, 0, days), Location: cst, By: ByDay}
	b.ReportAllocs()
	var rep Report
	for b.Loop() {
		var err error
		if rep, err = ReportFromStore(ctx, s, opts); err != nil {
			b.Fatal(err)
		}
	}
	if rep.Total.Calls != total || len(rep.Groups) != days {
		b.Fatalf("report of %d calls in %d days, want %d in %d", rep.Total.Calls, len(rep.Groups), total, days)
	}
	b.ReportMetric(float64(total), "calls")
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/report")
}
