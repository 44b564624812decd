package acd

import (
	"context"
	"log/slog"

	"github.com/looplab/fsm"
)

// What a distributor that keeps its state elsewhere (the cluster's, in PostgreSQL) shares
// with this one: the validated configuration, who may serve which queue from which
// escalation step, the priority rules and the agent state machine.

// Membership is an agent's place in a queue: the first escalation step (0 = from joining)
// from which the agent is eligible, and its level in the skill the queue is about (the
// highest required minimum level of its first step), which the best-skill strategy ranks by.
type Membership struct {
	Queue, Agent string
	Step, Level  int
}

// Plan validates queues and agents as [New] does and returns the queues with their
// defaults applied and every (queue, agent) pair that can ever be served.
func Plan(queues []QueueConfig, agents []AgentConfig) ([]QueueConfig, []Membership, error) {
	a, err := New(queues, agents, nil, nopOutbox{}, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, nil, err
	}
	qs := make([]QueueConfig, len(a.queues))
	for i, q := range a.queues {
		qs[i] = q.cfg
	}
	var ms []Membership
	for _, ag := range a.agents {
		for _, s := range ag.serves {
			al := s.q.steps[0].alts[0]
			ms = append(ms, Membership{Queue: s.q.cfg.Name, Agent: ag.id, Step: s.minStep, Level: int(ag.level[al.index])})
		}
	}
	return qs, ms, nil
}

// PriorityFor is the priority of a caller with this number joining the queue given
// priority given: the highest of it and any matching rule.
func (q QueueConfig) PriorityFor(number string, given int) int {
	return q.Priority.priorityFor(number, given)
}

// Agent state machine transitions, by name (see the diagram in agent.go).
const (
	TransLogin    = evLogin
	TransReady    = evReady
	TransPause    = evPause
	TransReserve  = evReserve
	TransConnect  = evConnect
	TransComplete = evComplete
	TransLogout   = evLogout
)

// Transition is the state an agent in state from reaches by the transition, through the
// same looplab/fsm machine the in-memory ACD runs; an error for a transition that the
// machine does not allow from there.
func Transition(from AgentState, transition string) (AgentState, error) {
	m := fsm.NewFSM(string(from), agentEvents, nil)
	if err := m.Event(context.Background(), transition); err != nil {
		return from, err
	}
	return AgentState(m.Current()), nil
}

type nopOutbox struct{}

func (nopOutbox) Offer(Offer)             {}
func (nopOutbox) CancelOffer(Offer)       {}
func (nopOutbox) Event(Event)             {}
func (nopOutbox) Left(string, ExitReason) {}
