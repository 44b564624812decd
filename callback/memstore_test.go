package callback

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// memStore is an in-memory Store for the dialer's tests, with the SQL
// stores' semantics: Due and Targets by deadline (none last) then case id,
// Update's fromState claim, AddTargets refusing duplicates and cancelled
// campaigns. fail, when set, can make an operation fail.
type memStore struct {
	mu      sync.Mutex
	camps   map[string]Campaign
	targets map[string]map[string]Target // campaign → case id → target
	fail    func(op string) error
	updates []Target // every successful Update, in order
}

var _ Store = (*memStore)(nil)

func newMemStore() *memStore {
	return &memStore{camps: map[string]Campaign{}, targets: map[string]map[string]Target{}}
}

func (s *memStore) failing(op string) error {
	if s.fail == nil {
		return nil
	}
	return s.fail(op)
}

func (s *memStore) CreateCampaign(_ context.Context, c Campaign) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failing("CreateCampaign"); err != nil {
		return err
	}
	if _, ok := s.camps[c.ID]; ok {
		return fmt.Errorf("campaign %s exists", c.ID)
	}
	s.camps[c.ID] = c
	s.targets[c.ID] = map[string]Target{}
	return nil
}

func (s *memStore) SetCampaignState(_ context.Context, id, state string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failing("SetCampaignState"); err != nil {
		return err
	}
	c, ok := s.camps[id]
	if !ok {
		return ErrNotFound
	}
	c.State = state
	s.camps[id] = c
	return nil
}

func (s *memStore) Campaign(_ context.Context, id string) (Campaign, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.camps[id]
	if !ok {
		return Campaign{}, fmt.Errorf("campaign %s: %w", id, ErrNotFound)
	}
	return c, nil
}

func (s *memStore) Campaigns(context.Context) ([]Campaign, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Campaign
	for _, c := range s.camps {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b Campaign) int {
		return cmp.Or(b.Created.Compare(a.Created), cmp.Compare(b.ID, a.ID))
	})
	return out, nil
}

func (s *memStore) AddTargets(_ context.Context, campaign string, ts []Target) (int, []TargetError, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failing("AddTargets"); err != nil {
		return 0, nil, err
	}
	c, ok := s.camps[campaign]
	if !ok {
		return 0, nil, ErrNotFound
	}
	if c.State == CampaignCancelled {
		return 0, nil, ErrFinal
	}
	var refused []TargetError
	n := 0
	for i, t := range ts {
		if _, dup := s.targets[campaign][t.CaseID]; dup {
			refused = append(refused, TargetError{Index: i, CaseID: t.CaseID, Err: ErrDuplicateCase.Error()})
			continue
		}
		t.Campaign = campaign
		if t.State == "" {
			t.State = TargetPending
		}
		s.targets[campaign][t.CaseID] = t
		n++
	}
	return n, refused, nil
}

// sorted returns the targets of campaign that keep says, by deadline then case id.
func (s *memStore) sorted(campaign string, keep func(Target) bool) []Target {
	var out []Target
	for _, t := range s.targets[campaign] {
		if keep(t) {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, byDeadline)
	return out
}

func (s *memStore) Due(_ context.Context, campaign string, now time.Time, limit int) ([]Target, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failing("Due"); err != nil {
		return nil, err
	}
	out := s.sorted(campaign, func(t Target) bool { return t.State == TargetPending && !t.NextAt.After(now) })
	return out[:min(len(out), limit)], nil
}

func (s *memStore) Update(_ context.Context, t Target, fromState string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failing("Update"); err != nil {
		return err
	}
	old, ok := s.targets[t.Campaign][t.CaseID]
	if !ok || (fromState != "" && old.State != fromState) {
		return fmt.Errorf("target %s/%s from %q: %w", t.Campaign, t.CaseID, fromState, ErrNotFound)
	}
	// The immutable fields stay as stored.
	t.Phone, t.Queue, t.Agent, t.CallID, t.ClosedAt, t.Deadline = old.Phone, old.Queue, old.Agent, old.CallID, old.ClosedAt, old.Deadline
	s.targets[t.Campaign][t.CaseID] = t
	s.updates = append(s.updates, t)
	return nil
}

func (s *memStore) Target(_ context.Context, campaign, caseID string) (Target, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.targets[campaign][caseID]
	if !ok {
		return Target{}, ErrNotFound
	}
	return t, nil
}

func (s *memStore) Targets(_ context.Context, campaign, state string, limit int) ([]Target, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.sorted(campaign, func(t Target) bool { return state == "" || t.State == state })
	if limit > 0 {
		out = out[:min(len(out), limit)]
	}
	return out, nil
}

func (s *memStore) InState(_ context.Context, state string) ([]Target, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Target
	for c := range s.targets {
		out = append(out, s.sorted(c, func(t Target) bool { return t.State == state })...)
	}
	return out, nil
}

func (s *memStore) Counts(_ context.Context, campaign string, now time.Time, atRisk time.Duration) (Counts, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failing("Counts"); err != nil {
		return Counts{}, err
	}
	if _, ok := s.camps[campaign]; !ok {
		return Counts{}, ErrNotFound
	}
	n := Counts{Outcomes: map[string]int{}, Satisfied: map[string]int{}}
	for _, t := range s.targets[campaign] {
		switch t.State {
		case TargetPending:
			n.Pending++
		case TargetDialing, TargetHuman:
			n.InProgress++
		case TargetDone:
			n.Done++
		case TargetFailed:
			n.Failed++
		case TargetCancelled:
			n.Cancelled++
		}
		if t.Outcome != "" {
			n.Outcomes[t.Outcome]++
		}
		if !t.ReachedAt.IsZero() {
			n.Reached++
			if t.Deadline.IsZero() || !t.ReachedAt.After(t.Deadline) {
				n.InTime++
			}
		}
		if t.Satisfaction != "" {
			n.Satisfied[t.Satisfaction]++
		}
		final := t.State == TargetDone || t.State == TargetFailed || t.State == TargetCancelled
		if !final && !t.Deadline.IsZero() && t.Deadline.Before(now.Add(atRisk)) {
			n.AtRisk++
		}
	}
	return n, nil
}

func (s *memStore) Close() error { return nil }

// target returns a stored target (tests).
func (s *memStore) target(campaign, caseID string) Target {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.targets[campaign][caseID]
}

// all returns the targets of campaign by case id (tests).
func (s *memStore) all(campaign string) []Target {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.sorted(campaign, func(Target) bool { return true })
	slices.SortFunc(out, func(a, b Target) int { return cmp.Compare(a.CaseID, b.CaseID) })
	return out
}

func (s *memStore) campaign(id string) Campaign {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.camps[id]
}
