package media

import (
	"encoding/binary"
	"time"
)

// RFC 4733 telephone-event constants.
const (
	DTMFPayloadSize   = 4                      // bytes of one event payload
	DTMFMissingEnd    = 800 * time.Millisecond // an event with no packet for this long is complete
	DTMFVolume        = 10                     // send volume, -dBm0
	DTMFMaxDuration   = 8 * time.Second        // longest event that fits the 16-bit duration field
	DTMFDefaultLength = 100 * time.Millisecond // SendDTMF length when d <= 0
	dtmfEndRepeats    = 3                      // the end packet is sent this many times
	dtmfGapTicks      = 2                      // quiet ticks between queued events (40 ms)
)

// DTMFEvent is one RFC 4733 telephone-event payload (section 2.3):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	|     event     |E|R| volume    |          duration             |
type DTMFEvent struct {
	Event    uint8  // 0-9, 10 '*', 11 '#', 12-15 'A'-'D'; others are not DTMF
	End      bool   // E bit: last packet(s) of the event
	Volume   uint8  // 0-63, power level in -dBm0
	Duration uint16 // in timestamp units since the event's start timestamp
}

// ParseDTMFEvent decodes the first 4 bytes of an RFC 4733 payload. It returns
// ErrShortDTMF when payload is shorter. The R bit is ignored.
func ParseDTMFEvent(payload []byte) (DTMFEvent, error) {
	if len(payload) < DTMFPayloadSize {
		return DTMFEvent{}, ErrShortDTMF
	}
	return DTMFEvent{
		Event:    payload[0],
		End:      payload[1]&0x80 != 0,
		Volume:   payload[1] & 0x3f,
		Duration: binary.BigEndian.Uint16(payload[2:4]),
	}, nil
}

// Put writes e into b[:4] (R bit zero, volume masked to 6 bits). b must hold 4 bytes.
func (e DTMFEvent) Put(b []byte) {
	_ = b[3]
	b[0] = e.Event
	b[1] = e.Volume & 0x3f
	if e.End {
		b[1] |= 0x80
	}
	binary.BigEndian.PutUint16(b[2:4], e.Duration)
}

const dtmfDigits = "0123456789*#ABCD"

// EventDigit maps an RFC 4733 event code 0-15 to its digit ('0'-'9', '*', '#', 'A'-'D').
func EventDigit(event uint8) (rune, bool) {
	if int(event) >= len(dtmfDigits) {
		return 0, false
	}
	return rune(dtmfDigits[event]), true
}

// DigitEvent maps a DTMF digit to its RFC 4733 event code; lower-case a-d are accepted.
func DigitEvent(digit rune) (uint8, bool) {
	if digit >= 'a' && digit <= 'd' {
		digit -= 'a' - 'A'
	}
	for i, d := range dtmfDigits {
		if d == digit {
			return uint8(i), true
		}
	}
	return 0, false
}

// dtmfKey identifies one event: RFC 4733 §2.5.2 — packets of one event share
// SSRC and timestamp.
type dtmfKey struct{ ssrc, ts uint32 }

// DTMFReceiver turns RFC 4733 packets into digits. It is pure logic with time
// passed in: not safe for concurrent use. Each event yields its digit exactly
// once: at its first end packet, or — when the end never comes — once no packet
// of the event arrived for MissingEnd, or when a new event starts while it is
// still open. The zero value is ready to use with DTMFMissingEnd.
type DTMFReceiver struct {
	// MissingEnd overrides DTMFMissingEnd when positive.
	MissingEnd time.Duration

	open     bool      // an event has started and its digit is not yet emitted
	cur      dtmfKey   // the open event
	curDigit rune      // its digit
	lastSeen time.Time // last packet of the open event
	done     [4]dtmfKey
	doneN    int // ring index into done
	doneUsed int // valid entries in done
}

// Receive processes one telephone-event payload of the RTP packet with the
// given SSRC and timestamp, received at now. It appends the digits completed
// by this packet to dst (at most two: an open event closed by a new one, then
// the new event if this is its end packet) and returns dst. Payloads that are
// too short or carry non-DTMF events are ignored.
func (r *DTMFReceiver) Receive(dst []rune, now time.Time, ssrc, ts uint32, payload []byte) []rune {
	ev, err := ParseDTMFEvent(payload)
	if err != nil {
		return dst
	}
	digit, ok := EventDigit(ev.Event)
	if !ok {
		return dst
	}
	key := dtmfKey{ssrc, ts}
	if r.isDone(key) {
		return dst // repeated end packet or a late retransmission
	}
	if r.open && r.cur != key {
		dst = append(dst, r.curDigit) // a new event started: close the open one
		r.finish()
	}
	if !r.open {
		r.open, r.cur, r.curDigit = true, key, digit
	}
	r.lastSeen = now
	if ev.End {
		dst = append(dst, r.curDigit)
		r.finish()
	}
	return dst
}

// Expire appends the open event's digit to dst when no packet of it arrived
// for the missing-end timeout, and returns dst.
func (r *DTMFReceiver) Expire(dst []rune, now time.Time) []rune {
	timeout := r.MissingEnd
	if timeout <= 0 {
		timeout = DTMFMissingEnd
	}
	if r.open && now.Sub(r.lastSeen) >= timeout {
		dst = append(dst, r.curDigit)
		r.finish()
	}
	return dst
}

// Open reports whether an event is in progress (started, digit not yet emitted).
func (r *DTMFReceiver) Open() bool { return r.open }

func (r *DTMFReceiver) finish() {
	r.done[r.doneN] = r.cur
	r.doneN = (r.doneN + 1) % len(r.done)
	r.doneUsed = min(r.doneUsed+1, len(r.done))
	r.open = false
}

func (r *DTMFReceiver) isDone(k dtmfKey) bool {
	for i := range r.doneUsed {
		if r.done[i] == k {
			return true
		}
	}
	return false
}

// DTMFSender turns queued events into RFC 4733 packets, one per 20 ms tick
// (§2.5.1): all packets of an event carry its start timestamp, the first has
// the marker bit, the duration grows by 160 per tick, and the end packet goes
// out three times. Events follow one another two quiet ticks (40 ms) apart.
// It is pure logic, not safe for concurrent use; the zero value is ready. The
// server's Session, the test phone and the load tester all send with it.
type DTMFSender struct {
	queue   []dtmfTone
	cur     dtmfTone
	active  bool   // cur is being sent
	gap     int    // quiet ticks left before the next event may start
	startTS uint32 // RTP timestamp of cur
}

// dtmfTone is one queued event.
type dtmfTone struct {
	event  uint8
	frames int // ticks of tone: ceil(d / 20 ms)
	sent   int // packets sent so far
}

// Queue adds an event (an RFC 4733 event code, see DigitEvent) lasting d:
// d <= 0 means DTMFDefaultLength; d is rounded up to whole 20 ms ticks and
// capped at DTMFMaxDuration.
func (s *DTMFSender) Queue(event uint8, d time.Duration) {
	if d <= 0 {
		d = DTMFDefaultLength
	}
	d = min(d, DTMFMaxDuration)
	s.queue = append(s.queue, dtmfTone{event: event, frames: int((d + FrameDuration - 1) / FrameDuration)})
}

// Tick advances the sender by one 20 ms tick whose RTP timestamp is ts. When
// the tick carries an event packet, Tick writes its payload into
// b[:DTMFPayloadSize] and returns ok with the packet's timestamp (the start of
// its event) and marker bit; otherwise the tick is free for audio.
func (s *DTMFSender) Tick(b []byte, ts uint32) (evTS uint32, marker, ok bool) {
	if !s.active {
		if s.gap > 0 {
			s.gap--
			return 0, false, false
		}
		if len(s.queue) == 0 {
			return 0, false, false
		}
		s.cur, s.queue = s.queue[0], s.queue[1:]
		if len(s.queue) == 0 {
			s.queue = nil // do not keep the backing array growing
		}
		s.active, s.startTS = true, ts
	}
	c := &s.cur
	n := min(c.sent+1, c.frames)
	DTMFEvent{
		Event:    c.event,
		End:      c.sent >= c.frames-1,
		Volume:   DTMFVolume,
		Duration: uint16(min(n*FrameSamples, 0xffff)),
	}.Put(b)
	marker = c.sent == 0
	c.sent++
	if c.sent >= c.frames+dtmfEndRepeats-1 {
		s.active, s.gap = false, dtmfGapTicks
	}
	return s.startTS, marker, true
}

// Interrupt abandons the event being sent, if any (its receiver ends it by
// the missing-end timeout); queued events follow after the usual gap.
func (s *DTMFSender) Interrupt() {
	if s.active {
		s.active, s.gap = false, dtmfGapTicks
	}
}

// Idle reports whether no event is queued or being sent.
func (s *DTMFSender) Idle() bool { return !s.active && len(s.queue) == 0 }

// Reset drops the queued events and the one being sent.
func (s *DTMFSender) Reset() { *s = DTMFSender{} }
