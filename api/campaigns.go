package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hotline12345/hotline/auth"
	"github.com/hotline12345/hotline/callback"
	"github.com/hotline12345/hotline/cdr"
)

// Campaigns runs the outbound callback campaigns (callback.Dialer).
type Campaigns interface {
	Create(ctx context.Context, c callback.Campaign, ts []callback.Target) (callback.Campaign, []callback.TargetError, error)
	AddTargets(ctx context.Context, id string, ts []callback.Target) (int, []callback.TargetError, error)
	Pause(ctx context.Context, id string) error
	Resume(ctx context.Context, id string) error
	Cancel(ctx context.Context, id string) error
	// Status returns a campaign with its counts and up to limit targets (<0: all).
	Status(ctx context.Context, id string, limit int) (callback.Status, error)
	List(ctx context.Context) ([]callback.Status, error)
}

// CampaignTargets is optional on a Campaigns: one campaign's targets in one
// state, at most limit. Without it, ?state= reads every target of the
// campaign through Status and filters them here.
type CampaignTargets interface {
	Targets(ctx context.Context, campaign, state string, limit int) ([]callback.Target, error)
}

// MaxCampaignBody is the default bound of the body of POST
// /api/v1/campaigns[/{id}/targets] (some 50,000 targets; Config.MaxImportBody);
// a larger one is answered 413.
const MaxCampaignBody = 8 << 20

// DefaultCampaignTargets is how many targets GET /api/v1/campaigns/{id}
// lists without ?limit=.
const DefaultCampaignTargets = 1000

// errNoCampaigns answers every campaign route when Config.Campaigns is nil:
// 404, as for a route the server does not have (not 503: retrying cannot help).
const errNoCampaigns = "campaigns are not configured"

// campaignRoutes registers the campaign endpoints on mux.
func (a *api) campaignRoutes(mux *http.ServeMux) {
	if a.cfg.Campaigns == nil {
		off := func(w http.ResponseWriter, _ *http.Request) { writeError(w, http.StatusNotFound, errNoCampaigns) }
		mux.HandleFunc("/api/v1/campaigns", off)
		mux.HandleFunc("/api/v1/campaigns/", off)
		return
	}
	importing := access{min: auth.Admin, body: a.cfg.MaxImportBody}
	a.route(mux, "POST /api/v1/campaigns", importing, a.createCampaign)
	a.route(mux, "GET /api/v1/campaigns", access{min: auth.Viewer}, a.listCampaigns)
	a.route(mux, "GET /api/v1/campaigns/{id}", access{min: auth.Viewer, export: true}, a.campaign)
	a.route(mux, "POST /api/v1/campaigns/{id}/targets", importing, a.addTargets)
	a.route(mux, "POST /api/v1/campaigns/{id}/pause", access{min: auth.Admin}, a.campaignAction(a.cfg.Campaigns.Pause))
	a.route(mux, "POST /api/v1/campaigns/{id}/resume", access{min: auth.Admin}, a.campaignAction(a.cfg.Campaigns.Resume))
	a.route(mux, "POST /api/v1/campaigns/{id}/cancel", access{min: auth.Admin}, a.campaignAction(a.cfg.Campaigns.Cancel))
}

// duration is a time.Duration written as a Go duration string ("10m", "24h").
type duration time.Duration

func (d *duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf(`want a duration such as "10m", got %s`, b)
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return fmt.Errorf(`want a duration such as "10m", got %q`, s)
	}
	*d = duration(v)
	return nil
}

func (d duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// retryJSON is callback.RetryDelays with duration strings.
type retryJSON struct {
	Busy        duration `json:"busy"`
	NoAnswer    duration `json:"no_answer"`
	Failed      duration `json:"failed"`
	Interrupted duration `json:"interrupted"`
}

// campaignSettings are a campaign's fields as POST takes them and GET shows them.
type campaignSettings struct {
	Name                 string          `json:"name"`
	Script               string          `json:"script"`
	Trunk                string          `json:"trunk"`
	Window               callback.Window `json:"window"`
	MaxConcurrent        int             `json:"max_concurrent"`
	CPS                  float64         `json:"cps"`
	MaxAttempts          int             `json:"max_attempts"`
	Retry                retryJSON       `json:"retry"`
	RingTimeout          duration        `json:"ring_timeout"`
	Deadline             duration        `json:"deadline"`
	Fallback             string          `json:"fallback"`
	FallbackDissatisfied bool            `json:"fallback_dissatisfied"`
	DoNotCall            []string        `json:"do_not_call,omitempty"`
}

// targetIn is a target as POST takes it; closed_at is RFC 3339, "YYYY-MM-DD
// HH:MM[:SS]" or a date in the hotline's time zone, or unix seconds.
type targetIn struct {
	CaseID   string `json:"case_id"`
	Phone    string `json:"phone"`
	Queue    string `json:"queue"`
	Agent    string `json:"agent"`
	CallID   string `json:"call_id"`
	ClosedAt string `json:"closed_at"`
}

type createRequest struct {
	campaignSettings
	Targets []targetIn `json:"targets"`
}

// campaignJSON is a campaign as the API shows it, with its counts.
type campaignJSON struct {
	ID string `json:"id"`
	campaignSettings
	State   string      `json:"state"`
	Created time.Time   `json:"created"`
	Counts  *countsJSON `json:"counts,omitempty"` // nil in POST's answer
}

// countsJSON are callback.Counts (pending, in_progress, done, failed,
// cancelled, outcomes, satisfaction, at_risk) with derived figures:
// reached = targets reached at least once, by the survey or a human;
// reached_in_time = those reached by their deadline; reached_share = reached /
// (every target less cancelled and do-not-call ones) and callback_rate (回访率)
// = reached_in_time / the same; rated = satisfied +
// basically satisfied + dissatisfied; satisfaction_rate = (satisfied +
// basically satisfied) / rated. A share is null when its denominator is 0.
type countsJSON struct {
	callback.Counts
	Total            int      `json:"total"`
	ReachedShare     *float64 `json:"reached_share"`
	CallbackRate     *float64 `json:"callback_rate"`
	Rated            int      `json:"rated"`
	SatisfactionRate *float64 `json:"satisfaction_rate"`
}

// targetJSON is a target as GET /api/v1/campaigns/{id} lists it: case_id,
// state, outcome, attempts and satisfaction are always present (outcome and
// satisfaction "" until known).
type targetJSON struct {
	CaseID       string    `json:"case_id"`
	State        string    `json:"state"`
	Outcome      string    `json:"outcome"`
	Attempts     int       `json:"attempts"`
	Satisfaction string    `json:"satisfaction"`
	Campaign     string    `json:"campaign"`
	Phone        string    `json:"phone"`
	Queue        string    `json:"queue,omitempty"`
	Agent        string    `json:"agent,omitempty"`
	CallID       string    `json:"call_id,omitempty"`
	ClosedAt     time.Time `json:"closed_at,omitzero"`
	Deadline     time.Time `json:"deadline,omitzero"`
	NextAt       time.Time `json:"next_at,omitzero"`
	LastCall     string    `json:"last_call,omitempty"`
	Answers      string    `json:"answers,omitempty"`
	ReachedAt    time.Time `json:"reached_at,omitzero"`
	ReachedBy    string    `json:"reached_by,omitempty"`
	Human        string    `json:"human,omitempty"`
	HumanAgent   string    `json:"human_agent,omitempty"`
	HumanTries   int       `json:"human_tries,omitempty"`
	Updated      time.Time `json:"updated,omitzero"`
}

// toCampaignJSON shows c with counts n (none if nil).
func toCampaignJSON(c callback.Campaign, n *callback.Counts) campaignJSON {
	var counts *countsJSON
	if n != nil {
		v := toCountsJSON(*n)
		counts = &v
	}
	r := c.Retry
	return campaignJSON{
		ID: c.ID, State: c.State, Created: c.Created, Counts: counts,
		campaignSettings: campaignSettings{
			Name: c.Name, Script: c.Script, Trunk: c.Trunk, Window: c.Window,
			MaxConcurrent: c.MaxConcurrent, CPS: c.CPS, MaxAttempts: c.MaxAttempts,
			Retry:       retryJSON{duration(r.Busy), duration(r.NoAnswer), duration(r.Failed), duration(r.Interrupted)},
			RingTimeout: duration(c.RingTimeout), Deadline: duration(c.Deadline),
			Fallback: c.Fallback, FallbackDissatisfied: c.FallbackDissatisfied, DoNotCall: c.DoNotCall,
		},
	}
}

func toCountsJSON(n callback.Counts) countsJSON {
	if n.Outcomes == nil {
		n.Outcomes = map[string]int{}
	}
	if n.Satisfied == nil {
		n.Satisfied = map[string]int{}
	}
	out := countsJSON{Counts: n, Total: n.Pending + n.InProgress + n.Done + n.Failed + n.Cancelled}
	dnc := n.Outcomes[callback.OutcomeDNC]
	out.ReachedShare = share(n.Reached, out.Total-n.Cancelled-dnc)
	out.CallbackRate = share(n.InTime, out.Total-n.Cancelled-dnc)
	good := n.Satisfied[cdr.SatisfactionSatisfied] + n.Satisfied[cdr.SatisfactionBasicallySatisfied]
	out.Rated = good + n.Satisfied[cdr.SatisfactionDissatisfied]
	out.SatisfactionRate = share(good, out.Rated)
	return out
}

func share(n, of int) *float64 {
	if of <= 0 {
		return nil
	}
	f := float64(n) / float64(of)
	return &f
}

func toTargetJSON(t callback.Target) targetJSON {
	return targetJSON{
		CaseID: t.CaseID, State: t.State, Outcome: t.Outcome, Attempts: t.Attempts, Satisfaction: t.Satisfaction,
		Campaign: t.Campaign, Phone: t.Phone, Queue: t.Queue, Agent: t.Agent, CallID: t.CallID,
		ClosedAt: t.ClosedAt, Deadline: t.Deadline, NextAt: t.NextAt, LastCall: t.LastCall, Answers: t.Answers,
		ReachedAt: t.ReachedAt, ReachedBy: t.ReachedBy, Human: t.Human, HumanAgent: t.HumanAgent,
		HumanTries: t.HumanTries, Updated: t.Updated,
	}
}

// readJSON decodes r's body (at most the route's limit, Config.MaxImportBody
// here, set by the access layer; no unknown fields, one value) into v; it
// answers the error itself (400 or 413) and reports false.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("unexpected data after the JSON object")
	}
	if mb := (*http.MaxBytesError)(nil); errors.As(err, &mb) {
		writeTooLarge(w, mb.Limit)
		return false
	}
	if errors.Is(err, io.EOF) {
		err = errors.New("empty; want a JSON object")
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "body: "+err.Error())
		return false
	}
	return true
}

// targets converts ts; those whose closed_at does not parse are refused
// (index into ts), the others returned with their indexes in ts.
func (a *api) targets(ts []targetIn) (ok []callback.Target, idx []int, refused []callback.TargetError) {
	for i, t := range ts {
		closed, err := a.parseClosed(t.ClosedAt)
		if err != nil {
			refused = append(refused, callback.TargetError{Index: i, CaseID: t.CaseID,
				Err: fmt.Sprintf("%s: closed_at: %v", callback.ErrBadTarget, err)})
			continue
		}
		ok = append(ok, callback.Target{CaseID: t.CaseID, Phone: t.Phone, Queue: t.Queue, Agent: t.Agent, CallID: t.CallID, ClosedAt: closed})
		idx = append(idx, i)
	}
	return ok, idx, refused
}

func (a *api) parseClosed(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{"2006-01-02 15:04:05", "2006-01-02 15:04"} {
		if t, err := time.ParseInLocation(layout, s, a.cfg.Location); err == nil {
			return t, nil
		}
	}
	t, err := a.parseTime(s)
	if err != nil {
		return t, errors.New(`want RFC 3339, "YYYY-MM-DD HH:MM[:SS]", YYYY-MM-DD or unix seconds, got ` + strconv.Quote(s))
	}
	return t, nil
}

// mergeRefused maps the dialer's refusals (indexes into the targets it got)
// back to the request's indexes and merges them with ours, by index.
func mergeRefused(ours, theirs []callback.TargetError, idx []int) []callback.TargetError {
	out := append(make([]callback.TargetError, 0, len(ours)+len(theirs)), ours...)
	for _, e := range theirs {
		if e.Index >= 0 && e.Index < len(idx) {
			e.Index = idx[e.Index]
		}
		out = append(out, e)
	}
	slices.SortStableFunc(out, func(a, b callback.TargetError) int { return a.Index - b.Index })
	return out
}

// createCampaign serves POST /api/v1/campaigns → 201 {"id", "added", "refused", "campaign"}.
func (a *api) createCampaign(w http.ResponseWriter, r *http.Request) {
	var req createRequest
	if !readJSON(w, r, &req) {
		return
	}
	s := req.campaignSettings
	switch {
	case s.MaxConcurrent < 0:
		writeError(w, http.StatusBadRequest, "max_concurrent: must not be negative")
		return
	case s.CPS < 0:
		writeError(w, http.StatusBadRequest, "cps: must not be negative")
		return
	case s.MaxAttempts < 0:
		writeError(w, http.StatusBadRequest, "max_attempts: must not be negative")
		return
	}
	c := callback.Campaign{
		Name: s.Name, Script: s.Script, Trunk: s.Trunk, Window: s.Window,
		MaxConcurrent: s.MaxConcurrent, CPS: s.CPS, MaxAttempts: s.MaxAttempts,
		Retry: callback.RetryDelays{Busy: time.Duration(s.Retry.Busy), NoAnswer: time.Duration(s.Retry.NoAnswer),
			Failed: time.Duration(s.Retry.Failed), Interrupted: time.Duration(s.Retry.Interrupted)},
		RingTimeout: time.Duration(s.RingTimeout), Deadline: time.Duration(s.Deadline),
		Fallback: s.Fallback, FallbackDissatisfied: s.FallbackDissatisfied, DoNotCall: s.DoNotCall,
	}
	ts, idx, refused := a.targets(req.Targets)
	c, theirs, err := a.cfg.Campaigns.Create(r.Context(), c, ts)
	refused = mergeRefused(refused, theirs, idx)
	if err != nil {
		if c.ID != "" { // created, but its targets could not all be stored
			a.cfg.Logger.Error("campaign created, adding its targets failed", "campaign", c.ID, "error", err)
			writeJSON(w, http.StatusInternalServerError, map[string]any{"error": err.Error(), "id": c.ID, "refused": refused})
			return
		}
		a.campaignError(w, err, "")
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{
		"id": c.ID, "added": len(req.Targets) - len(refused), "refused": refused,
		"campaign": toCampaignJSON(c, nil),
	})
}

// addTargets serves POST /api/v1/campaigns/{id}/targets {"targets": [...]} → 200 {"added", "refused"}.
func (a *api) addTargets(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var req struct {
		Targets []targetIn `json:"targets"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	if len(req.Targets) == 0 {
		writeError(w, http.StatusBadRequest, `targets: none given; want {"targets": [{"case_id", "phone"}, ...]}`)
		return
	}
	ts, idx, refused := a.targets(req.Targets)
	n, theirs, err := a.cfg.Campaigns.AddTargets(r.Context(), id, ts)
	refused = mergeRefused(refused, theirs, idx)
	switch {
	case err != nil && n > 0: // some stored, then the store failed
		a.cfg.Logger.Error("adding targets failed", "campaign", id, "added", n, "error", err)
		writeJSON(w, http.StatusInternalServerError, map[string]any{"error": err.Error(), "added": n, "refused": refused})
		return
	case err != nil:
		a.campaignError(w, err, id)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"added": n, "refused": refused})
}

// listCampaigns serves GET /api/v1/campaigns → {"campaigns": [...]}, newest first, with counts.
func (a *api) listCampaigns(w http.ResponseWriter, r *http.Request) {
	ss, err := a.cfg.Campaigns.List(r.Context())
	if err != nil {
		a.campaignError(w, err, "")
		return
	}
	out := make([]campaignJSON, 0, len(ss))
	for _, s := range ss {
		out = append(out, toCampaignJSON(s.Campaign, &s.Counts))
	}
	writeJSON(w, http.StatusOK, map[string]any{"campaigns": out})
}

// campaign serves GET /api/v1/campaigns/{id}?state=&limit=: the campaign,
// its counts and up to limit targets (default DefaultCampaignTargets),
// earliest deadline first, only those in state if given.
func (a *api) campaign(w http.ResponseWriter, r *http.Request) {
	id, q := r.PathValue("id"), r.URL.Query()
	limit := DefaultCampaignTargets
	if s := q.Get("limit"); s != "" {
		var err error
		if limit, err = strconv.Atoi(s); err != nil || limit < 1 || limit > cdr.MaxListLimit {
			writeError(w, http.StatusBadRequest, "limit: want 1-"+strconv.Itoa(cdr.MaxListLimit))
			return
		}
	}
	state := q.Get("state")
	states := []string{callback.TargetPending, callback.TargetDialing, callback.TargetHuman,
		callback.TargetDone, callback.TargetFailed, callback.TargetCancelled}
	if state != "" && !slices.Contains(states, state) {
		writeError(w, http.StatusBadRequest, "state: want one of "+strings.Join(states, ", "))
		return
	}
	s, err := a.campaignStatus(r.Context(), id, state, limit)
	if err != nil {
		a.campaignError(w, err, id)
		return
	}
	ts := make([]targetJSON, 0, len(s.Targets))
	full := principalOf(r).Role.SeesNumbers()
	for _, t := range s.Targets {
		tj := toTargetJSON(t)
		if !full {
			tj.Phone = maskNumber(tj.Phone)
		}
		ts = append(ts, tj)
	}
	writeJSON(w, http.StatusOK, struct {
		campaignJSON
		Targets []targetJSON `json:"targets"`
	}{toCampaignJSON(s.Campaign, &s.Counts), ts})
}

// campaignStatus is campaign id with up to limit targets in state ("" = any).
func (a *api) campaignStatus(ctx context.Context, id, state string, limit int) (callback.Status, error) {
	if state == "" {
		return a.cfg.Campaigns.Status(ctx, id, limit)
	}
	if tl, ok := a.cfg.Campaigns.(CampaignTargets); ok {
		s, err := a.cfg.Campaigns.Status(ctx, id, 1)
		if err != nil {
			return s, err
		}
		s.Targets, err = tl.Targets(ctx, id, state, limit)
		return s, err
	}
	s, err := a.cfg.Campaigns.Status(ctx, id, -1)
	if err != nil {
		return s, err
	}
	s.Targets = slices.DeleteFunc(s.Targets, func(t callback.Target) bool { return t.State != state })
	s.Targets = s.Targets[:min(len(s.Targets), limit)]
	return s, nil
}

// campaignAction serves POST /api/v1/campaigns/{id}/{pause|resume|cancel} → 200 with the campaign.
func (a *api) campaignAction(do func(context.Context, string) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if err := do(r.Context(), id); err != nil {
			a.campaignError(w, err, id)
			return
		}
		s, err := a.cfg.Campaigns.Status(r.Context(), id, 1)
		if err != nil {
			a.campaignError(w, err, id)
			return
		}
		writeJSON(w, http.StatusOK, toCampaignJSON(s.Campaign, &s.Counts))
	}
}

// campaignError answers a Campaigns error: unknown campaign 404, final 409,
// bad campaign 400, dialer not running (or the request cancelled) 503, else 500.
func (a *api) campaignError(w http.ResponseWriter, err error, id string) {
	switch {
	case errors.Is(err, callback.ErrNotFound):
		writeError(w, http.StatusNotFound, "unknown campaign "+strconv.Quote(id))
	case errors.Is(err, callback.ErrFinal):
		writeError(w, http.StatusConflict, "campaign "+strconv.Quote(id)+": "+err.Error())
	case errors.Is(err, callback.ErrBadCampaign):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, callback.ErrNotRunning), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusServiceUnavailable, "campaigns unavailable: "+err.Error())
	default:
		a.cfg.Logger.Error("campaigns failed", "campaign", id, "error", err)
		writeError(w, http.StatusInternalServerError, "campaigns: "+err.Error())
	}
}
