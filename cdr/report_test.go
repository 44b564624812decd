package cdr

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

var cst = time.FixedZone("CST", 8*3600)

// at is a time on the scenario's day, 2026-03-15, in Beijing time.
func at(h, m, s int) time.Time { return time.Date(2026, 3, 15, h, m, s, 0, cst) }

const sec = time.Second

// queued builds an inbound call that waited wait in queue q after 10 s of
// IVR; if agent is set it was answered and lasted talk + hold.
func queued(id, q string, enq time.Time, wait time.Duration, agent string, talk, hold, wrap time.Duration, disp Disposition) Record {
	r := Record{
		ID: id, Direction: DirectionInbound, Caller: "1390000" + id, Called: "12345",
		Start: enq.Add(-10 * sec), Answer: enq.Add(-10 * sec), IVRPath: "main>1",
		Queue: q, EnqueueTime: enq, Disposition: disp, HangupSide: "caller",
	}
	if agent != "" {
		r.Agent, r.Connect = agent, enq.Add(wait)
		r.Talk, r.Hold, r.WrapUp = talk, hold, wrap
		r.End = r.Connect.Add(talk + hold)
		r.RingAttempts = 1
	} else {
		r.End = enq.Add(wait)
	}
	return r
}

// scenario is the hand-built day of the ground-truth test.
func scenario() ([]Record, []AgentEvent) {
	c1 := queued("c01", "consult", at(9, 0, 10), 8*sec, "1001", 120*sec, 10*sec, 30*sec, DispositionAnswered)
	c1.Satisfaction = SatisfactionSatisfied
	c2 := queued("c02", "consult", at(9, 5, 0), 14*sec, "1002", 200*sec, 0, 20*sec, DispositionAnswered)
	c2.Satisfaction, c2.RingAttempts = SatisfactionBasicallySatisfied, 3                                 // 1003 did not answer twice
	c3 := queued("c03", "consult", at(9, 10, 0), 15*sec, "1001", 60*sec, 0, 10*sec, DispositionAnswered) // exactly at T
	c4 := queued("c04", "complaint", at(9, 15, 0), 18*sec, "1003", 300*sec, 20*sec, 40*sec, DispositionAnswered)
	c4.Satisfaction = SatisfactionDissatisfied
	c5 := queued("c05", "consult", at(9, 20, 0), 40*sec, "1002", 100*sec, 0, 20*sec, DispositionAnswered)
	c5.Transfers = 1 // transferred on to another agent
	c6 := queued("c06", "consult", at(9, 30, 0), 25*sec, "", 0, 0, 0, DispositionAbandoned)
	c7 := queued("c07", "consult", at(9, 31, 0), 3*sec, "", 0, 0, 0, DispositionAbandonedShort)
	c8 := queued("c08", "complaint", at(9, 32, 0), 62*sec, "", 0, 0, 0, DispositionAbandoned)
	c9 := queued("c09", "consult", at(9, 40, 0), 300*sec, "", 0, 0, 0, DispositionTimeout)
	c16 := queued("c16", "consult", at(9, 50, 0), 50*sec, "", 0, 0, 0, DispositionCallback)
	c10 := Record{ID: "c10", Direction: DirectionInbound, Start: at(10, 0, 0), End: at(10, 0, 30), Disposition: DispositionIVRHangup}
	c11 := Record{ID: "c11", Direction: DirectionInbound, Start: at(2, 0, 0), End: at(2, 0, 20), Disposition: DispositionClosedHours}
	c12 := Record{ID: "c12", Direction: DirectionInbound, Start: at(11, 0, 0), End: at(11, 0, 0), Disposition: DispositionFailed, SIPStatus: 403}
	c13 := Record{ID: "c13", Direction: DirectionCallback, Start: at(14, 0, 0), Answer: at(14, 0, 20), End: at(14, 3, 0),
		Agent: "1001", Connect: at(14, 0, 0), Disposition: DispositionAnswered}
	c14 := Record{ID: "c14", Direction: DirectionSurvey, Start: at(14, 30, 0), Answer: at(14, 30, 5), End: at(14, 31, 0),
		Disposition: DispositionAnswered, SurveyAnswers: "1", Satisfaction: SatisfactionSatisfied}
	c15 := queued("c15", "consult", at(9, 0, 0).AddDate(0, 0, -1), 5*sec, "1001", 60*sec, 0, 0, DispositionAnswered) // the day before
	recs := []Record{c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15, c16}

	ev := func(id string, t time.Time, agent, event string) AgentEvent {
		return AgentEvent{ID: id, Time: t, AgentID: agent, Event: event}
	}
	evs := []AgentEvent{
		ev("e01", at(8, 0, 0), "1001", EventLogin),
		ev("e02", at(12, 0, 0), "1001", EventPause),
		ev("e03", at(13, 0, 0), "1001", EventUnpause),
		ev("e04", at(17, 0, 0), "1001", EventLogout),
		ev("e05", at(20, 0, 0).AddDate(0, 0, -1), "1002", EventLogin), // logged in overnight
		ev("e06", at(18, 0, 0), "1002", EventLogout),
		ev("e07", at(8, 30, 0), "1003", EventLogin), // never logs out: until the window ends
		ev("e08", at(10, 0, 0), "1003", EventPause), // never unpauses
		ev("e09", at(9, 5, 2), "1003", EventRingNoAnswer),
		ev("e10", at(9, 5, 8), "1003", EventRingNoAnswer),
		{ID: "e11", Time: at(9, 5, 14), CallID: "c02", Queue: "consult", AgentID: "1002", Event: EventConnect, Data1: "14"},
	}
	return recs, evs
}

func scenarioOptions() ReportOptions {
	return ReportOptions{
		From: at(0, 0, 0), To: at(0, 0, 0).AddDate(0, 0, 1), Location: cst,
		QueueServiceLevel: map[string]time.Duration{"complaint": 20 * sec},
	}
}

func TestReportGroundTruth(t *testing.T) {
	recs, evs := scenario()
	rep := Compute(recs, evs, scenarioOptions())
	tot := rep.Total
	want := Summary{
		Calls: 15, Offered: 10, Answered: 5, Abandoned: 3, ShortAbandoned: 1, TimedOut: 1, CallbackRequests: 1,
		IVROnly: 2, Failed: 1, Callbacks: 1, SurveyCalls: 1, Transfers: 1,
		AnswerRate: 0.5, AbandonRate: 0.3, AnswerRateExclShort: 5.0 / 9, AbandonRateExclShort: 2.0 / 9,
		ASA:          19 * sec,  // (8 + 14 + 15 + 18 + 40) / 5
		AHT:          186 * sec, // (160 + 220 + 70 + 360 + 120) / 5
		AvgTalk:      156 * sec, // 780 / 5
		AvgHold:      6 * sec,   // 30 / 5
		AvgWrapUp:    24 * sec,  // 120 / 5
		LongestWait:  300 * sec,
		WaitAnswered: 95 * sec, Talk: 780 * sec, Hold: 30 * sec, WrapUp: 120 * sec,
		AnsweredWithinSL: 4, ServiceLevelOffered: 0.4, ServiceLevelAnswered: 0.8, // complaint's T is 20 s: c04 (18 s) is within
		AnsweredWithin15s: 3,
		Surveys:           4, Satisfied: 2, BasicallySatisfied: 1, Dissatisfied: 1, Satisfaction: 0.75,
		//                  ≤5 ≤10 ≤15 ≤20 ≤30 ≤60 ≤120 ≤300 >300
		WaitHistAnswered:  []int{0, 1, 2, 1, 0, 1, 0, 0, 0},
		WaitHistAbandoned: []int{1, 0, 0, 0, 1, 0, 1, 0, 0},
	}
	if !reflect.DeepEqual(tot, want) {
		t.Errorf("total:\n got  %+v\n want %+v", tot, want)
	}
	gbt := GBT33358{AnsweredWithin15s: 0.6, ConnectionRate: 0.5, Target: 0.95}
	if rep.GBT != gbt {
		t.Errorf("GB/T 33358: got %+v, want %+v", rep.GBT, gbt)
	}

	h := func(d int) time.Duration { return time.Duration(d) * time.Hour }
	agents := []AgentStats{
		{Agent: "1001", Calls: 2, Talk: 180 * sec, Hold: 10 * sec, WrapUp: 40 * sec, AHT: 115 * sec,
			LoggedIn: h(9), Paused: h(1), Occupancy: 230.0 / (8 * 3600)},
		{Agent: "1002", Calls: 2, Talk: 300 * sec, WrapUp: 40 * sec, AHT: 170 * sec, Transfers: 1,
			LoggedIn: h(18), Occupancy: 340.0 / (18 * 3600)},
		{Agent: "1003", Calls: 1, Talk: 300 * sec, Hold: 20 * sec, WrapUp: 40 * sec, AHT: 360 * sec, RingNoAnswer: 2,
			LoggedIn: h(15) + h(1)/2, Paused: h(14), Occupancy: 360.0 / (1.5 * 3600)},
	}
	if !reflect.DeepEqual(rep.Agents, agents) {
		t.Errorf("agents:\n got  %+v\n want %+v", rep.Agents, agents)
	}

	// Queues and hours partition the offered calls.
	byKey := func(ss []Summary) map[string]Summary {
		m := map[string]Summary{}
		for _, s := range ss {
			m[s.Key] = s
		}
		return m
	}
	q := byKey(rep.Queues)
	if len(q) != 2 || q["consult"].Offered != 8 || q["consult"].Answered != 4 || q["complaint"].Offered != 2 ||
		q["complaint"].Abandoned != 1 || q["complaint"].AHT != 360*sec || q["consult"].ASA != (8+14+15+40)*sec/4 {
		t.Errorf("queues: %+v", rep.Queues)
	}
	hr := byKey(rep.Hours)
	if len(hr) != 5 || hr["2026-03-15 09:00"].Offered != 10 || hr["2026-03-15 02:00"].IVROnly != 1 ||
		hr["2026-03-15 14:00"].Callbacks != 1 || hr["2026-03-15 11:00"].Failed != 1 {
		t.Errorf("hours: %+v", rep.Hours)
	}
	if rep.Groups != nil {
		t.Errorf("groups without By: %+v", rep.Groups)
	}
	if !rep.From.Equal(at(0, 0, 0)) || !rep.To.Equal(at(24, 0, 0)) || rep.ServiceLevel != DefaultServiceLevel || rep.ShortAbandon != DefaultShortAbandon {
		t.Errorf("report header: %v %v %v %v", rep.From, rep.To, rep.ServiceLevel, rep.ShortAbandon)
	}
}

func TestReportOptions(t *testing.T) {
	recs, evs := scenario()
	tests := []struct {
		name  string
		opts  func(o *ReportOptions)
		check func(r Report) string
	}{
		{"queue filter", func(o *ReportOptions) { o.Queue = "complaint" }, func(r Report) string {
			if r.Total.Offered != 2 || r.Total.Answered != 1 || r.Total.Calls != 2 || len(r.Agents) != 3 || r.Agents[0].Calls != 0 {
				return fmt.Sprintf("%+v %+v", r.Total, r.Agents)
			}
			return ""
		}},
		{"short abandon 30s", func(o *ReportOptions) { o.ShortAbandon = 30 * sec }, func(r Report) string {
			if r.Total.ShortAbandoned != 2 {
				return fmt.Sprint(r.Total.ShortAbandoned)
			}
			return ""
		}},
		{"service level 10s", func(o *ReportOptions) { o.ServiceLevel = 10 * sec; o.QueueServiceLevel = nil }, func(r Report) string {
			if r.Total.AnsweredWithinSL != 1 || r.GBT.AnsweredWithin15s != 0.6 {
				return fmt.Sprint(r.Total.AnsweredWithinSL, r.GBT)
			}
			return ""
		}},
		{"by queue", func(o *ReportOptions) { o.By = ByQueue }, func(r Report) string {
			if len(r.Groups) != 2 || r.Groups[0].Key != "complaint" || r.Groups[1].Offered != 8 {
				return fmt.Sprintf("%+v", r.Groups)
			}
			return ""
		}},
		{"by day", func(o *ReportOptions) { o.By = ByDay; o.From = o.From.AddDate(0, 0, -1) }, func(r Report) string {
			if len(r.Groups) != 2 || r.Groups[0].Key != "2026-03-14" || r.Groups[0].Answered != 1 || r.Groups[1].Calls != 15 {
				return fmt.Sprintf("%+v", r.Groups)
			}
			return ""
		}},
		{"by hour", func(o *ReportOptions) { o.By = ByHour }, func(r Report) string {
			if !reflect.DeepEqual(r.Groups, r.Hours) {
				return "groups differ from hours"
			}
			return ""
		}},
		{"by agent", func(o *ReportOptions) { o.By = ByAgent }, func(r Report) string {
			if len(r.Groups) != 4 || r.Groups[0].Key != "" || r.Groups[1].Key != "1001" || r.Groups[1].Answered != 2 || r.Groups[1].AHT != 115*sec {
				return fmt.Sprintf("%+v", r.Groups)
			}
			return ""
		}},
		{"open window", func(o *ReportOptions) { o.From, o.To = time.Time{}, time.Time{} }, func(r Report) string {
			if r.Total.Calls != 16 || !r.From.Equal(recs[14].Start) || !r.To.Equal(at(14, 31, 0)) {
				return fmt.Sprint(r.Total.Calls, r.From, r.To)
			}
			return ""
		}},
		{"empty window", func(o *ReportOptions) { o.From = at(23, 0, 0) }, func(r Report) string {
			if r.Total.Calls != 0 || r.Total.AnswerRate != 0 || r.Total.ASA != 0 || r.GBT.ConnectionRateMet {
				return fmt.Sprintf("%+v", r.Total)
			}
			return ""
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := scenarioOptions()
			tt.opts(&o)
			if msg := tt.check(Compute(recs, evs, o)); msg != "" {
				t.Fatal(msg)
			}
		})
	}
}

// TestReportOrderAndMerge: the report does not depend on input order, and
// accumulators of a split input merge into the same report.
func TestReportOrderAndMerge(t *testing.T) {
	recs := syntheticCalls(5000, at(0, 0, 0), 1)
	evs := syntheticAgentEvents(at(0, 0, 0))
	opts := scenarioOptions()
	opts.By = ByHour
	want := Compute(recs, evs, opts)
	rng := rand.New(rand.NewPCG(1, 2))
	shuffled := append([]Record(nil), recs...)
	rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	rng.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
	if got := Compute(shuffled, evs, opts); !reflect.DeepEqual(got, want) {
		t.Fatal("report depends on input order")
	}
	var accs []*accumulator
	for i := range 3 {
		a := newAccumulator(opts)
		for j := i; j < len(shuffled); j += 3 {
			a.add(&shuffled[j])
		}
		accs = append(accs, a)
	}
	accs[0].merge(accs[1])
	accs[0].merge(accs[2])
	if got := accs[0].finish(evs); !reflect.DeepEqual(got, want) {
		t.Fatalf("merged report differs:\n got  %+v\n want %+v", got.Total, want.Total)
	}
	if want.Total.Offered == 0 || want.Total.Answered == 0 || want.Total.Abandoned == 0 {
		t.Fatalf("synthetic calls are too uniform: %+v", want.Total)
	}
}

// TestReportFromStore: the store path gives exactly Compute's report.
func TestReportFromStore(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		recs, evs := scenario()
		more := syntheticCalls(3000, at(0, 0, 0), 7)
		recs = append(recs, more...)
		if err := s.Upsert(ctx, recs); err != nil {
			t.Fatal(err)
		}
		if err := s.AppendEvents(ctx, evs); err != nil {
			t.Fatal(err)
		}
		for _, by := range []GroupBy{ByNone, ByHour, ByQueue} {
			opts := scenarioOptions()
			opts.By = by
			// Stored times come back in UTC: compare the figures.
			want := Compute(recs, evs, opts)
			got, err := ReportFromStore(ctx, s, opts)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Total, want.Total) || !reflect.DeepEqual(got.Agents, want.Agents) ||
				!reflect.DeepEqual(got.Groups, want.Groups) || !reflect.DeepEqual(got.Hours, want.Hours) ||
				got.GBT != want.GBT {
				t.Fatalf("by %q: store report differs:\n got  %+v\n want %+v", by, got.Total, want.Total)
			}
		}
		// A queue filter and an open window take the single-scan path.
		opts := ReportOptions{Queue: "complaint", Location: cst}
		want := Compute(recs, evs, opts)
		got, err := ReportFromStore(ctx, s, opts)
		if err != nil || !reflect.DeepEqual(got.Total, want.Total) {
			t.Fatalf("queue, open window: %v\n got  %+v\n want %+v", err, got.Total, want.Total)
		}
	})
}

// syntheticCalls makes n calls spread over the day after day0: most
// answered after random waits, some abandoned, some IVR-only, a few
// callbacks and surveys, agents 1001-1050, queues consult, complaint and
// business.
func syntheticCalls(n int, day0 time.Time, seed uint64) []Record {
	rng := rand.New(rand.NewPCG(seed, 99))
	queues := []string{"consult", "complaint", "business"}
	sats := []string{SatisfactionSatisfied, SatisfactionBasicallySatisfied, SatisfactionDissatisfied, "", "", ""}
	out := make([]Record, n)
	for i := range out {
		start := day0.Add(time.Duration(rng.Int64N(int64(24 * time.Hour))))
		start = start.Truncate(time.Microsecond)
		r := Record{
			ID: fmt.Sprintf("syn-%d-%08d", seed, i), SIPCallID: fmt.Sprintf("%d@10.0.0.1", i),
			Direction: DirectionInbound, Trunk: "carrier", Caller: fmt.Sprintf("138%08d", rng.IntN(1e8)), Called: "12345",
			Start: start, Answer: start.Add(time.Second), IVRPath: "main>1", NodeID: "node-1", Codec: "PCMA", SIPStatus: 200,
		}
		switch p := rng.IntN(100); {
		case p < 5:
			r.Disposition, r.End = DispositionIVRHangup, start.Add(20*time.Second)
		case p < 7:
			r.Direction, r.Disposition, r.End = DirectionSurvey, DispositionAnswered, start.Add(time.Minute)
			r.Satisfaction = sats[rng.IntN(3)]
		case p < 8:
			r.Direction, r.Disposition, r.End = DirectionCallback, DispositionAnswered, start.Add(2*time.Minute)
		default:
			r.Queue = queues[rng.IntN(len(queues))]
			r.EnqueueTime = start.Add(8 * time.Second)
			wait := time.Duration(rng.Int64N(int64(90 * time.Second))).Truncate(time.Microsecond)
			if p < 20 {
				r.Disposition, r.End = DispositionAbandoned, r.EnqueueTime.Add(wait)
			} else {
				r.Disposition = DispositionAnswered
				r.Agent = fmt.Sprint(1001 + rng.IntN(50))
				r.Connect = r.EnqueueTime.Add(wait)
				r.Talk = time.Duration(30+rng.IntN(600)) * time.Second
				r.Hold = time.Duration(rng.IntN(3)) * 10 * time.Second
				r.WrapUp = time.Duration(rng.IntN(60)) * time.Second
				r.End = r.Connect.Add(r.Talk + r.Hold)
				r.RingAttempts = 1 + rng.IntN(2)
				r.Transfers = rng.IntN(10) / 9
				r.Satisfaction = sats[rng.IntN(len(sats))]
			}
		}
		out[i] = r
	}
	return out
}

// syntheticAgentEvents logs agents 1001-1050 in for a shift with a lunch
// pause.
func syntheticAgentEvents(day0 time.Time) []AgentEvent {
	var out []AgentEvent
	for a := 1001; a <= 1050; a++ {
		id := fmt.Sprint(a)
		in := day0.Add(time.Duration(a%3) * 8 * time.Hour)
		for i, e := range []struct {
			d  time.Duration
			ev string
		}{{0, EventLogin}, {4 * time.Hour, EventPause}, {5 * time.Hour, EventUnpause}, {8 * time.Hour, EventLogout}} {
			out = append(out, AgentEvent{ID: fmt.Sprintf("%s-%d", id, i), Time: in.Add(e.d), AgentID: id, Event: e.ev})
		}
	}
	return out
}
