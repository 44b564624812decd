package loadtest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotline12345/hotline/api"
	"github.com/hotline12345/hotline/cdr"
)

var cmpDayStart = time.Date(2026, 3, 15, 1, 0, 0, 0, time.UTC)

// scriptedDay is a small day whose server records agree with its truth:
// three answered calls (rated satisfied, dissatisfied, not rated; the second
// transferred from 1002 to complaint, where 1005 took it), an abandon, an IVR
// hang-up and a refused call.
func scriptedDay() (*Truth, []cdr.Record) {
	t := &Truth{Scenario: "day", Target: "127.0.0.1:5060", Started: cmpDayStart, Ended: cmpDayStart.Add(60 * time.Second)}
	var recs []cdr.Record
	type spec struct {
		outcome, disp, agent, rating string
		wait, talk, abandon          time.Duration
	}
	specs := []spec{
		{"answered", "answered", "1001", "satisfied", 2 * time.Second, 7 * time.Second, 0},
		{"answered", "answered", "1002", "dissatisfied", 3500 * time.Millisecond, 5 * time.Second, 0},
		{"answered", "answered", "1003", "not_rated", 1200 * time.Millisecond, 4 * time.Second, 0},
		{"abandoned", "abandoned", "", "", 0, 0, 4 * time.Second},
		{"ivr-hangup", "ivr-hangup", "", "", 0, 0, 0},
		{"refused", "failed", "", "", 0, 0, 0},
	}
	for i, s := range specs {
		id := "sim-" + string(rune('a'+i)) + "@127.0.0.1"
		invite := cmpDayStart.Add(time.Duration(i)*2*time.Second + 100*time.Millisecond)
		tc := TruthCall{SIPCallID: id, Caller: "1380000000" + string(rune('0'+i)), Invite: invite, Outcome: s.outcome,
			Agent: s.agent, Rating: s.rating, HungUpBy: "caller"}
		r := cdr.Record{ID: "call-" + string(rune('a'+i)), SIPCallID: id, Direction: cdr.DirectionInbound, Caller: tc.Caller,
			Called: "12345", Start: invite.Add(time.Millisecond), Disposition: cdr.Disposition(s.disp), Agent: s.agent,
			Satisfaction: s.rating, HangupSide: "caller", HangupCause: "BYE", SIPStatus: 200}
		if s.disp != "failed" {
			r.Answer = r.Start.Add(50 * time.Millisecond)
			tc.Answered = invite.Add(52 * time.Millisecond)
			r.End = r.Answer.Add(2 * time.Second)
		} else {
			r.SIPStatus = 503
			r.End = r.Start
		}
		if s.disp == "answered" || s.disp == "abandoned" {
			r.Queue, r.IVRPath, r.Visits = "consult", "main>1>consult", "consult"
			r.EnqueueTime = r.Answer.Add(3 * time.Second)
			tc.Digits, tc.Queue, tc.Visits = "1", "consult", "consult"
		}
		if s.disp == "answered" {
			r.Connect = r.EnqueueTime.Add(s.wait)
			r.Talk = s.talk
			r.End = r.Connect.Add(s.talk + 600*time.Millisecond)
			r.RingAttempts = 1
			r.Visits += "/" + s.agent
			tc.Connected = r.Connect
			tc.Wait = Dur(s.wait + 3*time.Millisecond) // the simulator's clock is a little off
			tc.Talk = Dur(s.talk - 2*time.Millisecond)
			tc.Visits = r.Visits
		}
		if i == 1 { // transferred: Agent stays the first; Talk is both agents'
			r.Transfers, r.Visits, r.RingAttempts = 1, "consult/1002>complaint/1005", 2
			tc.Transfers, tc.Visits = 1, r.Visits
		}
		if s.abandon > 0 {
			r.End = r.EnqueueTime.Add(s.abandon)
			tc.AbandonAt = Dur(s.abandon - 4*time.Millisecond)
		}
		tc.Ended = r.End
		t.Calls = append(t.Calls, tc)
		recs = append(recs, r)
	}
	return t, recs
}

// fakeAPI serves recs as /api/v1/cdrs does (encoding/json of the records,
// filtered by start) and their report as /api/v1/reports/summary does
// (cdr.Compute, Report.WriteJSON); edit may change the report.
type fakeAPI struct {
	t    *testing.T
	recs []cdr.Record
	edit func(*cdr.Report)
	// answer, if set, gives the n-th (from 0) /api/v1/cdrs answer from the records in
	// the window.
	answer func(n int, in []cdr.Record) []cdr.Record

	mu      sync.Mutex
	queries map[string][]string // path → raw queries
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	if f.queries == nil {
		f.queries = map[string][]string{}
	}
	f.queries[r.URL.Path] = append(f.queries[r.URL.Path], r.URL.RawQuery)
	f.mu.Unlock()
	q := r.URL.Query()
	from, err1 := time.Parse(time.RFC3339Nano, q.Get("from"))
	to, err2 := time.Parse(time.RFC3339Nano, q.Get("to"))
	if err1 != nil || err2 != nil {
		http.Error(w, `{"error":"bad window"}`, http.StatusBadRequest)
		return
	}
	var in []cdr.Record
	for _, rec := range f.recs {
		if !rec.Start.Before(from) && rec.Start.Before(to) {
			in = append(in, rec)
		}
	}
	switch r.URL.Path {
	case "/api/v1/cdrs":
		if q.Get("direction") != "inbound" || q.Get("limit") != "100000" {
			f.t.Errorf("cdrs query %q: want direction=inbound and limit=100000", r.URL.RawQuery)
		}
		if f.answer != nil {
			f.mu.Lock()
			n := len(f.queries[r.URL.Path]) - 1
			f.mu.Unlock()
			in = f.answer(n, in)
		}
		json.NewEncoder(w).Encode(map[string]any{"cdrs": in})
	case "/api/v1/reports/summary":
		rep := cdr.Compute(in, nil, cdr.ReportOptions{From: from, To: to})
		if f.edit != nil {
			f.edit(&rep)
		}
		rep.WriteJSON(w)
	default:
		http.NotFound(w, r)
	}
}

func serveFake(t *testing.T, f *fakeAPI) string {
	f.t = t
	s := httptest.NewServer(f)
	t.Cleanup(s.Close)
	return s.URL
}

func mismatchFields(c *Comparison) []string {
	var out []string
	for _, m := range c.Mismatches {
		out = append(out, m.Field)
	}
	slices.Sort(out)
	return out
}

func TestCompareMatchingDay(t *testing.T) {
	truth, recs := scriptedDay()
	// Another run's record, 30 s before this one: fetched in the margin, not compared.
	other := recs[4]
	other.ID, other.SIPCallID, other.Start = "other", "other-run@127.0.0.1", cmpDayStart.Add(-30*time.Second)
	f := &fakeAPI{recs: append(recs, other)}
	c, err := Compare(context.Background(), truth, serveFake(t, f)+"/")
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := c.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	if !c.OK() || c.Calls != 6 || c.Matched != 6 || c.Records != 6 || c.Outside != 1 {
		t.Fatalf("comparison %+v:\n%s", c, out.String())
	}
	want := "compare: 6 truth calls, 6 server records, 6 matched, 0 mismatches (1 records outside the run not compared): OK\n"
	if out.String() != want {
		t.Errorf("text:\n%s\nwant:\n%s", out.String(), want)
	}
	// The records are fetched with the margin; the report is asked for the run's records exactly.
	if !c.From.Equal(recs[0].Start) || !c.To.Equal(recs[5].Start.Add(windowEndPad)) {
		t.Errorf("window %s – %s: want the first and last record starts", c.From, c.To)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	cq, sq := f.queries["/api/v1/cdrs"], f.queries["/api/v1/reports/summary"]
	if len(cq) != 1 || len(sq) != 1 {
		t.Fatalf("queries %v", f.queries)
	}
	if !strings.Contains(cq[0], "from=2026-03-15T00%3A59%3A00Z") || !strings.Contains(cq[0], "to=2026-03-15T01%3A02%3A00Z") {
		t.Errorf("cdrs query %q: want the truth's window ± 1 min", cq[0])
	}
}

// Each kind of mismatch is found, and only it.
func TestCompareMismatches(t *testing.T) {
	defer quickSettle()()
	for _, tc := range []struct {
		name   string
		change func(*Truth, []cdr.Record) []cdr.Record
		edit   func(*cdr.Report)
		want   []string
	}{
		{"no record", func(_ *Truth, r []cdr.Record) []cdr.Record { return slices.Delete(r, 4, 5) }, nil, []string{FieldRecord}},
		{"no record of an answered call", func(_ *Truth, r []cdr.Record) []cdr.Record { return slices.Delete(r, 0, 1) }, nil,
			[]string{FieldRecord, "total.answered", "total.offered", "total.rated"}},
		{"record without a call", func(_ *Truth, r []cdr.Record) []cdr.Record {
			x := r[4]
			x.ID, x.SIPCallID, x.Start = "stray", "stray@127.0.0.1", r[4].Start.Add(time.Second)
			return append(r, x)
		}, nil, []string{FieldRecord}},
		{"two records of a call", func(_ *Truth, r []cdr.Record) []cdr.Record {
			x := r[4]
			x.ID = "dup"
			return append(r, x)
		}, nil, []string{FieldRecord}},
		{"disposition", func(_ *Truth, r []cdr.Record) []cdr.Record { r[3].Disposition = cdr.DispositionTimeout; return r }, nil,
			[]string{FieldDisposition, "total.abandoned"}},
		{"refused but answered", func(tr *Truth, r []cdr.Record) []cdr.Record { tr.Calls[4].Outcome = "refused"; return r }, nil,
			[]string{FieldDisposition}},
		{"agent", func(_ *Truth, r []cdr.Record) []cdr.Record { r[1].Agent = "1009"; return r }, nil, []string{FieldAgent}},
		{"wait", func(_ *Truth, r []cdr.Record) []cdr.Record { r[0].Connect = r[0].Connect.Add(time.Second); return r }, nil, []string{FieldWait}},
		{"talk", func(_ *Truth, r []cdr.Record) []cdr.Record { r[2].Talk += 80 * time.Millisecond; return r }, nil, []string{FieldTalk}},
		{"abandon time", func(_ *Truth, r []cdr.Record) []cdr.Record { r[3].End = r[3].End.Add(300 * time.Millisecond); return r }, nil,
			[]string{FieldAbandonAt}},
		{"satisfaction", func(_ *Truth, r []cdr.Record) []cdr.Record { r[0].Satisfaction = "basically_satisfied"; return r }, nil,
			[]string{FieldSatisfaction}},
		{"rated but not", func(_ *Truth, r []cdr.Record) []cdr.Record { r[2].Satisfaction = "satisfied"; return r }, nil,
			[]string{FieldSatisfaction, "total.rated"}},
		{"report offered", nil, func(rep *cdr.Report) { rep.Total.Offered++ }, []string{"total.offered"}},
		{"report answered and abandoned", nil, func(rep *cdr.Report) { rep.Total.Answered--; rep.Total.Abandoned++ },
			[]string{"total.abandoned", "total.answered"}},
		{"transfer not recorded", func(_ *Truth, r []cdr.Record) []cdr.Record { r[1].Transfers = 0; return r }, nil,
			[]string{"total.transfers", FieldTransfers}},
		{"transfer not made", func(tr *Truth, r []cdr.Record) []cdr.Record {
			tr.Calls[0].Transfers, tr.Calls[0].Visits = 1, "consult/1001>complaint/1004"
			return r
		}, nil, []string{"total.transfers", FieldTransfers, FieldVisits}},
		{"second agent", func(_ *Truth, r []cdr.Record) []cdr.Record { r[1].Visits = "consult/1002>complaint/1006"; return r }, nil,
			[]string{FieldVisits}},
		{"first agent after a transfer", func(_ *Truth, r []cdr.Record) []cdr.Record { r[1].Agent = "1005"; return r }, nil,
			[]string{FieldAgent}},
		{"abandon visits", func(_ *Truth, r []cdr.Record) []cdr.Record { r[3].Visits = ""; return r }, nil, []string{FieldVisits}},
		{"report transfers", nil, func(rep *cdr.Report) { rep.Total.Transfers++ }, []string{"total.transfers"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			truth, recs := scriptedDay()
			if tc.change != nil {
				recs = tc.change(truth, recs)
			}
			c, err := Compare(context.Background(), truth, serveFake(t, &fakeAPI{recs: recs, edit: tc.edit}))
			if err != nil {
				t.Fatal(err)
			}
			var out strings.Builder
			c.WriteText(&out)
			if got := mismatchFields(c); !slices.Equal(got, tc.want) || c.OK() {
				t.Fatalf("mismatches %v, want %v:\n%s", got, tc.want, out.String())
			}
			if n := strings.Count(out.String(), "\n"); n != len(tc.want)+1 || !strings.HasSuffix(out.String(), ": FAIL\n") {
				t.Errorf("text: want a line per mismatch and a failing summary:\n%s", out.String())
			}
			for _, m := range c.Mismatches {
				if strings.HasPrefix(m.Field, "total.") != (m.SIPCallID == "") || m.Truth == m.Server {
					t.Errorf("mismatch %+v", m)
				}
			}
		})
	}
}

// Visits are compared when the truth has them (day runs), not for truths without them (a
// truth file from before, other scenarios); transfers always.
func TestCompareVisitsOnlyWhenKnown(t *testing.T) {
	truth, recs := scriptedDay()
	for i := range truth.Calls {
		truth.Calls[i].Visits = ""
	}
	c, err := Compare(context.Background(), truth, serveFake(t, &fakeAPI{recs: recs}))
	if err != nil || !c.OK() || c.Matched != 6 {
		t.Fatalf("truth without visits: err %v, %+v", err, c)
	}
	truth.Calls[1].Transfers = 0
	c, err = Compare(context.Background(), truth, serveFake(t, &fakeAPI{recs: recs}))
	if err != nil || !slices.Equal(mismatchFields(c), []string{"total.transfers", FieldTransfers}) {
		t.Fatalf("truth without the transfer: err %v, %+v", err, c)
	}
}

// Records are decoded afresh on each fetch: a record that comes later in the list than the
// fetch before does not keep the fields its JSON omits (agent, satisfaction, visits) from
// the record that was at its index then.
func TestCompareRefetchesAfresh(t *testing.T) {
	truth, recs := scriptedDay()
	f := &fakeAPI{recs: recs, answer: func(n int, in []cdr.Record) []cdr.Record {
		if n == 0 { // the abandon's record is not written yet
			return slices.Delete(slices.Clone(in), 3, 4)
		}
		out := slices.Clone(in) // then it comes first, at the index of an answered call
		slices.Reverse(out)
		return out
	}}
	recs[4].Visits = "" // the IVR hang-up, first on the first fetch, second on the next: omits visits
	truth.Calls[4].Visits = ""
	c, err := Compare(context.Background(), truth, serveFake(t, f))
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	c.WriteText(&out)
	f.mu.Lock()
	fetches := len(f.queries["/api/v1/cdrs"])
	f.mu.Unlock()
	if !c.OK() || fetches != 2 {
		t.Fatalf("%d fetches (want 2), the comparison:\n%s", fetches, out.String())
	}
}

// A wait 49 ms off the record's passes; 51 ms off (either way) fails.
func TestCompareWaitTolerance(t *testing.T) {
	for _, tc := range []struct {
		off time.Duration
		ok  bool
	}{{0, true}, {49 * time.Millisecond, true}, {-49 * time.Millisecond, true}, {TimeTolerance, true},
		{51 * time.Millisecond, false}, {-51 * time.Millisecond, false}} {
		truth, recs := scriptedDay()
		truth.Calls[1].Wait = Dur(recs[1].Connect.Sub(recs[1].EnqueueTime) + tc.off)
		c, err := Compare(context.Background(), truth, serveFake(t, &fakeAPI{recs: recs}))
		if err != nil {
			t.Fatal(err)
		}
		if c.OK() != tc.ok {
			t.Errorf("wait off by %s: OK() = %v, want %v: %+v", tc.off, c.OK(), tc.ok, c.Mismatches)
		}
		if !tc.ok && (len(c.Mismatches) != 1 || c.Mismatches[0].Field != FieldWait || c.Mismatches[0].SIPCallID != truth.Calls[1].SIPCallID) {
			t.Errorf("wait off by %s: %+v", tc.off, c.Mismatches)
		}
	}
}

func TestCompareAPIErrors(t *testing.T) {
	truth, _ := scriptedDay()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		w.Write([]byte(`{"error": "cdrs unavailable: disk on fire"}`))
	}))
	defer s.Close()
	_, err := Compare(context.Background(), truth, s.URL)
	if !errors.Is(err, ErrCompareAPI) || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("500: err %v", err)
	}

	full := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"cdrs":[{}` + strings.Repeat(`,{}`, cdr.MaxListLimit-1) + `]}`))
	}))
	defer full.Close()
	if _, err := Compare(context.Background(), truth, full.URL); !errors.Is(err, ErrCDRsTruncated) {
		t.Errorf("a full page of records: err %v, want ErrCDRsTruncated", err)
	}

	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	if _, err := Compare(context.Background(), truth, closed.URL); !errors.Is(err, ErrCompareAPI) {
		t.Errorf("no server: err %v", err)
	}
}

// The durations of a truth file come back as written.
func TestCompareTruthRoundTrip(t *testing.T) {
	truth, _ := scriptedDay()
	truth.Calls[0].Wait = Dur(1234567 * time.Microsecond)
	path := filepath.Join(t.TempDir(), "truth.json")
	if err := WriteTruth(path, truth); err != nil {
		t.Fatal(err)
	}
	got, err := ReadTruth(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range truth.Calls {
		a, b := truth.Calls[i], got.Calls[i]
		if a.Wait != b.Wait || a.Talk != b.Talk || a.AbandonAt != b.AbandonAt || !a.Invite.Equal(b.Invite) || a.Outcome != b.Outcome {
			t.Errorf("call %d: wrote %+v, read %+v", i, a, b)
		}
	}
}

// Compare reads the real API's JSON: records in SQLite served by api.New.
func TestCompareRealAPI(t *testing.T) {
	truth, recs := scriptedDay()
	store, err := cdr.OpenSQLite(filepath.Join(t.TempDir(), "cdr.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	// An outbound survey call in the window is not an inbound record: not compared.
	survey := cdr.Record{ID: "survey-1", SIPCallID: "survey@127.0.0.1", Direction: cdr.DirectionSurvey, Start: cmpDayStart.Add(5 * time.Second),
		End: cmpDayStart.Add(9 * time.Second), Disposition: cdr.DispositionAnswered}
	if err := store.Upsert(context.Background(), append(slices.Clone(recs), survey)); err != nil {
		t.Fatal(err)
	}
	s := httptest.NewServer(api.New(api.Config{Records: store, Store: store}))
	defer s.Close()
	c, err := Compare(context.Background(), truth, s.URL)
	if err != nil {
		t.Fatal(err)
	}
	if !c.OK() || c.Matched != 6 || c.Records != 6 {
		var out strings.Builder
		c.WriteText(&out)
		t.Fatalf("%+v\n%s", c, out.String())
	}
	// And a record the server got wrong is found through it.
	recs[1].Talk += time.Second
	if err := store.Upsert(context.Background(), recs[1:2]); err != nil {
		t.Fatal(err)
	}
	if c, err = Compare(context.Background(), truth, s.URL); err != nil || !slices.Equal(mismatchFields(c), []string{FieldTalk}) {
		t.Fatalf("err %v, mismatches %+v", err, c)
	}
}

// quickSettle makes Compare give up waiting for missing records at once (the mismatch
// tests miss records on purpose); it returns the undo.
func quickSettle() func() {
	old := RecordsSettle
	RecordsSettle = 0
	return func() { RecordsSettle = old }
}
