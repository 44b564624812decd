package cdr

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync/atomic"
	"time"
)

// The writer's journal replay and crash recovery: heartbeats, the agents
// logged in, the calls rebuilt after a crash.

// trackAgent follows the agents logged in, from their LOGIN and LOGOUT
// events, for the heartbeats; a change asks for a heartbeat now.
func (w *Writer) trackAgent(e *AgentEvent) {
	if e.AgentID == "" || (e.Event != EventLogin && e.Event != EventLogout) {
		return
	}
	w.openMu.Lock()
	if e.Event == EventLogin {
		if _, in := w.agents[e.AgentID]; !in {
			w.agents[e.AgentID] = beatAgent{ID: e.AgentID, Node: e.NodeID, Since: e.Time.UTC()}
			w.agentsChanged = true
		}
	} else if _, in := w.agents[e.AgentID]; in {
		delete(w.agents, e.AgentID)
		w.agentsChanged = true
	}
	w.openMu.Unlock()
	select {
	case w.beatNow <- struct{}{}:
	default:
	}
}

// heartbeat journals that the writer is alive, if any call is open or any
// agent logged in (or just logged out). The agents go in when they changed
// and in the first heartbeat of a segment (older segments may be gone by
// the time the journal is read). Only the writer goroutine (or replay,
// which it runs) calls it.
func (w *Writer) heartbeat() {
	w.openMu.Lock()
	if len(w.open) == 0 && len(w.agents) == 0 && !w.agentsChanged {
		w.openMu.Unlock()
		return
	}
	b := journalBeat{Time: time.Now().UTC(), Full: w.agentsChanged || w.j.activeSeq() != w.beatSeg}
	if b.Full {
		b.Agents = slices.SortedFunc(maps.Values(w.agents), func(x, y beatAgent) int { return cmp.Compare(x.ID, y.ID) })
	}
	w.agentsChanged = false
	w.openMu.Unlock()
	seq, err := w.j.appendBeat(b)
	if err != nil {
		w.errs.Add(1)
		w.log.Error("cdr writer: journal heartbeat failed", "error", err)
		if b.Full {
			w.openMu.Lock()
			w.agentsChanged = true // try again next time
			w.openMu.Unlock()
		}
		return
	}
	if b.Full {
		w.beatSeg = seq
	}
}

// readPrevious reads the segments a previous run left, before the writer
// starts: it counts their finished records and events into the backlog,
// keeps the latest Begin snapshot of each call not finished there, the
// newest heartbeat and the agents logged in at it, and journals a LOGOUT
// event for each of those agents (replayed with the rest).
func (w *Writer) readPrevious(segs []segment) error {
	var agents []beatAgent
	w.recovered = map[string]Record{}
	for _, s := range segs {
		w.recoverUpTo = s.seq
		if s.mtime.After(w.lastSeen) {
			w.lastSeen = s.mtime
		}
		// Quietly: replay reads them again and logs bad lines.
		err := w.j.readSegment(s, false, func(e journalEntry) {
			switch e.Op {
			case journalOpEnd, journalOpEvent, journalOpOut:
				w.j.backlog.Add(1)
				if e.Op == journalOpEnd {
					delete(w.recovered, e.Rec.ID)
					w.pending[e.Rec.ID]++
				}
			case journalOpBegin:
				w.recovered[e.Rec.ID] = e.Rec
			case journalOpBeat:
				if e.Beat.Time.After(w.lastBeat) {
					w.lastBeat = e.Beat.Time
				}
				if e.Beat.Full {
					agents = e.Beat.Agents
				}
			}
		})
		if err != nil {
			return err
		}
	}
	if len(agents) == 0 || w.opts.SharedAgents {
		return nil
	}
	at := cmp.Or(w.lastBeat, w.lastSeen).UTC()
	evs := make([]AgentEvent, 0, len(agents))
	for _, a := range agents {
		evs = append(evs, AgentEvent{
			ID:   "crash-logout-" + a.ID + "-" + strconv.FormatInt(at.UnixMicro(), 10),
			Time: at, AgentID: a.ID, Event: EventLogout, NodeID: a.Node,
			Data1: LogoutReasonCrash, Data2: FormatSeconds(max(at.Sub(a.Since), 0)),
		})
	}
	w.log.Warn("cdr writer: logging out the agents logged in when the previous run stopped", "agents", len(evs), "at", at)
	if err := w.j.appendEvents(evs); err != nil {
		return fmt.Errorf("cdr writer: journal the agents' logouts after a crash: %w", err)
	}
	return nil
}

// replayCursor is a journal segment being replayed, read once and stored
// BatchSize items at a time: records, then agent events, then the records of
// calls a crash cut. done counts what of each is stored, so a replay that
// fails part way resumes after it (the segment stays until all is stored).
type replayCursor struct {
	seg         segment
	ends        []Record // finished records, last version of each ID
	evs         []AgentEvent
	outs        []OutboxEvent // published feed events
	interrupted []Record
	live        []string       // calls still up: their begin entries are carried over
	endIDs      map[string]int // "end" entries per record ID, for w.pending
	entries     int64          // "end" and "event" entries read (the backlog they made)
	done        [4]int         // ends, evs, interrupted, outs
}

// remaining reports whether the cursor has items left to store.
func (c *replayCursor) remaining() bool {
	return c.done[0] < len(c.ends) || c.done[1] < len(c.evs) || c.done[2] < len(c.interrupted) || c.done[3] < len(c.outs)
}

// replay stores the records of every closed journal segment, oldest first,
// deleting each segment once its records are committed; it stops at the
// first failure, keeping the progress made. NewWriter and Close use it;
// the writer goroutine replays step by step (replayStart, replayStep) so
// that it drains its queue between chunks.
func (w *Writer) replay(ctx context.Context) error {
	// A replay under way is finished first; then one over everything
	// journaled since.
	for pass := range 2 {
		if pass == 0 && !w.replaying() {
			continue
		}
		if !w.replaying() {
			if err := w.replayStart(); err != nil {
				return err
			}
		}
		for w.replaying() {
			if err := w.replayStep(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

// replaying reports whether a replay is under way (segments left to store).
func (w *Writer) replaying() bool { return w.cursor != nil || len(w.replaySegs) > 0 }

// replayStart closes the active segment and lists the segments to replay:
// every segment before the new active one. Begin entries without a final
// record are either carried into the active segment (the call is still up)
// or, for segments of a previous run, turned into the records of calls a
// crash cut (see Writer).
func (w *Writer) replayStart() error {
	upTo, err := w.j.rotate()
	if err != nil {
		return err
	}
	// The segments about to be replayed and deleted may hold the only
	// full heartbeat: start the new segment with one.
	w.heartbeat()
	segs, err := w.j.segments()
	if err != nil {
		return err
	}
	w.replaySegs = w.replaySegs[:0]
	for _, s := range segs {
		if s.seq >= upTo {
			break // the active segment
		}
		w.replaySegs = append(w.replaySegs, s)
	}
	return nil
}

// replayStep stores one chunk (BatchSize items) of the segment being
// replayed, reading the next segment first if none is, and deletes the
// segment once all of it is stored. Each store call is bounded by
// StoreTimeout under ctx.
func (w *Writer) replayStep(ctx context.Context) error {
	if w.cursor == nil {
		if len(w.replaySegs) == 0 {
			return nil
		}
		c, err := w.readCursor(w.replaySegs[0])
		if err != nil {
			return err
		}
		w.replaySegs = w.replaySegs[1:]
		w.cursor = c
	}
	c := w.cursor
	if c.remaining() {
		if err := w.storeChunk(ctx, c); err != nil {
			return err
		}
		if c.remaining() {
			return nil
		}
	}
	carried, err := w.carry(c.live)
	if err != nil {
		return err
	}
	w.cursor = nil
	if err := w.j.remove([]segment{c.seg}); err != nil {
		// The records are stored; a segment left behind replays harmlessly.
		w.log.Warn("cdr writer: removing replayed journal file", "error", err)
	}
	w.j.backlog.Add(-c.entries)
	w.openMu.Lock()
	for id, n := range c.endIDs {
		if w.pending[id] <= n {
			delete(w.pending, id)
		} else {
			w.pending[id] -= n
		}
	}
	w.openMu.Unlock()
	if len(c.ends) > 0 || len(c.interrupted) > 0 || len(c.evs) > 0 {
		w.log.Info("cdr writer: journal replayed", "file", c.seg.path, "records", len(c.ends), "events", len(c.evs),
			"interrupted", len(c.interrupted), "carried", carried)
	}
	return nil
}

// storeChunk stores the next BatchSize items of c, in one transaction.
// Records are upserted and agent events inserted if missing, so a chunk
// stored twice (after a restart) is still stored once.
func (w *Writer) storeChunk(ctx context.Context, c *replayCursor) error {
	ctx, cancel := context.WithTimeout(ctx, w.opts.StoreTimeout)
	defer cancel()
	// next stores items [done, done+BatchSize) of n with store and counts them.
	next := func(done *int, n int, what string, count *atomic.Uint64, store func(lo, hi int) error) error {
		lo, hi := *done, min(n, *done+w.opts.BatchSize)
		if err := store(lo, hi); err != nil {
			return fmt.Errorf("cdr writer: replay %d %s of %s: %w", hi-lo, what, c.seg.path, err)
		}
		*done = hi
		count.Add(uint64(hi - lo))
		return nil
	}
	// Published events and agent events first, as flush does.
	switch {
	case c.done[3] < len(c.outs):
		return next(&c.done[3], len(c.outs), "journaled feed events", &w.outWritten, func(lo, hi int) error {
			return w.appendOutbox(ctx, c.outs[lo:hi])
		})
	case c.done[1] < len(c.evs):
		return next(&c.done[1], len(c.evs), "journaled agent events", &w.evWritten, func(lo, hi int) error {
			return w.store.AppendEvents(ctx, c.evs[lo:hi])
		})
	case c.done[0] < len(c.ends):
		return next(&c.done[0], len(c.ends), "journaled records", &w.written, func(lo, hi int) error {
			return w.store.Upsert(ctx, c.ends[lo:hi])
		})
	}
	return next(&c.done[2], len(c.interrupted), "interrupted calls", &w.written, func(lo, hi int) error {
		if mi, ok := w.store.(MissingInserter); ok {
			return mi.InsertMissing(ctx, c.interrupted[lo:hi])
		}
		return w.store.Upsert(ctx, c.interrupted[lo:hi])
	})
}

// readCursor reads a segment for replay. Segments are replayed in order,
// so a later version of a record (later segment) is upserted later and
// wins; a rebuilt record of a previous run whose final record sits in a
// later segment is overwritten by it.
func (w *Writer) readCursor(seg segment) (*replayCursor, error) {
	c := &replayCursor{seg: seg, endIDs: map[string]int{}}
	var (
		endIdx = map[string]int{}
		begins = map[string]Record{}
		order  []string // of begins
	)
	err := w.j.readSegment(seg, true, func(e journalEntry) {
		id := e.Rec.ID
		switch e.Op {
		case journalOpEvent:
			c.entries++
			c.evs = append(c.evs, *e.Ev)
		case journalOpOut:
			c.entries++
			c.outs = append(c.outs, *e.Out)
		case journalOpEnd:
			c.entries++
			c.endIDs[id]++
			if i, ok := endIdx[id]; ok {
				c.ends[i] = e.Rec // last wins
			} else {
				endIdx[id] = len(c.ends)
				c.ends = append(c.ends, e.Rec)
			}
			delete(begins, id)
		case journalOpBegin:
			if _, ok := endIdx[id]; ok {
				return // already finished
			}
			if _, ok := begins[id]; !ok {
				order = append(order, id)
			}
			begins[id] = e.Rec
		}
	})
	if err != nil {
		return nil, err
	}
	old := seg.seq <= w.recoverUpTo
	for _, id := range order {
		b, ok := begins[id]
		switch {
		case !ok:
		case old:
			if r, ok := w.recovered[id]; ok {
				b = r // the latest snapshot, maybe in a later segment
			}
			c.interrupted = append(c.interrupted, w.interrupt(b))
		default:
			c.live = append(c.live, id)
		}
	}
	return c, nil
}

// carry appends the latest Begin snapshot of the calls of ids still open
// to the active segment. openMu is held across the append, so that a
// concurrent Begin's newer snapshot lands after the one carried.
func (w *Writer) carry(ids []string) (int, error) {
	w.openMu.Lock()
	defer w.openMu.Unlock()
	var recs []Record
	for _, id := range ids {
		if r, ok := w.open[id]; ok {
			recs = append(recs, r)
		}
	}
	if err := w.j.append(journalOpBegin, recs...); err != nil {
		return 0, fmt.Errorf("cdr writer: carry %d calls in progress: %w", len(recs), err)
	}
	return len(recs), nil
}

// interrupt turns the latest Begin snapshot of a call a crash cut into its
// final record.
func (w *Writer) interrupt(r Record) Record {
	r.Disposition = DispositionInterrupted
	if !r.Connect.IsZero() {
		r.Disposition = DispositionAnswered // an agent had it: it was answered
	}
	r.HangupSide = HangupSideSystem
	r.HangupCause = HangupCauseCrash
	if r.End.IsZero() {
		end := cmp.Or(w.lastBeat, w.lastSeen)
		for _, t := range []time.Time{r.Start, r.Answer, r.EnqueueTime, r.Connect} {
			if t.After(end) {
				end = t
			}
		}
		r.End = end.UTC()
	}
	return r
}
