// Package webhook delivers the work-order feed (docs/events.md): the events
// the records' store keeps in its outbox (cdr.Outbox) go to the configured
// webhooks, signed, in order, at least once with the same idempotency key,
// retried with backoff, and dead-lettered after their attempts; and to the
// SSE stream's subscribers. One goroutine, Hub.Run, owns all of it.
package webhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hotline12345/hotline/cdr"
)

// Defaults.
const (
	DefaultTimeout     = 5 * time.Second
	DefaultMaxAttempts = 15
	DefaultRetryMin    = time.Second
	DefaultRetryMax    = 10 * time.Minute
	DefaultPoll        = 200 * time.Millisecond
	// DefaultKeep is how long delivered events stay in the outbox (for the
	// SSE stream's Last-Event-ID and for looking back).
	DefaultKeep = 24 * time.Hour
	// gapWait: a gap in the outbox's seq (a transaction of another node
	// still in flight, on PostgreSQL) is waited for this long before passing it.
	gapWait = time.Second
	// queueMax bounds the events a webhook holds in memory; the rest wait in the outbox.
	queueMax = 1000
	// subBuffer is an SSE subscriber's buffer; a subscriber that falls this far behind is dropped (it resumes with Last-Event-ID).
	subBuffer = 512
)

// Errors.
var (
	ErrUnknownWebhook = errors.New("webhook: unknown webhook")
	// ErrNotLeading: another node of the cluster delivers the webhooks now (Options.Lead).
	ErrNotLeading = errors.New("webhook: another node delivers the webhooks")
	ErrClosed     = errors.New("webhook: hub stopped")
)

// Config is one webhook.
type Config struct {
	ID          string
	URL         string
	Secret      string
	Events      []string // event types; "*" = all
	Timeout     time.Duration
	MaxAttempts int
	RetryMin    time.Duration
	RetryMax    time.Duration
	// FullNumbers sends citizens' numbers in full; false (the default) masks them.
	FullNumbers bool
}

func (c *Config) wants(typ string) bool {
	return slices.Contains(c.Events, "*") || slices.Contains(c.Events, typ)
}

// Options configure a Hub.
type Options struct {
	Store      cdr.Outbox
	Webhooks   []Config
	Mask       func(string) string // masks a citizen's number (required)
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Poll       time.Duration // default DefaultPoll
	Keep       time.Duration // default DefaultKeep
	// Transport for the deliveries; default a clone of http.DefaultTransport.
	Transport http.RoundTripper
	// Lead says whether this hub delivers to the webhooks now; nil: always. Several nodes
	// sharing one outbox (a cluster) let one of them deliver: the others only stream to
	// their SSE clients, and a hub that starts leading reads the cursors the last leader
	// saved (an event in flight at the hand-over may be sent twice, with the same id).
	Lead func() bool
}

// Stats is a webhook as GET /api/v1/webhooks shows it.
type Stats struct {
	ID          string    `json:"id"`
	URL         string    `json:"url"`
	Events      []string  `json:"events"`
	FullNumbers bool      `json:"full_numbers"`
	Cursor      int64     `json:"cursor"`  // every event up to this outbox seq is handled
	Backlog     int64     `json:"backlog"` // outbox events after the cursor
	Delivered   uint64    `json:"delivered"`
	Failed      uint64    `json:"failed_attempts"`
	Dead        uint64    `json:"dead"`
	Attempts    int       `json:"attempts"` // of the event at the head, so far
	NextAttempt time.Time `json:"next_attempt,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	LastSuccess time.Time `json:"last_success,omitzero"`
}

// hook is one webhook's delivery state, owned by Run.
type hook struct {
	cfg      Config
	client   *http.Client
	cursor   int64 // persisted (or to be): all <= cursor handled
	saved    int64 // the cursor as last saved
	readUpTo int64 // outbox read up to here into queue
	queue    []cdr.OutboxEvent
	replay   []cdr.DeadLetter // dead letters to send once more, before the queue
	inFlight bool
	attempts int
	nextAt   time.Time
	lastErr  string
	lastOK   time.Time

	delivered, failed, dead prometheus.Counter
	nDelivered, nFailed     uint64
	nDead                   uint64
}

// result is what a delivery goroutine reports to Run.
type result struct {
	h      *hook
	ev     cdr.OutboxEvent
	replay bool
	err    error
}

// Hub owns the feed: one goroutine (Run) reads the outbox, fans new events
// out to subscribers and delivers them to the webhooks, at most one request
// in flight per webhook.
type Hub struct {
	opts    Options
	log     *slog.Logger
	hooks   []*hook
	byID    map[string]*hook
	results chan result
	replayQ chan replayReq
	kick    chan struct{}

	head atomic.Int64 // highest outbox seq Run has passed (read by subscribers)

	subMu sync.Mutex
	subs  map[*Subscription]struct{}

	snap atomic.Pointer[[]Stats]
	stop chan struct{} // closed when Run returns

	leading bool // delivers to the webhooks (Options.Lead); owned by Run

	collectors []prometheus.Collector
	backlogG   *prometheus.GaugeVec
	subsG      prometheus.GaugeFunc
}

type replayReq struct {
	id    string
	reply chan replayReply
}

type replayReply struct {
	n   int
	err error
}

// New makes a hub; Run starts it.
func New(opts Options) (*Hub, error) {
	if opts.Store == nil || opts.Mask == nil {
		return nil, errors.New("webhook: New: Store and Mask are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Poll <= 0 {
		opts.Poll = DefaultPoll
	}
	if opts.Keep <= 0 {
		opts.Keep = DefaultKeep
	}
	if opts.Transport == nil {
		opts.Transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	h := &Hub{
		opts: opts, log: opts.Logger, byID: map[string]*hook{}, results: make(chan result, len(opts.Webhooks)+1),
		replayQ: make(chan replayReq), kick: make(chan struct{}, 1), subs: map[*Subscription]struct{}{}, stop: make(chan struct{}),
	}
	delivered := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hotline_webhook_delivered_total", Help: "Events a webhook acknowledged with a 2xx (replays included)."}, []string{"webhook"})
	failed := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hotline_webhook_failed_total", Help: "Delivery attempts that failed (error, timeout or non-2xx)."}, []string{"webhook"})
	dead := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hotline_webhook_dead_total", Help: "Events given up on after max_attempts (dead letters)."}, []string{"webhook"})
	h.backlogG = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "hotline_webhook_backlog", Help: "Outbox events not yet handled by a webhook (after its cursor)."}, []string{"webhook"})
	h.subsG = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hotline_events_stream_clients", Help: "Clients of the SSE event stream."},
		func() float64 { return float64(h.Subscribers()) })
	for _, c := range opts.Webhooks {
		c := c
		if c.Timeout <= 0 {
			c.Timeout = DefaultTimeout
		}
		if c.MaxAttempts <= 0 {
			c.MaxAttempts = DefaultMaxAttempts
		}
		if c.RetryMin <= 0 {
			c.RetryMin = DefaultRetryMin
		}
		if c.RetryMax < c.RetryMin {
			c.RetryMax = max(DefaultRetryMax, c.RetryMin)
		}
		if _, dup := h.byID[c.ID]; dup {
			return nil, fmt.Errorf("webhook: two webhooks with id %q", c.ID)
		}
		k := &hook{cfg: c, delivered: delivered.WithLabelValues(c.ID), failed: failed.WithLabelValues(c.ID), dead: dead.WithLabelValues(c.ID),
			client: &http.Client{Timeout: c.Timeout, Transport: opts.Transport,
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
		h.hooks = append(h.hooks, k)
		h.byID[c.ID] = k
	}
	if reg := opts.Registerer; reg != nil {
		for _, c := range []prometheus.Collector{delivered, failed, dead, h.backlogG, h.subsG} {
			if err := reg.Register(c); err != nil {
				h.unregister()
				return nil, fmt.Errorf("webhook: register metrics: %w", err)
			}
			h.collectors = append(h.collectors, c)
		}
	}
	h.publish()
	return h, nil
}

func (h *Hub) unregister() {
	for _, c := range h.collectors {
		h.opts.Registerer.Unregister(c)
	}
	h.collectors = nil
}

// Kick tells Run that the outbox has new events (it also polls).
func (h *Hub) Kick() {
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// Run is the hub's goroutine. It returns when ctx ends, after the
// deliveries in flight (bounded by their timeouts) have ended and the
// cursors are saved.
func (h *Hub) Run(ctx context.Context) {
	defer close(h.stop)
	defer h.unregister()
	defer h.closeSubs()
	h.start(ctx)
	poll := time.NewTicker(h.opts.Poll)
	defer poll.Stop()
	prune := time.NewTicker(time.Hour)
	defer prune.Stop()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var gapSince time.Time
	for {
		h.follow(ctx)
		h.dispatch(ctx, timer)
		select {
		case <-ctx.Done():
			h.finish()
			return
		case <-poll.C:
			gapSince = h.read(ctx, gapSince)
			h.save(ctx)
		case <-h.kick:
			gapSince = h.read(ctx, gapSince)
		case <-timer.C:
		case r := <-h.results:
			h.done(ctx, r)
		case q := <-h.replayQ:
			q.reply <- h.queueReplay(ctx, q.id)
		case <-prune.C:
			h.prune(ctx)
		}
		h.publish()
	}
}

// start reads the cursors; a webhook without one starts at the outbox's
// beginning: it gets the events the outbox still holds (Keep, a day by
// default), then the new ones.
func (h *Hub) start(ctx context.Context) {
	var last int64
	var cursors map[string]int64
	for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, 5*time.Second) {
		var err error
		if last, err = h.opts.Store.LastOutboxSeq(ctx); err == nil {
			if cursors, err = h.opts.Store.WebhookCursors(ctx); err == nil {
				break
			}
		}
		h.log.Warn("webhooks: cannot read the outbox; retrying", "error", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
	}
	h.head.Store(last)
	h.setCursors(cursors)
	h.leading = h.opts.Lead == nil || h.opts.Lead()
}

// setCursors starts every webhook at its saved cursor, with nothing queued.
func (h *Hub) setCursors(cursors map[string]int64) {
	for _, k := range h.hooks {
		c, ok := cursors[k.cfg.ID]
		k.cursor, k.saved, k.readUpTo = c, c, c
		k.queue, k.replay, k.attempts, k.nextAt = nil, nil, 0, time.Time{}
		if !ok {
			k.saved = -1 // save it at the first poll
		}
	}
}

// follow starts or stops delivering as Options.Lead says. Stopping saves the cursors
// (deliveries in flight end on their own; what they move is not saved); starting, once
// none is in flight, reads the cursors the last leader saved.
func (h *Hub) follow(ctx context.Context) {
	if h.opts.Lead == nil || len(h.hooks) == 0 {
		return
	}
	lead := h.opts.Lead()
	if lead == h.leading {
		return
	}
	if !lead {
		h.save(ctx)
		h.leading = false
		h.log.Info("webhooks: another node delivers now")
		return
	}
	for _, k := range h.hooks {
		if k.inFlight {
			return // next turn
		}
	}
	cursors, err := h.opts.Store.WebhookCursors(ctx)
	if err != nil {
		h.log.Warn("webhooks: cannot read the cursors to start delivering", "error", err)
		return
	}
	h.setCursors(cursors)
	h.leading = true
	h.log.Info("webhooks: this node delivers now")
}

// read passes the outbox's new events (up to a gap younger than gapWait),
// fans them out to subscribers and appends them to the queues of the
// webhooks that are caught up.
func (h *Hub) read(ctx context.Context, gapSince time.Time) time.Time {
	if h.skipUnread(ctx) {
		return time.Time{}
	}
	head := h.head.Load()
	evs, err := h.opts.Store.ListOutbox(ctx, head, 0, 500)
	if err != nil {
		h.log.Warn("webhooks: reading the outbox failed", "error", err)
		return gapSince
	}
	n := 0
	for _, e := range evs {
		if e.Seq != head+1 {
			if gapSince.IsZero() {
				gapSince = time.Now()
			}
			if time.Since(gapSince) < gapWait {
				break
			}
		}
		gapSince = time.Time{}
		head = e.Seq
		n++
	}
	if n == 0 {
		return gapSince
	}
	evs = evs[:n]
	old := h.head.Load()
	h.head.Store(head)
	h.fanOut(evs)
	for _, k := range h.hooks {
		if !h.leading {
			break
		}
		if k.readUpTo != old || len(k.queue)+n > queueMax {
			continue // behind: it loads from the outbox when its queue empties
		}
		for _, e := range evs {
			if k.cfg.wants(e.Type) {
				k.queue = append(k.queue, e)
			}
		}
		k.readUpTo = head
		if len(k.queue) == 0 && !k.inFlight {
			k.cursor = head
		}
	}
	if n == 500 {
		h.Kick() // more to read
	}
	return gapSince
}

// skipUnread moves the head to the outbox's end without reading a row when nobody reads
// the feed (no webhook, no stream client): after a storm the outbox holds a few events per
// call, and decoding them all for nobody kept an idle server allocating 10 MiB/s for
// minutes. Under subMu, so a client subscribing now starts at the new head.
func (h *Hub) skipUnread(ctx context.Context) bool {
	if len(h.hooks) > 0 && h.leading {
		return false
	}
	h.subMu.Lock()
	defer h.subMu.Unlock()
	if len(h.subs) > 0 {
		return false
	}
	last, err := h.opts.Store.LastOutboxSeq(ctx)
	if err != nil {
		h.log.Warn("webhooks: reading the outbox failed", "error", err)
		return true
	}
	if last > h.head.Load() {
		h.head.Store(last)
	}
	return true
}

// load refills a behind webhook's empty queue from the outbox.
func (h *Hub) load(ctx context.Context, k *hook) {
	head := h.head.Load()
	// A few reads per turn: a webhook of rare types behind a long backlog of
	// others must not hold the loop (it goes on at the next turn).
	for reads := 0; k.readUpTo < head && len(k.queue) == 0 && reads < 10; reads++ {
		evs, err := h.opts.Store.ListOutbox(ctx, k.readUpTo, head, 200)
		if err != nil || len(evs) == 0 {
			if err != nil {
				h.log.Warn("webhooks: reading the outbox failed", "webhook", k.cfg.ID, "error", err)
			} else {
				k.readUpTo = head
			}
			break
		}
		for _, e := range evs {
			if k.cfg.wants(e.Type) {
				k.queue = append(k.queue, e)
			}
		}
		k.readUpTo = evs[len(evs)-1].Seq
	}
	if len(k.queue) == 0 && !k.inFlight {
		k.cursor = k.readUpTo
	}
}

// dispatch starts a delivery for each webhook that is free and due, and
// sets timer to the next due time.
func (h *Hub) dispatch(ctx context.Context, timer *time.Timer) {
	if ctx.Err() != nil || !h.leading {
		return
	}
	now := time.Now()
	var next time.Time
	for _, k := range h.hooks {
		if k.inFlight {
			continue
		}
		if len(k.replay) > 0 {
			d := k.replay[0]
			k.inFlight = true
			go h.deliver(ctx, k, d.Event, d.Attempts+1, true)
			continue
		}
		if len(k.queue) == 0 {
			h.load(ctx, k)
		}
		if len(k.queue) == 0 {
			if k.readUpTo < h.head.Load() {
				h.Kick() // more to read for it
			}
			continue
		}
		if now.Before(k.nextAt) {
			if next.IsZero() || k.nextAt.Before(next) {
				next = k.nextAt
			}
			continue
		}
		k.inFlight = true
		k.attempts++
		go h.deliver(ctx, k, k.queue[0], k.attempts, false)
	}
	if !next.IsZero() {
		timer.Reset(time.Until(next))
	}
}

// done takes a delivery's result.
func (h *Hub) done(ctx context.Context, r result) {
	k := r.h
	k.inFlight = false
	if errors.Is(r.err, context.Canceled) { // shutdown: not an attempt; sent again after the restart
		if !r.replay {
			k.attempts--
		}
		return
	}
	if r.replay {
		k.replay = k.replay[1:]
		msg := ""
		if r.err != nil {
			msg = r.err.Error()
			k.failed.Inc()
			k.nFailed++
		} else {
			k.delivered.Inc()
			k.nDelivered++
		}
		if err := h.opts.Store.ResolveDeadLetter(ctx, k.cfg.ID, r.ev.ID, msg); err != nil {
			h.log.Warn("webhooks: saving a replay's result failed", "webhook", k.cfg.ID, "event_id", r.ev.ID, "error", err)
		}
		return
	}
	if r.err == nil {
		k.delivered.Inc()
		k.nDelivered++
		k.lastOK, k.lastErr = time.Now(), ""
		h.pop(k)
		return
	}
	k.failed.Inc()
	k.nFailed++
	k.lastErr = r.err.Error()
	if k.attempts < k.cfg.MaxAttempts {
		k.nextAt = time.Now().Add(backoff(k.cfg.RetryMin, k.cfg.RetryMax, k.attempts))
		level := slog.LevelDebug
		if k.attempts&(k.attempts-1) == 0 { // the 1st, 2nd, 4th, 8th...: a receiver that is down does not flood the log
			level = slog.LevelWarn
		}
		h.log.Log(ctx, level, "webhook delivery failed; will retry", "webhook", k.cfg.ID, "event_id", r.ev.ID, "attempt", k.attempts, "retry_at", k.nextAt, "error", r.err)
		return
	}
	h.log.Error("webhook delivery failed; giving up (dead letter)", "webhook", k.cfg.ID, "event_id", r.ev.ID, "attempts", k.attempts, "error", r.err)
	dead := cdr.DeadLetter{Event: r.ev, Attempts: k.attempts, LastError: k.lastErr, Dead: time.Now()}
	h.pop(k)
	if err := h.opts.Store.SaveWebhook(ctx, k.cfg.ID, k.cursor, []cdr.DeadLetter{dead}); err != nil {
		// Not saved: the event will be tried again after a restart (same ID).
		h.log.Error("webhooks: saving a dead letter failed", "webhook", k.cfg.ID, "event_id", r.ev.ID, "error", err)
	} else {
		k.saved = k.cursor
	}
	k.dead.Inc()
	k.nDead++
}

// pop removes the head of k's queue and moves the cursor past it.
func (h *Hub) pop(k *hook) {
	k.queue = k.queue[1:]
	k.attempts, k.nextAt = 0, time.Time{}
	if len(k.queue) == 0 {
		k.queue = nil
		k.cursor = k.readUpTo
	} else {
		k.cursor = k.queue[0].Seq - 1
	}
}

// backoff is the wait after the n-th failed attempt: min·2^(n-1) capped at
// max, with "equal jitter" (half of it random), so that receivers that come
// back are not hit by every sender at once.
func backoff(lo, hi time.Duration, n int) time.Duration {
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	return d/2 + rand.N(d/2+1)
}

// save writes the cursors that moved.
func (h *Hub) save(ctx context.Context) {
	if !h.leading {
		return
	}
	for _, k := range h.hooks {
		if k.cursor == k.saved {
			continue
		}
		if err := h.opts.Store.SaveWebhook(ctx, k.cfg.ID, k.cursor, nil); err != nil {
			h.log.Warn("webhooks: saving a cursor failed", "webhook", k.cfg.ID, "error", err)
			continue
		}
		k.saved = k.cursor
	}
}

// finish waits for the deliveries in flight and saves the cursors.
func (h *Hub) finish() {
	n := 0
	for _, k := range h.hooks {
		if k.inFlight {
			n++
		}
	}
	for ; n > 0; n-- { // cancelled with Run's context, each ends at once
		h.done(context.Background(), <-h.results)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	h.save(ctx)
	cancel()
	h.publish()
}

// queueReplay queues k's dead letters for one more attempt each.
func (h *Hub) queueReplay(ctx context.Context, id string) replayReply {
	k, ok := h.byID[id]
	if !ok {
		return replayReply{err: ErrUnknownWebhook}
	}
	if !h.leading {
		return replayReply{err: ErrNotLeading}
	}
	if len(k.replay) > 0 {
		return replayReply{n: len(k.replay)} // one replay at a time
	}
	dead, err := h.opts.Store.DeadLetters(ctx, id, 1000)
	if err != nil {
		return replayReply{err: err}
	}
	k.replay = dead
	return replayReply{n: len(dead)}
}

// prune deletes events every webhook has handled that are older than Keep.
func (h *Hub) prune(ctx context.Context) {
	if !h.leading && len(h.hooks) > 0 {
		return // the leader's cursors say what is handled
	}
	upTo := h.head.Load()
	for _, k := range h.hooks {
		upTo = min(upTo, k.cursor)
	}
	if n, err := h.opts.Store.PruneOutbox(ctx, time.Now().Add(-h.opts.Keep), upTo); err != nil {
		h.log.Warn("webhooks: pruning the outbox failed", "error", err)
	} else if n > 0 {
		h.log.Info("webhooks: outbox pruned", "events", n)
	}
}

// publish refreshes the snapshot the API reads and the backlog gauges.
func (h *Hub) publish() {
	head := h.head.Load()
	out := make([]Stats, 0, len(h.hooks))
	for _, k := range h.hooks {
		s := Stats{ID: k.cfg.ID, URL: k.cfg.URL, Events: k.cfg.Events, FullNumbers: k.cfg.FullNumbers, Cursor: k.cursor,
			Backlog: max(head-k.cursor, 0), Delivered: k.nDelivered, Failed: k.nFailed, Dead: k.nDead,
			Attempts: k.attempts, NextAttempt: k.nextAt, LastError: k.lastErr, LastSuccess: k.lastOK}
		out = append(out, s)
		h.backlogG.WithLabelValues(k.cfg.ID).Set(float64(s.Backlog))
	}
	h.snap.Store(&out)
}

// Webhooks returns each webhook's state (a snapshot Run refreshes).
func (h *Hub) Webhooks() []Stats { return *h.snap.Load() }

// Known reports whether id is a configured webhook.
func (h *Hub) Known(id string) bool { _, ok := h.byID[id]; return ok }

// DeadLetters lists webhook id's dead letters.
func (h *Hub) DeadLetters(ctx context.Context, id string, limit int) ([]cdr.DeadLetter, error) {
	if !h.Known(id) {
		return nil, ErrUnknownWebhook
	}
	return h.opts.Store.DeadLetters(ctx, id, limit)
}

// Replay sends webhook id's dead letters once more each (same IDs); those
// delivered leave the list. It returns how many are queued.
func (h *Hub) Replay(ctx context.Context, id string) (int, error) {
	if !h.Known(id) {
		return 0, ErrUnknownWebhook
	}
	q := replayReq{id: id, reply: make(chan replayReply, 1)}
	select {
	case h.replayQ <- q:
	case <-h.stop:
		return 0, ErrClosed
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	r := <-q.reply
	return r.n, r.err
}
