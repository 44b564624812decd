package cdr

// Disposition is how a call ended, from the hotline's point of view: the one
// outcome taxonomy shared by call records, reports, metrics (the
// hotline_calls_total label) and the API. call/ classifies every ending into
// exactly one of these (call.Classify); nothing else invents dispositions.
//
// For an inbound call the buckets partition the calls:
//
//	not answered by us:  CallerCancelled (the caller gave up before we answered),
//	                     Failed (we refused or could not answer)
//	answered, no queue:  IVRHangup, ClosedHours
//	offered (queued):    Answered, Abandoned, Timeout, NoAgent, ExitKey,
//	                     Callback, and Failed or Interrupted for calls we
//	                     dropped while they waited (drain, crash)
type Disposition string

// Dispositions.
const (
	// DispositionAnswered: an agent took the call (the record has Agent and Connect).
	DispositionAnswered Disposition = "answered"
	// DispositionAbandoned: the caller hung up while queued (an agent's phone
	// may have been ringing). The report splits short abandons off by wait.
	DispositionAbandoned Disposition = "abandoned"
	// DispositionAbandonedShort is an abandon within the short-abandon time.
	// Only the report derives it; records carry DispositionAbandoned.
	DispositionAbandonedShort Disposition = "abandoned-short"
	// DispositionTimeout: the caller left the queue at its maximum wait.
	DispositionTimeout Disposition = "timeout"
	// DispositionNoAgent: the queue refused the caller or emptied (no agent
	// logged in, join-empty/leave-when-empty rules, full).
	DispositionNoAgent Disposition = "no-agent"
	// DispositionExitKey: the caller left the queue with its exit digit and
	// the call then ended without an agent.
	DispositionExitKey Disposition = "exit-key"
	// DispositionCallback: the caller left the queue asking to be called back.
	DispositionCallback Disposition = "callback"
	// DispositionIVRHangup: the call was answered and ended in the IVR.
	DispositionIVRHangup Disposition = "ivr-hangup"
	// DispositionClosedHours: the call reached the closed-hours menu and ended there.
	DispositionClosedHours Disposition = "closed-hours"
	// DispositionCallerCancelled: the caller hung up (CANCEL) before we answered.
	DispositionCallerCancelled Disposition = "caller-cancelled"
	// DispositionFailed: we refused the call or could not carry it (ACL, no
	// route, no RTP port, no ACK, a drained caller while queued).
	DispositionFailed Disposition = "failed"
	// DispositionInterrupted: the process died while the call was up and it
	// had not reached an agent; the writer sets it when it recovers.
	DispositionInterrupted Disposition = "interrupted"

	// Outbound calls (survey and callback directions). An answered outbound call is
	// DispositionAnswered (the citizen picked up); one that failed is DispositionFailed.

	// DispositionBusy: the citizen's line was busy or declined (486, 600).
	DispositionBusy Disposition = "busy"
	// DispositionNoAnswer: no answer within the ring timeout (or 408, 480).
	DispositionNoAnswer Disposition = "no-answer"
	// DispositionInvalidNumber: the number does not exist (404, 484, 604); never retried.
	DispositionInvalidNumber Disposition = "invalid-number"
)

// Dispositions lists every disposition, for metrics (series exist from the
// start) and validation.
var Dispositions = []Disposition{
	DispositionAnswered, DispositionAbandoned, DispositionTimeout, DispositionNoAgent,
	DispositionExitKey, DispositionCallback, DispositionIVRHangup, DispositionClosedHours,
	DispositionCallerCancelled, DispositionFailed, DispositionInterrupted,
	DispositionBusy, DispositionNoAnswer, DispositionInvalidNumber,
}

// Valid reports whether d is one of Dispositions (or the report-only
// DispositionAbandonedShort).
func (d Disposition) Valid() bool {
	if d == DispositionAbandonedShort {
		return true
	}
	for _, x := range Dispositions {
		if x == d {
			return true
		}
	}
	return false
}
