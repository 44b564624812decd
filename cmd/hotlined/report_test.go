package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hotline12345/hotline/cdr"
)

// seedReportDB writes a small known day into DIR/cdr.db: four offered
// calls on 2026-03-15 (Beijing time): two answered after 10 s and 20 s, one
// abandoned after 30 s, one short abandon after 2 s; one IVR-only call;
// their queue events, and agent 1001 logged in 08:00-12:00. The answered
// callers were asked to rate: a rated 1001 satisfied, b did not rate 1002.
func seedReportDB(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	s, err := cdr.OpenSQLite(filepath.Join(dir, "cdr.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cst := time.FixedZone("CST", 8*3600)
	enq := func(h, m int) time.Time { return time.Date(2026, 3, 15, h, m, 0, 0, cst) }
	mk := func(id, q string, e time.Time, wait time.Duration, agent string, disp cdr.Disposition) cdr.Record {
		r := cdr.Record{ID: id, Direction: "inbound", Start: e.Add(-5 * time.Second), Queue: q, EnqueueTime: e, Disposition: disp}
		if agent != "" {
			r.Agent, r.Connect, r.Talk, r.WrapUp = agent, e.Add(wait), 100*time.Second, 20*time.Second
			r.End = r.Connect.Add(r.Talk)
			r.Satisfaction = cdr.SatisfactionSatisfied
		} else {
			r.End = e.Add(wait)
		}
		return r
	}
	recs := []cdr.Record{
		mk("a", "consult", enq(9, 0), 10*time.Second, "1001", "answered"),
		mk("b", "complaint", enq(10, 0), 20*time.Second, "1002", "answered"),
		mk("c", "consult", enq(11, 0), 30*time.Second, "", "abandoned"),
		mk("d", "consult", enq(11, 30), 2*time.Second, "", "abandoned-short"),
		{ID: "e", Direction: "inbound", Start: enq(12, 0), End: enq(12, 1), Disposition: "ivr-hangup"},
	}
	recs[1].Satisfaction = cdr.SatisfactionNotRated
	if err := s.Upsert(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	evs := []cdr.AgentEvent{
		{ID: "1", Time: enq(8, 0), AgentID: "1001", Event: cdr.EventLogin, Data1: "sip:1001@127.0.0.1:5062"},
		{ID: "2", Time: enq(12, 0), AgentID: "1001", Event: cdr.EventLogout, Data1: "api", Data2: "14400.000"},
	}
	for _, r := range recs[:4] {
		ev := func(t time.Time, name, agent string, data ...string) {
			e := cdr.AgentEvent{ID: r.ID + "-" + name, Time: t, CallID: r.ID, Queue: r.Queue, AgentID: agent, Event: name}
			data = append(data, "", "")
			e.Data1, e.Data2 = data[0], data[1]
			evs = append(evs, e)
		}
		ev(r.EnqueueTime, cdr.EventEnterQueue, "")
		if r.Agent == "" {
			ev(r.End, cdr.EventAbandon, "", "1", "1")
			continue
		}
		ev(r.Connect, cdr.EventConnect, r.Agent, cdr.FormatSeconds(r.Wait()))
		ev(r.End, cdr.EventCompleteAgent, r.Agent, cdr.FormatSeconds(r.Wait()), cdr.FormatSeconds(r.Talk))
		ev(r.End.Add(9*time.Second), cdr.EventRating, r.Agent, r.Satisfaction)
		ev(r.End.Add(r.WrapUp), cdr.EventWrapUpEnd, r.Agent, cdr.FormatSeconds(r.WrapUp))
	}
	if err := s.AppendEvents(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	return dir
}

func runReport(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = reportMain(args, &o, &e)
	return code, o.String(), e.String()
}

func TestReportCommandFormats(t *testing.T) {
	dir := seedReportDB(t)
	base := []string{"--data-dir", dir, "--from", "2026-03-15", "--to", "2026-03-15", "--tz", "Asia/Shanghai"}

	code, out, errOut := runReport(t, base...)
	if code != 0 {
		t.Fatalf("text: exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"Offered (calls that entered a queue)  4", "answer rate 50.0% of offered, 66.7% excluding short abandons",
		"short abandons (< 5.0s) 1", "ASA                                   15.0s", "AHT                                   2m0s",
		"GB/T 33358-2016: answered within 15 s 50.0%", "24 h connection rate 接通率 50.0% (target 95.0%: NOT MET",
		"ended in the IVR 1, gave up before answer 0", "By queue",
		"complaint        1         1   100.0%          0      0           0          0  20.0s  2m0s",
		"consult        3         1    33.3%          2      1           0          0  10.0s  2m0s",
		"Satisfaction                          100.0%  (satisfied 1 + basically satisfied 0) / 1 rated; 满意率 100.0%, 基本满意率 0.0%, 不满意率 0.0%",
		"Rated                                 1       of 2 asked to rate (rated share 50.0%); not rated 1",
		"queue  complaint      1      0    0.0%          1          0          0             0           —           —              —             —",
		"agent       1001      1      1  100.0%          0          1          0             0      100.0%        0.0%           0.0%        100.0%",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text report lacks %q:\n%s", want, out)
		}
	}

	// Without --tz: the config's zone (the embedded config: Asia/Shanghai),
	// whatever the host's.
	t.Setenv("TZ", "America/New_York")
	code, out, errOut = runReport(t, "--data-dir", dir, "--from", "2026-03-15", "--to", "2026-03-15")
	if code != 0 || !strings.Contains(out, "hotline report 2026-03-15 00:00 – 2026-03-16 00:00 (Asia/Shanghai)") ||
		!strings.Contains(out, "Offered (calls that entered a queue)  4") {
		t.Errorf("default zone: exit %d: %s\n%s", code, errOut, out)
	}

	code, out, errOut = runReport(t, append(base, "--format", "json", "--by", "agent")...)
	if code != 0 {
		t.Fatalf("json: exit %d: %s", code, errOut)
	}
	var j struct {
		Total struct {
			Offered, Answered int
			ASA               float64 `json:"asa_s"`
			AHT               float64 `json:"aht_s"`
			SLOffered         float64 `json:"service_level_offered"`
			Asked             int     `json:"ratings_asked"`
			Rated             int     `json:"rated"`
			NotRated          int     `json:"not_rated"`
			RatedShare        float64 `json:"rated_share"`
		}
		Agents []struct {
			Agent        string
			Occupancy    float64
			NotRated     int     `json:"not_rated"`
			Satisfaction float64 `json:"satisfaction"`
		}
		Groups []struct{ Key string }
	}
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	if j.Total.Offered != 4 || j.Total.Answered != 2 || j.Total.ASA != 15 || j.Total.AHT != 120 || j.Total.SLOffered != 0.25 ||
		len(j.Agents) != 2 || j.Agents[0].Occupancy != 120.0/(4*3600) || len(j.Groups) != 3 ||
		j.Total.Asked != 2 || j.Total.Rated != 1 || j.Total.NotRated != 1 || j.Total.RatedShare != 0.5 ||
		j.Agents[0].Satisfaction != 1 || j.Agents[1].NotRated != 1 {
		t.Errorf("json: %+v\n%s", j, out)
	}

	code, out, _ = runReport(t, append(base, "--format", "csv", "--by", "hour")...)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 2+5 || !strings.HasPrefix(lines[1], "total,,5,4,2,2,1,") || !strings.HasPrefix(lines[2], "hour,2026-03-15 08:00,1,1,1,") { // call a started at 08:59:55
		t.Errorf("csv: exit %d\n%s", code, out)
	}

	html := filepath.Join(t.TempDir(), "daily.html")
	if code, _, errOut = runReport(t, append(base, "--format", "html", "--output", html)...); code != 0 {
		t.Fatalf("html: exit %d: %s", code, errOut)
	}
	b, err := os.ReadFile(html)
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	for _, want := range []string{"热线日报 Daily report 2026-03-15", "<svg", "Hourly offered vs answered", "AHT by queue", "Wait-time distribution", "占用率 Occupancy"} {
		if !strings.Contains(page, want) {
			t.Errorf("html lacks %q", want)
		}
	}
	for _, bad := range []string{"<script", "http://cdn", "https://"} {
		if strings.Contains(page, bad) {
			t.Errorf("html is not self-contained: has %q", bad)
		}
	}
	if n := strings.Count(page, "<svg"); n != 3 {
		t.Errorf("%d charts, want 3", n)
	}
}

func TestReportCommandBadInput(t *testing.T) {
	dir := seedReportDB(t)
	tests := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--data-dir", dir, "--from", "2026-03-16", "--to", "2026-03-15 12:00"}, 2, "impossible range: --from 2026-03-16"},
		{[]string{"--data-dir", dir, "--from", "2026-03-15 10:00", "--to", "2026-03-15 10:00"}, 2, "impossible range"},
		{[]string{"--data-dir", dir, "--from", "yesterday"}, 2, `--from: "yesterday" is not a time`},
		{[]string{"--data-dir", dir, "--to", "2026-13-01"}, 2, "--to:"},
		{[]string{"--data-dir", dir, "--by", "week"}, 2, `--by "week"`},
		{[]string{"--data-dir", dir, "--format", "pdf"}, 2, `--format "pdf"`},
		{[]string{"--data-dir", dir, "--tz", "Mars/Olympus"}, 2, "--tz"},
		{[]string{"--data-dir", dir, "--short-abandon", "-1s"}, 2, "--short-abandon"},
		{[]string{"--data-dir", dir, "--cdr-dsn", "postgres://x"}, 2, "not both"},
		{[]string{"--data-dir", dir, "extra"}, 2, "unexpected argument"},
		{[]string{"--data-dir", filepath.Join(dir, "nope")}, 1, "no call records at"},
		{[]string{"--cdr-dsn", "postgres://u:pw@127.0.0.1:1/x?connect_timeout=2"}, 1, "127.0.0.1:1/x"},
	}
	for _, tt := range tests {
		code, _, errOut := runReport(t, tt.args...)
		if code != tt.code || !strings.Contains(errOut, tt.msg) {
			t.Errorf("%v: exit %d, %q; want %d and %q", tt.args, code, errOut, tt.code, tt.msg)
		}
		if strings.Contains(errOut, "pw@") {
			t.Errorf("%v: password in the message: %s", tt.args, errOut)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "nope")); err == nil {
		t.Error("a report created a data directory")
	}
}
