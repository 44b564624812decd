package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/call"
	"github.com/hotline12345/hotline/cluster"
	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/sip"
)

// clusterNode is this node's part of a cluster (config cluster:): the shared ACD, the
// lease, the live calls published for the other nodes' APIs.
type clusterNode struct {
	cfg  *config.Config
	log  *slog.Logger
	pool *pgxpool.Pool
	acd  *cluster.ACD // made by call.NewManager through newACD
	// bindings are the registrations of every node (cluster_bindings); set before the
	// registrar, which reports its changes to them.
	bindings *cluster.Bindings
	local    *lateDirectory
	stop     context.CancelFunc
	done     chan struct{}
	// delivers: this node delivers the webhooks, being the live node with the lowest id
	// (re-read every second; a lost node's part passes to the next within its lease).
	delivers atomic.Bool
}

func openCluster(cfg *config.Config, log *slog.Logger) (*clusterNode, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	pool, err := cluster.Connect(ctx, cfg.ClusterDSN(), cfg.Cluster.Schema)
	if err != nil {
		return nil, err
	}
	return &clusterNode{cfg: cfg, log: log.With("caller", "cluster"), pool: pool}, nil
}

// newACD is call.Config.NewACD: the cluster's distributor around the manager's outbox.
func (n *clusterNode) newACD(queues []acd.QueueConfig, agents []acd.AgentConfig) func(acd.Outbox) (call.ACD, error) {
	return func(out acd.Outbox) (call.ACD, error) {
		a, err := cluster.NewACD(cluster.Config{Pool: n.pool, Schema: n.cfg.Cluster.Schema, NodeID: n.cfg.NodeID,
			Queues: queues, Agents: agents, Out: out, Logger: n.log.With("caller", "cluster-acd")})
		if err != nil {
			return nil, err
		}
		n.acd = a
		return a, nil
	}
}

// start takes the lease (and what an earlier run of this node left), calls back the
// callers of lost nodes it takes over, and publishes the live calls every second.
func (n *clusterNode) start(calls *call.Manager, httpURL, sipAddr string) error {
	if n.cfg.Cluster.HTTPURL != "" {
		httpURL = n.cfg.Cluster.HTTPURL
	}
	cb := n.cfg.CallbackSettings()
	n.acd.OnCallback(func(c cluster.Callback) {
		if cb.Trunk == "" {
			n.log.Error("a lost node's caller cannot be called back: no callback trunk (callback.trunk)", "call_id", c.CallID, "queue", c.Queue)
			return
		}
		n.log.Info("calling back a caller of a lost node, keeping their place", "call_id", c.CallID, "queue", c.Queue)
		go calls.Task(context.Background(), call.TaskRequest{Queue: c.Queue, Trunk: cb.Trunk, Number: c.Number,
			Priority: c.Priority, Parent: c.CallID, Enqueued: c.Enqueued})
	})
	if err := n.acd.StartLease(cluster.NodeInfo{HTTPURL: httpURL, SIPAddr: sipAddr, Lease: n.cfg.Cluster.Lease.D()}); err != nil {
		return fmt.Errorf("cluster: lease: %w", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	n.stop, n.done = stop, make(chan struct{})
	go func() {
		defer close(n.done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			n.elect(ctx)
			live := calls.Live()
			if b, err := json.Marshal(live); err == nil {
				pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				if err := n.acd.PublishLive(pctx, b); err != nil && ctx.Err() == nil {
					n.log.Warn("live calls not published", "error", err)
				}
				cancel()
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return nil
}

// elect decides whether this node delivers the webhooks: the live node with the lowest id
// does. Two nodes may both think so for a second around a change (an event may then be
// sent twice, with its id), never neither for longer than a lease.
func (n *clusterNode) elect(ctx context.Context) {
	ectx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	nodes, err := n.acd.Nodes(ectx)
	if err != nil {
		return // keep what we had
	}
	first := ""
	for _, v := range nodes {
		if v.Up && (first == "" || v.ID < first) {
			first = v.ID
		}
	}
	if was := n.delivers.Swap(first == n.cfg.NodeID); was != (first == n.cfg.NodeID) && len(n.cfg.Webhooks) > 0 {
		n.log.Info("webhook delivery", "this_node_delivers", !was, "delivering_node", first)
	}
}

func (n *clusterNode) close() {
	if n == nil {
		return
	}
	if n.stop != nil {
		n.stop()
		<-n.done
	}
	n.pool.Close()
}

// clusterCalls lists this node's calls and the other nodes' (as they published them, at
// most a second old).
type clusterCalls struct {
	local *call.Manager
	n     *clusterNode
}

func (c clusterCalls) Live() []call.LiveCall {
	out := c.local.Live()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	others, err := c.n.acd.OthersLive(ctx)
	if err != nil {
		c.n.log.Warn("other nodes' live calls", "error", err)
	}
	for _, raw := range others {
		var calls []call.LiveCall
		if json.Unmarshal(raw, &calls) == nil {
			out = append(out, calls...)
		}
	}
	slices.SortFunc(out, func(a, b call.LiveCall) int { return a.Start.Compare(b.Start) })
	return out
}

// nodeGatherer adds node_id to every metric, so that one Prometheus scraping every node
// tells them apart (and sums them) without relabelling.
type nodeGatherer struct {
	g    prometheus.Gatherer
	node string
}

func (n nodeGatherer) Gather() ([]*dto.MetricFamily, error) {
	mfs, err := n.g.Gather()
	name, value := "node_id", n.node
	for _, mf := range mfs {
		for _, m := range mf.Metric {
			m.Label = append(m.Label, &dto.LabelPair{Name: proto.String(name), Value: proto.String(value)})
			slices.SortFunc(m.Label, func(a, b *dto.LabelPair) int { return strings.Compare(a.GetName(), b.GetName()) })
		}
	}
	return mfs, err
}

// lateDirectory is the local registrar, known only after the bindings store is made.
type lateDirectory struct{ r *sip.Registrar }

func (l *lateDirectory) Bindings(user string) []sip.Binding {
	if l.r == nil {
		return nil
	}
	return l.r.Bindings(user)
}

func (n *clusterNode) openBindings() error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	n.local = &lateDirectory{}
	b, err := cluster.NewBindings(ctx, n.pool, n.cfg.NodeID, n.local)
	if err != nil {
		return fmt.Errorf("cluster: bindings: %w", err)
	}
	n.bindings = b
	return nil
}

// onBindings shares each change of a user's registrations with the other nodes, then
// tells next (the ACD's reachability).
func (n *clusterNode) onBindings(next func(string, []sip.Binding, string)) func(string, []sip.Binding, string) {
	return func(user string, bs []sip.Binding, reason string) {
		n.bindings.Save(user, bs, reason)
		next(user, bs, reason)
	}
}

// directory is where the node finds an agent's phone: its own registrar, else the shared
// bindings (registered at another node, reached through the front's Path).
func (n *clusterNode) directory(r *sip.Registrar) call.Directory {
	n.local.r = r
	return n.bindings
}

func trustedFronts(cfg *config.Config) []netip.Prefix {
	if cfg.Cluster == nil {
		return nil
	}
	return cfg.Cluster.FrontPrefixes()
}

// nonceSecret is the digest nonce key shared by the nodes of a cluster; nil alone (random).
func nonceSecret(cfg *config.Config) []byte {
	if cfg.Cluster == nil {
		return nil
	}
	return []byte(cfg.Cluster.NonceSecret)
}
