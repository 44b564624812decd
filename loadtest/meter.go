package loadtest

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hotline12345/hotline/media"
	"github.com/pion/rtp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// RTP of the caller audio the meter sends: G.711 in 20 ms frames.
const (
	frameSamples = media.FrameSamples
	pcmuPT       = uint8(media.PCMU)
	pcmaPT       = uint8(media.PCMA)
	rtpHeaderLen = 12 // a bare RTP header: no CSRCs, no extension
	// DefaultMeterSockets is how many shared UDP sockets a Meter opens.
	DefaultMeterSockets = 4
	meterReadBuffer     = 4 << 20 // capped by net.core.rmem_max
	meterWriteBuffer    = 1 << 20
	// meterBatch is how many datagrams one recvmmsg or sendmmsg system call moves at most.
	meterBatch = 64
	// toneLevel is the peak of the tone a stream sends, as a fraction of full scale (−10 dBFS).
	toneLevel = 0.316
	// toneMatch is the media.ToneRatio above which a received frame counts as the tone.
	toneMatch = 0.5
)

// RTPStats is what one call received (server → citizen) and sent.
type RTPStats struct {
	Packets      int64         `json:"packets"`       // RTP packets received
	AudioPackets int64         `json:"audio_packets"` // in the negotiated codec
	OtherPackets int64         `json:"other_packets"` // any other payload type
	Lost         int64         `json:"lost"`          // missing by sequence number (late arrivals taken back)
	Duplicates   int64         `json:"duplicates"`    // same sequence number again
	Late         int64         `json:"late"`          // arrived after a higher sequence number
	SSRCChanges  int64         `json:"ssrc_changes"`  // the sender's SSRC changed mid-call
	Jitter       time.Duration `json:"jitter_ns"`     // RFC 3550 §6.4.1 interarrival jitter at the end
	MaxJitter    time.Duration `json:"max_jitter_ns"` // highest value the jitter estimate reached
	Sent         int64         `json:"sent"`          // RTP packets the citizen sent
	SendErrors   int64         `json:"send_errors"`
	ToneFrames   int64         `json:"tone_frames,omitempty"` // audio frames carrying StreamOptions.Hear
}

// Expected returns received plus lost packets, the denominator of the loss ratio.
func (s RTPStats) Expected() int64 { return s.Packets + s.Lost }

// Meter sends and receives the RTP of many calls over a few shared UDP
// sockets. Each pair of sockets has one pacer: a media.Scheduler (the server's
// pacing wheel, one shard, one goroutine) that ticks its streams on drift-free
// deadlines (t0 + n·20 ms), streams spread over 1 ms slots; after each slot its
// packets leave together, one sendmmsg per socket, and then whatever the
// sockets received is taken without waiting, up to 64 datagrams per recvmmsg,
// and demultiplexed by the sender's address. Each datagram carries the
// kernel's arrival stamp (SO_TIMESTAMPNS), so reading it up to a millisecond
// later does not count as jitter (what the far end relays of the tester's own
// send lateness still does: the report shows the pacer's lateness beside it).
// No reader goroutines and no wake-up per packet: a thousand wake-ups a second
// per pacer whatever the load, which keeps the tester cheaper than the server
// it measures.
type Meter struct {
	ip    netip.Addr
	epoch time.Time
	socks []*meterSocket
	next  atomic.Uint64 // round-robin socket choice
	// pacers: one media.Scheduler (one shard, one goroutine) per socketsPerPacer
	// sockets, which it alone sends on and drains.
	pacers []*media.Scheduler

	closeMu sync.Once
}

type meterSocket struct {
	conn      *net.UDPConn
	pc        batchConn
	pacer     *media.Scheduler
	mu        sync.RWMutex // guards streams; held for reading while a packet is accounted
	streams   map[netip.AddrPort]*Stream
	strangers atomic.Uint64
	garbage   atomic.Uint64

	// The packets this slot's ticks queued, and the receive buffers; owned by the
	// scheduler's one shard goroutine.
	in     [meterBatch]ipv4.Message
	out    [meterBatch]ipv4.Message
	outBy  [meterBatch]*Stream
	outBuf [meterBatch][rtpHeaderLen + frameSamples]byte
	queued int
}

// batchConn is what the meter uses of golang.org/x/net's ipv4 and ipv6 PacketConn:
// recvmmsg and sendmmsg on Linux, one datagram per call elsewhere.
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// Stream is one call's RTP on a Meter.
type Stream struct {
	m      *Meter
	sock   *meterSocket
	remote netip.AddrPort
	raddr  *net.UDPAddr // remote, for sendmmsg
	codec  uint8
	dtmfPT uint8
	gone   atomic.Bool
	remove func() // leaves the scheduler

	dtmfMu   sync.Mutex
	dtmf     media.DTMFSender // digits queued by SendDigits, one packet per tick
	dtmfDone chan struct{}    // closed when they are sent; nil when none are queued

	tx txState // owned by the scheduler's tick
	rx rxState // owned by the socket's reader, under sock.mu (read lock)
}

type txState struct {
	ssrc      uint32
	seq       uint16
	ts0       uint32
	first     time.Time
	haveFirst bool
	spurt     bool               // next audio packet starts a talkspurt (marker)
	frame     [frameSamples]byte // silence, or StreamOptions.Tone
	event     [media.DTMFPayloadSize]byte
	sent      atomic.Int64
	errors    atomic.Int64
}

type rxState struct {
	st          RTPStats
	have        bool
	ssrc        uint32
	maxSeq      uint16
	haveTransit bool
	baseTS      uint32
	transit     int64   // ns
	jitter      float64 // ns

	hear      float64            // StreamOptions.Hear
	hearFrame [frameSamples]byte // the tone as the far end sends it in our codec
	pcm       [frameSamples]int16
}

// socketsPerPacer is how many sockets one pacing goroutine serves: two pacers for the
// default four sockets, so that a big run's sends and receives (most of it the kernel's
// work for each datagram) are not bound to one core.
const socketsPerPacer = 2

// NewMeter opens sockets shared UDP sockets on ip (0 = DefaultMeterSockets)
// and starts their pacers. Close it when done.
func NewMeter(ip netip.Addr, sockets int) (*Meter, error) {
	if sockets <= 0 {
		sockets = DefaultMeterSockets
	}
	m := &Meter{ip: ip, epoch: time.Now()}
	for range sockets {
		conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
		if err != nil {
			m.Close()
			return nil, fmt.Errorf("loadtest: meter socket: %w", err)
		}
		_ = conn.SetReadBuffer(meterReadBuffer) // best effort: capped by the kernel
		_ = conn.SetWriteBuffer(meterWriteBuffer)
		s := &meterSocket{conn: conn, streams: map[netip.AddrPort]*Stream{}}
		if ip.Is4() {
			s.pc = ipv4.NewPacketConn(conn)
		} else {
			s.pc = ipv6.NewPacketConn(conn)
		}
		stampArrivals(conn)
		for i := range s.out {
			s.out[i].Buffers = make([][]byte, 1)
			s.in[i].Buffers = [][]byte{make([]byte, 2048)}
			s.in[i].OOB = make([]byte, stampOOBLen)
		}
		m.socks = append(m.socks, s)
	}
	// The pacers start once every socket exists: each owns its sockets' queues from then on.
	for i := 0; i < len(m.socks); i += socketsPerPacer {
		group := m.socks[i:min(i+socketsPerPacer, len(m.socks))]
		p := media.NewScheduler(1)
		for _, s := range group {
			s.pacer = p
		}
		p.AfterSlot(func() { m.flush(group) })
		m.pacers = append(m.pacers, p)
	}
	return m, nil
}

// Close stops the pacers and closes the sockets.
func (m *Meter) Close() {
	m.closeMu.Do(func() {
		for _, p := range m.pacers {
			p.Close()
		}
		for _, s := range m.socks {
			s.conn.Close()
		}
	})
}

// StreamOptions is a stream's audio beyond silence, and the socket it uses.
type StreamOptions struct {
	// Local is the meter socket to send from and receive on (one NextAddr gave, named in
	// the call's SDP); zero: the next socket in turn.
	Local netip.AddrPort
	// Tone (Hz) is sent in every frame instead of silence. A multiple of 50 Hz, so that
	// every 20 ms frame is the same and they join without a click.
	Tone float64
	// Hear (Hz) is the tone expected from the far end: received audio frames carrying it
	// are counted in RTPStats.ToneFrames.
	Hear float64
}

// NextAddr returns the address of the next meter socket in turn, for a call's SDP
// (phone.Config.MediaAddr); pass it back as StreamOptions.Local.
func (m *Meter) NextAddr() netip.AddrPort {
	return m.socks[m.next.Add(1)%uint64(len(m.socks))].localAddr()
}

func (s *meterSocket) localAddr() netip.AddrPort {
	a := s.conn.LocalAddr().(*net.UDPAddr).AddrPort()
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}

// Add starts a stream of silence to remote (the server's RTP address from its SDP
// answer) in codec 0 (PCMU) or 8 (PCMA); dtmfPT is the negotiated
// telephone-event payload type, 0 if none. Its first packet goes out within
// 20 ms, which makes the server latch its sending to this meter.
func (m *Meter) Add(remote netip.AddrPort, codec, dtmfPT uint8) (*Stream, error) {
	return m.AddStream(remote, codec, dtmfPT, StreamOptions{})
}

// AddStream is Add with options: the socket, a tone to send, a tone to listen for.
func (m *Meter) AddStream(remote netip.AddrPort, codec, dtmfPT uint8, o StreamOptions) (*Stream, error) {
	if codec != pcmuPT && codec != pcmaPT {
		return nil, fmt.Errorf("%w: codec %d", ErrConfig, codec)
	}
	for _, f := range []float64{o.Tone, o.Hear} {
		if f < 0 || f >= media.ClockRate/2 || math.Mod(f, 50) != 0 {
			return nil, fmt.Errorf("%w: tone %g Hz: want a multiple of 50 Hz below 4000", ErrConfig, f)
		}
	}
	remote = netip.AddrPortFrom(remote.Addr().Unmap(), remote.Port())
	var sock *meterSocket
	if o.Local.IsValid() {
		for _, c := range m.socks {
			if c.localAddr() == o.Local {
				sock = c
			}
		}
		if sock == nil {
			return nil, fmt.Errorf("%w: %s is not one of the meter's sockets", ErrConfig, o.Local)
		}
	} else {
		sock = m.socks[m.next.Add(1)%uint64(len(m.socks))]
	}
	s := &Stream{m: m, sock: sock, remote: remote, raddr: net.UDPAddrFromAddrPort(remote), codec: codec, dtmfPT: dtmfPT}
	s.tx.ssrc = rand.Uint32()
	s.tx.seq = uint16(rand.Uint32())
	s.tx.ts0 = rand.Uint32()
	s.tx.spurt = true
	media.Codec(codec).Encode(s.tx.frame[:], toneFrame(o.Tone))
	if o.Hear > 0 {
		s.rx.hear = o.Hear
		media.Codec(codec).Encode(s.rx.hearFrame[:], toneFrame(o.Hear))
	}
	sock.mu.Lock()
	if _, dup := sock.streams[remote]; dup {
		sock.mu.Unlock()
		return nil, fmt.Errorf("loadtest: meter already has a stream from %s", remote)
	}
	sock.streams[remote] = s
	sock.mu.Unlock()
	s.remove = sock.pacer.Add((*streamTicker)(s))
	return s, nil
}

// Remove stops the stream and returns its final statistics. Idempotent.
func (s *Stream) Remove() RTPStats {
	if !s.gone.Swap(true) {
		s.remove()
		s.sock.mu.Lock()
		delete(s.sock.streams, s.remote)
		s.sock.mu.Unlock()
		s.dtmfMu.Lock()
		if s.dtmfDone != nil {
			s.dtmf.Reset()
			close(s.dtmfDone)
			s.dtmfDone = nil
		}
		s.dtmfMu.Unlock()
	}
	return s.Stats()
}

// Stats returns what the stream has received and sent so far.
func (s *Stream) Stats() RTPStats {
	s.sock.mu.Lock() // excludes the pacer, which accounts packets under the read lock
	st := s.rx.st
	st.Jitter = time.Duration(s.rx.jitter)
	s.sock.mu.Unlock()
	st.Sent = s.tx.sent.Load()
	st.SendErrors = s.tx.errors.Load()
	return st
}

// LocalAddr returns the meter socket this stream sends from.
func (s *Stream) LocalAddr() netip.AddrPort {
	return s.sock.conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

// SendDigits queues digits (0-9 * # A-D) as RFC 4733 events of dur each,
// sent in place of the silence frames by media.DTMFSender, as the server sends
// them. The returned channel is closed when the last end packet has been sent
// (or the stream removed).
func (s *Stream) SendDigits(digits string, dur time.Duration) (<-chan struct{}, error) {
	if s.dtmfPT == 0 {
		return nil, errors.New("loadtest: telephone-event not negotiated")
	}
	if digits == "" {
		return nil, fmt.Errorf("%w: no DTMF digits", ErrConfig)
	}
	events := make([]uint8, 0, len(digits))
	for _, d := range digits {
		ev, ok := media.DigitEvent(d)
		if !ok {
			return nil, fmt.Errorf("%w: DTMF digit %q", ErrConfig, d)
		}
		events = append(events, ev)
	}
	s.dtmfMu.Lock()
	defer s.dtmfMu.Unlock()
	if s.dtmfDone != nil {
		return nil, errors.New("loadtest: digits already being sent")
	}
	if s.gone.Load() {
		return nil, errors.New("loadtest: stream removed")
	}
	for _, ev := range events {
		s.dtmf.Queue(ev, dur)
	}
	s.dtmfDone = make(chan struct{})
	return s.dtmfDone, nil
}

// streamTicker is a Stream's media.Stream face, kept off its exported API.
type streamTicker Stream

// Tick implements media.Stream.
func (t *streamTicker) Tick(deadline time.Time) { (*Stream)(t).tick(deadline) }

// toneFrame returns one 20 ms frame of a sine at freq (a multiple of 50 Hz starts and
// ends each frame in phase); 0 gives silence.
func toneFrame(freq float64) []int16 {
	pcm := make([]int16, frameSamples)
	if freq > 0 {
		for i := range pcm {
			pcm[i] = int16(math.Round(toneLevel * math.MaxInt16 * math.Sin(2*math.Pi*freq*float64(i)/media.ClockRate)))
		}
	}
	return pcm
}

// tick queues the stream's packet for this 20 ms deadline on its socket: the next
// RFC 4733 packet if digits are queued, else a frame of silence or of its tone.
func (s *Stream) tick(deadline time.Time) {
	tx := &s.tx
	if !tx.haveFirst {
		tx.first, tx.haveFirst = deadline, true
	}
	ts := tx.ts0 + uint32(int64(deadline.Sub(tx.first)/media.FrameDuration)*frameSamples)
	h := rtp.Header{Version: 2, PayloadType: s.codec, SequenceNumber: tx.seq, Timestamp: ts, SSRC: tx.ssrc}
	payload := tx.frame[:]
	s.dtmfMu.Lock()
	if s.dtmfDone != nil {
		if evTS, marker, ok := s.dtmf.Tick(tx.event[:], ts); ok {
			h.PayloadType, h.Marker, h.Timestamp, payload = s.dtmfPT, marker, evTS, tx.event[:]
			tx.spurt = true
		}
		if s.dtmf.Idle() {
			close(s.dtmfDone)
			s.dtmfDone = nil
		}
	}
	s.dtmfMu.Unlock()
	if h.PayloadType == s.codec {
		h.Marker, tx.spurt = tx.spurt, false
	}
	sock := s.sock
	i := sock.queued
	n, err := (&rtp.Packet{Header: h, Payload: payload}).MarshalTo(sock.outBuf[i][:])
	if err != nil {
		tx.errors.Add(1)
		return
	}
	tx.seq++
	sock.out[i].Buffers[0], sock.out[i].Addr = sock.outBuf[i][:n], s.raddr
	sock.outBy[i] = s
	if sock.queued++; sock.queued == meterBatch {
		sock.flush()
	}
}

// flush sends a pacer's sockets' queued packets, then takes what they received (the
// pacer's AfterSlot, after every 1 ms slot).
func (m *Meter) flush(socks []*meterSocket) {
	for _, s := range socks {
		s.flush()
	}
	for _, s := range socks {
		m.drain(s)
	}
}

// flush sends the queued packets, one sendmmsg per up to meterBatch; a packet the
// kernel refuses counts as its stream's send error and the rest still go.
func (s *meterSocket) flush() {
	for i := 0; i < s.queued; {
		n, err := s.pc.WriteBatch(s.out[i:s.queued], 0)
		for _, st := range s.outBy[i : i+max(n, 0)] {
			st.tx.sent.Add(1)
		}
		i += max(n, 0)
		if err != nil && i < s.queued {
			s.outBy[i].tx.errors.Add(1)
			i++
		}
	}
	clear(s.outBy[:s.queued]) // do not keep removed streams alive
	for j := range s.queued {
		s.out[j].Addr = nil
	}
	s.queued = 0
}

// drain accounts every datagram waiting on the socket, up to meterBatch per system call,
// without blocking, each to the stream whose remote address sent it at its kernel
// arrival time.
func (m *Meter) drain(sock *meterSocket) {
	var h rtp.Header // parsing into it allocates nothing
	now := time.Duration(-1)
	for {
		n, err := sock.pc.ReadBatch(sock.in[:], syscall.MSG_DONTWAIT)
		if err != nil || n == 0 {
			return // EAGAIN: nothing more; a closed socket: the meter is closing
		}
		if now < 0 {
			now = time.Now().Round(0).Sub(m.epoch) // wall clock, as the kernel stamps are
		}
		for i := range sock.in[:n] {
			msg := &sock.in[i]
			arrival := now
			if at, ok := arrivalStamp(msg.OOB[:msg.NN]); ok {
				arrival = at.Sub(m.epoch)
			}
			ua, _ := msg.Addr.(*net.UDPAddr)
			if ua == nil {
				continue
			}
			from := ua.AddrPort()
			sock.account(&h, msg.Buffers[0][:msg.N], netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), arrival)
		}
		if n < meterBatch {
			return
		}
	}
}

// account takes one datagram from from.
func (sock *meterSocket) account(h *rtp.Header, pkt []byte, from netip.AddrPort, arrival time.Duration) {
	// Reject what is plainly not RTP before pion/rtp, whose errors allocate.
	if len(pkt) < rtpHeaderLen || pkt[0]>>6 != 2 {
		sock.garbage.Add(1)
		return
	}
	hn, err := h.Unmarshal(pkt)
	if err != nil {
		sock.garbage.Add(1)
		return
	}
	sock.mu.RLock()
	s := sock.streams[from]
	if s != nil {
		s.rx.receive(h, pkt[hn:], arrival, s.codec)
	}
	sock.mu.RUnlock()
	if s == nil {
		sock.strangers.Add(1)
	}
}

// receive accounts one RTP packet: sequence gaps, duplicates and late
// arrivals, and the RFC 3550 §6.4.1 jitter estimate over the audio packets
// (J += (|D| − J)/16, D the change in transit time), kept in nanoseconds.
func (r *rxState) receive(h *rtp.Header, payload []byte, arrival time.Duration, codec uint8) {
	pt, seq, ts, ssrc := h.PayloadType, h.SequenceNumber, h.Timestamp, h.SSRC
	st := &r.st
	st.Packets++
	if pt == codec {
		st.AudioPackets++
	} else {
		st.OtherPackets++
	}
	switch {
	case !r.have || ssrc != r.ssrc:
		if r.have {
			st.SSRCChanges++
		}
		r.have, r.ssrc, r.maxSeq, r.haveTransit = true, ssrc, seq, false
	default:
		switch d := seq - r.maxSeq; {
		case d == 0:
			st.Duplicates++
		case d < 0x8000:
			st.Lost += int64(d - 1)
			r.maxSeq = seq
		default: // behind the highest: it was counted lost when the gap opened
			st.Late++
			if st.Lost > 0 {
				st.Lost--
			}
		}
	}
	if pt != codec {
		return
	}
	if r.hear > 0 && len(payload) == frameSamples {
		// The far end's tone arrives byte for byte when the server relays it unconverted;
		// otherwise (law conversion, a prompt) the Goertzel filter decides.
		if string(payload) == string(r.hearFrame[:]) {
			st.ToneFrames++
		} else {
			media.Codec(codec).Decode(r.pcm[:], payload)
			if media.ToneRatio(r.pcm[:], r.hear) > toneMatch {
				st.ToneFrames++
			}
		}
	}
	if !r.haveTransit {
		r.baseTS = ts
	}
	rtpTime := int64(int32(ts-r.baseTS)) * int64(time.Second) / 8000
	transit := int64(arrival) - rtpTime
	if r.haveTransit {
		d := float64(transit - r.transit)
		if d < 0 {
			d = -d
		}
		r.jitter += (d - r.jitter) / 16
		if j := time.Duration(r.jitter); j > st.MaxJitter {
			st.MaxJitter = j
		}
	}
	r.transit, r.haveTransit = transit, true
}

// MeterStats describes the meter itself: a late or skipping pacer means the
// load tester, not the server, was short of CPU.
type MeterStats struct {
	PacerSlots   uint64        `json:"pacer_slots"`
	PacerLate    uint64        `json:"pacer_slots_late_2ms"`
	PacerMaxLate time.Duration `json:"pacer_max_late_ns"`
	PacerSkipped uint64        `json:"pacer_frames_skipped"`
	Strangers    uint64        `json:"strangers"`         // datagrams from no known stream (e.g. after hangup)
	RecvBuffer   int           `json:"recv_buffer_bytes"` // the smallest socket receive buffer the kernel granted (net.core.rmem_max caps it)
	Garbage      uint64        `json:"garbage"`
}

// Stats returns the meter's own counters.
func (m *Meter) Stats() MeterStats {
	var st MeterStats
	for _, p := range m.pacers {
		ps := p.Stats()
		st.PacerSlots += ps.Measured
		st.PacerMaxLate = max(st.PacerMaxLate, ps.MaxLateness)
		st.PacerSkipped += ps.Skipped
		for i, n := range ps.Buckets {
			if b := media.BucketBound(i); b < 0 || b > 2*time.Millisecond {
				st.PacerLate += n
			}
		}
	}
	for i, s := range m.socks {
		if b := recvBuffer(s.conn); i == 0 || b < st.RecvBuffer {
			st.RecvBuffer = b
		}
		st.Strangers += s.strangers.Load()
		st.Garbage += s.garbage.Load()
	}
	return st
}
