package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hotline12345/hotline/cdr"
	"github.com/hotline12345/hotline/loadtest/phone"
	"github.com/hotline12345/hotline/webhook"
)

const testWebhookSecret = "work-order-secret-0123456789"

// workOrders is the work-order system in the tests: an HTTP server that checks each
// delivery's signature and keeps what it accepted. While down it answers 503.
type workOrders struct {
	*httptest.Server
	down     atomic.Bool
	mu       sync.Mutex
	accepted []cdr.OutboxEvent // in the order accepted, duplicates included
	refused  int
	badSig   int
}

func newWorkOrders(t *testing.T) *workOrders {
	w := &workOrders{}
	w.Server = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.mu.Lock()
		defer w.mu.Unlock()
		if err := webhook.Verify(testWebhookSecret, body, r.Header.Get(webhook.HeaderTimestamp), r.Header.Get(webhook.HeaderSignature), 0, time.Now()); err != nil {
			w.badSig++
			rw.WriteHeader(http.StatusUnauthorized)
			return
		}
		if w.down.Load() {
			w.refused++
			rw.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var ev cdr.OutboxEvent
		if err := json.Unmarshal(body, &ev); err != nil || ev.ID != r.Header.Get(webhook.HeaderEventID) {
			rw.WriteHeader(http.StatusBadRequest)
			return
		}
		w.accepted = append(w.accepted, ev)
	}))
	t.Cleanup(w.Close)
	return w
}

func (w *workOrders) snapshot() (accepted []cdr.OutboxEvent, refused, badSig int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.accepted), w.refused, w.badSig
}

// webhookConfig is the default config with a short ring and wrap-up, and a webhook of
// every event to url, retried quickly.
func webhookConfig(t *testing.T, url string) string {
	return testConfig(t, "    ring_timeout: 15s ", "    ring_timeout: 2s ", "    wrap_up: 10s ", "    wrap_up: 1s ",
		"webhooks: []", fmt.Sprintf(`webhooks:
  - id: gongdan
    url: %s
    secret: %s
    events: ["*"]
    timeout: 2s
    max_attempts: 100
    retry_min: 50ms
    retry_max: 200ms`, url, testWebhookSecret))
}

// outbox reads the feed a (running or stopped) server stored in its data dir.
func outbox(t *testing.T, dataDir string) []cdr.OutboxEvent {
	t.Helper()
	s, err := cdr.OpenSQLite(filepath.Join(dataDir, "cdr.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	evs, err := s.ListOutbox(context.Background(), 0, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func hasEvent(evs []cdr.OutboxEvent, id string) bool {
	return slices.ContainsFunc(evs, func(e cdr.OutboxEvent) bool { return e.ID == id })
}

// waitOutbox polls the server's outbox until ok holds.
func waitOutbox(t *testing.T, dataDir, what string, ok func([]cdr.OutboxEvent) bool) []cdr.OutboxEvent {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		evs := outbox(t, dataDir)
		if ok(evs) {
			return evs
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox never had %s: %d events", what, len(evs))
		}
	}
}

// kill -9 with the work-order system down: three calls (one answered by an agent and rated,
// one that ends in the menu, one still in the menu at the kill) make their events while
// every delivery is refused; the real hotlined is killed with SIGKILL, the receiver comes
// back, hotlined restarts on the same data dir, and every event of the outbox arrives,
// signed, at least once, duplicates only with the same id, the answered call's in order;
// the call the kill cut arrives ended by the crash.
func TestWebhooksSurviveKill9(t *testing.T) {
	t.Parallel()
	wo := newWorkOrders(t)
	wo.down.Store(true)
	p := startProcess(t, webhookConfig(t, wo.URL))

	// Agent 1001 answers; the citizen rates the call 1 (satisfied) after the agent hangs up.
	agentCalls := make(chan *phone.Call, 2)
	ag := newPhone(t, phone.Config{OnInvite: func(c *phone.Call) bool { agentCalls <- c; return true }})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := ag.Register(ctx, p.sip, "1001", "agent1001", 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	post(t, "http://"+p.http+"/api/v1/agents/1001/ready", http.StatusOK)
	citizens := newPhone(t, phone.Config{})
	c1, err := citizens.Dial(ctx, "sip:12345@"+p.sip, "13700137001")
	if err != nil {
		t.Fatal(err)
	}
	c1.SendDTMF("1", 100*time.Millisecond)
	var a1 *phone.Call
	select {
	case a1 = <-agentCalls:
	case <-time.After(15 * time.Second):
		t.Fatal("the agent's phone never rang")
	}
	<-a1.Answered()
	time.Sleep(300 * time.Millisecond) // a moment of talk
	a1.Hangup(ctx)
	if err := c1.WaitAudio(ctx, -30, 100*time.Millisecond); err != nil { // the rating question
		t.Fatal(err)
	}
	c1.SendDTMF("1", 100*time.Millisecond)
	select {
	case <-c1.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("the server did not hang up after the rating")
	}
	// A caller who hangs up in the menu, and one who stays there.
	c2, err := citizens.Dial(ctx, "sip:12345@"+p.sip, "13700137002")
	if err != nil {
		t.Fatal(err)
	}
	c2.Hangup(ctx)
	c3, err := citizens.Dial(ctx, "sip:12345@"+p.sip, "13700137003")
	if err != nil {
		t.Fatal(err)
	}
	callOf := map[string]string{} // caller → call id
	evs := waitOutbox(t, p.dataDir, "three calls' events", func(evs []cdr.OutboxEvent) bool {
		ends, starts := 0, 0
		for _, e := range evs {
			switch e.Type {
			case cdr.EventTypeCallEnd:
				ends++
			case cdr.EventTypeCallStart:
				starts++
				callOf[e.Data.Caller] = e.Data.CallID
			}
		}
		return ends == 2 && starts == 3 && slices.ContainsFunc(evs, func(e cdr.OutboxEvent) bool { return e.Type == cdr.EventTypeCallRating })
	})
	if acc, refused, _ := wo.snapshot(); len(acc) != 0 || refused == 0 {
		t.Fatalf("while down: %d accepted, %d refused; want none accepted, some refused (retried)", len(acc), refused)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.exited
	hctx, hcancel := context.WithTimeout(ctx, 500*time.Millisecond) // its BYE finds nobody
	c3.Hangup(hctx)
	hcancel()
	t.Logf("killed with %d events in the outbox", len(evs))

	wo.down.Store(false)
	q := restartProcess(t, p)
	id1, id3 := callOf["13700137001"], callOf["13700137003"]
	if id1 == "" || id3 == "" {
		t.Fatalf("calls by caller: %v", callOf)
	}
	evs = waitOutbox(t, q.dataDir, "the cut call's end", func(evs []cdr.OutboxEvent) bool { return hasEvent(evs, id3+"/end") })
	var accepted []cdr.OutboxEvent
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		evs = outbox(t, q.dataDir)
		accepted, _, _ = wo.snapshot()
		missing := 0
		for _, e := range evs {
			if !slices.ContainsFunc(accepted, func(a cdr.OutboxEvent) bool { return a.ID == e.ID }) {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events never arrived", missing, len(evs))
		}
	}
	_, _, badSig := wo.snapshot()
	if badSig != 0 {
		t.Errorf("%d deliveries with a bad signature", badSig)
	}
	// Duplicates only with the same id: one id per event (type, call, agent, agent event).
	ids := map[string]string{}
	firsts := []string{}
	for _, e := range accepted {
		key := strings.Join([]string{e.Type, e.Data.CallID, e.Data.Agent, e.Data.Event, e.Data.Queue}, "|")
		if e.Type == cdr.EventTypeAgentState {
			key += "|" + e.Time.String()
		}
		if id, ok := ids[key]; ok && id != e.ID {
			t.Errorf("event %s delivered under two ids: %s and %s", key, id, e.ID)
		}
		if _, ok := ids[key]; !ok && e.Data.CallID == id1 && e.Type != cdr.EventTypeAgentState {
			firsts = append(firsts, e.Type)
		}
		ids[key] = e.ID
		if e.Data.Caller != "" && !strings.Contains(e.Data.Caller, "****") {
			t.Errorf("event %s carries the caller's number in full: %q", e.ID, e.Data.Caller)
		}
	}
	for _, want := range []string{id1 + "/start", id1 + "/answer/consult/1001", id1 + "/rating", id1 + "/end", id3 + "/start", id3 + "/end"} {
		if !hasEvent(accepted, want) {
			t.Errorf("event %s never arrived", want)
		}
	}
	if want := []string{cdr.EventTypeCallStart, cdr.EventTypeCallAnswer, cdr.EventTypeCallRating, cdr.EventTypeCallEnd}; !slices.Equal(firsts, want) {
		t.Errorf("the answered call's events arrived as %v, want %v", firsts, want)
	}
	for _, e := range accepted {
		if e.ID == id3+"/end" && e.Data.HangupCause != cdr.HangupCauseCrash {
			t.Errorf("the cut call's end %+v: want hangup cause crash", e.Data)
		}
	}
	var hooks struct{ Webhooks []webhook.Stats }
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		json.Unmarshal([]byte(httpGet(t, "http://"+q.http+"/api/v1/webhooks", http.StatusOK)), &hooks)
		if len(hooks.Webhooks) == 1 && hooks.Webhooks[0].Backlog == 0 && hooks.Webhooks[0].Delivered > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/api/v1/webhooks %+v: want gongdan with nothing left", hooks.Webhooks)
		}
	}
	metrics := httpGet(t, "http://"+q.http+"/metrics", http.StatusOK)
	for _, want := range []string{`hotline_webhook_delivered_total{webhook="gongdan"}`, `hotline_webhook_backlog{webhook="gongdan"} 0`,
		`hotline_webhook_dead_total{webhook="gongdan"} 0`, `hotline_events_stream_clients 0`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	t.Logf("%d events in the outbox, %d deliveries accepted after the restart", len(evs), len(accepted))
}
