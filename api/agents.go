package api

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/hotline12345/hotline/acd"
)

// ACD is the call distributor the API shows and controls.
type ACD interface {
	Agents() []acd.AgentView
	Queues() []acd.QueueView
	Login(agentID string) error
	Ready(agentID string) error
	Pause(agentID, reason string) error
	Logout(agentID, reason string) error
}

// agentJSON is an agent as the API shows it.
type agentJSON struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	State       string    `json:"state"`
	Reason      string    `json:"reason,omitempty"`
	Pending     string    `json:"pending,omitempty"`
	Since       time.Time `json:"since"`
	CallsToday  int       `json:"calls_today"`
	TalkSeconds float64   `json:"talk_seconds_today"`
	CallID      string    `json:"call_id,omitempty"`
	Queue       string    `json:"queue,omitempty"`
}

func toAgentJSON(v acd.AgentView) agentJSON {
	return agentJSON{
		ID: v.ID, Name: v.Name, State: string(v.State), Reason: v.Reason, Pending: v.Pending, Since: v.Since,
		CallsToday: v.CallsToday, TalkSeconds: v.TalkToday.Seconds(), CallID: v.CallID, Queue: v.Queue,
	}
}

func (a *api) agents(w http.ResponseWriter, r *http.Request) {
	views := a.cfg.ACD.Agents()
	out := make([]agentJSON, 0, len(views))
	for _, v := range views {
		out = append(out, toAgentJSON(v))
	}
	writeJSON(w, http.StatusOK, map[string]any{"agents": out})
}

// agent serves GET /api/v1/agents/{id}: one agent (an agent may read itself).
func (a *api) agent(w http.ResponseWriter, r *http.Request) {
	a.writeAgent(w, r.PathValue("id"))
}

// writeAgent answers agent id's view, or 404.
func (a *api) writeAgent(w http.ResponseWriter, id string) {
	for _, v := range a.cfg.ACD.Agents() {
		if v.ID == id {
			writeJSON(w, http.StatusOK, toAgentJSON(v))
			return
		}
	}
	writeError(w, http.StatusNotFound, "unknown agent "+id)
}

// agentAction serves POST /api/v1/agents/{id}/{login|ready|pause|logout}; pause and logout
// take an optional JSON body {"reason": "..."}. ready logs a logged-out agent in first.
func (a *api) agentAction(w http.ResponseWriter, r *http.Request) {
	id, action := r.PathValue("id"), r.PathValue("action")
	var body struct {
		Reason string `json:"reason"`
	}
	if r.Body != nil {
		b, err := io.ReadAll(io.LimitReader(r.Body, 4096))
		if mb := (*http.MaxBytesError)(nil); errors.As(err, &mb) {
			writeTooLarge(w, mb.Limit)
			return
		}
		if err != nil {
			writeError(w, http.StatusBadRequest, "body: "+err.Error())
			return
		}
		if len(strings.TrimSpace(string(b))) > 0 {
			if err := json.Unmarshal(b, &body); err != nil {
				writeError(w, http.StatusBadRequest, `body: want {"reason": "..."}: `+err.Error())
				return
			}
		}
	}
	if body.Reason == "" {
		body.Reason = r.URL.Query().Get("reason")
	}
	var err error
	switch action {
	case "login":
		err = a.cfg.ACD.Login(id)
	case "ready":
		if err = a.cfg.ACD.Ready(id); errors.Is(err, acd.ErrNotLoggedIn) {
			if err = a.cfg.ACD.Login(id); err == nil {
				err = a.cfg.ACD.Ready(id)
			}
		}
	case "pause":
		if body.Reason == "" {
			body.Reason = "break"
		}
		err = a.cfg.ACD.Pause(id, body.Reason)
	case "logout":
		if body.Reason == "" {
			body.Reason = "api"
		}
		err = a.cfg.ACD.Logout(id, body.Reason)
	default:
		writeError(w, http.StatusNotFound, "unknown action "+action+": want login, ready, pause or logout")
		return
	}
	switch {
	case errors.Is(err, acd.ErrUnknownAgent):
		writeError(w, http.StatusNotFound, "unknown agent "+id)
		return
	case errors.Is(err, acd.ErrNotLoggedIn):
		writeError(w, http.StatusConflict, "agent "+id+" is not logged in")
		return
	case err != nil:
		writeError(w, http.StatusConflict, err.Error())
		return
	}
	a.writeAgent(w, id)
}

// queueJSON is a queue as /api/v1/queues shows it. The day's counters are
// per queue visit, as the report's per-queue figures (cdr.Summary): a call
// that overflows or is transferred is offered to both queues; the first
// counts it overflowed (or answered and transferred), the second as it
// ends there.
type queueJSON struct {
	Name                 string          `json:"name"`
	DisplayName          string          `json:"display_name"` // 咨询 for consult; the name if none is configured
	Waiting              int             `json:"waiting"`
	Ringing              int             `json:"ringing"`
	LongestWaitSeconds   float64         `json:"longest_wait_seconds"`
	Agents               acd.AgentCounts `json:"agents"`
	Offered              int             `json:"offered_today"`
	Answered             int             `json:"answered_today"`
	Abandoned            int             `json:"abandoned_today"`
	TimedOut             int             `json:"timed_out_today"`
	ExitedEmpty          int             `json:"exited_empty_today"`
	ExitedKey            int             `json:"exited_key_today"`
	Overflowed           int             `json:"overflowed_today"`  // out, to another queue
	Transferred          int             `json:"transferred_today"` // out, after an agent answered
	AnsweredWithin       int             `json:"answered_within_threshold_today"`
	ServiceLevel         float64         `json:"service_level"`
	ServiceLevelAnswered float64         `json:"service_level_of_answered"`
	ASASeconds           float64         `json:"asa_seconds"`
	EWTSeconds           float64         `json:"ewt_seconds"`
}

func (a *api) queues(w http.ResponseWriter, r *http.Request) {
	views := a.cfg.ACD.Queues()
	out := make([]queueJSON, 0, len(views))
	for _, v := range views {
		name := a.cfg.QueueNames[v.Name]
		if name == "" {
			name = v.Name
		}
		out = append(out, queueJSON{
			Name: v.Name, DisplayName: name, ExitedEmpty: v.ExitedEmpty, ExitedKey: v.ExitedKey, Overflowed: v.Overflowed, Transferred: v.Transferred,
			Waiting: v.Waiting, Ringing: v.Ringing, LongestWaitSeconds: v.LongestWait.Seconds(), Agents: v.Agents,
			Offered: v.Offered, Answered: v.Answered, Abandoned: v.Abandoned, TimedOut: v.TimedOut, AnsweredWithin: v.AnsweredWithin,
			ServiceLevel: v.ServiceLevel, ServiceLevelAnswered: v.ServiceLevelAnswered, ASASeconds: v.ASA.Seconds(), EWTSeconds: v.EWT.Seconds(),
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"queues": out, "timezone": a.cfg.Location.String()})
}
