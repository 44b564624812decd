package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hotline12345/hotline/cdr"
	"github.com/hotline12345/hotline/internal/kamailiotest"
	"github.com/hotline12345/hotline/loadtest/phone"
	"github.com/hotline12345/hotline/sip"
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

// Two nodes share one ACD: a citizen waiting on node A and a later one on node B are
// served in the order they called by one agent registered at node A and made ready through
// node B's API, each bridged by the node that holds the call (node B finds the agent's phone
// in the shared bindings); the API of either node shows the cluster.
func TestClusterGlobalFIFOAcrossNodes(t *testing.T) {
	t.Parallel()
	dsn := pgSchema(t)
	a := startServer(t, clusterYAML(t, dsn, "node-a"))
	b := startServer(t, clusterYAML(t, dsn, "node-b"))
	ag := newAgent(t, a, "1001", phone.Config{}, answerAlways) // registered at node A only

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
	// The report over the shared store covers both nodes' calls.
	code, out, errOut := runReport(t, "--cdr-dsn", dsn)
	if code != 0 || !strings.Contains(out, "Offered (calls that entered a queue)  2") || !regexp.MustCompile(`(?m)^\s+1001\s+2\s`).MatchString(out) {
		t.Fatalf("report over the shared store: exit %d %s\n%s", code, errOut, out)
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

// dialConsult dials 12345 at addr from number and presses 1 (the consult queue).
func dialConsult(t *testing.T, addr, number string) *phone.Call {
	t.Helper()
	p := newPhone(t, phone.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := p.Dial(ctx, "sip:12345@"+addr, number)
	if err != nil {
		t.Fatalf("citizen %s dial: %v", number, err)
	}
	if err := c.SendDTMF("1", 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	return c
}

// apiAgentState is agentState over any node's address.
func apiAgentState(t *testing.T, httpAddr, id string) string {
	t.Helper()
	var body struct{ Agents []struct{ ID, State string } }
	json.Unmarshal([]byte(httpGet(t, "http://"+httpAddr+"/api/v1/agents", http.StatusOK)), &body)
	for _, a := range body.Agents {
		if a.ID == id {
			return a.State
		}
	}
	return ""
}

// kill -9 of a node with a call in progress and two callers waiting: within the lease the
// surviving node frees the agent (wrap-up, then ready: never stuck on_call), and calls the
// waiting citizens back from the same queue in their original order (the agent first,
// then the citizen through the callback trunk); when the lost node starts again its
// journal writes its three calls, and every call is in the shared store exactly once.
func TestClusterKill9NodeFreesAgentsAndCallsBack(t *testing.T) {
	kamailiotest.Require(t)
	t.Parallel()
	dsn := pgSchema(t)
	rung := make(chan *phone.Call, 4)
	gateway := newPhone(t, phone.Config{OnInvite: func(c *phone.Call) bool { rung <- c; return true }})
	yaml := func(node string) string {
		return strings.Replace(clusterYAML(t, dsn, node), "gateway: sip:127.0.0.1:5090", "gateway: sip:"+gateway.Addr().String(), 1)
	}
	// RTP ports of their own (below the ephemeral range, used by no other test): the peers
	// of a killed node go on sending to its ports until they hang up; in the shared range
	// another test's new call latched onto them and missed its SIPp peer's RFC 2833 key
	// (CI: TestCampaignBusyThenAnsweredAfterRetryDelay, 567 packets in instead of 10).
	a := startServer(t, yaml("node-a"), func(o *options) { o.RTPPorts = "32000-32398" })
	b := startProcess(t, yaml("node-b"), "--rtp-ports", "32400-32766")
	// The agents' phones register through the front (their REGISTERs land on one node or
	// the other): node A rings them through the front from the shared bindings, whichever
	// node took the REGISTER, the lost one included. The citizens come in at node B (a
	// trunk pointed at it).
	front := kamailiotest.Start(t, []string{a.sipAddr(), b.sip})
	frontUp(t, front, a.sipAddr(), true)
	frontUp(t, front, b.sip, true)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	agA := &agent{id: "1001", calls: make(chan *phone.Call, 4)}
	agA.phone = newPhone(t, phone.Config{OnInvite: func(c *phone.Call) bool { agA.calls <- c; return true }})
	ag2 := &agent{id: "1002", calls: make(chan *phone.Call, 4)}
	ag2.phone = newPhone(t, phone.Config{OnInvite: func(c *phone.Call) bool { ag2.calls <- c; return true }})
	for _, ag := range []*agent{agA, ag2} {
		if err := ag.phone.Register(ctx, front.Addr(), ag.id, "agent"+ag.id, 5*time.Minute); err != nil {
			t.Fatal(err)
		}
	}

	// A citizen talking to 1001 on node B, two more waiting there.
	post(t, "http://"+b.http+"/api/v1/agents/1001/ready", http.StatusOK)
	talking := dialConsult(t, b.sip, "13900000001")
	var agentLeg *phone.Call
	select {
	case agentLeg = <-agA.calls:
	case <-time.After(15 * time.Second):
		t.Fatal("1001 was not rung")
	}
	<-agentLeg.Answered()
	for deadline := time.Now().Add(10 * time.Second); apiAgentState(t, a.httpAddr(), "1001") != "on_call"; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("1001 never on_call")
		}
	}
	dialConsult(t, b.sip, "13900000002")
	waitQueue := func(n int) {
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			var body struct {
				Queues []struct {
					Name    string
					Waiting int
				}
			}
			json.Unmarshal([]byte(httpGet(t, "http://"+a.httpAddr()+"/api/v1/queues", 200)), &body)
			for _, q := range body.Queues {
				if q.Name == "consult" && q.Waiting == n {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("consult never had %d waiting: %+v", n, body.Queues)
			}
		}
	}
	waitQueue(1)
	dialConsult(t, b.sip, "13900000003")
	waitQueue(2)

	if err := b.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-b.exited
	killed := time.Now()
	hangUpOnTheDead(ctx, talking, agentLeg) // (the waiting citizens' calls stay: their RTP goes to node B's own ports)
	for apiAgentState(t, a.httpAddr(), "1001") == "on_call" {
		if time.Since(killed) > 10*time.Second {
			t.Fatal("1001 still on_call 10 s after its node was killed")
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("kill -9 → agent freed: %v (lease 2 s)", time.Since(killed).Round(10*time.Millisecond))

	// The waiting citizens are called back, in order, by node A: by 1002, made ready now,
	// and 1001 once its wrap-up is over.
	post(t, "http://"+a.httpAddr()+"/api/v1/agents/1002/ready", http.StatusOK)
	for i, want := range []string{"13900000002", "13900000003"} {
		var task *phone.Call
		select {
		case task = <-ag2.calls:
		case task = <-agA.calls:
		case <-time.After(20 * time.Second):
			t.Fatalf("callback %d: no agent was rung", i+1)
		}
		if task.From() != want {
			t.Fatalf("callback %d is for %s, want %s (their place kept)", i+1, task.From(), want)
		}
		if i == 0 {
			t.Logf("kill -9 → first caller called back (agent rung): %v", time.Since(killed).Round(10*time.Millisecond))
		}
		<-task.Answered()
		var citizen *phone.Call
		select {
		case citizen = <-rung:
		case <-time.After(20 * time.Second):
			t.Fatalf("citizen %s was not dialled back", want)
		}
		<-citizen.Answered()
		if citizen.To() != want {
			t.Fatalf("dialled %s, want %s", citizen.To(), want)
		}
		hctx, hcancel := context.WithTimeout(context.Background(), 5*time.Second)
		citizen.Hangup(hctx)
		hcancel()
	}

	// Node B comes back on its data dir: its journal writes its three calls.
	restarted := exec.Command(hotlinedBinary(t), "--config", b.config, "--sip-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
		"--data-dir", b.dataDir, "--rtp-ports", "32400-32766")
	if err := restarted.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { restarted.Process.Kill(); restarted.Wait() })
	store, err := cdr.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	want := map[string]int{"13900000001": 1, "13900000002": 2, "13900000003": 2} // the call, then its callback
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		recs, err := store.List(ctx, cdr.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int{}
		ids := map[string]int{}
		for _, r := range recs {
			got[r.Caller]++
			if r.Direction == "callback" {
				got[r.Called]++
			}
			ids[r.ID]++
		}
		for id, n := range ids {
			if n > 1 {
				t.Fatalf("record %s stored %d times", id, n)
			}
		}
		ok := true
		for num, n := range want {
			if got[num] != n {
				ok = false
			}
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("records by number %v, want %v: %+v", got, want, recs)
		}
	}
}

// callNode is the node holding the call with this SIP Call-ID, as node's API lists it.
func callNode(t *testing.T, httpAddr, sipCallID string) string {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if lc, ok := liveCall(t, httpAddr, sipCallID); ok && lc.Node != "" {
			return lc.Node
		}
		if time.Now().After(deadline) {
			t.Fatalf("call %s not listed with its node", sipCallID)
		}
	}
}

// frontUp waits until the front's dispatcher shows node (host:port) up, or down.
func frontUp(t *testing.T, f *kamailiotest.Front, node string, up bool) time.Duration {
	t.Helper()
	start := time.Now()
	for deadline := start.Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		ds, err := f.Dispatchers(ctx)
		cancel()
		for _, d := range ds {
			if strings.Contains(d.URI, node) && d.Up() == up {
				return time.Since(start)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("front: %s never up=%v: %+v %v", node, up, ds, err)
		}
	}
}

// The whole cluster on loopback with real SIP through Kamailio: an agent registers
// through the front (its REGISTER lands on one node, with a Path); citizens dialling the
// front land on both nodes; the agent is rung for both (so for a caller waiting on the
// node it did not register at), in the order they called, and the audio crosses; kill -9
// of a node: the front stops sending to it within 5 s, and sends to it again when it is
// back on its port.
func TestClusterThroughKamailioFront(t *testing.T) {
	kamailiotest.Require(t)
	t.Parallel()
	dsn := pgSchema(t)
	pa, err := kamailiotest.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	pb, err := kamailiotest.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	aSIP, bSIP := fmt.Sprintf("127.0.0.1:%d", pa), fmt.Sprintf("127.0.0.1:%d", pb)
	a := startServer(t, clusterYAML(t, dsn, "node-a"), func(o *options) { o.SIPListen = aSIP })
	b := startProcess(t, clusterYAML(t, dsn, "node-b"), "--sip-listen", bSIP) // killed with no call up
	front := kamailiotest.Start(t, []string{aSIP, bSIP})
	frontUp(t, front, aSIP, true)
	frontUp(t, front, bSIP, true)

	ag := &agent{id: "1001", calls: make(chan *phone.Call, 4)}
	ag.phone = newPhone(t, phone.Config{OnInvite: func(c *phone.Call) bool { ag.calls <- c; return true }})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := ag.phone.Register(ctx, front.Addr(), "1001", "agent1001", 5*time.Minute); err != nil {
		t.Fatalf("register through the front: %v", err)
	}

	c1 := dialConsult(t, front.Addr(), "13900000011")
	n1 := callNode(t, a.httpAddr(), c1.SIPCallID())
	c2 := dialConsult(t, front.Addr(), "13900000012")
	n2 := callNode(t, a.httpAddr(), c2.SIPCallID())
	if n1 == n2 {
		t.Fatalf("both calls through the front landed on %s", n1)
	}
	post(t, "http://"+b.http+"/api/v1/agents/1001/ready", http.StatusOK)
	for i, c := range []*phone.Call{c1, c2} {
		var leg *phone.Call
		select {
		case leg = <-ag.calls:
		case <-time.After(15 * time.Second):
			t.Fatalf("the agent was not rung for citizen %d", i+1)
		}
		if want := []string{"13900000011", "13900000012"}[i]; leg.From() != want {
			t.Fatalf("agent rung for %s, want %s first (global FIFO)", leg.From(), want)
		}
		<-leg.Answered()
		tone := []float64{1000, 1400}[i]
		go c.SendTone(tone, 3*time.Second)
		go leg.SendTone(600, 3*time.Second)
		waitTone(t, leg, tone, fmt.Sprintf("agent (citizen %d on %s)", i+1, []string{n1, n2}[i]))
		waitTone(t, c, 600, fmt.Sprintf("citizen %d", i+1))
		hctx, hcancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := c.Hangup(hctx); err != nil {
			t.Fatal(err)
		}
		hcancel()
		select {
		case <-leg.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("the agent's leg was not hung up through the front")
		}
	}

	// kill -9 node B: the front marks it down within 5 s and sends new calls to A only.
	if err := b.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-b.exited
	t.Logf("kill -9 → front marked node B down in %v", frontUp(t, front, bSIP, false).Round(10*time.Millisecond))
	for i := range 2 {
		c := dialConsult(t, front.Addr(), fmt.Sprintf("1390000002%d", i))
		if n := callNode(t, a.httpAddr(), c.SIPCallID()); n != "node-a" {
			t.Fatalf("call after the kill landed on %s", n)
		}
		hctx, hcancel := context.WithTimeout(context.Background(), 5*time.Second)
		c.Hangup(hctx)
		hcancel()
	}
	// Node B back on its port: the front sends to it again.
	restarted := exec.Command(hotlinedBinary(t), "--config", b.config, "--sip-listen", bSIP, "--http-listen", "127.0.0.1:0",
		"--data-dir", b.dataDir, "--rtp-ports", "20000-29998")
	if err := restarted.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { restarted.Process.Kill(); restarted.Wait() })
	t.Logf("node B back → front marked it up in %v", frontUp(t, front, bSIP, true).Round(10*time.Millisecond))
	seen := map[string]bool{}
	for i := range 4 {
		c := dialConsult(t, front.Addr(), fmt.Sprintf("1390000003%d", i))
		seen[callNode(t, a.httpAddr(), c.SIPCallID())] = true
		hctx, hcancel := context.WithTimeout(context.Background(), 5*time.Second)
		c.Hangup(hctx)
		hcancel()
	}
	if !seen["node-b"] || !seen["node-a"] {
		t.Fatalf("after node B's return calls landed on %v, want both", seen)
	}
}

// agentBindings are the user's registrations as this node finds them (in a cluster,
// registered at any node).
func (s *testServer) agentBindings(user string) []sip.Binding {
	if s.cluster != nil {
		return s.cluster.bindings.Bindings(user)
	}
	return s.registrar.Bindings(user)
}

// The "done means" with a real softphone: baresip registers as an agent through
// the Kamailio front (digest auth by the node its REGISTER lands on), two citizens dial the
// front and wait on the two nodes, and baresip, made ready, takes them in the order they
// called: rung by each node through the front's Path, hearing each citizen's tone.
func TestBaresipAgentThroughKamailioFront(t *testing.T) {
	needBaresip(t)
	kamailiotest.Require(t)
	t.Parallel()
	dsn := pgSchema(t)
	var nodes []*testServer
	var addrs []string
	for _, id := range []string{"node-a", "node-b"} {
		p, err := kamailiotest.FreePort("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		addr := fmt.Sprintf("127.0.0.1:%d", p)
		nodes = append(nodes, startServer(t, clusterYAML(t, dsn, id), func(o *options) { o.SIPListen = addr }))
		addrs = append(addrs, addr)
	}
	front := kamailiotest.Start(t, addrs)
	for _, a := range addrs {
		frontUp(t, front, a, true)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	bs := startBaresipAgentAt(t, ctx, nodes[0], front.Addr(), "", "") // registered through the front, and ready
	post(t, "http://"+nodes[0].httpAddr()+"/api/v1/agents/1001/pause", http.StatusOK)

	c1 := dialConsult(t, front.Addr(), "13900000041")
	n1 := callNode(t, nodes[0].httpAddr(), c1.SIPCallID())
	c2 := dialConsult(t, front.Addr(), "13900000042")
	n2 := callNode(t, nodes[0].httpAddr(), c2.SIPCallID())
	if n1 == n2 {
		t.Fatalf("both calls landed on %s", n1)
	}
	post(t, "http://"+nodes[1].httpAddr()+"/api/v1/agents/1001/ready", http.StatusOK)
	for i, c := range []*phone.Call{c1, c2} {
		// Only the citizen the agent took hears baresip's 600 Hz tone: the first caller first.
		waitTone(t, c, 600, fmt.Sprintf("citizen %d (baresip's tone)", i+1))
		if i == 0 && c2.DetectTone(600) > 0.3 {
			t.Fatal("the second citizen was put through first")
		}
		if err := c.SendTone(1000, 2*time.Second); err != nil {
			t.Fatal(err)
		}
		if err := c.Hangup(ctx); err != nil {
			t.Fatal(err)
		}
	}
	bs.heardCitizen(t)
	recs := nodes[0].records(t, 2)
	for _, r := range recs {
		if r.Disposition != "answered" || r.Agent != "1001" {
			t.Fatalf("record %+v", r)
		}
	}
}

// Digest auth and the lockout keep working behind the front: the lockout is keyed by the
// phone's own address (the Path's received), not the front's, so a phone guessing
// passwords is locked out while another phone of the same user, behind the same front,
// registers.
func TestClusterLockoutThroughFrontKeyedByPhone(t *testing.T) {
	kamailiotest.Require(t)
	t.Parallel()
	dsn := pgSchema(t)
	p, err := kamailiotest.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", p)
	yaml := strings.Replace(clusterYAML(t, dsn, "node-a"), "    failures: 10 ", "    failures: 3 ", 1)
	s := startServer(t, yaml, func(o *options) { o.SIPListen = addr })
	front := kamailiotest.Start(t, []string{addr})
	frontUp(t, front, addr, true)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	guesser := newPhone(t, phone.Config{LocalIP: netip.MustParseAddr("127.0.0.2")})
	for i := range 3 {
		if err := guesser.Register(ctx, front.Addr(), "1001", fmt.Sprintf("guess%d", i), time.Minute); err == nil {
			t.Fatal("a wrong password registered")
		}
	}
	if err := guesser.Register(ctx, front.Addr(), "1001", "agent1001", time.Minute); err == nil {
		t.Fatal("the guessing phone registered after 3 failures: not locked out")
	}
	owner := newPhone(t, phone.Config{LocalIP: netip.MustParseAddr("127.0.0.3")})
	if err := owner.Register(ctx, front.Addr(), "1001", "agent1001", time.Minute); err != nil {
		t.Fatalf("the owner's phone behind the same front: %v (locked out with the guesser?)", err)
	}
	bs := s.registrar.Bindings("1001")
	if len(bs) != 1 || bs[0].Source.Addr() != netip.MustParseAddr("127.0.0.3") || len(bs[0].Path) != 1 {
		t.Fatalf("binding %+v: want the owner's address from the front's Path", bs)
	}
	if st := s.registrar.Stats(); st.Lockouts != 1 || st.LockedOut == 0 {
		t.Fatalf("registrar stats %+v: want one lockout and the guesser refused", st)
	}
}

// scripts/cluster-demo as a new user runs it: it prints front=, node= per node and token=;
// the token works on both nodes, which list each other; a citizen dialling the front is
// answered by the IVR and listed by the API; SIGTERM stops everything it started.
func TestClusterDemoScript(t *testing.T) {
	kamailiotest.Require(t)
	t.Parallel()
	dsn := pgSchema(t)
	schema := dsn[strings.LastIndex(dsn, "search_path=")+len("search_path="):]
	var ports []string
	for range 5 {
		p, err := kamailiotest.FreePort("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		ports = append(ports, fmt.Sprint(p))
	}
	root, err := kamailiotest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cmd := exec.Command(filepath.Join(root, "scripts", "cluster-demo"))
	cmd.Env = append(os.Environ(), "HOTLINE_PG_DSN="+dsn, "CLUSTER_SCHEMA="+schema, "FRONT_PORT="+ports[0],
		"NODE_PORTS="+ports[1]+" "+ports[2], "HTTP_PORTS="+ports[3]+" "+ports[4], "HOTLINED="+hotlinedBinary(t), "DEMO_DIR="+dir)
	cmd.Stderr = newTestWriter(t)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	t.Cleanup(func() {
		cmd.Process.Kill()
		exec.Command("pkill", "-KILL", "-f", dir).Run() // whatever it left, should the test fail
	})
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		exited <- cmd.Wait()
	}()
	var front, token string
	var nodes []string
	for token == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("cluster-demo ended before printing its token")
			}
			k, v, _ := strings.Cut(l, "=")
			switch k {
			case "front":
				front = v
			case "node":
				nodes = append(nodes, v)
			case "token":
				token = v
			}
		case <-time.After(60 * time.Second):
			t.Fatal("cluster-demo printed no token within 60 s")
		}
	}
	if front != "127.0.0.1:"+ports[0] || len(nodes) != 2 {
		t.Fatalf("front=%s nodes=%v", front, nodes)
	}
	get := func(url string) string {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", url, res.StatusCode, b)
		}
		return string(b)
	}
	for _, n := range nodes {
		if b := get(n + "/api/v1/cluster/nodes"); strings.Count(b, `"up": true`) != 2 {
			t.Fatalf("%s lists %s", n, b)
		}
	}
	c := dialConsult(t, front, "13900000051")
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(get(nodes[0]+"/api/v1/calls"), c.SIPCallID()); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the call through the demo's front is not listed")
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(20 * time.Second):
		t.Fatal("cluster-demo did not stop within 20 s of SIGTERM")
	}
	if err := exec.Command("pgrep", "-f", dir).Run(); err == nil {
		t.Fatal("processes of the demo are left after SIGTERM")
	}
}

// The wallboard of either node shows the whole cluster: both nodes up, and an agent made
// ready through the other node.
func TestClusterWallboardShowsNodes(t *testing.T) {
	bin := chromium(t)
	t.Parallel()
	dsn := pgSchema(t)
	a := startServer(t, clusterYAML(t, dsn, "node-a"))
	b := startServer(t, clusterYAML(t, dsn, "node-b"))
	post(t, "http://"+b.httpAddr()+"/api/v1/agents/1004/ready", http.StatusOK)
	dom := headless(t, bin, "http://"+a.httpAddr()+"/wallboard#token="+a.token, "--dump-dom")
	for _, want := range []string{`data-node="node-a"`, `data-node="node-b"`, "node-b 运行 up"} {
		if !strings.Contains(dom, want) {
			t.Fatalf("node A's wallboard lacks %q", want)
		}
	}
	if i := strings.Index(dom, `data-agent="1004"`); i < 0 || !strings.Contains(dom[i:min(len(dom), i+600)], "就绪 ready") {
		t.Fatal("node A's wallboard does not show agent 1004 ready (made ready through node B)")
	}
}

// Both nodes have the webhook configured, one outbox is shared: one node delivers it, so
// the work-order system gets each event once, not once per node; the other node says so.
func TestClusterWebhooksDeliveredOnce(t *testing.T) {
	t.Parallel()
	dsn := pgSchema(t)
	w := newWorkOrders(t)
	yaml := func(node string) string {
		return strings.Replace(clusterYAML(t, dsn, node), "webhooks: []", fmt.Sprintf(`webhooks:
  - id: gongdan
    url: %s
    secret: %s
    events: ["*"]
    retry_min: 50ms
    retry_max: 200ms`, w.URL, testWebhookSecret), 1)
	}
	a := startServer(t, yaml("node-a"))
	b := startServer(t, yaml("node-b"))
	post(t, "http://"+a.httpAddr()+"/api/v1/agents/1004/ready", http.StatusOK)
	post(t, "http://"+b.httpAddr()+"/api/v1/agents/1005/ready", http.StatusOK)
	post(t, "http://"+b.httpAddr()+"/api/v1/agents/1005/pause", http.StatusOK)
	delivered := func(s *testServer) int {
		var body struct{ Webhooks []struct{ Delivered int } }
		json.Unmarshal([]byte(httpGet(t, "http://"+s.httpAddr()+"/api/v1/webhooks", http.StatusOK)), &body)
		if len(body.Webhooks) != 1 {
			t.Fatalf("webhooks %+v", body)
		}
		return body.Webhooks[0].Delivered
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		got, _, _ := w.snapshot()
		ids := map[string]int{}
		for _, e := range got {
			ids[e.ID]++
		}
		for id, n := range ids {
			if n > 1 {
				t.Fatalf("event %s delivered %d times", id, n)
			}
		}
		da, db := delivered(a), delivered(b)
		if len(ids) >= 3 && da+db == len(got) && (da == 0) != (db == 0) {
			t.Logf("%d events, delivered by node A %d, node B %d", len(ids), da, db)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d requests for %d events; delivered by A %d, B %d", len(got), len(ids), da, db)
		}
	}
	follower := b // the node that does not deliver refuses a replay
	if delivered(b) > 0 {
		follower = a
	}
	req, _ := http.NewRequest("POST", "http://"+follower.httpAddr()+"/api/v1/webhooks/gongdan/replay", nil)
	res, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusConflict {
		t.Fatalf("replay on the node that does not deliver: %d, want 409", res.StatusCode)
	}
}
