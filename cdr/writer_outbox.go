package cdr

import (
	"context"
	"log/slog"
	"time"
)

// Publish hands over an event of the work-order feed that no record or
// agent event carries (a voicemail, a callback task created outside a
// call's record; docs/events.md), like Event: it never blocks on the
// store; queued, batched into the store's outbox, journaled if the store
// fails or the queue is full, replayed in order. Its ID is its idempotency
// key: publishing the same ID twice stores one event. An event without a
// time gets the current time. A store without an outbox drops it.
//
// Like an agent event, an event still in the in-memory queue (at most
// FlushInterval) is lost by a kill -9; the events derived from records
// are not (the record's Begin snapshot is fsynced).
func (w *Writer) Publish(ev OutboxEvent) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	queued, closed := offer(w, w.outq, ev)
	if queued {
		return
	}
	if !closed {
		w.logEvery(&w.fullLogged, slog.LevelWarn, "cdr writer: feed queue full; journaling events (logged once every 10 s)", "event_id", ev.ID, "queue_size", w.opts.QueueSize)
	}
	w.journalOuts([]OutboxEvent{ev})
	w.wake()
}

// journalOuts appends published events to the journal; if even that
// fails they are dropped and counted (they are not a call's record).
func (w *Writer) journalOuts(evs []OutboxEvent) {
	if err := w.j.appendOuts(evs); err != nil {
		w.errs.Add(1)
		w.dropped.Add(uint64(len(evs)))
		w.logSpill("cdr writer: journal append failed; dropping feed events", "events", len(evs), "error", err)
		return
	}
	w.journaled.Add(uint64(len(evs)))
}

// appendOutbox stores evs if the store keeps an outbox.
func (w *Writer) appendOutbox(ctx context.Context, evs []OutboxEvent) error {
	ob, ok := w.store.(Outbox)
	if !ok {
		return nil
	}
	return ob.AppendOutbox(ctx, evs)
}

// storeOutbox stores published events, or journals them, like storeEvents.
func (w *Writer) storeOutbox(ctx context.Context, evs []OutboxEvent) bool {
	if w.storeDown || ctx.Err() != nil {
		w.journalOuts(evs)
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, w.opts.StoreTimeout)
	err := w.appendOutbox(ctx, evs)
	cancel()
	if err != nil {
		w.errs.Add(1)
		w.storeDown = true
		w.log.Warn("cdr writer: store failed; journaling feed events", "events", len(evs), "error", err)
		w.journalOuts(evs)
		return false
	}
	w.storeDown = false
	w.outWritten.Add(uint64(len(evs)))
	return true
}
