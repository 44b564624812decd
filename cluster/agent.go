package cluster

import (
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hotline12345/hotline/acd"
)

// agentRow is a row of cluster_agents.
type agentRow struct {
	ID, Name, Reason, Pending, PendingReason, CallID, Queue, Node string
	State                                                         acd.AgentState
	Since                                                         time.Time
	LoginAt, Connected, Ended, Enqueued, WrapUntil, RestUntil     *time.Time
	WaitMs, TalkMs                                                int64
}

const agentCols = `agent, name, state, reason, pending, pending_reason, call_id, queue, node_id, since, login_at,
	connected, ended, enqueued, wrap_until, rest_until, wait_ms, talk_ms`

func scanAgent(row pgx.Row) (*agentRow, error) {
	var ag agentRow
	var st string
	err := row.Scan(&ag.ID, &ag.Name, &st, &ag.Reason, &ag.Pending, &ag.PendingReason, &ag.CallID, &ag.Queue, &ag.Node,
		&ag.Since, &ag.LoginAt, &ag.Connected, &ag.Ended, &ag.Enqueued, &ag.WrapUntil, &ag.RestUntil, &ag.WaitMs, &ag.TalkMs)
	ag.State = acd.AgentState(st)
	return &ag, err
}

func (d *dtx) agent(id string) (*agentRow, error) {
	ag, err := scanAgent(d.tx.QueryRow(d.ctx, "SELECT "+agentCols+" FROM cluster_agents WHERE agent = $1", id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%w: %q", acd.ErrUnknownAgent, id)
	}
	return ag, err
}

// transition moves the agent through the acd state machine (looplab/fsm): the change is
// refused unless the machine allows it from the stored state. set adds columns ($2...).
func (d *dtx) transition(id, trans, set string, args ...any) error {
	var st string
	if err := d.tx.QueryRow(d.ctx, "SELECT state FROM cluster_agents WHERE agent = $1", id).Scan(&st); err != nil {
		return err
	}
	next, err := acd.Transition(acd.AgentState(st), trans)
	if err != nil {
		return fmt.Errorf("cluster: agent %s: %s from %s: %w", id, trans, st, err)
	}
	q := "UPDATE cluster_agents SET state = '" + string(next) + "', since = $" + fmt.Sprint(len(args)+2)
	if set != "" {
		q += ", " + set
	}
	return d.exec(q+" WHERE agent = $1", append(append([]any{id}, args...), d.now)...)
}

func (d *dtx) login(ag *agentRow) error {
	if err := d.transition(ag.ID, acd.TransLogin, "login_at = $2, reason = '', rest_until = NULL", d.now); err != nil {
		return err
	}
	d.event("", acd.Event{Type: acd.EvLogin, AgentID: ag.ID})
	return d.becomeReady(ag.ID)
}

// ready makes a paused, wrapping-up or reserved agent ready and routes them.
func (d *dtx) ready(ag *agentRow) error {
	if err := d.transition(ag.ID, acd.TransReady, "reason = '', rest_until = NULL, call_id = '', queue = '', node_id = ''"); err != nil {
		return err
	}
	return d.becomeReady(ag.ID)
}

func (d *dtx) becomeReady(id string) error {
	if err := d.exec("UPDATE cluster_agents SET idle_since = $2 WHERE agent = $1", id, d.now); err != nil {
		return err
	}
	return d.routeAgent(id)
}

func (d *dtx) pause(ag *agentRow, reason string) error {
	if ag.State == acd.AgentPaused {
		return d.exec("UPDATE cluster_agents SET reason = $2 WHERE agent = $1", ag.ID, reason)
	}
	if err := d.transition(ag.ID, acd.TransPause, "reason = $2, pending = '', pending_reason = '', call_id = '', queue = '', node_id = '', rest_until = NULL", reason); err != nil {
		return err
	}
	d.event("", acd.Event{Type: acd.EvPause, AgentID: ag.ID, Data: acd.EventData{Reason: reason}})
	return nil
}

func (d *dtx) logout(ag *agentRow, reason string) error {
	if ag.State == acd.AgentLoggedOut {
		return nil
	}
	if err := d.transition(ag.ID, acd.TransLogout, "reason = $2, pending = '', pending_reason = '', call_id = '', queue = '', node_id = '', rest_until = NULL, wrap_until = NULL", reason); err != nil {
		return err
	}
	var in time.Duration
	if ag.LoginAt != nil {
		in = d.now.Sub(*ag.LoginAt)
	}
	d.event("", acd.Event{Type: acd.EvLogout, AgentID: ag.ID, Data: acd.EventData{Reason: reason, LoggedIn: in}})
	return nil
}

// release ends a reservation that did not connect: the agent's pending logout or pause
// applies, else they are ready again (resting for rest, if > 0) and routed.
func (d *dtx) release(id string, rest time.Duration) error {
	ag, err := d.agent(id)
	if err != nil {
		return err
	}
	switch ag.Pending {
	case "logout":
		return d.logout(ag, ag.PendingReason)
	case "pause":
		return d.pause(ag, ag.PendingReason)
	}
	if err := d.transition(id, acd.TransReady, "call_id = '', queue = '', node_id = ''"); err != nil {
		return err
	}
	if rest > 0 { // shown ready, not offered until the tick ends the rest
		return d.exec("UPDATE cluster_agents SET rest_until = $2 WHERE agent = $1", id, d.now.Add(rest))
	}
	return d.becomeReady(id)
}

// connected is the agent bridged to callID (agentID, unless empty), nil if stale.
func (d *dtx) connected(callID, agentID string) (*agentRow, error) {
	q := "SELECT " + agentCols + " FROM cluster_agents WHERE call_id = $1 AND state = 'on_call'"
	args := []any{callID}
	if agentID != "" {
		q += " AND agent = $2"
		args = append(args, agentID)
	}
	ag, err := scanAgent(d.tx.QueryRow(d.ctx, q, args...))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return ag, err
}

// endCall ends a bridged call: COMPLETECALLER or COMPLETEAGENT, the day's counters, and the
// agent to wrap-up (or straight to a pending logout).
func (d *dtx) endCall(ag *agentRow, typ acd.EventType, reason string) error {
	talk := time.Duration(0)
	if ag.Connected != nil {
		talk = d.now.Sub(*ag.Connected)
	}
	d.event(ag.Node, acd.Event{Type: typ, Queue: ag.Queue, CallID: ag.CallID, AgentID: ag.ID,
		Data: acd.EventData{Wait: time.Duration(ag.WaitMs) * time.Millisecond, Talk: talk, Reason: reason}})
	return d.wrapUp(ag, talk)
}

// wrapUp counts the call and starts the wrap-up: the tick ends it at wrap_until.
func (d *dtx) wrapUp(ag *agentRow, talk time.Duration) error {
	if err := d.exec(`UPDATE cluster_agents SET
		calls_day = CASE WHEN day = $2 THEN calls_day + 1 ELSE 1 END,
		talk_ms_day = CASE WHEN day = $2 THEN talk_ms_day + $3 ELSE $3 END, day = $2, talk_ms = $3
		WHERE agent = $1`, ag.ID, d.day, talk.Milliseconds()); err != nil {
		return err
	}
	q := d.a.queues[ag.Queue]
	wrap := max(q.WrapUp, 0)
	if w := d.a.wrapUp[ag.ID]; w != nil {
		wrap = *w
	}
	if err := d.transition(ag.ID, acd.TransComplete, "ended = $2, wrap_until = $3", d.now, d.now.Add(wrap)); err != nil {
		return err
	}
	ag.State, ag.Ended, ag.TalkMs = acd.AgentWrapUp, &d.now, talk.Milliseconds()
	if ag.Pending == "logout" {
		if err := d.endWrapUp(ag, "logout"); err != nil {
			return err
		}
		return d.logout(ag, ag.PendingReason)
	}
	if wrap <= 0 {
		return d.wrapUpOver(ag)
	}
	return nil
}

// wrapUpOver: the wrap-up's time is up (or there was none): the pending pause applies,
// else the agent is ready.
func (d *dtx) wrapUpOver(ag *agentRow) error {
	if err := d.endWrapUp(ag, ""); err != nil {
		return err
	}
	if ag.Pending == "pause" {
		ag.State = acd.AgentWrapUp
		return d.pause(ag, ag.PendingReason)
	}
	return d.ready(ag)
}

// endWrapUp writes WRAPUPEND with the actual wrap-up and samples the queue's handle time.
func (d *dtx) endWrapUp(ag *agentRow, why string) error {
	var wrap time.Duration
	if ag.Ended != nil {
		wrap = d.now.Sub(*ag.Ended)
	}
	d.event("", acd.Event{Type: acd.EvWrapUpEnd, Queue: ag.Queue, CallID: ag.CallID, AgentID: ag.ID,
		Data: acd.EventData{Reason: why, WrapUp: wrap}})
	handle := time.Duration(ag.TalkMs)*time.Millisecond + wrap
	// The handle time's moving average (acd's EWT): the first samples averaged with the
	// default, then α = 0.1.
	return d.exec(`UPDATE cluster_queue_aht SET
		aht_ms = CASE WHEN samples < 9 THEN (aht_ms * (samples + 1) + $2) / (samples + 2) ELSE (aht_ms * 9 + $2) / 10 END,
		samples = samples + 1 WHERE queue = $1`, ag.Queue, handle.Milliseconds())
}
