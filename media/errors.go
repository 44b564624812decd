// Package media is hotline's RTP engine: port allocation, G.711 codecs, a
// prompt cache, tones, shared send pacing (Scheduler), RTP sessions with
// symmetric-RTP latching and inactivity timeout, RFC 4733 DTMF, in-band DTMF
// detection (InbandDetector), and bridges
// (relay between two sessions, PCMU↔PCMA transcoding only when needed).
//
// Receive modes: on Linux, Ports.NewSession makes sessions whose sockets are
// read by a poller — one epoll loop per core (at most 8), each on its own
// thread, reading every ready socket with one recvmmsg and sending with a
// plain sendto — so the kernel work is batched and the Go runtime is not
// woken per datagram. Setting the environment variable
// HOTLINE_MEDIA_POLLER=portable (read by NewPorts) selects the portable
// mode instead, also used where epoll is unavailable: a net.UDPConn and a
// reader goroutine per session. Sessions made by NewSession on a Conn are
// always portable.
//
// Frame clock: the Scheduler's shards wait for each 1 ms slot deadline on a Go
// timer (ModePortable). HOTLINE_MEDIA_CLOCK=precise (read by NewScheduler)
// makes each shard sleep on its own thread with clock_nanosleep (ModePrecise,
// Linux): more punctual on an idle machine, worse on a saturated one (see
// ClockEnv).
//
// SRTP (SetSRTP) encrypts and decrypts a session's packets with pion/srtp,
// in reused buffers; a bridge between an SRTP and a plain leg therefore
// decrypts on one side and encrypts on the other.
//
// It is a ground-floor protocol package: it knows nothing of SIP, IVR or
// queues and imports only the standard library, golang.org/x/sys/unix,
// pion/rtp, pion/srtp, zaf/g711 and go-audio/wav.
package media

import "errors"

var (
	// ErrSRTPKeys is returned by SetSRTP for an unknown suite or keys of the wrong length.
	ErrSRTPKeys = errors.New("media: bad SRTP keys")

	// ErrNoPorts is returned by Ports.Listen when every port of the range is in use.
	ErrNoPorts = errors.New("media: no free RTP port in range")
	// ErrPortRange is wrapped by NewPorts when the configured range is invalid.
	ErrPortRange = errors.New("media: invalid RTP port range")
	// ErrPromptFormat is wrapped by LoadPrompts when a file is not 8 kHz 16-bit mono PCM WAV.
	ErrPromptFormat = errors.New("media: unsupported prompt format")
	// ErrRTPTimeout is the Session error when no valid RTP arrived within the inactivity timeout.
	ErrRTPTimeout = errors.New("media: RTP inactivity timeout")
	// ErrNoDTMF is returned by Session.SendDTMF when no telephone-event payload type was negotiated.
	ErrNoDTMF = errors.New("media: telephone-event not negotiated")
	// ErrBadDigit is returned for a rune that is not a DTMF digit (0-9, *, #, A-D).
	ErrBadDigit = errors.New("media: not a DTMF digit")
	// ErrSessionEnded is returned by Session methods called after the session ended.
	ErrSessionEnded = errors.New("media: session ended")
	// ErrShortDTMF is returned by ParseDTMFEvent for a payload shorter than 4 bytes.
	ErrShortDTMF = errors.New("media: RFC 4733 payload shorter than 4 bytes")

	// errAddrFamily is a send to an IPv6 address from an IPv4 socket.
	errAddrFamily = errors.New("media: destination address family differs from the socket's")
)
