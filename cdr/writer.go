package cdr

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Writer defaults.
const (
	DefaultQueueSize     = 10000
	DefaultBatchSize     = 500
	DefaultFlushInterval = 200 * time.Millisecond
	DefaultRetryMin      = time.Second
	DefaultRetryMax      = 30 * time.Second
	DefaultStoreTimeout  = 10 * time.Second
	// DefaultCompactBytes: when the active journal segment grows past this
	// (it mostly holds "begin" entries of calls long finished), the writer
	// rotates it and drops what is already stored.
	DefaultCompactBytes = 4 << 20
	// DefaultHeartbeat is how often the writer journals that it is alive
	// while calls are open or agents logged in (one fsync each).
	DefaultHeartbeat = 5 * time.Second
	// DefaultSpillLimit is how many records and events may wait in memory
	// when neither the store nor the journal takes them (a full disk)
	// before Accepting says to take no new calls (about 2 KiB each).
	DefaultSpillLimit = 20000
)

// WriterOptions configures a Writer. Only JournalDir is required.
type WriterOptions struct {
	JournalDir    string        // required: journal segments live here (e.g. <data-dir>/journal)
	QueueSize     int           // in-memory queue of finished records; default 10000
	BatchSize     int           // records per store transaction; default 500
	FlushInterval time.Duration // longest a queued record waits for its batch; default 200ms
	Logger        *slog.Logger
	// Registerer, if set, gets hotline_cdr_queue_depth,
	// hotline_cdr_journal_backlog, hotline_cdr_write_errors_total and
	// hotline_cdr_records_written_total; they are unregistered by Close.
	Registerer prometheus.Registerer

	RetryMin     time.Duration // first delay before replaying the journal after a store failure; default 1s
	RetryMax     time.Duration // the delay doubles up to this; default 30s
	StoreTimeout time.Duration // per store call; default 10s
	CompactBytes int64         // see DefaultCompactBytes
	Heartbeat    time.Duration // see DefaultHeartbeat
	// SpillLimit: see DefaultSpillLimit. Past twice as many, records of
	// calls never answered and agent events are dropped (and counted);
	// answered calls' records are always kept.
	SpillLimit int
	// SharedAgents: the agents belong to a cluster, not to this node (cluster mode). After
	// a crash no LOGOUT (crash) is written for them: other nodes go on routing them, and
	// the node that took over wrote what the crash ended.
	SharedAgents bool
}

// WriterStats is a snapshot of a Writer's counters.
type WriterStats struct {
	Queued         int    // finished records in the in-memory queue
	Written        uint64 // records committed to the store (from the queue or the journal)
	JournalBacklog int64  // finished records in the journal, waiting for the store
	Errors         uint64 // failed store calls and journal appends
	Journaled      uint64 // finished records and events that went to the journal instead of the store
	Open           int    // calls begun whose final record is not yet stored or journaled
	EventsQueued   int    // agent events in the in-memory queue
	EventsWritten  uint64 // agent events committed to the store
	Spilled        int    // records and events waiting in memory: neither store nor journal took them
	Dropped        uint64 // records of unanswered calls and agent events dropped past twice SpillLimit
}

// Writer gets call records into a Store without blocking the call path and
// without losing the record of an answered call:
//
//   - Begin (call answered) appends the record to the journal and fsyncs
//     before returning; that is the crash-safety point. Concurrent Begins
//     share fsyncs (group commit in the journal, under a small mutex).
//   - Write (call finished) enqueues the final record without blocking; if
//     the queue is full it appends it to the journal instead (fsynced).
//   - One goroutine drains the queue in batches (BatchSize records or every
//     FlushInterval) into Store.Upsert, one transaction per batch. If the
//     store fails, the batch goes to the journal and the goroutine replays
//     the journal with exponential backoff (RetryMin to RetryMax) until the
//     store takes it. Until the store has taken something again, new batches
//     are journaled behind the failed one, so the store sees them in order.
//   - A replay stores BatchSize records per transaction and drains the
//     queue between two of them, so that a journal of tens of thousands of
//     records (a storm's overflow, an hour of outage) neither holds up the
//     queue nor needs one long transaction. While the store is up, records
//     whose ID has no version in the journal go straight to the store;
//     those that have one are journaled behind it (the newer version must
//     be upserted last).
//   - Event (an agent event) takes the same path as Write, through a queue
//     of its own: batched into Store.AppendEvents, journaled when the
//     store fails or the queue is full, replayed in order with the records.
//   - Replays are idempotent (upsert by ID; events are inserted only if
//     their ID is new), so a record replayed twice is still one row. A segment file is deleted only after its records are
//     committed.
//   - Every Heartbeat while calls are open or agents logged in (and at once
//     when an agent logs in or out), the writer journals a heartbeat: the
//     time, and the agents logged in by the LOGIN and LOGOUT events it was
//     given. One fsync per heartbeat.
//   - NewWriter replays the journal a previous run left (kill -9, power
//     loss). A call begun but whose final record is nowhere is rebuilt from
//     its latest Begin snapshot (queue, agent, connect time, visits kept):
//     HangupSide "system", HangupCause "crash", Disposition "answered" if it
//     has a Connect, else "interrupted", and End the last heartbeat (the
//     last moment the call is known alive; the newest modification time of
//     the journal if there was none), but never before its Start, Answer,
//     EnqueueTime or Connect. It is inserted only if the store has no row
//     with that ID (MissingInserter), so it cannot overwrite the real
//     record. Each agent logged in at the last heartbeat gets a LOGOUT event
//     at that time, Data1 "crash", Data2 the logged-in seconds (its ID is
//     derived from the agent and the heartbeat: replays add nothing).
//
// Begin must precede Write for the same ID, and may be called again with a
// newer snapshot of the call (queue, agent, connect, visits): the journal
// keeps the latest. Each ID should be written once (a record rewritten while
// the queue overflows may land in either version).
// One Writer per JournalDir: two processes must not share a journal.
type Writer struct {
	store Store
	opts  WriterOptions
	log   *slog.Logger
	j     *journal

	mu     sync.RWMutex // guards closed; Write holds it across its non-blocking send
	closed bool
	queue  chan Record
	events chan AgentEvent
	outq   chan OutboxEvent // Publish (writer_outbox.go)

	// Journal replay, owned by the writer goroutine (by NewWriter and Close
	// before and after it): the closed segments still to replay, the one
	// being replayed, and whether the last store call failed.
	replaySegs []segment
	cursor     *replayCursor
	storeDown  bool

	openMu sync.Mutex
	open   map[string]Record // latest Begin snapshot of calls whose final record is not yet durable
	// pending counts, per record ID, the "end" entries journaled and not yet
	// replayed: a newer version of such a record must not overtake them.
	pending map[string]int
	spill   []Record     // finished records neither queue nor journal took (journal I/O error)
	spillE  []AgentEvent // ditto for agent events
	// spillTaken: spilled items the writer goroutine took to retry; they
	// still count for Accepting until the retry ends.
	spillTaken int
	// agents logged in, by the LOGIN and LOGOUT events given to Event;
	// agentsChanged: not yet in a heartbeat. Guarded by openMu.
	agents        map[string]beatAgent
	agentsChanged bool
	beatSeg       uint64        // journal segment of the last full heartbeat (writer goroutine)
	beatNow       chan struct{} // an agent logged in or out: heartbeat now

	recoverUpTo uint64            // segments with sequence <= this were left by a previous run
	lastSeen    time.Time         // newest mtime among those segments
	lastBeat    time.Time         // the newest heartbeat in them
	recovered   map[string]Record // the latest Begin snapshot in them, of calls not finished there

	kick    chan struct{} // a record was journaled: schedule a replay
	stop    chan context.Context
	abandon chan struct{}
	done    chan struct{}
	result  error // of the loop's drain; read after done

	written, errs, journaled, evWritten, dropped atomic.Uint64
	outWritten                                   atomic.Uint64 // published feed events stored
	spillLogged, fullLogged                      atomic.Int64  // unix nanoseconds of the last such line (logEvery)
	collectors                                   []prometheus.Collector
}

// NewWriter starts a writer on store. Before it returns it replays any
// journal a previous run left in opts.JournalDir; if the store fails, the
// journal stays and is retried in the background (NewWriter still
// succeeds). It fails only on bad options, an unusable journal directory or
// a metrics registration error.
func NewWriter(store Store, opts WriterOptions) (*Writer, error) {
	if opts.JournalDir == "" {
		return nil, ErrNoJournalDir
	}
	if store == nil {
		return nil, errors.New("cdr: NewWriter: nil store")
	}
	setDefault(&opts.QueueSize, DefaultQueueSize)
	setDefault(&opts.BatchSize, DefaultBatchSize)
	setDefault(&opts.FlushInterval, DefaultFlushInterval)
	setDefault(&opts.RetryMin, DefaultRetryMin)
	setDefault(&opts.RetryMax, max(DefaultRetryMax, opts.RetryMin))
	setDefault(&opts.StoreTimeout, DefaultStoreTimeout)
	setDefault(&opts.CompactBytes, DefaultCompactBytes)
	setDefault(&opts.Heartbeat, DefaultHeartbeat)
	setDefault(&opts.SpillLimit, DefaultSpillLimit)
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	j, segs, err := openJournal(opts.JournalDir, log)
	if err != nil {
		return nil, err
	}
	w := &Writer{
		store:   store,
		opts:    opts,
		log:     log,
		j:       j,
		queue:   make(chan Record, opts.QueueSize),
		events:  make(chan AgentEvent, opts.QueueSize),
		outq:    make(chan OutboxEvent, opts.QueueSize),
		open:    make(map[string]Record),
		pending: make(map[string]int),
		agents:  make(map[string]beatAgent),
		beatNow: make(chan struct{}, 1),
		kick:    make(chan struct{}, 1),
		stop:    make(chan context.Context),
		abandon: make(chan struct{}),
		done:    make(chan struct{}),
	}
	if err := w.readPrevious(segs); err != nil {
		return nil, err
	}
	if err := w.register(opts.Registerer); err != nil {
		return nil, err
	}
	// Replay what a previous run left, before taking new records.
	retry := false
	if len(segs) > 0 {
		log.Info("cdr writer: replaying journal of previous run", "dir", opts.JournalDir, "files", len(segs))
		// Bounded: what is not stored by then is replayed in the
		// background, between the new calls' records.
		ctx, cancel := context.WithTimeout(context.Background(), opts.StoreTimeout)
		err := w.replay(ctx)
		cancel()
		if err != nil {
			w.errs.Add(1)
			log.Error("cdr writer: journal replay not finished; going on in the background", "dir", opts.JournalDir, "error", err)
			retry = true
			w.storeDown = true
		}
	}
	go w.run(retry)
	return w, nil
}

func setDefault[T int | int64 | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// Begin records that a call was answered, or a newer snapshot of it (its
// queue, agent, connect time, visits): the record is appended to the
// journal and fsynced before Begin returns, so that a crash from now on
// leaves a record rebuilt from the latest snapshot. It does not touch the
// store.
func (w *Writer) Begin(rec Record) {
	w.ensureID(&rec)
	w.openMu.Lock()
	_, known := w.open[rec.ID]
	w.open[rec.ID] = rec // before the append: a concurrent compaction must see it open
	w.openMu.Unlock()
	if err := w.j.append(journalOpBegin, rec); err != nil {
		w.errs.Add(1)
		w.log.Error("cdr writer: journal begin failed; call is not crash-safe", "call_id", rec.ID, "error", err)
	}
	if !known { // the live call.start; its record gives it again (same ID) if this one is lost
		w.Publish(StartEvent(&rec))
	}
}

// Write hands over a finished call's record. It never blocks on the store:
// the record is queued, or if the queue is full (or the writer closed),
// appended to the journal (fsynced) for the writer to replay.
func (w *Writer) Write(rec Record) {
	w.ensureID(&rec)
	queued, closed := offer(w, w.queue, rec)
	if queued {
		return
	}
	if !closed {
		w.logEvery(&w.fullLogged, slog.LevelWarn, "cdr writer: queue full; journaling records (logged once every 10 s)", "call_id", rec.ID, "queue_size", w.opts.QueueSize, "journaled", w.journaled.Load())
	}
	w.journalEnds([]Record{rec})
	w.wake()
}

// offer puts v on q without blocking, unless the writer is closed.
func offer[T any](w *Writer, q chan<- T, v T) (queued, closed bool) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		return false, true
	}
	select {
	case q <- v:
		return true, false
	default:
		return false, false
	}
}

// wake tells the writer goroutine there is journal work.
func (w *Writer) wake() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Event hands over an agent event, like Write: it never blocks on the
// store. An event without an ID gets a random one; one without a time gets
// the current time.
func (w *Writer) Event(e AgentEvent) {
	if e.ID == "" {
		e.ID = "ev-" + rand.Text()
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	w.trackAgent(&e)
	queued, closed := offer(w, w.events, e)
	if queued {
		return
	}
	if !closed {
		w.logEvery(&w.fullLogged, slog.LevelWarn, "cdr writer: event queue full; journaling events (logged once every 10 s)", "event_id", e.ID, "queue_size", w.opts.QueueSize, "journaled", w.journaled.Load())
	}
	w.journalEvents([]AgentEvent{e})
	w.wake()
}

// journalEvents appends agent events to the journal, or keeps them in
// memory if even that fails.
func (w *Writer) journalEvents(evs []AgentEvent) {
	if err := w.j.appendEvents(evs); err != nil {
		w.errs.Add(1)
		w.logSpill("cdr writer: journal append failed; keeping events in memory", "events", len(evs), "error", err)
		w.openMu.Lock()
		if room := 2*w.opts.SpillLimit - len(w.spill) - len(w.spillE); room < len(evs) {
			lost := len(evs) - max(room, 0)
			w.dropped.Add(uint64(lost))
			w.log.Error("cdr writer: too many records in memory; dropping agent events", "events", lost, "spill_limit", w.opts.SpillLimit)
			evs = evs[:len(evs)-lost]
		}
		w.spillE = append(w.spillE, evs...)
		w.openMu.Unlock()
		return
	}
	w.journaled.Add(uint64(len(evs)))
}

func (w *Writer) takeSpillEvents() []AgentEvent {
	w.openMu.Lock()
	defer w.openMu.Unlock()
	s := w.spillE
	w.spillE = nil
	w.spillTaken += len(s)
	return s
}

func (w *Writer) ensureID(rec *Record) {
	if rec.ID == "" {
		rec.ID = "noid-" + rand.Text()
		w.log.Warn("cdr writer: record without ID; assigned one", "call_id", rec.ID, "sip_call_id", rec.SIPCallID)
	}
}

// journalEnds appends finished records to the journal. If even that fails,
// they are kept in memory and retried with the next batch: never dropped.
func (w *Writer) journalEnds(recs []Record) {
	// Pending before the append: a replay of the segment (which subtracts)
	// can only follow the append.
	w.markPending(recs, 1)
	if err := w.j.append(journalOpEnd, recs...); err != nil {
		w.errs.Add(1)
		w.logSpill("cdr writer: journal append failed; keeping records in memory", "records", len(recs), "error", err)
		w.openMu.Lock()
		over := len(w.spill)+len(w.spillE)+len(recs) > 2*w.opts.SpillLimit
		for _, r := range recs {
			if over && r.Answer.IsZero() {
				w.dropped.Add(1)
				w.log.Error("cdr writer: too many records in memory; dropping the record of a call never answered", "call_id", r.ID, "spill_limit", w.opts.SpillLimit)
				continue
			}
			w.spill = append(w.spill, r)
		}
		w.openMu.Unlock()
		w.markPending(recs, -1)
		return
	}
	w.journaled.Add(uint64(len(recs)))
	w.resolve(recs)
}

// logSpill logs a failed journal append, at most once every 10 s (the
// writer retries what waits in memory every FlushInterval), with the number
// of records and events waiting.
func (w *Writer) logSpill(msg string, args ...any) {
	w.logEvery(&w.spillLogged, slog.LevelError, msg, append(args, "in_memory", w.Stats().Spilled, "spill_limit", w.opts.SpillLimit)...)
}

// logEvery logs at most once every 10 s per last (the time of the previous line):
// in a storm or an outage the same line would come for every record.
func (w *Writer) logEvery(last *atomic.Int64, level slog.Level, msg string, args ...any) {
	now, prev := time.Now().UnixNano(), last.Load()
	if now-prev < int64(10*time.Second) || !last.CompareAndSwap(prev, now) {
		return
	}
	w.log.Log(context.Background(), level, msg, args...)
}

// markPending adds d to the journaled versions of each record.
func (w *Writer) markPending(recs []Record, d int) {
	w.openMu.Lock()
	defer w.openMu.Unlock()
	for i := range recs {
		if n := w.pending[recs[i].ID] + d; n > 0 {
			w.pending[recs[i].ID] = n
		} else {
			delete(w.pending, recs[i].ID)
		}
	}
}

// splitPending returns the records of batch with no version in the journal
// (direct) and those that have one (behind). direct aliases batch when no
// record is pending.
func (w *Writer) splitPending(batch []Record) (direct, behind []Record) {
	w.openMu.Lock()
	defer w.openMu.Unlock()
	if len(w.pending) == 0 {
		return batch, nil
	}
	for _, r := range batch {
		if w.pending[r.ID] > 0 {
			behind = append(behind, r)
		} else {
			direct = append(direct, r)
		}
	}
	return direct, behind
}

// resolve marks records durable (stored or journaled): their begin entries
// are no longer needed.
func (w *Writer) resolve(recs []Record) {
	w.openMu.Lock()
	for i := range recs {
		delete(w.open, recs[i].ID)
	}
	w.openMu.Unlock()
}

func (w *Writer) isOpen(id string) bool {
	w.openMu.Lock()
	defer w.openMu.Unlock()
	_, ok := w.open[id]
	return ok
}

func (w *Writer) takeSpill() []Record {
	w.openMu.Lock()
	defer w.openMu.Unlock()
	s := w.spill
	w.spill = nil
	w.spillTaken += len(s)
	return s
}

// spillRetried ends a retry of taken spill: what failed again is back in
// the spill.
func (w *Writer) spillRetried() {
	w.openMu.Lock()
	w.spillTaken = 0
	w.openMu.Unlock()
}

// Accepting returns nil while records can be written, and an error
// wrapping ErrBacklogged while SpillLimit or more records and events wait
// in memory because neither the store nor the journal takes them: new
// calls should then be refused (503) until they can be written.
func (w *Writer) Accepting() error {
	w.openMu.Lock()
	n := len(w.spill) + len(w.spillE) + w.spillTaken
	w.openMu.Unlock()
	if n >= w.opts.SpillLimit {
		return fmt.Errorf("%w: %d waiting in memory (limit %d); is the disk of %s full?", ErrBacklogged, n, w.opts.SpillLimit, w.opts.JournalDir)
	}
	return nil
}

// Stats returns a snapshot of the writer's counters.
func (w *Writer) Stats() WriterStats {
	w.openMu.Lock()
	open, spilled := len(w.open), len(w.spill)+len(w.spillE)+w.spillTaken
	w.openMu.Unlock()
	return WriterStats{
		Queued:         len(w.queue),
		Written:        w.written.Load(),
		JournalBacklog: max(w.j.backlog.Load(), 0),
		Errors:         w.errs.Load(),
		Journaled:      w.journaled.Load(),
		Open:           open,
		EventsQueued:   len(w.events),
		EventsWritten:  w.evWritten.Load(),
		Spilled:        spilled,
		Dropped:        w.dropped.Load(),
	}
}

// Close stops taking records into the queue, stores what is queued and what
// the journal holds (retrying with backoff while the store fails, so give
// ctx a deadline), and stops the writer goroutine. Whatever is not stored
// when ctx ends stays in the journal for the next start, and Close returns
// an error saying how many records that is. A second Close returns
// ErrClosed. Calls begun and not yet written stay in the journal as begin entries
// (they become "interrupted" on the next start). Records written after
// Close go straight to the journal.
func (w *Writer) Close(ctx context.Context) error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return ErrClosed
	}
	w.closed = true
	w.mu.Unlock()
	select {
	case w.stop <- ctx:
	case <-w.done: // abandoned
	}
	<-w.done
	w.unregister()
	return w.result
}

// abandonForTest stops the writer as a crash would: the goroutine exits
// without draining, file handles are closed, nothing is stored.
func (w *Writer) abandonForTest() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	close(w.abandon)
	<-w.done
	_ = w.j.close()
	w.unregister()
}

// run is the writer goroutine: it owns the batch and the retry schedule.
func (w *Writer) run(retryPending bool) {
	defer close(w.done)
	ticker := time.NewTicker(w.opts.FlushInterval)
	defer ticker.Stop()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	beat := time.NewTicker(w.opts.Heartbeat)
	defer beat.Stop()
	var retryC <-chan time.Time // nil unless a replay is scheduled
	backoff := w.opts.RetryMin
	schedule := func() {
		if retryC == nil {
			retry.Reset(backoff)
			retryC = retry.C
		}
	}
	if retryPending {
		schedule()
	}
	compactAt := w.opts.CompactBytes
	// A replay runs a chunk at a time, each after the queue is drained:
	// stepC is ready while a replay is under way and not backing off.
	ready := make(chan struct{})
	close(ready)
	var stepC <-chan struct{}
	batch := make([]Record, 0, w.opts.BatchSize)
	evBatch := make([]AgentEvent, 0, w.opts.BatchSize)
	outBatch := make([]OutboxEvent, 0, w.opts.BatchSize)
	flush := func() {
		s, sE := w.takeSpill(), w.takeSpillEvents()
		batch, evBatch = append(batch, s...), append(evBatch, sE...)
		// Published events and agent events before records: the feed then
		// has a call's answer, transfer and rating before its end.
		for lo := 0; lo < len(outBatch); lo += w.opts.BatchSize {
			if !w.storeOutbox(context.Background(), outBatch[lo:min(len(outBatch), lo+w.opts.BatchSize)]) {
				schedule()
			}
		}
		for lo := 0; lo < len(evBatch); lo += w.opts.BatchSize {
			if !w.storeEvents(context.Background(), evBatch[lo:min(len(evBatch), lo+w.opts.BatchSize)]) {
				schedule()
			}
		}
		for lo := 0; lo < len(batch); lo += w.opts.BatchSize {
			if !w.storeBatch(context.Background(), batch[lo:min(len(batch), lo+w.opts.BatchSize)]) {
				schedule()
			}
		}
		batch, evBatch, outBatch = batch[:0], evBatch[:0], outBatch[:0]
		w.spillRetried()
		if len(s)+len(sE) > 0 && w.Stats().Spilled == 0 && stepC == nil {
			// What waited in memory (a full disk) is in the journal or the
			// store again: replay soon, not after the outage's backoff.
			backoff = w.opts.RetryMin
			retry.Reset(backoff)
			retryC = retry.C
		}
	}
	fail := func(err error) {
		w.errs.Add(1)
		w.storeDown = true // batches wait in the journal behind the replay
		backoff = min(2*backoff, w.opts.RetryMax)
		w.log.Warn("cdr writer: journal replay failed", "error", err, "retry_in", backoff)
		stepC = nil
		schedule()
	}
	startReplay := func() {
		if !w.replaying() {
			if err := w.replayStart(); err != nil {
				fail(err)
				return
			}
		}
		stepC = ready
	}
	take := func(rec Record) {
		batch = append(batch, rec)
		if len(batch) >= w.opts.BatchSize {
			flush()
		}
	}
	takeEvent := func(ev AgentEvent) {
		evBatch = append(evBatch, ev)
		if len(evBatch) >= w.opts.BatchSize {
			flush()
		}
	}
	takeOut := func(ev OutboxEvent) {
		outBatch = append(outBatch, ev)
		if len(outBatch) >= w.opts.BatchSize {
			flush()
		}
	}
	step := func() {
		// What is queued first: a replay must not leave the calls to
		// journal their own records.
		for n := len(w.queue); n > 0; n-- {
			take(<-w.queue)
		}
		for n := len(w.events); n > 0; n-- {
			takeEvent(<-w.events)
		}
		for n := len(w.outq); n > 0; n-- {
			takeOut(<-w.outq)
		}
		if err := w.replayStep(context.Background()); err != nil {
			fail(err)
			return
		}
		w.storeDown = false
		if w.replaying() {
			return
		}
		stepC = nil
		backoff = w.opts.RetryMin
		if w.j.backlog.Load() > 0 { // journaled while we replayed
			schedule()
		}
		// Carried-over begin entries of live calls restart the segment;
		// compact again once it has grown by CompactBytes past them.
		compactAt = w.j.activeSize() + w.opts.CompactBytes
	}
	for {
		select {
		case rec := <-w.queue:
			take(rec)
		case ev := <-w.events:
			takeEvent(ev)
		case ev := <-w.outq:
			takeOut(ev)
		case <-ticker.C:
			flush()
			if retryC == nil && stepC == nil && w.j.activeSize() >= compactAt {
				startReplay()
			}
		case <-stepC:
			step()
		case <-w.kick:
			schedule()
		case <-beat.C:
			w.heartbeat()
		case <-w.beatNow:
			w.heartbeat()
		case <-retryC:
			retryC = nil
			flush()
			startReplay()
		case ctx := <-w.stop:
			w.result = w.drain(ctx, batch, evBatch, outBatch)
			return
		case <-w.abandon:
			return
		}
	}
}

// storeBatch upserts batch, or journals it if the store fails or the
// journal already holds records (which must reach the store first). It
// reports whether the batch reached the store.
func (w *Writer) storeBatch(ctx context.Context, batch []Record) bool {
	if w.storeDown || ctx.Err() != nil {
		w.journalEnds(batch)
		return false
	}
	direct, behind := w.splitPending(batch)
	if len(behind) > 0 {
		w.journalEnds(behind)
	}
	if len(direct) == 0 {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, w.opts.StoreTimeout)
	err := w.store.Upsert(ctx, direct)
	cancel()
	if err != nil {
		w.errs.Add(1)
		w.storeDown = true
		w.log.Warn("cdr writer: store failed; journaling batch", "records", len(direct), "error", err)
		w.journalEnds(direct)
		return false
	}
	w.storeDown = false
	w.written.Add(uint64(len(direct)))
	w.resolve(direct)
	return len(behind) == 0
}

// storeEvents appends evs to the store, or journals them, like storeBatch.
func (w *Writer) storeEvents(ctx context.Context, evs []AgentEvent) bool {
	if w.storeDown || ctx.Err() != nil {
		w.journalEvents(evs)
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, w.opts.StoreTimeout)
	err := w.store.AppendEvents(ctx, evs)
	cancel()
	if err != nil {
		w.errs.Add(1)
		w.storeDown = true
		w.log.Warn("cdr writer: store failed; journaling events", "events", len(evs), "error", err)
		w.journalEvents(evs)
		return false
	}
	w.storeDown = false
	w.evWritten.Add(uint64(len(evs)))
	return true
}

// drain runs on Close: queue and spill to the store (or journal), then one
// last replay of the journal, all within ctx.
func (w *Writer) drain(ctx context.Context, batch []Record, evBatch []AgentEvent, outBatch []OutboxEvent) error {
	recs := append([]Record(nil), batch...)
	evs := append([]AgentEvent(nil), evBatch...)
	outs := append([]OutboxEvent(nil), outBatch...)
queued:
	for {
		select {
		case r := <-w.queue: // closed is set: nothing more arrives
			recs = append(recs, r)
		case e := <-w.events:
			evs = append(evs, e)
		case o := <-w.outq:
			outs = append(outs, o)
		default:
			break queued
		}
	}
	recs = append(recs, w.takeSpill()...)
	evs = append(evs, w.takeSpillEvents()...)
	for len(outs) > 0 {
		n := min(len(outs), w.opts.BatchSize)
		w.storeOutbox(ctx, outs[:n])
		outs = outs[n:]
	}
	for len(evs) > 0 {
		n := min(len(evs), w.opts.BatchSize)
		w.storeEvents(ctx, evs[:n])
		evs = evs[n:]
	}
	for len(recs) > 0 {
		n := min(len(recs), w.opts.BatchSize)
		w.storeBatch(ctx, recs[:n])
		recs = recs[n:]
	}
	// Replay (which also compacts: it drops begin entries of calls already
	// stored) until it succeeds or ctx ends.
	var err error
	for backoff := w.opts.RetryMin; ctx.Err() == nil; backoff = min(2*backoff, w.opts.RetryMax) {
		err = w.replay(ctx) // each chunk bounded by StoreTimeout, the whole by ctx
		if err == nil {
			break
		}
		w.errs.Add(1)
		w.log.Warn("cdr writer: journal replay on close failed", "error", err, "retry_in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
	if cerr := w.j.close(); err == nil {
		err = cerr
	}
	st := w.Stats()
	if st.Open > 0 {
		w.log.Warn("cdr writer: closing with calls still in progress; they stay in the journal", "calls", st.Open)
	}
	if spill, spillE := w.takeSpill(), w.takeSpillEvents(); len(spill)+len(spillE) > 0 {
		return fmt.Errorf("cdr writer: %d records and %d agent events could be neither stored nor journaled and are lost: %w",
			len(spill), len(spillE), errors.Join(err, ctx.Err()))
	}
	if st.JournalBacklog > 0 {
		return fmt.Errorf("cdr writer: %d records left in journal %s for the next start (call records and agent events): %w",
			st.JournalBacklog, w.opts.JournalDir, errors.Join(err, ctx.Err()))
	}
	return err
}
