package media

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// dtmfSignal describes test audio: a digit's two tones (or none) for a duration.
type dtmfSignal struct {
	digit           rune    // 0: silence (or noise only)
	ms              int     // duration
	lowDBm, highDB  float64 // levels of the low and high tone, dBm0 (0,0: -10 each)
	lowDev, highDev float64 // relative frequency offsets, e.g. 0.015
}

// amplitude of a sine at level dBm0 in 16-bit samples.
func amplitude(dBm0 float64) float64 { return 32767 * math.Pow(10, (dBm0-fullScaleDBm0)/20) }

// synth renders signals one after the other, starting lead samples of silence in,
// with white noise of noiseDBm0 (none when 0) added throughout.
func synth(lead int, noiseDBm0 float64, sigs ...dtmfSignal) []int16 {
	var out []float64
	out = append(out, make([]float64, lead)...)
	for _, s := range sigs {
		n := s.ms * ClockRate / 1000
		seg := make([]float64, n)
		if s.digit != 0 {
			lo, hi, ok := DTMFFrequencies(s.digit)
			if !ok {
				panic("bad digit")
			}
			ll, hl := s.lowDBm, s.highDB
			if ll == 0 && hl == 0 {
				ll, hl = -10, -10
			}
			lo *= 1 + s.lowDev
			hi *= 1 + s.highDev
			for i := range seg {
				t := float64(i) / ClockRate
				seg[i] = amplitude(ll)*math.Sin(2*math.Pi*lo*t) + amplitude(hl)*math.Sin(2*math.Pi*hi*t+1)
			}
		}
		out = append(out, seg...)
	}
	out = append(out, make([]float64, 800)...) // 100 ms of silence to end the last digit
	rng := rand.New(rand.NewPCG(1, 2))
	pcm := make([]int16, len(out))
	for i, v := range out {
		if noiseDBm0 != 0 {
			v += rng.NormFloat64() * amplitude(noiseDBm0) / math.Sqrt2
		}
		pcm[i] = int16(max(-32768, min(32767, math.Round(v))))
	}
	return pcm
}

// detect runs pcm through codec c (encode, then the detector's Decode in 20 ms frames).
func detect(c Codec, pcm []int16) string {
	var d InbandDetector
	var out []rune
	frame := make([]byte, FrameSamples)
	for i := 0; i+FrameSamples <= len(pcm); i += FrameSamples {
		c.Encode(frame, pcm[i:i+FrameSamples])
		out = d.Decode(out, c, frame)
	}
	return string(out)
}

var bothLaws = []Codec{PCMA, PCMU}

func TestInbandAllDigits(t *testing.T) {
	const keys = "0123456789*#ABCD"
	var sigs []dtmfSignal
	for _, k := range keys {
		sigs = append(sigs, dtmfSignal{digit: k, ms: 60}, dtmfSignal{ms: 60})
	}
	for _, c := range bothLaws {
		for _, lead := range []int{0, 37, 80} {
			if got := detect(c, synth(lead, 0, sigs...)); got != keys {
				t.Errorf("%s, lead %d: got %q, want %q", c, lead, got, keys)
			}
		}
	}
}

// One long press is one digit; pressing the same key again after a pause is another.
func TestInbandDebounce(t *testing.T) {
	for _, c := range bothLaws {
		if got := detect(c, synth(0, 0, dtmfSignal{digit: '5', ms: 2000})); got != "5" {
			t.Errorf("%s: a 2 s press gave %q", c, got)
		}
		for lead := 0; lead < inbandBlock; lead += 17 {
			// Q.24: 40 ms tones with 40 ms pauses.
			got := detect(c, synth(lead, 0, dtmfSignal{digit: '7', ms: 40}, dtmfSignal{ms: 40}, dtmfSignal{digit: '7', ms: 40},
				dtmfSignal{ms: 40}, dtmfSignal{digit: '#', ms: 40}))
			if got != "77#" {
				t.Errorf("%s lead %d: 40 ms tones and pauses gave %q, want 77#", c, lead, got)
			}
			// A 10 ms drop-out inside a press does not split it.
			got = detect(c, synth(lead, 0, dtmfSignal{digit: '3', ms: 60}, dtmfSignal{ms: 10}, dtmfSignal{digit: '3', ms: 60}))
			if got != "3" {
				t.Errorf("%s lead %d: a press with a 10 ms drop-out gave %q, want 3", c, lead, got)
			}
		}
	}
}

func TestInbandDuration(t *testing.T) {
	for _, c := range bothLaws {
		for lead := 0; lead < inbandBlock; lead += 7 {
			if got := detect(c, synth(lead, 0, dtmfSignal{digit: '9', ms: 40})); got != "9" {
				t.Errorf("%s lead %d: a 40 ms tone gave %q, want 9", c, lead, got)
			}
			if got := detect(c, synth(lead, 0, dtmfSignal{digit: '9', ms: 20})); got != "" {
				t.Errorf("%s lead %d: a 20 ms tone gave %q, want nothing", c, lead, got)
			}
		}
	}
}

func TestInbandFrequencyTolerance(t *testing.T) {
	for _, c := range bothLaws {
		for _, k := range "0123456789*#ABCD" {
			for _, dev := range []float64{-0.015, 0.015} {
				for _, s := range []dtmfSignal{
					{digit: k, ms: 80, lowDev: dev},
					{digit: k, ms: 80, highDev: dev},
					{digit: k, ms: 80, lowDev: dev, highDev: -dev},
				} {
					if got := detect(c, synth(0, 0, s)); got != string(k) {
						t.Errorf("%s %c off by %+.1f%%/%+.1f%%: got %q, want it", c, k, 100*s.lowDev, 100*s.highDev, got)
					}
				}
			}
			for _, dev := range []float64{-0.035, 0.035, -0.05, 0.05} {
				for _, s := range []dtmfSignal{{digit: k, ms: 80, lowDev: dev}, {digit: k, ms: 80, highDev: dev}} {
					if got := detect(c, synth(0, 0, s)); got != "" {
						t.Errorf("%s %c off by %+.1f%%/%+.1f%%: got %q, want nothing", c, k, 100*s.lowDev, 100*s.highDev, got)
					}
				}
			}
		}
	}
}

func TestInbandTwistAndLevel(t *testing.T) {
	for _, c := range bothLaws {
		for _, k := range "0123456789*#ABCD" {
			accept := []dtmfSignal{
				{lowDBm: -6, highDB: -14},  // low 8 dB above high (normal twist)
				{lowDBm: -14, highDB: -10}, // high 4 dB above low (reverse twist)
				{lowDBm: -30, highDB: -30}, // weak
				{lowDBm: -4, highDB: -4},   // strong
			}
			for _, s := range accept {
				s.digit, s.ms = k, 80
				if got := detect(c, synth(0, 0, s)); got != string(k) {
					t.Errorf("%s %c low %.1f high %.1f dBm0: got %q, want it", c, k, s.lowDBm, s.highDB, got)
				}
			}
			reject := []dtmfSignal{
				{lowDBm: -5, highDB: -15},  // normal twist 10 dB
				{lowDBm: -16, highDB: -10}, // reverse twist 6 dB
				{lowDBm: -45, highDB: -45}, // below the level
			}
			for _, s := range reject {
				s.digit, s.ms = k, 80
				if got := detect(c, synth(0, 0, s)); got != "" {
					t.Errorf("%s %c low %.1f high %.1f dBm0: got %q, want nothing", c, k, s.lowDBm, s.highDB, got)
				}
			}
		}
	}
}

func TestInbandNoise(t *testing.T) {
	for _, c := range bothLaws {
		// Digits 20 dB above white noise are found; noise alone gives nothing.
		sigs := []dtmfSignal{{digit: '1', ms: 60}, {ms: 60}, {digit: '2', ms: 60}, {ms: 60}, {digit: '#', ms: 60}}
		if got := detect(c, synth(11, -30, sigs...)); got != "12#" {
			t.Errorf("%s: digits in noise gave %q", c, got)
		}
		for _, level := range []float64{-40, -20, -10} {
			if got := detect(c, synth(0, level, dtmfSignal{ms: 10000})); got != "" {
				t.Errorf("%s: 10 s of noise at %v dBm0 gave %q", c, level, got)
			}
		}
		// A single tone is not a digit.
		pcm := make([]int16, 8000)
		for i := range pcm {
			pcm[i] = int16(amplitude(-10) * math.Sin(2*math.Pi*697*float64(i)/ClockRate))
		}
		if got := detect(c, pcm); got != "" {
			t.Errorf("%s: a lone 697 Hz tone gave %q", c, got)
		}
	}
}

func TestInbandDecodeAllocations(t *testing.T) {
	var d InbandDetector
	pcm := synth(0, 0, dtmfSignal{digit: '5', ms: 200})
	frame := make([]byte, FrameSamples)
	PCMA.Encode(frame, pcm[:FrameSamples])
	dst := make([]rune, 0, 4)
	if n := testing.AllocsPerRun(100, func() { dst = d.Decode(dst[:0], PCMA, frame) }); n != 0 {
		t.Fatalf("Decode allocates %v times per frame", n)
	}
}

// BenchmarkInbandFrame is the cost of one 20 ms frame of a call with in-band detection.
func BenchmarkInbandFrame(b *testing.B) {
	pcm := synth(0, -30, dtmfSignal{digit: '5', ms: 200}, dtmfSignal{ms: 200})
	frames := make([][]byte, len(pcm)/FrameSamples)
	for i := range frames {
		frames[i] = make([]byte, FrameSamples)
		PCMA.Encode(frames[i], pcm[i*FrameSamples:(i+1)*FrameSamples])
	}
	var d InbandDetector
	dst := make([]rune, 0, 4)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		dst = d.Decode(dst[:0], PCMA, frames[i%len(frames)])
	}
}

// Speech and music must not give digits: every shipped prompt (Mandarin and English speech,
// music on hold) and several seconds of espeak-ng speech made now, over both laws.
func TestInbandSpeechAndMusicNoDigits(t *testing.T) {
	ps, err := LoadPrompts(os.DirFS("../configs"), "prompts")
	if err != nil {
		t.Fatal(err)
	}
	var total time.Duration
	for _, name := range ps.Names() {
		p, _ := ps.Get(name)
		for _, c := range bothLaws {
			var d InbandDetector
			var got []rune
			for _, f := range p.Frames(c) {
				got = d.Decode(got, c, f)
			}
			if len(got) > 0 {
				t.Errorf("prompt %s over %s gave digits %q", name, c, string(got))
			}
		}
		total += p.Duration()
	}
	if moh, ok := ps.Get("moh"); !ok || moh.Duration() < 20*time.Second {
		t.Fatal("music on hold missing from the prompt set")
	}
	speech := espeakSpeech(t)
	for _, c := range bothLaws {
		if got := detect(c, speech); got != "" {
			t.Errorf("espeak-ng speech over %s gave digits %q", c, got)
		}
	}
	t.Logf("%v of prompts and music, %.1f s of fresh speech, no digits", total, float64(len(speech))/ClockRate)
}

// espeakSpeech synthesises Mandarin and English speech at a few pitches and speeds with
// espeak-ng and returns it as 8 kHz samples (sox resamples).
func espeakSpeech(t *testing.T) []int16 {
	t.Helper()
	for _, tool := range []string{"espeak-ng", "sox"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is needed: %v", tool, err)
			}
			t.Skipf("%s not installed", tool)
		}
	}
	dir := t.TempDir()
	texts := []struct{ voice, pitch, speed, text string }{
		{"cmn", "30", "150", "您好，我想咨询一下社保卡补办需要带哪些材料，另外住房公积金提取的流程是怎样的，谢谢。"},
		{"cmn", "80", "190", "我要投诉小区门口的噪音问题，晚上施工一直到很晚，严重影响休息，希望有关部门尽快处理。"},
		{"en", "40", "160", "Hello, I would like to ask about the opening hours of the tax office and which documents I need to bring."},
		{"en", "90", "200", "The street light outside number twelve has been broken for two weeks; please send someone to repair it."},
	}
	var out []int16
	for i, s := range texts {
		raw, wav := filepath.Join(dir, fmt.Sprintf("raw%d.wav", i)), fmt.Sprintf("s%d.wav", i)
		if b, err := exec.Command("espeak-ng", "-v", s.voice, "-p", s.pitch, "-s", s.speed, "-w", raw, s.text).CombinedOutput(); err != nil {
			t.Fatalf("espeak-ng: %v: %s", err, b)
		}
		if b, err := exec.Command("sox", raw, "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer", filepath.Join(dir, wav), "norm", "-3").CombinedOutput(); err != nil {
			t.Fatalf("sox: %v: %s", err, b)
		}
		pcm, err := readWAV(os.DirFS(dir), wav)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, pcm...)
	}
	return out
}

// The session reads tones only when asked, gives them on the same Digits channel as RFC
// 4733, stops reading them once the peer sends RFC 4733, and allocates nothing per packet.
func TestSessionInbandDTMF(t *testing.T) {
	pcm := synth(0, 0, dtmfSignal{digit: '4', ms: 100}, dtmfSignal{ms: 100}, dtmfSignal{digit: '#', ms: 100}, dtmfSignal{ms: 100})
	feed := func(s *Session, src *rtpSource) {
		for i := 0; i+FrameSamples <= len(pcm); i += FrameSamples {
			PCMU.Encode(src.payload, pcm[i:i+FrameSamples])
			s.handlePacket(src.next(), peerAddr, time.Now())
		}
	}
	drain := func(s *Session) string {
		var got []rune
		for {
			select {
			case d := <-s.Digits():
				got = append(got, d)
			default:
				return string(got)
			}
		}
	}
	s := socketless(101)
	src := newRTPSource(t, uint8(PCMU), 7, make([]byte, FrameSamples))
	feed(s, src)
	if got := drain(s); got != "" {
		t.Fatalf("detection off: got %q", got)
	}
	s.SetInbandDTMF(true)
	feed(s, src)
	if got := drain(s); got != "4#" {
		t.Fatalf("detection on: got %q, want 4#", got)
	}
	if st := s.Stats(); st.DigitsIn != 2 {
		t.Fatalf("DigitsIn %d, want 2", st.DigitsIn)
	}
	if a := testing.AllocsPerRun(200, func() { feed(s, src) }); a != 0 {
		t.Fatalf("%v allocations per call of %d packets", a, len(pcm)/FrameSamples)
	}
	drain(s)
	// An RFC 4733 event: the peer sends events, its tones are not read any more.
	ev := newRTPSource(t, 101, 7, []byte{5, 0x8a, 0, 160})
	s.handlePacket(ev.next(), peerAddr, time.Now())
	if got := drain(s); got != "5" {
		t.Fatalf("RFC 4733 event gave %q, want 5", got)
	}
	feed(s, src)
	if got := drain(s); got != "" {
		t.Fatalf("tones after RFC 4733 gave %q, want nothing", got)
	}
}

// FuzzInbandDetector feeds arbitrary G.711 payloads: the detector never panics and gives
// at most one digit per two analysis blocks.
func FuzzInbandDetector(f *testing.F) {
	frame := make([]byte, FrameSamples)
	PCMA.Encode(frame, synth(0, 0, dtmfSignal{digit: '1', ms: 20})[:FrameSamples])
	f.Add(frame, false)
	f.Add([]byte{0xd5, 0x55}, true)
	f.Fuzz(func(t *testing.T, payload []byte, ulaw bool) {
		c := PCMA
		if ulaw {
			c = PCMU
		}
		var d InbandDetector
		var got []rune
		for range 4 {
			got = d.Decode(got, c, payload)
		}
		if max := 4*len(payload)/(2*inbandBlock) + 1; len(got) > max {
			t.Fatalf("%d digits from %d samples", len(got), 4*len(payload))
		}
		for _, r := range got {
			if _, ok := DigitEvent(r); !ok {
				t.Fatalf("not a digit: %q", r)
			}
		}
	})
}
