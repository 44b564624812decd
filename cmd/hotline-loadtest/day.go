package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/hotline12345/hotline/loadtest"
)

// Safety limits a run must name explicitly to go above: a typo in --rate or --duration
// must not flood a production SBC.
const (
	defaultMaxRate  = 20.0
	defaultMaxCalls = 1000
)

// runDay is `hotline-loadtest day`: simulated citizens and agents together through the real
// IVR and ACD, with ground truth, a final table, JSON and an HTML report.
func runDay(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("day", flag.ContinueOnError)
	target := fs.String("target", "127.0.0.1:5060", "the server's SIP address")
	localIP := fs.String("local-ip", "127.0.0.1", "the tester's address (its SDP and SIP Contact); a non-loopback address allows a non-loopback target")
	apiURL := fs.String("api", "http://127.0.0.1:8080", "the server's HTTP API (agents go ready through it)")
	token := tokenFlag(fs)
	agents := fs.Int("agents", 10, "simulated agents (ids from --agent-start, password agent<id>)")
	agentStart := fs.String("agent-start", loadtest.DefaultAgentStart, "first agent id")
	rate := fs.Float64("rate", 1, "new citizens per second (Poisson arrivals)")
	duration := fs.Duration("duration", 60*time.Second, "arrivals stop after this; the run ends when every call ended")
	maxRate := fs.Float64("max-rate", defaultMaxRate, "refuse a --rate above this (raise it on purpose for a big run)")
	maxCalls := fs.Int("max-calls", defaultMaxCalls, "refuse a run expecting more citizens than this (rate × duration)")
	talk := fs.Duration("talk", 20*time.Second, "mean talk time (lognormal; the seed figure is 232 s)")
	ringDelay := fs.Duration("ring-delay", loadtest.DefaultRingDelay, "agents answer after this")
	patience := fs.Duration("patience", 60*time.Second, "mean wait before a citizen abandons (exponential; 0: never)")
	mix := fs.String("mix", "1=0.7,2=0.3", "menu digits and their weights")
	infoShare := fs.Float64("info-share", 0.2, "share of citizens pressing keys by SIP INFO (the rest RFC 4733)")
	noAnswer := fs.Float64("no-answer-share", 0, "share of rings an agent lets go unanswered")
	busyShare := fs.Float64("busy-share", 0, "share of rings an agent declines with 486 Busy Here")
	rateShare := fs.Float64("rate-share", 0.8, "share of citizens who rate the agent after the call")
	agentHangup := fs.Float64("agent-hangup-share", 0.7, "share of calls the agent ends")
	transferShare := fs.Float64("transfer-share", 0.1, "share of answered calls the agent blind-transfers (REFER) to --transfer-to after a third of the talk; 0 for a server without transfers")
	transferTo := fs.String("transfer-to", loadtest.DefaultTransferQueue, "the queue agents transfer to (agents of the run must take it)")
	seed := fs.Uint64("seed", 1, "random seed (the same seed, the same day)")
	setupTimeout := fs.Duration("setup-timeout", loadtest.DefaultSetupTimeout, "the longest wait for an answer to an INVITE or REGISTER, or the API")
	truthFile := fs.String("truth", "", "write the ground truth (every simulated call) to this JSON file")
	htmlFile := fs.String("html", "", "write an HTML report with plots to this file")
	jsonOut := fs.Bool("json", false, "print the report as JSON instead of a table")
	quiet := fs.Bool("quiet", false, "no progress bar")
	soak := fs.String("soak", "", "the server's /metrics URL: sample its memory, goroutines, open files, calls and agents through the run, and fail unless they stay flat and return to idle after it (a soak test)")
	soakEvery := fs.Duration("soak-every", loadtest.DefaultSoakEvery, "with --soak: the sampling interval")
	soakSettle := fs.Duration("soak-settle", loadtest.DefaultSoakSettle, "with --soak: how long the server may take to return to idle after the run")
	if ok, code := parseWithScenario(fs, args, stderr); !ok {
		return code
	}
	weights, err := parseMix(*mix)
	if err != nil {
		return fail(stderr, "day", err)
	}
	if err := useToken(*token, *apiURL); err != nil {
		return fail(stderr, "day", err)
	}
	// Checked here, not only by RunDay, so that the message names the flag.
	lip, err := checkTarget(*target, *localIP)
	if err != nil {
		return fail(stderr, "day", err)
	}
	if _, err := strconv.ParseUint(*agentStart, 10, 32); err != nil {
		return fail(stderr, "day", fmt.Errorf("%w: --agent-start %q: want a number", loadtest.ErrConfig, *agentStart))
	}
	expected := int(*rate*duration.Seconds() + 0.5)
	switch {
	case *maxCalls < 1 || *maxCalls > loadtest.MaxCalls:
		return fail(stderr, "day", fmt.Errorf("%w: --max-calls %d: want 1-%d", loadtest.ErrConfig, *maxCalls, loadtest.MaxCalls))
	case *rate > *maxRate:
		return fail(stderr, "day", fmt.Errorf("%w: --rate %g is above --max-rate %g; raise --max-rate if you mean it", loadtest.ErrConfig, *rate, *maxRate))
	case expected > *maxCalls:
		return fail(stderr, "day", fmt.Errorf("%w: about %d citizens (--rate × --duration) is above --max-calls %d; raise --max-calls if you mean it", loadtest.ErrConfig, expected, *maxCalls))
	}
	cfg := loadtest.DayConfig{
		Target: *target, API: strings.TrimSuffix(*apiURL, "/"), Agents: *agents, AgentStart: *agentStart,
		LocalIP: lip, AllowRemote: !lip.IsLoopback(),
		Rate: *rate, Duration: *duration, MaxCalls: *maxCalls, Mix: weights, InfoShare: *infoShare,
		NoAnswerShare: *noAnswer, BusyShare: *busyShare, RateShare: *rateShare, HangupByAgentShare: *agentHangup,
		TransferShare: *transferShare, TransferQueue: *transferTo,
		Talk: *talk, RingDelay: *ringDelay, Patience: *patience, Seed: *seed, SetupTimeout: *setupTimeout,
	}
	bar := newProgress(stderr, expected, *quiet)
	if *soak != "" {
		srep, truth, err := loadtest.RunSoak(ctx, loadtest.SoakConfig{Day: cfg, Metrics: *soak, Every: *soakEvery, Settle: *soakSettle}, bar.update)
		if srep == nil {
			return fail(stderr, "day", err)
		}
		bar.end(err)
		if *htmlFile != "" {
			if werr := writeHTML(*htmlFile, "hotline-loadtest day --soak", "day", srep.Day.Target, srep.Day.Started, srep.Day.Samples, srep.WriteText); werr != nil {
				fmt.Fprintf(stderr, "hotline-loadtest day: html: %v\n", werr)
			}
		}
		return output("day", stdout, stderr, srep, truth, *truthFile, *jsonOut, err)
	}
	rep, truth, err := loadtest.RunDay(ctx, cfg, bar.update)
	if rep == nil { // an invalid configuration: no run, and no bar drawn
		return fail(stderr, "day", err)
	}
	bar.end(err)
	if *htmlFile != "" {
		if werr := writeHTML(*htmlFile, "hotline-loadtest day", "day", rep.Target, rep.Started, rep.Samples, rep.WriteText); werr != nil {
			fmt.Fprintf(stderr, "hotline-loadtest day: html: %v\n", werr)
		}
	}
	return output("day", stdout, stderr, rep, truth, *truthFile, *jsonOut, err)
}

// parseMix reads "1=0.7,2=0.3".
func parseMix(s string) (map[string]float64, error) {
	m := map[string]float64{}
	for part := range strings.SplitSeq(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		w, err := strconv.ParseFloat(v, 64)
		if !ok || k == "" || err != nil || w < 0 {
			return nil, fmt.Errorf("%w: --mix %q: want DIGIT=WEIGHT,...", loadtest.ErrConfig, s)
		}
		m[k] = w
	}
	return m, nil
}

// runCompare is `hotline-loadtest compare`: the ground truth against the server's records
// and report; every mismatch is printed and the exit status is 1 if there is any.
func runCompare(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	truthFile := fs.String("truth", "", "the ground truth written by `day --truth` (required)")
	apiURL := fs.String("api", "http://127.0.0.1:8080", "the server's HTTP API")
	token := tokenFlag(fs)
	if ok, code := parse(fs, args, stderr); !ok {
		return code
	}
	if err := useToken(*token, *apiURL); err != nil {
		return fail(stderr, "compare", err)
	}
	if *truthFile == "" {
		return fail(stderr, "compare", fmt.Errorf("%w: --truth is required", loadtest.ErrConfig))
	}
	t, err := loadtest.ReadTruth(*truthFile)
	if err != nil {
		return fail(stderr, "compare", err)
	}
	c, err := loadtest.Compare(ctx, t, strings.TrimSuffix(*apiURL, "/"))
	if err != nil {
		return fail(stderr, "compare", err)
	}
	c.WriteText(stdout)
	if !c.OK() {
		return 1
	}
	return 0
}
