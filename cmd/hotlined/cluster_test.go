package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hotline12345/hotline/loadtest/phone"
)

// clusterYAML is the ACD test config as one node of a cluster sharing dsn's schema.
func clusterYAML(t *testing.T, dsn, node string) string {
	t.Helper()
	schema := dsn[strings.LastIndex(dsn, "search_path=")+len("search_path="):]
	return strings.Replace(acdTestConfig(t), "node_id: hotline-1", "node_id: "+node, 1) + `
cdr_dsn: "` + dsn + `"
cluster:
  schema: ` + schema + `
  lease: 2s
  fronts: [127.0.0.1]
  nonce_secret: "test-cluster-nonce-secret"
`
}

// registerAt registers the agent's phone at one more server (before a shared registrar
// exists in the test: the phone is reachable from both nodes).
func (a *agent) registerAt(t *testing.T, s *testServer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.phone.Register(ctx, s.sipAddr(), a.id, "agent"+a.id, 5*time.Minute); err != nil {
		t.Fatalf("agent %s register: %v", a.id, err)
	}
}

// Two nodes share one ACD: a citizen waiting on node A and a later one on node B are
// served in the order they called by one agent made ready through node B's API, each
// bridged by the node that holds the call; the API of either node shows the cluster.
func TestClusterGlobalFIFOAcrossNodes(t *testing.T) {
	t.Parallel()
	dsn := pgSchema(t)
	a := startServer(t, clusterYAML(t, dsn, "node-a"))
	b := startServer(t, clusterYAML(t, dsn, "node-b"))
	ag := newAgent(t, a, "1001", phone.Config{}, answerAlways)
	ag.registerAt(t, b)

	first := citizenToConsult(t, a, phone.Config{})
	waitQueued := func(s *testServer, n int) {
		deadline := time.Now().Add(15 * time.Second)
		for {
			var body struct {
				Queues []struct {
					Name    string
					Waiting int
				}
			}
			json.Unmarshal([]byte(httpGet(t, "http://"+s.httpAddr()+"/api/v1/queues", 200)), &body)
			for _, q := range body.Queues {
				if q.Name == "consult" && q.Waiting == n {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("consult never had %d waiting: %+v", n, body.Queues)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitQueued(b, 1) // node B sees node A's caller
	second := citizenToConsult(t, b, phone.Config{})
	waitQueued(a, 2)
	_ = second

	post(t, "http://"+b.httpAddr()+"/api/v1/agents/1001/ready", http.StatusOK)
	var call1 *phone.Call
	select {
	case call1 = <-ag.calls:
	case <-time.After(15 * time.Second):
		t.Fatal("the agent was never rung")
	}
	<-call1.Answered()
	waitAgentState(t, a, "1001", "on_call")
	go first.SendTone(1000, 3*time.Second)
	go call1.SendTone(600, 3*time.Second)
	waitTone(t, call1, 1000, "agent (first citizen, on node A)")
	waitTone(t, first, 600, "first citizen")
	for deadline := time.Now().Add(10 * time.Second); ; { // published every second
		lc, ok := liveCall(t, b.httpAddr(), first.SIPCallID())
		if ok && lc.Node == "node-a" && lc.Agent == "1001" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node B's API does not show node A's call with its agent: %+v %v", lc, ok)
		}
		time.Sleep(100 * time.Millisecond)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	first.Hangup(ctx)
	var call2 *phone.Call
	select {
	case call2 = <-ag.calls: // after the 1 s wrap-up
	case <-time.After(15 * time.Second):
		t.Fatal("the agent was not rung for the second citizen")
	}
	<-call2.Answered()
	go second.SendTone(1400, 3*time.Second)
	waitTone(t, call2, 1400, "agent (second citizen, on node B)")
	second.Hangup(ctx)
	waitAgentState(t, b, "1001", "wrap_up")

	// Both records, each written once by the node that held the call, in the shared store.
	recs := a.records(t, 2)
	nodes := map[string]int{}
	for _, r := range recs {
		if r.Disposition != "answered" || r.Agent != "1001" {
			t.Fatalf("record %+v", r)
		}
		nodes[r.NodeID]++
	}
	if nodes["node-a"] != 1 || nodes["node-b"] != 1 {
		t.Fatalf("records by node %v, want one each", nodes)
	}
	// Metrics carry the node.
	if m := httpGet(t, "http://"+b.httpAddr()+"/metrics", 200); !strings.Contains(m, `node_id="node-b"`) {
		t.Fatal("node B's metrics do not carry node_id")
	}
	var nodesBody struct {
		Nodes []struct {
			ID string
			Up bool
		}
	}
	json.Unmarshal([]byte(httpGet(t, "http://"+a.httpAddr()+"/api/v1/cluster/nodes", 200)), &nodesBody)
	if len(nodesBody.Nodes) != 2 || !nodesBody.Nodes[0].Up || !nodesBody.Nodes[1].Up {
		t.Fatalf("nodes %+v", nodesBody.Nodes)
	}
}
