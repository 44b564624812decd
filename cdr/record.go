// Package cdr holds the call detail record (one row per call), the stores
// that keep records (SQLite now, PostgreSQL later) and the Writer that gets
// records from the call path into a store without blocking the call path and
// without ever losing a record of an answered call.
//
// cdr is on the ground floor: it imports no other hotline package.
package cdr

import (
	"context"
	"strings"
	"time"
)

// Record is one call: one row per call, keyed by ID. All times are stored in
// UTC with microsecond precision.
type Record struct {
	ID         string    `json:"id"` // our call id (unique; upserts are idempotent by ID)
	SIPCallID  string    `json:"sip_call_id"`
	Direction  string    `json:"direction"` // "inbound", "survey", "callback"
	Trunk      string    `json:"trunk"`
	Caller     string    `json:"caller"`
	Called     string    `json:"called"`
	Start      time.Time `json:"start"`
	Answer     time.Time `json:"answer,omitzero"` // zero if never answered
	End        time.Time `json:"end,omitzero"`
	IVRPath    string    `json:"ivr_path"` // e.g. "main>2>complaint"
	CaseNumber string    `json:"case_number,omitempty"`
	// Queue is the first queue the call entered and EnqueueTime the moment
	// it entered it; a call is offered (in the hotline-wide figures) if it
	// has a Queue. Later queues (an overflow, a transfer) are in Visits.
	Queue       string    `json:"queue,omitempty"`
	EnqueueTime time.Time `json:"enqueue,omitzero"`
	// Agent is the first agent who took the call and Connect the moment
	// that agent's leg was bridged (zero if no agent took it); the call's
	// wait (ASA) = Connect - EnqueueTime, first enqueue to first connect.
	Agent       string      `json:"agent,omitempty"`
	Connect     time.Time   `json:"connect,omitzero"`
	Disposition Disposition `json:"disposition"`  // one of the Disposition constants (disposition.go)
	HangupSide  string      `json:"hangup_side"`  // "caller", "system", "agent"
	HangupCause string      `json:"hangup_cause"` // e.g. "BYE", "CANCEL", "rtp-timeout", "max-wait", "drain", "crash"
	SIPStatus   int         `json:"sip_status"`   // final SIP status we sent/received (200, 487, 403, ...)
	Codec       string      `json:"codec,omitempty"`
	NodeID      string      `json:"node_id,omitempty"`

	// ACD detail (schema version 2). Durations are stored in microseconds.
	//
	// RingAttempts counts the agents rung for this call, the one who
	// answered included. Talk is the agent's talk time (Connect to the end
	// of the agent leg) without Hold; Hold is the time the agent had the
	// caller on hold; WrapUp the agent's after-call work. AHT = Talk + Hold
	// + WrapUp. Transfers counts the times the call was transferred; Agent
	// stays the agent who first took it.
	RingAttempts int           `json:"ring_attempts,omitempty"`
	Talk         time.Duration `json:"talk,omitempty"`
	Hold         time.Duration `json:"hold,omitempty"`
	WrapUp       time.Duration `json:"wrap_up,omitempty"`
	Transfers    int           `json:"transfers,omitempty"`
	// RecordingFile is the call's recording (质检) or voicemail (留言, Voicemail set): a WAV
	// file's path relative to the data dir, recordings/YYYY/MM/DD/<id>.wav; empty if
	// none. RecordingDuration is its audio's length, RecordingSHA256 the file's SHA-256
	// (hex) when the call ended (schema version 6).
	RecordingFile     string        `json:"recording_file,omitempty"`
	RecordingDuration time.Duration `json:"recording_duration,omitempty"`
	RecordingSHA256   string        `json:"recording_sha256,omitempty"`
	Voicemail         bool          `json:"voicemail,omitempty"`
	// SurveyAnswers are the digits the caller pressed, one per question,
	// comma separated ("1,2"); Satisfaction is the survey's verdict, one of
	// the Satisfaction constants, empty if no survey was answered.
	SurveyAnswers string `json:"survey_answers,omitempty"`
	Satisfaction  string `json:"satisfaction,omitempty"`

	// Visits lists the call's queue visits in order (schema version 3),
	// ">"-separated, each "queue" or "queue/agent" (the agent who took the
	// call in that visit): "consult/1001>complaint/1002" is a call
	// transferred from agent 1001 of consult to complaint, where 1002 took
	// it; "consult>business/1006" overflowed from consult to business. Queue
	// and Agent are the first queue and the first agent.
	Visits string `json:"visits,omitempty"`

	// Outbound detail (schema version 4), set on survey and callback
	// records (Direction survey or callback); empty on inbound calls.
	//
	// Campaign is the outbound campaign the call was made for; Target the
	// case it calls back about (the campaign target's case id: CaseNumber
	// may hold the same); Attempt the attempt number for that target, 1 on
	// the first (machine attempts on survey records, human attempts on
	// callback records). Parent is, on a callback that returns an in-queue
	// callback request (virtual hold), the ID of the inbound call that
	// asked for it (whose disposition is DispositionCallback).
	Campaign string `json:"campaign,omitempty"`
	Attempt  int    `json:"attempt,omitempty"`
	Target   string `json:"target,omitempty"`
	Parent   string `json:"parent,omitempty"`

	// Handoffs lists the call's transfers and three-way calls to directory entries
	// (一号对外, schema version 8), in order: a JSON array (handoffs.go), kept as text so
	// that a Record stays comparable.
	Handoffs Handoffs `json:"handoffs,omitempty"`
}

// Visit is one element of Record.Visits.
type Visit struct {
	Queue, Agent string
}

// VisitSeparator separates the visits of Record.Visits.
const VisitSeparator = ">"

// FormatVisits writes visits in the form of Record.Visits.
func FormatVisits(vs []Visit) string {
	var b strings.Builder
	for i, v := range vs {
		if i > 0 {
			b.WriteString(VisitSeparator)
		}
		b.WriteString(v.Queue)
		if v.Agent != "" {
			b.WriteString("/" + v.Agent)
		}
	}
	return b.String()
}

// ParseVisits reads Record.Visits.
func ParseVisits(s string) []Visit {
	if s == "" {
		return nil
	}
	var out []Visit
	for part := range strings.SplitSeq(s, VisitSeparator) {
		q, a, _ := strings.Cut(part, "/")
		out = append(out, Visit{Queue: q, Agent: a})
	}
	return out
}

// VisitedQueue reports whether the call entered queue q (first or later).
func (r *Record) VisitedQueue(q string) bool {
	if r.Queue == q {
		return true
	}
	for part := range strings.SplitSeq(r.Visits, VisitSeparator) {
		if name, _, _ := strings.Cut(part, "/"); name == q {
			return true
		}
	}
	return false
}

// Directions. A record with no direction (written before directions were
// set) is inbound.
const (
	DirectionInbound  = "inbound"
	DirectionSurvey   = "survey"   // an outbound satisfaction survey call (云回访)
	DirectionCallback = "callback" // an outbound call returning a callback request, or a human callback task
)

// Inbound reports whether r is an inbound call (Direction inbound or empty).
func (r *Record) Inbound() bool {
	return r.Direction == DirectionInbound || r.Direction == ""
}

// Satisfaction values (Record.Satisfaction, the RATING event's Data1, survey
// targets), as DESIGN.md spells them. Satisfaction = (satisfied + basically
// satisfied) / rated. NotRated is a caller who was asked and did not answer
// (hung up, or no valid key in time); an empty value means nobody asked.
const (
	SatisfactionSatisfied          = "satisfied"           // 满意
	SatisfactionBasicallySatisfied = "basically_satisfied" // 基本满意
	SatisfactionDissatisfied       = "dissatisfied"        // 不满意
	SatisfactionNotRated           = "not_rated"           // 未评价
)

// Hangup values the writer itself sets on records of calls that were
// answered but never finished because the process died.
const (
	HangupSideSystem = "system"
	HangupCauseCrash = "crash"
)

// Duration is the whole call, End - Start; zero unless both are set.
func (r *Record) Duration() time.Duration {
	if r.Start.IsZero() || r.End.IsZero() {
		return 0
	}
	return r.End.Sub(r.Start)
}

// TalkDuration is the answered (billable) part of the call, End - Answer;
// zero unless the call was answered and has ended.
func (r *Record) TalkDuration() time.Duration {
	if r.Answer.IsZero() || r.End.IsZero() {
		return 0
	}
	return r.End.Sub(r.Answer)
}

// Wait is the time the call spent queued: EnqueueTime to Connect if an
// agent took it, else EnqueueTime to End; zero if it never queued.
func (r *Record) Wait() time.Duration {
	switch {
	case r.EnqueueTime.IsZero():
		return 0
	case !r.Connect.IsZero():
		return max(r.Connect.Sub(r.EnqueueTime), 0)
	case !r.End.IsZero():
		return max(r.End.Sub(r.EnqueueTime), 0)
	}
	return 0
}

// AgentTalk is Talk if the call path set it, else (for records without
// the ACD detail) End - Connect - Hold; zero if no agent took the call.
func (r *Record) AgentTalk() time.Duration {
	if r.Talk > 0 || r.Connect.IsZero() || r.End.IsZero() {
		return r.Talk
	}
	return max(r.End.Sub(r.Connect)-r.Hold, 0)
}

// Filter selects records for List. From (inclusive) and To (exclusive) apply
// to Start; a zero bound is open. Empty strings match everything. Direction
// DirectionInbound also matches records with no direction (see
// Record.Inbound). Limit defaults to DefaultListLimit and is capped at
// MaxListLimit.
type Filter struct {
	From, To    time.Time
	Queue       string
	Disposition Disposition
	Caller      string
	Agent       string
	Direction   string
	ID          string // one record by its id
	Limit       int
}

// List limits.
const (
	DefaultListLimit = 1000
	MaxListLimit     = 100000
)

// limit returns f.Limit clamped to [1, MaxListLimit], DefaultListLimit if unset.
func (f Filter) limit() int {
	switch {
	case f.Limit <= 0:
		return DefaultListLimit
	case f.Limit > MaxListLimit:
		return MaxListLimit
	}
	return f.Limit
}

// Store keeps records. Implementations must be safe for concurrent use.
// SQLite is the embedded default; Postgres (pgx/v5) is the other; Open
// picks one by its argument.
type Store interface {
	// Upsert stores recs in one transaction, idempotently by ID: a record
	// whose ID exists replaces the stored row (last write wins, in slice
	// order within one call).
	Upsert(ctx context.Context, recs []Record) error
	// List returns the records matching f, ordered by Start (then ID).
	List(ctx context.Context, f Filter) ([]Record, error)
	// Scan calls fn for every record matching f (f.Limit is ignored), in
	// no particular order, without holding them all in memory; it stops at
	// the first error fn returns. fn must not keep the pointer.
	Scan(ctx context.Context, f Filter, fn func(*Record) error) error
	// AppendEvents stores agent events in one transaction, idempotently by
	// ID: an event whose ID is stored already is left as it is.
	AppendEvents(ctx context.Context, evs []AgentEvent) error
	// ListEvents returns the events matching f, ordered by Time (then ID).
	ListEvents(ctx context.Context, f EventFilter) ([]AgentEvent, error)
	Close() error
}

// MissingInserter is an optional Store capability: insert only the records
// whose ID is not stored yet, leave existing rows untouched. The Writer uses
// it for records it reconstructs after a crash ("interrupted"), so that a
// reconstruction can never overwrite the real, finished record. A Store
// without it gets Upsert instead (and the small risk that goes with it).
type MissingInserter interface {
	InsertMissing(ctx context.Context, recs []Record) error
}
