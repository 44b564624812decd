package loadtest

import "errors"

var (
	// ErrNotLoopback is returned for a target, metrics URL or local address
	// outside 127.0.0.0/8 (and ::1): the load tester only runs on loopback.
	ErrNotLoopback = errors.New("loadtest: not a loopback address (only 127.0.0.0/8 and ::1 are allowed)")
	// ErrConfig reports an invalid run configuration.
	ErrConfig = errors.New("loadtest: invalid configuration")
	// ErrNoSIPp means the sipp binary was not found.
	ErrNoSIPp = errors.New("loadtest: sipp not found (Debian package sip-tester)")
)
