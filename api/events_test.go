package api

import (
	"context"
	"encoding/csv"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/cdr"
)

type fakeEvents struct {
	list func(cdr.EventFilter) ([]cdr.AgentEvent, error)
}

func (f fakeEvents) ListEvents(_ context.Context, flt cdr.EventFilter) ([]cdr.AgentEvent, error) {
	return f.list(flt)
}

var shanghai = time.FixedZone("CST", 8*3600)

// newEventsAPI serves fixed events and records the filter asked for; it
// fails the listing when fail is set.
func newEventsAPI(t *testing.T, fail *bool) (http.Handler, *cdr.EventFilter) {
	t.Helper()
	var got cdr.EventFilter
	ev := cdr.AgentEvent{ID: "e1", Time: time.Date(2026, 3, 15, 1, 2, 3, 0, time.UTC), CallID: "c1", Queue: "consult",
		AgentID: "1001", Event: cdr.EventWrapUpEnd, Data1: "5.840", NodeID: "n1"}
	h := New(Config{
		Records: fakeRecords{list: func(cdr.Filter) ([]cdr.Record, error) { return nil, nil }},
		Events: fakeEvents{list: func(f cdr.EventFilter) ([]cdr.AgentEvent, error) {
			got = f
			if *fail {
				return nil, errors.New("database is down")
			}
			return []cdr.AgentEvent{ev}, nil
		}},
		Location: shanghai, QueueNames: map[string]string{"consult": "咨询"},
		Calls: fakeCalls{}, ACD: &fakeACD{states: map[string]acd.AgentState{}}, Gatherer: prometheus.NewRegistry(),
	})
	return h, &got
}

func TestEventsFiltersJSONAndCSV(t *testing.T) {
	fail := false
	h, got := newEventsAPI(t, &fail)
	rec, m := do(t, h, "GET", "/api/v1/events?from=2026-03-15&to=2026-03-16T00:00:00%2B08:00&agent=1001&queue=consult&call_id=c1&event=login,LOGOUT&event=WRAPUPEND&limit=10", "")
	day := time.Date(2026, 3, 15, 0, 0, 0, 0, shanghai) // a date is in the hotline's zone
	if rec.Code != 200 || !got.From.Equal(day) || !got.To.Equal(day.AddDate(0, 0, 1)) || got.AgentID != "1001" || got.Queue != "consult" ||
		got.CallID != "c1" || got.Limit != 10 || strings.Join(got.Events, " ") != "LOGIN LOGOUT WRAPUPEND" {
		t.Fatalf("status %d filter %+v", rec.Code, *got)
	}
	evs, _ := m["events"].([]any)
	if len(evs) != 1 {
		t.Fatalf("json: %v", m)
	}
	e := evs[0].(map[string]any)
	if e["event"] != "WRAPUPEND" || e["data1"] != "5.840" || e["call_id"] != "c1" || e["agent"] != "1001" || e["time"] != "2026-03-15T01:02:03Z" {
		t.Fatalf("json event: %v", e)
	}

	rec, _ = do(t, h, "GET", "/api/v1/events?format=csv", "")
	rows, err := csv.NewReader(rec.Body).ReadAll()
	if err != nil || rec.Code != 200 || rec.Header().Get("Content-Type") != "text/csv; charset=utf-8" || len(rows) != 2 ||
		strings.Join(rows[0], ",") != "id,time,call_id,queue,agent,event,data1,data2,data3,data4,data5,node_id" ||
		strings.Join(rows[1], ",") != "e1,2026-03-15T01:02:03Z,c1,consult,1001,WRAPUPEND,5.840,,,,,n1" {
		t.Fatalf("csv %d %v: %v", rec.Code, err, rows)
	}
}

func TestEventsErrors(t *testing.T) {
	fail := false
	h, _ := newEventsAPI(t, &fail)
	for _, tc := range []struct {
		url    string
		status int
		msg    string
	}{
		{"/api/v1/events?event=DANCE", 400, `unknown event "DANCE"`},
		{"/api/v1/events?from=yesterday", 400, "from:"},
		{"/api/v1/events?from=2026-03-16&to=2026-03-15", 400, "from must be before to"},
		{"/api/v1/events?limit=-1", 400, "limit"},
		{"/api/v1/events?format=xml", 400, "format"},
	} {
		rec, m := do(t, h, "GET", tc.url, "")
		if msg, _ := m["error"].(string); rec.Code != tc.status || !strings.Contains(msg, tc.msg) {
			t.Errorf("%s: %d %v, want %d with %q", tc.url, rec.Code, m, tc.status, tc.msg)
		}
	}
	fail = true
	if rec, m := do(t, h, "GET", "/api/v1/events", ""); rec.Code != 500 || m["error"] == nil {
		t.Errorf("store down: %d %v", rec.Code, m)
	}
}

// TestQueueDisplayNames: /api/v1/queues gives each queue's display name
// (its key when none is configured), for the wallboard.
func TestQueueDisplayNames(t *testing.T) {
	fail := false
	h, _ := newEventsAPI(t, &fail)
	rec, m := do(t, h, "GET", "/api/v1/queues", "")
	qs, _ := m["queues"].([]any)
	if rec.Code != 200 || len(qs) != 1 {
		t.Fatalf("%d %v", rec.Code, m)
	}
	q := qs[0].(map[string]any)
	if q["name"] != "consult" || q["display_name"] != "咨询" || q["overflowed_today"] != 0.0 || q["transferred_today"] != 0.0 {
		t.Fatalf("queue: %v", q)
	}
	h, _, _ = newTestAPI(t) // no names configured
	_, m = do(t, h, "GET", "/api/v1/queues", "")
	if q := m["queues"].([]any)[0].(map[string]any); q["display_name"] != "consult" {
		t.Fatalf("queue without a display name: %v", q)
	}
}

// TestSummaryInConfiguredZone: a report asked by date covers that day in
// the hotline's zone (not the host's) and says so.
func TestSummaryInConfiguredZone(t *testing.T) {
	s, err := cdr.OpenSQLite(t.TempDir() + "/cdr.db")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	h := New(Config{Records: s, Store: s, Location: shanghai, Calls: fakeCalls{}, Gatherer: prometheus.NewRegistry()})
	rec, m := do(t, h, "GET", "/api/v1/reports/summary?from=2026-03-15&to=2026-03-16", "")
	if rec.Code != 200 || m["location"] != "CST" || m["from"] != "2026-03-15T00:00:00+08:00" || m["to"] != "2026-03-16T00:00:00+08:00" {
		t.Fatalf("%d %v", rec.Code, m)
	}
	// No zone configured: Asia/Shanghai.
	h = New(Config{Records: s, Store: s, Calls: fakeCalls{}, Gatherer: prometheus.NewRegistry()})
	if _, m = do(t, h, "GET", "/api/v1/reports/summary?from=2026-03-15&to=2026-03-16", ""); m["from"] != "2026-03-15T00:00:00+08:00" {
		t.Fatalf("default zone: %v", m)
	}
	// The events endpoint comes with the store.
	if rec, m := do(t, h, "GET", "/api/v1/events", ""); rec.Code != 200 || m["events"] == nil {
		t.Fatalf("events from the store: %d %v", rec.Code, m)
	}
}
