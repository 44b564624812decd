package main

import (
	"github.com/hotline12345/hotline/call"
	"github.com/hotline12345/hotline/config"
)

// recordingRule is a configured recording rule as the calls take it.
func recordingRule(r *config.Recording) call.Recording {
	if !r.On() {
		return call.Recording{}
	}
	share := 1.0
	if r.Mode == config.RecordShare {
		share = r.Share
	}
	return call.Recording{Share: share, Stereo: r.Format != config.RecordMono, Announce: r.Announce}
}

func voicemailConfig(v config.Voicemail) call.Voicemail {
	return call.Voicemail{Prompt: v.Prompt, Beep: v.Beep, Thanks: v.Thanks, MaxDuration: v.MaxDuration.D(),
		Silence: v.Silence.D(), SilenceLevel: v.SilenceLevel}
}
