package api

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/callback"
	"github.com/hotline12345/hotline/cdr"
)

// fuzzRoutes are the requests whose body or query comes from the client: the JSON bodies
// of the campaign and agent endpoints and the from/to/limit of the lists.
var fuzzRoutes = []struct{ method, path string }{
	{"POST", "/api/v1/campaigns"},
	{"POST", "/api/v1/campaigns/c1/targets"},
	{"POST", "/api/v1/agents/1001/pause"},
	{"POST", "/api/v1/agents/1001/logout"},
	{"GET", "/api/v1/cdrs"},
	{"GET", "/api/v1/events"},
}

// Any body or query: no panic, never a 5xx (the fakes behind succeed), a JSON answer, an
// "error" on every 4xx; what reaches the dialer has no negative durations or limits.
func FuzzAPIRequest(f *testing.F) {
	for i, body := range []string{
		`{"name": "回访", "script": "satisfaction", "trunk": "loopback-out", "window": {"from": "00:00", "to": "24:00"},
		  "retry": {"busy": "10m"}, "ring_timeout": "30s", "targets": [{"case_id": "C1", "phone": "13800138000", "closed_at": "2026-12-01 10:00"}]}`,
		`{"targets": [{"case_id": "C2", "phone": "13900139000", "closed_at": "1764547200"}, {"case_id": "C3", "phone": "x", "closed_at": "yesterday"}]}`,
		`{"reason": "午休"}`,
		`{"reason": 5}`,
		``,
	} {
		f.Add(uint8(i), body, "")
	}
	f.Add(uint8(0), `{"retry": {"busy": "-5m"}, "max_attempts": -1}`, "")
	f.Add(uint8(0), `{"targets": []} {"x": 1}`, "")
	f.Add(uint8(1), `{"targets": [{"case_id": "C1", "phone": "1", "unknown": true}]}`, "")
	f.Add(uint8(4), "", "from=2026-11-01&to=2026-11-30&limit=10&format=csv")
	f.Add(uint8(4), "", "from=yesterday")
	f.Add(uint8(5), "", "from=1764547200&event=CONNECT,PAUSE&agent=1001")
	f.Add(uint8(5), "", "limit=-1&to=2026-13-45")
	// One handler for every input (go test runs a worker's inputs one after another): building
	// it per input (a registry, the routes) held the run at about 1,000 executions a second.
	var (
		ft     *testing.T // the input being run
		filter cdr.Filter
	)
	checkCampaign := func(c callback.Campaign, ts []callback.Target) {
		if c.MaxConcurrent < 0 || c.CPS < 0 || c.MaxAttempts < 0 || c.RingTimeout < 0 || c.Deadline < 0 ||
			c.Retry.Busy < 0 || c.Retry.NoAnswer < 0 || c.Retry.Failed < 0 || c.Retry.Interrupted < 0 {
			ft.Fatalf("negative setting reached the dialer: %+v", c)
		}
	}
	camps := &fakeCampaigns{t: nil,
		create: func(c callback.Campaign, ts []callback.Target) (callback.Campaign, []callback.TargetError, error) {
			checkCampaign(c, ts)
			c.ID = "c1"
			return c, nil, nil
		},
		addTargets: func(id string, ts []callback.Target) (int, []callback.TargetError, error) { return len(ts), nil, nil },
	}
	agents := &fakeACD{}
	h := New(Config{
		Records: fakeRecords{list: func(f cdr.Filter) ([]cdr.Record, error) { filter = f; return nil, nil }},
		Events: fakeEvents{list: func(f cdr.EventFilter) ([]cdr.AgentEvent, error) {
			if f.Limit < 0 {
				ft.Fatalf("negative limit reached the store: %+v", f)
			}
			return nil, nil
		}},
		Calls: fakeCalls{}, Gatherer: prometheus.NewRegistry(), Campaigns: camps,
		ACD:    agents,
		Logger: slog.New(slog.DiscardHandler),
	})
	f.Fuzz(func(t *testing.T, route uint8, body, query string) {
		ft, camps.t, filter = t, t, cdr.Filter{}
		agents.states = map[string]acd.AgentState{"1001": acd.AgentReady} // each input starts from the same state
		rt := fuzzRoutes[int(route)%len(fuzzRoutes)]
		target := rt.path
		if q, err := url.ParseQuery(query); err == nil && len(q) > 0 {
			target += "?" + q.Encode()
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(rt.method, target, strings.NewReader(body)))
		if rec.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", rt.method, target, body, rec.Code, rec.Body.String())
		}
		var m map[string]any
		if !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") && rec.Code != http.StatusOK {
			t.Fatalf("%s %s: %d without JSON: %q", rt.method, target, rec.Code, rec.Body.String())
		}
		if strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
			if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
				// lists answer a JSON array; anything else must be an object
				var list []any
				if json.Unmarshal(rec.Body.Bytes(), &list) != nil {
					t.Fatalf("%s %s: not JSON: %q", rt.method, target, rec.Body.String())
				}
			}
		}
		if rec.Code >= 400 {
			if e, _ := m["error"].(string); e == "" {
				t.Fatalf("%s %s %q: %d without an error: %q", rt.method, target, body, rec.Code, rec.Body.String())
			}
		}
		if rec.Code < 300 && filter.Limit < 0 {
			t.Fatalf("negative limit reached the store: %+v", filter)
		}
	})
}
