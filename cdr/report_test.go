package cdr

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
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
		Queue: q, EnqueueTime: enq, Disposition: disp, HangupSide: "caller", Visits: q,
	}
	if agent != "" {
		r.Agent, r.Connect = agent, enq.Add(wait)
		r.Talk, r.Hold, r.WrapUp = talk, hold, wrap
		r.End = r.Connect.Add(talk + hold)
		r.RingAttempts = 1
		r.Visits = q + "/" + agent
	} else {
		r.End = enq.Add(wait)
	}
	return r
}

// visitLog is one queue visit as the queue events tell it.
type visitLog struct {
	call, queue      string
	enter            time.Time
	wait             time.Duration
	agent            string // took the call after wait
	talk, hold, wrap time.Duration
	end              string // answered: COMPLETECALLER (default) or TRANSFER; else the exit event
	target           string // of a TRANSFER or an OVERFLOW
	// rating, if set, is the caller's post-call rating of the agent: the
	// agent hangs up (COMPLETEAGENT) and RATING follows ratingDelay later.
	rating string
}

// ratingDelay is when a scripted RATING comes after the agent's hang-up:
// the question, then the caller's key (some wrap-ups end before it).
const ratingDelay = 12 * sec

// events returns the visit's events, as call/ writes them: ENTERQUEUE;
// then CONNECT, HOLD and UNHOLD, COMPLETECALLER or TRANSFER (or
// COMPLETEAGENT and RATING), WRAPUPEND; or the exit event.
func (v visitLog) events() []AgentEvent {
	var out []AgentEvent
	ev := func(t time.Time, name string, data ...string) {
		e := AgentEvent{ID: fmt.Sprintf("%s-%s-%d", v.call, v.queue, len(out)), Time: t, CallID: v.call, Queue: v.queue, Event: name}
		if name != EventEnterQueue && v.agent != "" {
			e.AgentID = v.agent
		}
		d := append(data, "", "", "", "", "")
		e.Data1, e.Data2, e.Data3, e.Data4, e.Data5 = d[0], d[1], d[2], d[3], d[4]
		out = append(out, e)
	}
	fs := FormatSeconds
	ev(v.enter, EventEnterQueue, "", "1390000"+v.call)
	left := v.enter.Add(v.wait)
	if v.agent == "" {
		switch v.end {
		case EventExitWithKey:
			ev(left, v.end, "9", "1", "1", fs(v.wait))
		case EventOverflow:
			ev(left, v.end, v.target, "", fs(v.wait))
		default:
			ev(left, v.end, "1", "1", fs(v.wait))
		}
		return out
	}
	ev(left, EventConnect, fs(v.wait), "agent-leg-"+v.call, "1500")
	if v.hold > 0 {
		ev(left.Add(sec), EventHold)
		ev(left.Add(sec+v.hold), EventUnhold, fs(v.hold))
	}
	end := left.Add(v.talk + v.hold)
	// As the ACD writes them: its talk runs from connect to the end, hold included.
	withHold := fs(v.talk + v.hold)
	switch {
	case v.end == EventTransfer:
		ev(end, EventTransfer, v.target, "", fs(v.wait), withHold, "1")
	case v.rating != "":
		ev(end, EventCompleteAgent, fs(v.wait), withHold, "1")
		ev(end.Add(ratingDelay), EventRating, v.rating)
	default:
		ev(end, EventCompleteCaller, fs(v.wait), withHold, "1")
	}
	ev(end.Add(v.wrap), EventWrapUpEnd, fs(v.wrap))
	return out
}

// logOf is the queue log of a record made by queued (one visit).
func logOf(r Record) []AgentEvent {
	v := visitLog{call: r.ID, queue: r.Queue, enter: r.EnqueueTime, wait: r.Wait(), agent: r.Agent,
		talk: r.Talk, hold: r.Hold, wrap: r.WrapUp, end: EventCompleteCaller, rating: r.Satisfaction}
	switch r.Disposition {
	case DispositionAbandoned:
		v.end = EventAbandon
	case DispositionTimeout:
		v.end = EventExitWithTimeout
	case DispositionExitKey, DispositionCallback:
		v.end = EventExitWithKey
	}
	return v.events()
}

// scenario is the hand-built day of the ground-truth test, with its queue
// and agent events.
func scenario() ([]Record, []AgentEvent) {
	c1 := queued("c01", "consult", at(9, 0, 10), 8*sec, "1001", 120*sec, 10*sec, 30*sec, DispositionAnswered)
	c1.Satisfaction = SatisfactionSatisfied
	c2 := queued("c02", "consult", at(9, 5, 0), 14*sec, "1002", 200*sec, 0, 20*sec, DispositionAnswered)
	c2.Satisfaction, c2.RingAttempts = SatisfactionBasicallySatisfied, 3                                 // 1003 did not answer twice
	c3 := queued("c03", "consult", at(9, 10, 0), 15*sec, "1001", 60*sec, 0, 10*sec, DispositionAnswered) // exactly at T
	c3.Satisfaction = SatisfactionNotRated                                                               // asked; the caller hung up (after 1001's wrap-up ended)
	c4 := queued("c04", "complaint", at(9, 15, 0), 18*sec, "1003", 300*sec, 20*sec, 40*sec, DispositionAnswered)
	c4.Satisfaction = SatisfactionDissatisfied
	// c05: 1002 of consult talks 100 s and transfers the call to complaint,
	// where it waits 10 s and 1004 talks 50 s. The record keeps the first
	// queue and agent; talk and wrap-up are the call's (both agents'). The
	// caller rates 1004 (of complaint), who hung up last.
	c5 := queued("c05", "consult", at(9, 20, 0), 40*sec, "1002", 150*sec, 0, 35*sec, DispositionAnswered)
	c5.Transfers, c5.RingAttempts, c5.Visits = 1, 2, "consult/1002>complaint/1004"
	c5.End, c5.Satisfaction = at(9, 23, 32), SatisfactionSatisfied
	c6 := queued("c06", "consult", at(9, 30, 0), 25*sec, "", 0, 0, 0, DispositionAbandoned)
	c7 := queued("c07", "consult", at(9, 31, 0), 3*sec, "", 0, 0, 0, DispositionAbandoned) // a short abandon
	c8 := queued("c08", "complaint", at(9, 32, 0), 62*sec, "", 0, 0, 0, DispositionAbandoned)
	c9 := queued("c09", "consult", at(9, 40, 0), 300*sec, "", 0, 0, 0, DispositionTimeout)
	c16 := queued("c16", "consult", at(9, 50, 0), 50*sec, "", 0, 0, 0, DispositionCallback)
	// c17: waits 20 s in complaint, overflows to business, where 1006
	// takes it after 1 s: the call waited 21 s, the business visit 1 s.
	c17 := queued("c17", "complaint", at(9, 45, 0), 21*sec, "1006", 90*sec, 0, 10*sec, DispositionAnswered)
	c17.Visits = "complaint>business/1006"
	c19 := queued("c19", "consult", at(9, 55, 0), 12*sec, "", 0, 0, 0, DispositionExitKey)
	c10 := Record{ID: "c10", Direction: DirectionInbound, Start: at(10, 0, 0), End: at(10, 0, 30), Disposition: DispositionIVRHangup}
	c11 := Record{ID: "c11", Direction: DirectionInbound, Start: at(2, 0, 0), End: at(2, 0, 20), Disposition: DispositionClosedHours}
	c12 := Record{ID: "c12", Direction: DirectionInbound, Start: at(11, 0, 0), End: at(11, 0, 0), Disposition: DispositionFailed, SIPStatus: 403}
	c13 := Record{ID: "c13", Direction: DirectionCallback, Start: at(14, 0, 0), Answer: at(14, 0, 20), End: at(14, 3, 0),
		Agent: "1001", Connect: at(14, 0, 0), Disposition: DispositionAnswered}
	c14 := Record{ID: "c14", Direction: DirectionSurvey, Start: at(14, 30, 0), Answer: at(14, 30, 5), End: at(14, 31, 0),
		Disposition: DispositionAnswered, SurveyAnswers: "1", Satisfaction: SatisfactionSatisfied}
	c15 := queued("c15", "consult", at(9, 0, 0).AddDate(0, 0, -1), 5*sec, "1001", 60*sec, 0, 0, DispositionAnswered) // the day before
	c15.Satisfaction = SatisfactionDissatisfied
	c18 := Record{ID: "c18", Direction: DirectionInbound, Start: at(10, 30, 0), End: at(10, 30, 4), Disposition: DispositionCallerCancelled,
		HangupSide: "caller", HangupCause: "CANCEL", SIPStatus: 487} // gave up while the IVR was being set up
	recs := []Record{c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15, c16, c17, c18, c19}

	var evs []AgentEvent
	for _, r := range []Record{c1, c2, c3, c4, c6, c7, c8, c9, c15, c16, c19} {
		evs = append(evs, logOf(r)...)
	}
	evs = append(evs, visitLog{call: "c05", queue: "consult", enter: at(9, 20, 0), wait: 40 * sec, agent: "1002",
		talk: 100 * sec, wrap: 20 * sec, end: EventTransfer, target: "complaint"}.events()...)
	evs = append(evs, visitLog{call: "c05", queue: "complaint", enter: at(9, 22, 20), wait: 10 * sec, agent: "1004",
		talk: 50 * sec, wrap: 15 * sec, rating: SatisfactionSatisfied}.events()...)
	evs = append(evs, visitLog{call: "c17", queue: "complaint", enter: at(9, 45, 0), wait: 20 * sec,
		end: EventOverflow, target: "business"}.events()...)
	evs = append(evs, visitLog{call: "c17", queue: "business", enter: at(9, 45, 20), wait: sec, agent: "1006",
		talk: 90 * sec, wrap: 10 * sec}.events()...)

	ev := func(id string, t time.Time, agent, event string) AgentEvent {
		return AgentEvent{ID: id, Time: t, AgentID: agent, Event: event}
	}
	evs = append(evs,
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
	)
	return recs, evs
}

func scenarioOptions() ReportOptions {
	return ReportOptions{
		From: at(0, 0, 0), To: at(0, 0, 0).AddDate(0, 0, 1), Location: cst,
		QueueServiceLevel: map[string]time.Duration{"complaint": 20 * sec},
	}
}

// TestReportGroundTruth: every figure of a scripted day, computed by hand.
// Totals are per call (records); queues per queue visit (events); agents
// from the events naming them.
func TestReportGroundTruth(t *testing.T) {
	recs, evs := scenario()
	rep := Compute(recs, evs, scenarioOptions())
	tot := rep.Total
	want := Summary{
		// c01-c14 and c16-c19 (c15 is the day before).
		Calls: 18, Offered: 12, Answered: 6, Abandoned: 3, ShortAbandoned: 1, TimedOut: 1, ExitKey: 1, CallbackRequests: 1,
		IVROnly: 2, CallerCancelled: 1, Failed: 1, Callbacks: 1, SurveyCalls: 1, Transfers: 1,
		AnswerRate: 0.5, AbandonRate: 0.25, AnswerRateExclShort: 6.0 / 11, AbandonRateExclShort: 2.0 / 11,
		ASA:          116 * sec / 6,  // (8 + 14 + 15 + 18 + 40 + 21) / 6: c17 waited 21 s from its first enqueue
		AHT:          1095 * sec / 6, // talk 920 + hold 30 + wrap-up 145
		AvgTalk:      920 * sec / 6,  // 120 + 200 + 60 + 300 + 150 + 90
		AvgHold:      5 * sec,        // 30 / 6
		AvgWrapUp:    145 * sec / 6,  // 30 + 20 + 10 + 40 + 35 + 10
		LongestWait:  300 * sec,
		WaitAnswered: 116 * sec, Talk: 920 * sec, Hold: 30 * sec, WrapUp: 145 * sec,
		// Each call at its first queue's T (complaint 20 s): c01, c02, c03
		// and c04 (18 s); not c05 (40 s) nor c17 (21 s).
		AnsweredWithinSL: 4, ServiceLevelOffered: 4.0 / 12, ServiceLevelAnswered: 4.0 / 6,
		AnsweredWithin15s: 3,
		// Per inbound call: c01 satisfied, c02 basically, c03 not rated,
		// c04 dissatisfied, c05 satisfied; not c14, a survey call (its
		// answer is in Report.Outbound).
		Ratings: Ratings{RatingsAsked: 5, Rated: 4, NotRated: 1, Satisfied: 2, BasicallySatisfied: 1, Dissatisfied: 1,
			RatedShare: 0.8, SatisfiedRate: 0.5, BasicallySatisfiedRate: 0.25, DissatisfiedRate: 0.25, Satisfaction: 0.75},
		//                  ≤5 ≤10 ≤15 ≤20 ≤30 ≤60 ≤120 ≤300 >300
		WaitHistAnswered:  []int{0, 1, 2, 1, 1, 1, 0, 0, 0},
		WaitHistAbandoned: []int{1, 0, 0, 0, 1, 0, 1, 0, 0},
	}
	if !reflect.DeepEqual(tot, want) {
		t.Errorf("total:\n got  %+v\n want %+v", tot, want)
	}
	gbt := GBT33358{AnsweredWithin15s: 0.5, ConnectionRate: 0.5, Target: 0.95}
	if rep.GBT != gbt {
		t.Errorf("GB/T 33358: got %+v, want %+v", rep.GBT, gbt)
	}

	// Queues, per visit: c05 is offered to consult and (transferred in) to
	// complaint; c17 to complaint (overflowed out) and business.
	queues := []Summary{
		{Key: "business", Calls: 1, Offered: 1, Answered: 1,
			AnswerRate: 1, AnswerRateExclShort: 1,
			ASA: sec, AHT: 100 * sec, AvgTalk: 90 * sec, AvgWrapUp: 10 * sec, LongestWait: sec,
			WaitAnswered: sec, Talk: 90 * sec, WrapUp: 10 * sec,
			AnsweredWithinSL: 1, ServiceLevelOffered: 1, ServiceLevelAnswered: 1, AnsweredWithin15s: 1,
			WaitHistAnswered: []int{1, 0, 0, 0, 0, 0, 0, 0, 0}, WaitHistAbandoned: make([]int, 9)},
		{Key: "complaint", Calls: 4, Offered: 4, Answered: 2, Abandoned: 1, Overflowed: 1,
			AnswerRate: 0.5, AbandonRate: 0.25, AnswerRateExclShort: 0.5, AbandonRateExclShort: 0.25,
			ASA: 14 * sec, AHT: 425 * sec / 2, AvgTalk: 175 * sec, AvgHold: 10 * sec, AvgWrapUp: 55 * sec / 2, LongestWait: 62 * sec,
			WaitAnswered: 28 * sec, Talk: 350 * sec, Hold: 20 * sec, WrapUp: 55 * sec,
			AnsweredWithinSL: 2, ServiceLevelOffered: 0.5, ServiceLevelAnswered: 1, AnsweredWithin15s: 1,
			// c04 dissatisfied with 1003; c05 satisfied with 1004, who
			// took it here after the transfer (its record's first queue
			// is consult).
			Ratings: Ratings{RatingsAsked: 2, Rated: 2, Satisfied: 1, Dissatisfied: 1,
				RatedShare: 1, SatisfiedRate: 0.5, DissatisfiedRate: 0.5, Satisfaction: 0.5},
			WaitHistAnswered: []int{0, 1, 0, 1, 0, 0, 0, 0, 0}, WaitHistAbandoned: []int{0, 0, 0, 0, 0, 0, 1, 0, 0}},
		{Key: "consult", Calls: 9, Offered: 9, Answered: 4, Abandoned: 2, ShortAbandoned: 1, TimedOut: 1, ExitKey: 2, Transfers: 1,
			AnswerRate: 4.0 / 9, AbandonRate: 2.0 / 9, AnswerRateExclShort: 0.5, AbandonRateExclShort: 1.0 / 8,
			ASA: 77 * sec / 4, AHT: 570 * sec / 4, AvgTalk: 120 * sec, AvgHold: 10 * sec / 4, AvgWrapUp: 20 * sec, LongestWait: 300 * sec,
			WaitAnswered: 77 * sec, Talk: 480 * sec, Hold: 10 * sec, WrapUp: 80 * sec,
			AnsweredWithinSL: 3, ServiceLevelOffered: 3.0 / 9, ServiceLevelAnswered: 0.75, AnsweredWithin15s: 3,
			// c01 satisfied, c02 basically, c03 not rated; not c05 (rated
			// in complaint), not c15 (the day before).
			Ratings: Ratings{RatingsAsked: 3, Rated: 2, NotRated: 1, Satisfied: 1, BasicallySatisfied: 1,
				RatedShare: 2.0 / 3, SatisfiedRate: 0.5, BasicallySatisfiedRate: 0.5, Satisfaction: 1},
			WaitHistAnswered: []int{0, 1, 2, 0, 0, 1, 0, 0, 0}, WaitHistAbandoned: []int{1, 0, 0, 0, 1, 0, 0, 0, 0}},
	}
	if !reflect.DeepEqual(rep.Queues, queues) {
		for i := range max(len(rep.Queues), len(queues)) {
			if i >= len(rep.Queues) || i >= len(queues) || !reflect.DeepEqual(rep.Queues[i], queues[i]) {
				t.Errorf("queue %d:\n got  %+v\n want %+v", i, at2(rep.Queues, i), at2(queues, i))
			}
		}
	}

	h := func(d int) time.Duration { return time.Duration(d) * time.Hour }
	agents := []AgentStats{
		// 1001: c01 satisfied, c03 not rated (c15 is the day before).
		{Agent: "1001", Calls: 2, Talk: 180 * sec, Hold: 10 * sec, WrapUp: 40 * sec, AHT: 115 * sec,
			LoggedIn: h(9), Paused: h(1), Occupancy: 230.0 / (8 * 3600),
			Ratings: Ratings{RatingsAsked: 2, Rated: 1, NotRated: 1, Satisfied: 1, RatedShare: 0.5, SatisfiedRate: 1, Satisfaction: 1}},
		// 1002 took c02 and c05; credited with its own part of c05, but
		// not with c05's rating (the caller rated 1004).
		{Agent: "1002", Calls: 2, Talk: 300 * sec, WrapUp: 40 * sec, AHT: 170 * sec, Transfers: 1,
			LoggedIn: h(18), Occupancy: 340.0 / (18 * 3600),
			Ratings: Ratings{RatingsAsked: 1, Rated: 1, BasicallySatisfied: 1, RatedShare: 1, BasicallySatisfiedRate: 1, Satisfaction: 1}},
		{Agent: "1003", Calls: 1, Talk: 300 * sec, Hold: 20 * sec, WrapUp: 40 * sec, AHT: 360 * sec, RingNoAnswer: 2,
			LoggedIn: h(15) + h(1)/2, Paused: h(14), Occupancy: 360.0 / (1.5 * 3600),
			Ratings: Ratings{RatingsAsked: 1, Rated: 1, Dissatisfied: 1, RatedShare: 1, DissatisfiedRate: 1}},
		{Agent: "1004", Calls: 1, Talk: 50 * sec, WrapUp: 15 * sec, AHT: 65 * sec,
			Ratings: Ratings{RatingsAsked: 1, Rated: 1, Satisfied: 1, RatedShare: 1, SatisfiedRate: 1, Satisfaction: 1}},
		{Agent: "1006", Calls: 1, Talk: 90 * sec, WrapUp: 10 * sec, AHT: 100 * sec},
	}
	if !reflect.DeepEqual(rep.Agents, agents) {
		t.Errorf("agents:\n got  %+v\n want %+v", rep.Agents, agents)
	}

	byKey := func(ss []Summary) map[string]Summary {
		m := map[string]Summary{}
		for _, s := range ss {
			m[s.Key] = s
		}
		return m
	}
	hr := byKey(rep.Hours)
	if len(hr) != 5 || hr["2026-03-15 09:00"].Offered != 12 || hr["2026-03-15 02:00"].IVROnly != 1 ||
		hr["2026-03-15 14:00"].Callbacks != 1 || hr["2026-03-15 11:00"].Failed != 1 || hr["2026-03-15 10:00"].CallerCancelled != 1 {
		t.Errorf("hours: %+v", rep.Hours)
	}
	if rep.Groups != nil {
		t.Errorf("groups without By: %+v", rep.Groups)
	}
	if !rep.From.Equal(at(0, 0, 0)) || !rep.To.Equal(at(24, 0, 0)) || rep.ServiceLevel != DefaultServiceLevel || rep.ShortAbandon != DefaultShortAbandon {
		t.Errorf("report header: %v %v %v %v", rep.From, rep.To, rep.ServiceLevel, rep.ShortAbandon)
	}
}

// at2 is ss[i], or a zero Summary past the end.
func at2(ss []Summary, i int) Summary {
	if i < len(ss) {
		return ss[i]
	}
	return Summary{}
}

func TestReportOptions(t *testing.T) {
	recs, evs := scenario()
	tests := []struct {
		name  string
		opts  func(o *ReportOptions)
		check func(r Report) string
	}{
		// The calls that visited complaint (c04, c05 transferred in, c08,
		// c17 first there); the complaint visits; the agents who took them.
		{"queue filter", func(o *ReportOptions) { o.Queue = "complaint" }, func(r Report) string {
			if r.Total.Offered != 4 || r.Total.Answered != 3 || r.Total.Calls != 4 || len(r.Queues) != 1 || r.Queues[0].Offered != 4 ||
				len(r.Agents) != 4 || r.Agents[0].Calls != 0 || r.Agents[3].Agent != "1004" || r.Agents[3].Calls != 1 {
				return fmt.Sprintf("%+v %+v %+v", r.Total, r.Queues, r.Agents)
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
			if r.Total.AnsweredWithinSL != 1 || r.GBT.AnsweredWithin15s != 0.5 {
				return fmt.Sprint(r.Total.AnsweredWithinSL, r.GBT)
			}
			return ""
		}},
		{"by queue", func(o *ReportOptions) { o.By = ByQueue }, func(r Report) string {
			if !reflect.DeepEqual(r.Groups, r.Queues) || len(r.Groups) != 3 || r.Groups[0].Key != "business" || r.Groups[2].Offered != 9 {
				return fmt.Sprintf("%+v", r.Groups)
			}
			return ""
		}},
		{"by day", func(o *ReportOptions) { o.By = ByDay; o.From = o.From.AddDate(0, 0, -1) }, func(r Report) string {
			if len(r.Groups) != 2 || r.Groups[0].Key != "2026-03-14" || r.Groups[0].Answered != 1 || r.Groups[1].Calls != 18 {
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
			// Calls by their first agent, ratings by the agent rated: 1004
			// (rated for c05, first on no call) has a group of ratings
			// only; 1002's holds c02's and not c05's; the calls without an
			// agent have none (the survey call c14's answer is not an
			// inbound rating: see Report.Outbound).
			g := map[string]Summary{}
			for _, s := range r.Groups {
				g[s.Key] = s
			}
			if len(r.Groups) != 6 || r.Groups[0].Key != "" || r.Groups[1].Key != "1001" || r.Groups[1].Answered != 2 || r.Groups[1].AHT != 115*sec ||
				g["1004"].Calls != 0 || g["1004"].Ratings != r.Agents[3].Ratings || g["1002"].Ratings != r.Agents[1].Ratings ||
				g["1001"].Ratings != r.Agents[0].Ratings || g[""].RatingsAsked != 0 || g[""].SurveyCalls != 1 {
				return fmt.Sprintf("%+v", r.Groups)
			}
			return ""
		}},
		{"open window", func(o *ReportOptions) { o.From, o.To = time.Time{}, time.Time{} }, func(r Report) string {
			if r.Total.Calls != 19 || !r.From.Equal(recs[14].Start) || !r.To.Equal(at(14, 31, 0)) {
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
	evs := append(syntheticAgentEvents(at(0, 0, 0)), syntheticQueueEvents(recs)...)
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
	ev := newEventAccumulator(opts)
	slices.SortFunc(evs, func(x, y AgentEvent) int { return cmp.Or(x.Time.Compare(y.Time), cmp.Compare(x.ID, y.ID)) })
	for i := range evs {
		ev.add(&evs[i]) // in time order, as the store gives them
	}
	if got := accs[0].finish(ev); !reflect.DeepEqual(got, want) {
		t.Fatalf("merged report differs:\n got  %+v\n want %+v", got.Total, want.Total)
	}
	if want.Total.Offered == 0 || want.Total.Answered == 0 || want.Total.Abandoned == 0 || len(want.Queues) != 3 || want.Queues[0].Answered == 0 {
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
		evs = append(evs, syntheticQueueEvents(more)...)
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
		if err != nil || !reflect.DeepEqual(got.Total, want.Total) || !reflect.DeepEqual(got.Queues, want.Queues) ||
			!reflect.DeepEqual(got.Agents, want.Agents) {
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
	sats := []string{SatisfactionSatisfied, SatisfactionBasicallySatisfied, SatisfactionDissatisfied, SatisfactionNotRated, "", ""}
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

// syntheticQueueEvents is the queue log of calls made by syntheticCalls.
func syntheticQueueEvents(recs []Record) []AgentEvent {
	var out []AgentEvent
	for _, r := range recs {
		if r.Queue != "" {
			out = append(out, logOf(r)...)
		}
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

// TestReportRatingWindow: a rating counts with the queue visit it rates,
// as that visit's other figures do (entered in the window), not by its own
// time; one whose visit is not in the log counts by its own time.
func TestReportRatingWindow(t *testing.T) {
	day0, day1 := at(0, 0, 0), at(0, 0, 0).AddDate(0, 0, 1)
	// before: entered 40 s before the window, rated in it: not counted.
	before := visitLog{call: "before", queue: "consult", enter: day0.Add(-40 * sec), wait: 5 * sec, agent: "1001",
		talk: 30 * sec, wrap: 5 * sec, rating: SatisfactionDissatisfied}
	// late: entered 30 s before the window ends, rated after it: counted.
	late := visitLog{call: "late", queue: "consult", enter: day1.Add(-30 * sec), wait: 5 * sec, agent: "1002",
		talk: 60 * sec, wrap: 5 * sec, rating: SatisfactionBasicallySatisfied}
	evs := append(before.events(), late.events()...)
	// orphan: a RATING whose visit began before the events read.
	evs = append(evs, AgentEvent{ID: "orphan", Time: at(12, 0, 0), CallID: "orphan", Queue: "complaint", AgentID: "1003",
		Event: EventRating, Data1: SatisfactionNotRated})
	// Its own time outside the window: not counted.
	evs = append(evs, AgentEvent{ID: "orphan2", Time: day1.Add(time.Hour), CallID: "orphan2", Queue: "complaint", AgentID: "1003",
		Event: EventRating, Data1: SatisfactionSatisfied})
	rep := Compute(nil, evs, scenarioOptions())
	got := map[string]Ratings{}
	for _, q := range rep.Queues {
		got["queue "+q.Key] = q.Ratings
	}
	for _, a := range rep.Agents {
		got["agent "+a.Agent] = a.Ratings
	}
	basically := Ratings{RatingsAsked: 1, Rated: 1, BasicallySatisfied: 1, RatedShare: 1, BasicallySatisfiedRate: 1, Satisfaction: 1}
	notRated := Ratings{RatingsAsked: 1, NotRated: 1}
	want := map[string]Ratings{
		"queue consult": basically, "agent 1002": basically,
		"queue complaint": notRated, "agent 1003": notRated,
	} // no 1001: its visit is not in the window
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ratings:\n got  %+v\n want %+v", got, want)
	}
	// With a queue filter, the other queue's ratings do not count.
	o := scenarioOptions()
	o.Queue = "complaint"
	rep = Compute(nil, evs, o)
	if len(rep.Queues) != 1 || rep.Queues[0].Ratings != notRated || len(rep.Agents) != 1 || rep.Agents[0].Agent != "1003" {
		t.Errorf("queue complaint: %+v %+v", rep.Queues, rep.Agents)
	}
}

// TestReportRatingMemory: the visits kept for a RATING that never comes
// (rating off, the caller hung up first) are forgotten after
// ratingLookback, so a long report does not keep every call.
func TestReportRatingMemory(t *testing.T) {
	ev := newEventAccumulator(scenarioOptions())
	var evs []AgentEvent
	for i := range 1000 { // one answered call a minute
		evs = append(evs, visitLog{call: fmt.Sprint("m", i), queue: "consult", enter: at(0, 0, 0).Add(time.Duration(i) * time.Minute),
			wait: sec, agent: "1001", talk: 30 * sec, end: EventCompleteCaller}.events()...)
	}
	slices.SortFunc(evs, compareEvents)
	for i := range evs {
		ev.add(&evs[i])
	}
	ev.finish()
	if n := len(ev.ended); n == 0 || n > int(2*ratingLookback/time.Minute)+1 {
		t.Errorf("%d visits kept for a rating, want at most %d", n, 2*ratingLookback/time.Minute+1)
	}
}
