package loadtest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// hotlinedBinary builds cmd/hotlined once per test run.
func hotlinedBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "hotline-loadtest-bin")
		if err != nil {
			buildErr = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute) // a cold build cache on a busy machine
		defer cancel()
		binPath, buildErr = BuildHotlined(ctx, dir)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// startHotlined runs the real server with LoadConfig; it stops when the test ends.
func startHotlined(t *testing.T) *Hotlined {
	t.Helper()
	dir := t.TempDir()
	h, err := StartHotlined(hotlinedBinary(t), LoadConfig, dir, "52000-53998", testLog{t})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Stop)
	return h
}

type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Logf("hotlined: %s", p)
	return len(p), nil
}

// needSIPp returns sipp's path, skipping without it except under CI=true.
func needSIPp(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("sipp")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("sipp is required under CI (Debian package sip-tester): %v", err)
		}
		t.Skipf("sipp not installed (Debian package sip-tester): %v; skipping the SIPp setup-rate test", err)
	}
	return path
}

func scenarioPath(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "testdata", "sipp", "load_setup.xml"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}
