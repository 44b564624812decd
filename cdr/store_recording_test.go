package cdr

import (
	"bytes"
	"context"
	"encoding/csv"
	"slices"
	"testing"
	"time"
)

// The recording's file, duration, SHA-256 and the voicemail flag (schema version 6) are
// kept by both stores and exported in the CSV.
func TestStoreRecordingFields(t *testing.T) {
	start := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	recs := []Record{
		{ID: "rec-1", Direction: DirectionInbound, Start: start, End: start.Add(time.Minute), Disposition: DispositionAnswered,
			RecordingFile: "recordings/2026/03/02/rec-1.wav", RecordingDuration: 58*time.Second + 120*time.Millisecond,
			RecordingSHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
		{ID: "rec-2", Direction: DirectionInbound, Start: start, End: start.Add(time.Minute), Disposition: DispositionIVRHangup,
			RecordingFile: "recordings/2026/03/02/rec-2.wav", RecordingDuration: 2 * time.Second, RecordingSHA256: "ab", Voicemail: true},
	}
	eachStore(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		if err := s.Upsert(ctx, recs); err != nil {
			t.Fatal(err)
		}
		got, err := s.List(ctx, Filter{From: start.Add(-time.Hour), To: start.Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 {
			t.Fatalf("%d records", len(got))
		}
		for i, r := range got {
			w := recs[i]
			if r.RecordingFile != w.RecordingFile || r.RecordingDuration != w.RecordingDuration || r.RecordingSHA256 != w.RecordingSHA256 || r.Voicemail != w.Voicemail {
				t.Errorf("record %s: %q %v %q %v, want %q %v %q %v", r.ID, r.RecordingFile, r.RecordingDuration, r.RecordingSHA256, r.Voicemail,
					w.RecordingFile, w.RecordingDuration, w.RecordingSHA256, w.Voicemail)
			}
		}
	})
	var b bytes.Buffer
	if err := WriteRecordsCSV(&b, recs); err != nil {
		t.Fatal(err)
	}
	rows, _ := csv.NewReader(&b).ReadAll()
	n := len(RecordCSVHeader) - 1 // before handoffs
	if got := rows[0][n-4 : n]; !slices.Equal(got, []string{"recording_file", "recording_s", "recording_sha256", "voicemail"}) {
		t.Fatalf("header ends %v", got)
	}
	if got := rows[1][n-4 : n]; !slices.Equal(got, []string{"recordings/2026/03/02/rec-1.wav", "58.120", recs[0].RecordingSHA256, ""}) {
		t.Errorf("row 1 ends %v", got)
	}
	if got := rows[2][n-1]; got != "true" {
		t.Errorf("row 2 voicemail %q", got)
	}
}
