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

	"github.com/hotline12345/hotline/media"
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

// rtpStream is one call's RTP: one UDP socket with a reader goroutine, and a
// place on the phone's media.Scheduler whose 20 ms ticks send its packets.
type rtpStream struct {
	conn   *net.UDPConn
	log    *slog.Logger
	remote netip.AddrPort
	codec  media.Codec
	dtmf   bool
	dtmfPT uint8
	silent bool // send silence when idle

	jobs   chan *sendJob
	remove func() // leaves the scheduler; set before the first tick

	mu         sync.Mutex // guards the receive side below
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
	dtmfRx     media.DTMFReceiver
	rxDigits   [2]rune // scratch for dtmfRx
	digits     chan rune
	digitLog   []rune
	pcm        [1500]int16

	txMu sync.Mutex // held by Tick and stop
	tx   sender
}

func newRTPStream(conn *net.UDPConn, log *slog.Logger, remote netip.AddrPort, codec uint8, dtmf bool, dtmfPT uint8, silent bool, digits chan rune) *rtpStream {
	m := &rtpStream{
		conn: conn, log: log, remote: remote, codec: media.Codec(codec),
		dtmf: dtmf, dtmfPT: dtmfPT, silent: silent,
		jobs:   make(chan *sendJob),
		digits: digits,
	}
	m.st.RecentRMS, m.st.TotalRMS = SilenceDBFS, SilenceDBFS
	s := &m.tx
	s.m = m
	s.hdr = rtp.Header{Version: 2, SSRC: rand.Uint32(), SequenceNumber: uint16(rand.Uint32())}
	s.ts0 = rand.Uint32()
	m.codec.Encode(s.silence[:], s.pcm[:])
	return m
}

// readLoop receives RTP until the socket is closed.
func (m *rtpStream) readLoop() {
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

func (m *rtpStream) receive(p *rtp.Packet, from netip.AddrPort, now time.Time) {
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
	case p.PayloadType == uint8(m.codec):
		st.AudioPackets++
		pcm := m.pcm[:min(len(p.Payload), len(m.pcm))]
		m.codec.Decode(pcm, p.Payload)
		m.audio(pcm)
	case m.dtmf && p.PayloadType == m.dtmfPT:
		st.EventPackets++
		for _, d := range m.dtmfRx.Receive(m.rxDigits[:0], now, p.SSRC, p.Timestamp, p.Payload) {
			m.pushDigit(d)
		}
	default:
		st.OtherPackets++
	}
}

// audio accounts one decoded frame. m.mu is held.
func (m *rtpStream) audio(pcm []int16) {
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

// pushDigit records a received digit. m.mu is held.
func (m *rtpStream) pushDigit(d rune) {
	m.digitLog = append(m.digitLog, d)
	select {
	case m.digits <- d:
	default:
		m.log.Warn("digit channel full, digit dropped from channel", "digit", string(d))
	}
}

func (m *rtpStream) stats() AudioStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.st
	st.PayloadTypes = slices.Clone(st.PayloadTypes)
	return st
}

// levelsSince returns the frame counter and calls f for the levels of the
// frames received after frame from (at most rmsHistory of them).
func (m *rtpStream) levelsSince(from int64, f func(dBFS float32)) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	from = max(from, m.frames-rmsHistory)
	for i := from; i < m.frames; i++ {
		f(m.levels[i%rmsHistory])
	}
	return m.frames
}

func (m *rtpStream) detectTone(freq float64) float64 {
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

// sender is the outgoing RTP state, guarded by rtpStream.txMu.
type sender struct {
	m         *rtpStream
	cur       *sendJob
	stopped   bool
	hdr       rtp.Header // SSRC and the next sequence number
	ts0       uint32     // RTP timestamp of the first tick
	first     time.Time  // deadline of the first tick
	haveFirst bool
	ts        uint32 // RTP timestamp of this tick: real time since the first
	sent      bool
	buf       [1500]byte
	payload   [1500]byte
	pcm       [media.FrameSamples]int16
	silence   [media.FrameSamples]byte
}

// Tick implements media.Stream: every 20 ms on the scheduler's drift-free
// deadlines it ends an RFC 4733 event whose end never came, and sends one
// packet of the current job, or silence.
func (m *rtpStream) Tick(deadline time.Time) {
	m.mu.Lock()
	if m.dtmfRx.Open() {
		for _, d := range m.dtmfRx.Expire(m.rxDigits[:0], deadline) {
			m.pushDigit(d)
		}
	}
	m.mu.Unlock()

	m.txMu.Lock()
	defer m.txMu.Unlock()
	s := &m.tx
	if s.stopped {
		return
	}
	if !s.haveFirst {
		s.first, s.haveFirst = deadline, true
	}
	s.ts = s.ts0 + uint32(int64(deadline.Sub(s.first)/media.FrameDuration)*media.FrameSamples)
	if s.cur == nil {
		select {
		case s.cur = <-m.jobs:
		default:
		}
	}
	var err error
	if s.cur != nil {
		var done bool
		if done, err = s.cur.frame(s); done || err != nil {
			s.cur.done <- err
			s.cur = nil
		}
	} else if m.silent {
		err = s.audio(s.silence[:], false)
	}
	if err != nil {
		m.log.Debug("rtp write", "error", err)
	}
}

// stop leaves the scheduler and fails the job in progress. After it returns
// nothing more is sent.
func (m *rtpStream) stop() {
	m.remove()
	m.txMu.Lock()
	defer m.txMu.Unlock()
	if s := &m.tx; s.cur != nil {
		s.cur.done <- ErrCallEnded
		s.cur = nil
	}
	m.tx.stopped = true
}

// audio sends one frame of G.711 payload at this tick's timestamp.
func (s *sender) audio(payload []byte, marker bool) error {
	return s.write(uint8(s.m.codec), payload, marker, s.ts)
}

func (s *sender) write(pt uint8, payload []byte, marker bool, ts uint32) error {
	p := rtp.Packet{Header: s.hdr, Payload: payload}
	p.PayloadType, p.Marker, p.Timestamp = pt, marker || !s.sent, ts
	n, err := p.MarshalTo(s.buf[:])
	if err != nil {
		return err
	}
	s.hdr.SequenceNumber++
	s.sent = true
	_, err = s.m.conn.WriteToUDPAddrPort(s.buf[:n], s.m.remote)
	return err
}

// run queues job on the sender and waits for it to finish.
func (m *rtpStream) run(ctx context.Context, callDone <-chan struct{}, frame func(s *sender) (bool, error)) error {
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
	step := 2 * math.Pi * freq / media.ClockRate
	i := 0
	return func(s *sender) (bool, error) {
		for k := range s.pcm {
			s.pcm[k] = int16(toneAmplitude * math.Sin(phase))
			phase = math.Mod(phase+step, 2*math.Pi)
		}
		frame := s.payload[:len(s.pcm)]
		s.m.codec.Encode(frame, s.pcm[:])
		err := s.audio(frame, marker && i == 0)
		i++
		return i >= frames, err
	}
}

// dtmfJob sends events (RFC 4733 event codes) of dur each with media's
// DTMFSender, the one the server sends with; between events it sends audio
// (silence, or nothing).
func dtmfJob(events []uint8, dur time.Duration) func(s *sender) (bool, error) {
	var tx media.DTMFSender
	for _, ev := range events {
		tx.Queue(ev, dur)
	}
	var payload [media.DTMFPayloadSize]byte
	return func(s *sender) (bool, error) {
		evTS, marker, ok := tx.Tick(payload[:], s.ts)
		if !ok { // the gap between two events
			if s.m.silent {
				return false, s.audio(s.silence[:], false)
			}
			return false, nil
		}
		err := s.write(s.m.dtmfPT, payload[:], marker, evTS)
		return tx.Idle(), err
	}
}
