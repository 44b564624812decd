package api

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/hotline12345/hotline/cdr"
)

// flakyAudit is an audit store that fails (or panics) while down.
type flakyAudit struct {
	mu    sync.Mutex
	down  bool
	panic bool
	rows  []cdr.AuditEntry
	tries int
}

func (f *flakyAudit) AppendAudit(_ context.Context, es []cdr.AuditEntry) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tries++
	if f.panic {
		f.panic = false
		panic("driver bug")
	}
	if f.down {
		return errors.New("database is down")
	}
	f.rows = append(f.rows, es...)
	return nil
}

func (f *flakyAudit) ListAudit(context.Context, cdr.AuditFilter) ([]cdr.AuditEntry, error) {
	return nil, nil
}

func (f *flakyAudit) state() (rows, tries int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.rows), f.tries
}

func (f *flakyAudit) setDown(down bool) {
	f.mu.Lock()
	f.down = down
	f.mu.Unlock()
}

func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10 s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The audit writer never blocks a request: with the database down (or its
// driver panicking) rows wait, failures are counted, a full queue drops and
// counts, and the rows are written when the database is back.
func TestAuditWriterSurvivesDatabaseDown(t *testing.T) {
	store := &flakyAudit{down: true, panic: true}
	reg := prometheus.NewRegistry()
	w := NewAuditWriter(store, slog.New(slog.DiscardHandler), reg)
	start := time.Now()
	for i := range auditQueue + 500 {
		w.Audit(cdr.AuditEntry{Time: time.Now(), Action: "POST /x", Result: 200 + i%2})
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("queueing %d rows with the database down took %v", auditQueue+500, took)
	}
	waitUntil(t, "failures counted", func() bool { return testutil.ToFloat64(w.failed) >= 2 }) // the panic, then an error
	if d := testutil.ToFloat64(w.dropped); d < 1 {
		t.Errorf("dropped = %v, want the rows beyond the queue counted", d)
	}
	store.setDown(false)
	waitUntil(t, "every row written or counted dropped after recovery", func() bool {
		n, _ := store.state() // (n >= auditQueue alone came true with rows still in the channel)
		return float64(n) == testutil.ToFloat64(w.written) && float64(n)+testutil.ToFloat64(w.dropped) == auditQueue+500
	})
	n, _ := store.state()
	if got := float64(n) + testutil.ToFloat64(w.dropped); got != auditQueue+500 {
		t.Errorf("written %d + dropped %v != queued %d", n, testutil.ToFloat64(w.dropped), auditQueue+500)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	w.Close(ctx)
	w.Audit(cdr.AuditEntry{Action: "after close"}) // dropped, no panic
}
