package cdr

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
)

// Retention (个人信息保护法: personal information is kept no longer than
// needed): a daily job deletes the call records and agent events older than
// a configured number of days, and whatever other tables hold citizens'
// numbers (the campaign targets, see callback.RetentionTables), in bounded
// batches, each its own short transaction, so that a big first deletion
// never holds the database for long while calls are being written.

// ErrRetentionConfig is a retention job that cannot run as configured.
var ErrRetentionConfig = errors.New("cdr: retention: bad configuration")

// DefaultRetentionBatch is how many rows one retention transaction deletes.
const DefaultRetentionBatch = 1000

// RetentionTable is one table the retention job prunes: Purge deletes at
// most limit of its rows older than before and says how many it deleted.
type RetentionTable struct {
	Name  string
	Purge func(ctx context.Context, before time.Time, limit int) (int64, error)
}

// RetentionTables are the tables of s that hold citizens' data: the
// records (cdr, with their cdr_wrapup rows), the agent events
// (agent_events) and the work-order feed (outbox, webhook_dead). A record's age is its start, an event's its time. A store
// that is neither SQLite nor PostgreSQL has none.
func RetentionTables(s Store) []RetentionTable {
	switch s := s.(type) {
	case *SQLite:
		return []RetentionTable{
			{"cdr", s.purgeRecords},
			{"agent_events", func(ctx context.Context, before time.Time, limit int) (int64, error) {
				return s.purge(ctx, sqlitePurgeEvents, before.UnixMicro(), limit)
			}},
			{"outbox", func(ctx context.Context, before time.Time, limit int) (int64, error) {
				return s.purge(ctx, sqlitePurgeOutbox, before.UnixMicro(), limit)
			}},
			{"webhook_dead", func(ctx context.Context, before time.Time, limit int) (int64, error) {
				return s.purge(ctx, sqlitePurgeDead, before.UnixMicro(), limit)
			}},
		}
	case *Postgres:
		return []RetentionTable{
			{"cdr", s.purgeRecords},
			{"agent_events", func(ctx context.Context, before time.Time, limit int) (int64, error) {
				return s.purge(ctx, pgPurgeEvents, before.UTC(), limit)
			}},
			{"outbox", func(ctx context.Context, before time.Time, limit int) (int64, error) {
				return s.purge(ctx, pgPurgeOutbox, before.UTC(), limit)
			}},
			{"webhook_dead", func(ctx context.Context, before time.Time, limit int) (int64, error) {
				return s.purge(ctx, pgPurgeDead, before.UTC(), limit)
			}},
		}
	}
	return nil
}

// The oldest rows first, so that an interrupted run leaves no holes. The
// same sub-select picks a batch's wrap-up rows and records inside one
// transaction.
const (
	sqlitePurgeWrapUps = `DELETE FROM cdr_wrapup WHERE call_id IN (SELECT id FROM cdr WHERE start_us < ? ORDER BY start_us, id LIMIT ?)`
	sqlitePurgeRecords = `DELETE FROM cdr WHERE id IN (SELECT id FROM cdr WHERE start_us < ? ORDER BY start_us, id LIMIT ?)`
	sqlitePurgeEvents  = `DELETE FROM agent_events WHERE id IN (SELECT id FROM agent_events WHERE time_us < ? ORDER BY time_us, id LIMIT ?)`
	pgPurgeWrapUps     = `DELETE FROM cdr_wrapup WHERE call_id IN (SELECT id FROM cdr WHERE start_at < $1 ORDER BY start_at, id LIMIT $2)`
	pgPurgeRecords     = `DELETE FROM cdr WHERE id IN (SELECT id FROM cdr WHERE start_at < $1 ORDER BY start_at, id LIMIT $2)`
	pgPurgeEvents      = `DELETE FROM agent_events WHERE id IN (SELECT id FROM agent_events WHERE event_time < $1 ORDER BY event_time, id LIMIT $2)`
	// The feed's events (outbox, and the dead letters' copies) carry numbers too.
	sqlitePurgeOutbox = `DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox WHERE time_us < ? ORDER BY seq LIMIT ?)`
	sqlitePurgeDead   = `DELETE FROM webhook_dead WHERE rowid IN (SELECT rowid FROM webhook_dead WHERE dead_us < ? ORDER BY dead_us LIMIT ?)`
	pgPurgeOutbox     = `DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox WHERE time_at < $1 ORDER BY seq LIMIT $2)`
	pgPurgeDead       = `DELETE FROM webhook_dead WHERE (webhook, event_id) IN (SELECT webhook, event_id FROM webhook_dead WHERE dead_at < $1 ORDER BY dead_at LIMIT $2)`
)

func (s *SQLite) purgeRecords(ctx context.Context, before time.Time, limit int) (n int64, err error) {
	err = s.secureDelete(ctx, func(conn *sql.Conn) error {
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(ctx, sqlitePurgeWrapUps, before.UnixMicro(), limit); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, sqlitePurgeRecords, before.UnixMicro(), limit)
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil {
			return err
		}
		return tx.Commit()
	})
	return n, err
}

func (s *SQLite) purge(ctx context.Context, q string, before any, limit int) (n int64, err error) {
	err = s.secureDelete(ctx, func(conn *sql.Conn) error {
		res, err := conn.ExecContext(ctx, q, before, limit)
		if err == nil {
			n, err = res.RowsAffected()
		}
		return err
	})
	return n, err
}

// secureDelete runs fn as SQLiteSecureDelete does.
func (s *SQLite) secureDelete(ctx context.Context, fn func(*sql.Conn) error) error {
	if err := SQLiteSecureDelete(ctx, s.db, fn); err != nil {
		return fmt.Errorf("cdr: database %s: retention: %w", s.path, err)
	}
	return nil
}

// SQLiteSecureDelete runs fn on a connection of db of its own with secure_delete on, so
// that what the retention job deletes is overwritten in the database file, pages freed
// whole included, rather than left in its free space (deleted means gone); the
// connection's setting is restored after. The other connections run with
// secure_delete(fast) (sqliteDSNParams), which keeps earlier copies of moved rows from
// lingering in the pages.
func SQLiteSecureDelete(ctx context.Context, db *sql.DB, fn func(*sql.Conn) error) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	var was string
	if err := conn.QueryRowContext(ctx, "PRAGMA secure_delete").Scan(&was); err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, "PRAGMA secure_delete = 1"); err != nil {
		return err
	}
	if was == "2" {
		was = "fast"
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "PRAGMA secure_delete = "+was)
	return fn(conn)
}

func (p *Postgres) purgeRecords(ctx context.Context, before time.Time, limit int) (int64, error) {
	var n int64
	err := p.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, pgPurgeWrapUps, before.UTC(), limit); err != nil {
			return fmt.Errorf("cdr: database %s: retention: %w", p.name, err)
		}
		tag, err := tx.Exec(ctx, pgPurgeRecords, before.UTC(), limit)
		if err != nil {
			return fmt.Errorf("cdr: database %s: retention: %w", p.name, err)
		}
		n = tag.RowsAffected()
		return nil
	})
	return n, err
}

func (p *Postgres) purge(ctx context.Context, q string, before any, limit int) (int64, error) {
	tag, err := p.pool.Exec(ctx, q, before, limit)
	if err != nil {
		return 0, fmt.Errorf("cdr: database %s: retention: %w", p.name, err)
	}
	return tag.RowsAffected(), nil
}

// RetentionConfig configures the retention job.
type RetentionConfig struct {
	Days     int            // rows older than this many days are deleted; must be > 0
	At       time.Duration  // the daily run's local time of day (3h30m = 03:30)
	Location *time.Location // the hotline's timezone; nil = UTC
	// FirstRun is how long after Run starts the first run happens (a
	// server started after a long stop catches up at once); default 1 min.
	FirstRun time.Duration
	Batch    int           // rows per transaction; default DefaultRetentionBatch
	Pause    time.Duration // between batches, for the call path's writes; default 20 ms
	Tables   []RetentionTable
	Logger   *slog.Logger
	// Registerer gets hotline_retention_deleted_total{table}; nil = not registered.
	Registerer prometheus.Registerer
	Now        func() time.Time // default time.Now
}

// Retention is the daily retention job.
type Retention struct {
	cfg     RetentionConfig
	deleted *prometheus.CounterVec
}

// NewRetention checks cfg and makes the job.
func NewRetention(cfg RetentionConfig) (*Retention, error) {
	if cfg.Days <= 0 {
		return nil, fmt.Errorf("%w: days must be positive, got %d", ErrRetentionConfig, cfg.Days)
	}
	if cfg.At < 0 || cfg.At >= 24*time.Hour {
		return nil, fmt.Errorf("%w: time of day %v is not within a day", ErrRetentionConfig, cfg.At)
	}
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	if cfg.FirstRun == 0 {
		cfg.FirstRun = time.Minute
	}
	if cfg.Batch <= 0 {
		cfg.Batch = DefaultRetentionBatch
	}
	if cfg.Pause == 0 {
		cfg.Pause = 20 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := &Retention{cfg: cfg, deleted: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hotline_retention_deleted_total",
		Help: "Rows deleted by the retention job (records.retention_days), by table.",
	}, []string{"table"})}
	for _, t := range cfg.Tables {
		r.deleted.WithLabelValues(t.Name) // present at 0 before the first run
	}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(r.deleted); err != nil {
			return nil, fmt.Errorf("cdr: retention metrics: %w", err)
		}
	}
	return r, nil
}

// Run runs the job FirstRun after it is called and then every day at the
// configured local time, until ctx ends.
func (r *Retention) Run(ctx context.Context) {
	timer := time.NewTimer(r.cfg.FirstRun)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		_, _ = r.RunOnce(ctx)
		timer.Reset(r.NextRun(r.cfg.Now()).Sub(r.cfg.Now()))
	}
}

// NextRun is the first daily run time strictly after now.
func (r *Retention) NextRun(now time.Time) time.Time {
	local := now.In(r.cfg.Location)
	y, m, d := local.Date()
	at := time.Date(y, m, d, 0, 0, 0, 0, r.cfg.Location).Add(r.cfg.At)
	for !at.After(now) {
		y, m, d = at.Date()
		at = time.Date(y, m, d+1, 0, 0, 0, 0, r.cfg.Location).Add(r.cfg.At) // DST-safe: from the next midnight
	}
	return at
}

// RunOnce deletes, table by table and batch by batch, the rows older than
// Days before now; it returns the rows deleted per table and the first
// error (a failing table does not stop the others; the next run retries).
func (r *Retention) RunOnce(ctx context.Context) (map[string]int64, error) {
	cutoff := r.cfg.Now().AddDate(0, 0, -r.cfg.Days)
	out := make(map[string]int64, len(r.cfg.Tables))
	var first error
	start := time.Now()
	for _, t := range r.cfg.Tables {
		for {
			n, err := t.Purge(ctx, cutoff, r.cfg.Batch)
			out[t.Name] += n
			r.deleted.WithLabelValues(t.Name).Add(float64(n))
			if err != nil {
				r.cfg.Logger.Error("retention: delete failed; the next run retries", "table", t.Name, "deleted", out[t.Name], "error", err)
				first = cmp.Or(first, err)
				break
			}
			if n < int64(r.cfg.Batch) {
				break
			}
			select {
			case <-ctx.Done():
				return out, ctx.Err()
			case <-time.After(r.cfg.Pause):
			}
		}
	}
	args := []any{"days", r.cfg.Days, "before", cutoff.In(r.cfg.Location).Format(time.RFC3339), "took", time.Since(start).Round(time.Millisecond)}
	for _, t := range r.cfg.Tables {
		args = append(args, t.Name, out[t.Name])
	}
	r.cfg.Logger.Info("retention: deleted rows older than the retention period", args...)
	return out, first
}
