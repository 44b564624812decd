package media

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
)

// Recording channels: what each RTP session fed to a Recorder becomes.
const (
	RecordLeft  = 0 // the citizen
	RecordRight = 1 // the agent
)

// Recorder timing and sizes. Frames wait in a bounded queue until the writer's next
// flush; the writer keeps a one-second window per channel in which late and reordered
// frames still land in their place, writes what is older than recJitter on every tick,
// and rewrites the WAV header's sizes after each write, so that a crashed process
// leaves a file that plays up to about recFlushEvery+recJitter before the crash.
const (
	recFlushEvery = 250 * time.Millisecond
	recJitter     = 250 * time.Millisecond
	recWindow     = ClockRate          // samples per channel kept in memory (1 s)
	recChunk      = ClockRate / 5      // samples written per write call (200 ms)
	recQueue      = 128                // frames waiting for the writer (1.28 s of two legs at 20 ms)
	recReanchor   = ClockRate * 3 / 10 // a frame whose RTP time is 300 ms off its arrival re-anchors its channel
	wavHeaderSize = 44
)

// ErrRecorderClosed is returned by a second Close.
var ErrRecorderClosed = errors.New("media: recorder closed")

// AudioSink receives each accepted audio packet of a session (SetAudioSink): the packet,
// its codec and its arrival time. It runs on the session's reader and must not block or
// keep pkt.
type AudioSink func(pkt *rtp.Packet, codec Codec, now time.Time)

// RecorderConfig sets up a Recorder.
type RecorderConfig struct {
	Path   string // the WAV file; its directory is made if missing
	Stereo bool   // two channels, left and right; false: both mixed into one (sum with saturation)
	// Silence, if positive, closes Silent() once the left channel has had no voice this
	// long (from its start or its last voice): the end of a voicemail.
	Silence time.Duration
	// SilenceLevel is the RMS level in dBFS below which a frame is silence; 0 = -40.
	SilenceLevel float64
	Logger       *slog.Logger
}

// RecordingResult is what a closed Recorder wrote.
type RecordingResult struct {
	Path     string
	Duration time.Duration // of the audio in the file
	SHA256   string        // hex, of the whole file
	Bytes    int64
	Dropped  uint64        // frames lost because the writer fell behind (silence in their place)
	Voice    time.Duration // left-channel audio above the silence level (voicemail: did anyone speak)
}

// Recorder writes a call's audio to an 8 kHz 16-bit PCM WAV file as the call runs, with
// bounded memory: the sessions' readers hand it G.711 frames (Sink: a copy into a bounded
// queue, nothing else), and one writer goroutine places them on a 20 ms-grained sample
// clock shared by both channels (RTP timestamps, anchored at arrival), fills gaps with
// silence so that the channels stay aligned, and writes to the file every recFlushEvery.
type Recorder struct {
	cfg    RecorderConfig
	log    *slog.Logger
	t0     time.Time
	q      chan recFrame // never closed: a sink may run after Close
	stop   chan struct{}
	done   chan struct{}
	silent chan struct{}

	dropped atomic.Uint64
	once    sync.Once
	res     RecordingResult
	err     error

	// owned by the writer goroutine
	f         *os.File
	tracks    [2]recTrack
	flushed   int64 // samples (per channel) on disk
	maxEnd    int64 // end of the latest frame placed
	out       []byte
	pcm       [FrameSamples]int16
	level     float64 // RMS threshold of voice, linear
	lastVoice int64   // end of the last left frame with voice
	voice     int64   // samples of voice
	silentSet bool
	failed    bool
}

// recTrack is one channel: its window of samples and its RTP time anchor.
type recTrack struct {
	buf      [recWindow]int16 // sample p at buf[p%recWindow]
	anchored bool
	ssrc     uint32
	ts0      uint32
	pos0     int64
}

// recFrame is one 20 ms frame waiting for the writer.
type recFrame struct {
	at    int64 // arrival, ns since the recorder's start
	ts    uint32
	ssrc  uint32
	ch    uint8
	codec Codec
	n     uint8
	data  [FrameSamples]byte
}

// NewRecorder creates the file with a valid (empty) WAV header and starts the writer.
func NewRecorder(cfg RecorderConfig) (*Recorder, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Dir(cfg.Path), 0o750); err != nil {
		return nil, fmt.Errorf("media: recording: %w", err)
	}
	f, err := os.OpenFile(cfg.Path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return nil, fmt.Errorf("media: recording: %w", err)
	}
	r := &Recorder{
		cfg: cfg, log: cfg.Logger, t0: time.Now(), f: f,
		q: make(chan recFrame, recQueue), stop: make(chan struct{}), done: make(chan struct{}), silent: make(chan struct{}),
	}
	lvl := cfg.SilenceLevel
	if lvl == 0 {
		lvl = -40
	}
	r.level = 32768 * math.Pow(10, lvl/20)
	if _, err := f.Write(wavHeader(r.channels(), 0)); err != nil {
		f.Close()
		os.Remove(cfg.Path)
		return nil, fmt.Errorf("media: recording: %w", err)
	}
	r.out = make([]byte, recChunk*2*r.channels())
	go r.run()
	return r, nil
}

func (r *Recorder) channels() int {
	if r.cfg.Stereo {
		return 2
	}
	return 1
}

// Sink returns the audio sink that feeds channel ch (RecordLeft, RecordRight) for
// Session.SetAudioSink. It copies the frame into the queue, or drops and counts it when
// the queue is full; it never blocks.
func (r *Recorder) Sink(ch int) AudioSink {
	return func(pkt *rtp.Packet, codec Codec, now time.Time) {
		var f recFrame
		f.at, f.ssrc, f.ch, f.codec = int64(now.Sub(r.t0)), pkt.SSRC, uint8(ch&1), codec
		p, ts := pkt.Payload, pkt.Timestamp
		for len(p) > 0 {
			n := copy(f.data[:], p)
			f.n, f.ts = uint8(n), ts
			select {
			case r.q <- f:
			default:
				r.dropped.Add(1)
			}
			p, ts = p[n:], ts+uint32(n)
		}
	}
}

// Silent is closed once the left channel has been silent for the configured Silence.
func (r *Recorder) Silent() <-chan struct{} { return r.silent }

// Close writes what is queued, pads both channels with silence up to now, finishes the
// header, syncs and closes the file, and returns what was written. It may take a moment
// (the file is read back for its SHA-256). A second Close returns ErrRecorderClosed.
func (r *Recorder) Close() (RecordingResult, error) {
	closed := false
	r.once.Do(func() { closed = true; close(r.stop) })
	if !closed {
		return RecordingResult{}, ErrRecorderClosed
	}
	<-r.done
	return r.res, r.err
}

// run is the writer goroutine.
func (r *Recorder) run() {
	defer close(r.done)
	t := time.NewTicker(recFlushEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			r.drain()
			r.flushTo(r.posAt(time.Now().Add(-recJitter)))
			r.commit()
			r.checkSilence()
		case <-r.stop:
			r.drain()
			r.flushTo(max(r.maxEnd, r.posAt(time.Now())))
			r.res, r.err = r.finish()
			return
		}
	}
}

func (r *Recorder) posAt(t time.Time) int64 { return samplesOf(t.Sub(r.t0)) }

func samplesOf(d time.Duration) int64 { return int64(d) * ClockRate / int64(time.Second) }

func (r *Recorder) drain() {
	for {
		select {
		case f := <-r.q:
			r.place(&f)
		default:
			return
		}
	}
}

// place puts a frame's samples at their position: the channel's RTP timestamp anchored
// at the arrival of its first packet, re-anchored on a new SSRC or when the timestamps
// and the arrivals disagree by more than recReanchor (a jump, a long stall).
func (r *Recorder) place(f *recFrame) {
	tr := &r.tracks[f.ch]
	arr := samplesOf(time.Duration(f.at))
	pos := tr.pos0 + int64(int32(f.ts-tr.ts0))
	if !tr.anchored || f.ssrc != tr.ssrc || pos-arr > recReanchor || arr-pos > recReanchor {
		tr.anchored, tr.ssrc, tr.ts0, tr.pos0 = true, f.ssrc, f.ts, arr
		pos = arr
	}
	n := int(f.n)
	pcm := r.pcm[:n]
	f.codec.Decode(pcm, f.data[:n])
	if f.ch == RecordLeft && r.cfg.Silence > 0 {
		var sum float64
		for _, v := range pcm {
			sum += float64(v) * float64(v)
		}
		if n > 0 && math.Sqrt(sum/float64(n)) >= r.level {
			r.lastVoice = max(r.lastVoice, pos+int64(n))
			r.voice += int64(n)
		}
	}
	for i, v := range pcm {
		p := pos + int64(i)
		if p < r.flushed {
			continue // too late: written already
		}
		if p >= r.flushed+recWindow {
			r.flushTo(p - recWindow + 1)
		}
		tr.buf[p%recWindow] = v
	}
	r.maxEnd = max(r.maxEnd, pos+int64(n))
}

// flushTo writes every sample before end (silence where no frame landed).
func (r *Recorder) flushTo(end int64) {
	ch := r.channels()
	for r.flushed < end {
		start := r.flushed % recWindow
		n := min(end-r.flushed, recChunk, recWindow-start)
		l := r.tracks[RecordLeft].buf[start : start+n]
		rt := r.tracks[RecordRight].buf[start : start+n]
		out := r.out[:int(n)*2*ch]
		for i := range l {
			if ch == 2 {
				binary.LittleEndian.PutUint16(out[4*i:], uint16(l[i]))
				binary.LittleEndian.PutUint16(out[4*i+2:], uint16(rt[i]))
			} else {
				binary.LittleEndian.PutUint16(out[2*i:], uint16(saturate(int32(l[i])+int32(rt[i]))))
			}
		}
		clear(l)
		clear(rt)
		if !r.failed {
			if _, err := r.f.Write(out); err != nil {
				r.failed = true
				r.log.Error("recording: write failed; the rest of the call is not recorded", "path", r.cfg.Path, "error", err)
			}
		}
		if !r.failed {
			r.flushed += n
		} else {
			r.flushed = end // keep the clock moving so the window does not fill
		}
	}
}

func saturate(v int32) int16 {
	return int16(min(max(v, math.MinInt16), math.MaxInt16))
}

// dataBytes is the size of the audio written so far.
func (r *Recorder) dataBytes() int64 {
	if r.failed {
		st, err := r.f.Stat()
		if err != nil {
			return 0
		}
		return max(st.Size()-wavHeaderSize, 0)
	}
	return r.flushed * 2 * int64(r.channels())
}

// commit rewrites the header's two sizes for the data written so far; the data was
// written first, so the header never claims more than the file holds.
func (r *Recorder) commit() {
	if r.failed {
		return
	}
	n := r.dataBytes()
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], uint32(min(n+36, math.MaxUint32)))
	_, err1 := r.f.WriteAt(b[:], 4)
	binary.LittleEndian.PutUint32(b[:], uint32(min(n, math.MaxUint32-36)))
	_, err2 := r.f.WriteAt(b[:], 40)
	if err := errors.Join(err1, err2); err != nil {
		r.log.Warn("recording: header update failed", "path", r.cfg.Path, "error", err)
	}
}

func (r *Recorder) checkSilence() {
	if r.cfg.Silence <= 0 || r.silentSet {
		return
	}
	if r.flushed-r.lastVoice >= samplesOf(r.cfg.Silence) {
		r.silentSet = true
		close(r.silent)
	}
}

// finish completes the file and hashes it.
func (r *Recorder) finish() (RecordingResult, error) {
	res := RecordingResult{Path: r.cfg.Path, Dropped: r.dropped.Load(), Voice: time.Duration(r.voice) * time.Second / ClockRate}
	r.commit()
	n := r.dataBytes()
	res.Duration = time.Duration(n/int64(2*r.channels())) * time.Second / ClockRate
	var errs []error
	if r.failed {
		errs = append(errs, fmt.Errorf("media: recording %s: write failed", r.cfg.Path))
	}
	if err := r.f.Sync(); err != nil {
		errs = append(errs, err)
	}
	h := sha256.New()
	if _, err := r.f.Seek(0, io.SeekStart); err != nil {
		errs = append(errs, err)
	} else if m, err := io.Copy(h, r.f); err != nil {
		errs = append(errs, err)
	} else {
		res.Bytes, res.SHA256 = m, hex.EncodeToString(h.Sum(nil))
	}
	if err := r.f.Close(); err != nil {
		errs = append(errs, err)
	}
	if res.Dropped > 0 {
		r.log.Warn("recording: frames dropped (the writer fell behind)", "path", r.cfg.Path, "frames", res.Dropped)
	}
	return res, errors.Join(errs...)
}

// wavHeader is a 44-byte RIFF/WAVE header of 8 kHz 16-bit PCM with dataBytes of audio.
func wavHeader(channels int, dataBytes uint32) []byte {
	h := make([]byte, wavHeaderSize)
	le := binary.LittleEndian
	copy(h[0:], "RIFF")
	le.PutUint32(h[4:], 36+dataBytes)
	copy(h[8:], "WAVEfmt ")
	le.PutUint32(h[16:], 16) // fmt chunk size
	le.PutUint16(h[20:], 1)  // PCM
	le.PutUint16(h[22:], uint16(channels))
	le.PutUint32(h[24:], ClockRate)
	le.PutUint32(h[28:], uint32(ClockRate*2*channels)) // byte rate
	le.PutUint16(h[32:], uint16(2*channels))           // block align
	le.PutUint16(h[34:], 16)                           // bits per sample
	copy(h[36:], "data")
	le.PutUint32(h[40:], dataBytes)
	return h
}
