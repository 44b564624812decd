package loadtest

// The load tester measures correctly: loss and jitter it reports are checked
// against a relay that knows the truth because it makes it. SIPp plays a
// recorded PCMA stream; an SDP-rewriting relay puts itself on the media path
// between SIPp and the meter, drops and delays known packets, and computes
// the RFC 3550 jitter of what it actually sent by its own clock.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
)

const (
	g711aPcap    = "/usr/share/sip-tester/g711a.pcap"
	g711aPackets = 236 // RTP packets in it: PCMA, one SSRC, consecutive sequence numbers, 240 samples (30 ms) each, 7.05 s in all
	// relayHold is how long RunIVR holds the call: SIPp starts the 7.05 s pcap 200 ms
	// after the ACK, so this leaves it 1.7 s of slack on a busy machine.
	relayHold = 9 * time.Second
	// relayOracleTol is how far the meter's jitter figures may be from the relay's,
	// computed on its own send times, beyond how long its sends took: the meter's
	// arrival stamps are the kernel's, taken during the send on loopback, or, without
	// them, its reader's, a little later.
	relayOracleTol = 2 * time.Millisecond
	// relayJitterTol is how far the meter's jitter may be from what the impairment
	// alone gives (SIPp's and the relay's timing add theirs; see checkRelayRun).
	relayJitterTol = 4 * time.Millisecond
)

// The meter's RFC 3550 jitter, worked out by hand. A peer sends seven packets
// back to back, so they all arrive at about the same time A, and their RTP
// timestamps make the transit times (A − ts/8000) differ by known seconds;
// the small differences between the real arrival times bound the error (see
// below). Sequence numbers and timestamps both wrap around mid-stream.
func TestMeterJitterByHand(t *testing.T) {
	const (
		ssrc = 0x5eed
		s16  = 12800 // 1.6 s of 8 kHz RTP clock
	)
	t0 := uint32(0xFFFFF000) // a variable: t0 + s16 wraps past 2^32 on purpose
	// transit_i = A − ts_i/8000 s, so |D_i| = |ts_i − ts_(i−1)|/8000 s, and
	// J_i = J_(i−1) + (|D_i| − J_(i−1))/16, in ns:
	pkts := []struct {
		seq uint16
		ts  uint32
		pt  uint8
		j   float64 // J after this packet, ns
	}{
		{65533, t0, pcmaPT, 0},                      // first: no D yet
		{65534, t0 + s16, pcmaPT, 100_000_000},      // |D| = 1.6 s: J = 1.6e9/16
		{65535, t0, pcmaPT, 193_750_000},            // |D| = 1.6 s: J = 1e8 + (1.6e9 − 1e8)/16
		{0, t0 + 100*8000, 101, 193_750_000},        // telephone-event: counted, not in J (its timestamp is 100 s off)
		{2, t0, pcmaPT, 181_640_625},                // seq 1 lost; |D| = 0: J = 193.75e6 · 15/16
		{3, t0 + s16, pcmaPT, 270_288_085.9375},     // |D| = 1.6 s: J = 181.640625e6 + (1.6e9 − 181.640625e6)/16
		{7, t0 + s16, pcmaPT, 253_395_080.56640625}, // seq 4–6 lost; |D| = 0: J = 270.2880859375e6 · 15/16
	}
	wantMax := 270_288_085.9375 // reached at seq 3
	peer, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	m, err := NewMeter(netip.MustParseAddr("127.0.0.1"), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s, err := m.Add(peer.LocalAddr().(*net.UDPAddr).AddrPort(), pcmaPT, 101)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Remove()
	wire := make([][]byte, len(pkts))
	for i, p := range pkts {
		wire[i] = rtpPacket(t, p.pt, p.seq, p.ts, ssrc)
	}
	// Every arrival falls within [start, counted], so each |D| is off by at most
	// w = counted − start, and so is J (a weighted mean of |D|s, weights summing to ≤ 1).
	start := time.Now()
	for _, b := range wire {
		if _, err := peer.WriteToUDPAddrPort(b, s.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	var st RTPStats
	for deadline := time.Now().Add(waitLong); ; time.Sleep(time.Millisecond) {
		if st = s.Stats(); st.Packets >= int64(len(pkts)) || time.Now().After(deadline) {
			break
		}
	}
	w := time.Since(start)
	t.Logf("arrival window %v; stats %+v", w, st)
	if st.Packets != 7 || st.AudioPackets != 6 || st.OtherPackets != 1 || st.Lost != 4 || st.Late != 0 || st.Duplicates != 0 || st.SSRCChanges != 0 {
		t.Fatalf("stats %+v: want 7 packets (6 audio, 1 event), 4 lost, none late or duplicate, no SSRC change", st)
	}
	tol := float64(w + time.Microsecond) // + truncation to whole ns
	if want := pkts[len(pkts)-1].j; math.Abs(float64(st.Jitter)-want) > tol {
		t.Errorf("jitter %v, want %v ± %v", st.Jitter, time.Duration(want), w)
	}
	if math.Abs(float64(st.MaxJitter)-wantMax) > tol {
		t.Errorf("max jitter %v, want %v ± %v", st.MaxJitter, time.Duration(wantMax), w)
	}
}

// relayCase is one run through the relay: what it does to SIPp's packets and
// what the meter must then report.
type relayCase struct {
	name   string
	imp    impairment
	lost   int64         // packets the relay drops
	jitter time.Duration // the impairment's own: what a stream paced perfectly would have after it
}

// TestMeterThroughRelay: RunIVR calls a SIPp UAS through the relay, one call
// per case, the cases at the same time. Each asserts that the meter received
// exactly what the relay forwarded, counts as lost exactly what it dropped,
// and reports the jitter the relay's own RFC 3550 estimate gives (and the
// impairment's, within the timing noise of SIPp and the relay).
func TestMeterThroughRelay(t *testing.T) {
	needSIPp(t)
	if _, err := os.Stat(g711aPcap); err != nil {
		t.Fatalf("SIPp's pcap (Debian sip-tester): %v", err)
	}
	const delta = 20 * time.Millisecond // < 30 ms frames: the alternate delays reorder nothing
	cases := []relayCase{
		// Nothing done: no loss, and only SIPp's and the relay's own timing noise.
		{name: "control"},
		// Every 25th packet dropped (9 of 236, never the first or last), the rest
		// all 40 ms late: a steady delay is no jitter, and a gap in sequence
		// numbers with the timestamps to match is none either.
		{name: "loss and steady delay", lost: 9,
			imp: impairment{
				drop:  func(n int) bool { return n > 0 && n%25 == 0 },
				delay: func(int) time.Duration { return 40 * time.Millisecond },
			}},
		// Packets alternately 5 ms and 5 ms + delta late (both by timer, so that
		// the timers' own lateness cancels out): each transit time differs from
		// the last by delta, so J converges on delta (J_n = delta·(1 − (15/16)^n),
		// delta to within 5 ns after the 236th packet).
		{name: "alternate delay", jitter: delta,
			imp: impairment{delay: func(i int) time.Duration { return 5*time.Millisecond + time.Duration(i%2)*delta }}},
	}
	// The calls run together, not as parallel subtests, so that the test takes
	// one hold whatever -parallel is.
	runs := make([]*relayRun, len(cases))
	for i, tc := range cases {
		runs[i] = startRelayRun(t, tc.imp)
	}
	var wg sync.WaitGroup
	for _, r := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.call()
		}()
	}
	wg.Wait()
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { checkRelayRun(t, tc, runs[i]) })
	}
}

// relayRun is one call from RunIVR to SIPp through the relays.
type relayRun struct {
	media  *mediaRelay
	sig    *sipRelay
	sipp   *relaySIPpRun
	rep    *IVRReport
	err    error
	hangup time.Time // no later than the phone's BYE
}

func startRelayRun(t *testing.T, imp impairment) *relayRun {
	t.Helper()
	media := startMediaRelay(t, imp)
	sipPort, mediaPort := relayFreePort(t), relayFreePort(t)
	sig := startSIPRelay(t, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(sipPort)), media)
	scenario, err := filepath.Abs(filepath.Join("testdata", "relay", "uas_play_g711a.xml"))
	if err != nil {
		t.Fatal(err)
	}
	run := startRelaySIPp(t, "-sf", scenario, "-i", "127.0.0.1", "-p", strconv.Itoa(sipPort),
		"-mi", "127.0.0.1", "-mp", strconv.Itoa(mediaPort))
	relayWaitBound(t, sipPort, run)
	return &relayRun{media: media, sig: sig, sipp: run}
}

// call places the call, holds it relayHold and hangs up.
func (r *relayRun) call() {
	ctx, cancel := context.WithTimeout(context.Background(), relayHold+15*time.Second) // a bound, not a pace
	defer cancel()
	t0 := time.Now()
	r.rep, r.err = RunIVR(ctx, IVRConfig{
		Target: r.sig.front.LocalAddr().(*net.UDPAddr).AddrPort(),
		Calls:  1, Rate: 1, Hold: relayHold, Codec: "PCMA", Sockets: 1,
	})
	if r.rep != nil {
		r.hangup = t0.Add(r.rep.RampTime.D() + r.rep.Plateau.D())
	}
}

func checkRelayRun(t *testing.T, tc relayCase, run *relayRun) {
	rep, hangup := run.rep, run.hangup
	if run.err != nil {
		t.Fatalf("RunIVR: %v\nSIPp:\n%s", run.err, run.sipp.output())
	}
	run.sipp.wait(t)
	run.media.close()
	run.sig.close()

	r := run.media.result()
	offers, answers := run.sig.counts()
	t.Logf("relay: %d from SIPp, %d dropped, %d forwarded (seq %d–%d), last %v before hang-up, %d from the meter; J %v max %v (sends took ≤ %v); delays alone J %v max %v; timing noise J %v max %v",
		r.received, r.dropped, r.forwarded, r.fwdFirst, r.fwdLast, hangup.Sub(r.lastFwd), r.fromMeter,
		r.jitter.dur(), r.jitter.maxDur(), r.sendTook, r.ideal.dur(), r.ideal.maxDur(), r.noise.dur(), r.noise.maxDur())
	t.Logf("meter: %+v; jitter %v max %v; loss %.3f%%; meter stats %+v",
		rep.RTP, rep.JitterP50, rep.JitterMax, rep.LossPct, rep.Client.Meter)

	// The path was the one meant: SDP rewritten both ways, SIPp's whole pcap
	// through the relay to the meter, and over before the meter stopped counting.
	if rep.Established != 1 || rep.EndedEarly != 0 {
		t.Fatalf("established %d (%v), ended early %d: want the one call held", rep.Established, rep.FailReasons, rep.EndedEarly)
	}
	if offers < 1 || answers < 1 || r.fromMeter == 0 {
		t.Fatalf("relay rewrote %d offers and %d answers and had %d packets from the meter: the media did not go through it", offers, answers, r.fromMeter)
	}
	if r.received != g711aPackets || int(r.lastIn-r.firstIn) != g711aPackets-1 || r.garbage != 0 || r.sendErrors != 0 {
		t.Fatalf("relay took %d packets (seq %d–%d, %d not RTP, %d send errors) from SIPp: want the pcap's %d in sequence",
			r.received, r.firstIn, r.lastIn, r.garbage, r.sendErrors, g711aPackets)
	}
	if slack := hangup.Sub(r.lastFwd); slack < 300*time.Millisecond {
		t.Fatalf("the relay's last packet left %v before the hang-up: SIPp too late for the hold (machine overloaded?)", slack)
	}
	if int64(r.dropped) != tc.lost || r.forwarded+r.dropped != r.received {
		t.Fatalf("relay dropped %d and forwarded %d of %d: want %d dropped", r.dropped, r.forwarded, r.received, tc.lost)
	}

	// Counts: exact.
	st := rep.RTP
	if st.Packets != int64(r.forwarded) || st.AudioPackets != st.Packets {
		t.Errorf("meter received %d packets (%d audio), relay forwarded %d", st.Packets, st.AudioPackets, r.forwarded)
	}
	if st.Lost != tc.lost || st.Lost != int64(int(r.fwdLast-r.fwdFirst)+1-r.forwarded) {
		t.Errorf("meter counts %d lost; relay dropped %d (seq %d–%d, %d forwarded)", st.Lost, r.dropped, r.fwdFirst, r.fwdLast, r.forwarded)
	}
	if st.Late != 0 || st.Duplicates != 0 || st.SSRCChanges != 0 || rep.Client.Meter.Strangers != 0 || rep.Client.Meter.Garbage != 0 {
		t.Errorf("meter: %d late, %d duplicates, %d SSRC changes, %d strangers, %d garbage: want none",
			st.Late, st.Duplicates, st.SSRCChanges, rep.Client.Meter.Strangers, rep.Client.Meter.Garbage)
	}
	if want := 100 * float64(tc.lost) / g711aPackets; math.Abs(rep.LossPct-want) > 1e-9 {
		t.Errorf("loss %.6f%%, want %.6f%%", rep.LossPct, want)
	}

	// Jitter, against the truth: the relay's RFC 3550 estimate on its own send
	// times, each known to within how long its send took.
	tol := relayOracleTol + r.sendTook
	if d := (rep.JitterP50.D() - r.jitter.dur()).Abs(); d > tol {
		t.Errorf("meter jitter %v, relay's %v: %v apart, want ≤ %v", rep.JitterP50, r.jitter.dur(), d, tol)
	}
	if d := (rep.JitterMax.D() - r.jitter.maxDur()).Abs(); d > tol {
		t.Errorf("meter max jitter %v, relay's %v: %v apart, want ≤ %v", rep.JitterMax, r.jitter.maxDur(), d, tol)
	}
	// And against the impairment: the delays alone make tc.jitter, and the meter's
	// final estimate is that within relayJitterTol. SIPp's pcap timing and the
	// relay's reads and timers ("noise") add to it, by at most their own jitter
	// (the triangle inequality): well under 1 ms at the end of the stream even on a
	// busy machine, where single late packets can push the maximum up by several.
	if d := r.ideal.dur() - tc.jitter; d.Abs() > time.Microsecond {
		t.Fatalf("the delays given make jitter %v, want %v: the relay is wrong", r.ideal.dur(), tc.jitter)
	}
	// The noise is measured (the jitter of the send times less the delays): on a
	// saturated machine it alone reached 11 ms, so it widens the tolerance by its own
	// size, which the triangle inequality allows. The check against the relay's own
	// estimate above stays tight.
	if tol := relayJitterTol + r.noise.dur(); (rep.JitterP50.D() - tc.jitter).Abs() > tol {
		t.Errorf("meter jitter %v, want %v ± %v (timing noise %v)", rep.JitterP50, tc.jitter, tol, r.noise.dur())
	}
	if rep.JitterMax.D() < rep.JitterP50.D() || rep.JitterMax.D() < tc.jitter-relayJitterTol {
		t.Errorf("meter max jitter %v, below its jitter %v or the impairment's %v", rep.JitterMax, rep.JitterP50, tc.jitter)
	}
}

// impairment is what the relay does to SIPp's packets: drop takes a packet's
// place in the stream (its sequence number minus the first one's), delay the
// index of a packet among those it forwards. Nil: none.
type impairment struct {
	drop  func(n int) bool
	delay func(i int) time.Duration
}

// rfc3550 is the test's own RFC 3550 §6.4.1 interarrival jitter, in seconds:
// D = the change in transit time (arrival − RTP timestamp), J += (|D| − J)/16.
type rfc3550 struct {
	have   bool
	t0     time.Time
	ts0    uint32
	prev   float64
	j, max float64
}

func (e *rfc3550) add(at time.Time, ts uint32) {
	if !e.have {
		e.t0, e.ts0 = at, ts
	}
	e.addTransit(at.Sub(e.t0).Seconds() - float64(int32(ts-e.ts0))/8000)
}

func (e *rfc3550) addTransit(transit float64) {
	if e.have {
		e.j += (math.Abs(transit-e.prev) - e.j) / 16
		e.max = math.Max(e.max, e.j)
	}
	e.prev, e.have = transit, true
}

func (e *rfc3550) dur() time.Duration    { return time.Duration(math.Round(e.j * 1e9)) }
func (e *rfc3550) maxDur() time.Duration { return time.Duration(math.Round(e.max * 1e9)) }

// relayResult is what the media relay saw and did.
type relayResult struct {
	received, dropped, forwarded int // SIPp's packets
	garbage, sendErrors          int
	firstIn, lastIn              uint16 // sequence numbers from SIPp
	fwdFirst, fwdLast            uint16 // and of those forwarded
	lastFwd                      time.Time
	fromMeter                    int
	sendTook                     time.Duration // the longest send: how well the relay knows when a packet left
	// RFC 3550 jitter of the forwarded packets: at their send times (the truth);
	// of their delays alone (ideal); and at their send times less their delays,
	// which is SIPp's timing, the relay's reads and its timers' lateness (noise:
	// it widens the tolerance against the impairment by its own size).
	jitter, ideal, noise rfc3550
}

// mediaRelay forwards SIPp's RTP to the meter: SIPp sends to in (the INVITE's
// SDP names it), the meter sends to out (the 200's SDP names it) and the
// relay latches to the source of its first packet, as a symmetric-RTP server
// does, and sends from out. The meter's own packets go no further: SIPp only plays.
type mediaRelay struct {
	in, out *net.UDPConn
	imp     impairment
	queue   chan relayed
	latched chan struct{}
	done    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once

	mu    sync.Mutex
	meter netip.AddrPort
	res   relayResult
}

type relayed struct {
	due   time.Time
	delay time.Duration
	seq   uint16
	ts    uint32
	pkt   []byte
}

func startMediaRelay(t *testing.T, imp impairment) *mediaRelay {
	t.Helper()
	r := &mediaRelay{imp: imp, queue: make(chan relayed, 4*g711aPackets), latched: make(chan struct{}), done: make(chan struct{})}
	for _, c := range []**net.UDPConn{&r.in, &r.out} {
		conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() }) // if a later step fails; close closes them too
		_ = conn.SetReadBuffer(1 << 20)
		*c = conn
	}
	r.wg.Add(3)
	go r.fromSIPp()
	go r.send()
	go r.fromMeter()
	t.Cleanup(r.close)
	return r
}

func (r *mediaRelay) close() {
	r.once.Do(func() {
		close(r.done)
		r.in.Close()
		r.out.Close()
	})
	r.wg.Wait()
}

func (r *mediaRelay) result() relayResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.res
}

func (r *mediaRelay) fromSIPp() {
	defer r.wg.Done()
	buf := make([]byte, 2048)
	var h rtp.Header
	accepted := 0
	for {
		n, _, err := r.in.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		at := time.Now()
		r.mu.Lock()
		if _, err := h.Unmarshal(buf[:n]); err != nil {
			r.res.garbage++
			r.mu.Unlock()
			continue
		}
		if r.res.received == 0 {
			r.res.firstIn = h.SequenceNumber
		}
		r.res.received++
		r.res.lastIn = h.SequenceNumber
		drop := r.imp.drop != nil && r.imp.drop(int(h.SequenceNumber-r.res.firstIn))
		if drop {
			r.res.dropped++
		}
		r.mu.Unlock()
		if drop {
			continue
		}
		var delay time.Duration
		if r.imp.delay != nil {
			delay = r.imp.delay(accepted)
		}
		accepted++
		select {
		case r.queue <- relayed{due: at.Add(delay), delay: delay, seq: h.SequenceNumber, ts: h.Timestamp, pkt: slices.Clone(buf[:n])}:
		case <-r.done:
			return
		}
	}
}

// send forwards the queued packets in order, each at its due time (the delays
// given reorder nothing), once the meter is known.
func (r *mediaRelay) send() {
	defer r.wg.Done()
	for {
		var p relayed
		select {
		case p = <-r.queue:
		case <-r.done:
			return
		}
		select {
		case <-r.latched:
		case <-r.done:
			return
		}
		if d := time.Until(p.due); d > 0 {
			tm := time.NewTimer(d)
			select {
			case <-tm.C:
			case <-r.done:
				tm.Stop()
				return
			}
		}
		r.mu.Lock()
		to := r.meter
		r.mu.Unlock()
		before := time.Now()
		_, err := r.out.WriteToUDPAddrPort(p.pkt, to)
		took := time.Since(before)
		at := before.Add(took / 2) // ± took/2 from when the meter's kernel stamped it
		r.mu.Lock()
		if err != nil {
			r.res.sendErrors++
		} else {
			if r.res.forwarded == 0 {
				r.res.fwdFirst = p.seq
			}
			r.res.forwarded++
			r.res.fwdLast, r.res.lastFwd = p.seq, at
			r.res.sendTook = max(r.res.sendTook, took)
			r.res.jitter.add(at, p.ts)
			r.res.ideal.addTransit(p.delay.Seconds())
			r.res.noise.add(at.Add(-p.delay), p.ts)
		}
		r.mu.Unlock()
	}
}

func (r *mediaRelay) fromMeter() {
	defer r.wg.Done()
	buf := make([]byte, 2048)
	for {
		_, from, err := r.out.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		r.mu.Lock()
		if !r.meter.IsValid() {
			r.meter = from
			close(r.latched)
		}
		r.res.fromMeter++
		r.mu.Unlock()
	}
}

// sipRelay passes SIP between the phone and SIPp, rewriting each SDP body's
// c= and m=audio to the media relay: SIPp's side (the offer) to its in
// socket, the phone's side (the answer) to its out socket. What the phone
// sends to SIPp's Contact afterwards (ACK, BYE) goes straight to SIPp, which
// needs no rewriting.
type sipRelay struct {
	front *net.UDPConn // the load tester's target
	back  *net.UDPConn // faces SIPp
	sipp  netip.AddrPort
	media *mediaRelay
	wg    sync.WaitGroup
	once  sync.Once

	mu              sync.Mutex
	phone           netip.AddrPort
	offers, answers int // SDP bodies rewritten
}

func startSIPRelay(t *testing.T, sipp netip.AddrPort, media *mediaRelay) *sipRelay {
	t.Helper()
	r := &sipRelay{sipp: sipp, media: media}
	for _, c := range []**net.UDPConn{&r.front, &r.back} {
		conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() }) // if a later step fails; close closes them too
		*c = conn
	}
	r.wg.Add(2)
	go r.pass(r.front, true)
	go r.pass(r.back, false)
	t.Cleanup(r.close)
	return r
}

func (r *sipRelay) close() {
	r.once.Do(func() {
		r.front.Close()
		r.back.Close()
	})
	r.wg.Wait()
}

func (r *sipRelay) counts() (offers, answers int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.offers, r.answers
}

// pass reads one side and sends each message on from the other.
func (r *sipRelay) pass(from *net.UDPConn, fromPhone bool) {
	defer r.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, src, err := from.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		r.mu.Lock()
		var msg []byte
		var rewritten bool
		out, to := r.front, r.phone
		if fromPhone {
			r.phone = src
			out, to = r.back, r.sipp
			msg, rewritten = rewriteSDP(buf[:n], r.media.in.LocalAddr().(*net.UDPAddr).AddrPort())
			if rewritten {
				r.offers++
			}
		} else {
			msg, rewritten = rewriteSDP(buf[:n], r.media.out.LocalAddr().(*net.UDPAddr).AddrPort())
			if rewritten {
				r.answers++
			}
		}
		r.mu.Unlock()
		if to.IsValid() {
			_, _ = out.WriteToUDPAddrPort(msg, to)
		}
	}
}

// rewriteSDP points a SIP message's SDP body (c= and m=audio) at media and
// fixes its Content-Length; other messages are returned as they are.
func rewriteSDP(msg []byte, media netip.AddrPort) ([]byte, bool) {
	head, body, ok := strings.Cut(string(msg), "\r\n\r\n")
	if !ok || !strings.Contains(strings.ToLower(head), "application/sdp") {
		return msg, false
	}
	lines := strings.Split(body, "\r\n")
	for i, l := range lines {
		switch {
		case strings.HasPrefix(l, "c=IN IP4 "):
			lines[i] = "c=IN IP4 " + media.Addr().String()
		case strings.HasPrefix(l, "m=audio "):
			f := strings.Fields(l)
			f[1] = strconv.Itoa(int(media.Port()))
			lines[i] = strings.Join(f, " ")
		}
	}
	body = strings.Join(lines, "\r\n")
	hdrs := strings.Split(head, "\r\n")
	for i, h := range hdrs {
		name, _, _ := strings.Cut(h, ":")
		if n := strings.ToLower(strings.TrimSpace(name)); n == "content-length" || n == "l" {
			hdrs[i] = "Content-Length: " + strconv.Itoa(len(body))
		}
	}
	return []byte(strings.Join(hdrs, "\r\n") + "\r\n\r\n" + body), true
}

// relayFreePort returns a UDP port on 127.0.0.1 that was free a moment ago (never 5060).
func relayFreePort(t *testing.T) int {
	t.Helper()
	for {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		port := c.LocalAddr().(*net.UDPAddr).Port
		c.Close()
		if port != 5060 {
			return port
		}
	}
}

type relaySIPpRun struct {
	done chan struct{}
	err  error
	mu   sync.Mutex
	out  bytes.Buffer
}

func (r *relaySIPpRun) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.out.Write(p)
}

func (r *relaySIPpRun) output() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.out.String()
}

// startRelaySIPp runs sipp for one call, bounded in time; the test's end kills it.
func startRelaySIPp(t *testing.T, args ...string) *relaySIPpRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), relayHold+20*time.Second)
	args = append([]string{"-m", "1", "-nostdin", "-timeout", strconv.Itoa(int((relayHold + 15*time.Second).Seconds())) + "s", "-timeout_error"}, args...)
	cmd := exec.CommandContext(ctx, needSIPp(t), args...)
	cmd.Dir = t.TempDir()
	r := &relaySIPpRun{done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = r, r
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start sipp: %v", err)
	}
	go func() {
		defer cancel()
		r.err = cmd.Wait()
		close(r.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

// wait waits for sipp to end its one call and exit, and fails the test unless it did so cleanly.
func (r *relaySIPpRun) wait(t *testing.T) {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(waitLong):
		t.Fatalf("sipp did not exit after the call\n%s", r.output())
	}
	if r.err != nil {
		t.Fatalf("sipp: %v\n%s", r.err, r.output())
	}
}

// relayWaitBound waits until sipp listens on 127.0.0.1:port, as /proc/net/udp
// shows (binding the port to find out could take it from sipp).
func relayWaitBound(t *testing.T, port int, run *relaySIPpRun) {
	t.Helper()
	suffix := fmt.Sprintf(":%04X", port)
	for deadline := time.Now().Add(waitLong); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		tab, err := os.ReadFile("/proc/net/udp")
		if err != nil {
			t.Fatalf("sockets: %v", err)
		}
		for _, line := range strings.Split(string(tab), "\n")[1:] {
			if f := strings.Fields(line); len(f) > 1 && strings.HasSuffix(f[1], suffix) {
				return
			}
		}
		select {
		case <-run.done:
			t.Fatalf("sipp exited: %v\n%s", run.err, run.output())
		default:
		}
	}
	t.Fatalf("sipp did not bind port %d\n%s", port, run.output())
}
