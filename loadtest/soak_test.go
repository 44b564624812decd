package loadtest

import (
	"testing"
	"time"
)

func soakRun(n int, rss func(i int) float64, goroutines func(i int) float64) []SoakSample {
	var out []SoakSample
	for i := range n {
		out = append(out, SoakSample{At: Dur(time.Duration(i) * time.Second), RSS: rss(i), Goroutines: goroutines(i)})
	}
	return out
}

func check(t *testing.T, cs []SoakCheck, name string) SoakCheck {
	t.Helper()
	for _, c := range cs {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no check %q in %+v", name, cs)
	return SoakCheck{}
}

// A leak (memory or goroutines growing with the calls served) fails the
// soak; noise and the ramp-up do not.
func TestSoakGrowthChecks(t *testing.T) {
	const mib = 1 << 20
	flat := soakRun(120, func(i int) float64 { return 80*mib + float64(i%7)*mib }, func(i int) float64 { return 400 + float64(i%5)*10 })
	for _, name := range []string{"memory flat", "goroutines flat"} {
		if c := check(t, growthChecks(flat, 120*time.Second), name); !c.Passed {
			t.Errorf("flat run: %s failed: %s", name, c.Detail)
		}
	}
	// The ramp (first quarter) may climb steeply.
	ramp := soakRun(120, func(i int) float64 { return float64(min(i, 30)) * 4 * mib }, func(i int) float64 { return float64(min(i, 30)) * 20 })
	if c := check(t, growthChecks(ramp, 120*time.Second), "memory flat"); !c.Passed {
		t.Errorf("ramp-up counted as growth: %s", c.Detail)
	}
	leak := soakRun(120, func(i int) float64 { return 80*mib + float64(i)*mib }, func(i int) float64 { return 400 + float64(i)*5 })
	for _, name := range []string{"memory flat", "goroutines flat"} {
		if c := check(t, growthChecks(leak, 120*time.Second), name); c.Passed {
			t.Errorf("leaking run: %s passed: %s", name, c.Detail)
		}
	}
	if c := check(t, growthChecks(flat[:10], 120*time.Second), "steady samples"); c.Passed {
		t.Errorf("too few samples judged: %+v", c)
	}
}

func TestSoakAfterChecks(t *testing.T) {
	idle := SoakSample{Goroutines: 60, OpenFDs: 20}
	if cs := afterChecks(idle, SoakSample{Goroutines: 70, OpenFDs: 22}); !allPassed(cs) {
		t.Errorf("back to idle judged not: %+v", cs)
	}
	for _, tc := range []struct {
		name  string
		after SoakSample
	}{
		{"calls ended", SoakSample{Goroutines: 60, OpenFDs: 20, Calls: 1}},
		{"calls ended", SoakSample{Goroutines: 60, OpenFDs: 20, Streams: 2}},
		{"no agent stuck", SoakSample{Goroutines: 60, OpenFDs: 20, AgentsBusy: 1}},
		{"goroutines back", SoakSample{Goroutines: 200, OpenFDs: 20}},
		{"open files back", SoakSample{Goroutines: 60, OpenFDs: 40}},
	} {
		if c := check(t, afterChecks(idle, tc.after), tc.name); c.Passed {
			t.Errorf("%s passed with %+v", tc.name, tc.after)
		}
	}
}
