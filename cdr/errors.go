package cdr

import "errors"

// Errors returned by this package. Callers match them with errors.Is; the
// returned errors wrap them with the path or record concerned.
var (
	// ErrSchemaTooNew means the database was migrated by a newer hotlined
	// than this build; this build refuses to touch it.
	ErrSchemaTooNew = errors.New("schema version is newer than this build")
	// ErrInvalidRecord means a record cannot be stored (e.g. it has no ID).
	ErrInvalidRecord = errors.New("invalid call record")
	// ErrInvalidEvent means an agent event cannot be stored (no ID, time or
	// event name).
	ErrInvalidEvent = errors.New("invalid agent event")
	// ErrNoJournalDir means WriterOptions.JournalDir was empty.
	ErrNoJournalDir = errors.New("cdr writer: JournalDir is required")
	// ErrBacklogged means records can be neither stored nor journaled (a
	// full disk, say) and WriterOptions.SpillLimit of them wait in memory:
	// the writer asks that no new calls be taken until they can be written.
	ErrBacklogged = errors.New("cdr writer: records can be neither stored nor journaled")
	// ErrClosed is returned by operations on a closed store or writer.
	ErrClosed = errors.New("cdr: closed")
)
