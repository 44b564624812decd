package call

import (
	"context"
	"errors"
	"strconv"
	"time"

	sipgosip "github.com/emiago/sipgo/sip"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/cdr"
	"github.com/hotline12345/hotline/media"
	"github.com/hotline12345/hotline/sip"
)

// Directory finds where an agent's softphone is registered (the registrar).
type Directory interface {
	Bindings(user string) []sip.Binding
}

// Dialer places outbound legs (the SIP server).
type Dialer interface {
	Dial(ctx context.Context, o sip.DialOptions) (*sip.Outbound, error)
}

// agentLeg is an answered call to an agent's softphone, with its own RTP session.
type agentLeg struct {
	id    string
	queue string // the queue the ACD offered the caller from (after an overflow, not the one joined)
	out   *sip.Outbound
	sess  *media.Session
	ctx   context.Context
	close context.CancelFunc // ends the agent's RTP session
	rung  time.Time
}

// hangup ends the agent leg with BYE (if still up) and frees its media.
func (a *agentLeg) hangup(ctx context.Context, cause string) {
	a.out.Hangup(ctx, cause) // nothing more to do if the BYE fails: the leg is gone either way
	a.out.Release()
	a.close()
	a.sess.Close()
}

type ringKey struct{ callID, agentID string }

// outbox implements acd.Outbox for the Manager.
type outbox struct{ m *Manager }

// Offer rings the agent for the caller, off the ACD's delivery goroutine.
func (o outbox) Offer(of acd.Offer) { go o.m.ringAgent(of) }

// CancelOffer stops ringing (CANCEL) if the ring is still in progress.
func (o outbox) CancelOffer(of acd.Offer) {
	o.m.mu.Lock()
	cancel := o.m.rings[ringKey{of.CallID, of.AgentID}]
	o.m.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// Left tells a waiting caller that the ACD took it out of the queue.
func (o outbox) Left(callID string, reason acd.ExitReason) {
	if c := o.m.call(callID); c != nil {
		select {
		case c.exit <- reason:
		default:
		}
	}
}

// Event writes the ACD's queue_log-style event to the records.
func (o outbox) Event(e acd.Event) {
	secs := func(d time.Duration) string { return strconv.Itoa(int(d.Round(time.Second) / time.Second)) }
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
		ev.Data1, ev.Data3 = secs(d.Wait), strconv.FormatInt(d.Ring.Milliseconds(), 10)
	case acd.EvCompleteCaller, acd.EvCompleteAgent:
		ev.Data1, ev.Data2, ev.Data3 = secs(d.Wait), secs(d.Talk), strconv.Itoa(d.Position)
	case acd.EvAbandon, acd.EvExitTimeout, acd.EvExitEmpty:
		ev.Data1, ev.Data3 = strconv.Itoa(d.Position), secs(d.Wait)
	case acd.EvExitKey:
		ev.Data2, ev.Data4 = strconv.Itoa(d.Position), secs(d.Wait)
	case acd.EvTransfer, acd.EvOverflow:
		ev.Data1, ev.Data3, ev.Data4 = d.Target, secs(d.Wait), secs(d.Talk)
	default:
		ev.Data1 = d.Reason
	}
	o.m.cfg.Records.Event(ev)
}

// ringAgent places the INVITE to the agent's softphone and reports the outcome to the ACD.
func (m *Manager) ringAgent(of acd.Offer) {
	c := m.call(of.CallID)
	if c == nil || c.ctx == nil {
		m.acd.RingFailed(of.CallID, of.AgentID, acd.Unreachable)
		return
	}
	log := c.log.With("agent", of.AgentID)
	binds := m.dir.Bindings(of.AgentID)
	if len(binds) == 0 {
		log.Info("agent has no registered phone")
		m.acd.RingFailed(of.CallID, of.AgentID, acd.Unreachable)
		return
	}
	conn, err := m.cfg.Ports.Listen()
	if err != nil {
		// Our fault, not the agent's: Rejected rests the agent briefly instead of pausing it.
		log.Error("no RTP port for the agent leg", "error", err)
		m.acd.RingFailed(of.CallID, of.AgentID, acd.Rejected)
		return
	}
	sess := media.NewSession(media.SessionConfig{Conn: conn, Scheduler: m.cfg.Scheduler, Timeout: m.cfg.RTPTimeout, Logger: log})
	ringCtx, cancelRing := context.WithCancel(c.ctx)
	key := ringKey{of.CallID, of.AgentID}
	m.mu.Lock()
	m.rings[key] = cancelRing
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.rings, key)
		m.mu.Unlock()
		cancelRing()
	}()

	b := binds[0]
	caller := c.callerMedia()
	codecs := []uint8{caller, sip.PayloadPCMA}
	if caller == sip.PayloadPCMA {
		codecs[1] = sip.PayloadPCMU
	}
	c.mu.Lock()
	c.rec.RingAttempts++
	number, queue := c.rec.Caller, c.rec.Queue
	c.mu.Unlock()
	rung := time.Now()
	c.swapStage(StageQueued, StageRinging)
	defer c.swapStage(StageRinging, StageQueued) // unless the call moved on (talking, ended)
	out, err := m.dialer.Dial(ringCtx, sip.DialOptions{
		Target: b.Contact, Destination: b.Source, Transport: b.Transport,
		FromUser: number, AssertedID: number, ToUser: of.AgentID,
		Local: sess.LocalAddr(), Codecs: codecs,
		Headers: []sipgosip.Header{sipgosip.NewHeader("X-Hotline-Queue", queue), sipgosip.NewHeader("X-Hotline-Call-ID", c.id)},
	})
	if err != nil {
		sess.Close()
		log.Warn("dialling the agent failed", "error", err)
		m.acd.RingFailed(of.CallID, of.AgentID, acd.Rejected) // a local failure: do not pause the agent
		return
	}
	werr := out.Wait()
	var de *sip.DialError
	switch {
	case werr == nil:
	case errors.Is(werr, sip.ErrDialCanceled):
		sess.Close() // the ACD cancelled: ring timeout, caller left or another agent won
		return
	case errors.As(werr, &de) && (de.Code == 486 || de.Code == 600 || de.Code == 603):
		sess.Close()
		log.Info("agent rejected the call", "status", de.Code)
		m.acd.RingFailed(of.CallID, of.AgentID, acd.Rejected)
		return
	default:
		sess.Close()
		log.Info("agent unreachable", "error", werr)
		m.acd.RingFailed(of.CallID, of.AgentID, acd.Unreachable)
		return
	}
	if !m.acd.RingAnswered(of.CallID, of.AgentID) {
		// Stale: the caller left or another agent answered first.
		out.Hangup(context.WithoutCancel(c.ctx), "answered elsewhere")
		out.Release()
		sess.Close()
		return
	}
	am := out.Media()
	agentCtx, closeAgent := context.WithCancel(context.WithoutCancel(c.ctx))
	setRemote(sess, am)
	sess.Start(agentCtx)
	leg := &agentLeg{id: of.AgentID, queue: of.Queue, out: out, sess: sess, ctx: agentCtx, close: closeAgent, rung: rung}
	select {
	case c.agent <- leg:
	case <-c.ctx.Done(): // the caller hung up at that very moment
		leg.hangup(context.WithoutCancel(c.ctx), "caller gone")
		m.acd.CallEnded(of.CallID, of.AgentID, sip.SideCaller)
	}
}

// callerMedia is the caller's payload type, offered first to the agent to avoid transcoding.
func (c *Call) callerMedia() uint8 {
	return c.leg.Media().PayloadType
}
