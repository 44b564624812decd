package cdr

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// wrapUpEnd is the WRAPUPEND event of agent for call, wrap seconds.
func wrapUpEnd(id, call, agent, wrap string) AgentEvent {
	return AgentEvent{ID: id, Time: t0.Add(time.Hour), CallID: call, AgentID: agent, Queue: "consult",
		Event: EventWrapUpEnd, Data1: wrap}
}

// TestStoreWrapUp: a WRAPUPEND event sets its call's WrapUp (the sum over
// the call's agents) whether the record is stored before or after it; a
// later Upsert of the record does not reset it; replays change nothing.
func TestStoreWrapUp(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		wrap := func(id string) time.Duration {
			t.Helper()
			got, err := s.List(ctx, Filter{})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range got {
				if r.ID == id {
					return r.WrapUp
				}
			}
			t.Fatalf("record %s not stored", id)
			return 0
		}
		// Record first, as the call path writes it (before wrap-up ends).
		a := testRecord(1)
		a.WrapUp = 0
		if err := s.Upsert(ctx, []Record{a}); err != nil {
			t.Fatal(err)
		}
		if err := s.AppendEvents(ctx, []AgentEvent{wrapUpEnd("w1", a.ID, "1001", "5.840")}); err != nil {
			t.Fatal(err)
		}
		if got := wrap(a.ID); got != 5840*time.Millisecond {
			t.Fatalf("record then event: WrapUp %v, want 5.84s", got)
		}
		// The record again (a journal replay, or a later version): the
		// applied wrap-up stays.
		if err := s.Upsert(ctx, []Record{a}); err != nil {
			t.Fatal(err)
		}
		if got := wrap(a.ID); got != 5840*time.Millisecond {
			t.Fatalf("after a second upsert: WrapUp %v, want 5.84s", got)
		}
		// A second agent (after a transfer) adds theirs; a replayed event
		// adds nothing.
		evs := []AgentEvent{wrapUpEnd("w2", a.ID, "1002", "3.001"), wrapUpEnd("w1", a.ID, "1001", "5.840")}
		for range 2 {
			if err := s.AppendEvents(ctx, evs); err != nil {
				t.Fatal(err)
			}
		}
		if got := wrap(a.ID); got != 8841*time.Millisecond {
			t.Fatalf("two agents: WrapUp %v, want 8.841s", got)
		}

		// Event first: the record takes it on insert, by Upsert or by
		// InsertMissing (a call rebuilt after a crash).
		b, c := testRecord(2), testRecord(3)
		b.WrapUp, c.WrapUp = 30*time.Second, 30*time.Second // the configured value, say
		if err := s.AppendEvents(ctx, []AgentEvent{wrapUpEnd("w3", b.ID, "1003", "1.5"), wrapUpEnd("w4", c.ID, "1003", "2"),
			wrapUpEnd("w5", "no-such-call", "1003", "2"), wrapUpEnd("w6", c.ID, "1003", "not a number")}); err != nil {
			t.Fatal(err)
		}
		if err := s.Upsert(ctx, []Record{b}); err != nil {
			t.Fatal(err)
		}
		if err := s.(MissingInserter).InsertMissing(ctx, []Record{c}); err != nil {
			t.Fatal(err)
		}
		if got := wrap(b.ID); got != 1500*time.Millisecond {
			t.Fatalf("event then record: WrapUp %v, want 1.5s", got)
		}
		if got := wrap(c.ID); got != 2*time.Second {
			t.Fatalf("event then InsertMissing: WrapUp %v, want 2s", got)
		}
		// A record with no WRAPUPEND keeps its own value.
		d := testRecord(4)
		if err := s.Upsert(ctx, []Record{d}); err != nil {
			t.Fatal(err)
		}
		if got := wrap(d.ID); got != d.WrapUp {
			t.Fatalf("no event: WrapUp %v, want %v", got, d.WrapUp)
		}
		if all, err := s.ListEvents(ctx, EventFilter{}); err != nil || len(all) != 6 {
			t.Fatalf("%d events stored, %v; want 6", len(all), err)
		}
	})
}

// v2Record is a record as schema version 2 stored it.
var v2Record = testRecord(5)

// TestStoreMigrateFromV2: a database of schema version 2 with a record is
// brought to the current version: the record is kept, with no visits, and
// visits and wrap-ups work.
func TestStoreMigrateFromV2(t *testing.T) {
	ctx := context.Background()
	check := func(t *testing.T, s Store) {
		t.Helper()
		got, err := s.List(ctx, Filter{})
		if err != nil || len(got) != 1 || got[0].ID != v2Record.ID || got[0].Visits != "" || got[0].WrapUp != v2Record.WrapUp {
			t.Fatalf("after migration: %+v, %v", got, err)
		}
		r := testRecord(6)
		if err := s.Upsert(ctx, []Record{r}); err != nil {
			t.Fatal(err)
		}
		if err := s.AppendEvents(ctx, []AgentEvent{wrapUpEnd("w", v2Record.ID, "1001", "4.25")}); err != nil {
			t.Fatal(err)
		}
		got, err = s.List(ctx, Filter{})
		if err != nil || len(got) != 2 || got[0].WrapUp != 4250*time.Millisecond || got[1].Visits != r.Visits {
			t.Fatalf("after migration, writing: %+v, %v", got, err)
		}
	}
	t.Run("sqlite", func(t *testing.T) {
		path := t.TempDir() + "/cdr.db"
		db, err := sql.Open("sqlite", path+sqliteDSNParams)
		if err != nil {
			t.Fatal(err)
		}
		ms, err := sqliteMigrations()
		if err != nil {
			t.Fatal(err)
		}
		old := &SQLite{db: db, path: path}
		if err := old.migrateTo(ctx, ms[:2]); err != nil {
			t.Fatal(err)
		}
		r := v2Record
		if _, err := db.Exec(`INSERT INTO cdr (id, start_us, queue, wrap_us) VALUES (?, ?, ?, ?)`,
			r.ID, r.Start.UnixMicro(), r.Queue, r.WrapUp.Microseconds()); err != nil {
			t.Fatal(err)
		}
		db.Close()
		s, err := OpenSQLite(path)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		check(t, s)
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := newPGSchema(t)
		pool, err := pgxpool.New(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		ms, err := LoadMigrations(postgresMigrationFS, "migrations/postgres")
		if err != nil {
			t.Fatal(err)
		}
		old := &Postgres{pool: pool, name: "v2"}
		if err := old.migrateTo(ctx, ms[:2]); err != nil {
			t.Fatal(err)
		}
		r := v2Record
		if _, err := pool.Exec(ctx, `INSERT INTO cdr (id, start_at, queue, wrap_us) VALUES ($1, $2, $3, $4)`,
			r.ID, r.Start, r.Queue, r.WrapUp.Microseconds()); err != nil {
			t.Fatal(err)
		}
		pool.Close()
		p, err := OpenPostgres(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		check(t, p)
	})
}
