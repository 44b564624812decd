package cdr

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"
)

// RecordingRetention is the retention job's "recordings" table: the WAV files (call
// recordings and voicemails, Record.RecordingFile, relative to dataDir) of the records
// that the "cdr" table is about to delete. Put it before RetentionTables(s): for each
// batch of the oldest records with a file, the files are removed first, then the
// records' recording fields are cleared (so a crash in between only leaves a record
// pointing at a file that is gone, and the next run goes on); the cdr table then deletes
// the records. A store that is neither SQLite nor PostgreSQL has nothing to purge.
func RecordingRetention(s Store, dataDir string) RetentionTable {
	var list func(ctx context.Context, before time.Time, limit int) ([]string, []string, error)
	var clear func(ctx context.Context, ids []string) error
	switch s := s.(type) {
	case *SQLite:
		list = func(ctx context.Context, before time.Time, limit int) (ids, files []string, err error) {
			rows, err := s.db.QueryContext(ctx, `SELECT id, recording_file FROM cdr WHERE start_us < ? AND recording_file != ''
				ORDER BY start_us, id LIMIT ?`, before.UnixMicro(), limit)
			if err != nil {
				return nil, nil, err
			}
			defer rows.Close()
			for rows.Next() {
				var id, f string
				if err := rows.Scan(&id, &f); err != nil {
					return nil, nil, err
				}
				ids, files = append(ids, id), append(files, f)
			}
			return ids, files, rows.Err()
		}
		clear = func(ctx context.Context, ids []string) error {
			return s.secureDelete(ctx, func(conn *sql.Conn) error {
				for _, id := range ids {
					if _, err := conn.ExecContext(ctx, `UPDATE cdr SET recording_file = '', recording_sha256 = '' WHERE id = ?`, id); err != nil {
						return err
					}
				}
				return nil
			})
		}
	case *Postgres:
		list = func(ctx context.Context, before time.Time, limit int) (ids, files []string, err error) {
			err = s.query(ctx, `SELECT id, recording_file FROM cdr WHERE start_at < $1 AND recording_file != ''
				ORDER BY start_at, id LIMIT $2`, []any{before.UTC(), limit}, func(rows pgx.Rows) error {
				var id, f string
				if err := rows.Scan(&id, &f); err != nil {
					return err
				}
				ids, files = append(ids, id), append(files, f)
				return nil
			})
			return ids, files, err
		}
		clear = func(ctx context.Context, ids []string) error {
			_, err := s.pool.Exec(ctx, `UPDATE cdr SET recording_file = '', recording_sha256 = '' WHERE id = ANY($1)`, ids)
			return err
		}
	default:
		return RetentionTable{Name: "recordings", Purge: func(context.Context, time.Time, int) (int64, error) { return 0, nil }}
	}
	return RetentionTable{Name: "recordings", Purge: func(ctx context.Context, before time.Time, limit int) (int64, error) {
		ids, files, err := list(ctx, before, limit)
		if err != nil {
			return 0, fmt.Errorf("cdr: retention: recordings: %w", err)
		}
		var errs []error
		for _, f := range files {
			if err := removeRecording(dataDir, f); err != nil {
				errs = append(errs, err)
			}
		}
		if err := errors.Join(errs...); err != nil {
			return 0, fmt.Errorf("cdr: retention: recordings: %w", err)
		}
		if len(ids) > 0 {
			if err := clear(ctx, ids); err != nil {
				return 0, fmt.Errorf("cdr: retention: recordings: %w", err)
			}
		}
		return int64(len(ids)), nil
	}}
}

// removeRecording deletes a record's file (one already gone is fine) and its day's
// directory once empty. A name that is not a local path is left alone.
func removeRecording(dataDir, rel string) error {
	rel = filepath.FromSlash(rel)
	if !filepath.IsLocal(rel) {
		return fmt.Errorf("%q is not a path inside the data dir", rel)
	}
	p := filepath.Join(dataDir, rel)
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	os.Remove(filepath.Dir(p)) // only if empty; an error is fine
	return nil
}
