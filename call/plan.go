package call

import (
	"errors"
	"fmt"
	"time"

	"github.com/hotline12345/hotline/ivr"
)

// Plan is what a configuration reload may change while calls run: the menus, the routes
// (with their hours and holidays), the queues' call-side settings, the survey scripts and
// the prompt set. A call takes the plan in force when it starts and keeps it to its end;
// a reload (Manager.SetPlan) applies from the next call on, so no live call changes menu
// or queue settings under the caller.
type Plan struct {
	Menus    map[string]ivr.Menu
	Routes   []ivr.Route
	Queues   map[string]Queue
	Surveys  map[string]ivr.Survey
	Prompts  Prompts
	Language string
}

// plan is a Plan with its routes indexed by number.
type plan struct {
	Plan
	routes map[string]*ivr.Route
}

// ErrNeedsRestart: a change a running server cannot take (it needs a restart).
var ErrNeedsRestart = errors.New("needs a restart")

// Notices tells which emergency notice (应急) applies to a route's new call: prompts to
// play before the entry, and a menu replacing the route's entry menu ("" = the route's).
type Notices interface {
	Active(route string, now time.Time) (prompts []string, menu string)
}

func newPlan(p Plan) *plan {
	pl := &plan{Plan: p, routes: make(map[string]*ivr.Route, len(p.Routes))}
	for i := range pl.Routes {
		pl.routes[pl.Routes[i].Number] = &pl.Routes[i]
	}
	return pl
}

// check says what in p cannot work: a queue the ACD does not know, or a prompt a queue
// needs that the prompt set lacks.
func (p *plan) check(acdQueues func(string) bool) error {
	for name, q := range p.Queues {
		if acdQueues != nil && !acdQueues(name) {
			return fmt.Errorf("queue %s: %w", name, ErrNeedsRestart)
		}
		if q.Rating {
			for _, n := range []string{PromptRate, PromptRateThanks} {
				if !HasPrompt(p.Prompts, p.Language, n) {
					return fmt.Errorf("queue %s has the post-call rating on, but prompt %q is missing", name, n)
				}
			}
		}
		if q.AnnounceFrequency <= 0 {
			continue
		}
		for _, n := range announcementPrompts {
			if !HasPrompt(p.Prompts, p.Language, n) {
				return fmt.Errorf("queue %s announces position and wait, but prompt %q is missing", name, n)
			}
		}
	}
	return nil
}

// SetPlan checks p and makes it the plan of the calls that start from now on; calls under
// way keep theirs. A queue the ACD does not have yet is ErrNeedsRestart.
func (m *Manager) SetPlan(p Plan) error {
	pl := newPlan(p)
	if err := pl.check(m.acd.HasQueue); err != nil {
		return err
	}
	m.plan.Store(pl)
	for name := range p.Queues {
		m.metrics.handle.WithLabelValues(name)
		m.metrics.waitTime.WithLabelValues(name)
	}
	return nil
}

// SetNotices sets where emergency notices come from (nil: none).
func (m *Manager) SetNotices(n Notices) { m.notices.Store(&n) }

// notice is the notice for route's call starting now.
func (m *Manager) notice(route string, now time.Time) (prompts []string, menu string) {
	if n := m.notices.Load(); n != nil && *n != nil {
		return (*n).Active(route, now)
	}
	return nil, ""
}
