package api

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hotline12345/hotline/auth"
	"github.com/hotline12345/hotline/cdr"
	"github.com/hotline12345/hotline/webhook"
)

// feedServer is the API with a real hub over an SQLite outbox, and tokens of each role.
type feedServer struct {
	*httptest.Server
	store         *cdr.SQLite
	hub           *webhook.Hub
	admin, viewer string
}

func newFeedServer(t *testing.T, hooks ...webhook.Config) *feedServer {
	t.Helper()
	s, err := cdr.OpenSQLite(filepath.Join(t.TempDir(), "cdr.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	hub, err := webhook.New(webhook.Options{Store: s, Mask: MaskNumber, Poll: 10 * time.Millisecond, Webhooks: hooks})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { hub.Run(ctx); close(done) }()
	admin, viewer := auth.NewToken(), auth.NewToken()
	authn, err := auth.New([]auth.Token{{Name: "a", Role: auth.Admin, Hash: auth.HashToken(admin)}, {Name: "v", Role: auth.Viewer, Hash: auth.HashToken(viewer)}},
		func(id string) (string, bool) { return "pw" + id, true })
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(New(Config{Auth: authn, Feed: hub, StreamHeartbeat: 50 * time.Millisecond}))
	t.Cleanup(func() { srv.Close(); cancel(); <-done })
	return &feedServer{Server: srv, store: s, hub: hub, admin: admin, viewer: viewer}
}

// open starts a stream with authz (and Last-Event-ID if not empty) and returns its lines.
func (f *feedServer) open(t *testing.T, ctx context.Context, authz, lastID string) (<-chan string, *http.Response) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", f.URL+"/api/v1/events/stream", nil)
	req.Header.Set("Authorization", authz)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	return lines, resp
}

// next returns the next line starting with prefix.
func next(t *testing.T, lines <-chan string, prefix string) string {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("stream ended before a %q line", prefix)
			}
			if strings.HasPrefix(l, prefix) {
				return l
			}
		case <-timeout:
			t.Fatalf("no %q line within 5 s", prefix)
		}
	}
}

func publish(t *testing.T, s *cdr.SQLite, id, agent string) {
	t.Helper()
	ev := cdr.OutboxEvent{ID: id, Type: cdr.EventTypeCallAnswer, Time: time.Now(),
		Data: cdr.EventData{CallID: id, Caller: "13800138000", Agent: agent}}
	if err := s.AppendOutbox(context.Background(), []cdr.OutboxEvent{ev}); err != nil {
		t.Fatal(err)
	}
}

// The stream: heartbeats, events with their seq as id, full numbers for an admin and
// masked for a viewer, an agent's own events only, a resume from Last-Event-ID; 401
// without credentials.
func TestEventStream(t *testing.T) {
	f := newFeedServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if resp, err := http.Get(f.URL + "/api/v1/events/stream"); err != nil || resp.StatusCode != 401 {
		t.Fatalf("anonymous: %v %v", resp.StatusCode, err)
	}
	admin, resp := f.open(t, ctx, "Bearer "+f.admin, "")
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("Content-Type %q", ct)
	}
	viewer, _ := f.open(t, ctx, "Bearer "+f.viewer, "")
	r := httptest.NewRequest("GET", "/", nil)
	r.SetBasicAuth("1002", "pw1002")
	agent, _ := f.open(t, ctx, r.Header.Get("Authorization"), "")
	next(t, admin, ": ping")
	waitSubs(t, f.hub, 3)
	publish(t, f.store, "c1", "1001")
	publish(t, f.store, "c2", "1002")
	if l := next(t, admin, "id: "); l != "id: 1" {
		t.Fatalf("first id line %q", l)
	}
	if l := next(t, admin, "data: "); !strings.Contains(l, `"caller":"13800138000"`) || !strings.Contains(l, `"id":"c1"`) {
		t.Fatalf("admin data %q", l)
	}
	if l := next(t, viewer, "data: "); !strings.Contains(l, `"caller":"138****8000"`) {
		t.Fatalf("viewer data %q: want the number masked", l)
	}
	if l := next(t, agent, "data: "); !strings.Contains(l, `"id":"c2"`) {
		t.Fatalf("agent 1002's first event %q: want c2 only", l)
	}
	// Resume after event 1: event 2 again, then live ones.
	resumed, _ := f.open(t, ctx, "Bearer "+f.admin, "1")
	if l := next(t, resumed, "id: "); l != "id: 2" {
		t.Fatalf("resumed stream starts at %q, want id: 2", l)
	}
}

// Clients that go away leave no goroutine or subscription behind.
func TestEventStreamNoLeak(t *testing.T) {
	f := newFeedServer(t)
	f.Client().Timeout = 0
	base := runtime.NumGoroutine()
	for round := range 3 {
		ctx, cancel := context.WithCancel(context.Background())
		for range 10 {
			lines, _ := f.open(t, ctx, "Bearer "+f.viewer, "")
			next(t, lines, ": hotline")
		}
		waitSubs(t, f.hub, 10)
		publish(t, f.store, "x"+string(rune('a'+round)), "")
		cancel()
		waitSubs(t, f.hub, 0)
	}
	http.DefaultClient.CloseIdleConnections()
	f.CloseClientConnections()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base+2 {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before the clients:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitSubs(t *testing.T, h *webhook.Hub, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); h.Subscribers() != n; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d subscribers, want %d", h.Subscribers(), n)
		}
	}
}

// The webhooks' routes: the list for a supervisor and up, dead letters and replay for an
// admin only, 404 for an unknown webhook.
func TestWebhookRoutes(t *testing.T) {
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }))
	defer down.Close()
	f := newFeedServer(t, webhook.Config{ID: "crm", URL: down.URL, Secret: "0123456789abcdef", Events: []string{"*"},
		MaxAttempts: 1, RetryMin: time.Millisecond, RetryMax: time.Millisecond})
	publish(t, f.store, "c1", "")
	do := func(method, path, token string) (int, string) {
		req, _ := http.NewRequest(method, f.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		bufio.NewReader(resp.Body).WriteTo(&b)
		return resp.StatusCode, b.String()
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if code, body := do("GET", "/api/v1/webhooks/crm/dead", f.admin); code == 200 && strings.Contains(body, `"id": "c1"`) {
			if !strings.Contains(body, "13800138000") || !strings.Contains(body, `"last_error": "HTTP 500"`) {
				t.Fatalf("dead letters: %s", body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no dead letter")
		}
	}
	for _, tc := range []struct {
		method, path, token string
		want                int
		body                string
	}{
		{"GET", "/api/v1/webhooks", f.viewer, 403, ""},
		{"GET", "/api/v1/webhooks", f.admin, 200, `"dead": 1`},
		{"GET", "/api/v1/webhooks/crm/dead", f.viewer, 403, ""},
		{"GET", "/api/v1/webhooks/nope/dead", f.admin, 404, "unknown webhook"},
		{"POST", "/api/v1/webhooks/crm/replay", f.viewer, 403, ""},
		{"POST", "/api/v1/webhooks/nope/replay", f.admin, 404, "unknown webhook"},
		{"POST", "/api/v1/webhooks/crm/replay", f.admin, 202, `"queued": 1`},
	} {
		if code, body := do(tc.method, tc.path, tc.token); code != tc.want || !strings.Contains(body, tc.body) {
			t.Errorf("%s %s: %d %s, want %d with %q", tc.method, tc.path, code, body, tc.want, tc.body)
		}
	}
}
