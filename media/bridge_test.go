package media

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// rtpPeer is a raw UDP endpoint on loopback standing in for a phone: it
// sends hand-built RTP and records every packet it receives.
type rtpPeer struct {
	conn *net.UDPConn
	done chan struct{}

	mu  sync.Mutex
	got []peerPacket

	// sender state for sendAudio/sendEvent
	ssrc uint32
	seq  uint16
	ts   uint32
}

type peerPacket struct {
	rtp.Packet
	at time.Time
}

func newPeer(t testing.TB) *rtpPeer {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	p := &rtpPeer{conn: conn, done: make(chan struct{}), ssrc: 0x5eed0000 + uint32(conn.LocalAddr().(*net.UDPAddr).Port), seq: 1000, ts: 7777}
	go func() {
		defer close(p.done)
		buf := make([]byte, 1500)
		for {
			n, _, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			var pkt rtp.Packet
			if pkt.Unmarshal(slices.Clone(buf[:n])) == nil {
				p.mu.Lock()
				p.got = append(p.got, peerPacket{pkt, time.Now()})
				p.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { conn.Close(); <-p.done })
	return p
}

func (p *rtpPeer) addr() netip.AddrPort { return addrOf(p.conn) }

func (p *rtpPeer) packets() []peerPacket {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.got)
}

func (p *rtpPeer) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.got)
}

func (p *rtpPeer) send(t testing.TB, dst netip.AddrPort, h rtp.Header, payload []byte) {
	t.Helper()
	h.Version = 2
	b, err := (&rtp.Packet{Header: h, Payload: payload}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.conn.WriteToUDPAddrPort(b, dst); err != nil {
		t.Fatal(err)
	}
}

// sendAudio sends one 20 ms frame in codec c, continuing the peer's stream.
func (p *rtpPeer) sendAudio(t testing.TB, dst netip.AddrPort, c Codec, frame []byte, marker bool) {
	t.Helper()
	p.send(t, dst, rtp.Header{PayloadType: uint8(c), Marker: marker, SequenceNumber: p.seq, Timestamp: p.ts, SSRC: p.ssrc}, frame)
	p.seq++
	p.ts += FrameSamples
}

// sendEvent sends an RFC 4733 event for digit: frames packets of growing
// duration, then the end packet three times, all with one timestamp.
func (p *rtpPeer) sendEvent(t testing.TB, dst netip.AddrPort, pt uint8, digit rune, frames int) {
	t.Helper()
	ev, _ := DigitEvent(digit)
	b := make([]byte, DTMFPayloadSize)
	for i := range frames + 2 {
		n := min(i+1, frames)
		DTMFEvent{Event: ev, End: i >= frames-1, Volume: 10, Duration: uint16(n * FrameSamples)}.Put(b)
		p.send(t, dst, rtp.Header{PayloadType: pt, Marker: i == 0, SequenceNumber: p.seq, Timestamp: p.ts, SSRC: p.ssrc}, b)
		p.seq++
	}
	p.ts += uint32(frames * FrameSamples)
}

// bridged returns sessions a and b, each talking to its own peer, and a
// stopped bridge between them.
func bridged(t *testing.T, ports *Ports, codecA Codec, dtmfA uint8, codecB Codec, dtmfB uint8) (a, b *Session, pa, pb *rtpPeer, br *Bridge) {
	t.Helper()
	sched := NewScheduler(2)
	pa, pb = newPeer(t), newPeer(t)
	a = newTestSession(t, ports, SessionConfig{Scheduler: sched, Timeout: -1})
	b = newTestSession(t, ports, SessionConfig{Scheduler: sched, Timeout: -1})
	a.SetRemote(pa.addr(), codecA, dtmfA)
	b.SetRemote(pb.addr(), codecB, dtmfB)
	ctx, cancel := context.WithCancel(context.Background())
	a.Start(ctx)
	b.Start(ctx)
	t.Cleanup(func() {
		cancel()
		a.Close()
		b.Close()
		sched.Close()
	})
	return a, b, pa, pb, NewBridge(a, b)
}

// toneFrames returns frames of a sine at f Hz, and the linear PCM they encode.
func toneFrames(c Codec, f float64, frames int) ([][]byte, []int16) {
	pcm := make([]int16, frames*FrameSamples)
	for i := range pcm {
		pcm[i] = int16(8000 * math.Sin(2*math.Pi*f*float64(i)/ClockRate))
	}
	out := make([][]byte, frames)
	for i := range out {
		out[i] = make([]byte, FrameSamples)
		c.Encode(out[i], pcm[i*FrameSamples:(i+1)*FrameSamples])
	}
	return out, pcm
}

// goertzel returns the power of pcm at frequency f, normalised by the total
// energy: close to 1/2 for a pure tone at f, near 0 for other frequencies.
func goertzel(pcm []int16, f float64) float64 {
	w := 2 * math.Pi * f / ClockRate
	coeff := 2 * math.Cos(w)
	var s1, s2, energy float64
	for _, v := range pcm {
		x := float64(v)
		s0 := x + coeff*s1 - s2
		s2, s1 = s1, s0
		energy += x * x
	}
	power := s1*s1 + s2*s2 - coeff*s1*s2
	if energy == 0 {
		return 0
	}
	return power / energy / float64(len(pcm))
}

func rms(pcm []int16) float64 {
	var e float64
	for _, v := range pcm {
		e += float64(v) * float64(v)
	}
	return math.Sqrt(e / float64(len(pcm)))
}

// decodeAll decodes the payloads of pkts in codec c.
func decodeAll(pkts []peerPacket, c Codec) []int16 {
	var pcm []int16
	for _, p := range pkts {
		s := make([]int16, len(p.Payload))
		c.Decode(s, p.Payload)
		pcm = append(pcm, s...)
	}
	return pcm
}

// checkStream verifies that pkts form one clean stream from ssrc in payload
// type pt: sequence numbers +1, timestamps +160, marker on the first only.
func checkStream(t *testing.T, who string, pkts []peerPacket, pt uint8, ssrc uint32) {
	t.Helper()
	for i, p := range pkts {
		if p.PayloadType != pt || p.SSRC != ssrc || p.Marker != (i == 0) {
			t.Errorf("%s packet %d: PT %d SSRC %x marker %v; want PT %d SSRC %x", who, i, p.PayloadType, p.SSRC, p.Marker, pt, ssrc)
		}
		if i > 0 {
			if d := p.SequenceNumber - pkts[i-1].SequenceNumber; d != 1 {
				t.Errorf("%s packet %d: seq +%d", who, i, d)
			}
			if d := p.Timestamp - pkts[i-1].Timestamp; d != FrameSamples {
				t.Errorf("%s packet %d: ts +%d", who, i, d)
			}
		}
	}
}

func TestBridgeRelaysTone(t *testing.T) { forModes(t, testBridgeRelaysTone) }

func testBridgeRelaysTone(t *testing.T, ports *Ports) {
	for _, tc := range []struct{ a, b Codec }{{PCMU, PCMU}, {PCMA, PCMA}, {PCMU, PCMA}, {PCMA, PCMU}} {
		t.Run(tc.a.String()+"-"+tc.b.String(), func(t *testing.T) {
			checkLeaks(t)
			a, b, pa, pb, br := bridged(t, ports, tc.a, 101, tc.b, 101)
			br.Start()
			defer br.Stop()
			const frames = 25
			fromA, pcmA := toneFrames(tc.a, 1000, frames)
			fromB, pcmB := toneFrames(tc.b, 600, frames)
			for i := range frames {
				pa.sendAudio(t, a.LocalAddr(), tc.a, fromA[i], i == 0)
				pb.sendAudio(t, b.LocalAddr(), tc.b, fromB[i], i == 0)
				time.Sleep(2 * time.Millisecond)
			}
			waitFor(t, "both tones relayed", func() bool { return pa.count() >= frames && pb.count() >= frames })
			time.Sleep(20 * time.Millisecond) // nothing more may come
			atB, atA := pb.packets(), pa.packets()
			if len(atB) != frames || len(atA) != frames {
				t.Fatalf("peer B got %d, peer A got %d packets; want %d each", len(atB), len(atA), frames)
			}
			checkStream(t, "at B", atB, uint8(tc.b), b.SSRC())
			checkStream(t, "at A", atA, uint8(tc.a), a.SSRC())

			for _, c := range []struct {
				who       string
				got, sent []int16
				f, other  float64
			}{
				{"A→B", decodeAll(atB, tc.b), pcmA, 1000, 600},
				{"B→A", decodeAll(atA, tc.a), pcmB, 600, 1000},
			} {
				on, off := goertzel(c.got, c.f), goertzel(c.got, c.other)
				ratio := rms(c.got) / rms(c.sent)
				var noise, sig float64
				for i := range c.got {
					d := float64(c.got[i]) - float64(c.sent[i])
					noise += d * d
					sig += float64(c.sent[i]) * float64(c.sent[i])
				}
				snr := 10 * math.Log10(sig/noise)
				t.Logf("%s: goertzel %.3f at %.0f Hz, %.5f at %.0f Hz, RMS ratio %.4f, SNR %.1f dB", c.who, on, c.f, off, c.other, ratio, snr)
				// Two G.711 quantisations of a -12 dBFS tone (A-law then
				// µ-law is the worst) leave about 28 dB.
				if on < 0.45 || off > 0.01 || math.Abs(ratio-1) > 0.06 || snr < 25 {
					t.Errorf("%s: the tone did not cross intact", c.who)
				}
			}
			// Byte-exact: what B's peer got is A's frames decoded and
			// re-encoded in B's law (the direct table does exactly that).
			pcm := make([]int16, FrameSamples)
			want := make([]byte, FrameSamples)
			for i, p := range atB {
				tc.a.Decode(pcm, fromA[i])
				tc.b.Encode(want, pcm)
				if string(p.Payload) != string(want) {
					t.Errorf("A→B frame %d differs from decode+encode", i)
				}
			}
			st := br.Stats()
			wantTx := uint64(0)
			if tc.a != tc.b {
				wantTx = 2 * frames
			}
			if st.AToB != frames || st.BToA != frames || st.Transcoded != wantTx || st.Dropped != 0 || st.SendErrors != 0 {
				t.Errorf("bridge stats %+v", st)
			}
		})
	}
}

// TestBridgeContinuityAcrossHold runs prompt → bridge → hold music → bridge →
// prompt on one session and checks what its peer receives is one stream:
// sequence numbers +1 throughout, timestamps always forward and never ahead
// of real time by more than a frame or so, a marker at each change, and no
// prompt packet once the bridge started.
func TestBridgeContinuityAcrossHold(t *testing.T) { forModes(t, testBridgeContinuityAcrossHold) }

func testBridgeContinuityAcrossHold(t *testing.T, ports *Ports) {
	checkLeaks(t)
	a, b, pa, pb, br := bridged(t, ports, PCMU, 101, PCMA, 96)
	prompt := Tone("prompt", []float64{440}, 5*time.Second, 0.3)
	moh := Tone("moh", []float64{300}, 5*time.Second, 0.3)
	kind := map[string]string{}
	for _, f := range prompt.Frames(PCMA) {
		kind[string(f)] = "prompt"
	}
	for _, f := range moh.Frames(PCMA) {
		kind[string(f)] = "moh"
	}
	voice, _ := toneFrames(PCMU, 1000, 20)
	talk := func(frames [][]byte) {
		for i, f := range frames {
			pa.sendAudio(t, a.LocalAddr(), PCMU, f, i == 0)
			time.Sleep(FrameDuration)
		}
	}

	playing := b.Play(prompt)
	waitFor(t, "prompt", func() bool { return pb.count() >= 5 })
	br.Start()
	select {
	case <-playing:
	default:
		t.Error("Start did not end the prompt")
	}
	// Waits are on what arrived, not on counts: on a busy machine more prompt
	// or hold music may arrive before the voice than a count would assume.
	voiceAtB := func() int {
		n := 0
		for _, p := range pb.packets() {
			if _, known := kind[string(p.Payload)]; !known {
				n++
			}
		}
		return n
	}
	talk(voice[:10])
	waitFor(t, "relayed voice", func() bool { return voiceAtB() == 10 })
	time.Sleep(60 * time.Millisecond) // no generated media while bridged

	br.Stop() // hold
	n := pb.count()
	b.Loop(moh)
	waitFor(t, "music on hold", func() bool { return pb.count() >= n+5 })
	br.Start() // unhold
	talk(voice[10:])
	waitFor(t, "relayed voice again", func() bool { return voiceAtB() == 20 })
	br.Stop()
	n = pb.count()
	<-b.Play(Tone("bye", []float64{440}, 100*time.Millisecond, 0.3))
	waitFor(t, "prompt after the bridge", func() bool { return pb.count() >= n+5 })

	pkts := pb.packets()
	var pattern []string
	var mediaTime int64        // samples since packet 0
	var earliest time.Duration // least (arrival − media time) of the packets so far; 0 for packet 0
	for i, p := range pkts {
		k, ok := kind[string(p.Payload)]
		if !ok {
			k = "voice"
		}
		if i >= len(pkts)-5 {
			k = "bye"
		}
		if len(pattern) == 0 || pattern[len(pattern)-1] != k {
			pattern = append(pattern, k)
			if !p.Marker {
				t.Errorf("packet %d starts %s without the marker bit", i, k)
			}
		} else if p.Marker && p.Timestamp-pkts[i-1].Timestamp == FrameSamples {
			// (A marker after a timestamp gap is right: the scheduler
			// skipped a tick on an overloaded machine.)
			t.Errorf("packet %d: marker inside %s", i, k)
		}
		if p.SSRC != b.SSRC() || p.PayloadType != uint8(PCMA) {
			t.Errorf("packet %d (%s): SSRC %x PT %d", i, k, p.SSRC, p.PayloadType)
		}
		if i == 0 {
			continue
		}
		prev := pkts[i-1]
		if d := p.SequenceNumber - prev.SequenceNumber; d != 1 {
			t.Errorf("packet %d (%s): seq +%d", i, k, d)
		}
		// Timestamps step forward by a frame at least, and never run ahead
		// of real time by more than a frame and some pacing jitter: arrival
		// minus media time never falls below its least value so far. (A
		// packet the peer's reader picked up late on a busy machine only
		// raises that difference.)
		dts := int64(int32(p.Timestamp - prev.Timestamp))
		if dts < FrameSamples {
			t.Errorf("packet %d (%s): ts +%d", i, k, dts)
		}
		mediaTime += dts
		off := p.at.Sub(pkts[0].at) - time.Duration(mediaTime)*time.Second/ClockRate
		if off < earliest-FrameDuration-10*time.Millisecond {
			t.Errorf("packet %d (%s): ts +%d runs %v ahead of real time", i, k, dts, earliest-off)
		}
		earliest = min(earliest, off)
	}
	if got := fmt.Sprint(pattern); got != "[prompt voice moh voice bye]" {
		t.Errorf("stream was %s", got)
	}
	if st := br.Stats(); st.AToB != 20 || st.Transcoded != 20 || st.Dropped != 0 {
		t.Errorf("bridge stats %+v", st)
	}
}

func TestBridgeDTMF(t *testing.T) { forModes(t, testBridgeDTMF) }

func testBridgeDTMF(t *testing.T, ports *Ports) {
	t.Run("passed with the destination's PT", func(t *testing.T) {
		checkLeaks(t)
		a, b, pa, pb, br := bridged(t, ports, PCMU, 101, PCMA, 96)
		br.Start()
		defer br.Stop()
		pa.sendEvent(t, a.LocalAddr(), 101, '5', 3)
		select {
		case d := <-a.Digits():
			if d != '5' {
				t.Errorf("A decoded %q", d)
			}
		case <-time.After(waitLong):
			t.Fatal("A decoded no digit")
		}
		waitFor(t, "event at B", func() bool { return pb.count() >= 5 })
		time.Sleep(20 * time.Millisecond)
		pkts := pb.packets()
		if len(pkts) != 5 {
			t.Fatalf("peer B got %d packets, want 5", len(pkts))
		}
		for i, p := range pkts {
			ev, err := ParseDTMFEvent(p.Payload)
			if p.PayloadType != 96 || p.SSRC != b.SSRC() || p.Marker != (i == 0) || err != nil || ev.Event != 5 ||
				p.Timestamp != pkts[0].Timestamp || p.SequenceNumber != pkts[0].SequenceNumber+uint16(i) {
				t.Errorf("packet %d: %v, event %+v", i, p.Header, ev)
			}
			if want := i >= 2; ev.End != want {
				t.Errorf("packet %d: end %v", i, ev.End)
			}
		}
		// B's own receiver, as a far phone would, hears the digit.
		var r DTMFReceiver
		var digits []rune
		for _, p := range pkts {
			digits = r.Receive(digits, time.Now(), p.SSRC, p.Timestamp, p.Payload)
		}
		if string(digits) != "5" {
			t.Errorf("peer B decodes %q", string(digits))
		}
		if st := br.Stats(); st.Events != 5 || st.AToB != 5 || st.EventsDropped != 0 {
			t.Errorf("bridge stats %+v", st)
		}
	})
	t.Run("dropped when the destination has none", func(t *testing.T) {
		checkLeaks(t)
		a, _, pa, pb, br := bridged(t, ports, PCMU, 101, PCMU, 0)
		br.Start()
		defer br.Stop()
		pa.sendEvent(t, a.LocalAddr(), 101, '#', 2)
		select {
		case d := <-a.Digits():
			if d != '#' {
				t.Errorf("A decoded %q", d)
			}
		case <-time.After(waitLong):
			t.Fatal("A decoded no digit")
		}
		waitFor(t, "drops counted", func() bool { return br.Stats().EventsDropped == 4 })
		if st := br.Stats(); st.Dropped != 4 || st.AToB != 0 || pb.count() != 0 {
			t.Errorf("bridge stats %+v, peer B got %d", st, pb.count())
		}
	})
}

// TestBridgeMapping drives the relay directly: source sequence gaps and
// reordering are kept, a new source SSRC continues the stream with a marker,
// and packets from before that restart are dropped.
func TestBridgeMapping(t *testing.T) { forModes(t, testBridgeMapping) }

func testBridgeMapping(t *testing.T, ports *Ports) {
	checkLeaks(t)
	a := socketless(101)
	defer a.Close()
	pb := newPeer(t)
	b := newTestSession(t, ports, SessionConfig{Timeout: -1})
	defer b.Close()
	b.SetRemote(pb.addr(), PCMU, 101)
	br := NewBridge(a, b)
	br.Start()
	defer br.Stop()
	payload := make([]byte, 160)
	now := time.Now()
	in := func(ssrc uint32, seq uint16, ts uint32) {
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: seq, Timestamp: ts, SSRC: ssrc}, Payload: payload}
		buf, _ := p.Marshal()
		a.handlePacket(buf, peerAddr, now)
	}
	in(1, 100, 1000)
	in(1, 101, 1160)
	in(1, 104, 1640) // 102, 103 lost
	in(1, 103, 1480) // late
	in(2, 7, 50)     // the source restarted (new SSRC)
	in(2, 8, 210)
	in(1, 105, 1800) // the old source again: re-anchors once more
	in(1, 104, 1640) // before the last anchor: dropped
	waitFor(t, "7 packets", func() bool { return pb.count() >= 7 })
	pkts := pb.packets()
	s0, t0 := pkts[0].SequenceNumber, pkts[0].Timestamp
	want := []struct {
		dseq   uint16
		dts    int64 // -1: after a re-anchor, only "forward" is checked
		marker bool
	}{{0, 0, true}, {1, 160, false}, {4, 640, false}, {3, 480, false}, {5, -1, true}, {6, -1, false}, {7, -1, true}}
	if len(pkts) != len(want) {
		t.Fatalf("got %d packets, want %d", len(pkts), len(want))
	}
	for i, w := range want {
		p := pkts[i]
		if p.SequenceNumber-s0 != w.dseq || p.Marker != w.marker || p.SSRC != b.SSRC() {
			t.Errorf("packet %d: seq +%d marker %v, want +%d %v", i, p.SequenceNumber-s0, p.Marker, w.dseq, w.marker)
		}
		if w.dts >= 0 && int64(p.Timestamp-t0) != w.dts {
			t.Errorf("packet %d: ts +%d, want +%d", i, p.Timestamp-t0, w.dts)
		}
		if i > 0 && w.dts < 0 && int32(p.Timestamp-pkts[i-1].Timestamp) < FrameSamples {
			t.Errorf("packet %d: ts +%d after a restart", i, int32(p.Timestamp-pkts[i-1].Timestamp))
		}
	}
	if d := pkts[5].Timestamp - pkts[4].Timestamp; d != 160 {
		t.Errorf("after the restart: ts +%d, want +160", d)
	}
	if st := br.Stats(); st.AToB != 7 || st.Dropped != 1 {
		t.Errorf("bridge stats %+v", st)
	}
}

// TestBridgeStartStopRace toggles a bridge (and hold music) while both
// peers stream fast, and checks each peer still receives one clean stream:
// sequence +1, timestamps strictly forward, whatever interleaving happened.
func TestBridgeStartStopRace(t *testing.T) { forModes(t, testBridgeStartStopRace) }

func testBridgeStartStopRace(t *testing.T, ports *Ports) {
	checkLeaks(t)
	a, b, pa, pb, br := bridged(t, ports, PCMU, 101, PCMA, 101)
	fa, _ := toneFrames(PCMU, 1000, 1)
	fb, _ := toneFrames(PCMA, 600, 1)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			pa.sendAudio(t, a.LocalAddr(), PCMU, fa[0], false)
			pb.sendAudio(t, b.LocalAddr(), PCMA, fb[0], false)
			if i%4 == 0 {
				pa.sendEvent(t, a.LocalAddr(), 101, '1', 1)
			}
			time.Sleep(time.Millisecond)
		}
	}()
	moh := Tone("moh", []float64{300}, time.Second, 0.3)
	// At least 400 ms, and on a busy machine until both peers got enough.
	soft, hard := time.Now().Add(400*time.Millisecond), time.Now().Add(5*time.Second)
	for i := 0; time.Now().Before(soft) || (time.Now().Before(hard) && min(pa.count(), pb.count()) < 60); i++ {
		br.Start()
		time.Sleep(time.Duration(i%7) * time.Millisecond)
		br.Stop()
		a.Loop(moh)
		b.Loop(moh)
		time.Sleep(time.Duration(i%5) * 5 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	time.Sleep(50 * time.Millisecond)
	for _, c := range []struct {
		who  string
		p    *rtpPeer
		ssrc uint32
	}{{"A", pa, a.SSRC()}, {"B", pb, b.SSRC()}} {
		pkts := c.p.packets()
		if len(pkts) < 30 {
			t.Errorf("peer %s got only %d packets", c.who, len(pkts))
		}
		var bad int
		for i := 1; i < len(pkts); i++ {
			p, prev := pkts[i], pkts[i-1]
			if p.SSRC != c.ssrc || p.SequenceNumber != prev.SequenceNumber+1 ||
				(p.PayloadType != 101 && int32(p.Timestamp-prev.Timestamp) <= 0) {
				if bad++; bad <= 5 {
					t.Errorf("peer %s packet %d: %v after %v", c.who, i, p.Header, prev.Header)
				}
			}
		}
	}
	t.Logf("bridge stats %+v", br.Stats())
}

// relayBench sets up a bridge for driving a's receive path directly; b
// sends to a loopback socket nobody reads.
func relayBench(tb testing.TB, ports *Ports, ca, cb Codec, dtmfB uint8) (a, b *Session, done func()) {
	a = NewSession(SessionConfig{Timeout: -1})
	a.SetRemote(peerAddr, ca, 101)
	sink := listen(tb)
	b = newTestSession(tb, ports, SessionConfig{Timeout: -1})
	b.SetRemote(addrOf(sink), cb, dtmfB)
	br := NewBridge(a, b)
	br.Start()
	return a, b, func() { br.Stop(); a.Close(); b.Close(); sink.Close() }
}

func TestBridgeRelayZeroAllocs(t *testing.T) { forModes(t, testBridgeRelayZeroAllocs) }

func testBridgeRelayZeroAllocs(t *testing.T, ports *Ports) {
	for _, tc := range []struct {
		name   string
		ca, cb Codec
		pt     uint8
	}{{"same", PCMU, PCMU, 0}, {"transcode", PCMU, PCMA, 0}, {"event", PCMU, PCMA, 101}} {
		t.Run(tc.name, func(t *testing.T) {
			a, b, done := relayBench(t, ports, tc.ca, tc.cb, 96)
			defer done()
			src := newRTPSource(t, tc.pt, 0x1234, make([]byte, 160))
			if tc.pt == 101 {
				src = newRTPSource(t, 101, 0x1234, []byte{5, 0x0a, 0, 160})
			}
			now := time.Now()
			next := func() { a.handlePacket(src.next(), peerAddr, now) }
			next()
			if n := testing.AllocsPerRun(1000, next); n != 0 {
				t.Errorf("%v allocs per relayed packet", n)
			}
			if st := b.Stats(); st.PacketsOut < 1000 || st.SendErrors != 0 {
				t.Errorf("destination stats %+v", st)
			}
			for len(a.digits) > 0 {
				<-a.digits
			}
		})
	}
}

// BenchmarkBridgeRelay measures one relayed packet: a's receive path
// (parse, latch check, relay: mapping, transcoding, header) and the sendto
// on b's socket to loopback. "syscalls" adds the peer's sendto and a's
// recvfrom, i.e. the whole cost of a packet crossing the bridge.
func BenchmarkBridgeRelay(b *testing.B) {
	run := func(b *testing.B, ca, cb Codec, pt uint8, payload []byte) {
		a, dst, done := relayBench(b, testPorts(), ca, cb, 96)
		defer done()
		src := newRTPSource(b, pt, 0x1234, payload)
		now := time.Now()
		b.ReportAllocs()
		for b.Loop() {
			a.handlePacket(src.next(), peerAddr, now)
			if len(a.digits) == cap(a.digits) {
				for len(a.digits) > 0 {
					<-a.digits
				}
			}
		}
		if st := dst.Stats(); st.SendErrors != 0 || st.PacketsOut < uint64(b.N) {
			b.Fatalf("destination stats %+v", st)
		}
	}
	b.Run("same-codec", func(b *testing.B) { run(b, PCMU, PCMU, 0, make([]byte, 160)) })
	b.Run("transcode", func(b *testing.B) { run(b, PCMU, PCMA, 0, make([]byte, 160)) })
	b.Run("event", func(b *testing.B) { run(b, PCMU, PCMA, 101, []byte{5, 0x0a, 0, 160}) })
	for _, tc := range []struct {
		name   string
		ca, cb Codec
	}{{"syscalls/same-codec", PCMU, PCMU}, {"syscalls/transcode", PCMU, PCMA}} {
		b.Run(tc.name, func(b *testing.B) {
			peer := listen(b)
			defer peer.Close()
			sink := listen(b)
			defer sink.Close()
			a := NewSession(SessionConfig{Conn: listen(b), Timeout: -1})
			a.SetRemote(addrOf(peer), tc.ca, 101)
			dst := NewSession(SessionConfig{Conn: listen(b), Timeout: -1})
			dst.SetRemote(addrOf(sink), tc.cb, 101)
			br := NewBridge(a, dst)
			br.Start()
			defer func() { br.Stop(); a.Close(); dst.Close() }()
			src := newRTPSource(b, uint8(tc.ca), 0x1234, make([]byte, 160))
			to := a.LocalAddr()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := peer.WriteToUDPAddrPort(src.next(), to); err != nil {
					b.Fatal(err)
				}
				n, from, err := a.conn.ReadFromUDPAddrPort(a.rxBuf)
				if err != nil {
					b.Fatal(err)
				}
				a.handlePacket(a.rxBuf[:n], from, time.Now())
			}
			if st := br.Stats(); st.AToB != uint64(b.N) {
				b.Fatalf("relayed %d of %d", st.AToB, b.N)
			}
		})
	}
}
