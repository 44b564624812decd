package cdr

import (
	"context"
	"encoding/json"
	"testing"
	"time"
)

// A record's handoffs survive the stores (SQLite, PostgreSQL) and JSON (the API, the journal) as an array.
func TestHandoffsStoredAndInJSON(t *testing.T) {
	at := time.Date(2026, 12, 7, 9, 30, 0, 0, time.UTC)
	hs := []Handoff{
		{Kind: HandoffConference, Entry: "12315", Number: "12315", Trunk: "departments", Agent: "1001", At: at, Answered: at.Add(2 * time.Second), Outcome: "answered", AgentLeft: at.Add(9 * time.Second)},
		{Kind: HandoffTransfer, Entry: "12369", Number: "12369", Trunk: "departments", Agent: "1002", At: at.Add(time.Minute), Outcome: "busy", Status: 486},
	}
	r := testRecord(1)
	r.Handoffs = MakeHandoffs(hs)

	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Handoffs []map[string]any `json:"handoffs"`
	}
	if err := json.Unmarshal(b, &raw); err != nil || len(raw.Handoffs) != 2 || raw.Handoffs[0]["entry"] != "12315" {
		t.Fatalf("JSON handoffs = %+v (%v) in %s", raw.Handoffs, err, b)
	}
	var back Record
	if err := json.Unmarshal(b, &back); err != nil || back != r {
		t.Fatalf("JSON round trip: %v\n got %+v\nwant %+v", err, back, r)
	}

	eachStore(t, func(t *testing.T, s Store) {
		if err := s.Upsert(context.Background(), []Record{r}); err != nil {
			t.Fatal(err)
		}
		got, err := s.List(context.Background(), Filter{})
		if err != nil || len(got) != 1 {
			t.Fatalf("List: %d, %v", len(got), err)
		}
		list := got[0].Handoffs.List()
		if len(list) != 2 || list[0] != hs[0] || list[1] != hs[1] {
			t.Fatalf("stored handoffs = %+v, want %+v", list, hs)
		}
	})
	if (Record{}).Handoffs.List() != nil {
		t.Error("no handoffs should list as nil")
	}
}
