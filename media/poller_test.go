package media

import (
	"context"
	"errors"
	"net"
	"testing"
)

// The environment switch is read by NewPorts: "portable" turns the poller off.
func TestPollerEnvSwitch(t *testing.T) {
	t.Setenv(PollerEnv, ModePortable)
	p, err := NewPorts(loopback, 41300, 41309)
	if err != nil {
		t.Fatal(err)
	}
	if p.Mode() != ModePortable {
		t.Fatalf("%s=%s: mode %s", PollerEnv, ModePortable, p.Mode())
	}
	s, err := p.NewSession(SessionConfig{Timeout: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.conn == nil || s.raw != nil {
		t.Fatal("portable mode: the session has no net.UDPConn")
	}

	t.Setenv(PollerEnv, "")
	p, err = NewPorts(loopback, 41300, 41309)
	if err != nil {
		t.Fatal(err)
	}
	want := ModePortable
	if newOSPoller(1) != nil {
		want = ModeEpoll
	}
	if p.Mode() != want {
		t.Fatalf("%s unset: mode %s, want %s", PollerEnv, p.Mode(), want)
	}
}

// NewSession takes the ports in turn in either mode, returns ErrNoPorts when
// all are taken, and a closed session's port comes back.
func TestPortsNewSessionExhausted(t *testing.T) { forModes(t, testPortsNewSessionExhausted) }

func testPortsNewSessionExhausted(t *testing.T, mode *Ports) {
	checkLeaks(t)
	p, err := NewPorts(loopback, 41320, 41329) // 5 even ports
	if err != nil {
		t.Fatal(err)
	}
	p.poller = mode.poller
	var sessions []*Session
	defer func() {
		for _, s := range sessions {
			s.Close()
		}
	}()
	seen := map[uint16]bool{}
	for {
		s, err := p.NewSession(SessionConfig{Timeout: -1})
		if errors.Is(err, ErrNoPorts) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		sessions = append(sessions, s)
		s.Start(context.Background())
		port := s.LocalAddr().Port()
		if port%2 != 0 || port < 41320 || port > 41329 || seen[port] {
			t.Fatalf("NewSession gave port %d (seen before: %v)", port, seen[port])
		}
		seen[port] = true
		if len(sessions) > p.Size() {
			t.Fatal("more sessions than ports")
		}
	}
	if len(sessions) == 0 {
		t.Skip("all test ports busy")
	}
	// Close one: its socket is closed when Close returns, so its port,
	// the only free one, comes back at once.
	freed := sessions[0].LocalAddr().Port()
	sessions[0].Close()
	sessions = sessions[1:]
	s, err := p.NewSession(SessionConfig{Timeout: -1})
	if err != nil {
		t.Fatalf("NewSession after Close: %v", err)
	}
	sessions = append(sessions, s)
	if got := s.LocalAddr().Port(); got != freed {
		t.Errorf("NewSession after Close gave %d, want %d", got, freed)
	}
}

// Listen gives a plain net.UDPConn whatever the mode (loadtest and the
// tests' peers use it).
func TestPortsListenInEpollMode(t *testing.T) {
	p := testEpollPorts()
	if p == nil {
		t.Skip("no epoll mode on this system")
	}
	c, err := p.Listen()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.LocalAddr().(*net.UDPAddr); !ok {
		t.Fatalf("local address %v", c.LocalAddr())
	}
}
