package phone

import (
	"math"

	"github.com/zaf/g711"
)

const (
	sampleRate    = 8000
	frameSamples  = 160           // 20 ms at 8 kHz
	frameDur      = 20            // ms
	toneWindow    = 1600          // samples kept for DetectTone (200 ms)
	recentFrames  = 25            // frames in AudioStats.RecentRMS (500 ms)
	rmsHistory    = 4096          // per-frame levels kept for WaitAudio (~82 s)
	toneAmplitude = 0.316 * 32767 // -10 dBFS peak
	// SilenceDBFS is the level reported for digital silence.
	SilenceDBFS = -100.0
)

// decodeFrame decodes G.711 payload into pcm (len(pcm) >= len(payload)).
func decodeFrame(law uint8, payload []byte, pcm []int16) []int16 {
	pcm = pcm[:len(payload)]
	if law == PCMA {
		for i, b := range payload {
			pcm[i] = g711.DecodeAlawFrame(b)
		}
	} else {
		for i, b := range payload {
			pcm[i] = g711.DecodeUlawFrame(b)
		}
	}
	return pcm
}

// encodeFrame encodes pcm into G.711 payload (len(payload) >= len(pcm)).
func encodeFrame(law uint8, pcm []int16, payload []byte) []byte {
	payload = payload[:len(pcm)]
	if law == PCMA {
		for i, s := range pcm {
			payload[i] = g711.EncodeAlawFrame(s)
		}
	} else {
		for i, s := range pcm {
			payload[i] = g711.EncodeUlawFrame(s)
		}
	}
	return payload
}

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
	w := 2 * math.Pi * freq / sampleRate
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
