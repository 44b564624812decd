package media

import (
	"context"
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtp"
)

var (
	peerAddr     = netip.MustParseAddrPort("192.0.2.10:20000")
	strangerAddr = netip.MustParseAddrPort("192.0.2.66:30000")
)

// socketless returns a session for driving handlePacket without a socket.
func socketless(dtmfPT uint8) *Session {
	s := NewSession(SessionConfig{Timeout: -1})
	s.SetRemote(peerAddr, PCMU, dtmfPT)
	return s
}

func marshal(tb testing.TB, pt uint8, seq uint16, ts uint32, payload []byte) []byte {
	tb.Helper()
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: seq, Timestamp: ts, SSRC: 0x1234}, Payload: payload}
	b, err := p.Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// rtpSource is a test sender's packet, rewritten in place: next advances the
// sequence number and timestamp and marshals the header again with pion/rtp
// (allocation-free), leaving the payload where it is.
type rtpSource struct {
	h       rtp.Header
	pkt     []byte
	payload []byte // the payload inside pkt
}

func newRTPSource(tb testing.TB, pt uint8, ssrc uint32, payload []byte) *rtpSource {
	tb.Helper()
	s := &rtpSource{h: rtp.Header{Version: 2, PayloadType: pt, SSRC: ssrc}}
	var err error
	if s.pkt, err = (&rtp.Packet{Header: s.h, Payload: payload}).Marshal(); err != nil {
		tb.Fatal(err)
	}
	s.payload = s.pkt[s.h.MarshalSize():]
	return s
}

func (s *rtpSource) next() []byte {
	s.h.SequenceNumber++
	s.h.Timestamp += FrameSamples
	if _, err := s.h.MarshalTo(s.pkt); err != nil {
		panic(err) // cannot happen: the header was marshalled into pkt before
	}
	return s.pkt
}

// FuzzRTPPacket feeds arbitrary datagrams to the session's receive path: it
// must never panic, and each datagram is counted exactly once as accepted,
// stranger or garbage.
func FuzzRTPPacket(f *testing.F) {
	f.Add(marshal(f, 0, 1, 160, make([]byte, 160)), false)
	f.Add(marshal(f, 101, 2, 320, []byte{1, 0x8a, 0, 160}), false)
	f.Add(marshal(f, 13, 3, 480, []byte{40}), true)
	f.Add([]byte{0x80}, false)
	f.Add([]byte{0xbf, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, false)                         // CSRC count beyond the data
	f.Add([]byte{0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xbe, 0xde, 0xff, 0xff}, false) // extension beyond the data
	f.Add([]byte{0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 200}, false)                    // padding beyond the data
	f.Fuzz(func(t *testing.T, data []byte, stranger bool) {
		s := socketless(101)
		var sunk int
		s.SetAudioSink(func(p *rtp.Packet, _ Codec, _ time.Time) { sunk += len(p.Payload) })
		now := time.Unix(1, 0)
		// Latch the peer first, then the fuzzed datagram from the peer or a stranger.
		s.handlePacket(marshal(t, 0, 1, 0, make([]byte, 160)), peerAddr, now)
		from := peerAddr
		if stranger {
			from = strangerAddr
		}
		s.handlePacket(data, from, now)
		s.handlePacket(data, from, now.Add(time.Second)) // again: duplicates and DTMF expiry paths
		st := s.Stats()
		if got := st.PacketsIn + st.Strangers + st.Probation + st.Garbage; got != 3 {
			t.Fatalf("3 datagrams counted %d times: %+v", got, st)
		}
		if st.DigitsIn > 2 {
			t.Fatalf("%d digits from one repeated packet", st.DigitsIn)
		}
	})
}

func TestReceivePathZeroAllocs(t *testing.T) {
	s := socketless(101)
	var n int
	s.SetAudioSink(func(p *rtp.Packet, _ Codec, _ time.Time) { n += len(p.Payload) })
	audio := newRTPSource(t, 0, 0x1234, make([]byte, 160))
	dtmf := newRTPSource(t, 101, 0x1234, []byte{5, 0x0a, 0, 160})
	now := time.Unix(1, 0)
	s.handlePacket(audio.next(), peerAddr, now) // latch
	if a := testing.AllocsPerRun(1000, func() { s.handlePacket(audio.next(), peerAddr, now) }); a != 0 {
		t.Errorf("audio packet: %v allocs", a)
	}
	if a := testing.AllocsPerRun(1000, func() { s.handlePacket(audio.next(), strangerAddr, now) }); a != 0 {
		t.Errorf("stranger packet: %v allocs", a)
	}
	if a := testing.AllocsPerRun(1000, func() {
		dtmf.payload[1] ^= 0x80 // alternate start/end packets of ever new events
		s.handlePacket(dtmf.next(), peerAddr, now)
	}); a != 0 {
		t.Errorf("DTMF packet: %v allocs", a)
	}
	garbage := []byte("garbage datagram")
	if a := testing.AllocsPerRun(1000, func() { s.handlePacket(garbage, peerAddr, now) }); a != 0 {
		t.Errorf("garbage: %v allocs", a)
	}
	// Drain digits so the channel does not fill (dropping is also allocation-free).
	for len(s.digits) > 0 {
		<-s.digits
	}
}

// senderSession returns a session whose sends go to a loopback socket nobody
// reads (the kernel drops what overflows); it is not started: tests call tick.
func senderSession(tb testing.TB, ports *Ports) (*Session, func()) {
	sink := listen(tb)
	s := newTestSession(tb, ports, SessionConfig{Timeout: -1})
	s.SetRemote(addrOf(sink), PCMA, 101)
	return s, func() { s.Close(); sink.Close() }
}

func addrOf(c *net.UDPConn) netip.AddrPort { return c.LocalAddr().(*net.UDPAddr).AddrPort() }

func TestSendPathZeroAllocs(t *testing.T) { forModes(t, testSendPathZeroAllocs) }

func testSendPathZeroAllocs(t *testing.T, ports *Ports) {
	s, done := senderSession(t, ports)
	defer done()
	s.Loop(Tone("moh", []float64{440}, time.Second, 0.3))
	d := time.Now()
	tick := func() { d = d.Add(FrameDuration); s.tick(d) }
	tick()
	if a := testing.AllocsPerRun(500, tick); a != 0 {
		t.Errorf("audio tick: %v allocs", a)
	}
	if st := s.Stats(); st.PacketsOut < 500 || st.SendErrors != 0 {
		t.Errorf("stats %+v", st)
	}
}

func BenchmarkPromptFrame(b *testing.B) {
	s, done := senderSession(b, testPorts())
	defer done()
	s.Loop(Tone("moh", []float64{440}, time.Second, 0.3))
	d := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		d = d.Add(FrameDuration)
		s.tick(d)
	}
	if st := s.Stats(); st.SendErrors != 0 {
		b.Fatalf("send errors: %+v", st)
	}
}

func BenchmarkReceivePacket(b *testing.B) {
	run := func(b *testing.B, src *rtpSource, from netip.AddrPort) {
		s := socketless(101)
		var n int
		s.SetAudioSink(func(p *rtp.Packet, _ Codec, _ time.Time) { n += len(p.Payload) })
		s.handlePacket(marshal(b, 0, 0, 0, make([]byte, 160)), peerAddr, time.Now()) // latch
		now := time.Now()
		b.ReportAllocs()
		for b.Loop() {
			s.handlePacket(src.next(), from, now)
			if len(s.digits) == cap(s.digits) {
				for len(s.digits) > 0 {
					<-s.digits
				}
			}
		}
	}
	b.Run("audio", func(b *testing.B) { run(b, newRTPSource(b, 0, 0x1234, make([]byte, 160)), peerAddr) })
	b.Run("dtmf", func(b *testing.B) { run(b, newRTPSource(b, 101, 0x1234, []byte{5, 0x8a, 0, 160}), peerAddr) })
	b.Run("stranger", func(b *testing.B) { run(b, newRTPSource(b, 0, 0x1234, make([]byte, 160)), strangerAddr) })
	b.Run("syscall", func(b *testing.B) {
		// sendto from a peer socket + recvfrom + handlePacket, on this goroutine.
		conn := listen(b)
		peer := listen(b)
		defer peer.Close()
		s := NewSession(SessionConfig{Conn: conn, Timeout: -1})
		defer s.Close()
		var n int
		s.SetAudioSink(func(p *rtp.Packet, _ Codec, _ time.Time) { n += len(p.Payload) })
		src := newRTPSource(b, 0, 0x1234, make([]byte, 160))
		dst := s.LocalAddr()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := peer.WriteToUDPAddrPort(src.next(), dst); err != nil {
				b.Fatal(err)
			}
			m, from, err := conn.ReadFromUDPAddrPort(s.rxBuf)
			if err != nil {
				b.Fatal(err)
			}
			s.handlePacket(s.rxBuf[:m], from, time.Now())
		}
		if st := s.Stats(); st.PacketsIn != uint64(b.N) {
			b.Fatalf("received %d of %d", st.PacketsIn, b.N)
		}
	})
}

// BenchmarkSchedulerStreams runs real sessions on loopback — half playing a
// looped prompt, half idle — on one Scheduler for a few seconds and reports
// send lateness from Stats and the process CPU use. It never asserts timing.
// Set MEDIA_SCHED_STREAMS / MEDIA_SCHED_SECONDS to change N=2000 / 3 s.
func BenchmarkSchedulerStreams(b *testing.B) {
	n := envInt("MEDIA_SCHED_STREAMS", 2000)
	secs := envInt("MEDIA_SCHED_SECONDS", 3)
	ports, err := NewPorts(loopback, 42000, 49999)
	if err != nil {
		b.Fatal(err)
	}
	sink, err := ports.Listen()
	if err != nil {
		b.Fatal(err)
	}
	defer sink.Close()
	sched := NewScheduler(0)
	defer sched.Close()
	moh := Tone("moh", []float64{440, 660}, 2*time.Second, 0.2)
	sessions := make([]*Session, 0, n)
	defer func() {
		for _, s := range sessions {
			s.Close()
		}
	}()
	ctx := context.Background()
	for i := range n {
		conn, err := ports.Listen()
		if err != nil {
			b.Fatalf("stream %d: %v", i, err)
		}
		s := NewSession(SessionConfig{Conn: conn, Scheduler: sched, Timeout: -1})
		s.SetRemote(addrOf(sink), PCMU, 101)
		s.Start(ctx)
		if i%2 == 0 {
			s.Loop(moh)
		}
		sessions = append(sessions, s)
	}
	b.ResetTimer()
	time.Sleep(500 * time.Millisecond) // warm-up
	before := sched.Stats()
	var ru0, ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	start := time.Now()
	time.Sleep(time.Duration(secs) * time.Second)
	wall := time.Since(start)
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	after := sched.Stats()

	d := after
	d.Ticks -= before.Ticks
	d.Measured -= before.Measured
	d.Skipped -= before.Skipped
	for i := range d.Buckets {
		d.Buckets[i] -= before.Buckets[i]
	}
	cpu := float64(ru1.Utime.Nano()+ru1.Stime.Nano()-ru0.Utime.Nano()-ru0.Stime.Nano()) / float64(wall.Nanoseconds()) * 100
	var out uint64
	for _, s := range sessions {
		out += s.Stats().PacketsOut
	}
	b.ReportMetric(float64(n), "streams")
	b.ReportMetric(float64(d.Ticks)/wall.Seconds(), "ticks/s")
	b.ReportMetric(float64(d.LatenessQuantile(0.5).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(d.LatenessQuantile(0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(after.MaxLateness.Microseconds())/1000, "max-ms")
	b.ReportMetric(float64(d.Skipped), "skipped")
	b.ReportMetric(cpu, "cpu-%")
	b.Logf("%d streams (%d playing) for %v: %d ticks, %d packets sent in total, lateness buckets %v (≤0.5,1,2,5,10,20,+Inf ms), skipped %d, process CPU %.1f%% of one core",
		n, (n+1)/2, wall.Round(time.Millisecond), d.Ticks, out, d.Buckets, d.Skipped, cpu)
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
