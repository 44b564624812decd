package cluster

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hotline12345/hotline/acd"
)

// Views of the whole cluster, read without the lock (a consistent snapshot of each table).

// Agents lists every agent of the cluster, in configuration order.
func (a *ACD) Agents() []acd.AgentView {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	now := a.now()
	rows, err := a.pool.Query(ctx, `SELECT agent, name, state, reason, pending, pending_reason, since, call_id, queue,
		CASE WHEN day = $1 THEN calls_day ELSE 0 END, CASE WHEN day = $1 THEN talk_ms_day ELSE 0 END FROM cluster_agents`, dayKey(now))
	if err != nil {
		a.log.Warn("cluster acd: agents", "error", err)
		return nil
	}
	byID := map[string]acd.AgentView{}
	for rows.Next() {
		var v acd.AgentView
		var st, pending, pr string
		var talk int64
		if err := rows.Scan(&v.ID, &v.Name, &st, &v.Reason, &pending, &pr, &v.Since, &v.CallID, &v.Queue, &v.CallsToday, &talk); err != nil {
			break
		}
		v.State, v.TalkToday = acd.AgentState(st), time.Duration(talk)*time.Millisecond
		if pending != "" {
			v.Pending = pending + ": " + pr
		}
		if v.State == acd.AgentReady || v.State == acd.AgentLoggedOut || v.State == acd.AgentPaused {
			v.CallID, v.Queue = "", ""
		}
		byID[v.ID] = v
	}
	rows.Close()
	out := make([]acd.AgentView, 0, len(a.agents))
	for _, ag := range a.agents {
		if v, ok := byID[ag.ID]; ok {
			out = append(out, v)
		}
	}
	return out
}

// Queues lists the queues with the cluster's callers, agents and the day's counters.
func (a *ACD) Queues() []acd.QueueView {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	now := a.now()
	out := make([]acd.QueueView, 0, len(a.queues))
	idx := map[string]int{}
	for _, name := range slices.Sorted(maps.Keys(a.queues)) {
		idx[name] = len(out)
		out = append(out, acd.QueueView{Name: name})
	}
	err := pgx.BeginFunc(ctx, a.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT queue, count(*), count(*) FILTER (WHERE agent <> ''), min(joined) FROM cluster_waiting GROUP BY queue`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var name string
			var n, ringing int
			var oldest time.Time
			if err := rows.Scan(&name, &n, &ringing, &oldest); err != nil {
				rows.Close()
				return err
			}
			if i, ok := idx[name]; ok {
				out[i].Waiting, out[i].Ringing, out[i].LongestWait = n, ringing, now.Sub(oldest)
			}
		}
		rows.Close()
		rows, err = tx.Query(ctx, `SELECT m.queue, a.state, count(*) FROM cluster_members m JOIN cluster_agents a ON a.agent = m.agent GROUP BY 1, 2`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var name, st string
			var n int
			if err := rows.Scan(&name, &st, &n); err != nil {
				rows.Close()
				return err
			}
			i, ok := idx[name]
			if !ok {
				continue
			}
			c := &out[i].Agents
			switch acd.AgentState(st) {
			case acd.AgentLoggedOut:
				c.LoggedOut += n
			case acd.AgentReady:
				c.Ready += n
			case acd.AgentReserved:
				c.Reserved += n
			case acd.AgentOnCall:
				c.OnCall += n
			case acd.AgentWrapUp:
				c.WrapUp += n
			case acd.AgentPaused:
				c.Paused += n
			}
		}
		rows.Close()
		rows, err = tx.Query(ctx, `SELECT d.queue, offered, answered, abandoned, timed_out, exited_empty, exited_key, overflowed, transferred,
			answered_within, wait_ms_answered FROM cluster_queue_day d WHERE day = $1`, dayKey(now))
		if err != nil {
			return err
		}
		for rows.Next() {
			var name string
			var v acd.QueueView
			var waitMs int64
			if err := rows.Scan(&name, &v.Offered, &v.Answered, &v.Abandoned, &v.TimedOut, &v.ExitedEmpty, &v.ExitedKey,
				&v.Overflowed, &v.Transferred, &v.AnsweredWithin, &waitMs); err != nil {
				rows.Close()
				return err
			}
			i, ok := idx[name]
			if !ok {
				continue
			}
			o := &out[i]
			o.Offered, o.Answered, o.Abandoned, o.TimedOut, o.ExitedEmpty, o.ExitedKey, o.Overflowed, o.Transferred, o.AnsweredWithin =
				v.Offered, v.Answered, v.Abandoned, v.TimedOut, v.ExitedEmpty, v.ExitedKey, v.Overflowed, v.Transferred, v.AnsweredWithin
			if o.Offered > 0 {
				o.ServiceLevel = float64(o.AnsweredWithin) / float64(o.Offered)
			}
			if o.Answered > 0 {
				o.ServiceLevelAnswered = float64(o.AnsweredWithin) / float64(o.Answered)
				o.ASA = time.Duration(waitMs/int64(o.Answered)) * time.Millisecond
			}
		}
		rows.Close()
		rows, err = tx.Query(ctx, "SELECT queue, aht_ms FROM cluster_queue_aht")
		if err != nil {
			return err
		}
		for rows.Next() {
			var name string
			var ms int64
			if err := rows.Scan(&name, &ms); err != nil {
				rows.Close()
				return err
			}
			if i, ok := idx[name]; ok {
				out[i].AHT = time.Duration(ms) * time.Millisecond
			}
		}
		rows.Close()
		return rows.Err()
	})
	if err != nil {
		a.log.Warn("cluster acd: queues", "error", err)
	}
	for i := range out {
		o := &out[i]
		staffed := o.Agents.Ready + o.Agents.Reserved + o.Agents.OnCall + o.Agents.WrapUp
		q := a.queues[o.Name]
		switch {
		case staffed > 0:
			o.EWT = time.Duration(int64(o.Waiting+1) * int64(o.AHT) / int64(staffed))
			if q.MaxWait > 0 && o.EWT > q.MaxWait {
				o.EWT = q.MaxWait
			}
		case q.MaxWait > 0:
			o.EWT = q.MaxWait
		}
	}
	return out
}

// NodeView is a node of the cluster as the API shows it.
type NodeView struct {
	ID         string    `json:"id"`
	HTTPURL    string    `json:"http_url"`
	SIPAddr    string    `json:"sip_addr"`
	Started    time.Time `json:"started"`
	LeaseUntil time.Time `json:"lease_until"`
	Up         bool      `json:"up"`
	TakenBy    string    `json:"taken_by,omitempty"` // the node that took over when this one was lost
}

// Nodes lists the cluster's nodes.
func (a *ACD) Nodes(ctx context.Context) ([]NodeView, error) {
	rows, err := a.pool.Query(ctx, `SELECT node_id, http_url, sip_addr, started, lease_until, down_at IS NULL AND lease_until >= $1, taken_by
		FROM cluster_nodes ORDER BY node_id`, a.now())
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (NodeView, error) {
		var n NodeView
		err := r.Scan(&n.ID, &n.HTTPURL, &n.SIPAddr, &n.Started, &n.LeaseUntil, &n.Up, &n.TakenBy)
		return n, err
	})
}

// NodeID is this node's id.
func (a *ACD) NodeID() string { return a.node }
