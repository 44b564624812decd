package config

import (
	"strings"
	"testing"
	"time"
)

func TestRecordingDefaults(t *testing.T) {
	c, err := Load(name, []byte(defaultDoc(t)), Known{})
	if err != nil {
		t.Fatal(err)
	}
	if r := c.Queues["complaint"].Recording; !r.On() || r.Mode != RecordAll || r.Format != RecordStereo || r.Announce != "" {
		t.Errorf("complaint recording %+v, want all, stereo", r)
	}
	if r := c.Queues["consult"].Recording; r.On() {
		t.Errorf("consult records: %+v", r)
	}
	v := c.Voicemail
	if v.Prompt != DefaultVoicemailPrompt || v.Beep != DefaultVoicemailBeep || v.MaxDuration.D() != 2*time.Minute ||
		v.Silence.D() != 5*time.Second || v.SilenceLevel != -40 {
		t.Errorf("voicemail %+v", v)
	}
	doc := edit(t, defaultDoc(t), "      mode: all ", "      mode: share\n      share: 0.25 ")
	doc = edit(t, doc, "      format: stereo ", "      format: mono ")
	if c, err = Load(name, []byte(doc), Known{}); err != nil {
		t.Fatal(err)
	}
	if r := c.Queues["complaint"].Recording; r.Mode != RecordShare || r.Share != 0.25 || r.Format != RecordMono {
		t.Errorf("complaint recording %+v", r)
	}
}

func TestRecordingErrors(t *testing.T) {
	known := Known{Prompt: func(p string) bool { return !strings.Contains(p, "nosuch") }}
	for _, tc := range []struct{ old, new, field, problem string }{
		{"      mode: all ", "      mode: sometimes ", "queues.complaint.recording.mode", `want off, all or share, got "sometimes"`},
		{"      mode: all ", "      mode: share\n      share: 0 ", "queues.complaint.recording.share", "want a fraction of calls above 0 and at most 1"},
		{"      mode: all ", "      mode: share\n      share: 1.5 ", "queues.complaint.recording.share", "got 1.5"},
		{"      mode: all ", "      mode: all\n      share: 0.5 ", "queues.complaint.recording.share", "goes with mode: share"},
		{"      format: stereo ", "      format: quad ", "queues.complaint.recording.format", `got "quad"`},
		{`      announce: "" `, `      announce: nosuch `, "queues.complaint.recording.announce", `unknown prompt "nosuch"`},
		{"  max_duration: 120s ", "  max_duration: 2h ", "voicemail.max_duration", "want 1s to 1h0m0s"},
		{"  silence: 5s ", "  silence: 10m ", "voicemail.silence", "want between 0 and max_duration"},
		{"  silence_level: -40 ", "  silence_level: 3 ", "voicemail.silence_level", "got 3"},
		{`      "3": queue business `, `      "3": voicemail `, "", ""}, // fine: the callback section exists
	} {
		doc := edit(t, defaultDoc(t), tc.old, tc.new)
		_, err := Load(name, []byte(doc), known)
		if tc.field == "" {
			if err != nil {
				t.Errorf("%q: %v", tc.new, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%q: loaded", tc.new)
			continue
		}
		got := problems(t, err)
		if len(got) != 1 || got[0].Field != tc.field || !strings.Contains(got[0].Problem, tc.problem) ||
			got[0].Line != lineWith(t, doc, strings.TrimSpace(strings.Split(tc.new, "\n")[len(strings.Split(tc.new, "\n"))-1]), 1) {
			t.Errorf("%q: %v", tc.new, err)
		}
	}
	// A voicemail option without a callback section, and a missing voicemail prompt.
	doc := edit(t, defaultDoc(t), `      "3": queue business `, `      "3": voicemail `)
	doc = stripSections(t, doc, "callback:")
	doc = edit(t, doc, "  prompt: voicemail_greeting ", "  prompt: nosuch_greeting ")
	_, err := Load(name, []byte(doc), known)
	if err == nil || !strings.Contains(err.Error(), `menus.main.options.3: voicemail needs a callback: section`) ||
		!strings.Contains(err.Error(), `voicemail.prompt: unknown prompt "nosuch_greeting"`) {
		t.Errorf("voicemail without callback: %v", err)
	}
	if err != nil && !strings.Contains(err.Error(), name+":") {
		t.Errorf("no file:line: %v", err)
	}
}
