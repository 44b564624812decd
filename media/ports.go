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

// Ports allocates RTP sockets from a configured port range. Only even ports are
// used (the odd neighbour is RTCP's by convention). A rotating cursor makes a
// just-freed port the last to be reused; the kernel is the source of truth: a
// port that fails to bind with EADDRINUSE is skipped. Safe for concurrent use.
type Ports struct {
	ip     netip.Addr
	low    int
	count  int           // number of even ports in the range
	cursor atomic.Uint64 // next candidate index (mod count)
}

// NewPorts returns an allocator for the even ports low, low+2, … ≤ high on ip.
// low must be even, 1024 ≤ low < high ≤ 65535.
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
	return &Ports{ip: ip, low: low, count: (high-low)/2 + 1}, nil
}

// Listen binds a UDP socket on the next free even port of the range, with
// modest socket buffers. It returns ErrNoPorts when every port is taken.
// No lock is held while binding: concurrent callers try different ports.
func (p *Ports) Listen() (*net.UDPConn, error) {
	for range p.count {
		i := (p.cursor.Add(1) - 1) % uint64(p.count)
		port := p.low + 2*int(i)
		conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(p.ip, uint16(port))))
		if err != nil {
			if errors.Is(err, syscall.EADDRINUSE) {
				continue
			}
			return nil, fmt.Errorf("media: listen udp %s: %w", netip.AddrPortFrom(p.ip, uint16(port)), err)
		}
		// Best effort: the kernel caps these at net.core.{r,w}mem_max.
		_ = conn.SetReadBuffer(rtpReadBuffer)
		_ = conn.SetWriteBuffer(rtpWriteBuffer)
		return conn, nil
	}
	return nil, ErrNoPorts
}

// Size returns the number of ports in the range.
func (p *Ports) Size() int { return p.count }
