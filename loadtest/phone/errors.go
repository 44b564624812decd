package phone

import (
	"errors"
	"fmt"
)

var (
	// ErrClosed is returned by operations on a closed Phone.
	ErrClosed = errors.New("phone: closed")
	// ErrCallEnded is returned by operations on a call that has ended.
	ErrCallEnded = errors.New("phone: call ended")
	// ErrNotAnswered is returned by media operations before the call is answered.
	ErrNotAnswered = errors.New("phone: call not answered")
	// ErrNoCodec means the offer and answer have no G.711 codec in common.
	ErrNoCodec = errors.New("phone: no common codec")
	// ErrNoDTMF means telephone-event was not negotiated.
	ErrNoDTMF = errors.New("phone: telephone-event not negotiated")
	// ErrBadDigit means a digit outside 0-9 * # A-D.
	ErrBadDigit = errors.New("phone: invalid DTMF digit")
	// ErrConfig reports an invalid Config.
	ErrConfig = errors.New("phone: invalid config")
	// ErrSDP reports an SDP body that could not be used.
	ErrSDP = errors.New("phone: bad SDP")
)

// StatusError is returned by Dial when the INVITE got a final non-2xx response.
type StatusError struct {
	Code   int
	Reason string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("phone: call failed: %d %s", e.Code, e.Reason)
}
