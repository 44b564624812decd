package loadtest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// RTP constants of the caller audio the meter sends.
const (
	frameDuration = 20 * time.Millisecond
	frameSamples  = 160 // 8 kHz
	rtpHeaderLen  = 12
	pcmuPT        = 0
	pcmaPT        = 8
	wheelSlots    = 20 // 1 ms slots: streams are spread over the 20 ms frame
	wheelTick     = frameDuration / wheelSlots
	// DefaultMeterSockets is how many shared UDP sockets a Meter opens.
	DefaultMeterSockets = 4
	meterReadBuffer     = 4 << 20 // capped by net.core.rmem_max
	meterWriteBuffer    = 1 << 20
	dtmfEndRepeat       = 3  // RFC 4733 §2.5.1.4: the end packet three times
	dtmfGapFrames       = 5  // 100 ms of audio between digits
	dtmfVolume          = 10 // -10 dBm0
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
}

// Expected returns received plus lost packets, the denominator of the loss ratio.
func (s RTPStats) Expected() int64 { return s.Packets + s.Lost }

// Meter sends and receives the RTP of many calls over a few shared UDP
// sockets: one reader goroutine per socket demultiplexes by the sender's
// address, and one pacing goroutine sends every stream's packet on drift-free
// deadlines (t0 + n·20 ms), streams spread over 1 ms slots.
type Meter struct {
	ip    netip.Addr
	epoch time.Time
	socks []*meterSocket
	next  atomic.Uint64 // round-robin socket choice

	mu      sync.Mutex // guards slots and count
	slots   [wheelSlots][]*Stream
	quit    chan struct{}
	closeMu sync.Once
	wg      sync.WaitGroup

	pacerTicks   atomic.Uint64 // wheel slots served
	pacerLate    atomic.Uint64 // slots served more than 2 ms after their deadline
	pacerMaxLate atomic.Int64
	pacerSkipped atomic.Uint64 // stream frames dropped because the pacer fell a frame behind
}

type meterSocket struct {
	conn      *net.UDPConn
	mu        sync.RWMutex // guards streams; held for reading while a packet is accounted
	streams   map[netip.AddrPort]*Stream
	strangers atomic.Uint64
	garbage   atomic.Uint64
}

// Stream is one call's RTP on a Meter.
type Stream struct {
	m      *Meter
	sock   *meterSocket
	remote netip.AddrPort
	codec  uint8
	dtmfPT uint8
	slot   int
	gone   atomic.Bool

	dtmfMu   sync.Mutex
	dtmfPlan []dtmfPacket // queued by SendDigits, taken one per tick by the pacer
	dtmfDone chan struct{}

	tx txState // owned by the pacer goroutine
	rx rxState // owned by the socket's reader, under sock.mu (read lock)
}

type txState struct {
	ssrc      uint32
	seq       uint16
	ts0       uint32
	first     time.Time
	haveFirst bool
	spurt     bool   // next audio packet starts a talkspurt (marker)
	evTS      uint32 // start timestamp of the RFC 4733 event being sent
	silence   [frameSamples]byte
	buf       [rtpHeaderLen + frameSamples]byte
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
}

type dtmfPacket struct {
	event uint8
	end   bool
	dur   uint16
	start bool // first packet of an event: marker, new event timestamp
	audio bool // a gap frame of silence between digits
	last  bool // last packet of the SendDigits job
}

// NewMeter opens sockets shared UDP sockets on ip (0 = DefaultMeterSockets)
// and starts their readers and the pacer. Close it when done.
func NewMeter(ip netip.Addr, sockets int) (*Meter, error) {
	if sockets <= 0 {
		sockets = DefaultMeterSockets
	}
	m := &Meter{ip: ip, epoch: time.Now(), quit: make(chan struct{})}
	for range sockets {
		conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
		if err != nil {
			m.Close()
			return nil, fmt.Errorf("loadtest: meter socket: %w", err)
		}
		_ = conn.SetReadBuffer(meterReadBuffer) // best effort: capped by the kernel
		_ = conn.SetWriteBuffer(meterWriteBuffer)
		s := &meterSocket{conn: conn, streams: map[netip.AddrPort]*Stream{}}
		m.socks = append(m.socks, s)
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.read(s)
		}()
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.pace()
	}()
	return m, nil
}

// Close stops the pacer and the readers and closes the sockets.
func (m *Meter) Close() {
	m.closeMu.Do(func() {
		close(m.quit)
		for _, s := range m.socks {
			s.conn.Close()
		}
	})
	m.wg.Wait()
}

// Add starts a stream to remote (the server's RTP address from its SDP
// answer) in codec 0 (PCMU) or 8 (PCMA); dtmfPT is the negotiated
// telephone-event payload type, 0 if none. Its first packet goes out within
// 20 ms, which makes the server latch its sending to this meter.
func (m *Meter) Add(remote netip.AddrPort, codec, dtmfPT uint8) (*Stream, error) {
	if codec != pcmuPT && codec != pcmaPT {
		return nil, fmt.Errorf("%w: codec %d", ErrConfig, codec)
	}
	remote = netip.AddrPortFrom(remote.Addr().Unmap(), remote.Port())
	sock := m.socks[m.next.Add(1)%uint64(len(m.socks))]
	s := &Stream{m: m, sock: sock, remote: remote, codec: codec, dtmfPT: dtmfPT}
	s.tx.ssrc = rand.Uint32()
	s.tx.seq = uint16(rand.Uint32())
	s.tx.ts0 = rand.Uint32()
	s.tx.spurt = true
	fill := byte(0xff) // µ-law silence
	if codec == pcmaPT {
		fill = 0xd5 // A-law silence
	}
	for i := range s.tx.silence {
		s.tx.silence[i] = fill
	}
	sock.mu.Lock()
	if _, dup := sock.streams[remote]; dup {
		sock.mu.Unlock()
		return nil, fmt.Errorf("loadtest: meter already has a stream from %s", remote)
	}
	sock.streams[remote] = s
	sock.mu.Unlock()

	m.mu.Lock()
	for i := range m.slots {
		if len(m.slots[i]) < len(m.slots[s.slot]) {
			s.slot = i
		}
	}
	m.slots[s.slot] = append(m.slots[s.slot], s)
	m.mu.Unlock()
	return s, nil
}

// Remove stops the stream and returns its final statistics. Idempotent.
func (s *Stream) Remove() RTPStats {
	if !s.gone.Swap(true) {
		m := s.m
		m.mu.Lock()
		list := m.slots[s.slot]
		for i, x := range list {
			if x == s {
				list[i] = list[len(list)-1]
				list[len(list)-1] = nil
				m.slots[s.slot] = list[:len(list)-1]
				break
			}
		}
		m.mu.Unlock()
		s.sock.mu.Lock()
		delete(s.sock.streams, s.remote)
		s.sock.mu.Unlock()
		s.dtmfMu.Lock()
		if s.dtmfPlan != nil {
			s.dtmfPlan = nil
			close(s.dtmfDone)
		}
		s.dtmfMu.Unlock()
	}
	return s.Stats()
}

// Stats returns what the stream has received and sent so far.
func (s *Stream) Stats() RTPStats {
	s.sock.mu.Lock() // excludes the reader
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
// 100 ms apart, in place of the silence frames. The returned channel is
// closed when the last end packet has been sent (or the stream removed).
func (s *Stream) SendDigits(digits string, dur time.Duration) (<-chan struct{}, error) {
	if s.dtmfPT == 0 {
		return nil, errors.New("loadtest: telephone-event not negotiated")
	}
	n := max(1, int(dur/frameDuration))
	var plan []dtmfPacket
	for i, d := range digits {
		ev, ok := dtmfEvent(d)
		if !ok {
			return nil, fmt.Errorf("%w: DTMF digit %q", ErrConfig, d)
		}
		if i > 0 {
			for range dtmfGapFrames {
				plan = append(plan, dtmfPacket{audio: true})
			}
		}
		for k := range n {
			plan = append(plan, dtmfPacket{event: ev, dur: uint16((k + 1) * frameSamples), start: k == 0})
		}
		for range dtmfEndRepeat {
			plan = append(plan, dtmfPacket{event: ev, end: true, dur: uint16(n * frameSamples)})
		}
	}
	if len(plan) == 0 {
		return nil, fmt.Errorf("%w: no DTMF digits", ErrConfig)
	}
	plan[len(plan)-1].last = true
	done := make(chan struct{})
	s.dtmfMu.Lock()
	defer s.dtmfMu.Unlock()
	if s.dtmfPlan != nil {
		return nil, errors.New("loadtest: digits already being sent")
	}
	s.dtmfPlan, s.dtmfDone = plan, done
	return done, nil
}

func dtmfEvent(d rune) (uint8, bool) {
	switch {
	case d >= '0' && d <= '9':
		return uint8(d - '0'), true
	case d == '*':
		return 10, true
	case d == '#':
		return 11, true
	case d >= 'A' && d <= 'D':
		return uint8(d-'A') + 12, true
	}
	return 0, false
}

// pace is the pacing loop: sleep to the next 1 ms deadline, serve each due
// slot once; a pacer more than one frame behind drops the oldest deadlines.
func (m *Meter) pace() {
	t0 := time.Now()
	var n int64
	timer := time.NewTimer(0)
	defer timer.Stop()
	var scratch []*Stream
	for {
		select {
		case <-m.quit:
			return
		case <-timer.C:
		}
		due := int64(time.Since(t0) / wheelTick)
		if behind := due - n + 1; behind > wheelSlots {
			skip := behind - wheelSlots
			m.mu.Lock()
			var dropped int
			for i := range min(skip, wheelSlots) {
				dropped += len(m.slots[(n+i)%wheelSlots])
			}
			m.mu.Unlock()
			m.pacerSkipped.Add(uint64(dropped))
			n += skip
		}
		for ; n <= due; n++ {
			deadline := t0.Add(time.Duration(n) * wheelTick)
			m.mu.Lock()
			scratch = append(scratch[:0], m.slots[n%wheelSlots]...)
			m.mu.Unlock()
			if len(scratch) == 0 {
				continue
			}
			for _, s := range scratch {
				if !s.gone.Load() {
					s.tick(deadline)
				}
			}
			clear(scratch)
			late := time.Since(deadline)
			m.pacerTicks.Add(1)
			if late > 2*time.Millisecond {
				m.pacerLate.Add(1)
			}
			for {
				old := m.pacerMaxLate.Load()
				if int64(late) <= old || m.pacerMaxLate.CompareAndSwap(old, int64(late)) {
					break
				}
			}
		}
		timer.Reset(time.Until(t0.Add(time.Duration(n) * wheelTick)))
	}
}

// tick sends the stream's packet for this 20 ms deadline: the next RFC 4733
// packet if digits are queued, else a frame of silence.
func (s *Stream) tick(deadline time.Time) {
	tx := &s.tx
	if !tx.haveFirst {
		tx.first, tx.haveFirst = deadline, true
	}
	ts := tx.ts0 + uint32(int64(deadline.Sub(tx.first)/frameDuration)*frameSamples)
	pt, marker, rts, payload := s.codec, false, ts, tx.silence[:]
	var ev [4]byte
	s.dtmfMu.Lock()
	if len(s.dtmfPlan) > 0 {
		p := s.dtmfPlan[0]
		s.dtmfPlan = s.dtmfPlan[1:]
		if p.last {
			s.dtmfPlan = nil
			close(s.dtmfDone)
		}
		if !p.audio {
			if p.start {
				tx.evTS = ts
			}
			ev[0] = p.event
			ev[1] = dtmfVolume
			if p.end {
				ev[1] |= 0x80
			}
			binary.BigEndian.PutUint16(ev[2:], p.dur)
			pt, marker, rts, payload = s.dtmfPT, p.start, tx.evTS, ev[:]
			tx.spurt = true
		}
	}
	s.dtmfMu.Unlock()
	if pt == s.codec {
		marker, tx.spurt = tx.spurt, false
	}
	b := tx.buf[:rtpHeaderLen+len(payload)]
	b[0] = 0x80
	b[1] = pt & 0x7f
	if marker {
		b[1] |= 0x80
	}
	binary.BigEndian.PutUint16(b[2:], tx.seq)
	binary.BigEndian.PutUint32(b[4:], rts)
	binary.BigEndian.PutUint32(b[8:], tx.ssrc)
	copy(b[rtpHeaderLen:], payload)
	tx.seq++
	if _, err := s.sock.conn.WriteToUDPAddrPort(b, s.remote); err != nil {
		tx.errors.Add(1)
		return
	}
	tx.sent.Add(1)
}

// read is a socket's reader loop; it accounts each datagram to the stream
// whose remote address sent it, without allocating.
func (m *Meter) read(sock *meterSocket) {
	buf := make([]byte, 2048)
	for {
		n, from, err := sock.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		arrival := time.Since(m.epoch)
		if n < rtpHeaderLen || buf[0]>>6 != 2 {
			sock.garbage.Add(1)
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		sock.mu.RLock()
		s := sock.streams[from]
		if s != nil {
			s.rx.receive(buf[:n], arrival, s.codec)
		}
		sock.mu.RUnlock()
		if s == nil {
			sock.strangers.Add(1)
		}
	}
}

// receive accounts one RTP packet: sequence gaps, duplicates and late
// arrivals, and the RFC 3550 §6.4.1 jitter estimate over the audio packets
// (J += (|D| − J)/16, D the change in transit time), kept in nanoseconds.
func (r *rxState) receive(b []byte, arrival time.Duration, codec uint8) {
	pt := b[1] & 0x7f
	seq := binary.BigEndian.Uint16(b[2:])
	ts := binary.BigEndian.Uint32(b[4:])
	ssrc := binary.BigEndian.Uint32(b[8:])
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
	Strangers    uint64        `json:"strangers"` // datagrams from no known stream (e.g. after hangup)
	Garbage      uint64        `json:"garbage"`
}

// Stats returns the meter's own counters.
func (m *Meter) Stats() MeterStats {
	st := MeterStats{
		PacerSlots:   m.pacerTicks.Load(),
		PacerLate:    m.pacerLate.Load(),
		PacerMaxLate: time.Duration(m.pacerMaxLate.Load()),
		PacerSkipped: m.pacerSkipped.Load(),
	}
	for _, s := range m.socks {
		st.Strangers += s.strangers.Load()
		st.Garbage += s.garbage.Load()
	}
	return st
}
