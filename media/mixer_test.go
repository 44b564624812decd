package media

import (
	"context"
	"math"
	"testing"
	"time"
)

// mixParty is a session in a mixer with the peer (phone) on its other side, playing a tone.
type mixParty struct {
	name  string
	s     *Session
	peer  *rtpPeer
	codec Codec
	freq  float64
}

// Three parties (the laws mixed: PCMA, PCMU, PCMA) each play their own tone into a mixer;
// for each listening matrix (a supervisor listening, whispering, barging in) each peer must
// hear exactly the tones of the members it hears, never its own.
func TestMixerEachHearsExactlyItsSources(t *testing.T) {
	ports := testPorts()
	sched := NewScheduler(2)
	defer sched.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	parties := []*mixParty{
		{name: "citizen", codec: PCMA, freq: 600},
		{name: "agent", codec: PCMU, freq: 1000},
		{name: "supervisor", codec: PCMA, freq: 1500},
	}
	mx := NewMixer(sched)
	defer mx.Close()
	for _, p := range parties {
		p.peer = newPeer(t)
		p.s = newTestSession(t, ports, SessionConfig{Scheduler: sched, Timeout: -1})
		p.s.SetRemote(p.peer.addr(), p.codec, 0)
		p.s.Start(ctx)
		defer p.s.Close()
		if err := mx.Add(p.s); err != nil {
			t.Fatal(err)
		}
	}
	cit, ag, sup := parties[0], parties[1], parties[2]

	// The peers play their tones, paced at 20 ms, until the test ends.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		frames := make([][][]byte, len(parties))
		for i, p := range parties {
			frames[i], _ = toneFrames(p.codec, p.freq, 50)
		}
		tick := time.NewTicker(FrameDuration)
		defer tick.Stop()
		for k := 0; ; k++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for i, p := range parties {
				p.peer.sendAudio(t, p.s.LocalAddr(), p.codec, frames[i][k%50], k == 0)
			}
		}
	}()
	defer func() { close(stop); <-done }()

	for _, tc := range []struct {
		mode  string
		hears map[*mixParty][]*mixParty
	}{
		{"listen", map[*mixParty][]*mixParty{cit: {ag}, ag: {cit}, sup: {cit, ag}}},
		{"whisper", map[*mixParty][]*mixParty{cit: {ag}, ag: {cit, sup}, sup: {cit, ag}}},
		{"barge", map[*mixParty][]*mixParty{cit: {ag, sup}, ag: {cit, sup}, sup: {cit, ag}}},
	} {
		start := make(map[*mixParty]int)
		for l, srcs := range tc.hears {
			ss := make([]*Session, len(srcs))
			for i, p := range srcs {
				ss[i] = p.s
			}
			mx.SetHears(l.s, ss...)
		}
		time.Sleep(100 * time.Millisecond) // let the previous matrix's frames pass
		for _, p := range parties {
			start[p] = p.peer.count()
		}
		// Wait for 30 frames at every peer (polled; a loaded machine may be slower).
		deadline := time.Now().Add(10 * time.Second)
		for _, p := range parties {
			for p.peer.count()-start[p] < 30 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
		}
		for _, l := range parties {
			pkts := l.peer.packets()[start[l]:]
			if len(pkts) < 30 {
				t.Fatalf("%s: %s received %d frames, want 30", tc.mode, l.name, len(pkts))
			}
			pcm := decodeAll(pkts[5:], l.codec)
			for _, src := range parties {
				heard := false
				for _, h := range tc.hears[l] {
					heard = heard || h == src
				}
				g := goertzel(pcm, src.freq)
				switch {
				case heard && g < 0.05:
					t.Errorf("%s: %s does not hear %s's %.0f Hz (goertzel %.4f)", tc.mode, l.name, src.name, src.freq, g)
				case !heard && g > 0.005:
					t.Errorf("%s: %s hears %s's %.0f Hz (goertzel %.4f), it must not", tc.mode, l.name, src.name, src.freq, g)
				}
			}
		}
	}
}

// The sum saturates instead of wrapping around; one source is copied as it is.
func TestMixerSumSaturates(t *testing.T) {
	a, b, c := &mixMember{}, &mixMember{}, &mixMember{}
	for i := range FrameSamples {
		a.frame[i], b.frame[i] = 30000, 20000
		c.frame[i] = -30000
	}
	var out [FrameSamples]int16
	mixInto(&out, []*mixMember{a, b})
	if out[0] != math.MaxInt16 || out[FrameSamples-1] != math.MaxInt16 {
		t.Errorf("30000+20000 = %d, want %d", out[0], math.MaxInt16)
	}
	mixInto(&out, []*mixMember{c, c, a})
	if out[0] != -30000 {
		t.Errorf("-30000-30000+30000 = %d, want -30000", out[0])
	}
	c.frame[0] = math.MinInt16
	mixInto(&out, []*mixMember{c, c})
	if out[0] != math.MinInt16 {
		t.Errorf("negative sum = %d, want %d", out[0], math.MinInt16)
	}
	mixInto(&out, []*mixMember{b})
	if out[7] != 20000 {
		t.Errorf("one source: %d, want 20000", out[7])
	}
	mixInto(&out, nil)
	if out[7] != 0 {
		t.Errorf("no source: %d, want silence", out[7])
	}
}

// A member's input is bounded: a burst keeps only the newest 40 ms, a tick with nothing
// received gives silence, and packets of other sizes than 20 ms are framed by the tick.
func TestMixerInputBounded(t *testing.T) {
	mm := &mixMember{}
	frame := func(v int16) []byte {
		pcm := make([]int16, FrameSamples)
		for i := range pcm {
			pcm[i] = v
		}
		b := make([]byte, FrameSamples)
		PCMU.Encode(b, pcm)
		return b
	}
	for v := int16(1000); v <= 5000; v += 1000 { // five frames in one burst
		mm.put(frame(v), PCMU)
	}
	if mm.n > mixBuffer {
		t.Fatalf("buffered %d samples, bound %d", mm.n, mixBuffer)
	}
	mm.take()
	want := make([]int16, 1)
	PCMU.Decode(want, frame(4000)[:1])
	if mm.frame[0] != want[0] {
		t.Errorf("after a burst the tick took %d, want the second newest frame (%d)", mm.frame[0], want[0])
	}
	mm.take()
	PCMU.Decode(want, frame(5000)[:1])
	if mm.frame[0] != want[0] {
		t.Errorf("next tick took %d, want the newest frame (%d)", mm.frame[0], want[0])
	}
	mm.take()
	if mm.frame[0] != 0 || mm.frame[FrameSamples-1] != 0 {
		t.Errorf("nothing received: frame %d, want silence", mm.frame[0])
	}
	// 30 ms packets: the tick takes 20 ms, the rest waits.
	mm.put(make([]byte, 240), PCMA)
	mm.take()
	if mm.n != 80 {
		t.Errorf("after a 30 ms packet and a tick, %d samples wait, want 80", mm.n)
	}
	mm.take()
	if mm.n != 0 {
		t.Errorf("%d samples left", mm.n)
	}
}

// Removing a member gives its session back its own media: a prompt plays again,
// continuing the mixed stream's sequence numbers; Add after Close fails.
func TestMixerRemoveResumesPrompts(t *testing.T) {
	ports := testPorts()
	sched := NewScheduler(1)
	defer sched.Close()
	peer := newPeer(t)
	s := newTestSession(t, ports, SessionConfig{Scheduler: sched, Timeout: -1})
	s.SetRemote(peer.addr(), PCMU, 0)
	s.Start(context.Background())
	defer s.Close()
	mx := NewMixer(sched)
	if err := mx.Add(s); err != nil {
		t.Fatal(err)
	}
	waitCount(t, peer, 10)
	mx.Remove(s)
	n := peer.count()
	<-s.Play(Tone("beep", []float64{800}, 200*time.Millisecond, 0.5))
	waitCount(t, peer, n+10) // the prompt's 10 frames arrive
	pkts := peer.packets()
	for i := 1; i < len(pkts); i++ {
		if d := pkts[i].SequenceNumber - pkts[i-1].SequenceNumber; d != 1 {
			t.Errorf("packet %d: seq +%d across the mixer's end", i, d)
		}
	}
	if mx.Members() != 0 {
		t.Errorf("%d members after Remove", mx.Members())
	}
	mx.Close()
	if err := mx.Add(s); err != ErrMixerClosed {
		t.Errorf("Add after Close: %v, want ErrMixerClosed", err)
	}
}

func waitCount(t *testing.T, p *rtpPeer, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for p.count() < n {
		if time.Now().After(deadline) {
			t.Fatalf("peer received %d packets, want %d", p.count(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A key queued on a member (SendDTMF) goes out as RFC 4733 in place of the mix, then the
// mix resumes: keys reach a department's IVR during a three-way call.
func TestMixerSendsQueuedDTMF(t *testing.T) {
	ports := testPorts()
	sched := NewScheduler(1)
	defer sched.Close()
	peer := newPeer(t)
	s := newTestSession(t, ports, SessionConfig{Scheduler: sched, Timeout: -1})
	s.SetRemote(peer.addr(), PCMA, 101)
	s.Start(context.Background())
	defer s.Close()
	mx := NewMixer(sched)
	defer mx.Close()
	if err := mx.Add(s); err != nil {
		t.Fatal(err)
	}
	waitCount(t, peer, 3)
	if err := s.SendDTMF('5', 60*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		pkts := peer.packets()
		var events, audioAfter int
		for _, p := range pkts {
			switch {
			case p.PayloadType == 101:
				events++
				if ev, err := ParseDTMFEvent(p.Payload); err != nil || ev.Event != 5 {
					t.Fatalf("event packet %+v (%v), want digit 5", ev, err)
				}
			case events > 0 && p.PayloadType == uint8(PCMA):
				audioAfter++
			}
		}
		if events >= 4 && audioAfter >= 3 { // the event's packets and end copies, then the mix again
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d event packets and %d audio packets after them", events, audioAfter)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// BenchmarkMixerTick is one 20 ms tick of a three-party mixer (a barge-in or a three-way
// call): a frame in from each member, three N-1 mixes, three encodes and sends on loopback.
func BenchmarkMixerTick(b *testing.B) {
	ports := testPorts()
	sched := NewScheduler(1)
	defer sched.Close()
	mixSched := NewScheduler(1) // the mixer's own, stopped: the benchmark ticks it
	mx := NewMixer(mixSched)
	mixSched.Close()
	defer mx.Close()
	frame, _ := toneFrames(PCMA, 1000, 1)
	var members []*Session
	for range 3 {
		peer := newPeer(b)
		s := newTestSession(b, ports, SessionConfig{Scheduler: sched, Timeout: -1})
		s.SetRemote(peer.addr(), PCMA, 0)
		defer s.Close()
		if err := mx.Add(s); err != nil {
			b.Fatal(err)
		}
		members = append(members, s)
	}
	mx.mu.Lock()
	mms := append([]*mixMember(nil), mx.members...)
	mx.mu.Unlock()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for _, mm := range mms {
			mm.put(frame[0], PCMA)
		}
		mx.Tick(time.Now())
	}
}
