package cdr

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// Scan calls fn for every record matching f (f.Limit is ignored), in the
// order of the index it uses, reusing one Record.
func (s *SQLite) Scan(ctx context.Context, f Filter, fn func(*Record) error) error {
	where, args := recordWhere(f)
	rows, err := s.db.QueryContext(ctx, "SELECT "+cdrColumns+" FROM cdr"+where, args...)
	if err != nil {
		return fmt.Errorf("cdr: database %s: %w", s.path, err)
	}
	defer rows.Close()
	var r Record
	for rows.Next() {
		r = Record{}
		if err := scanRecordInto(rows, &r); err != nil {
			return fmt.Errorf("cdr: database %s: %w", s.path, err)
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

// eventColumns is the column order of eventArgs and the event scans.
const eventColumns = `id, time_us, call_id, queue, agent_id, event, data1, data2, data3, data4, data5, node_id`

var sqliteInsertEvent = `INSERT INTO agent_events (` + eventColumns + `) VALUES (` +
	placeholders(strings.Count(eventColumns, ",")+1) + `) ON CONFLICT (id) DO NOTHING`

// AppendEvents stores evs in one transaction; an ID stored already is
// skipped, so replays never duplicate events.
func (s *SQLite) AppendEvents(ctx context.Context, evs []AgentEvent) error {
	if len(evs) == 0 {
		return nil
	}
	if err := validEvents(evs); err != nil {
		return err
	}
	wus := wrapUps(evs)
	return s.inTx(ctx, func(tx *sql.Tx) error {
		err := s.execEach(ctx, tx, sqliteInsertEvent, len(evs), func(i int) []any {
			e := &evs[i]
			return []any{e.ID, e.Time.UnixMicro(), e.CallID, e.Queue, e.AgentID, e.Event,
				e.Data1, e.Data2, e.Data3, e.Data4, e.Data5, e.NodeID}
		}, func(i int) string { return "event " + evs[i].ID })
		if err != nil {
			return err
		}
		err = s.execEach(ctx, tx, sqliteInsertWrapUp, len(wus),
			func(i int) []any { return []any{wus[i].eventID, wus[i].callID, wus[i].us} },
			func(i int) string { return "wrap-up of " + wus[i].callID })
		if err != nil {
			return err
		}
		err = s.execEach(ctx, tx, sqliteApplyWrapUp, len(wus),
			func(i int) []any { return []any{wus[i].callID} },
			func(i int) string { return "wrap-up of " + wus[i].callID })
		if err != nil {
			return err
		}
		return s.outboxFromEvents(ctx, tx, evs) // the feed's events, in the same transaction
	})
}

// eventWhere returns the WHERE clause and arguments for f; mark(n) is the
// n-th placeholder (1-based) in the store's dialect, timeCol the column of
// the event time and timeArg the stored form of a time.
func eventWhere(f EventFilter, mark func(int) string, timeCol string, timeArg func(time.Time) any) (string, []any) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, cond+" "+mark(len(args)))
	}
	if !f.From.IsZero() {
		add(timeCol+" >=", timeArg(f.From))
	}
	if !f.To.IsZero() {
		add(timeCol+" <", timeArg(f.To))
	}
	for _, c := range []struct{ col, val string }{
		{"call_id", f.CallID}, {"queue", f.Queue}, {"agent_id", f.AgentID}, {"node_id", f.NodeID},
	} {
		if c.val != "" {
			add(c.col+" =", c.val)
		}
	}
	if len(f.Events) > 0 {
		var ms []string
		for _, e := range f.Events {
			args = append(args, e)
			ms = append(ms, mark(len(args)))
		}
		where = append(where, "event IN ("+strings.Join(ms, ", ")+")")
	}
	if len(where) == 0 {
		return "", args
	}
	return " WHERE " + strings.Join(where, " AND "), args
}

// ListEvents returns the events matching f ordered by Time, then ID.
func (s *SQLite) ListEvents(ctx context.Context, f EventFilter) ([]AgentEvent, error) {
	where, args := eventWhere(f, func(int) string { return "?" }, "time_us", func(t time.Time) any { return t.UnixMicro() })
	limit := f.limit()
	args = append(args, limit)
	rows, err := s.db.QueryContext(ctx, "SELECT "+eventColumns+" FROM agent_events"+where+" ORDER BY time_us, id LIMIT ?", args...)
	if err != nil {
		return nil, fmt.Errorf("cdr: database %s: %w", s.path, err)
	}
	defer rows.Close()
	out := make([]AgentEvent, 0, min(limit, 256))
	for rows.Next() {
		var e AgentEvent
		var us int64
		if err := rows.Scan(&e.ID, &us, &e.CallID, &e.Queue, &e.AgentID, &e.Event,
			&e.Data1, &e.Data2, &e.Data3, &e.Data4, &e.Data5, &e.NodeID); err != nil {
			return nil, fmt.Errorf("cdr: database %s: %w", s.path, err)
		}
		e.Time = time.UnixMicro(us).UTC()
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cdr: database %s: %w", s.path, err)
	}
	return out, nil
}
