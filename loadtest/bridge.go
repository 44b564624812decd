package loadtest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hotline12345/hotline/loadtest/phone"
)

// Defaults of a bridge run.
const (
	DefaultBridgeHold      = 30 * time.Second
	DefaultBridgeRingDelay = 100 * time.Millisecond
	DefaultConnectTimeout  = time.Minute
	DefaultMaxLoss         = 0.001 // 0.1 %
	// DefaultMaxSkip: above 1 % of its frames skipped the tester did not deliver the offered
	// load, and the run does not show that the server carried it.
	DefaultMaxSkip = 0.01
	// minToneFrames is how much of the other side's tone (100 ms) makes a side "heard".
	minToneFrames = 5
	// holdSlack is the packets per leg (200 ms) by which a leg's count may lag at either end
	// of the hold (in flight, or a busy server a little behind): not counted as lost. Loss
	// spread over a leg shows as sequence gaps; the hold's count is for a leg gone silent.
	holdSlack = 10
	// maxMeterSockets bounds --sockets: each pair of sockets is a goroutine waking 1000/s.
	maxMeterSockets = 64
)

// BridgeConfig configures RunBridge: Pairs citizens and Pairs agents, every citizen
// through the menu to an agent, all pairs held together for Hold with audio both ways.
type BridgeConfig struct {
	Target      string     // the server's SIP address, IP:PORT; loopback unless AllowRemote
	API         string     // the server's HTTP base URL (agents go ready through it)
	Metrics     string     // the server's /metrics URL for its CPU and memory; empty: none
	AllowRemote bool       // allow a target, API and local address off loopback (a second machine)
	LocalIP     netip.Addr // the phones' and the meter's address; default 127.0.0.1
	Number      string     // called number; default 12345

	Pairs      int               // citizens and agents, one pair each
	AgentStart string            // first agent id; default 1001
	Passwords  map[string]string // agent id → password; default "agent<id>"
	Digit      string            // the menu key to the agents' queue; default "1"
	Codec      string            // "PCMA" (default) or "PCMU", offered by the citizens

	Rate           float64       // new citizens per second, evenly spaced
	Hold           time.Duration // every pair up together for this long; default DefaultBridgeHold
	RingDelay      time.Duration // agents answer after this; default DefaultBridgeRingDelay
	SetupTimeout   time.Duration // INVITE → answer, REGISTER, API; default DefaultSetupTimeout
	ConnectTimeout time.Duration // the citizen's menu key → each side hearing the other; default DefaultConnectTimeout
	MaxLoss        float64       // the pass criterion for RTP loss over all legs; default DefaultMaxLoss
	MaxSkip        float64       // the share of its frames the tester may skip (short of CPU) and still pass; default DefaultMaxSkip
	MeterSockets   int           // shared RTP sockets; default DefaultMeterSockets
	Seed           uint64        // the callers' numbers

	Logger *slog.Logger // nil discards
}

// dayConfig is the day run the bridge is a special case of: it validates the shared
// settings and drives the agents.
func (c *BridgeConfig) dayConfig() (DayConfig, error) {
	if c.Pairs < 1 || c.Pairs > MaxDayAgents {
		return DayConfig{}, fmt.Errorf("%w: pairs %d: want 1-%d", ErrConfig, c.Pairs, MaxDayAgents)
	}
	if !(c.Rate > 0 && c.Rate <= MaxRate) {
		return DayConfig{}, fmt.Errorf("%w: rate %g: want more than 0 and at most %g citizens/s", ErrConfig, c.Rate, MaxRate)
	}
	switch {
	case c.Hold < 0 || c.Hold > MaxDayDuration:
		return DayConfig{}, fmt.Errorf("%w: hold %s: want 0 (the default %s) to %s", ErrConfig, c.Hold, DefaultBridgeHold, MaxDayDuration)
	case c.RingDelay < 0 || c.ConnectTimeout < 0 || c.SetupTimeout < 0:
		return DayConfig{}, fmt.Errorf("%w: negative ring delay, connect or setup timeout", ErrConfig)
	case c.MeterSockets < 0 || c.MeterSockets > maxMeterSockets:
		return DayConfig{}, fmt.Errorf("%w: sockets %d: want 1-%d", ErrConfig, c.MeterSockets, maxMeterSockets)
	case !(c.MaxSkip >= 0 && c.MaxSkip <= 1):
		return DayConfig{}, fmt.Errorf("%w: max skip %g: want a ratio from 0 to 1", ErrConfig, c.MaxSkip)
	case !(c.MaxLoss >= 0 && c.MaxLoss < 1):
		return DayConfig{}, fmt.Errorf("%w: max loss %g: want a ratio from 0 to below 1 (0.001 is 0.1%%)", ErrConfig, c.MaxLoss)
	case c.Digit != "" && (len(c.Digit) != 1 || !strings.Contains("0123456789*#", c.Digit)):
		return DayConfig{}, fmt.Errorf("%w: digit %q: want one menu key, 0-9 * #", ErrConfig, c.Digit)
	}
	if c.Hold == 0 {
		c.Hold = DefaultBridgeHold
	}
	if c.RingDelay == 0 {
		c.RingDelay = DefaultBridgeRingDelay
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.MaxLoss == 0 {
		c.MaxLoss = DefaultMaxLoss
	}
	if c.MaxSkip == 0 {
		c.MaxSkip = DefaultMaxSkip
	}
	if c.Digit == "" {
		c.Digit = "1"
	}
	switch c.Codec {
	case "":
		c.Codec = "PCMA"
	case "PCMA", "PCMU":
	default:
		return DayConfig{}, fmt.Errorf("%w: codec %q: want PCMA or PCMU", ErrConfig, c.Codec)
	}
	arrivals := time.Duration(float64(c.Pairs-1) / c.Rate * float64(time.Second))
	d := DayConfig{
		Target: c.Target, API: c.API, AllowRemote: c.AllowRemote, LocalIP: c.LocalIP, Number: c.Number,
		Agents: c.Pairs, AgentStart: c.AgentStart, Passwords: c.Passwords,
		Rate: c.Rate, Duration: arrivals + time.Second, MaxCalls: c.Pairs,
		Mix: map[string]float64{c.Digit: 1}, Talk: c.Hold, RingDelay: c.RingDelay,
		SetupTimeout: c.SetupTimeout, Seed: c.Seed, Logger: c.Logger,
		// Arrivals, the longest setup, menu and connect, the hold, the hang-ups at the
		// arrival rate, and the agents' teardown.
		MaxDuration: 2*arrivals + max(c.SetupTimeout, DefaultSetupTimeout) + promptTimeout + c.ConnectTimeout + c.Hold + agentGrace + 2*time.Minute,
	}
	if err := d.validate(); err != nil {
		return DayConfig{}, err
	}
	if c.API == "" {
		return DayConfig{}, fmt.Errorf("%w: the API address is needed to make the agents ready", ErrConfig)
	}
	if c.Metrics != "" && !c.AllowRemote {
		if _, err := LoopbackURL(c.Metrics); err != nil {
			return DayConfig{}, err
		}
	}
	c.LocalIP, c.Number, c.AgentStart = d.LocalIP, d.Number, d.AgentStart
	return d, nil
}

// bridge is a bridge run's shared state beside the day it drives.
type bridge struct {
	cfg   BridgeConfig
	meter *Meter

	resolved atomic.Int64 // pairs bridged or failed
	bridged  atomic.Int64 // pairs where the citizen heard the agent, now
	peak     atomic.Int64
	allIn    chan struct{} // closed when every pair is resolved
	allOnce  sync.Once
	release  chan struct{} // closed when the hold is over: citizens hang up, in arrival order at the rate
	relOnce  sync.Once

	mu    sync.Mutex
	pairs map[string]*bridgePair // by caller number
}

// bridgePair is one citizen and the agent who answered, as each side measured it.
type bridgePair struct {
	citizen, agent RTPStats
	cst, ast       *Stream // the legs' streams while they run, under bridge.mu
	agentID        string
	agentDone      chan struct{} // closed when the agent's stream has its final figures
	agentOnce      sync.Once
	connect        time.Duration // menu key → the citizen hears the agent
	failed         string
	held           bool // in both hold snapshots (or lost between them)
	holdAudioBad   bool // a leg fell short of the far side's tone during the hold
}

func (b *bridge) pair(caller string) *bridgePair {
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.pairs[caller]
	if p == nil {
		p = &bridgePair{agentDone: make(chan struct{})}
		b.pairs[caller] = p
	}
	return p
}

// setStream records a leg's stream (nil when it ends) for the hold's counts.
func (b *bridge) setStream(pr *bridgePair, side int, st *Stream) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if side == sideCitizen {
		pr.cst = st
	} else {
		pr.ast = st
	}
}

// holdCounts are what a leg received, and what the other leg sent, at one instant.
type holdCounts struct{ recv, tone, peerSent int64 }

// holdSnapshot reads every bridged pair's counts.
func (b *bridge) holdSnapshot() map[*bridgePair][2]holdCounts {
	b.mu.Lock()
	defer b.mu.Unlock()
	m := map[*bridgePair][2]holdCounts{}
	for _, pr := range b.pairs {
		if pr.cst == nil || pr.ast == nil {
			continue
		}
		c, a := pr.cst.Stats(), pr.ast.Stats()
		m[pr] = [2]holdCounts{
			sideCitizen: {recv: c.Packets, tone: c.ToneFrames, peerSent: a.Sent},
			sideAgent:   {recv: a.Packets, tone: a.ToneFrames, peerSent: c.Sent},
		}
	}
	return m
}

// holdFigures folds two snapshots into the report: per leg, what the far side sent during
// the hold against what arrived (end-to-end loss through the server, whatever the tester's
// own pacing did), and whether what arrived was the far side's tone. A pair whose leg fell
// short fails its audio check.
func (b *bridge) holdFigures(rep *BridgeReport, before, after map[*bridgePair][2]holdCounts) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for pr, end := range after {
		start, ok := before[pr]
		if !ok {
			continue
		}
		pr.held = true
		for side := range end {
			sent := end[side].peerSent - start[side].peerSent
			recv := end[side].recv - start[side].recv
			tone := end[side].tone - start[side].tone
			rep.HoldSent += sent
			rep.HoldReceived += recv
			if short := sent - recv - holdSlack; short > 0 {
				rep.HoldLost += short
			}
			if float64(tone) < (1-b.cfg.MaxLoss)*float64(sent)-holdSlack {
				pr.holdAudioBad = true
			}
		}
	}
	for pr := range before {
		if _, ok := after[pr]; !ok { // a leg ended during the hold
			pr.held, pr.holdAudioBad = true, true
		}
	}
}

func (b *bridge) resolve() {
	if b.resolved.Add(1) == int64(b.cfg.Pairs) {
		b.allOnce.Do(func() { close(b.allIn) })
	}
}

func (b *bridge) up(delta int64) {
	n := b.bridged.Add(delta)
	for {
		p := b.peak.Load()
		if n <= p || b.peak.CompareAndSwap(p, n) {
			return
		}
	}
}

// RunBridge measures end-to-end bridged capacity: cfg.Pairs agents register and go ready,
// cfg.Pairs citizens dial in at cfg.Rate, press the menu key and are bridged to an agent;
// once every pair is up (or failed) all are held together for cfg.Hold, each side sending
// its tone and checking it hears the other's, then the citizens hang up. Media runs on a
// Meter (shared sockets, recvmmsg and sendmmsg), so the tester costs less than the server.
//
// The report says how many pairs were up together, each pair's audio check, the loss and
// jitter over all legs, setup and connect times, and the CPU of the tester (and of the
// server with cfg.Metrics) while all pairs were held. Errors as RunDay's.
func RunBridge(ctx context.Context, cfg BridgeConfig, progress func(Sample)) (*BridgeReport, *Truth, error) {
	dcfg, err := cfg.dayConfig()
	if err != nil {
		return nil, nil, err
	}
	codec := pcmaPT
	if cfg.Codec == "PCMU" {
		codec = pcmuPT
	}
	meter, err := NewMeter(cfg.LocalIP, cfg.MeterSockets)
	if err != nil {
		return nil, nil, portError("meter", err)
	}
	defer meter.Close()
	b := &bridge{cfg: cfg, meter: meter, allIn: make(chan struct{}), release: make(chan struct{}), pairs: map[string]*bridgePair{}}
	d := &day{
		cfg: dcfg, log: dcfg.Logger.With("caller", "loadtest-bridge"),
		target: "sip:" + dcfg.Number + "@" + dcfg.Target,
		byCall: map[string]*dayCall{}, bridge: b,
	}
	truth := &Truth{Scenario: "bridge", Target: dcfg.Target, Started: time.Now().UTC()}
	rep := &BridgeReport{Target: dcfg.Target, Pairs: cfg.Pairs, Rate: cfg.Rate, Hold: Dur(cfg.Hold), Started: truth.Started, MaxLoss: cfg.MaxLoss, MaxSkip: cfg.MaxSkip}
	start := time.Now()
	d.meter = newDayMeter(start)
	runCtx, cancelRun := context.WithCancelCause(ctx)
	defer cancelRun(nil)
	runCtx, cancelMax := context.WithTimeoutCause(runCtx, dcfg.MaxDuration, ErrCutShort)
	defer cancelMax()

	finish := func(runErr error) (*BridgeReport, *Truth, error) {
		truth.Ended = time.Now().UTC()
		d.mu.Lock()
		for _, dc := range d.calls {
			truth.Calls = append(truth.Calls, dc.truth())
		}
		d.mu.Unlock()
		rep.build(b, truth, d.meter.samples(), meter.Stats(), time.Since(start))
		rep.Stopped = d.stopped
		if runErr != nil {
			rep.Error = runErr.Error()
		}
		return rep, truth, runErr
	}

	agents, err := startAgents(runCtx, d, nil) // their media is on the meter
	if err != nil {
		d.stopped = "agents"
		return finish(err)
	}
	phones := make([]*phone.Phone, 0, (cfg.Pairs+DefaultCallsPerPhone-1)/DefaultCallsPerPhone)
	for range cap(phones) {
		p, err := phone.New(phone.Config{LocalIP: cfg.LocalIP, Codecs: []uint8{codec}, Logger: dcfg.Logger, MediaAddr: meter.NextAddr})
		if err != nil {
			for _, p := range phones {
				p.Close()
			}
			agents.stop(runCtx)
			d.stopped = "no-local-port"
			return finish(portError("citizen phone", err))
		}
		phones = append(phones, p)
	}

	// The hold: once every pair is resolved, all of them together for cfg.Hold.
	holdDone := make(chan struct{})
	go func() {
		defer close(holdDone)
		defer b.relOnce.Do(func() { close(b.release) })
		select {
		case <-b.allIn:
		case <-runCtx.Done():
			return
		}
		if b.bridged.Load() == 0 {
			return // nothing to hold
		}
		t0, cpu0 := time.Now(), processCPU()
		srv0, srvAt0 := scrapeServer(runCtx, cfg.Metrics), time.Now()
		before := b.holdSnapshot()
		d.log.Info("all pairs resolved: holding", "bridged", b.bridged.Load(), "hold", cfg.Hold)
		t := time.NewTimer(cfg.Hold)
		defer t.Stop()
		select {
		case <-t.C:
		case <-runCtx.Done():
		}
		after := b.holdSnapshot()
		wall := time.Since(t0)
		rep.HeldFor = Dur(wall)
		rep.TesterCores = (processCPU() - cpu0).Seconds() / wall.Seconds()
		b.holdFigures(rep, before, after)
		if srv1 := scrapeServer(runCtx, cfg.Metrics); srv0 != nil && srv1 != nil {
			rep.ServerCores = (srv1.Get("process_cpu_seconds_total") - srv0.Get("process_cpu_seconds_total")) / time.Since(srvAt0).Seconds()
			rep.ServerRSS = int64(srv1.Get("process_resident_memory_bytes"))
		}
	}()

	udpIn0, udpRcv0, _ := udpCounters()
	stopSampler := d.meter.run(progress)
	var citizens sync.WaitGroup
	d.stopped = b.arrive(runCtx, cancelRun, d, phones, &citizens)
	citizens.Wait()
	cause, parentErr := context.Cause(runCtx), ctx.Err()
	b.relOnce.Do(func() { close(b.release) })
	<-holdDone
	for _, p := range phones {
		p.Close()
	}
	agents.drain(agentGrace)
	agents.stop(runCtx)
	stopSampler()
	udpIn1, udpRcv1, _ := udpCounters()
	rep.HostUDPDrops = (udpIn1 - udpIn0) + (udpRcv1 - udpRcv0)

	var runErr error
	switch {
	case parentErr != nil:
		runErr, d.stopped = parentErr, "cancelled"
	case errors.Is(cause, ErrCutShort):
		runErr, d.stopped = fmt.Errorf("%w (%s)", ErrCutShort, dcfg.MaxDuration), "max-duration"
	case cause != nil:
		runErr = cause
	default:
		d.stopped = "held"
	}
	return finish(runErr)
}

// scrapeServer returns the server's metrics, nil without a URL or on error.
func scrapeServer(ctx context.Context, url string) *Scrape {
	if url == "" {
		return nil
	}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s, err := ScrapeMetrics(sctx, url)
	if err != nil {
		return nil
	}
	return s
}

// arrive starts the citizens evenly spaced; the first one's INVITE resolves before the
// second starts, so an unreachable target costs one INVITE.
func (b *bridge) arrive(ctx context.Context, fail context.CancelCauseFunc, d *day, phones []*phone.Phone, wg *sync.WaitGroup) string {
	cfg := &b.cfg
	start := time.Now()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for i := range cfg.Pairs {
		if wait := time.Until(start.Add(time.Duration(float64(i) / cfg.Rate * float64(time.Second)))); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				b.abandonRest(cfg.Pairs - i)
				return stopReason(ctx)
			case <-timer.C:
			}
		}
		if ctx.Err() != nil {
			b.abandonRest(cfg.Pairs - i)
			return stopReason(ctx)
		}
		plan := citizenPlan{caller: fmt.Sprintf("138%08d", (cfg.Seed%1e8+uint64(i))%1e8), digit: rune(cfg.Digit[0]), talk: cfg.Hold}
		dc := newDayCall(plan, i == 0)
		d.add(dc)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := b.citizen(ctx, d, phones[i%len(phones)], dc, i); err != nil {
				fail(err)
			}
			dc.resolveSetup() // after fail: the first citizen's error stops the arrivals waiting for it
		}()
		if i == 0 {
			select {
			case <-dc.setup:
			case <-ctx.Done():
				b.abandonRest(cfg.Pairs - 1)
				return stopReason(ctx)
			}
			// The rest keep their spacing from here, not all at once after a slow first setup.
			start = time.Now().Add(-time.Duration(float64(time.Second) / cfg.Rate))
		}
	}
	return "all-dialled"
}

// abandonRest resolves the pairs that will never be dialled, so the hold can end.
func (b *bridge) abandonRest(n int) {
	for range n {
		b.resolve()
	}
}

// citizen is one citizen of a bridge run: dial, press the key when the menu plays, wait
// for the agent's tone, hold until the release, hang up. It writes the call's truth.
func (b *bridge) citizen(ctx context.Context, d *day, p *phone.Phone, dc *dayCall, i int) (runErr error) {
	cfg := &b.cfg
	tc := &dc.tc
	pr := b.pair(dc.plan.caller)
	resolved := sync.OnceFunc(b.resolve)
	defer resolved()
	fail := func(by, why string) {
		pr.failed = why
		d.failed(tc, by, why)
	}
	tc.Caller, tc.Digits, tc.DTMF, tc.Queue = dc.plan.caller, cfg.Digit, "rfc4733", d.cfg.Queues[cfg.Digit]
	invite := time.Now()
	tc.Invite = invite.UTC()
	dctx, dcancel := context.WithTimeout(ctx, d.cfg.SetupTimeout)
	defer dcancel()
	c, err := p.DialAsync(dctx, d.target, dc.plan.caller)
	if err != nil {
		tc.Ended = time.Now().UTC()
		fail(ByCaller, "dial: "+err.Error())
		if isPortExhausted(err) {
			return portError("citizen call", err)
		}
		return nil
	}
	tc.SIPCallID = c.SIPCallID()
	select {
	case <-c.Answered():
	case <-dctx.Done():
		t := time.NewTimer(cancelGrace)
		select {
		case <-c.Answered():
		case <-t.C:
		}
		t.Stop()
	}
	hangup := func(by string) {
		tc.HungUpBy, tc.Ended = by, time.Now().UTC()
		hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), teardownTimeout)
		defer cancel()
		_ = c.Hangup(hctx)
	}
	select {
	case <-c.Answered():
	default:
		tc.Ended = time.Now().UTC()
		if ctx.Err() != nil {
			tc.Outcome, tc.HungUpBy, tc.Error = OutcomeCancelled, ByCaller, "run stopped"
			return nil
		}
		fail(ByCaller, "no answer within "+d.cfg.SetupTimeout.String())
		if dc.first {
			return fmt.Errorf("%w: no answer to the INVITE to %s within %s", ErrUnreachable, d.cfg.Target, d.cfg.SetupTimeout)
		}
		return nil
	}
	if err := c.Err(); err != nil {
		var se *phone.StatusError
		why := "refused: " + err.Error()
		if errors.As(err, &se) {
			why = fmt.Sprintf("refused: %d %s", se.Code, se.Reason)
		}
		tc.Ended = time.Now().UTC()
		fail(ByServer, why)
		return nil
	}
	answered := time.Now()
	dc.resolveSetup() // the next citizens may come
	tc.Answered = answered.UTC()
	d.meter.setup(answered.Sub(invite))
	// Until the menu key is taken the server has the call in its IVR: a failure there is an
	// IVR hang-up in its records, as in the day run.
	ivrFail := func(why string) error {
		pr.failed = why
		tc.Outcome, tc.Error = OutcomeIVRHangup, why
		if ctx.Err() != nil {
			tc.Error = "run stopped"
		}
		d.meter.failure()
		hangup(ByCaller)
		return nil
	}
	dtmfPT, _ := c.DTMFPayloadType()
	st, err := b.meter.AddStream(c.RemoteRTP(), c.Codec(), dtmfPT, StreamOptions{Local: c.LocalRTP(), Tone: CitizenTone, Hear: AgentTone})
	if err != nil {
		return ivrFail("media: " + err.Error())
	}
	d.meter.add(st, true)
	b.setStream(pr, sideCitizen, st)
	defer func() {
		b.setStream(pr, sideCitizen, nil)
		pr.citizen = st.Remove()
		d.meter.end(st)
	}()

	// The menu: press the key once the server's audio flows (the prompt; keys barge in).
	if !waitStream(ctx, c, func() bool { return st.Stats().Packets > 0 }, promptTimeout) {
		return ivrFail("no audio from the server within " + promptTimeout.String())
	}
	sent, err := st.SendDigits(cfg.Digit, digitDuration)
	if err == nil {
		select {
		case <-sent:
		case <-c.Done():
		}
	}
	if err != nil || c.Err() != nil || isDone(c) {
		return ivrFail(fmt.Sprintf("menu key: %v", errors.Join(err, c.Err(), errors.New(c.ByeReason()))))
	}
	chose := time.Now().Add(-rfc4733EndLag)
	d.meter.queued(1)
	connected := waitStream(ctx, c, func() bool {
		select {
		case <-dc.connected:
			return st.Stats().ToneFrames >= minToneFrames
		default:
			return false
		}
	}, cfg.ConnectTimeout)
	d.meter.queued(-1)
	if !connected {
		why := "no agent within " + cfg.ConnectTimeout.String()
		switch {
		case ctx.Err() != nil:
			why = "run stopped"
		case isDone(c):
			why = "the server hung up in the queue: " + c.ByeReason()
		}
		if ok, _ := dc.abandon(true); ok { // no agent may answer from now on
			pr.failed = why
			if isDone(c) {
				tc.Ended = time.Now().UTC()
				d.failed(tc, ByServer, why)
				return nil
			}
			tc.Outcome, tc.AbandonAt, tc.Error = OutcomeAbandoned, Dur(time.Since(chose)), why
			d.meter.failure()
			hangup(ByCaller)
			return nil
		}
		// An agent answered: the server has it answered, whatever the audio did.
		select {
		case <-dc.connected:
		case <-time.After(agentGrace):
		}
		agent, at := dc.connection()
		why = "the agent's tone not heard within " + cfg.ConnectTimeout.String()
		if ctx.Err() != nil {
			why = "run stopped"
		}
		pr.failed = why
		tc.Outcome, tc.Agent, tc.Wait, tc.Error = OutcomeAnswered, agent, Dur(at.Sub(chose)), why
		if !at.IsZero() {
			tc.Connected = at.UTC()
			tc.Talk = Dur(time.Since(at))
		}
		d.meter.failure()
		dc.audio.report(sideCitizen, false)
		hangup(ByCaller)
		b.awaitAgent(pr)
		return nil
	}
	agent, at := dc.connection()
	pr.connect = time.Since(chose)
	tc.Outcome, tc.Agent, tc.Connected, tc.Wait = OutcomeAnswered, agent, at.UTC(), Dur(at.Sub(chose))
	d.meter.connected(at.Sub(chose))
	b.up(1)
	resolved()
	defer b.up(-1)

	serverBye := func() error {
		tc.Ended, tc.Talk, tc.HungUpBy = time.Now().UTC(), Dur(time.Since(at)), ByServer
		tc.Error = "the server hung up during the hold: " + c.ByeReason()
		dc.audio.report(sideCitizen, true)
		return nil
	}
	select {
	case <-b.release:
	case <-c.Done():
		return serverBye()
	}
	// Hang up in arrival order at the arrival rate: a burst of BYEs would measure the
	// tester's burst, not the server.
	if ctx.Err() == nil {
		t := time.NewTimer(time.Duration(float64(i) / cfg.Rate * float64(time.Second)))
		select {
		case <-t.C:
		case <-c.Done():
			t.Stop()
			return serverBye()
		case <-ctx.Done():
		}
		t.Stop()
	}
	if ctx.Err() != nil {
		tc.Error = "run stopped"
	}
	tc.Talk = Dur(time.Since(at))
	hangup(ByCaller)
	b.awaitAgent(pr)
	dc.audio.report(sideCitizen, true)
	return nil
}

// awaitAgent waits (bounded) for the agent's leg of the pair to end and report.
func (b *bridge) awaitAgent(pr *bridgePair) {
	t := time.NewTimer(agentGrace)
	defer t.Stop()
	select {
	case <-pr.agentDone:
	case <-t.C:
	}
}

// waitStream polls ok every tonePoll until it holds (true), or timeout, the call's end or
// ctx's (false).
func waitStream(ctx context.Context, c *phone.Call, ok func() bool, timeout time.Duration) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(tonePoll)
	defer tick.Stop()
	for !ok() {
		select {
		case <-tick.C:
		case <-deadline.C:
			return false
		case <-c.Done():
			return false
		case <-ctx.Done():
			return false
		}
	}
	return true
}

func isDone(c *phone.Call) bool {
	select {
	case <-c.Done():
		return true
	default:
		return false
	}
}

// bridgeInvite is a bridge run's agent ringing: answer after the ring delay with the
// media on the meter, send the agent's tone, listen for the citizen's, until the server
// hangs up after the citizen.
func (a *simAgent) bridgeInvite(c *phone.Call) bool {
	p := a.pool
	b := p.d.bridge
	if !p.track() {
		return false
	}
	defer p.untrack()
	dc := p.d.lookup(c.From())
	t := time.NewTimer(p.d.cfg.RingDelay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-c.Done():
		a.readyAgain()
		return false
	case <-p.ctx.Done():
		return false
	}
	if dc == nil || !dc.commit() {
		return false // not one of ours, or the citizen gave up: 486
	}
	answerAt := time.Now()
	if !p.track() {
		dc.uncommit()
		return false
	}
	go func() {
		defer p.untrack()
		pr := b.pair(dc.plan.caller)
		defer pr.agentOnce.Do(func() { close(pr.agentDone) })
		select {
		case <-c.Answered():
		case <-p.ctx.Done():
		}
		if c.Err() != nil || p.ctx.Err() != nil {
			dc.uncommit()
			hangup(p.ctx, c)
			return
		}
		dtmfPT, _ := c.DTMFPayloadType()
		st, err := b.meter.AddStream(c.RemoteRTP(), c.Codec(), dtmfPT, StreamOptions{Local: c.LocalRTP(), Tone: AgentTone, Hear: CitizenTone})
		if err != nil {
			dc.uncommit()
			hangup(p.ctx, c)
			return
		}
		p.d.meter.add(st, false)
		b.setStream(pr, sideAgent, st)
		dc.connect(a.id, answerAt)
		select {
		case <-c.Done():
		case <-p.ctx.Done():
			hangup(p.ctx, c)
		}
		b.setStream(pr, sideAgent, nil)
		pr.agentID, pr.agent = a.id, st.Remove()
		p.d.meter.end(st)
		dc.audio.report(sideAgent, pr.agent.ToneFrames >= minToneFrames)
	}()
	return true
}
