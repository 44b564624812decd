package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hotline12345/hotline/loadtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(cleanupM{m}) }

func runCmd(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second) // a bound: a run stops by itself
	defer cancel()
	code = run(ctx, args, &out, &errb)
	return code, out.String(), errb.String()
}

// Bad usage exits 2 with a message naming the problem, before any call is placed.
func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no command", nil, "usage: hotline-loadtest"},
		{"unknown command", []string{"flood"}, `unknown command "flood"`},
		{"ivr without calls", []string{"ivr", "--rate", "10"}, "--calls is required"},
		{"ivr without rate", []string{"ivr", "--calls", "10"}, "--rate is required"},
		{"ivr unknown flag", []string{"ivr", "--calls", "10", "--rate", "1", "--bogus"}, "flag provided but not defined: -bogus"},
		{"ivr bad duration", []string{"ivr", "--calls", "10", "--rate", "1", "--hold", "forever"}, `invalid value "forever" for flag -hold`},
		{"ivr bad codec", []string{"ivr", "--calls", "10", "--rate", "1", "--codec", "G729"}, `codec "G729"`},
		{"ivr too many calls", []string{"ivr", "--calls", "1000000", "--rate", "1"}, "calls 1000000"},
		{"ivr stray argument", []string{"ivr", "--calls", "1", "--rate", "1", "now"}, `unexpected argument "now"`},
		{"setup without rate", []string{"setup"}, "--rate or --ramp is required"},
		{"setup rate and ramp", []string{"setup", "--rate", "10", "--ramp", "10,20"}, "not both"},
		{"setup bad ramp", []string{"setup", "--ramp", "200,lots"}, `"lots" is not a number`},
		{"setup bad target", []string{"setup", "--rate", "10", "--target", "127.0.0.1"}, "want IP:PORT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCmd(tc.args...)
			if code != 2 || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q: want exit 2 and %q", code, stderr, tc.want)
			}
		})
	}
}

// Anything off the loopback is refused with a clear error, whatever the flag.
func TestRefusesNonLoopback(t *testing.T) {
	for _, args := range [][]string{
		{"ivr", "--target", "192.0.2.1:5060", "--calls", "1", "--rate", "1"},
		{"ivr", "--target", "sip.example.com:5060", "--calls", "1", "--rate", "1"},
		{"ivr", "--target", "[2001:db8::5]:5060", "--calls", "1", "--rate", "1"},
		{"ivr", "--metrics", "http://203.0.113.9:8080/metrics", "--calls", "1", "--rate", "1"},
		{"ivr", "--local-ip", "10.0.0.2", "--calls", "1", "--rate", "1"},
		{"setup", "--target", "8.8.8.8:5060", "--rate", "100"},
		{"setup", "--metrics", "http://10.9.9.9/metrics", "--rate", "100"},
	} {
		code, stdout, stderr := runCmd(args...)
		if code != 2 || !strings.Contains(stderr, "not a loopback address") || stdout != "" {
			t.Errorf("%v: exit %d, stderr %q: want exit 2 refusing a non-loopback address", args, code, stderr)
		}
	}
}

// The whole command against the real server: 20 calls held for 3 s, JSON out.
func TestIVRCommandAgainstServer(t *testing.T) {
	dir := t.TempDir()
	h, err := loadtest.StartHotlined(hotlinedBinary(t), loadtest.LoadConfig, dir, "54000-55998", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Stop()
	code, stdout, stderr := runCmd("ivr", "--target", h.SIP, "--metrics", h.MetricsURL(),
		"--calls", "20", "--rate", "40", "--hold", "3s", "--json")
	var rep struct {
		Calls, Established, Failed int
		LossPct                    float64 `json:"loss_pct"`
		RTP                        struct{ Packets, Lost int64 }
		Server                     *struct {
			RSSPerCallKiB float64 `json:"rss_per_call_kib"`
			CPUSeconds    float64 `json:"plateau_cpu_seconds"`
		}
		Pass     bool
		Problems []string
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("exit %d: output is not the JSON report: %v\n%s\n%s", code, err, stdout, stderr)
	}
	t.Logf("exit %d, report %+v", code, rep)
	if rep.Calls != 20 || rep.Established != 20 || rep.Failed != 0 {
		t.Fatalf("established %d of %d (failed %d): want all 20\n%s", rep.Established, rep.Calls, rep.Failed, stderr)
	}
	if rep.RTP.Packets < 1000 || rep.LossPct != 100*float64(rep.RTP.Lost)/float64(rep.RTP.Packets+rep.RTP.Lost) {
		t.Fatalf("RTP %+v, loss %v%%: want real counts", rep.RTP, rep.LossPct)
	}
	if rep.Server == nil || rep.Server.CPUSeconds <= 0 {
		t.Fatalf("no server figures: %+v", rep.Server)
	}
	// Exit status follows the verdict (a loaded CI machine may miss the lateness criterion).
	if want := map[bool]int{true: 0, false: 1}[rep.Pass]; code != want {
		t.Fatalf("exit %d with pass=%v (%v)", code, rep.Pass, rep.Problems)
	}
	if !strings.Contains(stderr, "20 of 20 calls established") {
		t.Errorf("progress lines missing: %q", stderr)
	}
}
