package main

import (
	"github.com/hotline12345/hotline/call"
	"github.com/hotline12345/hotline/config"
)

// supervisors lists the agents flagged supervisor (listen, whisper, barge).
func supervisors(cfg *config.Config) []string {
	var out []string
	for _, a := range cfg.Agents {
		if a.Supervisor {
			out = append(out, a.ID)
		}
	}
	return out
}

// directory is the config's directory for the calls, in the hotline's time zone.
func directory(cfg *config.Config) []call.DirEntry {
	out := make([]call.DirEntry, len(cfg.Directory))
	for i, e := range cfg.Directory {
		out[i] = call.DirEntry{Name: e.Name, Number: e.Number, Trunk: e.Trunk, Hours: e.Hours, Timezone: cfg.Timezone}
	}
	return out
}
