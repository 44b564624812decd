package main

import (
	"time"

	"github.com/hotline12345/hotline/callback"
	"github.com/hotline12345/hotline/cdr"
)

// defaultRetentionFirstRun: the retention job's first run comes this long after start, once
// the journal's replay and the first calls are through.
const defaultRetentionFirstRun = time.Minute

// retentionJob is the retention job and its goroutine.
type retentionJob struct {
	job *cdr.Retention
	run *background
}

// newRetention makes the daily retention job when records.retention_days is set; it runs
// from serve and stops in close, before the stores close.
func (a *app) newRetention(loc *time.Location, firstRun time.Duration) error {
	days := a.cfg.Records.RetentionDays
	if days == 0 {
		a.log.Info("retention: records are kept forever (records.retention_days: 0)")
		return nil
	}
	if firstRun == 0 {
		firstRun = defaultRetentionFirstRun
	}
	// The recordings' files first: the records name them.
	tables := append([]cdr.RetentionTable{cdr.RecordingRetention(a.store, a.cfg.DataDir)}, cdr.RetentionTables(a.store)...)
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
	a.retention = &retentionJob{job: job, run: newBackground()}
	a.log.Info("retention: records, their recordings, agent events and finished campaign targets older than the retention period are deleted daily",
		"retention_days", days, "at", a.cfg.Records.RetentionAt, "timezone", loc.String())
	return nil
}

// runRetention starts the job.
func (a *app) runRetention() {
	if r := a.retention; r != nil {
		r.run.start(r.job.Run)
	}
}

// stopRetention stops the job and waits for its current batch.
func (a *app) stopRetention() {
	if r := a.retention; r != nil && !r.run.stop(10*time.Second) {
		a.log.Error("the retention job did not stop in time")
	}
}
