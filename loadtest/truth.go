package loadtest

import (
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// Truth is what a simulated call center day did, call by call, as the simulated citizens
// and agents saw it: the ground truth that `hotline-loadtest compare` holds against the
// server's records and report. Times are the simulator's own clock (UTC).
type Truth struct {
	Scenario string      `json:"scenario"` // "day", "bridge", "survey"
	Target   string      `json:"target"`
	Started  time.Time   `json:"started"`
	Ended    time.Time   `json:"ended"`
	Calls    []TruthCall `json:"calls"`
}

// TruthCall is one simulated citizen's call. SIPCallID matches the server record's
// sip_call_id (the citizen's INVITE; in a survey, the server's INVITE to the citizen); the
// outcome names mirror the server's dispositions.
type TruthCall struct {
	SIPCallID string    `json:"sip_call_id"`
	Caller    string    `json:"caller"`            // the calling number (survey: the server's caller ID, as the far end saw it)
	Called    string    `json:"called,omitempty"`  // survey: the number the server dialled, the citizen's
	Attempt   int       `json:"attempt,omitempty"` // survey: the call's rank among the calls to Called, from 1
	Digits    string    `json:"digits,omitempty"`  // menu keys pressed (survey: the answer keys)
	DTMF      string    `json:"dtmf,omitempty"`    // "rfc4733" or "info"
	Queue     string    `json:"queue,omitempty"`   // the queue the menu choice leads to
	Invite    time.Time `json:"invite"`            // INVITE sent
	Answered  time.Time `json:"answered,omitzero"`
	Connected time.Time `json:"connected,omitzero"` // the first agent's phone answered this caller (the agent side's 200 OK)
	Agent     string    `json:"agent,omitempty"`    // the first agent who answered (after a transfer too, as the server's record)
	Ended     time.Time `json:"ended,omitzero"`
	Outcome   string    `json:"outcome"`              // answered, abandoned, failed, ivr-hangup, ...
	SIPStatus int       `json:"sip_status,omitempty"` // survey: the far end's final response (200, 486, 603, 404; 487 after the server's CANCEL)
	HungUpBy  string    `json:"hung_up_by"`           // "caller", "agent", "server"
	Wait      Dur       `json:"wait"`                 // answered: queue wait as the caller saw it (menu choice → first agent's answer)
	Talk      Dur       `json:"talk"`                 // answered: agent answer → end of the conversation; transferred: the first agent's answer → REFER plus the second's answer → end (the server's Talk)
	Transfers int       `json:"transfers,omitempty"`  // the agent's transfers the server accepted (202)
	Visits    string    `json:"visits,omitempty"`     // day: the queue visits in the record's format ("consult/1001>complaint/1012"); empty when unknown (not compared)
	AbandonAt Dur       `json:"abandon_at,omitzero"`  // abandoned: seconds after the menu choice
	Rating    string    `json:"rating,omitempty"`     // satisfied, basically_satisfied, dissatisfied, not_rated
	AudioOK   *bool     `json:"audio_ok,omitempty"`   // answered: each side heard the other's tone
	Error     string    `json:"error,omitempty"`
}

// WriteTruth writes t as indented JSON to path.
func WriteTruth(path string, t *Truth) error {
	b, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// ReadTruth reads a file written by WriteTruth.
func ReadTruth(path string) (*Truth, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var t Truth
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &t, nil
}

// Sample is one second of a run, for the progress line and the report's plots.
type Sample struct {
	At          Dur     `json:"at"` // since the start
	Active      int     `json:"active"`
	Setups      int     `json:"setups"`    // calls answered by the server in this second
	Failures    int     `json:"failures"`  // calls failed in this second
	SetupP50    Dur     `json:"setup_p50"` // INVITE → 200 of this second's setups
	SetupP99    Dur     `json:"setup_p99"`
	LossPercent float64 `json:"loss_percent"` // RTP loss heard in this second, all calls
	Waiting     int     `json:"waiting"`      // callers in queue
	WaitP50     Dur     `json:"wait_p50"`     // queue waits of the callers connected in this second (after a transfer: the wait since it)
	// The server's resources, where a soak read them (day --soak) in this second.
	ServerRSSMiB     float64 `json:"server_rss_mib,omitempty"`
	ServerGoroutines int     `json:"server_goroutines,omitempty"`
	ServerOpenFDs    int     `json:"server_open_fds,omitempty"`
}
