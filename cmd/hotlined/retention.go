package main

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/hotline12345/hotline/callback"
	"github.com/hotline12345/hotline/cdr"
)

// defaultRetentionFirstRun: the retention job's first run comes this long after start, once
// the journal's replay and the first calls are through.
const defaultRetentionFirstRun = time.Minute

// retentionRun is the retention job's goroutine: made with the app, started by serve,
// stopped by close before the stores close.
type retentionRun struct {
	job     *cdr.Retention
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}
	started atomic.Bool
}

// newRetention makes the daily retention job when records.retention_days is set.
func (a *app) newRetention(loc *time.Location, firstRun time.Duration) error {
	days := a.cfg.Records.RetentionDays
	if days == 0 {
		a.log.Info("retention: records are kept forever (records.retention_days: 0)")
		return nil
	}
	if firstRun == 0 {
		firstRun = defaultRetentionFirstRun
	}
	tables := cdr.RetentionTables(a.store)
	if a.campaigns != nil {
		tables = append(tables, callback.RetentionTables(a.campaigns)...)
	}
	job, err := cdr.NewRetention(cdr.RetentionConfig{
		Days: days, At: a.cfg.Records.RetentionTime(), Location: loc, FirstRun: firstRun,
		Tables: tables, Logger: a.log.With("caller", "retention"), Registerer: a.reg,
	})
	if err != nil {
		return err
	}
	r := &retentionRun{job: job, done: make(chan struct{})}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	a.retention = r
	a.log.Info("retention: records, agent events and finished campaign targets older than the retention period are deleted daily",
		"retention_days", days, "at", a.cfg.Records.RetentionAt, "timezone", loc.String())
	return nil
}

// runRetention starts the job (once; not after a stop).
func (a *app) runRetention() {
	r := a.retention
	if r == nil || r.ctx.Err() != nil || !r.started.CompareAndSwap(false, true) {
		return
	}
	go func() { defer close(r.done); r.job.Run(r.ctx) }()
}

// stopRetention stops the job and waits for its current batch (either order with
// runRetention: a stop first leaves the job nothing to do).
func (a *app) stopRetention() {
	r := a.retention
	if r == nil {
		return
	}
	r.cancel()
	if !r.started.Load() {
		return
	}
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		a.log.Error("the retention job did not stop in time")
	}
}
