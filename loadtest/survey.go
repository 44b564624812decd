package loadtest

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/hotline12345/hotline/loadtest/phone"
)

// The survey scenario (云回访): the citizens at the far end of an outbound trunk. The server
// dials; the far end answers, is busy, declines, is no number at all or lets it ring, and the
// citizens who answer listen for the survey's prompt before they press their key, as people
// do. With an API and targets it runs a whole campaign and holds the campaign's counts and
// records against its own truth.
//
// In the survey truth, TruthCall.Caller is the calling number as the far end saw it (the
// server's caller ID), Called the citizen's number (the record's called) and Attempt the
// call's rank among the calls to that number (the record's attempt); HungUpBy "caller" is the
// citizen, as in the record's hangup_side.

// Errors of RunSurvey.
var (
	// ErrCampaign: the server's API refused the campaign, or could not be read.
	ErrCampaign = errors.New("loadtest: survey campaign")
	// ErrMaxCalls: the far end took SurveyConfig.MaxCalls calls before the campaign finished.
	ErrMaxCalls = errors.New("loadtest: the far end reached its maximum number of calls")
)

// Outcomes of an unanswered survey call in the truth (the server's dispositions): busy is
// 486 Busy Here or 603 Decline, invalid-number 404 Not Found (never retried).
const (
	OutcomeBusy          = "busy"
	OutcomeNoAnswer      = "no-answer"
	OutcomeInvalidNumber = "invalid-number"
)

// Defaults and bounds of a survey run.
const (
	DefaultSurveyListen      = "127.0.0.1:5090" // the default config's loopback-out gateway
	DefaultSurveyScript      = "satisfaction"
	DefaultSurveyTrunk       = "loopback-out"
	DefaultSurveyMaxCalls    = 1000
	DefaultSurveyMaxDuration = time.Hour // with a campaign
	MaxSurveyTargets         = 10000
	surveyEndTimeout         = time.Minute // after the key: the thanks (or the script asking again), then the server's BYE
	surveyKeyTimeout         = 5 * time.Second
	surveyPoll               = 250 * time.Millisecond
	surveyAPITimeout         = 10 * time.Second
	surveyAPIErrors          = 3 // consecutive failed polls that end the run
	runStopped               = "run stopped"
)

// SurveyConfig configures RunSurvey: the far end of an outbound trunk, and optionally the
// campaign that makes the server call it.
type SurveyConfig struct {
	Listen      string // the far end's SIP address, IP:PORT (the trunk's gateway); default DefaultSurveyListen
	AllowRemote bool   // allow Listen and API off loopback (a second machine)

	// API is the server's HTTP base URL. With Targets > 0 the run creates a campaign of
	// Targets generated numbers (1390000xxxx, in the default dial plan) and ends when no
	// target waits for the machine any more; it then compares the campaign's counts and
	// records with its truth. With Targets 0 the run serves whatever calls come for Duration.
	API           string
	Targets       int
	Survey        string        // the campaign's survey script; default DefaultSurveyScript
	Trunk         string        // the campaign's outbound trunk; default DefaultSurveyTrunk
	MaxAttempts   int           // the campaign's attempts per target; 0: the server's default
	Retry         time.Duration // the campaign's delay before a retry, for every outcome; 0: the server's defaults
	RingTimeout   time.Duration // the campaign's ring timeout; 0: the server's default
	CPS           float64       // the campaign's calls per second; 0: the server's default
	MaxConcurrent int           // the campaign's calls at once; 0: the server's default

	Duration    time.Duration // without a campaign: take calls this long (calls up then finish)
	MaxDuration time.Duration // hard bound of the run; default DefaultSurveyMaxDuration, or Duration + 2 min
	MaxCalls    int           // calls taken at most (later ones get 480); default DefaultSurveyMaxCalls

	// What each call meets, drawn per attempt from Seed, the number and the attempt (the
	// same seed, the same day): busy (486 Busy Here), no answer (it rings until the server
	// cancels), rejected (603 Decline, which the server counts as busy and retries), an
	// invalid number (404 Not Found, which the server records as invalid-number and does not
	// retry), else an answer after AnswerDelay. The four shares add up to at most 1.
	BusyShare     float64
	NoAnswerShare float64
	RejectShare   float64
	InvalidShare  float64
	AnswerDelay   time.Duration
	// Who answers: HangupShare hang up as soon as the survey's first prompt plays (pressing
	// nothing); the others press one key drawn from RatingMix (default 1: 0.8, 2: 0.15,
	// 3: 0.05, the satisfaction script's answers), by SIP INFO for InfoShare of them, else
	// RFC 4733, and wait for the server to hang up.
	HangupShare float64
	InfoShare   float64
	RatingMix   map[string]float64
	Seed        uint64

	Logger *slog.Logger // nil discards
}

func (c *SurveyConfig) campaign() bool { return c.Targets > 0 }

func (c *SurveyConfig) validate() error {
	if c.Listen == "" {
		c.Listen = DefaultSurveyListen
	}
	listen, err := netip.ParseAddrPort(c.Listen)
	if err != nil && strings.HasPrefix(strings.ToLower(c.Listen), "localhost:") {
		listen, err = netip.ParseAddrPort("127.0.0.1" + c.Listen[len("localhost"):])
	}
	if err != nil || listen.Port() == 0 {
		return fmt.Errorf("%w: listen %q: want IP:PORT", ErrConfig, c.Listen)
	}
	if !c.AllowRemote && !listen.Addr().Unmap().IsLoopback() {
		return fmt.Errorf("listen: %w: %s", ErrNotLoopback, listen.Addr())
	}
	c.Listen = listen.String()
	if c.API != "" {
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
	if c.MaxCalls == 0 {
		c.MaxCalls = DefaultSurveyMaxCalls
	}
	switch {
	case c.Targets < 0 || c.Targets > MaxSurveyTargets:
		return fmt.Errorf("%w: targets %d: want 0-%d", ErrConfig, c.Targets, MaxSurveyTargets)
	case c.campaign() && c.API == "":
		return fmt.Errorf("%w: targets need the API (the campaign is created through it)", ErrConfig)
	case c.campaign() && c.Duration != 0:
		return fmt.Errorf("%w: duration: not with a campaign (its end ends the run; bound it with the max duration)", ErrConfig)
	case !c.campaign() && (c.Duration <= 0 || c.Duration > MaxDayDuration):
		return fmt.Errorf("%w: duration %s: want more than 0 and at most %s (or targets and an API for a campaign)", ErrConfig, c.Duration, MaxDayDuration)
	case c.MaxCalls < 1 || c.MaxCalls > MaxCalls:
		return fmt.Errorf("%w: max calls %d: want 1-%d", ErrConfig, c.MaxCalls, MaxCalls)
	case c.MaxCalls < c.Targets:
		return fmt.Errorf("%w: max calls %d: below the %d targets, the campaign could not finish", ErrConfig, c.MaxCalls, c.Targets)
	case c.MaxDuration < 0 || c.MaxDuration > MaxDayDuration+time.Hour || c.AnswerDelay < 0 || c.Retry < 0 || c.RingTimeout < 0 || c.MaxAttempts < 0 || c.MaxConcurrent < 0:
		return fmt.Errorf("%w: negative or too long setting", ErrConfig)
	case !(c.CPS >= 0) || math.IsInf(c.CPS, 0):
		return fmt.Errorf("%w: cps %g: want 0 (the server's default) or more", ErrConfig, c.CPS)
	}
	for _, s := range []struct {
		name string
		v    float64
	}{{"busy share", c.BusyShare}, {"no-answer share", c.NoAnswerShare}, {"reject share", c.RejectShare}, {"invalid share", c.InvalidShare},
		{"hang-up share", c.HangupShare}, {"info share", c.InfoShare}} {
		if !(s.v >= 0 && s.v <= 1) {
			return fmt.Errorf("%w: %s %g: want 0-1", ErrConfig, s.name, s.v)
		}
	}
	if sum := c.BusyShare + c.NoAnswerShare + c.RejectShare + c.InvalidShare; sum > 1+1e-9 {
		return fmt.Errorf("%w: busy %g + no-answer %g + reject %g + invalid %g shares: %.3g, above 1 (the rest answer)",
			ErrConfig, c.BusyShare, c.NoAnswerShare, c.RejectShare, c.InvalidShare, sum)
	}
	if c.RatingMix == nil {
		c.RatingMix = map[string]float64{"1": 0.8, "2": 0.15, "3": 0.05}
	}
	if err := checkWeights("rating mix", c.RatingMix, "123"); err != nil {
		return err
	}
	if c.Survey == "" {
		c.Survey = DefaultSurveyScript
	}
	if c.Trunk == "" {
		c.Trunk = DefaultSurveyTrunk
	}
	if c.MaxDuration == 0 {
		c.MaxDuration = DefaultSurveyMaxDuration
		if !c.campaign() {
			c.MaxDuration = c.Duration + 2*time.Minute
		}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// SurveyNumber is the i-th generated number of a survey campaign: 1390000xxxx.
func SurveyNumber(i int) string { return fmt.Sprintf("1390000%04d", i) }

// surveyCaseID is the i-th target's case id.
func surveyCaseID(i int) string { return fmt.Sprintf("LT%04d", i) }

// surveyPlan is what the far end does with one call, drawn from the seed, the number and the
// attempt.
type surveyPlan struct {
	action string // OutcomeAnswered, OutcomeBusy, OutcomeNoAnswer or OutcomeInvalidNumber
	status int    // the far end's final response to a call it refuses: 486, 603 or 404; else 0
	info   bool   // the key by SIP INFO, else RFC 4733
	hangup bool   // hangs up when the first prompt plays
	key    rune
}

// drawSurveyPlan draws every value in a fixed order, so that each depends only on the seed,
// the number and the attempt. The reject and invalid shares come after the others, so that
// with none of them a seed draws what it drew before they existed.
func drawSurveyPlan(cfg *SurveyConfig, number string, attempt int) surveyPlan {
	h := fnv.New64a()
	h.Write([]byte(number))
	rng := rand.New(rand.NewPCG(cfg.Seed^h.Sum64(), uint64(attempt)))
	p := surveyPlan{action: OutcomeAnswered}
	switch x, busy, noAnswer := rng.Float64(), cfg.BusyShare, cfg.BusyShare+cfg.NoAnswerShare; {
	case x < busy:
		p.action, p.status = OutcomeBusy, 486
	case x < noAnswer:
		p.action = OutcomeNoAnswer
	case x < noAnswer+cfg.RejectShare:
		p.action, p.status = OutcomeBusy, 603
	case x < noAnswer+cfg.RejectShare+cfg.InvalidShare:
		p.action, p.status = OutcomeInvalidNumber, 404
	}
	p.info = rng.Float64() < cfg.InfoShare
	p.hangup = rng.Float64() < cfg.HangupShare
	p.key = pick(rng, cfg.RatingMix)
	return p
}

// surveyCall is one call the far end took.
type surveyCall struct {
	plan surveyPlan
	tc   TruthCall // written by the call's goroutine; read once every call ended
}

// farEnd is the citizens' side of the outbound trunk: one SIP phone answering every call.
type farEnd struct {
	cfg   *SurveyConfig
	log   *slog.Logger
	ctx   context.Context // the run's: calls hang up when it ends
	meter *dayMeter
	wg    sync.WaitGroup // calls in progress

	mu       sync.Mutex
	taking   bool
	active   int
	attempts map[string]int // calls taken per number
	calls    []*surveyCall  // in the order taken
	refused  int
	full     chan struct{} // closed when MaxCalls calls were taken
}

// admit takes a call to number, or returns nil once the run takes no more.
func (f *farEnd) admit(number string) *surveyCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.taking {
		f.refused++
		return nil
	}
	f.attempts[number]++
	a := f.attempts[number]
	sc := &surveyCall{plan: drawSurveyPlan(f.cfg, number, a), tc: TruthCall{Called: number, Attempt: a}}
	f.calls = append(f.calls, sc)
	f.active++
	f.wg.Add(1)
	if len(f.calls) == f.cfg.MaxCalls {
		f.taking = false
		close(f.full)
	}
	return sc
}

func (f *farEnd) done() {
	f.mu.Lock()
	f.active--
	f.mu.Unlock()
	f.wg.Done()
}

func (f *farEnd) idle() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.active == 0
}

// truthCalls returns the calls' truth, in the order taken, and the calls refused; call it
// once every call has ended.
func (f *farEnd) truthCalls() ([]TruthCall, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]TruthCall, len(f.calls))
	for i, sc := range f.calls {
		out[i] = sc.tc
	}
	return out, f.refused
}

// overflowed reports whether a call came after the MaxCalls-th (and got 480).
func (f *farEnd) overflowed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.refused > 0
}

func (f *farEnd) stopTaking() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.taking = false
}

func (f *farEnd) fail(tc *TruthCall, why string) {
	tc.Error = why
	f.meter.failure()
}

// surveyReasons are the reason phrases of the far end's refusals.
var surveyReasons = map[int]string{486: "Busy Here", 603: "Decline", 404: "Not Found"}

// onInvite is the far end's phone ringing (phone.Config.OnInvite; 180 is sent): refuse (busy,
// decline, not found), ring until the server cancels, or answer after the delay.
func (f *farEnd) onInvite(c *phone.Call) bool {
	sc := f.admit(c.To())
	if sc == nil {
		hangup(f.ctx, c) // 480: the run takes no more calls
		return false
	}
	invite := time.Now()
	tc := &sc.tc
	tc.SIPCallID, tc.Caller, tc.Invite = c.SIPCallID(), c.From(), invite.UTC()
	if sc.plan.status != 0 {
		tc.Outcome, tc.HungUpBy, tc.SIPStatus = sc.plan.action, ByCaller, sc.plan.status
		if err := c.Reject(sc.plan.status, surveyReasons[sc.plan.status]); err != nil {
			f.fail(tc, "refusing the call: "+err.Error())
		}
		tc.Ended = time.Now().UTC()
		f.done()
		return false // the phone sends nothing more
	}
	f.meter.queued(1)
	var answer <-chan time.Time // nil: ring until the server cancels
	if sc.plan.action == OutcomeAnswered {
		t := time.NewTimer(f.cfg.AnswerDelay)
		defer t.Stop()
		answer = t.C
	}
	select {
	case <-answer:
	case <-c.Done(): // the server's CANCEL (its ring timeout)
		tc.Outcome, tc.HungUpBy, tc.SIPStatus = OutcomeNoAnswer, ByServer, 487
		if sc.plan.action == OutcomeAnswered {
			f.fail(tc, "the server cancelled before the answer delay")
		}
	case <-f.ctx.Done():
		hangup(f.ctx, c) // 480
		tc.Outcome, tc.HungUpBy, tc.SIPStatus, tc.Error = OutcomeNoAnswer, ByCaller, 480, runStopped
	}
	f.meter.queued(-1)
	if tc.Outcome != "" {
		tc.Ended = time.Now().UTC()
		f.done()
		return false
	}
	go func() {
		defer f.done()
		f.inCall(c, sc, invite)
	}()
	return true
}

// inCall is the answered citizen: listen for the prompt, press the key (or hang up), wait
// for the server to hang up.
func (f *farEnd) inCall(c *phone.Call, sc *surveyCall, invite time.Time) {
	ctx, tc, plan := f.ctx, &sc.tc, sc.plan
	defer func() { tc.Ended = time.Now().UTC() }()
	select {
	case <-c.Answered():
	case <-ctx.Done():
		hangup(ctx, c)
	}
	if err := c.Err(); err != nil {
		var se *phone.StatusError
		switch {
		case errors.As(err, &se) && se.Code == 487: // the CANCEL crossed the answer delay's end
			tc.Outcome, tc.HungUpBy, tc.SIPStatus = OutcomeNoAnswer, ByServer, 487
			f.fail(tc, "the server cancelled before the answer delay")
		case ctx.Err() != nil:
			tc.Outcome, tc.HungUpBy, tc.Error = OutcomeFailed, ByCaller, runStopped
		default:
			tc.Outcome, tc.HungUpBy = OutcomeFailed, ByCaller
			f.fail(tc, "answer: "+err.Error())
		}
		return
	}
	answered := time.Now()
	tc.Outcome, tc.SIPStatus, tc.Answered, tc.Rating = OutcomeAnswered, 200, answered.UTC(), RatingNotRated
	f.meter.setup(answered.Sub(invite))
	f.meter.addLive(c, true)
	defer f.meter.endLive(c)
	bye := func() {
		tc.HungUpBy = ByCaller
		hangup(ctx, c)
	}
	serverEnded := func(err error) bool {
		if !errors.Is(err, phone.ErrCallEnded) {
			return false
		}
		tc.HungUpBy = ByServer
		f.fail(tc, "the server hung up before the key: "+c.ByeReason())
		return true
	}

	pctx, cancel := context.WithTimeout(ctx, promptTimeout)
	err := c.WaitAudio(pctx, promptLevel, promptFrames)
	cancel()
	switch {
	case serverEnded(err):
		return
	case ctx.Err() != nil:
		tc.Error = runStopped
		bye()
		return
	case err != nil:
		f.fail(tc, "no prompt heard within "+promptTimeout.String())
		bye()
		return
	case plan.hangup:
		bye()
		return
	}
	tc.DTMF = "rfc4733"
	if plan.info {
		tc.DTMF = "info"
	}
	if err := press(ctx, c, plan.key, plan.info, surveyKeyTimeout); err != nil {
		if !serverEnded(err) {
			f.fail(tc, "key: "+err.Error())
			bye()
		}
		return
	}
	tc.Digits, tc.Rating = string(plan.key), ratingValues[plan.key]
	t := time.NewTimer(surveyEndTimeout)
	defer t.Stop()
	select {
	case <-c.Done(): // the thanks, then the server's BYE
		tc.HungUpBy = ByServer
	case <-t.C:
		f.fail(tc, "the server did not hang up within "+surveyEndTimeout.String()+" of the key")
		bye()
	case <-ctx.Done():
		tc.Error = runStopped
		bye()
	}
}

// RunSurvey plays the citizens at the far end of an outbound trunk on cfg.Listen. With an
// API and Targets it creates a campaign calling Targets generated numbers, waits until no
// target waits for the machine (each is done, failed, cancelled or handed to a human), and
// compares the campaign's targets, counts and survey records with its truth (the report's
// Mismatches); without, it takes calls for cfg.Duration. Each call taken is refused (486
// Busy Here, 603 Decline or 404 Not Found), rings until the server cancels, or is answered:
// the citizen listens for the first prompt, then hangs up or presses a key and waits for the
// server to hang up. progress, if not nil, gets a Sample every second (Active: answered calls
// up; Setups: calls answered; Waiting: calls ringing).
//
// It returns the report, the ground truth (one TruthCall per call taken) and an error:
// ctx's error when ctx was cancelled (calls up are hung up, a campaign it created is
// cancelled), ErrCutShort at MaxDuration, ErrMaxCalls when a campaign needed more calls,
// ErrCampaign when the API refused or failed, ErrNoLocalPort when Listen is taken; always
// with the report and truth so far. Invalid configurations return ErrConfig or
// ErrNotLoopback and no results.
func RunSurvey(ctx context.Context, cfg SurveyConfig, progress func(Sample)) (*SurveyReport, *Truth, error) {
	if err := cfg.validate(); err != nil {
		return nil, nil, err
	}
	runCtx, cancelRun := context.WithTimeoutCause(ctx, cfg.MaxDuration, ErrCutShort)
	defer cancelRun()
	f := &farEnd{
		cfg: &cfg, log: cfg.Logger.With("caller", "loadtest-survey"), ctx: runCtx,
		meter: newDayMeter(time.Now()), taking: true, attempts: map[string]int{}, full: make(chan struct{}),
	}
	truth := &Truth{Scenario: "survey", Target: cfg.Listen, Started: time.Now().UTC()}
	var stopped, campaignID string
	var server *SurveyServer
	var mismatches []string
	finish := func(runErr error) (*SurveyReport, *Truth, error) {
		truth.Ended = time.Now().UTC()
		var refused int
		truth.Calls, refused = f.truthCalls()
		pkts, lost := f.meter.loss()
		rep := buildSurveyReport(&cfg, truth, f.meter.samples(), pkts, lost)
		rep.Stopped, rep.Campaign, rep.Refused, rep.Server, rep.Mismatches = stopped, campaignID, refused, server, mismatches
		if runErr != nil {
			rep.Error = runErr.Error()
		}
		return rep, truth, runErr
	}

	addr := netip.MustParseAddrPort(cfg.Listen)
	p, err := phone.New(phone.Config{LocalIP: addr.Addr(), SIPPort: int(addr.Port()), Logger: cfg.Logger, OnInvite: f.onInvite})
	if err != nil {
		stopped = "no-local-port"
		return finish(portError("far end on "+cfg.Listen, err))
	}
	stopSampler := f.meter.run(progress)

	var runErr error
	var view *surveyCampaignView
	if cfg.campaign() {
		campaignID, err = f.createCampaign(runCtx)
		if err == nil {
			view, stopped, err = f.waitCampaign(runCtx, campaignID)
		} else {
			stopped = "campaign"
		}
		runErr = err
	} else {
		t := time.NewTimer(cfg.Duration)
		select {
		case <-t.C:
			stopped = "duration"
		case <-f.full:
			stopped = "max-calls"
		case <-runCtx.Done():
		}
		t.Stop()
	}
	f.stopTaking()
	if campaignID != "" && view == nil { // stopped before the campaign finished: no more calls from it
		f.cancelCampaign(ctx, campaignID)
	}
	f.wg.Wait() // the calls up end by themselves, or hang up as the run's context ends
	p.Close()
	stopSampler()
	if runCtx.Err() != nil { // before or while the last calls ended
		view, stopped, runErr = nil, "cancelled", ctx.Err()
		if ctx.Err() == nil {
			stopped, runErr = "max-duration", fmt.Errorf("%w (%s)", ErrCutShort, cfg.MaxDuration)
		}
	}

	if view != nil && runErr == nil {
		server = view.server()
		recs, err := f.records(runCtx, campaignID, truth.Started, view.attempts())
		if err != nil {
			runErr = err
		} else {
			server.Records = len(recs)
			calls, _ := f.truthCalls()
			mismatches = compareSurvey(calls, view, recs)
		}
	}
	return finish(runErr)
}
