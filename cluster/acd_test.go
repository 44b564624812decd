package cluster

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/internal/pgtest"
)

// testPool connects to a schema of the test's own (pgtest), dropped at the end.
func testPool(t testing.TB) (*pgxpool.Pool, string) {
	dsn := pgtest.Schema(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	schema := u.Query().Get("search_path")
	pool, err := Connect(context.Background(), dsn, schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool, schema
}

// recorder is an Outbox that records what a node was told.
type recorder struct {
	mu     sync.Mutex
	offers []acd.Offer
	cancel []acd.Offer
	left   []string
	events []acd.Event
	ch     chan acd.Offer
}

func newRecorder() *recorder { return &recorder{ch: make(chan acd.Offer, 1000)} }

func (r *recorder) Offer(o acd.Offer) {
	r.mu.Lock()
	r.offers = append(r.offers, o)
	r.mu.Unlock()
	r.ch <- o
}
func (r *recorder) CancelOffer(o acd.Offer) {
	r.mu.Lock()
	r.cancel = append(r.cancel, o)
	r.mu.Unlock()
}
func (r *recorder) Left(id string, _ acd.ExitReason) {
	r.mu.Lock()
	r.left = append(r.left, id)
	r.mu.Unlock()
}
func (r *recorder) Event(e acd.Event) { r.mu.Lock(); r.events = append(r.events, e); r.mu.Unlock() }

func (r *recorder) eventsOf(typ acd.EventType) []acd.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []acd.Event
	for _, e := range r.events {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

func (r *recorder) next(t *testing.T) acd.Offer {
	t.Helper()
	select {
	case o := <-r.ch:
		return o
	case <-time.After(10 * time.Second):
		t.Fatal("no offer within 10 s")
	}
	return acd.Offer{}
}

func (r *recorder) none(t *testing.T, within time.Duration) {
	t.Helper()
	select {
	case o := <-r.ch:
		t.Fatalf("unexpected offer %+v", o)
	case <-time.After(within):
	}
}

var (
	wrap1  = 300 * time.Millisecond
	queues = []acd.QueueConfig{{Name: "general", WrapUp: wrap1, RingTimeout: 2 * time.Second, JoinEmpty: true},
		{Name: "complaint", JoinEmpty: true, Weight: 0}}
	agents = []acd.AgentConfig{{ID: "1001", Skills: map[string]int{"general": 5, "complaint": 5}},
		{ID: "1002", Skills: map[string]int{"general": 5}}}
)

func newNode(t *testing.T, pool *pgxpool.Pool, schema, id string) (*ACD, *recorder) {
	t.Helper()
	rec := newRecorder()
	a, err := NewACD(Config{Pool: pool, Schema: schema, NodeID: id, Queues: queues, Agents: agents, Out: rec, Tick: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	return a, rec
}

func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 15 s: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func agentState(a *ACD, id string) acd.AgentState {
	for _, v := range a.Agents() {
		if v.ID == id {
			return v.State
		}
	}
	return ""
}

// Two callers on different nodes are served in the order they joined, by one agent who
// logs in through a third party (node B), and each node rings only its own callers.
func TestGlobalFIFOAcrossNodes(t *testing.T) {
	pool, schema := testPool(t)
	a, ra := newNode(t, pool, schema, "a")
	b, rb := newNode(t, pool, schema, "b")

	if _, err := a.Enqueue(acd.Caller{CallID: "c1", Number: "13800000001", Queue: "general"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Enqueue(acd.Caller{CallID: "c2", Number: "13800000002", Queue: "general"}); err != nil {
		t.Fatal(err)
	}
	if pos, _, ok := b.Position("c2"); !ok || pos != 2 {
		t.Fatalf("c2 position %d %v, want 2", pos, ok)
	}
	if err := b.Login("1002"); err != nil { // agent's login arrives at the node of the later caller
		t.Fatal(err)
	}
	o := ra.next(t)
	if o.CallID != "c1" || o.AgentID != "1002" {
		t.Fatalf("first offer %+v, want c1 to 1002 on node a", o)
	}
	rb.none(t, 200*time.Millisecond)
	if !a.RingAnsweredLeg("c1", "1002", "leg") {
		t.Fatal("answer refused")
	}
	if a.RingAnsweredLeg("c1", "1002", "leg") {
		t.Fatal("a second answer of the same offer was accepted")
	}
	a.CallEnded("c1", "1002", "caller")
	if st := agentState(a, "1002"); st != acd.AgentWrapUp {
		t.Fatalf("after the call: %s, want wrap_up", st)
	}
	o = rb.next(t) // after the 300 ms wrap-up, ended by a tick
	if o.CallID != "c2" || o.AgentID != "1002" {
		t.Fatalf("second offer %+v, want c2 to 1002 on node b", o)
	}
	if c := ra.eventsOf(acd.EvConnect); len(c) != 1 || c[0].CallID != "c1" { // events about a call go to its node
		t.Fatalf("CONNECT events on a: %+v", c)
	}
	eventually(t, "one WRAPUPEND, written by the node whose tick ended the wrap-up", func() bool {
		return len(ra.eventsOf(acd.EvWrapUpEnd))+len(rb.eventsOf(acd.EvWrapUpEnd)) == 1
	})
}

// A ring nobody answers times out (the tick of any node), the agent is auto-paused and
// the caller offered to the next agent.
func TestRingTimeoutAndAutoPause(t *testing.T) {
	pool, schema := testPool(t)
	a, ra := newNode(t, pool, schema, "a")
	newNode(t, pool, schema, "b")
	a.Login("1001")
	a.Login("1002")
	a.Enqueue(acd.Caller{CallID: "c1", Queue: "general"})
	first := ra.next(t)
	second := ra.next(t) // 2 s later, the other agent
	if first.AgentID == second.AgentID || second.CallID != "c1" {
		t.Fatalf("offers %+v then %+v", first, second)
	}
	if st := agentState(a, first.AgentID); st != acd.AgentPaused {
		t.Fatalf("agent who did not answer: %s, want paused", st)
	}
	eventually(t, "a CancelOffer for the timed-out ring", func() bool {
		ra.mu.Lock()
		defer ra.mu.Unlock()
		return len(ra.cancel) == 1 && ra.cancel[0].AgentID == first.AgentID
	})
}

// Many callers on two nodes and few agents, answered and hung up at random: no agent is
// ever offered a second call while ringing or on one, and every caller is served once.
func TestNoDoubleOffersUnderConcurrency(t *testing.T) {
	pool, schema := testPool(t)
	ags := make([]acd.AgentConfig, 6)
	for i := range ags {
		ags[i] = acd.AgentConfig{ID: fmt.Sprint(2000 + i), Skills: map[string]int{"general": 1}}
	}
	qs := []acd.QueueConfig{{Name: "general", WrapUp: -1, JoinEmpty: true}}
	type nodeT struct {
		a   *ACD
		rec *recorder
	}
	var nodes []nodeT
	for _, id := range []string{"a", "b"} {
		rec := newRecorder()
		a, err := NewACD(Config{Pool: pool, Schema: schema, NodeID: id, Queues: qs, Agents: ags, Out: rec, Tick: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(a.Close)
		nodes = append(nodes, nodeT{a, rec})
	}
	for _, ag := range ags {
		nodes[0].a.Login(ag.ID)
	}
	const callers = 60
	var busy sync.Map // agent → call
	var served sync.Map
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for _, n := range nodes {
		wg.Add(1)
		go func() { // the node's "calls": answer each offer, talk briefly, hang up
			defer wg.Done()
			for range callers / 2 {
				select {
				case o := <-n.rec.ch:
					if prev, loaded := busy.LoadOrStore(o.AgentID, o.CallID); loaded {
						errs <- fmt.Errorf("agent %s offered %s while on %s", o.AgentID, o.CallID, prev)
					}
					if !n.a.RingAnsweredLeg(o.CallID, o.AgentID, "") {
						errs <- fmt.Errorf("answer of %+v refused", o)
					}
					if _, dup := served.LoadOrStore(o.CallID, true); dup {
						errs <- fmt.Errorf("%s served twice", o.CallID)
					}
					time.Sleep(time.Duration(rand.IntN(5)) * time.Millisecond)
					busy.Delete(o.AgentID)
					n.a.CallEnded(o.CallID, o.AgentID, "caller")
				case <-time.After(20 * time.Second):
					errs <- fmt.Errorf("node stalled")
					return
				}
			}
		}()
	}
	var enq sync.WaitGroup
	for i := range callers {
		enq.Add(1)
		go func() {
			defer enq.Done()
			n := nodes[i%2]
			if _, err := n.a.Enqueue(acd.Caller{CallID: fmt.Sprintf("call-%d", i), Queue: "general"}); err != nil {
				errs <- err
			}
		}()
	}
	enq.Wait()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	n := 0
	served.Range(func(any, any) bool { n++; return true })
	if n != callers {
		t.Fatalf("served %d of %d", n, callers)
	}
}

// A node whose lease lapses is taken over: its agent on a call goes to wrap-up (never
// stuck on_call), the agent it was ringing is freed, and its waiting callers become
// callbacks on the surviving node in their original order.
func TestLostNodeTakenOver(t *testing.T) {
	pool, schema := testPool(t)
	a, _ := newNode(t, pool, schema, "a")
	b, rb := newNode(t, pool, schema, "b")
	var mu sync.Mutex
	var cbs []Callback
	a.OnCallback(func(c Callback) { mu.Lock(); cbs = append(cbs, c); mu.Unlock() })
	if err := a.StartLease(NodeInfo{Lease: time.Second}); err != nil {
		t.Fatal(err)
	}
	if err := b.StartLease(NodeInfo{Lease: time.Second}); err != nil {
		t.Fatal(err)
	}
	b.Login("1001")
	b.Enqueue(acd.Caller{CallID: "b1", Number: "13900000001", Queue: "general"})
	o := rb.next(t)
	b.RingAnsweredLeg(o.CallID, o.AgentID, "")
	b.Login("1002")
	b.Enqueue(acd.Caller{CallID: "b2", Number: "13900000002", Queue: "complaint"}) // 1002 cannot serve complaint
	b.Enqueue(acd.Caller{CallID: "b3", Number: "13900000003", Queue: "general"})   // rung on 1002
	if o := rb.next(t); o.CallID != "b3" || o.AgentID != "1002" {
		t.Fatalf("offer %+v", o)
	}
	b.Enqueue(acd.Caller{CallID: "b4", Number: "13900000004", Queue: "general"})
	// b is "killed": its loops stop, its lease is no longer renewed.
	b.Close()
	lost := time.Now()
	eventually(t, "b's waiting callers called back by a", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(cbs) == 3
	})
	t.Logf("taken over %v after the last renewal could have been", time.Since(lost))
	want := []string{"13900000002", "13900000003", "13900000004"}
	for i, c := range cbs {
		if c.Number != want[i] {
			t.Fatalf("callback %d is %s, want %s (original order)", i, c.Number, want[i])
		}
	}
	if st := agentState(a, "1001"); st != acd.AgentWrapUp && st != acd.AgentReady {
		t.Fatalf("agent on the lost node's call: %s", st)
	}
	eventually(t, "1002 freed", func() bool { return agentState(a, "1002") == acd.AgentReady })
	// The callback, enqueued as a task by a keeping its place, takes the callback row away.
	if _, err := a.enqueue(acd.Caller{CallID: "task-1", Number: cbs[0].Number, Queue: cbs[0].Queue, Enqueued: cbs[0].Enqueued}, "task"); err != nil {
		t.Fatal(err)
	}
	var left int
	if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM cluster_callbacks").Scan(&left); err != nil || left != 2 {
		t.Fatalf("callbacks left %d (%v), want 2", left, err)
	}
	nodes, err := a.Nodes(context.Background())
	if err != nil || len(nodes) != 2 || nodes[1].Up || nodes[1].TakenBy != "a" {
		t.Fatalf("nodes %+v %v", nodes, err)
	}
}

// The strategies a cluster runs: fewest-calls and best-skill choose among ready agents as
// on one node; escalation widens the agents a caller may get; MaxWait takes the caller out
// (EXITWITHTIMEOUT, Left) by any node's tick.
func TestStrategiesEscalationAndMaxWait(t *testing.T) {
	pool, schema := testPool(t)
	qs := []acd.QueueConfig{
		{Name: "fewest", Skills: map[string]int{"s": 1}, Strategy: acd.FewestCalls, JoinEmpty: true, WrapUp: -1},
		{Name: "skill", Skills: map[string]int{"s": 1}, Strategy: acd.BestSkill, JoinEmpty: true, WrapUp: -1},
		{Name: "escalating", Skills: map[string]int{"s": 9}, JoinEmpty: true, WrapUp: -1,
			Escalations: []acd.Escalation{{After: 300 * time.Millisecond, Skill: "s", MinLevel: 2}}},
		{Name: "short", Skills: map[string]int{"s": 10}, JoinEmpty: true, MaxWait: 300 * time.Millisecond},
		{Name: "empty", Skills: map[string]int{"s": 1}, JoinEmpty: true, LeaveWhenEmpty: true},
	}
	ags := []acd.AgentConfig{{ID: "low", Skills: map[string]int{"s": 2}}, {ID: "high", Skills: map[string]int{"s": 8}}}
	rec := newRecorder()
	a, err := NewACD(Config{Pool: pool, Schema: schema, NodeID: "a", Queues: qs, Agents: ags, Out: rec, Tick: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	talk := func(call, queue, want string) {
		t.Helper()
		if _, err := a.Enqueue(acd.Caller{CallID: call, Queue: queue}); err != nil {
			t.Fatal(err)
		}
		o := rec.next(t)
		if o.AgentID != want {
			t.Fatalf("%s in %s went to %s, want %s", call, queue, o.AgentID, want)
		}
		a.RingAnsweredLeg(o.CallID, o.AgentID, "")
		a.CallEnded(o.CallID, o.AgentID, "caller")
	}
	a.Login("high")
	talk("c1", "fewest", "high") // high has one call today
	a.Login("low")
	talk("c2", "fewest", "low")  // fewest calls: low (0) before high (1)
	talk("c3", "fewest", "high") // 1 each: the longest idle, high
	talk("c4", "skill", "high")  // best skill: 8 before 2, whoever idled longer
	talk("c5", "skill", "high")
	a.Pause("high", "lunch")
	// Level 9 wanted: nobody; after 300 ms level 2 will do.
	start := time.Now()
	talk("c6", "escalating", "low")
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Fatalf("escalated after %v, want ≥ 300 ms", d)
	}
	if len(rec.eventsOf(acd.EvEscalate)) != 1 {
		t.Fatalf("ESCALATE events %+v", rec.eventsOf(acd.EvEscalate))
	}
	if _, err := a.Enqueue(acd.Caller{CallID: "c7", Queue: "short"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "c7 timed out", func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return len(rec.left) == 1 && rec.left[0] == "c7"
	})
	if ev := rec.eventsOf(acd.EvExitTimeout); len(ev) != 1 || ev[0].CallID != "c7" {
		t.Fatalf("EXITWITHTIMEOUT %+v", ev)
	}
	// The last agent who could serve "empty" pauses: its waiting caller leaves (EXITEMPTY).
	a.Pause("low", "meeting")
	if _, err := a.Enqueue(acd.Caller{CallID: "c8", Queue: "empty"}); !errors.Is(err, acd.ErrNoAgents) {
		t.Fatalf("joining an empty LeaveWhenEmpty queue: %v, want ErrNoAgents", err)
	}
	a.Ready("low")
	a.Pause("low", "meeting") // nobody ready to take c9 at once…
	a.Ready("high")
	a.Enqueue(acd.Caller{CallID: "c9", Queue: "empty"})
	rec.next(t)             // …but high takes it: not empty
	a.Logout("high", "end") // while ringing: c9 waits again, with nobody left who could serve it
	eventually(t, "c9 left the empty queue", func() bool { return len(rec.eventsOf(acd.EvExitEmpty)) == 1 })
	qv := map[string]acd.QueueView{}
	for _, v := range a.Queues() {
		qv[v.Name] = v
	}
	if f := qv["fewest"]; f.Offered != 3 || f.Answered != 3 || qv["short"].TimedOut != 1 || qv["short"].Waiting != 0 {
		t.Fatalf("queue views %+v", qv)
	}
}
