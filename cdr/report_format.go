package cdr

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Report formats for `hotlined report --format` and the HTTP API. JSON and
// CSV give durations in seconds (fields named *_s); text rounds them.

// WriteJSON writes the report as indented JSON, durations in seconds.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(jsonValue(reflect.ValueOf(r).Elem()))
}

// jsonValue converts v for encoding/json with time.Duration as float
// seconds, following the json tags of structs.
func jsonValue(v reflect.Value) any {
	switch v.Type() {
	case reflect.TypeFor[time.Duration]():
		return time.Duration(v.Int()).Seconds()
	case reflect.TypeFor[time.Time]():
		return v.Interface()
	}
	switch v.Kind() {
	case reflect.Struct:
		m := make(orderedMap, 0, v.NumField())
		for i := range v.NumField() {
			f := v.Type().Field(i)
			name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct { // inline, as encoding/json does
				m = append(m, jsonValue(v.Field(i)).(orderedMap)...)
				continue
			}
			if name == "" {
				name = f.Name
			}
			if strings.Contains(opts, "omitempty") && v.Field(i).IsZero() {
				continue
			}
			m = append(m, kv{name, jsonValue(v.Field(i))})
		}
		return m
	case reflect.Slice:
		if v.IsNil() {
			return []any{}
		}
		out := make([]any, v.Len())
		for i := range out {
			out[i] = jsonValue(v.Index(i))
		}
		return out
	}
	return v.Interface()
}

type kv struct {
	k string
	v any
}

// orderedMap keeps the struct's field order in JSON.
type orderedMap []kv

func (m orderedMap) MarshalJSON() ([]byte, error) {
	var b strings.Builder
	b.WriteByte('{')
	for i, e := range m {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(e.k)
		b.Write(k)
		b.WriteByte(':')
		v, err := json.Marshal(e.v)
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return []byte(b.String()), nil
}

// csvHeader is the column list of WriteCSV.
var csvHeader = []string{"kind", "key", "calls", "offered", "answered", "abandoned", "short_abandoned", "timed_out",
	"no_agent", "exit_key", "callback_requests", "overflowed", "other_unanswered", "ivr_only", "caller_cancelled", "failed",
	"callbacks", "survey_calls", "transfers",
	"answer_rate", "abandon_rate", "answer_rate_excl_short", "abandon_rate_excl_short",
	"asa_s", "aht_s", "avg_talk_s", "avg_hold_s", "avg_wrap_up_s", "longest_wait_s",
	"answered_within_sl", "service_level_offered", "service_level_answered", "answered_within_15s",
	"ratings_asked", "rated", "not_rated", "satisfied", "basically_satisfied", "dissatisfied",
	"rated_share", "satisfied_rate", "basically_satisfied_rate", "dissatisfied_rate", "satisfaction",
	"logged_in_s", "paused_s", "occupancy", "ring_no_answer"}

// WriteCSV writes one row for the total and one per group (per queue if
// the report has no grouping); with --by agent the agent columns
// (logged-in, paused, occupancy, ring-no-answers) are filled in. A rate
// whose denominator is 0 (rated_share: ratings_asked; the satisfaction
// rates: rated) is an empty cell.
func (r *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	_ = cw.Write(csvHeader)
	kind, groups := string(r.By), r.Groups
	if r.By == ByNone {
		kind, groups = "queue", r.Queues
	}
	agents := map[string]AgentStats{}
	if r.By == ByAgent {
		for _, a := range r.Agents {
			agents[a.Agent] = a
		}
	}
	row := func(kind string, s *Summary) []string {
		f := func(x float64) string { return strconv.FormatFloat(x, 'f', 4, 64) }
		d := func(x time.Duration) string { return strconv.FormatFloat(x.Seconds(), 'f', 3, 64) }
		i := strconv.Itoa
		rt := &s.Ratings
		rate := func(x float64, d int) string {
			if d == 0 {
				return ""
			}
			return f(x)
		}
		out := []string{kind, s.Key, i(s.Calls), i(s.Offered), i(s.Answered), i(s.Abandoned), i(s.ShortAbandoned), i(s.TimedOut),
			i(s.NoAgent), i(s.ExitKey), i(s.CallbackRequests), i(s.Overflowed), i(s.OtherUnanswered), i(s.IVROnly), i(s.CallerCancelled), i(s.Failed),
			i(s.Callbacks), i(s.SurveyCalls), i(s.Transfers),
			f(s.AnswerRate), f(s.AbandonRate), f(s.AnswerRateExclShort), f(s.AbandonRateExclShort),
			d(s.ASA), d(s.AHT), d(s.AvgTalk), d(s.AvgHold), d(s.AvgWrapUp), d(s.LongestWait),
			i(s.AnsweredWithinSL), f(s.ServiceLevelOffered), f(s.ServiceLevelAnswered), i(s.AnsweredWithin15s),
			i(rt.RatingsAsked), i(rt.Rated), i(rt.NotRated), i(rt.Satisfied), i(rt.BasicallySatisfied), i(rt.Dissatisfied),
			rate(rt.RatedShare, rt.RatingsAsked), rate(rt.SatisfiedRate, rt.Rated), rate(rt.BasicallySatisfiedRate, rt.Rated),
			rate(rt.DissatisfiedRate, rt.Rated), rate(rt.Satisfaction, rt.Rated),
			"", "", "", ""}
		if a, ok := agents[s.Key]; ok && kind == "agent" {
			n := len(out)
			out[n-4], out[n-3], out[n-2], out[n-1] = d(a.LoggedIn), d(a.Paused), f(a.Occupancy), i(a.RingNoAnswer)
		}
		return out
	}
	total := r.Total
	total.Key = ""
	_ = cw.Write(row("total", &total))
	for i := range groups {
		_ = cw.Write(row(kind, &groups[i]))
	}
	cw.Flush()
	return cw.Error()
}

func pct(x float64) string { return strconv.FormatFloat(100*x, 'f', 1, 64) + "%" }

// noRating is what a rate shows when its denominator is 0 (nothing rated,
// or nobody asked).
const noRating = "—"

// ratePct is x as a percentage, or noRating if its denominator d is 0.
func ratePct(x float64, d int) string {
	if d == 0 {
		return noRating
	}
	return pct(x)
}

// satisfaction is r's satisfaction, or noRating.
func satisfaction(r *Ratings) string { return ratePct(r.Satisfaction, r.Rated) }

func secs(d time.Duration) string {
	if d < time.Minute {
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
	}
	return d.Round(time.Second).String()
}

func met(ok bool) string {
	if ok {
		return "MET 达标"
	}
	return "NOT MET 未达标"
}

// location is the report's time zone (UTC for a Report decoded from JSON
// whose zone this system does not know).
func (r *Report) location() *time.Location {
	if r.loc != nil {
		return r.loc
	}
	if loc, err := time.LoadLocation(r.Location); err == nil {
		return loc
	}
	return time.UTC
}

// WriteText writes the report for a terminal.
func (r *Report) WriteText(w io.Writer) error {
	loc := r.location()
	t := &r.Total
	var b strings.Builder
	if r.From.IsZero() && r.To.IsZero() { // every record, and there are none
		fmt.Fprintf(&b, "hotline report: no records (%s)", r.Location)
	} else {
		fmt.Fprintf(&b, "hotline report %s – %s (%s)", r.From.In(loc).Format("2006-01-02 15:04"), r.To.In(loc).Format("2006-01-02 15:04"), r.Location)
	}
	if r.Queue != "" {
		fmt.Fprintf(&b, ", queue %s", r.Queue)
	}
	b.WriteString("\n\n")
	tw := tabwriter.NewWriter(&b, 2, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "Offered (calls that entered a queue)\t%d\n", t.Offered)
	fmt.Fprintf(tw, "Answered\t%d\tanswer rate %s of offered, %s excluding short abandons\n", t.Answered, pct(t.AnswerRate), pct(t.AnswerRateExclShort))
	fmt.Fprintf(tw, "Abandoned\t%d\tabandon rate %s; short abandons (< %s) %d, rate without them %s\n",
		t.Abandoned, pct(t.AbandonRate), secs(r.ShortAbandon), t.ShortAbandoned, pct(t.AbandonRateExclShort))
	fmt.Fprintf(tw, "Other unanswered\t%d\ttimeout %d, no agent %d, exit key %d, callback requested %d, other %d\n",
		t.TimedOut+t.NoAgent+t.ExitKey+t.CallbackRequests+t.OtherUnanswered, t.TimedOut, t.NoAgent, t.ExitKey, t.CallbackRequests, t.OtherUnanswered)
	fmt.Fprintf(tw, "Not offered\t%d\tended in the IVR %d, gave up before answer %d, refused %d\n",
		t.IVROnly+t.CallerCancelled+t.Failed, t.IVROnly, t.CallerCancelled, t.Failed)
	fmt.Fprintf(tw, "ASA\t%s\tmean queue wait of answered calls; longest wait %s\n", secs(t.ASA), secs(t.LongestWait))
	fmt.Fprintf(tw, "AHT\t%s\ttalk %s + hold %s + wrap-up %s; transfers %d\n", secs(t.AHT), secs(t.AvgTalk), secs(t.AvgHold), secs(t.AvgWrapUp), t.Transfers)
	fmt.Fprintf(tw, "Service level (T=%s)\t%s\tanswered within T / offered; %s of answered\n", secs(r.ServiceLevel), pct(t.ServiceLevelOffered), pct(t.ServiceLevelAnswered))
	rt := &t.Ratings
	fmt.Fprintf(tw, "Satisfaction\t%s\t(satisfied %d + basically satisfied %d) / %d rated; 满意率 %s, 基本满意率 %s, 不满意率 %s\n",
		satisfaction(rt), rt.Satisfied, rt.BasicallySatisfied, rt.Rated,
		ratePct(rt.SatisfiedRate, rt.Rated), ratePct(rt.BasicallySatisfiedRate, rt.Rated), ratePct(rt.DissatisfiedRate, rt.Rated))
	fmt.Fprintf(tw, "Rated\t%d\tof %d asked to rate (rated share %s); not rated %d (hung up or no key)\n",
		rt.Rated, rt.RatingsAsked, ratePct(rt.RatedShare, rt.RatingsAsked), rt.NotRated)
	tw.Flush()
	g := r.GBT
	fmt.Fprintf(&b, "\nGB/T 33358-2016: answered within 15 s %s of answered calls (target %s: %s); 24 h connection rate 接通率 %s (target %s: %s)\n",
		pct(g.AnsweredWithin15s), pct(g.Target), met(g.Within15sMet), pct(g.ConnectionRate), pct(g.Target), met(g.ConnectionRateMet))

	table := func(title string, ss []Summary) {
		if len(ss) == 0 {
			return
		}
		fmt.Fprintf(&b, "\n%s\n", title)
		tw := tabwriter.NewWriter(&b, 2, 8, 2, ' ', tabwriter.AlignRight)
		fmt.Fprint(tw, "\toffered\tanswered\tanswer%\tabandoned\tshort\toverflowed\ttransfers\tASA\tAHT\tSL/offered\tSL/answered\tlongest\tsatisf.\t\n")
		for i := range ss {
			s := &ss[i]
			key := s.Key
			if key == "" {
				key = "(none)"
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t\n", key, s.Offered, s.Answered, pct(s.AnswerRate),
				s.Abandoned, s.ShortAbandoned, s.Overflowed, s.Transfers, secs(s.ASA), secs(s.AHT), pct(s.ServiceLevelOffered), pct(s.ServiceLevelAnswered),
				secs(s.LongestWait), satisfaction(&s.Ratings))
		}
		tw.Flush()
	}
	if r.By != ByNone && r.By != ByQueue {
		table("By "+string(r.By)+" (calls)", r.Groups)
	}
	table("By queue (queue visits: overflows and transfers in are offered to their target)", r.Queues)
	if len(r.Agents) > 0 {
		b.WriteString("\nAgents\n")
		tw := tabwriter.NewWriter(&b, 2, 8, 2, ' ', tabwriter.AlignRight)
		fmt.Fprint(tw, "agent\tcalls\ttalk\thold\twrap-up\tAHT\ttransfers\tring-no-answer\tlogged in\tpaused\toccupancy\t\n")
		for _, a := range r.Agents {
			occ := "-"
			if a.LoggedIn > a.Paused {
				occ = pct(a.Occupancy)
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t\n", a.Agent, a.Calls, secs(a.Talk), secs(a.Hold), secs(a.WrapUp),
				secs(a.AHT), a.Transfers, a.RingNoAnswer, secs(a.LoggedIn), secs(a.Paused), occ)
		}
		tw.Flush()
	}
	writeRatings(&b, r)
	writeOutbound(&b, &r.Outbound)
	_, err := io.WriteString(w, b.String())
	return err
}

// ratingRow is a line of the satisfaction tables: a queue or an agent.
type ratingRow struct {
	Kind, Key string
	R         Ratings
}

// ratingRows are the queues and then the agents that were asked to rate.
func (r *Report) ratingRows() []ratingRow {
	var out []ratingRow
	for _, q := range r.Queues {
		if q.RatingsAsked > 0 {
			out = append(out, ratingRow{"queue", q.Key, q.Ratings})
		}
	}
	for _, a := range r.Agents {
		if a.RatingsAsked > 0 {
			out = append(out, ratingRow{"agent", a.Agent, a.Ratings})
		}
	}
	return out
}

// writeRatings writes the satisfaction of each queue and agent, if any
// was asked to rate.
func writeRatings(b *strings.Builder, r *Report) {
	rows := r.ratingRows()
	if len(rows) == 0 {
		return
	}
	b.WriteString("\nSatisfaction by queue and agent (post-call ratings 话务\"一次一评\"; rates over rated, rated share over asked)\n")
	tw := tabwriter.NewWriter(b, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "\t\tasked\trated\trated%\tnot rated\tsatisfied\tbasically\tdissatisfied\tsatisfied%\tbasically%\tdissatisfied%\tsatisfaction\t\n")
	for _, row := range rows {
		rt := &row.R
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t\n", row.Kind, row.Key, rt.RatingsAsked, rt.Rated,
			ratePct(rt.RatedShare, rt.RatingsAsked), rt.NotRated, rt.Satisfied, rt.BasicallySatisfied, rt.Dissatisfied,
			ratePct(rt.SatisfiedRate, rt.Rated), ratePct(rt.BasicallySatisfiedRate, rt.Rated), ratePct(rt.DissatisfiedRate, rt.Rated),
			satisfaction(rt))
	}
	tw.Flush()
}

// writeOutbound writes the outbound section (Report.Outbound), if the
// window has outbound records.
func writeOutbound(b *strings.Builder, o *Outbound) {
	if o.Calls() == 0 {
		return
	}
	s, c, v, cr := &o.Surveys, &o.Callbacks, &o.VirtualHold, &o.CallbackRate
	b.WriteString("\nOutbound 外呼 (云回访; not in the inbound figures above)\n")
	tw := tabwriter.NewWriter(b, 2, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "Survey calls 回访\t%d\tanswered %d; cases %d, reached %d; %s\n",
		s.Dialled, s.Answered, s.Targets, s.TargetsReached, dispositionList(s.ByDisposition))
	fmt.Fprintf(tw, "Survey satisfaction\t%s\t(satisfied %d + basically satisfied %d) / %d rated; 满意率 %s, 基本满意率 %s, 不满意率 %s; not rated %d of %d asked\n",
		satisfaction(&s.Ratings), s.Satisfied, s.BasicallySatisfied, s.Rated,
		ratePct(s.SatisfiedRate, s.Rated), ratePct(s.BasicallySatisfiedRate, s.Rated), ratePct(s.DissatisfiedRate, s.Rated),
		s.NotRated, s.RatingsAsked)
	fmt.Fprintf(tw, "Callback calls 回拨\t%d\treached (answered) %d; %s\n", c.Made, c.Reached, dispositionList(c.ByDisposition))
	fmt.Fprintf(tw, "Virtual hold 预约回拨\t%d\trequested; callbacks made %d, reached %d\n", v.Requested, v.Made, v.Reached)
	fmt.Fprintf(tw, "Callback rate 回访率\t%s\t%d of %d cases reached (by machine %d, by human %d); a human tried %d\n",
		ratePct(cr.ReachedRate, cr.Cases), cr.Reached, cr.Cases, cr.ReachedByMachine, cr.ReachedByHuman, cr.HumanTried)
	fmt.Fprintf(tw, "件件有回音\t%s\t%d of %d cases reached or tried by a human (deadlines: see the campaign)\n",
		ratePct(cr.ReachedOrTriedRate, cr.Cases), cr.ReachedOrTried, cr.Cases)
	tw.Flush()
}

// dispositionList is "answered 3, busy 1" (non-zero counts), or "none".
func dispositionList(m map[Disposition]int) string {
	var parts []string
	for _, dc := range dispositionCounts(m) {
		parts = append(parts, string(dc.D)+" "+strconv.Itoa(dc.N))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
