package phone

import (
	"math"

	"github.com/hotline12345/hotline/media"
)

const (
	toneWindow    = 1600          // samples kept for DetectTone (200 ms)
	recentFrames  = 25            // frames in AudioStats.RecentRMS (500 ms)
	rmsHistory    = 4096          // per-frame levels kept for WaitAudio (~82 s)
	toneAmplitude = 0.316 * 32767 // -10 dBFS peak
	// SilenceDBFS is the level reported for digital silence.
	SilenceDBFS = -100.0
)

// dBFS converts a mean square (of samples scaled to ±1) to dBFS,
// where a full-scale square wave is 0 dBFS.
func dBFS(meanSquare float64) float64 {
	if meanSquare <= 0 {
		return SilenceDBFS
	}
	return math.Max(SilenceDBFS, 10*math.Log10(meanSquare))
}

// goertzel returns the power of freq in x relative to the power of x:
// about 1 for a pure tone at freq, about 0 when freq is absent or x is silent.
func goertzel(x []float64, freq float64) float64 {
	if len(x) == 0 {
		return 0
	}
	w := 2 * math.Pi * freq / media.ClockRate
	coeff := 2 * math.Cos(w)
	var s1, s2, energy float64
	for _, v := range x {
		s0 := v + coeff*s1 - s2
		s2, s1 = s1, s0
		energy += v * v
	}
	if energy == 0 {
		return 0
	}
	power := s1*s1 + s2*s2 - coeff*s1*s2
	// A sine of amplitude A over N samples gives power (A·N/2)² and energy A²·N/2.
	return power / (energy * float64(len(x)) / 2)
}
