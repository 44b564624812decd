package cdr

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

var _ Outbox = (*SQLite)(nil)

const (
	sqliteInsertOutbox = `INSERT INTO outbox (id, type, time_us, node_id, data) VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`
	// INDEXED BY: left to itself SQLite walks agent_events_event (event, time_us) through
	// every ENTERQUEUE of the table for each agent event stored (quadratic: 3,000 calls
	// took 117 s under the race detector); a call has a handful of events.
	sqliteEnterCaller = `SELECT data2 FROM agent_events INDEXED BY agent_events_call
		WHERE call_id = ? AND event = 'ENTERQUEUE' ORDER BY time_us LIMIT 1`
)

// insertOutbox adds evs to the outbox inside tx (each only if its ID is new).
func (s *SQLite) insertOutbox(ctx context.Context, tx *sql.Tx, evs []OutboxEvent) error {
	if err := validOutbox(evs); err != nil {
		return err
	}
	data := make([][]byte, len(evs))
	for i := range evs {
		b, err := json.Marshal(evs[i].Data)
		if err != nil {
			return fmt.Errorf("cdr: outbox event %s: %w", evs[i].ID, err)
		}
		data[i] = b
	}
	return s.execEach(ctx, tx, sqliteInsertOutbox, len(evs), func(i int) []any {
		e := &evs[i]
		return []any{e.ID, e.Type, e.Time.UnixMicro(), e.NodeID, string(data[i])}
	}, func(i int) string { return "outbox event " + evs[i].ID })
}

// outboxFromEvents derives the feed's events of evs inside tx (after the
// events are inserted: a CONNECT finds its ENTERQUEUE in the same batch).
func (s *SQLite) outboxFromEvents(ctx context.Context, tx *sql.Tx, evs []AgentEvent) error {
	var out []OutboxEvent
	caller := func(callID string) string {
		var n string
		if callID != "" {
			_ = tx.QueryRowContext(ctx, sqliteEnterCaller, callID).Scan(&n)
		}
		return n
	}
	for i := range evs {
		out = append(out, eventsFromAgentEvent(&evs[i], caller)...)
	}
	return s.insertOutbox(ctx, tx, out)
}

// AppendOutbox stores evs in one transaction, each only if its ID is new.
func (s *SQLite) AppendOutbox(ctx context.Context, evs []OutboxEvent) error {
	if len(evs) == 0 {
		return nil
	}
	return s.inTx(ctx, func(tx *sql.Tx) error { return s.insertOutbox(ctx, tx, evs) })
}

// ListOutbox returns events with after < seq <= upTo (0: unbounded), by seq.
func (s *SQLite) ListOutbox(ctx context.Context, after, upTo int64, limit int) ([]OutboxEvent, error) {
	if upTo <= 0 {
		upTo = 1<<63 - 1
	}
	rows, err := s.db.QueryContext(ctx, `SELECT seq, id, type, time_us, node_id, data FROM outbox
		WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?`, after, upTo, max(limit, 1))
	if err != nil {
		return nil, fmt.Errorf("cdr: database %s: %w", s.path, err)
	}
	defer rows.Close()
	var out []OutboxEvent
	for rows.Next() {
		var e OutboxEvent
		var us int64
		var data string
		if err := rows.Scan(&e.Seq, &e.ID, &e.Type, &us, &e.NodeID, &data); err != nil {
			return nil, fmt.Errorf("cdr: database %s: %w", s.path, err)
		}
		e.Time = time.UnixMicro(us).UTC()
		if err := json.Unmarshal([]byte(data), &e.Data); err != nil {
			return nil, fmt.Errorf("cdr: database %s: outbox event %s: %w", s.path, e.ID, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cdr: database %s: %w", s.path, err)
	}
	return out, nil
}

// LastOutboxSeq is the highest seq stored, 0 if none.
func (s *SQLite) LastOutboxSeq(ctx context.Context) (int64, error) {
	var seq int64
	if err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM outbox`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("cdr: database %s: %w", s.path, err)
	}
	return seq, nil
}

// WebhookCursors returns every webhook's cursor.
func (s *SQLite) WebhookCursors(ctx context.Context) (map[string]int64, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT webhook, seq FROM webhook_cursor`)
	if err != nil {
		return nil, fmt.Errorf("cdr: database %s: %w", s.path, err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var id string
		var seq int64
		if err := rows.Scan(&id, &seq); err != nil {
			return nil, fmt.Errorf("cdr: database %s: %w", s.path, err)
		}
		out[id] = seq
	}
	return out, rows.Err()
}

// SaveWebhook sets the cursor and adds the dead letters in one transaction.
func (s *SQLite) SaveWebhook(ctx context.Context, webhook string, cursor int64, dead []DeadLetter) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO webhook_cursor (webhook, seq, updated_us) VALUES (?, ?, ?)
			ON CONFLICT (webhook) DO UPDATE SET seq = MAX(seq, excluded.seq), updated_us = excluded.updated_us`,
			webhook, cursor, time.Now().UnixMicro()); err != nil {
			return fmt.Errorf("cdr: database %s: webhook %s: %w", s.path, webhook, err)
		}
		for _, d := range dead {
			ev, err := json.Marshal(d.Event)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO webhook_dead (webhook, event_id, seq, event, attempts, last_error, dead_us)
				VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (webhook, event_id) DO UPDATE SET attempts = excluded.attempts,
				last_error = excluded.last_error, dead_us = excluded.dead_us`,
				webhook, d.Event.ID, d.Event.Seq, string(ev), d.Attempts, d.LastError, d.Dead.UnixMicro()); err != nil {
				return fmt.Errorf("cdr: database %s: dead letter %s: %w", s.path, d.Event.ID, err)
			}
		}
		return nil
	})
}

// DeadLetters lists a webhook's dead letters, oldest first.
func (s *SQLite) DeadLetters(ctx context.Context, webhook string, limit int) ([]DeadLetter, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT seq, event, attempts, last_error, dead_us, replays FROM webhook_dead
		WHERE webhook = ? ORDER BY seq LIMIT ?`, webhook, max(limit, 1))
	if err != nil {
		return nil, fmt.Errorf("cdr: database %s: %w", s.path, err)
	}
	defer rows.Close()
	out := []DeadLetter{}
	for rows.Next() {
		var d DeadLetter
		var seq, us int64
		var ev string
		if err := rows.Scan(&seq, &ev, &d.Attempts, &d.LastError, &us, &d.Replays); err != nil {
			return nil, fmt.Errorf("cdr: database %s: %w", s.path, err)
		}
		if err := json.Unmarshal([]byte(ev), &d.Event); err != nil {
			return nil, fmt.Errorf("cdr: database %s: dead letter: %w", s.path, err)
		}
		d.Event.Seq, d.Dead = seq, time.UnixMicro(us).UTC()
		out = append(out, d)
	}
	return out, rows.Err()
}

// ResolveDeadLetter removes a replayed dead letter, or notes a failed replay.
func (s *SQLite) ResolveDeadLetter(ctx context.Context, webhook, eventID, replayErr string) error {
	q, args := `DELETE FROM webhook_dead WHERE webhook = ? AND event_id = ?`, []any{webhook, eventID}
	if replayErr != "" {
		q, args = `UPDATE webhook_dead SET replays = replays + 1, last_error = ? WHERE webhook = ? AND event_id = ?`, []any{replayErr, webhook, eventID}
	}
	if _, err := s.db.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("cdr: database %s: %w", s.path, err)
	}
	return nil
}

// PruneOutbox deletes events with seq <= maxSeq older than before.
func (s *SQLite) PruneOutbox(ctx context.Context, before time.Time, maxSeq int64) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM outbox WHERE seq <= ? AND time_us < ?`, maxSeq, before.UnixMicro())
	if err != nil {
		return 0, fmt.Errorf("cdr: database %s: %w", s.path, err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}
