package cluster

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hotline12345/hotline/acd"
)

// BenchmarkRoutingDecision measures routing decisions through PostgreSQL at a steady 100
// a second with 1,000 agents and 10,000 waiting callers (20 queues, 20 skills, every agent
// in 3 queues), the figure: each decision is one input that routes, timed from the
// call to its return (the transaction under the cluster's lock, committed):
//   - ready: an agent becomes ready and takes the best caller among those they serve;
//   - enqueue: a caller joins a queue (all agents busy: it only finds none).
//
// Run it with -benchtime=1x: b.N is not used; it makes a fixed 1,000 decisions paced at
// 100/s (10 s) and reports p50 and p99 of each kind.
//
//	go test -run='^$' -bench=RoutingDecision -benchtime=1x ./cluster/
func BenchmarkRoutingDecision(b *testing.B) {
	pool, schema := testPool(b)
	const nQueues, nAgents, nWaiting = 20, 1000, 10000
	var qs []acd.QueueConfig
	for i := range nQueues {
		qs = append(qs, acd.QueueConfig{Name: fmt.Sprintf("q%02d", i), Skills: map[string]int{fmt.Sprintf("s%02d", i): 3},
			JoinEmpty: true, WrapUp: -1, MaxWait: -1, RingTimeout: time.Hour})
	}
	var ags []acd.AgentConfig
	for i := range nAgents {
		sk := map[string]int{}
		for j := range 3 {
			sk[fmt.Sprintf("s%02d", (i+j*7)%nQueues)] = 3 + (i+j)%7
		}
		ags = append(ags, acd.AgentConfig{ID: fmt.Sprintf("a%04d", i), Skills: sk})
	}
	rec := newRecorder()
	rec.ch = make(chan acd.Offer, 1_000_000)
	a, err := NewACD(Config{Pool: pool, Schema: schema, NodeID: "bench", Queues: qs, Agents: ags, Out: rec})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	ctx := context.Background()
	// 10,000 waiting callers, loaded in one COPY (as if they had joined one by one).
	start := time.Now().Add(-time.Hour)
	rows := make([][]any, nWaiting)
	for i := range rows {
		rows[i] = []any{fmt.Sprintf("w%05d", i), fmt.Sprintf("q%02d", i%nQueues), "13800000000", 0, 0,
			start.Add(time.Duration(i) * 100 * time.Millisecond), start, "bench"}
	}
	if _, err := pool.CopyFrom(ctx, pgx.Identifier{"cluster_waiting"}, []string{"call_id", "queue", "number", "priority", "rank", "enqueued", "joined", "node_id"}, pgx.CopyFromRows(rows)); err != nil {
		b.Fatal(err)
	}
	// Every agent logged in and on a call (not routable), so that the decisions measured
	// find the full line: agents are made ready one at a time below.
	if _, err := pool.Exec(ctx, "UPDATE cluster_agents SET state = 'on_call', call_id = 'x' || agent, node_id = 'bench', connected = now()"); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "ANALYZE"); err != nil {
		b.Fatal(err)
	}
	var ready, enqueue []time.Duration
	tick := time.NewTicker(10 * time.Millisecond) // 100 decisions a second
	defer tick.Stop()
	b.ResetTimer()
	for i := range 1000 {
		<-tick.C
		if i%2 == 0 {
			// An agent's call ends with no wrap-up: the agent is ready and takes a caller.
			ag := ags[(i/2*37)%nAgents].ID
			t0 := time.Now()
			a.CallEnded("x"+ag, ag, "caller")
			ready = append(ready, time.Since(t0))
			// Keep the agent busy and the line at 10,000 for the next decisions (untimed).
			o := <-rec.ch
			a.RingAnsweredLeg(o.CallID, o.AgentID, "")
			pool.Exec(ctx, "UPDATE cluster_agents SET call_id = 'x' || agent WHERE agent = $1", o.AgentID)
		} else {
			t0 := time.Now()
			if _, err := a.Enqueue(acd.Caller{CallID: fmt.Sprintf("n%05d", i), Number: "13900000000", Queue: fmt.Sprintf("q%02d", i%nQueues)}); err != nil {
				b.Fatal(err)
			}
			enqueue = append(enqueue, time.Since(t0))
		}
	}
	b.StopTimer()
	for _, s := range []struct {
		name string
		d    []time.Duration
	}{{"ready", ready}, {"enqueue", enqueue}} {
		slices.Sort(s.d)
		p := func(q float64) float64 { return float64(s.d[int(q*float64(len(s.d)-1))].Microseconds()) / 1000 }
		b.ReportMetric(p(0.5), s.name+"-p50-ms")
		b.ReportMetric(p(0.99), s.name+"-p99-ms")
		b.ReportMetric(p(1), s.name+"-max-ms")
	}
	var left int
	pool.QueryRow(ctx, "SELECT count(*) FROM cluster_waiting").Scan(&left)
	b.ReportMetric(float64(left), "waiting-at-end")
}
