package notice

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func silenceWAV(d time.Duration) []byte {
	n := int(d.Seconds() * 8000)
	var b bytes.Buffer
	w := func(v any) { binary.Write(&b, binary.LittleEndian, v) }
	b.WriteString("RIFF")
	w(uint32(36 + 2*n))
	b.WriteString("WAVEfmt ")
	for _, v := range []any{uint32(16), uint16(1), uint16(1), uint32(8000), uint32(16000), uint16(2), uint16(16)} {
		w(v)
	}
	b.WriteString("data")
	w(uint32(2 * n))
	b.Write(make([]byte, 2*n))
	return b.Bytes()
}

func checks() Checks {
	return Checks{
		Prompt: func(n string) bool { return n == "welcome" || n == "flood" },
		Menu:   func(n string) bool { return n == "epidemic" },
		Route:  func(n string) bool { return n == "12345" || n == "12315" },
	}
}

// Notices apply by route and time, the newest menu wins, prompts play oldest first, ended
// notices are dropped with their recordings, and everything survives a reopen.
func TestStoreActiveAndPersistence(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 12, 8, 10, 0, 0, 0, time.UTC)
	s, err := Open(dir, checks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	s.now = func() time.Time { return now }
	rec, err := s.Add(Notice{Routes: []string{"12345"}, End: now.Add(time.Hour)}, silenceWAV(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if rec.Prompt != UploadedPrefix+rec.ID || rec.Seconds != 2 || !rec.Start.Equal(now) {
		t.Fatalf("recorded notice %+v", rec)
	}
	if _, err := s.Add(Notice{Prompt: "flood", Start: now.Add(30 * time.Minute)}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Add(Notice{Menu: "epidemic", Routes: []string{"12315"}}, nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		route  string
		at     time.Duration
		prompt []string
		menu   string
	}{
		{"12345", 0, []string{rec.Prompt}, ""},
		{"12345", 45 * time.Minute, []string{rec.Prompt, "flood"}, ""},
		{"12315", 0, nil, "epidemic"},
		{"12315", 45 * time.Minute, []string{"flood"}, "epidemic"},
		{"12345", 2 * time.Hour, []string{"flood"}, ""}, // the recording ended
	} {
		p, m := s.Active(tc.route, now.Add(tc.at))
		if !slices.Equal(p, tc.prompt) || m != tc.menu {
			t.Errorf("%s at +%v: %v %q, want %v %q", tc.route, tc.at, p, m, tc.prompt, tc.menu)
		}
	}
	if _, ok := s.Get(rec.Prompt); ok {
		t.Error("an ended notice's recording is still served")
	}
	if _, err := os.Stat(filepath.Join(dir, rec.ID+".wav")); !os.IsNotExist(err) {
		t.Errorf("an ended notice's recording is still on disk: %v", err)
	}
	s2, err := Open(dir, checks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := s2.List(); len(got) != 2 || got[0].Menu != "epidemic" || got[1].Prompt != "flood" {
		t.Fatalf("after reopen: %+v", got)
	}
}

// Uploaded recordings survive a reopen; bad input is ErrInvalid and changes nothing.
func TestStoreRecordingAndInvalid(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, checks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.Add(Notice{}, silenceWAV(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	s2, err := Open(dir, checks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := s2.Get(n.Prompt); !ok || p.Duration() != time.Second {
		t.Fatalf("recording after reopen: %v %v", p, ok)
	}
	for _, bad := range []struct {
		n   Notice
		wav []byte
	}{
		{Notice{}, nil},
		{Notice{Prompt: "nosuch"}, nil},
		{Notice{Menu: "nosuch"}, nil},
		{Notice{Prompt: "welcome", Routes: []string{"110"}}, nil},
		{Notice{Prompt: "welcome"}, silenceWAV(time.Second)},
		{Notice{}, []byte("RIFF....WAVEjunk")},
		{Notice{}, silenceWAV(MaxRecording + time.Second)},
		{Notice{Prompt: "welcome", Start: time.Now().Add(time.Hour), End: time.Now()}, nil},
	} {
		if _, err := s.Add(bad.n, bad.wav); !errors.Is(err, ErrInvalid) {
			t.Errorf("Add(%+v, %d bytes): %v, want ErrInvalid", bad.n, len(bad.wav), err)
		}
	}
	if got := s.List(); len(got) != 1 {
		t.Fatalf("after refused notices: %+v", got)
	}
	if _, err := s.Remove("nosuch"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Remove(nosuch): %v", err)
	}
}

// Any bytes as a recording: an error or a prompt, never a panic.
func FuzzAddRecording(f *testing.F) {
	f.Add(silenceWAV(20 * time.Millisecond))
	f.Add([]byte("RIFF\x24\x00\x00\x00WAVEfmt "))
	s, err := Open(f.TempDir(), checks(), nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, wav []byte) {
		n, err := s.Add(Notice{}, wav)
		if err == nil {
			s.Remove(n.ID)
		} else if !errors.Is(err, ErrInvalid) {
			t.Fatalf("%v", err)
		}
	})
}
