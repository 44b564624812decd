package cdr

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func events(n int) []AgentEvent {
	out := make([]AgentEvent, n)
	for i := range out {
		out[i] = testEvent(i)
	}
	return out
}

func TestWriterEvents(t *testing.T) {
	store, m := newMemStore()
	dir := t.TempDir()
	w, err := NewWriter(store, fastOpts(dir))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events(25) {
		w.Event(e)
	}
	w.Event(AgentEvent{AgentID: "1001", Event: EventLogin}) // ID and time assigned
	waitFor(t, "events stored", func() bool { return m.lenEvents() == 26 })

	// Outage: events go to the journal and arrive once the store is back.
	m.fail.Store(true)
	more := events(60)[25:]
	for _, e := range more {
		w.Event(e)
	}
	waitFor(t, "events journaled", func() bool { return w.Stats().JournalBacklog == int64(len(more)) })
	m.fail.Store(false)
	waitFor(t, "journal replayed", func() bool { return m.lenEvents() == 61 && w.Stats().JournalBacklog == 0 })
	closeWriter(t, w)
	for _, e := range events(60) {
		if got, ok := m.evs[e.ID]; !ok || !got.Time.Equal(e.Time) || got.Data2 != e.Data2 {
			t.Fatalf("event %s: %+v, %v", e.ID, got, ok)
		}
	}
	if st := w.Stats(); st.EventsWritten != 61 || st.Errors == 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestWriterEventsSurviveRestart(t *testing.T) {
	store, m := newMemStore()
	m.fail.Store(true)
	dir := t.TempDir()
	w, err := NewWriter(store, fastOpts(dir))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events(30) {
		w.Event(e)
	}
	w.Write(testRecord(1))
	waitFor(t, "journaled", func() bool { return w.Stats().JournalBacklog == 31 })
	w.abandonForTest() // crash
	m.fail.Store(false)
	// Some events reached the store before the crash (the store took them
	// but the journal segment was not deleted): replay must not duplicate.
	for _, e := range events(10) {
		m.evs[e.ID] = e
	}
	w2, err := NewWriter(store, fastOpts(dir))
	if err != nil {
		t.Fatal(err)
	}
	closeWriter(t, w2)
	if m.lenEvents() != 30 || m.len() != 1 {
		t.Fatalf("after restart: %d events, %d records", m.lenEvents(), m.len())
	}
	if f := segmentFiles(t, dir); len(f) != 0 {
		t.Fatalf("journal not empty: %v", f)
	}
}

func TestWriterEventsStores(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		w, err := NewWriter(s, fastOpts(t.TempDir()))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range events(40) {
			w.Event(e)
			w.Event(e) // a duplicate hand-over is still one event
		}
		want := records(15)
		for _, r := range want {
			w.Begin(r)
			w.Write(r)
		}
		closeWriter(t, w)
		got, err := s.ListEvents(context.Background(), EventFilter{})
		if err != nil || len(got) != 40 {
			t.Fatalf("%d events, %v", len(got), err)
		}
		recs, err := s.List(context.Background(), Filter{})
		if err != nil || len(recs) != len(want) {
			t.Fatalf("%d records, %v", len(recs), err)
		}
		for i := range recs {
			if recs[i] != want[i] {
				t.Fatalf("record %d:\n got  %+v\n want %+v", i, recs[i], want[i])
			}
		}
	})
}

// TestWriterWrapUpStores: the writer hands a WRAPUPEND over after the
// record (as call/ does: the record is written when the call ends, before
// wrap-up ends) or before it (the record waited in the journal while the
// store was down); either way the stored record has the actual wrap-up,
// and a replay of the journal leaves it so.
func TestWriterWrapUpStores(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		dir := t.TempDir()
		w, err := NewWriter(s, fastOpts(dir))
		if err != nil {
			t.Fatal(err)
		}
		after, before := testRecord(1), testRecord(2)
		after.WrapUp, before.WrapUp = 0, 0
		w.Begin(after)
		w.Write(after)
		w.Event(wrapUpEnd("wu-after", after.ID, "1001", "5.840"))
		w.Event(wrapUpEnd("wu-before", before.ID, "1002", "7.125"))
		w.Begin(before)
		w.Write(before)
		closeWriter(t, w)
		check := func() {
			t.Helper()
			recs, err := s.List(ctx, Filter{})
			if err != nil || len(recs) != 2 || recs[0].WrapUp != 5840*time.Millisecond || recs[1].WrapUp != 7125*time.Millisecond {
				t.Fatalf("records: %+v, %v", recs, err)
			}
		}
		check()
		// The same again through the journal (a replay after a store outage).
		w, err = NewWriter(s, fastOpts(dir))
		if err != nil {
			t.Fatal(err)
		}
		w.journalEnds([]Record{after, before})
		w.journalEvents([]AgentEvent{wrapUpEnd("wu-after", after.ID, "1001", "5.840")})
		closeWriter(t, w)
		check()
	})
}

// tcpProxy forwards to target until down is called: then it drops every
// connection and refuses new ones (accepts and closes them) until up.
type tcpProxy struct {
	ln     net.Listener
	target string
	isDown atomic.Bool
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Go(p.serve)
	t.Cleanup(func() {
		ln.Close()
		p.down()
		p.wg.Wait()
	})
	return p
}

func (p *tcpProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.isDown.Load() {
			c.Close()
			continue
		}
		u, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[u] = struct{}{}, struct{}{}
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			io.Copy(dst, src)
			dst.Close()
			src.Close()
			p.mu.Lock()
			delete(p.conns, dst)
			delete(p.conns, src)
			p.mu.Unlock()
		}
		p.wg.Go(func() { pipe(u, c) })
		p.wg.Go(func() { pipe(c, u) })
	}
}

func (p *tcpProxy) down() {
	p.isDown.Store(true)
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

func (p *tcpProxy) up() { p.isDown.Store(false) }

// TestWriterPostgresOutage runs a writer on PostgreSQL through a proxy,
// cuts the database off under load, restores it, and checks that every
// record and event arrived exactly once.
func TestWriterPostgresOutage(t *testing.T) {
	dsn := newPGSchema(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newTCPProxy(t, u.Host)
	u.Host = proxy.ln.Addr().String()
	q := u.Query()
	q.Set("connect_timeout", "2")
	u.RawQuery = q.Encode()
	ctx := context.Background()
	pg, err := OpenPostgres(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	opts := fastOpts(t.TempDir())
	opts.QueueSize, opts.BatchSize = 1000, 100
	w, err := NewWriter(pg, opts)
	if err != nil {
		t.Fatal(err)
	}

	const producers, perProducer = 8, 250
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for i := range perProducer {
				r := testRecord(p*perProducer + i)
				w.Begin(r)
				w.Write(r)
				w.Event(AgentEvent{ID: fmt.Sprintf("ev-%s", r.ID), Time: r.Connect, CallID: r.ID, AgentID: r.Agent, Event: EventConnect})
				if i%50 == 0 {
					time.Sleep(5 * time.Millisecond) // spread the load over the outage
				}
			}
		})
	}
	time.Sleep(30 * time.Millisecond)
	proxy.down()
	waitFor(t, "records journaled during the outage", func() bool { return w.Stats().JournalBacklog > 0 })
	time.Sleep(300 * time.Millisecond)
	proxy.up()
	wg.Wait()
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := w.Close(cctx); err != nil {
		t.Fatal(err)
	}
	st := w.Stats()
	t.Logf("writer stats: %+v", st)
	if st.Journaled == 0 || st.Errors == 0 {
		t.Fatalf("the outage did not show: %+v", st)
	}
	const n = producers * perProducer
	var rows, ids, evRows int
	if err := pg.pool.QueryRow(ctx, `SELECT COUNT(*), COUNT(DISTINCT id) FROM cdr`).Scan(&rows, &ids); err != nil {
		t.Fatal(err)
	}
	if err := pg.pool.QueryRow(ctx, `SELECT COUNT(*) FROM agent_events`).Scan(&evRows); err != nil {
		t.Fatal(err)
	}
	if rows != n || ids != n || evRows != n {
		t.Fatalf("%d record rows (%d ids), %d event rows; want %d each", rows, ids, evRows, n)
	}
	var bad int
	if err := pg.pool.QueryRow(ctx, `SELECT COUNT(*) FROM cdr WHERE disposition = 'interrupted' OR talk_us <> 60000000`).Scan(&bad); err != nil || bad != 0 {
		t.Fatalf("%d records not as written, %v", bad, err)
	}
}
