package media

import (
	"strconv"
	"time"

	"github.com/zaf/g711"
)

// Codec is a G.711 codec, identified by its static RTP payload type (RFC 3551).
type Codec uint8

// The supported codecs.
const (
	PCMU Codec = 0 // G.711 µ-law
	PCMA Codec = 8 // G.711 A-law
)

// Framing of all media in this package: 8 kHz, 20 ms packets.
const (
	ClockRate     = 8000                  // RTP clock rate of G.711, Hz
	FrameSamples  = 160                   // samples (and G.711 bytes) per 20 ms frame
	FrameDuration = 20 * time.Millisecond // duration of one frame
)

// PayloadTypeCN is the static payload type of RFC 3389 comfort noise, accepted silently.
const PayloadTypeCN = 13

// String returns "PCMU", "PCMA" or "Codec(N)".
func (c Codec) String() string {
	switch c {
	case PCMU:
		return "PCMU"
	case PCMA:
		return "PCMA"
	}
	return "Codec(" + strconv.Itoa(int(c)) + ")"
}

// Valid reports whether c is PCMU or PCMA.
func (c Codec) Valid() bool { return c == PCMU || c == PCMA }

// Encode encodes linear PCM into G.711. It encodes min(len(dst), len(pcm))
// samples (callers pass equal lengths) and does not allocate. An unknown codec
// encodes as PCMU.
func (c Codec) Encode(dst []byte, pcm []int16) {
	n := min(len(dst), len(pcm))
	dst, pcm = dst[:n], pcm[:n]
	if c == PCMA {
		for i, v := range pcm {
			dst[i] = g711.EncodeAlawFrame(v)
		}
		return
	}
	for i, v := range pcm {
		dst[i] = g711.EncodeUlawFrame(v)
	}
}

// Decode decodes G.711 into linear PCM. It decodes min(len(dst), len(payload))
// samples and does not allocate. An unknown codec decodes as PCMU.
func (c Codec) Decode(dst []int16, payload []byte) {
	n := min(len(dst), len(payload))
	dst, payload = dst[:n], payload[:n]
	if c == PCMA {
		for i, v := range payload {
			dst[i] = g711.DecodeAlawFrame(v)
		}
		return
	}
	for i, v := range payload {
		dst[i] = g711.DecodeUlawFrame(v)
	}
}

// silenceByte is the code of linear 0 in the codec's law.
func (c Codec) silenceByte() byte {
	if c == PCMA {
		return g711.EncodeAlawFrame(0)
	}
	return g711.EncodeUlawFrame(0)
}
