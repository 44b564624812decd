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

// dtmfSender produces the packets of one outgoing event, one per 20 ms tick
// (RFC 4733 §2.5.1): all share the start timestamp, the first has the marker,
// the duration grows by 160 per tick, the end packet goes out three times.
type dtmfSender struct {
	event   uint8
	frames  int    // ticks of tone: ceil(d / 20 ms)
	sent    int    // packets sent so far
	startTS uint32 // RTP timestamp of the first packet
}

func newDTMFSender(event uint8, d time.Duration) dtmfSender {
	if d <= 0 {
		d = DTMFDefaultLength
	}
	d = min(d, DTMFMaxDuration)
	frames := int((d + FrameDuration - 1) / FrameDuration)
	return dtmfSender{event: event, frames: frames}
}

// next writes the next payload into b[:4] and reports the marker bit; ok is
// false when the event is complete.
func (d *dtmfSender) next(b []byte) (marker, ok bool) {
	total := d.frames + dtmfEndRepeats - 1
	if d.sent >= total {
		return false, false
	}
	n := min(d.sent+1, d.frames)
	DTMFEvent{
		Event:    d.event,
		End:      d.sent >= d.frames-1,
		Volume:   DTMFVolume,
		Duration: uint16(min(n*FrameSamples, 0xffff)),
	}.Put(b)
	marker = d.sent == 0
	d.sent++
	return marker, true
}
