package config

import (
	"fmt"
	"time"

	"github.com/hotline12345/hotline/ivr"
)

// Call recording (质检) and voicemail (留言).

// Recording modes and formats.
const (
	RecordOff    = "off"    // never (the default)
	RecordAll    = "all"    // every call
	RecordShare  = "share"  // a random share of calls (Share)
	RecordStereo = "stereo" // citizen left, agent right (the default)
	RecordMono   = "mono"   // both mixed into one channel
)

// Voicemail defaults.
const (
	DefaultVoicemailPrompt       = "voicemail_greeting"
	DefaultVoicemailBeep         = "beep"
	DefaultVoicemailThanks       = "voicemail_saved"
	DefaultVoicemailMaxDuration  = 120 * time.Second
	DefaultVoicemailSilence      = 5 * time.Second
	DefaultVoicemailSilenceLevel = -40.0 // dBFS RMS
	// MaxVoicemailDuration bounds voicemail.max_duration.
	MaxVoicemailDuration = time.Hour
)

// RecordingAnnouncePrompt is the shipped recording notice (您的通话可能被录音).
const RecordingAnnouncePrompt = "recording_notice"

// Recording is the recording rule of a queue (queues.NAME.recording) or of the campaigns'
// calls (callback.recording). Files go to DATA_DIR/recordings/YYYY/MM/DD/<record id>.wav,
// 8 kHz 16-bit PCM.
type Recording struct {
	Mode  string  `yaml:"mode"`  // off (default), all, share
	Share float64 `yaml:"share"` // with mode share: the fraction of calls recorded, e.g. 0.2
	// Format: stereo (default: citizen left, agent right) or mono (mixed).
	Format string `yaml:"format"`
	// Announce is a prompt played to the citizen before the agent is connected, e.g.
	// recording_notice (您的通话可能被录音); empty = none.
	Announce string `yaml:"announce"`
}

// On reports whether r records any call.
func (r *Recording) On() bool { return r != nil && r.Mode != "" && r.Mode != RecordOff }

// Voicemail is the `voicemail` menu action (留言): the caller hears Prompt and Beep, then
// speaks for up to MaxDuration; # or Silence ends it. The WAV goes under
// DATA_DIR/recordings/ and a callback task for the caller is queued in callback.queue.
type Voicemail struct {
	Prompt       string       `yaml:"prompt"`        // default voicemail_greeting
	Beep         string       `yaml:"beep"`          // default beep
	Thanks       string       `yaml:"thanks"`        // after # or silence, before the server hangs up; default voicemail_saved
	MaxDuration  ivr.Duration `yaml:"max_duration"`  // default 120s
	Silence      ivr.Duration `yaml:"silence"`       // this long without voice ends it; default 5s
	SilenceLevel float64      `yaml:"silence_level"` // dBFS RMS below which audio is silence; default -40
}

func (v *Voicemail) applyDefaults() {
	if v.Prompt == "" {
		v.Prompt = DefaultVoicemailPrompt
	}
	if v.Beep == "" {
		v.Beep = DefaultVoicemailBeep
	}
	if v.Thanks == "" {
		v.Thanks = DefaultVoicemailThanks
	}
	if v.MaxDuration == 0 {
		v.MaxDuration = ivr.Duration(DefaultVoicemailMaxDuration)
	}
	if v.Silence == 0 {
		v.Silence = ivr.Duration(DefaultVoicemailSilence)
	}
	if v.SilenceLevel == 0 {
		v.SilenceLevel = DefaultVoicemailSilenceLevel
	}
}

func (r *Recording) applyDefaults() {
	if r.Mode == "" {
		r.Mode = RecordOff
	}
	if r.Format == "" {
		r.Format = RecordStereo
	}
}

// validateRecording checks a recording rule at path p.
func validateRecording(p string, r *Recording, hasPrompt func(string) bool, add func(path, format string, args ...any)) {
	switch r.Mode {
	case RecordOff, RecordAll:
		if r.Share != 0 {
			add(p+".share", "goes with mode: share (mode is %s)", r.Mode)
		}
	case RecordShare:
		if r.Share <= 0 || r.Share > 1 {
			add(p+".share", "want a fraction of calls above 0 and at most 1 (0.2 = one call in five), got %v", r.Share)
		}
	default:
		add(p+".mode", "want off, all or share, got %q", r.Mode)
	}
	if r.Format != RecordStereo && r.Format != RecordMono {
		add(p+".format", "want stereo (citizen left, agent right) or mono (mixed), got %q", r.Format)
	}
	if r.Announce != "" {
		if !hasPrompt(r.Announce) {
			add(p+".announce", "unknown prompt %q", r.Announce)
		}
	}
}

// validateRecordings checks the queues' and the campaigns' recording rules and the
// voicemail section, and that a menu's voicemail action has a callback queue to go to.
func (c *Config) validateRecordings(hasPrompt func(string) bool, add func(path, format string, args ...any)) {
	for name, q := range c.Queues {
		if q.Recording != nil {
			validateRecording("queues."+name+".recording", q.Recording, hasPrompt, add)
		}
	}
	if c.Callback != nil && c.Callback.Recording != nil {
		validateRecording("callback.recording", c.Callback.Recording, hasPrompt, add)
	}
	v := c.Voicemail
	if v.MaxDuration < ivr.Duration(time.Second) || v.MaxDuration.D() > MaxVoicemailDuration {
		add("voicemail.max_duration", "want 1s to %s, got %s", MaxVoicemailDuration, v.MaxDuration.D())
	}
	if v.Silence < 0 || v.Silence > v.MaxDuration {
		add("voicemail.silence", "want between 0 and max_duration (%s), got %s", v.MaxDuration.D(), v.Silence.D())
	}
	if v.SilenceLevel < -90 || v.SilenceLevel > -10 {
		add("voicemail.silence_level", "want a level in dBFS between -90 and -10, got %v", v.SilenceLevel)
	}
	used := false
	check := func(path, act string) {
		if a, err := ivr.ParseAction(act); err == nil && a.Kind == ivr.ActVoicemail {
			used = true
			if c.Callback == nil {
				add(path, "voicemail needs a callback: section (its queue calls the caller back)")
			}
		}
	}
	for name, m := range c.Menus {
		for digit, act := range m.Options {
			check(fmt.Sprintf("menus.%s.options.%s", name, digit), act)
		}
		check("menus."+name+".fallback", m.Fallback)
	}
	if !used {
		return
	}
	for _, f := range []struct{ field, name string }{{"prompt", v.Prompt}, {"beep", v.Beep}, {"thanks", v.Thanks}} {
		if !hasPrompt(f.name) {
			add("voicemail."+f.field, "unknown prompt %q (a menu has the voicemail action)", f.name)
		}
	}
}
