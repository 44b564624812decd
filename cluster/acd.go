package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hotline12345/hotline/acd"
)

// ACD is the cluster's automatic call distributor: the same inputs and outputs as
// acd.ACD, with its state in PostgreSQL so that every node routes from one set of agents
// and one line of waiting callers. Each decision is one transaction under one advisory
// lock (the cluster's version of acd.ACD's mutex), so decisions are serialised across
// nodes and the in-memory ACD's invariant holds cluster-wide: after every input no
// routable agent is eligible for a waiting caller. Hence the longest-waiting eligible
// caller of the whole cluster gets the next suitable agent, and an agent is never offered
// two calls (a reservation is a conditional state change under that lock).
//
// Outputs go to the node that owns the call: this node's Outbox, or the other node's
// through NOTIFY (sent at commit). Time-driven transitions (wrap-up and rest ends, ring
// timeouts, escalation, MaxWait) are stored as due times and carried out by whichever
// node's tick sees them first, so they happen even when the node that set them is gone.
type ACD struct {
	pool   *pgxpool.Pool
	node   string
	schema string
	key    int64
	out    acd.Outbox
	log    *slog.Logger
	now    func() time.Time

	queues     map[string]acd.QueueConfig
	leaveEmpty []string // queues whose callers leave when nobody could serve them
	members    []acd.Membership
	agents     []acd.AgentConfig
	wrapUp     map[string]*time.Duration // agent overrides

	// Local outputs, in commit order, for one goroutine: an unbounded queue, so that
	// posting never waits (the goroutine calls into the ACD through the Outbox).
	qmu     sync.Mutex
	queue   []routed
	wake    chan struct{}
	orderMu sync.Mutex // commit and post as one step: local outputs keep commit order

	listenOnce sync.Once
	ctx        context.Context
	cancel     context.CancelFunc
	wg         sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	onOrphan func(Callback)  // a lost node's caller this node is to call back
	started  map[string]bool // callbacks handed to onOrphan (by lost call id)
}

// Config configures an ACD.
type Config struct {
	Pool   *pgxpool.Pool // from Connect
	Schema string        // as given to Connect ("" = DefaultSchema)
	NodeID string
	Queues []acd.QueueConfig
	Agents []acd.AgentConfig
	Out    acd.Outbox
	Logger *slog.Logger
	Now    func() time.Time // default time.Now
	// Tick is how often due transitions are looked for; default 200 ms.
	Tick time.Duration
}

// DefaultTick is how often a node looks for due transitions (wrap-up ends, ring timeouts,
// escalations, MaxWait): the most they are late by.
const DefaultTick = 200 * time.Millisecond

// opTimeout bounds one decision; PostgreSQL that does not answer within it fails the input
// (logged) rather than blocking a call's loop.
const opTimeout = 5 * time.Second

// NewACD checks the configuration, publishes the queue memberships and the agents (new
// agents logged out; agents already known keep their state: other nodes run), and starts
// the node's tick and the listener for outputs other nodes send it.
func NewACD(cfg Config) (*ACD, error) {
	if cfg.Out == nil || cfg.Pool == nil || cfg.NodeID == "" {
		return nil, fmt.Errorf("%w: cluster ACD needs a pool, a node id and an outbox", acd.ErrConfig)
	}
	qs, ms, err := acd.Plan(cfg.Queues, cfg.Agents)
	if err != nil {
		return nil, err
	}
	if cfg.Schema == "" {
		cfg.Schema = DefaultSchema
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Tick <= 0 {
		cfg.Tick = DefaultTick
	}
	a := &ACD{pool: cfg.Pool, node: cfg.NodeID, schema: cfg.Schema, key: lockKey(cfg.Schema), out: cfg.Out,
		log: cfg.Logger, now: cfg.Now, queues: map[string]acd.QueueConfig{}, members: ms, agents: cfg.Agents,
		wrapUp: map[string]*time.Duration{}, wake: make(chan struct{}, 1), started: map[string]bool{}}
	for _, q := range qs {
		a.queues[q.Name] = q
		if q.LeaveWhenEmpty {
			a.leaveEmpty = append(a.leaveEmpty, q.Name)
		}
	}
	for _, ag := range cfg.Agents {
		a.wrapUp[ag.ID] = ag.WrapUp
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.publish(ctx); err != nil {
		return nil, err
	}
	a.ctx, a.cancel = context.WithCancel(context.Background())
	listening := make(chan struct{})
	a.wg.Add(3)
	go a.deliverLoop()
	go a.listenLoop(listening)
	go a.tickLoop(cfg.Tick)
	select {
	case <-listening:
	case <-ctx.Done():
		a.Close()
		return nil, fmt.Errorf("cluster: LISTEN for other nodes' decisions: %w", ctx.Err())
	}
	return a, nil
}

// publish writes the memberships (the configuration is the same on every node: the last
// node started wins, identically) and adds the agents not known yet.
func (a *ACD) publish(ctx context.Context) error {
	return a.decide(ctx, "publish", func(d *dtx) error {
		if _, err := d.tx.Exec(ctx, "DELETE FROM cluster_members"); err != nil {
			return err
		}
		rows := make([][]any, len(a.members))
		for i, m := range a.members {
			rows[i] = []any{m.Agent, m.Queue, m.Step, m.Level}
		}
		if _, err := d.tx.CopyFrom(ctx, pgx.Identifier{"cluster_members"}, []string{"agent", "queue", "step", "level"}, pgx.CopyFromRows(rows)); err != nil {
			return err
		}
		for _, ag := range a.agents {
			if _, err := d.tx.Exec(ctx, `INSERT INTO cluster_agents (agent, name, since, idle_since) VALUES ($1, $2, $3, $3)
				ON CONFLICT (agent) DO UPDATE SET name = EXCLUDED.name`, ag.ID, ag.Name, d.now); err != nil {
				return err
			}
		}
		for q := range a.queues {
			if _, err := d.tx.Exec(ctx, `INSERT INTO cluster_queue_aht (queue, aht_ms) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
				q, acd.DefaultHandleTime.Milliseconds()); err != nil {
				return err
			}
		}
		return nil
	})
}

// Close stops the node's part of the ACD: its tick and listener. Unlike acd.ACD.Close it
// logs no agent out: the agents belong to the cluster, and other nodes go on routing them.
func (a *ACD) Close() {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return
	}
	a.closed = true
	a.mu.Unlock()
	a.cancel()
	a.wg.Wait()
}

func (a *ACD) isClosed() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.closed
}

// HasQueue reports whether the queue is configured.
func (a *ACD) HasQueue(name string) bool { _, ok := a.queues[name]; return ok }

// QueueConfig is a queue's configuration with its defaults.
func (a *ACD) QueueConfig(name string) (acd.QueueConfig, bool) { q, ok := a.queues[name]; return q, ok }

// dtx is one decision: a transaction holding the cluster's lock, and its outputs.
type dtx struct {
	a   *ACD
	ctx context.Context
	tx  pgx.Tx
	now time.Time
	day int
	out []routed
}

// routed is an output for a node.
type routed struct {
	node string
	o    output
}

// decide runs f as one decision: under the cluster's lock, committed, its outputs then
// delivered in order (to this node's Outbox, or through NOTIFY sent at commit).
func (a *ACD) decide(ctx context.Context, what string, f func(d *dtx) error) error {
	tx, err := a.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("cluster: %s: %w", what, err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", a.key); err != nil {
		return fmt.Errorf("cluster: %s: lock: %w", what, err)
	}
	now := a.now()
	d := &dtx{a: a, ctx: ctx, tx: tx, now: now, day: dayKey(now)}
	if err := f(d); err != nil {
		return err
	}
	var local []routed
	for _, r := range d.out {
		if r.node == a.node || r.node == "" {
			local = append(local, r)
			continue
		}
		payload, err := encodeOutput(r.o)
		if err != nil {
			return fmt.Errorf("cluster: %s: %w", what, err)
		}
		if _, err := tx.Exec(ctx, "SELECT pg_notify($1, $2)", a.channel(r.node), payload); err != nil {
			return fmt.Errorf("cluster: %s: notify: %w", what, err)
		}
	}
	a.orderMu.Lock()
	defer a.orderMu.Unlock()
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("cluster: %s: commit: %w", what, err)
	}
	if len(local) > 0 {
		a.post(local)
	}
	return nil
}

// post queues outputs for the delivery goroutine; it never waits.
func (a *ACD) post(rs []routed) {
	a.qmu.Lock()
	a.queue = append(a.queue, rs...)
	a.qmu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// deliverLoop hands the queued outputs to the Outbox, in order, until Close (what is left
// then is dropped: the node's calls are over).
func (a *ACD) deliverLoop() {
	defer a.wg.Done()
	for {
		select {
		case <-a.wake:
		case <-a.ctx.Done():
			return
		}
		a.qmu.Lock()
		rs := a.queue
		a.queue = nil
		a.qmu.Unlock()
		for _, r := range rs {
			switch o := r.o; o.Kind {
			case outOffer:
				a.out.Offer(o.Offer)
			case outCancel:
				a.out.CancelOffer(o.Offer)
			case outLeft:
				a.out.Left(o.CallID, o.Reason)
			case outEvent:
				a.out.Event(o.Event)
			case outOrphan:
				a.mu.Lock()
				f, dup := a.onOrphan, a.started[o.Callback.CallID]
				a.started[o.Callback.CallID] = true
				a.mu.Unlock()
				if f == nil {
					a.log.Error("cluster: a lost node's caller has no callback trunk to be called back on", "call_id", o.Callback.CallID, "queue", o.Callback.Queue)
				} else if !dup {
					f(o.Callback)
				}
			}
		}
	}
}

// run runs a decision for an input that has no error to return: a failure is logged.
func (a *ACD) run(what string, f func(d *dtx) error) {
	if a.isClosed() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := a.decide(ctx, what, f); err != nil {
		a.log.Error("cluster acd: decision failed", "input", what, "error", err)
	}
}

func dayKey(t time.Time) int { return t.Year()*400 + t.YearDay() }

// emit queues an output for a node.
func (d *dtx) emit(node string, o output) { d.out = append(d.out, routed{node: node, o: o}) }

// event queues a record event; events about a call go to the call's node (its outbox
// turns some of them into call events), agent events are written here.
func (d *dtx) event(node string, e acd.Event) {
	e.Time = d.now
	d.emit(node, output{Kind: outEvent, Event: e})
}

func (d *dtx) exec(sql string, args ...any) error {
	_, err := d.tx.Exec(d.ctx, sql, args...)
	return err
}

// stat adds one to a queue's counter of the day.
func (d *dtx) stat(queue, column string) error {
	q := `INSERT INTO cluster_queue_day (queue, day, ` + column + `) VALUES ($1, $2, 1)
		ON CONFLICT (queue, day) DO UPDATE SET ` + column + ` = cluster_queue_day.` + column + ` + 1`
	return d.exec(q, queue, d.day)
}

// --- waiting callers ---

// waiting is a row of cluster_waiting.
type waiting struct {
	CallID, Queue, Number, Node, Kind, Agent string
	Priority, Rank, Step, EntryPos, Attempt  int
	Enqueued, Joined                         time.Time
	Offered                                  *time.Time
}

const waitingCols = `call_id, queue, number, node_id, kind, agent, priority, rank, step, entry_pos, attempt, enqueued, joined, offered`

func scanWaiting(row pgx.Row) (*waiting, error) {
	var w waiting
	err := row.Scan(&w.CallID, &w.Queue, &w.Number, &w.Node, &w.Kind, &w.Agent, &w.Priority, &w.Rank, &w.Step,
		&w.EntryPos, &w.Attempt, &w.Enqueued, &w.Joined, &w.Offered)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return &w, err
}

func (d *dtx) waiting(callID string) (*waiting, error) {
	return scanWaiting(d.tx.QueryRow(d.ctx, "SELECT "+waitingCols+" FROM cluster_waiting WHERE call_id = $1", callID))
}

// position is a waiting caller's place in their queue (1 = next; callers being rung count).
func (d *dtx) position(w *waiting) (int, error) {
	var n int
	err := d.tx.QueryRow(d.ctx, `SELECT count(*) FROM cluster_waiting WHERE queue = $1 AND
		(rank > $2 OR (rank = $2 AND (enqueued, seq) < ($3, (SELECT seq FROM cluster_waiting WHERE call_id = $4))))`,
		w.Queue, w.Rank, w.Enqueued, w.CallID).Scan(&n)
	return n + 1, err
}

// join puts a caller into a queue (a new row, or an overflow or transfer moving it) and
// routes them.
func (d *dtx) join(w *waiting, reason, from string) (int, error) {
	q := d.a.queues[w.Queue]
	w.Rank = w.Priority + q.Weight
	w.Joined = d.now
	var next, deadline *time.Time
	if len(q.Escalations) > 0 {
		t := d.now.Add(q.Escalations[0].After)
		next = &t
	}
	if q.MaxWait > 0 {
		t := d.now.Add(q.MaxWait)
		deadline = &t
	}
	if err := d.exec(`INSERT INTO cluster_waiting (call_id, queue, number, priority, rank, enqueued, joined, step, next_step_at, deadline, node_id, kind)
		VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, $9, $10, $11)`,
		w.CallID, w.Queue, w.Number, w.Priority, w.Rank, w.Enqueued, w.Joined, next, deadline, w.Node, w.Kind); err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "23505" {
			return 0, fmt.Errorf("%w: %q", acd.ErrDuplicateCall, w.CallID)
		}
		return 0, err
	}
	pos, err := d.position(w)
	if err != nil {
		return 0, err
	}
	if err := d.exec("UPDATE cluster_waiting SET entry_pos = $2 WHERE call_id = $1", w.CallID, pos); err != nil {
		return 0, err
	}
	d.event(w.Node, acd.Event{Type: acd.EvEnterQueue, Queue: w.Queue, CallID: w.CallID,
		Data: acd.EventData{Position: pos, Number: w.Number, Priority: w.Priority, Reason: reason, Target: from}})
	if err := d.stat(w.Queue, "offered"); err != nil {
		return 0, err
	}
	return pos, d.routeCaller(w)
}

// refuses says why a queue takes no more callers.
func (d *dtx) refuses(q acd.QueueConfig) error {
	if q.MaxCallers > 0 {
		var n int
		if err := d.tx.QueryRow(d.ctx, "SELECT count(*) FROM cluster_waiting WHERE queue = $1", q.Name).Scan(&n); err != nil {
			return err
		}
		if n >= q.MaxCallers {
			return acd.ErrQueueFull
		}
	}
	if !q.JoinEmpty || q.LeaveWhenEmpty {
		var n int
		if err := d.tx.QueryRow(d.ctx, `SELECT count(*) FROM cluster_agents a JOIN cluster_members m ON m.agent = a.agent
			WHERE m.queue = $1 AND a.state NOT IN ('logged_out', 'paused')`, q.Name).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return acd.ErrNoAgents
		}
	}
	return nil
}

// agentOrder is the ORDER BY of a queue's strategy. Round-robin and ring-all are served
// as longest-idle in a cluster (one agent rung at a time; see docs/ARCHITECTURE.md).
func agentOrder(s acd.Strategy) string {
	switch s {
	case acd.FewestCalls:
		return "CASE WHEN a.day = $4 THEN a.calls_day ELSE 0 END, a.idle_since, a.agent"
	case acd.BestSkill:
		return "m.level DESC, a.idle_since, a.agent"
	case acd.Random:
		return "random()"
	}
	return "a.idle_since, a.agent"
}

// routeCaller offers a waiting caller the agent their queue's strategy prefers among the
// routable eligible agents, if there is one.
func (d *dtx) routeCaller(w *waiting) error {
	q := d.a.queues[w.Queue]
	var agent string
	args := []any{w.Queue, w.Step, d.now}
	if q.Strategy == acd.FewestCalls {
		args = append(args, d.day) // $4 of its ORDER BY
	}
	err := d.tx.QueryRow(d.ctx, `SELECT a.agent FROM cluster_agents a JOIN cluster_members m ON m.agent = a.agent
		WHERE m.queue = $1 AND m.step <= $2 AND a.state = 'ready' AND (a.rest_until IS NULL OR a.rest_until <= $3)
		ORDER BY `+agentOrder(q.Strategy)+` LIMIT 1`, args...).Scan(&agent)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	return d.offer(w, agent)
}

// routeAgent gives a routable agent the best waiting caller they are eligible for: the
// highest rank (priority plus the queue's weight), then the earliest place in line.
func (d *dtx) routeAgent(agent string) error {
	w, err := scanWaiting(d.tx.QueryRow(d.ctx, `SELECT `+waitingCols+` FROM cluster_waiting WHERE call_id = (
		SELECT w.call_id FROM cluster_members m
		CROSS JOIN LATERAL (SELECT * FROM cluster_waiting w WHERE w.queue = m.queue AND w.agent = '' AND w.step >= m.step
			ORDER BY w.rank DESC, w.enqueued, w.seq LIMIT 1) w
		JOIN cluster_agents a ON a.agent = m.agent
		WHERE m.agent = $1 AND a.state = 'ready' AND (a.rest_until IS NULL OR a.rest_until <= $2)
		ORDER BY w.rank DESC, w.enqueued, w.seq LIMIT 1)`, agent, d.now))
	if err != nil || w == nil {
		return err
	}
	return d.offer(w, agent)
}

// offer reserves the agent for the caller and asks the caller's node to ring.
func (d *dtx) offer(w *waiting, agent string) error {
	q := d.a.queues[w.Queue]
	tag, err := d.tx.Exec(d.ctx, `UPDATE cluster_agents SET state = 'reserved', since = $2, idle_since = $2, call_id = $3, queue = $4,
		node_id = $5, offered = $2 WHERE agent = $1 AND state = 'ready'`, agent, d.now, w.CallID, w.Queue, w.Node)
	if err != nil {
		return err
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("cluster: agent %s was not ready when offered", agent) // cannot happen under the lock
	}
	w.Attempt++
	if err := d.exec(`UPDATE cluster_waiting SET agent = $2, offered = $3, ring_until = $4, attempt = $5 WHERE call_id = $1`,
		w.CallID, agent, d.now, d.now.Add(q.RingTimeout), w.Attempt); err != nil {
		return err
	}
	d.emit(w.Node, output{Kind: outOffer, Offer: acd.Offer{CallID: w.CallID, AgentID: agent, Queue: w.Queue, Attempt: w.Attempt}})
	return nil
}
