package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hotline12345/hotline/loadtest/phone"
	"github.com/hotline12345/hotline/media"
)

// Defaults and bounds of an IVR run.
const (
	DefaultNumber        = "12345"
	DefaultSetupTimeout  = 10 * time.Second
	DefaultDigitDelay    = 3 * time.Second
	DefaultDigitDuration = 100 * time.Millisecond
	DefaultCallsPerPhone = 1000
	DefaultMaxLossPct    = 0.1
	DefaultMaxLateness   = 2 * time.Millisecond
	MaxCalls             = 20000
	MaxRate              = 5000.0
	MaxHold              = time.Hour
	hangupTimeout        = 5 * time.Second
	settleTimeout        = 10 * time.Second       // for the server to finish the run's calls after the last BYE
	settlePoll           = 100 * time.Millisecond // how often it is asked meanwhile
	minHangupRate        = 200.0                  // BYEs per second at the end, at least
	runSlack             = 60 * time.Second
)

// IVRConfig configures RunIVR.
type IVRConfig struct {
	Target     netip.AddrPort // the server's SIP address; loopback only
	MetricsURL string         // the server's /metrics; empty: no server figures
	Number     string         // called number; default 12345
	Calls      int            // concurrent calls to hold
	Rate       float64        // new calls per second
	Hold       time.Duration  // how long all calls are held together at full load
	Digits     string         // pressed (RFC 4733) DigitDelay after answer; empty: none
	DigitDelay time.Duration  // default DefaultDigitDelay
	Codec      string         // PCMA (default) or PCMU: the only codec offered
	LocalIP    netip.Addr     // citizens' address; default 127.0.0.1; loopback only
	Sockets    int            // meter sockets; default DefaultMeterSockets

	SetupTimeout  time.Duration // per call, INVITE to answer; default DefaultSetupTimeout
	CallsPerPhone int           // calls per test phone (one SIP socket each); default DefaultCallsPerPhone
	MaxLossPct    float64       // pass threshold; default DefaultMaxLossPct
	MaxLateness   time.Duration // pass threshold for p99 send lateness; default DefaultMaxLateness

	Logger   *slog.Logger // nil discards
	Progress io.Writer    // nil: silent; else one line per phase
}

// checkEndpoints refuses any target, metrics URL or local address off loopback; a zero
// local address becomes 127.0.0.1.
func checkEndpoints(target netip.AddrPort, metricsURL string, local *netip.Addr) error {
	if err := checkTarget(target); err != nil {
		return err
	}
	if metricsURL != "" {
		if _, err := LoopbackURL(metricsURL); err != nil {
			return err
		}
	}
	if !local.IsValid() {
		*local = netip.MustParseAddr("127.0.0.1")
	}
	if !local.IsLoopback() {
		return fmt.Errorf("local address: %w: %s", ErrNotLoopback, *local)
	}
	return nil
}

func (c *IVRConfig) validate() error {
	if err := checkEndpoints(c.Target, c.MetricsURL, &c.LocalIP); err != nil {
		return err
	}
	if c.Number == "" {
		c.Number = DefaultNumber
	}
	switch {
	case c.Calls < 1 || c.Calls > MaxCalls:
		return fmt.Errorf("%w: calls %d: want 1-%d", ErrConfig, c.Calls, MaxCalls)
	case !(c.Rate > 0 && c.Rate <= MaxRate):
		return fmt.Errorf("%w: rate %g: want more than 0 and at most %g calls/s", ErrConfig, c.Rate, MaxRate)
	case c.Hold <= 0 || c.Hold > MaxHold:
		return fmt.Errorf("%w: hold %s: want more than 0 and at most %s", ErrConfig, c.Hold, MaxHold)
	case c.DigitDelay < 0 || c.SetupTimeout < 0 || c.CallsPerPhone < 0 || c.Sockets < 0 || c.MaxLossPct < 0 || c.MaxLateness < 0:
		return fmt.Errorf("%w: negative setting", ErrConfig)
	}
	for _, d := range c.Digits {
		if _, ok := media.DigitEvent(d); !ok {
			return fmt.Errorf("%w: digits %q: want 0-9 * # A-D", ErrConfig, c.Digits)
		}
	}
	if _, err := codecPT(c.Codec); err != nil {
		return err
	}
	if c.Codec == "" {
		c.Codec = "PCMA"
	}
	if c.DigitDelay == 0 {
		c.DigitDelay = DefaultDigitDelay
	}
	if c.SetupTimeout == 0 {
		c.SetupTimeout = DefaultSetupTimeout
	}
	if c.CallsPerPhone == 0 {
		c.CallsPerPhone = DefaultCallsPerPhone
	}
	if c.MaxLossPct == 0 {
		c.MaxLossPct = DefaultMaxLossPct
	}
	if c.MaxLateness == 0 {
		c.MaxLateness = DefaultMaxLateness
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	return nil
}

func checkTarget(t netip.AddrPort) error {
	if !t.IsValid() || t.Port() == 0 {
		return fmt.Errorf("%w: target address missing", ErrConfig)
	}
	if !t.Addr().Unmap().IsLoopback() {
		return fmt.Errorf("target: %w: %s", ErrNotLoopback, t.Addr())
	}
	return nil
}

func codecPT(name string) (uint8, error) {
	switch name {
	case "", "PCMA", "pcma":
		return pcmaPT, nil
	case "PCMU", "pcmu":
		return pcmuPT, nil
	}
	return 0, fmt.Errorf("%w: codec %q: want PCMA or PCMU", ErrConfig, name)
}

// Deadline returns how long RunIVR may take at most with this configuration:
// the ramp, the setup timeout, the hold, the paced hang-ups and a minute of slack.
func (c IVRConfig) Deadline() time.Duration {
	ramp := time.Duration(float64(c.Calls) / c.Rate * float64(time.Second))
	setup := c.SetupTimeout
	if setup == 0 {
		setup = DefaultSetupTimeout
	}
	bye := time.Duration(float64(c.Calls) / math.Max(c.Rate, minHangupRate) * float64(time.Second))
	return ramp + setup + c.Hold + bye + hangupTimeout + runSlack
}

// citizen is the outcome of one simulated caller.
type citizen struct {
	setup      time.Duration
	err        error
	call       *phone.Call
	stream     *Stream
	rtp        RTPStats
	endedEarly string // the server hung up before the hold ended: why
	digitsSent bool
}

// RunIVR places cfg.Calls calls to the IVR at cfg.Rate per second, holds them
// all together for cfg.Hold, hangs them up at the same pace (at least 200/s)
// and reports. It stops by itself within cfg.Deadline(); cancelling ctx ends
// it early (calls are hung up, the report covers what happened).
func RunIVR(ctx context.Context, cfg IVRConfig) (*IVRReport, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	codec, _ := codecPT(cfg.Codec)
	ctx, cancel := context.WithTimeout(ctx, cfg.Deadline())
	defer cancel()
	log := cfg.Logger.With("caller", "loadtest")
	rep := &IVRReport{
		Target: cfg.Target.String(), Number: cfg.Number, Calls: cfg.Calls, Rate: cfg.Rate,
		Hold: Dur(cfg.Hold), Codec: cfg.Codec, Digits: cfg.Digits, LoadAvgStart: loadAverage(),
		MaxLossPct: cfg.MaxLossPct, MaxLateness: Dur(cfg.MaxLateness),
	}

	var idle *Scrape
	if cfg.MetricsURL != "" {
		var err error
		if idle, err = ScrapeMetrics(ctx, cfg.MetricsURL); err != nil {
			return nil, err
		}
	}

	meter, err := NewMeter(cfg.LocalIP, cfg.Sockets)
	if err != nil {
		return nil, err
	}
	defer meter.Close()
	nPhones := (cfg.Calls + cfg.CallsPerPhone - 1) / cfg.CallsPerPhone
	phones := make([]*phone.Phone, 0, nPhones)
	phoneSched := media.NewScheduler(1) // one for all phones; they send nothing
	defer func() {
		for _, p := range phones {
			p.Close()
		}
		phoneSched.Close()
	}()
	for range nPhones {
		// The phone does the signalling; the meter carries the media: the SDP names a
		// meter socket and the phone opens no RTP socket of its own (MediaAddr).
		p, err := phone.New(phone.Config{
			LocalIP: cfg.LocalIP, Codecs: []uint8{codec}, SendSilence: phone.Bool(false), Logger: cfg.Logger,
			Scheduler: phoneSched, MediaAddr: meter.NextAddr,
		})
		if err != nil {
			return nil, err
		}
		phones = append(phones, p)
	}

	target := "sip:" + cfg.Number + "@" + cfg.Target.String()
	results := make([]citizen, cfg.Calls)
	var resolved, finished sync.WaitGroup
	plateauEnd := make(chan struct{})
	var hangupStart time.Time // set before plateauEnd is closed
	hangupRate := math.Max(cfg.Rate, minHangupRate)

	fmt.Fprintf(cfg.Progress, "dialling %d calls to %s at %g/s (load average %s)\n", cfg.Calls, target, cfg.Rate, rep.LoadAvgStart)
	start := time.Now()
	cpu0 := processCPU()
	in0, rcv0, snd0 := udpCounters()
	resolved.Add(cfg.Calls)
	finished.Add(cfg.Calls)
	dialled := 0
dial:
	for i := range cfg.Calls {
		at := start.Add(time.Duration(float64(i) / cfg.Rate * float64(time.Second)))
		if d := time.Until(at); d > 0 {
			select {
			case <-ctx.Done():
				break dial
			case <-time.After(d):
			}
		}
		dialled++
		go func() {
			defer finished.Done()
			r := &results[i]
			runCitizen(ctx, r, citizenArgs{
				p: phones[i%len(phones)], meter: meter, target: target, from: strconv.Itoa(13800000000 + i),
				setupTimeout: cfg.SetupTimeout, digits: cfg.Digits, digitDelay: cfg.DigitDelay,
				resolved: resolved.Done, plateauEnd: plateauEnd,
				hangupAt: func() time.Time {
					return hangupStart.Add(time.Duration(float64(i) / hangupRate * float64(time.Second)))
				},
				log: log,
			})
		}()
	}
	for range cfg.Calls - dialled {
		resolved.Done()
		finished.Done()
	}
	resolved.Wait()
	rep.RampTime = Dur(time.Since(start))
	established := 0
	for i := range results[:dialled] {
		if results[i].err == nil && results[i].call != nil {
			established++
		}
	}
	fmt.Fprintf(cfg.Progress, "%d of %d calls established in %s; holding them for %s\n", established, cfg.Calls, rep.RampTime, cfg.Hold)

	// Full load: measure over the plateau only.
	var full0, full1 *Scrape
	if cfg.MetricsURL != "" && ctx.Err() == nil {
		if full0, err = ScrapeMetrics(ctx, cfg.MetricsURL); err != nil {
			log.Warn("scrape at full load failed", "error", err)
		}
	}
	plateauStart := time.Now()
	cpuP0 := processCPU()
	_, rcvP0, _ := udpCounters()
	select {
	case <-ctx.Done():
	case <-time.After(cfg.Hold):
	}
	rep.Plateau = Dur(time.Since(plateauStart))
	cpuP1 := processCPU()
	_, rcvP1, _ := udpCounters()
	rep.LoadAvgFull = loadAverage()
	if cfg.MetricsURL != "" {
		sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), scrapeTimeout)
		if full1, err = ScrapeMetrics(sctx, cfg.MetricsURL); err != nil {
			log.Warn("scrape at the end of full load failed", "error", err)
		}
		scancel()
	}
	hangupStart = time.Now()
	close(plateauEnd)
	fmt.Fprintf(cfg.Progress, "held for %s; hanging up at %g/s\n", rep.Plateau, hangupRate)
	finished.Wait()
	rep.Duration = Dur(time.Since(start))
	in1, rcv1, snd1 := udpCounters()

	var after *Scrape
	if cfg.MetricsURL != "" {
		reached := 0
		for i := range results[:dialled] {
			if results[i].call != nil {
				reached++
			}
		}
		after = scrapeSettled(context.WithoutCancel(ctx), cfg.MetricsURL, idle, reached)
	}
	rep.fill(results[:dialled])
	rep.Client = ClientFigures{
		CPUSeconds:        (processCPU() - cpu0).Seconds(),
		PlateauCPUPercent: 100 * (cpuP1 - cpuP0).Seconds() / math.Max(rep.Plateau.D().Seconds(), 1e-9),
		UDPInErrors:       in1 - in0, UDPRcvbufErrors: rcv1 - rcv0, UDPSndbufErrors: snd1 - snd0,
		PlateauUDPRcvbufErrors: rcvP1 - rcvP0,
		Meter:                  meter.Stats(),
	}
	if cfg.MetricsURL != "" {
		rep.Server = serverFigures(idle, full0, full1, after, rep.Established)
	}
	rep.judge()
	if err := ctx.Err(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return rep, err
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return rep, fmt.Errorf("loadtest: run cut short by its deadline (%s)", cfg.Deadline())
	}
	return rep, nil
}

// scrapeSettled scrapes the server until it has finished the run's calls —
// its calls-ended counter grew by at least ended since idle, and no more calls
// are active than then — or settleTimeout passes, and returns the last scrape
// that succeeded (nil if none). A phone's BYE is answered before the server
// has counted the call, so a single scrape right after the last hang-up can
// miss the last calls.
func scrapeSettled(ctx context.Context, url string, idle *Scrape, ended int) *Scrape {
	ctx, cancel := context.WithTimeout(ctx, settleTimeout)
	defer cancel()
	var last *Scrape
	for {
		if s, err := ScrapeMetrics(ctx, url); err == nil {
			last = s
			if s.Sum(mCallsTotal)-idle.Sum(mCallsTotal) >= float64(ended) && s.Sum(mCallsActive) <= idle.Sum(mCallsActive) {
				return s
			}
		}
		select {
		case <-ctx.Done():
			return last
		case <-time.After(settlePoll):
		}
	}
}

type citizenArgs struct {
	p            *phone.Phone
	meter        *Meter
	target, from string
	setupTimeout time.Duration
	digits       string
	digitDelay   time.Duration
	resolved     func()
	plateauEnd   <-chan struct{}
	hangupAt     func() time.Time
	log          *slog.Logger
}

// runCitizen is one caller: dial, start media, maybe press digits, hold
// until the plateau ends (or the server hangs up), hang up at its turn.
func runCitizen(ctx context.Context, r *citizen, a citizenArgs) {
	resolvedOnce := sync.OnceFunc(a.resolved)
	defer resolvedOnce()
	dctx, dcancel := context.WithTimeout(ctx, a.setupTimeout)
	t0 := time.Now()
	c, err := a.p.Dial(dctx, a.target, a.from)
	r.setup = time.Since(t0)
	dcancel()
	if err != nil {
		r.err = err
		return
	}
	r.call = c
	pt, ok := c.DTMFPayloadType()
	if !ok {
		pt = 0
	}
	s, err := a.meter.AddStream(c.RemoteRTP(), c.Codec(), pt, StreamOptions{Local: c.LocalRTP()})
	if err != nil {
		r.err = err
		hctx, hcancel := context.WithTimeout(context.WithoutCancel(ctx), hangupTimeout)
		c.Hangup(hctx)
		hcancel()
		return
	}
	r.stream = s
	resolvedOnce()

	if a.digits != "" {
		select {
		case <-time.After(a.digitDelay):
			if done, err := s.SendDigits(a.digits, DefaultDigitDuration); err != nil {
				a.log.Debug("digits not sent", "sip_call_id", c.SIPCallID(), "error", err)
			} else {
				select {
				case <-done:
					r.digitsSent = true
				case <-c.Done():
				case <-ctx.Done():
				}
			}
		case <-c.Done():
		case <-a.plateauEnd:
		case <-ctx.Done():
		}
	}
	select {
	case <-a.plateauEnd:
	case <-ctx.Done():
	case <-c.Done():
	}
	select {
	case <-c.Done():
		r.endedEarly = c.ByeReason()
	default:
		select {
		case <-a.plateauEnd: // hangupAt is set: wait for this call's turn
			if d := time.Until(a.hangupAt()); d > 0 {
				select {
				case <-time.After(d):
				case <-c.Done():
				case <-ctx.Done():
				}
			}
		default: // the run was cancelled: hang up now
		}
		hctx, hcancel := context.WithTimeout(context.WithoutCancel(ctx), hangupTimeout)
		if err := c.Hangup(hctx); err != nil {
			a.log.Debug("hangup failed", "sip_call_id", c.SIPCallID(), "error", err)
		}
		hcancel()
	}
	r.rtp = s.Remove()
}

// failureReason names why a dial failed, for the report.
func failureReason(err error) string {
	var se *phone.StatusError
	switch {
	case errors.As(err, &se):
		return strconv.Itoa(se.Code) + " " + se.Reason
	case errors.Is(err, context.DeadlineExceeded):
		return "setup timeout"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	}
	return err.Error()
}

// percentile returns the q-quantile (nearest rank) of sorted values.
func percentile[T int64 | time.Duration | float64](sorted []T, q float64) T {
	if len(sorted) == 0 {
		var zero T
		return zero
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func sortedDurations(ds []time.Duration) []time.Duration {
	ds = slices.Clone(ds)
	slices.Sort(ds)
	return ds
}
