// Package callback runs outbound campaigns (云回访): satisfaction surveys of citizens after
// their case closed, dialled through an outbound trunk inside a calling window, paced, retried
// by outcome, and handed to a human callback queue when the machine cannot complete them, so
// that every case gets an answer (件件有回音). It sits above call/: a survey call and a human
// callback task are calls like any other (call.Manager.Survey and call.Manager.Task).
//
// State: campaigns and targets live in the same database as the call records (store.go);
// the Dialer (dialer.go) is the one goroutine that decides what to dial next.
package callback

import (
	"context"
	"errors"
	"time"

	"github.com/hotline12345/hotline/cdr"
)

// Campaign states.
const (
	CampaignRunning   = "running"
	CampaignPaused    = "paused"
	CampaignCancelled = "cancelled"
	CampaignDone      = "done" // every target is final
)

// Target states. A target is pending until it is dialled; dialling while a call runs (at most
// one call per target, ever); then pending again (a retry at NextAt), done (reached, or final
// without a human), human (a callback task waits in the callback queue or rings an agent),
// failed (attempts exhausted and no human fallback), or cancelled with its campaign.
const (
	TargetPending   = "pending"
	TargetDialing   = "dialing"
	TargetHuman     = "human"
	TargetDone      = "done"
	TargetFailed    = "failed"
	TargetCancelled = "cancelled"
)

// Outcomes of one attempt, and the last one on the target: the call record's disposition for
// an outbound call (one taxonomy), plus OutcomeDNC for a number on the do-not-call list that
// is never dialled. By SIP final response: 200 answered; 486/600 busy; 408/480 or the ring
// timeout no-answer; 404/484/604 invalid-number (no retry); 403/5xx and our own failures
// failed (retried); a call cut by a crash or shutdown interrupted.
const (
	OutcomeAnswered    = string(cdr.DispositionAnswered)
	OutcomeBusy        = string(cdr.DispositionBusy)
	OutcomeNoAnswer    = string(cdr.DispositionNoAnswer)
	OutcomeInvalid     = string(cdr.DispositionInvalidNumber)
	OutcomeFailed      = string(cdr.DispositionFailed)
	OutcomeInterrupted = string(cdr.DispositionInterrupted)
	OutcomeDNC         = "dnc"
)

// Window is the daily calling window in the configured time zone: "09:00"–"20:00"; "00:00"–
// "24:00" is all day. No calls on Holidays; Workdays (调休) are called like Mondays. Weekends
// are called (citizens are reachable on weekends) unless Days says otherwise.
type Window struct {
	From     string   `json:"from"`
	To       string   `json:"to"`
	Days     []string `json:"days,omitempty"` // "mon-fri"...; empty = every day
	Holidays []string `json:"holidays,omitempty"`
	Workdays []string `json:"workdays,omitempty"`
}

// Campaign is one outbound survey campaign.
type Campaign struct {
	ID            string        `json:"id"`
	Name          string        `json:"name"`
	Script        string        `json:"script"` // an ivr survey name, e.g. "satisfaction"
	Trunk         string        `json:"trunk"`  // an outbound trunk name, e.g. "loopback-out"
	Window        Window        `json:"window"`
	MaxConcurrent int           `json:"max_concurrent"` // calls at once; the trunk's own limit applies too
	CPS           float64       `json:"cps"`            // new calls per second
	MaxAttempts   int           `json:"max_attempts"`   // dial attempts per target
	Retry         RetryDelays   `json:"retry"`          // delay before the next attempt, by outcome
	RingTimeout   time.Duration `json:"ring_timeout"`   // unanswered after this → no-answer
	Deadline      time.Duration `json:"deadline"`       // a case's callback deadline after its closure (24 h)
	Fallback      string        `json:"fallback"`       // callback queue for a human; "" = none
	// FallbackDissatisfied hands a target who answered dissatisfied to a human too.
	FallbackDissatisfied bool      `json:"fallback_dissatisfied"`
	DoNotCall            []string  `json:"do_not_call,omitempty"`
	State                string    `json:"state"`
	Created              time.Time `json:"created"`
}

// RetryDelays is the wait before the next attempt after each retryable outcome.
type RetryDelays struct {
	Busy        time.Duration `json:"busy"`
	NoAnswer    time.Duration `json:"no_answer"`
	Failed      time.Duration `json:"failed"`
	Interrupted time.Duration `json:"interrupted"`
}

// Target is one case to call back.
type Target struct {
	Campaign     string    `json:"campaign"`
	CaseID       string    `json:"case_id"`
	Phone        string    `json:"phone"`
	Queue        string    `json:"queue,omitempty"`   // the queue that handled the case
	Agent        string    `json:"agent,omitempty"`   // the agent who handled it
	CallID       string    `json:"call_id,omitempty"` // the inbound call the case came from (after-call rule)
	ClosedAt     time.Time `json:"closed_at,omitzero"`
	Deadline     time.Time `json:"deadline,omitzero"` // callback due by (ClosedAt + campaign deadline)
	State        string    `json:"state"`
	Outcome      string    `json:"outcome,omitempty"` // last attempt's outcome
	Attempts     int       `json:"attempts"`          // machine attempts started
	NextAt       time.Time `json:"next_at,omitzero"`  // not before (retry delay)
	LastCall     string    `json:"last_call,omitempty"`
	Satisfaction string    `json:"satisfaction,omitempty"` // satisfied, basically_satisfied, dissatisfied, not_rated
	Answers      string    `json:"answers,omitempty"`      // per question "name=digit", comma separated
	ReachedAt    time.Time `json:"reached_at,omitzero"`    // first answered attempt (machine or human)
	ReachedBy    string    `json:"reached_by,omitempty"`   // "machine" or "human"
	Human        string    `json:"human,omitempty"`        // the human task's last outcome
	HumanAgent   string    `json:"human_agent,omitempty"`
	HumanTries   int       `json:"human_tries,omitempty"`
	Updated      time.Time `json:"updated,omitzero"`
}

// Counts summarise a campaign's targets.
type Counts struct {
	Pending    int            `json:"pending"`
	InProgress int            `json:"in_progress"` // dialling, or with a human
	Done       int            `json:"done"`
	Failed     int            `json:"failed"`
	Cancelled  int            `json:"cancelled"`
	Outcomes   map[string]int `json:"outcomes"`        // last outcome → targets
	Satisfied  map[string]int `json:"satisfaction"`    // satisfaction → targets
	AtRisk     int            `json:"at_risk"`         // not final and deadline within the at-risk horizon (or past)
	Reached    int            `json:"reached"`         // reached at least once, by the machine or a human
	InTime     int            `json:"reached_in_time"` // reached by their deadline (回访率's numerator)
}

// Errors.
var (
	ErrNotFound      = errors.New("not found")
	ErrDuplicateCase = errors.New("duplicate case id")
	ErrNotInDialPlan = errors.New("number outside the dial plan")
	ErrBadTarget     = errors.New("bad target")
	ErrBadCampaign   = errors.New("bad campaign")
	ErrFinal         = errors.New("campaign is final")
)

// Store keeps campaigns and targets (SQLite or PostgreSQL, the records' database).
// Implementations are safe for concurrent use.
type Store interface {
	CreateCampaign(ctx context.Context, c Campaign) error
	SetCampaignState(ctx context.Context, id, state string) error
	Campaign(ctx context.Context, id string) (Campaign, error) // ErrNotFound
	Campaigns(ctx context.Context) ([]Campaign, error)         // newest first
	// AddTargets inserts targets in one transaction; a case id already in the campaign is
	// refused with ErrDuplicateCase (index into ts in the error) and the others still added.
	AddTargets(ctx context.Context, campaign string, ts []Target) (added int, refused []TargetError, err error)
	// Due returns up to limit pending targets of the campaign with NextAt <= now, earliest
	// deadline first (then case id).
	Due(ctx context.Context, campaign string, now time.Time, limit int) ([]Target, error)
	// Update writes a target's mutable fields; it is the dialer's only write path. With
	// fromState non-empty it succeeds only if the stored state is fromState (else ErrNotFound),
	// which is how a target is claimed for dialling exactly once.
	Update(ctx context.Context, t Target, fromState string) error
	Target(ctx context.Context, campaign, caseID string) (Target, error)
	Targets(ctx context.Context, campaign string, state string, limit int) ([]Target, error) // state "" = all
	// InState lists targets of every campaign in a state (recovery: dialing and human after a restart).
	InState(ctx context.Context, state string) ([]Target, error)
	Counts(ctx context.Context, campaign string, now time.Time, atRisk time.Duration) (Counts, error)
	Close() error
}

// TargetError is one refused target.
type TargetError struct {
	Index  int    `json:"index"` // in the request (or the CSV line number for imports)
	CaseID string `json:"case_id,omitempty"`
	Err    string `json:"error"`
}
