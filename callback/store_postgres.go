package callback

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hotline12345/hotline/cdr"
)

//go:embed migrations/postgres/*.sql
var postgresMigrationFS embed.FS

// pgStore is the Store in PostgreSQL (pgx/v5 pool; times as timestamptz).
type pgStore struct {
	pool *pgxpool.Pool
	name string // host:port/database for errors, never the password
}

var _ Store = (*pgStore)(nil)

func openPostgres(ctx context.Context, dsn string) (*pgStore, error) {
	pool, name, err := cdr.OpenPool(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("campaign store: %w", err)
	}
	p := &pgStore{pool: pool, name: name}
	if err := p.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return p, nil
}

func (p *pgStore) Close() error {
	p.pool.Close()
	return nil
}

func (p *pgStore) errf(err error) error {
	return fmt.Errorf("callback: database %s: %w", p.name, err)
}

// migrate applies the missing migrations in one transaction, under an
// advisory lock per schema so that concurrent openers take turns.
func (p *pgStore) migrate(ctx context.Context) error {
	ms, err := cdr.LoadMigrations(postgresMigrationFS, "migrations/postgres")
	if err != nil {
		return err
	}
	return p.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('hotline-callback-migrate:' || current_schema()))`); err != nil {
			return p.errf(err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+schemaTable+` (
			version    INTEGER     NOT NULL PRIMARY KEY,
			name       TEXT        NOT NULL,
			applied_at TIMESTAMPTZ NOT NULL)`); err != nil {
			return p.errf(err)
		}
		var cur int
		if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM `+schemaTable).Scan(&cur); err != nil {
			return p.errf(err)
		}
		return migrateSchema(ctx, p.name, ms, cur,
			func(ctx context.Context, q string) error { _, err := tx.Exec(ctx, q); return err },
			func(ctx context.Context, m cdr.Migration) error {
				_, err := tx.Exec(ctx, `INSERT INTO `+schemaTable+` (version, name, applied_at) VALUES ($1, $2, $3)`,
					m.Version, m.Name, time.Now().UTC())
				return err
			})
	})
}

// inTx runs fn in a transaction, committed if fn succeeds.
func (p *pgStore) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	tx, err := p.pool.Begin(ctx)
	if err != nil {
		return p.errf(err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback(context.WithoutCancel(ctx))
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return p.errf(fmt.Errorf("commit: %w", err))
	}
	return nil
}

// pgTime is a time's stored form: NULL if zero.
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

func (p *pgStore) CreateCampaign(ctx context.Context, c Campaign) error {
	if err := prepareCampaign(&c); err != nil {
		return err
	}
	settings, err := campaignSettings(c)
	if err != nil {
		return err
	}
	tag, err := p.pool.Exec(ctx, `INSERT INTO campaigns (id, name, state, created_at, settings) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (id) DO NOTHING`, c.ID, c.Name, c.State, c.Created, string(settings))
	if err != nil {
		return p.errf(err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%w: campaign %s exists", ErrBadCampaign, c.ID)
	}
	return nil
}

// SetCampaignState sets a campaign's state (ErrFinal once cancelled). Its
// targets are the dialer's: cancelling changes none of them.
func (p *pgStore) SetCampaignState(ctx context.Context, id, state string) error {
	return p.inTx(ctx, func(tx pgx.Tx) error {
		var cur string
		err := tx.QueryRow(ctx, `SELECT state FROM campaigns WHERE id = $1 FOR UPDATE`, id).Scan(&cur)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("callback: campaign %s: %w", id, ErrNotFound)
		} else if err != nil {
			return p.errf(err)
		}
		if err := checkTransition(id, cur, state); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE campaigns SET state = $1 WHERE id = $2`, state, id); err != nil {
			return p.errf(err)
		}
		return nil
	})
}

const pgCampaignCols = `id, name, state, created_at, settings::text`

func scanPGCampaign(row pgx.Row) (Campaign, error) {
	var id, name, state, settings string
	var created time.Time
	if err := row.Scan(&id, &name, &state, &created, &settings); err != nil {
		return Campaign{}, err
	}
	return decodeCampaign(id, name, state, created.UTC(), []byte(settings))
}

func (p *pgStore) Campaign(ctx context.Context, id string) (Campaign, error) {
	c, err := scanPGCampaign(p.pool.QueryRow(ctx, `SELECT `+pgCampaignCols+` FROM campaigns WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Campaign{}, fmt.Errorf("callback: campaign %s: %w", id, ErrNotFound)
	} else if err != nil {
		return Campaign{}, p.errf(err)
	}
	return c, nil
}

func (p *pgStore) Campaigns(ctx context.Context) ([]Campaign, error) {
	rows, err := p.pool.Query(ctx, `SELECT `+pgCampaignCols+` FROM campaigns ORDER BY created_at DESC, id DESC`)
	if err != nil {
		return nil, p.errf(err)
	}
	defer rows.Close()
	var out []Campaign
	for rows.Next() {
		c, err := scanPGCampaign(rows)
		if err != nil {
			return nil, p.errf(err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, p.errf(err)
	}
	return out, nil
}

// campaignOpen fails with ErrNotFound or ErrFinal (cancelled) unless the
// campaign takes new targets. In a transaction it locks the campaign's row
// against a concurrent cancel.
func (p *pgStore) campaignOpen(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, id string) error {
	var state string
	err := q.QueryRow(ctx, `SELECT state FROM campaigns WHERE id = $1 FOR SHARE`, id).Scan(&state)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("callback: campaign %s: %w", id, ErrNotFound)
	} else if err != nil {
		return p.errf(err)
	}
	if state == CampaignCancelled {
		return fmt.Errorf("callback: campaign %s is cancelled: %w", id, ErrFinal)
	}
	return nil
}

var pgTargetColumns = []string{"campaign", "case_id", "phone", "queue", "agent", "call_id", "closed_at", "deadline_at",
	"state", "outcome", "attempts", "next_at", "last_call", "satisfaction", "answers", "reached_at",
	"reached_by", "human", "human_agent", "human_tries", "updated_at"}

const pgTargetCols = `campaign, case_id, phone, queue, agent, call_id, closed_at, deadline_at, state, outcome, attempts,
	next_at, last_call, satisfaction, answers, reached_at, reached_by, human, human_agent, human_tries, updated_at`

// AddTargets copies ts into a temporary table and inserts them from there
// with ON CONFLICT DO NOTHING RETURNING; a case id that is not returned
// was stored already.
func (p *pgStore) AddTargets(ctx context.Context, campaign string, ts []Target) (int, []TargetError, error) {
	if len(ts) == 0 {
		return 0, nil, p.campaignOpen(ctx, p.pool, campaign)
	}
	ts = append([]Target(nil), ts...) // defaults are filled in a copy
	keep, refused := sortTargets(campaign, ts, time.Now())
	var stored []TargetError
	added := 0
	err := p.inTx(ctx, func(tx pgx.Tx) error {
		if err := p.campaignOpen(ctx, tx, campaign); err != nil {
			return err
		}
		if len(keep) == 0 {
			return nil
		}
		// Per connection, emptied at commit; LIKE resolves the table
		// through the connection's search_path.
		if _, err := tx.Exec(ctx, `CREATE TEMP TABLE IF NOT EXISTS campaign_targets_in
			(LIKE campaign_targets INCLUDING DEFAULTS) ON COMMIT DELETE ROWS`); err != nil {
			return p.errf(err)
		}
		n := 0
		src := pgx.CopyFromFunc(func() ([]any, error) {
			if n == len(keep) {
				return nil, nil
			}
			t := &ts[keep[n]]
			n++
			return []any{t.Campaign, t.CaseID, t.Phone, t.Queue, t.Agent, t.CallID, pgTime(t.ClosedAt), pgTime(t.Deadline),
				t.State, t.Outcome, int32(t.Attempts), pgTime(t.NextAt), t.LastCall, t.Satisfaction, t.Answers, pgTime(t.ReachedAt),
				t.ReachedBy, t.Human, t.HumanAgent, int32(t.HumanTries), pgTime(t.Updated)}, nil
		})
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"campaign_targets_in"}, pgTargetColumns, src); err != nil {
			return p.errf(fmt.Errorf("copy %d targets: %w", len(keep), err))
		}
		rows, err := tx.Query(ctx, `INSERT INTO campaign_targets (`+pgTargetCols+`) SELECT `+pgTargetCols+
			` FROM campaign_targets_in ON CONFLICT (campaign, case_id) DO NOTHING RETURNING case_id`)
		if err != nil {
			return p.errf(err)
		}
		inserted := make(map[string]struct{}, len(keep))
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return p.errf(err)
			}
			inserted[id] = struct{}{}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return p.errf(err)
		}
		added = len(inserted)
		if added < len(keep) {
			for _, i := range keep {
				if _, ok := inserted[ts[i].CaseID]; !ok {
					stored = append(stored, TargetError{Index: i, CaseID: ts[i].CaseID, Err: ErrDuplicateCase.Error()})
				}
			}
		}
		return nil
	})
	if err != nil {
		return 0, nil, err
	}
	return added, mergeRefused(refused, stored), nil
}

func (p *pgStore) Due(ctx context.Context, campaign string, now time.Time, limit int) ([]Target, error) {
	return p.targets(ctx, `WHERE campaign = $1 AND state = $2 AND (next_at IS NULL OR next_at <= $3)
		ORDER BY deadline_at, case_id LIMIT $4`, campaign, TargetPending, usTime(now), limit)
}

func (p *pgStore) Update(ctx context.Context, t Target, fromState string) error {
	if err := prepareUpdate(&t); err != nil {
		return err
	}
	q := `UPDATE campaign_targets SET state = $1, outcome = $2, attempts = $3, next_at = $4, last_call = $5, satisfaction = $6,
		answers = $7, reached_at = $8, reached_by = $9, human = $10, human_agent = $11, human_tries = $12, updated_at = $13
		WHERE campaign = $14 AND case_id = $15`
	args := []any{t.State, t.Outcome, int32(t.Attempts), pgTime(t.NextAt), t.LastCall, t.Satisfaction,
		t.Answers, pgTime(t.ReachedAt), t.ReachedBy, t.Human, t.HumanAgent, int32(t.HumanTries), pgTime(t.Updated),
		t.Campaign, t.CaseID}
	if fromState != "" {
		q += ` AND state = $16`
		args = append(args, fromState)
	}
	tag, err := p.pool.Exec(ctx, q, args...)
	if err != nil {
		return p.errf(err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("callback: target %s/%s (from state %q): %w", t.Campaign, t.CaseID, fromState, ErrNotFound)
	}
	return nil
}

func (p *pgStore) Target(ctx context.Context, campaign, caseID string) (Target, error) {
	ts, err := p.targets(ctx, `WHERE campaign = $1 AND case_id = $2`, campaign, caseID)
	if err != nil {
		return Target{}, err
	}
	if len(ts) == 0 {
		return Target{}, fmt.Errorf("callback: target %s/%s: %w", campaign, caseID, ErrNotFound)
	}
	return ts[0], nil
}

// Targets lists a campaign's targets (in state, if not "") by deadline (none
// last), then case id; limit <= 0 is no limit.
func (p *pgStore) Targets(ctx context.Context, campaign, state string, limit int) ([]Target, error) {
	if limit <= 0 {
		limit = math.MaxInt32
	}
	if state == "" {
		return p.targets(ctx, `WHERE campaign = $1 ORDER BY deadline_at, case_id LIMIT $2`, campaign, limit)
	}
	return p.targets(ctx, `WHERE campaign = $1 AND state = $2 ORDER BY deadline_at, case_id LIMIT $3`, campaign, state, limit)
}

// InState goes through the campaigns so that the (campaign, state) index
// serves it.
func (p *pgStore) InState(ctx context.Context, state string) ([]Target, error) {
	return p.targets(ctx, `WHERE campaign IN (SELECT id FROM campaigns) AND state = $1 ORDER BY campaign, case_id`, state)
}

// targets runs SELECT targets with the rest of the query, where.
func (p *pgStore) targets(ctx context.Context, where string, args ...any) ([]Target, error) {
	rows, err := p.pool.Query(ctx, `SELECT `+pgTargetCols+` FROM campaign_targets `+where, args...)
	if err != nil {
		return nil, p.errf(err)
	}
	defer rows.Close()
	var out []Target
	for rows.Next() {
		var t Target
		var closed, deadline, next, reached, updated pgtype.Timestamptz
		var attempts, tries int32
		if err := rows.Scan(&t.Campaign, &t.CaseID, &t.Phone, &t.Queue, &t.Agent, &t.CallID, &closed, &deadline,
			&t.State, &t.Outcome, &attempts, &next, &t.LastCall, &t.Satisfaction, &t.Answers, &reached,
			&t.ReachedBy, &t.Human, &t.HumanAgent, &tries, &updated); err != nil {
			return nil, p.errf(err)
		}
		t.ClosedAt, t.Deadline, t.NextAt = fromPGTime(closed), fromPGTime(deadline), fromPGTime(next)
		t.ReachedAt, t.Updated = fromPGTime(reached), fromPGTime(updated)
		t.Attempts, t.HumanTries = int(attempts), int(tries)
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, p.errf(err)
	}
	return out, nil
}

func (p *pgStore) Counts(ctx context.Context, campaign string, now time.Time, atRisk time.Duration) (Counts, error) {
	if _, err := p.Campaign(ctx, campaign); err != nil {
		return Counts{}, err
	}
	rows, err := p.pool.Query(ctx, `SELECT state, outcome, satisfaction, COUNT(*),
		COUNT(*) FILTER (WHERE state = ANY($1) AND deadline_at IS NOT NULL AND deadline_at < $2),
		COUNT(*) FILTER (WHERE reached_at IS NOT NULL),
		COUNT(*) FILTER (WHERE reached_at IS NOT NULL AND (deadline_at IS NULL OR reached_at <= deadline_at))
		FROM campaign_targets WHERE campaign = $3 GROUP BY state, outcome, satisfaction`,
		nonFinal, usTime(now.Add(atRisk)), campaign)
	if err != nil {
		return Counts{}, p.errf(err)
	}
	defer rows.Close()
	c := newCounts()
	for rows.Next() {
		var r countRow
		var n, risk, reached, inTime int64
		if err := rows.Scan(&r.state, &r.outcome, &r.satisfaction, &n, &risk, &reached, &inTime); err != nil {
			return Counts{}, p.errf(err)
		}
		r.n, r.atRisk, r.reached, r.inTime = int(n), int(risk), int(reached), int(inTime)
		c.add(r)
	}
	if err := rows.Err(); err != nil {
		return Counts{}, p.errf(err)
	}
	return c, nil
}
