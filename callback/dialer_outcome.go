package callback

import (
	"strings"
	"time"

	"github.com/hotline12345/hotline/call"
	"github.com/hotline12345/hotline/cdr"
	"github.com/hotline12345/hotline/ivr"
)

// Who reached the citizen first (Target.ReachedBy).
const (
	ReachedByMachine = "machine"
	ReachedByHuman   = "human"
)

// outcome maps a call's disposition to an attempt outcome; anything that is
// not an outbound outcome counts as failed.
func outcome(d cdr.Disposition) string {
	switch s := string(d); s {
	case OutcomeAnswered, OutcomeBusy, OutcomeNoAnswer, OutcomeInvalid, OutcomeFailed, OutcomeInterrupted:
		return s
	}
	return OutcomeFailed
}

// delay is the wait before the next attempt after outcome.
func (r RetryDelays) delay(outcome string) time.Duration {
	switch outcome {
	case OutcomeBusy:
		return r.Busy
	case OutcomeNoAnswer:
		return r.NoAnswer
	case OutcomeInterrupted:
		return r.Interrupted
	}
	return r.Failed
}

// formatAnswers writes answers as Target.Answers: "service=1,speed=2".
func formatAnswers(as []ivr.Answer) string {
	parts := make([]string, 0, len(as))
	for _, a := range as {
		parts = append(parts, a.Question+"="+a.Digit)
	}
	return strings.Join(parts, ",")
}

// surveyOutcome is target t (as claimed: dialing, its attempt counted) after
// a survey call of campaign c ended with r at now.
func surveyOutcome(c Campaign, t Target, r call.SurveyResult, now time.Time) Target {
	t.Updated = now
	if r.CallID != "" {
		t.LastCall = r.CallID
	}
	t.Outcome = outcome(r.Disposition)
	switch t.Outcome {
	case OutcomeAnswered:
		t.Satisfaction = r.Satisfaction
		if t.Satisfaction == "" {
			t.Satisfaction = cdr.SatisfactionNotRated
		}
		t.Answers = formatAnswers(r.Answers)
		if t.ReachedAt.IsZero() {
			t.ReachedAt, t.ReachedBy = now, ReachedByMachine
		}
		t.State = TargetDone
		if t.Satisfaction == cdr.SatisfactionDissatisfied && c.FallbackDissatisfied && c.Fallback != "" && !r.ToAgent {
			t.State, t.NextAt = TargetHuman, now
		}
	case OutcomeInvalid:
		t.State = TargetFailed
	default:
		switch {
		case t.Attempts < c.MaxAttempts:
			t.State, t.NextAt = TargetPending, now.Add(c.Retry.delay(t.Outcome))
		case c.Fallback != "":
			t.State, t.NextAt = TargetHuman, now
		default:
			t.State = TargetFailed
		}
	}
	return cancelled(c, t)
}

// taskOutcome is human target t after its callback task ended with r at now.
func taskOutcome(c Campaign, t Target, r call.TaskResult, now time.Time) Target {
	t.Updated = now
	t.Human = outcome(r.Disposition)
	if r.CallID != "" {
		t.LastCall = r.CallID
	}
	if r.Agent != "" {
		t.HumanAgent = r.Agent
	}
	if t.Human == OutcomeAnswered {
		t.State = TargetDone
		if t.ReachedAt.IsZero() {
			t.ReachedAt, t.ReachedBy = now, ReachedByHuman
		}
		return cancelled(c, t)
	}
	t.HumanTries++
	if t.Human != OutcomeInvalid && t.HumanTries < c.MaxAttempts {
		t.State, t.NextAt = TargetHuman, now.Add(c.Retry.delay(t.Human))
	} else {
		t.State = TargetFailed
	}
	return cancelled(c, t)
}

// cancelled ends a target of a cancelled campaign that would go on; a final
// target keeps no NextAt.
func cancelled(c Campaign, t Target) Target {
	if c.State == CampaignCancelled && (t.State == TargetPending || t.State == TargetHuman) {
		t.State = TargetCancelled
	}
	if t.State != TargetPending && t.State != TargetHuman {
		t.NextAt = time.Time{}
	}
	return t
}

// atRisk reports whether t's deadline is within horizon of now (or past).
func atRisk(t Target, now time.Time, horizon time.Duration) bool {
	return !t.Deadline.IsZero() && t.Deadline.Sub(now) <= horizon
}

// byDeadline orders targets earliest deadline first (none last), then by case id.
func byDeadline(a, b Target) int {
	switch {
	case a.Deadline.Equal(b.Deadline):
		return strings.Compare(a.CaseID, b.CaseID)
	case a.Deadline.IsZero():
		return 1
	case b.Deadline.IsZero(), a.Deadline.Before(b.Deadline):
		return -1
	}
	return 1
}
