package loadtest

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"text/tabwriter"
	"time"
)

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
	for _, c := range t.Calls {
		if r.ByAttempt[c.Attempt] == nil {
			r.ByAttempt[c.Attempt] = map[string]int{}
		}
		r.ByAttempt[c.Attempt][c.Outcome]++
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
