package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCampaignImportCommand imports a CSV of cases through the running server's API: bad
// rows and numbers outside the dial plan are reported by line and left out, the rest land in
// one campaign; a second import of the same file into that campaign refuses every case as a
// duplicate.
func TestCampaignImportCommand(t *testing.T) {
	// Nothing answers at this gateway, and today and tomorrow are holidays in the hotline's
	// zone: the window stays shut, nothing is dialled.
	cst, _ := time.LoadLocation("Asia/Shanghai")
	now := time.Now().In(cst)
	holidays := fmt.Sprintf(`    holidays: ["%s", "%s"]`, now.Format(time.DateOnly), now.AddDate(0, 0, 1).Format(time.DateOnly))
	s := startServer(t, testConfig(t,
		"gateway: sip:127.0.0.1:5090", "gateway: sip:127.0.0.1:9",
		`    # holidays: ["2026-10-01"]  # no calls`, holidays))
	dir := t.TempDir()
	csvPath := filepath.Join(dir, "cases.csv")
	csv := "\ufeff工单号,电话,队列,坐席,办结时间\n" +
		"A1,13900000001,consult,1001,2026-12-07 10:00\n" +
		"A2,139 0000 0002,consult,1002,2026-12-07 10:05\n" +
		"A3,0591-1234,consult,1001,2026-12-07 10:05\n" + // a landline: outside the dial plan
		"A4,13900000004,complaint,1003,not-a-time\n" +
		"A1,13900000009,consult,1001,2026-12-07 10:00\n" + // duplicate case id
		"A5,13900000005,,,\n"
	if err := os.WriteFile(csvPath, []byte(csv), 0o600); err != nil {
		t.Fatal(err)
	}
	confPath := filepath.Join(s.dir, "hotline.yaml")
	api := "http://" + s.httpAddr()
	var out, errb bytes.Buffer
	code := campaignMain([]string{"import", "--file", csvPath, "--api", api, "--token", s.token, "--config", confPath, "--name", "十二月回访"}, &out, &errb)
	if code != 1 {
		t.Fatalf("exit %d, want 1 (some rows refused)\nstdout: %s\nstderr: %s", code, out.String(), errb.String())
	}
	for _, want := range []string{"cases.csv:4: number outside the dial plan", "cases.csv:5: bad target: bad closed_at", "cases.csv:6: duplicate case id (first on line 2)"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errb.String())
		}
	}
	if !strings.Contains(out.String(), "3 imported, 3 refused") {
		t.Errorf("stdout: %s", out.String())
	}
	var list struct {
		Campaigns []struct {
			ID     string `json:"id"`
			Name   string `json:"name"`
			Counts struct {
				Total int `json:"total"`
			} `json:"counts"`
		} `json:"campaigns"`
	}
	getJSON(t, api+"/api/v1/campaigns", &list)
	if len(list.Campaigns) != 1 || list.Campaigns[0].Name != "十二月回访" || list.Campaigns[0].Counts.Total != 3 {
		t.Fatalf("campaigns: %+v", list)
	}
	id := list.Campaigns[0].ID
	var st struct {
		Targets []struct {
			CaseID   string `json:"case_id"`
			Phone    string `json:"phone"`
			State    string `json:"state"`
			Attempts int    `json:"attempts"`
			Deadline string `json:"deadline"`
		} `json:"targets"`
	}
	getJSON(t, api+"/api/v1/campaigns/"+id, &st)
	got := map[string]string{}
	for _, tg := range st.Targets {
		got[tg.CaseID] = tg.Phone
		if tg.State != "pending" || tg.Attempts != 0 {
			t.Errorf("target %s dialled outside the window: %+v", tg.CaseID, tg)
		}
	}
	if got["A1"] != "13900000001" || got["A2"] != "13900000002" || got["A5"] != "13900000005" || len(got) != 3 {
		t.Errorf("targets: %v", got)
	}

	out.Reset()
	errb.Reset()
	code = campaignMain([]string{"import", "--file", csvPath, "--api", api, "--token", s.token, "--config", confPath, "--campaign", id}, &out, &errb)
	if code != 1 || strings.Count(errb.String(), "duplicate case id") != 4 || !strings.Contains(out.String(), "0 imported") {
		t.Errorf("second import: exit %d\nstdout: %s\nstderr: %s", code, out.String(), errb.String())
	}
	if code := campaignMain([]string{"import"}, &out, &errb); code != 2 {
		t.Errorf("no --file: exit %d, want 2", code)
	}
	errb.Reset()
	if code := campaignMain([]string{"import", "--file", csvPath, "--api", api, "--token", s.token, "--config", confPath, "--campaign", "nope"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "404") {
		t.Errorf("unknown campaign: exit %d: %s", code, errb.String())
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := httpClient.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}
