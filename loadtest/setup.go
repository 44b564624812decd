package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// Defaults and bounds of a call-setup run.
const (
	DefaultCallHold    = 100 * time.Millisecond
	DefaultMaxFailPct  = 0.1
	DefaultSettle      = 5 * time.Second
	DefaultRecvTimeout = 5 * time.Second
	DefaultScenario    = "testdata/sipp/load_setup.xml"
	MaxSetupRate       = 5000.0
	MaxStepDuration    = 10 * time.Minute
	MaxSteps           = 20
	sippSlack          = 30 * time.Second
	sampleEvery        = time.Second
)

// SetupConfig configures RunSetup.
type SetupConfig struct {
	Target      netip.AddrPort // loopback only
	MetricsURL  string         // empty: no server figures
	Number      string         // default 12345
	Rates       []float64      // call setups per second, one step each, in order
	Duration    time.Duration  // per step
	CallHold    time.Duration  // ACK → BYE pause; default DefaultCallHold
	MaxFailPct  float64        // a step failing more than this ends the ramp; default DefaultMaxFailPct
	RecvTimeout time.Duration  // SIPp -recv_timeout: a missing response fails the call; default 5 s
	Settle      time.Duration  // pause after each step; default DefaultSettle
	Scenario    string         // default DefaultScenario, looked up from the working directory upwards
	SIPp        string         // default "sipp"
	LocalIP     netip.Addr     // default 127.0.0.1
	Logger      *slog.Logger
	Progress    io.Writer
}

func (c *SetupConfig) validate() error {
	if err := checkEndpoints(c.Target, c.MetricsURL, &c.LocalIP); err != nil {
		return err
	}
	if len(c.Rates) == 0 || len(c.Rates) > MaxSteps {
		return fmt.Errorf("%w: want 1-%d rates, got %d", ErrConfig, MaxSteps, len(c.Rates))
	}
	for _, r := range c.Rates {
		if !(r > 0 && r <= MaxSetupRate) {
			return fmt.Errorf("%w: rate %g: want more than 0 and at most %g per second", ErrConfig, r, MaxSetupRate)
		}
	}
	if c.Duration <= 0 || c.Duration > MaxStepDuration {
		return fmt.Errorf("%w: duration %s: want more than 0 and at most %s", ErrConfig, c.Duration, MaxStepDuration)
	}
	if c.CallHold < 0 || c.RecvTimeout < 0 || c.Settle < 0 || c.MaxFailPct < 0 {
		return fmt.Errorf("%w: negative setting", ErrConfig)
	}
	if c.Number == "" {
		c.Number = DefaultNumber
	}
	if c.CallHold == 0 {
		c.CallHold = DefaultCallHold
	}
	if c.MaxFailPct == 0 {
		c.MaxFailPct = DefaultMaxFailPct
	}
	if c.RecvTimeout == 0 {
		c.RecvTimeout = DefaultRecvTimeout
	}
	if c.SIPp == "" {
		c.SIPp = "sipp"
	}
	path, err := exec.LookPath(c.SIPp)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNoSIPp, err)
	}
	c.SIPp = path
	if c.Scenario == "" {
		if c.Scenario, err = findUp(DefaultScenario); err != nil {
			return err
		}
	}
	if c.Scenario, err = filepath.Abs(c.Scenario); err != nil {
		return err
	}
	if _, err := os.Stat(c.Scenario); err != nil {
		return fmt.Errorf("%w: scenario: %v", ErrConfig, err)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	return nil
}

// findUp looks for rel in the working directory and its parents.
func findUp(rel string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, rel)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("%w: %s not found from the working directory up; give --scenario", ErrConfig, rel)
		}
		dir = parent
	}
}

// SetupStep is one rate of a setup run.
type SetupStep struct {
	TargetRate      float64 `json:"target_rate"`
	Calls           int64   `json:"calls"` // created by SIPp
	Successful      int64   `json:"successful"`
	Failed          int64   `json:"failed"`
	FailPct         float64 `json:"fail_pct"`
	Retransmissions int64   `json:"retransmissions"`
	AchievedRate    float64 `json:"achieved_rate"` // INVITE→200 completions per second, first to last
	InviteP50       Dur     `json:"invite_200_p50_ms"`
	InviteP99       Dur     `json:"invite_200_p99_ms"` // SIPp response-time measure, 1 ms resolution
	InviteP999      Dur     `json:"invite_200_p999_ms"`
	InviteMax       Dur     `json:"invite_200_max_ms"`
	Wall            Dur     `json:"wall_ms"`
	SIPpCPUPercent  float64 `json:"sipp_cpu_percent"`
	SIPpExit        int     `json:"sipp_exit"`
	LoadAvg         string  `json:"load_average"`

	ServerSetupP50   Bound   `json:"server_setup_p50_s"` // hotline_call_setup_seconds (INVITE → ACK), bucket bound
	ServerSetupP99   Bound   `json:"server_setup_p99_s"`
	ServerCPUPercent float64 `json:"server_cpu_percent"`
	ServerCPUPerCall Dur     `json:"server_cpu_per_call_ms"`
	RSSBefore        float64 `json:"rss_before_bytes"`
	RSSPeak          float64 `json:"rss_peak_bytes"`
	RSSAfter         float64 `json:"rss_after_bytes"` // when SIPp is done
	RSSSettled       float64 `json:"rss_settled_bytes"`
	GoroutinesPeak   float64 `json:"goroutines_peak"`
	HeapInuseAfter   float64 `json:"heap_inuse_after_bytes"`
	serverSetupHist  []Bucket

	Pass    bool   `json:"pass"`
	Problem string `json:"problem,omitempty"`
}

// SetupReport is the outcome of RunSetup.
type SetupReport struct {
	Target     string      `json:"target"`
	CallHold   Dur         `json:"call_hold_ms"`
	Duration   Dur         `json:"step_duration_ms"`
	MaxFailPct float64     `json:"max_fail_pct"`
	Steps      []SetupStep `json:"steps"`
	BestRate   float64     `json:"best_rate"` // highest achieved rate of a step within MaxFailPct
	Pass       bool        `json:"pass"`
}

// RunSetup runs SIPp at each rate in turn for cfg.Duration and stops after
// the first step whose failures pass cfg.MaxFailPct.
func RunSetup(ctx context.Context, cfg SetupConfig) (*SetupReport, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	rep := &SetupReport{Target: cfg.Target.String(), CallHold: Dur(cfg.CallHold), Duration: Dur(cfg.Duration), MaxFailPct: cfg.MaxFailPct}
	for i, rate := range cfg.Rates {
		if i > 0 && cfg.Settle > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(cfg.Settle):
			}
		}
		if ctx.Err() != nil {
			break
		}
		fmt.Fprintf(cfg.Progress, "step %d: %g setups/s for %s (load average %s)\n", i+1, rate, cfg.Duration, loadAverage())
		st, err := runSetupStep(ctx, cfg, rate)
		if err != nil {
			rep.finish(len(cfg.Rates))
			return rep, err
		}
		if cfg.MetricsURL != "" && cfg.Settle > 0 {
			// Memory once the step's transactions have had time to go.
			select {
			case <-ctx.Done():
			case <-time.After(cfg.Settle):
				if s, err := ScrapeMetrics(ctx, cfg.MetricsURL); err == nil {
					st.RSSSettled = s.Get(mRSS)
				}
			}
		}
		rep.Steps = append(rep.Steps, *st)
		fmt.Fprintf(cfg.Progress, "step %d: %d calls, %d failed (%.3f%%), achieved %.0f/s, p99 INVITE→200 %s\n",
			i+1, st.Calls, st.Failed, st.FailPct, st.AchievedRate, st.InviteP99)
		if st.Pass {
			rep.BestRate = math.Max(rep.BestRate, st.AchievedRate)
		} else {
			break
		}
	}
	rep.finish(len(cfg.Rates))
	return rep, ctx.Err()
}

// finish sets the verdict: a ramp passes when some step stayed within the
// failure threshold, a single rate when its step did.
func (r *SetupReport) finish(rates int) {
	r.Pass = r.BestRate > 0
	if rates == 1 {
		r.Pass = len(r.Steps) == 1 && r.Steps[0].Pass
	}
}

func runSetupStep(ctx context.Context, cfg SetupConfig, rate float64) (*SetupStep, error) {
	st := &SetupStep{TargetRate: rate, LoadAvg: loadAverage()}
	dir, err := os.MkdirTemp("", "hotline-loadtest-sipp")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	calls := int(math.Ceil(rate * cfg.Duration.Seconds()))
	limit := int(rate*(cfg.CallHold+2*cfg.RecvTimeout).Seconds()) + 100
	budget := cfg.Duration + cfg.CallHold + 2*cfg.RecvTimeout + sippSlack
	args := []string{
		cfg.Target.String(), "-sf", cfg.Scenario, "-s", cfg.Number, "-i", cfg.LocalIP.String(), "-p", "0", "-mp", "0",
		"-r", strconv.FormatFloat(rate, 'f', -1, 64), "-rp", "1000", "-m", strconv.Itoa(calls), "-l", strconv.Itoa(limit),
		"-d", strconv.FormatInt(cfg.CallHold.Milliseconds(), 10),
		"-recv_timeout", strconv.FormatInt(cfg.RecvTimeout.Milliseconds(), 10),
		"-timeout", strconv.Itoa(int(budget.Seconds())) + "s",
		"-nostdin", "-buff_size", "4194304",
		"-trace_stat", "-stf", "stat.csv", "-fd", "1", "-trace_rtt", "-rtt_freq", "1",
	}
	var before *Scrape
	if cfg.MetricsURL != "" {
		if before, err = ScrapeMetrics(ctx, cfg.MetricsURL); err != nil {
			return nil, err
		}
		st.RSSBefore = before.Get(mRSS)
	}
	sctx, cancel := context.WithTimeout(ctx, budget+10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(sctx, cfg.SIPp, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cfg.Logger.Debug("sipp", "args", strings.Join(args, " "))

	// Sample the server while SIPp runs: peak memory and goroutines.
	var sampler sync.WaitGroup
	stopSampling := make(chan struct{})
	if cfg.MetricsURL != "" {
		sampler.Add(1)
		go func() {
			defer sampler.Done()
			t := time.NewTicker(sampleEvery)
			defer t.Stop()
			for {
				select {
				case <-stopSampling:
					return
				case <-t.C:
					if s, err := ScrapeMetrics(sctx, cfg.MetricsURL); err == nil {
						st.RSSPeak = math.Max(st.RSSPeak, s.Get(mRSS))
						st.GoroutinesPeak = math.Max(st.GoroutinesPeak, s.Get(mGoroutines))
					}
				}
			}
		}()
	}
	t0 := time.Now()
	runErr := cmd.Run()
	st.Wall = Dur(time.Since(t0))
	close(stopSampling)
	sampler.Wait()
	if ps := cmd.ProcessState; ps != nil {
		st.SIPpExit = ps.ExitCode()
		st.SIPpCPUPercent = 100 * (ps.UserTime() + ps.SystemTime()).Seconds() / math.Max(st.Wall.D().Seconds(), 1e-9)
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if err := st.readStats(filepath.Join(dir, "stat.csv")); err != nil {
		return nil, fmt.Errorf("loadtest: sipp %v: %w\n%s", runErr, err, tail(out.String(), 2000))
	}
	rtts, err := filepath.Glob(filepath.Join(dir, "*_rtt.csv"))
	if err == nil && len(rtts) > 0 {
		if err := st.readRTT(rtts[0]); err != nil {
			return nil, err
		}
	}
	if cfg.MetricsURL != "" {
		after, err := ScrapeMetrics(ctx, cfg.MetricsURL)
		if err != nil {
			// An overloaded server may not answer its scrape in time: the
			// step fails, the ramp ends, the figures so far stand.
			st.Problem = fmt.Sprintf("server /metrics did not answer after the step: %v", err)
			return st, nil
		}
		st.RSSAfter = after.Get(mRSS)
		st.RSSPeak = math.Max(st.RSSPeak, st.RSSAfter)
		st.HeapInuseAfter = after.Get(mGoHeapInuse)
		st.serverSetupHist = HistogramDelta(after.Histogram(mSetup), before.Histogram(mSetup))
		st.ServerSetupP50, st.ServerSetupP99 = Quantile(st.serverSetupHist, 0.5), Quantile(st.serverSetupHist, 0.99)
		cpu := after.Get(mCPU) - before.Get(mCPU)
		if secs := after.At.Sub(before.At).Seconds(); secs > 0 {
			st.ServerCPUPercent = 100 * cpu / secs
		}
		if st.Calls > 0 {
			st.ServerCPUPerCall = Dur(time.Duration(cpu / float64(st.Calls) * float64(time.Second)))
		}
	}
	switch {
	case st.Problem != "":
	case st.Calls == 0:
		st.Problem = fmt.Sprintf("SIPp placed no calls (exit %d): %s", st.SIPpExit, tail(out.String(), 500))
	case st.FailPct > cfg.MaxFailPct:
		st.Problem = fmt.Sprintf("%.3f%% of calls failed, more than %g%%", st.FailPct, cfg.MaxFailPct)
	case st.SIPpExit > 1:
		st.Problem = fmt.Sprintf("SIPp exited with %d: %s", st.SIPpExit, tail(out.String(), 500))
	default:
		st.Pass = true
	}
	if st.Pass && st.AchievedRate < 0.9*rate {
		st.Problem = fmt.Sprintf("achieved %.0f/s, below 90%% of the %g/s asked (SIPp or the host could not keep up)", st.AchievedRate, rate)
	}
	return st, nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// readStats reads the last line of SIPp's -trace_stat CSV (";"-separated,
// header first) for the cumulative counters.
func (st *SetupStep) readStats(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) < 2 {
		return fmt.Errorf("sipp statistics %s: no data", path)
	}
	head := strings.Split(lines[0], ";")
	last := strings.Split(lines[len(lines)-1], ";")
	get := func(name string) int64 {
		i := slices.Index(head, name)
		if i < 0 || i >= len(last) {
			return 0
		}
		v, _ := strconv.ParseInt(strings.TrimSpace(last[i]), 10, 64)
		return v
	}
	st.Calls = get("OutgoingCall(C)")
	st.Successful = get("SuccessfulCall(C)")
	st.Failed = get("FailedCall(C)")
	st.Retransmissions = get("Retransmissions(C)")
	// Calls still open when SIPp stopped (its global timeout) count as failed.
	if open := st.Calls - st.Successful - st.Failed; open > 0 {
		st.Failed += open
	}
	if st.Calls > 0 {
		st.FailPct = 100 * float64(st.Failed) / float64(st.Calls)
	}
	return nil
}

// readRTT reads SIPp's -trace_rtt file ("Date_ms;response_time_ms;rtd_no"):
// one line per INVITE→200 measured.
func (st *SetupStep) readRTT(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var rtts []time.Duration
	first, last := math.Inf(1), math.Inf(-1)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(strings.TrimSpace(sc.Text()), ";")
		if len(fields) < 2 {
			continue
		}
		at, err1 := strconv.ParseFloat(fields[0], 64)
		ms, err2 := strconv.ParseFloat(fields[1], 64)
		if err1 != nil || err2 != nil {
			continue // the header
		}
		rtts = append(rtts, time.Duration(ms*float64(time.Millisecond)))
		first, last = math.Min(first, at), math.Max(last, at)
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if len(rtts) == 0 {
		return nil
	}
	slices.Sort(rtts)
	st.InviteP50, st.InviteP99 = Dur(percentile(rtts, 0.5)), Dur(percentile(rtts, 0.99))
	st.InviteP999, st.InviteMax = Dur(percentile(rtts, 0.999)), Dur(rtts[len(rtts)-1])
	if len(rtts) > 1 && last > first {
		st.AchievedRate = float64(len(rtts)-1) / ((last - first) / 1000)
	}
	return nil
}

// WriteText prints the steps as a plain table.
func (r *SetupReport) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "call setups against %s: steps of %s, ACK→BYE hold %s, ramp ends above %g%% failures\n", r.Target, r.Duration, r.CallHold, r.MaxFailPct)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target/s\tachieved/s\tcalls\tfailed\tfail %\tretrans\tp50 ms\tp99 ms\tmax ms\tsrv p99\tsrv CPU %\tCPU/call\tSIPp CPU %\tRSS before\tpeak\tafter\tsettled\tload avg\t")
	for _, s := range r.Steps {
		fmt.Fprintf(tw, "%g\t%.0f\t%d\t%d\t%.3f\t%d\t%.0f\t%.0f\t%.0f\t%s\t%.0f\t%s\t%.0f\t%s\t%s\t%s\t%s\t%s\t\n",
			s.TargetRate, s.AchievedRate, s.Calls, s.Failed, s.FailPct, s.Retransmissions,
			ms(s.InviteP50), ms(s.InviteP99), ms(s.InviteMax), FormatBound(s.ServerSetupP99, s.serverSetupHist),
			s.ServerCPUPercent, s.ServerCPUPerCall, s.SIPpCPUPercent,
			mib(s.RSSBefore), mib(s.RSSPeak), mib(s.RSSAfter), mib(s.RSSSettled), s.LoadAvg)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for i, s := range r.Steps {
		if s.Problem != "" {
			fmt.Fprintf(w, "step %d (%g/s): %s\n", i+1, s.TargetRate, s.Problem)
		}
	}
	verdict := fmt.Sprintf("best rate within %g%% failures: %.0f setups/s", r.MaxFailPct, r.BestRate)
	if !r.Pass {
		verdict = "FAIL: no step stayed within the failure threshold"
		if len(r.Steps) == 1 {
			verdict = "FAIL: " + r.Steps[0].Problem
		}
	}
	_, err := fmt.Fprintln(w, verdict)
	return err
}

func ms(d Dur) float64 { return float64(d) / float64(time.Millisecond) }
