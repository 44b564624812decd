package cdr

import (
	"cmp"
	"slices"
	"time"
)

// Report defaults (DESIGN.md, "Metric definitions"; GB/T 33358-2016).
const (
	DefaultServiceLevel = 15 * time.Second // service-level threshold T
	DefaultShortAbandon = 5 * time.Second  // abandons below this are shown apart
	GBTAnswerWithin     = 15 * time.Second // GB/T 33358: answer within 15 s
	GBTTarget           = 0.95             // GB/T 33358: 24 h connection rate ≥ 95%
	// EventLookback is how far before From the store path reads agent
	// events, to find logins and pauses that began before the window.
	EventLookback = 24 * time.Hour
)

// DefaultWaitBuckets are the upper bounds of the wait-time distribution;
// a last bucket takes the longer waits.
var DefaultWaitBuckets = []time.Duration{5 * time.Second, 10 * time.Second, 15 * time.Second, 20 * time.Second,
	30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute}

// GroupBy names the grouping of Report.Groups.
type GroupBy string

// Groupings.
const (
	ByNone  GroupBy = ""
	ByHour  GroupBy = "hour"
	ByDay   GroupBy = "day"
	ByQueue GroupBy = "queue"
	ByAgent GroupBy = "agent"
)

// ReportOptions selects and parameterises a report. Zero values take the
// defaults.
type ReportOptions struct {
	From, To time.Time // window on Record.Start: From inclusive, To exclusive; zero is open
	Queue    string    // only calls of this queue (agent time is not per queue)
	By       GroupBy
	Location *time.Location // for hour and day buckets; default time.Local

	ServiceLevel      time.Duration            // default threshold T, DefaultServiceLevel
	QueueServiceLevel map[string]time.Duration // per-queue T, overriding ServiceLevel
	ShortAbandon      time.Duration            // DefaultShortAbandon
	WaitBuckets       []time.Duration          // DefaultWaitBuckets
}

func (o *ReportOptions) defaults() {
	if o.Location == nil {
		o.Location = time.Local
	}
	if o.ServiceLevel <= 0 {
		o.ServiceLevel = DefaultServiceLevel
	}
	if o.ShortAbandon <= 0 {
		o.ShortAbandon = DefaultShortAbandon
	}
	if len(o.WaitBuckets) == 0 {
		o.WaitBuckets = DefaultWaitBuckets
	}
}

func (o *ReportOptions) threshold(queue string) time.Duration {
	if t, ok := o.QueueServiceLevel[queue]; ok && t > 0 {
		return t
	}
	return o.ServiceLevel
}

// Summary holds the figures of a set of calls. Counts are exact; rates are
// fractions (0.95 = 95%) and 0 when their denominator is 0.
//
// Denominators: an inbound call that entered a queue is offered; one that
// ended before any queue is IVROnly (or Failed if it was refused). Offered
// = Answered + Abandoned + TimedOut + NoAgent + CallbackRequests +
// OtherUnanswered. Callback and survey calls (outbound) are counted apart
// and never offered.
type Summary struct {
	Key string `json:"key,omitempty"` // group key: "2026-03-15 09:00", "2026-03-15", a queue or an agent

	Calls            int `json:"calls"`             // every record in the selection
	Offered          int `json:"offered"`           // entered a queue
	Answered         int `json:"answered"`          // connected to an agent
	Abandoned        int `json:"abandoned"`         // hung up while queued, short abandons included
	ShortAbandoned   int `json:"short_abandoned"`   // abandoned within ShortAbandon
	TimedOut         int `json:"timed_out"`         // left the queue at its maximum wait
	NoAgent          int `json:"no_agent"`          // queue had no agent
	CallbackRequests int `json:"callback_requests"` // left the queue asking for a callback
	OtherUnanswered  int `json:"other_unanswered"`  // e.g. interrupted while queued
	IVROnly          int `json:"ivr_only"`          // ended in the IVR (incl. closed hours)
	Failed           int `json:"failed"`            // refused before the IVR (failed, busy, rejected)
	Callbacks        int `json:"callbacks"`         // outbound callback calls
	SurveyCalls      int `json:"survey_calls"`      // outbound survey calls
	Transfers        int `json:"transfers"`

	AnswerRate           float64 `json:"answer_rate"`             // Answered / Offered
	AbandonRate          float64 `json:"abandon_rate"`            // Abandoned / Offered
	AnswerRateExclShort  float64 `json:"answer_rate_excl_short"`  // Answered / (Offered - ShortAbandoned)
	AbandonRateExclShort float64 `json:"abandon_rate_excl_short"` // (Abandoned - ShortAbandoned) / (Offered - ShortAbandoned)

	ASA         time.Duration `json:"asa_s"`          // mean wait of answered calls (Connect - EnqueueTime)
	AHT         time.Duration `json:"aht_s"`          // mean Talk + Hold + WrapUp of answered calls
	AvgTalk     time.Duration `json:"avg_talk_s"`     // per answered call
	AvgHold     time.Duration `json:"avg_hold_s"`     // per answered call
	AvgWrapUp   time.Duration `json:"avg_wrap_up_s"`  // per answered call
	LongestWait time.Duration `json:"longest_wait_s"` // of all offered calls, answered or not

	WaitAnswered time.Duration `json:"wait_answered_s"` // sums, for merging and exact means
	Talk         time.Duration `json:"talk_s"`
	Hold         time.Duration `json:"hold_s"`
	WrapUp       time.Duration `json:"wrap_up_s"`

	// Service level at each call's queue threshold T: answered within T
	// (wait <= T) over offered (stricter) and over answered (Asterisk's).
	AnsweredWithinSL     int     `json:"answered_within_sl"`
	ServiceLevelOffered  float64 `json:"service_level_offered"`
	ServiceLevelAnswered float64 `json:"service_level_answered"`
	AnsweredWithin15s    int     `json:"answered_within_15s"` // for GB/T 33358

	Surveys            int     `json:"surveys"` // answered surveys: records with a Satisfaction
	Satisfied          int     `json:"satisfied"`
	BasicallySatisfied int     `json:"basically_satisfied"`
	Dissatisfied       int     `json:"dissatisfied"`
	Satisfaction       float64 `json:"satisfaction"` // (Satisfied + BasicallySatisfied) / Surveys

	// Wait-time distribution over Report.WaitBuckets (one more count for
	// the longer waits): answered calls by their wait, abandoned calls by
	// the time they held on.
	WaitHistAnswered  []int `json:"wait_hist_answered"`
	WaitHistAbandoned []int `json:"wait_hist_abandoned"`
}

// AgentStats are one agent's figures. Calls, talk, hold and wrap-up come
// from the records the agent answered (a transferred call counts for the
// agent who answered it); logged-in and paused time and ring-no-answers
// come from agent events. Occupancy = (Talk + Hold + WrapUp) / (LoggedIn -
// Paused), 0 if the events show no logged-in time.
type AgentStats struct {
	Agent        string        `json:"agent"`
	Calls        int           `json:"calls"`
	Talk         time.Duration `json:"talk_s"`
	Hold         time.Duration `json:"hold_s"`
	WrapUp       time.Duration `json:"wrap_up_s"`
	AHT          time.Duration `json:"aht_s"`
	Transfers    int           `json:"transfers"`
	RingNoAnswer int           `json:"ring_no_answer"`
	LoggedIn     time.Duration `json:"logged_in_s"`
	Paused       time.Duration `json:"paused_s"`
	Occupancy    float64       `json:"occupancy"`
}

// GBT33358 states compliance with the national standard for government
// hotlines: answered within 15 s (over answered calls) and the 24 h
// connection rate (接通率, answered over offered, all hours of the window),
// each against Target.
type GBT33358 struct {
	AnsweredWithin15s float64 `json:"answered_within_15s"`
	ConnectionRate    float64 `json:"connection_rate"`
	Target            float64 `json:"target"`
	Within15sMet      bool    `json:"within_15s_met"`
	ConnectionRateMet bool    `json:"connection_rate_met"`
}

// Report is the result of Compute.
type Report struct {
	From         time.Time       `json:"from"` // the window: as asked, or as found in the data
	To           time.Time       `json:"to"`
	Location     string          `json:"location"`
	Queue        string          `json:"queue,omitempty"`
	By           GroupBy         `json:"by,omitempty"`
	ServiceLevel time.Duration   `json:"service_level_s"` // default threshold T
	ShortAbandon time.Duration   `json:"short_abandon_s"`
	WaitBuckets  []time.Duration `json:"wait_buckets_s"`

	Total  Summary      `json:"total"`
	Groups []Summary    `json:"groups,omitempty"` // by By, ordered by key
	Hours  []Summary    `json:"hours"`            // always by hour, for the daily chart
	Queues []Summary    `json:"queues"`           // always by queue
	Agents []AgentStats `json:"agents"`           // ordered by agent
	GBT    GBT33358     `json:"gbt33358"`

	loc *time.Location // of Location, for rendering
}

// Compute computes the report of recs and events (both in any order) under
// opts. It is pure: the same input gives the same report. Records outside
// [From, To) or of another queue are ignored; events are clipped to the
// window (pass events from before From to see logins that began earlier).
func Compute(recs []Record, events []AgentEvent, opts ReportOptions) Report {
	a := newAccumulator(opts)
	for i := range recs {
		a.add(&recs[i])
	}
	return a.finish(events)
}

// accumulator gathers a report record by record; accumulators of disjoint
// record sets merge.
type accumulator struct {
	opts           ReportOptions
	total          Summary
	groups, hours  map[string]*Summary
	queues         map[string]*Summary
	agents         map[string]*AgentStats
	minStart, maxT time.Time
	keyCache       struct {
		from, to  int64 // unix seconds of the cached hour
		hour, day string
	}
}

func newAccumulator(opts ReportOptions) *accumulator {
	opts.defaults()
	return &accumulator{
		opts:   opts,
		groups: map[string]*Summary{}, hours: map[string]*Summary{}, queues: map[string]*Summary{},
		agents: map[string]*AgentStats{},
	}
}

// call is one record classified.
type call struct {
	r                                  *Record
	offered, answered, abandoned, shrt bool
	wait, talk                         time.Duration
	withinSL, within15                 bool
}

func (a *accumulator) inWindow(r *Record) bool {
	o := &a.opts
	if !o.From.IsZero() && r.Start.Before(o.From) || !o.To.IsZero() && !r.Start.Before(o.To) {
		return false
	}
	return o.Queue == "" || r.Queue == o.Queue
}

func (a *accumulator) add(r *Record) {
	if !a.inWindow(r) {
		return
	}
	if a.minStart.IsZero() || r.Start.Before(a.minStart) {
		a.minStart = r.Start
	}
	if r.Start.After(a.maxT) {
		a.maxT = r.Start
	}
	if r.End.After(a.maxT) {
		a.maxT = r.End
	}
	c := call{r: r}
	c.offered = (r.Direction == DirectionInbound || r.Direction == "") && (r.Queue != "" || !r.EnqueueTime.IsZero())
	if c.offered {
		c.wait = r.Wait()
		c.answered = !r.Connect.IsZero()
		if c.answered {
			c.talk = r.AgentTalk()
			c.withinSL = c.wait <= a.opts.threshold(r.Queue)
			c.within15 = c.wait <= GBTAnswerWithin
		} else if r.Disposition == DispositionAbandoned || r.Disposition == DispositionAbandonedShort {
			c.abandoned = true
			c.shrt = c.wait < a.opts.ShortAbandon
		}
	}
	addCall(&a.total, &c, a.opts.WaitBuckets)
	hour, day := a.bucketKeys(r.Start)
	addCall(group(a.hours, hour), &c, a.opts.WaitBuckets)
	if c.offered {
		addCall(group(a.queues, r.Queue), &c, a.opts.WaitBuckets)
	}
	switch a.opts.By {
	case ByHour:
		addCall(group(a.groups, hour), &c, a.opts.WaitBuckets)
	case ByDay:
		addCall(group(a.groups, day), &c, a.opts.WaitBuckets)
	case ByQueue:
		if c.offered {
			addCall(group(a.groups, r.Queue), &c, a.opts.WaitBuckets)
		}
	case ByAgent:
		addCall(group(a.groups, r.Agent), &c, a.opts.WaitBuckets)
	}
	if c.answered && r.Agent != "" {
		ag := a.agent(r.Agent)
		ag.Calls++
		ag.Talk += c.talk
		ag.Hold += r.Hold
		ag.WrapUp += r.WrapUp
		ag.Transfers += r.Transfers
	}
}

// bucketKeys returns the hour and day keys of t, cached for the hour
// (records mostly come in time order).
func (a *accumulator) bucketKeys(t time.Time) (hour, day string) {
	c := &a.keyCache
	if u := t.Unix(); c.day != "" && u >= c.from && u < c.to {
		return c.hour, c.day
	}
	lt := t.In(a.opts.Location)
	h := time.Date(lt.Year(), lt.Month(), lt.Day(), lt.Hour(), 0, 0, 0, a.opts.Location)
	c.from, c.to = h.Unix(), h.Add(time.Hour).Unix()
	c.hour, c.day = h.Format("2006-01-02 15:00"), h.Format("2006-01-02")
	return c.hour, c.day
}

func group(m map[string]*Summary, key string) *Summary {
	s := m[key]
	if s == nil {
		s = &Summary{Key: key}
		m[key] = s
	}
	return s
}

func (a *accumulator) agent(id string) *AgentStats {
	s := a.agents[id]
	if s == nil {
		s = &AgentStats{Agent: id}
		a.agents[id] = s
	}
	return s
}

func bucket(bounds []time.Duration, d time.Duration) int {
	i, _ := slices.BinarySearch(bounds, d) // first bound >= d: wait <= bound
	return i
}

func addCall(s *Summary, c *call, bounds []time.Duration) {
	r := c.r
	s.Calls++
	if s.WaitHistAnswered == nil {
		s.WaitHistAnswered = make([]int, len(bounds)+1)
		s.WaitHistAbandoned = make([]int, len(bounds)+1)
	}
	switch r.Satisfaction {
	case SatisfactionSatisfied:
		s.Surveys++
		s.Satisfied++
	case SatisfactionBasicallySatisfied:
		s.Surveys++
		s.BasicallySatisfied++
	case SatisfactionDissatisfied:
		s.Surveys++
		s.Dissatisfied++
	}
	switch {
	case r.Direction == DirectionCallback:
		s.Callbacks++
		return
	case r.Direction == DirectionSurvey:
		s.SurveyCalls++
		return
	case !c.offered:
		switch r.Disposition {
		case DispositionFailed, "busy", "rejected":
			s.Failed++
		default:
			s.IVROnly++
		}
		return
	}
	s.Offered++
	s.Transfers += r.Transfers
	s.LongestWait = max(s.LongestWait, c.wait)
	switch {
	case c.answered:
		s.Answered++
		s.WaitAnswered += c.wait
		s.Talk += c.talk
		s.Hold += r.Hold
		s.WrapUp += r.WrapUp
		if c.withinSL {
			s.AnsweredWithinSL++
		}
		if c.within15 {
			s.AnsweredWithin15s++
		}
		s.WaitHistAnswered[bucket(bounds, c.wait)]++
	case c.abandoned:
		s.Abandoned++
		if c.shrt {
			s.ShortAbandoned++
		}
		s.WaitHistAbandoned[bucket(bounds, c.wait)]++
	case r.Disposition == DispositionTimeout:
		s.TimedOut++
	case r.Disposition == DispositionNoAgent:
		s.NoAgent++
	case r.Disposition == DispositionCallback:
		s.CallbackRequests++
	default:
		s.OtherUnanswered++
	}
}

// merge adds o's counts and sums into s (rates are computed by finish).
func (s *Summary) merge(o *Summary) {
	s.Calls += o.Calls
	s.Offered += o.Offered
	s.Answered += o.Answered
	s.Abandoned += o.Abandoned
	s.ShortAbandoned += o.ShortAbandoned
	s.TimedOut += o.TimedOut
	s.NoAgent += o.NoAgent
	s.CallbackRequests += o.CallbackRequests
	s.OtherUnanswered += o.OtherUnanswered
	s.IVROnly += o.IVROnly
	s.Failed += o.Failed
	s.Callbacks += o.Callbacks
	s.SurveyCalls += o.SurveyCalls
	s.Transfers += o.Transfers
	s.LongestWait = max(s.LongestWait, o.LongestWait)
	s.WaitAnswered += o.WaitAnswered
	s.Talk += o.Talk
	s.Hold += o.Hold
	s.WrapUp += o.WrapUp
	s.AnsweredWithinSL += o.AnsweredWithinSL
	s.AnsweredWithin15s += o.AnsweredWithin15s
	s.Surveys += o.Surveys
	s.Satisfied += o.Satisfied
	s.BasicallySatisfied += o.BasicallySatisfied
	s.Dissatisfied += o.Dissatisfied
	if s.WaitHistAnswered == nil {
		s.WaitHistAnswered = make([]int, len(o.WaitHistAnswered))
		s.WaitHistAbandoned = make([]int, len(o.WaitHistAbandoned))
	}
	for i := range o.WaitHistAnswered {
		s.WaitHistAnswered[i] += o.WaitHistAnswered[i]
		s.WaitHistAbandoned[i] += o.WaitHistAbandoned[i]
	}
}

// merge adds the records of o (a disjoint set, same options) into a.
func (a *accumulator) merge(o *accumulator) {
	a.total.merge(&o.total)
	for _, p := range []struct{ dst, src map[string]*Summary }{{a.groups, o.groups}, {a.hours, o.hours}, {a.queues, o.queues}} {
		for k, s := range p.src {
			group(p.dst, k).merge(s)
		}
	}
	for k, s := range o.agents {
		ag := a.agent(k)
		ag.Calls += s.Calls
		ag.Talk += s.Talk
		ag.Hold += s.Hold
		ag.WrapUp += s.WrapUp
		ag.Transfers += s.Transfers
	}
	if !o.minStart.IsZero() && (a.minStart.IsZero() || o.minStart.Before(a.minStart)) {
		a.minStart = o.minStart
	}
	if o.maxT.After(a.maxT) {
		a.maxT = o.maxT
	}
}

func ratio(n, d int) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / float64(d)
}

func mean(sum time.Duration, n int) time.Duration {
	if n <= 0 {
		return 0
	}
	return sum / time.Duration(n)
}

// finalize computes the rates and means of s from its counts and sums.
func (s *Summary) finalize() {
	s.AnswerRate = ratio(s.Answered, s.Offered)
	s.AbandonRate = ratio(s.Abandoned, s.Offered)
	s.AnswerRateExclShort = ratio(s.Answered, s.Offered-s.ShortAbandoned)
	s.AbandonRateExclShort = ratio(s.Abandoned-s.ShortAbandoned, s.Offered-s.ShortAbandoned)
	s.ASA = mean(s.WaitAnswered, s.Answered)
	s.AHT = mean(s.Talk+s.Hold+s.WrapUp, s.Answered)
	s.AvgTalk = mean(s.Talk, s.Answered)
	s.AvgHold = mean(s.Hold, s.Answered)
	s.AvgWrapUp = mean(s.WrapUp, s.Answered)
	s.ServiceLevelOffered = ratio(s.AnsweredWithinSL, s.Offered)
	s.ServiceLevelAnswered = ratio(s.AnsweredWithinSL, s.Answered)
	s.Satisfaction = ratio(s.Satisfied+s.BasicallySatisfied, s.Surveys)
}

func sortedSummaries(m map[string]*Summary) []Summary {
	out := make([]Summary, 0, len(m))
	for _, s := range m {
		s.finalize()
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b Summary) int { return cmp.Compare(a.Key, b.Key) })
	return out
}

// finish adds the agent events and computes the report.
func (a *accumulator) finish(events []AgentEvent) Report {
	o := a.opts
	from, to := o.From, o.To
	if from.IsZero() {
		from = a.minStart
	}
	if to.IsZero() {
		to = a.maxT
	}
	a.agentTime(events, from, to)

	a.total.finalize()
	rep := Report{
		From: from, To: to, Location: o.Location.String(), loc: o.Location, Queue: o.Queue, By: o.By,
		ServiceLevel: o.ServiceLevel, ShortAbandon: o.ShortAbandon, WaitBuckets: o.WaitBuckets,
		Total:  a.total,
		Hours:  sortedSummaries(a.hours),
		Queues: sortedSummaries(a.queues),
	}
	if o.By != ByNone {
		rep.Groups = sortedSummaries(a.groups)
	}
	for _, ag := range a.agents {
		ag.AHT = mean(ag.Talk+ag.Hold+ag.WrapUp, ag.Calls)
		if avail := ag.LoggedIn - ag.Paused; avail > 0 {
			ag.Occupancy = float64(ag.Talk+ag.Hold+ag.WrapUp) / float64(avail)
		}
		rep.Agents = append(rep.Agents, *ag)
	}
	slices.SortFunc(rep.Agents, func(x, y AgentStats) int { return cmp.Compare(x.Agent, y.Agent) })
	t := &rep.Total
	rep.GBT = GBT33358{
		AnsweredWithin15s: ratio(t.AnsweredWithin15s, t.Answered),
		ConnectionRate:    t.AnswerRate,
		Target:            GBTTarget,
	}
	rep.GBT.Within15sMet = t.Answered > 0 && rep.GBT.AnsweredWithin15s >= GBTTarget
	rep.GBT.ConnectionRateMet = t.Offered > 0 && rep.GBT.ConnectionRate >= GBTTarget
	return rep
}

// agentTime adds logged-in and paused time, clipped to [from, to), and
// ring-no-answers within it, from the agents' events. An agent whose first
// event in the list is LOGOUT (UNPAUSE) was logged in (paused) since
// before the list began; one still logged in (paused) at the end of the
// list stays so until to.
func (a *accumulator) agentTime(events []AgentEvent, from, to time.Time) {
	if len(events) == 0 {
		return
	}
	evs := slices.Clone(events)
	slices.SortStableFunc(evs, func(x, y AgentEvent) int {
		return cmp.Or(cmp.Compare(x.AgentID, y.AgentID), x.Time.Compare(y.Time), cmp.Compare(x.ID, y.ID))
	})
	// span is the part of [s, e) inside the window; a zero s means "since
	// before the list".
	span := func(s, e time.Time) time.Duration {
		if s.Before(from) {
			s = from
		}
		if e.After(to) {
			e = to
		}
		return max(e.Sub(s), 0)
	}
	var (
		cur                 string
		started, in, paused bool
		inSince, pauseSince time.Time
	)
	addTime := func(logged, pause time.Duration) {
		if logged > 0 || pause > 0 {
			ag := a.agent(cur)
			ag.LoggedIn += logged
			ag.Paused += pause
		}
	}
	closeAgent := func() {
		var l, p time.Duration
		if in {
			l = span(inSince, to)
		}
		if paused {
			p = span(pauseSince, to)
		}
		addTime(l, p)
	}
	for i := range evs {
		e := &evs[i]
		if e.AgentID == "" {
			continue
		}
		if e.AgentID != cur {
			if cur != "" {
				closeAgent()
			}
			cur, started, in, paused = e.AgentID, false, false, false
		}
		switch e.Event {
		case EventLogin:
			if !in {
				in, inSince = true, e.Time
			}
		case EventLogout:
			if !started { // logged in since before the list
				in, inSince = true, time.Time{}
			}
			var l, p time.Duration
			if paused {
				p = span(pauseSince, e.Time)
			}
			if in {
				l = span(inSince, e.Time)
			}
			addTime(l, p)
			in, paused = false, false
		case EventPause:
			if !paused {
				paused, pauseSince = true, e.Time
			}
		case EventUnpause:
			if !started { // paused since before the list
				paused, pauseSince = true, time.Time{}
			}
			if paused {
				addTime(0, span(pauseSince, e.Time))
			}
			paused = false
		case EventRingNoAnswer:
			if !e.Time.Before(from) && e.Time.Before(to) {
				a.agent(cur).RingNoAnswer++
			}
		}
		started = true
	}
	closeAgent()
}
