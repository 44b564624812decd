package media

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// readWAV parses a recorder's file strictly: RIFF sizes consistent with the file, PCM 8 kHz
// 16-bit, and returns the channels' samples.
func readRecording(t *testing.T, path string) (channels [][]int16, b []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < wavHeaderSize || string(b[0:4]) != "RIFF" || string(b[8:16]) != "WAVEfmt " || string(b[36:40]) != "data" {
		t.Fatalf("%s: not a WAV header: % x", path, b[:min(len(b), 44)])
	}
	le := binary.LittleEndian
	nch := int(le.Uint16(b[22:]))
	if le.Uint16(b[20:]) != 1 || le.Uint32(b[24:]) != ClockRate || le.Uint16(b[34:]) != 16 || nch < 1 || nch > 2 {
		t.Fatalf("%s: want 8 kHz 16-bit PCM, header % x", path, b[:44])
	}
	data := int(le.Uint32(b[40:]))
	if int(le.Uint32(b[4:])) != data+36 || data > len(b)-wavHeaderSize || data%(2*nch) != 0 {
		t.Fatalf("%s: sizes: riff %d data %d file %d", path, le.Uint32(b[4:]), data, len(b))
	}
	channels = make([][]int16, nch)
	for i := 0; i < data; i += 2 * nch {
		for c := range nch {
			channels[c] = append(channels[c], int16(le.Uint16(b[wavHeaderSize+i+2*c:])))
		}
	}
	return channels, b
}

// feeder sends a prompt's frames into a sink as RTP packets would arrive: ts +160 each,
// arrival on the recorder's clock.
type feeder struct {
	sink AudioSink
	ssrc uint32
	ts   uint32
	seq  uint16
}

func (f *feeder) send(frame []byte, codec Codec, at time.Time) {
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, SSRC: f.ssrc, Timestamp: f.ts, SequenceNumber: f.seq}, Payload: frame}
	f.sink(&pkt, codec, at)
	f.ts += FrameSamples
	f.seq++
}

func TestRecorderStereoChannelsAligned(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a", "b", "rec.wav")
	r, err := NewRecorder(RecorderConfig{Path: path, Stereo: true})
	if err != nil {
		t.Fatal(err)
	}
	left := (&feeder{sink: r.Sink(RecordLeft), ssrc: 1, ts: 12345})
	right := (&feeder{sink: r.Sink(RecordRight), ssrc: 2, ts: 999999})
	lf := Tone("l", []float64{440}, time.Second, 0.5).Frames(PCMA)
	rf := Tone("r", []float64{1000}, time.Second, 0.5).Frames(PCMU)
	// Paced in real time (the writer flushes what is older than its jitter allowance).
	// The right channel starts 200 ms later and loses frames 10-14 (100 ms): that gap
	// must be silence, and the channels stay aligned.
	start := time.Now()
	for i := range 50 {
		at := start.Add(time.Duration(i) * FrameDuration)
		time.Sleep(time.Until(at))
		left.send(lf[i], PCMA, at)
		if i >= 10 {
			if i < 20 || i >= 25 {
				right.send(rf[i-10], PCMU, at)
			} else {
				right.ts += FrameSamples
			}
		}
	}
	res, err := r.Close()
	if err != nil {
		t.Fatal(err)
	}
	chs, b := readRecording(t, path)
	sum := sha256.Sum256(b)
	if res.SHA256 != hex.EncodeToString(sum[:]) || res.Bytes != int64(len(b)) {
		t.Errorf("sha256/bytes: %+v, file %d bytes", res, len(b))
	}
	if len(chs) != 2 {
		t.Fatalf("channels: %d", len(chs))
	}
	l, rt := chs[0], chs[1]
	if d := time.Duration(len(l)) * time.Second / ClockRate; d < 950*time.Millisecond || d > 2*time.Second || res.Duration != d {
		t.Errorf("duration %v (result %v), want about 1 s", d, res.Duration)
	}
	// Find where the left tone starts; the right starts 1600 samples later.
	l0 := firstNonZero(l)
	r0 := firstNonZero(rt)
	if l0 < 0 || r0 < 0 {
		t.Fatalf("no audio: left %d right %d", l0, r0)
	}
	if d := r0 - l0; d < 1600-160 || d > 1600+160 {
		t.Errorf("right starts %d samples after left, want 1600±160 (aligned on the 20 ms clock)", d)
	}
	win := func(x []int16, from int) []int16 { return x[from : from+800] }
	if got := ToneRatio(win(l, l0+800), 440); got < 0.9 {
		t.Errorf("left 440 Hz ratio %.2f", got)
	}
	if got := ToneRatio(win(l, l0+800), 1000); got > 0.05 {
		t.Errorf("left has the right's 1000 Hz: %.2f", got)
	}
	if got := ToneRatio(win(rt, r0), 1000); got < 0.9 {
		t.Errorf("right 1000 Hz ratio %.2f", got)
	}
	// The lost frames: 10 frames after the right's start, 100 ms of silence.
	gap := rt[r0+1600+80 : r0+1600+800-80]
	for i, v := range gap {
		if v != 0 {
			t.Fatalf("gap sample %d = %d, want silence", i, v)
		}
	}
	if got := ToneRatio(win(rt, r0+2400), 1000); got < 0.9 {
		t.Errorf("right after the gap: 1000 Hz ratio %.2f", got)
	}
	if _, err := r.Close(); err != ErrRecorderClosed {
		t.Errorf("second Close: %v", err)
	}
}

func firstNonZero(x []int16) int {
	for i, v := range x {
		if v != 0 {
			return i
		}
	}
	return -1
}

func TestRecorderMonoSaturatesAndDetectsSilence(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.wav")
	r, err := NewRecorder(RecorderConfig{Path: path, Silence: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	loud := make([]int16, FrameSamples)
	for i := range loud {
		loud[i] = 30000
	}
	lp := NewPrompt("loud", loud).Frames(PCMU)[0]
	left, right := &feeder{sink: r.Sink(RecordLeft), ssrc: 1}, &feeder{sink: r.Sink(RecordRight), ssrc: 2}
	start := time.Now()
	for i := range 10 {
		at := start.Add(time.Duration(i) * FrameDuration)
		time.Sleep(time.Until(at))
		left.send(lp, PCMU, at)
		right.send(lp, PCMU, at)
	}
	select {
	case <-r.Silent():
	case <-time.After(10 * time.Second):
		t.Fatal("no silence detected after the voice stopped")
	}
	if since := time.Since(start); since < 200*time.Millisecond+300*time.Millisecond {
		t.Errorf("silence reported %v after start: before 300 ms of silence", since)
	}
	res, err := r.Close()
	if err != nil {
		t.Fatal(err)
	}
	if res.Voice < 150*time.Millisecond || res.Voice > 250*time.Millisecond {
		t.Errorf("voice %v, want 200 ms", res.Voice)
	}
	chs, _ := readRecording(t, path)
	if len(chs) != 1 {
		t.Fatalf("channels %d", len(chs))
	}
	maxv := int16(0)
	for _, v := range chs[0] {
		maxv = max(maxv, v)
	}
	if maxv != 32767 {
		t.Errorf("mix peak %d, want saturation at 32767", maxv)
	}
}

// A file read while the recording runs (as after a crash) is a complete WAV up to the last
// flush.
func TestRecorderHeaderValidWhileRunning(t *testing.T) {
	path := filepath.Join(t.TempDir(), "live.wav")
	r, err := NewRecorder(RecorderConfig{Path: path, Stereo: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	left := &feeder{sink: r.Sink(RecordLeft), ssrc: 1}
	fr := Tone("l", []float64{440}, time.Second, 0.5).Frames(PCMU)
	start := time.Now()
	for i := range 50 {
		at := start.Add(time.Duration(i) * FrameDuration)
		time.Sleep(time.Until(at))
		left.send(fr[i], PCMU, at)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		chs, _ := readRecording(t, path)
		if len(chs[0]) >= ClockRate/2 {
			if got := ToneRatio(chs[0][ClockRate/10:ClockRate/2], 440); got < 0.9 {
				t.Errorf("440 Hz ratio %.2f in the live file", got)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("live file has %d samples, want at least 0.5 s", len(chs[0]))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRecorderSinkDoesNotAllocate(t *testing.T) {
	r, err := NewRecorder(RecorderConfig{Path: filepath.Join(t.TempDir(), "x.wav"), Stereo: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	sink := r.Sink(RecordLeft)
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 1}, Payload: make([]byte, FrameSamples)}
	now := time.Now()
	if n := testing.AllocsPerRun(200, func() { sink(&pkt, PCMU, now) }); n != 0 {
		t.Errorf("sink allocates %.1f per packet", n)
	}
}
