package cdr

import (
	"bytes"
	"encoding/json"
	"errors"
	"time"
)

// Kinds of Handoff.
const (
	HandoffTransfer   = "transfer"   // the agent's blind transfer (REFER) to a directory entry
	HandoffConference = "conference" // a three-way call: the department joined citizen and agent
)

// Handoff is one transfer or three-way call of a call to a directory entry (a departmental
// hotline or office, 一号对外). Outcome is the dial's: answered, busy, no-answer, failed,
// invalid-number, or closed (outside the entry's hours: nothing dialled).
type Handoff struct {
	Kind     string    `json:"kind"`
	Entry    string    `json:"entry"`  // the directory entry's name
	Number   string    `json:"number"` // the number dialled
	Trunk    string    `json:"trunk"`  // the outbound trunk
	Agent    string    `json:"agent"`  // the agent who asked for it
	At       time.Time `json:"at"`     // when the agent asked
	Answered time.Time `json:"answered,omitzero"`
	Outcome  string    `json:"outcome"`
	// AgentLeft is when the agent dropped out of a three-way call, leaving citizen and
	// department talking; zero if the agent stayed to the end.
	AgentLeft time.Time `json:"agent_left,omitzero"`
	Status    int       `json:"sip_status,omitempty"` // the department's final SIP status, if not 200
}

// Handoffs is a record's handoffs as their stored text, a JSON array ("" for none). It is
// text so that Record stays comparable; in JSON it is the array itself.
type Handoffs string

// List decodes the handoffs; text that does not parse reads as none.
func (h Handoffs) List() []Handoff {
	if h == "" {
		return nil
	}
	var hs []Handoff
	if json.Unmarshal([]byte(h), &hs) != nil {
		return nil
	}
	return hs
}

// MakeHandoffs encodes hs (nil or empty: "").
func MakeHandoffs(hs []Handoff) Handoffs {
	if len(hs) == 0 {
		return ""
	}
	b, err := json.Marshal(hs)
	if err != nil {
		return ""
	}
	return Handoffs(b)
}

// MarshalJSON writes the array itself (null for none).
func (h Handoffs) MarshalJSON() ([]byte, error) {
	if h == "" {
		return []byte("null"), nil
	}
	return []byte(h), nil
}

// UnmarshalJSON takes an array of handoffs (or null).
func (h *Handoffs) UnmarshalJSON(b []byte) error {
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		*h = ""
		return nil
	}
	var hs []Handoff
	if err := json.Unmarshal(b, &hs); err != nil {
		return errors.Join(errors.New("cdr: handoffs"), err)
	}
	*h = MakeHandoffs(hs)
	return nil
}
