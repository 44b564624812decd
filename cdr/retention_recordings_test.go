package cdr

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The retention job deletes the recordings of the records it deletes, and only those.
func TestRetentionDeletesRecordings(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		dir := t.TempDir()
		now := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
		cutoff := now.AddDate(0, 0, -30)
		var recs []Record
		file := func(id string, at time.Time) string {
			rel := "recordings/" + at.Format("2006/01/02") + "/" + id + ".wav"
			p := filepath.Join(dir, filepath.FromSlash(rel))
			if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte("RIFF"), 0o640); err != nil {
				t.Fatal(err)
			}
			return rel
		}
		for i := range 7 { // batches of 3: three transactions
			r := testRecord(i)
			r.ID = fmt.Sprintf("old-%02d", i)
			r.Start = cutoff.Add(-time.Duration(i+1) * time.Hour)
			r.RecordingFile = ""
			if i != 3 { // one old record without a recording
				r.RecordingFile, r.RecordingSHA256 = file(r.ID, r.Start), "ab"
			}
			recs = append(recs, r)
		}
		kept := testRecord(50)
		kept.ID, kept.Start = "new", cutoff.Add(time.Minute)
		kept.RecordingFile = file(kept.ID, kept.Start)
		recs = append(recs, kept)
		if err := s.Upsert(ctx, recs); err != nil {
			t.Fatal(err)
		}
		// A file already gone (deleted by hand) does not stop the job.
		os.Remove(filepath.Join(dir, filepath.FromSlash(recs[0].RecordingFile)))
		job, err := NewRetention(RetentionConfig{Days: 30, Batch: 3, Pause: time.Millisecond, Now: func() time.Time { return now },
			Tables: append([]RetentionTable{RecordingRetention(s, dir)}, RetentionTables(s)...)})
		if err != nil {
			t.Fatal(err)
		}
		n, err := job.RunOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n["recordings"] != 6 || n["cdr"] != 7 {
			t.Errorf("deleted %v, want 6 recordings and 7 records", n)
		}
		for _, r := range recs[:7] {
			if r.RecordingFile == "" {
				continue
			}
			if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(r.RecordingFile))); !os.IsNotExist(err) {
				t.Errorf("%s: still there (%v)", r.RecordingFile, err)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(kept.RecordingFile))); err != nil {
			t.Errorf("the kept record's recording: %v", err)
		}
		left, err := s.List(ctx, Filter{})
		if err != nil || len(left) != 1 || left[0].RecordingFile != kept.RecordingFile {
			t.Errorf("left %+v, %v", left, err)
		}
	})
}
