package cdr

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

// outbound builds an outbound record: a survey or callback call to a
// citizen for target (case) at attempt, started at start, ended with disp
// (answered calls last a minute).
func outbound(id, dir, target string, attempt int, start time.Time, disp Disposition, sat string) Record {
	r := Record{
		ID: id, Direction: dir, Trunk: "loopback-out", Caller: "12345", Called: "1390000" + id,
		Start: start, End: start.Add(30 * sec), Disposition: disp, HangupSide: "system", SIPStatus: 486,
		Campaign: "cmp-1", Attempt: attempt, Target: target, CaseNumber: target, Satisfaction: sat,
	}
	if disp == DispositionAnswered {
		r.Answer, r.End, r.SIPStatus = start.Add(5*sec), start.Add(time.Minute), 200
	}
	return r
}

// outboundScenario is a day of a campaign over cases A-G with human
// fallbacks, and two in-queue callback requests (virtual hold) returned.
//
//	A: survey busy, then answered (satisfied)       reached by machine
//	B: survey answered (dissatisfied); human answered  by machine and by human
//	C: survey no-answer twice; human no-answer, then answered   by human
//	D: survey invalid number; human failed          tried by a human, not reached
//	E: survey answered, no key (not rated)          by machine
//	F: survey answered (basically satisfied)        by machine
//	G: survey no-answer (retry pending)             neither
func outboundScenario() (inbound, out []Record) {
	i1 := queued("i1", "consult", at(9, 0, 0), 10*sec, "1001", 60*sec, 0, 5*sec, DispositionAnswered)
	i1.Satisfaction = SatisfactionSatisfied
	i2 := queued("i2", "consult", at(9, 5, 0), 20*sec, "", 0, 0, 0, DispositionAbandoned)
	i3 := queued("i3", "consult", at(9, 10, 0), 30*sec, "", 0, 0, 0, DispositionCallback)
	i4 := queued("i4", "consult", at(9, 15, 0), 40*sec, "", 0, 0, 0, DispositionCallback)
	i4.Direction = "" // a record from before directions: inbound
	inbound = []Record{i1, i2, i3, i4}

	s, c := DirectionSurvey, DirectionCallback
	out = []Record{
		outbound("s1", s, "A", 1, at(10, 0, 0), DispositionBusy, ""),
		outbound("s2", s, "A", 2, at(11, 0, 0), DispositionAnswered, SatisfactionSatisfied),
		outbound("s3", s, "B", 1, at(10, 1, 0), DispositionAnswered, SatisfactionDissatisfied),
		outbound("s4", s, "C", 1, at(10, 2, 0), DispositionNoAnswer, ""),
		outbound("s5", s, "C", 2, at(11, 2, 0), DispositionNoAnswer, ""),
		outbound("s6", s, "D", 1, at(10, 3, 0), DispositionInvalidNumber, ""),
		outbound("s7", s, "E", 1, at(10, 4, 0), DispositionAnswered, SatisfactionNotRated),
		outbound("s8", s, "F", 1, at(10, 5, 0), DispositionAnswered, SatisfactionBasicallySatisfied),
		outbound("s9", s, "G", 1, at(10, 6, 0), DispositionNoAnswer, ""),
		outbound("k1", c, "B", 1, at(13, 0, 0), DispositionAnswered, ""),
		outbound("k2", c, "C", 1, at(13, 5, 0), DispositionNoAnswer, ""),
		outbound("k3", c, "C", 2, at(15, 5, 0), DispositionAnswered, ""),
		outbound("k4", c, "D", 1, at(13, 10, 0), DispositionFailed, ""),
		outbound("k5", c, "", 0, at(9, 20, 0), DispositionAnswered, ""),
		outbound("k6", c, "", 0, at(9, 25, 0), DispositionNoAnswer, ""),
		// The day before: not in the window.
		outbound("s0", s, "H", 1, at(10, 0, 0).AddDate(0, 0, -1), DispositionAnswered, SatisfactionSatisfied),
	}
	// The human callbacks went through the callback queue to an agent:
	// they have a queue, an enqueue time, an agent and a connect, and are
	// still not offered inbound calls.
	for i := range out {
		r := &out[i]
		if r.Direction == DirectionCallback {
			r.Queue, r.EnqueueTime, r.Agent, r.Connect = "callback", r.Start, "1002", r.Start.Add(3*sec)
			r.Talk = 40 * sec
		}
	}
	out[13].Parent, out[14].Parent = i3.ID, i4.ID // k5, k6 return i3's and i4's requests
	out[13].Campaign, out[14].Campaign = "", ""
	return inbound, out
}

// wantOutbound is outboundScenario's Outbound, by hand.
func wantOutbound() Outbound {
	return Outbound{
		Surveys: SurveyStats{
			Dialled: 9, Answered: 4, // s2, s3, s7, s8
			Targets: 7, TargetsReached: 4, // A-G; A, B, E, F
			ByDisposition: map[Disposition]int{DispositionAnswered: 4, DispositionBusy: 1, DispositionNoAnswer: 3, DispositionInvalidNumber: 1},
			// s2 satisfied, s3 dissatisfied, s7 not rated, s8 basically.
			Ratings: Ratings{RatingsAsked: 4, Rated: 3, NotRated: 1, Satisfied: 1, BasicallySatisfied: 1, Dissatisfied: 1,
				RatedShare: 0.75, SatisfiedRate: 1.0 / 3, BasicallySatisfiedRate: 1.0 / 3, DissatisfiedRate: 1.0 / 3, Satisfaction: 2.0 / 3},
		},
		Callbacks: CallbackStats{Made: 6, Reached: 3, // k1, k3, k5
			ByDisposition: map[Disposition]int{DispositionAnswered: 3, DispositionNoAnswer: 2, DispositionFailed: 1}},
		VirtualHold: VirtualHold{Requested: 2, Made: 2, Reached: 1}, // i3, i4; k5, k6; k5
		CallbackRate: CallbackRate{Cases: 7, Reached: 5, ReachedByMachine: 4, ReachedByHuman: 2, HumanTried: 3, ReachedOrTried: 6,
			ReachedRate: 5.0 / 7, ReachedOrTriedRate: 6.0 / 7},
	}
}

func outboundOptions() ReportOptions {
	return ReportOptions{From: at(0, 0, 0), To: at(24, 0, 0), Location: cst}
}

// TestReportOutbound: the outbound figures of a mixed day, by hand; the
// inbound figures are those of the inbound records alone.
func TestReportOutbound(t *testing.T) {
	in, out := outboundScenario()
	rep := Compute(append(in, out...), nil, outboundOptions())
	if want := wantOutbound(); !reflect.DeepEqual(rep.Outbound, want) {
		t.Errorf("outbound:\n got  %+v\n want %+v", rep.Outbound, want)
	}
	tot := rep.Total
	if tot.Offered != 4 || tot.Answered != 1 || tot.Abandoned != 1 || tot.CallbackRequests != 2 || tot.AnswerRate != 0.25 ||
		tot.ASA != 10*sec || tot.AvgTalk != 60*sec || tot.LongestWait != 40*sec || tot.IVROnly != 0 || tot.Failed != 0 ||
		tot.Rated != 1 || tot.Satisfied != 1 || tot.RatingsAsked != 1 || tot.Calls != 19 || tot.SurveyCalls != 9 || tot.Callbacks != 6 {
		t.Errorf("inbound total: %+v", tot)
	}
	// Without inbound records: no request, and the same outbound figures
	// otherwise.
	only := Compute(out, nil, outboundOptions())
	want := wantOutbound()
	want.VirtualHold.Requested = 0
	if !reflect.DeepEqual(only.Outbound, want) {
		t.Errorf("outbound records only:\n got  %+v\n want %+v", only.Outbound, want)
	}
	if only.Total.Offered != 0 || only.Total.RatingsAsked != 0 || only.GBT.ConnectionRate != 0 {
		t.Errorf("outbound records made inbound figures: %+v", only.Total)
	}
	// No records: zero figures, empty (not nil) disposition maps.
	none := Compute(nil, nil, outboundOptions()).Outbound
	if none.Calls() != 0 || none.Surveys.ByDisposition == nil || none.Callbacks.ByDisposition == nil || none.CallbackRate != (CallbackRate{}) {
		t.Errorf("no records: %+v", none)
	}
}

// TestReportOutboundLeavesInboundAlone: adding survey and callback records
// (some with a queue, an agent and a satisfaction) to the ground-truth day
// changes none of its inbound figures, per call, queue, agent or hour.
func TestReportOutboundLeavesInboundAlone(t *testing.T) {
	recs, evs := scenario()
	var inbound []Record
	for _, r := range recs {
		if r.Inbound() {
			inbound = append(inbound, r)
		}
	}
	_, out := outboundScenario()
	base := Compute(inbound, evs, scenarioOptions())
	mixed := Compute(append(append([]Record{}, recs...), out...), evs, scenarioOptions())
	strip := func(s Summary) Summary {
		s.Calls, s.Callbacks, s.SurveyCalls = 0, 0, 0
		return s
	}
	if got, want := strip(mixed.Total), strip(base.Total); !reflect.DeepEqual(got, want) {
		t.Errorf("total:\n got  %+v\n want %+v", got, want)
	}
	if mixed.GBT != base.GBT || !reflect.DeepEqual(mixed.Queues, base.Queues) || !reflect.DeepEqual(mixed.Agents, base.Agents) {
		t.Errorf("GB/T, queues or agents changed:\n got  %+v\n want %+v", mixed.GBT, base.GBT)
	}
	hours := map[string]Summary{}
	for _, h := range base.Hours {
		hours[h.Key] = strip(h)
	}
	for _, h := range mixed.Hours {
		want, ok := hours[h.Key]
		if !ok { // an hour of outbound calls only
			want = Summary{Key: h.Key, WaitHistAnswered: make([]int, 9), WaitHistAbandoned: make([]int, 9)}
		}
		if got := strip(h); !reflect.DeepEqual(got, want) {
			t.Errorf("hour %s:\n got  %+v\n want %+v", h.Key, got, want)
		}
	}
	// The scenario's own outbound records: c14 a survey answered
	// (satisfied) without a target, c13 a callback answered.
	o := Compute(recs, evs, scenarioOptions()).Outbound
	if o.Surveys.Dialled != 1 || o.Surveys.Satisfied != 1 || o.Callbacks.Reached != 1 || o.VirtualHold.Requested != 1 || o.CallbackRate.Cases != 0 {
		t.Errorf("scenario outbound: %+v", o)
	}
}

// TestReportOutboundMerge: accumulators of a split input (a case's
// attempts in different parts) merge into the figures of the whole.
func TestReportOutboundMerge(t *testing.T) {
	in, out := outboundScenario()
	all := append(in, out...)
	opts := outboundOptions()
	a, b := newAccumulator(opts), newAccumulator(opts)
	for i := range all {
		if i%2 == 0 {
			a.add(&all[i])
		} else {
			b.add(&all[i])
		}
	}
	a.merge(b)
	if got := a.finish(newEventAccumulator(opts)).Outbound; !reflect.DeepEqual(got, wantOutbound()) {
		t.Errorf("merged:\n got  %+v\n want %+v", got, wantOutbound())
	}
}

// TestReportOutboundFromStore: ReportFromStore (the SQLite report scan,
// PostgreSQL's Scan, the window split in parts) gives Compute's figures.
func TestReportOutboundFromStore(t *testing.T) {
	in, out := outboundScenario()
	all := append(in, out...)
	eachStore(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		if err := s.Upsert(ctx, all); err != nil {
			t.Fatal(err)
		}
		rep, err := ReportFromStore(ctx, s, outboundOptions())
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(rep.Outbound, wantOutbound()) {
			t.Errorf("from the store:\n got  %+v\n want %+v", rep.Outbound, wantOutbound())
		}
		if want := Compute(all, nil, outboundOptions()); !reflect.DeepEqual(rep.Total, want.Total) {
			t.Errorf("total:\n got  %+v\n want %+v", rep.Total, want.Total)
		}
	})
}

// TestReportOutboundFormats: the text and HTML forms show the outbound
// section with its figures only when the window has outbound records; the
// JSON has it under its documented names.
func TestReportOutboundFormats(t *testing.T) {
	in, out := outboundScenario()
	rep := Compute(append(in, out...), nil, outboundOptions())
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, re := range []string{
		`\nOutbound 外呼 \(云回访; not in the inbound figures above\)\n`,
		`Survey calls 回访 +9 +answered 4; cases 7, reached 4; answered 4, busy 1, no-answer 3, invalid-number 1\n`,
		`Survey satisfaction +66\.7% +\(satisfied 1 \+ basically satisfied 1\) / 3 rated; 满意率 33\.3%, 基本满意率 33\.3%, 不满意率 33\.3%; not rated 1 of 4 asked\n`,
		`Callback calls 回拨 +6 +reached \(answered\) 3; answered 3, no-answer 2, failed 1\n`,
		`Virtual hold 预约回拨 +2 +requested; callbacks made 2, reached 1\n`,
		`Callback rate 回访率 +71\.4% +5 of 7 cases reached \(by machine 4, by human 2\); a human tried 3\n`,
		`件件有回音 +85\.7% +6 of 7 cases reached or tried by a human`,
		// Inbound: the outbound calls are not "not offered" calls.
		`Not offered +0 +ended in the IVR 0, gave up before answer 0, refused 0\n`,
	} {
		if !regexp.MustCompile(re).MatchString(text.String()) {
			t.Errorf("text lacks %s:\n%s", re, text.String())
		}
	}
	var html bytes.Buffer
	if err := rep.WriteHTML(&html); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`<div class="l">回访率 Callback rate</div><div class="v">71.4%</div><div class="n">已接通案件 reached 5 / 案件 cases 7；机器 by machine 4 · 人工 by human 2</div>`,
		`<div class="l">件件有回音 Every case answered</div><div class="v">85.7%</div>`,
		`<div class="l">回访满意度 Survey satisfaction</div><div class="v">66.7%</div>`,
		`<div class="l">预约回拨 Virtual hold</div><div class="v">2</div><div class="n">申请 requested；已回拨 made 2，接通 reached 1</div>`,
		// calls, answered, busy, no answer, invalid, failed, interrupted, other
		`<tr><td>回访 Survey calls</td><td>9</td><td>4</td><td>1</td><td>3</td><td>1</td><td>0</td><td>0</td><td>0</td></tr>`,
		`<tr><td>回拨 Callback calls</td><td>6</td><td>3</td><td>0</td><td>2</td><td>0</td><td>1</td><td>0</td><td>0</td></tr>`,
		`<tr><td>回访 survey calls</td><td>4</td><td>3</td><td>75.0%</td><td>1</td><td>1</td><td>1</td><td>1</td><td>33.3%</td><td>33.3%</td><td>33.3%</td><td>66.7%</td></tr>`,
		// The inbound satisfaction is the inbound call i1's alone.
		`<tr><td>全部来电 all calls</td><td>1</td><td>1</td><td>100.0%</td><td>0</td><td>1</td><td>0</td><td>0</td>`,
	} {
		if !strings.Contains(html.String(), want) {
			t.Errorf("HTML lacks %s", want)
		}
	}

	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var m struct {
		Outbound struct {
			Surveys      map[string]any     `json:"surveys"`
			Callbacks    map[string]any     `json:"callbacks"`
			VirtualHold  map[string]float64 `json:"virtual_hold"`
			CallbackRate map[string]float64 `json:"callback_rate"`
		} `json:"outbound"`
	}
	if err := json.Unmarshal(js.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	o := m.Outbound
	for k, v := range map[string]any{"dialled": 9.0, "answered": 4.0, "targets": 7.0, "targets_reached": 4.0, "rated": 3.0,
		"not_rated": 1.0, "satisfied": 1.0, "basically_satisfied": 1.0, "dissatisfied": 1.0, "satisfaction": 2.0 / 3,
		"by_disposition": map[string]any{"answered": 4.0, "busy": 1.0, "no-answer": 3.0, "invalid-number": 1.0}} {
		if !reflect.DeepEqual(o.Surveys[k], v) {
			t.Errorf("outbound.surveys.%s = %v, want %v", k, o.Surveys[k], v)
		}
	}
	if o.Callbacks["made"] != 6.0 || o.Callbacks["reached"] != 3.0 ||
		!reflect.DeepEqual(o.VirtualHold, map[string]float64{"requested": 2, "made": 2, "reached": 1}) ||
		!reflect.DeepEqual(o.CallbackRate, map[string]float64{"cases": 7, "reached": 5, "reached_by_machine": 4, "reached_by_human": 2,
			"human_tried": 3, "reached_or_tried": 6, "reached_rate": 5.0 / 7, "reached_or_tried_rate": 6.0 / 7}) {
		t.Errorf("outbound JSON: %+v", o)
	}

	// Inbound records only: no outbound section.
	inOnly := Compute(in, nil, outboundOptions())
	text.Reset()
	html.Reset()
	if err := inOnly.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if err := inOnly.WriteHTML(&html); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(text.String(), "Outbound") || strings.Contains(html.String(), "Outbound") || strings.Contains(html.String(), "回访率") {
		t.Errorf("an outbound section without outbound records:\n%s", text.String())
	}
}
