package acd

import (
	"context"
	"log/slog"
	"time"
)

// Offer asks call/ to ring an agent for a caller. Attempt counts the offer
// rounds of this caller (1 for the first; all offers of one RingAll round
// share it).
type Offer struct {
	CallID, AgentID, Queue string
	Attempt                int
}

// RingFailure says why an offer did not connect.
type RingFailure int

const (
	// NoAnswer: the agent did not answer in time (call/'s own timer, or the
	// ACD's ring timeout).
	NoAnswer RingFailure = iota
	// Rejected: the agent's phone answered 486 Busy Here or 603 Decline.
	Rejected
	// Unreachable: the INVITE could not reach the agent (408, 480, 503,
	// transport error).
	Unreachable
)

func (f RingFailure) String() string {
	switch f {
	case NoAnswer:
		return "no-answer"
	case Rejected:
		return "rejected"
	case Unreachable:
		return "unreachable"
	}
	return "unknown"
}

// ExitReason says why a caller left a queue without an agent.
type ExitReason int

const (
	// ExitTimeout: the caller waited the queue's MaxWait.
	ExitTimeout ExitReason = iota + 1
	// ExitEmpty: no agent who could serve the caller is logged in and
	// unpaused any more, and the queue has LeaveWhenEmpty.
	ExitEmpty
)

func (r ExitReason) String() string {
	switch r {
	case ExitTimeout:
		return "timeout"
	case ExitEmpty:
		return "empty"
	}
	return "unknown"
}

// EventType is the vocabulary of Asterisk's queue_log.
type EventType string

// Event types. Caller events carry Queue and CallID; agent events carry AgentID
// (and Queue when they concern a call of that queue).
const (
	EvEnterQueue     EventType = "ENTERQUEUE"      // Data: Position, Number, Priority, Reason ("", "overflow", "transfer"), Target (from queue)
	EvConnect        EventType = "CONNECT"         // Data: Wait (this visit), Ring, Position (at entry), Leg (the agent leg's SIP Call-ID)
	EvRingNoAnswer   EventType = "RINGNOANSWER"    // Data: Ring, Reason (no-answer, rejected, unreachable)
	EvRingCanceled   EventType = "RINGCANCELED"    // Data: Ring, Reason (caller-abandoned, exit-key, answered-elsewhere, logout, caller-timeout, caller-empty)
	EvCompleteCaller EventType = "COMPLETECALLER"  // Data: Wait, Talk
	EvCompleteAgent  EventType = "COMPLETEAGENT"   // Data: Wait, Talk, Reason ("" or "unreachable")
	EvAbandon        EventType = "ABANDON"         // Data: Position, Wait
	EvExitTimeout    EventType = "EXITWITHTIMEOUT" // Data: Position, Wait
	EvExitEmpty      EventType = "EXITEMPTY"       // Data: Position, Wait
	EvExitKey        EventType = "EXITWITHKEY"     // Data: Position, Wait, Key (the digit pressed)
	EvTransfer       EventType = "TRANSFER"        // Data: Target (queue), Wait, Talk
	EvOverflow       EventType = "OVERFLOW"        // Data: Target (queue), Wait
	EvEscalate       EventType = "ESCALATE"        // Data: Position (step number, 1-based), Wait
	EvPause          EventType = "PAUSE"           // Data: Reason
	EvUnpause        EventType = "UNPAUSE"
	EvLogin          EventType = "LOGIN"
	EvLogout         EventType = "LOGOUT"    // Data: Reason, LoggedIn (since its LOGIN)
	EvWrapUpEnd      EventType = "WRAPUPEND" // Queue and CallID of the call wrapped up; Data: Reason ("", "ready", "paused", "logout"), WrapUp (actual)
)

// Event is one agent or queue event for the records.
type Event struct {
	Time    time.Time
	Type    EventType
	Queue   string
	CallID  string
	AgentID string
	Data    EventData
}

// EventData holds the per-type details; unused fields are zero.
type EventData struct {
	Reason   string
	Number   string // caller number (ENTERQUEUE)
	Target   string // other queue (TRANSFER, OVERFLOW, ENTERQUEUE after one)
	Priority int
	Position int
	Wait     time.Duration // time in this queue visit
	Ring     time.Duration
	Talk     time.Duration
	Key      string        // the digit that left the queue (EXITWITHKEY)
	Leg      string        // the agent leg's id, its SIP Call-ID (CONNECT)
	LoggedIn time.Duration // from LOGIN to this LOGOUT
	// WrapUp is the actual wrap-up (WRAPUPEND): from the end of the call
	// (CallEnded, Transferred, Unreachable) to the moment the wrap-up ended,
	// by its timer (Reason ""), an early Ready, a Pause or a Logout. It is 0
	// when no wrap-up is configured, or when a pending logout applies at
	// the call's end.
	WrapUp time.Duration
}

// Outbox is what the ACD needs from the outside world; call/ implements it.
// Its methods are called without the ACD's lock held, in the order the ACD
// decided them, by one goroutine at a time; they may call back into the ACD
// (for example RingFailed from inside Offer), which then queues further
// output behind the current one. They should not block for long.
type Outbox interface {
	// Offer: ring this agent for this caller; report back with
	// RingAnswered or RingFailed.
	Offer(o Offer)
	// CancelOffer: stop ringing (another agent answered, the caller left, the
	// ring timed out, or the agent logged out). Any later RingAnswered for it
	// returns false.
	CancelOffer(o Offer)
	// Event: a record for cdr/.
	Event(e Event)
	// Left: the ACD took the caller out of the queue without an agent
	// (ExitTimeout, ExitEmpty). Not called for Abandon and ExitKey, which come
	// from call/, nor for an overflow into another queue.
	Left(callID string, reason ExitReason)
}

type outKind uint8

const (
	outOffer outKind = iota
	outCancel
	outEvent
	outLeft
	outLog
)

type output struct {
	kind   outKind
	offer  Offer
	event  Event
	reason ExitReason
	level  slog.Level
	msg    string
	args   []any
}

// emit* queue output under the lock; flush delivers it after.
func (a *ACD) emitOffer(o Offer)  { a.outq = append(a.outq, output{kind: outOffer, offer: o}) }
func (a *ACD) emitCancel(o Offer) { a.outq = append(a.outq, output{kind: outCancel, offer: o}) }
func (a *ACD) emitLeft(callID string, r ExitReason) {
	a.outq = append(a.outq, output{kind: outLeft, offer: Offer{CallID: callID}, reason: r})
}
func (a *ACD) emitEvent(e Event) {
	if e.Time.IsZero() {
		e.Time = a.now
	}
	a.outq = append(a.outq, output{kind: outEvent, event: e})
}
func (a *ACD) logf(level slog.Level, msg string, args ...any) {
	a.outq = append(a.outq, output{kind: outLog, level: level, msg: msg, args: args})
}

// flush delivers queued output in order. Only one goroutine delivers at a
// time; another that finds delivery under way leaves its output to it.
func (a *ACD) flush() {
	for {
		a.mu.Lock()
		if a.delivering || len(a.outq) == 0 {
			a.mu.Unlock()
			return
		}
		batch := a.outq
		a.outq = a.spare[:0]
		a.spare = nil
		a.delivering = true
		a.mu.Unlock()
		a.deliver(batch)
		a.mu.Lock()
		if a.spare == nil {
			a.spare = batch[:0]
		}
		a.mu.Unlock()
	}
}

// deliver hands a batch to the Outbox; a panicking Outbox does not stop
// later deliveries.
func (a *ACD) deliver(batch []output) {
	defer func() {
		a.mu.Lock()
		a.delivering = false
		a.mu.Unlock()
	}()
	for i := range batch {
		o := &batch[i]
		switch o.kind {
		case outOffer:
			a.out.Offer(o.offer)
		case outCancel:
			a.out.CancelOffer(o.offer)
		case outEvent:
			a.out.Event(o.event)
		case outLeft:
			a.out.Left(o.offer.CallID, o.reason)
		case outLog:
			a.log.Log(context.Background(), o.level, o.msg, o.args...)
		}
		*o = output{}
	}
}
