package callback

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/hotline12345/hotline/cdr"
)

// Campaign targets hold citizens' numbers, so the records' retention job
// (cdr.Retention) prunes them too: a target that is finished (done, failed
// or cancelled) and was last changed before the cutoff is deleted. Targets
// still pending, dialling or with a human are never touched, however old,
// and neither are the campaigns themselves (they hold no numbers beyond
// their do-not-call list, which the operator set).

// RetentionTables are the tables of s the retention job prunes
// (campaign_targets); none for a store of another kind.
func RetentionTables(s Store) []cdr.RetentionTable {
	switch s := s.(type) {
	case *sqliteStore:
		return []cdr.RetentionTable{{Name: "campaign_targets", Purge: s.purgeTargets}}
	case *pgStore:
		return []cdr.RetentionTable{{Name: "campaign_targets", Purge: s.purgeTargets}}
	}
	return nil
}

const (
	sqlitePurgeTargets = `DELETE FROM campaign_targets WHERE (campaign, case_id) IN (
		SELECT campaign, case_id FROM campaign_targets
		WHERE state IN (?, ?, ?) AND COALESCE(updated_us, closed_us) < ? LIMIT ?)`
	pgPurgeTargets = `DELETE FROM campaign_targets WHERE (campaign, case_id) IN (
		SELECT campaign, case_id FROM campaign_targets
		WHERE state IN ($1, $2, $3) AND COALESCE(updated_at, closed_at) < $4 LIMIT $5)`
)

func (s *sqliteStore) purgeTargets(ctx context.Context, before time.Time, limit int) (int64, error) {
	var n int64
	err := cdr.SQLiteSecureDelete(ctx, s.db, func(conn *sql.Conn) error {
		res, err := conn.ExecContext(ctx, sqlitePurgeTargets, TargetDone, TargetFailed, TargetCancelled, before.UnixMicro(), limit)
		if err == nil {
			n, err = res.RowsAffected()
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("callback: database %s: retention: %w", s.path, err)
	}
	return n, nil
}

func (p *pgStore) purgeTargets(ctx context.Context, before time.Time, limit int) (int64, error) {
	tag, err := p.pool.Exec(ctx, pgPurgeTargets, TargetDone, TargetFailed, TargetCancelled, before.UTC(), limit)
	if err != nil {
		return 0, fmt.Errorf("callback: database %s: retention: %w", p.name, err)
	}
	return tag.RowsAffected(), nil
}
