package loadtest

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"
)

// A soak is a day run held for a long time while the server's resources are
// read from its /metrics: memory, goroutines, open files, calls and RTP
// streams, agents. It passes when the day passes, nothing grows through the
// run, and once the traffic is over the server returns to what it held idle
// before the run (no call, stream, goroutine or socket left behind, no agent
// stuck on a call).

// Soak defaults and tolerances.
const (
	DefaultSoakEvery  = 5 * time.Second
	DefaultSoakSettle = 90 * time.Second
	// soakGoroutineSlack and soakFDSlack: what the server may hold after the
	// run beyond its idle figures (HTTP keep-alives, a collector's timers).
	soakGoroutineSlack = 25
	soakFDSlack        = 8
	// soakGrowth, soakRSSSlack: the steady run's last third may exceed its
	// first third by this share plus this much before it counts as growth.
	soakGrowth   = 0.10
	soakRSSSlack = 16 << 20
)

// SoakConfig is a day run with the server's resources watched.
type SoakConfig struct {
	Day     DayConfig
	Metrics string        // the server's /metrics URL (required)
	Every   time.Duration // sampling interval; default DefaultSoakEvery
	Settle  time.Duration // after the run, how long the server may take to return to idle; default DefaultSoakSettle
}

// SoakSample is one reading of the server's resources.
type SoakSample struct {
	At         Dur     `json:"at"` // since the run began (negative: before)
	RSS        float64 `json:"rss_bytes"`
	HeapInuse  float64 `json:"heap_inuse_bytes"`
	Goroutines float64 `json:"goroutines"`
	OpenFDs    float64 `json:"open_fds"`
	Calls      float64 `json:"calls"`       // hotline_calls_active, all stages
	Streams    float64 `json:"rtp_streams"` // hotline_rtp_streams
	AgentsBusy float64 `json:"agents_busy"` // agents reserved or on a call
}

// SoakCheck is one verdict of a soak.
type SoakCheck struct {
	Name   string `json:"name"`
	Passed bool   `json:"passed"`
	Detail string `json:"detail"`
}

// SoakReport is a soak's day report with the resource samples and verdicts.
type SoakReport struct {
	Day     *DayReport   `json:"day"`
	Idle    SoakSample   `json:"idle"`  // before the run
	After   SoakSample   `json:"after"` // once settled (or at the settle deadline)
	Samples []SoakSample `json:"samples"`
	Checks  []SoakCheck  `json:"checks"`
}

// Passed reports whether the day passed and every check did.
func (r *SoakReport) Passed() bool {
	if r.Day == nil || !r.Day.Passed() {
		return false
	}
	for _, c := range r.Checks {
		if !c.Passed {
			return false
		}
	}
	return true
}

// WriteText writes the day's table, then the resources and the verdicts.
func (r *SoakReport) WriteText(w io.Writer) error {
	if r.Day != nil {
		if err := r.Day.WriteText(w); err != nil {
			return err
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nserver resources (idle before → peak during → after the run)\n")
	peak := SoakSample{}
	for _, s := range r.Samples {
		peak = maxSample(peak, s)
	}
	row := func(name string, f func(SoakSample) float64, unit float64, suffix string) {
		fmt.Fprintf(&b, "  %-12s %10.1f → %10.1f → %10.1f %s\n", name, f(r.Idle)/unit, f(peak)/unit, f(r.After)/unit, suffix)
	}
	row("RSS", func(s SoakSample) float64 { return s.RSS }, 1<<20, "MiB")
	row("heap in use", func(s SoakSample) float64 { return s.HeapInuse }, 1<<20, "MiB")
	row("goroutines", func(s SoakSample) float64 { return s.Goroutines }, 1, "")
	row("open files", func(s SoakSample) float64 { return s.OpenFDs }, 1, "")
	row("calls", func(s SoakSample) float64 { return s.Calls }, 1, "")
	row("RTP streams", func(s SoakSample) float64 { return s.Streams }, 1, "")
	row("agents busy", func(s SoakSample) float64 { return s.AgentsBusy }, 1, "")
	for _, c := range r.Checks {
		v := "ok  "
		if !c.Passed {
			v = "FAIL"
		}
		fmt.Fprintf(&b, "  %s %-22s %s\n", v, c.Name, c.Detail)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func maxSample(a, b SoakSample) SoakSample {
	return SoakSample{
		RSS: max(a.RSS, b.RSS), HeapInuse: max(a.HeapInuse, b.HeapInuse), Goroutines: max(a.Goroutines, b.Goroutines),
		OpenFDs: max(a.OpenFDs, b.OpenFDs), Calls: max(a.Calls, b.Calls), Streams: max(a.Streams, b.Streams),
		AgentsBusy: max(a.AgentsBusy, b.AgentsBusy),
	}
}

// readSoak scrapes the server once.
func readSoak(ctx context.Context, url string, start time.Time) (SoakSample, error) {
	sc, err := ScrapeMetrics(ctx, url)
	if err != nil {
		return SoakSample{}, err
	}
	return SoakSample{
		At:         Dur(sc.At.Sub(start)),
		RSS:        sc.Samples[mRSS],
		HeapInuse:  sc.Samples[mGoHeapInuse],
		Goroutines: sc.Samples[mGoroutines],
		OpenFDs:    sc.Samples["process_open_fds"],
		Calls:      sc.Sum(mCallsActive),
		Streams:    sc.Samples["hotline_rtp_streams"],
		AgentsBusy: sc.Samples[`hotline_agents{state="on_call"}`] + sc.Samples[`hotline_agents{state="reserved"}`],
	}, nil
}

// RunSoak runs the day of cfg.Day while sampling the server every cfg.Every,
// then waits up to cfg.Settle for it to return to idle and judges the run.
// Errors are RunDay's, or ErrConfig/ErrUnreachable for the metrics URL.
func RunSoak(ctx context.Context, cfg SoakConfig, progress func(Sample)) (*SoakReport, *Truth, error) {
	if cfg.Metrics == "" {
		return nil, nil, fmt.Errorf("%w: the server's metrics URL is required for a soak", ErrConfig)
	}
	if err := cfg.Day.validate(); err != nil {
		return nil, nil, err
	}
	if !cfg.Day.AllowRemote {
		if _, err := LoopbackURL(cfg.Metrics); err != nil {
			return nil, nil, err
		}
	}
	if cfg.Every <= 0 {
		cfg.Every = DefaultSoakEvery
	}
	if cfg.Settle <= 0 {
		cfg.Settle = DefaultSoakSettle
	}
	start := time.Now()
	idle, err := readSoak(ctx, cfg.Metrics, start)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	rep := &SoakReport{Idle: idle}

	sampleCtx, stopSampling := context.WithCancel(ctx)
	sampled := make(chan []SoakSample, 1)
	go func() {
		var out []SoakSample
		t := time.NewTicker(cfg.Every)
		defer t.Stop()
		for {
			select {
			case <-sampleCtx.Done():
				sampled <- out
				return
			case <-t.C:
				if s, err := readSoak(sampleCtx, cfg.Metrics, start); err == nil {
					out = append(out, s)
				}
			}
		}
	}()
	day, truth, runErr := RunDay(ctx, cfg.Day, progress)
	stopSampling()
	rep.Samples = <-sampled
	rep.Day = day
	if day == nil {
		return nil, nil, runErr
	}
	mergeResources(day.Samples, rep.Samples, day.Started.Sub(start))

	// Back to idle: poll until the after-run checks hold or Settle ends.
	deadline := time.Now().Add(cfg.Settle)
	for {
		s, err := readSoak(ctx, cfg.Metrics, start)
		if err == nil {
			rep.After = s
			if allPassed(afterChecks(idle, s)) {
				break
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	rep.Checks = append(afterChecks(idle, rep.After), growthChecks(rep.Samples, cfg.Day.Duration)...)
	return rep, truth, runErr
}

// mergeResources copies each resource sample into the day's sample of the
// same second (the day began offset after the soak), for the HTML plots.
func mergeResources(days []Sample, res []SoakSample, offset time.Duration) {
	j := 0
	for _, r := range res {
		at := time.Duration(r.At) - offset
		for j+1 < len(days) && days[j+1].At.D() <= at {
			j++
		}
		if j < len(days) && (at-days[j].At.D()).Abs() <= 2*time.Second {
			d := &days[j]
			d.ServerRSSMiB, d.ServerGoroutines, d.ServerOpenFDs = r.RSS/(1<<20), int(r.Goroutines), int(r.OpenFDs)
		}
	}
}

func allPassed(cs []SoakCheck) bool {
	for _, c := range cs {
		if !c.Passed {
			return false
		}
	}
	return true
}

// afterChecks: the server holds after the run what it held before it.
func afterChecks(idle, after SoakSample) []SoakCheck {
	return []SoakCheck{
		{"calls ended", after.Calls == 0 && after.Streams == 0,
			fmt.Sprintf("%.0f calls and %.0f RTP streams left", after.Calls, after.Streams)},
		{"no agent stuck", after.AgentsBusy == 0,
			fmt.Sprintf("%.0f agents still reserved or on a call", after.AgentsBusy)},
		{"goroutines back", after.Goroutines <= idle.Goroutines+soakGoroutineSlack,
			fmt.Sprintf("%.0f after, %.0f idle before (slack %d)", after.Goroutines, idle.Goroutines, soakGoroutineSlack)},
		{"open files back", after.OpenFDs <= idle.OpenFDs+soakFDSlack,
			fmt.Sprintf("%.0f after, %.0f idle before (slack %d)", after.OpenFDs, idle.OpenFDs, soakFDSlack)},
	}
}

// growthChecks compares the steady part of the run (from a quarter of the
// arrivals on: the ramp-up excluded) by thirds: the last third's peak
// memory and mean goroutines may not exceed the first third's by more
// than soakGrowth (plus a little) — a leak grows with the calls served.
func growthChecks(samples []SoakSample, arrivals time.Duration) []SoakCheck {
	var steady []SoakSample
	for _, s := range samples {
		if time.Duration(s.At) >= arrivals/4 && time.Duration(s.At) <= arrivals {
			steady = append(steady, s)
		}
	}
	if len(steady) < 6 {
		return []SoakCheck{{"steady samples", false, fmt.Sprintf("only %d samples in the steady part of the run: run longer or sample more often", len(steady))}}
	}
	n := len(steady) / 3
	first, last := steady[:n], steady[len(steady)-n:]
	peak := func(ss []SoakSample) (rss float64) {
		for _, s := range ss {
			rss = max(rss, s.RSS)
		}
		return rss
	}
	mean := func(ss []SoakSample) (g float64) {
		for _, s := range ss {
			g += s.Goroutines
		}
		return g / float64(len(ss))
	}
	r1, r3 := peak(first), peak(last)
	g1, g3 := mean(first), mean(last)
	return []SoakCheck{
		{"memory flat", r3 <= r1*(1+soakGrowth)+soakRSSSlack,
			fmt.Sprintf("RSS peak %.1f MiB in the first third of the steady run, %.1f MiB in the last", r1/(1<<20), r3/(1<<20))},
		{"goroutines flat", g3 <= g1*(1+soakGrowth)+soakGoroutineSlack,
			fmt.Sprintf("mean %.0f in the first third, %.0f in the last", g1, g3)},
	}
}
