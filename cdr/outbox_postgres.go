package cdr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

var _ Outbox = (*Postgres)(nil)

// pgInsertOutbox skips known IDs before the row is formed, so that a
// duplicate (the record's fallback call.start, say) takes no sequence
// number: the readers of the outbox take a gap in seq for a transaction
// still in flight and wait a moment before passing it.
const pgInsertOutbox = `INSERT INTO outbox (id, type, time_at, node_id, data)
	SELECT i.id, i.type, i.time_at, i.node_id, i.data
	FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::text[]) WITH ORDINALITY AS i(id, type, time_at, node_id, data, n)
	WHERE NOT EXISTS (SELECT 1 FROM outbox o WHERE o.id = i.id)
	ORDER BY i.n
	ON CONFLICT (id) DO NOTHING`

func (p *Postgres) insertOutbox(ctx context.Context, tx pgx.Tx, evs []OutboxEvent) error {
	if len(evs) == 0 {
		return nil
	}
	if err := validOutbox(evs); err != nil {
		return err
	}
	evs = dedupe(evs, func(e *OutboxEvent) string { return e.ID }, false)
	n := len(evs)
	ids, types, nodes, data := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	times := make([]time.Time, n)
	for i := range evs {
		b, err := json.Marshal(evs[i].Data)
		if err != nil {
			return fmt.Errorf("cdr: outbox event %s: %w", evs[i].ID, err)
		}
		ids[i], types[i], times[i], nodes[i], data[i] = evs[i].ID, evs[i].Type, evs[i].Time.UTC(), evs[i].NodeID, string(b)
	}
	if _, err := tx.Exec(ctx, pgInsertOutbox, ids, types, times, nodes, data); err != nil {
		return fmt.Errorf("cdr: database %s: outbox: %w", p.name, err)
	}
	return nil
}

func (p *Postgres) outboxFromEvents(ctx context.Context, tx pgx.Tx, evs []AgentEvent) error {
	var out []OutboxEvent
	caller := func(callID string) string {
		var n string
		if callID != "" {
			_ = tx.QueryRow(ctx, `SELECT data2 FROM agent_events WHERE call_id = $1 AND event = 'ENTERQUEUE' ORDER BY event_time LIMIT 1`, callID).Scan(&n)
		}
		return n
	}
	for i := range evs {
		out = append(out, eventsFromAgentEvent(&evs[i], caller)...)
	}
	return p.insertOutbox(ctx, tx, out)
}

// AppendOutbox stores evs in one transaction, each only if its ID is new.
func (p *Postgres) AppendOutbox(ctx context.Context, evs []OutboxEvent) error {
	if len(evs) == 0 {
		return nil
	}
	return p.inTx(ctx, func(tx pgx.Tx) error { return p.insertOutbox(ctx, tx, evs) })
}

// ListOutbox returns events with after < seq <= upTo (0: unbounded), by seq.
func (p *Postgres) ListOutbox(ctx context.Context, after, upTo int64, limit int) ([]OutboxEvent, error) {
	if upTo <= 0 {
		upTo = 1<<63 - 1
	}
	var out []OutboxEvent
	err := p.query(ctx, `SELECT seq, id, type, time_at, node_id, data FROM outbox WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3`,
		[]any{after, upTo, max(limit, 1)}, func(rows pgx.Rows) error {
			var e OutboxEvent
			var data string
			if err := rows.Scan(&e.Seq, &e.ID, &e.Type, &e.Time, &e.NodeID, &data); err != nil {
				return fmt.Errorf("cdr: database %s: %w", p.name, err)
			}
			e.Time = e.Time.UTC()
			if err := json.Unmarshal([]byte(data), &e.Data); err != nil {
				return fmt.Errorf("cdr: database %s: outbox event %s: %w", p.name, e.ID, err)
			}
			out = append(out, e)
			return nil
		})
	return out, err
}

// LastOutboxSeq is the highest seq stored, 0 if none.
func (p *Postgres) LastOutboxSeq(ctx context.Context) (int64, error) {
	var seq int64
	if err := p.pool.QueryRow(ctx, `SELECT COALESCE(MAX(seq), 0) FROM outbox`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("cdr: database %s: %w", p.name, err)
	}
	return seq, nil
}

// WebhookCursors returns every webhook's cursor.
func (p *Postgres) WebhookCursors(ctx context.Context) (map[string]int64, error) {
	out := map[string]int64{}
	err := p.query(ctx, `SELECT webhook, seq FROM webhook_cursor`, nil, func(rows pgx.Rows) error {
		var id string
		var seq int64
		if err := rows.Scan(&id, &seq); err != nil {
			return err
		}
		out[id] = seq
		return nil
	})
	return out, err
}

// SaveWebhook sets the cursor and adds the dead letters in one transaction.
func (p *Postgres) SaveWebhook(ctx context.Context, webhook string, cursor int64, dead []DeadLetter) error {
	return p.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO webhook_cursor (webhook, seq, updated_at) VALUES ($1, $2, now())
			ON CONFLICT (webhook) DO UPDATE SET seq = GREATEST(webhook_cursor.seq, excluded.seq), updated_at = now()`, webhook, cursor); err != nil {
			return fmt.Errorf("cdr: database %s: webhook %s: %w", p.name, webhook, err)
		}
		for _, d := range dead {
			ev, err := json.Marshal(d.Event)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO webhook_dead (webhook, event_id, seq, event, attempts, last_error, dead_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (webhook, event_id) DO UPDATE SET attempts = excluded.attempts,
				last_error = excluded.last_error, dead_at = excluded.dead_at`,
				webhook, d.Event.ID, d.Event.Seq, string(ev), d.Attempts, d.LastError, d.Dead.UTC()); err != nil {
				return fmt.Errorf("cdr: database %s: dead letter %s: %w", p.name, d.Event.ID, err)
			}
		}
		return nil
	})
}

// DeadLetters lists a webhook's dead letters, oldest first.
func (p *Postgres) DeadLetters(ctx context.Context, webhook string, limit int) ([]DeadLetter, error) {
	out := []DeadLetter{}
	err := p.query(ctx, `SELECT seq, event, attempts, last_error, dead_at, replays FROM webhook_dead WHERE webhook = $1 ORDER BY seq LIMIT $2`,
		[]any{webhook, max(limit, 1)}, func(rows pgx.Rows) error {
			var d DeadLetter
			var seq int64
			var ev string
			var attempts, replays int32
			if err := rows.Scan(&seq, &ev, &attempts, &d.LastError, &d.Dead, &replays); err != nil {
				return err
			}
			if err := json.Unmarshal([]byte(ev), &d.Event); err != nil {
				return errors.Join(fmt.Errorf("cdr: database %s: dead letter", p.name), err)
			}
			d.Event.Seq, d.Dead, d.Attempts, d.Replays = seq, d.Dead.UTC(), int(attempts), int(replays)
			out = append(out, d)
			return nil
		})
	return out, err
}

// ResolveDeadLetter removes a replayed dead letter, or notes a failed replay.
func (p *Postgres) ResolveDeadLetter(ctx context.Context, webhook, eventID, replayErr string) error {
	q, args := `DELETE FROM webhook_dead WHERE webhook = $1 AND event_id = $2`, []any{webhook, eventID}
	if replayErr != "" {
		q, args = `UPDATE webhook_dead SET replays = replays + 1, last_error = $3 WHERE webhook = $1 AND event_id = $2`, []any{webhook, eventID, replayErr}
	}
	if _, err := p.pool.Exec(ctx, q, args...); err != nil {
		return fmt.Errorf("cdr: database %s: %w", p.name, err)
	}
	return nil
}

// PruneOutbox deletes events with seq <= maxSeq older than before.
func (p *Postgres) PruneOutbox(ctx context.Context, before time.Time, maxSeq int64) (int64, error) {
	tag, err := p.pool.Exec(ctx, `DELETE FROM outbox WHERE seq <= $1 AND time_at < $2`, maxSeq, before.UTC())
	if err != nil {
		return 0, fmt.Errorf("cdr: database %s: %w", p.name, err)
	}
	return tag.RowsAffected(), nil
}
