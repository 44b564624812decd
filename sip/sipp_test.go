package sip

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestSIPp runs our SIPp scenarios (testdata/sipp/sip_*.xml) against a real Server.
func TestSIPp(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("sipp"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("sipp is required under CI (Debian package sip-tester)")
		}
		t.Skip("sipp not installed (Debian package sip-tester)")
	}
	tests := []struct {
		scenario string
		check    func(t *testing.T, tl *testLeg)
	}{
		{"sip_late_offer.xml", func(t *testing.T, tl *testLeg) {
			if m := tl.media; m.PayloadType != PayloadPCMU || m.DTMFType != 101 {
				t.Errorf("media from the ACK %+v, want PCMU with 101", m)
			}
		}},
		{"sip_reinvite_hold.xml", func(t *testing.T, tl *testLeg) {
			if m := tl.Media(); m.OnHold() || m.PayloadType != PayloadPCMA {
				t.Errorf("media after resume %+v", m)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.scenario, func(t *testing.T) {
			t.Parallel()
			ts := startServer(t)
			scenario, err := filepath.Abs(filepath.Join("..", "testdata", "sipp", tt.scenario))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, "sipp", ts.Addr().String(), "-sf", scenario,
				"-s", testDID, "-m", "1", "-nostdin", "-timeout", "10s", "-timeout_error",
				"-i", "127.0.0.1", "-p", "0", "-mp", "0", "-trace_err")
			cmd.Dir = t.TempDir()
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Run(); err != nil {
				logs, _ := filepath.Glob(filepath.Join(cmd.Dir, "*"))
				for _, l := range logs {
					if b, err := os.ReadFile(l); err == nil {
						out.WriteString("\n--- " + filepath.Base(l) + " ---\n")
						out.Write(b)
					}
				}
				t.Fatalf("sipp %s: %v\n%s", tt.scenario, err, out.String())
			}
			tl := ts.nextCall(t)
			tl.waitAnswered(t)
			tl.waitDone(t)
			if side, cause, _ := tl.End(); side != SideCaller || cause != "BYE" {
				t.Errorf("End() = %s %s", side, cause)
			}
			tt.check(t, tl)
		})
	}
}
