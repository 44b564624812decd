package cdr

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
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
			case journalOpEnd, journalOpEvent:
				w.j.backlog.Add(1)
				if e.Op == journalOpEnd {
					delete(w.recovered, e.Rec.ID)
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
	if len(agents) == 0 {
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

// replay stores the records of every closed journal segment, oldest first,
// deleting each segment once its records are committed; it stops at the
// first failure, keeping the progress made. Begin entries without a final
// record are either carried into the active segment (the call is still up)
// or, for segments of a previous run, turned into the records of calls a
// crash cut (see Writer). Only the writer goroutine (or NewWriter, before
// it starts) calls replay.
func (w *Writer) replay(ctx context.Context) error {
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
	for _, s := range segs {
		if s.seq >= upTo {
			break // the active segment
		}
		if err := w.replaySegment(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

// replaySegment stores one segment's records and deletes it. Segments are
// replayed in order, so a later version of a record (later segment) is
// upserted later and wins; a rebuilt record of a previous run whose final
// record sits in a later segment is overwritten by it.
func (w *Writer) replaySegment(ctx context.Context, seg segment) error {
	var (
		ends     []Record
		endIdx   = map[string]int{}
		begins   = map[string]Record{}
		order    []string // of begins
		endsRead int64
		evs      []AgentEvent
	)
	err := w.j.readSegment(seg, true, func(e journalEntry) {
		id := e.Rec.ID
		switch e.Op {
		case journalOpEvent:
			endsRead++
			evs = append(evs, *e.Ev)
		case journalOpEnd:
			endsRead++
			if i, ok := endIdx[id]; ok {
				ends[i] = e.Rec // last wins
			} else {
				endIdx[id] = len(ends)
				ends = append(ends, e.Rec)
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
		return err
	}

	old := seg.seq <= w.recoverUpTo
	var interrupted []Record
	var live []string
	for _, id := range order {
		b, ok := begins[id]
		switch {
		case !ok:
		case old:
			if r, ok := w.recovered[id]; ok {
				b = r // the latest snapshot, maybe in a later segment
			}
			interrupted = append(interrupted, w.interrupt(b))
		default:
			live = append(live, id)
		}
	}

	// One transaction per segment: a failure loses no progress made on
	// earlier segments, and a segment is bounded by the replay interval.
	if len(ends) > 0 {
		if err := w.store.Upsert(ctx, ends); err != nil {
			return fmt.Errorf("cdr writer: replay %d journaled records of %s: %w", len(ends), seg.path, err)
		}
	}
	if len(evs) > 0 {
		if err := w.store.AppendEvents(ctx, evs); err != nil {
			return fmt.Errorf("cdr writer: replay %d journaled agent events of %s: %w", len(evs), seg.path, err)
		}
	}
	if len(interrupted) > 0 {
		var err error
		if mi, ok := w.store.(MissingInserter); ok {
			err = mi.InsertMissing(ctx, interrupted)
		} else {
			err = w.store.Upsert(ctx, interrupted)
		}
		if err != nil {
			return fmt.Errorf("cdr writer: store %d interrupted calls of %s: %w", len(interrupted), seg.path, err)
		}
	}
	carried, err := w.carry(live)
	if err != nil {
		return err
	}
	if err := w.j.remove([]segment{seg}); err != nil {
		// The records are stored; a segment left behind replays harmlessly.
		w.log.Warn("cdr writer: removing replayed journal file", "error", err)
	}
	w.j.backlog.Add(-endsRead)
	w.written.Add(uint64(len(ends) + len(interrupted)))
	w.evWritten.Add(uint64(len(evs)))
	if len(ends) > 0 || len(interrupted) > 0 || len(evs) > 0 {
		w.log.Info("cdr writer: journal replayed", "file", seg.path, "records", len(ends), "events", len(evs),
			"interrupted", len(interrupted), "carried", carried)
	}
	return nil
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
