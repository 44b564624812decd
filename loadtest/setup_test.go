package loadtest

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// SIPp places 40 calls at 20/s against the real server; all succeed and
// their INVITE→200 times are read from SIPp's per-call trace.
func TestRunSetupWithSIPp(t *testing.T) {
	t.Parallel()
	sipp := needSIPp(t)
	h := startHotlined(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second) // a bound, not a pace: RunSetup stops by itself
	defer cancel()
	rep, err := RunSetup(ctx, SetupConfig{
		Target: netip.MustParseAddrPort(h.SIP), MetricsURL: h.MetricsURL(), Rates: []float64{20},
		Duration: 2 * time.Second, Settle: 500 * time.Millisecond, SIPp: sipp, Scenario: scenarioPath(t),
	})
	if err != nil {
		t.Fatalf("RunSetup: %v", err)
	}
	var out bytes.Buffer
	rep.WriteText(&out)
	t.Logf("report:\n%s", out.String())
	if len(rep.Steps) != 1 {
		t.Fatalf("%d steps, want 1", len(rep.Steps))
	}
	st := rep.Steps[0]
	if st.Calls != 40 || st.Successful != 40 || st.Failed != 0 || !st.Pass || !rep.Pass {
		t.Fatalf("step %+v: want 40 calls, all successful", st)
	}
	if st.AchievedRate < 15 || st.AchievedRate > 25 {
		t.Errorf("achieved %.1f/s, want about 20/s", st.AchievedRate)
	}
	if st.InviteMax < st.InviteP99 || st.InviteP99 < st.InviteP50 {
		t.Errorf("INVITE→200 p50 %s p99 %s max %s out of order", st.InviteP50, st.InviteP99, st.InviteMax)
	}
	if st.ServerCPUPercent <= 0 || st.RSSAfter <= 0 || st.serverSetupHist == nil {
		t.Errorf("server figures missing: %+v", st)
	}
}

func TestSetupConfigErrors(t *testing.T) {
	lo := netip.MustParseAddrPort("127.0.0.1:5060")
	for _, tc := range []struct {
		name string
		cfg  SetupConfig
		want error
	}{
		{"non-loopback target", SetupConfig{Target: netip.MustParseAddrPort("198.51.100.7:5060"), Rates: []float64{10}, Duration: time.Second}, ErrNotLoopback},
		{"non-loopback metrics", SetupConfig{Target: lo, MetricsURL: "http://198.51.100.7:8080/metrics", Rates: []float64{10}, Duration: time.Second}, ErrNotLoopback},
		{"no rates", SetupConfig{Target: lo, Duration: time.Second}, ErrConfig},
		{"zero rate", SetupConfig{Target: lo, Rates: []float64{100, 0}, Duration: time.Second}, ErrConfig},
		{"rate too high", SetupConfig{Target: lo, Rates: []float64{MaxSetupRate + 1}, Duration: time.Second}, ErrConfig},
		{"no duration", SetupConfig{Target: lo, Rates: []float64{10}}, ErrConfig},
		{"no sipp", SetupConfig{Target: lo, Rates: []float64{10}, Duration: time.Second, SIPp: "/nonexistent/sipp"}, ErrNoSIPp},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := RunSetup(context.Background(), tc.cfg); !errors.Is(err, tc.want) {
				t.Fatalf("RunSetup: %v, want %v", err, tc.want)
			}
		})
	}
}

// SIPp's trace files as SIPp 3.6 writes them.
func TestReadSIPpTraces(t *testing.T) {
	dir := t.TempDir()
	stat := "StartTime;LastResetTime;CurrentTime;ElapsedTime(P);ElapsedTime(C);TargetRate;CallRate(P);CallRate(C);OutgoingCall(P);OutgoingCall(C);SuccessfulCall(P);SuccessfulCall(C);FailedCall(P);FailedCall(C);Retransmissions(P);Retransmissions(C)\n" +
		"2026-11-29\t11:52:02.08;x;x;00:00:00;00:00:00;100;0;0;0;0;0;0;0;0;0;0\n" +
		"2026-11-29\t11:52:05.19;x;x;00:00:03;00:00:03;100;0;96.5;0;1000;0;996;0;2;0;7\n"
	rtt := "Date_ms;response_time_ms;rtd_no\n"
	for i := range 100 {
		ms := "1"
		if i == 99 {
			ms = "40"
		}
		rtt += strings.Join([]string{strconv.Itoa(1000 + i*10), ms, "invite"}, ";") + "\n"
	}
	os.WriteFile(filepath.Join(dir, "stat.csv"), []byte(stat), 0o600)
	os.WriteFile(filepath.Join(dir, "x_rtt.csv"), []byte(rtt), 0o600)
	var st SetupStep
	if err := st.readStats(filepath.Join(dir, "stat.csv")); err != nil {
		t.Fatal(err)
	}
	// 1000 created, 996 successful, 2 failed, 2 still open when SIPp stopped: 4 failed.
	if st.Calls != 1000 || st.Successful != 996 || st.Failed != 4 || st.FailPct != 0.4 || st.Retransmissions != 7 {
		t.Fatalf("stats %+v", st)
	}
	if err := st.readRTT(filepath.Join(dir, "x_rtt.csv")); err != nil {
		t.Fatal(err)
	}
	// 100 setups over 990 ms; p99 is the 99th of 100 sorted values.
	if st.InviteP50 != Dur(time.Millisecond) || st.InviteP99 != Dur(time.Millisecond) || st.InviteMax != Dur(40*time.Millisecond) {
		t.Fatalf("p50 %s p99 %s max %s", st.InviteP50, st.InviteP99, st.InviteMax)
	}
	if st.AchievedRate < 99.9 || st.AchievedRate > 100.1 {
		t.Fatalf("achieved %.2f/s, want 100/s", st.AchievedRate)
	}
}
