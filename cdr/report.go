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
	// EventLookahead is how far after To the store path reads events, to
	// see how the queue visits that began in the window ended (answered,
	// abandoned, ...) and the talk, hold and wrap-up of their agents.
	EventLookahead = 2 * time.Hour
	// DefaultTimeZone is the zone of reports without one (DESIGN.md: the
	// top-level timezone: of the config, default Asia/Shanghai).
	DefaultTimeZone = "Asia/Shanghai"
)

// DefaultLocation is DefaultTimeZone, or China Standard Time (UTC+8, no
// daylight saving since 1991) where the system has no zone database.
func DefaultLocation() *time.Location {
	if loc, err := time.LoadLocation(DefaultTimeZone); err == nil {
		return loc
	}
	return time.FixedZone("CST", 8*3600)
}

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
	From, To time.Time // window on Record.Start (and ENTERQUEUE for visits): From inclusive, To exclusive; zero is open
	// Queue keeps the calls that entered this queue (first or later: see
	// Record.VisitedQueue) and that queue's visits; agent time is not per
	// queue.
	Queue    string
	By       GroupBy
	Location *time.Location // for hour and day buckets; default DefaultLocation()

	ServiceLevel      time.Duration            // default threshold T, DefaultServiceLevel
	QueueServiceLevel map[string]time.Duration // per-queue T, overriding ServiceLevel
	ShortAbandon      time.Duration            // DefaultShortAbandon
	WaitBuckets       []time.Duration          // DefaultWaitBuckets
}

func (o *ReportOptions) defaults() {
	if o.Location == nil {
		o.Location = DefaultLocation()
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

// Summary holds the figures of a set of calls, or of queue visits. Counts
// are exact; rates are fractions (0.95 = 95%) and 0 when their denominator
// is 0.
//
// Two units, as the industry counts them (docs/ARCHITECTURE.md, "KPI
// definitions"):
//
//   - Per call, from the call records: Report.Total (the hotline-wide and
//     GB/T 33358 figures), Hours and the hour, day and agent groups. A call
//     is offered if it entered any queue (Record.Queue, its first queue);
//     its wait runs from its first enqueue to its first connect; it counts
//     once however many queues it visited. Offered = Answered + Abandoned +
//     TimedOut + NoAgent + ExitKey + CallbackRequests + OtherUnanswered.
//     Calls never offered are IVROnly, CallerCancelled or Failed. Only
//     inbound records (Record.Inbound) count in these figures and in the
//     ratings; callback and survey calls (outbound) are only counted apart
//     (Calls, Callbacks, SurveyCalls), their figures in Report.Outbound.
//   - Per queue visit, from the queue events (Report.Queues and the queue
//     groups), as Asterisk's queue_log reporting and the live ACD
//     (/api/v1/queues) count: ENTERQUEUE opens a visit and makes it
//     offered to that queue, whether the call came in, overflowed in or was
//     transferred in; it ends answered (CONNECT; wait = that visit's
//     wait), Abandoned (ABANDON), TimedOut (EXITWITHTIMEOUT), NoAgent
//     (EXITEMPTY), ExitKey (EXITWITHKEY) or Overflowed (OVERFLOW: offered,
//     neither answered nor abandoned). A visit whose end is not in the log
//     (the node died) is OtherUnanswered. Offered = Answered + Abandoned +
//     TimedOut + NoAgent + ExitKey + Overflowed + OtherUnanswered. Talk,
//     hold, wrap-up and transfers are those of the visit's agent
//     (COMPLETECALLER, COMPLETEAGENT, TRANSFER, UNHOLD, WRAPUPEND);
//     the ratings are the RATING events of the visit's agent (see Ratings).
type Summary struct {
	Key string `json:"key,omitempty"` // group key: "2026-03-15 09:00", "2026-03-15", a queue or an agent

	Calls            int `json:"calls"`             // every record (or visit) in the selection, outbound ones included
	Offered          int `json:"offered"`           // entered a queue
	Answered         int `json:"answered"`          // connected to an agent
	Abandoned        int `json:"abandoned"`         // hung up while queued, short abandons included
	ShortAbandoned   int `json:"short_abandoned"`   // abandoned within ShortAbandon
	TimedOut         int `json:"timed_out"`         // left the queue at its maximum wait
	NoAgent          int `json:"no_agent"`          // queue had no agent (refused, or emptied)
	ExitKey          int `json:"exit_key"`          // left the queue with its exit digit
	CallbackRequests int `json:"callback_requests"` // left the queue asking for a callback
	Overflowed       int `json:"overflowed"`        // per queue: overflowed out to another queue
	OtherUnanswered  int `json:"other_unanswered"`  // e.g. dropped while queued (drain, crash)
	IVROnly          int `json:"ivr_only"`          // answered by the IVR, ended there (incl. closed hours)
	CallerCancelled  int `json:"caller_cancelled"`  // the caller gave up before we answered
	Failed           int `json:"failed"`            // we refused or could not answer
	Callbacks        int `json:"callbacks"`         // outbound callback calls (not in the figures above: see Report.Outbound)
	SurveyCalls      int `json:"survey_calls"`      // outbound survey calls (idem)
	Transfers        int `json:"transfers"`

	AnswerRate           float64 `json:"answer_rate"`             // Answered / Offered
	AbandonRate          float64 `json:"abandon_rate"`            // Abandoned / Offered
	AnswerRateExclShort  float64 `json:"answer_rate_excl_short"`  // Answered / (Offered - ShortAbandoned)
	AbandonRateExclShort float64 `json:"abandon_rate_excl_short"` // (Abandoned - ShortAbandoned) / (Offered - ShortAbandoned)

	ASA         time.Duration `json:"asa_s"`          // mean wait of answered calls (visits)
	AHT         time.Duration `json:"aht_s"`          // mean Talk + Hold + WrapUp of answered calls (visits)
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

	// Ratings: per call from the records (total, hours, days), per visit
	// from the RATING events (queues); inline in JSON.
	Ratings

	// Wait-time distribution over Report.WaitBuckets (one more count for
	// the longer waits): answered calls by their wait, abandoned calls by
	// the time they held on.
	WaitHistAnswered  []int `json:"wait_hist_answered"`
	WaitHistAbandoned []int `json:"wait_hist_abandoned"`
}

// AgentStats are one agent's figures, all from the agent and queue events
// that name the agent: Calls (CONNECT), Talk (COMPLETECALLER,
// COMPLETEAGENT, TRANSFER), Hold (UNHOLD), WrapUp (WRAPUPEND), Transfers
// (TRANSFER), RingNoAnswer (RINGNOANSWER), logged-in and paused time
// (LOGIN, LOGOUT, PAUSE, UNPAUSE), Ratings (RATING: the caller's rating of
// the agent after the agent hung up). A call transferred from one agent to
// another credits each with their own part, and its rating the agent who
// had it last. Calls, talk, hold, wrap-up, transfers and ratings count for
// the window of the queue visit the agent took.
// Occupancy = (Talk + Hold + WrapUp) / (LoggedIn - Paused), 0 if the events
// show no logged-in time.
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
	Ratings                    // inline in JSON
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
	// Outbound: survey and callback calls, virtual hold, 回访率 (records
	// only; see Outbound).
	Outbound Outbound `json:"outbound"`

	loc *time.Location // of Location, for rendering
}

// Compute computes the report of recs and events (both in any order) under
// opts. It is pure: the same input gives the same report. Records outside
// [From, To) or of another queue are ignored; queue visits count if their
// ENTERQUEUE is in the window; agent time is clipped to the window (pass
// events from before From to see logins that began earlier, and after To
// to see how the window's last visits ended).
func Compute(recs []Record, events []AgentEvent, opts ReportOptions) Report {
	a := newAccumulator(opts)
	for i := range recs {
		a.add(&recs[i])
	}
	ev := newEventAccumulator(a.opts)
	evs := slices.Clone(events)
	slices.SortFunc(evs, compareEvents)
	for i := range evs {
		ev.add(&evs[i])
	}
	return a.finish(ev)
}

// accumulator gathers the per-call figures record by record; accumulators
// of disjoint record sets merge.
type accumulator struct {
	opts           ReportOptions
	total          Summary
	groups, hours  map[string]*Summary
	out            outboundAccumulator
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
		groups: map[string]*Summary{}, hours: map[string]*Summary{},
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
	return o.Queue == "" || r.VisitedQueue(o.Queue)
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
	a.out.add(r)
	c := call{r: r}
	c.offered = r.Inbound() && (r.Queue != "" || !r.EnqueueTime.IsZero())
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
	switch a.opts.By {
	case ByHour:
		addCall(group(a.groups, hour), &c, a.opts.WaitBuckets)
	case ByDay:
		addCall(group(a.groups, day), &c, a.opts.WaitBuckets)
	case ByAgent:
		addCall(group(a.groups, r.Agent), &c, a.opts.WaitBuckets)
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

func bucket(bounds []time.Duration, d time.Duration) int {
	i, _ := slices.BinarySearch(bounds, d) // first bound >= d: wait <= bound
	return i
}

func addCall(s *Summary, c *call, bounds []time.Duration) {
	r := c.r
	s.Calls++
	s.hists(bounds)
	if r.Inbound() { // survey answers are Report.Outbound's
		s.Ratings.add(r.Satisfaction)
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
		case DispositionCallerCancelled:
			s.CallerCancelled++
		case DispositionFailed:
			s.Failed++
		default: // ivr-hangup, closed-hours, interrupted in the IVR
			s.IVROnly++
		}
		return
	}
	s.Offered++
	s.Transfers += r.Transfers
	s.LongestWait = max(s.LongestWait, c.wait)
	switch {
	case c.answered:
		s.answered(c.wait, c.withinSL, c.within15, bounds)
		s.Talk += c.talk
		s.Hold += r.Hold
		s.WrapUp += r.WrapUp
	case c.abandoned:
		s.abandoned(c.wait, c.shrt, bounds)
	case r.Disposition == DispositionTimeout:
		s.TimedOut++
	case r.Disposition == DispositionNoAgent:
		s.NoAgent++
	case r.Disposition == DispositionExitKey:
		s.ExitKey++
	case r.Disposition == DispositionCallback:
		s.CallbackRequests++
	default:
		s.OtherUnanswered++
	}
}

// hists makes the wait histograms if s has none yet.
func (s *Summary) hists(bounds []time.Duration) {
	if s.WaitHistAnswered == nil {
		s.WaitHistAnswered = make([]int, len(bounds)+1)
		s.WaitHistAbandoned = make([]int, len(bounds)+1)
	}
}

// answered counts an answered call (or visit) that waited wait.
func (s *Summary) answered(wait time.Duration, withinSL, within15 bool, bounds []time.Duration) {
	s.Answered++
	s.WaitAnswered += wait
	if withinSL {
		s.AnsweredWithinSL++
	}
	if within15 {
		s.AnsweredWithin15s++
	}
	s.WaitHistAnswered[bucket(bounds, wait)]++
}

// abandoned counts an abandoned call (or visit) that held on for wait.
func (s *Summary) abandoned(wait time.Duration, short bool, bounds []time.Duration) {
	s.Abandoned++
	if short {
		s.ShortAbandoned++
	}
	s.WaitHistAbandoned[bucket(bounds, wait)]++
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
	s.ExitKey += o.ExitKey
	s.CallbackRequests += o.CallbackRequests
	s.Overflowed += o.Overflowed
	s.OtherUnanswered += o.OtherUnanswered
	s.IVROnly += o.IVROnly
	s.CallerCancelled += o.CallerCancelled
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
	s.Ratings.merge(&o.Ratings)
	if o.WaitHistAnswered != nil {
		if s.WaitHistAnswered == nil {
			s.WaitHistAnswered = make([]int, len(o.WaitHistAnswered))
			s.WaitHistAbandoned = make([]int, len(o.WaitHistAbandoned))
		}
		for i := range o.WaitHistAnswered {
			s.WaitHistAnswered[i] += o.WaitHistAnswered[i]
			s.WaitHistAbandoned[i] += o.WaitHistAbandoned[i]
		}
	}
}

// merge adds the records of o (a disjoint set, same options) into a.
func (a *accumulator) merge(o *accumulator) {
	a.total.merge(&o.total)
	a.out.merge(&o.out)
	for _, p := range []struct{ dst, src map[string]*Summary }{{a.groups, o.groups}, {a.hours, o.hours}} {
		for k, s := range p.src {
			group(p.dst, k).merge(s)
		}
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
	s.Ratings.finalize()
}

// agentRatings gives the agent groups (keyed by the call's first agent)
// the ratings of the agents' RATING events, as Report.Agents has them: a
// rating is the rated agent's, not the first agent's. An agent rated but
// first on no call gets a group of its own; the group of calls without an
// agent keeps the ratings of its records.
func (a *accumulator) agentRatings(agents []AgentStats) {
	for k, g := range a.groups {
		if k != "" {
			g.Ratings = Ratings{}
		}
	}
	for i := range agents {
		if ag := &agents[i]; ag.RatingsAsked > 0 {
			g := group(a.groups, ag.Agent)
			g.hists(a.opts.WaitBuckets)
			g.Ratings.merge(&ag.Ratings)
		}
	}
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

// finish joins the per-call figures with those of the events (queue
// visits, agents) and computes the report.
func (a *accumulator) finish(ev *eventAccumulator) Report {
	o := a.opts
	from, to := o.From, o.To
	if from.IsZero() {
		from = a.minStart
	}
	if to.IsZero() {
		to = a.maxT
	}
	queues := ev.finish()
	agents := ev.agentStats(from, to)
	if o.By == ByAgent {
		a.agentRatings(agents)
	}

	a.total.hists(o.WaitBuckets)
	a.total.finalize()
	rep := Report{
		From: from, To: to, Location: o.Location.String(), loc: o.Location, Queue: o.Queue, By: o.By,
		ServiceLevel: o.ServiceLevel, ShortAbandon: o.ShortAbandon, WaitBuckets: o.WaitBuckets,
		Total:    a.total,
		Hours:    sortedSummaries(a.hours),
		Queues:   sortedSummaries(queues),
		Agents:   agents,
		Outbound: a.out.finish(),
	}
	switch o.By {
	case ByNone:
	case ByQueue:
		rep.Groups = slices.Clone(rep.Queues)
	default:
		rep.Groups = sortedSummaries(a.groups)
	}
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
