package phone

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/hotline12345/hotline/media"
)

// inbandAmplitude is each tone's peak for SendInbandDTMF: -8 dBm0 (A-law's 0 dBm0 is
// 3.14 dB below a full-scale sine), a usual gateway level.
var inbandAmplitude = 32767 * math.Pow(10, (-8-3.14)/20)

// SendInbandDTMF presses digits as keypad tones in the audio (ITU-T Q.23: a low and a
// high sine), as a gateway without RFC 4733 or INFO does: each tone lasts tone (<= 0:
// 100 ms) and is followed by gap of silence (<= 0: 100 ms), sent as paced G.711 frames
// in the negotiated law. It returns when the last frame has been sent.
func (c *Call) SendInbandDTMF(digits string, tone, gap time.Duration) error {
	m, err := c.activeMedia()
	if err != nil {
		return err
	}
	if tone <= 0 {
		tone = 100 * time.Millisecond
	}
	if gap <= 0 {
		gap = 100 * time.Millisecond
	}
	type press struct{ lo, hi float64 }
	var presses []press
	for _, d := range digits {
		lo, hi, ok := media.DTMFFrequencies(d)
		if !ok {
			return fmt.Errorf("%w: %q", ErrBadDigit, d)
		}
		presses = append(presses, press{lo, hi})
	}
	if len(presses) == 0 {
		return nil
	}
	toneN := int(tone * media.ClockRate / time.Second)
	pressN := toneN + int(gap*media.ClockRate/time.Second)
	total := pressN * len(presses)
	n := 0 // samples sent
	return m.run(context.Background(), c.done, func(s *sender) (bool, error) {
		for k := range s.pcm {
			i, v := n+k, 0.0
			if i < total && i%pressN < toneN {
				p, t := presses[i/pressN], float64(i%pressN)/media.ClockRate
				v = inbandAmplitude * (math.Sin(2*math.Pi*p.lo*t) + math.Sin(2*math.Pi*p.hi*t))
			}
			s.pcm[k] = int16(v)
		}
		n += len(s.pcm)
		frame := s.payload[:len(s.pcm)]
		s.m.codec.Encode(frame, s.pcm[:])
		return n >= total, s.audio(frame, false)
	})
}
