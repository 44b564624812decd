package media

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"go.uber.org/goleak"
)

// testPorts gives the test peers' sockets (listen) and the portable mode's
// sessions; testEpollPorts the epoll mode's sessions (nil where there is no
// epoll). Both ignore HOTLINE_MEDIA_POLLER: tests choose the mode.
var (
	testPorts      = sync.OnceValue(func() *Ports { return newTestPorts(40000, 40999, ModePortable) })
	testEpollPorts = sync.OnceValue(func() *Ports { return newTestPorts(41400, 41999, ModeEpoll) })
)

// newTestPorts returns Ports in mode, or nil if this system lacks it.
func newTestPorts(low, high int, mode string) *Ports {
	p, err := NewPorts(loopback, low, high)
	if err != nil {
		panic(err)
	}
	p.poller = nil
	if mode == ModeEpoll {
		if p.poller = newOSPoller(2); p.poller == nil {
			return nil
		}
	}
	return p
}

// forModes runs test as a subtest in each receive mode (ModePortable,
// ModeEpoll), with Ports that make sessions in that mode.
func forModes(t *testing.T, test func(t *testing.T, ports *Ports)) {
	t.Helper()
	for _, m := range []struct {
		mode  string
		ports func() *Ports
	}{{ModePortable, testPorts}, {ModeEpoll, testEpollPorts}} {
		t.Run(m.mode, func(t *testing.T) {
			p := m.ports()
			if p == nil {
				t.Skipf("no %s mode on this system", m.mode)
			}
			test(t, p)
		})
	}
}

// newTestSession returns a session on the next port of ports, in its mode,
// closed at the end of the test. When other processes hold every port of
// the range, the test is skipped.
func newTestSession(tb testing.TB, ports *Ports, cfg SessionConfig) *Session {
	tb.Helper()
	s, err := ports.NewSession(cfg)
	if errors.Is(err, ErrNoPorts) {
		tb.Skipf("test ports busy: %v", err)
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func listen(t testing.TB) *net.UDPConn {
	t.Helper()
	c, err := testPorts().Listen()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// recorder collects what a session's audio sink sees.
type recorder struct {
	mu   sync.Mutex
	pkts []rtp.Packet // deep copies
}

func (r *recorder) sink(p *rtp.Packet, _ Codec, _ time.Time) {
	c := p.Clone()
	r.mu.Lock()
	r.pkts = append(r.pkts, *c)
	r.mu.Unlock()
}

func (r *recorder) snapshot() []rtp.Packet {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.pkts)
}

// waitLong is how long a test waits for something that must happen: long
// enough for a machine whose CPUs are busy with other work; polling returns
// as soon as it happened.
const waitLong = 10 * time.Second

// waitFor polls cond until it holds, failing the test after waitLong.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// pair starts two sessions A and B on loopback pointing at each other.
func pair(t *testing.T, ports *Ports, codec Codec, dtmfPT uint8) (a, b *Session, sched *Scheduler) {
	t.Helper()
	sched = NewScheduler(2)
	a = newTestSession(t, ports, SessionConfig{Scheduler: sched})
	b = newTestSession(t, ports, SessionConfig{Scheduler: sched})
	a.SetRemote(b.LocalAddr(), codec, dtmfPT)
	b.SetRemote(a.LocalAddr(), codec, dtmfPT)
	ctx, cancel := context.WithCancel(context.Background())
	a.Start(ctx)
	b.Start(ctx)
	t.Cleanup(func() {
		cancel()
		a.Close()
		b.Close()
		sched.Close()
	})
	return a, b, sched
}

func TestSessionPlayLoopback(t *testing.T) { forModes(t, testSessionPlayLoopback) }

func testSessionPlayLoopback(t *testing.T, ports *Ports) {
	checkLeaks(t)
	a, b, sched := pair(t, ports, PCMA, 101)
	var rec recorder
	b.SetAudioSink(rec.sink)

	tone := Tone("t", []float64{425}, 200*time.Millisecond, 0.3) // 10 frames
	select {
	case <-a.Play(tone):
	case <-time.After(waitLong):
		t.Fatal("Play did not complete")
	}
	waitFor(t, "10 packets", func() bool { return len(rec.snapshot()) >= 10 })
	time.Sleep(100 * time.Millisecond) // a gap, then a second talkspurt
	<-a.Play(tone)
	waitFor(t, "20 packets", func() bool { return len(rec.snapshot()) >= 20 })

	pkts := rec.snapshot()
	if len(pkts) != 20 {
		t.Fatalf("got %d packets, want 20", len(pkts))
	}
	frames := tone.Frames(PCMA)
	for i, p := range pkts {
		if p.PayloadType != uint8(PCMA) || p.SSRC != a.SSRC() || p.Version != 2 {
			t.Errorf("packet %d: PT %d SSRC %x", i, p.PayloadType, p.SSRC)
		}
		if string(p.Payload) != string(frames[i%10]) {
			t.Errorf("packet %d: payload differs from prompt frame %d", i, i%10)
		}
		if i == 0 {
			if !p.Marker {
				t.Error("packet 0: no marker")
			}
			continue
		}
		prev := pkts[i-1]
		if p.SequenceNumber != prev.SequenceNumber+1 {
			t.Errorf("packet %d: seq %d after %d", i, p.SequenceNumber, prev.SequenceNumber)
		}
		// Timestamps follow real time in whole frames: +160 within a
		// talkspurt, more across the 100 ms gap — or wherever a busy
		// machine made the scheduler skip a tick (sched.Stats().Skipped);
		// a step other than +160 starts a talkspurt (marker).
		dts := p.Timestamp - prev.Timestamp
		if dts < FrameSamples || dts%FrameSamples != 0 {
			t.Errorf("packet %d: timestamp +%d, want a positive multiple of 160", i, dts)
		}
		if i == 10 && dts == FrameSamples {
			t.Errorf("packet 10: timestamp +160 across a 100 ms gap")
		}
		if want := i == 10 || dts != FrameSamples; p.Marker != want {
			t.Errorf("packet %d: marker %v after a timestamp step of %d (scheduler skipped %d)", i, p.Marker, dts, sched.Stats().Skipped)
		}
	}
	st := b.Stats()
	if st.PacketsIn != 20 || st.Lost != 0 || st.Strangers != 0 || st.BytesIn != 20*(12+160) {
		t.Errorf("B stats %+v", st)
	}
	if st := a.Stats(); st.PacketsOut != 20 || st.BytesOut != 20*(12+160) {
		t.Errorf("A stats %+v", st)
	}
}

func TestSessionDTMFLoopback(t *testing.T) { forModes(t, testSessionDTMFLoopback) }

func testSessionDTMFLoopback(t *testing.T, ports *Ports) {
	checkLeaks(t)
	a, b, _ := pair(t, ports, PCMU, 96)
	a.Loop(Tone("moh", []float64{440}, time.Second, 0.2)) // audio resumes between events
	const digits = "0123456789*#"
	for _, d := range digits {
		if err := a.SendDTMF(d, 40*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	var got []rune
	timeout := time.After(waitLong)
	for len(got) < len(digits) {
		select {
		case d := <-b.Digits():
			got = append(got, d)
		case <-timeout:
			t.Fatalf("got %q before timeout", string(got))
		}
	}
	select { // nothing more: each digit exactly once, even after the missing-end timeout
	case d := <-b.Digits():
		t.Fatalf("extra digit %q after %q", d, string(got))
	case <-time.After(DTMFMissingEnd + 100*time.Millisecond):
	}
	if string(got) != digits {
		t.Errorf("digits %q, want %q", string(got), digits)
	}
	st := b.Stats()
	// 40 ms = 2 frames + 2 end repeats = 4 packets per digit.
	if st.DTMFIn != 4*uint64(len(digits)) || st.DigitsIn != uint64(len(digits)) || st.DigitsDropped != 0 || st.UnknownPT != 0 {
		t.Errorf("B stats %+v", st)
	}
	if err := a.SendDTMF('x', 0); !errors.Is(err, ErrBadDigit) {
		t.Errorf("SendDTMF('x') = %v", err)
	}
}

func TestSessionDTMFNotNegotiated(t *testing.T) { forModes(t, testSessionDTMFNotNegotiated) }

func testSessionDTMFNotNegotiated(t *testing.T, ports *Ports) {
	checkLeaks(t)
	a, _, _ := pair(t, ports, PCMU, 0)
	if err := a.SendDTMF('1', 0); !errors.Is(err, ErrNoDTMF) {
		t.Errorf("SendDTMF without dtmfPT = %v", err)
	}
}

// sendRTP sends one valid RTP packet from conn to dst.
func sendRTP(t *testing.T, conn *net.UDPConn, dst netip.AddrPort, pt uint8, seq uint16) {
	t.Helper()
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: seq, Timestamp: uint32(seq) * 160, SSRC: 0xbad}, Payload: make([]byte, 160)}
	buf, _ := p.Marshal()
	if _, err := conn.WriteToUDPAddrPort(buf, dst); err != nil {
		t.Fatal(err)
	}
}

func TestSessionLatching(t *testing.T) { forModes(t, testSessionLatching) }

func testSessionLatching(t *testing.T, ports *Ports) {
	checkLeaks(t)
	sched := NewScheduler(1)
	defer sched.Close()
	// A's SDP says the peer is at a dead address; the peer (B) really sends
	// from its own socket, as behind a NAT.
	a := newTestSession(t, ports, SessionConfig{Scheduler: sched})
	defer a.Close()
	peer := listen(t)
	defer peer.Close()
	stranger := listen(t)
	defer stranger.Close()
	a.SetRemote(netip.MustParseAddrPort("127.0.0.1:9"), PCMU, 101)
	var rec recorder
	a.SetAudioSink(rec.sink)
	a.Start(context.Background())

	// Another port on the SDP's address: latched after 3 packets in sequence.
	sendRTP(t, peer, a.LocalAddr(), 0, 1)
	sendRTP(t, peer, a.LocalAddr(), 0, 2)
	waitFor(t, "probation", func() bool { return a.Stats().Probation == 2 })
	if st := a.Stats(); st.PacketsIn != 0 {
		t.Fatalf("accepted before probation: %+v", st)
	}
	sendRTP(t, peer, a.LocalAddr(), 0, 3)
	waitFor(t, "latch", func() bool { return a.Stats().PacketsIn == 1 })
	sendRTP(t, stranger, a.LocalAddr(), 0, 100)
	sendRTP(t, stranger, a.LocalAddr(), 0, 101)
	if _, err := stranger.WriteToUDPAddrPort([]byte("hello, not RTP"), a.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	sendRTP(t, peer, a.LocalAddr(), 13, 4) // comfort noise: accepted silently
	sendRTP(t, peer, a.LocalAddr(), 99, 5) // unexpected PT: counted
	sendRTP(t, peer, a.LocalAddr(), 0, 7)  // seq 6 lost
	waitFor(t, "all packets", func() bool {
		st := a.Stats()
		return st.PacketsIn == 4 && st.Strangers == 2 && st.Garbage == 1
	})
	st := a.Stats()
	if st.UnknownPT != 1 || st.Lost != 1 {
		t.Errorf("stats %+v", st)
	}
	if n := len(rec.snapshot()); n != 2 {
		t.Errorf("sink saw %d packets, want 2 (PCMU from the peer only)", n)
	}

	// A now sends to the latched source, not to the SDP address.
	<-a.Play(Tone("t", []float64{1000}, 60*time.Millisecond, 0.3))
	buf := make([]byte, 1500)
	peer.SetReadDeadline(time.Now().Add(waitLong))
	n, from, err := peer.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("peer received nothing: %v", err)
	}
	var p rtp.Packet
	if err := p.Unmarshal(buf[:n]); err != nil || from != a.LocalAddr() || !p.Marker {
		t.Errorf("peer got %v from %v (%v)", p.Header, from, err)
	}
}

func TestSessionInactivityTimeout(t *testing.T) { forModes(t, testSessionInactivityTimeout) }

func testSessionInactivityTimeout(t *testing.T, ports *Ports) {
	checkLeaks(t)
	sched := NewScheduler(1)
	defer sched.Close()
	s := newTestSession(t, ports, SessionConfig{Scheduler: sched, Timeout: 200 * time.Millisecond})
	s.SetRemote(netip.MustParseAddrPort("127.0.0.1:9"), PCMU, 0)
	start := time.Now()
	s.Start(context.Background())
	playing := s.Play(Tone("long", []float64{400}, 10*time.Second, 0.1))
	select {
	case <-s.Done():
	case <-time.After(waitLong):
		t.Fatal("no timeout")
	}
	if el := time.Since(start); el < 200*time.Millisecond {
		t.Errorf("timed out after %v", el)
	}
	if !errors.Is(s.Err(), ErrRTPTimeout) {
		t.Errorf("Err() = %v", s.Err())
	}
	select {
	case <-playing:
	default:
		t.Error("playback channel not closed at session end")
	}
	if err := s.SendDTMF('1', 0); !errors.Is(err, ErrSessionEnded) && !errors.Is(err, ErrNoDTMF) {
		t.Errorf("SendDTMF after end = %v", err)
	}
	select {
	case <-s.Play(Tone("t", []float64{400}, time.Second, 0.1)):
	default:
		t.Error("Play after end did not complete at once")
	}
	s.Close()
	if !errors.Is(s.Err(), ErrRTPTimeout) {
		t.Errorf("Err() after Close = %v", s.Err())
	}
}

func TestSessionTimeoutDisabledAndContextCause(t *testing.T) {
	forModes(t, testSessionTimeoutDisabledAndContextCause)
}

func testSessionTimeoutDisabledAndContextCause(t *testing.T, ports *Ports) {
	checkLeaks(t)
	sched := NewScheduler(1)
	defer sched.Close()
	s := newTestSession(t, ports, SessionConfig{Scheduler: sched, Timeout: 100 * time.Millisecond})
	s.SetInactivityTimeout(0) // e.g. on hold
	cause := errors.New("caller hung up")
	ctx, cancel := context.WithCancelCause(context.Background())
	s.Start(ctx)
	time.Sleep(250 * time.Millisecond)
	select {
	case <-s.Done():
		t.Fatalf("ended with timeout disabled: %v", s.Err())
	default:
	}
	cancel(cause)
	select {
	case <-s.Done():
	case <-time.After(waitLong):
		t.Fatal("context cancel did not end the session")
	}
	if !errors.Is(s.Err(), cause) {
		t.Errorf("Err() = %v, want %v", s.Err(), cause)
	}
	s.Close()
}

func TestSessionStopPlay(t *testing.T) { forModes(t, testSessionStopPlay) }

func testSessionStopPlay(t *testing.T, ports *Ports) {
	checkLeaks(t)
	a, b, _ := pair(t, ports, PCMU, 0)
	playing := a.Play(Tone("long", []float64{400}, 5*time.Second, 0.1))
	waitFor(t, "some audio", func() bool { return b.Stats().PacketsIn >= 5 })
	a.StopPlay()
	stoppedAt := a.Stats().PacketsOut
	select {
	case <-playing:
	case <-time.After(waitLong):
		t.Fatal("playback channel not closed by StopPlay")
	}
	time.Sleep(150 * time.Millisecond)
	if extra := a.Stats().PacketsOut - stoppedAt; extra > 2 {
		t.Errorf("%d packets sent after StopPlay", extra)
	}
	// A replaced playback closes its channel too.
	first := a.Play(Tone("x", []float64{400}, time.Second, 0.1))
	second := a.Play(Tone("y", []float64{400}, 40*time.Millisecond, 0.1))
	select {
	case <-first:
	default:
		t.Error("replaced playback not closed")
	}
	<-second
}

func TestSessionPlayWithoutRemote(t *testing.T) { forModes(t, testSessionPlayWithoutRemote) }

func testSessionPlayWithoutRemote(t *testing.T, ports *Ports) {
	checkLeaks(t)
	sched := NewScheduler(1)
	defer sched.Close()
	s := newTestSession(t, ports, SessionConfig{Scheduler: sched})
	s.Start(context.Background())
	select {
	case <-s.Play(Tone("t", []float64{400}, 60*time.Millisecond, 0.1)):
	case <-time.After(waitLong):
		t.Fatal("Play without remote did not complete")
	}
	select {
	case <-s.Play(): // nothing to play
	default:
		t.Error("empty Play did not complete at once")
	}
	s.Loop(nil) // no-op
	if st := s.Stats(); st.PacketsOut != 0 {
		t.Errorf("sent %d packets with no remote", st.PacketsOut)
	}
	s.Close()
	s.Close() // idempotent
	if s.Err() != nil {
		t.Errorf("Err() after Close = %v", s.Err())
	}
}

func TestSessionCloseWithoutStart(t *testing.T) { forModes(t, testSessionCloseWithoutStart) }

func testSessionCloseWithoutStart(t *testing.T, ports *Ports) {
	checkLeaks(t)
	s := newTestSession(t, ports, SessionConfig{})
	pending := s.Play(Tone("t", []float64{400}, time.Second, 0.1))
	s.Close()
	<-s.Done()
	<-pending
	s.Start(context.Background()) // no-op after Close
}

// checkLeaks verifies, after every other cleanup of t, that no goroutine leaked.
func checkLeaks(t *testing.T) {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t) })
}

// A codec carried under a dynamic payload type (a=rtpmap:97 PCMU/8000) is sent with that
// number and accepted as audio when it arrives with it.
func TestSessionDynamicAudioPayloadType(t *testing.T) {
	forModes(t, testSessionDynamicAudioPayloadType)
}

func testSessionDynamicAudioPayloadType(t *testing.T, ports *Ports) {
	checkLeaks(t)
	a, b, _ := pair(t, ports, PCMU, 0)
	a.SetAudioPayloadType(97)
	b.SetAudioPayloadType(97)
	var got recorder
	b.SetAudioSink(got.sink)
	<-a.Play(Tone("t", []float64{1000}, 200*time.Millisecond, 0.5))
	waitFor(t, "audio at B", func() bool { return len(got.snapshot()) >= 5 })
	for _, p := range got.snapshot() {
		if p.PayloadType != 97 {
			t.Fatalf("B received payload type %d, want 97", p.PayloadType)
		}
	}
	if st := b.Stats(); st.UnknownPT != 0 {
		t.Fatalf("B counted %d packets of an unknown payload type", st.UnknownPT)
	}
}
