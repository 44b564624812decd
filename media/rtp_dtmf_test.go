package media

import (
	"errors"
	"testing"
	"time"
)

// dtmfPkt is one received telephone-event packet for table tests.
type dtmfPkt struct {
	at      time.Duration // since the test's t0
	ssrc    uint32
	ts      uint32
	payload []byte
}

func ev(event uint8, end bool, dur uint16) []byte {
	b := make([]byte, 4)
	DTMFEvent{Event: event, End: end, Volume: 10, Duration: dur}.Put(b)
	return b
}

func TestDTMFReceiver(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name    string
		pkts    []dtmfPkt
		expire  time.Duration // Expire is called at this offset after the packets (0 = not called)
		want    string
		wantOpn bool
	}{
		{
			name: "normal event, three end packets",
			pkts: []dtmfPkt{
				{0, 1, 1000, ev(5, false, 160)}, {20 * ms, 1, 1000, ev(5, false, 320)},
				{40 * ms, 1, 1000, ev(5, true, 480)}, {41 * ms, 1, 1000, ev(5, true, 480)}, {42 * ms, 1, 1000, ev(5, true, 480)},
			},
			want: "5",
		},
		{
			name: "duplicates of start packets",
			pkts: []dtmfPkt{
				{0, 1, 1000, ev(11, false, 160)}, {0, 1, 1000, ev(11, false, 160)}, {20 * ms, 1, 1000, ev(11, false, 320)},
				{40 * ms, 1, 1000, ev(11, true, 480)},
			},
			want: "#",
		},
		{
			name: "end only",
			pkts: []dtmfPkt{{0, 1, 1000, ev(10, true, 800)}, {1 * ms, 1, 1000, ev(10, true, 800)}},
			want: "*",
		},
		{
			name:    "missing end, no expiry yet",
			pkts:    []dtmfPkt{{0, 1, 1000, ev(1, false, 160)}, {20 * ms, 1, 1000, ev(1, false, 320)}},
			expire:  20*ms + 700*ms,
			want:    "",
			wantOpn: true,
		},
		{
			name:   "missing end, expired",
			pkts:   []dtmfPkt{{0, 1, 1000, ev(1, false, 160)}, {20 * ms, 1, 1000, ev(1, false, 320)}},
			expire: 20*ms + 800*ms,
			want:   "1",
		},
		{
			name: "late end after expiry is ignored",
			pkts: []dtmfPkt{
				{0, 1, 1000, ev(2, false, 160)},
				{0, 0, 0, nil}, // marker: Expire at 900 ms
				{950 * ms, 1, 1000, ev(2, true, 8000)},
			},
			want: "2",
		},
		{
			name: "new event while one is open",
			pkts: []dtmfPkt{
				{0, 1, 1000, ev(3, false, 160)}, {20 * ms, 1, 1000, ev(3, false, 320)},
				{100 * ms, 1, 1800, ev(4, false, 160)}, {120 * ms, 1, 1800, ev(4, true, 320)},
				{121 * ms, 1, 1000, ev(3, true, 480)}, // late end of the first: ignored
			},
			want: "34",
		},
		{
			name: "new event that is an end packet",
			pkts: []dtmfPkt{{0, 1, 1000, ev(7, false, 160)}, {100 * ms, 1, 1800, ev(8, true, 320)}},
			want: "78",
		},
		{
			name: "same timestamp, other SSRC is another event",
			pkts: []dtmfPkt{{0, 1, 1000, ev(9, true, 320)}, {10 * ms, 2, 1000, ev(9, true, 320)}},
			want: "99",
		},
		{
			name: "garbage lengths and non-DTMF events",
			pkts: []dtmfPkt{
				{0, 1, 1000, nil}, {0, 1, 1000, []byte{1}}, {0, 1, 1000, []byte{1, 0x80, 0}},
				{0, 1, 2000, ev(16, true, 160)}, {0, 1, 3000, ev(255, true, 160)},
				{0, 1, 4000, append(ev(12, true, 160), 0xde, 0xad)}, // longer payload: first 4 bytes count
			},
			want: "A",
		},
		{
			name: "all sixteen events",
			pkts: func() []dtmfPkt {
				var p []dtmfPkt
				for e := range uint8(16) {
					p = append(p, dtmfPkt{time.Duration(e) * 100 * ms, 7, uint32(e) * 1000, ev(e, true, 800)})
				}
				return p
			}(),
			want: "0123456789*#ABCD",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r DTMFReceiver
			t0 := time.Unix(1000, 0)
			var got []rune
			for _, p := range tc.pkts {
				if p.payload == nil && p.ssrc == 0 {
					got = r.Expire(got, t0.Add(900*time.Millisecond))
					continue
				}
				got = r.Receive(got, t0.Add(p.at), p.ssrc, p.ts, p.payload)
			}
			if tc.expire > 0 {
				got = r.Expire(got, t0.Add(tc.expire))
			}
			if string(got) != tc.want {
				t.Errorf("digits %q, want %q", string(got), tc.want)
			}
			if r.Open() != tc.wantOpn {
				t.Errorf("Open() = %v, want %v", r.Open(), tc.wantOpn)
			}
		})
	}
}

// sentEvent is one packet a DTMFSender produced, for TestDTMFSender.
type sentEvent struct {
	tick   int
	ts     uint32
	marker bool
	DTMFEvent
}

// drain ticks s until it is idle (at most 1000 ticks) and returns its packets;
// tick i has RTP timestamp 1000 + 160·i.
func drain(t *testing.T, s *DTMFSender) []sentEvent {
	t.Helper()
	var out []sentEvent
	var b [DTMFPayloadSize]byte
	for i := 0; !s.Idle(); i++ {
		if i == 1000 {
			t.Fatal("sender never idle")
		}
		ts, marker, ok := s.Tick(b[:], 1000+uint32(i)*FrameSamples)
		if !ok {
			continue
		}
		e, err := ParseDTMFEvent(b[:])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, sentEvent{i, ts, marker, e})
	}
	return out
}

func TestDTMFSender(t *testing.T) {
	var s DTMFSender
	if !s.Idle() {
		t.Fatal("zero sender not idle")
	}
	s.Queue(11, 100*time.Millisecond) // 5 ticks of tone + 2 end repeats
	s.Queue(5, 30*time.Millisecond)   // rounded up to 2 ticks + 2 end repeats
	got := drain(t, &s)
	type want struct {
		tick   int
		event  uint8
		dur    uint16
		end    bool
		marker bool
	}
	wants := []want{
		{0, 11, 160, false, true}, {1, 11, 320, false, false}, {2, 11, 480, false, false}, {3, 11, 640, false, false},
		{4, 11, 800, true, false}, {5, 11, 800, true, false}, {6, 11, 800, true, false},
		// ticks 7 and 8 are the quiet gap
		{9, 5, 160, false, true}, {10, 5, 320, true, false}, {11, 5, 320, true, false}, {12, 5, 320, true, false},
	}
	if len(got) != len(wants) {
		t.Fatalf("%d packets, want %d: %+v", len(got), len(wants), got)
	}
	for i, w := range wants {
		g := got[i]
		startTick := 0
		if w.event == 5 {
			startTick = 9
		}
		if g.tick != w.tick || g.Event != w.event || g.Duration != w.dur || g.End != w.end || g.marker != w.marker ||
			g.Volume != DTMFVolume || g.ts != 1000+uint32(startTick)*FrameSamples {
			t.Errorf("packet %d: %+v, want %+v at timestamp %d", i, g, w, 1000+startTick*FrameSamples)
		}
	}
	var b [DTMFPayloadSize]byte
	if _, _, ok := s.Tick(b[:], 0); ok {
		t.Error("idle sender sent a packet")
	}

	// Defaults and caps: d <= 0 is 100 ms; 10 s is capped at 8 s (400 ticks).
	s.Queue(1, 0)
	if got := drain(t, &s); len(got) != 5+2 || got[len(got)-1].Duration != 800 {
		t.Errorf("default length: %d packets, last %+v", len(got), got[len(got)-1])
	}
	s.Queue(1, 10*time.Second)
	if got := drain(t, &s); len(got) != 400+2 || got[len(got)-1].Duration != 64000 {
		t.Errorf("capped length: %d packets, last %+v", len(got), got[len(got)-1])
	}

	// Interrupt abandons the event in progress; the next starts after the gap.
	s.Reset()
	s.Queue(1, 100*time.Millisecond)
	s.Queue(2, 20*time.Millisecond)
	s.Tick(b[:], 0)
	s.Tick(b[:], 160)
	s.Interrupt()
	got = drain(t, &s)
	if len(got) != 3 || got[0].Event != 2 || got[0].tick != 2 || !got[0].marker || !got[0].End {
		t.Errorf("after Interrupt: %+v, want event 2 (one tick, two repeats) after a 2-tick gap", got)
	}

	s.Queue(3, 0)
	s.Reset()
	if !s.Idle() {
		t.Error("Reset left work")
	}
}

// TestDTMFWireBytes pins the payload to bytes worked out by hand from RFC 4733
// §2.3, so that the sender and receiver (shared by the server and the test
// phone) are checked against the RFC rather than against each other.
func TestDTMFWireBytes(t *testing.T) {
	var s DTMFSender
	s.Queue(5, 40*time.Millisecond)
	var b [DTMFPayloadSize]byte
	want := [][DTMFPayloadSize]byte{
		{0x05, 0x0a, 0x00, 0xa0}, // '5', volume 10, 160
		{0x05, 0x8a, 0x01, 0x40}, // E bit, 320
		{0x05, 0x8a, 0x01, 0x40},
		{0x05, 0x8a, 0x01, 0x40},
	}
	for i, w := range want {
		if _, _, ok := s.Tick(b[:], 0); !ok || b != w {
			t.Errorf("packet %d: % x, want % x", i, b, w)
		}
	}
	var r DTMFReceiver
	var digits []rune
	for _, w := range want {
		digits = r.Receive(digits, time.Unix(0, 0), 1, 0, w[:])
	}
	if string(digits) != "5" {
		t.Errorf("receiver decoded %q from the RFC bytes", string(digits))
	}
}

func TestDigitEvent(t *testing.T) {
	for i, d := range "0123456789*#ABCD" {
		e, ok := DigitEvent(d)
		if !ok || int(e) != i {
			t.Errorf("DigitEvent(%q) = %d %v", d, e, ok)
		}
		if r, ok := EventDigit(e); !ok || r != d {
			t.Errorf("EventDigit(%d) = %q %v", e, r, ok)
		}
	}
	if e, ok := DigitEvent('b'); !ok || e != 13 {
		t.Errorf("DigitEvent('b') = %d %v", e, ok)
	}
	if _, ok := DigitEvent('x'); ok {
		t.Error("DigitEvent('x') ok")
	}
	if _, ok := EventDigit(16); ok {
		t.Error("EventDigit(16) ok")
	}
	if _, err := ParseDTMFEvent([]byte{1, 2, 3}); !errors.Is(err, ErrShortDTMF) {
		t.Errorf("short payload: %v", err)
	}
}

// FuzzDTMFDecode: arbitrary payloads never panic the parser or the receiver,
// and valid events survive Put → ParseDTMFEvent.
func FuzzDTMFDecode(f *testing.F) {
	f.Add([]byte{5, 0x8a, 0x03, 0x20}, uint32(1000))
	f.Add([]byte{11, 0x0a, 0x00, 0xa0}, uint32(0))
	f.Add([]byte{}, uint32(7))
	f.Add([]byte{255, 255, 255, 255, 255}, uint32(0xffffffff))
	f.Fuzz(func(t *testing.T, payload []byte, ts uint32) {
		var r DTMFReceiver
		now := time.Unix(0, 0)
		var digits []rune
		digits = r.Receive(digits, now, 1, ts, payload)
		digits = r.Receive(digits, now.Add(20*time.Millisecond), 1, ts, payload)
		digits = r.Expire(digits, now.Add(time.Second))
		if len(digits) > 1 {
			t.Fatalf("one event gave %d digits", len(digits))
		}
		e, err := ParseDTMFEvent(payload)
		if err != nil {
			if len(payload) >= 4 {
				t.Fatalf("valid length rejected: %v", err)
			}
			return
		}
		if _, isDigit := EventDigit(e.Event); isDigit != (len(digits) == 1) {
			t.Fatalf("event %d gave digits %q", e.Event, string(digits))
		}
		var b [4]byte
		e.Put(b[:])
		back, err := ParseDTMFEvent(b[:])
		if err != nil || back != e {
			t.Fatalf("round trip %+v → %+v (%v)", e, back, err)
		}
		if b[0] != payload[0] || b[1]&0xbf != payload[1]&0xbf || b[2] != payload[2] || b[3] != payload[3] {
			t.Fatalf("re-encoding %x differs from %x beyond the R bit", b, payload[:4])
		}
	})
}
