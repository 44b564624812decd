package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"maps"
	"math"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/hotline12345/hotline/cdr"
	"github.com/hotline12345/hotline/loadtest/phone"
)

// The survey scenario (云回访): the citizens at the far end of an outbound trunk. The server
// dials; the far end answers, is busy, declines, is no number at all or lets it ring, and the
// citizens who answer listen for the survey's prompt before they press their key, as people
// do. With an API and targets it runs a whole campaign and holds the campaign's counts and
// records against its own truth.
//
// In the survey truth, TruthCall.Caller is the citizen's number (the number the server
// dialled: the record's called); a call's attempt is its rank among the calls to that number
// (SurveyAttempts); HungUpBy "caller" is the citizen, as in the record's hangup_side.

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

// SurveyAttempts returns each call's attempt: its rank (from 1) among the calls to the same
// number (Caller), in the truth's order, which is the order the far end took them.
func SurveyAttempts(calls []TruthCall) []int {
	seen := map[string]int{}
	out := make([]int, len(calls))
	for i, c := range calls {
		seen[c.Caller]++
		out[i] = seen[c.Caller]
	}
	return out
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
	sc := &surveyCall{plan: drawSurveyPlan(f.cfg, number, f.attempts[number])}
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
	tc.SIPCallID, tc.Caller, tc.Invite = c.SIPCallID(), c.To(), invite.UTC()
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

// surveyTarget is a campaign target as GET /api/v1/campaigns/{id} lists it.
type surveyTarget struct {
	CaseID       string `json:"case_id"`
	Phone        string `json:"phone"`
	State        string `json:"state"`
	Outcome      string `json:"outcome"`
	Attempts     int    `json:"attempts"`
	Satisfaction string `json:"satisfaction"`
}

// surveyCampaignView is GET /api/v1/campaigns/{id}.
type surveyCampaignView struct {
	ID     string `json:"id"`
	State  string `json:"state"`
	Counts struct {
		Outcomes     map[string]int `json:"outcomes"`
		Satisfaction map[string]int `json:"satisfaction"`
	} `json:"counts"`
	Targets []surveyTarget `json:"targets"`
}

// machineDone reports whether no target waits for the machine: each is done, failed,
// cancelled or with a human (whose callback task needs an agent, not the far end).
func (v *surveyCampaignView) machineDone(targets int) bool {
	if len(v.Targets) < targets {
		return false
	}
	for _, t := range v.Targets {
		if t.State == "pending" || t.State == "dialing" {
			return false
		}
	}
	return true
}

func (v *surveyCampaignView) attempts() int {
	n := 0
	for _, t := range v.Targets {
		n += t.Attempts
	}
	return n
}

func (v *surveyCampaignView) server() *SurveyServer {
	s := &SurveyServer{State: v.State, Targets: map[string]int{}, Outcomes: v.Counts.Outcomes, Satisfaction: v.Counts.Satisfaction}
	for _, t := range v.Targets {
		s.Targets[t.State]++
	}
	return s
}

// createCampaign creates the run's campaign and returns its id. A campaign the server
// created with refused numbers is returned with the error (for the caller to cancel).
func (f *farEnd) createCampaign(ctx context.Context) (string, error) {
	cfg := f.cfg
	targets := make([]map[string]string, cfg.Targets)
	for i := range targets {
		targets[i] = map[string]string{"case_id": surveyCaseID(i), "phone": SurveyNumber(i)}
	}
	body := map[string]any{
		"name": fmt.Sprintf("hotline-loadtest survey (seed %d)", cfg.Seed), "script": cfg.Survey, "trunk": cfg.Trunk,
		"window": map[string]string{"from": "00:00", "to": "24:00"}, "targets": targets,
	}
	if cfg.MaxAttempts > 0 {
		body["max_attempts"] = cfg.MaxAttempts
	}
	if cfg.Retry > 0 {
		r := cfg.Retry.String()
		body["retry"] = map[string]string{"busy": r, "no_answer": r, "failed": r, "interrupted": r}
	}
	if cfg.RingTimeout > 0 {
		body["ring_timeout"] = cfg.RingTimeout.String()
	}
	if cfg.CPS > 0 {
		body["cps"] = cfg.CPS
	}
	if cfg.MaxConcurrent > 0 {
		body["max_concurrent"] = cfg.MaxConcurrent
	}
	var out struct {
		ID      string `json:"id"`
		Refused []struct {
			CaseID string `json:"case_id"`
			Error  string `json:"error"`
		} `json:"refused"`
	}
	if err := postJSON(ctx, cfg.API+"/api/v1/campaigns", body, http.StatusCreated, &out); err != nil {
		return "", err
	}
	if out.ID == "" {
		return "", fmt.Errorf("%w: the server created a campaign without an id", ErrCampaign)
	}
	if len(out.Refused) > 0 {
		r := out.Refused[0]
		return out.ID, fmt.Errorf("%w: the server refused %d of the %d targets (%s: %s)", ErrCampaign, len(out.Refused), cfg.Targets, r.CaseID, r.Error)
	}
	f.log.Info("campaign created", "campaign", out.ID, "targets", cfg.Targets)
	return out.ID, nil
}

// waitCampaign polls the campaign until no target waits for the machine and the far end has
// no call up, and returns the last view and why it stopped; a nil view means it did not
// finish (the run's end, a call beyond MaxCalls, the API failing).
func (f *farEnd) waitCampaign(ctx context.Context, id string) (*surveyCampaignView, string, error) {
	u := f.cfg.API + "/api/v1/campaigns/" + url.PathEscape(id) + "?limit=" + strconv.Itoa(f.cfg.Targets)
	tick := time.NewTicker(surveyPoll)
	defer tick.Stop()
	failed := 0
	for {
		var v surveyCampaignView
		err := getJSON(ctx, u, &v)
		// After the poll: a refused call is counted before its 480 goes out, so before the
		// server's view can show what followed it.
		if f.overflowed() {
			return nil, "max-calls", fmt.Errorf("%w (%d) before the campaign finished", ErrMaxCalls, f.cfg.MaxCalls)
		}
		switch {
		case err == nil:
			failed = 0
			if v.machineDone(f.cfg.Targets) && f.idle() {
				return &v, "campaign-done", nil
			}
		case ctx.Err() != nil:
		default:
			if failed++; failed >= surveyAPIErrors {
				return nil, "campaign", fmt.Errorf("%w: %w", ErrCampaign, err)
			}
		}
		select {
		case <-ctx.Done():
			return nil, "cancelled", nil // RunSurvey names the cause
		case <-tick.C:
		}
	}
}

// cancelCampaign cancels the run's campaign, best effort (the run is ending anyway).
func (f *farEnd) cancelCampaign(ctx context.Context, id string) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), surveyAPITimeout)
	defer cancel()
	if err := postJSON(cctx, f.cfg.API+"/api/v1/campaigns/"+url.PathEscape(id)+"/cancel", struct{}{}, http.StatusOK, nil); err != nil {
		f.log.Warn("could not cancel the campaign", "campaign", id, "error", err)
	}
}

// records returns the campaign's final survey records, waiting up to RecordsSettle for want
// of them (the writer batches).
func (f *farEnd) records(ctx context.Context, id string, since time.Time, want int) ([]cdr.Record, error) {
	q := url.Values{
		"direction": {cdr.DirectionSurvey},
		"from":      {since.Add(-CompareWindowMargin).UTC().Format(time.RFC3339Nano)},
		"limit":     {strconv.Itoa(cdr.MaxListLimit)},
	}
	settle := time.Now().Add(RecordsSettle)
	for {
		var list struct {
			CDRs []cdr.Record `json:"cdrs"`
		}
		if err := getJSON(ctx, f.cfg.API+"/api/v1/cdrs?"+q.Encode(), &list); err != nil {
			return nil, fmt.Errorf("%w: records: %w", ErrCampaign, err)
		}
		recs := slices.DeleteFunc(list.CDRs, func(r cdr.Record) bool { return r.Campaign != id || r.End.IsZero() })
		if len(recs) >= want || time.Now().After(settle) {
			return recs, nil
		}
		select {
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		case <-time.After(surveyPoll):
		}
	}
}

// postJSON POSTs body as JSON and decodes the answer into out (if not nil); another status
// than want is an error quoting the server's.
func postJSON(ctx context.Context, u string, body any, want int, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrCampaign, err)
	}
	ctx, cancel := context.WithTimeout(ctx, surveyAPITimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrCampaign, err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := apiClient.Do(req)
	if err != nil {
		return fmt.Errorf("%w: POST %s: %v", ErrCampaign, u, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%w: POST %s: %v", ErrCampaign, u, err)
	}
	if res.StatusCode != want {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(data))
		}
		return fmt.Errorf("%w: POST %s: %s: %s", ErrCampaign, u, res.Status, e.Error)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%w: POST %s: %v", ErrCampaign, u, err)
		}
	}
	return nil
}

// recordSide is the record's hangup_side for the truth's HungUpBy.
func recordSide(by string) string {
	if by == ByServer {
		return cdr.HangupSideSystem
	}
	return by
}

// compareSurvey holds the far end's calls against the campaign's targets and counts and
// its survey records, and returns every difference. Each target was dialled as often as the
// far end was called at its number and ended with the last call's outcome (and, answered,
// its satisfaction); no number was dialled again after an invalid-number (404); the counts
// of outcomes and satisfaction agree; each (number, attempt) has exactly one record, with
// the call's disposition, the SIP status the far end answered and, answered, its answers,
// satisfaction and hang-up side.
func compareSurvey(calls []TruthCall, v *surveyCampaignView, recs []cdr.Record) []string {
	var out []string
	add := func(format string, a ...any) { out = append(out, fmt.Sprintf(format, a...)) }
	byNumber := map[string][]TruthCall{}
	for _, c := range calls {
		byNumber[c.Caller] = append(byNumber[c.Caller], c)
	}
	outcomes, sats := map[string]int{}, map[string]int{}
	targets := map[string]bool{}
	for _, t := range v.Targets {
		targets[t.Phone] = true
		cs := byNumber[t.Phone]
		if t.Attempts != len(cs) {
			add("target %s (%s): %d attempts, the far end took %d calls", t.CaseID, t.Phone, t.Attempts, len(cs))
		}
		if len(cs) == 0 {
			continue
		}
		last := cs[len(cs)-1]
		outcomes[last.Outcome]++
		if t.Outcome != last.Outcome {
			add("target %s (%s): outcome %q, the far end's last call %q", t.CaseID, t.Phone, t.Outcome, last.Outcome)
		}
		if last.Outcome == OutcomeAnswered {
			sats[last.Rating]++
			if t.Satisfaction != last.Rating {
				add("target %s (%s): satisfaction %q, the far end's %q", t.CaseID, t.Phone, t.Satisfaction, last.Rating)
			}
		}
	}
	for _, n := range slices.Sorted(maps.Keys(byNumber)) {
		cs := byNumber[n]
		if !targets[n] {
			add("%s: the far end took %d calls to a number not in the campaign", n, len(cs))
		}
		for i, c := range cs[:len(cs)-1] {
			if c.Outcome == OutcomeInvalidNumber {
				add("%s: dialled again after attempt %d found an invalid number", n, i+1)
			}
		}
	}
	for _, c := range []struct {
		name          string
		server, truth map[string]int
	}{{"outcome", v.Counts.Outcomes, outcomes}, {"satisfaction", v.Counts.Satisfaction, sats}} {
		for _, k := range slices.Sorted(maps.Keys(unionKeys(c.server, c.truth))) {
			if c.server[k] != c.truth[k] {
				add("counts: %s %s: server %d, truth %d", c.name, k, c.server[k], c.truth[k])
			}
		}
	}

	type key struct {
		number  string
		attempt int
	}
	byKey := map[key]cdr.Record{}
	for _, r := range recs {
		k := key{r.Called, r.Attempt}
		if _, dup := byKey[k]; dup {
			add("record %s: a second record of %s attempt %d", r.ID, r.Called, r.Attempt)
			continue
		}
		byKey[k] = r
	}
	attempts := SurveyAttempts(calls)
	for i, c := range calls {
		k := key{c.Caller, attempts[i]}
		r, ok := byKey[k]
		if !ok {
			add("%s attempt %d (%s): no record", c.Caller, attempts[i], c.Outcome)
			continue
		}
		delete(byKey, k)
		what := fmt.Sprintf("record %s (%s attempt %d)", r.ID, c.Caller, attempts[i])
		if string(r.Disposition) != c.Outcome {
			add("%s: disposition %q, the far end's %q", what, r.Disposition, c.Outcome)
		}
		if r.SIPCallID != "" && r.SIPCallID != c.SIPCallID {
			add("%s: sip_call_id %q, the far end's %q", what, r.SIPCallID, c.SIPCallID)
		}
		if c.SIPStatus != 0 && r.SIPStatus != c.SIPStatus {
			add("%s: sip_status %d, the far end's %d", what, r.SIPStatus, c.SIPStatus)
		}
		if c.Outcome != OutcomeAnswered {
			continue
		}
		if r.SurveyAnswers != c.Digits {
			add("%s: survey answers %q, the far end pressed %q", what, r.SurveyAnswers, c.Digits)
		}
		if r.Satisfaction != c.Rating {
			add("%s: satisfaction %q, the far end's %q", what, r.Satisfaction, c.Rating)
		}
		if want := recordSide(c.HungUpBy); r.HangupSide != want {
			add("%s: hangup side %q, the far end's %q", what, r.HangupSide, want)
		}
	}
	for _, r := range byKey {
		add("record %s: %s attempt %d (%s): no such call at the far end", r.ID, r.Called, r.Attempt, r.Disposition)
	}
	return out
}

// unionKeys returns a map with the keys of a and b.
func unionKeys(a, b map[string]int) map[string]bool {
	u := map[string]bool{}
	for k := range a {
		u[k] = true
	}
	for k := range b {
		u[k] = true
	}
	return u
}

// SurveyReport is the outcome of RunSurvey.
type SurveyReport struct {
	Listen   string    `json:"listen"`
	API      string    `json:"api,omitempty"`
	Campaign string    `json:"campaign,omitempty"` // the campaign's id (runs with targets)
	Survey   string    `json:"survey,omitempty"`
	Trunk    string    `json:"trunk,omitempty"`
	Targets  int       `json:"targets"`
	Seed     uint64    `json:"seed"`
	Started  time.Time `json:"started"`
	Elapsed  Dur       `json:"elapsed_ms"`
	// Stopped says why the run stopped: campaign-done, duration, max-calls, max-duration,
	// cancelled, campaign (the API refused or failed), no-local-port.
	Stopped string `json:"stopped"`
	Error   string `json:"error,omitempty"`

	Calls       int                    `json:"calls"`     // calls taken: the truth's
	Refused     int                    `json:"refused"`   // calls after the run stopped taking them (480)
	Answered    int                    `json:"answered"`  //
	Busy        int                    `json:"busy"`      // 486
	Declined    int                    `json:"declined"`  // 603 (the server's busy too)
	Invalid     int                    `json:"invalid"`   // 404 (the server's invalid-number)
	NoAnswer    int                    `json:"no_answer"` // rang until the server cancelled
	Other       int                    `json:"other"`     // failed answers, calls the run's end cut
	ByAttempt   map[int]map[string]int `json:"by_attempt"`
	Completed   int                    `json:"completed"` // answered, key pressed, the server hung up
	HungUp      int                    `json:"hung_up"`   // answered, hung up by the citizen at the first prompt
	Keys        map[string]int         `json:"keys"`      // key → calls that pressed it
	DTMF        map[string]int         `json:"dtmf"`      // rfc4733 or info → calls that pressed a key
	Ratings     map[string]int         `json:"ratings"`   // answered calls by what their key means (not_rated: none)
	Failures    int                    `json:"failures"`  // calls that did not go as planned (no prompt, the server hung up early, ...)
	FailReasons map[string]int         `json:"fail_reasons,omitempty"`

	Server     *SurveyServer `json:"server,omitempty"`     // the campaign as the server ended it
	Mismatches []string      `json:"mismatches,omitempty"` // the server against the truth

	RTPPackets  int      `json:"rtp_packets"` // received at the far end (the prompts)
	RTPLost     int      `json:"rtp_lost"`
	LossPercent float64  `json:"loss_percent"`
	Samples     []Sample `json:"samples"`
}

// SurveyServer is the run's campaign as the server ended it.
type SurveyServer struct {
	State        string         `json:"state"`        // the campaign's
	Targets      map[string]int `json:"targets"`      // target state → targets
	Outcomes     map[string]int `json:"outcomes"`     // last outcome → targets
	Satisfaction map[string]int `json:"satisfaction"` // satisfaction → targets
	Records      int            `json:"records"`      // survey records of the campaign
}

// Passed reports the run's pass criteria: it ran to its end, every call went as planned, and
// (with a campaign) the server's targets, counts and records agree with the truth.
func (r *SurveyReport) Passed() bool {
	return r.Error == "" && r.Failures == 0 && len(r.Mismatches) == 0 && (r.Targets == 0 || r.Server != nil)
}

func buildSurveyReport(cfg *SurveyConfig, t *Truth, samples []Sample, pkts, lost int) *SurveyReport {
	r := &SurveyReport{
		Listen: cfg.Listen, API: cfg.API, Targets: cfg.Targets, Seed: cfg.Seed,
		Started: t.Started, Elapsed: Dur(t.Ended.Sub(t.Started)), Calls: len(t.Calls),
		ByAttempt: map[int]map[string]int{}, Keys: map[string]int{}, DTMF: map[string]int{}, Ratings: map[string]int{},
		FailReasons: map[string]int{}, RTPPackets: pkts, RTPLost: lost, Samples: samples,
	}
	if cfg.campaign() {
		r.Survey, r.Trunk = cfg.Survey, cfg.Trunk
	}
	if pkts+lost > 0 {
		r.LossPercent = 100 * float64(lost) / float64(pkts+lost)
	}
	attempts := SurveyAttempts(t.Calls)
	for i, c := range t.Calls {
		if r.ByAttempt[attempts[i]] == nil {
			r.ByAttempt[attempts[i]] = map[string]int{}
		}
		r.ByAttempt[attempts[i]][c.Outcome]++
		switch c.Outcome {
		case OutcomeAnswered:
			r.Answered++
			r.Ratings[c.Rating]++
		case OutcomeBusy:
			if c.SIPStatus == 603 {
				r.Declined++
			} else {
				r.Busy++
			}
		case OutcomeInvalidNumber:
			r.Invalid++
		case OutcomeNoAnswer:
			r.NoAnswer++
		default:
			r.Other++
		}
		if c.Digits != "" {
			r.Keys[c.Digits]++
			r.DTMF[c.DTMF]++
		}
		switch {
		case c.Error != "" && c.Error != runStopped:
			r.Failures++
			r.FailReasons[c.Error]++
		case c.Outcome == OutcomeAnswered && c.Digits != "" && c.HungUpBy == ByServer:
			r.Completed++
		case c.Outcome == OutcomeAnswered && c.Digits == "" && c.HungUpBy == ByCaller && c.Error == "":
			r.HungUp++
		}
	}
	return r
}

// WriteText writes the report as a table for people, then each mismatch on a line.
func (r *SurveyReport) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, a ...any) { fmt.Fprintf(tw, "%s\t%s\n", k, fmt.Sprintf(format, a...)) }
	run := "taking calls"
	if r.Targets > 0 {
		run = fmt.Sprintf("campaign %s (%s on %s, %d targets)", orNone(r.Campaign), r.Survey, r.Trunk, r.Targets)
	}
	row("run", "far end on %s, %s, seed %d, %s in all", r.Listen, run, r.Seed, r.Elapsed)
	row("stopped", "%s%s", r.Stopped, errNote(r.Error))
	row("calls", "%d taken: %d answered, %d busy (486), %d declined (603), %d invalid number (404), %d no answer, %d other; %d refused after the end",
		r.Calls, r.Answered, r.Busy, r.Declined, r.Invalid, r.NoAnswer, r.Other, r.Refused)
	for _, a := range slices.Sorted(maps.Keys(r.ByAttempt)) {
		row(fmt.Sprintf("attempt %d", a), "%s", counts(r.ByAttempt[a]))
	}
	row("survey", "%d completed, %d hung up at the first prompt; keys %s; by %s", r.Completed, r.HungUp, counts(r.Keys), counts(r.DTMF))
	row("ratings", "%s", counts(r.Ratings))
	row("failures", "%d%s", r.Failures, reasons(r.FailReasons))
	if s := r.Server; s != nil {
		row("server", "campaign %s: targets %s; outcomes %s; satisfaction %s; %d records", s.State, counts(s.Targets), counts(s.Outcomes), counts(s.Satisfaction), s.Records)
		row("mismatches", "%d", len(r.Mismatches))
	}
	row("RTP received", "%d packets, %d lost (%.4f%%)", r.RTPPackets, r.RTPLost, r.LossPercent)
	verdict := "PASS"
	if !r.Passed() {
		verdict = "FAIL"
	}
	row("verdict", "%s", verdict)
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, m := range r.Mismatches {
		if _, err := fmt.Fprintf(w, "MISMATCH %s\n", m); err != nil {
			return err
		}
	}
	return nil
}
