package main

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotline12345/hotline/cdr"
)

// logTee keeps the server's log for the test to read and shows it in the test log.
type logTee struct {
	mu  sync.Mutex
	buf bytes.Buffer
	tw  testWriter
}

func newLogTee(t *testing.T) *logTee { return &logTee{tw: newTestWriter(t)} }

func (l *logTee) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.buf.Write(p)
	l.mu.Unlock()
	return l.tw.Write(p)
}

func (l *logTee) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// metricValue polls /metrics until the sample line matching re has the value want.
func waitMetric(t *testing.T, s *testServer, sample string, want float64) {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`)
	deadline := time.Now().Add(15 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		body := httpGet(t, "http://"+s.httpAddr()+"/metrics", 200)
		if m := re.FindStringSubmatch(body); m != nil {
			last = m[1]
			if last == fmt.Sprint(want) {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("metric %s = %q, want %v", sample, last, want)
}

// records.retention_days in the server's config: shortly after start the job deletes the
// records and agent events older than the period, keeps the recent ones (answered calls
// among them), counts what it deleted in hotline_retention_deleted_total and says so.
func TestRetentionThroughServer(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"sqlite", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			dataDir := filepath.Join(t.TempDir(), "data")
			where := filepath.Join(dataDir, "cdr.db")
			if kind == "postgres" {
				where = pgSchema(t)
			}
			testRetentionThroughServer(t, dataDir, where)
		})
	}
}

// testRetentionThroughServer runs the test on the store where names (a SQLite file in
// dataDir or a PostgreSQL DSN).
func testRetentionThroughServer(t *testing.T, dataDir, where string) {
	ctx := context.Background()
	store, err := cdr.Open(ctx, where)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	var recs []cdr.Record
	var evs []cdr.AgentEvent
	for i, age := range []time.Duration{400 * 24 * time.Hour, 31 * 24 * time.Hour, 30*24*time.Hour + time.Hour, 29 * 24 * time.Hour, time.Hour} {
		start := now.Add(-age)
		id := fmt.Sprintf("call-%d", i)
		recs = append(recs, cdr.Record{ID: id, Caller: "13800138000", Called: "12345", Start: start, Answer: start.Add(time.Second),
			Connect: start.Add(5 * time.Second), End: start.Add(time.Minute), Agent: "1001", Queue: "consult", Disposition: cdr.DispositionAnswered})
		evs = append(evs, cdr.AgentEvent{ID: "ev-" + id, Time: start.Add(5 * time.Second), CallID: id, AgentID: "1001", Queue: "consult", Event: cdr.EventConnect})
	}
	if err := store.Upsert(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if err := store.AppendEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	store.Close()

	logs := newLogTee(t)
	yaml := testConfig(t, "  retention_days: 0 ", "  retention_days: 30 ")
	s := startServerLog(t, yaml, logs, func(o *options) {
		o.DataDir, o.RetentionFirstRun = dataDir, 100*time.Millisecond
		if !strings.HasSuffix(where, ".db") {
			o.CDRDSN = where
		}
	})
	waitMetric(t, s, `hotline_retention_deleted_total{table="cdr"}`, 3)
	waitMetric(t, s, `hotline_retention_deleted_total{table="agent_events"}`, 3)
	waitMetric(t, s, `hotline_retention_deleted_total{table="campaign_targets"}`, 0)

	left, err := s.store.List(ctx, cdr.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 2 || left[0].ID != "call-3" || left[1].ID != "call-4" || left[0].Disposition != cdr.DispositionAnswered {
		t.Fatalf("records left %+v, want call-3 and call-4", left)
	}
	left2, err := s.store.ListEvents(ctx, cdr.EventFilter{})
	if err != nil || len(left2) != 2 {
		t.Fatalf("events left %+v, %v", left2, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "retention: deleted rows older than the retention period") {
		if time.Now().After(deadline) {
			t.Fatal("no retention log line")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if l := logs.String(); !strings.Contains(l, "days=30") || !strings.Contains(l, "cdr=3") || !strings.Contains(l, "agent_events=3") {
		t.Fatalf("retention log line lacks its figures:\n%s", l)
	}
}
