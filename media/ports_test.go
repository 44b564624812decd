package media

import (
	"errors"
	"net"
	"net/netip"
	"testing"
)

var loopback = netip.MustParseAddr("127.0.0.1")

func TestNewPortsValidation(t *testing.T) {
	for _, tc := range []struct {
		low, high int
		ok        bool
	}{
		{40000, 40999, true},
		{40000, 40002, true},
		{40001, 40999, false}, // odd low
		{40000, 40000, false}, // empty
		{41000, 40000, false}, // reversed
		{80, 2000, false},     // privileged
		{60000, 70000, false}, // beyond 65535
	} {
		_, err := NewPorts(loopback, tc.low, tc.high)
		if (err == nil) != tc.ok {
			t.Errorf("NewPorts(%d, %d) = %v, want ok=%v", tc.low, tc.high, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrPortRange) {
			t.Errorf("NewPorts(%d, %d) error %v does not wrap ErrPortRange", tc.low, tc.high, err)
		}
	}
	if _, err := NewPorts(netip.Addr{}, 40000, 40010); err == nil {
		t.Error("NewPorts with invalid IP succeeded")
	}
}

func TestPortsListenExhaustAndRotate(t *testing.T) {
	// Other packages' tests may hold some of these ports: the kernel decides.
	p, err := NewPorts(loopback, 41100, 41109) // 5 even ports
	if err != nil {
		t.Fatal(err)
	}
	var conns []*net.UDPConn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	seen := map[uint16]bool{}
	for {
		c, err := p.Listen()
		if errors.Is(err, ErrNoPorts) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		port := c.LocalAddr().(*net.UDPAddr).AddrPort().Port()
		if port%2 != 0 || port < 41100 || port > 41109 || seen[port] {
			t.Fatalf("Listen gave port %d (seen before: %v)", port, seen[port])
		}
		seen[port] = true
		if len(conns) > p.Size() {
			t.Fatal("more sockets than ports")
		}
	}
	if len(conns) == 0 {
		t.Skip("all test ports busy")
	}
	// Free one: it is the only free port, so it comes back.
	freed := conns[0].LocalAddr().(*net.UDPAddr).AddrPort().Port()
	conns[0].Close()
	conns = conns[1:]
	c, err := p.Listen()
	if err != nil {
		t.Fatalf("Listen after free: %v", err)
	}
	conns = append(conns, c)
	if got := c.LocalAddr().(*net.UDPAddr).AddrPort().Port(); got != freed {
		t.Errorf("Listen after free gave %d, want %d", got, freed)
	}
}

func TestPortsRotatingCursor(t *testing.T) {
	p, err := NewPorts(loopback, 41200, 41299)
	if err != nil {
		t.Fatal(err)
	}
	a, err := p.Listen()
	if err != nil {
		t.Fatal(err)
	}
	pa := a.LocalAddr().(*net.UDPAddr).AddrPort().Port()
	a.Close()
	b, err := p.Listen()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if pb := b.LocalAddr().(*net.UDPAddr).AddrPort().Port(); pb == pa {
		t.Errorf("just-freed port %d reused at once", pa)
	}
}
