package sip

import (
	"errors"
	"fmt"
	"net"
)

// Errors of the SIP layer. Each maps to one SIP status in one place (statusFor).
var (
	// ErrBadSDP is an SDP body that cannot be parsed or is nonsense (answered 400).
	ErrBadSDP = errors.New("sip: malformed SDP")
	// ErrNoAudio is an SDP with no usable RTP/AVP audio stream (answered 488).
	ErrNoAudio = errors.New("sip: no usable audio stream")
	// ErrNoCommonCodec is an offer with none of the trunk's codecs (answered 488).
	ErrNoCommonCodec = errors.New("sip: no common codec")
	// ErrCanceled is a call the caller cancelled before we answered.
	ErrCanceled = errors.New("sip: call cancelled")
	// ErrNoACK is a 200 OK never acknowledged within 64*T1.
	ErrNoACK = errors.New("sip: no ACK for 200 OK")
	// ErrServerClosed is a request that cannot be sent because the server stopped serving.
	ErrServerClosed = errors.New("sip: server closed")
	// ErrLegEnded is an operation on a leg that has already ended.
	ErrLegEnded = errors.New("sip: leg ended")
	// ErrTCPIdle is the read error of a TCP connection we closed for idleness; it wraps
	// net.ErrClosed, which sipgo takes as a normal end of the connection.
	ErrTCPIdle = fmt.Errorf("sip: idle TCP connection closed: %w", net.ErrClosed)
)

// statusFor maps an offer/answer failure to the SIP status we reply with.
func statusFor(err error) (int, string) {
	switch {
	case errors.Is(err, ErrBadSDP):
		return 400, "Bad Request"
	case errors.Is(err, ErrNoAudio), errors.Is(err, ErrNoCommonCodec), errors.Is(err, ErrNoCrypto):
		return 488, "Not Acceptable Here"
	}
	return 500, "Server Internal Error"
}
