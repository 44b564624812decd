package media

import "math"

// In-band DTMF detection (ITU-T Q.23 frequencies, Q.24 reception limits), for
// trunks and gateways that send keypad tones only in the audio.
//
// The decoded 8 kHz audio is cut into blocks of inbandBlock samples
// (12.75 ms). Each block is tested with the Goertzel algorithm at the eight
// DTMF frequencies, run over its two halves separately so that a tone's phase
// advance from one half to the next gives its frequency offset. A block is a
// hit for a digit when all of these hold:
//
//   - level: each tone at least InbandMinLevel;
//   - twist: the low (row) tone at most 8 dB above the high (column) tone
//     (normal twist: lines lose more of the high frequencies), the high at most
//     4 dB above the low (reverse twist). A block's measure of the weak tone
//     carries up to ±1 dB of the strong one's leakage, so the limits applied
//     are 9 and 5 dB: pairs within 8 and 4 dB always pass, pairs beyond
//     10 and 6 dB never do;
//   - relative peak: each tone 8 dB above the other tones of its group;
//   - signal to total energy: the two tones carry at least 80% of the block's
//     energy (speech and music spread theirs over many frequencies);
//   - frequency: each tone within 2.5% of its nominal frequency, the middle
//     of Q.24's "accept within 1.5%, reject beyond 3.5%";
//   - second harmonic: the high tone's second harmonic 12 dB below it (a
//     voiced sound or an instrument has strong harmonics; the low tones'
//     harmonics fall within 60-70 Hz of a column and are not tested).
//
// Timing (debouncing): a digit starts after two consecutive hit blocks of it
// (a 40 ms tone always holds two whole blocks; a tone of 20 ms or less never
// gives two hits, as the energy test fails on blocks the tone fills less than
// 80% of), and ends after three blocks without it (a 40 ms pause always holds
// three; a drop-out of 10 ms spoils at most two). One press gives one digit.
const (
	inbandBlock  = 102 // samples per analysis block: 12.75 ms (as Asterisk and spandsp)
	inbandHalf   = inbandBlock / 2
	hitsToBegin  = 2
	missesToEnd  = 3
	twistNormal  = 7.94  // 9 dB: the low tone may exceed the high one by this power ratio (8 dB + 1 dB of leakage)
	twistReverse = 3.16  // 5 dB: the high tone may exceed the low one by this (4 dB + 1 dB)
	relativePeak = 6.31  // 8 dB over the other tones of the group
	toTotal      = 0.80  // share of the block's energy in the two tones
	maxDeviation = 0.025 // relative frequency offset
	harmonicGap  = 15.85 // 12 dB: the high tone over its second harmonic

	// InbandMinLevel is the weakest tone detected, in dBm0 per tone (Q.24:
	// operate down to about -25 dBm0 per tone, with margin).
	InbandMinLevel = -36
	// dBm0 of a full-scale sine in G.711 (A-law's 0 dBm0 is 3.14 dB below it).
	fullScaleDBm0 = 3.14
)

var (
	inbandRows = [4]float64{697, 770, 852, 941}
	inbandCols = [4]float64{1209, 1336, 1477, 1633}
	// inbandKeys[row][col] is the digit of a row and column.
	inbandKeys = [4][4]rune{
		{'1', '2', '3', 'A'},
		{'4', '5', '6', 'B'},
		{'7', '8', '9', 'C'},
		{'*', '0', '#', 'D'},
	}
	inbandFilters = func() (f [8]goertzelCoef) {
		for i := range 4 {
			f[i] = newGoertzelCoef(inbandRows[i])
			f[4+i] = newGoertzelCoef(inbandCols[i])
		}
		return f
	}()
	inbandHarmonics = func() (f [4]goertzelCoef) {
		for i := range 4 {
			f[i] = newGoertzelCoef(2 * inbandCols[i])
		}
		return f
	}()
	// minTonePower is the Goertzel power (A·N/2)² over a block of a sine at InbandMinLevel.
	minTonePower = func() float64 {
		a := 32767 * math.Pow(10, (InbandMinLevel-fullScaleDBm0)/20)
		return a * a * inbandBlock * inbandBlock / 4
	}()
)

// goertzelCoef holds the constants of one frequency.
type goertzelCoef struct {
	freq       float64
	coef       float64 // 2·cos ω
	cos, sin   float64 // of ω
	cosM, sinM float64 // of ω·inbandHalf: the phase a tone at the frequency advances over a half
}

func newGoertzelCoef(f float64) goertzelCoef {
	w := 2 * math.Pi * f / ClockRate
	return goertzelCoef{freq: f, coef: 2 * math.Cos(w), cos: math.Cos(w), sin: math.Sin(w),
		cosM: math.Cos(w * inbandHalf), sinM: math.Sin(w * inbandHalf)}
}

// goertzel8 runs the eight DTMF filters over x at once (eight independent chains keep
// the CPU's pipelines busy, where one filter after another waits on each multiply) and
// stores each filter's y (see goertzel) in y.
func goertzel8(y *[8]complex128, x []float64) {
	f := &inbandFilters
	c0, c1, c2, c3, c4, c5, c6, c7 := f[0].coef, f[1].coef, f[2].coef, f[3].coef, f[4].coef, f[5].coef, f[6].coef, f[7].coef
	var a0, a1, a2, a3, a4, a5, a6, a7 float64 // s[n-1]
	var b0, b1, b2, b3, b4, b5, b6, b7 float64 // s[n-2]
	for _, v := range x {
		a0, b0 = v+c0*a0-b0, a0
		a1, b1 = v+c1*a1-b1, a1
		a2, b2 = v+c2*a2-b2, a2
		a3, b3 = v+c3*a3-b3, a3
		a4, b4 = v+c4*a4-b4, a4
		a5, b5 = v+c5*a5-b5, a5
		a6, b6 = v+c6*a6-b6, a6
		a7, b7 = v+c7*a7-b7, a7
	}
	s1 := [8]float64{a0, a1, a2, a3, a4, a5, a6, a7}
	s2 := [8]float64{b0, b1, b2, b3, b4, b5, b6, b7}
	for i := range f {
		y[i] = complex(s1[i]-f[i].cos*s2[i], f[i].sin*s2[i])
	}
}

// goertzel runs one filter over x and returns y = Σ x[n]·e^{jω(len(x)-1-n)}, the DFT at ω
// up to a phase factor that is the same for every run of equal length.
func (g *goertzelCoef) goertzel(x []float64) (re, im float64) {
	var s1, s2 float64
	for _, v := range x {
		s1, s2 = v+g.coef*s1-s2, s1
	}
	return s1 - g.cos*s2, g.sin * s2
}

// InbandDetector finds DTMF digits in decoded 8 kHz audio. It is pure logic,
// not safe for concurrent use, allocates nothing, and its zero value is ready.
// A Session runs one when in-band detection is on (SetInbandDTMF).
type InbandDetector struct {
	buf  [inbandBlock]float64
	n    int // samples in buf
	pcm  [FrameSamples]int16
	last rune // the previous block's hit (0: none)
	run  int  // consecutive blocks of last
	held rune // the digit pressed now (emitted), 0 when none
	gap  int  // consecutive blocks without held
}

// Reset forgets the audio seen so far (a new stream).
func (d *InbandDetector) Reset() { *d = InbandDetector{} }

// Decode feeds one G.711 payload of codec c and appends the digits it
// completes to dst.
func (d *InbandDetector) Decode(dst []rune, c Codec, payload []byte) []rune {
	for len(payload) > 0 {
		n := min(len(payload), len(d.pcm))
		c.Decode(d.pcm[:n], payload[:n])
		dst = d.Samples(dst, d.pcm[:n])
		payload = payload[n:]
	}
	return dst
}

// Samples feeds linear 16-bit samples at 8 kHz and appends the digits pressed
// in them (each once, when it has lasted long enough) to dst.
func (d *InbandDetector) Samples(dst []rune, pcm []int16) []rune {
	for _, v := range pcm {
		d.buf[d.n] = float64(v)
		d.n++
		if d.n == inbandBlock {
			d.n = 0
			dst = d.step(dst, d.block())
		}
	}
	return dst
}

// step advances the debouncing by one block whose hit is hit (0: none).
func (d *InbandDetector) step(dst []rune, hit rune) []rune {
	switch {
	case hit == 0:
		d.run = 0
	case hit == d.last:
		d.run++
	default:
		d.run = 1
	}
	d.last = hit
	if d.held != 0 {
		if hit == d.held {
			d.gap = 0
		} else if d.gap++; d.gap >= missesToEnd {
			d.held = 0
		}
	}
	if d.held == 0 && hit != 0 && d.run >= hitsToBegin {
		d.held, d.gap = hit, 0
		dst = append(dst, hit)
	}
	return dst
}

// tone is one filter's result over a block.
type tone struct {
	power   float64 // coherent power of the whole block, |X|²
	aligned float64 // power with the halves added in phase: the tone's, even a little off frequency
	re, im  float64 // y2·conj(y1) rotated back by the nominal advance: its angle is the offset's phase
}

// block analyses d.buf and returns the digit it holds, or 0.
func (d *InbandDetector) block() rune {
	x := d.buf[:]
	var energy float64
	for _, v := range x {
		energy += v * v
	}
	if energy == 0 {
		return 0
	}
	var y1, y2 [8]complex128
	goertzel8(&y1, x[:inbandHalf])
	goertzel8(&y2, x[inbandHalf:])
	var t [8]tone
	for i := range inbandFilters {
		g := &inbandFilters[i]
		r1, i1, r2, i2 := real(y1[i]), imag(y1[i]), real(y2[i]), imag(y2[i])
		// X = y1 + e^{-jωM}·y2 (up to a unit factor).
		r2m, i2m := r2*g.cosM+i2*g.sinM, i2*g.cosM-r2*g.sinM
		tr, ti := r1+r2m, i1+i2m
		m1, m2 := math.Sqrt(r1*r1+i1*i1), math.Sqrt(r2*r2+i2*i2)
		// z = y2·conj(y1)·e^{-jωM}: for a tone at ω+δ its angle is δ·M.
		zr, zi := r2m*r1+i2m*i1, i2m*r1-r2m*i1
		t[i] = tone{power: tr*tr + ti*ti, aligned: (m1 + m2) * (m1 + m2), re: zr, im: zi}
	}
	row, col := peak(t[:4]), peak(t[4:])
	r, c := &t[row], &t[4+col]
	switch {
	case r.power < minTonePower || c.power < minTonePower:
		return 0
	case r.power > c.power*twistNormal || c.power > r.power*twistReverse:
		return 0
	case !dominates(t[:4], row) || !dominates(t[4:], col):
		return 0
	case 2*(r.aligned+c.aligned) < toTotal*inbandBlock*energy:
		return 0 // a tone of amplitude A: |X|² = (A·N/2)², energy A²·N/2
	case !onFrequency(r, inbandRows[row]) || !onFrequency(c, inbandCols[col]):
		return 0
	}
	h := &inbandHarmonics[col]
	hr, hi := h.goertzel(x)
	if (hr*hr+hi*hi)*harmonicGap > c.power {
		return 0
	}
	return inbandKeys[row][col]
}

// peak returns the index of the strongest tone.
func peak(t []tone) int {
	best := 0
	for i := 1; i < len(t); i++ {
		if t[i].power > t[best].power {
			best = i
		}
	}
	return best
}

// dominates reports whether t[best] is relativePeak above every other tone of t.
func dominates(t []tone, best int) bool {
	for i := range t {
		if i != best && t[i].power*relativePeak > t[best].power {
			return false
		}
	}
	return true
}

// onFrequency reports whether the tone's offset from nominal, measured by its phase
// advance between the block's halves, is within maxDeviation.
func onFrequency(t *tone, nominal float64) bool {
	offset := math.Atan2(t.im, t.re) / (2 * math.Pi * inbandHalf) * ClockRate // Hz
	return math.Abs(offset) <= maxDeviation*nominal
}
