package cdr

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers driver "sqlite"
)

// Everything SQL- and SQLite-specific lives in this file; a PostgreSQL store
// (pgx/v5) gets its own file and migrations/postgres/ directory. The column
// list, the upsert (INSERT ... ON CONFLICT (id) DO UPDATE) and the integer
// microsecond times carry over unchanged to PostgreSQL (which would store
// timestamptz instead).

//go:embed migrations/sqlite/*.sql
var sqliteMigrationFS embed.FS

// SQLite is the embedded Store: one database file in WAL mode.
type SQLite struct {
	db   *sql.DB
	path string
}

var _ Store = (*SQLite)(nil)
var _ MissingInserter = (*SQLite)(nil)

// sqliteDSN: busy_timeout first so the other pragmas wait for locks;
// _txlock=immediate takes the write lock at BEGIN, so concurrent writers
// queue on busy_timeout instead of failing on a lock upgrade;
// secure_delete(fast) zeroes deleted and moved content inside the pages a
// write touches anyway (no extra I/O), so that citizens' numbers the
// retention job deletes do not linger in the file (see retention.go).
const sqliteDSNParams = "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=secure_delete(fast)&_txlock=immediate"

// OpenSQLite opens (creating it and its directory if needed) the database
// file at path and brings its schema up to date with the embedded
// migrations. It fails with an error naming path if the file or its
// directory is not writable, and with ErrSchemaTooNew if the database was
// migrated by a newer build.
func OpenSQLite(path string) (*SQLite, error) {
	if path == "" || strings.ContainsAny(path, "?#") || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("cdr: database path %q: must be a plain file path", path)
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("cdr: database %s: cannot create directory: %w", path, err)
		}
	}
	// SQLite opens lazily and may silently fall back to read-only; check
	// that we can write the file ourselves for a clear error.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("cdr: database %s is not writable: %w", path, err)
	}
	_ = f.Close()

	db, err := sql.Open("sqlite", path+sqliteDSNParams)
	if err != nil {
		return nil, fmt.Errorf("cdr: database %s: %w", path, err)
	}
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	db.SetConnMaxIdleTime(5 * time.Minute)
	s := &SQLite{db: db, path: path}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.migrate(ctx); err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

// Path is the database file.
func (s *SQLite) Path() string { return s.path }

// Close closes the database.
func (s *SQLite) Close() error { return s.db.Close() }

// Migration is one schema migration: the file NNNN_description.sql (Version NNNN), its SQL.
// The campaign store (callback) keeps its own migrations the same way.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// sqliteMigrations returns the embedded migrations, ordered by version. A
// migration file is named NNNN_description.sql.
func sqliteMigrations() ([]Migration, error) {
	return LoadMigrations(sqliteMigrationFS, "migrations/sqlite")
}

// LoadMigrations reads the NNNN_description.sql files of dir in fsys, ordered by version,
// which must run 1..n without gaps.
func LoadMigrations(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, err
	}
	var ms []Migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migrations: bad file name %q in %s", e.Name(), dir)
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		ms = append(ms, Migration{Version: v, Name: e.Name(), SQL: string(b)})
	}
	slices.SortFunc(ms, func(a, b Migration) int { return a.Version - b.Version })
	for i, m := range ms {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migrations in %s must be numbered 1..n without gaps, found %s", dir, m.Name)
		}
	}
	return ms, nil
}

// SQLiteSchemaVersion is the schema version this build creates and knows.
func SQLiteSchemaVersion() int {
	ms, err := sqliteMigrations()
	if err != nil {
		return 0
	}
	return len(ms)
}

// migrate applies the missing migrations in one transaction. Concurrent
// openers serialise on the write lock (BEGIN IMMEDIATE).
func (s *SQLite) migrate(ctx context.Context) error {
	ms, err := sqliteMigrations()
	if err != nil {
		return err
	}
	return s.migrateTo(ctx, ms)
}

// migrateTo applies the migrations of ms the schema lacks.
func (s *SQLite) migrateTo(ctx context.Context, ms []Migration) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		return migrateSchema(ctx, s.path, ms, migrationTx{
			exec: func(ctx context.Context, q string, args ...any) error {
				_, err := tx.ExecContext(ctx, q, args...)
				return err
			},
			version: func(ctx context.Context) (v int, err error) {
				err = tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v)
				return v, err
			},
			create: `CREATE TABLE IF NOT EXISTS schema_version (
				version    INTEGER NOT NULL PRIMARY KEY,
				name       TEXT    NOT NULL,
				applied_at TEXT    NOT NULL)`,
			insert: `INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)`,
		})
	})
}

// sqliteTx adapts *sql.Tx to txn.
type sqliteTx struct{ tx *sql.Tx }

func (t sqliteTx) Commit(context.Context) error   { return t.tx.Commit() }
func (t sqliteTx) Rollback(context.Context) error { return t.tx.Rollback() }

// inTx runs fn in a transaction (see inTx).
func (s *SQLite) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	begin := func(ctx context.Context) (sqliteTx, error) {
		tx, err := s.db.BeginTx(ctx, nil)
		return sqliteTx{tx}, err
	}
	return inTx(ctx, s.path, begin, func(t sqliteTx) error { return fn(t.tx) })
}

// execEach prepares query in tx and runs it with the arguments args gives
// for each of n items; what names item i in errors.
func (s *SQLite) execEach(ctx context.Context, tx *sql.Tx, query string, n int, args func(i int) []any, what func(i int) string) error {
	if n == 0 {
		return nil
	}
	stmt, err := tx.PrepareContext(ctx, query)
	if err != nil {
		return fmt.Errorf("cdr: database %s: %w", s.path, err)
	}
	defer stmt.Close()
	for i := range n {
		if _, err := stmt.ExecContext(ctx, args(i)...); err != nil {
			return fmt.Errorf("cdr: database %s: %s: %w", s.path, what(i), err)
		}
	}
	return nil
}

// cdrColumns is the column order of recordArgs and scanRecord.
const cdrColumns = `id, sip_call_id, direction, trunk, caller, called, start_us, answer_us, end_us,
	ivr_path, case_number, queue, enqueue_us, agent, connect_us, disposition, hangup_side,
	hangup_cause, sip_status, codec, node_id,
	ring_attempts, talk_us, hold_us, wrap_us, transfers, recording_file, recording_us, recording_sha256, voicemail,
	survey_answers, satisfaction, visits, campaign, attempt, target, parent, handoffs`

// placeholders returns "?, ?, ..." with n marks.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// The record's wrap_us is the sum of its WRAPUPEND events (cdr_wrapup)
// once one is stored, else the record's own (see wrapUps); the values are
// numbered parameters, ?1 being the id.
var (
	sqliteUpsert = `INSERT INTO cdr (` + cdrColumns + `) SELECT ` + sqliteRecordValues() + ` WHERE true
	ON CONFLICT (id) DO UPDATE SET ` + updateSet(cdrColumns)
	sqliteInsertMissing = `INSERT INTO cdr (` + cdrColumns + `) SELECT ` + sqliteRecordValues() + ` WHERE true
	ON CONFLICT (id) DO NOTHING`
	sqliteInsertWrapUp = `INSERT INTO cdr_wrapup (event_id, call_id, wrap_us) VALUES (?, ?, ?) ON CONFLICT (event_id) DO NOTHING`
	sqliteApplyWrapUp  = `UPDATE cdr SET wrap_us = (SELECT SUM(wrap_us) FROM cdr_wrapup WHERE call_id = ?1) WHERE id = ?1`
)

// sqliteRecordValues is "?1, ?2, ..." for cdrColumns, wrap_us taking
// the call's stored wrap-ups first.
func sqliteRecordValues() string {
	var vs []string
	for i, c := range strings.Split(cdrColumns, ",") {
		v := "?" + strconv.Itoa(i+1)
		if strings.TrimSpace(c) == "wrap_us" {
			v = "COALESCE((SELECT SUM(wrap_us) FROM cdr_wrapup WHERE call_id = ?1), " + v + ")"
		}
		vs = append(vs, v)
	}
	return strings.Join(vs, ", ")
}

// updateSet returns "c = excluded.c, ..." for every column but id.
func updateSet(cols string) string {
	var b strings.Builder
	for c := range strings.SplitSeq(cols, ",") {
		c = strings.TrimSpace(c)
		if c == "id" {
			continue
		}
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		b.WriteString(c + " = excluded." + c)
	}
	return b.String()
}

// micros maps a time to its stored form: NULL if zero, else UTC unix µs.
func micros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

func fromMicros(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMicro(v.Int64).UTC()
}

func recordArgs(r *Record) []any {
	return []any{r.ID, r.SIPCallID, r.Direction, r.Trunk, r.Caller, r.Called,
		micros(r.Start), micros(r.Answer), micros(r.End),
		r.IVRPath, r.CaseNumber, r.Queue, micros(r.EnqueueTime), r.Agent, micros(r.Connect),
		r.Disposition, r.HangupSide, r.HangupCause, r.SIPStatus, r.Codec, r.NodeID,
		r.RingAttempts, r.Talk.Microseconds(), r.Hold.Microseconds(), r.WrapUp.Microseconds(),
		r.Transfers, r.RecordingFile, r.RecordingDuration.Microseconds(), r.RecordingSHA256, r.Voicemail, r.SurveyAnswers, r.Satisfaction, r.Visits,
		r.Campaign, r.Attempt, r.Target, r.Parent, string(r.Handoffs)}
}

func scanRecord(rows *sql.Rows) (Record, error) {
	var r Record
	err := scanRecordInto(rows, &r)
	return r, err
}

func scanRecordInto(rows *sql.Rows, r *Record) error {
	var start, answer, end, enqueue, connect sql.NullInt64
	var talk, hold, wrap, recording int64
	err := rows.Scan(&r.ID, &r.SIPCallID, &r.Direction, &r.Trunk, &r.Caller, &r.Called,
		&start, &answer, &end,
		&r.IVRPath, &r.CaseNumber, &r.Queue, &enqueue, &r.Agent, &connect,
		&r.Disposition, &r.HangupSide, &r.HangupCause, &r.SIPStatus, &r.Codec, &r.NodeID,
		&r.RingAttempts, &talk, &hold, &wrap, &r.Transfers, &r.RecordingFile, &recording, &r.RecordingSHA256, &r.Voicemail, &r.SurveyAnswers, &r.Satisfaction, &r.Visits,
		&r.Campaign, &r.Attempt, &r.Target, &r.Parent, &r.Handoffs)
	r.Start, r.Answer, r.End = fromMicros(start), fromMicros(answer), fromMicros(end)
	r.EnqueueTime, r.Connect = fromMicros(enqueue), fromMicros(connect)
	r.Talk, r.Hold, r.WrapUp = time.Duration(talk)*time.Microsecond, time.Duration(hold)*time.Microsecond, time.Duration(wrap)*time.Microsecond
	r.RecordingDuration = time.Duration(recording) * time.Microsecond
	return err
}

// Upsert stores recs in one transaction; an existing ID is replaced.
func (s *SQLite) Upsert(ctx context.Context, recs []Record) error {
	return s.exec(ctx, sqliteUpsert, recs)
}

// InsertMissing stores the records whose ID is not stored yet, in one
// transaction, and leaves existing rows untouched.
func (s *SQLite) InsertMissing(ctx context.Context, recs []Record) error {
	return s.exec(ctx, sqliteInsertMissing, recs)
}

func (s *SQLite) exec(ctx context.Context, query string, recs []Record) error {
	if len(recs) == 0 {
		return nil
	}
	if err := validRecords(recs); err != nil {
		return err
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		err := s.execEach(ctx, tx, query, len(recs),
			func(i int) []any { return recordArgs(&recs[i]) },
			func(i int) string { return "record " + recs[i].ID })
		if err != nil {
			return err
		}
		return s.insertOutbox(ctx, tx, eventsFromRecords(recs)) // the feed's events, in the same transaction
	})
}

// recordWhere returns the WHERE clause (empty or " WHERE ...") and its
// arguments for f.
func recordWhere(f Filter) (string, []any) {
	var where []string
	var args []any
	if !f.From.IsZero() {
		where, args = append(where, "start_us >= ?"), append(args, f.From.UnixMicro())
	}
	if !f.To.IsZero() {
		where, args = append(where, "start_us < ?"), append(args, f.To.UnixMicro())
	}
	for _, c := range []struct{ col, val string }{
		{"queue", f.Queue}, {"disposition", string(f.Disposition)}, {"caller", f.Caller}, {"agent", f.Agent}, {"id", f.ID},
	} {
		if c.val != "" {
			where, args = append(where, c.col+" = ?"), append(args, c.val)
		}
	}
	switch f.Direction {
	case "":
	case DirectionInbound: // records without a direction are inbound
		where, args = append(where, "direction IN (?, '')"), append(args, f.Direction)
	default:
		where, args = append(where, "direction = ?"), append(args, f.Direction)
	}
	if len(where) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(where, " AND "), args
}

// List returns the records matching f ordered by Start, then ID.
func (s *SQLite) List(ctx context.Context, f Filter) ([]Record, error) {
	where, args := recordWhere(f)
	q := "SELECT " + cdrColumns + " FROM cdr" + where + " ORDER BY start_us, id LIMIT ?"
	limit := f.limit()
	args = append(args, limit)

	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("cdr: database %s: %w", s.path, err)
	}
	defer rows.Close()
	out := make([]Record, 0, min(limit, 256))
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, fmt.Errorf("cdr: database %s: %w", s.path, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cdr: database %s: %w", s.path, err)
	}
	return out, nil
}

var _ reportRecordScanner = (*SQLite)(nil)

// scanReport reads the narrow projection a report needs (see
// reportRecordScanner) with no allocation per row beyond the driver's own:
// the text columns that take few values (queues, agents, dispositions) are
// interned; visits, target and parent (nearly one value per call) are not.
func (s *SQLite) scanReport(ctx context.Context, f Filter, fn func(*Record) error) error {
	where, args := recordWhere(f)
	rows, err := s.db.QueryContext(ctx, `SELECT start_us, end_us, enqueue_us, connect_us, talk_us, hold_us, wrap_us,
		transfers, queue, agent, disposition, direction, satisfaction, visits, target, parent FROM cdr`+where, args...)
	if err != nil {
		return fmt.Errorf("cdr: database %s: %w", s.path, err)
	}
	defer rows.Close()
	intern := map[string]string{}
	str := func(b sql.RawBytes) string {
		if v, ok := intern[string(b)]; ok {
			return v
		}
		v := string(b)
		intern[v] = v
		return v
	}
	var (
		start, end, enqueue, connect sql.NullInt64
		talk, hold, wrap, transfers  int64
		queue, agent, disp, dir, sat sql.RawBytes
		visits, target, parent       sql.RawBytes
		r                            Record
	)
	for rows.Next() {
		if err := rows.Scan(&start, &end, &enqueue, &connect, &talk, &hold, &wrap, &transfers,
			&queue, &agent, &disp, &dir, &sat, &visits, &target, &parent); err != nil {
			return fmt.Errorf("cdr: database %s: %w", s.path, err)
		}
		r = Record{
			Start: fromMicros(start), End: fromMicros(end), EnqueueTime: fromMicros(enqueue), Connect: fromMicros(connect),
			Talk: time.Duration(talk) * time.Microsecond, Hold: time.Duration(hold) * time.Microsecond,
			WrapUp: time.Duration(wrap) * time.Microsecond, Transfers: int(transfers),
			Queue: str(queue), Agent: str(agent), Disposition: Disposition(str(disp)), Direction: str(dir), Satisfaction: str(sat),
			Visits: string(visits), Target: string(target), Parent: string(parent),
		}
		if err := fn(&r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("cdr: database %s: %w", s.path, err)
	}
	return nil
}
