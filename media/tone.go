package media

import (
	"math"
	"time"
)

// Tone returns a prompt of the sum of sines at freqs (Hz) lasting dur. amplitude
// (clamped to 0..1) is the peak of the sum as a fraction of full scale: each of
// the n components gets amplitude/n. Examples: Tone("busy", []float64{450}, 350*time.Millisecond, 0.3),
// a DTMF '1' is Tone("1", []float64{697, 1209}, 100*time.Millisecond, 0.5).
func Tone(name string, freqs []float64, dur time.Duration, amplitude float64) *Prompt {
	n := samplesFor(dur)
	pcm := make([]int16, n)
	if len(freqs) > 0 {
		a := max(0, min(1, amplitude)) * math.MaxInt16 / float64(len(freqs))
		for i := range pcm {
			t := float64(i) / ClockRate
			var v float64
			for _, f := range freqs {
				v += math.Sin(2 * math.Pi * f * t)
			}
			pcm[i] = int16(math.Round(a * v))
		}
	}
	return NewPrompt(name, pcm)
}

// Silence returns a prompt of dur of digital silence (rounded up to whole frames).
// Silence is still sent as packets: use it for pauses inside a Play sequence.
func Silence(name string, dur time.Duration) *Prompt {
	return NewPrompt(name, make([]int16, samplesFor(dur)))
}

// DTMFFrequencies returns the low and high frequencies (Hz) of an in-band DTMF digit.
func DTMFFrequencies(digit rune) (low, high float64, ok bool) {
	ev, ok := DigitEvent(digit)
	if !ok {
		return 0, 0, false
	}
	// Keypad rows and columns, indexed by event code.
	rows := [4]float64{697, 770, 852, 941}
	cols := [4]float64{1209, 1336, 1477, 1633}
	//                  0  1  2  3  4  5  6  7  8  9  *  #  A  B  C  D
	row := [16]uint8{3, 0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 0, 1, 2, 3}
	col := [16]uint8{1, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 2, 3, 3, 3, 3}
	return rows[row[ev]], cols[col[ev]], true
}

func samplesFor(dur time.Duration) int {
	if dur <= 0 {
		return 0
	}
	return int((dur*ClockRate + time.Second - 1) / time.Second)
}

// ToneRatio returns the power of freq (Hz) in the samples x relative to their whole power,
// by the Goertzel algorithm: about 1 for a pure tone at freq, about 0 when freq is absent
// or x is silent. Twenty milliseconds (160 samples) tell a 1000 Hz tone from a 1400 Hz one.
func ToneRatio[T int16 | float64](x []T, freq float64) float64 {
	if len(x) == 0 {
		return 0
	}
	w := 2 * math.Pi * freq / ClockRate
	coeff := 2 * math.Cos(w)
	var s1, s2, energy float64
	for _, s := range x {
		v := float64(s)
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
