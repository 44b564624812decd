package media

import (
	"encoding/binary"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"
)

// Prompt is audio ready to send: 20 ms G.711 frames for both laws, encoded
// once. A Prompt is immutable and safe to share between sessions.
type Prompt struct {
	// Name identifies the prompt, e.g. "zh/welcome".
	Name string

	ulaw [][]byte
	alaw [][]byte
}

// NewPrompt encodes linear PCM at 8 kHz into a Prompt. The last frame is
// padded with silence. An empty pcm gives a prompt with no frames.
func NewPrompt(name string, pcm []int16) *Prompt {
	n := (len(pcm) + FrameSamples - 1) / FrameSamples
	p := &Prompt{Name: name, ulaw: make([][]byte, n), alaw: make([][]byte, n)}
	ubuf := make([]byte, n*FrameSamples)
	abuf := make([]byte, n*FrameSamples)
	PCMU.Encode(ubuf, pcm)
	PCMA.Encode(abuf, pcm)
	for i := len(pcm); i < len(ubuf); i++ {
		ubuf[i] = PCMU.silenceByte()
		abuf[i] = PCMA.silenceByte()
	}
	for i := range n {
		// Full slice expressions: a caller appending to a frame cannot clobber the next.
		p.ulaw[i] = ubuf[i*FrameSamples : (i+1)*FrameSamples : (i+1)*FrameSamples]
		p.alaw[i] = abuf[i*FrameSamples : (i+1)*FrameSamples : (i+1)*FrameSamples]
	}
	return p
}

// Frames returns the prompt's 160-byte frames in codec c (nil for an unknown
// codec). The frames are shared: callers must not modify them.
func (p *Prompt) Frames(c Codec) [][]byte {
	switch c {
	case PCMU:
		return p.ulaw
	case PCMA:
		return p.alaw
	}
	return nil
}

// Len returns the number of 20 ms frames.
func (p *Prompt) Len() int { return len(p.ulaw) }

// Duration returns the playing time: the number of frames × 20 ms.
func (p *Prompt) Duration() time.Duration { return time.Duration(len(p.ulaw)) * FrameDuration }

// Prompts is a read-only cache of prompts loaded at start-up. Safe for concurrent use.
type Prompts struct {
	byName map[string]*Prompt
	names  []string
}

// LoadPrompts walks root in fsys for files named *.wav (case-insensitive),
// decodes each (8 kHz, 16-bit, mono PCM only) and encodes it for both laws.
// A prompt's name is its slash path relative to root without ".wav", e.g.
// "zh/welcome". Any file in another format is an error naming the file, e.g.
// "prompts/zh/welcome.wav: sample rate 16000 Hz, want 8000"; such errors
// wrap ErrPromptFormat.
func LoadPrompts(fsys fs.FS, root string) (*Prompts, error) {
	ps := &Prompts{byName: make(map[string]*Prompt)}
	err := fs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.EqualFold(path.Ext(p), ".wav") {
			return nil
		}
		name := strings.TrimPrefix(p, root)
		if root == "." {
			name = p
		}
		name = strings.TrimPrefix(name, "/")
		name = name[:len(name)-len(".wav")]
		pcm, err := readWAV(fsys, p)
		if err != nil {
			return err
		}
		ps.byName[name] = NewPrompt(name, pcm)
		ps.names = append(ps.names, name)
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(ps.names)
	return ps, nil
}

// Get returns the prompt called name.
func (ps *Prompts) Get(name string) (*Prompt, bool) {
	p, ok := ps.byName[name]
	return p, ok
}

// Names returns the sorted prompt names (a copy).
func (ps *Prompts) Names() []string { return slices.Clone(ps.names) }

// promptError names the offending file; it wraps ErrPromptFormat.
type promptError struct{ file, problem string }

func (e *promptError) Error() string { return e.file + ": " + e.problem }
func (e *promptError) Unwrap() error { return ErrPromptFormat }

// DecodePrompt makes a prompt called name from a WAV file's bytes (8 kHz, 16-bit, mono
// PCM, as LoadPrompts wants): an uploaded recording. Errors wrap ErrPromptFormat.
func DecodePrompt(name string, data []byte) (*Prompt, error) {
	pcm, err := decodeWAV(name, data)
	if err != nil {
		return nil, err
	}
	return NewPrompt(name, pcm), nil
}

// readWAV decodes an 8 kHz 16-bit mono PCM WAV file.
func readWAV(fsys fs.FS, file string) ([]int16, error) {
	data, err := fs.ReadFile(fsys, file)
	if err != nil {
		return nil, err
	}
	return decodeWAV(file, data)
}

// decodeWAV decodes an 8 kHz 16-bit mono PCM WAV file. It walks the RIFF chunks itself,
// each size checked against the bytes there are, so an uploaded file with lying sizes costs
// no more memory than its own length (the general WAV decoder allocates what a header says).
func decodeWAV(file string, data []byte) ([]int16, error) {
	if len(data) < 12 || string(data[0:4]) != "RIFF" || string(data[8:12]) != "WAVE" {
		return nil, &promptError{file, "not a WAV file"}
	}
	var fmtChunk, samples []byte
	for rest := data[12:]; len(rest) >= 8; {
		id, size := string(rest[0:4]), binary.LittleEndian.Uint32(rest[4:8])
		rest = rest[8:]
		if uint64(size) > uint64(len(rest)) {
			if id != "data" {
				return nil, &promptError{file, fmt.Sprintf("chunk %q: %d bytes, the file has %d", id, size, len(rest))}
			}
			size = uint32(len(rest)) // a data size left at its maximum by a recorder that stopped
		}
		switch id {
		case "fmt ":
			fmtChunk = rest[:size]
		case "data":
			samples = rest[:size]
		}
		if samples != nil && fmtChunk != nil {
			break
		}
		n := int(size) + int(size&1) // chunks are word-aligned
		if n > len(rest) {
			break
		}
		rest = rest[n:]
	}
	switch {
	case fmtChunk == nil || len(fmtChunk) < 16:
		return nil, &promptError{file, "not a WAV file (no format chunk)"}
	case binary.LittleEndian.Uint16(fmtChunk[0:2]) != 1:
		return nil, &promptError{file, fmt.Sprintf("audio format %d, want 1 (PCM)", binary.LittleEndian.Uint16(fmtChunk[0:2]))}
	case binary.LittleEndian.Uint32(fmtChunk[4:8]) != ClockRate:
		return nil, &promptError{file, fmt.Sprintf("sample rate %d Hz, want %d", binary.LittleEndian.Uint32(fmtChunk[4:8]), ClockRate)}
	case binary.LittleEndian.Uint16(fmtChunk[2:4]) != 1:
		return nil, &promptError{file, fmt.Sprintf("%d channels, want 1 (mono)", binary.LittleEndian.Uint16(fmtChunk[2:4]))}
	case binary.LittleEndian.Uint16(fmtChunk[14:16]) != 16:
		return nil, &promptError{file, fmt.Sprintf("%d bits per sample, want 16", binary.LittleEndian.Uint16(fmtChunk[14:16]))}
	case len(samples) < 2:
		return nil, &promptError{file, "no samples"}
	}
	pcm := make([]int16, len(samples)/2)
	for i := range pcm {
		pcm[i] = int16(binary.LittleEndian.Uint16(samples[2*i:]))
	}
	return pcm, nil
}
