package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The soak (issue 11): citizens and agents at about 60 % of the agents' capacity (8 agents,
// 2 s talk, 1 s wrap-up: some 2.4 calls/s; 1.5 offered) for 3 minutes (HOTLINE_SOAK_DURATION for the
// long run) against a real hotlined, with the server's memory, goroutines, open files, calls
// and agents watched: they must stay flat and return to idle once the traffic is over.
func TestSoak(t *testing.T) {
	t.Parallel()
	d := 3 * time.Minute
	if v := os.Getenv("HOTLINE_SOAK_DURATION"); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil || d < time.Minute {
			t.Fatalf("HOTLINE_SOAK_DURATION %q: want a duration of at least 1m", v)
		}
	}
	h := startServer(t, "30000-31998")
	html := filepath.Join(t.TempDir(), "soak.html")
	ctx, cancel := context.WithTimeout(context.Background(), d+4*time.Minute) // a bound: the run stops by itself
	defer cancel()
	var out, errb bytes.Buffer
	code := run(ctx, []string{"day", "--target", h.SIP, "--api", "http://" + h.HTTP,
		"--soak", "http://" + h.HTTP + "/metrics", "--soak-every", "3s", "--soak-settle", "60s",
		"--agents", "8", "--rate", "1.5", "--duration", d.String(), "--max-calls", "20000",
		"--talk", "2s", "--ring-delay", "200ms", "--patience", "60s", "--seed", "7", "--html", html, "--quiet"}, &out, &errb)
	stdout := out.String()
	t.Logf("soak of %s:\n%s", d, stdout)
	if code != 0 {
		t.Fatalf("soak: exit %d\n%s", code, errb.String())
	}
	page, err := os.ReadFile(html)
	if err != nil {
		t.Fatal(err)
	}
	for _, series := range []string{"server_rss", "server_goroutines", "server_fds"} {
		if !strings.Contains(string(page), `data-series="`+series+`"`) {
			t.Errorf("the HTML report has no %s plot", series)
		}
	}
	for _, want := range []string{"ok   memory flat", "ok   goroutines flat", "ok   calls ended", "ok   no agent stuck", "ok   goroutines back", "ok   open files back"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("soak report lacks %q", want)
		}
	}
}
