package cdr

import (
	"cmp"
	"slices"
)

// Outbound is the outbound side of a report (云回访): the survey and callback
// records of the window (Record.Direction survey or callback) and the
// in-queue callback requests of its inbound records. None of it counts in
// the inbound figures (Report.Total's offered, answered, rates, waits and
// ratings), which are those of inbound records only; Summary.Callbacks and
// Summary.SurveyCalls only count the outbound records apart.
//
// An outbound call is answered (reached) when its disposition is
// DispositionAnswered: the citizen picked up. A case is a record's Target
// (the campaign target's case id); records without a Target (a virtual
// hold callback) count as calls but belong to no case.
//
// Every figure is over the records whose Start is in the window (and that
// pass the queue filter, which survey calls, having no queue, do not): a
// case whose attempts span several windows counts in each with the records
// there. JSON: the object "outbound" of the report.
type Outbound struct {
	Surveys      SurveyStats   `json:"surveys"`
	Callbacks    CallbackStats `json:"callbacks"`
	VirtualHold  VirtualHold   `json:"virtual_hold"`
	CallbackRate CallbackRate  `json:"callback_rate"`
}

// SurveyStats are the survey calls (Direction survey): the machine's
// attempts of a campaign. The ratings (inline in JSON) are the survey
// answers of the records (Record.Satisfaction), with the denominators of
// Ratings: satisfaction = (satisfied + basically satisfied) / rated,
// satisfied_rate = satisfied / rated, rated_share = rated / asked (an
// answered survey call that got no valid key is not_rated).
type SurveyStats struct {
	Dialled        int                 `json:"dialled"`         // survey records (attempts)
	Answered       int                 `json:"answered"`        // of them answered (the citizen picked up)
	Targets        int                 `json:"targets"`         // distinct Target among the survey records
	TargetsReached int                 `json:"targets_reached"` // distinct Target with an answered survey record
	ByDisposition  map[Disposition]int `json:"by_disposition"`  // records by disposition
	Ratings
}

// CallbackStats are the callback calls (Direction callback): the human
// callback tasks of campaigns (with a Target) and the callbacks of
// in-queue callback requests (with a Parent, see VirtualHold).
type CallbackStats struct {
	Made          int                 `json:"made"`           // callback records
	Reached       int                 `json:"reached"`        // of them answered
	ByDisposition map[Disposition]int `json:"by_disposition"` // records by disposition
}

// VirtualHold are the in-queue callbacks (virtual hold): Requested are the
// inbound records that left the queue asking to be called back
// (DispositionCallback, Summary.CallbackRequests); Made the callback
// records that return such a request (those with a Parent, a part of
// CallbackStats.Made) and Reached those of them answered.
type VirtualHold struct {
	Requested int `json:"requested"`
	Made      int `json:"made"`
	Reached   int `json:"reached"`
}

// CallbackRate (回访率) counts the cases (distinct Target) of the survey and
// callback records: Reached if a record of the case was answered, by the
// machine (a survey record) or by a human (a callback record; a case may
// be both); HumanTried if a human was given the case (it has a callback
// record, whatever its outcome). ReachedOrTried (件件有回音: every case either
// reached or handed to a human who tried) is the cases reached or tried.
// Rates are over Cases, 0 without cases.
//
// Deadlines are not in the records: the cases reached within their
// callback deadline (24 h after closure by default) are the campaign's
// figures (its targets' deadlines and reached times, GET
// /api/v1/campaigns/{id}), not the report's.
type CallbackRate struct {
	Cases              int     `json:"cases"`
	Reached            int     `json:"reached"`
	ReachedByMachine   int     `json:"reached_by_machine"`
	ReachedByHuman     int     `json:"reached_by_human"`
	HumanTried         int     `json:"human_tried"`
	ReachedOrTried     int     `json:"reached_or_tried"`
	ReachedRate        float64 `json:"reached_rate"`          // 回访率: Reached / Cases
	ReachedOrTriedRate float64 `json:"reached_or_tried_rate"` // 件件有回音: ReachedOrTried / Cases
}

// Calls is the number of outbound records: survey and callback calls. The
// text and HTML forms show the outbound section only when it is not 0.
func (o *Outbound) Calls() int { return o.Surveys.Dialled + o.Callbacks.Made }

// caseFlags say what the records of one case (Target) show.
type caseFlags uint8

const (
	caseSurvey           caseFlags = 1 << iota // a survey record
	caseSurveyAnswered                         // an answered survey record
	caseCallback                               // a callback record
	caseCallbackAnswered                       // an answered callback record
)

// outboundAccumulator gathers the Outbound figures record by record;
// accumulators of disjoint record sets merge.
type outboundAccumulator struct {
	out   Outbound
	cases map[string]caseFlags
}

// add counts r, a record in the window.
func (a *outboundAccumulator) add(r *Record) {
	answered := r.Disposition == DispositionAnswered
	var seen, reached caseFlags
	switch r.Direction {
	case DirectionSurvey:
		s := &a.out.Surveys
		s.Dialled++
		s.ByDisposition = countDisposition(s.ByDisposition, r.Disposition, 1)
		s.Ratings.add(r.Satisfaction)
		seen, reached = caseSurvey, caseSurveyAnswered
	case DirectionCallback:
		c := &a.out.Callbacks
		c.Made++
		c.ByDisposition = countDisposition(c.ByDisposition, r.Disposition, 1)
		if r.Parent != "" {
			a.out.VirtualHold.Made++
			if answered {
				a.out.VirtualHold.Reached++
			}
		}
		seen, reached = caseCallback, caseCallbackAnswered
	default:
		if r.Inbound() && r.Disposition == DispositionCallback {
			a.out.VirtualHold.Requested++
		}
		return
	}
	if answered {
		if r.Direction == DirectionSurvey {
			a.out.Surveys.Answered++
		} else {
			a.out.Callbacks.Reached++
		}
	}
	if r.Target == "" {
		return
	}
	if a.cases == nil {
		a.cases = map[string]caseFlags{}
	}
	f := a.cases[r.Target] | seen
	if answered {
		f |= reached
	}
	a.cases[r.Target] = f
}

func countDisposition(m map[Disposition]int, d Disposition, n int) map[Disposition]int {
	if m == nil {
		m = map[Disposition]int{}
	}
	m[d] += n
	return m
}

// merge adds the records of o (a disjoint set) into a.
func (a *outboundAccumulator) merge(o *outboundAccumulator) {
	s, os := &a.out.Surveys, &o.out.Surveys
	s.Dialled += os.Dialled
	s.Answered += os.Answered
	s.Ratings.merge(&os.Ratings)
	for d, n := range os.ByDisposition {
		s.ByDisposition = countDisposition(s.ByDisposition, d, n)
	}
	c, oc := &a.out.Callbacks, &o.out.Callbacks
	c.Made += oc.Made
	c.Reached += oc.Reached
	for d, n := range oc.ByDisposition {
		c.ByDisposition = countDisposition(c.ByDisposition, d, n)
	}
	v, ov := &a.out.VirtualHold, &o.out.VirtualHold
	v.Requested += ov.Requested
	v.Made += ov.Made
	v.Reached += ov.Reached
	for t, f := range o.cases {
		if a.cases == nil {
			a.cases = map[string]caseFlags{}
		}
		a.cases[t] |= f
	}
}

// finish computes the per-case figures and the rates.
func (a *outboundAccumulator) finish() Outbound {
	out := a.out
	s := &out.Surveys
	if s.ByDisposition == nil {
		s.ByDisposition = map[Disposition]int{}
	}
	if out.Callbacks.ByDisposition == nil {
		out.Callbacks.ByDisposition = map[Disposition]int{}
	}
	s.Ratings.finalize()
	cr := &out.CallbackRate
	for _, f := range a.cases {
		cr.Cases++
		if f&caseSurvey != 0 {
			s.Targets++
		}
		if f&caseSurveyAnswered != 0 {
			s.TargetsReached++
			cr.ReachedByMachine++
		}
		if f&caseCallbackAnswered != 0 {
			cr.ReachedByHuman++
		}
		if f&caseCallback != 0 {
			cr.HumanTried++
		}
		reached := f&(caseSurveyAnswered|caseCallbackAnswered) != 0
		if reached {
			cr.Reached++
		}
		if reached || f&caseCallback != 0 {
			cr.ReachedOrTried++
		}
	}
	cr.ReachedRate = ratio(cr.Reached, cr.Cases)
	cr.ReachedOrTriedRate = ratio(cr.ReachedOrTried, cr.Cases)
	return out
}

// outboundDispositions are the outcomes of an outbound call, in the order
// the text and HTML forms show them; any other disposition shows as other.
var outboundDispositions = []Disposition{DispositionAnswered, DispositionBusy, DispositionNoAnswer,
	DispositionInvalidNumber, DispositionFailed, DispositionInterrupted}

// dispositionCounts lists the non-zero counts of m in the order of
// outboundDispositions, then the others in the order of Dispositions (then
// by name).
func dispositionCounts(m map[Disposition]int) []dispositionCount {
	rank := func(d Disposition) int {
		if i := slices.Index(outboundDispositions, d); i >= 0 {
			return i
		}
		if i := slices.Index(Dispositions, d); i >= 0 {
			return len(outboundDispositions) + i
		}
		return len(outboundDispositions) + len(Dispositions)
	}
	var out []dispositionCount
	for d, n := range m {
		if n != 0 {
			out = append(out, dispositionCount{d, n})
		}
	}
	slices.SortFunc(out, func(x, y dispositionCount) int {
		return cmp.Or(cmp.Compare(rank(x.D), rank(y.D)), cmp.Compare(x.D, y.D))
	})
	return out
}

type dispositionCount struct {
	D Disposition
	N int
}
