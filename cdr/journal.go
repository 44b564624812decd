package cdr

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The journal is a directory of append-only segment files,
// cdr-<16-digit sequence>.jsonl, each a list of JSON lines
//
//	{"op":"begin","rec":{...}}   a call was answered (crash insurance)
//	{"op":"end","rec":{...}}     a finished record not yet in the store
//	{"op":"event","ev":{...}}    an agent event not yet in the store
//	{"op":"out","out":{...}}     a published feed event (Writer.Publish) not yet in the store
//	{"op":"beat","beat":{...}}   the writer was alive at beat.t with these calls
//	                             open (and, if beat.full, these agents logged in)
//
// Appends go to one active segment and are fsynced before append returns.
// Concurrent appends share an fsync (group commit): each append writes its
// lines under mu, then whoever holds syncMu fsyncs everything written so far.
// Segments are read and deleted only after rotation has closed them, by the
// writer goroutine (replay), and deleted only once their contents are in the
// store. Reading skips lines that do not parse (a torn last line after a
// crash, or the fragment of a failed write) with a log line.

const (
	journalOpBegin = "begin"
	journalOpEnd   = "end"
	journalOpEvent = "event"
	journalOpBeat  = "beat"
	journalOpOut   = "out"

	segmentPrefix = "cdr-"
	segmentSuffix = ".jsonl"
)

type journalEntry struct {
	Op   string       `json:"op"`
	Rec  Record       `json:"rec,omitzero"`
	Ev   *AgentEvent  `json:"ev,omitempty"`
	Beat *journalBeat `json:"beat,omitempty"`
	Out  *OutboxEvent `json:"out,omitempty"`
}

// journalBeat is a heartbeat: every call begun and not finished was alive
// at Time. If Full, Agents are all the agents logged in at Time (maybe
// none); otherwise they are as the previous full beat said. The first beat
// of each segment is full.
type journalBeat struct {
	Time   time.Time   `json:"t"`
	Full   bool        `json:"full,omitempty"`
	Agents []beatAgent `json:"agents,omitempty"`
}

// beatAgent is an agent logged in, as its LOGIN event said.
type beatAgent struct {
	ID    string    `json:"id"`
	Node  string    `json:"node,omitempty"`
	Since time.Time `json:"since"`
}

// valid reports whether the entry is one replay can use.
func (e *journalEntry) valid() bool {
	switch e.Op {
	case journalOpBegin, journalOpEnd:
		return e.Rec.ID != ""
	case journalOpEvent:
		return e.Ev != nil && e.Ev.ID != ""
	case journalOpBeat:
		return e.Beat != nil && !e.Beat.Time.IsZero()
	case journalOpOut:
		return e.Out != nil && e.Out.ID != ""
	}
	return false
}

type segment struct {
	seq   uint64
	path  string
	mtime time.Time
}

type journal struct {
	dir string
	log *slog.Logger

	mu      sync.Mutex // guards the fields below; held across write(2), never across fsync
	f       *os.File   // active segment, nil until the next append
	seq     uint64     // sequence of the active segment, or of the next one if f is nil
	size    int64      // bytes in the active segment
	needNL  bool       // a write failed part-way: start the next write on a fresh line
	written uint64     // appends written, over the journal's life

	syncMu sync.Mutex // serialises fsync and rotation
	synced uint64     // appends known to be on disk; guarded by syncMu

	backlog atomic.Int64 // "end" and "event" entries written and not yet replayed into the store
}

// openJournal creates dir if needed, checks it is writable and finds the
// segments left by a previous run.
func openJournal(dir string, log *slog.Logger) (*journal, []segment, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, nil, fmt.Errorf("cdr: journal directory %s: %w", dir, err)
	}
	probe, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return nil, nil, fmt.Errorf("cdr: journal directory %s is not writable: %w", dir, err)
	}
	_ = probe.Close()
	_ = os.Remove(probe.Name())
	j := &journal{dir: dir, log: log}
	segs, err := j.segments()
	if err != nil {
		return nil, nil, err
	}
	j.seq = 1
	if len(segs) > 0 {
		j.seq = segs[len(segs)-1].seq + 1
	}
	return j, segs, nil
}

// segments lists the segment files in sequence order.
func (j *journal) segments() ([]segment, error) {
	des, err := os.ReadDir(j.dir)
	if err != nil {
		return nil, fmt.Errorf("cdr: journal directory %s: %w", j.dir, err)
	}
	var segs []segment
	for _, de := range des {
		name := de.Name()
		if !strings.HasPrefix(name, segmentPrefix) || !strings.HasSuffix(name, segmentSuffix) || de.IsDir() {
			continue
		}
		seq, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(name, segmentPrefix), segmentSuffix), 10, 64)
		if err != nil {
			continue
		}
		var mtime time.Time
		if fi, err := de.Info(); err == nil {
			mtime = fi.ModTime()
		}
		segs = append(segs, segment{seq: seq, path: filepath.Join(j.dir, name), mtime: mtime})
	}
	slices.SortFunc(segs, func(a, b segment) int {
		switch {
		case a.seq < b.seq:
			return -1
		case a.seq > b.seq:
			return 1
		}
		return 0
	})
	return segs, nil
}

func segmentName(seq uint64) string {
	return fmt.Sprintf("%s%016d%s", segmentPrefix, seq, segmentSuffix)
}

func encodeEntries(op string, recs []Record) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf) // Encode appends '\n'
	enc.SetEscapeHTML(false)
	for i := range recs {
		if err := enc.Encode(journalEntry{Op: op, Rec: recs[i]}); err != nil {
			return nil, fmt.Errorf("cdr: journal: encode record %s: %w", recs[i].ID, err)
		}
	}
	return buf.Bytes(), nil
}

func encodeEvents(evs []AgentEvent) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for i := range evs {
		if err := enc.Encode(journalEntry{Op: journalOpEvent, Ev: &evs[i]}); err != nil {
			return nil, fmt.Errorf("cdr: journal: encode event %s: %w", evs[i].ID, err)
		}
	}
	return buf.Bytes(), nil
}

// append writes one entry per record and returns once they are on disk.
func (j *journal) append(op string, recs ...Record) error {
	if len(recs) == 0 {
		return nil
	}
	data, err := encodeEntries(op, recs)
	if err != nil {
		return err
	}
	backlog := 0
	if op == journalOpEnd {
		backlog = len(recs)
	}
	return j.write(data, backlog)
}

// appendEvents writes one entry per event and returns once they are on disk.
func (j *journal) appendEvents(evs []AgentEvent) error {
	if len(evs) == 0 {
		return nil
	}
	data, err := encodeEvents(evs)
	if err != nil {
		return err
	}
	return j.write(data, len(evs))
}

// appendBeat writes a heartbeat and returns once it is on disk, with the
// sequence of the segment it went to.
func (j *journal) appendBeat(b journalBeat) (uint64, error) {
	data, err := json.Marshal(journalEntry{Op: journalOpBeat, Beat: &b})
	if err != nil {
		return 0, fmt.Errorf("cdr: journal: encode heartbeat: %w", err)
	}
	if err := j.write(append(data, '\n'), 0); err != nil {
		return 0, err
	}
	return j.activeSeq(), nil
}

// activeSeq is the sequence of the active segment (of the next one if
// none is open).
func (j *journal) activeSeq() uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.seq
}

// write appends data (whole lines holding backlog entries the store has
// yet to take) to the active segment and returns once it is on disk.
func (j *journal) write(data []byte, backlog int) error {
	j.mu.Lock()
	if j.f == nil {
		if err := j.openSegmentLocked(); err != nil {
			j.mu.Unlock()
			return err
		}
	}
	if j.needNL {
		data = append([]byte{'\n'}, data...)
	}
	n, err := j.f.Write(data)
	j.size += int64(n)
	if err != nil {
		// Whatever part was written is a torn line that replay skips;
		// make sure the next entry starts on a line of its own.
		j.needNL = n > 0 && data[n-1] != '\n'
		j.mu.Unlock()
		return fmt.Errorf("cdr: journal %s: %w", j.dir, err)
	}
	j.needNL = false
	j.written++
	seq, f := j.written, j.f
	// Counted as soon as the lines are in the file, which is what replay
	// will find and subtract, whether or not fsync succeeds.
	j.backlog.Add(int64(backlog))
	j.mu.Unlock()
	return j.syncTo(f, seq)
}

// openSegmentLocked creates the active segment and makes its directory
// entry durable. j.mu is held.
func (j *journal) openSegmentLocked() error {
	for {
		p := filepath.Join(j.dir, segmentName(j.seq))
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o640)
		if errors.Is(err, os.ErrExist) {
			j.seq++
			continue
		}
		if err != nil {
			return fmt.Errorf("cdr: journal: %w", err)
		}
		if err := syncDir(j.dir); err != nil {
			_ = f.Close()
			_ = os.Remove(p)
			return fmt.Errorf("cdr: journal: %w", err)
		}
		j.f, j.size, j.needNL = f, 0, false
		return nil
	}
}

// syncTo returns once append number seq, written to f, is on disk,
// fsyncing everything written so far unless another caller already did.
func (j *journal) syncTo(f *os.File, seq uint64) error {
	j.syncMu.Lock()
	defer j.syncMu.Unlock()
	if j.synced >= seq {
		return nil
	}
	// Rotation holds syncMu too, so f is either still the active file (and
	// holds every append since it was opened) or rotation closed it
	// without managing to sync it, and Sync fails with os.ErrClosed:
	// either way the answer is right.
	j.mu.Lock()
	target := j.written
	j.mu.Unlock()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("cdr: journal %s: fsync: %w", j.dir, err)
	}
	j.synced = target
	return nil
}

// rotate closes the active segment, so that every segment with a sequence
// below the returned one is closed and may be replayed.
func (j *journal) rotate() (uint64, error) {
	j.syncMu.Lock()
	defer j.syncMu.Unlock()
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return j.seq, nil
	}
	err := j.f.Sync()
	if err == nil {
		j.synced = j.written
	}
	if cerr := j.f.Close(); err == nil {
		err = cerr
	}
	j.f = nil
	j.seq++
	if err != nil {
		return j.seq, fmt.Errorf("cdr: journal %s: %w", j.dir, err)
	}
	return j.seq, nil
}

// close closes the active segment; a later append opens a new one.
func (j *journal) close() error {
	_, err := j.rotate()
	return err
}

// activeSize is the size of the active segment in bytes.
func (j *journal) activeSize() int64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return 0
	}
	return j.size
}

// readSegment calls fn for every entry of the segment, skipping (and, if
// warn, logging) lines that do not parse.
func (j *journal) readSegment(seg segment, warn bool, fn func(journalEntry)) error {
	f, err := os.Open(seg.path)
	if err != nil {
		return fmt.Errorf("cdr: journal: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	for lineNo := 1; ; lineNo++ {
		line, err := r.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			var e journalEntry
			switch uerr := json.Unmarshal(line, &e); {
			case !warn && (uerr != nil || !e.valid()):
			case uerr != nil:
				torn := err == io.EOF
				j.log.Warn("cdr journal: skipping unreadable line", "file", seg.path, "line", lineNo, "torn_last_line", torn, "error", uerr)
			case !e.valid():
				j.log.Warn("cdr journal: skipping invalid entry", "file", seg.path, "line", lineNo, "op", e.Op)
			default:
				fn(e)
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("cdr: journal %s: %w", seg.path, err)
		}
	}
}

// remove deletes replayed segments.
func (j *journal) remove(segs []segment) error {
	var errs []error
	for _, s := range segs {
		if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := syncDir(j.dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// syncDir makes directory entries (created or removed files) durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

// appendOuts writes one entry per published feed event and returns once
// they are on disk.
func (j *journal) appendOuts(evs []OutboxEvent) error {
	if len(evs) == 0 {
		return nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for i := range evs {
		if err := enc.Encode(journalEntry{Op: journalOpOut, Out: &evs[i]}); err != nil {
			return fmt.Errorf("cdr: journal: encode feed event %s: %w", evs[i].ID, err)
		}
	}
	return j.write(buf.Bytes(), len(evs))
}
