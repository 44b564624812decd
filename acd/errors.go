package acd

import "errors"

// Errors returned by the package. They are wrapped with %w; test with errors.Is.
var (
	// ErrConfig: New was given an invalid queue or agent configuration; the
	// wrapped message names the queue or agent and the field.
	ErrConfig = errors.New("acd: bad configuration")
	// ErrUnknownQueue: Enqueue or Transferred named a queue that is not configured.
	ErrUnknownQueue = errors.New("acd: unknown queue")
	// ErrUnknownAgent: an agent input named an agent that is not configured.
	ErrUnknownAgent = errors.New("acd: unknown agent")
	// ErrQueueFull: the queue already holds MaxCallers callers.
	ErrQueueFull = errors.New("acd: queue full")
	// ErrNoAgents: no agent who could ever serve the caller is logged in and
	// unpaused, and the queue does not accept callers then (JoinEmpty false,
	// or LeaveWhenEmpty true).
	ErrNoAgents = errors.New("acd: no agents")
	// ErrDuplicateCall: Enqueue was given a CallID that the ACD still tracks
	// (waiting, ringing or connected).
	ErrDuplicateCall = errors.New("acd: call already in the ACD")
	// ErrNotLoggedIn: Pause was asked of a logged-out agent.
	ErrNotLoggedIn = errors.New("acd: agent not logged in")
	// ErrUnknownCall: Transferred named a call that is not connected to that
	// agent, or Enqueue was given an empty CallID.
	ErrUnknownCall = errors.New("acd: unknown call")
	// ErrClosed: the ACD has been closed.
	ErrClosed = errors.New("acd: closed")
)
