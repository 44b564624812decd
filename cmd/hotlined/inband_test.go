package main

import (
	"context"
	"testing"
	"time"

	"github.com/hotline12345/hotline/call"
	"github.com/hotline12345/hotline/cdr"
	"github.com/hotline12345/hotline/loadtest/phone"
)

// A trunk with inband_dtmf: callers whose phones send keypad tones only in the audio (no
// telephone-event in their SDP) choose from the main menu over PCMA and over PCMU, and
// land in the queue of the key they pressed. One server serves both.
func TestInbandDTMFRoutesOverPCMAAndPCMU(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig(t, "    # inband_dtmf: false", "    inband_dtmf: true"))
	for _, tc := range []struct {
		name   string
		codec  uint8
		key    string
		queue  string
		caller string
	}{
		{"PCMA", 8, "2", "complaint", "13900139101"},
		{"PCMU", 0, "3", "business", "13900139102"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPhone(t, phone.Config{Codecs: []uint8{tc.codec}, NoDTMF: true})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c, err := p.Dial(ctx, "sip:12345@"+s.sipAddr(), tc.caller)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			if c.Codec() != tc.codec {
				t.Fatalf("negotiated payload type %d, want %d", c.Codec(), tc.codec)
			}
			if _, ok := c.DTMFPayloadType(); ok {
				t.Fatal("telephone-event negotiated; the test needs a tones-only caller")
			}
			if err := c.WaitAudio(ctx, -40, 300*time.Millisecond); err != nil {
				t.Fatalf("no menu audio: %v", err)
			}
			if err := c.SendInbandDTMF(tc.key, 80*time.Millisecond, 60*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(10 * time.Second)
			for {
				lc, ok := liveCall(t, s.httpAddr(), c.SIPCallID())
				if ok && lc.Stage == call.StageQueued && lc.Queue == tc.queue {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("call did not reach queue %s after the tones of %s: %+v", tc.queue, tc.key, lc)
				}
				time.Sleep(50 * time.Millisecond)
			}
			if err := c.Hangup(ctx); err != nil {
				t.Fatalf("hangup: %v", err)
			}
			rec := waitRecord(t, s, tc.caller)
			if want := "main>" + tc.key + ">" + tc.queue; rec.IVRPath != want {
				t.Fatalf("ivr_path %q, want %q (one digit, once)", rec.IVRPath, want)
			}
		})
	}
}

// waitRecord waits for the ended call of caller and returns its record.
func waitRecord(t *testing.T, s *testServer, caller string) cdr.Record {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		recs, err := s.store.List(context.Background(), cdr.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if r.Caller == caller && !r.End.IsZero() {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ended record of %s among %d", caller, len(recs))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
