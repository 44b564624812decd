package call

import (
	"strconv"
	"time"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/cdr"
)

// outbox implements acd.Outbox: the ACD's decisions become events of the call's loop, and
// its queue_log events become agent events in the records.
type outbox struct{ m *Manager }

// Offer asks the caller's loop to ring the agent. A caller that is gone was taken out of
// the ACD (Abandon) before it left, so the offer has been withdrawn already.
func (o outbox) Offer(of acd.Offer) {
	if c := o.m.call(of.CallID); c != nil {
		c.post(evOffer{of})
	}
}

// CancelOffer asks the caller's loop to stop ringing the agent (CANCEL).
func (o outbox) CancelOffer(of acd.Offer) {
	if c := o.m.call(of.CallID); c != nil {
		c.post(evCancelOffer{of})
	}
}

// Left tells a waiting caller that the ACD took it out of the queue.
func (o outbox) Left(callID string, reason acd.ExitReason) {
	if c := o.m.call(callID); c != nil {
		c.post(evLeft{reason})
	}
}

// Event writes the ACD's queue_log-style event to the records.
func (o outbox) Event(e acd.Event) {
	ev := cdr.AgentEvent{
		Time: e.Time, CallID: e.CallID, Queue: e.Queue, AgentID: e.AgentID, Event: string(e.Type), NodeID: o.m.cfg.NodeID,
	}
	d := e.Data
	switch e.Type {
	case acd.EvEnterQueue:
		ev.Data2, ev.Data3 = d.Number, d.Reason
	case acd.EvRingNoAnswer, acd.EvRingCanceled:
		ev.Data1, ev.Data2 = strconv.FormatInt(d.Ring.Milliseconds(), 10), d.Reason
	case acd.EvConnect:
		ev.Data1, ev.Data2, ev.Data3 = cdr.FormatSeconds(d.Wait), d.Leg, strconv.FormatInt(d.Ring.Milliseconds(), 10)
	case acd.EvCompleteCaller, acd.EvCompleteAgent:
		ev.Data1, ev.Data2, ev.Data3 = cdr.FormatSeconds(d.Wait), cdr.FormatSeconds(d.Talk), strconv.Itoa(d.Position)
		if d.Reason == acd.ReasonUnreachable { // the ACD took the call as ended: so must the call
			if c := o.m.call(e.CallID); c != nil {
				c.post(evAgentGone{agent: e.AgentID})
			}
		}
	case acd.EvAbandon, acd.EvExitTimeout, acd.EvExitEmpty:
		ev.Data1, ev.Data3 = strconv.Itoa(d.Position), cdr.FormatSeconds(d.Wait)
	case acd.EvExitKey:
		ev.Data1, ev.Data2, ev.Data4 = d.Key, strconv.Itoa(d.Position), cdr.FormatSeconds(d.Wait)
	case acd.EvTransfer, acd.EvOverflow:
		ev.Data1, ev.Data3, ev.Data4 = d.Target, cdr.FormatSeconds(d.Wait), cdr.FormatSeconds(d.Talk)
		if c := o.m.call(e.CallID); c != nil && e.Type == acd.EvOverflow {
			c.post(evOverflow{target: d.Target})
		}
	case acd.EvLogin:
		ev.Data1 = o.m.contact(e.AgentID)
	case acd.EvLogout:
		ev.Data1, ev.Data2 = d.Reason, cdr.FormatSeconds(d.LoggedIn)
	case acd.EvWrapUpEnd:
		ev.Data1 = cdr.FormatSeconds(d.WrapUp)
	default:
		ev.Data1 = d.Reason
	}
	o.m.cfg.Records.Event(ev)
}

// contact is the agent's registered phone, for the LOGIN event.
func (m *Manager) contact(agent string) string {
	if p, ok := m.phones.(interface{ Contact(string) string }); ok {
		return p.Contact(agent)
	}
	return ""
}

// agentEvent writes an event the call itself decides (HOLD, UNHOLD).
func (m *Manager) agentEvent(t time.Time, callID, queue, agent, event, data1 string) {
	m.cfg.Records.Event(cdr.AgentEvent{Time: t, CallID: callID, Queue: queue, AgentID: agent, Event: event, Data1: data1, NodeID: m.cfg.NodeID})
}
