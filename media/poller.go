package media

import (
	"net/netip"
	"os"
	"runtime"
	"time"
)

// PollerEnv is the environment variable that selects the receive mode: set
// to "portable" it turns the poller off (each session then has a net.UDPConn
// and a reader goroutine). It is read once by NewPorts.
const PollerEnv = "HOTLINE_MEDIA_POLLER"

// maxPollLoops caps the poller's epoll loops: a handful of threads reading
// is enough for any number of cores we run on.
const maxPollLoops = 8

// pollHandler is what a poller delivers a socket's events to (a Session).
// Its methods run on the poller loop that owns the socket.
type pollHandler interface {
	// handlePacket handles one datagram; buf is reused after it returns.
	handlePacket(buf []byte, from netip.AddrPort, now time.Time)
	// pollFailed reports that reading (or registering) the socket failed;
	// the loop reads it no more. The handler should ask for the close.
	pollFailed(err error)
	// pollClosed reports that the loop closed the socket, at the handler's
	// request: nothing reads or sends on it any more.
	pollClosed()
}

// newPoller returns a poller with loops epoll loops (0 = GOMAXPROCS, at most
// maxPollLoops), or nil when the portable mode is chosen: HOTLINE_MEDIA_POLLER
// is "portable" (read here, once per Ports), or epoll is unavailable (not
// Linux, or epoll_create fails). A loop's goroutine runs only while the loop
// has sockets, so an idle poller holds no goroutine and no descriptor.
func newPoller(loops int) *poller {
	if os.Getenv(PollerEnv) == ModePortable {
		return nil
	}
	if loops <= 0 {
		loops = runtime.GOMAXPROCS(0)
	}
	return newOSPoller(min(loops, maxPollLoops))
}
