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

// goertzel returns the power of freq in x relative to the power of x (media.ToneRatio).
func goertzel(x []float64, freq float64) float64 { return media.ToneRatio(x, freq) }
