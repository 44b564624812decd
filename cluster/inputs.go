package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hotline12345/hotline/acd"
)

// The inputs: the same methods, with the same meaning, as acd.ACD's (see its docs).

// Enqueue puts a caller of this node into a queue and returns their position.
func (a *ACD) Enqueue(c acd.Caller) (int, error) {
	return a.enqueue(c, "call")
}

func (a *ACD) enqueue(c acd.Caller, kind string) (pos int, err error) {
	if a.isClosed() {
		return 0, acd.ErrClosed
	}
	q, ok := a.queues[c.Queue]
	if !ok {
		return 0, fmt.Errorf("%w: %q", acd.ErrUnknownQueue, c.Queue)
	}
	if c.CallID == "" {
		return 0, fmt.Errorf("%w: empty CallID", acd.ErrUnknownCall)
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	err = a.decide(ctx, "enqueue", func(d *dtx) error {
		if err := d.refuses(q); err != nil {
			if errors.Is(err, acd.ErrQueueFull) || errors.Is(err, acd.ErrNoAgents) {
				return fmt.Errorf("%w: queue %q", err, q.Name)
			}
			return err
		}
		enq := c.Enqueued
		if enq.IsZero() {
			enq = d.now
		}
		w := &waiting{CallID: c.CallID, Queue: c.Queue, Number: c.Number, Priority: q.PriorityFor(c.Number, c.Priority),
			Enqueued: enq, Node: a.node, Kind: kind}
		// A lost node's caller called back: the callback is now this task.
		if err := d.exec("DELETE FROM cluster_callbacks WHERE queue = $1 AND number = $2 AND enqueued = $3",
			w.Queue, w.Number, w.Enqueued); err != nil {
			return err
		}
		var err error
		pos, err = d.join(w, "", "")
		return err
	})
	return pos, err
}

// Abandon: the caller hung up while waiting or ringing.
func (a *ACD) Abandon(callID string) { a.leave(callID, acd.EvAbandon, "caller-abandoned", "") }

// ExitWithKey: the caller left the queue with the exit digit.
func (a *ACD) ExitWithKey(callID, key string) { a.leave(callID, acd.EvExitKey, "exit-key", key) }

func (a *ACD) leave(callID string, typ acd.EventType, why, key string) {
	a.run("leave", func(d *dtx) error {
		w, err := d.waiting(callID)
		if err != nil || w == nil {
			return err
		}
		return d.exit(w, typ, why, key)
	})
}

// exit takes a caller out of their queue without an agent (abandon, exit key, MaxWait,
// empty), cancelling a ring in progress.
func (d *dtx) exit(w *waiting, typ acd.EventType, why, key string) error {
	pos, err := d.position(w)
	if err != nil {
		return err
	}
	if err := d.exec("DELETE FROM cluster_waiting WHERE call_id = $1", w.CallID); err != nil {
		return err
	}
	if w.Agent != "" {
		if err := d.cancelRing(w, why); err != nil {
			return err
		}
	}
	d.event(w.Node, acd.Event{Type: typ, Queue: w.Queue, CallID: w.CallID,
		Data: acd.EventData{Position: pos, Wait: d.now.Sub(w.Joined), Key: key}})
	col := map[acd.EventType]string{acd.EvAbandon: "abandoned", acd.EvExitKey: "exited_key",
		acd.EvExitTimeout: "timed_out", acd.EvExitEmpty: "exited_empty"}[typ]
	return d.stat(w.Queue, col)
}

// cancelRing withdraws the offer of the agent ringing for w: CancelOffer to the caller's
// node, RINGCANCELED, and the agent back to ready (or their pending pause or logout).
func (d *dtx) cancelRing(w *waiting, why string) error {
	agent := w.Agent
	d.emit(w.Node, output{Kind: outCancel, Offer: acd.Offer{CallID: w.CallID, AgentID: agent, Queue: w.Queue, Attempt: w.Attempt}})
	ring := time.Duration(0)
	if w.Offered != nil {
		ring = d.now.Sub(*w.Offered)
	}
	d.event(w.Node, acd.Event{Type: acd.EvRingCanceled, Queue: w.Queue, CallID: w.CallID, AgentID: agent,
		Data: acd.EventData{Ring: ring, Reason: why}})
	return d.release(agent, 0)
}

// RingAnsweredLeg: the agent answered; false if the offer is stale.
func (a *ACD) RingAnsweredLeg(callID, agentID, leg string) bool {
	answered := false
	a.run("answer", func(d *dtx) error {
		w, err := d.waiting(callID)
		if err != nil || w == nil || w.Agent != agentID {
			return err
		}
		q := a.queues[w.Queue]
		if err := d.exec("DELETE FROM cluster_waiting WHERE call_id = $1", callID); err != nil {
			return err
		}
		wait := d.now.Sub(w.Joined)
		if err := d.transition(agentID, acd.TransConnect, `connected = $2, wait_ms = $3, enqueued = $4`,
			d.now, wait.Milliseconds(), w.Enqueued); err != nil {
			return err
		}
		ring := time.Duration(0)
		if w.Offered != nil {
			ring = d.now.Sub(*w.Offered)
		}
		d.event(w.Node, acd.Event{Type: acd.EvConnect, Queue: w.Queue, CallID: callID, AgentID: agentID,
			Data: acd.EventData{Wait: wait, Ring: ring, Position: w.EntryPos, Leg: leg}})
		if err := d.stat(w.Queue, "answered"); err != nil {
			return err
		}
		if wait <= q.ServiceLevel {
			if err := d.stat(w.Queue, "answered_within"); err != nil {
				return err
			}
		}
		if err := d.exec(`UPDATE cluster_queue_day SET wait_ms_answered = wait_ms_answered + $3 WHERE queue = $1 AND day = $2`,
			w.Queue, d.day, wait.Milliseconds()); err != nil {
			return err
		}
		answered = true
		return nil
	})
	return answered
}

// RingFailed: the offer did not connect; the caller keeps their place, the next agent is
// tried, and this one is auto-paused (no answer, unreachable) or rests.
func (a *ACD) RingFailed(callID, agentID string, why acd.RingFailure) {
	a.run("ring failed", func(d *dtx) error {
		w, err := d.waiting(callID)
		if err != nil || w == nil || w.Agent != agentID {
			return err
		}
		return d.failRing(w, why)
	})
}

func (d *dtx) failRing(w *waiting, why acd.RingFailure) error {
	q := d.a.queues[w.Queue]
	agent := w.Agent
	if err := d.exec("UPDATE cluster_waiting SET agent = '', offered = NULL, ring_until = NULL WHERE call_id = $1", w.CallID); err != nil {
		return err
	}
	ring := time.Duration(0)
	if w.Offered != nil {
		ring = d.now.Sub(*w.Offered)
	}
	d.event(w.Node, acd.Event{Type: acd.EvRingNoAnswer, Queue: w.Queue, CallID: w.CallID, AgentID: agent,
		Data: acd.EventData{Ring: ring, Reason: why.String()}})
	if why != acd.Rejected && *q.AutoPause {
		ag, err := d.agent(agent)
		if err != nil {
			return err
		}
		if ag.Pending == "logout" {
			if err := d.logout(ag, ag.PendingReason); err != nil {
				return err
			}
		} else if err := d.pause(ag, q.AutoPauseReason); err != nil {
			return err
		}
	} else if err := d.release(agent, q.RetryDelay); err != nil {
		return err
	}
	w.Agent, w.Offered = "", nil
	return d.routeCaller(w)
}

// CallEnded: the bridged call ended; the agent goes to wrap-up.
func (a *ACD) CallEnded(callID, agentID, side string) {
	a.run("call ended", func(d *dtx) error {
		ag, err := d.connected(callID, agentID)
		if err != nil || ag == nil {
			return err
		}
		typ := acd.EvCompleteCaller
		if side == "agent" {
			typ = acd.EvCompleteAgent
		}
		return d.endCall(ag, typ, "")
	})
}

// AgentLost: the agent's phone vanished mid-call; after the wrap-up they are paused.
func (a *ACD) AgentLost(callID, agentID string) {
	a.run("agent lost", func(d *dtx) error {
		ag, err := d.connected(callID, agentID)
		if err != nil || ag == nil {
			return err
		}
		if ag.Pending != "logout" {
			ag.Pending, ag.PendingReason = "pause", acd.ReasonAgentLost
		}
		return d.endCall(ag, acd.EvCompleteAgent, acd.ReasonAgentLost)
	})
}

// Transferred: the agent blind-transferred the caller to another queue; the caller keeps
// their place in line.
func (a *ACD) Transferred(callID, fromAgent, toQueue string) (pos int, err error) {
	if _, ok := a.queues[toQueue]; !ok {
		return 0, fmt.Errorf("%w: %q", acd.ErrUnknownQueue, toQueue)
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	err = a.decide(ctx, "transfer", func(d *dtx) error {
		ag, err := d.connected(callID, fromAgent)
		if err != nil {
			return err
		}
		if ag == nil {
			return fmt.Errorf("%w: %q is not connected to %q", acd.ErrUnknownCall, callID, fromAgent)
		}
		from := ag.Queue
		talk := d.now.Sub(*ag.Connected)
		d.event(ag.Node, acd.Event{Type: acd.EvTransfer, Queue: from, CallID: callID, AgentID: ag.ID,
			Data: acd.EventData{Target: toQueue, Wait: time.Duration(ag.WaitMs) * time.Millisecond, Talk: talk}})
		if err := d.stat(from, "transferred"); err != nil {
			return err
		}
		enq := d.now
		if ag.Enqueued != nil {
			enq = *ag.Enqueued
		}
		node := ag.Node
		if err := d.wrapUp(ag, talk); err != nil {
			return err
		}
		pos, err = d.join(&waiting{CallID: callID, Queue: toQueue, Enqueued: enq, Node: node, Kind: "call"}, "transfer", from)
		return err
	})
	return pos, err
}

// Login logs the agent in, ready (nothing if logged in).
func (a *ACD) Login(agentID string) error {
	return a.agentInput("login", agentID, func(d *dtx, ag *agentRow) error {
		if ag.State != acd.AgentLoggedOut {
			return nil
		}
		return d.login(ag)
	})
}

// Ready makes the agent ready: logs in, unpauses, ends a wrap-up or a rest early, cancels a
// pending pause or logout.
func (a *ACD) Ready(agentID string) error {
	return a.agentInput("ready", agentID, func(d *dtx, ag *agentRow) error {
		if err := d.exec("UPDATE cluster_agents SET pending = '', pending_reason = '' WHERE agent = $1", ag.ID); err != nil {
			return err
		}
		ag.Pending, ag.PendingReason = "", ""
		switch ag.State {
		case acd.AgentLoggedOut:
			return d.login(ag)
		case acd.AgentPaused:
			d.event("", acd.Event{Type: acd.EvUnpause, AgentID: ag.ID, Data: acd.EventData{Reason: ag.Reason}})
			return d.ready(ag)
		case acd.AgentWrapUp:
			if err := d.endWrapUp(ag, "ready"); err != nil {
				return err
			}
			return d.ready(ag)
		case acd.AgentReady:
			if err := d.exec("UPDATE cluster_agents SET rest_until = NULL WHERE agent = $1", ag.ID); err != nil {
				return err
			}
			return d.routeAgent(ag.ID)
		}
		return nil
	})
}

// Pause pauses the agent (at once, or after the offer or call in progress).
func (a *ACD) Pause(agentID, reason string) error {
	return a.agentInput("pause", agentID, func(d *dtx, ag *agentRow) error {
		switch ag.State {
		case acd.AgentLoggedOut:
			return fmt.Errorf("%w: %q", acd.ErrNotLoggedIn, agentID)
		case acd.AgentReady, acd.AgentPaused:
			return d.pause(ag, reason)
		case acd.AgentWrapUp:
			if err := d.endWrapUp(ag, "paused"); err != nil {
				return err
			}
			return d.pause(ag, reason)
		}
		return d.exec("UPDATE cluster_agents SET pending = 'pause', pending_reason = $2 WHERE agent = $1", ag.ID, reason)
	})
}

// Logout logs the agent out; a ring is cancelled (the caller keeps their place), a call
// in progress ends first.
func (a *ACD) Logout(agentID, reason string) error {
	return a.agentInput("logout", agentID, func(d *dtx, ag *agentRow) error {
		switch ag.State {
		case acd.AgentReserved:
			w, err := d.waiting(ag.CallID)
			if err != nil {
				return err
			}
			if err := d.logout(ag, reason); err != nil {
				return err
			}
			if w != nil && w.Agent == ag.ID {
				return d.requeue(w, "logout")
			}
			return nil
		case acd.AgentOnCall:
			return d.exec("UPDATE cluster_agents SET pending = 'logout', pending_reason = $2 WHERE agent = $1", ag.ID, reason)
		case acd.AgentWrapUp:
			if err := d.endWrapUp(ag, "logout"); err != nil {
				return err
			}
		}
		return d.logout(ag, reason)
	})
}

// Unreachable: the registrar lost the agent's phone: logged out at once; a ring fails, a
// call in progress is taken as ended.
func (a *ACD) Unreachable(agentID string) {
	err := a.agentInput("unreachable", agentID, func(d *dtx, ag *agentRow) error {
		switch ag.State {
		case acd.AgentReserved:
			w, err := d.waiting(ag.CallID)
			if err != nil {
				return err
			}
			if err := d.logout(ag, acd.ReasonUnreachable); err != nil {
				return err
			}
			if w != nil && w.Agent == ag.ID {
				d.emit(w.Node, output{Kind: outCancel, Offer: acd.Offer{CallID: w.CallID, AgentID: ag.ID, Queue: w.Queue, Attempt: w.Attempt}})
				d.event(w.Node, acd.Event{Type: acd.EvRingNoAnswer, Queue: w.Queue, CallID: w.CallID, AgentID: ag.ID,
					Data: acd.EventData{Reason: acd.ReasonUnreachable}})
				return d.backToWaiting(w)
			}
			return nil
		case acd.AgentOnCall:
			ag.Pending, ag.PendingReason = "logout", acd.ReasonUnreachable
			return d.endCall(ag, acd.EvCompleteAgent, acd.ReasonUnreachable)
		case acd.AgentWrapUp:
			if err := d.endWrapUp(ag, "logout"); err != nil {
				return err
			}
		case acd.AgentLoggedOut:
			return nil
		}
		return d.logout(ag, acd.ReasonUnreachable)
	})
	if err != nil {
		a.log.Debug("cluster acd: unreachable agent", "agent", agentID, "error", err)
	}
}

// requeue withdraws a ring (the agent logged out) and puts the caller back to waiting.
func (d *dtx) requeue(w *waiting, why string) error {
	d.emit(w.Node, output{Kind: outCancel, Offer: acd.Offer{CallID: w.CallID, AgentID: w.Agent, Queue: w.Queue, Attempt: w.Attempt}})
	d.event(w.Node, acd.Event{Type: acd.EvRingCanceled, Queue: w.Queue, CallID: w.CallID, AgentID: w.Agent,
		Data: acd.EventData{Reason: why}})
	return d.backToWaiting(w)
}

func (d *dtx) backToWaiting(w *waiting) error {
	if err := d.exec("UPDATE cluster_waiting SET agent = '', offered = NULL, ring_until = NULL WHERE call_id = $1", w.CallID); err != nil {
		return err
	}
	w.Agent, w.Offered = "", nil
	return d.routeCaller(w)
}

// agentInput runs an agent's input as one decision.
func (a *ACD) agentInput(what, agentID string, f func(d *dtx, ag *agentRow) error) error {
	if a.isClosed() {
		return acd.ErrClosed
	}
	if _, ok := a.wrapUp[agentID]; !ok {
		return fmt.Errorf("%w: %q", acd.ErrUnknownAgent, agentID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	return a.decide(ctx, what, func(d *dtx) error {
		ag, err := d.agent(agentID)
		if err != nil {
			return err
		}
		return f(d, ag)
	})
}

// Position is the caller's place in their queue and the estimated wait.
func (a *ACD) Position(callID string) (pos int, ewt time.Duration, ok bool) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	var (
		queue          string
		step           int
		ringing        bool
		joined         time.Time
		ahtMs          int64
		staffed, ahead int
	)
	err := a.pool.QueryRow(ctx, `SELECT w.queue, w.step, w.agent <> '', w.joined,
		(SELECT count(*) FROM cluster_waiting v WHERE v.queue = w.queue AND (v.rank > w.rank OR (v.rank = w.rank AND (v.enqueued, v.seq) < (w.enqueued, w.seq)))),
		COALESCE((SELECT aht_ms FROM cluster_queue_aht h WHERE h.queue = w.queue), 0),
		(SELECT count(*) FROM cluster_members m JOIN cluster_agents g ON g.agent = m.agent
			WHERE m.queue = w.queue AND m.step <= w.step AND g.state NOT IN ('logged_out', 'paused'))
		FROM cluster_waiting w WHERE w.call_id = $1`, callID).Scan(&queue, &step, &ringing, &joined, &ahead, &ahtMs, &staffed)
	if err != nil {
		if !errors.Is(err, pgx.ErrNoRows) {
			a.log.Warn("cluster acd: position", "call_id", callID, "error", err)
		}
		return 0, 0, false
	}
	pos = ahead + 1
	if ringing {
		return pos, 0, true
	}
	q := a.queues[queue]
	left := time.Duration(-1)
	if q.MaxWait > 0 {
		left = max(q.MaxWait-a.now().Sub(joined), 0)
	}
	if staffed == 0 {
		return pos, max(left, 0), true
	}
	ewt = time.Duration(int64(pos) * ahtMs / int64(staffed) * int64(time.Millisecond))
	if left >= 0 && ewt > left {
		ewt = left
	}
	return pos, ewt, true
}
