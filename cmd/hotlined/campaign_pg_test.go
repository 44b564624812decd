package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// With --cdr-dsn postgres://… the campaigns live in PostgreSQL beside the records: a survey
// campaign runs to the end, its tables are in the records' schema, and a second server on
// the same database sees the campaign as it was left.
func TestCampaignInPostgres(t *testing.T) {
	dsn := pgSchema(t)
	gw := freeUDPPort(t)
	yaml := trunkTestConfig(t, gw)
	s := startServer(t, yaml, func(o *options) { o.CDRDSN = dsn })
	far := startSIPpUAS(t, gw, "uas_survey_rate1.xml", 1, "-d", "1500")
	c := postCampaign(t, s, surveyBody("pg", []map[string]string{{"case_id": "PG1", "phone": "13900000021"}},
		map[string]any{"window": map[string]string{"from": "00:00", "to": "24:00"}}))
	tg := waitTargetState(t, s, c.ID, "PG1", 20*time.Second, func(v targetView) bool { return v.State == "done" })
	if tg.Outcome != "answered" || tg.Satisfaction != "satisfied" {
		t.Fatalf("target %+v", tg)
	}
	if ok, out := far.wait(t, 20*time.Second); !ok {
		t.Errorf("SIPp:\n%s", out)
	}
	survey := waitDirectionRecords(t, s, "survey", 1)[0]

	// The campaign's rows and the call's record are in the same schema.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var state, satisfaction, target string
	if err := conn.QueryRow(ctx, `SELECT state, satisfaction FROM campaign_targets WHERE campaign = $1 AND case_id = 'PG1'`, c.ID).Scan(&state, &satisfaction); err != nil || state != "done" || satisfaction != "satisfied" {
		t.Errorf("campaign_targets row: %q %q %v", state, satisfaction, err)
	}
	if err := conn.QueryRow(ctx, `SELECT target FROM cdr WHERE id = $1`, survey.ID).Scan(&target); err != nil || target != "PG1" {
		t.Errorf("cdr row of the survey: target %q %v", target, err)
	}

	// A second server on the same database (after the first stopped) has the campaign.
	s.shutdownNow()
	s2 := startServer(t, yaml, func(o *options) { o.CDRDSN = dsn })
	v := getCampaign(t, s2, c.ID)
	if v.State != "done" || len(v.Targets) != 1 || v.Targets[0].Satisfaction != "satisfied" {
		t.Errorf("after restart: %+v", v)
	}
	if !strings.Contains(httpGet(t, "http://"+s2.httpAddr()+"/api/v1/campaigns", 200), c.ID) {
		t.Error("the campaign list after restart lacks the campaign")
	}
}
