package sip

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// waitStats polls the server's stats until ok, or fails at the deadline.
func waitStats(t *testing.T, ts *testServer, what string, ok func(Stats) bool) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for !ok(ts.Stats()) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: stats %+v", what, ts.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// closedByPeer reports whether the server closed c within d.
func closedByPeer(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := c.Read(make([]byte, 64))
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isReset(err)
}

func isReset(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne) && !ne.Timeout()
}

func TestTCPIdleAndPerSourceCap(t *testing.T) {
	t.Parallel()
	const idle = time.Second
	ts := startServer(t, func(c *Config, _ *serverKnobs) { c.TCP = TCPLimits{IdleTimeout: idle, MaxPerSource: 5} })
	addr := net.TCPAddrFromAddrPort(ts.Addr())
	var conns []net.Conn
	for range 5 {
		c, err := net.DialTCP("tcp", nil, addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		conns = append(conns, c)
	}
	waitStats(t, ts, "5 connections open", func(s Stats) bool { return s.TCPOpen == 5 })
	extra, err := net.DialTCP("tcp", nil, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	if !closedByPeer(extra, idle/2) {
		t.Fatal("a sixth connection from the same address was not refused")
	}
	waitStats(t, ts, "one refused", func(s Stats) bool { return s.TCPRefused == 1 && s.TCPOpen == 5 })

	// One connection keeps talking (RFC 5626 CRLF keepalives); the others go idle.
	alive := conns[0]
	stop := make(chan struct{})
	kept := make(chan error, 1)
	go func() {
		tick := time.NewTicker(idle / 10) // a wide margin: the machine may be loaded
		defer tick.Stop()
		for {
			select {
			case <-stop:
				kept <- nil
				return
			case <-tick.C:
				if _, err := alive.Write([]byte("\r\n\r\n")); err != nil {
					kept <- err
					return
				}
			}
		}
	}()
	for i, c := range conns[1:] {
		if !closedByPeer(c, 5*idle) {
			t.Fatalf("idle connection %d not closed after %v", i+1, 5*idle)
		}
	}
	waitStats(t, ts, "4 closed for idleness", func(s Stats) bool { return s.TCPIdle == 4 && s.TCPOpen == 1 })
	close(stop)
	if err := <-kept; err != nil {
		t.Fatalf("the connection with keepalives was cut: %v", err)
	}
	// The cap counts open connections: a new one is admitted now.
	again, err := net.DialTCP("tcp", nil, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	waitStats(t, ts, "admitted after the others closed", func(s Stats) bool { return s.TCPOpen == 2 })
}

// The registrar's index by source follows registrations, refreshes from a new address and
// removals, so hasBindingAt needs no walk for a source without bindings.
func TestRegistrarBySource(t *testing.T) {
	t.Parallel()
	env := newRegEnv(t, nil)
	d := env.device("1001")
	regWantStatus(t, d.register(), 200)
	b := env.r.Bindings("1001")[0]
	if !env.r.hasBindingAt(b.Source, b.Transport) {
		t.Fatalf("no binding at %v over %s", b.Source, b.Transport)
	}
	if env.r.hasBindingAt(b.Source, "TCP") {
		t.Fatal("a UDP binding counted for TCP")
	}
	env.r.mu.Lock()
	n := env.r.bySource[b.Source]
	env.r.mu.Unlock()
	if n != 1 {
		t.Fatalf("index count %d, want 1", n)
	}
	d.expires = 0
	regWantStatus(t, d.register(), 200)
	env.r.mu.Lock()
	left := len(env.r.bySource) + len(env.r.userSources)
	env.r.mu.Unlock()
	if left != 0 || env.r.hasBindingAt(b.Source, b.Transport) {
		t.Fatalf("index not emptied by the removal (%d entries)", left)
	}
}
