package loadtest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hotline12345/hotline/loadtest/phone"
	"github.com/hotline12345/hotline/media"
)

// Errors of RunDay. Each comes wrapped with the detail (which agent, which address).
var (
	// ErrUnreachable: the target did not answer the first INVITE (or an agent's REGISTER,
	// or the API did not answer) within the setup timeout.
	ErrUnreachable = errors.New("loadtest: target unreachable")
	// ErrAgentRefused: the registrar refused an agent's REGISTER (wrong password, unknown
	// agent) or the API refused to make the agent ready.
	ErrAgentRefused = errors.New("loadtest: agent refused")
	// ErrNoLocalPort: no free local port for a phone's SIP listener or a call's RTP socket.
	ErrNoLocalPort = errors.New("loadtest: no free local port")
	// ErrCutShort: calls were still up at DayConfig.MaxDuration; they were hung up.
	ErrCutShort = errors.New("loadtest: run cut short at its maximum duration")
)

// Defaults and bounds of a day run.
const (
	DefaultAgentStart     = "1001"
	DefaultDayMaxCalls    = 1000
	DefaultDayTalk        = 232 * time.Second // the seed data's mean talk time
	DefaultRingDelay      = 2 * time.Second
	DefaultToneTimeout    = 5 * time.Second
	DefaultRegisterExpiry = 10 * time.Minute
	DefaultTransferQueue  = "complaint" // in the default config agents 1011-1020 take consult and complaint
	MaxDayAgents          = 5000
	MaxDayDuration        = 24 * time.Hour
	TalkSigma             = 0.5    // lognormal shape of talk times
	CitizenTone           = 1400.0 // Hz, sent by citizens once connected
	AgentTone             = 1000.0 // Hz, sent by agents on answer
	toneThreshold         = 0.3    // DetectTone ratio taken as "heard"
	tonePoll              = 20 * time.Millisecond
	toneChunk             = 100 * time.Millisecond
	promptLevel           = -40.0 // dBFS: a frame louder than this is a prompt, not silence
	promptFrames          = 200 * time.Millisecond
	promptTimeout         = 10 * time.Second // for the menu prompt after the answer, and the rating prompt
	ratingEndTimeout      = 15 * time.Second // after the key: the thanks, then the server's BYE
	agentGrace            = 10 * time.Second // for agents' calls to end after the last citizen's
	teardownTimeout       = 5 * time.Second
	cancelGrace           = time.Second // for the final answer to a cancelled INVITE
	digitDuration         = 100 * time.Millisecond
)

// DayConfig configures RunDay: a bounded simulated call-center day of citizens calling
// the hotline through its menu and queues, and agents answering them.
type DayConfig struct {
	Target      string     // the server's SIP address, IP:PORT; loopback unless AllowRemote
	API         string     // the server's HTTP base URL (agents' ready and logout only); may be empty with no agents
	AllowRemote bool       // allow a target, API and local address off loopback (a second machine)
	LocalIP     netip.Addr // the phones' address; default 127.0.0.1
	Number      string     // called number; default 12345

	Agents     int               // simulated agents; 0 is allowed (nobody answers)
	AgentStart string            // first agent id, numeric; default 1001 (the next ones count up)
	Passwords  map[string]string // agent id → password; default "agent<id>", as in the default config

	Rate        float64       // new citizens per second (Poisson arrivals)
	Duration    time.Duration // arrivals stop then; the run ends when every call ended
	MaxDuration time.Duration // hard bound of the whole run; default Duration + 10 talk times + 2 min, at most Duration + 1 h
	MaxCalls    int           // citizens at most; default DefaultDayMaxCalls, at most MaxCalls

	Mix       map[string]float64 // menu digit → weight; default {"1": 1}
	Queues    map[string]string  // menu digit → queue, for the ground truth; default 1 consult, 2 complaint, 3 business
	InfoShare float64            // share of citizens pressing keys by SIP INFO instead of RFC 4733

	Talk               time.Duration      // mean talk time (lognormal, sigma TalkSigma); default DefaultDayTalk
	RingDelay          time.Duration      // agents answer this long after the ring; default DefaultRingDelay
	NoAnswerShare      float64            // share of rings agents let go unanswered (they go ready again after)
	BusyShare          float64            // share of rings agents decline with 486 Busy Here (the ACD rests them a moment)
	Patience           time.Duration      // mean (exponential) wait after which a queued citizen hangs up; 0: never
	RateShare          float64            // share of citizens who rate when the agent hangs up first
	RatingMix          map[string]float64 // rating key → weight; default {"1": 0.8, "2": 0.15, "3": 0.05}
	HangupByAgentShare float64            // share of conversations the agent ends (the others the citizen)
	TransferShare      float64            // share of answered calls the agent blind-transfers (REFER) to TransferQueue after a third of the talk
	TransferQueue      string             // the transfer's target queue (the REFER's user part); default DefaultTransferQueue
	Seed               uint64             // the run's randomness; the same seed, the same plan

	SetupTimeout  time.Duration // INVITE → answer, and REGISTER and API requests; default DefaultSetupTimeout
	ToneTimeout   time.Duration // for each side to hear the other's tone; default DefaultToneTimeout
	CallsPerPhone int           // citizens per test phone (one SIP socket each); default DefaultCallsPerPhone

	Logger *slog.Logger // nil discards
}

func (c *DayConfig) validate() error {
	if !c.LocalIP.IsValid() {
		c.LocalIP = netip.MustParseAddr("127.0.0.1")
	}
	target, err := netip.ParseAddrPort(c.Target)
	if err != nil && strings.HasPrefix(strings.ToLower(c.Target), "localhost:") {
		target, err = netip.ParseAddrPort("127.0.0.1" + c.Target[len("localhost"):])
	}
	if err != nil || target.Port() == 0 {
		return fmt.Errorf("%w: target %q: want IP:PORT", ErrConfig, c.Target)
	}
	c.Target = target.String()
	if c.Agents > 0 || c.API != "" {
		u, err := url.Parse(c.API)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%w: API %q: want http://HOST:PORT", ErrConfig, c.API)
		}
		if !c.AllowRemote {
			if _, err := LoopbackIP(u.Hostname()); err != nil {
				return fmt.Errorf("API: %w", err)
			}
		}
		c.API = strings.TrimSuffix(c.API, "/")
	}
	if !c.AllowRemote {
		if !target.Addr().Unmap().IsLoopback() {
			return fmt.Errorf("target: %w: %s", ErrNotLoopback, target.Addr())
		}
		if !c.LocalIP.IsLoopback() {
			return fmt.Errorf("local address: %w: %s", ErrNotLoopback, c.LocalIP)
		}
	}
	if c.Number == "" {
		c.Number = DefaultNumber
	}
	if c.AgentStart == "" {
		c.AgentStart = DefaultAgentStart
	}
	if _, err := strconv.ParseUint(c.AgentStart, 10, 32); err != nil {
		return fmt.Errorf("%w: agent start %q: want a number", ErrConfig, c.AgentStart)
	}
	if c.MaxCalls == 0 {
		c.MaxCalls = DefaultDayMaxCalls
	}
	switch {
	case c.Agents < 0 || c.Agents > MaxDayAgents:
		return fmt.Errorf("%w: agents %d: want 0-%d", ErrConfig, c.Agents, MaxDayAgents)
	case !(c.Rate > 0 && c.Rate <= MaxRate):
		return fmt.Errorf("%w: rate %g: want more than 0 and at most %g citizens/s", ErrConfig, c.Rate, MaxRate)
	case c.Duration <= 0 || c.Duration > MaxDayDuration:
		return fmt.Errorf("%w: duration %s: want more than 0 and at most %s", ErrConfig, c.Duration, MaxDayDuration)
	case c.MaxCalls < 1 || c.MaxCalls > MaxCalls:
		return fmt.Errorf("%w: max calls %d: want 1-%d", ErrConfig, c.MaxCalls, MaxCalls)
	case c.MaxDuration < 0 || c.Talk < 0 || c.RingDelay < 0 || c.Patience < 0 || c.SetupTimeout < 0 || c.ToneTimeout < 0 || c.CallsPerPhone < 0:
		return fmt.Errorf("%w: negative setting", ErrConfig)
	}
	for name, v := range map[string]float64{"info share": c.InfoShare, "no-answer share": c.NoAnswerShare, "busy share": c.BusyShare, "rate share": c.RateShare, "hang-up-by-agent share": c.HangupByAgentShare, "transfer share": c.TransferShare} {
		if !(v >= 0 && v <= 1) {
			return fmt.Errorf("%w: %s %g: want 0-1", ErrConfig, name, v)
		}
	}
	if c.NoAnswerShare+c.BusyShare >= 1 && c.Agents > 0 {
		return fmt.Errorf("%w: no-answer share %g + busy share %g: no agent would ever answer", ErrConfig, c.NoAnswerShare, c.BusyShare)
	}
	if c.TransferQueue == "" {
		c.TransferQueue = DefaultTransferQueue
	}
	if !validQueueName(c.TransferQueue) {
		return fmt.Errorf("%w: transfer queue %q: want a queue name (letters, digits, - _ .)", ErrConfig, c.TransferQueue)
	}
	if c.Mix == nil {
		c.Mix = map[string]float64{"1": 1}
	}
	if c.RatingMix == nil {
		c.RatingMix = map[string]float64{"1": 0.8, "2": 0.15, "3": 0.05}
	}
	if err := checkWeights("mix", c.Mix, "0123456789*#"); err != nil {
		return err
	}
	if err := checkWeights("rating mix", c.RatingMix, "123"); err != nil {
		return err
	}
	if c.Queues == nil {
		c.Queues = map[string]string{"1": "consult", "2": "complaint", "3": "business"}
	}
	if c.Talk == 0 {
		c.Talk = DefaultDayTalk
	}
	if c.RingDelay == 0 {
		c.RingDelay = DefaultRingDelay
	}
	if c.SetupTimeout == 0 {
		c.SetupTimeout = DefaultSetupTimeout
	}
	if c.ToneTimeout == 0 {
		c.ToneTimeout = DefaultToneTimeout
	}
	if c.CallsPerPhone == 0 {
		c.CallsPerPhone = DefaultCallsPerPhone
	}
	if c.MaxDuration == 0 {
		c.MaxDuration = c.Duration + min(10*c.Talk+2*time.Minute, time.Hour)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

func checkWeights(name string, m map[string]float64, keys string) error {
	sum := 0.0
	for k, w := range m {
		if len(k) != 1 || !strings.Contains(keys, k) {
			return fmt.Errorf("%w: %s: key %q: want one of %s", ErrConfig, name, k, keys)
		}
		if !(w >= 0) || math.IsInf(w, 0) {
			return fmt.Errorf("%w: %s: weight %g of %q", ErrConfig, name, w, k)
		}
		sum += w
	}
	if !(sum > 0) {
		return fmt.Errorf("%w: %s: want a positive weight", ErrConfig, name)
	}
	return nil
}

// validQueueName reports whether s can stand as the user part of the REFER's target URI.
func validQueueName(s string) bool {
	if len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return s != ""
}

// agentIDs returns the run's agent ids: AgentStart counting up.
func (c *DayConfig) agentIDs() []string {
	start, _ := strconv.ParseUint(c.AgentStart, 10, 32)
	ids := make([]string, c.Agents)
	for i := range ids {
		ids[i] = strconv.FormatUint(start+uint64(i), 10)
	}
	return ids
}

func (c *DayConfig) password(id string) string {
	if p, ok := c.Passwords[id]; ok {
		return p
	}
	return "agent" + id
}

// day is one run's shared state.
type day struct {
	cfg    DayConfig
	log    *slog.Logger
	meter  *dayMeter
	target string  // the called URI
	bridge *bridge // set in a bridge run: agents answer at once and carry media on its meter

	declined atomic.Int64 // rings the agents answered 486 Busy Here

	mu      sync.Mutex
	byCall  map[string]*dayCall // by caller number, for the agents
	calls   []*dayCall          // in arrival order
	stopped string              // why arrivals stopped
}

func (d *day) add(dc *dayCall) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.byCall[dc.plan.caller] = dc
	d.calls = append(d.calls, dc)
}

func (d *day) lookup(caller string) *dayCall {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.byCall[caller]
}

// RunDay runs a simulated call-center day against cfg.Target: it registers cfg.Agents agents
// (digest), makes them ready through cfg.API, then lets citizens arrive at cfg.Rate per
// second for cfg.Duration (at most cfg.MaxCalls). Each citizen dials the number, presses its
// menu digit once the menu prompt plays, waits in queue (giving up after its patience), and
// when an agent answers both check they hear each other's tone; then one of them hangs up
// after the sampled talk time, and a citizen whose agent hung up may rate the call. By
// cfg.TransferShare the agent instead blind-transfers the citizen (REFER) to
// cfg.TransferQueue after a third of the talk: the citizen waits again (patience too), a
// second agent answers, the tones are checked again, and the rest of the talk ends as
// above. The run ends when every call has ended (at most cfg.MaxDuration); agents then log
// out and unregister. progress, if not nil, gets a Sample every second.
//
// It returns the report, the ground truth (one TruthCall per citizen dialled) and an error:
// ctx's error when ctx was cancelled (live calls are hung up, agents log out, the results so
// far are returned), ErrCutShort at MaxDuration, ErrUnreachable, ErrAgentRefused or
// ErrNoLocalPort (with the report and truth so far). A 503 or any other failed call is
// counted, not an error. Invalid configurations return ErrConfig or ErrNotLoopback and no
// results.
func RunDay(ctx context.Context, cfg DayConfig, progress func(Sample)) (*DayReport, *Truth, error) {
	if err := cfg.validate(); err != nil {
		return nil, nil, err
	}
	d := &day{
		cfg: cfg, log: cfg.Logger.With("caller", "loadtest-day"),
		target: "sip:" + cfg.Number + "@" + cfg.Target,
		byCall: map[string]*dayCall{},
	}
	truth := &Truth{Scenario: "day", Target: cfg.Target, Started: time.Now().UTC()}
	start := time.Now()
	d.meter = newDayMeter(start)
	runCtx, cancelRun := context.WithCancelCause(ctx)
	defer cancelRun(nil)
	runCtx, cancelMax := context.WithTimeoutCause(runCtx, cfg.MaxDuration, ErrCutShort)
	defer cancelMax()

	sched := media.NewScheduler(2)
	defer sched.Close()

	finish := func(runErr error) (*DayReport, *Truth, error) {
		truth.Ended = time.Now().UTC()
		d.mu.Lock()
		for _, dc := range d.calls {
			truth.Calls = append(truth.Calls, dc.truth())
		}
		d.mu.Unlock()
		pkts, lost := d.meter.loss()
		rep := buildDayReport(&cfg, truth, d.meter.samples(), pkts, lost, d.meter.refusedRefers())
		rep.Stopped, rep.AgentsDeclined = d.stopped, int(d.declined.Load())
		if runErr != nil {
			rep.Error = runErr.Error()
		}
		return rep, truth, runErr
	}

	agents, err := startAgents(runCtx, d, sched)
	if err != nil {
		d.stopped = "agents"
		return finish(err)
	}
	phones, err := d.citizenPhones(sched)
	if err != nil {
		agents.stop(runCtx)
		d.stopped = "no-local-port"
		return finish(err)
	}

	stopSampler := d.meter.run(progress)
	var citizens sync.WaitGroup
	d.stopped = d.arrive(runCtx, cancelRun, phones, &citizens)
	citizens.Wait()
	cause, parentErr := context.Cause(runCtx), ctx.Err() // the calls' end, not the teardown's
	for _, p := range phones {
		p.Close()
	}
	agents.drain(agentGrace)
	agents.stop(runCtx)
	stopSampler()

	var runErr error
	switch {
	case parentErr != nil:
		runErr = parentErr
		d.stopped = "cancelled"
	case errors.Is(cause, ErrCutShort):
		runErr = fmt.Errorf("%w (%s)", ErrCutShort, cfg.MaxDuration)
		d.stopped = "max-duration"
	case cause != nil:
		runErr = cause
	}
	return finish(runErr)
}

// citizenPhones starts the phones citizens call from: one per CallsPerPhone citizens.
func (d *day) citizenPhones(sched *media.Scheduler) ([]*phone.Phone, error) {
	n := (d.cfg.MaxCalls + d.cfg.CallsPerPhone - 1) / d.cfg.CallsPerPhone
	phones := make([]*phone.Phone, 0, n)
	for range n {
		p, err := phone.New(phone.Config{LocalIP: d.cfg.LocalIP, Logger: d.cfg.Logger, Scheduler: sched})
		if err != nil {
			for _, p := range phones {
				p.Close()
			}
			return nil, portError("citizen phone", err)
		}
		phones = append(phones, p)
	}
	return phones, nil
}

// portError wraps an error binding a local socket.
func portError(what string, err error) error {
	if isPortExhausted(err) {
		return fmt.Errorf("%w: %s: %v", ErrNoLocalPort, what, err)
	}
	return fmt.Errorf("loadtest: %s: %w", what, err)
}

// isPortExhausted reports whether err is a failure to open a local socket for want of
// ports or file descriptors.
func isPortExhausted(err error) bool {
	for _, e := range []error{syscall.EADDRINUSE, syscall.EADDRNOTAVAIL, syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// arrive starts citizens at Poisson times until Duration, MaxCalls, or the run's end, and
// returns why it stopped. The first citizen's dial resolves before the second is started: a
// target that does not answer it stops the run with ErrUnreachable after one INVITE.
func (d *day) arrive(ctx context.Context, fail context.CancelCauseFunc, phones []*phone.Phone, wg *sync.WaitGroup) string {
	cfg := &d.cfg
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x1234_5678))
	callerBase := cfg.Seed % 1e8
	start := time.Now()
	var at time.Duration
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for i := range cfg.MaxCalls {
		if i > 0 {
			at += time.Duration(rng.ExpFloat64() / cfg.Rate * float64(time.Second))
		}
		if at >= cfg.Duration {
			return "duration"
		}
		plan := samplePlan(cfg, rng, fmt.Sprintf("139%08d", (callerBase+uint64(i))%1e8))
		if wait := time.Until(start.Add(at)); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return stopReason(ctx)
			case <-timer.C:
			}
		}
		if ctx.Err() != nil {
			return stopReason(ctx)
		}
		dc := newDayCall(plan, i == 0)
		d.add(dc)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := d.citizen(ctx, phones[i%len(phones)], dc); err != nil {
				fail(err)
			}
			dc.resolveSetup() // after fail: the first citizen's error stops the arrivals waiting for it
		}()
		if i == 0 {
			select {
			case <-dc.setup:
			case <-ctx.Done():
				return stopReason(ctx)
			}
		}
	}
	return "max-calls"
}

func stopReason(ctx context.Context) string {
	cause := context.Cause(ctx)
	switch {
	case errors.Is(cause, ErrCutShort):
		return "max-duration"
	case errors.Is(cause, ErrUnreachable):
		return "unreachable"
	case errors.Is(cause, ErrNoLocalPort):
		return "no-local-port"
	}
	return "cancelled"
}

// samplePlan draws what one citizen will do.
func samplePlan(cfg *DayConfig, rng *rand.Rand, caller string) citizenPlan {
	p := citizenPlan{caller: caller}
	p.digit = pick(rng, cfg.Mix)
	p.info = rng.Float64() < cfg.InfoShare
	mu := math.Log(cfg.Talk.Seconds()) - TalkSigma*TalkSigma/2 // mean exp(mu + σ²/2) = Talk
	p.talk = time.Duration(math.Exp(mu+TalkSigma*rng.NormFloat64()) * float64(time.Second))
	if cfg.Patience > 0 {
		p.patience = time.Duration(rng.ExpFloat64() * float64(cfg.Patience))
	}
	p.agentHangs = rng.Float64() < cfg.HangupByAgentShare
	p.rates = rng.Float64() < cfg.RateShare
	p.ratingKey = pick(rng, cfg.RatingMix)
	if cfg.TransferShare > 0 { // drawn last and only then: a day without transfers keeps its seed's plan
		p.transfer = rng.Float64() < cfg.TransferShare
		if p.transfer && cfg.Patience > 0 {
			p.patience2 = time.Duration(rng.ExpFloat64() * float64(cfg.Patience))
		}
	}
	return p
}

// pick draws a key by weight, in key order so that a seed gives the same draw.
func pick(rng *rand.Rand, weights map[string]float64) rune {
	keys := make([]string, 0, len(weights))
	sum := 0.0
	for k, w := range weights {
		keys = append(keys, k)
		sum += w
	}
	slices.Sort(keys)
	x := rng.Float64() * sum
	for _, k := range keys {
		if x < weights[k] {
			return rune(k[0])
		}
		x -= weights[k]
	}
	for i := len(keys) - 1; i >= 0; i-- {
		if weights[keys[i]] > 0 {
			return rune(keys[i][0])
		}
	}
	return rune(keys[0][0])
}
