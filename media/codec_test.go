package media

import (
	"math"
	"testing"
	"time"
)

func TestCodecString(t *testing.T) {
	for c, want := range map[Codec]string{PCMU: "PCMU", PCMA: "PCMA", 18: "Codec(18)"} {
		if got := c.String(); got != want {
			t.Errorf("Codec(%d).String() = %q, want %q", uint8(c), got, want)
		}
	}
}

func energy(pcm []int16) float64 {
	var e float64
	for _, v := range pcm {
		e += float64(v) * float64(v)
	}
	return e
}

func TestCodecRoundTripKeepsEnergy(t *testing.T) {
	tone := Tone("t", []float64{425}, time.Second, 0.5)
	pcm := make([]int16, FrameSamples*tone.Len())
	// Reference linear signal.
	for i := range pcm {
		pcm[i] = int16(math.Round(0.5 * math.MaxInt16 * math.Sin(2*math.Pi*425*float64(i)/ClockRate)))
	}
	for _, c := range []Codec{PCMU, PCMA} {
		enc := make([]byte, len(pcm))
		dec := make([]int16, len(pcm))
		c.Encode(enc, pcm)
		c.Decode(dec, enc)
		ratio := energy(dec) / energy(pcm)
		if ratio < 0.95 || ratio > 1.05 {
			t.Errorf("%s: round-trip energy ratio %.3f, want ~1", c, ratio)
		}
		// The prompt's cached frames decode to the same signal.
		frames := tone.Frames(c)
		got := make([]int16, FrameSamples)
		c.Decode(got, frames[10])
		if e := energy(got) / energy(dec[10*FrameSamples:11*FrameSamples]); e < 0.95 || e > 1.05 {
			t.Errorf("%s: prompt frame energy ratio %.3f", c, e)
		}
	}
}

func TestCodecZeroAllocs(t *testing.T) {
	pcm := make([]int16, FrameSamples)
	buf := make([]byte, FrameSamples)
	for _, c := range []Codec{PCMU, PCMA} {
		if a := testing.AllocsPerRun(100, func() { c.Encode(buf, pcm); c.Decode(pcm, buf) }); a != 0 {
			t.Errorf("%s: %v allocs per Encode+Decode", c, a)
		}
	}
}

func BenchmarkCodecEncode(b *testing.B) {
	pcm := make([]int16, FrameSamples)
	buf := make([]byte, FrameSamples)
	b.ReportAllocs()
	for b.Loop() {
		PCMA.Encode(buf, pcm)
	}
}
