package call

import (
	"context"
	"strings"
	"time"

	"github.com/hotline12345/hotline/cdr"
)

// Virtual hold (in-queue callback). When a queue's estimated wait exceeds its callback
// threshold, the caller hears that they may press the callback digit to be called back
// and keep their place. Pressing it reads back the number (the caller id, or one they key
// in ending with #) to confirm; on confirmation the inbound call ends with disposition
// callback (neither answered nor abandoned) and the same loop goes on as a callback task in
// the same queue and place: when an agent is chosen they are rung first, hear the whisper,
// and then the citizen is dialled through the callback trunk and bridged.

// Prompts of the virtual hold.
const (
	PromptCallbackOffer       = "callback_offer"
	PromptCallbackConfirmPre  = "callback_confirm_pre"
	PromptCallbackConfirmPost = "callback_confirm_post"
	PromptCallbackEnter       = "callback_enter"
	PromptCallbackBooked      = "callback_booked"
)

// StageCallback: a booked callback waits for its agent with nobody on the line.
const StageCallback = "callback"

// Virtual hold timings: how long the caller has to confirm, and between digits they key in.
const (
	vholdConfirmTimeout = 10 * time.Second
	vholdDigitTimeout   = 5 * time.Second
	vholdMaxDigits      = 20
)

// ErrCallbackBooked ends the inbound part of a call whose caller booked a callback.
var errCallbackBooked = errCallback{}

type errCallback struct{}

func (errCallback) Error() string { return "callback" }

// vhold is a caller in the middle of booking a callback.
type vhold struct {
	step   string // "confirm", "enter", "book"
	number string
	entry  []rune
}

// callbackDue reports whether the caller should be offered a callback now.
func (c *Call) callbackDue() bool {
	v := c.q
	if v == nil || c.in == nil || c.task != nil || v.cfg.CallbackAfter <= 0 || v.cfg.CallbackDigit == "" || c.m.cfg.CallbackTrunk == "" {
		return false
	}
	_, ewt, ok := c.m.dist.Position(c.id)
	return ok && ewt > v.cfg.CallbackAfter
}

// callbackDigit: the caller pressed the callback digit (after the offer) or is booking.
func (c *Call) callbackDigit(d rune) bool {
	v := c.q
	if c.vh != nil {
		c.vholdDigit(d)
		return true
	}
	if !v.offered || v.exit != nil || string(d) != v.cfg.CallbackDigit {
		return false
	}
	c.s.StopPlay()
	v.moh = false
	c.vh = &vhold{number: c.rec.Caller}
	if !c.callbackAllowed(c.vh.number) {
		c.vholdEnter()
		return true
	}
	c.vholdReadBack()
	return true
}

func (c *Call) callbackAllowed(number string) bool {
	return c.m.cfg.Trunks != nil && c.m.cfg.Trunks.TrunkAllows(c.m.cfg.CallbackTrunk, number)
}

// vholdReadBack reads the number back and asks for confirmation.
func (c *Call) vholdReadBack() {
	c.vh.step = "confirm"
	names := []string{PromptCallbackConfirmPre}
	for _, d := range c.vh.number {
		names = append(names, "digit_"+string(d))
	}
	c.q.playing = c.play(append(names, PromptCallbackConfirmPost)...)
	c.vholdArm(vholdConfirmTimeout + time.Duration(len(names))*time.Second)
}

func (c *Call) vholdEnter() {
	c.vh.step, c.vh.entry = "enter", nil
	c.q.playing = c.play(PromptCallbackEnter)
	c.vholdArm(vholdConfirmTimeout + 5*time.Second)
}

// vholdArm uses the visit's announcement timer as the booking's timeout.
func (c *Call) vholdArm(d time.Duration) {
	v := c.q
	if v.announce != nil {
		v.announce.Stop()
	}
	v.announce = c.m.cfg.Clock.NewTimer(d)
}

func (c *Call) vholdDigit(d rune) {
	vh := c.vh
	switch vh.step {
	case "confirm":
		switch d {
		case '1':
			c.s.StopPlay()
			vh.step = "book"
			if c.q.announce != nil {
				c.q.announce.Stop()
				c.q.announce = nil
			}
			if c.q.playing = c.play(PromptCallbackBooked); c.q.playing == nil {
				c.book()
			}
		case '2':
			c.s.StopPlay()
			c.vholdEnter()
		}
	case "enter":
		c.s.StopPlay()
		switch {
		case d >= '0' && d <= '9' && len(vh.entry) < vholdMaxDigits:
			vh.entry = append(vh.entry, d)
			c.vholdArm(vholdDigitTimeout)
		case d == '#':
			c.vholdEntered()
		}
	}
}

// vholdEntered: the caller finished keying a number.
func (c *Call) vholdEntered() {
	n := string(c.vh.entry)
	if !c.callbackAllowed(n) {
		c.vholdEnter()
		return
	}
	c.vh.number = n
	c.vholdReadBack()
}

// vholdTimeout: no key in time; while keying, the digits so far are the number; otherwise
// the caller goes back to waiting.
func (c *Call) vholdTimeout() {
	if c.vh.step == "enter" && len(c.vh.entry) > 0 {
		c.vholdEntered()
		return
	}
	c.vholdCancel()
}

func (c *Call) vholdCancel() {
	c.vh = nil
	c.s.StopPlay()
	c.q.playing = nil
	c.startMOH()
	c.armAnnouncement()
}

// vholdPlayed: a booking prompt ended; after the booked prompt, the call becomes a task.
func (c *Call) vholdPlayed() {
	c.q.playing = nil
	if c.vh.step == "book" {
		c.book()
	}
}

// book ends the inbound call as a callback request and goes on as a callback task in the
// same place of the same queue.
func (c *Call) book() {
	v := c.q
	now := c.m.cfg.Clock.Now()
	number := c.vh.number
	c.vh = nil
	in := c.rec
	in.End = now
	in.Visits = strings.Join(c.visits, cdr.VisitSeparator)
	o := Classify(Ending{Cause: errCallbackBooked, Answered: true, Queued: true, Callback: true})
	in.Disposition, in.HangupSide, in.HangupCause = o.Disposition, o.Side, o.Cause
	c.m.finish(in)
	c.log.Info("callback booked; the caller keeps their place", "queue", v.name, "number", number)

	leg, s := c.leg, c.s
	c.leg, c.s = nil, nil
	c.spawn(func() {
		ctx, cancel := context.WithTimeout(context.Background(), byeTimeout)
		defer cancel()
		leg.Hangup(ctx, "callback")
		s.Close()
	})
	c.rec = cdr.Record{
		ID: newID(), Parent: in.ID, Direction: cdr.DirectionCallback, Trunk: c.m.cfg.CallbackTrunk, Caller: c.m.cfg.CallerIDs[c.m.cfg.CallbackTrunk],
		Called: number, Start: now, NodeID: c.m.cfg.NodeID, Queue: v.name, EnqueueTime: in.EnqueueTime,
		CaseNumber: in.CaseNumber, Target: in.CaseNumber,
	}
	c.visits = []string{v.name}
	c.task = &taskState{
		req:     TaskRequest{Queue: v.name, Trunk: c.m.cfg.CallbackTrunk, Number: number, CaseID: in.CaseNumber},
		dialled: make(chan evCitizen, 1),
	}
	if v.announce != nil {
		v.announce.Stop()
		v.announce = nil
	}
	v.playing, v.moh = nil, false
	c.setStage(StageCallback)
	c.snapshot()
}
