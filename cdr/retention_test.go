package cdr

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// Rows older than the retention period go, in batches; rows inside it —
// answered calls above all — stay exactly as they were, wrap-ups included.
func TestRetentionDeletesOnlyOldRows(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		now := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
		cutoff := now.AddDate(0, 0, -30)
		var old, kept []Record
		var evs []AgentEvent
		for i := range 23 { // 23 old records: batches of 5 need five transactions
			r := testRecord(i)
			r.ID = fmt.Sprintf("old-%02d", i)
			r.Start = cutoff.Add(-time.Duration(i+1) * time.Hour)
			r.Disposition = DispositionAnswered
			old = append(old, r)
			evs = append(evs, AgentEvent{ID: "old-ev-" + r.ID, Time: r.Start, CallID: r.ID, AgentID: "1001", Event: EventConnect})
		}
		for i := range 4 {
			r := testRecord(100 + i)
			r.ID = fmt.Sprintf("new-%02d", i)
			r.Start = cutoff.Add(time.Duration(i)*time.Hour + time.Second) // the first is one second inside the window
			r.Disposition = DispositionAnswered
			r.WrapUp = 0
			kept = append(kept, r)
			evs = append(evs, AgentEvent{ID: "new-ev-" + r.ID, Time: r.Start, CallID: r.ID, AgentID: "1001", Event: EventConnect})
		}
		// Wrap-ups of an old call and of a kept one.
		evs = append(evs,
			AgentEvent{ID: "old-wrap", Time: old[0].Start, CallID: old[0].ID, AgentID: "1001", Event: EventWrapUpEnd, Data1: "7.000"},
			AgentEvent{ID: "new-wrap", Time: kept[0].Start.Add(time.Minute), CallID: kept[0].ID, AgentID: "1001", Event: EventWrapUpEnd, Data1: "9.500"})
		if err := s.Upsert(ctx, append(append([]Record{}, old...), kept...)); err != nil {
			t.Fatal(err)
		}
		if err := s.AppendEvents(ctx, evs); err != nil {
			t.Fatal(err)
		}
		before, err := s.List(ctx, Filter{From: cutoff})
		if err != nil || len(before) != len(kept) {
			t.Fatalf("kept records before the run: %d, %v", len(before), err)
		}

		reg := prometheus.NewRegistry()
		var purges int
		tables := RetentionTables(s)
		for i := range tables {
			purge := tables[i].Purge
			tables[i].Purge = func(ctx context.Context, before time.Time, limit int) (int64, error) {
				purges++
				return purge(ctx, before, limit)
			}
		}
		job, err := NewRetention(RetentionConfig{Days: 30, Batch: 5, Pause: time.Millisecond, Tables: tables,
			Registerer: reg, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		got, err := job.RunOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got["cdr"] != 23 || got["agent_events"] != 24 {
			t.Fatalf("deleted %v, want cdr 23, agent_events 24", got)
		}
		if purges < 5+5 {
			t.Fatalf("%d delete transactions; batches of 5 need at least 10", purges)
		}
		if v := testutil.ToFloat64(job.deleted.WithLabelValues("cdr")); v != 23 {
			t.Fatalf("hotline_retention_deleted_total{table=cdr} = %v", v)
		}
		if n, _ := testutil.GatherAndCount(reg, "hotline_retention_deleted_total"); n != len(tables) {
			t.Fatalf("%d series of hotline_retention_deleted_total, want one per table (%d)", n, len(tables))
		}
		if got["outbox"] == 0 { // the old records' feed events carry their numbers too
			t.Fatalf("deleted %v: no outbox events", got)
		}

		after, err := s.List(ctx, Filter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(after) != len(kept) {
			t.Fatalf("%d records left, want the %d inside the window", len(after), len(kept))
		}
		for i := range after {
			want := before[i]
			if i == 0 {
				want.WrapUp = 9500 * time.Millisecond
			}
			if after[i] != want {
				t.Fatalf("kept record changed:\n got %+v\nwant %+v", after[i], want)
			}
		}
		left, err := s.ListEvents(ctx, EventFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(left) != len(kept)+1 {
			t.Fatalf("%d events left, want %d", len(left), len(kept)+1)
		}
		for _, e := range left {
			if e.Time.Before(cutoff) {
				t.Fatalf("old event kept: %+v", e)
			}
		}
		// The old call's wrap-up went with it: storing the record again
		// (a late journal replay) does not resurrect its wrap-up.
		if err := s.Upsert(ctx, old[:1]); err != nil {
			t.Fatal(err)
		}
		re, _ := s.List(ctx, Filter{To: cutoff})
		if len(re) != 1 || re[0].WrapUp != old[0].WrapUp {
			t.Fatalf("replayed old record %+v, want its own wrap-up %v", re, old[0].WrapUp)
		}

		// A second run finds only that one.
		got, err = job.RunOnce(ctx)
		if err != nil || got["cdr"] != 1 || got["agent_events"] != 0 {
			t.Fatalf("second run: %v, %v", got, err)
		}
	})
}

func TestRetentionConfigAndSchedule(t *testing.T) {
	for _, c := range []RetentionConfig{{Days: 0}, {Days: -1}, {Days: 30, At: 24 * time.Hour}, {Days: 30, At: -time.Minute}} {
		if _, err := NewRetention(c); !errors.Is(err, ErrRetentionConfig) {
			t.Errorf("NewRetention(%+v): %v, want ErrRetentionConfig", c, err)
		}
	}
	sh, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	job, err := NewRetention(RetentionConfig{Days: 1, At: 3*time.Hour + 30*time.Minute, Location: sh})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ now, want string }{
		{"2026-06-01T02:00:00+08:00", "2026-06-01T03:30:00+08:00"},
		{"2026-06-01T03:30:00+08:00", "2026-06-02T03:30:00+08:00"}, // strictly after
		{"2026-06-01T20:00:00Z", "2026-06-03T03:30:00+08:00"},      // 04:00 on the 2nd in Shanghai
		{"2026-12-31T23:59:00+08:00", "2027-01-01T03:30:00+08:00"},
	} {
		now, _ := time.Parse(time.RFC3339, tc.now)
		want, _ := time.Parse(time.RFC3339, tc.want)
		if got := job.NextRun(now); !got.Equal(want) {
			t.Errorf("NextRun(%s) = %s, want %s", tc.now, got, tc.want)
		}
	}
}

// A failing table is reported and does not stop the others.
func TestRetentionTableFailure(t *testing.T) {
	boom := errors.New("boom")
	var second int
	job, err := NewRetention(RetentionConfig{Days: 1, Tables: []RetentionTable{
		{"a", func(context.Context, time.Time, int) (int64, error) { return 0, boom }},
		{"b", func(context.Context, time.Time, int) (int64, error) { second++; return 3, nil }},
	}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := job.RunOnce(context.Background())
	if !errors.Is(err, boom) || second != 1 || got["b"] != 3 {
		t.Fatalf("RunOnce = %v, %v (second table ran %d times)", got, err, second)
	}
}

// What the job deletes from SQLite is gone from the file, not left in free pages.
func TestRetentionSQLiteOverwritesDeletedRows(t *testing.T) {
	s, path := openTestSQLite(t)
	ctx := context.Background()
	now := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	var recs []Record
	for i := range 200 {
		r := testRecord(i)
		r.Start, r.Caller = now.AddDate(0, 0, -100).Add(time.Duration(i)*time.Minute), "13912345678"
		recs = append(recs, r)
	}
	kept := testRecord(999)
	kept.Start, kept.Caller = now.Add(-time.Hour), "13800138000"
	if err := s.Upsert(ctx, append(recs, kept)); err != nil {
		t.Fatal(err)
	}
	job, err := NewRetention(RetentionConfig{Days: 30, Batch: 64, Pause: time.Millisecond, Tables: RetentionTables(s),
		Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := job.RunOnce(ctx); err != nil || got["cdr"] != 200 {
		t.Fatalf("RunOnce: %v, %v", got, err)
	}
	if _, err := s.db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{path, path + "-wal"} {
		b, err := os.ReadFile(f)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		if n := bytes.Count(b, []byte("13912345678")); n > 0 {
			t.Fatalf("%s still holds the deleted number %d times", f, n)
		}
		if f == path && !bytes.Contains(b, []byte("13800138000")) {
			t.Fatalf("%s lacks the kept record: the test reads the wrong file", f)
		}
	}
}
