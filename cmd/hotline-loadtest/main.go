// Command hotline-loadtest measures what one hotline node carries: call setups, IVR calls,
// whole call-center days, bridged caller↔agent pairs and survey campaigns. Every run is
// bounded in calls and time and stops by itself.
//
//	hotline-loadtest ivr    --target 127.0.0.1:5060 --metrics http://127.0.0.1:8080/metrics --calls N --rate R --hold 60s
//	hotline-loadtest setup  --target 127.0.0.1:5060 --metrics http://127.0.0.1:8080/metrics --ramp 200,400,800
//	hotline-loadtest day    --target 127.0.0.1:5060 --api http://127.0.0.1:8080 --agents 20 --rate 5 --duration 60s [--truth day.json] [--html day.html]
//	hotline-loadtest bridge --target 127.0.0.1:5060 --api http://127.0.0.1:8080 --agents 500 --rate 50 --duration 60s
//	hotline-loadtest survey --listen 127.0.0.1:5090 --api http://127.0.0.1:8080 --targets 20
//	hotline-loadtest compare --truth day.json --api http://127.0.0.1:8080
//	hotline-loadtest run surge.yaml [flags]
//
// ivr and setup take loopback targets only. day and bridge take a target off loopback only
// with --local-ip, the tester's own address on that network (a second machine facing the
// server); --max-rate and --max-calls must be raised on purpose for a big run.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hotline12345/hotline/loadtest"
)

func main() {
	if os.Getenv("GOGC") == "" {
		// The tester's garbage is per-packet and short-lived: collect less often so that
		// collections do not make its pacers late (its heap stays small either way).
		debug.SetGCPercent(300)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `usage: hotline-loadtest ivr|setup|day|bridge|survey|compare|run [flags]

  ivr      concurrent IVR calls: RTP loss, jitter, setup time, server lateness, CPU, RSS per call
  setup    call setups per second with SIPp, ramped until failures pass --max-fail
  day      citizens and agents together through the IVR and the ACD: answer rate, waits, audio
           both ways, ratings; --truth FILE (every call), --html FILE (plots)
  bridge   N caller↔agent pairs through the IVR and the ACD, all held together, audio checked
           both ways on every pair: end-to-end bridged capacity, loss, jitter, CPU of both sides
  survey   the citizens at the far end of an outbound trunk (云回访): busy, declined, no such
           number, no answer, keypad answers by RFC 4733 or INFO; --targets N runs a campaign
           through --api and checks its counts and records against the truth, --duration D just
           takes calls; --truth FILE
  compare  --truth FILE --api URL: the truth against the server's records and report
  run      FILE [flags]: the day, bridge or survey run a YAML scenario file describes (its keys
           are the command's flags; flags given here override it); --scenario FILE does the same

Run "hotline-loadtest COMMAND -h" for its flags. Targets off loopback: day and bridge, with --local-ip.
`

// run is the command; it returns the exit status: 0 done (and passed),
// 1 the run failed or its criteria were missed, 2 bad usage.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "ivr":
		return runIVR(ctx, args[1:], stdout, stderr)
	case "setup":
		return runSetup(ctx, args[1:], stdout, stderr)
	case "day":
		return runDay(ctx, args[1:], stdout, stderr)
	case "bridge":
		return runBridge(ctx, args[1:], stdout, stderr)
	case "survey":
		return runSurvey(ctx, args[1:], stdout, stderr)
	case "run":
		return runScenario(ctx, args[1:], stdout, stderr)
	case "compare":
		return runCompare(ctx, args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "hotline-loadtest: unknown command %q\n%s", args[0], usage)
	return 2
}

// common are the flags both commands take.
type common struct {
	target, metrics, cpuprofile string
	token                       *string
	json                        bool
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.target, "target", "127.0.0.1:5060", "the server's SIP address (loopback only)")
	fs.StringVar(&c.metrics, "metrics", "", "the server's /metrics URL, e.g. http://127.0.0.1:8080/metrics (loopback only; empty: no server figures)")
	fs.BoolVar(&c.json, "json", false, "print the report as JSON")
	fs.StringVar(&c.cpuprofile, "cpuprofile", "", "write a CPU profile of the load tester (client side only) to this file")
	c.token = tokenFlag(fs)
}

// parse parses the flags and reports usage errors on stderr in one line (the flag
// list, which would bury the error, only for -h).
func parse(fs *flag.FlagSet, args []string, stderr io.Writer) (ok bool, code int) {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	fs.SetOutput(stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprintf(stderr, "usage of hotline-loadtest %s:\n", fs.Name())
		fs.PrintDefaults()
		return false, 0
	case err != nil:
		fmt.Fprintf(stderr, "hotline-loadtest %s: %v (-h lists the flags)\n", fs.Name(), err)
		return false, 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "hotline-loadtest %s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return false, 2
	}
	return true, 0
}

func fail(stderr io.Writer, name string, err error) int {
	fmt.Fprintf(stderr, "hotline-loadtest %s: %v\n", name, err)
	if errors.Is(err, loadtest.ErrConfig) || errors.Is(err, loadtest.ErrNotLoopback) {
		return 2
	}
	return 1
}

func startProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

func runIVR(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ivr", flag.ContinueOnError)
	var c common
	c.register(fs)
	calls := fs.Int("calls", 0, "concurrent calls to hold (required, 1-20000)")
	rate := fs.Float64("rate", 0, "new calls per second (required)")
	hold := fs.Duration("hold", 60*time.Second, "how long all calls are held together at full load")
	digits := fs.String("digits", "", "DTMF digits each citizen presses (RFC 4733) after --digit-delay, e.g. 2")
	digitDelay := fs.Duration("digit-delay", loadtest.DefaultDigitDelay, "wait after the answer before pressing --digits")
	codec := fs.String("codec", "PCMA", "codec offered: PCMA or PCMU")
	number := fs.String("number", loadtest.DefaultNumber, "called number")
	local := fs.String("local-ip", "127.0.0.1", "the citizens' address (loopback only)")
	sockets := fs.Int("sockets", loadtest.DefaultMeterSockets, "shared RTP sockets of the meter")
	setupTimeout := fs.Duration("setup-timeout", loadtest.DefaultSetupTimeout, "per call: INVITE to answer")
	maxLoss := fs.Float64("max-loss", loadtest.DefaultMaxLossPct, "pass criterion: loss below this percentage")
	maxLate := fs.Duration("max-lateness", loadtest.DefaultMaxLateness, "pass criterion: p99 server send lateness at most this")
	quiet := fs.Bool("quiet", false, "no progress lines on stderr")
	if ok, code := parse(fs, args, stderr); !ok {
		return code
	}
	target, err := loadtest.LoopbackAddrPort(c.target)
	if err != nil {
		return fail(stderr, "ivr", fmt.Errorf("--target: %w", err))
	}
	if err := useToken(*c.token, c.metrics); err != nil {
		return fail(stderr, "ivr", err)
	}
	ip, err := loadtest.LoopbackIP(*local)
	if err != nil {
		return fail(stderr, "ivr", fmt.Errorf("--local-ip: %w", err))
	}
	if *calls <= 0 {
		return fail(stderr, "ivr", fmt.Errorf("%w: --calls is required (1-%d)", loadtest.ErrConfig, loadtest.MaxCalls))
	}
	if *rate <= 0 {
		return fail(stderr, "ivr", fmt.Errorf("%w: --rate is required (calls per second)", loadtest.ErrConfig))
	}
	cfg := loadtest.IVRConfig{
		Target: target, MetricsURL: c.metrics, Number: *number, Calls: *calls, Rate: *rate, Hold: *hold,
		Digits: *digits, DigitDelay: *digitDelay, Codec: strings.ToUpper(*codec), LocalIP: ip, Sockets: *sockets,
		SetupTimeout: *setupTimeout, MaxLossPct: *maxLoss, MaxLateness: *maxLate,
	}
	if !*quiet {
		cfg.Progress = stderr
	}
	stopProfile, err := startProfile(c.cpuprofile)
	if err != nil {
		return fail(stderr, "ivr", err)
	}
	rep, err := loadtest.RunIVR(ctx, cfg)
	stopProfile()
	if rep == nil {
		return fail(stderr, "ivr", err)
	}
	if c.json {
		loadtest.WriteJSON(stdout, rep)
	} else {
		rep.WriteText(stdout)
	}
	if err != nil {
		return fail(stderr, "ivr", err)
	}
	if !rep.Pass {
		return 1
	}
	return 0
}

func runSetup(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("setup", flag.ContinueOnError)
	var c common
	c.register(fs)
	rate := fs.Float64("rate", 0, "call setups per second (one step); or use --ramp")
	ramp := fs.String("ramp", "", "comma-separated rates, e.g. 200,400,800,1200,1600; stops after the first step whose failures pass --max-fail")
	duration := fs.Duration("duration", 30*time.Second, "length of each step")
	callHold := fs.Duration("call-hold", loadtest.DefaultCallHold, "pause between ACK and BYE (the server's media runs meanwhile)")
	maxFail := fs.Float64("max-fail", loadtest.DefaultMaxFailPct, "failure percentage that ends the ramp")
	scenario := fs.String("scenario", "", "SIPp scenario (default: testdata/sipp/load_setup.xml, found from the working directory up)")
	sipp := fs.String("sipp", "sipp", "the SIPp binary")
	local := fs.String("local-ip", "127.0.0.1", "SIPp's address (loopback only)")
	settle := fs.Duration("settle", loadtest.DefaultSettle, "pause between steps so the previous step's calls end")
	quiet := fs.Bool("quiet", false, "no progress lines on stderr")
	if ok, code := parse(fs, args, stderr); !ok {
		return code
	}
	target, err := loadtest.LoopbackAddrPort(c.target)
	if err != nil {
		return fail(stderr, "setup", fmt.Errorf("--target: %w", err))
	}
	if err := useToken(*c.token, c.metrics); err != nil {
		return fail(stderr, "setup", err)
	}
	ip, err := loadtest.LoopbackIP(*local)
	if err != nil {
		return fail(stderr, "setup", fmt.Errorf("--local-ip: %w", err))
	}
	var rates []float64
	switch {
	case *ramp != "" && *rate != 0:
		return fail(stderr, "setup", fmt.Errorf("%w: give --rate or --ramp, not both", loadtest.ErrConfig))
	case *ramp != "":
		for _, f := range strings.Split(*ramp, ",") {
			r, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
			if err != nil {
				return fail(stderr, "setup", fmt.Errorf("%w: --ramp %q: %q is not a number", loadtest.ErrConfig, *ramp, f))
			}
			rates = append(rates, r)
		}
	case *rate != 0:
		rates = []float64{*rate}
	default:
		return fail(stderr, "setup", fmt.Errorf("%w: --rate or --ramp is required", loadtest.ErrConfig))
	}
	cfg := loadtest.SetupConfig{
		Target: target, MetricsURL: c.metrics, Rates: rates, Duration: *duration, CallHold: *callHold,
		MaxFailPct: *maxFail, Scenario: *scenario, SIPp: *sipp, LocalIP: ip, Settle: *settle,
	}
	if !*quiet {
		cfg.Progress = stderr
	}
	stopProfile, err := startProfile(c.cpuprofile)
	if err != nil {
		return fail(stderr, "setup", err)
	}
	rep, err := loadtest.RunSetup(ctx, cfg)
	stopProfile()
	if rep == nil {
		return fail(stderr, "setup", err)
	}
	if c.json {
		loadtest.WriteJSON(stdout, rep)
	} else {
		rep.WriteText(stdout)
	}
	if err != nil {
		return fail(stderr, "setup", err)
	}
	if !rep.Pass {
		return 1
	}
	return 0
}
