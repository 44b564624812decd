package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hotline12345/hotline/cdr"
)

// surveyTarget is a campaign target as GET /api/v1/campaigns/{id} lists it.
type surveyTarget struct {
	CaseID       string `json:"case_id"`
	Phone        string `json:"phone"`
	State        string `json:"state"`
	Outcome      string `json:"outcome"`
	Attempts     int    `json:"attempts"`
	Satisfaction string `json:"satisfaction"`
}

// surveyCampaignView is GET /api/v1/campaigns/{id}.
type surveyCampaignView struct {
	ID     string `json:"id"`
	State  string `json:"state"`
	Counts struct {
		Outcomes     map[string]int `json:"outcomes"`
		Satisfaction map[string]int `json:"satisfaction"`
	} `json:"counts"`
	Targets []surveyTarget `json:"targets"`
}

// machineDone reports whether no target waits for the machine: each is done, failed,
// cancelled or with a human (whose callback task needs an agent, not the far end).
func (v *surveyCampaignView) machineDone(targets int) bool {
	if len(v.Targets) < targets {
		return false
	}
	for _, t := range v.Targets {
		if t.State == "pending" || t.State == "dialing" {
			return false
		}
	}
	return true
}

func (v *surveyCampaignView) attempts() int {
	n := 0
	for _, t := range v.Targets {
		n += t.Attempts
	}
	return n
}

func (v *surveyCampaignView) server() *SurveyServer {
	s := &SurveyServer{State: v.State, Targets: map[string]int{}, Outcomes: v.Counts.Outcomes, Satisfaction: v.Counts.Satisfaction}
	for _, t := range v.Targets {
		s.Targets[t.State]++
	}
	return s
}

// createCampaign creates the run's campaign and returns its id. A campaign the server
// created with refused numbers is returned with the error (for the caller to cancel).
func (f *farEnd) createCampaign(ctx context.Context) (string, error) {
	cfg := f.cfg
	targets := make([]map[string]string, cfg.Targets)
	for i := range targets {
		targets[i] = map[string]string{"case_id": surveyCaseID(i), "phone": SurveyNumber(i)}
	}
	body := map[string]any{
		"name": fmt.Sprintf("hotline-loadtest survey (seed %d)", cfg.Seed), "script": cfg.Survey, "trunk": cfg.Trunk,
		"window": map[string]string{"from": "00:00", "to": "24:00"}, "targets": targets,
	}
	if cfg.MaxAttempts > 0 {
		body["max_attempts"] = cfg.MaxAttempts
	}
	if cfg.Retry > 0 {
		r := cfg.Retry.String()
		body["retry"] = map[string]string{"busy": r, "no_answer": r, "failed": r, "interrupted": r}
	}
	if cfg.RingTimeout > 0 {
		body["ring_timeout"] = cfg.RingTimeout.String()
	}
	if cfg.CPS > 0 {
		body["cps"] = cfg.CPS
	}
	if cfg.MaxConcurrent > 0 {
		body["max_concurrent"] = cfg.MaxConcurrent
	}
	var out struct {
		ID      string `json:"id"`
		Refused []struct {
			CaseID string `json:"case_id"`
			Error  string `json:"error"`
		} `json:"refused"`
	}
	if err := postJSON(ctx, cfg.API+"/api/v1/campaigns", body, http.StatusCreated, &out); err != nil {
		return "", err
	}
	if out.ID == "" {
		return "", fmt.Errorf("%w: the server created a campaign without an id", ErrCampaign)
	}
	if len(out.Refused) > 0 {
		r := out.Refused[0]
		return out.ID, fmt.Errorf("%w: the server refused %d of the %d targets (%s: %s)", ErrCampaign, len(out.Refused), cfg.Targets, r.CaseID, r.Error)
	}
	f.log.Info("campaign created", "campaign", out.ID, "targets", cfg.Targets)
	return out.ID, nil
}

// waitCampaign polls the campaign until no target waits for the machine and the far end has
// no call up, and returns the last view and why it stopped; a nil view means it did not
// finish (the run's end, a call beyond MaxCalls, the API failing).
func (f *farEnd) waitCampaign(ctx context.Context, id string) (*surveyCampaignView, string, error) {
	u := f.cfg.API + "/api/v1/campaigns/" + url.PathEscape(id) + "?limit=" + strconv.Itoa(f.cfg.Targets)
	tick := time.NewTicker(surveyPoll)
	defer tick.Stop()
	failed := 0
	for {
		var v surveyCampaignView
		err := getJSON(ctx, u, &v)
		// After the poll: a refused call is counted before its 480 goes out, so before the
		// server's view can show what followed it.
		if f.overflowed() {
			return nil, "max-calls", fmt.Errorf("%w (%d) before the campaign finished", ErrMaxCalls, f.cfg.MaxCalls)
		}
		switch {
		case err == nil:
			failed = 0
			if v.machineDone(f.cfg.Targets) && f.idle() {
				return &v, "campaign-done", nil
			}
		case ctx.Err() != nil:
		default:
			if failed++; failed >= surveyAPIErrors {
				return nil, "campaign", fmt.Errorf("%w: %w", ErrCampaign, err)
			}
		}
		select {
		case <-ctx.Done():
			return nil, "cancelled", nil // RunSurvey names the cause
		case <-tick.C:
		}
	}
}

// cancelCampaign cancels the run's campaign, best effort (the run is ending anyway).
func (f *farEnd) cancelCampaign(ctx context.Context, id string) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), surveyAPITimeout)
	defer cancel()
	if err := postJSON(cctx, f.cfg.API+"/api/v1/campaigns/"+url.PathEscape(id)+"/cancel", struct{}{}, http.StatusOK, nil); err != nil {
		f.log.Warn("could not cancel the campaign", "campaign", id, "error", err)
	}
}

// records returns the campaign's final survey records, waiting up to RecordsSettle for want
// of them (the writer batches).
func (f *farEnd) records(ctx context.Context, id string, since time.Time, want int) ([]cdr.Record, error) {
	q := url.Values{
		"direction": {cdr.DirectionSurvey},
		"from":      {since.Add(-CompareWindowMargin).UTC().Format(time.RFC3339Nano)},
		"limit":     {strconv.Itoa(cdr.MaxListLimit)},
	}
	settle := time.Now().Add(RecordsSettle)
	for {
		var list struct {
			CDRs []cdr.Record `json:"cdrs"`
		}
		if err := getJSON(ctx, f.cfg.API+"/api/v1/cdrs?"+q.Encode(), &list); err != nil {
			return nil, fmt.Errorf("%w: records: %w", ErrCampaign, err)
		}
		recs := slices.DeleteFunc(list.CDRs, func(r cdr.Record) bool { return r.Campaign != id || r.End.IsZero() })
		if len(recs) >= want || time.Now().After(settle) {
			return recs, nil
		}
		select {
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		case <-time.After(surveyPoll):
		}
	}
}

// postJSON POSTs body as JSON and decodes the answer into out (if not nil); another status
// than want is an error quoting the server's.
func postJSON(ctx context.Context, u string, body any, want int, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrCampaign, err)
	}
	ctx, cancel := context.WithTimeout(ctx, surveyAPITimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrCampaign, err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := apiClient.Do(req)
	if err != nil {
		return fmt.Errorf("%w: POST %s: %v", ErrCampaign, u, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%w: POST %s: %v", ErrCampaign, u, err)
	}
	if res.StatusCode != want {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(data))
		}
		return fmt.Errorf("%w: POST %s: %s: %s", ErrCampaign, u, res.Status, e.Error)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%w: POST %s: %v", ErrCampaign, u, err)
		}
	}
	return nil
}

// recordSide is the record's hangup_side for the truth's HungUpBy.
func recordSide(by string) string {
	if by == ByServer {
		return cdr.HangupSideSystem
	}
	return by
}

// compareSurvey holds the far end's calls against the campaign's targets and counts and
// its survey records, and returns every difference. Each target was dialled as often as the
// far end was called at its number and ended with the last call's outcome (and, answered,
// its satisfaction); no number was dialled again after an invalid-number (404); the counts
// of outcomes and satisfaction agree; each (number, attempt) has exactly one record, with
// the call's disposition, the SIP status the far end answered and, answered, its answers,
// satisfaction and hang-up side.
func compareSurvey(calls []TruthCall, v *surveyCampaignView, recs []cdr.Record) []string {
	var out []string
	add := func(format string, a ...any) { out = append(out, fmt.Sprintf(format, a...)) }
	byNumber := map[string][]TruthCall{}
	for _, c := range calls {
		byNumber[c.Called] = append(byNumber[c.Called], c)
	}
	outcomes, sats := map[string]int{}, map[string]int{}
	targets := map[string]bool{}
	for _, t := range v.Targets {
		targets[t.Phone] = true
		cs := byNumber[t.Phone]
		if t.Attempts != len(cs) {
			add("target %s (%s): %d attempts, the far end took %d calls", t.CaseID, t.Phone, t.Attempts, len(cs))
		}
		if len(cs) == 0 {
			continue
		}
		last := cs[len(cs)-1]
		outcomes[last.Outcome]++
		if t.Outcome != last.Outcome {
			add("target %s (%s): outcome %q, the far end's last call %q", t.CaseID, t.Phone, t.Outcome, last.Outcome)
		}
		if last.Outcome == OutcomeAnswered {
			sats[last.Rating]++
			if t.Satisfaction != last.Rating {
				add("target %s (%s): satisfaction %q, the far end's %q", t.CaseID, t.Phone, t.Satisfaction, last.Rating)
			}
		}
	}
	for _, n := range slices.Sorted(maps.Keys(byNumber)) {
		cs := byNumber[n]
		if !targets[n] {
			add("%s: the far end took %d calls to a number not in the campaign", n, len(cs))
		}
		for i, c := range cs[:len(cs)-1] {
			if c.Outcome == OutcomeInvalidNumber {
				add("%s: dialled again after attempt %d found an invalid number", n, i+1)
			}
		}
	}
	for _, c := range []struct {
		name          string
		server, truth map[string]int
	}{{"outcome", v.Counts.Outcomes, outcomes}, {"satisfaction", v.Counts.Satisfaction, sats}} {
		for _, k := range slices.Sorted(maps.Keys(unionKeys(c.server, c.truth))) {
			if c.server[k] != c.truth[k] {
				add("counts: %s %s: server %d, truth %d", c.name, k, c.server[k], c.truth[k])
			}
		}
	}

	type key struct {
		number  string
		attempt int
	}
	byKey := map[key]cdr.Record{}
	for _, r := range recs {
		k := key{r.Called, r.Attempt}
		if _, dup := byKey[k]; dup {
			add("record %s: a second record of %s attempt %d", r.ID, r.Called, r.Attempt)
			continue
		}
		byKey[k] = r
	}
	for _, c := range calls {
		k := key{c.Called, c.Attempt}
		r, ok := byKey[k]
		if !ok {
			add("%s attempt %d (%s): no record", c.Called, c.Attempt, c.Outcome)
			continue
		}
		delete(byKey, k)
		what := fmt.Sprintf("record %s (%s attempt %d)", r.ID, c.Called, c.Attempt)
		if string(r.Disposition) != c.Outcome {
			add("%s: disposition %q, the far end's %q", what, r.Disposition, c.Outcome)
		}
		if r.SIPCallID != "" && r.SIPCallID != c.SIPCallID {
			add("%s: sip_call_id %q, the far end's %q", what, r.SIPCallID, c.SIPCallID)
		}
		if c.SIPStatus != 0 && r.SIPStatus != c.SIPStatus {
			add("%s: sip_status %d, the far end's %d", what, r.SIPStatus, c.SIPStatus)
		}
		if c.Outcome != OutcomeAnswered {
			continue
		}
		if r.SurveyAnswers != c.Digits {
			add("%s: survey answers %q, the far end pressed %q", what, r.SurveyAnswers, c.Digits)
		}
		if r.Satisfaction != c.Rating {
			add("%s: satisfaction %q, the far end's %q", what, r.Satisfaction, c.Rating)
		}
		if want := recordSide(c.HungUpBy); r.HangupSide != want {
			add("%s: hangup side %q, the far end's %q", what, r.HangupSide, want)
		}
	}
	for _, r := range byKey {
		add("record %s: %s attempt %d (%s): no such call at the far end", r.ID, r.Called, r.Attempt, r.Disposition)
	}
	return out
}

// unionKeys returns a map with the keys of a and b.
func unionKeys(a, b map[string]int) map[string]bool {
	u := map[string]bool{}
	for k := range a {
		u[k] = true
	}
	for k := range b {
		u[k] = true
	}
	return u
}
