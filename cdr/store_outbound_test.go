package cdr

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"fmt"
	"reflect"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
)

// outboundRecords are a survey call, a human callback task, a virtual hold
// callback (schema version 4 fields), an inbound call and a record with no
// direction.
func outboundRecords() []Record {
	survey := testRecord(1)
	survey.Direction, survey.Campaign, survey.Attempt, survey.Target = DirectionSurvey, "回访-2026-03", 3, "C2026000042"
	survey.Queue, survey.Agent, survey.Visits = "", "", ""
	task := testRecord(2)
	task.Direction, task.Campaign, task.Attempt, task.Target = DirectionCallback, "回访-2026-03", 1, "C2026000042"
	task.Disposition = DispositionNoAnswer
	vh := testRecord(3)
	vh.Direction, vh.Parent = DirectionCallback, "call-00004"
	in := testRecord(4)
	in.Disposition = DispositionCallback
	legacy := testRecord(5)
	legacy.Direction = ""
	return []Record{survey, task, vh, in, legacy}
}

// TestStoreOutboundFields: campaign, attempt, target and parent round-trip
// through Upsert, List and Scan, a later Upsert replaces them, and List
// filters by direction (inbound taking the records without one).
func TestStoreOutboundFields(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		recs := outboundRecords()
		if err := s.Upsert(ctx, recs); err != nil {
			t.Fatal(err)
		}
		got, err := s.List(ctx, Filter{})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, recs) {
			t.Fatalf("List:\n got  %+v\n want %+v", got, recs)
		}
		scanned := map[string]Record{}
		if err := s.Scan(ctx, Filter{}, func(r *Record) error { scanned[r.ID] = *r; return nil }); err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if scanned[r.ID] != r {
				t.Errorf("Scan %s:\n got  %+v\n want %+v", r.ID, scanned[r.ID], r)
			}
		}

		// The next attempt of the task replaces the row; a cleared field
		// comes back empty.
		next := recs[1]
		next.Attempt, next.Campaign, next.Disposition = 2, "", DispositionAnswered
		if err := s.Upsert(ctx, []Record{next}); err != nil {
			t.Fatal(err)
		}
		if got, err := s.List(ctx, Filter{Direction: DirectionCallback, Disposition: DispositionAnswered}); err != nil ||
			len(got) != 1 || got[0] != next {
			t.Fatalf("after the second attempt: %+v, %v", got, err)
		}

		for _, tt := range []struct {
			f    Filter
			want []string
		}{
			{Filter{Direction: DirectionInbound}, []string{recs[3].ID, recs[4].ID}},
			{Filter{Direction: DirectionSurvey}, []string{recs[0].ID}},
			{Filter{Direction: DirectionCallback}, []string{recs[1].ID, recs[2].ID}},
			{Filter{Direction: DirectionCallback, Disposition: DispositionNoAnswer}, nil},
			{Filter{Direction: DirectionInbound, Disposition: DispositionCallback}, []string{recs[3].ID}},
			{Filter{Direction: "outbound"}, nil},
		} {
			got, err := s.List(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, r := range got {
				ids = append(ids, r.ID)
			}
			if fmt.Sprint(ids) != fmt.Sprint(tt.want) {
				t.Errorf("%+v: got %v, want %v", tt.f, ids, tt.want)
			}
			n := 0
			if err := s.Scan(ctx, tt.f, func(*Record) error { n++; return nil }); err != nil || n != len(tt.want) {
				t.Errorf("Scan %+v: %d records, %v; want %d", tt.f, n, err, len(tt.want))
			}
		}
	})
}

// v3Record is a record as schema version 3 stored it.
var v3Record = testRecord(7)

// TestStoreMigrateFromV3: a database of schema version 3 with a record is
// brought to version 4: the record is kept with empty outbound fields, and
// records with them are stored and read back.
func TestStoreMigrateFromV3(t *testing.T) {
	ctx := context.Background()
	check := func(t *testing.T, s Store) {
		t.Helper()
		got, err := s.List(ctx, Filter{})
		if err != nil || len(got) != 1 || got[0].ID != v3Record.ID || got[0].Visits != v3Record.Visits ||
			got[0].Campaign != "" || got[0].Attempt != 0 || got[0].Target != "" || got[0].Parent != "" {
			t.Fatalf("after migration: %+v, %v", got, err)
		}
		recs := outboundRecords()
		if err := s.Upsert(ctx, recs); err != nil {
			t.Fatal(err)
		}
		got, err = s.List(ctx, Filter{Direction: DirectionSurvey})
		if err != nil || len(got) != 1 || got[0] != recs[0] {
			t.Fatalf("after migration, a survey record: %+v, %v", got, err)
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
		if err := old.migrateTo(ctx, ms[:3]); err != nil {
			t.Fatal(err)
		}
		r := v3Record
		if _, err := db.Exec(`INSERT INTO cdr (id, start_us, queue, visits) VALUES (?, ?, ?, ?)`,
			r.ID, r.Start.UnixMicro(), r.Queue, r.Visits); err != nil {
			t.Fatal(err)
		}
		db.Close()
		s, err := OpenSQLite(path)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if v := SQLiteSchemaVersion(); v < 4 {
			t.Errorf("SQLite schema version %d, want at least 4", v)
		}
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
		old := &Postgres{pool: pool, name: "v3"}
		if err := old.migrateTo(ctx, ms[:3]); err != nil {
			t.Fatal(err)
		}
		r := v3Record
		if _, err := pool.Exec(ctx, `INSERT INTO cdr (id, start_at, queue, visits) VALUES ($1, $2, $3, $4)`,
			r.ID, r.Start, r.Queue, r.Visits); err != nil {
			t.Fatal(err)
		}
		pool.Close()
		p, err := OpenPostgres(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		if v := PostgresSchemaVersion(); v < 4 {
			t.Errorf("PostgreSQL schema version %d, want at least 4", v)
		}
		check(t, p)
	})
}

// TestRecordsCSVOutbound: the records CSV ends with campaign, attempt,
// target and parent (empty on inbound records), after the columns it had.
func TestRecordsCSVOutbound(t *testing.T) {
	var b bytes.Buffer
	if err := WriteRecordsCSV(&b, outboundRecords()); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	n := len(RecordCSVHeader)
	if fmt.Sprint(rows[0][:28]) != "[id sip_call_id direction trunk caller called start answer end ivr_path case_number queue enqueue agent connect "+
		"disposition hangup_side hangup_cause sip_status codec node_id talk_s hold_s wrap_up_s ring_attempts transfers visits satisfaction]" ||
		fmt.Sprint(rows[0][28:32]) != "[campaign attempt target parent]" || n < 32 {
		t.Fatalf("header %v", rows[0])
	}
	for i, want := range [][]string{
		{"回访-2026-03", "3", "C2026000042", ""},
		{"回访-2026-03", "1", "C2026000042", ""},
		{"", "", "", "call-00004"},
		{"", "", "", ""},
	} {
		if row := rows[i+1]; len(row) != n || fmt.Sprint(row[28:32]) != fmt.Sprint(want) || row[0] != outboundRecords()[i].ID {
			t.Errorf("row %d: %v, want it to end with %v", i+1, row, want)
		}
	}
}
