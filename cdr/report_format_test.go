package cdr

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

// TestReportFormats: the text, HTML and CSV forms show what the figures
// mean: satisfaction "—" when nothing was rated, with its denominators
// (asked, rated, not rated) per call, queue and agent; the
// gave-up-before-answer bucket, overflows and transfers per queue.
func TestReportFormats(t *testing.T) {
	recs, evs := scenario()
	var unrated []Record
	for _, r := range recs {
		r.Satisfaction = ""
		unrated = append(unrated, r)
	}
	for _, tt := range []struct {
		name string
		recs []Record
		sat  *regexp.Regexp // the satisfaction line of the text form
		html string         // the satisfaction KPI of the HTML form
	}{
		// The inbound calls' ratings (not the survey call c14's).
		{"rated", recs, regexp.MustCompile(`Satisfaction +75\.0% +\(satisfied 2 \+ basically satisfied 1\) / 4 rated; 满意率 50\.0%, 基本满意率 25\.0%, 不满意率 25\.0%\n` +
			`Rated +4 +of 5 asked to rate \(rated share 80\.0%\); not rated 1 \(hung up or no key\)\n`),
			`<div class="v">75.0%</div><div class="n">满意率 50.0% · 基本满意率 25.0% · 不满意率 25.0%；参评 rated 4 / 邀评 asked 5，参评率 80.0%</div>`},
		{"unrated", unrated, regexp.MustCompile(`Satisfaction +— +\(satisfied 0 \+ basically satisfied 0\) / 0 rated; 满意率 —, 基本满意率 —, 不满意率 —\n` +
			`Rated +0 +of 0 asked to rate \(rated share —\); not rated 0 `),
			`<div class="v">—</div><div class="n">满意率 — · 基本满意率 — · 不满意率 —；参评 rated 0 / 邀评 asked 0，参评率 —</div>`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rep := Compute(tt.recs, evs, scenarioOptions())
			var text bytes.Buffer
			if err := rep.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			out := text.String()
			if !tt.sat.MatchString(out) {
				t.Errorf("text lacks %s:\n%s", tt.sat, out)
			}
			// business: offered 1, answered 1, no overflow, no transfer;
			// complaint overflowed 1; consult transferred 1.
			for _, re := range []string{
				`Not offered +4 +ended in the IVR 2, gave up before answer 1, refused 1\n`,
				`Other unanswered +3 +timeout 1, no agent 0, exit key 1, callback requested 1, other 0`,
				`business +1 +1 +100\.0% +0 +0 +0 +0 +1\.0s`, `complaint +4 +2 +50\.0% +1 +0 +1 +0 `, `consult +9 +4 +44\.4% +2 +1 +0 +1 `,
				// The ratings of each queue and agent (from the RATING
				// events, whatever the records say): asked, rated, rated%,
				// not rated, the counts, the three rates, satisfaction.
				`queue +consult +3 +2 +66\.7% +1 +1 +1 +0 +50\.0% +50\.0% +0\.0% +100\.0%`,
				`queue +complaint +2 +2 +100\.0% +0 +1 +0 +1 +50\.0% +0\.0% +50\.0% +50\.0%`,
				`agent +1001 +2 +1 +50\.0% +1 +1 +0 +0 +100\.0% +0\.0% +0\.0% +100\.0%`,
				`agent +1004 +1 +1 +100\.0% +0 +1 +0 +0 +100\.0% +0\.0% +0\.0% +100\.0%`} {
				if !regexp.MustCompile(re).MatchString(out) {
					t.Errorf("queue table lacks %s:\n%s", re, out)
				}
			}
			var html bytes.Buffer
			if err := rep.WriteHTML(&html); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(html.String(), `<div class="l">满意度 Satisfaction</div>`+tt.html) {
				t.Errorf("HTML satisfaction KPI is not %s", tt.html)
			}
			for _, row := range []string{
				"<tr><td>队列 queue consult</td><td>3</td><td>2</td><td>66.7%</td><td>1</td><td>1</td><td>1</td><td>0</td><td>50.0%</td><td>50.0%</td><td>0.0%</td><td>100.0%</td></tr>",
				"<tr><td>坐席 agent 1003</td><td>1</td><td>1</td><td>100.0%</td><td>0</td><td>0</td><td>0</td><td>1</td><td>0.0%</td><td>0.0%</td><td>100.0%</td><td>0.0%</td></tr>",
			} {
				if !strings.Contains(html.String(), row) {
					t.Errorf("HTML lacks the satisfaction row %s", row)
				}
			}
			if !strings.Contains(html.String(), "<td>business</td><td>1</td><td>1</td><td>100.0%</td><td>0</td><td>0</td><td>0</td><td>0</td><td>1.0s</td><td>1m40s</td><td>100.0%</td><td>100.0%</td><td>1.0s</td><td>—</td>") {
				t.Errorf("HTML queue row of business:\n%s", html.String())
			}
			var c bytes.Buffer
			if err := rep.WriteCSV(&c); err != nil {
				t.Fatal(err)
			}
			rows, err := csv.NewReader(&c).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			col := map[string]int{}
			for i, h := range rows[0] {
				col[h] = i
			}
			total, business := rows[1], rows[2]
			if total[col["caller_cancelled"]] != "1" || total[col["exit_key"]] != "1" || business[col["key"]] != "business" ||
				business[col["satisfaction"]] != "" || business[col["rated_share"]] != "" || rows[3][col["overflowed"]] != "1" {
				t.Errorf("csv:\n%v", rows)
			}
			consult := rows[4]
			if got := strings.Join([]string{consult[col["ratings_asked"]], consult[col["rated"]], consult[col["not_rated"]],
				consult[col["satisfied"]], consult[col["basically_satisfied"]], consult[col["dissatisfied"]], consult[col["rated_share"]],
				consult[col["satisfied_rate"]], consult[col["basically_satisfied_rate"]], consult[col["dissatisfied_rate"]],
				consult[col["satisfaction"]]}, ","); consult[col["key"]] != "consult" || got != "3,2,1,1,1,0,0.6667,0.5000,0.5000,0.0000,1.0000" {
				t.Errorf("csv ratings of consult: %s\n%v", got, rows)
			}
		})
	}
}

// TestReportJSONRatings: the satisfaction figures are inline in the total,
// queue and agent objects, under their documented names.
func TestReportJSONRatings(t *testing.T) {
	recs, evs := scenario()
	rep := Compute(recs, evs, scenarioOptions())
	var b bytes.Buffer
	if err := rep.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var m struct {
		Total  map[string]any   `json:"total"`
		Queues []map[string]any `json:"queues"`
		Agents []map[string]any `json:"agents"`
	}
	if err := json.Unmarshal(b.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"ratings_asked": 5, "rated": 4, "not_rated": 1, "satisfied": 2, "basically_satisfied": 1, "dissatisfied": 1,
		"rated_share": 0.8, "satisfied_rate": 0.5, "basically_satisfied_rate": 0.25, "dissatisfied_rate": 0.25, "satisfaction": 0.75}
	for k, v := range want {
		if m.Total[k] != v {
			t.Errorf("total %s = %v, want %v", k, m.Total[k], v)
		}
	}
	for _, gone := range []string{"Ratings", "surveys"} {
		if _, ok := m.Total[gone]; ok {
			t.Errorf("total has %q", gone)
		}
	}
	if len(m.Queues) != 3 || m.Queues[2]["not_rated"] != 1.0 || m.Queues[2]["rated_share"] != 2.0/3 ||
		len(m.Agents) != 5 || m.Agents[0]["ratings_asked"] != 2.0 || m.Agents[0]["satisfied_rate"] != 1.0 || m.Agents[4]["rated"] != 0.0 {
		t.Errorf("queues %v\nagents %v", m.Queues, m.Agents)
	}
}
