package main

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/hotline12345/hotline/call"
	"github.com/hotline12345/hotline/loadtest/phone"
)

// newPhone starts a test phone on loopback; it is closed when the test ends.
func newPhone(t *testing.T, cfg phone.Config) *phone.Phone {
	t.Helper()
	p, err := phone.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// liveCall returns the server's view of the call with the given SIP Call-ID.
func liveCall(t *testing.T, httpAddr, sipCallID string) (call.LiveCall, bool) {
	t.Helper()
	var body struct{ Calls []call.LiveCall }
	if err := json.Unmarshal([]byte(httpGet(t, "http://"+httpAddr+"/api/v1/calls", 200)), &body); err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(body.Calls, func(c call.LiveCall) bool { return c.SIPCallID == sipCallID })
	if i < 0 {
		return call.LiveCall{}, false
	}
	return body.Calls[i], true
}

// The Go test phone hears the Mandarin menu as real audio in the negotiated law, presses 2
// by RFC 4733, and the call moves to the complaint queue, where hold audio continues.
func TestPhoneHearsMenuAndRoutesByRFC4733(t *testing.T) {
	for _, tc := range []struct {
		name   string
		codecs []uint8
		want   uint8
	}{
		{"PCMA preferred", []uint8{8, 0}, 8},
		{"PCMU only", []uint8{0}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, "")
			p := newPhone(t, phone.Config{Codecs: tc.codecs})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c, err := p.Dial(ctx, "sip:12345@"+s.sipAddr(), "13900139000")
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			if c.Codec() != tc.want {
				t.Fatalf("negotiated payload type %d, want %d", c.Codec(), tc.want)
			}
			// The welcome prompt: at least 500 ms of speech-level audio.
			if err := c.WaitAudio(ctx, -40, 500*time.Millisecond); err != nil {
				t.Fatalf("no menu audio: %v (stats %+v)", err, c.Audio())
			}
			st := c.Audio()
			if !slices.Equal(st.PayloadTypes, []uint8{tc.want}) || st.SSRCChanges != 0 || st.Lost != 0 {
				t.Fatalf("received RTP %+v: want only payload type %d, one SSRC, no loss", st, tc.want)
			}
			// Barge in: press 2 during the menu prompts.
			if err := c.SendDTMF("2", 120*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(10 * time.Second)
			for {
				lc, ok := liveCall(t, s.httpAddr(), c.SIPCallID())
				if ok && lc.Stage == call.StageQueued && lc.Queue == "complaint" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("call did not reach the complaint queue after digit 2: %+v", lc)
				}
				time.Sleep(50 * time.Millisecond)
			}
			// In the queue the caller hears the hold prompt and music.
			before := c.Audio().AudioPackets
			if err := c.WaitAudio(ctx, -40, 300*time.Millisecond); err != nil {
				t.Fatalf("no audio in the queue: %v", err)
			}
			if c.Audio().AudioPackets <= before {
				t.Fatal("no new audio packets in the queue")
			}
			if err := c.Hangup(ctx); err != nil {
				t.Fatalf("hangup: %v", err)
			}
			rec := s.records(t, 1)[0]
			if rec.IVRPath != "main>2>complaint" || rec.Disposition != "abandoned" || rec.HangupSide != "caller" {
				t.Fatalf("record %+v: want main>2>complaint, abandoned by the caller", rec)
			}
			if rec.Codec != map[uint8]string{0: "PCMU", 8: "PCMA"}[tc.want] {
				t.Fatalf("record codec %q", rec.Codec)
			}
		})
	}
}

// Three timeouts in the main menu fall back to the consult queue (the default config).
func TestPhoneTimeoutsFallBackToConsult(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig(t, "    timeout: 5s\n    max_retries: 3", "    timeout: 200ms\n    max_retries: 3"))
	p := newPhone(t, phone.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := p.Dial(ctx, "sip:12345@"+s.sipAddr(), "13900139001")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(45 * time.Second)
	for {
		lc, ok := liveCall(t, s.httpAddr(), c.SIPCallID())
		if ok && lc.Queue == "consult" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("call never fell back to consult: %+v", lc)
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.Hangup(ctx)
	rec := s.records(t, 1)[0]
	if rec.IVRPath != "main>T>T>T>F>consult" {
		t.Fatalf("path %q, want main>T>T>T>F>consult", rec.IVRPath)
	}
}

// The queue's exit digit leads back to a menu (exit_menu): the caller presses 0 while
// waiting in consult, is back in the main menu, and chooses complaint.
func TestPhoneExitDigitToMenu(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig(t, "    # exit_digit: \"0\"", "    exit_digit: \"0\"\n    exit_menu: main"))
	p := newPhone(t, phone.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := p.Dial(ctx, "sip:12345@"+s.sipAddr(), "13900139002")
	if err != nil {
		t.Fatal(err)
	}
	waitQueue := func(q string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			if lc, ok := liveCall(t, s.httpAddr(), c.SIPCallID()); ok && lc.Stage == call.StageQueued && lc.Queue == q {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("call never waited in %s", q)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	c.SendDTMF("1", 100*time.Millisecond)
	waitQueue("consult")
	c.SendDTMF("0", 100*time.Millisecond)
	time.Sleep(300 * time.Millisecond)
	c.SendDTMF("2", 100*time.Millisecond)
	waitQueue("complaint")
	c.Hangup(ctx)
	rec := s.records(t, 1)[0]
	// The record keeps the first queue; Visits lists both.
	if rec.IVRPath != "main>1>consult>main>2>complaint" || rec.Queue != "consult" || rec.Visits != "consult>complaint" || rec.Disposition != "abandoned" {
		t.Fatalf("record %+v: want main>1>consult>main>2>complaint, visits consult>complaint, abandoned", rec)
	}
}
