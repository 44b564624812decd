package media

import (
	"errors"
	"math"
	"sync"
	"time"

	"github.com/pion/rtp"
)

// MaxMixMembers bounds a Mixer: a conference of a hotline call has the citizen, the agent,
// a supervisor and a department at most.
const MaxMixMembers = 8

// mixBuffer is how much received audio a member keeps (samples): three 20 ms frames absorb
// the jitter between the source's packets and the mixer's tick; a tick that finds more
// than mixKeep samples drops the oldest, so the delay stays under 40 ms.
const (
	mixBuffer = 3 * FrameSamples
	mixKeep   = 2 * FrameSamples
)

var (
	// ErrMixerFull is returned by Mixer.Add when the mixer has MaxMixMembers sessions.
	ErrMixerFull = errors.New("media: mixer full")
	// ErrMixerClosed is returned by Mixer.Add after Close.
	ErrMixerClosed = errors.New("media: mixer closed")
)

// Mixer mixes the audio of a few sessions (a three-way call, a supervisor listening,
// whispering or barging in): each member's received G.711 is decoded to 16-bit linear,
// and every 20 ms each member is sent the saturated sum of the members it hears — never
// itself (N-1 mixing) — encoded in its own law. Who hears whom is set per listener
// (SetHears); a new member hears nobody and nobody hears it until told.
//
// The mixer is one Stream of the Scheduler (no ticker of its own). Each tick takes at most
// one 20 ms frame of each member's received audio, silence if none arrived; a member keeps
// at most three frames (older audio is dropped), so memory is bounded and the delay stays
// under 40 ms. A member's generated media (prompts, music on hold) is paused while it is
// in the mixer, as in a Bridge, but RFC 4733 events queued with SendDTMF go out in place
// of the mix; a session may be in a Bridge or a Mixer, not both.
// Safe for concurrent use; do not call it from an audio sink.
type Mixer struct {
	mu      sync.Mutex // guards members, closed; held by the tick while it mixes (no I/O)
	members []*mixMember
	closed  bool
	remove  func()

	// The tick's own (one tick runs at a time).
	active [MaxMixMembers]*mixMember
}

// mixMember is one session in a mixer.
type mixMember struct {
	s     *Session
	token *bridgeLeg // owns s's output while the session is a member (as a Bridge leg would)
	hears []*mixMember

	// Received audio, written by the session's reader, read by the tick.
	inMu sync.Mutex
	ring [mixBuffer]int16
	r, n int

	// The tick's own.
	frame    [FrameSamples]int16 // this tick's input
	out      [FrameSamples]int16 // this tick's mix for the member
	buf      [rtpHeaderSize + FrameSamples]byte
	event    [DTMFPayloadSize]byte
	anchored bool // guarded by s.mu: the first mixed packet continues the session's stream
	ts       uint32
}

// NewMixer returns an empty mixer paced by sched. Close it when done.
func NewMixer(sched *Scheduler) *Mixer {
	m := &Mixer{}
	m.remove = sched.Add(m)
	return m
}

// Add makes s a member: its generated media stops (the current playback ends) and it hears
// nobody and is heard by nobody until SetHears. Adding a member twice does nothing.
func (m *Mixer) Add(s *Session) error {
	m.mu.Lock()
	switch {
	case m.closed:
		m.mu.Unlock()
		return ErrMixerClosed
	case m.find(s) != nil:
		m.mu.Unlock()
		return nil
	case len(m.members) >= MaxMixMembers:
		m.mu.Unlock()
		return ErrMixerFull
	}
	mm := &mixMember{s: s, token: &bridgeLeg{dst: s}}
	m.members = append(m.members, mm)
	m.mu.Unlock()

	pb := s.claimOutput(mm.token)
	pb.finish()
	s.waitSends()
	s.mu.Lock()
	s.mix = mm
	s.mu.Unlock()
	return nil
}

// Remove takes s out of the mixer: nobody hears it any more, and its generated media may
// play again (continuing the mixed packets' sequence and timestamps).
func (m *Mixer) Remove(s *Session) {
	m.mu.Lock()
	mm := m.find(s)
	if mm != nil {
		m.detachLocked(mm)
	}
	m.mu.Unlock()
	if mm != nil {
		mm.release()
	}
}

// SetHears makes listener hear exactly sources (members; itself and non-members are
// ignored), from the next tick on.
func (m *Mixer) SetHears(listener *Session, sources ...*Session) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.find(listener)
	if l == nil {
		return
	}
	l.hears = l.hears[:0]
	for _, s := range sources {
		if src := m.find(s); src != nil && src != l {
			l.hears = append(l.hears, src)
		}
	}
}

// Close removes every member and leaves the scheduler. Idempotent.
func (m *Mixer) Close() {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.closed = true
	members := m.members
	m.members = nil
	m.mu.Unlock()
	m.remove()
	for _, mm := range members {
		mm.release()
	}
}

// Members is the number of sessions in the mixer.
func (m *Mixer) Members() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.members)
}

func (m *Mixer) find(s *Session) *mixMember {
	for _, mm := range m.members {
		if mm.s == s {
			return mm
		}
	}
	return nil
}

// detachLocked removes mm from the members and from every listener's sources.
func (m *Mixer) detachLocked(mm *mixMember) {
	for i, x := range m.members {
		if x == mm {
			m.members = append(m.members[:i], m.members[i+1:]...)
			break
		}
	}
	for _, l := range m.members {
		for i, x := range l.hears {
			if x == mm {
				l.hears = append(l.hears[:i], l.hears[i+1:]...)
				break
			}
		}
	}
}

// release gives the session its output back, once no mixed packet is being sent.
func (mm *mixMember) release() {
	s := mm.s
	s.mu.Lock()
	if s.mix == mm {
		s.mix = nil
	}
	s.mu.Unlock()
	s.revokeOutput(mm.token)
	s.waitSends()
	s.resumeOutput(mm.token)
}

// put stores received audio; it runs on the session's reader and never blocks for long.
func (mm *mixMember) put(payload []byte, c Codec) {
	mm.inMu.Lock()
	for len(payload) > 0 {
		if mm.n == mixBuffer { // full: drop the oldest
			mm.r = (mm.r + 1) % mixBuffer
			mm.n--
		}
		w := (mm.r + mm.n) % mixBuffer
		k := min(len(payload), mixBuffer-w, mixBuffer-mm.n)
		c.Decode(mm.ring[w:w+k], payload[:k])
		payload = payload[k:]
		mm.n += k
	}
	mm.inMu.Unlock()
}

// take moves one frame of received audio into frame (silence where none).
func (mm *mixMember) take() {
	mm.inMu.Lock()
	if mm.n > mixKeep { // late ticks or a burst: keep the newest
		d := mm.n - mixKeep
		mm.r = (mm.r + d) % mixBuffer
		mm.n -= d
	}
	k := min(mm.n, FrameSamples)
	for i := range k {
		mm.frame[i] = mm.ring[(mm.r+i)%mixBuffer]
	}
	mm.r = (mm.r + k) % mixBuffer
	mm.n -= k
	mm.inMu.Unlock()
	clear(mm.frame[k:])
}

// Tick implements Stream: one frame in from every member, one mixed frame out to each.
func (m *Mixer) Tick(deadline time.Time) {
	m.mu.Lock()
	n := copy(m.active[:], m.members)
	for _, mm := range m.active[:n] {
		mm.take()
	}
	for _, mm := range m.active[:n] {
		mixInto(&mm.out, mm.hears)
	}
	m.mu.Unlock()
	for i, mm := range m.active[:n] {
		mm.send(deadline)
		m.active[i] = nil
	}
}

// mixInto sums the sources' frames into out with saturation.
func mixInto(out *[FrameSamples]int16, sources []*mixMember) {
	switch len(sources) {
	case 0:
		clear(out[:])
		return
	case 1:
		*out = sources[0].frame
		return
	}
	for i := range out {
		var v int32
		for _, src := range sources {
			v += int32(src.frame[i])
		}
		out[i] = int16(max(math.MinInt16, min(math.MaxInt16, v)))
	}
}

// send encodes the member's mix and sends it out of its session, continuing the session's
// sequence numbers and timestamps.
func (mm *mixMember) send(deadline time.Time) {
	s := mm.s
	s.mu.Lock()
	to := s.latched
	if !to.IsValid() {
		to = s.remote
	}
	if s.txOwner != mm.token || s.ended.Load() || !s.hasSocket() || !to.IsValid() || s.sendOff {
		s.mu.Unlock()
		return
	}
	tx := &s.tx
	marker := false
	if !mm.anchored {
		mm.anchored, mm.ts, marker = true, s.nextTSLocked(deadline), true
	} else {
		mm.ts += FrameSamples
	}
	h := rtp.Header{Version: 2, Marker: marker, PayloadType: s.audioPT, SequenceNumber: tx.seq, Timestamp: mm.ts, SSRC: tx.ssrc}
	// RFC 4733 events queued on the session (SendDTMF: keys for a department's IVR)
	// pre-empt the mix, as they pre-empt prompts.
	var event []byte
	if evTS, evMarker, ok := tx.dtmf.Tick(tx.dtmfBuf[:], mm.ts); ok {
		if s.dtmfPT == 0 {
			s.mu.Unlock()
			return
		}
		h.PayloadType, h.Marker, h.Timestamp = s.dtmfPT, evMarker, evTS
		event = mm.event[:copy(mm.event[:], tx.dtmfBuf[:])]
	}
	tx.seq++
	s.noteSentLocked(mm.ts, deadline)
	tx.rebase = true
	codec := s.codec
	s.sending.Add(1)
	s.mu.Unlock()

	if hn, err := h.MarshalTo(mm.buf[:]); err == nil {
		n := hn + copy(mm.buf[hn:], event)
		if event == nil {
			codec.Encode(mm.buf[hn:], mm.out[:])
			n = hn + FrameSamples
		}
		s.send(mm.buf[:n], to)
	}
	s.sending.Add(-1)
}
