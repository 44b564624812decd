package media

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
)

// DefaultTimeout is the RTP inactivity timeout when SessionConfig.Timeout is 0.
const DefaultTimeout = 30 * time.Second

// Latching defaults (SessionConfig.Probation and RelatchSilence when 0).
const (
	DefaultProbation      = 3               // consecutive in-sequence packets before a new source is latched
	DefaultRelatchSilence = 2 * time.Second // silence of the latched source after which another may take over
)

// DigitsBuffer is the capacity of the Session.Digits channel.
const DigitsBuffer = 64

const (
	rtpHeaderSize = 12
	rxBufferSize  = 1500
	txBufferSize  = rtpHeaderSize + 4*FrameSamples // room for up to 80 ms frames
)

// SessionConfig configures a Session.
type SessionConfig struct {
	Conn      *net.UDPConn  // the leg's socket, e.g. from Ports.Listen; the session owns and closes it (Ports.NewSession sets it in the portable mode)
	Scheduler *Scheduler    // paces sending; nil makes a receive-only session (nothing sent, no inactivity timeout)
	Timeout   time.Duration // RTP inactivity timeout; 0 = DefaultTimeout (30 s); negative = disabled
	Logger    *slog.Logger  // nil discards

	// Latching (RTP-bleed protection). A source may be latched only from an
	// address the session was told about: the SDP's (SetRemote) or the
	// signalling peer's (AllowSource). The SDP address and port themselves
	// latch at once; another port on those addresses (NAT) after Probation
	// consecutive in-sequence packets of one SSRC. Once latched, other
	// sources are strangers until the latched one has been silent for
	// RelatchSilence, or until a new SDP (SetRemote) opens a window as long.
	Probation      int           // 0 = DefaultProbation; 1 latches the first packet
	RelatchSilence time.Duration // 0 = DefaultRelatchSilence; negative = only a new SDP re-latches
	AnyAddress     bool          // latch sources on any address (still with probation); for media relays that use neither the SDP's nor the signalling's address
}

// SessionStats is a snapshot of a Session's counters.
type SessionStats struct {
	PacketsIn     uint64 // valid RTP packets accepted from the remote
	PacketsOut    uint64 // RTP packets sent
	BytesIn       uint64 // bytes of accepted packets (RTP header included)
	BytesOut      uint64 // bytes sent (RTP header included)
	Lost          uint64 // packets missing by sequence number gaps
	Strangers     uint64 // valid RTP from sources other than the latched one, dropped
	Probation     uint64 // valid RTP from a source on probation (not latched yet), dropped
	SRTPFailed    uint64 // SRTP packets that failed authentication or replay checks, dropped
	Garbage       uint64 // datagrams that are not RTP version 2, dropped
	UnknownPT     uint64 // accepted packets of a payload type not negotiated, ignored
	DTMFIn        uint64 // RFC 4733 packets received
	DigitsIn      uint64 // DTMF digits decoded
	DigitsDropped uint64 // digits lost because the Digits channel was full
	SendErrors    uint64 // failed sends
}

// Session is one RTP leg: one UDP socket, a reader, and a place in a
// Scheduler that paces what it sends (prompts, music on hold, RFC 4733
// events). The reader is the session's own goroutine parked on a net.UDPConn
// (NewSession, or Ports.NewSession in the portable mode), or a poller loop
// that reads many sessions' raw sockets (Ports.NewSession in the epoll mode).
// It does symmetric RTP: it sends to the SDP address until a source is
// latched, then to that source, and drops packets from anyone else. Only
// sources on the SDP's or the signalling's address may be latched, after a
// probation (SessionConfig), so a stranger who sends first cannot take the
// call's media (the RTP-bleed class). All methods are safe for concurrent use.
type Session struct {
	conn  *net.UDPConn // the portable mode's socket, or nil
	raw   *rawSocket   // the epoll mode's socket, owned by its poller loop, or nil
	sched *Scheduler
	log   *slog.Logger
	local netip.AddrPort
	epoch time.Time // monotonic base of lastRx

	digits chan rune
	done   chan struct{}
	ended  atomic.Bool

	timeout atomic.Int64 // nanoseconds; <= 0 disabled
	lastRx  atomic.Int64 // nanoseconds since epoch of the last valid packet (or Start)

	packetsIn, packetsOut, bytesIn, bytesOut   atomic.Uint64
	lost, strangers, garbage, unknownPT        atomic.Uint64
	probation, srtpFailed                      atomic.Uint64
	srtp                                       atomic.Pointer[srtpState] // nil: plain RTP
	dtmfIn, digitsIn, digitsDropped, sendError atomic.Uint64

	// sending counts packets built under mu whose send has not returned yet
	// (generated or relayed); Bridge.Start and Stop wait for it to drain.
	sending atomic.Int32

	// mu guards the fields below. The scheduler's tick holds it while it
	// decides what to send and builds the packet, never during the send.
	mu            sync.Mutex
	remote        netip.AddrPort // from SDP
	latched       netip.AddrPort // the source we accept RTP from and send to; zero until one passed probation
	latch         latchState
	sendOff       bool // the remote's SDP direction says it receives nothing (sendonly, inactive): send nothing
	codec         Codec
	audioPT       uint8 // payload type of codec on the wire: uint8(codec), or a dynamic one
	dtmfPT        uint8
	sink          AudioSink
	started       bool
	readerRunning bool
	err           error
	removeFn      func()      // leaves the scheduler
	stopCtx       func() bool // unregisters the context watcher
	cur           *playback   // what is playing
	dtmfRx        DTMFReceiver
	rxDigits      [2]rune         // scratch for DTMFReceiver results
	inband        *InbandDetector // in-band DTMF detection (SetInbandDTMF); its state is the reader's
	tx            txState
	relay         *bridgeLeg // relays what this session receives (Bridge); nil when not bridged
	txOwner       *bridgeLeg // the bridge leg allowed to send out of this session
	txPaused      bool       // generated media (prompts, MOH, queued DTMF) is paused: bridged
	mix           *mixMember // takes what this session receives into a Mixer; nil when not mixed

	// Reader-owned (the reader goroutine or poller loop, or a test calling
	// handlePacket). rxBuf is the reader goroutine's (nil in the epoll mode).
	rxBuf     []byte
	rxPkt     rtp.Packet
	rxHaveSeq bool
	rxSSRC    uint32
	rxSeq     uint16
	rxInband  [4]rune // scratch for InbandDetector results
}

// latchState decides which source is latched; guarded by Session.mu.
type latchState struct {
	probation int   // packets a source on probation must send in sequence
	silence   int64 // ns; <= 0: silence never frees the latch
	any       bool  // any address may be latched

	sources   [2]netip.Addr // the SDP's address and the signalling peer's; zero = unknown
	latchRx   int64         // ns since epoch of the last packet from the latched source
	reopenEnd int64         // ns since epoch: until then (after a new SDP) another source may take over; 0 = no window

	cand     netip.AddrPort // the source on probation
	candSSRC uint32
	candSeq  uint16
	candN    int
}

// latch outcomes of latchState.check.
const (
	latchKeep      = iota // from is the latched source
	latchNew              // from was latched just now
	latchStranger         // dropped: not latchable now
	latchProbation        // dropped: on probation
)

// allowed reports whether a source on ip may be latched.
func (l *latchState) allowed(ip netip.Addr) bool {
	if l.any || (!l.sources[0].IsValid() && !l.sources[1].IsValid()) {
		return true // nothing known yet (no SDP): probation only
	}
	return ip == l.sources[0] || ip == l.sources[1]
}

// checkLocked decides about a valid packet from a source that is not the
// latched one (the caller checked), at now (ns since epoch). s.mu is held.
func (s *Session) checkLatchLocked(from netip.AddrPort, ssrc uint32, seq uint16, now int64) int {
	l := &s.latch
	if !l.allowed(from.Addr()) {
		return latchStranger
	}
	if s.latched.IsValid() {
		reopened := l.reopenEnd != 0 && now < l.reopenEnd // a new SDP came lately
		silent := l.silence > 0 && now-l.latchRx > l.silence
		if !reopened && !silent {
			return latchStranger
		}
	}
	if from == l.cand && ssrc == l.candSSRC && seq == l.candSeq+1 {
		l.candN++
	} else {
		l.cand, l.candSSRC, l.candN = from, ssrc, 1
	}
	l.candSeq = seq
	if l.candN < l.probation && from != s.remote {
		return latchProbation
	}
	s.latched, l.latchRx, l.reopenEnd = from, now, 0
	l.cand, l.candN = netip.AddrPort{}, 0
	return latchNew
}

// txState is the sender's state, guarded by Session.mu; buf is only touched
// by the tick goroutine.
type txState struct {
	ssrc       uint32
	seq        uint16
	ts0        uint32
	first      time.Time // deadline of the first tick
	haveFirst  bool
	lastAudioK int64 // tick index of the last audio packet sent
	newSpurt   bool  // the next audio packet starts a talkspurt
	dtmf       DTMFSender
	dtmfBuf    [DTMFPayloadSize]byte
	pkt        rtp.Packet
	buf        [txBufferSize]byte

	// The last packet sent, generated or relayed: the timestamp a new
	// stream (a bridge, prompts after a bridge) must continue from.
	lastTS   uint32
	lastTime time.Time // when it was sent (a tick deadline or the relay's receive time)
	haveLast bool
	rebase   bool // packets were relayed: re-anchor the generated clock (ts0) at the next tick
}

// playback is a sequence of prompts being played; positions are guarded by Session.mu.
type playback struct {
	prompts []*Prompt
	pi, fi  int
	loop    bool
	done    chan struct{}
	once    sync.Once
}

func newPlayback(prompts []*Prompt, loop bool) *playback {
	pb := &playback{loop: loop, done: make(chan struct{})}
	for _, p := range prompts {
		if p != nil && p.Len() > 0 {
			pb.prompts = append(pb.prompts, p)
		}
	}
	return pb
}

// finish closes done once; nil-safe.
func (pb *playback) finish() {
	if pb != nil {
		pb.once.Do(func() { close(pb.done) })
	}
}

// next returns the next frame in codec c and whether the playback is now complete.
func (pb *playback) next(c Codec) (frame []byte, complete bool) {
	if pb.pi >= len(pb.prompts) {
		return nil, true
	}
	frames := pb.prompts[pb.pi].Frames(c)
	if frames == nil {
		frames = pb.prompts[pb.pi].Frames(PCMU)
	}
	frame = frames[pb.fi]
	pb.fi++
	if pb.fi >= len(frames) {
		pb.fi = 0
		pb.pi++
		if pb.pi >= len(pb.prompts) && pb.loop {
			pb.pi = 0
		}
	}
	return frame, pb.pi >= len(pb.prompts)
}

// NewSession returns a session on cfg.Conn, read by its own goroutine (the
// portable mode; Ports.NewSession chooses the mode). Call SetRemote and Start.
func NewSession(cfg SessionConfig) *Session { return newSession(cfg, nil) }

// newSession returns a session on cfg.Conn, or on raw (read by its poller loop) when raw is set.
func newSession(cfg SessionConfig, raw *rawSocket) *Session {
	s := &Session{
		conn:   cfg.Conn,
		raw:    raw,
		sched:  cfg.Scheduler,
		log:    cfg.Logger,
		epoch:  time.Now(),
		digits: make(chan rune, DigitsBuffer),
		done:   make(chan struct{}),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	switch {
	case raw != nil:
		s.conn = nil
		s.local = raw.local
		raw.h = s
	case cfg.Conn != nil:
		s.rxBuf = make([]byte, rxBufferSize)
		if a, ok := cfg.Conn.LocalAddr().(*net.UDPAddr); ok {
			s.local = a.AddrPort()
		}
	}
	switch {
	case cfg.Timeout == 0:
		s.timeout.Store(int64(DefaultTimeout))
	case cfg.Timeout > 0:
		s.timeout.Store(int64(cfg.Timeout))
	}
	s.latch.probation = cfg.Probation
	if s.latch.probation <= 0 {
		s.latch.probation = DefaultProbation
	}
	switch {
	case cfg.RelatchSilence == 0:
		s.latch.silence = int64(DefaultRelatchSilence)
	case cfg.RelatchSilence > 0:
		s.latch.silence = int64(cfg.RelatchSilence)
	}
	s.latch.any = cfg.AnyAddress
	s.tx.ssrc = rand.Uint32()
	s.tx.seq = uint16(rand.Uint32())
	s.tx.ts0 = rand.Uint32()
	s.tx.lastAudioK = -2
	s.tx.newSpurt = true
	s.log = s.log.With("rtp_local", s.local.String())
	return s
}

// LocalAddr returns the socket's local address (for the SDP).
func (s *Session) LocalAddr() netip.AddrPort { return s.local }

// SSRC returns the synchronization source of the packets this session sends.
func (s *Session) SSRC() uint32 { return s.tx.ssrc }

// SetRemote sets the SDP-negotiated remote address, codec and telephone-event
// payload type (0 = none). It may be called again (re-INVITE): if the address
// changes, the latch is reset so the new peer can be latched; otherwise a
// source on the SDP's or the signalling's address that passes probation may
// replace the latched one during the next RelatchSilence (a phone that moved
// port behind its NAT).
func (s *Session) SetRemote(addr netip.AddrPort, codec Codec, dtmfPT uint8) {
	addr = unmap(addr)
	now := int64(time.Since(s.epoch))
	s.mu.Lock()
	l := &s.latch
	switch {
	case s.remote.IsValid() && s.remote != addr:
		s.latched = netip.AddrPort{}
	case s.latched.IsValid():
		l.reopenEnd = now + max(l.silence, int64(DefaultRelatchSilence))
	}
	l.sources[0] = addr.Addr()
	if s.latched.IsValid() && !l.allowed(s.latched.Addr()) {
		s.latched = netip.AddrPort{}
	}
	l.cand, l.candN = netip.AddrPort{}, 0
	s.remote, s.codec, s.dtmfPT, s.audioPT = addr, codec, dtmfPT, uint8(codec)
	s.mu.Unlock()
	s.log.Debug("rtp remote set", "rtp_remote", addr.String(), "codec", codec.String(), "dtmf_pt", dtmfPT)
}

// AllowSource lets sources on ip be latched besides the SDP's address: the
// address the signalling came from, for a peer behind a NAT whose SDP has a
// private address. An invalid ip clears it.
func (s *Session) AllowSource(ip netip.Addr) {
	ip = ip.Unmap()
	s.mu.Lock()
	s.latch.sources[1] = ip
	s.mu.Unlock()
}

// SetSending says whether the remote wants our media: false (its SDP is
// sendonly or inactive) stops everything we send — prompts and music on hold
// are consumed at the normal pace but not sent, RFC 4733 events are dropped,
// and a bridge relays nothing to this session — until SetSending(true).
func (s *Session) SetSending(on bool) {
	s.mu.Lock()
	s.sendOff = !on
	s.mu.Unlock()
}

// SetAudioPayloadType sets the payload type the codec's packets carry when the SDP gave
// the codec a dynamic number (a=rtpmap:97 PCMU/8000); SetRemote resets it to the static
// type. Call it after SetRemote.
func (s *Session) SetAudioPayloadType(pt uint8) {
	s.mu.Lock()
	s.audioPT = pt
	s.mu.Unlock()
}

// Start starts reading (the reader goroutine, or the poller loop) and joins the scheduler. The session ends
// when ctx is done (Err returns its cause), on inactivity timeout, or on
// Close. Start is a no-op on a started or ended session.
func (s *Session) Start(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.ended.Load() {
		return
	}
	s.started = true
	s.lastRx.Store(int64(time.Since(s.epoch)))
	if s.sched != nil {
		s.removeFn = s.sched.Add((*sessionTicker)(s))
	}
	s.stopCtx = context.AfterFunc(ctx, func() { s.end(context.Cause(ctx)) })
	switch {
	case s.raw != nil:
		s.raw.start()
	case s.conn != nil:
		s.readerRunning = true
		go s.read()
	}
}

// Play replaces any current playback with prompts played in order. The
// returned channel is closed when the last frame was sent, or when the
// playback is stopped, replaced or the session ends. Before the remote is
// known frames are consumed at the normal pace but not sent.
func (s *Session) Play(prompts ...*Prompt) <-chan struct{} {
	pb := newPlayback(prompts, false)
	s.setPlayback(pb)
	return pb.done
}

// Loop plays p repeatedly (music on hold) until StopPlay, Play or the end of the session.
func (s *Session) Loop(p *Prompt) { s.setPlayback(newPlayback([]*Prompt{p}, true)) }

// StopPlay stops the current playback (barge-in); at most one more frame is sent.
func (s *Session) StopPlay() { s.setPlayback(nil) }

func (s *Session) setPlayback(pb *playback) {
	if pb != nil && len(pb.prompts) == 0 {
		pb.finish()
		pb = nil
	}
	s.mu.Lock()
	if s.ended.Load() {
		s.mu.Unlock()
		pb.finish()
		return
	}
	old := s.cur
	s.cur = pb
	s.tx.newSpurt = true
	s.mu.Unlock()
	old.finish()
}

// SendDTMF queues an RFC 4733 event for digit lasting d (<= 0 means 100 ms,
// capped at 8 s). Events go out in the order queued, 40 ms apart, and
// interrupt (pause) audio while they last. It returns ErrBadDigit, ErrNoDTMF
// when no telephone-event payload type is set, or ErrSessionEnded.
func (s *Session) SendDTMF(digit rune, d time.Duration) error {
	ev, ok := DigitEvent(digit)
	if !ok {
		return fmt.Errorf("%w: %q", ErrBadDigit, digit)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.ended.Load():
		return ErrSessionEnded
	case s.dtmfPT == 0:
		return ErrNoDTMF
	}
	s.tx.dtmf.Queue(ev, d)
	return nil
}

// Digits returns the DTMF digits received by RFC 4733, buffered (DigitsBuffer);
// when full, digits are dropped and counted. The channel is never closed:
// select on Done as well.
func (s *Session) Digits() <-chan rune { return s.digits }

// SetAudioSink sets f (nil: none) to be called on the reader goroutine (or
// poller loop) with each accepted packet of the negotiated codec, the codec and
// the arrival time, bridged or not. f must not block (on a poller loop it would
// hold up every session of the loop) or retain pkt (it is reused), and must not
// call Close (cancel the session's context instead).
func (s *Session) SetAudioSink(f AudioSink) {
	s.mu.Lock()
	s.sink = f
	s.mu.Unlock()
}

// SetInbandDTMF turns in-band DTMF detection (InbandDetector) on or off: the
// keypad tones in the received audio become digits on the Digits channel, as
// RFC 4733 events do. For peers that send tones only in the audio; once an
// RFC 4733 event arrives on the session, the audio is no longer read for
// tones, so a peer that sends both does not give each digit twice. Turning it
// on again starts from fresh state.
func (s *Session) SetInbandDTMF(on bool) {
	s.mu.Lock()
	s.inband = nil
	if on {
		s.inband = &InbandDetector{}
	}
	s.mu.Unlock()
}

// SetInactivityTimeout changes the RTP inactivity timeout (e.g. to disable it
// during hold); d <= 0 disables it. The timeout counts again from now.
func (s *Session) SetInactivityTimeout(d time.Duration) {
	s.lastRx.Store(int64(time.Since(s.epoch)))
	s.timeout.Store(int64(max(d, 0)))
}

// Done is closed when the session has ended, its reader goroutine exited (or
// its poller loop stopped reading) and its socket is closed.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err returns why the session ended: nil (running or closed by Close),
// ErrRTPTimeout, the context's cause, or a socket read error.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Stats returns a snapshot of the session's counters.
func (s *Session) Stats() SessionStats {
	return SessionStats{
		PacketsIn:     s.packetsIn.Load(),
		PacketsOut:    s.packetsOut.Load(),
		BytesIn:       s.bytesIn.Load(),
		BytesOut:      s.bytesOut.Load(),
		Lost:          s.lost.Load(),
		Strangers:     s.strangers.Load(),
		Probation:     s.probation.Load(),
		SRTPFailed:    s.srtpFailed.Load(),
		Garbage:       s.garbage.Load(),
		UnknownPT:     s.unknownPT.Load(),
		DTMFIn:        s.dtmfIn.Load(),
		DigitsIn:      s.digitsIn.Load(),
		DigitsDropped: s.digitsDropped.Load(),
		SendErrors:    s.sendError.Load(),
	}
}

// Close ends the session: it closes the socket (stopping the reader), leaves
// the scheduler, ends any playback and waits until Done is closed. It is
// idempotent and always returns nil. Do not call it from the audio sink.
func (s *Session) Close() error {
	s.end(nil)
	<-s.done
	return nil
}

// end ends the session with cause, without blocking: safe from the tick, the
// reader and the context watcher.
func (s *Session) end(cause error) {
	s.mu.Lock()
	if s.ended.Load() {
		s.mu.Unlock()
		return
	}
	s.ended.Store(true)
	s.err = cause
	cur := s.cur
	s.cur = nil
	s.tx.dtmf.Reset()
	remove, stop, reader := s.removeFn, s.stopCtx, s.readerRunning
	s.mu.Unlock()

	cur.finish()
	if remove != nil {
		remove()
	}
	if stop != nil {
		stop()
	}
	switch {
	case s.raw != nil:
		// The poller loop owns the socket: it stops reading, closes it,
		// then closes done (pollClosed).
		s.raw.requestClose()
	case s.conn != nil:
		_ = s.conn.Close() // stops the reader goroutine, which closes done
		if !reader {
			close(s.done)
		}
	default:
		close(s.done)
	}
	if cause != nil {
		s.log.Info("rtp session ended", "cause", cause.Error(), "packets_in", s.packetsIn.Load(), "packets_out", s.packetsOut.Load())
	} else {
		s.log.Debug("rtp session closed", "packets_in", s.packetsIn.Load(), "packets_out", s.packetsOut.Load())
	}
}

// read is the reader goroutine: it parks in ReadFromUDPAddrPort and hands each
// datagram to handlePacket. It closes done when it exits.
func (s *Session) read() {
	defer close(s.done)
	for {
		n, from, err := s.conn.ReadFromUDPAddrPort(s.rxBuf)
		if err != nil {
			if !s.ended.Load() {
				s.end(fmt.Errorf("media: rtp read: %w", err))
			}
			return
		}
		s.handlePacket(s.rxBuf[:n], from, time.Now())
	}
}

// pollFailed implements pollHandler: the poller loop could not read the socket.
func (s *Session) pollFailed(err error) {
	if !s.ended.Load() {
		s.end(fmt.Errorf("media: rtp read: %w", err))
	}
}

// pollClosed implements pollHandler: the poller loop closed the socket after end.
func (s *Session) pollClosed() { close(s.done) }

// handlePacket is the whole per-datagram receive path: validate and parse,
// symmetric-RTP latch check, sequence accounting, then DTMF or audio
// dispatch. It runs on the reader goroutine or poller loop (or a test's) and
// allocates nothing.
func (s *Session) handlePacket(buf []byte, from netip.AddrPort, now time.Time) {
	// Reject what is plainly not RTP before pion/rtp, whose errors allocate.
	if len(buf) < rtpHeaderSize || buf[0]>>6 != 2 {
		s.garbage.Add(1)
		return
	}
	if st := s.srtp.Load(); st != nil {
		dec, err := st.decrypt(buf)
		if err != nil {
			s.srtpFailed.Add(1)
			return
		}
		buf = dec
	}
	pkt := &s.rxPkt
	if err := pkt.Unmarshal(buf); err != nil {
		s.garbage.Add(1)
		return
	}
	from = unmap(from)

	nowNS := int64(now.Sub(s.epoch))
	s.mu.Lock()
	latchedNow := false
	if from != s.latched {
		switch s.checkLatchLocked(from, pkt.SSRC, pkt.SequenceNumber, nowNS) {
		case latchStranger:
			s.mu.Unlock()
			s.strangers.Add(1)
			return
		case latchProbation:
			s.mu.Unlock()
			s.probation.Add(1)
			return
		}
		latchedNow = true
	} else {
		s.latch.latchRx = nowNS
	}
	codec, audioPT, dtmfPT, sink, relay, inband, mix := s.codec, s.audioPT, s.dtmfPT, s.sink, s.relay, s.inband, s.mix
	isDTMF := dtmfPT != 0 && pkt.PayloadType == dtmfPT
	if isDTMF {
		digits := s.dtmfRx.Receive(s.rxDigits[:0], now, pkt.SSRC, pkt.Timestamp, pkt.Payload)
		s.deliverDigits(digits)
	}
	s.mu.Unlock()

	if latchedNow {
		s.log.Debug("rtp latched", "rtp_source", from.String()) // no allocation when the level is off
	}
	s.packetsIn.Add(1)
	s.bytesIn.Add(uint64(len(buf)))
	s.lastRx.Store(nowNS)
	s.trackSequence(pkt.SSRC, pkt.SequenceNumber)

	switch {
	case isDTMF:
		s.dtmfIn.Add(1)
		if relay != nil {
			relay.forward(pkt, codec, true, now)
		}
	case pkt.PayloadType == audioPT:
		if relay != nil {
			relay.forward(pkt, codec, false, now)
		}
		if mix != nil {
			mix.put(pkt.Payload, codec)
		}
		if sink != nil {
			sink(pkt, codec, now)
		}
		// RFC 4733 wins: once the peer sent a telephone-event, its tones are not read again.
		if inband != nil && s.dtmfIn.Load() == 0 {
			s.deliverDigits(inband.Decode(s.rxInband[:0], codec, pkt.Payload))
		}
	case pkt.PayloadType == PayloadTypeCN:
		if relay != nil {
			relay.dropped.Add(1) // the other leg did not negotiate CN
		}
	default:
		s.unknownPT.Add(1)
		if relay != nil {
			relay.dropped.Add(1)
		}
	}
}

// trackSequence counts sequence gaps as lost; late or duplicate packets are
// not counted. A new SSRC restarts the count.
func (s *Session) trackSequence(ssrc uint32, seq uint16) {
	if !s.rxHaveSeq || ssrc != s.rxSSRC {
		s.rxHaveSeq, s.rxSSRC, s.rxSeq = true, ssrc, seq
		return
	}
	d := seq - s.rxSeq
	if d == 0 || d >= 0x8000 {
		return // duplicate or late
	}
	s.lost.Add(uint64(d - 1))
	s.rxSeq = seq
}

// deliverDigits sends digits to the Digits channel without blocking.
func (s *Session) deliverDigits(digits []rune) {
	for _, d := range digits {
		s.digitsIn.Add(1)
		select {
		case s.digits <- d:
		default:
			s.digitsDropped.Add(1)
		}
	}
}

// sessionTicker is the Session's Stream face, kept off Session's exported API.
type sessionTicker Session

// Tick implements Stream.
func (t *sessionTicker) Tick(deadline time.Time) { (*Session)(t).tick(deadline) }

// tick runs every 20 ms on the scheduler goroutine: inactivity and DTMF
// missing-end checks, then at most one packet (DTMF event or audio frame).
func (s *Session) tick(deadline time.Time) {
	if s.ended.Load() {
		return
	}
	if to := s.timeout.Load(); to > 0 && int64(deadline.Sub(s.epoch))-s.lastRx.Load() > to {
		s.end(ErrRTPTimeout)
		return
	}
	s.mu.Lock()
	if s.dtmfRx.Open() {
		s.deliverDigits(s.dtmfRx.Expire(s.rxDigits[:0], deadline))
	}
	n, dst, finished := s.nextPacketLocked(deadline)
	if n > 0 {
		s.sending.Add(1)
	}
	s.mu.Unlock()

	if n > 0 {
		s.send(s.tx.buf[:n], dst)
		s.sending.Add(-1)
	}
	finished.finish()
}

// send writes one packet built by the tick or a bridge; no lock is held.
func (s *Session) send(b []byte, dst netip.AddrPort) bool {
	var err error
	if st := s.srtp.Load(); st != nil {
		st.txMu.Lock() // the buffer and the context's rollover state are shared
		var out []byte
		if out, err = st.tx.EncryptRTP(st.txBuf[:0], b, &st.txHdr); err == nil {
			err = s.write(out, dst)
		}
		st.txMu.Unlock()
	} else {
		err = s.write(b, dst)
	}
	if err != nil {
		if s.sendError.Add(1) == 1 && !s.ended.Load() {
			s.log.Warn("rtp send failed", "rtp_remote", dst.String(), "err", err.Error())
		}
		return false
	}
	s.packetsOut.Add(1)
	s.bytesOut.Add(uint64(len(b)))
	return true
}

// write sends one datagram from the session's socket.
func (s *Session) write(b []byte, dst netip.AddrPort) error {
	if s.raw != nil {
		return s.raw.sendTo(b, dst)
	}
	_, err := s.conn.WriteToUDPAddrPort(b, dst)
	return err
}

// waitSends returns once no packet built before the call is still being
// sent. Callers first change, under mu, what may be built from now on.
func (s *Session) waitSends() {
	for i := 0; s.sending.Load() != 0; i++ {
		if i < 64 {
			runtime.Gosched()
		} else {
			time.Sleep(20 * time.Microsecond)
		}
	}
}

// nextTSLocked returns the RTP timestamp for a packet sent at now that starts
// a new stream in this session's timestamp space: the last packet's
// timestamp plus the real time since (at least one frame), so a receiver's
// jitter buffer sees neither a step back nor a jump. s.mu is held.
func (s *Session) nextTSLocked(now time.Time) uint32 {
	tx := &s.tx
	switch {
	case tx.haveLast:
		return tx.lastTS + uint32(max(FrameSamples, samplesIn(now.Sub(tx.lastTime))))
	case tx.haveFirst:
		return tx.ts0 + uint32(max(0, samplesIn(now.Sub(tx.first))))
	}
	return tx.ts0
}

// samplesIn returns the number of whole samples (at ClockRate) in d.
func samplesIn(d time.Duration) int64 { return int64(d / (time.Second / ClockRate)) }

// noteSentLocked records the timestamp and time of a packet about to be sent
// when it is the newest so far. s.mu is held.
func (s *Session) noteSentLocked(ts uint32, t time.Time) {
	tx := &s.tx
	if !tx.haveLast || int32(ts-tx.lastTS) > 0 {
		tx.lastTS, tx.lastTime, tx.haveLast = ts, t, true
	}
}

// nextPacketLocked advances the sender by one 20 ms tick. It returns the
// length of the packet built in s.tx.buf (0 for none), its destination, and a
// playback that completed with this tick. s.mu is held.
func (s *Session) nextPacketLocked(deadline time.Time) (n int, dst netip.AddrPort, finished *playback) {
	tx := &s.tx
	if !tx.haveFirst {
		tx.first, tx.haveFirst = deadline, true
	}
	if s.txPaused {
		return 0, dst, nil // bridged: the bridge sends; playback and DTMF queue wait
	}
	k := int64(deadline.Sub(tx.first) / FrameDuration)
	ts := tx.ts0 + uint32(k*FrameSamples) // real time, also across gaps
	if tx.rebase {
		// Packets were relayed in another timestamp clock: continue from
		// the last of them, then drift-free again from here.
		want := s.nextTSLocked(deadline)
		tx.ts0 += want - ts
		ts, tx.rebase = want, false
	}
	dst = s.latched
	if !dst.IsValid() {
		dst = s.remote
	}
	canSend := dst.IsValid() && s.hasSocket() && !s.sendOff

	// RFC 4733 events pre-empt audio; the audio after them starts a talkspurt.
	if evTS, marker, ok := tx.dtmf.Tick(tx.dtmfBuf[:], ts); ok {
		tx.newSpurt = true
		if !canSend || s.dtmfPT == 0 {
			return 0, dst, nil
		}
		s.noteSentLocked(ts, deadline)
		return s.marshalLocked(s.dtmfPT, marker, evTS, tx.dtmfBuf[:]), dst, nil
	}

	if s.cur == nil {
		return 0, dst, nil
	}
	frame, complete := s.cur.next(s.codec)
	if complete {
		finished = s.cur
		s.cur = nil
	}
	if !canSend || frame == nil {
		return 0, dst, finished
	}
	marker := tx.newSpurt || tx.lastAudioK != k-1
	tx.newSpurt = false
	tx.lastAudioK = k
	s.noteSentLocked(ts, deadline)
	return s.marshalLocked(s.audioPT, marker, ts, frame), dst, finished
}

// marshalLocked writes one RTP packet into s.tx.buf and advances the sequence number.
func (s *Session) marshalLocked(pt uint8, marker bool, ts uint32, payload []byte) int {
	tx := &s.tx
	tx.pkt.Header = rtp.Header{
		Version:        2,
		Marker:         marker,
		PayloadType:    pt,
		SequenceNumber: tx.seq,
		Timestamp:      ts,
		SSRC:           tx.ssrc,
	}
	tx.pkt.Payload = payload
	n, err := tx.pkt.MarshalTo(tx.buf[:])
	tx.pkt.Payload = nil
	if err != nil {
		s.log.Error("rtp marshal failed", "err", err.Error(), "payload_len", len(payload))
		return 0
	}
	tx.seq++
	return n
}

// hasSocket reports whether the session has a socket to send from.
func (s *Session) hasSocket() bool { return s.conn != nil || s.raw != nil }

func unmap(a netip.AddrPort) netip.AddrPort {
	if a.Addr().Is4In6() {
		return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
	}
	return a
}
