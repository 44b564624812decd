package callback

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Campaigns and targets as the API methods store them: defaults, checks,
// deadlines, the do-not-call list.

// complete fills c's defaults, resets its state and validates it.
func (d *Dialer) complete(c Campaign, now time.Time) (Campaign, error) {
	def := d.cfg.Defaults
	if c.Window.IsZero() {
		c.Window = def.Window
	}
	if c.Window.IsZero() {
		c.Window = Window{From: DefaultWindowFrom, To: DefaultWindowTo}
	}
	c.MaxConcurrent = firstPositive(c.MaxConcurrent, def.MaxConcurrent, DefaultMaxConcurrent)
	c.CPS = firstPositive(c.CPS, def.CPS, DefaultCPS)
	c.MaxAttempts = firstPositive(c.MaxAttempts, def.MaxAttempts, DefaultMaxAttempts)
	c.Retry.Busy = firstPositive(c.Retry.Busy, def.Retry.Busy, DefaultRetryBusy)
	c.Retry.NoAnswer = firstPositive(c.Retry.NoAnswer, def.Retry.NoAnswer, DefaultRetryNoAnswer)
	c.Retry.Failed = firstPositive(c.Retry.Failed, def.Retry.Failed, DefaultRetryFailed)
	c.Retry.Interrupted = firstPositive(c.Retry.Interrupted, def.Retry.Interrupted, DefaultRetryInterrupted)
	c.RingTimeout = firstPositive(c.RingTimeout, def.RingTimeout) // 0: the trunk's
	c.Deadline = firstPositive(c.Deadline, def.Deadline, DefaultDeadline)
	if c.Fallback == "" {
		c.Fallback, c.FallbackDissatisfied = def.Fallback, def.FallbackDissatisfied
	}
	dnc := slices.Concat(c.DoNotCall, def.DoNotCall)
	for i := range dnc {
		dnc[i] = strings.TrimSpace(dnc[i])
	}
	slices.Sort(dnc)
	c.DoNotCall = slices.Compact(dnc)
	c.State, c.Created = CampaignRunning, now

	var probs []string
	if strings.TrimSpace(c.Name) == "" {
		probs = append(probs, "name: required")
	}
	if c.Script == "" || (d.cfg.Scripts != nil && !d.cfg.Scripts(c.Script)) {
		probs = append(probs, fmt.Sprintf("script: unknown survey %q", c.Script))
	}
	if _, _, ok := d.cfg.Trunks.TrunkLimits(c.Trunk); !ok {
		probs = append(probs, fmt.Sprintf("trunk: unknown outbound trunk %q", c.Trunk))
	}
	if err := c.Window.Validate(); err != nil {
		probs = append(probs, strings.TrimPrefix(err.Error(), ErrBadCampaign.Error()+": "))
	}
	if len(probs) > 0 {
		return Campaign{}, fmt.Errorf("%w: %s", ErrBadCampaign, strings.Join(probs, "; "))
	}
	return c, nil
}

func firstPositive[T int | float64 | time.Duration](vs ...T) T {
	for _, v := range vs {
		if v > 0 {
			return v
		}
	}
	return 0
}

// prepare checks ts for campaign c: the targets to store (pending, or done
// with outcome dnc), their indexes in ts, and the refused ones.
func (d *Dialer) prepare(c Campaign, ts []Target, now time.Time) (ok []Target, idx []int, refused []TargetError) {
	seen := make(map[string]bool, len(ts))
	for i, t := range ts {
		t.CaseID, t.Phone = strings.TrimSpace(t.CaseID), strings.TrimSpace(t.Phone)
		var err error
		switch {
		case t.CaseID == "":
			err = fmt.Errorf("%w: case_id required", ErrBadTarget)
		case t.Phone == "":
			err = fmt.Errorf("%w: phone required", ErrBadTarget)
		case seen[t.CaseID]:
			err = fmt.Errorf("%w: %s", ErrDuplicateCase, t.CaseID)
		case !d.cfg.Trunks.TrunkAllows(c.Trunk, t.Phone):
			err = fmt.Errorf("%w: %s", ErrNotInDialPlan, t.Phone)
		}
		if err != nil {
			refused = append(refused, TargetError{Index: i, CaseID: t.CaseID, Err: err.Error()})
			continue
		}
		seen[t.CaseID] = true
		if t.Deadline.IsZero() && c.Deadline > 0 {
			base := t.ClosedAt
			if base.IsZero() {
				base = now
			}
			t.Deadline = base.Add(c.Deadline)
		}
		ok = append(ok, Target{
			Campaign: c.ID, CaseID: t.CaseID, Phone: t.Phone, Queue: t.Queue, Agent: t.Agent,
			CallID: t.CallID, ClosedAt: t.ClosedAt, Deadline: t.Deadline, NextAt: t.NextAt,
			State: TargetPending, Updated: now,
		})
		if slices.Contains(c.DoNotCall, t.Phone) {
			ok[len(ok)-1].State, ok[len(ok)-1].Outcome = TargetDone, OutcomeDNC
		}
		idx = append(idx, i)
	}
	return ok, idx, refused
}

// addTargets prepares and stores ts; refused indexes are ts's.
func (d *Dialer) addTargets(ctx context.Context, c Campaign, ts []Target, now time.Time) (int, []TargetError, error) {
	ok, idx, refused := d.prepare(c, ts, now)
	if len(ok) == 0 {
		return 0, refused, nil
	}
	n, more, err := d.store.AddTargets(ctx, c.ID, ok)
	for _, e := range more {
		if e.Index >= 0 && e.Index < len(idx) {
			e.Index = idx[e.Index]
		}
		refused = append(refused, e)
	}
	slices.SortFunc(refused, func(a, b TargetError) int { return a.Index - b.Index })
	if err != nil {
		return n, refused, fmt.Errorf("callback: add targets: %w", err)
	}
	return n, refused, nil
}
