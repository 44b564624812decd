package callback

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers driver "sqlite"

	"github.com/hotline12345/hotline/cdr"
)

//go:embed migrations/sqlite/*.sql
var sqliteMigrationFS embed.FS

// sqliteDSNParams are cdr's (cdr/sqlite.go), so that both handles on one
// file agree: busy_timeout first so the other pragmas wait for locks, WAL,
// and BEGIN IMMEDIATE so that concurrent writers queue on busy_timeout;
// secure_delete(fast) zeroes deleted content in the pages written anyway.
const sqliteDSNParams = "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=secure_delete(fast)&_txlock=immediate"

// sqliteStore is the Store in a SQLite file (times as INTEGER microseconds).
type sqliteStore struct {
	db   *sql.DB
	path string
}

var _ Store = (*sqliteStore)(nil)

func openSQLite(ctx context.Context, path string) (*sqliteStore, error) {
	if path == "" || strings.ContainsAny(path, "?#") || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("callback: database path %q: must be a plain file path", path)
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("callback: database %s: cannot create directory: %w", path, err)
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("callback: database %s is not writable: %w", path, err)
	}
	_ = f.Close()
	db, err := sql.Open("sqlite", path+sqliteDSNParams)
	if err != nil {
		return nil, fmt.Errorf("callback: database %s: %w", path, err)
	}
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	db.SetConnMaxIdleTime(5 * time.Minute)
	s := &sqliteStore{db: db, path: path}
	if err := s.migrate(ctx); err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

func (s *sqliteStore) Close() error { return s.db.Close() }

func (s *sqliteStore) errf(err error) error {
	return fmt.Errorf("callback: database %s: %w", s.path, err)
}

func (s *sqliteStore) migrate(ctx context.Context) error {
	ms, err := cdr.LoadMigrations(sqliteMigrationFS, "migrations/sqlite")
	if err != nil {
		return err
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+schemaTable+` (
			version    INTEGER NOT NULL PRIMARY KEY,
			name       TEXT    NOT NULL,
			applied_at TEXT    NOT NULL)`); err != nil {
			return s.errf(err)
		}
		var cur int
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM `+schemaTable).Scan(&cur); err != nil {
			return s.errf(err)
		}
		return migrateSchema(ctx, s.path, ms, cur,
			func(ctx context.Context, q string) error { _, err := tx.ExecContext(ctx, q); return err },
			func(ctx context.Context, m cdr.Migration) error {
				_, err := tx.ExecContext(ctx, `INSERT INTO `+schemaTable+` (version, name, applied_at) VALUES (?, ?, ?)`,
					m.Version, m.Name, time.Now().UTC().Format(time.RFC3339Nano))
				return err
			})
	})
}

// inTx runs fn in a transaction, committed if fn succeeds.
func (s *sqliteStore) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return s.errf(err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return s.errf(fmt.Errorf("commit: %w", err))
	}
	return nil
}

// us is a time's stored form: microseconds, NULL if zero.
func us(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

func fromUS(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMicro(v.Int64).UTC()
}

func (s *sqliteStore) CreateCampaign(ctx context.Context, c Campaign) error {
	if err := prepareCampaign(&c); err != nil {
		return err
	}
	settings, err := campaignSettings(c)
	if err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO campaigns (id, name, state, created_us, settings) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (id) DO NOTHING`, c.ID, c.Name, c.State, c.Created.UnixMicro(), string(settings))
	if err != nil {
		return s.errf(err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return s.errf(err)
	} else if n == 0 {
		return fmt.Errorf("%w: campaign %s exists", ErrBadCampaign, c.ID)
	}
	return nil
}

// SetCampaignState sets a campaign's state (ErrFinal once cancelled). Its
// targets are the dialer's: cancelling changes none of them.
func (s *sqliteStore) SetCampaignState(ctx context.Context, id, state string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var cur string
		err := tx.QueryRowContext(ctx, `SELECT state FROM campaigns WHERE id = ?`, id).Scan(&cur)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("callback: campaign %s: %w", id, ErrNotFound)
		} else if err != nil {
			return s.errf(err)
		}
		if err := checkTransition(id, cur, state); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE campaigns SET state = ? WHERE id = ?`, state, id); err != nil {
			return s.errf(err)
		}
		return nil
	})
}

func (s *sqliteStore) scanCampaign(row interface{ Scan(...any) error }) (Campaign, error) {
	var id, name, state, settings string
	var created int64
	if err := row.Scan(&id, &name, &state, &created, &settings); err != nil {
		return Campaign{}, err
	}
	return decodeCampaign(id, name, state, time.UnixMicro(created).UTC(), []byte(settings))
}

const sqliteCampaignCols = `id, name, state, created_us, settings`

func (s *sqliteStore) Campaign(ctx context.Context, id string) (Campaign, error) {
	c, err := s.scanCampaign(s.db.QueryRowContext(ctx, `SELECT `+sqliteCampaignCols+` FROM campaigns WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Campaign{}, fmt.Errorf("callback: campaign %s: %w", id, ErrNotFound)
	} else if err != nil {
		return Campaign{}, s.errf(err)
	}
	return c, nil
}

func (s *sqliteStore) Campaigns(ctx context.Context) ([]Campaign, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+sqliteCampaignCols+` FROM campaigns ORDER BY created_us DESC, id DESC`)
	if err != nil {
		return nil, s.errf(err)
	}
	defer rows.Close()
	var out []Campaign
	for rows.Next() {
		c, err := s.scanCampaign(rows)
		if err != nil {
			return nil, s.errf(err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, s.errf(err)
	}
	return out, nil
}

// campaignOpen fails with ErrNotFound or ErrFinal (cancelled) unless the
// campaign takes new targets.
func (s *sqliteStore) campaignOpen(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, id string) error {
	var state string
	err := q.QueryRowContext(ctx, `SELECT state FROM campaigns WHERE id = ?`, id).Scan(&state)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("callback: campaign %s: %w", id, ErrNotFound)
	} else if err != nil {
		return s.errf(err)
	}
	if state == CampaignCancelled {
		return fmt.Errorf("callback: campaign %s is cancelled: %w", id, ErrFinal)
	}
	return nil
}

const sqliteTargetCols = `campaign, case_id, phone, queue, agent, call_id, closed_us, deadline_us, state, outcome, attempts,
	next_us, last_call, satisfaction, answers, reached_us, reached_by, human, human_agent, human_tries, updated_us`

// sqliteInsertRows is the number of targets per multi-row INSERT (at most
// 21 parameters each, well under SQLite's 32766).
const sqliteInsertRows = 256

// sqliteNewCols are the columns a new target usually has (imports, the
// API); a batch where some target also has dialer fields set (outcome,
// attempts...) is inserted with every column. Fewer parameters to bind is
// most of AddTargets' speed.
var sqliteNewCols = []string{"case_id", "phone", "queue", "agent", "call_id", "closed_us", "deadline_us", "state", "next_us", "updated_us"}

var sqliteAllCols = []string{"case_id", "phone", "queue", "agent", "call_id", "closed_us", "deadline_us", "state", "next_us", "updated_us",
	"outcome", "attempts", "last_call", "satisfaction", "answers", "reached_us", "reached_by", "human", "human_agent", "human_tries"}

// sqliteArgs appends the values of t's first n columns of sqliteAllCols.
func sqliteArgs(args []any, t *Target, n int) []any {
	args = append(args, t.CaseID, t.Phone, t.Queue, t.Agent, t.CallID, us(t.ClosedAt), us(t.Deadline), t.State, us(t.NextAt), us(t.Updated))
	if n > len(sqliteNewCols) {
		args = append(args, t.Outcome, t.Attempts, t.LastCall, t.Satisfaction, t.Answers, us(t.ReachedAt),
			t.ReachedBy, t.Human, t.HumanAgent, t.HumanTries)
	}
	return args
}

// isNew reports whether t has none of the dialer's fields set.
func isNew(t *Target) bool {
	return t.Outcome == "" && t.Attempts == 0 && t.LastCall == "" && t.Satisfaction == "" && t.Answers == "" &&
		t.ReachedAt.IsZero() && t.ReachedBy == "" && t.Human == "" && t.HumanAgent == "" && t.HumanTries == 0
}

// AddTargets inserts ts in one transaction, by multi-row INSERT ... ON
// CONFLICT DO NOTHING. A batch that inserts fewer rows than it has is rolled
// back to its savepoint and inserted again with RETURNING: a case id not
// returned was stored already.
func (s *sqliteStore) AddTargets(ctx context.Context, campaign string, ts []Target) (int, []TargetError, error) {
	if len(ts) == 0 {
		return 0, nil, s.campaignOpen(ctx, s.db, campaign)
	}
	ts = append([]Target(nil), ts...) // defaults are filled in a copy
	keep, refused := sortTargets(campaign, ts, time.Now())
	cols := sqliteNewCols
	for _, i := range keep {
		if !isNew(&ts[i]) {
			cols = sqliteAllCols
			break
		}
	}
	var stored []TargetError
	added := 0
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.campaignOpen(ctx, tx, campaign); err != nil {
			return err
		}
		var full *sql.Stmt
		defer func() {
			if full != nil {
				full.Close()
			}
		}()
		args := make([]any, 0, sqliteInsertRows*(1+len(cols)))
		for start := 0; start < len(keep); start += sqliteInsertRows {
			batch := keep[start:min(start+sqliteInsertRows, len(keep))]
			args = args[:0]
			for _, i := range batch {
				args = sqliteArgs(append(args, campaign), &ts[i], len(cols))
			}
			if _, err := tx.ExecContext(ctx, `SAVEPOINT add_targets`); err != nil {
				return s.errf(err)
			}
			var res sql.Result
			var err error
			if len(batch) == sqliteInsertRows {
				if full == nil {
					if full, err = tx.PrepareContext(ctx, sqliteInsert(cols, sqliteInsertRows, false)); err != nil {
						return s.errf(err)
					}
				}
				res, err = full.ExecContext(ctx, args...)
			} else {
				res, err = tx.ExecContext(ctx, sqliteInsert(cols, len(batch), false), args...)
			}
			if err != nil {
				return s.errf(err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return s.errf(err)
			}
			if n < int64(len(batch)) {
				dups, err := s.insertReturning(ctx, tx, cols, ts, batch, args)
				if err != nil {
					return err
				}
				stored = append(stored, dups...)
				n = int64(len(batch) - len(dups))
			}
			if _, err := tx.ExecContext(ctx, `RELEASE add_targets`); err != nil {
				return s.errf(err)
			}
			added += int(n)
		}
		return nil
	})
	if err != nil {
		return 0, nil, err
	}
	return added, mergeRefused(refused, stored), nil
}

// insertReturning rolls the batch back to its savepoint and inserts it
// again with RETURNING, to tell the stored case ids; it returns them.
func (s *sqliteStore) insertReturning(ctx context.Context, tx *sql.Tx, cols []string, ts []Target, batch []int, args []any) ([]TargetError, error) {
	if _, err := tx.ExecContext(ctx, `ROLLBACK TO add_targets`); err != nil {
		return nil, s.errf(err)
	}
	rows, err := tx.QueryContext(ctx, sqliteInsert(cols, len(batch), true), args...)
	if err != nil {
		return nil, s.errf(err)
	}
	inserted := make(map[string]struct{}, len(batch))
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, s.errf(err)
		}
		inserted[id] = struct{}{}
	}
	if err := rows.Close(); err != nil {
		return nil, s.errf(err)
	}
	if err := rows.Err(); err != nil {
		return nil, s.errf(err)
	}
	var dups []TargetError
	for _, i := range batch {
		if _, ok := inserted[ts[i].CaseID]; !ok {
			dups = append(dups, TargetError{Index: i, CaseID: ts[i].CaseID, Err: ErrDuplicateCase.Error()})
		}
	}
	return dups, nil
}

// sqliteInsert is the INSERT of n targets with columns campaign and cols.
// (Plain ? parameters: modernc.org/sqlite looks numbered ones up by name,
// at a cost growing with their number.)
func sqliteInsert(cols []string, n int, returning bool) string {
	row := "(?" + strings.Repeat(",?", len(cols)) + ")"
	var b strings.Builder
	b.Grow(300 + n*(len(row)+1))
	b.WriteString(`INSERT INTO campaign_targets (campaign, ` + strings.Join(cols, ", ") + `) VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(row)
	}
	b.WriteString(` ON CONFLICT (campaign, case_id) DO NOTHING`)
	if returning {
		b.WriteString(` RETURNING case_id`)
	}
	return b.String()
}

// sqliteDeadlineKey orders by deadline with no deadline last; the Due
// index is on this very expression.
const sqliteDeadlineKey = `COALESCE(deadline_us, 9223372036854775807)`

func (s *sqliteStore) Due(ctx context.Context, campaign string, now time.Time, limit int) ([]Target, error) {
	return s.targets(ctx, `WHERE campaign = ? AND state = ? AND (next_us IS NULL OR next_us <= ?)
		ORDER BY `+sqliteDeadlineKey+`, case_id LIMIT ?`, campaign, TargetPending, usTime(now).UnixMicro(), limit)
}

func (s *sqliteStore) Update(ctx context.Context, t Target, fromState string) error {
	if err := prepareUpdate(&t); err != nil {
		return err
	}
	q := `UPDATE campaign_targets SET state = ?, outcome = ?, attempts = ?, next_us = ?, last_call = ?, satisfaction = ?,
		answers = ?, reached_us = ?, reached_by = ?, human = ?, human_agent = ?, human_tries = ?, updated_us = ?
		WHERE campaign = ? AND case_id = ?`
	args := []any{t.State, t.Outcome, t.Attempts, us(t.NextAt), t.LastCall, t.Satisfaction,
		t.Answers, us(t.ReachedAt), t.ReachedBy, t.Human, t.HumanAgent, t.HumanTries, us(t.Updated),
		t.Campaign, t.CaseID}
	if fromState != "" {
		q += ` AND state = ?`
		args = append(args, fromState)
	}
	res, err := s.db.ExecContext(ctx, q, args...)
	if err != nil {
		return s.errf(err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return s.errf(err)
	}
	if n == 0 {
		return fmt.Errorf("callback: target %s/%s (from state %q): %w", t.Campaign, t.CaseID, fromState, ErrNotFound)
	}
	return nil
}

func (s *sqliteStore) Target(ctx context.Context, campaign, caseID string) (Target, error) {
	ts, err := s.targets(ctx, `WHERE campaign = ? AND case_id = ?`, campaign, caseID)
	if err != nil {
		return Target{}, err
	}
	if len(ts) == 0 {
		return Target{}, fmt.Errorf("callback: target %s/%s: %w", campaign, caseID, ErrNotFound)
	}
	return ts[0], nil
}

// Targets lists a campaign's targets (in state, if not "") by deadline (none
// last), then case id; limit <= 0 is no limit. With a state the Due index
// serves it; without, the campaign's targets are sorted.
func (s *sqliteStore) Targets(ctx context.Context, campaign, state string, limit int) ([]Target, error) {
	if limit <= 0 {
		limit = math.MaxInt32
	}
	if state == "" {
		return s.targets(ctx, `WHERE campaign = ? ORDER BY `+sqliteDeadlineKey+`, case_id LIMIT ?`, campaign, limit)
	}
	return s.targets(ctx, `WHERE campaign = ? AND state = ? ORDER BY `+sqliteDeadlineKey+`, case_id LIMIT ?`, campaign, state, limit)
}

// InState goes through the campaigns so that the (campaign, state) index
// serves it (SQLite's planner, without statistics, would scan every
// target).
func (s *sqliteStore) InState(ctx context.Context, state string) ([]Target, error) {
	return s.targets(ctx, `INDEXED BY campaign_targets_due WHERE campaign IN (SELECT id FROM campaigns) AND state = ?
		ORDER BY campaign, case_id`, state)
}

// targets runs SELECT targets with the rest of the query, where.
func (s *sqliteStore) targets(ctx context.Context, where string, args ...any) ([]Target, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+sqliteTargetCols+` FROM campaign_targets `+where, args...)
	if err != nil {
		return nil, s.errf(err)
	}
	defer rows.Close()
	var out []Target
	for rows.Next() {
		var t Target
		var closed, deadline, next, reached, updated sql.NullInt64
		if err := rows.Scan(&t.Campaign, &t.CaseID, &t.Phone, &t.Queue, &t.Agent, &t.CallID, &closed, &deadline,
			&t.State, &t.Outcome, &t.Attempts, &next, &t.LastCall, &t.Satisfaction, &t.Answers, &reached,
			&t.ReachedBy, &t.Human, &t.HumanAgent, &t.HumanTries, &updated); err != nil {
			return nil, s.errf(err)
		}
		t.ClosedAt, t.Deadline, t.NextAt = fromUS(closed), fromUS(deadline), fromUS(next)
		t.ReachedAt, t.Updated = fromUS(reached), fromUS(updated)
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, s.errf(err)
	}
	return out, nil
}

func (s *sqliteStore) Counts(ctx context.Context, campaign string, now time.Time, atRisk time.Duration) (Counts, error) {
	if _, err := s.Campaign(ctx, campaign); err != nil {
		return Counts{}, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT state, outcome, satisfaction, COUNT(*),
		SUM(CASE WHEN state IN (?, ?, ?) AND deadline_us IS NOT NULL AND deadline_us < ? THEN 1 ELSE 0 END),
		SUM(CASE WHEN reached_us IS NOT NULL THEN 1 ELSE 0 END),
		SUM(CASE WHEN reached_us IS NOT NULL AND (deadline_us IS NULL OR reached_us <= deadline_us) THEN 1 ELSE 0 END)
		FROM campaign_targets WHERE campaign = ? GROUP BY state, outcome, satisfaction`,
		nonFinal[0], nonFinal[1], nonFinal[2], usTime(now.Add(atRisk)).UnixMicro(), campaign)
	if err != nil {
		return Counts{}, s.errf(err)
	}
	defer rows.Close()
	c := newCounts()
	for rows.Next() {
		var r countRow
		if err := rows.Scan(&r.state, &r.outcome, &r.satisfaction, &r.n, &r.atRisk, &r.reached, &r.inTime); err != nil {
			return Counts{}, s.errf(err)
		}
		c.add(r)
	}
	if err := rows.Err(); err != nil {
		return Counts{}, s.errf(err)
	}
	return c, nil
}
