package callback

import (
	"testing"
	"time"

	"github.com/hotline12345/hotline/call"
	"github.com/hotline12345/hotline/cdr"
)

func TestSurveyOutcome(t *testing.T) {
	now := monday10
	c := Campaign{MaxAttempts: 3, Fallback: "callback", FallbackDissatisfied: true, State: CampaignRunning,
		Retry: RetryDelays{Busy: time.Minute, NoAnswer: 2 * time.Minute, Failed: 3 * time.Minute, Interrupted: 4 * time.Minute}}
	noFallback := c
	noFallback.Fallback = ""
	cancelledC := c
	cancelledC.State = CampaignCancelled
	dissatisfied := answered(cdr.SatisfactionDissatisfied)
	toAgent := dissatisfied
	toAgent.ToAgent = true
	tests := []struct {
		name     string
		c        Campaign
		attempts int
		r        call.SurveyResult
		state    string
		outcome  string
		next     time.Duration // NextAt - now; -1: zero
	}{
		{"answered", c, 1, answered(cdr.SatisfactionSatisfied), TargetDone, OutcomeAnswered, -1},
		{"answered without a key", c, 1, call.SurveyResult{Disposition: cdr.DispositionAnswered}, TargetDone, OutcomeAnswered, -1},
		{"dissatisfied to a human", c, 1, dissatisfied, TargetHuman, OutcomeAnswered, 0},
		{"dissatisfied already with an agent", c, 1, toAgent, TargetDone, OutcomeAnswered, -1},
		{"dissatisfied without fallback", noFallback, 1, dissatisfied, TargetDone, OutcomeAnswered, -1},
		{"busy", c, 1, failedWith(cdr.DispositionBusy, 486), TargetPending, OutcomeBusy, time.Minute},
		{"no answer", c, 2, failedWith(cdr.DispositionNoAnswer, 480), TargetPending, OutcomeNoAnswer, 2 * time.Minute},
		{"failed", c, 1, failedWith(cdr.DispositionFailed, 503), TargetPending, OutcomeFailed, 3 * time.Minute},
		{"interrupted", c, 1, failedWith(cdr.DispositionInterrupted, 0), TargetPending, OutcomeInterrupted, 4 * time.Minute},
		{"unknown disposition counts as failed", c, 1, failedWith(cdr.DispositionIVRHangup, 0), TargetPending, OutcomeFailed, 3 * time.Minute},
		{"exhausted to a human", c, 3, failedWith(cdr.DispositionBusy, 486), TargetHuman, OutcomeBusy, 0},
		{"exhausted without fallback", noFallback, 3, failedWith(cdr.DispositionBusy, 486), TargetFailed, OutcomeBusy, -1},
		{"invalid never retried", c, 1, failedWith(cdr.DispositionInvalidNumber, 404), TargetFailed, OutcomeInvalid, -1},
		{"cancelled campaign, retry", cancelledC, 1, failedWith(cdr.DispositionBusy, 486), TargetCancelled, OutcomeBusy, -1},
		{"cancelled campaign, answered", cancelledC, 1, answered(cdr.SatisfactionSatisfied), TargetDone, OutcomeAnswered, -1},
	}
	for _, tt := range tests {
		got := surveyOutcome(tt.c, Target{State: TargetDialing, Attempts: tt.attempts}, tt.r, now)
		wantNext := time.Time{}
		if tt.next >= 0 {
			wantNext = now.Add(tt.next)
		}
		if got.State != tt.state || got.Outcome != tt.outcome || !got.NextAt.Equal(wantNext) || got.Attempts != tt.attempts {
			t.Errorf("%s: %s %s next %v attempts %d, want %s %s next %v", tt.name, got.State, got.Outcome, got.NextAt, got.Attempts, tt.state, tt.outcome, wantNext)
		}
		if tt.outcome == OutcomeAnswered && (got.ReachedBy != ReachedByMachine || !got.ReachedAt.Equal(now) || got.Satisfaction == "") {
			t.Errorf("%s: reached %q at %v, satisfaction %q", tt.name, got.ReachedBy, got.ReachedAt, got.Satisfaction)
		}
	}
}

func TestTaskOutcome(t *testing.T) {
	now := monday10
	c := Campaign{MaxAttempts: 2, Fallback: "callback", State: CampaignRunning, Retry: RetryDelays{Busy: time.Minute, NoAnswer: 2 * time.Minute, Failed: 3 * time.Minute}}
	reached := Target{State: TargetHuman, ReachedAt: now.Add(-time.Hour), ReachedBy: ReachedByMachine}
	tests := []struct {
		name  string
		t     Target
		r     call.TaskResult
		state string
		tries int
		next  time.Duration
		by    string
	}{
		{"answered", Target{State: TargetHuman}, call.TaskResult{Disposition: cdr.DispositionAnswered, Agent: "1001"}, TargetDone, 0, -1, ReachedByHuman},
		{"answered after the machine reached them", reached, call.TaskResult{Disposition: cdr.DispositionAnswered, Agent: "1001"}, TargetDone, 0, -1, ReachedByMachine},
		{"busy retried", Target{State: TargetHuman}, call.TaskResult{Disposition: cdr.DispositionBusy}, TargetHuman, 1, time.Minute, ""},
		{"no answer, last try", Target{State: TargetHuman, HumanTries: 1}, call.TaskResult{Disposition: cdr.DispositionNoAnswer}, TargetFailed, 2, -1, ""},
		{"invalid number", Target{State: TargetHuman}, call.TaskResult{Disposition: cdr.DispositionInvalidNumber}, TargetFailed, 1, -1, ""},
	}
	for _, tt := range tests {
		got := taskOutcome(c, tt.t, tt.r, now)
		wantNext := time.Time{}
		if tt.next >= 0 {
			wantNext = now.Add(tt.next)
		}
		if got.State != tt.state || got.HumanTries != tt.tries || !got.NextAt.Equal(wantNext) || got.ReachedBy != tt.by || got.Human != outcome(tt.r.Disposition) {
			t.Errorf("%s: %+v", tt.name, got)
		}
	}
}
