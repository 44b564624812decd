package api

import (
	"errors"
	"net/http"

	"github.com/hotline12345/hotline/auth"
	"github.com/hotline12345/hotline/call"
)

// CallControl acts on live calls: a supervisor listening, whispering or barging in, and
// an agent's three-way call with a directory entry (call.Manager).
type CallControl interface {
	Monitor(callID, supervisor, mode string) error
	StopMonitor(callID string) error
	Conference(callID, entry, agent string) error
	LeaveConference(callID, agent string) error
}

// controlRoutes serves:
//
//	POST   /api/v1/calls/{call}/monitor    {"mode": "listen|whisper|barge", "supervisor": "1010"}  supervisor role
//	PATCH  /api/v1/calls/{call}/monitor    {"mode": ...}: switch the mode                          supervisor role
//	DELETE /api/v1/calls/{call}/monitor    the supervisor leaves                                   supervisor role
//	POST   /api/v1/calls/{call}/conference {"entry": "12315"}: three-way call                      the call's agent, or supervisor role
//	DELETE /api/v1/calls/{call}/conference the agent drops out (citizen and department go on)      the call's agent, or supervisor role
//
// All answer 202 once the call has taken the request (rings and dials go on after), and are audited.
func (a *api) controlRoutes(mux *http.ServeMux) {
	if a.cfg.Control == nil {
		return
	}
	sup := access{min: auth.Supervisor}
	own := access{min: auth.Supervisor, agent: true} // an agent: only its own call (checked by the call)
	a.route(mux, "POST /api/v1/calls/{call}/monitor", sup, a.monitor)
	a.route(mux, "PATCH /api/v1/calls/{call}/monitor", sup, a.monitor)
	a.route(mux, "DELETE /api/v1/calls/{call}/monitor", sup, func(w http.ResponseWriter, r *http.Request) {
		a.controlResult(w, r, a.cfg.Control.StopMonitor(r.PathValue("call")), nil)
	})
	a.route(mux, "POST /api/v1/calls/{call}/conference", own, func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Entry string `json:"entry"`
		}
		if !readJSON(w, r, &body) {
			return
		}
		if body.Entry == "" {
			writeError(w, http.StatusBadRequest, "entry: required (a directory entry's name)")
			return
		}
		err := a.cfg.Control.Conference(r.PathValue("call"), body.Entry, principalOf(r).AgentID)
		a.controlResult(w, r, err, map[string]string{"entry": body.Entry})
	})
	a.route(mux, "DELETE /api/v1/calls/{call}/conference", own, func(w http.ResponseWriter, r *http.Request) {
		a.controlResult(w, r, a.cfg.Control.LeaveConference(r.PathValue("call"), principalOf(r).AgentID), nil)
	})
}

func (a *api) monitor(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Mode       string `json:"mode"`
		Supervisor string `json:"supervisor"`
	}
	if !readJSON(w, r, &body) {
		return
	}
	if body.Supervisor == "" {
		writeError(w, http.StatusBadRequest, "supervisor: required (the agent id of a supervisor, whose phone is rung)")
		return
	}
	err := a.cfg.Control.Monitor(r.PathValue("call"), body.Supervisor, body.Mode)
	a.controlResult(w, r, err, map[string]string{"mode": body.Mode, "supervisor": body.Supervisor})
}

// controlResult answers 202 with out and the call's id, or the error's status.
func (a *api) controlResult(w http.ResponseWriter, r *http.Request, err error, out map[string]string) {
	if err == nil {
		if out == nil {
			out = map[string]string{}
		}
		out["call"] = r.PathValue("call")
		writeJSON(w, http.StatusAccepted, out)
		return
	}
	status := http.StatusConflict
	switch {
	case errors.Is(err, call.ErrNoCall), errors.Is(err, call.ErrUnknownEntry), errors.Is(err, call.ErrNoMonitor):
		status = http.StatusNotFound
	case errors.Is(err, call.ErrBadMode):
		status = http.StatusBadRequest
	case errors.Is(err, call.ErrNotSupervisor), errors.Is(err, call.ErrNotYourCall):
		status = http.StatusForbidden
	case errors.Is(err, call.ErrNoMixing):
		status = http.StatusNotImplemented
	}
	writeError(w, status, err.Error())
}
