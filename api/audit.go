package api

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hotline12345/hotline/cdr"
)

// audit serves GET /api/v1/audit?from=&to=&limit=&format=json|csv (admin):
// the audit log, oldest first.
func (a *api) audit(w http.ResponseWriter, r *http.Request) {
	var f cdr.AuditFilter
	var format string
	var err error
	if f.From, f.To, f.Limit, format, err = a.listParams(r.URL.Query()); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	es, err := a.cfg.AuditLog.ListAudit(r.Context(), f)
	writeList(a, w, "audit", format, es, err, writeAuditCSV)
}

func writeAuditCSV(w io.Writer, es []cdr.AuditEntry) error {
	c := csv.NewWriter(w)
	c.Write([]string{"time", "who", "role", "source", "action", "target", "result"})
	for _, e := range es {
		c.Write([]string{e.Time.UTC().Format(time.RFC3339Nano), e.Who, e.Role, e.Source, e.Action, e.Target, strconv.Itoa(e.Result)})
	}
	c.Flush()
	return c.Error()
}

// Bounds of the AuditWriter.
const (
	auditQueue      = 4096 // rows waiting for the writer (and while the database is down); beyond, dropped and counted
	auditBatch      = 256
	auditTimeout    = 5 * time.Second
	auditRetryDelay = time.Second
)

// AuditWriter writes audit rows to the records database on its own
// goroutine: a request only queues its row (never blocks); while the
// database is down rows wait (up to a bound) and failures are logged and
// counted, never panicking.
type AuditWriter struct {
	store   cdr.AuditLog
	log     *slog.Logger
	ch      chan cdr.AuditEntry
	done    chan struct{}
	once    sync.Once
	drops   atomic.Int64
	dropped prometheus.Counter
	failed  prometheus.Counter
	written prometheus.Counter
}

// NewAuditWriter starts a writer to store; its counters go on reg (may be nil).
func NewAuditWriter(store cdr.AuditLog, log *slog.Logger, reg prometheus.Registerer) *AuditWriter {
	w := &AuditWriter{
		store: store, log: log, ch: make(chan cdr.AuditEntry, auditQueue), done: make(chan struct{}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "hotline_audit_dropped_total", Help: "Audit rows lost: the queue or the backlog was full (the database was down or slow)."}),
		failed:  prometheus.NewCounter(prometheus.CounterOpts{Name: "hotline_audit_write_failures_total", Help: "Failed writes of audit rows to the records database (retried)."}),
		written: prometheus.NewCounter(prometheus.CounterOpts{Name: "hotline_audit_rows_total", Help: "Audit rows written to the records database."}),
	}
	if reg != nil {
		reg.MustRegister(w.dropped, w.failed, w.written)
	}
	go w.run()
	return w
}

// Audit queues e; it never blocks: a full queue drops e and counts it.
func (w *AuditWriter) Audit(e cdr.AuditEntry) {
	defer func() { recover() }() // after Close: a send on the closed channel is dropped
	select {
	case w.ch <- e:
	default:
		w.dropped.Inc()
		if n := w.drops.Add(1); n == 1 || n%1000 == 0 { // a log line per thousand, not per row
			w.log.Error("audit rows dropped: queue full (the records database is down or slow)", "dropped", n, "action", e.Action, "who", e.Who)
		}
	}
}

// Close writes what is queued (trying until ctx ends) and stops the writer.
func (w *AuditWriter) Close(ctx context.Context) {
	w.once.Do(func() { close(w.ch) })
	select {
	case <-w.done:
	case <-ctx.Done():
		w.log.Error("audit rows not all written at shutdown", "error", ctx.Err())
	}
}

func (w *AuditWriter) run() {
	defer close(w.done)
	var pending []cdr.AuditEntry
	open := true
	for open || len(pending) > 0 {
		if len(pending) == 0 {
			e, ok := <-w.ch
			if !ok {
				return
			}
			pending = append(pending, e)
		}
	drain:
		for len(pending) < auditBatch && open {
			select {
			case e, ok := <-w.ch:
				if !ok {
					open = false
					break drain
				}
				pending = append(pending, e)
			default:
				break drain
			}
		}
		n := min(len(pending), auditBatch)
		if err := w.write(pending[:n]); err != nil {
			w.failed.Inc()
			w.log.Error("audit rows not written; retrying", "rows", len(pending), "error", err)
			if !open {
				w.dropped.Add(float64(len(pending)))
				return // shutting down with the database down: the count says what was lost
			}
			time.Sleep(auditRetryDelay)
			continue
		}
		w.written.Add(float64(n))
		pending = pending[n:]
	}
}

// write stores es; a panic of the store is an error like any other.
func (w *AuditWriter) write(es []cdr.AuditEntry) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("audit store panicked: %v", p)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), auditTimeout)
	defer cancel()
	return w.store.AppendAudit(ctx, es)
}
