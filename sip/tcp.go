package sip

// Bounds on the SIP TCP connections we accept: an idle timeout and a cap per source
// address. sipgo reads each accepted connection on its own goroutine until the peer
// closes it, so without these 50 connections that never send a byte hold 50 goroutines
// and file descriptors forever.
//
// The listener given to sipgo's ServeTCP is wrapped: Accept refuses (closes at once) a
// connection beyond the source's cap, and each connection's reads carry a deadline that
// activity in either direction (a message, a CRLF keepalive, our own requests) pushes
// back. When it passes, the connection is closed unless it is still in use: a dialog
// whose signalling goes over it, or a registration made over it that has not expired.
// The latter is what Kamailio's registrar does with tcp_persistent_flag (the connection
// lives as long as the binding); its tcp_connection_lifetime alone would cut an agent
// whose phone sends no keepalives between re-REGISTERs, and behind NAT we could not
// reach that phone again until it re-registered.

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// TCPLimits bound the TCP connections the server accepts.
type TCPLimits struct {
	IdleTimeout  time.Duration // close a connection idle this long and not in use; <= 0: never
	MaxPerSource int           // connections open at once from one address; <= 0: no cap
}

// TCP close reasons, the label of the metric.
const (
	TCPClosedIdle       = "idle"
	TCPRefusedPerSource = "per_source_cap"
)

// tcpListener wraps the SIP TCP listener (see the file comment).
type tcpListener struct {
	net.Listener
	lim    TCPLimits
	inUse  func(remote netip.AddrPort) bool
	logger func(msg string, args ...any)

	mu        sync.Mutex
	perSource map[netip.Addr]int

	open                atomic.Int64
	refused, idleClosed atomic.Uint64
}

func newTCPListener(l net.Listener, lim TCPLimits, inUse func(netip.AddrPort) bool, logger func(string, ...any)) *tcpListener {
	return &tcpListener{Listener: l, lim: lim, inUse: inUse, logger: logger, perSource: make(map[netip.Addr]int)}
}

// Accept returns the next connection within its source's cap. Transient errors (out of
// file descriptors in a connection flood) are waited out, as net/http does: returning
// them would end sipgo's accept loop and with it every new TCP connection.
func (l *tcpListener) Accept() (net.Conn, error) {
	var backoff time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil, err
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			l.logger("SIP TCP accept failed; retrying", "error", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		remote := addrPortOf(c.RemoteAddr())
		if !l.admit(remote.Addr()) {
			l.refused.Add(1)
			l.logger("SIP TCP connection refused: too many from this address", "source", remote.String(), "max", l.lim.MaxPerSource)
			c.Close()
			continue
		}
		l.open.Add(1)
		tc := &tcpConn{Conn: c, l: l, remote: remote}
		tc.touch()
		return tc, nil
	}
}

func (l *tcpListener) admit(ip netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lim.MaxPerSource > 0 && l.perSource[ip] >= l.lim.MaxPerSource {
		return false
	}
	l.perSource[ip]++
	return true
}

func (l *tcpListener) release(ip netip.Addr) {
	l.open.Add(-1)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.perSource[ip]--; l.perSource[ip] <= 0 {
		delete(l.perSource, ip)
	}
}

// tcpConn is an accepted connection with an idle deadline.
type tcpConn struct {
	net.Conn
	l      *tcpListener
	remote netip.AddrPort
	last   atomic.Int64 // unix nanoseconds of the last activity
	once   sync.Once
}

func (c *tcpConn) touch() { c.last.Store(time.Now().UnixNano()) }

func (c *tcpConn) Read(b []byte) (int, error) {
	idle := c.l.lim.IdleTimeout
	for {
		if idle > 0 {
			if err := c.Conn.SetReadDeadline(time.Unix(0, c.last.Load()).Add(idle)); err != nil {
				return 0, err
			}
		}
		n, err := c.Conn.Read(b)
		if n > 0 {
			c.touch()
		}
		var ne net.Error
		if err == nil || n > 0 || idle <= 0 || !errors.As(err, &ne) || !ne.Timeout() {
			return n, err
		}
		if time.Since(time.Unix(0, c.last.Load())) < idle {
			continue // we wrote meanwhile
		}
		if c.l.inUse != nil && c.l.inUse(c.remote) {
			c.touch()
			continue
		}
		c.l.idleClosed.Add(1)
		c.Close()
		return 0, ErrTCPIdle
	}
}

func (c *tcpConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if n > 0 {
		c.touch()
	}
	return n, err
}

// Close closes the connection once; later calls (sipgo closes a connection we closed for
// idleness again, and would log the error) return nil.
func (c *tcpConn) Close() error {
	var err error
	c.once.Do(func() {
		c.l.release(c.remote.Addr())
		err = c.Conn.Close()
	})
	return err
}

func addrPortOf(a net.Addr) netip.AddrPort {
	var ap netip.AddrPort
	if ta, ok := a.(*net.TCPAddr); ok {
		ap = ta.AddrPort()
	} else {
		ap, _ = netip.ParseAddrPort(a.String())
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// tcpInUse reports whether a connection from remote still carries something: a dialog
// whose requests go there over TCP, or an unexpired registration made from there.
func (s *Server) tcpInUse(remote netip.AddrPort) bool {
	if s.dialogs.usesTCP(remote) {
		return true
	}
	// A front's connection carries many phones' requests: kept (the front closes it).
	return s.cfg.Registrar != nil && (s.cfg.Registrar.hasBindingAt(remote, "TCP") || s.cfg.Registrar.IsTrustedFront(remote.Addr()))
}

func (ds *dialogs) usesTCP(remote netip.AddrPort) bool {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	for _, d := range ds.m {
		if !strings.EqualFold(d.transport, "TCP") {
			continue
		}
		if ap, err := netip.ParseAddrPort(d.dest); err == nil && netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()) == remote {
			return true
		}
	}
	return false
}

// hasBindingAt reports whether an unexpired binding was registered from src over transport.
func (r *Registrar) hasBindingAt(src netip.AddrPort, transport string) bool {
	now := r.cfg.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.bySource[src] == 0 {
		return false
	}
	for _, list := range r.users {
		for _, e := range list {
			if e.Source == src && now.Before(e.Expires) && strings.EqualFold(e.Transport, transport) {
				return true
			}
		}
	}
	return false
}
