package cdr

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Everything PostgreSQL-specific lives in this file. The schema means the
// same as SQLite's (migrations/postgres/ mirrors migrations/sqlite/), with
// timestamptz for times: *_us columns there are *_at columns here, and the
// agent event time is event_time. Writes go through COPY into a temporary
// table and one INSERT ... ON CONFLICT per batch.

//go:embed migrations/postgres/*.sql
var postgresMigrationFS embed.FS

// Postgres is the PostgreSQL Store (pgx/v5 connection pool).
type Postgres struct {
	pool *pgxpool.Pool
	name string // host:port/database for errors, never the password
}

var _ Store = (*Postgres)(nil)
var _ MissingInserter = (*Postgres)(nil)

// Open opens the store a --cdr-dsn names: PostgreSQL for a
// postgres:// or postgresql:// URL, else the SQLite database file at that
// path.
func Open(ctx context.Context, dsnOrPath string) (Store, error) {
	if isPostgresDSN(dsnOrPath) {
		return OpenPostgres(ctx, dsnOrPath)
	}
	return OpenSQLite(dsnOrPath)
}

func isPostgresDSN(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// PostgresSchemaVersion is the schema version this build creates and knows.
func PostgresSchemaVersion() int {
	ms, err := LoadMigrations(postgresMigrationFS, "migrations/postgres")
	if err != nil {
		return 0
	}
	return len(ms)
}

// OpenPostgres connects to the database dsn names (a postgres:// URL or
// key=value string; search_path may be given as a parameter) and brings
// its schema up to date. It fails with ErrSchemaTooNew if the schema was
// migrated by a newer build, and with a clear error naming host and
// database (never the password) if the server does not answer.
func OpenPostgres(ctx context.Context, dsn string) (*Postgres, error) {
	pool, name, err := OpenPool(ctx, dsn)
	if err != nil {
		return nil, err
	}
	p := &Postgres{pool: pool, name: name}
	if err := p.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return p, nil
}

// OpenPool opens a connection pool on dsn (at least 8 connections, a 10 s connect timeout)
// and names it for errors and logs by host, port, database and search_path, never the
// password. The campaign store shares the records' database through it.
func OpenPool(ctx context.Context, dsn string) (*pgxpool.Pool, string, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// The parse error may quote the DSN; do not repeat a password.
		return nil, "", fmt.Errorf("cdr: PostgreSQL DSN is not valid: %w", redactErr(err, dsn))
	}
	cc := cfg.ConnConfig
	name := fmt.Sprintf("postgres %s:%d/%s", cc.Host, cc.Port, cc.Database)
	if sp := cc.RuntimeParams["search_path"]; sp != "" {
		name += " (search_path " + sp + ")"
	}
	if cfg.MaxConns < 8 {
		cfg.MaxConns = 8
	}
	if cc.ConnectTimeout == 0 {
		cc.ConnectTimeout = 10 * time.Second
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, "", fmt.Errorf("cdr: database %s: %w", name, err)
	}
	return pool, name, nil
}

func redactErr(err error, dsn string) error {
	if u, perr := pgconnURL(dsn); perr == nil && u != "" {
		return errors.New(strings.ReplaceAll(err.Error(), dsn, u))
	}
	return err
}

// pgconnURL returns dsn with any password replaced by "xxxxx".
func pgconnURL(dsn string) (string, error) {
	at := strings.LastIndex(dsn, "@")
	scheme := strings.Index(dsn, "://")
	if !isPostgresDSN(dsn) || at < 0 || scheme < 0 {
		return "", errors.New("not a URL")
	}
	userinfo := dsn[scheme+3 : at]
	if user, _, ok := strings.Cut(userinfo, ":"); ok {
		return dsn[:scheme+3] + user + ":xxxxx" + dsn[at:], nil
	}
	return dsn, nil
}

// Name is "postgres host:port/database" (no credentials).
func (p *Postgres) Name() string { return p.name }

// Close closes the pool.
func (p *Postgres) Close() error {
	p.pool.Close()
	return nil
}

// migrate applies the missing migrations in one transaction, under an
// advisory lock per schema so that concurrent openers take turns.
func (p *Postgres) migrate(ctx context.Context) error {
	ms, err := LoadMigrations(postgresMigrationFS, "migrations/postgres")
	if err != nil {
		return err
	}
	return p.migrateTo(ctx, ms)
}

// migrateTo applies the migrations of ms the schema lacks.
func (p *Postgres) migrateTo(ctx context.Context, ms []Migration) error {
	return p.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('hotline-cdr-migrate:' || current_schema()))`); err != nil {
			return fmt.Errorf("cdr: database %s: %w", p.name, err)
		}
		return migrateSchema(ctx, p.name, ms, migrationTx{
			exec: func(ctx context.Context, q string, args ...any) error {
				_, err := tx.Exec(ctx, q, args...)
				return err
			},
			version: func(ctx context.Context) (v int, err error) {
				err = tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v)
				return v, err
			},
			create: `CREATE TABLE IF NOT EXISTS schema_version (
				version    INTEGER     NOT NULL PRIMARY KEY,
				name       TEXT        NOT NULL,
				applied_at TIMESTAMPTZ NOT NULL)`,
			insert: `INSERT INTO schema_version (version, name, applied_at) VALUES ($1, $2, $3::timestamptz)`,
		})
	})
}

// inTx runs fn in a transaction (see inTx).
func (p *Postgres) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return inTx(ctx, p.name, p.pool.Begin, fn)
}

// pgCDRColumns is the column order of pgRecordValues and pgScanRecord.
var pgCDRColumns = []string{"id", "sip_call_id", "direction", "trunk", "caller", "called", "start_at", "answer_at", "end_at",
	"ivr_path", "case_number", "queue", "enqueue_at", "agent", "connect_at", "disposition", "hangup_side",
	"hangup_cause", "sip_status", "codec", "node_id",
	"ring_attempts", "talk_us", "hold_us", "wrap_us", "transfers", "recording_file", "recording_us", "recording_sha256", "voicemail", "survey_answers", "satisfaction", "visits",
	"campaign", "attempt", "target", "parent", "handoffs"}

var pgEventColumns = []string{"id", "event_time", "call_id", "queue", "agent_id", "event",
	"data1", "data2", "data3", "data4", "data5", "node_id"}

// pgTime maps a time to its stored form: NULL if zero.
func pgTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC()
}

func fromPGTime(t pgtype.Timestamptz) time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return t.Time.UTC()
}

func pgRecordValues(r *Record) []any {
	return []any{r.ID, r.SIPCallID, r.Direction, r.Trunk, r.Caller, r.Called,
		pgTime(r.Start), pgTime(r.Answer), pgTime(r.End),
		r.IVRPath, r.CaseNumber, r.Queue, pgTime(r.EnqueueTime), r.Agent, pgTime(r.Connect),
		r.Disposition, r.HangupSide, r.HangupCause, int32(r.SIPStatus), r.Codec, r.NodeID,
		int32(r.RingAttempts), r.Talk.Microseconds(), r.Hold.Microseconds(), r.WrapUp.Microseconds(),
		int32(r.Transfers), r.RecordingFile, r.RecordingDuration.Microseconds(), r.RecordingSHA256, r.Voicemail, r.SurveyAnswers, r.Satisfaction, r.Visits,
		r.Campaign, int32(r.Attempt), r.Target, r.Parent, string(r.Handoffs)}
}

func pgScanRecord(rows pgx.Rows, r *Record) error {
	var start, answer, end, enqueue, connect pgtype.Timestamptz
	var talk, hold, wrap, recording int64
	var status, rings, transfers, attempt int32
	err := rows.Scan(&r.ID, &r.SIPCallID, &r.Direction, &r.Trunk, &r.Caller, &r.Called,
		&start, &answer, &end,
		&r.IVRPath, &r.CaseNumber, &r.Queue, &enqueue, &r.Agent, &connect,
		&r.Disposition, &r.HangupSide, &r.HangupCause, &status, &r.Codec, &r.NodeID,
		&rings, &talk, &hold, &wrap, &transfers, &r.RecordingFile, &recording, &r.RecordingSHA256, &r.Voicemail, &r.SurveyAnswers, &r.Satisfaction, &r.Visits,
		&r.Campaign, &attempt, &r.Target, &r.Parent, &r.Handoffs)
	r.Start, r.Answer, r.End = fromPGTime(start), fromPGTime(answer), fromPGTime(end)
	r.EnqueueTime, r.Connect = fromPGTime(enqueue), fromPGTime(connect)
	r.SIPStatus, r.RingAttempts, r.Transfers, r.Attempt = int(status), int(rings), int(transfers), int(attempt)
	r.Talk, r.Hold, r.WrapUp = time.Duration(talk)*time.Microsecond, time.Duration(hold)*time.Microsecond, time.Duration(wrap)*time.Microsecond
	r.RecordingDuration = time.Duration(recording) * time.Microsecond
	return err
}

// Upsert stores recs in one transaction; an existing ID is replaced, and
// of several records with one ID in recs the last wins.
func (p *Postgres) Upsert(ctx context.Context, recs []Record) error {
	return p.writeRecords(ctx, recs, true)
}

// InsertMissing stores the records whose ID is not stored yet, in one
// transaction, and leaves existing rows untouched (of several records with
// one ID in recs, the first is inserted, as in SQLite).
func (p *Postgres) InsertMissing(ctx context.Context, recs []Record) error {
	return p.writeRecords(ctx, recs, false)
}

// dedupe keeps one element per key: the last (keepLast) or the first,
// preserving the order of first appearance. INSERT ... ON CONFLICT DO
// UPDATE must not touch one row twice.
func dedupe[T any](xs []T, key func(*T) string, keepLast bool) []T {
	idx := make(map[string]int, len(xs))
	out := make([]T, 0, len(xs))
	for i := range xs {
		k := key(&xs[i])
		if j, ok := idx[k]; ok {
			if keepLast {
				out[j] = xs[i]
			}
			continue
		}
		idx[k] = len(out)
		out = append(out, xs[i])
	}
	return out
}

func (p *Postgres) writeRecords(ctx context.Context, recs []Record, update bool) error {
	if len(recs) == 0 {
		return nil
	}
	if err := validRecords(recs); err != nil {
		return err
	}
	recs = dedupe(recs, func(r *Record) string { return r.ID }, update)
	conflict := "DO NOTHING"
	if update {
		var set []string
		for _, c := range pgCDRColumns[1:] {
			set = append(set, c+" = excluded."+c)
		}
		conflict = "DO UPDATE SET " + strings.Join(set, ", ")
	}
	rows := make([][]any, len(recs))
	for i := range recs {
		rows[i] = pgRecordValues(&recs[i])
	}
	// wrap_us: the call's stored wrap-ups first (see wrapUps).
	values := make([]string, len(pgCDRColumns))
	for i, c := range pgCDRColumns {
		values[i] = c
		if c == "wrap_us" {
			values[i] = "COALESCE((SELECT SUM(w.wrap_us) FROM cdr_wrapup w WHERE w.call_id = cdr_in.id), cdr_in.wrap_us)"
		}
	}
	return p.inTx(ctx, func(tx pgx.Tx) error {
		if err := p.copyInsert(ctx, tx, "cdr", pgCDRColumns, values, rows, conflict); err != nil {
			return err
		}
		return p.insertOutbox(ctx, tx, eventsFromRecords(recs)) // the feed's events, in the same transaction
	})
}

// copyInsert copies rows into a temporary table shaped like table and
// inserts them into table from there, the expressions values (over the
// temporary table, named table_in) giving the columns cols, with ON
// CONFLICT (id) conflict.
func (p *Postgres) copyInsert(ctx context.Context, tx pgx.Tx, table string, cols, values []string, rows [][]any, conflict string) error {
	tmp := table + "_in"
	// Per connection, emptied at commit; LIKE resolves table through the
	// connection's search_path.
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE IF NOT EXISTS `+tmp+` (LIKE `+table+` INCLUDING DEFAULTS) ON COMMIT DELETE ROWS`); err != nil {
		return fmt.Errorf("cdr: database %s: %w", p.name, err)
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{tmp}, cols, pgx.CopyFromRows(rows)); err != nil {
		return fmt.Errorf("cdr: database %s: copy %d rows into %s: %w", p.name, len(rows), table, err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO `+table+` (`+strings.Join(cols, ", ")+`) SELECT `+strings.Join(values, ", ")+
		` FROM `+tmp+` ON CONFLICT (id) `+conflict); err != nil {
		return fmt.Errorf("cdr: database %s: insert into %s: %w", p.name, table, err)
	}
	return nil
}

// pgRecordWhere is recordWhere for PostgreSQL.
func pgRecordWhere(f Filter) (string, []any) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, cond+" $"+strconv.Itoa(len(args)))
	}
	if !f.From.IsZero() {
		add("start_at >=", f.From.UTC())
	}
	if !f.To.IsZero() {
		add("start_at <", f.To.UTC())
	}
	for _, c := range []struct{ col, val string }{
		{"queue", f.Queue}, {"disposition", string(f.Disposition)}, {"caller", f.Caller}, {"agent", f.Agent}, {"id", f.ID},
	} {
		if c.val != "" {
			add(c.col+" =", c.val)
		}
	}
	switch f.Direction {
	case "":
	case DirectionInbound: // records without a direction are inbound
		args = append(args, f.Direction)
		where = append(where, "direction IN ($"+strconv.Itoa(len(args))+", '')")
	default:
		add("direction =", f.Direction)
	}
	if len(where) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(where, " AND "), args
}

// List returns the records matching f ordered by Start, then ID.
func (p *Postgres) List(ctx context.Context, f Filter) ([]Record, error) {
	where, args := pgRecordWhere(f)
	limit := f.limit()
	args = append(args, limit)
	q := "SELECT " + strings.Join(pgCDRColumns, ", ") + " FROM cdr" + where +
		" ORDER BY start_at, id LIMIT $" + strconv.Itoa(len(args))
	out := make([]Record, 0, min(limit, 256))
	err := p.query(ctx, q, args, func(rows pgx.Rows) error {
		var r Record
		if err := pgScanRecord(rows, &r); err != nil {
			return err
		}
		out = append(out, r)
		return nil
	})
	return out, err
}

// Scan calls fn for every record matching f (f.Limit is ignored).
func (p *Postgres) Scan(ctx context.Context, f Filter, fn func(*Record) error) error {
	where, args := pgRecordWhere(f)
	q := "SELECT " + strings.Join(pgCDRColumns, ", ") + " FROM cdr" + where
	var r Record
	var fnErr error
	err := p.query(ctx, q, args, func(rows pgx.Rows) error {
		r = Record{}
		if err := pgScanRecord(rows, &r); err != nil {
			return err
		}
		fnErr = fn(&r)
		return fnErr
	})
	if fnErr != nil {
		return fnErr
	}
	return err
}

// query runs q and calls each for every row; errors of the database (not
// of each) are wrapped with the database name.
func (p *Postgres) query(ctx context.Context, q string, args []any, each func(pgx.Rows) error) error {
	rows, err := p.pool.Query(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("cdr: database %s: %w", p.name, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := each(rows); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("cdr: database %s: %w", p.name, err)
	}
	return nil
}

// AppendEvents stores evs in one transaction; an ID stored already is
// skipped, so replays never duplicate events.
func (p *Postgres) AppendEvents(ctx context.Context, evs []AgentEvent) error {
	if len(evs) == 0 {
		return nil
	}
	if err := validEvents(evs); err != nil {
		return err
	}
	evs = dedupe(evs, func(e *AgentEvent) string { return e.ID }, false)
	rows := make([][]any, len(evs))
	for i := range evs {
		e := &evs[i]
		rows[i] = []any{e.ID, e.Time.UTC(), e.CallID, e.Queue, e.AgentID, e.Event,
			e.Data1, e.Data2, e.Data3, e.Data4, e.Data5, e.NodeID}
	}
	wus := wrapUps(evs)
	return p.inTx(ctx, func(tx pgx.Tx) error {
		if err := p.copyInsert(ctx, tx, "agent_events", pgEventColumns, pgEventColumns, rows, "DO NOTHING"); err != nil {
			return err
		}
		if err := p.outboxFromEvents(ctx, tx, evs); err != nil { // the feed's events, in the same transaction
			return err
		}
		if len(wus) == 0 {
			return nil
		}
		ids, calls, us := make([]string, len(wus)), make([]string, len(wus)), make([]int64, len(wus))
		for i, w := range wus {
			ids[i], calls[i], us[i] = w.eventID, w.callID, w.us
		}
		if _, err := tx.Exec(ctx, `INSERT INTO cdr_wrapup (event_id, call_id, wrap_us)
			SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[]) ON CONFLICT (event_id) DO NOTHING`, ids, calls, us); err != nil {
			return fmt.Errorf("cdr: database %s: wrap-ups: %w", p.name, err)
		}
		if _, err := tx.Exec(ctx, `UPDATE cdr SET wrap_us = w.total
			FROM (SELECT call_id, SUM(wrap_us) AS total FROM cdr_wrapup WHERE call_id = ANY($1) GROUP BY call_id) w
			WHERE cdr.id = w.call_id`, calls); err != nil {
			return fmt.Errorf("cdr: database %s: wrap-ups: %w", p.name, err)
		}
		return nil
	})
}

// ListEvents returns the events matching f ordered by Time, then ID.
func (p *Postgres) ListEvents(ctx context.Context, f EventFilter) ([]AgentEvent, error) {
	mark := func(n int) string { return "$" + strconv.Itoa(n) }
	where, args := eventWhere(f, mark, "event_time", func(t time.Time) any { return t.UTC() })
	limit := f.limit()
	args = append(args, limit)
	q := "SELECT " + strings.Join(pgEventColumns, ", ") + " FROM agent_events" + where +
		" ORDER BY event_time, id LIMIT " + mark(len(args))
	out := make([]AgentEvent, 0, min(limit, 256))
	err := p.query(ctx, q, args, func(rows pgx.Rows) error {
		var e AgentEvent
		if err := rows.Scan(&e.ID, &e.Time, &e.CallID, &e.Queue, &e.AgentID, &e.Event,
			&e.Data1, &e.Data2, &e.Data3, &e.Data4, &e.Data5, &e.NodeID); err != nil {
			return fmt.Errorf("cdr: database %s: %w", p.name, err)
		}
		e.Time = e.Time.UTC()
		out = append(out, e)
		return nil
	})
	return out, err
}
