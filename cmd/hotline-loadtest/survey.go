package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/hotline12345/hotline/loadtest"
)

// runSurvey is `hotline-loadtest survey`: the citizens at the far end of an outbound trunk
// (云回访). With --targets it runs a campaign through --api and checks the server's counts
// and records against its truth; with --duration it takes whatever calls come.
func runSurvey(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("survey", flag.ContinueOnError)
	listen := fs.String("listen", loadtest.DefaultSurveyListen, "the far end's SIP address: the outbound trunk's gateway (loopback only)")
	apiURL := fs.String("api", "http://127.0.0.1:8080", "the server's HTTP API (the campaign is created and followed through it)")
	token := tokenFlag(fs)
	targets := fs.Int("targets", 0, "run a campaign calling this many generated numbers (1390000xxxx) and wait for it to finish")
	script := fs.String("campaign-survey", loadtest.DefaultSurveyScript, "the campaign's survey script")
	trunk := fs.String("trunk", loadtest.DefaultSurveyTrunk, "the campaign's outbound trunk")
	attempts := fs.Int("max-attempts", 3, "the campaign's attempts per target (0: the server's default)")
	retry := fs.Duration("retry", 5*time.Second, "the campaign's delay before a retry, every outcome (0: the server's, minutes)")
	ringTimeout := fs.Duration("ring-timeout", 10*time.Second, "the campaign's ring timeout (0: the server's)")
	cps := fs.Float64("cps", 0, "the campaign's new calls per second (0: the server's default)")
	concurrent := fs.Int("max-concurrent", 0, "the campaign's calls at once (0: the server's default)")
	duration := fs.Duration("duration", 0, "without --targets: take calls this long")
	maxDuration := fs.Duration("max-duration", 0, "hard bound of the run (0: 1 h with --targets, else --duration + 2 min)")
	maxCalls := fs.Int("max-calls", loadtest.DefaultSurveyMaxCalls, "take at most this many calls; refuse --targets above it")
	busy := fs.Float64("busy-share", 0.2, "share of calls answered 486 Busy Here")
	noAnswer := fs.Float64("no-answer-share", 0.1, "share of calls left ringing until the server cancels")
	reject := fs.Float64("reject-share", 0.05, "share of calls answered 603 Decline (busy to the server, retried)")
	invalid := fs.Float64("invalid-share", 0.02, "share of calls answered 404 Not Found (invalid-number to the server, never retried); the four shares add up to at most 1, the rest answer")
	answerDelay := fs.Duration("answer-delay", time.Second, "citizens answer after ringing this long")
	hangupShare := fs.Float64("hangup-share", 0.1, "share of answering citizens who hang up at the first prompt")
	infoShare := fs.Float64("info-share", 0.2, "share of keys sent by SIP INFO (the rest RFC 4733)")
	ratingMix := fs.String("rating-mix", "1=0.8,2=0.15,3=0.05", "survey keys and their weights (1 satisfied, 2 basically, 3 dissatisfied)")
	seed := fs.Uint64("seed", 1, "random seed: each call's fate comes from it, the number and the attempt")
	truthFile := fs.String("truth", "", "write the ground truth (every call taken) to this JSON file")
	jsonOut := fs.Bool("json", false, "print the report as JSON instead of a table")
	quiet := fs.Bool("quiet", false, "no progress line")
	if ok, code := parseWithScenario(fs, args, stderr); !ok {
		return code
	}
	mix, err := parseMix(*ratingMix)
	if err != nil {
		return fail(stderr, "survey", fmt.Errorf("%w (--rating-mix)", err))
	}
	// Checked here, not only by RunSurvey, so that the messages name the flags.
	if _, err := loadtest.LoopbackAddrPort(*listen); err != nil {
		return fail(stderr, "survey", fmt.Errorf("--listen: %w", err))
	}
	switch {
	case *targets < 0:
		return fail(stderr, "survey", fmt.Errorf("%w: --targets %d: want 0 or more", loadtest.ErrConfig, *targets))
	case *targets > *maxCalls:
		return fail(stderr, "survey", fmt.Errorf("%w: --targets %d is above --max-calls %d; raise --max-calls if you mean it", loadtest.ErrConfig, *targets, *maxCalls))
	case *targets > 0 && *duration != 0:
		return fail(stderr, "survey", fmt.Errorf("%w: --duration is for taking calls without a campaign; --targets runs until the campaign ends (bound it with --max-duration)", loadtest.ErrConfig))
	case *targets <= 0 && *duration <= 0:
		return fail(stderr, "survey", fmt.Errorf("%w: want --targets N (a campaign through --api) or --duration D (take calls)", loadtest.ErrConfig))
	}
	cfg := loadtest.SurveyConfig{
		Listen: *listen, Duration: *duration, MaxDuration: *maxDuration, MaxCalls: *maxCalls,
		BusyShare: *busy, NoAnswerShare: *noAnswer, RejectShare: *reject, InvalidShare: *invalid, AnswerDelay: *answerDelay, HangupShare: *hangupShare,
		InfoShare: *infoShare, RatingMix: mix, Seed: *seed,
	}
	if *targets > 0 {
		if err := useToken(*token, *apiURL); err != nil {
			return fail(stderr, "survey", err)
		}
		cfg.API, cfg.Targets, cfg.Survey, cfg.Trunk = strings.TrimSuffix(*apiURL, "/"), *targets, *script, *trunk
		cfg.MaxAttempts, cfg.Retry, cfg.RingTimeout, cfg.CPS, cfg.MaxConcurrent = *attempts, *retry, *ringTimeout, *cps, *concurrent
	}
	bar := &surveyProgress{w: stderr, quiet: *quiet}
	rep, truth, err := loadtest.RunSurvey(ctx, cfg, bar.update)
	if rep == nil { // an invalid configuration: no run
		return fail(stderr, "survey", err)
	}
	bar.finish()
	return output("survey", stdout, stderr, rep, truth, *truthFile, *jsonOut, err)
}

// surveyProgress is the survey's live line: a spinner counting the calls answered, with the
// calls up, ringing and failed. The number of calls is not known ahead (retries), hence no bar.
type surveyProgress struct {
	w        io.Writer
	quiet    bool
	bar      *progressbar.ProgressBar
	answered int
	failures int
}

// update takes one second's sample; the line appears with the first.
func (p *surveyProgress) update(s loadtest.Sample) {
	p.answered += s.Setups
	p.failures += s.Failures
	if p.quiet {
		return
	}
	if p.bar == nil {
		w := p.w
		p.bar = progressbar.NewOptions(-1,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetWidth(24),
			progressbar.OptionShowCount(),
			progressbar.OptionSetElapsedTime(true),
			progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
		)
	}
	p.bar.Describe(fmt.Sprintf("answered · up %d · ringing %d · failed %d · loss %.2f%%", s.Active, s.Waiting, p.failures, s.LossPercent))
	p.bar.Set(p.answered)
}

func (p *surveyProgress) finish() {
	if p.bar != nil {
		p.bar.Finish()
	}
}
