package cluster

import (
	"context"
	"encoding/json"
)

// PublishLive replaces this node's calls in progress (a JSON array) in the shared table.
func (a *ACD) PublishLive(ctx context.Context, calls json.RawMessage) error {
	_, err := a.pool.Exec(ctx, `INSERT INTO cluster_live (node_id, calls, updated) VALUES ($1, $2, $3)
		ON CONFLICT (node_id) DO UPDATE SET calls = $2, updated = $3`, a.node, string(calls), a.now())
	return err
}

// OthersLive returns the calls in progress of the other nodes that hold their lease (a
// lost node's calls are gone with it), one JSON array per node.
func (a *ACD) OthersLive(ctx context.Context) ([]json.RawMessage, error) {
	rows, err := a.pool.Query(ctx, `SELECT l.calls::text FROM cluster_live l JOIN cluster_nodes n ON n.node_id = l.node_id
		WHERE l.node_id <> $1 AND n.down_at IS NULL AND n.lease_until >= $2 ORDER BY l.node_id`, a.node, a.now())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []json.RawMessage
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, json.RawMessage(s))
	}
	return out, rows.Err()
}
