package ivr

import (
	"errors"
	"fmt"

	"github.com/looplab/fsm"
)

// The state machine of one menu visit (all its attempts). The Run loop's
// select drives it; it has no callbacks, so nothing in it does I/O or calls
// Event re-entrantly (which deadlocks looplab/fsm).
//
//	prompting --prompt_done--> waiting
//	prompting, waiting, collecting --digit--> collecting      (input menus: a key of the entry)
//	prompting, waiting, collecting --choose--> done           (valid choice or entry)
//	prompting, waiting, collecting --invalid--> failing       (unknown choice, short entry)
//	waiting --timeout--> failing                              (no first digit)
//	failing --retry--> prompting                              (replay the menu)
//	failing --fallback--> done                                (MaxRetries reached)
const (
	stPrompting  = "prompting"
	stWaiting    = "waiting"
	stCollecting = "collecting"
	stFailing    = "failing"
	stDone       = "done"

	evPromptDone = "prompt_done"
	evDigit      = "digit"
	evChoose     = "choose"
	evInvalid    = "invalid"
	evTimeout    = "timeout"
	evRetry      = "retry"
	evFallback   = "fallback"
)

type visitFSM = fsm.FSM

var visitEvents = fsm.Events{
	{Name: evPromptDone, Src: []string{stPrompting}, Dst: stWaiting},
	{Name: evDigit, Src: []string{stPrompting, stWaiting, stCollecting}, Dst: stCollecting},
	{Name: evChoose, Src: []string{stPrompting, stWaiting, stCollecting}, Dst: stDone},
	{Name: evInvalid, Src: []string{stPrompting, stWaiting, stCollecting}, Dst: stFailing},
	{Name: evTimeout, Src: []string{stWaiting}, Dst: stFailing},
	{Name: evRetry, Src: []string{stFailing}, Dst: stPrompting},
	{Name: evFallback, Src: []string{stFailing}, Dst: stDone},
}

func newVisitFSM() *visitFSM {
	return fsm.NewFSM(stPrompting, visitEvents, nil)
}

// fire sends ev to f. A self-transition (collecting → collecting) is fine;
// any other refusal is a bug in the runner and ends the call's IVR.
func (c *callRun) fire(f *visitFSM, ev string) error {
	from := f.Current()
	err := f.Event(c.fsmCtx, ev)
	var same fsm.NoTransitionError
	if err == nil || errors.As(err, &same) {
		return nil
	}
	c.log.Error("ivr state machine refused an event", "menu", c.cur, "state", from, "event", ev, "error", err)
	return fmt.Errorf("%w: %s in %s: %v", ErrStateMachine, ev, from, err)
}
