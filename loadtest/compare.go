package loadtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hotline12345/hotline/cdr"
)

// Compare's tolerances and windows.
const (
	// TimeTolerance is how far a duration of the ground truth (wait, talk,
	// abandon time) may be from the server record's: |truth − server| ≤ 50 ms.
	TimeTolerance = 50 * time.Millisecond
	// CompareWindowMargin widens the truth's Started..Ended window when
	// fetching records, for the clocks of two machines. Records found only
	// in the margins, outside the run (see Comparison.Outside), are
	// another run's and are not compared.
	CompareWindowMargin = time.Minute
	// compareRequestTimeout bounds each API request.
	compareRequestTimeout = 2 * time.Minute
	// windowEndPad makes the report window, which excludes its end, take
	// the run's last record (records keep microseconds).
	windowEndPad = time.Millisecond
)

var (
	// ErrCompareAPI means the server's API could not be read.
	ErrCompareAPI = errors.New("loadtest: compare: API request failed")
	// ErrCDRsTruncated means the window holds more records than one
	// /api/v1/cdrs answer carries (cdr.MaxListLimit).
	ErrCDRsTruncated = errors.New("loadtest: compare: more records than the API returns at once")
)

// Mismatch fields (Mismatch.Field).
const (
	FieldRecord       = "record"       // a truth call without a record, or a record without a truth call
	FieldDisposition  = "disposition"  // the truth's outcome vs the record's disposition
	FieldAgent        = "agent"        // the (first) agent who answered
	FieldWait         = "wait"         // the truth's Wait vs the record's connect − enqueue
	FieldTalk         = "talk"         // the truth's Talk vs the record's talk
	FieldAbandonAt    = "abandon_at"   // the truth's AbandonAt vs the record's end − enqueue
	FieldSatisfaction = "satisfaction" // the truth's Rating vs the record's satisfaction
	FieldTransfers    = "transfers"    // the truth's Transfers vs the record's transfers
	FieldVisits       = "visits"       // the truth's Visits vs the record's visits (when the truth has them)
	// The report's totals are "total.offered", "total.answered",
	// "total.abandoned", "total.rated" and "total.transfers" (SIPCallID empty).
	fieldTotal = "total."
)

// Comparison is what Compare found.
type Comparison struct {
	Calls      int        `json:"calls"`   // truth calls
	Records    int        `json:"records"` // server records in the run's window
	Matched    int        `json:"matched"` // truth calls with exactly one record of their sip_call_id
	Outside    int        `json:"outside"` // records fetched in the margins, outside the run's window: not compared
	From       time.Time  `json:"from"`    // the report window compared: From inclusive, To exclusive
	To         time.Time  `json:"to"`
	Mismatches []Mismatch `json:"mismatches"`
}

// Mismatch is one difference between the ground truth and the server: of
// one call (SIPCallID set), or of the report's totals (SIPCallID empty).
type Mismatch struct {
	SIPCallID string `json:"sip_call_id,omitempty"`
	Field     string `json:"field"` // one of the Field constants, or "total.<count>"
	Truth     string `json:"truth"`
	Server    string `json:"server"`
}

// OK reports whether the server agreed with the truth on everything.
func (c *Comparison) OK() bool { return len(c.Mismatches) == 0 }

// WriteText prints each mismatch on a line, then a summary line.
func (c *Comparison) WriteText(w io.Writer) error {
	var b strings.Builder
	for _, m := range c.Mismatches {
		id := m.SIPCallID
		if id == "" {
			id = "-"
		}
		fmt.Fprintf(&b, "MISMATCH %s %s: truth %s, server %s\n", id, m.Field, m.Truth, m.Server)
	}
	verdict := "OK"
	if !c.OK() {
		verdict = "FAIL"
	}
	fmt.Fprintf(&b, "compare: %d truth calls, %d server records, %d matched, %d mismatches", c.Calls, c.Records, c.Matched, len(c.Mismatches))
	if c.Outside > 0 {
		fmt.Fprintf(&b, " (%d records outside the run not compared)", c.Outside)
	}
	fmt.Fprintf(&b, ": %s\n", verdict)
	_, err := io.WriteString(w, b.String())
	return err
}

// apiClient opens a connection per request: compare makes two, and no idle
// connection (and its goroutines) outlives it.
var apiClient = &http.Client{Transport: WithToken(&http.Transport{DisableKeepAlives: true})}

// Compare holds the ground truth t against the server at api (its HTTP base
// URL, e.g. http://127.0.0.1:8080): the inbound records of
// /api/v1/cdrs, matched to the truth's calls by sip_call_id, and the totals
// of /api/v1/reports/summary. Every difference is a Mismatch: a call
// without a record or a record without a call; the outcome against the
// disposition; the (first) agent; the transfers; the queue visits, when the
// truth has them (day runs); the wait, talk and abandon time within
// TimeTolerance; the rating against the satisfaction; the report's offered,
// answered, abandoned, rated and transfers totals against the truth's
// counts, exactly.
//
// The records are fetched for the truth's window widened by
// CompareWindowMargin. The run's window, for the report and for records
// without a call, runs from the first to the last start of the matched
// records (the server's clock), or is the truth's window when none matched.
// An error means the comparison could not be made.
func Compare(ctx context.Context, t *Truth, api string) (*Comparison, error) {
	base := strings.TrimRight(api, "/")
	q := url.Values{
		"direction": {cdr.DirectionInbound},
		"from":      {t.Started.Add(-CompareWindowMargin).UTC().Format(time.RFC3339Nano)},
		"to":        {t.Ended.Add(CompareWindowMargin).UTC().Format(time.RFC3339Nano)},
		"limit":     {strconv.Itoa(cdr.MaxListLimit)},
	}
	var list struct {
		CDRs []cdr.Record `json:"cdrs"`
	}
	// A call the simulator saw end may still be in the server's hands for a moment (its
	// last prompt, the record writer's batch): fetch again until every truth call has its
	// record, or RecordsSettle has passed.
	settle := time.Now().Add(RecordsSettle)
	for {
		// Decoded afresh each time: into the last answer's records, a record would keep
		// the fields its JSON omits (agent, satisfaction) from the one before it at its index.
		list.CDRs = nil
		if err := getJSON(ctx, base+"/api/v1/cdrs?"+q.Encode(), &list); err != nil {
			return nil, err
		}
		if len(list.CDRs) >= cdr.MaxListLimit {
			return nil, fmt.Errorf("%w: %d records from %s to %s", ErrCDRsTruncated, len(list.CDRs), q.Get("from"), q.Get("to"))
		}
		if allRecorded(t, list.CDRs) || time.Now().After(settle) {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	c := compareCalls(t, list.CDRs)
	var sum reportSummary
	q = url.Values{"from": {c.From.UTC().Format(time.RFC3339Nano)}, "to": {c.To.UTC().Format(time.RFC3339Nano)}}
	if err := getJSON(ctx, base+"/api/v1/reports/summary?"+q.Encode(), &sum); err != nil {
		return nil, err
	}
	c.compareTotals(t, &sum.Total)
	return c, nil
}

// RecordsSettle is how long Compare waits for the records of calls that just ended.
var RecordsSettle = 15 * time.Second

// allRecorded reports whether every truth call has a record among recs.
func allRecorded(t *Truth, recs []cdr.Record) bool {
	have := make(map[string]bool, len(recs))
	for i := range recs {
		have[recs[i].SIPCallID] = true
	}
	for _, c := range t.Calls {
		if !have[c.SIPCallID] {
			return false
		}
	}
	return true
}

// reportSummary is the part of /api/v1/reports/summary that Compare reads.
type reportSummary struct {
	Total reportTotals `json:"total"`
}

// reportTotals are the report's per-call totals that Compare checks.
type reportTotals struct {
	Offered   int `json:"offered"`
	Answered  int `json:"answered"`
	Abandoned int `json:"abandoned"`
	Rated     int `json:"rated"`
	Transfers int `json:"transfers"`
}

func getJSON(ctx context.Context, u string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, compareRequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrCompareAPI, err)
	}
	res, err := apiClient.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrCompareAPI, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		body, _ := io.ReadAll(io.LimitReader(res.Body, 4<<10))
		if json.Unmarshal(body, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(body))
		}
		return fmt.Errorf("%w: GET %s: %s: %s", ErrCompareAPI, u, res.Status, e.Error)
	}
	if err := json.NewDecoder(res.Body).Decode(v); err != nil {
		return fmt.Errorf("%w: GET %s: %v", ErrCompareAPI, u, err)
	}
	return nil
}

// compareCalls matches recs to t's calls and compares them call by call; it
// sets the run's window (From, To) for the report.
func compareCalls(t *Truth, recs []cdr.Record) *Comparison {
	c := &Comparison{Calls: len(t.Calls), Mismatches: []Mismatch{}}
	bySIP := map[string][]*cdr.Record{}
	for i := range recs {
		bySIP[recs[i].SIPCallID] = append(bySIP[recs[i].SIPCallID], &recs[i])
	}
	truthIDs := map[string]int{}
	for _, tc := range t.Calls {
		if tc.SIPCallID != "" {
			truthIDs[tc.SIPCallID]++
		}
	}
	// The run's window: the matched records' starts.
	for _, tc := range t.Calls {
		for _, r := range bySIP[tc.SIPCallID] {
			if c.From.IsZero() || r.Start.Before(c.From) {
				c.From = r.Start
			}
			if r.Start.After(c.To) {
				c.To = r.Start
			}
		}
	}
	if c.From.IsZero() {
		c.From, c.To = t.Started, t.Ended
	}
	c.To = c.To.Add(windowEndPad)
	inRun := func(r *cdr.Record) bool { return !r.Start.Before(c.From) && r.Start.Before(c.To) }

	for _, tc := range t.Calls {
		id := tc.SIPCallID
		rs := bySIP[id]
		switch {
		case id == "":
			c.add("", FieldRecord, "a call without sip_call_id ("+tc.Outcome+")", "cannot match")
			continue
		case truthIDs[id] > 1:
			c.add(id, FieldRecord, strconv.Itoa(truthIDs[id])+" calls with this sip_call_id", strconv.Itoa(len(rs))+" records")
			truthIDs[id] = -1 // once
			continue
		case truthIDs[id] < 0:
			continue
		case len(rs) == 0:
			c.add(id, FieldRecord, tc.Outcome, "no record")
			continue
		case len(rs) > 1:
			c.add(id, FieldRecord, "1 call", strconv.Itoa(len(rs))+" records")
			continue
		}
		c.Matched++
		c.compareCall(&tc, rs[0])
	}
	for i := range recs {
		r := &recs[i]
		if !inRun(r) {
			c.Outside++
			continue
		}
		c.Records++
		if truthIDs[r.SIPCallID] == 0 {
			c.add(r.SIPCallID, FieldRecord, "no call", fmt.Sprintf("%s (id %s, start %s)", r.Disposition, r.ID, r.Start.UTC().Format(time.RFC3339Nano)))
		}
	}
	return c
}

func (c *Comparison) add(id, field, truth, server string) {
	c.Mismatches = append(c.Mismatches, Mismatch{SIPCallID: id, Field: field, Truth: truth, Server: server})
}

// outcomeDispositions are the truth outcomes that are not spelled as the
// disposition they match. Any other outcome matches the disposition of
// the same name.
var outcomeDispositions = map[string][]cdr.Disposition{
	"failed":    {cdr.DispositionFailed},
	"refused":   {cdr.DispositionFailed},
	"cancelled": {cdr.DispositionCallerCancelled},
}

// OutcomeMatches reports whether a truth outcome and a record's disposition
// agree: the same name, or "refused" ↔ failed, "cancelled" ↔
// caller-cancelled.
func OutcomeMatches(outcome string, d cdr.Disposition) bool {
	if ds, ok := outcomeDispositions[outcome]; ok {
		for _, x := range ds {
			if x == d {
				return true
			}
		}
		return false
	}
	return outcome == string(d)
}

func (c *Comparison) compareCall(tc *TruthCall, r *cdr.Record) {
	id := tc.SIPCallID
	if !OutcomeMatches(tc.Outcome, r.Disposition) {
		c.add(id, FieldDisposition, tc.Outcome, string(r.Disposition))
	}
	if tc.Agent != r.Agent {
		c.add(id, FieldAgent, orNone(tc.Agent), orNone(r.Agent))
	}
	if tc.Transfers != r.Transfers {
		c.add(id, FieldTransfers, strconv.Itoa(tc.Transfers), strconv.Itoa(r.Transfers))
	}
	if tc.Visits != "" && tc.Visits != r.Visits {
		c.add(id, FieldVisits, tc.Visits, orNone(r.Visits))
	}
	if tc.Outcome == string(cdr.DispositionAnswered) && !r.Connect.IsZero() && !r.EnqueueTime.IsZero() {
		c.compareDur(id, FieldWait, tc.Wait.D(), r.Connect.Sub(r.EnqueueTime))
		c.compareDur(id, FieldTalk, tc.Talk.D(), r.Talk)
	}
	if tc.AbandonAt != 0 && r.Disposition == cdr.DispositionAbandoned && !r.EnqueueTime.IsZero() && !r.End.IsZero() {
		c.compareDur(id, FieldAbandonAt, tc.AbandonAt.D(), r.End.Sub(r.EnqueueTime))
	}
	if tc.Rating != r.Satisfaction {
		c.add(id, FieldSatisfaction, orNone(tc.Rating), orNone(r.Satisfaction))
	}
}

// WithinTolerance reports whether |a − b| ≤ TimeTolerance.
func WithinTolerance(a, b time.Duration) bool {
	d := a - b
	return d <= TimeTolerance && d >= -TimeTolerance
}

func (c *Comparison) compareDur(id, field string, truth, server time.Duration) {
	if !WithinTolerance(truth, server) {
		c.add(id, field, fmtMS(truth), fmt.Sprintf("%s (off by %s)", fmtMS(server), fmtMS(server-truth)))
	}
}

func fmtMS(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64) + " ms"
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// truthOffered are the outcomes of calls that entered a queue.
var truthOffered = []string{
	string(cdr.DispositionAnswered), string(cdr.DispositionAbandoned), string(cdr.DispositionTimeout),
	string(cdr.DispositionNoAgent), string(cdr.DispositionExitKey), string(cdr.DispositionCallback),
}

// TruthCounts are the truth's figures that the report's totals must equal.
type TruthCounts struct {
	Offered, Answered, Abandoned, Rated, Transfers int
}

// Counts counts t's calls as the report counts records: offered = the
// outcomes of a call that entered a queue (answered, abandoned, timeout,
// no-agent, exit-key, callback); rated = a rating of satisfied, basically
// satisfied or dissatisfied; transfers = the calls' transfers.
func (t *Truth) Counts() TruthCounts {
	var n TruthCounts
	for _, tc := range t.Calls {
		n.Transfers += tc.Transfers
		for _, o := range truthOffered {
			if tc.Outcome == o {
				n.Offered++
			}
		}
		switch tc.Outcome {
		case string(cdr.DispositionAnswered):
			n.Answered++
		case string(cdr.DispositionAbandoned):
			n.Abandoned++
		}
		switch tc.Rating {
		case cdr.SatisfactionSatisfied, cdr.SatisfactionBasicallySatisfied, cdr.SatisfactionDissatisfied:
			n.Rated++
		}
	}
	return n
}

func (c *Comparison) compareTotals(t *Truth, total *reportTotals) {
	n := t.Counts()
	for _, f := range []struct {
		name          string
		truth, server int
	}{
		{"offered", n.Offered, total.Offered},
		{"answered", n.Answered, total.Answered},
		{"abandoned", n.Abandoned, total.Abandoned},
		{"rated", n.Rated, total.Rated},
		{"transfers", n.Transfers, total.Transfers},
	} {
		if f.truth != f.server {
			c.add("", fieldTotal+f.name, strconv.Itoa(f.truth), strconv.Itoa(f.server))
		}
	}
}

// UnmarshalJSON reads the float milliseconds that MarshalJSON writes, so
// that ReadTruth gets back the durations WriteTruth wrote. (It belongs
// beside Dur.MarshalJSON in report.go.)
func (d *Dur) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var ms float64
	if err := json.Unmarshal(b, &ms); err != nil {
		return fmt.Errorf("loadtest: duration: want milliseconds: %w", err)
	}
	*d = Dur(math.Round(ms * float64(time.Millisecond)))
	return nil
}
