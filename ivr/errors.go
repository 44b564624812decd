package ivr

import "errors"

// Errors returned by the package. They are wrapped with %w; test with errors.Is.
var (
	// ErrBadAction: an action string does not parse ("dial 110").
	ErrBadAction = errors.New("ivr: bad action")
	// ErrUnknownMenu: an action names a menu that is not configured.
	ErrUnknownMenu = errors.New("ivr: unknown menu")
	// ErrBadEntry: Run was given an entry action that cannot start a call
	// ("repeat", "back" or the zero Action).
	ErrBadEntry = errors.New("ivr: bad entry action")
	// ErrNotConfigured: the Runner lacks a Media or Queue it needs.
	ErrNotConfigured = errors.New("ivr: runner not configured")
	// ErrStateMachine: the Run's state machine refused an event; a bug.
	ErrStateMachine = errors.New("ivr: state machine")
)
