package cluster

import (
	"context"
	"fmt"
	"hash/fnv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultSchema is the PostgreSQL schema of the cluster's shared state. Records stay where
// cdr_dsn puts them; the cluster's tables are live state (agents, waiting callers, node
// leases), not history, and a schema of their own lets one database hold several clusters
// (and the tests, each in a schema of its own).
const DefaultSchema = "hotline_cluster"

// schemaSQL creates the shared state. Live state only: dropping the schema while every
// node is stopped loses nothing the records do not have.
const schemaSQL = `
CREATE TABLE IF NOT EXISTS cluster_nodes (
	node_id     text PRIMARY KEY,
	http_url    text NOT NULL DEFAULT '',
	sip_addr    text NOT NULL DEFAULT '',
	started     timestamptz NOT NULL,
	lease_until timestamptz NOT NULL,
	down_at     timestamptz,              -- the lease lapsed and taken_by took over
	taken_by    text NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS cluster_agents (
	agent          text PRIMARY KEY,
	name           text NOT NULL DEFAULT '',
	state          text NOT NULL DEFAULT 'logged_out',
	reason         text NOT NULL DEFAULT '',
	pending        text NOT NULL DEFAULT '', -- '', 'pause' or 'logout' (asked while ringing or on a call)
	pending_reason text NOT NULL DEFAULT '',
	since          timestamptz NOT NULL DEFAULT now(), -- in this state since
	idle_since     timestamptz NOT NULL DEFAULT now(), -- longest-idle order
	rest_until     timestamptz,               -- ready but not offered before (after a rejection)
	wrap_until     timestamptz,
	login_at       timestamptz,
	call_id        text NOT NULL DEFAULT '',  -- the call ringing or bridged, or wrapped up
	queue          text NOT NULL DEFAULT '',
	node_id        text NOT NULL DEFAULT '',  -- the node that rings or bridges the agent
	offered        timestamptz,
	connected      timestamptz,
	ended          timestamptz,
	wait_ms        bigint NOT NULL DEFAULT 0, -- the bridged caller's wait in this queue visit
	enqueued       timestamptz,               -- the bridged caller's place in line (transfers keep it)
	talk_ms        bigint NOT NULL DEFAULT 0, -- of the call wrapped up
	day            int NOT NULL DEFAULT 0,
	calls_day      int NOT NULL DEFAULT 0,
	talk_ms_day    bigint NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS cluster_members (
	agent text NOT NULL,
	queue text NOT NULL,
	step  int NOT NULL,  -- first escalation step the agent is eligible from
	level int NOT NULL,  -- in the queue's main skill (best-skill)
	PRIMARY KEY (agent, queue)
);
CREATE TABLE IF NOT EXISTS cluster_waiting (
	call_id      text PRIMARY KEY,
	queue        text NOT NULL,
	number       text NOT NULL DEFAULT '',
	priority     int NOT NULL DEFAULT 0,
	rank         int NOT NULL DEFAULT 0,     -- priority + the queue's weight
	enqueued     timestamptz NOT NULL,       -- place in line (kept across overflow, transfer, a lost node)
	joined       timestamptz NOT NULL,       -- this queue visit
	seq          bigserial,
	step         int NOT NULL DEFAULT 0,
	next_step_at timestamptz,
	deadline     timestamptz,                -- MaxWait
	entry_pos    int NOT NULL DEFAULT 0,
	node_id      text NOT NULL,              -- where the call lives
	kind         text NOT NULL DEFAULT 'call', -- call, or task (a callback with nobody on the line)
	agent        text NOT NULL DEFAULT '',   -- being rung ('' = waiting)
	offered      timestamptz,
	ring_until   timestamptz,
	attempt      int NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS cluster_waiting_order ON cluster_waiting (queue, rank DESC, enqueued, seq) WHERE agent = '';
CREATE INDEX IF NOT EXISTS cluster_waiting_node ON cluster_waiting (node_id);
-- what every node's tick looks for, five times a second
CREATE INDEX IF NOT EXISTS cluster_waiting_ring ON cluster_waiting (ring_until) WHERE agent <> '';
CREATE INDEX IF NOT EXISTS cluster_waiting_step ON cluster_waiting (next_step_at) WHERE next_step_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS cluster_waiting_deadline ON cluster_waiting (deadline) WHERE agent = '';
-- callers of a lost node, to be called back: a node takes each into its own queue as a
-- callback task (same queue, same place) and deletes the row in that same transaction.
CREATE TABLE IF NOT EXISTS cluster_callbacks (
	call_id  text PRIMARY KEY,   -- the lost call's id (the task's parent record)
	queue    text NOT NULL,
	number   text NOT NULL,
	priority int NOT NULL,
	enqueued timestamptz NOT NULL,
	node_id  text NOT NULL,      -- the node that owns the task now
	created  timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS cluster_queue_day (
	queue text NOT NULL,
	day   int NOT NULL,
	offered int NOT NULL DEFAULT 0, answered int NOT NULL DEFAULT 0, abandoned int NOT NULL DEFAULT 0,
	timed_out int NOT NULL DEFAULT 0, exited_empty int NOT NULL DEFAULT 0, exited_key int NOT NULL DEFAULT 0,
	overflowed int NOT NULL DEFAULT 0, transferred int NOT NULL DEFAULT 0, answered_within int NOT NULL DEFAULT 0,
	wait_ms_answered bigint NOT NULL DEFAULT 0,
	PRIMARY KEY (queue, day)
);
CREATE TABLE IF NOT EXISTS cluster_queue_aht (
	queue   text PRIMARY KEY,
	aht_ms  bigint NOT NULL,
	samples int NOT NULL DEFAULT 0
);
`

// Connect opens a pool whose connections use schema (created if missing, with its tables).
func Connect(ctx context.Context, dsn, schema string) (*pgxpool.Pool, error) {
	if schema == "" {
		schema = DefaultSchema
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("cluster: dsn: %w", err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	if cfg.MaxConns < 8 {
		cfg.MaxConns = 8
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if _, err := pool.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize()); err != nil {
		pool.Close()
		return nil, fmt.Errorf("cluster: create schema %s: %w", schema, err)
	}
	// Two nodes starting together: one creates, the other waits (CREATE IF NOT EXISTS
	// races on the catalog otherwise).
	tx, err := pool.Begin(ctx)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("cluster: %w", err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockKey(schema)+1); err != nil {
		pool.Close()
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if _, err := tx.Exec(ctx, schemaSQL+";"+liveSQL); err != nil {
		pool.Close()
		return nil, fmt.Errorf("cluster: create tables: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("cluster: %w", err)
	}
	return pool, nil
}

// lockKey is the advisory lock that serialises the routing decisions of one cluster.
func lockKey(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("hotline-acd:" + schema))
	return int64(h.Sum64() >> 1)
}

// liveSQL holds each node's calls in progress, replaced every second by the node, for the
// cluster-wide views of the API and the wallboard.
const liveSQL = `CREATE TABLE IF NOT EXISTS cluster_live (
	node_id text PRIMARY KEY,
	calls   jsonb NOT NULL,
	updated timestamptz NOT NULL
)`
