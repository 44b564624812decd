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
// queue on busy_timeout instead of failing on a lock upgrade.
const sqliteDSNParams = "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate"

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

type migration struct {
	version int
	name    string
	sql     string
}

// sqliteMigrations returns the embedded migrations, ordered by version. A
// migration file is named NNNN_description.sql.
func sqliteMigrations() ([]migration, error) {
	return loadMigrations(sqliteMigrationFS, "migrations/sqlite")
}

// loadMigrations reads the NNNN_description.sql files of dir in fsys.
func loadMigrations(fsys fs.FS, dir string) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("cdr: bad migration file name %q", e.Name())
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(b)})
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("cdr: migrations must be numbered 1..n without gaps, found %s", m.name)
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
func (s *SQLite) migrate(ctx context.Context) (err error) {
	ms, err := sqliteMigrations()
	if err != nil {
		return err
	}
	known := len(ms)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("cdr: database %s: %w", s.path, err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if _, err = tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
		version    INTEGER NOT NULL PRIMARY KEY,
		name       TEXT    NOT NULL,
		applied_at TEXT    NOT NULL)`); err != nil {
		return fmt.Errorf("cdr: database %s: %w", s.path, err)
	}
	var cur int
	if err = tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&cur); err != nil {
		return fmt.Errorf("cdr: database %s: %w", s.path, err)
	}
	if cur > known {
		err = fmt.Errorf("%s: schema version %d is newer than this build (%d); upgrade hotlined: %w", s.path, cur, known, ErrSchemaTooNew)
		return err
	}
	for _, m := range ms[cur:] {
		if _, err = tx.ExecContext(ctx, m.sql); err != nil {
			return fmt.Errorf("cdr: database %s: migration %s: %w", s.path, m.name, err)
		}
		if _, err = tx.ExecContext(ctx, `INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)`,
			m.version, m.name, time.Now().UTC().Format(time.RFC3339Nano)); err != nil {
			return fmt.Errorf("cdr: database %s: %w", s.path, err)
		}
	}
	if err = tx.Commit(); err != nil {
		return fmt.Errorf("cdr: database %s: %w", s.path, err)
	}
	return nil
}

// cdrColumns is the column order of recordArgs and scanRecord.
const cdrColumns = `id, sip_call_id, direction, trunk, caller, called, start_us, answer_us, end_us,
	ivr_path, case_number, queue, enqueue_us, agent, connect_us, disposition, hangup_side,
	hangup_cause, sip_status, codec, node_id,
	ring_attempts, talk_us, hold_us, wrap_us, transfers, recording_file, survey_answers, satisfaction`

var cdrPlaceholders = placeholders(strings.Count(cdrColumns, ",") + 1)

// placeholders returns "?, ?, ..." with n marks.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

var (
	sqliteUpsert = `INSERT INTO cdr (` + cdrColumns + `) VALUES (` + cdrPlaceholders + `)
	ON CONFLICT (id) DO UPDATE SET ` + updateSet(cdrColumns)
	sqliteInsertMissing = `INSERT INTO cdr (` + cdrColumns + `) VALUES (` + cdrPlaceholders + `)
	ON CONFLICT (id) DO NOTHING`
)

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
		r.Transfers, r.RecordingFile, r.SurveyAnswers, r.Satisfaction}
}

func scanRecord(rows *sql.Rows) (Record, error) {
	var r Record
	err := scanRecordInto(rows, &r)
	return r, err
}

func scanRecordInto(rows *sql.Rows, r *Record) error {
	var start, answer, end, enqueue, connect sql.NullInt64
	var talk, hold, wrap int64
	err := rows.Scan(&r.ID, &r.SIPCallID, &r.Direction, &r.Trunk, &r.Caller, &r.Called,
		&start, &answer, &end,
		&r.IVRPath, &r.CaseNumber, &r.Queue, &enqueue, &r.Agent, &connect,
		&r.Disposition, &r.HangupSide, &r.HangupCause, &r.SIPStatus, &r.Codec, &r.NodeID,
		&r.RingAttempts, &talk, &hold, &wrap, &r.Transfers, &r.RecordingFile, &r.SurveyAnswers, &r.Satisfaction)
	r.Start, r.Answer, r.End = fromMicros(start), fromMicros(answer), fromMicros(end)
	r.EnqueueTime, r.Connect = fromMicros(enqueue), fromMicros(connect)
	r.Talk, r.Hold, r.WrapUp = time.Duration(talk)*time.Microsecond, time.Duration(hold)*time.Microsecond, time.Duration(wrap)*time.Microsecond
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

func (s *SQLite) exec(ctx context.Context, query string, recs []Record) (err error) {
	if len(recs) == 0 {
		return nil
	}
	for i := range recs {
		if recs[i].ID == "" {
			return fmt.Errorf("cdr: record %d of %d has no ID: %w", i+1, len(recs), ErrInvalidRecord)
		}
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("cdr: database %s: %w", s.path, err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	stmt, err := tx.PrepareContext(ctx, query)
	if err != nil {
		return fmt.Errorf("cdr: database %s: %w", s.path, err)
	}
	defer stmt.Close()
	for i := range recs {
		if _, err = stmt.ExecContext(ctx, recordArgs(&recs[i])...); err != nil {
			return fmt.Errorf("cdr: database %s: record %s: %w", s.path, recs[i].ID, err)
		}
	}
	if err = tx.Commit(); err != nil {
		return fmt.Errorf("cdr: database %s: commit: %w", s.path, err)
	}
	return nil
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
		{"queue", f.Queue}, {"disposition", string(f.Disposition)}, {"caller", f.Caller}, {"agent", f.Agent},
	} {
		if c.val != "" {
			where, args = append(where, c.col+" = ?"), append(args, c.val)
		}
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
