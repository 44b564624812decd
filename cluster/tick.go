package cluster

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hotline12345/hotline/acd"
)

// output is one thing the ACD decided for a node's calls.
type output struct {
	Kind     string         `json:"k"`
	Offer    acd.Offer      `json:"o,omitzero"`
	CallID   string         `json:"c,omitempty"`
	Reason   acd.ExitReason `json:"r,omitempty"`
	Event    acd.Event      `json:"e,omitzero"`
	Callback Callback       `json:"b,omitzero"`
}

const (
	outOffer  = "offer"
	outCancel = "cancel"
	outLeft   = "left"
	outEvent  = "event"
	outOrphan = "orphan"
)

func encodeOutput(o output) (string, error) {
	b, err := json.Marshal(o)
	return string(b), err
}

// channel is the NOTIFY channel of a node.
func (a *ACD) channel(node string) string { return a.schema + ":" + node }

// listenLoop receives the outputs other nodes decided for this node's calls. listening is
// closed once the first LISTEN is in place (NewACD waits for it: a NOTIFY sent before it
// would be lost).
func (a *ACD) listenLoop(listening chan<- struct{}) {
	defer a.wg.Done()
	for a.ctx.Err() == nil {
		if err := a.listen(listening); err != nil && a.ctx.Err() == nil {
			a.log.Warn("cluster acd: listening for other nodes' decisions", "error", err)
			select {
			case <-a.ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

func (a *ACD) listen(listening chan<- struct{}) error {
	conn, err := a.pool.Acquire(a.ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(a.ctx, "LISTEN "+pgx.Identifier{a.channel(a.node)}.Sanitize()); err != nil {
		return err
	}
	defer conn.Exec(context.Background(), "UNLISTEN *")
	a.listenOnce.Do(func() { close(listening) })
	for {
		n, err := conn.Conn().WaitForNotification(a.ctx)
		if err != nil {
			return err
		}
		var o output
		if err := json.Unmarshal([]byte(n.Payload), &o); err != nil {
			a.log.Error("cluster acd: bad notification", "error", err)
			continue
		}
		a.post([]routed{{node: a.node, o: o}})
	}
}

// tickLoop carries out due transitions, whoever set them.
func (a *ACD) tickLoop(every time.Duration) {
	defer a.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-a.ctx.Done():
			return
		case <-t.C:
			a.tick()
		}
	}
}

// dueSQL finds whether anything is due, without the lock: most ticks find nothing.
const dueSQL = `SELECT
	EXISTS (SELECT 1 FROM cluster_agents WHERE state = 'wrap_up' AND wrap_until <= $1)
	OR EXISTS (SELECT 1 FROM cluster_agents WHERE state = 'ready' AND rest_until <= $1)
	OR EXISTS (SELECT 1 FROM cluster_waiting WHERE agent <> '' AND ring_until <= $1)
	OR EXISTS (SELECT 1 FROM cluster_waiting WHERE next_step_at <= $1)
	OR EXISTS (SELECT 1 FROM cluster_waiting WHERE agent = '' AND deadline <= $1)`

func (a *ACD) tick() {
	ctx, cancel := context.WithTimeout(a.ctx, opTimeout)
	defer cancel()
	var due bool
	if err := a.pool.QueryRow(ctx, dueSQL, a.now()).Scan(&due); err != nil {
		if a.ctx.Err() == nil {
			a.log.Warn("cluster acd: tick", "error", err)
		}
		return
	}
	if !due && len(a.leaveEmpty) > 0 {
		if err := a.pool.QueryRow(ctx, "SELECT EXISTS ("+emptySQL+")", a.leaveEmpty).Scan(&due); err != nil {
			return
		}
	}
	if due {
		a.run("tick", func(d *dtx) error { return d.due() })
	}
}

// emptySQL finds the callers waiting in a queue (of $1, those with LeaveWhenEmpty) that
// no agent logged in and unpaused could ever serve.
const emptySQL = `SELECT w.call_id FROM cluster_waiting w WHERE w.queue = ANY($1) AND w.agent = ''
	AND NOT EXISTS (SELECT 1 FROM cluster_members m JOIN cluster_agents g ON g.agent = m.agent
		WHERE m.queue = w.queue AND g.state NOT IN ('logged_out', 'paused'))`

// due carries out every transition whose time has come.
func (d *dtx) due() error {
	ids, err := d.ids("SELECT agent FROM cluster_agents WHERE state = 'wrap_up' AND wrap_until <= $1 ORDER BY wrap_until", d.now)
	if err != nil {
		return err
	}
	for _, id := range ids {
		ag, err := d.agent(id)
		if err != nil {
			return err
		}
		if err := d.wrapUpOver(ag); err != nil {
			return err
		}
	}
	if ids, err = d.ids("SELECT agent FROM cluster_agents WHERE state = 'ready' AND rest_until <= $1 ORDER BY rest_until", d.now); err != nil {
		return err
	}
	for _, id := range ids {
		if err := d.exec("UPDATE cluster_agents SET rest_until = NULL WHERE agent = $1", id); err != nil {
			return err
		}
		if err := d.routeAgent(id); err != nil {
			return err
		}
	}
	// Rings not answered in time: the caller's node is told to stop ringing.
	if ids, err = d.ids("SELECT call_id FROM cluster_waiting WHERE agent <> '' AND ring_until <= $1 ORDER BY ring_until", d.now); err != nil {
		return err
	}
	for _, id := range ids {
		w, err := d.waiting(id)
		if err != nil || w == nil {
			return err
		}
		d.emit(w.Node, output{Kind: outCancel, Offer: acd.Offer{CallID: w.CallID, AgentID: w.Agent, Queue: w.Queue, Attempt: w.Attempt}})
		if err := d.failRing(w, acd.NoAnswer); err != nil {
			return err
		}
	}
	if ids, err = d.ids("SELECT call_id FROM cluster_waiting WHERE next_step_at <= $1 ORDER BY enqueued, seq", d.now); err != nil {
		return err
	}
	for _, id := range ids {
		if err := d.escalate(id); err != nil {
			return err
		}
	}
	if ids, err = d.ids("SELECT call_id FROM cluster_waiting WHERE agent = '' AND deadline <= $1 ORDER BY enqueued, seq", d.now); err != nil {
		return err
	}
	for _, id := range ids {
		w, err := d.waiting(id)
		if err != nil || w == nil {
			return err
		}
		if err := d.exit(w, acd.EvExitTimeout, "caller-timeout", ""); err != nil {
			return err
		}
		d.emit(w.Node, output{Kind: outLeft, CallID: w.CallID, Reason: acd.ExitTimeout})
	}
	// Queues with LeaveWhenEmpty whose last agent who could serve them logged out or paused.
	if len(d.a.leaveEmpty) > 0 {
		if ids, err = d.ids(emptySQL+" ORDER BY w.enqueued, w.seq", d.a.leaveEmpty); err != nil {
			return err
		}
		for _, id := range ids {
			w, err := d.waiting(id)
			if err != nil || w == nil {
				return err
			}
			if err := d.exit(w, acd.EvExitEmpty, "caller-empty", ""); err != nil {
				return err
			}
			d.emit(w.Node, output{Kind: outLeft, CallID: w.CallID, Reason: acd.ExitEmpty})
		}
	}
	return nil
}

// escalate takes a caller to their queue's next escalation step: a wider set of agents,
// or an overflow into another queue keeping their place.
func (d *dtx) escalate(callID string) error {
	w, err := d.waiting(callID)
	if err != nil || w == nil {
		return err
	}
	q := d.a.queues[w.Queue]
	if w.Step >= len(q.Escalations) {
		return d.exec("UPDATE cluster_waiting SET next_step_at = NULL WHERE call_id = $1", callID)
	}
	e := q.Escalations[w.Step]
	if e.Overflow != "" {
		target := d.a.queues[e.Overflow]
		if w.Agent != "" || d.refuses(target) != nil { // stays; acd does the same
			return d.exec("UPDATE cluster_waiting SET next_step_at = NULL WHERE call_id = $1", callID)
		}
		d.event(w.Node, acd.Event{Type: acd.EvOverflow, Queue: w.Queue, CallID: callID,
			Data: acd.EventData{Target: e.Overflow, Wait: d.now.Sub(w.Joined)}})
		if err := d.stat(w.Queue, "overflowed"); err != nil {
			return err
		}
		if err := d.exec("DELETE FROM cluster_waiting WHERE call_id = $1", callID); err != nil {
			return err
		}
		from := w.Queue
		w.Queue, w.Step = e.Overflow, 0
		_, err := d.join(w, "overflow", from)
		return err
	}
	w.Step++
	var next *time.Time
	if w.Step < len(q.Escalations) {
		t := w.Joined.Add(q.Escalations[w.Step].After)
		next = &t
	}
	if err := d.exec("UPDATE cluster_waiting SET step = $2, next_step_at = $3 WHERE call_id = $1", callID, w.Step, next); err != nil {
		return err
	}
	d.event(w.Node, acd.Event{Type: acd.EvEscalate, Queue: w.Queue, CallID: callID,
		Data: acd.EventData{Position: w.Step + 1, Wait: d.now.Sub(w.Joined)}})
	if w.Agent != "" {
		return nil
	}
	return d.routeCaller(w)
}

func (d *dtx) ids(q string, args ...any) ([]string, error) {
	rows, err := d.tx.Query(d.ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}
