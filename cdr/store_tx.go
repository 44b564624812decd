package cdr

import (
	"context"
	"fmt"
	"time"
)

// The shapes both stores share: a transaction that commits if its body
// succeeds and rolls back otherwise, and the migration loop. Each store
// supplies its dialect (sqlite.go, postgres.go).

// txn is a transaction as the shared loops see it; pgx.Tx is one, and
// sqliteTx adapts *sql.Tx.
type txn interface {
	Commit(ctx context.Context) error
	Rollback(ctx context.Context) error
}

// inTx runs fn in the transaction begin starts: committed if fn succeeds,
// rolled back if it fails (fn's error is returned as it is). name is the
// database, for errors.
func inTx[T txn](ctx context.Context, name string, begin func(context.Context) (T, error), fn func(T) error) error {
	tx, err := begin(ctx)
	if err != nil {
		return fmt.Errorf("cdr: database %s: %w", name, err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback(context.WithoutCancel(ctx))
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("cdr: database %s: commit: %w", name, err)
	}
	return nil
}

// migrationTx is one store's dialect of the migration loop, inside the
// transaction the loop runs in.
type migrationTx struct {
	exec    func(ctx context.Context, q string, args ...any) error
	version func(ctx context.Context) (int, error) // the newest applied, 0 if none
	// create makes the schema_version table if it is missing; insert
	// records an applied migration, its arguments being version, name and
	// the time applied (RFC 3339 text).
	create, insert string
}

// migrateSchema creates the schema_version table if needed and applies the
// migrations of ms the schema lacks, in order. It fails with ErrSchemaTooNew
// if the schema is newer than ms.
func migrateSchema(ctx context.Context, name string, ms []Migration, tx migrationTx) error {
	if err := tx.exec(ctx, tx.create); err != nil {
		return fmt.Errorf("cdr: database %s: %w", name, err)
	}
	cur, err := tx.version(ctx)
	if err != nil {
		return fmt.Errorf("cdr: database %s: %w", name, err)
	}
	if cur > len(ms) {
		return fmt.Errorf("%s: schema version %d is newer than this build (%d); upgrade hotlined: %w", name, cur, len(ms), ErrSchemaTooNew)
	}
	for _, m := range ms[cur:] {
		if err := tx.exec(ctx, m.SQL); err != nil {
			return fmt.Errorf("cdr: database %s: migration %s: %w", name, m.Name, err)
		}
		if err := tx.exec(ctx, tx.insert, m.Version, m.Name, time.Now().UTC().Format(time.RFC3339Nano)); err != nil {
			return fmt.Errorf("cdr: database %s: %w", name, err)
		}
	}
	return nil
}

// wrapUp is the actual wrap-up a WRAPUPEND event gives a call.
type wrapUp struct {
	eventID, callID string
	us              int64
}

// wrapUps picks the WRAPUPEND events of calls out of evs. Their Data1 (the
// seconds) sets the call's Record.WrapUp: each store keeps one row per
// event in cdr_wrapup and sets cdr.wrap_us to the call's sum, in the
// transaction that stores the events, and an Upsert of the record takes
// the sum over its own WrapUp. Events whose Data1 is not a duration are
// stored but change no record.
func wrapUps(evs []AgentEvent) []wrapUp {
	var out []wrapUp
	for i := range evs {
		e := &evs[i]
		if e.Event != EventWrapUpEnd || e.CallID == "" {
			continue
		}
		d, err := ParseSeconds(e.Data1)
		if err != nil || d < 0 {
			continue
		}
		out = append(out, wrapUp{eventID: e.ID, callID: e.CallID, us: d.Microseconds()})
	}
	return out
}

// validRecords checks every record has an ID.
func validRecords(recs []Record) error {
	for i := range recs {
		if recs[i].ID == "" {
			return fmt.Errorf("cdr: record %d of %d has no ID: %w", i+1, len(recs), ErrInvalidRecord)
		}
	}
	return nil
}
