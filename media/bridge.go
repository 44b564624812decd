package media

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/zaf/g711"
)

// Sequence discontinuities that make a bridge leg re-anchor its mapping, as
// in RFC 3550 Appendix A.1: a jump ahead of more than maxDropout packets or
// back by more than maxMisorder means the source restarted.
const (
	maxDropout  = 3000
	maxMisorder = 100
)

// Direct G.711 law conversion tables (ITU-T G.711 tables 3 and 4, as zaf/g711 has them).
var ulawToAlaw, alawToUlaw [256]byte

func init() {
	for i := range 256 {
		ulawToAlaw[i] = g711.Ulaw2AlawFrame(uint8(i))
		alawToUlaw[i] = g711.Alaw2UlawFrame(uint8(i))
	}
}

// BridgeStats is a snapshot of a Bridge's counters, accumulated over every
// Start/Stop cycle.
type BridgeStats struct {
	AToB, BToA    uint64 // packets relayed (audio and events) from a to b, from b to a
	Transcoded    uint64 // audio packets converted between PCMU and PCMA (both ways)
	Events        uint64 // RFC 4733 packets relayed (included in AToB/BToA)
	EventsDropped uint64 // RFC 4733 packets not relayed: the destination has no telephone-event payload type
	// Dropped counts all packets received while bridged and not relayed:
	// EventsDropped, comfort noise and unknown payload types (the other leg
	// did not negotiate them), packets older than a re-anchored mapping, and
	// packets for a destination that has ended or has no address yet.
	Dropped    uint64
	SendErrors uint64 // relayed packets the destination socket failed to send
}

// Bridge relays RTP between two sessions as it arrives, never re-paced:
// packets received on a are sent out of b and vice versa. Each packet is
// rewritten into the destination session's SSRC, sequence and timestamp space,
// continuous with what that session sent before (prompts, music on hold) and
// after (when the bridge stops): sequence numbers carry on (gaps and reordering
// of the source are kept), timestamps carry on from the destination's last
// packet plus the real time since, and the first relayed packet has the
// marker bit. Audio is converted between PCMU and PCMA only when the two legs'
// codecs differ (table look-ups, no allocation). RFC 4733 telephone-events
// are passed through with the destination's negotiated event payload type, or
// dropped if it has none; the receiving session still decodes them into its
// Digits either way. Comfort noise and other payload types are dropped, and
// header extensions and CSRCs are not passed on.
//
// Relaying runs on the receiving session's reader (goroutine or poller loop) and allocates
// nothing; the audio sink (SetAudioSink) still sees the received audio. While
// a bridge is started, the sessions' generated media (Play, Loop, SendDTMF) is
// paused. A session may be in only one started Bridge at a time. Start and
// Stop may be repeated (hold/unhold) and are safe for concurrent use; do not
// call them from an audio sink.
type Bridge struct {
	a, b   *Session
	ab, ba bridgeLeg // a→b, b→a

	mu      sync.Mutex // serialises Start and Stop
	running bool
}

// bridgeLeg relays one direction: what src receives goes out of dst.
type bridgeLeg struct {
	src, dst *Session

	// Guarded by dst.mu: the mapping from the source's SSRC, sequence and
	// timestamp space into the destination's.
	anchored  bool
	srcSSRC   uint32
	srcMaxSeq uint16 // highest source sequence number seen since the anchor
	seqOff    uint16 // destination seq = source seq + seqOff
	tsOff     uint32 // destination ts = source ts + tsOff
	anchorSeq uint16 // source seq of the anchor packet: older ones are dropped...
	fresh     bool   // ...while the source is within maxMisorder of it

	buf [rxBufferSize]byte // outgoing packet; only src's reader goroutine touches it

	relayed, transcoded, events, eventsDropped, dropped, sendErrors atomic.Uint64
}

// NewBridge returns a stopped bridge between a and b. Call Start.
func NewBridge(a, b *Session) *Bridge {
	br := &Bridge{a: a, b: b}
	br.ab.src, br.ab.dst = a, b
	br.ba.src, br.ba.dst = b, a
	return br
}

// Start stops the generated media of both sessions at once (the current
// playbacks end, their channels close; queued RFC 4733 events wait) and starts
// relaying. When it returns, no generated packet is still being sent, so the
// first relayed packet immediately follows the last prompt or music packet
// with nothing after it. Start on a started bridge does nothing.
func (br *Bridge) Start() {
	br.mu.Lock()
	defer br.mu.Unlock()
	if br.running {
		return
	}
	br.running = true
	pb := br.b.claimOutput(&br.ab)
	pa := br.a.claimOutput(&br.ba)
	pb.finish()
	pa.finish()
	br.a.waitSends() // a tick may be sending a packet built before the claim
	br.b.waitSends()
	br.a.setRelay(&br.ab, nil)
	br.b.setRelay(&br.ba, nil)
}

// Stop stops relaying. When it returns, no relayed packet is still being sent
// and both sessions may play prompts or music on hold again, continuing the
// sequence and timestamps of the relayed packets. Stop on a stopped bridge
// does nothing.
func (br *Bridge) Stop() {
	br.mu.Lock()
	defer br.mu.Unlock()
	if !br.running {
		return
	}
	br.running = false
	br.a.setRelay(nil, &br.ab)
	br.b.setRelay(nil, &br.ba)
	// A reader that picked up its relay before the line above is refused by
	// the owner check from here on; those that passed it are drained.
	br.b.revokeOutput(&br.ab)
	br.a.revokeOutput(&br.ba)
	br.a.waitSends()
	br.b.waitSends()
	br.b.resumeOutput(&br.ab)
	br.a.resumeOutput(&br.ba)
}

// Stats returns a snapshot of the bridge's counters.
func (br *Bridge) Stats() BridgeStats {
	return BridgeStats{
		AToB:          br.ab.relayed.Load(),
		BToA:          br.ba.relayed.Load(),
		Transcoded:    br.ab.transcoded.Load() + br.ba.transcoded.Load(),
		Events:        br.ab.events.Load() + br.ba.events.Load(),
		EventsDropped: br.ab.eventsDropped.Load() + br.ba.eventsDropped.Load(),
		Dropped:       br.ab.dropped.Load() + br.ba.dropped.Load(),
		SendErrors:    br.ab.sendErrors.Load() + br.ba.sendErrors.Load(),
	}
}

// claimOutput pauses s's generated media and lets l send out of s. It returns
// the playback it stopped, to be finished without the lock.
func (s *Session) claimOutput(l *bridgeLeg) *playback {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.cur
	s.cur = nil
	s.txPaused = true
	s.txOwner = l
	s.tx.dtmf.Interrupt()
	l.anchored = false
	return cur
}

// revokeOutput stops l's relaying out of s; generated media stays paused.
func (s *Session) revokeOutput(l *bridgeLeg) {
	s.mu.Lock()
	if s.txOwner == l {
		s.txOwner = nil
	}
	s.mu.Unlock()
}

// resumeOutput lets generated media go out of s again after l's bridge stopped.
func (s *Session) resumeOutput(l *bridgeLeg) {
	s.mu.Lock()
	if s.txOwner == nil || s.txOwner == l {
		s.txPaused = false
		s.tx.newSpurt = true
	}
	s.mu.Unlock()
}

// setRelay sets the leg relaying what s receives, if the current one is old.
func (s *Session) setRelay(l, old *bridgeLeg) {
	s.mu.Lock()
	if old == nil || s.relay == old {
		s.relay = l
	}
	s.mu.Unlock()
}

// forward relays pkt, received by l.src in codec src (or an RFC 4733 event
// when event is set), out of l.dst. It runs on l.src's reader goroutine: the
// mapping is updated under dst.mu, the packet is built and sent without it.
func (l *bridgeLeg) forward(pkt *rtp.Packet, src Codec, event bool, now time.Time) {
	dst := l.dst
	dst.mu.Lock()
	to := dst.latched
	if !to.IsValid() {
		to = dst.remote
	}
	pt, dstCodec := dst.audioPT, dst.codec
	if event {
		pt = dst.dtmfPT
	}
	switch {
	case dst.txOwner != l || dst.ended.Load() || !dst.hasSocket() || !to.IsValid() || dst.sendOff:
		dst.mu.Unlock()
		l.dropped.Add(1)
		return
	case event && pt == 0:
		dst.mu.Unlock()
		l.eventsDropped.Add(1)
		l.dropped.Add(1)
		return
	}
	tx := &dst.tx
	marker := pkt.Marker
	d := int16(pkt.SequenceNumber - l.srcMaxSeq)
	if !l.anchored || pkt.SSRC != l.srcSSRC || d > maxDropout || d < -maxMisorder {
		// First packet of this bridge, or the source restarted: continue
		// the destination's own sequence and timestamps from here.
		l.anchored, l.srcSSRC, l.srcMaxSeq = true, pkt.SSRC, pkt.SequenceNumber
		l.seqOff = tx.seq - pkt.SequenceNumber
		l.tsOff = dst.nextTSLocked(now) - pkt.Timestamp
		l.anchorSeq, l.fresh = pkt.SequenceNumber, true
		marker = true
	} else if d > 0 {
		l.srcMaxSeq = pkt.SequenceNumber
		if l.fresh && l.srcMaxSeq-l.anchorSeq > maxMisorder {
			l.fresh = false // no packet from before the anchor can come now
		}
	} else if l.fresh && int16(pkt.SequenceNumber-l.anchorSeq) < 0 {
		// Late, from before the anchor: its number may have been used
		// (by prompts or an earlier stream) already.
		dst.mu.Unlock()
		l.dropped.Add(1)
		return
	}
	seq := pkt.SequenceNumber + l.seqOff
	ts := pkt.Timestamp + l.tsOff
	if int16(seq+1-tx.seq) > 0 {
		tx.seq = seq + 1
	}
	dst.noteSentLocked(ts, now)
	tx.rebase = true
	ssrc := tx.ssrc
	dst.sending.Add(1)
	dst.mu.Unlock()

	h := rtp.Header{Version: 2, Marker: marker, PayloadType: pt, SequenceNumber: seq, Timestamp: ts, SSRC: ssrc}
	if n := l.build(h, pkt.Payload, src, dstCodec, event); n > 0 && dst.send(l.buf[:n], to) {
		l.relayed.Add(1)
		if event {
			l.events.Add(1)
		}
	} else {
		l.sendErrors.Add(1)
	}
	dst.sending.Add(-1)
}

// build writes the RTP packet (header h, then payload, converted from src to
// dst law for audio when they differ) into l.buf and returns its length, 0 if
// the header does not fit (a bare header always does).
func (l *bridgeLeg) build(h rtp.Header, payload []byte, src, dst Codec, event bool) int {
	hn, err := h.MarshalTo(l.buf[:])
	if err != nil {
		return 0
	}
	out := l.buf[hn:]
	payload = payload[:min(len(payload), len(out))]
	switch {
	case event || src == dst:
		copy(out, payload)
	case dst == PCMA:
		l.transcoded.Add(1)
		for i, v := range payload {
			out[i] = ulawToAlaw[v]
		}
	default:
		l.transcoded.Add(1)
		for i, v := range payload {
			out[i] = alawToUlaw[v]
		}
	}
	return hn + len(payload)
}
