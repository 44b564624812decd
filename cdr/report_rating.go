package cdr

import "time"

// Ratings are the satisfaction figures of a report line: the post-call
// rating (话务"一次一评") and survey answers. Report.Total and the hour and
// day groups count the inbound calls (Record.Satisfaction: a call asked to
// rate has one of the four Satisfaction values, one not asked none; the
// survey calls' answers are Report.Outbound.Surveys' ratings); the queues
// and agents (and the agent groups) count the RATING events (Queue and
// AgentID the agent rated, Data1 the value), so a transferred call's rating
// is the last agent's and their queue's.
//
// Denominators: RatingsAsked = Rated + NotRated; RatedShare = Rated /
// RatingsAsked; the rates and Satisfaction are over Rated. A rate is 0 when
// its denominator is 0: check Rated (RatingsAsked) before showing one; the
// text, HTML and CSV forms show "—" (an empty cell).
//
// JSON: the fields appear inline in their Summary or AgentStats object.
type Ratings struct {
	RatingsAsked       int `json:"ratings_asked"` // asked to rate: Rated + NotRated
	Rated              int `json:"rated"`         // answered 1, 2 or 3 (was "surveys")
	NotRated           int `json:"not_rated"`     // asked, no valid key (hung up, or the time ran out)
	Satisfied          int `json:"satisfied"`
	BasicallySatisfied int `json:"basically_satisfied"`
	Dissatisfied       int `json:"dissatisfied"`

	RatedShare             float64 `json:"rated_share"`              // 参评率: Rated / RatingsAsked
	SatisfiedRate          float64 `json:"satisfied_rate"`           // 满意率: Satisfied / Rated
	BasicallySatisfiedRate float64 `json:"basically_satisfied_rate"` // 基本满意率: BasicallySatisfied / Rated
	DissatisfiedRate       float64 `json:"dissatisfied_rate"`        // 不满意率: Dissatisfied / Rated
	Satisfaction           float64 `json:"satisfaction"`             // 满意度: (Satisfied + BasicallySatisfied) / Rated
}

// add counts one value of Record.Satisfaction or of a RATING's Data1; an
// empty or unknown value (nobody asked) counts nothing.
func (r *Ratings) add(value string) {
	switch value {
	case SatisfactionSatisfied:
		r.Satisfied++
	case SatisfactionBasicallySatisfied:
		r.BasicallySatisfied++
	case SatisfactionDissatisfied:
		r.Dissatisfied++
	case SatisfactionNotRated:
		r.NotRated++
		r.RatingsAsked++
		return
	default:
		return
	}
	r.Rated++
	r.RatingsAsked++
}

// merge adds o's counts (the rates are computed by finalize).
func (r *Ratings) merge(o *Ratings) {
	r.RatingsAsked += o.RatingsAsked
	r.Rated += o.Rated
	r.NotRated += o.NotRated
	r.Satisfied += o.Satisfied
	r.BasicallySatisfied += o.BasicallySatisfied
	r.Dissatisfied += o.Dissatisfied
}

// finalize computes the rates from the counts.
func (r *Ratings) finalize() {
	r.RatedShare = ratio(r.Rated, r.RatingsAsked)
	r.SatisfiedRate = ratio(r.Satisfied, r.Rated)
	r.BasicallySatisfiedRate = ratio(r.BasicallySatisfied, r.Rated)
	r.DissatisfiedRate = ratio(r.Dissatisfied, r.Rated)
	r.Satisfaction = ratio(r.Satisfied+r.BasicallySatisfied, r.Rated)
}

// ratingLookback is how long after its agent's talk ended a RATING is
// still matched to that queue visit (the question, 8 s to answer, the
// thanks: seconds in practice). A RATING with no visit to match counts by
// its own time and queue.
const ratingLookback = 10 * time.Minute

// ended is a queue visit whose agent's talk ended (COMPLETEAGENT,
// COMPLETECALLER): the visit a RATING of the call is for.
type ended struct {
	v  *visit
	at time.Time
}

// rating credits a RATING event to its queue and agent if the visit it
// rates counts (entered in the window and the queue filter), as the
// visit's other figures do.
func (a *eventAccumulator) rating(e *AgentEvent) {
	counted := a.inWindow(e.Time) && (a.opts.Queue == "" || a.opts.Queue == e.Queue)
	if en, ok := a.ended[e.CallID]; ok && en.v.queue == e.Queue {
		delete(a.ended, e.CallID)
		counted = en.v.counted
	}
	if !counted {
		return
	}
	if e.Queue != "" {
		a.queue(e.Queue).Ratings.add(e.Data1)
	}
	if e.AgentID != "" {
		a.agent(e.AgentID).Ratings.add(e.Data1)
	}
}

// talkEnded remembers v, whose agent's talk ended at t, for a RATING, and
// forgets the visits ended longer than ratingLookback ago (most calls are
// not rated: the map must not keep them all).
func (a *eventAccumulator) talkEnded(callID string, v *visit, t time.Time) {
	a.ended[callID] = ended{v, t}
	if t.Sub(a.endedSwept) < ratingLookback {
		return
	}
	for k, en := range a.ended {
		if t.Sub(en.at) > ratingLookback {
			delete(a.ended, k)
		}
	}
	a.endedSwept = t
}
