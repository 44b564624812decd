package cdr

import (
	"bytes"
	"encoding/csv"
	"regexp"
	"strings"
	"testing"
)

// TestReportFormats: the text, HTML and CSV forms show what the figures
// mean: satisfaction "—" when nothing was rated, the gave-up-before-answer
// bucket, overflows and transfers per queue.
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
		{"rated", recs, regexp.MustCompile(`Satisfaction +75\.0% +\(satisfied 2 \+ basically satisfied 1\) / 4 answered surveys`), `<div class="v">75.0%</div>`},
		{"unrated", unrated, regexp.MustCompile(`Satisfaction +— +\(satisfied 0 \+ basically satisfied 0\) / 0 answered surveys`), `<div class="v">—</div>`},
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
				`Not offered +6 +ended in the IVR 2, gave up before answer 1, refused 1, outbound callbacks 1, survey calls 1`,
				`Other unanswered +3 +timeout 1, no agent 0, exit key 1, callback requested 1, other 0`,
				`business +1 +1 +100\.0% +0 +0 +0 +0 +1\.0s`, `complaint +4 +2 +50\.0% +1 +0 +1 +0 `, `consult +9 +4 +44\.4% +2 +1 +0 +1 `} {
				if !regexp.MustCompile(re).MatchString(out) {
					t.Errorf("queue table lacks %s:\n%s", re, out)
				}
			}
			var html bytes.Buffer
			if err := rep.WriteHTML(&html); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(html.String(), `<div class="l">满意率 Satisfaction</div>`+tt.html) {
				t.Errorf("HTML satisfaction KPI is not %s", tt.html)
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
				business[col["satisfaction"]] != "" || rows[3][col["overflowed"]] != "1" {
				t.Errorf("csv:\n%v", rows)
			}
		})
	}
}
