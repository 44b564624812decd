package callback

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/hotline12345/hotline/call"
	"github.com/hotline12345/hotline/cdr"
)

// This file holds the loop's bookkeeping: recovery, saving targets, the
// notes of the API methods, campaign states and the commands.

// recover loads the campaigns and what a previous process left: targets
// dialing count an interrupted attempt, human targets wait for a new task.
func (d *Dialer) recover() error {
	l := &d.loop
	ctx, cancel := d.sctx()
	defer cancel()
	cs, err := d.store.Campaigns(ctx)
	if err != nil {
		return err
	}
	for _, c := range slices.Backward(cs) { // oldest first
		d.addCamp(c)
	}
	humans, err := d.store.InState(ctx, TargetHuman) // before the dialing ones become human
	if err != nil {
		return err
	}
	for _, t := range humans {
		if c := l.camps[t.Campaign]; c != nil {
			c.addHuman(t)
		}
	}
	now := d.clock.Now()
	dialing, err := d.store.InState(ctx, TargetDialing)
	if err != nil {
		return err
	}
	for _, t := range dialing {
		c := l.camps[t.Campaign]
		if c == nil {
			d.log.Error("recovery: target of an unknown campaign", "campaign", t.Campaign, "case_id", t.CaseID)
			continue
		}
		d.metrics.calls.WithLabelValues(OutcomeInterrupted).Inc()
		nt := surveyOutcome(c.c, t, call.SurveyResult{Disposition: cdr.DispositionInterrupted}, now)
		d.log.Info("recovery: call interrupted", "campaign", t.Campaign, "case_id", t.CaseID, "attempt", t.Attempts, "next", nt.State)
		d.apply(c, nt, TargetDialing)
	}
	d.log.Info("dialer started", "campaigns", len(cs), "interrupted", len(dialing), "human", len(humans))
	return nil
}

func (d *Dialer) addCamp(c Campaign) *camp {
	l := &d.loop
	if x := l.camps[c.ID]; x != nil {
		return x
	}
	x := &camp{c: c, pace: pacer{gap: gapFor(c.CPS)}, dirty: c.State == CampaignRunning}
	l.camps[c.ID] = x
	l.order = append(l.order, x)
	return x
}

// save writes t (stored in state from); a failed write is retried each tick.
func (d *Dialer) save(t Target, from string) {
	ctx, cancel := d.sctx()
	err := d.store.Update(ctx, t, from)
	cancel()
	switch {
	case err == nil:
	case errors.Is(err, ErrNotFound):
		d.log.Error("target not in the state the dialer left it in; not saved", "campaign", t.Campaign, "case_id", t.CaseID, "from", from, "to", t.State)
	default:
		d.log.Warn("saving target failed; retrying", "campaign", t.Campaign, "case_id", t.CaseID, "err", err)
		d.loop.unsaved = append(d.loop.unsaved, write{t: t, from: from})
	}
}

// flush retries the failed writes in order, stopping at the first failure.
func (d *Dialer) flush() {
	l := &d.loop
	for len(l.unsaved) > 0 {
		w := l.unsaved[0]
		ctx, cancel := d.sctx()
		err := d.store.Update(ctx, w.t, w.from)
		cancel()
		if err != nil && !errors.Is(err, ErrNotFound) {
			return
		}
		l.unsaved[0] = write{}
		l.unsaved = l.unsaved[1:]
	}
}

func (d *Dialer) isUnsaved(k tkey) bool {
	return slices.ContainsFunc(d.loop.unsaved, func(w write) bool { return key(w.t) == k })
}

// drainInbox takes the notes the API methods and AfterCall posted.
func (d *Dialer) drainInbox() {
	d.mu.Lock()
	notes := d.inbox
	d.inbox = nil
	d.mu.Unlock()
	for _, n := range notes {
		switch n.kind {
		case noteCampaign, noteTargets:
			d.reopen(d.addCamp(n.campaign))
		case noteAfterCall:
			d.afterCall(n.rec)
		}
	}
}

// reopen looks at c again after targets were added: a done campaign runs
// again, a cancelled one cancels them.
func (d *Dialer) reopen(c *camp) {
	c.idleUntil, c.dirty = time.Time{}, true
	switch c.c.State {
	case CampaignDone:
		if err := d.setState(c, CampaignRunning); err != nil {
			d.log.Warn("reopening campaign", "campaign", c.c.ID, "err", err)
		}
	case CampaignCancelled:
		c.sweep = true
	}
}

// afterCall adds the survey target of an answered inbound call.
func (d *Dialer) afterCall(rec cdr.Record) {
	l := &d.loop
	r := d.cfg.AfterCall
	now := d.clock.Now()
	ctx, cancel := d.sctx()
	defer cancel()
	c := l.camps[AfterCallCampaign]
	if c == nil {
		cc, err := d.store.Campaign(ctx, AfterCallCampaign)
		if errors.Is(err, ErrNotFound) {
			if cc, err = d.complete(Campaign{ID: AfterCallCampaign, Name: AfterCallCampaign, Script: r.Script, Trunk: r.Trunk}, now); err == nil {
				err = d.store.CreateCampaign(ctx, cc)
			}
		}
		if err != nil {
			d.log.Error("after-call campaign", "err", err)
			return
		}
		c = d.addCamp(cc)
	}
	if c.c.State == CampaignCancelled {
		d.log.Debug("after-call campaign cancelled; survey not scheduled", "call_id", rec.ID)
		return
	}
	end := rec.End
	if end.IsZero() {
		end = now
	}
	id := rec.CaseNumber
	if id == "" {
		id = rec.ID
	}
	t := Target{CaseID: id, Phone: rec.Caller, Queue: rec.Queue, Agent: rec.Agent, CallID: rec.ID,
		ClosedAt: end, NextAt: end.Add(r.Delay)}
	n, refused, err := d.addTargets(ctx, c.c, []Target{t}, now)
	for _, e := range refused {
		d.log.Info("after-call survey refused", "call_id", rec.ID, "case_id", id, "err", e.Err)
	}
	if err != nil {
		d.log.Warn("after-call survey", "call_id", rec.ID, "err", err)
	}
	if n > 0 {
		d.reopen(c)
	}
}

// checkDone marks running campaigns done when none of their targets can go on.
func (d *Dialer) checkDone() {
	for _, c := range d.loop.order {
		if !c.dirty || c.c.State != CampaignRunning || c.active > 0 || c.tasks > 0 || len(c.humans) > 0 ||
			slices.ContainsFunc(d.loop.unsaved, func(w write) bool { return w.t.Campaign == c.c.ID }) {
			continue
		}
		ctx, cancel := d.sctx()
		open, err := d.unfinished(ctx, c.c.ID)
		cancel()
		if err != nil {
			d.log.Warn("campaign progress", "campaign", c.c.ID, "err", err)
			continue
		}
		c.dirty = false
		if !open {
			if err := d.setState(c, CampaignDone); err != nil {
				c.dirty = true
				d.log.Warn("campaign done", "campaign", c.c.ID, "err", err)
				continue
			}
			ctx, cancel := d.sctx()
			n, _ := d.store.Counts(ctx, c.c.ID, d.clock.Now(), d.cfg.AtRisk) // once, for the log
			cancel()
			d.log.Info("campaign done", "campaign", c.c.ID, "done", n.Done, "failed", n.Failed, "cancelled", n.Cancelled)
		}
	}
}

// unfinished reports whether campaign id still has a target pending, dialling or with a
// human: three index probes, not a count of the whole campaign (which the loop cannot afford
// after every result of a million-target campaign).
func (d *Dialer) unfinished(ctx context.Context, id string) (bool, error) {
	for _, st := range []string{TargetPending, TargetDialing, TargetHuman} {
		ts, err := d.store.Targets(ctx, id, st, 1)
		if err != nil {
			return false, err
		}
		if len(ts) > 0 {
			return true, nil
		}
	}
	return false, nil
}

func (d *Dialer) setState(c *camp, state string) error {
	ctx, cancel := d.sctx()
	defer cancel()
	if err := d.store.SetCampaignState(ctx, c.c.ID, state); err != nil {
		return err
	}
	c.c.State = state
	return nil
}

// lookup returns campaign id, loading it if it is in the store only.
func (d *Dialer) lookup(ctx context.Context, id string) (*camp, error) {
	if c := d.loop.camps[id]; c != nil {
		return c, nil
	}
	cc, err := d.store.Campaign(ctx, id)
	if err != nil {
		return nil, err
	}
	return d.addCamp(cc), nil
}

func (d *Dialer) pause(ctx context.Context, id string) error {
	c, err := d.lookup(ctx, id)
	if err != nil {
		return err
	}
	switch c.c.State {
	case CampaignPaused:
		return nil
	case CampaignRunning:
		c.ready = nil
		d.log.Info("campaign paused", "campaign", id)
		return d.setState(c, CampaignPaused)
	}
	return ErrFinal
}

func (d *Dialer) resume(ctx context.Context, id string) error {
	c, err := d.lookup(ctx, id)
	if err != nil {
		return err
	}
	switch c.c.State {
	case CampaignRunning, CampaignDone:
		return nil
	case CampaignPaused:
		c.idleUntil, c.dirty = time.Time{}, true
		d.log.Info("campaign resumed", "campaign", id)
		return d.setState(c, CampaignRunning)
	}
	return ErrFinal
}

func (d *Dialer) cancel(ctx context.Context, id string) error {
	c, err := d.lookup(ctx, id)
	if err != nil {
		return err
	}
	if c.c.State != CampaignRunning && c.c.State != CampaignPaused {
		return ErrFinal
	}
	if err := d.setState(c, CampaignCancelled); err != nil {
		return err
	}
	d.log.Info("campaign cancelled", "campaign", id, "calls_in_flight", c.active, "tasks_in_flight", c.tasks)
	c.ready = nil
	now := d.clock.Now()
	for _, t := range c.humans {
		t.State, t.Updated = TargetCancelled, now
		d.save(t, TargetHuman)
	}
	c.humans = nil
	c.sweep = true
	d.sweepPending(c)
	return nil
}

// sweepPending cancels the pending targets of cancelled campaign c.
func (d *Dialer) sweepPending(c *camp) {
	now := d.clock.Now()
	for {
		ctx, cancel := d.sctx()
		ts, err := d.store.Targets(ctx, c.c.ID, TargetPending, sweepBatch)
		cancel()
		if err != nil {
			d.log.Warn("cancelling targets", "campaign", c.c.ID, "err", err)
			return
		}
		if len(ts) == 0 {
			c.sweep = false
			return
		}
		for _, t := range ts {
			t.State, t.Updated = TargetCancelled, now
			ctx, cancel := d.sctx()
			err := d.store.Update(ctx, t, TargetPending)
			cancel()
			if err != nil && !errors.Is(err, ErrNotFound) {
				d.log.Warn("cancelling target", "campaign", c.c.ID, "case_id", t.CaseID, "err", err)
				return
			}
		}
	}
}
