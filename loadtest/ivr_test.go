package loadtest

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// Twenty citizens against the real server for 3 s: every call is set up and
// held, the audio they hear is counted packet by packet, and the loss ratio
// is the one those counts give.
func TestRunIVRAgainstServer(t *testing.T) {
	t.Parallel()
	h := startHotlined(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second) // a bound, not a pace: RunIVR stops by itself
	defer cancel()
	var progress bytes.Buffer
	rep, err := RunIVR(ctx, IVRConfig{
		Target: netip.MustParseAddrPort(h.SIP), MetricsURL: h.MetricsURL(),
		Calls: 20, Rate: 40, Hold: 3 * time.Second, Digits: "2", DigitDelay: time.Second, Progress: &progress,
	})
	if err != nil {
		t.Fatalf("RunIVR: %v\n%s", err, progress.String())
	}
	var out bytes.Buffer
	rep.WriteText(&out)
	t.Logf("report:\n%s", out.String())

	if rep.Attempted != 20 || rep.Established != 20 || rep.Failed != 0 || rep.EndedEarly != 0 {
		t.Fatalf("attempted %d, established %d, failed %d (%v), ended early %d (%v): want 20 established and held",
			rep.Attempted, rep.Established, rep.Failed, rep.FailReasons, rep.EndedEarly, rep.EarlyWhy)
	}
	if rep.DigitsSent != 20 {
		t.Errorf("digits sent on %d calls, want 20", rep.DigitsSent)
	}
	// 20 calls × ≥ 3 s × 50 packets/s of prompts; allow for the menu's pauses.
	if rep.RTP.Packets < 20*50 || rep.NoAudio != 0 {
		t.Fatalf("received %d packets (%d calls without audio): want real audio on every call", rep.RTP.Packets, rep.NoAudio)
	}
	if want := 100 * float64(rep.RTP.Lost) / float64(rep.RTP.Packets+rep.RTP.Lost); rep.LossPct != want {
		t.Fatalf("loss %.6f%%, want %.6f%% from %d lost of %d", rep.LossPct, want, rep.RTP.Lost, rep.RTP.Expected())
	}
	// Every frame the citizens' pacer was due to send went out or was skipped (counted)
	// because the machine starved the tester; none failed.
	if sent, skipped := rep.RTP.Sent, int64(rep.Client.Meter.PacerSkipped); sent+skipped < 20*3*50*9/10 || rep.RTP.SendErrors != 0 {
		t.Fatalf("citizens sent %d packets and skipped %d (%d errors): want ≥ 50/s per call", sent, skipped, rep.RTP.SendErrors)
	}
	if rep.SetupP50 <= 0 || rep.SetupP99 < rep.SetupP50 || rep.SetupMax < rep.SetupP99 {
		t.Fatalf("setup times p50 %s p99 %s max %s", rep.SetupP50, rep.SetupP99, rep.SetupMax)
	}
	s := rep.Server
	if s == nil {
		t.Fatal("no server figures")
	}
	// The server's own counters agree that media flowed both ways at full load.
	if s.PacketsOut <= 0 || s.PacketsIn <= 0 || s.CallsActive != 20 || s.RSSFull <= 0 || s.RSSIdle <= 0 {
		t.Fatalf("server figures %+v", s)
	}
	if s.CPUSeconds <= 0 || s.CallsEndedTotal != 20 {
		t.Fatalf("server CPU %.3f s, calls ended %v: want > 0 and 20", s.CPUSeconds, s.CallsEndedTotal)
	}
	if !strings.Contains(out.String(), "calls established                 20 of 20") {
		t.Errorf("summary table lacks the established count:\n%s", out.String())
	}
}

func TestIVRConfigRefusesNonLoopback(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  IVRConfig
	}{
		{"target", IVRConfig{Target: netip.MustParseAddrPort("192.0.2.10:5060"), Calls: 1, Rate: 1, Hold: time.Second}},
		{"public IPv6 target", IVRConfig{Target: netip.MustParseAddrPort("[2001:db8::1]:5060"), Calls: 1, Rate: 1, Hold: time.Second}},
		{"metrics", IVRConfig{Target: netip.MustParseAddrPort("127.0.0.1:5060"), MetricsURL: "http://10.0.0.1:8080/metrics", Calls: 1, Rate: 1, Hold: time.Second}},
		{"metrics by name", IVRConfig{Target: netip.MustParseAddrPort("127.0.0.1:5060"), MetricsURL: "http://example.com/metrics", Calls: 1, Rate: 1, Hold: time.Second}},
		{"local address", IVRConfig{Target: netip.MustParseAddrPort("127.0.0.1:5060"), LocalIP: netip.MustParseAddr("10.1.1.1"), Calls: 1, Rate: 1, Hold: time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := RunIVR(context.Background(), tc.cfg)
			if !errors.Is(err, ErrNotLoopback) || rep != nil {
				t.Fatalf("RunIVR: %v, want ErrNotLoopback and no run", err)
			}
		})
	}
	for _, s := range []string{"10.0.0.1:5060", "example.com:5060", "[::ffff:192.0.2.1]:5060"} {
		if _, err := LoopbackAddrPort(s); !errors.Is(err, ErrNotLoopback) {
			t.Errorf("LoopbackAddrPort(%q): %v, want ErrNotLoopback", s, err)
		}
	}
	for _, s := range []string{"127.0.0.1:5060", "127.8.9.10:5070", "localhost:5060", "[::1]:5060"} {
		if _, err := LoopbackAddrPort(s); err != nil {
			t.Errorf("LoopbackAddrPort(%q): %v", s, err)
		}
	}
}

func TestIVRConfigErrors(t *testing.T) {
	ok := IVRConfig{Target: netip.MustParseAddrPort("127.0.0.1:5060"), Calls: 10, Rate: 5, Hold: time.Second}
	for _, tc := range []struct {
		name string
		edit func(*IVRConfig)
	}{
		{"no calls", func(c *IVRConfig) { c.Calls = 0 }},
		{"too many calls", func(c *IVRConfig) { c.Calls = MaxCalls + 1 }},
		{"no rate", func(c *IVRConfig) { c.Rate = 0 }},
		{"no hold", func(c *IVRConfig) { c.Hold = 0 }},
		{"bad codec", func(c *IVRConfig) { c.Codec = "G729" }},
		{"bad digit", func(c *IVRConfig) { c.Digits = "2x" }},
		{"no target", func(c *IVRConfig) { c.Target = netip.AddrPort{} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ok
			tc.edit(&cfg)
			if _, err := RunIVR(context.Background(), cfg); !errors.Is(err, ErrConfig) {
				t.Fatalf("RunIVR: %v, want ErrConfig", err)
			}
		})
	}
}
