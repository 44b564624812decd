// Package notice keeps the emergency notices (应急公告) of a hotline: a recording played to
// every new caller of chosen routes before the entry menu, or an emergency menu (an epidemic
// or flood menu) replacing a route's entry menu, each between a start and an end time. They
// are set by supervisors through the API while the server runs, take effect from the next
// call on, and survive a restart (the data dir's notices/ directory: notices.json and the
// uploaded WAV files).
package notice

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hotline12345/hotline/media"
)

// Errors of the store.
var (
	ErrInvalid  = errors.New("invalid notice")
	ErrNotFound = errors.New("no such notice")
)

// MaxRecording is the longest uploaded recording accepted.
const MaxRecording = 5 * time.Minute

// UploadedPrefix begins the prompt name of an uploaded recording: "notice/<id>".
const UploadedPrefix = "notice/"

// Notice is one emergency notice.
type Notice struct {
	ID string `json:"id"`
	// Routes are the route numbers it applies to; empty: every route.
	Routes []string `json:"routes,omitempty"`
	// Prompt is played before the entry: a prompt of the set, or the uploaded recording
	// ("notice/<id>", set by the store).
	Prompt string `json:"prompt,omitempty"`
	// Menu replaces the routes' entry menu (open or closed hours) while the notice is on.
	Menu  string    `json:"menu,omitempty"`
	Start time.Time `json:"start"`          // zero (when set): now
	End   time.Time `json:"end,omitzero"`   // zero: until removed
	Text  string    `json:"text,omitempty"` // what it says, for the supervisors' list
	// Set by the store.
	Created   time.Time `json:"created"`
	CreatedBy string    `json:"created_by,omitempty"`
	Seconds   float64   `json:"seconds,omitempty"` // the recording's length
}

// On reports whether the notice applies at now.
func (n *Notice) On(now time.Time) bool {
	return !now.Before(n.Start) && (n.End.IsZero() || now.Before(n.End))
}

// Checks tells the store what exists: prompts of the set, menus and routes.
type Checks struct {
	Prompt func(name string) bool
	Menu   func(name string) bool
	Route  func(number string) bool
}

// Store is the notices, in memory and in dir. Safe for concurrent use.
type Store struct {
	dir    string
	checks Checks
	log    *slog.Logger
	now    func() time.Time

	mu       sync.RWMutex
	list     []Notice
	uploaded map[string]*media.Prompt // by prompt name (notice/<id>)
}

const listFile = "notices.json"

// Open loads the notices kept in dir (created if missing). Notices whose end has passed
// are dropped with their recordings.
func Open(dir string, checks Checks, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{dir: dir, checks: checks, log: log, now: time.Now, uploaded: map[string]*media.Prompt{}}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("notices: %w", err)
	}
	data, err := os.ReadFile(filepath.Join(dir, listFile))
	switch {
	case errors.Is(err, os.ErrNotExist):
		return s, nil
	case err != nil:
		return nil, fmt.Errorf("notices: %w", err)
	}
	if err := json.Unmarshal(data, &s.list); err != nil {
		return nil, fmt.Errorf("notices: %s: %w", filepath.Join(dir, listFile), err)
	}
	for _, n := range s.list {
		if !strings.HasPrefix(n.Prompt, UploadedPrefix) {
			continue
		}
		wav, err := os.ReadFile(s.wavPath(n.ID))
		if err == nil {
			var p *media.Prompt
			if p, err = media.DecodePrompt(n.Prompt, wav); err == nil {
				s.uploaded[n.Prompt] = p
			}
		}
		if err != nil { // the notice stays listed; its callers hear the menu without it
			log.Error("notice recording unreadable", "notice", n.ID, "error", err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s, s.expireLocked(s.now())
}

func (s *Store) wavPath(id string) string { return filepath.Join(s.dir, id+".wav") }

// List returns the notices, newest first.
func (s *Store) List() []Notice {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := slices.Clone(s.list)
	slices.Reverse(out)
	return out
}

// Add checks n, keeps wav (an uploaded recording; nil: none) and saves the list. The ID,
// Created and, with wav, Prompt and Seconds are set here. Errors wrap ErrInvalid.
func (s *Store) Add(n Notice, wav []byte) (Notice, error) {
	now := s.now()
	n.ID, n.Created, n.Seconds = newID(), now.UTC(), 0
	if n.Start.IsZero() {
		n.Start = n.Created
	}
	var p *media.Prompt
	if wav != nil {
		if n.Prompt != "" {
			return n, fmt.Errorf("%w: prompt: give a prompt name or a recording, not both", ErrInvalid)
		}
		n.Prompt = UploadedPrefix + n.ID
		var err error
		if p, err = media.DecodePrompt(n.Prompt, wav); err != nil {
			return n, fmt.Errorf("%w: recording: %s", ErrInvalid, strings.TrimPrefix(err.Error(), n.Prompt+": "))
		}
		if p.Duration() > MaxRecording {
			return n, fmt.Errorf("%w: recording: %s long, at most %s", ErrInvalid, p.Duration().Round(time.Second), MaxRecording)
		}
		n.Seconds = p.Duration().Seconds()
	}
	if err := s.check(n, now); err != nil {
		return n, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p != nil {
		if err := writeReplace(s.wavPath(n.ID), wav); err != nil {
			return n, fmt.Errorf("notices: %w", err)
		}
	}
	list := append(slices.Clone(s.list), n)
	if err := s.save(list); err != nil {
		if p != nil {
			os.Remove(s.wavPath(n.ID))
		}
		return n, err
	}
	s.list = list
	if p != nil {
		s.uploaded[n.Prompt] = p
	}
	s.log.Info("notice set", "notice", n.ID, "routes", n.Routes, "prompt", n.Prompt, "menu", n.Menu,
		"start", n.Start, "end", n.End, "by", n.CreatedBy)
	return n, nil
}

func (s *Store) check(n Notice, now time.Time) error {
	var problems []string
	if n.Prompt == "" && n.Menu == "" {
		problems = append(problems, "prompt, recording or menu: one is required")
	}
	if n.Prompt != "" && !strings.HasPrefix(n.Prompt, UploadedPrefix) && s.checks.Prompt != nil && !s.checks.Prompt(n.Prompt) {
		problems = append(problems, fmt.Sprintf("prompt: %q is not in the prompt set", n.Prompt))
	}
	if n.Menu != "" && s.checks.Menu != nil && !s.checks.Menu(n.Menu) {
		problems = append(problems, fmt.Sprintf("menu: %q is not a configured menu", n.Menu))
	}
	for _, r := range n.Routes {
		if s.checks.Route != nil && !s.checks.Route(r) {
			problems = append(problems, fmt.Sprintf("routes: %q is not a configured route", r))
		}
	}
	if !n.End.IsZero() && !n.End.After(n.Start) {
		problems = append(problems, "end: must be after start")
	} else if !n.End.IsZero() && !n.End.After(now) {
		problems = append(problems, "end: already passed")
	}
	if len(n.Text) > 2000 {
		problems = append(problems, "text: at most 2000 bytes")
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalid, strings.Join(problems, "; "))
	}
	return nil
}

// Remove ends a notice at once and deletes its recording.
func (s *Store) Remove(id string) (Notice, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.IndexFunc(s.list, func(n Notice) bool { return n.ID == id })
	if i < 0 {
		return Notice{}, ErrNotFound
	}
	n := s.list[i]
	list := slices.Delete(slices.Clone(s.list), i, i+1)
	if err := s.save(list); err != nil {
		return n, err
	}
	s.list = list
	s.drop(n)
	s.log.Info("notice removed", "notice", n.ID)
	return n, nil
}

// drop forgets n's recording (s.mu held).
func (s *Store) drop(n Notice) {
	if _, ok := s.uploaded[n.Prompt]; ok {
		delete(s.uploaded, n.Prompt)
		if err := os.Remove(s.wavPath(n.ID)); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("notice recording not removed", "notice", n.ID, "error", err)
		}
	}
}

// Active is the notice for a new call of route at now: the prompts to play before the
// entry (every notice on, oldest first) and the emergency menu (the newest notice on that
// has one). Ended notices are dropped on the way (call.Notices).
func (s *Store) Active(route string, now time.Time) (prompts []string, menu string) {
	s.mu.RLock()
	expired := false
	for i := range s.list {
		n := &s.list[i]
		if !n.End.IsZero() && !now.Before(n.End) {
			expired = true
		}
		if !n.On(now) || (len(n.Routes) > 0 && !slices.Contains(n.Routes, route)) {
			continue
		}
		if n.Prompt != "" {
			prompts = append(prompts, n.Prompt)
		}
		if n.Menu != "" {
			menu = n.Menu
		}
	}
	s.mu.RUnlock()
	if expired {
		s.mu.Lock()
		if err := s.expireLocked(now); err != nil {
			s.log.Warn("ended notices not removed", "error", err)
		}
		s.mu.Unlock()
	}
	return prompts, menu
}

// expireLocked drops the notices that ended by now (s.mu held).
func (s *Store) expireLocked(now time.Time) error {
	var gone []Notice
	kept := slices.DeleteFunc(slices.Clone(s.list), func(n Notice) bool {
		if !n.End.IsZero() && !now.Before(n.End) {
			gone = append(gone, n)
			return true
		}
		return false
	})
	if len(gone) == 0 {
		return nil
	}
	if err := s.save(kept); err != nil {
		return err
	}
	s.list = kept
	for _, n := range gone {
		s.drop(n)
		s.log.Info("notice ended", "notice", n.ID)
	}
	return nil
}

// Get serves the uploaded recordings as prompts ("notice/<id>").
func (s *Store) Get(name string) (*media.Prompt, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	p, ok := s.uploaded[name]
	return p, ok
}

func (s *Store) save(list []Notice) error {
	data, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return err
	}
	if err := writeReplace(filepath.Join(s.dir, listFile), data); err != nil {
		return fmt.Errorf("notices: %w", err)
	}
	return nil
}

// writeReplace writes data beside path, syncs it and renames it over path.
func writeReplace(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

func newID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "n" + hex.EncodeToString(b[:])
}
