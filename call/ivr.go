package call

import (
	"context"
	"errors"
	"strings"

	"github.com/hotline12345/hotline/ivr"
)

// ivrTask is the IVR runner of a call, on its own goroutine: it plays prompts and reads
// digits through the call's stream, and hands the caller to a queue by posting evJoin to
// the loop, which answers when the queue visit is over. It writes nothing of the call.
type ivrTask struct {
	digits chan rune
	cancel context.CancelCauseFunc
	paths  []string
}

// startIVR runs the IVR from entry; noGreeting skips the greetings of a caller who comes
// back to a menu (after leaving a queue with its exit digit).
func (c *Call) startIVR(entry ivr.Action, noGreeting bool) {
	ctx, cancel := context.WithCancelCause(c.ctx)
	t := c.ivr
	if t == nil {
		t = &ivrTask{digits: make(chan rune, 32)}
		c.ivr = t
	}
	t.cancel = cancel
	defer func() { c.preamble = nil }() // once per call
	c.setStage(StageIVR)
	iq := &ivrQueue{c: c}
	runner := ivr.Runner{
		Menus: c.plan.Menus, Media: ivrMedia{c: c, s: c.s, digits: t.digits}, Queue: iq,
		Clock: c.m.cfg.Clock, Logger: c.log, NoGreeting: noGreeting, Preamble: c.preamble, Lookups: c.m.cfg.Lookups, Hooks: c.m.cfg.Hooks,
		OnQueue: func(res ivr.Result) { iq.path, iq.caseNumber = res.PathString(), res.Vars["case_number"] },
	}
	c.spawn(func() {
		res, err := runner.Run(ctx, entry)
		cancel(nil)
		c.post(evIVRDone{res: res, err: err})
	})
}

// ivrDone takes the IVR's result: a caller who left a queue for a menu goes on in the IVR;
// otherwise the call ends.
func (c *Call) ivrDone(res ivr.Result, err error) {
	t := c.ivr
	if p := res.PathString(); p != "" {
		t.paths = append(t.paths, p)
	}
	if v := res.Vars["case_number"]; v != "" {
		c.rec.CaseNumber = v
	}
	c.rec.IVRPath = strings.Join(t.paths, ">")
	if c.cause == nil && err == nil && res.Final.Kind == ivr.ActVoicemail && c.in != nil {
		c.ivr = nil
		c.startVoicemail()
		return
	}
	var em exitToMenu
	if c.cause == nil && errors.As(err, &em) {
		c.startIVR(ivr.Action{Kind: ivr.ActMenu, Target: em.menu}, true)
		return
	}
	c.ivr = nil
	if c.cause == nil {
		if err == nil || errors.Is(err, context.Canceled) {
			err = ErrIVREnded
			if c.survey != nil {
				err = ErrSurveyDone
			}
		}
		c.stop(err)
	}
}

// ivrMedia is ivr.Media over the call's stream as it was when the IVR started (the loop may
// let it go later: a caller who booked a callback); digits come from the loop.
type ivrMedia struct {
	c      *Call
	s      Stream
	digits chan rune
}

func (im ivrMedia) Play(names []string) <-chan struct{} {
	return im.s.Play(im.c.m.prompts(im.c.log, names)...)
}

func (im ivrMedia) StopPlay()           { im.s.StopPlay() }
func (im ivrMedia) Digits() <-chan rune { return im.digits }

// ivrQueue is ivr.Queue: the loop runs the queue visit; Join waits for its end. Its
// fields are the IVR goroutine's: the path so far, handed to the loop with the join.
type ivrQueue struct {
	c                *Call
	path, caseNumber string
}

func (iq *ivrQueue) Join(ctx context.Context, queue string) error {
	reply := make(chan error, 1)
	iq.c.post(evJoin{queue: queue, path: iq.path, caseNumber: iq.caseNumber, reply: reply})
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
