package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotline12345/hotline/cdr"
)

func openStore(t *testing.T) *cdr.SQLite {
	t.Helper()
	s, err := cdr.OpenSQLite(filepath.Join(t.TempDir(), "cdr.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// receiver is a work-order system in the test: it answers with the statuses of fail, in
// turn, then 200, and keeps what it was sent.
type receiver struct {
	*httptest.Server
	secret string
	mu     sync.Mutex
	fail   []int
	got    []delivery
}

type delivery struct {
	env     cdr.OutboxEvent
	attempt string
	status  int
	sigErr  error
}

func newReceiver(t *testing.T, secret string, fail ...int) *receiver {
	r := &receiver{secret: secret, fail: fail}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var d delivery
		d.sigErr = Verify(r.secret, body, req.Header.Get(HeaderTimestamp), req.Header.Get(HeaderSignature), 0, time.Now())
		_ = json.Unmarshal(body, &d.env)
		d.attempt = req.Header.Get(HeaderAttempt)
		r.mu.Lock()
		d.status = http.StatusOK
		if len(r.fail) > 0 {
			d.status, r.fail = r.fail[0], r.fail[1:]
		}
		r.got = append(r.got, d)
		r.mu.Unlock()
		w.WriteHeader(d.status)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) deliveries() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.got...)
}

type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

func testLogger(t *testing.T) *slog.Logger { return slog.New(slog.NewTextHandler(logWriter{t}, nil)) }

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func runHub(t *testing.T, opts Options) *Hub {
	t.Helper()
	opts.Poll = 10 * time.Millisecond
	opts.Mask = func(s string) string {
		if len(s) <= 5 {
			return s
		}
		return s[:3] + "****" + s[len(s)-4:]
	}
	h, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return h
}

func event(i int, typ string) cdr.OutboxEvent {
	return cdr.OutboxEvent{ID: fmt.Sprintf("call-%d/%s", i, typ), Type: typ, Time: time.Now(), NodeID: "n1",
		Data: cdr.EventData{CallID: fmt.Sprintf("call-%d", i), Caller: "13800138000", Called: "12345"}}
}

// Events reach the receiver in the outbox's order, signed, masked, and a 500 is retried
// with the same id (and the next events wait behind it); events of other types are skipped.
func TestHubDeliversInOrderSignedAndRetries(t *testing.T) {
	s := openStore(t)
	rcv := newReceiver(t, "a-secret-of-16-bytes!", http.StatusInternalServerError, http.StatusServiceUnavailable)
	h := runHub(t, Options{Store: s, Logger: testLogger(t), Webhooks: []Config{{ID: "crm", URL: rcv.URL, Secret: rcv.secret,
		Events: []string{cdr.EventTypeCallStart, cdr.EventTypeCallEnd}, RetryMin: 20 * time.Millisecond, RetryMax: 50 * time.Millisecond, MaxAttempts: 5}}})
	var want []string
	for i := range 5 {
		evs := []cdr.OutboxEvent{event(i, cdr.EventTypeCallStart), event(i, cdr.EventTypeAgentState), event(i, cdr.EventTypeCallEnd)}
		if err := s.AppendOutbox(context.Background(), evs); err != nil {
			t.Fatal(err)
		}
		want = append(want, evs[0].ID, evs[2].ID)
	}
	for deadline := time.Now().Add(10 * time.Second); h.Webhooks()[0].Delivered != 10; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not delivered: %+v; %d requests", h.Webhooks()[0], len(rcv.deliveries()))
		}
	}
	got := rcv.deliveries()
	if len(got) != 12 {
		t.Fatalf("%d requests, want 12 (10 events, 2 retries)", len(got))
	}
	for i, d := range got[:3] {
		if d.env.ID != want[0] || d.attempt != fmt.Sprint(i+1) {
			t.Errorf("request %d: %s attempt %s; want the first event, attempt %d", i, d.env.ID, d.attempt, i+1)
		}
	}
	for i, d := range got[2:] {
		if d.env.ID != want[i] {
			t.Errorf("delivery %d: %s, want %s (in order)", i, d.env.ID, want[i])
		}
		if d.sigErr != nil || d.env.Data.Caller != "138****8000" || d.env.Data.Called != "12345" || d.env.NodeID != "n1" {
			t.Errorf("delivery %+v: want a good signature and the caller masked", d)
		}
	}
	st := h.Webhooks()[0]
	if st.Failed != 2 || st.Dead != 0 || st.Backlog != 0 {
		t.Errorf("stats %+v", st)
	}
	cur, _ := s.LastOutboxSeq(context.Background())
	waitUntil(t, "cursor saved", func() bool { c, _ := s.WebhookCursors(context.Background()); return c["crm"] == cur })
	if err := Verify("another secret....", []byte("{}"), fmt.Sprint(time.Now().Unix()), Sign(rcv.secret, time.Now().Unix(), []byte("{}")), 0, time.Now()); err != ErrBadSignature {
		t.Errorf("a wrong secret verified: %v", err)
	}
	if err := Verify(rcv.secret, []byte("{}"), "1", Sign(rcv.secret, 1, []byte("{}")), 0, time.Now()); err != ErrStale {
		t.Errorf("a 1970 timestamp verified: %v", err)
	}
}

// After max_attempts an event is a dead letter and the next one goes; a replay sends the
// dead letter again with its id, and it leaves the list once delivered.
func TestHubDeadLetterAndReplay(t *testing.T) {
	s := openStore(t)
	rcv := newReceiver(t, "a-secret-of-16-bytes!", 500, 500)
	h := runHub(t, Options{Store: s, Webhooks: []Config{{ID: "crm", URL: rcv.URL, Secret: rcv.secret,
		Events: []string{"*"}, RetryMin: time.Millisecond, RetryMax: time.Millisecond, MaxAttempts: 2}}})
	if err := s.AppendOutbox(context.Background(), []cdr.OutboxEvent{event(1, cdr.EventTypeCallEnd), event(2, cdr.EventTypeCallEnd)}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "one dead, one delivered", func() bool { st := h.Webhooks()[0]; return st.Dead == 1 && st.Delivered == 1 })
	dead, err := h.DeadLetters(context.Background(), "crm", 10)
	if err != nil || len(dead) != 1 || dead[0].Event.ID != "call-1/call.end" || dead[0].Attempts != 2 || dead[0].LastError != "HTTP 500" {
		t.Fatalf("dead letters %+v, %v", dead, err)
	}
	if _, err := h.Replay(context.Background(), "nope"); err != ErrUnknownWebhook {
		t.Fatalf("replay of an unknown webhook: %v", err)
	}
	if n, err := h.Replay(context.Background(), "crm"); err != nil || n != 1 {
		t.Fatalf("replay: %d, %v", n, err)
	}
	waitUntil(t, "the dead letter replayed", func() bool { d, _ := h.DeadLetters(context.Background(), "crm", 10); return len(d) == 0 })
	got := rcv.deliveries()
	if last := got[len(got)-1]; last.env.ID != "call-1/call.end" || last.status != 200 || last.attempt != "3" {
		t.Fatalf("last request %+v: want the dead letter, attempt 3, accepted", last)
	}
}

// A subscriber gets the events passed after it subscribed; one that does not read is
// dropped once its buffer is full, and none is left behind when the hub stops.
func TestHubSubscribers(t *testing.T) {
	s := openStore(t)
	h := runHub(t, Options{Store: s})
	sub, err := h.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	slow, _ := h.Subscribe()
	if err := s.AppendOutbox(context.Background(), []cdr.OutboxEvent{event(1, cdr.EventTypeCallStart)}); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-sub.C:
		if e.ID != "call-1/call.start" || e.Seq != 1 {
			t.Fatalf("got %+v", e)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
	}
	var many []cdr.OutboxEvent
	for i := range subBuffer + 1 {
		many = append(many, event(i+10, cdr.EventTypeCallEnd))
	}
	if err := s.AppendOutbox(context.Background(), many); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the subscribers that do not read dropped", func() bool { return h.Subscribers() == 0 })
	n := 0
	for range sub.C { // closed after what fitted in its buffer
		n++
	}
	if n != subBuffer {
		t.Fatalf("the dropped subscriber had %d events buffered, want %d", n, subBuffer)
	}
	h.Unsubscribe(slow) // after the drop: harmless
	h.Unsubscribe(sub)
	if _, err := h.Subscribe(); err != nil {
		t.Fatal(err)
	}
	if h.Subscribers() != 1 {
		t.Fatal("subscriber not counted")
	}
}

// countingStore counts the outbox rows read.
type countingStore struct {
	*cdr.SQLite
	rows atomic.Int64
}

func (c *countingStore) ListOutbox(ctx context.Context, after, upTo int64, limit int) ([]cdr.OutboxEvent, error) {
	evs, err := c.SQLite.ListOutbox(ctx, after, upTo, limit)
	c.rows.Add(int64(len(evs)))
	return evs, err
}

// With no webhook and no stream client the hub follows the outbox's end without reading
// its rows; a client that subscribes then gets the events stored after it came.
func TestHubReadsNothingForNobody(t *testing.T) {
	s := &countingStore{SQLite: openStore(t)}
	h := runHub(t, Options{Store: s})
	var evs []cdr.OutboxEvent
	for i := range 2000 {
		evs = append(evs, event(i, cdr.EventTypeCallEnd))
	}
	if err := s.AppendOutbox(context.Background(), evs); err != nil { // stored while it runs
		t.Fatal(err)
	}
	waitUntil(t, "the head at the outbox's end", func() bool { return h.head.Load() == 2000 })
	if n := s.rows.Load(); n != 0 {
		t.Fatalf("%d outbox rows read with nobody to give them to", n)
	}
	sub, err := h.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	defer h.Unsubscribe(sub)
	if err := s.AppendOutbox(context.Background(), []cdr.OutboxEvent{event(5000, cdr.EventTypeCallStart)}); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-sub.C:
		if e.Seq != 2001 {
			t.Fatalf("the subscriber got %+v, want the event stored after it came", e)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no event for the subscriber")
	}
}

// Two hubs on one outbox (two nodes of a cluster): only the leading one delivers; when the
// lead moves, the other goes on from the saved cursor. Every event arrives, and none twice
// (nothing was in flight at the hand-over); the follower refuses a replay.
func TestHubDeliversOnlyWhileLeading(t *testing.T) {
	s := openStore(t)
	rcv := newReceiver(t, "a-secret-of-16-bytes!")
	var aLeads atomic.Bool
	aLeads.Store(true)
	hook := []Config{{ID: "crm", URL: rcv.URL, Secret: rcv.secret, Events: []string{"*"}}}
	a := runHub(t, Options{Store: s, Logger: testLogger(t), Webhooks: hook, Lead: aLeads.Load})
	b := runHub(t, Options{Store: s, Logger: testLogger(t), Webhooks: hook, Lead: func() bool { return !aLeads.Load() }})
	add := func(from, to int) {
		for i := from; i < to; i++ {
			if err := s.AppendOutbox(context.Background(), []cdr.OutboxEvent{event(i, cdr.EventTypeCallStart)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	add(0, 20)
	waitUntil(t, "20 delivered by the leader", func() bool { return len(rcv.deliveries()) == 20 })
	waitUntil(t, "the leader's cursor saved", func() bool { c, _ := s.WebhookCursors(context.Background()); return c["crm"] == 20 })
	if a.Webhooks()[0].Delivered != 20 || b.Webhooks()[0].Delivered != 0 {
		t.Fatalf("delivered: a %d, b %d; want all by a", a.Webhooks()[0].Delivered, b.Webhooks()[0].Delivered)
	}
	if _, err := b.Replay(context.Background(), "crm"); !errors.Is(err, ErrNotLeading) {
		t.Fatalf("replay on the follower: %v, want ErrNotLeading", err)
	}
	aLeads.Store(false) // the lead moves to b
	add(20, 40)
	waitUntil(t, "40 delivered", func() bool { return len(rcv.deliveries()) >= 40 })
	waitUntil(t, "b's cursor saved", func() bool { c, _ := s.WebhookCursors(context.Background()); return c["crm"] == 40 })
	seen := map[string]int{}
	for _, d := range rcv.deliveries() {
		seen[d.env.ID]++
	}
	for i := range 40 {
		if n := seen[event(i, cdr.EventTypeCallStart).ID]; n != 1 {
			t.Fatalf("event %d delivered %d times", i, n)
		}
	}
	if b.Webhooks()[0].Delivered != 20 {
		t.Fatalf("b delivered %d, want the 20 after the hand-over", b.Webhooks()[0].Delivered)
	}
}
