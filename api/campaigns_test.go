package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hotline12345/hotline/callback"
)

// fakeCampaigns fakes the dialer with function fields; a nil field fails the test if called.
type fakeCampaigns struct {
	t          *testing.T
	create     func(callback.Campaign, []callback.Target) (callback.Campaign, []callback.TargetError, error)
	addTargets func(id string, ts []callback.Target) (int, []callback.TargetError, error)
	action     func(what, id string) error
	status     func(id string, limit int) (callback.Status, error)
	list       func() ([]callback.Status, error)
}

func (f *fakeCampaigns) need(ok bool, name string) {
	if !ok {
		f.t.Fatalf("unexpected call of %s", name)
	}
}

func (f *fakeCampaigns) Create(_ context.Context, c callback.Campaign, ts []callback.Target) (callback.Campaign, []callback.TargetError, error) {
	f.need(f.create != nil, "Create")
	return f.create(c, ts)
}
func (f *fakeCampaigns) AddTargets(_ context.Context, id string, ts []callback.Target) (int, []callback.TargetError, error) {
	f.need(f.addTargets != nil, "AddTargets")
	return f.addTargets(id, ts)
}
func (f *fakeCampaigns) Pause(_ context.Context, id string) error  { return f.act("pause", id) }
func (f *fakeCampaigns) Resume(_ context.Context, id string) error { return f.act("resume", id) }
func (f *fakeCampaigns) Cancel(_ context.Context, id string) error { return f.act("cancel", id) }
func (f *fakeCampaigns) act(what, id string) error {
	f.need(f.action != nil, what)
	return f.action(what, id)
}
func (f *fakeCampaigns) Status(_ context.Context, id string, limit int) (callback.Status, error) {
	f.need(f.status != nil, "Status")
	return f.status(id, limit)
}
func (f *fakeCampaigns) List(context.Context) ([]callback.Status, error) {
	f.need(f.list != nil, "List")
	return f.list()
}

// fakeCampaignTargets adds the optional CampaignTargets.
type fakeCampaignTargets struct {
	*fakeCampaigns
	targets func(id, state string, limit int) ([]callback.Target, error)
}

func (f fakeCampaignTargets) Targets(_ context.Context, id, state string, limit int) ([]callback.Target, error) {
	return f.targets(id, state, limit)
}

func campaignAPI(c Campaigns) http.Handler {
	return New(Config{Records: fakeRecords{}, Calls: fakeCalls{}, Gatherer: prometheus.NewRegistry(), Campaigns: c,
		Logger: slog.New(slog.DiscardHandler)})
}

var (
	created = time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	camp1   = callback.Campaign{ID: "c1", Name: "十一月回访", Script: "satisfaction", Trunk: "loopback-out",
		Window: callback.Window{From: "09:00", To: "20:00"}, MaxConcurrent: 10, CPS: 1, MaxAttempts: 3,
		Retry:       callback.RetryDelays{Busy: 10 * time.Minute, NoAnswer: 30 * time.Minute, Failed: 5 * time.Minute, Interrupted: time.Minute},
		RingTimeout: 30 * time.Second, Deadline: 24 * time.Hour, State: callback.CampaignRunning, Created: created}
	counts1 = callback.Counts{Pending: 3, InProgress: 1, Done: 5, Failed: 1,
		Outcomes:  map[string]int{"answered": 4, "busy": 2, "dnc": 1},
		Satisfied: map[string]int{"satisfied": 2, "basically_satisfied": 1, "dissatisfied": 1, "not_rated": 0}, AtRisk: 2,
		Reached: 4, InTime: 3}
	targets1 = []callback.Target{
		{Campaign: "c1", CaseID: "A1", Phone: "13900000001", State: callback.TargetDone, Outcome: "answered", Attempts: 1, Satisfaction: "satisfied"},
		{Campaign: "c1", CaseID: "A2", Phone: "13900000002", State: callback.TargetPending},
		{Campaign: "c1", CaseID: "A3", Phone: "13900000003", State: callback.TargetFailed, Outcome: "invalid-number", Attempts: 1},
	}
)

func statusOf(id string, limit int) (callback.Status, error) {
	if id != "c1" {
		return callback.Status{}, callback.ErrNotFound
	}
	ts := targets1
	if limit > 0 && limit < len(ts) {
		ts = ts[:limit]
	}
	return callback.Status{Campaign: camp1, Counts: counts1, Targets: ts}, nil
}

func TestCampaignsNotConfigured(t *testing.T) {
	h := campaignAPI(nil)
	for _, r := range []struct{ method, url string }{
		{"GET", "/api/v1/campaigns"}, {"POST", "/api/v1/campaigns"}, {"GET", "/api/v1/campaigns/c1"},
		{"POST", "/api/v1/campaigns/c1/targets"}, {"POST", "/api/v1/campaigns/c1/pause"},
	} {
		rec, m := do(t, h, r.method, r.url, "{}")
		if rec.Code != http.StatusNotFound || m["error"] != "campaigns are not configured" {
			t.Errorf("%s %s without campaigns: %d %v", r.method, r.url, rec.Code, m)
		}
	}
}

func TestCreateCampaign(t *testing.T) {
	var got callback.Campaign
	var gotTargets []callback.Target
	f := &fakeCampaigns{t: t, create: func(c callback.Campaign, ts []callback.Target) (callback.Campaign, []callback.TargetError, error) {
		got, gotTargets = c, ts
		c.ID, c.State, c.Created = "c9", callback.CampaignRunning, created
		// the dialer refuses its 2nd target (the request's 3rd: the 2nd was refused here)
		return c, []callback.TargetError{{Index: 1, CaseID: "B3", Err: "number outside the dial plan: 110"}}, nil
	}}
	body := `{"name": "回访", "script": "satisfaction", "trunk": "loopback-out",
		"window": {"from": "00:00", "to": "24:00", "days": ["mon-fri"], "holidays": ["2026-10-01"], "workdays": ["2026-10-11"]},
		"max_concurrent": 4, "cps": 2.5, "max_attempts": 2, "retry": {"busy": "10m", "no_answer": "1h30m"},
		"ring_timeout": "25s", "deadline": "48h", "fallback": "callback", "fallback_dissatisfied": true, "do_not_call": ["13900000009"],
		"targets": [{"case_id": "B1", "phone": "13900000001", "queue": "consult", "agent": "1001", "call_id": "x1", "closed_at": "2026-11-30 08:00"},
		            {"case_id": "B2", "phone": "13900000002", "closed_at": "yesterday"},
		            {"case_id": "B3", "phone": "110"},
		            {"case_id": "B4", "phone": "13900000004", "closed_at": "2026-11-30T00:00:00Z"}]}`
	rec, m := do(t, campaignAPI(f), "POST", "/api/v1/campaigns", body)
	if rec.Code != http.StatusCreated || m["id"] != "c9" || m["added"] != 2.0 {
		t.Fatalf("create: %d %s", rec.Code, rec.Body)
	}
	want := callback.Campaign{Name: "回访", Script: "satisfaction", Trunk: "loopback-out",
		Window:        callback.Window{From: "00:00", To: "24:00", Days: []string{"mon-fri"}, Holidays: []string{"2026-10-01"}, Workdays: []string{"2026-10-11"}},
		MaxConcurrent: 4, CPS: 2.5, MaxAttempts: 2, Retry: callback.RetryDelays{Busy: 10 * time.Minute, NoAnswer: 90 * time.Minute},
		RingTimeout: 25 * time.Second, Deadline: 48 * time.Hour, Fallback: "callback", FallbackDissatisfied: true, DoNotCall: []string{"13900000009"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("campaign given to the dialer:\n got %+v\nwant %+v", got, want)
	}
	sh := time.FixedZone("CST", 8*3600) // the default location is Asia/Shanghai
	if len(gotTargets) != 3 {
		t.Fatalf("targets given to the dialer: %+v", gotTargets)
	}
	t0 := gotTargets[0]
	if t0.CaseID != "B1" || t0.Phone != "13900000001" || t0.Queue != "consult" || t0.Agent != "1001" || t0.CallID != "x1" ||
		!t0.ClosedAt.Equal(time.Date(2026, 11, 30, 8, 0, 0, 0, sh)) ||
		gotTargets[1].CaseID != "B3" || !gotTargets[2].ClosedAt.Equal(time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("targets given to the dialer: %+v", gotTargets)
	}
	// Refused: ours (bad closed_at) and the dialer's, by the request's index.
	refused, _ := m["refused"].([]any)
	if len(refused) != 2 {
		t.Fatalf("refused: %v", m["refused"])
	}
	r0, r1 := refused[0].(map[string]any), refused[1].(map[string]any)
	if r0["index"] != 1.0 || r0["case_id"] != "B2" || !strings.Contains(r0["error"].(string), "closed_at") ||
		r1["index"] != 2.0 || r1["case_id"] != "B3" || !strings.Contains(r1["error"].(string), "dial plan") {
		t.Errorf("refused: %v", refused)
	}
	// The campaign as created, its durations as Go duration strings.
	c, _ := m["campaign"].(map[string]any)
	retry, _ := c["retry"].(map[string]any)
	if c["id"] != "c9" || c["state"] != "running" || c["ring_timeout"] != "25s" || c["deadline"] != "48h0m0s" || retry["busy"] != "10m0s" || c["counts"] != nil {
		t.Errorf("campaign: %v", c)
	}
}

func TestCreateCampaignErrors(t *testing.T) {
	f := &fakeCampaigns{t: t, create: func(c callback.Campaign, _ []callback.Target) (callback.Campaign, []callback.TargetError, error) {
		switch c.Name {
		case "bad":
			return callback.Campaign{}, nil, fmt.Errorf(`%w: script: unknown survey "nope"; trunk: unknown outbound trunk "x"`, callback.ErrBadCampaign)
		case "down":
			return callback.Campaign{}, nil, errors.New("database is locked")
		case "half":
			c.ID = "c7"
			return c, nil, errors.New("callback: add targets: disk full")
		}
		c.ID = "c8"
		return c, nil, nil
	}}
	h := campaignAPI(f)
	huge := `{"name": "x", "script": "` + strings.Repeat("x", MaxCampaignBody) + `"}`
	for _, tc := range []struct {
		name, body string
		status     int
		errHas     string
	}{
		{"unknown field", `{"name": "x", "colour": "red"}`, 400, `unknown field "colour"`},
		{"unknown target field", `{"name": "x", "targets": [{"case_id": "1", "phone": "13900000001", "mobile": "1"}]}`, 400, `unknown field "mobile"`},
		{"unknown window field", `{"name": "x", "window": {"from": "09:00", "until": "20:00"}}`, 400, `unknown field "until"`},
		{"not JSON", `{name`, 400, "body:"},
		{"empty", ``, 400, "empty"},
		{"two values", `{"name": "x"} {}`, 400, "after the JSON object"},
		{"duration as number", `{"name": "x", "ring_timeout": 30}`, 400, `"10m"`},
		{"bad duration", `{"name": "x", "retry": {"busy": "ten minutes"}}`, 400, "ten minutes"},
		{"negative duration", `{"name": "x", "deadline": "-1h"}`, 400, "-1h"},
		{"negative cps", `{"name": "x", "cps": -1}`, 400, "cps"},
		{"negative max_concurrent", `{"name": "x", "max_concurrent": -1}`, 400, "max_concurrent"},
		{"negative max_attempts", `{"name": "x", "max_attempts": -1}`, 400, "max_attempts"},
		{"too large", huge, 413, "8 MiB"},
		{"bad script and trunk", `{"name": "bad"}`, 400, `unknown survey "nope"; trunk: unknown outbound trunk "x"`},
		{"store down", `{"name": "down"}`, 500, "database is locked"},
		{"created, targets not stored", `{"name": "half"}`, 500, "disk full"},
	} {
		rec, m := do(t, h, "POST", "/api/v1/campaigns", tc.body)
		msg, _ := m["error"].(string)
		if rec.Code != tc.status || !strings.Contains(msg, tc.errHas) {
			t.Errorf("%s: %d %q, want %d with %q", tc.name, rec.Code, msg, tc.status, tc.errHas)
		}
		if tc.name == "created, targets not stored" && m["id"] != "c7" {
			t.Errorf("%s: the created campaign's id is not given: %v", tc.name, m)
		}
	}
	// Just under the limit is fine.
	ok := `{"name": "x", "targets": [{"case_id": "1", "phone": "13900000001"}], "script": "`
	ok += strings.Repeat("x", MaxCampaignBody-len(ok)-2) + `"}`
	if rec, _ := do(t, h, "POST", "/api/v1/campaigns", ok); rec.Code != http.StatusCreated {
		t.Errorf("a body of %d bytes: %d, want 201", len(ok), rec.Code)
	}
}

func TestAddTargets(t *testing.T) {
	var got []callback.Target
	f := &fakeCampaigns{t: t, addTargets: func(id string, ts []callback.Target) (int, []callback.TargetError, error) {
		switch id {
		case "c1":
			got = ts
			return 1, []callback.TargetError{{Index: 1, CaseID: "A1", Err: "duplicate case id: A1"}}, nil
		case "gone":
			return 0, nil, callback.ErrFinal
		}
		return 0, nil, callback.ErrNotFound
	}}
	h := campaignAPI(f)
	rec, m := do(t, h, "POST", "/api/v1/campaigns/c1/targets",
		`{"targets": [{"case_id": "A9", "phone": "13900000009", "closed_at": "1764460800"}, {"case_id": "A1", "phone": "13900000001"}]}`)
	refused, _ := m["refused"].([]any)
	if rec.Code != http.StatusOK || m["added"] != 1.0 || len(refused) != 1 || refused[0].(map[string]any)["index"] != 1.0 {
		t.Fatalf("add: %d %s", rec.Code, rec.Body)
	}
	if len(got) != 2 || got[0].CaseID != "A9" || !got[0].ClosedAt.Equal(time.Unix(1764460800, 0)) {
		t.Errorf("targets given to the dialer: %+v", got)
	}
	for _, tc := range []struct {
		url, body string
		status    int
	}{
		{"/api/v1/campaigns/nope/targets", `{"targets": [{"case_id": "1", "phone": "13900000001"}]}`, 404},
		{"/api/v1/campaigns/gone/targets", `{"targets": [{"case_id": "1", "phone": "13900000001"}]}`, 409},
		{"/api/v1/campaigns/c1/targets", `{"targets": []}`, 400},
		{"/api/v1/campaigns/c1/targets", `{"targets": [{"case": "1"}]}`, 400},
		{"/api/v1/campaigns/c1/targets", `[]`, 400},
	} {
		rec, m := do(t, h, "POST", tc.url, tc.body)
		if rec.Code != tc.status || m["error"] == nil {
			t.Errorf("POST %s %s: %d %v, want %d with an error", tc.url, tc.body, rec.Code, m, tc.status)
		}
	}
}

func TestListCampaigns(t *testing.T) {
	paused := camp1
	paused.ID, paused.State = "c0", callback.CampaignPaused
	f := &fakeCampaigns{t: t, list: func() ([]callback.Status, error) {
		return []callback.Status{{Campaign: camp1, Counts: counts1}, {Campaign: paused}}, nil
	}}
	rec, m := do(t, campaignAPI(f), "GET", "/api/v1/campaigns", "")
	cs, _ := m["campaigns"].([]any)
	if rec.Code != http.StatusOK || len(cs) != 2 {
		t.Fatalf("list: %d %s", rec.Code, rec.Body)
	}
	c := cs[0].(map[string]any)
	n := c["counts"].(map[string]any)
	// total 10; reached 4 (3 by their deadline) of 10 - 1 dnc; rated 4, 3 good.
	for k, want := range map[string]any{"pending": 3.0, "in_progress": 1.0, "done": 5.0, "failed": 1.0, "cancelled": 0.0, "at_risk": 2.0,
		"total": 10.0, "reached": 4.0, "reached_in_time": 3.0, "reached_share": 4.0 / 9, "callback_rate": 3.0 / 9, "rated": 4.0, "satisfaction_rate": 0.75} {
		if n[k] != want {
			t.Errorf("counts[%s] = %v, want %v", k, n[k], want)
		}
	}
	if sat := n["satisfaction"].(map[string]any); sat["basically_satisfied"] != 1.0 || n["outcomes"].(map[string]any)["busy"] != 2.0 {
		t.Errorf("per-outcome and satisfaction counts: %v", n)
	}
	if c["name"] != "十一月回访" || c["state"] != "running" || c["ring_timeout"] != "30s" || c["window"].(map[string]any)["from"] != "09:00" {
		t.Errorf("campaign: %v", c)
	}
	// No targets: shares are null, maps empty, not null.
	n0 := cs[1].(map[string]any)["counts"].(map[string]any)
	if n0["reached_share"] != nil || n0["satisfaction_rate"] != nil || n0["outcomes"] == nil || n0["satisfaction"] == nil {
		t.Errorf("empty counts: %v", n0)
	}

	f.list = func() ([]callback.Status, error) { return nil, errors.New("no database") }
	if rec, m := do(t, campaignAPI(f), "GET", "/api/v1/campaigns", ""); rec.Code != 500 || m["error"] == nil {
		t.Errorf("list failing: %d %v", rec.Code, m)
	}
	f.list = func() ([]callback.Status, error) { return nil, nil }
	if rec, _ := do(t, campaignAPI(f), "GET", "/api/v1/campaigns", ""); rec.Code != 200 || !strings.Contains(rec.Body.String(), `"campaigns": []`) {
		t.Errorf("no campaigns: %d %s", rec.Code, rec.Body)
	}
}

func TestCampaignDetail(t *testing.T) {
	var gotLimit int
	f := &fakeCampaigns{t: t, status: func(id string, limit int) (callback.Status, error) {
		gotLimit = limit
		return statusOf(id, limit)
	}}
	h := campaignAPI(f)
	rec, m := do(t, h, "GET", "/api/v1/campaigns/c1", "")
	ts, _ := m["targets"].([]any)
	if rec.Code != http.StatusOK || m["id"] != "c1" || len(ts) != 3 || gotLimit != DefaultCampaignTargets || m["counts"] == nil {
		t.Fatalf("detail: %d limit %d %s", rec.Code, gotLimit, rec.Body)
	}
	// The contract: every target has case_id, state, outcome, attempts and satisfaction.
	for i, want := range []map[string]any{
		{"case_id": "A1", "state": "done", "outcome": "answered", "attempts": 1.0, "satisfaction": "satisfied", "phone": "13900000001"},
		{"case_id": "A2", "state": "pending", "outcome": "", "attempts": 0.0, "satisfaction": "", "phone": "13900000002"},
		{"case_id": "A3", "state": "failed", "outcome": "invalid-number", "attempts": 1.0, "satisfaction": ""},
	} {
		tj := ts[i].(map[string]any)
		for k, v := range want {
			if got, ok := tj[k]; !ok || got != v {
				t.Errorf("target %d: %s = %v (present %v), want %v", i, k, got, ok, v)
			}
		}
	}
	if rec, _ := do(t, h, "GET", "/api/v1/campaigns/c1?limit=2", ""); rec.Code != 200 || gotLimit != 2 {
		t.Errorf("limit=2: %d, dialer asked for %d", rec.Code, gotLimit)
	}
	// state= without CampaignTargets: every target read, filtered here.
	rec, m = do(t, h, "GET", "/api/v1/campaigns/c1?state=failed", "")
	if ts, _ := m["targets"].([]any); rec.Code != 200 || gotLimit >= 0 || len(ts) != 1 || ts[0].(map[string]any)["case_id"] != "A3" {
		t.Errorf("state=failed: %d limit %d %s", rec.Code, gotLimit, rec.Body)
	}
	rec, m = do(t, h, "GET", "/api/v1/campaigns/c1?state=human", "")
	if ts, ok := m["targets"].([]any); rec.Code != 200 || !ok || len(ts) != 0 {
		t.Errorf("state=human: want an empty list: %d %s", rec.Code, rec.Body)
	}
	// state= with CampaignTargets: asked of it.
	var asked string
	ft := fakeCampaignTargets{f, func(id, state string, limit int) ([]callback.Target, error) {
		asked = fmt.Sprintf("%s %s %d", id, state, limit)
		return targets1[1:2], nil
	}}
	rec, m = do(t, campaignAPI(ft), "GET", "/api/v1/campaigns/c1?state=pending&limit=5", "")
	if ts, _ := m["targets"].([]any); rec.Code != 200 || asked != "c1 pending 5" || len(ts) != 1 || m["counts"] == nil {
		t.Errorf("state=pending via Targets (%q): %d %s", asked, rec.Code, rec.Body)
	}
	for url, status := range map[string]int{
		"/api/v1/campaigns/nope":              404,
		"/api/v1/campaigns/c1?state=asleep":   400,
		"/api/v1/campaigns/c1?limit=0":        400,
		"/api/v1/campaigns/c1?limit=many":     400,
		"/api/v1/campaigns/c1?limit=10000000": 400,
	} {
		if rec, m := do(t, h, "GET", url, ""); rec.Code != status || m["error"] == nil {
			t.Errorf("GET %s: %d %v, want %d with an error", url, rec.Code, m, status)
		}
	}
}

func TestCampaignActions(t *testing.T) {
	var calls []string
	state := callback.CampaignRunning
	f := &fakeCampaigns{t: t,
		action: func(what, id string) error {
			calls = append(calls, what+" "+id)
			switch {
			case id == "down":
				return callback.ErrNotRunning
			case id != "c1":
				return callback.ErrNotFound
			case state == callback.CampaignCancelled:
				return fmt.Errorf("%w", callback.ErrFinal)
			}
			state = map[string]string{"pause": callback.CampaignPaused, "resume": callback.CampaignRunning, "cancel": callback.CampaignCancelled}[what]
			return nil
		},
		status: func(id string, limit int) (callback.Status, error) {
			s, err := statusOf(id, limit)
			s.State = state
			return s, err
		},
	}
	h := campaignAPI(f)
	for _, tc := range []struct {
		action, id string
		status     int
		state      string
	}{
		{"pause", "c1", 200, "paused"},
		{"resume", "c1", 200, "running"},
		{"cancel", "c1", 200, "cancelled"},
		{"resume", "c1", 409, ""},
		{"cancel", "c1", 409, ""},
		{"pause", "nope", 404, ""},
		{"pause", "down", 503, ""},
	} {
		rec, m := do(t, h, "POST", "/api/v1/campaigns/"+tc.id+"/"+tc.action, "")
		if rec.Code != tc.status || (tc.state != "" && (m["state"] != tc.state || m["id"] != "c1" || m["counts"] == nil)) ||
			(tc.state == "" && m["error"] == nil) {
			t.Errorf("%s %s: %d %v, want %d %s", tc.action, tc.id, rec.Code, m, tc.status, tc.state)
		}
	}
	if len(calls) != 7 {
		t.Errorf("dialer calls: %v", calls)
	}
	if rec, m := do(t, h, "POST", "/api/v1/campaigns/c1/dance", ""); rec.Code != 404 || m["error"] == nil {
		t.Errorf("unknown action: %d %v", rec.Code, m)
	}
}

// The wallboard page carries the campaigns panel, hidden until the API lists running or paused campaigns.
func TestWallboardHasCampaignPanel(t *testing.T) {
	h := New(Config{Records: fakeRecords{}, Calls: fakeCalls{}, ACD: &fakeACD{}, Gatherer: prometheus.NewRegistry()})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/wallboard", nil))
	page := rec.Body.String()
	for _, want := range []string{`id="campaigns-panel"`, `hidden`, `/api/v1/campaigns`, "回访 Campaigns"} {
		if !strings.Contains(page, want) {
			t.Errorf("wallboard lacks %q", want)
		}
	}
}
