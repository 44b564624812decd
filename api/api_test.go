package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/call"
	"github.com/hotline12345/hotline/cdr"
)

// fakes with function fields, as the conventions ask.
type fakeRecords struct {
	list func(cdr.Filter) ([]cdr.Record, error)
}

func (f fakeRecords) List(_ context.Context, flt cdr.Filter) ([]cdr.Record, error) {
	return f.list(flt)
}

type fakeCalls struct{}

func (fakeCalls) Live() []call.LiveCall { return nil }

type fakeACD struct {
	states map[string]acd.AgentState
}

func (f *fakeACD) Agents() []acd.AgentView {
	var out []acd.AgentView
	for id, st := range f.states {
		out = append(out, acd.AgentView{ID: id, State: st})
	}
	return out
}
func (f *fakeACD) Queues() []acd.QueueView { return []acd.QueueView{{Name: "consult", Waiting: 2}} }
func (f *fakeACD) Login(id string) error   { return f.set(id, acd.AgentReady, false) }
func (f *fakeACD) Ready(id string) error   { return f.set(id, acd.AgentReady, true) }
func (f *fakeACD) Pause(id, _ string) error {
	return f.set(id, acd.AgentPaused, true)
}
func (f *fakeACD) Logout(id, _ string) error { return f.set(id, acd.AgentLoggedOut, true) }

func (f *fakeACD) set(id string, st acd.AgentState, needLogin bool) error {
	cur, ok := f.states[id]
	switch {
	case !ok:
		return acd.ErrUnknownAgent
	case needLogin && cur == acd.AgentLoggedOut && st != acd.AgentLoggedOut:
		return acd.ErrNotLoggedIn
	}
	f.states[id] = st
	return nil
}

func newTestAPI(t *testing.T) (http.Handler, *fakeACD, *cdr.Filter) {
	t.Helper()
	var got cdr.Filter
	a := &fakeACD{states: map[string]acd.AgentState{"1001": acd.AgentLoggedOut}}
	h := New(Config{
		Records: fakeRecords{list: func(f cdr.Filter) ([]cdr.Record, error) {
			got = f
			return []cdr.Record{{ID: "c1", Caller: "138", IVRPath: "main>2>complaint", Start: time.Unix(1, 0),
				Queue: "consult", EnqueueTime: time.Unix(2, 0), Agent: "1001", Connect: time.Unix(3, 0), End: time.Unix(100, 0),
				Talk: 61500 * time.Millisecond, Hold: 2 * time.Second, WrapUp: 5840 * time.Millisecond, RingAttempts: 2, Transfers: 1,
				Visits: "consult/1001>complaint/1002"}}, nil
		}},
		Calls: fakeCalls{}, ACD: a, Gatherer: prometheus.NewRegistry(),
	})
	return h, a, &got
}

func do(t *testing.T, h http.Handler, method, url, body string) (*httptest.ResponseRecorder, map[string]any) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, url, strings.NewReader(body)))
	var m map[string]any
	if strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
			t.Fatalf("%s %s: bad JSON %q", method, url, rec.Body.String())
		}
	}
	return rec, m
}

func TestErrorsAreJSONWithStatus(t *testing.T) {
	h, _, _ := newTestAPI(t)
	for _, tc := range []struct {
		method, url, body string
		status            int
	}{
		{"GET", "/api/v1/nothing", "", 404},
		{"GET", "/api/v1/cdrs?from=yesterday", "", 400},
		{"GET", "/api/v1/cdrs?from=2026-11-29&to=2026-11-28", "", 400},
		{"GET", "/api/v1/cdrs?limit=0", "", 400},
		{"GET", "/api/v1/cdrs?format=xml", "", 400},
		{"POST", "/api/v1/agents/9999/ready", "", 404},
		{"POST", "/api/v1/agents/1001/dance", "", 404},
		{"POST", "/api/v1/agents/1001/pause", "{not json", 400},
		{"POST", "/api/v1/agents/1001/pause", "", 409}, // logged out agents cannot pause
	} {
		rec, m := do(t, h, tc.method, tc.url, tc.body)
		if rec.Code != tc.status || m["error"] == nil || m["error"] == "" {
			t.Errorf("%s %s: %d %v, want %d with an error message", tc.method, tc.url, rec.Code, m, tc.status)
		}
	}
}

func TestCDRFiltersAndCSV(t *testing.T) {
	h, _, got := newTestAPI(t)
	rec, _ := do(t, h, "GET", "/api/v1/cdrs?from=2026-11-29T00:00:00Z&queue=complaint&agent=1001&disposition=answered&caller=138&limit=5", "")
	if rec.Code != 200 || got.Queue != "complaint" || got.Agent != "1001" || got.Disposition != "answered" || got.Caller != "138" || got.Limit != 5 ||
		!got.From.Equal(time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("status %d filter %+v", rec.Code, *got)
	}
	rec, _ = do(t, h, "GET", "/api/v1/cdrs?format=csv", "")
	lines := strings.Split(strings.TrimSpace(rec.Body.String()), "\n")
	if rec.Code != 200 || len(lines) != 2 || !strings.HasPrefix(lines[0], "id,") || !strings.Contains(lines[1], "main>2>complaint") {
		t.Fatalf("CSV %d:\n%s", rec.Code, rec.Body.String())
	}
	// AHT can be recomputed from the CSV: talk, hold and wrap-up in seconds.
	if !strings.HasSuffix(lines[0], ",talk_s,hold_s,wrap_up_s,ring_attempts,transfers,visits,satisfaction,campaign,attempt,target,parent,"+
		"recording_file,recording_s,recording_sha256,voicemail,handoffs") ||
		!strings.HasSuffix(lines[1], ",61.500,2.000,5.840,2,1,consult/1001>complaint/1002,,,,,,,,,,") {
		t.Fatalf("CSV columns:\n%s", rec.Body.String())
	}
}

func TestReadyLogsInFirst(t *testing.T) {
	h, a, _ := newTestAPI(t)
	rec, m := do(t, h, "POST", "/api/v1/agents/1001/ready", "")
	if rec.Code != 200 || m["state"] != "ready" || a.states["1001"] != acd.AgentReady {
		t.Fatalf("ready from logged out: %d %v", rec.Code, m)
	}
	rec, m = do(t, h, "POST", "/api/v1/agents/1001/pause", `{"reason": "lunch"}`)
	if rec.Code != 200 || m["state"] != "paused" {
		t.Fatalf("pause: %d %v", rec.Code, m)
	}
}
