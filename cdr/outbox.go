package cdr

import (
	"context"
	"fmt"
	"time"
)

// The work-order feed (工单 events, docs/events.md): webhooks and the SSE
// stream read an outbox table in the records' database. Its rows are
// derived from the records and agent events IN THE TRANSACTION that stores
// them (Upsert, InsertMissing, AppendEvents), so an event is exactly as safe
// as what causes it: the Writer's journal that keeps a record from being
// lost keeps its events too. Each event has a deterministic ID (its
// idempotency key), inserted only if new, so replays and the record's
// fallback derivations (a call's start and answers are derived again from
// its final record, in case the live ones were lost) never make a second
// event. Events with no record or agent event behind them (voicemail,
// callback tasks created elsewhere) go through Writer.Publish, which
// journals them the same way.

// Event types (OutboxEvent.Type).
const (
	EventTypeCallStart    = "call.start"    // a call began (answered by the IVR, or dialled out); or, at the latest, with its record
	EventTypeCallAnswer   = "call.answer"   // an agent took the call (CONNECT)
	EventTypeCallEnd      = "call.end"      // the call's final record
	EventTypeCallTransfer = "call.transfer" // an agent transferred the call (TRANSFER)
	EventTypeCallRating   = "call.rating"   // the caller's post-call rating (RATING)
	EventTypeSurveyResult = "survey.result" // an outbound survey call's answers (survey record)
	EventTypeVoicemail    = "voicemail"     // a voicemail was left (Writer.Publish: VoicemailEvent)
	EventTypeCallbackTask = "callback.task" // a callback was requested, or a callback task ended
	EventTypeAgentState   = "agent.state"   // an agent's state changed (LOGIN, PAUSE, CONNECT, ...)
)

// EventTypes lists every event type, for validating configs and filters.
var EventTypes = []string{
	EventTypeCallStart, EventTypeCallAnswer, EventTypeCallEnd, EventTypeCallTransfer, EventTypeCallRating,
	EventTypeSurveyResult, EventTypeVoicemail, EventTypeCallbackTask, EventTypeAgentState,
}

// OutboxEvent is one event of the feed: the envelope of docs/events.md.
type OutboxEvent struct {
	// Seq is the outbox's order (assigned by the store; 0 before). The SSE
	// stream uses it as the event id for Last-Event-ID.
	Seq    int64     `json:"-"`
	ID     string    `json:"id"` // idempotency key: the same on every delivery of this event
	Type   string    `json:"type"`
	Time   time.Time `json:"time"`
	NodeID string    `json:"node_id"`
	Data   EventData `json:"data"`
}

// EventData is the payload of every type; each type sets the fields
// docs/events.md lists for it. Caller, Called and Number are citizens'
// numbers (personal data): stored in full, masked on the way out unless the
// consumer may see them (MaskNumbers).
type EventData struct {
	CallID    string `json:"call_id,omitempty"`
	Direction string `json:"direction,omitempty"`
	Caller    string `json:"caller,omitempty"`
	Called    string `json:"called,omitempty"`
	Trunk     string `json:"trunk,omitempty"`
	Queue     string `json:"queue,omitempty"`
	Agent     string `json:"agent,omitempty"`

	Start       time.Time   `json:"start,omitzero"`
	Answer      time.Time   `json:"answer,omitzero"`
	Connect     time.Time   `json:"connect,omitzero"`
	End         time.Time   `json:"end,omitzero"`
	Disposition Disposition `json:"disposition,omitempty"`
	HangupSide  string      `json:"hangup_side,omitempty"`
	HangupCause string      `json:"hangup_cause,omitempty"`
	SIPStatus   int         `json:"sip_status,omitempty"`
	Duration    float64     `json:"duration_seconds,omitempty"`
	Talk        float64     `json:"talk_seconds,omitempty"`
	Hold        float64     `json:"hold_seconds,omitempty"`
	Wait        float64     `json:"wait_seconds,omitempty"`
	IVRPath     string      `json:"ivr_path,omitempty"`
	Visits      string      `json:"visits,omitempty"`
	Transfers   int         `json:"transfers,omitempty"`
	CaseNumber  string      `json:"case_number,omitempty"`
	Recording   string      `json:"recording_file,omitempty"`

	// call.transfer: To is the target (a queue, or a directory entry).
	To string `json:"to,omitempty"`
	// call.rating, survey.result, call.end.
	Satisfaction  string `json:"satisfaction,omitempty"`
	SurveyAnswers string `json:"survey_answers,omitempty"`
	// Outbound calls and callback tasks.
	Campaign string `json:"campaign,omitempty"`
	Target   string `json:"target,omitempty"` // the campaign target's case id
	Attempt  int    `json:"attempt,omitempty"`
	Parent   string `json:"parent,omitempty"`
	// callback.task: Task is "requested" or "closed"; Number the number to call back.
	Task   string `json:"task,omitempty"`
	Number string `json:"number,omitempty"`
	// voicemail: the WAV file and its length.
	File    string  `json:"file,omitempty"`
	Seconds float64 `json:"seconds,omitempty"`
	// agent.state: the agent event (LOGIN, PAUSE, CONNECT, ...), the
	// state it leads to (as /api/v1/agents spells it) and its reason.
	Event  string `json:"event,omitempty"`
	State  string `json:"state,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// MaskNumbers returns d with its citizens' numbers passed through mask.
func (d EventData) MaskNumbers(mask func(string) string) EventData {
	d.Caller, d.Called, d.Number = mask(d.Caller), mask(d.Called), mask(d.Number)
	return d
}

// Callback task states (EventData.Task).
const (
	CallbackTaskRequested = "requested"
	CallbackTaskClosed    = "closed"
)

// VoicemailEvent is the voicemail event of a message left on call callID
// (Record.ID) by caller: file is the stored WAV, length its duration.
// Publish it with Writer.Publish once the file is stored.
func VoicemailEvent(callID, caller, queue, file string, length time.Duration, at time.Time, node string) OutboxEvent {
	return OutboxEvent{ID: callID + "/voicemail", Type: EventTypeVoicemail, Time: at, NodeID: node,
		Data: EventData{CallID: callID, Caller: caller, Queue: queue, File: file, Seconds: length.Seconds()}}
}

// CallbackTaskEvent is a callback task requested for call callID (the
// citizen's call that asked for it) to number, in queue; caseNumber may be
// empty. Publish it with Writer.Publish when the task is created (the
// virtual-hold callback is derived from its record; this is for others,
// such as voicemail).
func CallbackTaskEvent(callID, number, queue, caseNumber string, at time.Time, node string) OutboxEvent {
	return OutboxEvent{ID: callID + "/callback", Type: EventTypeCallbackTask, Time: at, NodeID: node,
		Data: EventData{CallID: callID, Number: number, Queue: queue, CaseNumber: caseNumber, Task: CallbackTaskRequested}}
}

// Outbox is the store side of the feed; SQLite and Postgres implement it.
type Outbox interface {
	// AppendOutbox stores evs in one transaction, each only if its ID is new.
	AppendOutbox(ctx context.Context, evs []OutboxEvent) error
	// ListOutbox returns up to limit events with after < Seq <= upTo
	// (upTo 0: no bound), by Seq.
	ListOutbox(ctx context.Context, after, upTo int64, limit int) ([]OutboxEvent, error)
	// LastOutboxSeq is the highest Seq stored (0 if none).
	LastOutboxSeq(ctx context.Context) (int64, error)
	// WebhookCursors returns each webhook's cursor: every event up to it
	// was delivered, skipped or dead-lettered.
	WebhookCursors(ctx context.Context) (map[string]int64, error)
	// SaveWebhook sets a webhook's cursor and adds its new dead letters,
	// in one transaction.
	SaveWebhook(ctx context.Context, webhook string, cursor int64, dead []DeadLetter) error
	// DeadLetters lists a webhook's dead letters, oldest first.
	DeadLetters(ctx context.Context, webhook string, limit int) ([]DeadLetter, error)
	// ResolveDeadLetter removes a dead letter delivered by a replay, or
	// (err not empty) records the replay's failure on it.
	ResolveDeadLetter(ctx context.Context, webhook, eventID, err string) error
	// PruneOutbox deletes events with Seq <= maxSeq older than before.
	PruneOutbox(ctx context.Context, before time.Time, maxSeq int64) (int64, error)
}

// DeadLetter is an event a webhook gave up on after its attempts.
type DeadLetter struct {
	Event     OutboxEvent `json:"event"`
	Attempts  int         `json:"attempts"`
	LastError string      `json:"last_error"`
	Dead      time.Time   `json:"dead_at"`
	Replays   int         `json:"replays"`
}

// eventsFromRecords derives the feed's events from records being stored.
func eventsFromRecords(recs []Record) []OutboxEvent {
	var out []OutboxEvent
	for i := range recs {
		out = append(out, eventsFromRecord(&recs[i])...)
	}
	return out
}

// callData is what every event of a call says about it.
func callData(r *Record) EventData {
	return EventData{CallID: r.ID, Direction: cmpOr(r.Direction, DirectionInbound), Caller: r.Caller, Called: r.Called,
		Trunk: r.Trunk, CaseNumber: r.CaseNumber, Campaign: r.Campaign, Target: r.Target, Attempt: r.Attempt, Parent: r.Parent}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// StartEvent is the call.start event of a call, from its first snapshot
// (Writer.Begin) or its final record: the same ID either way.
func StartEvent(r *Record) OutboxEvent {
	d := callData(r)
	d.Start, d.Answer = r.Start, r.Answer
	return OutboxEvent{ID: r.ID + "/start", Type: EventTypeCallStart, Time: firstTime(r.Start, r.Answer, r.End), NodeID: r.NodeID, Data: d}
}

// answerID is the call.answer event's ID for agent in queue: one per visit
// an agent took (the same agent taking the same call twice in one queue is
// one answer).
func answerID(callID, queue, agent string) string { return callID + "/answer/" + queue + "/" + agent }

// eventsFromRecord: call.start and call.answer (fallbacks: the same IDs as
// the live ones), call.end, and by kind survey.result, voicemail and callback.task.
func eventsFromRecord(r *Record) []OutboxEvent {
	out := []OutboxEvent{StartEvent(r)}
	visits := ParseVisits(r.Visits)
	if len(visits) == 0 && r.Agent != "" {
		visits = []Visit{{Queue: r.Queue, Agent: r.Agent}}
	}
	first := true
	for _, v := range visits {
		if v.Agent == "" {
			continue
		}
		d := callData(r)
		d.Queue, d.Agent = v.Queue, v.Agent
		at := firstTime(r.End, r.Start) // a later visit's connect time is not on the record
		if first && !r.Connect.IsZero() {
			at, d.Connect, d.Wait = r.Connect, r.Connect, r.Wait().Seconds()
		}
		first = false
		out = append(out, OutboxEvent{ID: answerID(r.ID, v.Queue, v.Agent), Type: EventTypeCallAnswer, Time: at, NodeID: r.NodeID, Data: d})
	}
	end := firstTime(r.End, r.Start)
	d := callData(r)
	d.Queue, d.Agent = r.Queue, r.Agent
	d.Start, d.Answer, d.Connect, d.End = r.Start, r.Answer, r.Connect, r.End
	d.Disposition, d.HangupSide, d.HangupCause, d.SIPStatus = r.Disposition, r.HangupSide, r.HangupCause, r.SIPStatus
	d.Duration, d.Talk, d.Hold, d.Wait = r.Duration().Seconds(), r.AgentTalk().Seconds(), r.Hold.Seconds(), r.Wait().Seconds()
	d.IVRPath, d.Visits, d.Transfers, d.Recording = r.IVRPath, r.Visits, r.Transfers, r.RecordingFile
	d.Satisfaction, d.SurveyAnswers = r.Satisfaction, r.SurveyAnswers
	out = append(out, OutboxEvent{ID: r.ID + "/end", Type: EventTypeCallEnd, Time: end, NodeID: r.NodeID, Data: d})
	switch {
	case r.Direction == DirectionSurvey && (r.Satisfaction != "" || r.SurveyAnswers != ""):
		s := callData(r)
		s.Satisfaction, s.SurveyAnswers, s.Disposition = r.Satisfaction, r.SurveyAnswers, r.Disposition
		out = append(out, OutboxEvent{ID: r.ID + "/survey", Type: EventTypeSurveyResult, Time: end, NodeID: r.NodeID, Data: s})
	case r.Inbound() && r.Voicemail && r.RecordingFile != "":
		out = append(out, VoicemailEvent(r.ID, r.Caller, r.Queue, r.RecordingFile, r.RecordingDuration, end, r.NodeID))
	case r.Inbound() && r.Disposition == DispositionCallback:
		c := callData(r)
		c.Queue, c.Task, c.Number = r.Queue, CallbackTaskRequested, r.Caller
		out = append(out, OutboxEvent{ID: r.ID + "/callback", Type: EventTypeCallbackTask, Time: end, NodeID: r.NodeID, Data: c})
	case r.Direction == DirectionCallback:
		c := callData(r)
		c.Queue, c.Agent, c.Task, c.Number, c.Disposition = r.Queue, r.Agent, CallbackTaskClosed, r.Called, r.Disposition
		out = append(out, OutboxEvent{ID: r.ID + "/callback-closed", Type: EventTypeCallbackTask, Time: end, NodeID: r.NodeID, Data: c})
	}
	return out
}

// firstTime is the first of ts that is set; now if none is (a record
// without times must still be stored, and its events with it).
func firstTime(ts ...time.Time) time.Time {
	for _, t := range ts {
		if !t.IsZero() {
			return t
		}
	}
	return time.Now().UTC()
}

// agentStates maps the agent events that change an agent's state to the
// state (acd's names) they lead to; "" where it depends (the ACD's view
// says).
var agentStates = map[string]string{
	EventLogin: "ready", EventLogout: "logged_out", EventPause: "paused", EventUnpause: "ready",
	EventConnect: "on_call", EventCompleteAgent: "wrap_up", EventCompleteCaller: "wrap_up",
	EventWrapUpEnd: "", EventRingNoAnswer: "",
}

// eventsFromAgentEvent derives the feed's events from an agent event;
// caller looks up the caller's number of a call (its ENTERQUEUE), for
// call.answer.
func eventsFromAgentEvent(e *AgentEvent, caller func(callID string) string) []OutboxEvent {
	var out []OutboxEvent
	base := EventData{CallID: e.CallID, Queue: e.Queue, Agent: e.AgentID}
	switch e.Event {
	case EventConnect:
		d := base
		d.Caller, d.Connect = caller(e.CallID), e.Time
		if w, err := ParseSeconds(e.Data1); err == nil {
			d.Wait = w.Seconds()
		}
		out = append(out, OutboxEvent{ID: answerID(e.CallID, e.Queue, e.AgentID), Type: EventTypeCallAnswer, Time: e.Time, NodeID: e.NodeID, Data: d})
	case EventTransfer:
		d := base
		d.To = e.Data1
		out = append(out, OutboxEvent{ID: e.ID + "/transfer", Type: EventTypeCallTransfer, Time: e.Time, NodeID: e.NodeID, Data: d})
	case EventRating:
		d := base
		d.Satisfaction = e.Data1
		id := e.ID + "/rating"
		if e.CallID != "" {
			id = e.CallID + "/rating"
		}
		out = append(out, OutboxEvent{ID: id, Type: EventTypeCallRating, Time: e.Time, NodeID: e.NodeID, Data: d})
	}
	if state, ok := agentStates[e.Event]; ok && e.AgentID != "" {
		d := base
		d.Event, d.State = e.Event, state
		switch e.Event {
		case EventPause, EventUnpause, EventLogout:
			d.Reason = e.Data1
		case EventRingNoAnswer:
			d.Reason = e.Data2
		}
		out = append(out, OutboxEvent{ID: e.ID + "/agent", Type: EventTypeAgentState, Time: e.Time, NodeID: e.NodeID, Data: d})
	}
	return out
}

// validOutbox checks every event has an ID, a type and a time.
func validOutbox(evs []OutboxEvent) error {
	for i := range evs {
		if evs[i].ID == "" || evs[i].Type == "" || evs[i].Time.IsZero() {
			return fmt.Errorf("cdr: feed event %d of %d (%q, %q) needs an ID, a type and a time: %w", i+1, len(evs), evs[i].ID, evs[i].Type, ErrInvalidEvent)
		}
	}
	return nil
}
