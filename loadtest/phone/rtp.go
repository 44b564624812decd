package phone

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/pion/rtp"
)

// AudioStats describes the RTP a call has received so far.
type AudioStats struct {
	Packets      int     // all RTP packets received
	AudioPackets int     // packets in the negotiated codec
	EventPackets int     // telephone-event packets
	OtherPackets int     // packets of any other payload type (not decoded)
	PayloadTypes []uint8 // distinct payload types, in order first seen
	SSRCChanges  int     // times the SSRC changed after the first packet
	Lost         int     // packets missing from sequence gaps
	RecentRMS    float64 // dBFS of the decoded audio of the last 25 frames (500 ms)
	TotalRMS     float64 // dBFS of all decoded audio
	FirstPacket  time.Time
	LastPacket   time.Time
	Source       netip.AddrPort // sender of the last packet
}

// media is one call's RTP stream: one UDP socket, a reader and a paced sender.
type media struct {
	conn   *net.UDPConn
	log    *slog.Logger
	remote netip.AddrPort
	codec  uint8
	dtmf   bool
	dtmfPT uint8
	silent bool // send silence when idle

	jobs chan *sendJob

	mu         sync.Mutex
	st         AudioStats
	sumSquares float64 // of all decoded samples, scaled to ±1
	samples    int64
	lastSSRC   uint32
	lastSeq    uint16
	recent     [recentFrames]float64 // mean squares of the last frames
	frames     int64                 // decoded audio frames so far
	levels     [rmsHistory]float32   // dBFS of each frame, ring indexed by frames
	tone       [toneWindow]float64   // last samples, ring
	tonePos    int
	evSeen     bool
	evSSRC     uint32
	evTS       uint32
	digits     chan rune
	digitLog   []rune
	pcm        [1500]int16
}

func newMedia(conn *net.UDPConn, log *slog.Logger, remote netip.AddrPort, codec uint8, dtmf bool, dtmfPT uint8, silent bool, digits chan rune) *media {
	m := &media{
		conn: conn, log: log, remote: remote, codec: codec,
		dtmf: dtmf, dtmfPT: dtmfPT, silent: silent,
		jobs:   make(chan *sendJob),
		digits: digits,
	}
	m.st.RecentRMS, m.st.TotalRMS = SilenceDBFS, SilenceDBFS
	return m
}

// readLoop receives RTP until the socket is closed.
func (m *media) readLoop() {
	buf := make([]byte, 1500)
	var p rtp.Packet
	for {
		n, from, err := m.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				m.log.Debug("rtp read", "error", err)
			}
			return
		}
		if err := p.Unmarshal(buf[:n]); err != nil {
			continue
		}
		m.receive(&p, from, time.Now())
	}
}

func (m *media) receive(p *rtp.Packet, from netip.AddrPort, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := &m.st
	if st.Packets == 0 {
		st.FirstPacket = now
	} else if p.SSRC != m.lastSSRC {
		st.SSRCChanges++
	} else if gap := p.SequenceNumber - m.lastSeq - 1; gap > 0 && gap < 1000 {
		st.Lost += int(gap)
	}
	if st.Packets == 0 || p.SSRC != m.lastSSRC || int16(p.SequenceNumber-m.lastSeq) > 0 {
		m.lastSSRC, m.lastSeq = p.SSRC, p.SequenceNumber
	}
	st.Packets++
	st.LastPacket = now
	st.Source = from
	if !slices.Contains(st.PayloadTypes, p.PayloadType) {
		st.PayloadTypes = append(st.PayloadTypes, p.PayloadType)
	}
	switch {
	case p.PayloadType == m.codec:
		st.AudioPackets++
		m.audio(decodeFrame(m.codec, p.Payload, m.pcm[:]))
	case m.dtmf && p.PayloadType == m.dtmfPT:
		st.EventPackets++
		m.event(p)
	default:
		st.OtherPackets++
	}
}

// audio accounts one decoded frame. m.mu is held.
func (m *media) audio(pcm []int16) {
	if len(pcm) == 0 {
		return
	}
	var sq float64
	for _, s := range pcm {
		v := float64(s) / 32768
		sq += v * v
		m.tone[m.tonePos] = v
		m.tonePos = (m.tonePos + 1) % toneWindow
	}
	m.sumSquares += sq
	m.samples += int64(len(pcm))
	ms := sq / float64(len(pcm))
	m.recent[m.frames%recentFrames] = ms
	m.levels[m.frames%rmsHistory] = float32(dBFS(ms))
	m.frames++
	var rsum float64
	n := min(m.frames, recentFrames)
	for i := range n {
		rsum += m.recent[i]
	}
	m.st.RecentRMS = dBFS(rsum / float64(n))
	m.st.TotalRMS = dBFS(m.sumSquares / float64(m.samples))
}

// event de-duplicates RFC 4733 packets on (SSRC, timestamp) and reports each
// event once, on its first packet. m.mu is held.
func (m *media) event(p *rtp.Packet) {
	ev, ok := parseTelephoneEvent(p.Payload)
	if !ok {
		return
	}
	if m.evSeen && m.evSSRC == p.SSRC && m.evTS == p.Timestamp {
		return
	}
	m.evSeen, m.evSSRC, m.evTS = true, p.SSRC, p.Timestamp
	if d, ok := dtmfDigit(ev.Event); ok {
		m.pushDigit(d)
	}
}

// pushDigit records a received digit. m.mu is held.
func (m *media) pushDigit(d rune) {
	m.digitLog = append(m.digitLog, d)
	select {
	case m.digits <- d:
	default:
		m.log.Warn("digit channel full, digit dropped from channel", "digit", string(d))
	}
}

func (m *media) stats() AudioStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.st
	st.PayloadTypes = slices.Clone(st.PayloadTypes)
	return st
}

// levelsSince returns the frame counter and calls f for the levels of the
// frames received after frame from (at most rmsHistory of them).
func (m *media) levelsSince(from int64, f func(dBFS float32)) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	from = max(from, m.frames-rmsHistory)
	for i := from; i < m.frames; i++ {
		f(m.levels[i%rmsHistory])
	}
	return m.frames
}

func (m *media) detectTone(freq float64) float64 {
	m.mu.Lock()
	n := int(min(m.samples, toneWindow))
	x := make([]float64, 0, n)
	start := (m.tonePos - n + toneWindow) % toneWindow
	for i := range n {
		x = append(x, m.tone[(start+i)%toneWindow])
	}
	m.mu.Unlock()
	return goertzel(x, freq)
}

// A sendJob produces one packet per 20 ms tick until it reports done.
type sendJob struct {
	// frame writes at most one packet for this tick; it returns true when the
	// job is complete (the packet written on that tick, if any, is its last).
	frame func(s *sender) (done bool, err error)
	done  chan error
}

// sender is the outgoing RTP state, owned by the sendLoop goroutine.
type sender struct {
	m       *media
	pkt     rtp.Packet
	buf     [1500]byte
	payload [1500]byte
	pcm     [frameSamples]int16
	silence [frameSamples]byte
	sent    bool
}

// sendLoop sends one packet per 20 ms on drift-free deadlines until ctx ends.
func (m *media) sendLoop(ctx context.Context) {
	s := &sender{m: m}
	s.pkt.Version = 2
	s.pkt.SSRC = rand.Uint32()
	s.pkt.SequenceNumber = uint16(rand.Uint32())
	s.pkt.Timestamp = rand.Uint32()
	encodeFrame(m.codec, s.pcm[:], s.silence[:])

	var cur *sendJob
	t0 := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	defer func() {
		if cur != nil {
			cur.done <- ErrCallEnded
		}
	}()
	for n := int64(0); ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		if cur == nil {
			select {
			case cur = <-m.jobs:
			default:
			}
		}
		var err error
		if cur != nil {
			var done bool
			if done, err = cur.frame(s); done || err != nil {
				cur.done <- err
				cur = nil
			}
		} else if m.silent {
			err = s.audio(s.silence[:], false)
		}
		if err != nil && ctx.Err() == nil {
			m.log.Debug("rtp write", "error", err)
		}
		s.pkt.Timestamp += frameSamples
		next := t0.Add(time.Duration(n+1) * frameDur * time.Millisecond)
		wait := time.Until(next)
		if wait < -5*frameDur*time.Millisecond { // far behind (paused process): resynchronise
			t0, n, wait = time.Now(), -1, 0
		}
		timer.Reset(max(wait, 0))
	}
}

// audio sends one frame of G.711 payload at the current timestamp.
func (s *sender) audio(payload []byte, marker bool) error {
	return s.write(s.m.codec, payload, marker, s.pkt.Timestamp)
}

func (s *sender) write(pt uint8, payload []byte, marker bool, ts uint32) error {
	h := s.pkt.Header
	h.PayloadType = pt
	h.Marker = marker || !s.sent
	h.Timestamp = ts
	p := rtp.Packet{Header: h, Payload: payload}
	n, err := p.MarshalTo(s.buf[:])
	if err != nil {
		return err
	}
	s.pkt.SequenceNumber++
	s.sent = true
	_, err = s.m.conn.WriteToUDPAddrPort(s.buf[:n], s.m.remote)
	return err
}

// run queues job on the sender and waits for it to finish.
func (m *media) run(ctx context.Context, callDone <-chan struct{}, frame func(s *sender) (bool, error)) error {
	j := &sendJob{frame: frame, done: make(chan error, 1)}
	select {
	case m.jobs <- j:
	case <-callDone:
		return ErrCallEnded
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-j.done:
		return err
	case <-callDone:
		return ErrCallEnded
	}
}

// toneJob sends frames of a sine at freq for the given number of frames.
func toneJob(freq float64, frames int, marker bool) func(s *sender) (bool, error) {
	var phase float64
	step := 2 * math.Pi * freq / sampleRate
	i := 0
	return func(s *sender) (bool, error) {
		for k := range s.pcm {
			s.pcm[k] = int16(toneAmplitude * math.Sin(phase))
			phase = math.Mod(phase+step, 2*math.Pi)
		}
		err := s.audio(encodeFrame(s.m.codec, s.pcm[:], s.payload[:]), marker && i == 0)
		i++
		return i >= frames, err
	}
}

// dtmfJob sends digits as RFC 4733 events of dur each (at least one 20 ms
// packet): all packets of an event share its start timestamp, the first has
// the marker bit, the duration grows by 160 per packet, and the end packet is
// sent three times. Between digits it sends 100 ms of audio (silence or nothing).
func dtmfJob(events []uint8, dur time.Duration) func(s *sender) (bool, error) {
	packets := max(1, int(dur/(frameDur*time.Millisecond)))
	packets = min(packets, 0xffff/frameSamples)
	const (
		inEvent = iota
		inEnd
		inGap
	)
	idx, phase, k := 0, inEvent, 0
	var start uint32
	return func(s *sender) (bool, error) {
		var err error
		switch phase {
		case inEvent:
			if k == 0 {
				start = s.pkt.Timestamp
			}
			ev := telephoneEvent{Event: events[idx], Volume: dtmfVolume, Duration: uint16((k + 1) * frameSamples)}
			err = s.write(s.m.dtmfPT, ev.appendTo(s.payload[:0]), k == 0, start)
			if k++; k == packets {
				phase, k = inEnd, 0
			}
		case inEnd:
			ev := telephoneEvent{Event: events[idx], End: true, Volume: dtmfVolume, Duration: uint16(packets * frameSamples)}
			err = s.write(s.m.dtmfPT, ev.appendTo(s.payload[:0]), false, start)
			if k++; k == dtmfEndRepeat {
				phase, k = inGap, 0
				if idx == len(events)-1 {
					return true, err
				}
			}
		case inGap:
			if s.m.silent {
				err = s.audio(s.silence[:], false)
			}
			if k++; k == dtmfGapFrames {
				phase, k = inEvent, 0
				idx++
			}
		}
		return false, err
	}
}
