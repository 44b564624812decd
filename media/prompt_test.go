package media

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/go-audio/audio"
	"github.com/go-audio/wav"
)

// writeWAV writes a PCM WAV file with the given format and samples.
func writeWAV(t *testing.T, file string, rate, bits, chans int, samples []int) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	enc := wav.NewEncoder(f, rate, bits, chans, 1)
	buf := &audio.IntBuffer{Data: samples, Format: &audio.Format{NumChannels: chans, SampleRate: rate}, SourceBitDepth: bits}
	if err := enc.Write(buf); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
}

func ramp(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = (i%200 - 100) * 100
	}
	return s
}

func TestLoadPrompts(t *testing.T) {
	dir := t.TempDir()
	writeWAV(t, filepath.Join(dir, "prompts/zh/welcome.wav"), 8000, 16, 1, ramp(8000+80)) // 1.01 s
	writeWAV(t, filepath.Join(dir, "prompts/en/bye.WAV"), 8000, 16, 1, ramp(160))
	if err := os.WriteFile(filepath.Join(dir, "prompts/README.txt"), []byte("not audio"), 0o644); err != nil {
		t.Fatal(err)
	}
	ps, err := LoadPrompts(os.DirFS(dir), "prompts")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ps.Names(), []string{"en/bye", "zh/welcome"}; !slices.Equal(got, want) {
		t.Fatalf("Names() = %v, want %v", got, want)
	}
	p, ok := ps.Get("zh/welcome")
	if !ok {
		t.Fatal("zh/welcome missing")
	}
	if p.Name != "zh/welcome" || p.Len() != 51 || p.Duration() != 1020*time.Millisecond {
		t.Errorf("prompt %q: %d frames, %v", p.Name, p.Len(), p.Duration())
	}
	for _, c := range []Codec{PCMU, PCMA} {
		frames := p.Frames(c)
		last := frames[len(frames)-1]
		if len(last) != FrameSamples {
			t.Fatalf("%s: last frame %d bytes", c, len(last))
		}
		// 80 samples of audio, then silence padding.
		for i := 80; i < FrameSamples; i++ {
			if last[i] != c.silenceByte() {
				t.Fatalf("%s: padding byte %d = %#x, want silence %#x", c, i, last[i], c.silenceByte())
			}
		}
		// Frames match encoding the samples directly.
		pcm := make([]int16, FrameSamples)
		for i, v := range ramp(FrameSamples) {
			pcm[i] = int16(v)
		}
		want := make([]byte, FrameSamples)
		c.Encode(want, pcm)
		if string(frames[0]) != string(want) {
			t.Errorf("%s: frame 0 differs from direct encoding", c)
		}
	}
	if _, ok := ps.Get("nope"); ok {
		t.Error("Get(nope) found something")
	}
}

func TestLoadPromptsMapFSRootDot(t *testing.T) {
	dir := t.TempDir()
	writeWAV(t, filepath.Join(dir, "a.wav"), 8000, 16, 1, ramp(400))
	data, err := os.ReadFile(filepath.Join(dir, "a.wav"))
	if err != nil {
		t.Fatal(err)
	}
	ps, err := LoadPrompts(fstest.MapFS{"moh/a.wav": {Data: data}}, ".")
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := ps.Get("moh/a"); !ok || p.Len() != 3 {
		t.Fatalf("moh/a: %v %v (names %v)", p, ok, ps.Names())
	}
}

func TestLoadPromptsRejects(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write func(t *testing.T, file string)
		want  string
	}{
		{"16kHz", func(t *testing.T, f string) { writeWAV(t, f, 16000, 16, 1, ramp(1600)) }, "sample rate 16000 Hz, want 8000"},
		{"stereo", func(t *testing.T, f string) { writeWAV(t, f, 8000, 16, 2, ramp(1600)) }, "2 channels, want 1 (mono)"},
		{"8bit", func(t *testing.T, f string) { writeWAV(t, f, 8000, 8, 1, ramp(1600)) }, "8 bits per sample, want 16"},
		{"notwav", func(t *testing.T, f string) {
			os.MkdirAll(filepath.Dir(f), 0o755)
			os.WriteFile(f, []byte("ID3 this is an mp3, honest"), 0o644)
		}, "not a WAV file"},
		{"empty", func(t *testing.T, f string) {
			os.MkdirAll(filepath.Dir(f), 0o755)
			os.WriteFile(f, nil, 0o644)
		}, "not a WAV file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.write(t, filepath.Join(dir, "prompts/zh/welcome.wav"))
			_, err := LoadPrompts(os.DirFS(dir), "prompts")
			if err == nil {
				t.Fatal("no error")
			}
			if want := "prompts/zh/welcome.wav: " + tc.want; err.Error() != want {
				t.Errorf("error %q, want %q", err, want)
			}
			if !errors.Is(err, ErrPromptFormat) {
				t.Errorf("error %v does not wrap ErrPromptFormat", err)
			}
		})
	}
}

func TestLoadPromptsMissingRoot(t *testing.T) {
	_, err := LoadPrompts(os.DirFS(t.TempDir()), "prompts")
	if err == nil || !strings.Contains(err.Error(), "prompts") {
		t.Fatalf("err = %v", err)
	}
}

func TestToneAndSilence(t *testing.T) {
	tone := Tone("dtmf1", []float64{697, 1209}, 100*time.Millisecond, 0.5)
	if tone.Len() != 5 || tone.Duration() != 100*time.Millisecond {
		t.Errorf("tone: %d frames", tone.Len())
	}
	pcm := make([]int16, FrameSamples)
	var peak int16
	for _, f := range tone.Frames(PCMU) {
		PCMU.Decode(pcm, f)
		for _, v := range pcm {
			peak = max(peak, v, -v)
		}
	}
	if peak < 10000 || peak > 17500 {
		t.Errorf("tone peak %d, want about half scale", peak)
	}
	s := Silence("pause", 30*time.Millisecond)
	if s.Len() != 2 {
		t.Errorf("silence: %d frames, want 2", s.Len())
	}
	for _, f := range s.Frames(PCMA) {
		for _, b := range f {
			if b != PCMA.silenceByte() {
				t.Fatal("silence is not silent")
			}
		}
	}
	if lo, hi, ok := DTMFFrequencies('#'); !ok || lo != 941 || hi != 1477 {
		t.Errorf("DTMFFrequencies('#') = %v %v %v", lo, hi, ok)
	}
	if _, _, ok := DTMFFrequencies('x'); ok {
		t.Error("DTMFFrequencies('x') ok")
	}
}

// Any bytes as an uploaded WAV: a prompt or an error wrapping ErrPromptFormat, never a
// panic, and never more memory than the input holds (sizes in headers are not trusted).
func FuzzDecodePrompt(f *testing.F) {
	f.Add([]byte("RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x40\x1f\x00\x00\x80\x3e\x00\x00\x02\x00\x10\x00data\x04\x00\x00\x00\x01\x00\x02\x00"))
	f.Add([]byte("RIFFd\x01\x00\x00WAVEfmt \x1f\x00\x00\x80>\x00\x00\x02\x00\x10\x00data@\x01\x00\x00\x00a"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := DecodePrompt("upload", data)
		switch {
		case err != nil && !errors.Is(err, ErrPromptFormat):
			t.Fatalf("error %v does not wrap ErrPromptFormat", err)
		case err == nil && (p == nil || p.Len()*FrameSamples > len(data)/2+FrameSamples):
			t.Fatalf("%d frames from %d bytes", p.Len(), len(data))
		}
	})
}
