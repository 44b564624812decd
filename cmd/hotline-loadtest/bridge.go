package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/hotline12345/hotline/loadtest"
)

// runBridge is `hotline-loadtest bridge`: N caller↔agent pairs through the real IVR and
// ACD, all held together with audio checked both ways on every pair.
func runBridge(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bridge", flag.ContinueOnError)
	target := fs.String("target", "127.0.0.1:5060", "the server's SIP address")
	apiURL := fs.String("api", "http://127.0.0.1:8080", "the server's HTTP API (agents go ready through it)")
	token := tokenFlag(fs)
	metrics := fs.String("metrics", "", "the server's /metrics URL for its CPU and RSS while held (default: --api + /metrics; \"-\": none)")
	localIP := fs.String("local-ip", "127.0.0.1", "the tester's address (its SDP and SIP Contact); a non-loopback address allows a non-loopback target")
	agents := fs.Int("agents", 10, "pairs: simulated agents (ids from --agent-start, password agent<id>) and as many citizens")
	agentStart := fs.String("agent-start", loadtest.DefaultAgentStart, "first agent id")
	rate := fs.Float64("rate", 10, "new citizens per second, evenly spaced")
	hold := fs.Duration("duration", loadtest.DefaultBridgeHold, "how long all pairs are held together once the last is bridged")
	digit := fs.String("digit", "1", "the menu key to the agents' queue")
	codec := fs.String("codec", "PCMA", "PCMA or PCMU")
	maxLoss := fs.Float64("max-loss", loadtest.DefaultMaxLoss, "the highest RTP loss ratio that passes (0.001 = 0.1%)")
	maxSkip := fs.Float64("max-skip", loadtest.DefaultMaxSkip, "the share of its own frames the tester may skip (short of CPU) and still pass")
	sockets := fs.Int("sockets", loadtest.DefaultMeterSockets, "the tester's shared RTP sockets")
	maxRate := fs.Float64("max-rate", defaultMaxRate, "refuse a --rate above this (raise it on purpose for a big run)")
	maxCalls := fs.Int("max-calls", defaultMaxCalls, "refuse more pairs than this (raise it on purpose for a big run)")
	seed := fs.Uint64("seed", 1, "random seed (the callers' numbers)")
	setupTimeout := fs.Duration("setup-timeout", loadtest.DefaultSetupTimeout, "the longest wait for an answer to an INVITE or REGISTER, or the API")
	truthFile := fs.String("truth", "", "write the ground truth (every simulated call) to this JSON file")
	htmlFile := fs.String("html", "", "write an HTML report with plots to this file")
	jsonOut := fs.Bool("json", false, "print the report as JSON instead of a table")
	quiet := fs.Bool("quiet", false, "no progress bar")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the load tester to this file")
	if ok, code := parseWithScenario(fs, args, stderr); !ok {
		return code
	}
	switch {
	case *rate > *maxRate:
		return fail(stderr, "bridge", fmt.Errorf("%w: --rate %g is above --max-rate %g; raise --max-rate if you mean it", loadtest.ErrConfig, *rate, *maxRate))
	case *agents > *maxCalls:
		return fail(stderr, "bridge", fmt.Errorf("%w: --agents %d pairs is above --max-calls %d; raise --max-calls if you mean it", loadtest.ErrConfig, *agents, *maxCalls))
	}
	lip, err := checkTarget(*target, *localIP)
	if err != nil {
		return fail(stderr, "bridge", err)
	}
	api := strings.TrimSuffix(*apiURL, "/")
	switch *metrics {
	case "":
		*metrics = api + "/metrics"
	case "-":
		*metrics = ""
	}
	if err := useToken(*token, api, *metrics); err != nil {
		return fail(stderr, "bridge", err)
	}
	stopProfile, err := startProfile(*cpuprofile)
	if err != nil {
		return fail(stderr, "bridge", err)
	}
	cfg := loadtest.BridgeConfig{
		Target: *target, API: api, Metrics: *metrics, LocalIP: lip, AllowRemote: !lip.IsLoopback(),
		Pairs: *agents, AgentStart: *agentStart, Digit: *digit, Codec: strings.ToUpper(*codec),
		Rate: *rate, Hold: *hold, MaxLoss: *maxLoss, MaxSkip: *maxSkip, MeterSockets: *sockets, Seed: *seed, SetupTimeout: *setupTimeout,
	}
	bar := newProgress(stderr, *agents, *quiet)
	rep, truth, err := loadtest.RunBridge(ctx, cfg, bar.update)
	stopProfile()
	if rep == nil { // an invalid configuration: no run, and no bar drawn
		return fail(stderr, "bridge", err)
	}
	bar.end(err)
	if *htmlFile != "" {
		if werr := writeHTML(*htmlFile, "hotline-loadtest bridge", "bridge", rep.Target, rep.Started, rep.Samples, rep.WriteText); werr != nil {
			fmt.Fprintf(stderr, "hotline-loadtest bridge: html: %v\n", werr)
		}
	}
	return output("bridge", stdout, stderr, rep, truth, *truthFile, *jsonOut, err)
}

// checkTarget checks --local-ip and --target: a target off loopback only from a local
// address off loopback, that is from a tester deliberately placed on a network (a second
// machine facing the server), never by a typo in --target alone.
func checkTarget(target, localIP string) (netip.Addr, error) {
	lip, err := netip.ParseAddr(localIP)
	if err != nil || lip.IsUnspecified() || lip.IsMulticast() {
		return netip.Addr{}, fmt.Errorf("%w: --local-ip %q: want the tester's own unicast IP address", loadtest.ErrConfig, localIP)
	}
	if lip.IsLoopback() {
		if _, err := loadtest.LoopbackAddrPort(target); err != nil {
			return netip.Addr{}, fmt.Errorf("--target: %w (a target off loopback needs --local-ip, the tester's address on that network)", err)
		}
		return lip, nil
	}
	if ap, err := netip.ParseAddrPort(target); err != nil || ap.Port() == 0 {
		return netip.Addr{}, fmt.Errorf("%w: --target %q: want IP:PORT", loadtest.ErrConfig, target)
	}
	return lip, nil
}
