package loadtest

import (
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/hotline12345/hotline/media"
	"github.com/pion/rtp"
)

// waitLong is how long a test waits for something that must happen, enough
// for a machine whose CPUs are busy with other work.
const waitLong = 10 * time.Second

func rtpHeader(pt uint8, seq uint16, ts, ssrc uint32) *rtp.Header {
	return &rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: seq, Timestamp: ts, SSRC: ssrc}
}

func rtpPacket(t *testing.T, pt uint8, seq uint16, ts, ssrc uint32) []byte {
	t.Helper()
	b, err := (&rtp.Packet{Header: *rtpHeader(pt, seq, ts, ssrc), Payload: make([]byte, frameSamples)}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Sequence accounting: gaps are lost, a late arrival is taken back from the
// lost count, duplicates and SSRC changes are counted apart.
func TestReceiveSequence(t *testing.T) {
	type pkt struct {
		seq  uint16
		ssrc uint32
	}
	for _, tc := range []struct {
		name                      string
		pkts                      []pkt
		lost, late, dup, ssrcChgs int64
	}{
		{"in order", []pkt{{1, 7}, {2, 7}, {3, 7}}, 0, 0, 0, 0},
		{"gap of two", []pkt{{1, 7}, {2, 7}, {5, 7}, {6, 7}}, 2, 0, 0, 0},
		{"wrap-around", []pkt{{65534, 7}, {65535, 7}, {0, 7}, {2, 7}}, 1, 0, 0, 0},
		{"late arrival", []pkt{{1, 7}, {3, 7}, {2, 7}, {4, 7}}, 0, 1, 0, 0},
		{"duplicate", []pkt{{1, 7}, {2, 7}, {2, 7}, {3, 7}}, 0, 0, 1, 0},
		{"new SSRC restarts", []pkt{{1, 7}, {2, 7}, {900, 8}, {901, 8}}, 0, 0, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r rxState
			for i, p := range tc.pkts {
				r.receive(rtpHeader(pcmaPT, p.seq, uint32(i*frameSamples), p.ssrc), nil, time.Duration(i)*media.FrameDuration, pcmaPT)
			}
			st := r.st
			if st.Packets != int64(len(tc.pkts)) || st.Lost != tc.lost || st.Late != tc.late || st.Duplicates != tc.dup || st.SSRCChanges != tc.ssrcChgs {
				t.Fatalf("got %+v; want lost %d late %d dup %d ssrc changes %d", st, tc.lost, tc.late, tc.dup, tc.ssrcChgs)
			}
		})
	}
}

// RFC 3550 jitter: perfectly paced packets give 0; packets alternately 4 ms
// late and on time give |D| = 4 ms each, so J converges on 4 ms by J += (|D|−J)/16.
func TestReceiveJitter(t *testing.T) {
	var even rxState
	for i := range 100 {
		even.receive(rtpHeader(pcmaPT, uint16(i), uint32(1000+i*frameSamples), 1), nil, time.Second+time.Duration(i)*media.FrameDuration, pcmaPT)
	}
	if even.jitter != 0 {
		t.Fatalf("paced packets: jitter %v, want 0", time.Duration(even.jitter))
	}
	var alt rxState
	want := 0.0
	for i := range 200 {
		arrival := time.Duration(i) * media.FrameDuration
		if i%2 == 1 {
			arrival += 4 * time.Millisecond
		}
		alt.receive(rtpHeader(pcmaPT, uint16(i), uint32(i*frameSamples), 1), nil, arrival, pcmaPT)
		if i > 0 {
			want += (float64(4*time.Millisecond) - want) / 16
		}
	}
	got := time.Duration(alt.jitter)
	if d := got - time.Duration(want); d < -time.Microsecond || d > time.Microsecond {
		t.Fatalf("jitter %v, want %v", got, time.Duration(want))
	}
	if got < 3900*time.Microsecond || alt.st.MaxJitter < got {
		t.Fatalf("jitter %v (max %v) should have converged on 4 ms", got, alt.st.MaxJitter)
	}
	// Telephone-event packets do not enter the jitter estimate.
	before := alt.jitter
	alt.receive(rtpHeader(101, 200, 0, 1), nil, time.Hour, pcmaPT)
	if alt.jitter != before || alt.st.OtherPackets != 1 {
		t.Fatalf("a telephone-event packet changed jitter or was not counted: %+v", alt.st)
	}
}

// A meter stream sends paced silence in the codec, latches the peer by
// source address, and counts what the peer sends back, gaps included; its
// digits go out as RFC 4733 events.
func TestMeterStream(t *testing.T) {
	peer, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	m, err := NewMeter(netip.MustParseAddr("127.0.0.1"), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s, err := m.Add(peer.LocalAddr().(*net.UDPAddr).AddrPort(), pcmaPT, 101)
	if err != nil {
		t.Fatal(err)
	}
	peer.SetReadDeadline(time.Now().Add(waitLong))
	buf := make([]byte, 1500)
	read := func() (rtp.Packet, netip.AddrPort) {
		t.Helper()
		k, from, err := peer.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatal(err)
		}
		var p rtp.Packet
		if err := p.Unmarshal(slices.Clone(buf[:k])); err != nil {
			t.Fatalf("not RTP: %v", err)
		}
		return p, from
	}
	var first time.Time
	var seq0 uint16
	const n = 10
	for i := range n {
		p, from := read()
		if i == 0 {
			first, seq0 = time.Now(), p.SequenceNumber
			if from != s.LocalAddr() {
				t.Fatalf("packet from %s, want the stream's socket %s", from, s.LocalAddr())
			}
		}
		if len(p.Payload) != frameSamples || p.PayloadType != pcmaPT || p.Payload[0] != 0xd5 {
			t.Fatalf("packet %d: %d bytes of payload, PT %d, payload %#x: want 160 bytes of A-law silence", i, len(p.Payload), p.PayloadType, p.Payload[0])
		}
		if p.SequenceNumber != seq0+uint16(i) {
			t.Fatalf("packet %d: sequence %d, want %d", i, p.SequenceNumber, seq0+uint16(i))
		}
		if p.Marker != (i == 0) {
			t.Fatalf("packet %d: marker %v", i, p.Marker)
		}
	}
	if el := time.Since(first); el < (n-2)*media.FrameDuration {
		t.Fatalf("%d packets in %v: not paced at 20 ms", n, el)
	}

	// The peer sends 50 packets with sequence numbers 10 and 11 missing.
	to := s.LocalAddr()
	for i := range 52 {
		if i == 10 || i == 11 {
			continue
		}
		if _, err := peer.WriteToUDPAddrPort(rtpPacket(t, pcmaPT, uint16(i), uint32(i*frameSamples), 42), to); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(waitLong)
	for s.Stats().Packets < 50 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}

	done, err := s.SendDigits("2", 60*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	// 60 ms: three packets of growing duration, the last of them the first of
	// three end packets, all with the event's start timestamp.
	var events []rtp.Packet
	for len(events) < 3+2 {
		if p, _ := read(); p.PayloadType == 101 {
			events = append(events, p)
		}
	}
	<-done
	for i, p := range events {
		ev, err := media.ParseDTMFEvent(p.Payload)
		if err != nil || ev.Event != 2 || p.Timestamp != events[0].Timestamp || p.Marker != (i == 0) || ev.End != (i >= 2) {
			t.Fatalf("event packet %d: %v, event %+v (%v)", i, p.Header, ev, err)
		}
		if want := uint16(min(i+1, 3) * frameSamples); ev.Duration != want {
			t.Fatalf("event packet %d: duration %d, want %d", i, ev.Duration, want)
		}
	}

	st := s.Remove()
	if st.Packets != 50 || st.Lost != 2 || st.AudioPackets != 50 {
		t.Fatalf("stats %+v: want 50 packets received, 2 lost", st)
	}
	if st.Sent < n || st.SendErrors != 0 {
		t.Fatalf("stats %+v: want at least %d sent, no errors", st, n)
	}
	// After Remove, packets from the peer are strangers and nothing more is sent.
	peer.WriteToUDPAddrPort(rtpPacket(t, pcmaPT, 60, 0, 42), to)
	for m.Stats().Strangers == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if s.Stats().Packets != 50 || m.Stats().Strangers != 1 {
		t.Fatalf("after Remove: stream %+v, meter %+v", s.Stats(), m.Stats())
	}
}
