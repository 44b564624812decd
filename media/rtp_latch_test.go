package media

import (
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtp"
)

var (
	natPrivate = netip.MustParseAddrPort("10.1.2.3:4000")    // the SDP of a phone behind a NAT
	natPublic  = netip.MustParseAddrPort("203.0.113.7:6100") // where its packets really come from
	natSignal  = netip.MustParseAddr("203.0.113.7")          // its SIP source
	neighbour  = netip.MustParseAddrPort("203.0.113.7:6200") // another phone behind the same NAT
)

// latchSession is a socketless session whose SDP says remote, fed by handlePacket.
func latchSession(cfg SessionConfig, remote netip.AddrPort) (*Session, *int) {
	cfg.Timeout = -1
	s := NewSession(cfg)
	s.SetRemote(remote, PCMU, 101)
	var sunk int
	s.SetAudioSink(func(*rtp.Packet, Codec, time.Time) { sunk++ })
	return s, &sunk
}

// feed sends n audio packets of ssrc from src, sequence numbers from seq on, at t.
func feed(t *testing.T, s *Session, src netip.AddrPort, ssrc uint32, seq uint16, n int, at time.Time) {
	t.Helper()
	for i := range n {
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: seq + uint16(i), Timestamp: uint32(i) * FrameSamples, SSRC: ssrc}, Payload: make([]byte, 160)}
		b, err := p.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		s.handlePacket(b, src, at)
	}
}

func latchedTo(s *Session) netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.latched
}

// A stranger who sends first, and keeps sending in sequence, never takes the
// call; the caller who sends later from the SDP address is latched at once.
func TestLatchStrangerFirst(t *testing.T) {
	s, sunk := latchSession(SessionConfig{}, peerAddr)
	t0 := time.Unix(100, 0)
	feed(t, s, strangerAddr, 0x666, 1, 50, t0)
	if st := s.Stats(); st.Strangers != 50 || st.PacketsIn != 0 || st.Probation != 0 || latchedTo(s).IsValid() {
		t.Fatalf("after the stranger: latched %v, stats %+v", latchedTo(s), st)
	}
	feed(t, s, peerAddr, 0x1234, 7, 1, t0)
	if got := latchedTo(s); got != peerAddr {
		t.Fatalf("latched %v, want the SDP address %v", got, peerAddr)
	}
	feed(t, s, strangerAddr, 0x666, 51, 10, t0)
	feed(t, s, peerAddr, 0x1234, 8, 9, t0)
	if st := s.Stats(); st.PacketsIn != 10 || st.Strangers != 60 || *sunk != 10 {
		t.Fatalf("stats %+v, sink %d; want the caller's 10 packets only", st, *sunk)
	}
}

// Behind a NAT: the SDP has a private address, packets come from the
// signalling's public address on another port. They are latched after the
// probation; a broken sequence starts it again.
func TestLatchNATProbation(t *testing.T) {
	s, sunk := latchSession(SessionConfig{}, natPrivate)
	t0 := time.Unix(100, 0)
	feed(t, s, natPublic, 1, 10, 3, t0)
	if st := s.Stats(); st.Strangers != 3 || latchedTo(s).IsValid() {
		t.Fatalf("public address latched without AllowSource: %+v", st)
	}
	s.AllowSource(netip.AddrFrom16(natSignal.As16())) // v4-mapped, as sipgo may give it
	feed(t, s, natPublic, 1, 20, 2, t0)
	feed(t, s, natPublic, 1, 30, 2, t0) // out of sequence: probation restarts
	if st := s.Stats(); st.Probation != 4 || st.PacketsIn != 0 {
		t.Fatalf("stats %+v", st)
	}
	feed(t, s, natPublic, 1, 32, 1, t0)
	if got := latchedTo(s); got != natPublic {
		t.Fatalf("latched %v, want %v", got, natPublic)
	}
	if st := s.Stats(); st.PacketsIn != 1 || *sunk != 1 {
		t.Fatalf("stats %+v", st)
	}
	// Another source behind the same NAT is refused while the latched one talks.
	feed(t, s, neighbour, 2, 1, 10, t0.Add(time.Second))
	if st := s.Stats(); st.Strangers != 13 || latchedTo(s) != natPublic {
		t.Fatalf("neighbour: latched %v, stats %+v", latchedTo(s), st)
	}
}

// Silence of the latched source frees the latch for a source that passes
// probation (a phone whose NAT binding changed); not before.
func TestLatchRelatchAfterSilence(t *testing.T) {
	s, _ := latchSession(SessionConfig{RelatchSilence: 2 * time.Second}, natPrivate)
	s.AllowSource(natSignal)
	t0 := time.Unix(100, 0)
	feed(t, s, natPublic, 1, 1, 3, t0)
	if latchedTo(s) != natPublic {
		t.Fatal("not latched")
	}
	feed(t, s, neighbour, 2, 1, 5, t0.Add(1900*time.Millisecond))
	if latchedTo(s) != natPublic {
		t.Fatal("re-latched before the silence")
	}
	feed(t, s, neighbour, 2, 100, 2, t0.Add(2100*time.Millisecond))
	if latchedTo(s) != natPublic {
		t.Fatal("re-latched without probation")
	}
	feed(t, s, neighbour, 2, 102, 1, t0.Add(2100*time.Millisecond))
	if latchedTo(s) != neighbour {
		t.Fatalf("latched %v after the silence and probation, want %v", latchedTo(s), neighbour)
	}
	// The old source is now the stranger.
	before := s.Stats().Strangers
	feed(t, s, natPublic, 1, 4, 1, t0.Add(2200*time.Millisecond))
	if s.Stats().Strangers != before+1 {
		t.Fatal("old source accepted")
	}
}

// With silence re-latching off, only a new SDP (re-INVITE) lets another port
// take over, for a window; a new SDP address resets the latch outright.
func TestLatchRelatchAfterNewSDP(t *testing.T) {
	s, _ := latchSession(SessionConfig{RelatchSilence: -1}, natPrivate)
	s.AllowSource(natSignal)
	t0 := time.Now() // SetRemote's window is measured on the session's clock
	feed(t, s, natPublic, 1, 1, 3, t0)
	feed(t, s, neighbour, 2, 1, 5, t0.Add(time.Hour))
	if latchedTo(s) != natPublic {
		t.Fatal("re-latched on silence although disabled")
	}
	s.SetRemote(natPrivate, PCMU, 101) // re-INVITE, same SDP address
	if latchedTo(s) != natPublic {
		t.Fatal("latch dropped by a re-INVITE with the same address")
	}
	feed(t, s, neighbour, 2, 50, 3, time.Now())
	if latchedTo(s) != neighbour {
		t.Fatalf("latched %v after the re-INVITE, want %v", latchedTo(s), neighbour)
	}
	feed(t, s, natPublic, 1, 4, 3, time.Now().Add(DefaultRelatchSilence+time.Second))
	if latchedTo(s) != neighbour {
		t.Fatal("window still open long after the re-INVITE")
	}
	moved := netip.MustParseAddrPort("198.51.100.9:7000")
	s.SetRemote(moved, PCMU, 101) // re-INVITE to a new address: the old one is refused
	if latchedTo(s).IsValid() {
		t.Fatal("latch kept across an address change")
	}
	feed(t, s, strangerAddr, 3, 1, 5, time.Now())
	if latchedTo(s).IsValid() {
		t.Fatal("a stranger latched after the SDP moved")
	}
	feed(t, s, moved, 4, 1, 1, time.Now())
	if latchedTo(s) != moved {
		t.Fatalf("latched %v, want the new SDP address", latchedTo(s))
	}
}

// AnyAddress: any address may be latched, after probation.
func TestLatchAnyAddress(t *testing.T) {
	s, _ := latchSession(SessionConfig{AnyAddress: true}, peerAddr)
	feed(t, s, strangerAddr, 1, 1, 2, time.Unix(1, 0))
	if latchedTo(s).IsValid() {
		t.Fatal("latched before probation")
	}
	feed(t, s, strangerAddr, 1, 3, 1, time.Unix(1, 0))
	if latchedTo(s) != strangerAddr {
		t.Fatal("not latched after probation")
	}
}

// The probation path allocates nothing either.
func TestLatchProbationZeroAllocs(t *testing.T) {
	s, _ := latchSession(SessionConfig{Probation: 1 << 30}, natPrivate)
	s.AllowSource(natSignal)
	src := newRTPSource(t, 0, 0x99, make([]byte, 160))
	now := time.Unix(1, 0)
	if a := testing.AllocsPerRun(1000, func() { s.handlePacket(src.next(), natPublic, now) }); a != 0 {
		t.Errorf("probation packet: %v allocs", a)
	}
	if st := s.Stats(); st.Probation != 1001 {
		t.Errorf("stats %+v", st)
	}
}

// SetSending(false) (a sendonly or inactive SDP) stops what we send; the
// playback still advances, and SetSending(true) resumes.
func TestSessionSendingOff(t *testing.T) { forModes(t, testSessionSendingOff) }

func testSessionSendingOff(t *testing.T, ports *Ports) {
	s, done := senderSession(t, ports)
	defer done()
	s.Loop(Tone("moh", []float64{440}, time.Second, 0.3))
	d := time.Now()
	tick := func(n int) {
		for range n {
			d = d.Add(FrameDuration)
			s.tick(d)
		}
	}
	s.SetSending(false)
	tick(50)
	if err := s.SendDTMF('5', 0); err != nil {
		t.Fatal(err)
	}
	tick(20)
	if st := s.Stats(); st.PacketsOut != 0 {
		t.Fatalf("sent %d packets while the remote is sendonly", st.PacketsOut)
	}
	s.SetSending(true)
	tick(10)
	if st := s.Stats(); st.PacketsOut != 10 {
		t.Fatalf("sent %d packets after SetSending(true), want 10", st.PacketsOut)
	}
}
