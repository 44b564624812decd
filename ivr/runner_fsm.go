package ivr

import (
	"errors"
	"fmt"

	"github.com/looplab/fsm"
)

// The state machine of one Run. Its current state decides what the Run loop
// does next (one handler per state, see callRun.run); each handler does its
// I/O, then sends exactly one event, and the transition picks the next
// handler. The machine has no callbacks, so nothing in it does I/O or calls
// Event re-entrantly (which deadlocks looplab/fsm).
//
//	routing --visit--> prompting          (menu, repeat, back: start an attempt)
//	routing --queue--> queued --left--> done
//	routing --play--> playing --played--> done
//	routing --hangup--> done              (hangup, or the loop guard)
//	prompting --prompt_done--> waiting    (the prompts ended: wait Menu.Timeout)
//	prompting, waiting, collecting --digit--> collecting   (input menus: a key of the entry; InterDigitTimeout)
//	prompting, waiting, collecting --choose--> routing     (valid choice or entry: its action)
//	prompting, waiting, collecting --invalid--> failing    (unknown choice, short entry)
//	waiting --timeout--> failing          (no first digit)
//	failing --retry--> prompting          (failure prompt played; replay the menu)
//	failing --fallback--> routing         (MaxRetries reached: Menu.Fallback)
//	routing --lookup--> looking_up --looked_up--> routing  (a self-service hook; then Next or Fallback)
const (
	stRouting    = "routing"
	stPrompting  = "prompting"
	stWaiting    = "waiting"
	stCollecting = "collecting"
	stFailing    = "failing"
	stQueued     = "queued"
	stPlaying    = "playing"
	stDone       = "done"
	stLookingUp  = "looking_up"

	evVisit      = "visit"
	evQueue      = "queue"
	evPlay       = "play"
	evHangup     = "hangup"
	evLeft       = "left"
	evPlayed     = "played"
	evPromptDone = "prompt_done"
	evDigit      = "digit"
	evChoose     = "choose"
	evInvalid    = "invalid"
	evTimeout    = "timeout"
	evRetry      = "retry"
	evFallback   = "fallback"
	evLookup     = "lookup"
	evLookedUp   = "looked_up"
)

var inputStates = []string{stPrompting, stWaiting, stCollecting}

var runEvents = fsm.Events{
	{Name: evVisit, Src: []string{stRouting}, Dst: stPrompting},
	{Name: evQueue, Src: []string{stRouting}, Dst: stQueued},
	{Name: evPlay, Src: []string{stRouting}, Dst: stPlaying},
	{Name: evHangup, Src: []string{stRouting}, Dst: stDone},
	{Name: evLeft, Src: []string{stQueued}, Dst: stDone},
	{Name: evPlayed, Src: []string{stPlaying}, Dst: stDone},
	{Name: evPromptDone, Src: []string{stPrompting}, Dst: stWaiting},
	{Name: evDigit, Src: inputStates, Dst: stCollecting},
	{Name: evChoose, Src: inputStates, Dst: stRouting},
	{Name: evInvalid, Src: inputStates, Dst: stFailing},
	{Name: evTimeout, Src: []string{stWaiting}, Dst: stFailing},
	{Name: evRetry, Src: []string{stFailing}, Dst: stPrompting},
	{Name: evFallback, Src: []string{stFailing}, Dst: stRouting},
	{Name: evLookup, Src: []string{stRouting}, Dst: stLookingUp},
	{Name: evLookedUp, Src: []string{stLookingUp}, Dst: stRouting},
}

// newRunFSM starts in routing: the entry action is the first to carry out.
func newRunFSM() *fsm.FSM { return fsm.NewFSM(stRouting, runEvents, nil) }

// fire sends ev to the Run's machine. A self-transition (collecting →
// collecting) is fine; any other refusal is a bug in the runner and ends the
// call's IVR.
func (c *callRun) fire(ev string) error {
	from := c.f.Current()
	err := c.f.Event(c.fsmCtx, ev)
	var same fsm.NoTransitionError
	if err == nil || errors.As(err, &same) {
		return nil
	}
	c.log.Error("ivr state machine refused an event", "menu", c.cur, "state", from, "event", ev, "error", err)
	return fmt.Errorf("%w: %s in %s: %v", ErrStateMachine, ev, from, err)
}
