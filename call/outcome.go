package call

import (
	"context"
	"errors"
	"fmt"

	"github.com/hotline12345/hotline/cdr"
	"github.com/hotline12345/hotline/sip"
)

// Errors that end calls, queue visits and rings. Classify maps them, in one place, to a
// disposition, a hang-up side, a cause and a SIP status; the metric label is the disposition.
var (
	ErrCallerHangup = errors.New("caller hung up")    // BYE (or CANCEL before answer) from the caller
	ErrAgentHangup  = errors.New("agent hung up")     // BYE from the agent (ErrAgentLost: the agent's RTP stopped)
	ErrRTPTimeout   = errors.New("rtp-timeout")       // the caller's RTP stopped
	ErrDrain        = errors.New("drain")             // the server hung up at the end of a drain
	ErrMaxWait      = errors.New("max-wait")          // the queue's maximum wait ran out
	ErrNoAgent      = errors.New("no-agent")          // the queue refused the caller or emptied
	ErrExitKey      = errors.New("exit-key")          // the caller left the queue with its exit digit
	ErrRejected     = errors.New("rejected")          // we refused the INVITE (no route, no port)
	ErrNotAnswered  = errors.New("answer failed")     // our 200 OK was never acknowledged, or failed
	ErrShutdown     = errors.New("shutdown")          // the manager stopped
	ErrIVREnded     = errors.New("ivr ended")         // the IVR hung up (hangup or play action)
	ErrSurveyDone   = errors.New("survey done")       // the survey ended; the server hung up after the thanks
	ErrRingTimeout  = errors.New("ring-timeout")      // nobody answered our outbound INVITE in time (we cancelled)
	ErrNotInPlan    = errors.New("not in dial plan")  // the trunk's dial plan refuses the number: nothing was sent
	errTransfer     = errors.New("transferred")       // internal: the agent transferred the caller
	errStale        = errors.New("answered too late") // internal: an agent answered after the offer was withdrawn

	// ErrAgentLost: the bridged agent's RTP stopped and no BYE came (the softphone
	// vanished). It is an ErrAgentHangup (side agent) with its own cause, agent-lost.
	ErrAgentLost = fmt.Errorf("agent-lost: %w", ErrAgentHangup)

	// Ring outcomes (Phones.Ring).
	ErrUnreachable   = errors.New("agent unreachable")
	ErrBusy          = errors.New("agent declined")
	ErrRingCancelled = errors.New("ring cancelled")
	ErrLocal         = errors.New("local failure")
)

// exitToMenu is a caller who left the queue with the exit digit for a menu.
type exitToMenu struct{ menu string }

func (e exitToMenu) Error() string { return "exit-key to menu " + e.menu }
func (e exitToMenu) Unwrap() error { return ErrExitKey }

// Ending is what the loop knows when a call ends: the cause and how far the call got.
type Ending struct {
	Cause     error  // what ended the call (one of the errors above, or a wrapped one)
	Answered  bool   // we answered the call
	Queued    bool   // it entered a queue
	Agent     bool   // an agent took it
	LeftByKey bool   // its last queue visit ended with the exit digit
	QueueExit error  // the queue took the caller out (ErrMaxWait, ErrNoAgent), even if they hung up during the exit prompt
	Closed    bool   // it reached the closed-hours menu
	Outbound  bool   // a call we placed (survey, callback task): Answered means the citizen picked up
	Callback  bool   // the caller booked a callback (virtual hold) and keeps their place
	LegSide   string // from the caller leg's End, if it ended
	LegCause  string
	LegStatus int
}

// Outcome is how a call ended, for its record, its log line and the metrics.
type Outcome struct {
	Disposition cdr.Disposition
	Side        string // sip.SideCaller, sip.SideAgent or sip.SideSystem
	Cause       string // "BYE", "CANCEL", "rtp-timeout", "max-wait", "drain", ...
	Status      int    // the final SIP status of the caller's INVITE
}

// Classify is the one outcome taxonomy: every ending maps to exactly one disposition.
func Classify(e Ending) Outcome {
	o := Outcome{Side: side(e), Cause: causeText(e.Cause), Status: 200}
	if e.Outbound {
		return classifyOutbound(e, o)
	}
	if e.LegSide != "" && errors.Is(e.Cause, ErrCallerHangup) && e.LegCause != "" {
		o.Cause = e.LegCause
	}
	if !e.Answered {
		o.Status = e.LegStatus
		switch {
		case errors.Is(e.Cause, ErrCallerHangup):
			o.Disposition, o.Side, o.Cause = cdr.DispositionCallerCancelled, sip.SideCaller, "CANCEL"
			if o.Status == 0 {
				o.Status = 487
			}
		default:
			o.Disposition = cdr.DispositionFailed
			if e.LegSide != "" {
				o.Side = e.LegSide
			}
			if e.LegCause != "" {
				o.Cause = e.LegCause
			}
			if o.Status == 0 {
				o.Status = 500
			}
		}
		return o
	}
	switch {
	case e.Callback:
		o.Disposition, o.Side, o.Cause = cdr.DispositionCallback, sip.SideSystem, "callback"
	case e.Agent:
		o.Disposition = cdr.DispositionAnswered
	case e.Queued && e.LeftByKey:
		o.Disposition = cdr.DispositionExitKey // hung up after leaving by the exit digit: not an abandon
	case e.Queued && errors.Is(e.QueueExit, ErrMaxWait):
		o.Disposition = cdr.DispositionTimeout // as the queue log says (EXITWITHTIMEOUT), whoever hung up after
	case e.Queued && errors.Is(e.QueueExit, ErrNoAgent):
		o.Disposition = cdr.DispositionNoAgent
	case e.Queued && errors.Is(e.Cause, ErrNoAgent):
		o.Disposition = cdr.DispositionNoAgent
	case e.Queued && errors.Is(e.Cause, ErrMaxWait):
		o.Disposition = cdr.DispositionTimeout
	case e.Queued && errors.Is(e.Cause, ErrCallerHangup):
		o.Disposition = cdr.DispositionAbandoned
	case e.Queued:
		o.Disposition = cdr.DispositionFailed // we dropped a waiting caller (drain, RTP loss): not the caller's abandon
	case e.Closed:
		o.Disposition = cdr.DispositionClosedHours
	default:
		o.Disposition = cdr.DispositionIVRHangup
	}
	return o
}

// classifyOutbound: a call we placed ends answered (the citizen picked up, whoever hung up
// later, whatever the survey got) or by its INVITE's final response: 486/600/603 busy,
// 408/480 and our ring timeout no-answer, 404/484/604 invalid-number, anything else failed.
func classifyOutbound(e Ending, o Outcome) Outcome {
	if e.Answered {
		o.Disposition = cdr.DispositionAnswered
		if errors.Is(e.Cause, ErrCallerHangup) && e.LegCause != "" {
			o.Cause = e.LegCause
		}
		return o
	}
	o.Status, o.Side = e.LegStatus, sip.SideCaller
	if e.LegCause != "" {
		o.Cause = e.LegCause
	}
	switch {
	case errors.Is(e.Cause, ErrRingTimeout):
		o.Disposition, o.Side, o.Cause = cdr.DispositionNoAnswer, sip.SideSystem, "ring-timeout"
		if o.Status == 0 {
			o.Status = 487
		}
		return o
	case errors.Is(e.Cause, ErrNotInPlan):
		o.Disposition, o.Side, o.Cause = cdr.DispositionInvalidNumber, sip.SideSystem, "dial-plan"
		return o
	}
	switch o.Status {
	case 486, 600, 603:
		o.Disposition = cdr.DispositionBusy
	case 408, 480:
		o.Disposition = cdr.DispositionNoAnswer
	case 404, 484, 604:
		o.Disposition = cdr.DispositionInvalidNumber
	default:
		o.Disposition, o.Side = cdr.DispositionFailed, sip.SideSystem
		if errors.Is(e.Cause, ErrShutdown) || errors.Is(e.Cause, ErrDrain) || errors.Is(e.Cause, context.Canceled) {
			o.Disposition, o.Cause = cdr.DispositionInterrupted, causeText(e.Cause)
		}
	}
	return o
}

func side(e Ending) string {
	switch {
	case errors.Is(e.Cause, ErrCallerHangup):
		return sip.SideCaller
	case errors.Is(e.Cause, ErrAgentHangup):
		return sip.SideAgent
	}
	return sip.SideSystem
}

// causeText is the hang-up cause written to records for an error that ended a call.
func causeText(err error) string {
	for _, c := range []struct {
		err  error
		text string
	}{
		{ErrCallerHangup, "BYE"}, {ErrAgentLost, "agent-lost"}, {ErrDepartmentHangup, "department-hangup"}, {ErrAgentHangup, "BYE"}, {ErrRTPTimeout, "rtp-timeout"},
		{ErrMaxWait, "max-wait"}, {ErrDrain, "drain"}, {ErrNoAgent, "no-agent"}, {ErrExitKey, "exit-key"},
		{ErrIVREnded, "normal"}, {ErrSurveyDone, "normal"}, {ErrShutdown, "shutdown"}, {context.Canceled, "shutdown"},
		{ErrRingTimeout, "ring-timeout"}, {ErrNotInPlan, "dial-plan"},
	} {
		if errors.Is(err, c.err) {
			return c.text
		}
	}
	if err == nil {
		return "normal"
	}
	return err.Error()
}
