package cluster

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hotline12345/hotline/acd"
)

// Node leases. Each node renews a lease in cluster_nodes every Lease/5. A node whose lease
// has lapsed (kill -9, power, a network partition from PostgreSQL) is taken over by the
// first live node to see it, in one decision: its agents are freed (a ring that cannot
// happen any more is withdrawn; a call in progress is recorded as ended with reason
// node-lost and the agent goes to wrap-up), and the callers who waited on it become
// callbacks in the same queue, keeping their place in line. A node taken over that comes
// back (its lease renewed) is simply up again: it has no calls, its journal replays its
// records.

// DefaultLease is how long a node's lease lasts without renewal.
const DefaultLease = 5 * time.Second

// ReasonNodeLost is the reason of the COMPLETEAGENT of a call whose node was lost.
const ReasonNodeLost = "node-lost"

// Callback is a caller of a lost node, to be called back from the same queue and place.
type Callback struct {
	CallID   string    `json:"call_id"` // the lost call (the task's parent record)
	Queue    string    `json:"queue"`
	Number   string    `json:"number"`
	Priority int       `json:"priority"`
	Enqueued time.Time `json:"enqueued"`
}

// NodeInfo is what a node publishes with its lease.
type NodeInfo struct {
	HTTPURL, SIPAddr string
	Lease            time.Duration // default DefaultLease
}

// OnCallback sets what this node does with a lost node's caller it took over: start a
// callback task in c.Queue for c.Number keeping c.Enqueued as its place (call.Manager.Task).
// The task's Enqueue deletes the callback's row: until then another node takes it over if
// this one is lost too.
func (a *ACD) OnCallback(f func(c Callback)) {
	a.mu.Lock()
	a.onOrphan = f
	a.mu.Unlock()
}

// StartLease publishes this node, takes over what an earlier run of it left (callers and
// rings of calls that died with it, callbacks it had not started), and keeps the lease
// renewed and other nodes' leases watched until Close.
func (a *ACD) StartLease(info NodeInfo) error {
	if info.Lease <= 0 {
		info.Lease = DefaultLease
	}
	ctx, cancel := context.WithTimeout(a.ctx, opTimeout)
	defer cancel()
	if err := a.renew(ctx, info, true); err != nil {
		return err
	}
	if err := a.decide(ctx, "take over own leftovers", func(d *dtx) error { return d.takeOver(a.node) }); err != nil {
		return err
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		t := time.NewTicker(info.Lease / 5)
		defer t.Stop()
		for {
			select {
			case <-a.ctx.Done():
				return
			case <-t.C:
			}
			ctx, cancel := context.WithTimeout(a.ctx, info.Lease/2)
			if err := a.renew(ctx, info, false); err != nil && a.ctx.Err() == nil {
				a.log.Warn("cluster: lease not renewed", "error", err)
			}
			a.sweep(ctx)
			cancel()
		}
	}()
	return nil
}

func (a *ACD) renew(ctx context.Context, info NodeInfo, start bool) error {
	now := a.now()
	q := `INSERT INTO cluster_nodes (node_id, http_url, sip_addr, started, lease_until) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (node_id) DO UPDATE SET http_url = $2, sip_addr = $3, lease_until = $5, down_at = NULL, taken_by = ''`
	if start {
		q += ", started = $4"
	}
	_, err := a.pool.Exec(ctx, q, a.node, info.HTTPURL, info.SIPAddr, now, now.Add(info.Lease))
	return err
}

// sweep takes over the nodes whose lease lapsed.
func (a *ACD) sweep(ctx context.Context) {
	rows, err := a.pool.Query(ctx, "SELECT node_id FROM cluster_nodes WHERE down_at IS NULL AND lease_until < $1 AND node_id <> $2", a.now(), a.node)
	if err != nil {
		return
	}
	var lost []string
	for rows.Next() {
		var n string
		if rows.Scan(&n) == nil {
			lost = append(lost, n)
		}
	}
	rows.Close()
	for _, n := range lost {
		err := a.decide(ctx, "take over "+n, func(d *dtx) error {
			tag, err := d.tx.Exec(ctx, `UPDATE cluster_nodes SET down_at = $2, taken_by = $3
				WHERE node_id = $1 AND down_at IS NULL AND lease_until < $2`, n, d.now, a.node)
			if err != nil || tag.RowsAffected() == 0 {
				return err // another node was first, or it came back
			}
			a.log.Warn("cluster: node lost: taking over its agents and waiting callers", "node", n)
			return d.takeOver(n)
		})
		if err != nil {
			a.log.Error("cluster: taking over a lost node", "node", n, "error", err)
		}
	}
}

// takeOver frees what node held: its waiting callers become callbacks owned by this node
// (same queue, same place), its rings are withdrawn and its calls in progress end.
func (d *dtx) takeOver(node string) error {
	rows, err := d.tx.Query(d.ctx, `DELETE FROM cluster_waiting WHERE node_id = $1
		RETURNING call_id, queue, number, priority, enqueued, agent`, node)
	if err != nil {
		return err
	}
	type lostCaller struct {
		cb    Callback
		agent string
	}
	var lost []lostCaller
	for rows.Next() {
		var l lostCaller
		if err := rows.Scan(&l.cb.CallID, &l.cb.Queue, &l.cb.Number, &l.cb.Priority, &l.cb.Enqueued, &l.agent); err != nil {
			rows.Close()
			return err
		}
		lost = append(lost, l)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, l := range lost {
		if err := d.exec(`INSERT INTO cluster_callbacks (call_id, queue, number, priority, enqueued, node_id, created)
			VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (call_id) DO UPDATE SET node_id = $6`,
			l.cb.CallID, l.cb.Queue, l.cb.Number, l.cb.Priority, l.cb.Enqueued, d.a.node, d.now); err != nil {
			return err
		}
	}
	// Agents the lost node was ringing or bridging.
	ids, err := d.ids("SELECT agent FROM cluster_agents WHERE node_id = $1 AND state IN ('reserved', 'on_call') ORDER BY agent", node)
	if err != nil {
		return err
	}
	for _, id := range ids {
		ag, err := d.agent(id)
		if err != nil {
			return err
		}
		if ag.State == acd.AgentOnCall {
			if err := d.endCall(ag, acd.EvCompleteAgent, ReasonNodeLost); err != nil {
				return err
			}
			continue
		}
		d.event("", acd.Event{Type: acd.EvRingCanceled, Queue: ag.Queue, CallID: ag.CallID, AgentID: id,
			Data: acd.EventData{Reason: ReasonNodeLost}})
		if err := d.release(id, 0); err != nil {
			return err
		}
	}
	// Events about the lost node's calls are written here now (endCall addressed them to it).
	for i := range d.out {
		if d.out[i].node == node {
			d.out[i].node = d.a.node
		}
	}
	// Callbacks the lost node had taken over and not started, and the new ones: this node's.
	if err := d.exec("UPDATE cluster_callbacks SET node_id = $2 WHERE node_id = $1", node, d.a.node); err != nil {
		return err
	}
	rows, err = d.tx.Query(d.ctx, "SELECT call_id, queue, number, priority, enqueued FROM cluster_callbacks WHERE node_id = $1 ORDER BY enqueued", d.a.node)
	if err != nil {
		return err
	}
	cbs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Callback])
	if err != nil {
		return err
	}
	for _, cb := range cbs {
		d.emit(d.a.node, output{Kind: outOrphan, Callback: cb})
	}
	return nil
}
