package media

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
)

// Socket buffer sizes for RTP sockets: a few hundred packets each way.
const (
	rtpReadBuffer  = 128 << 10
	rtpWriteBuffer = 64 << 10
)

// Receive modes of the sockets Ports.NewSession makes (Ports.Mode).
const (
	ModeEpoll    = "epoll"    // raw sockets read by a few epoll loops (Linux)
	ModePortable = "portable" // a net.UDPConn and a reader goroutine per socket
)

// Ports allocates RTP sockets from a configured port range. Only even ports are
// used (the odd neighbour is RTCP's by convention). A rotating cursor makes a
// just-freed port the last to be reused; the kernel is the source of truth: a
// port that fails to bind with EADDRINUSE is skipped. Safe for concurrent use.
//
// Ports also chooses how sessions receive (Mode): on Linux their sockets are
// read by a poller (a few epoll loops, one per core) unless
// HOTLINE_MEDIA_POLLER=portable; elsewhere, or when epoll is unavailable,
// each session has a net.UDPConn and a reader goroutine.
type Ports struct {
	ip     netip.Addr
	low    int
	count  int           // number of even ports in the range
	cursor atomic.Uint64 // next candidate index (mod count)
	poller *poller       // reads NewSession's sockets; nil in the portable mode
}

// NewPorts returns an allocator for the even ports low, low+2, … ≤ high on ip.
// low must be even, 1024 ≤ low < high ≤ 65535. It reads HOTLINE_MEDIA_POLLER
// once, here (see Mode).
func NewPorts(ip netip.Addr, low, high int) (*Ports, error) {
	switch {
	case !ip.IsValid():
		return nil, fmt.Errorf("%w: invalid IP address", ErrPortRange)
	case low < 1024 || high > 65535:
		return nil, fmt.Errorf("%w: %d-%d outside 1024-65535", ErrPortRange, low, high)
	case low >= high:
		return nil, fmt.Errorf("%w: %d-%d: low must be below high", ErrPortRange, low, high)
	case low%2 != 0:
		return nil, fmt.Errorf("%w: %d-%d: low must be even", ErrPortRange, low, high)
	}
	return &Ports{ip: ip.Unmap(), low: low, count: (high-low)/2 + 1, poller: newPoller(0)}, nil
}

// Mode returns how the sessions of NewSession receive: ModeEpoll or ModePortable.
func (p *Ports) Mode() string {
	if p.poller != nil {
		return ModeEpoll
	}
	return ModePortable
}

// NewSession binds the next free even port and returns a session on it, in the
// Ports' mode (cfg.Conn is ignored). It returns ErrNoPorts when every port is
// taken.
func (p *Ports) NewSession(cfg SessionConfig) (*Session, error) {
	if p.poller == nil {
		conn, err := p.Listen()
		if err != nil {
			return nil, err
		}
		cfg.Conn = conn
		return NewSession(cfg), nil
	}
	var sock *rawSocket
	err := p.bind(func(ap netip.AddrPort) (err error) {
		sock, err = p.poller.open(ap)
		return err
	})
	if err != nil {
		return nil, err
	}
	cfg.Conn = nil
	return newSession(cfg, sock), nil
}

// Listen binds a UDP socket on the next free even port of the range, with
// modest socket buffers. It returns ErrNoPorts when every port is taken.
// The socket is a plain net.UDPConn whatever the Ports' mode.
func (p *Ports) Listen() (*net.UDPConn, error) {
	var conn *net.UDPConn
	err := p.bind(func(ap netip.AddrPort) (err error) {
		conn, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
		if err != nil {
			return err
		}
		// Best effort: the kernel caps these at net.core.{r,w}mem_max.
		_ = conn.SetReadBuffer(rtpReadBuffer)
		_ = conn.SetWriteBuffer(rtpWriteBuffer)
		return nil
	})
	return conn, err
}

// bind calls open with the candidate ports in cursor order until one is not
// in use (EADDRINUSE). No lock is held while binding: concurrent callers try
// different ports. It returns ErrNoPorts when every port is taken.
func (p *Ports) bind(open func(netip.AddrPort) error) error {
	for range p.count {
		i := (p.cursor.Add(1) - 1) % uint64(p.count)
		ap := netip.AddrPortFrom(p.ip, uint16(p.low+2*int(i)))
		err := open(ap)
		if err == nil {
			return nil
		}
		if errors.Is(err, syscall.EADDRINUSE) {
			continue
		}
		return fmt.Errorf("media: listen udp %s: %w", ap, err)
	}
	return ErrNoPorts
}

// Size returns the number of ports in the range.
func (p *Ports) Size() int { return p.count }
