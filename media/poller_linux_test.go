package media

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// pollerIdle waits until every loop of p has stopped (no socket left).
func pollerIdle(t *testing.T, p *poller) {
	t.Helper()
	waitFor(t, "the poller loops to stop", func() bool {
		for _, l := range p.loops {
			l.mu.Lock()
			running := l.running
			l.mu.Unlock()
			if running {
				return false
			}
		}
		return true
	})
}

// epollPorts returns Ports of the epoll mode with a poller of its own.
func epollPorts(t *testing.T, low, high, loops int) *Ports {
	t.Helper()
	p, err := NewPorts(loopback, low, high)
	if err != nil {
		t.Fatal(err)
	}
	if p.poller = newOSPoller(loops); p.poller == nil {
		t.Skip("epoll unavailable")
	}
	return p
}

// Many sockets on few loops: each session receives exactly its own packets,
// and the loops stop once the last session is closed.
func TestPollerManySockets(t *testing.T) {
	checkLeaks(t)
	const n, packets = 64, 20
	ports := epollPorts(t, 41500, 41799, 2)
	peer := listen(t)
	defer peer.Close()
	sessions := make([]*Session, n)
	for i := range sessions {
		sessions[i] = newTestSession(t, ports, SessionConfig{Timeout: -1})
		sessions[i].SetRemote(addrOf(peer), PCMU, 0)
		sessions[i].Start(context.Background())
	}
	for seq := range packets {
		for _, s := range sessions {
			sendRTP(t, peer, s.LocalAddr(), 0, uint16(seq))
		}
	}
	for i, s := range sessions {
		waitFor(t, "every packet", func() bool { return s.Stats().PacketsIn == packets })
		if st := s.Stats(); st.Lost != 0 || st.Garbage != 0 || st.Strangers != 0 {
			t.Errorf("session %d: %+v", i, st)
		}
	}
	for _, s := range sessions {
		s.Close()
	}
	pollerIdle(t, ports.poller)
}

// Sessions closed while packets pour in and music on hold goes out: no
// panic, Close returns, Done is closed, and the port is free again when Close
// returns (the fd is closed).
func TestPollerCloseWhileReceiving(t *testing.T) {
	checkLeaks(t)
	const n = 16
	ports := epollPorts(t, 41800, 41999, 2)
	sched := NewScheduler(2)
	defer sched.Close()
	sink := listen(t)
	defer sink.Close()
	moh := Tone("moh", []float64{440}, time.Second, 0.2)
	sessions := make([]*Session, n)
	for i := range sessions {
		// Probation 1: each session sees every 16th packet of a source, never in sequence.
		sessions[i] = newTestSession(t, ports, SessionConfig{Scheduler: sched, Timeout: -1, Probation: 1})
		sessions[i].SetRemote(addrOf(sink), PCMU, 0)
		sessions[i].Start(context.Background())
		sessions[i].Loop(moh)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 2 {
		peer := listen(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer peer.Close()
			src := newRTPSource(t, 0, uint32(i), make([]byte, 160))
			for {
				for _, s := range sessions {
					select {
					case <-stop:
						return
					default:
					}
					_, _ = peer.WriteToUDPAddrPort(src.next(), s.LocalAddr())
				}
			}
		}()
	}
	waitFor(t, "packets at every session", func() bool {
		for _, s := range sessions {
			if s.Stats().PacketsIn == 0 {
				return false
			}
		}
		return true
	})
	for i, s := range sessions {
		closed := make(chan struct{})
		go func() { s.Close(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(waitLong):
			t.Fatalf("session %d: Close hangs", i)
		}
		select {
		case <-s.Done():
		default:
			t.Fatalf("session %d: Done open after Close", i)
		}
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(s.LocalAddr()))
		if err != nil {
			t.Fatalf("session %d: port not free after Close: %v", i, err)
		}
		c.Close()
	}
	close(stop)
	wg.Wait()
	pollerIdle(t, ports.poller)
}

// One receive (recvmmsg and handlePacket) and one raw send allocate nothing.
func TestPollerZeroAllocs(t *testing.T) {
	checkLeaks(t)
	ports := epollPorts(t, 41300, 41319, 1)
	a := newTestSession(t, ports, SessionConfig{Timeout: -1})
	defer a.Close()
	b := newTestSession(t, ports, SessionConfig{Timeout: -1, Probation: 1}) // not started: this test reads it
	defer b.Close()
	src := newRTPSource(t, 0, 0x1234, make([]byte, 160))
	rx := newRecvBatch()
	now := time.Now()
	round := func() {
		if err := a.raw.sendTo(src.next(), b.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		rx.read(b.raw, now)
	}
	round()
	if allocs := testing.AllocsPerRun(1000, round); allocs != 0 {
		t.Errorf("%v allocs per packet sent and received", allocs)
	}
	if st := b.Stats(); st.PacketsIn != 1002 { // AllocsPerRun runs once more to warm up
		t.Errorf("received %d of 1002", st.PacketsIn)
	}
}

// IPv6: two sessions on ::1 exchange audio.
func TestPollerIPv6(t *testing.T) {
	checkLeaks(t)
	c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	c.Close()
	ports, err := NewPorts(netip.IPv6Loopback(), 41300, 41319)
	if err != nil {
		t.Fatal(err)
	}
	if ports.poller = newOSPoller(1); ports.poller == nil {
		t.Skip("epoll unavailable")
	}
	sched := NewScheduler(1)
	defer sched.Close()
	a := newTestSession(t, ports, SessionConfig{Scheduler: sched, Timeout: -1})
	defer a.Close()
	b := newTestSession(t, ports, SessionConfig{Scheduler: sched, Timeout: -1})
	defer b.Close()
	a.SetRemote(b.LocalAddr(), PCMU, 0)
	b.SetRemote(a.LocalAddr(), PCMU, 0)
	a.Start(context.Background())
	b.Start(context.Background())
	var rec recorder
	b.SetAudioSink(rec.sink)
	<-a.Play(Tone("t", []float64{1000}, 100*time.Millisecond, 0.3))
	waitFor(t, "5 packets over IPv6", func() bool { return len(rec.snapshot()) >= 5 })
	if st := a.Stats(); st.SendErrors != 0 {
		t.Errorf("a: %+v", st)
	}
}
