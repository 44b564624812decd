package call

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/hotline12345/hotline/sip"
)

// Feature codes of supervisors: *25<agent> listen, *26<agent> whisper, *27<agent> barge
// into the agent's live call from the supervisor's own phone. During the session the
// supervisor's keys 5, 6 and 7 switch to listen, whisper and barge.
const (
	CodeListen  = "*25"
	CodeWhisper = "*26"
	CodeBarge   = "*27"
)

// Requests to the call's loop, answered on reply.
type (
	evMonitor struct {
		sup, mode string
		leg       *supervisorLeg // the supervisor dialled in (feature code); nil: ring their phone
		s         Stream
		reply     chan error
	}
	evStopMonitor struct{ reply chan error }
)

// supervisorLeg is the supervisor's own call (a feature code) as a party's leg: the
// handler that received it waits until the call lets it go (Release).
type supervisorLeg struct {
	*sip.Inbound
	once     sync.Once
	released chan struct{}
}

func (l *supervisorLeg) Release() { l.once.Do(func() { close(l.released) }) }

// IsSupervisor reports whether the agent may monitor calls.
func (m *Manager) IsSupervisor(agent string) bool {
	for _, s := range m.cfg.Supervisors {
		if s == agent {
			return true
		}
	}
	return false
}

// Monitor puts a supervisor on the call callID in mode (listen, whisper, barge): their
// registered phone is rung, and once they answer they are mixed in. With the supervisor
// already on the call it switches the mode. It returns when the call's loop has taken
// the request (the ring goes on after).
func (m *Manager) Monitor(callID, supervisor, mode string) error {
	if !validMode(mode) {
		return ErrBadMode
	}
	if !m.IsSupervisor(supervisor) {
		return ErrNotSupervisor
	}
	reply := make(chan error, 1)
	return m.ask(callID, evMonitor{sup: supervisor, mode: mode, reply: reply}, reply)
}

// StopMonitor hangs up the supervisor of the call.
func (m *Manager) StopMonitor(callID string) error {
	reply := make(chan error, 1)
	return m.ask(callID, evStopMonitor{reply: reply}, reply)
}

// ask posts a request to a live call's loop and waits for its answer.
func (m *Manager) ask(callID string, ev any, reply chan error) error {
	c := m.call(callID)
	if c == nil || !c.box.post(ev) {
		return ErrNoCall
	}
	t := time.NewTimer(askTimeout)
	defer t.Stop()
	select {
	case err := <-reply:
		return err
	case <-c.ctx.Done():
		return ErrNoCall
	case <-t.C:
		return ErrNoCall
	}
}

// askTimeout bounds the wait for a call's loop to answer a request (it answers at once).
const askTimeout = 5 * time.Second

func validMode(mode string) bool {
	return mode == ModeListen || mode == ModeWhisper || mode == ModeBarge
}

// monitor is the loop's side of Monitor and of the feature codes.
func (c *Call) monitor(e evMonitor) error {
	refuse := func(err error) error {
		if e.leg != nil {
			c.spawn(func() { discard(e.leg, e.s, "monitor refused") })
		}
		return err
	}
	if !c.bridged() {
		return refuse(ErrNotTalking)
	}
	if _, ok := c.m.media.(mixerMedia); !ok {
		return refuse(ErrNoMixing)
	}
	if e.sup == c.agent.id {
		return refuse(ErrNotSupervisor) // nobody monitors their own call
	}
	cf := c.confState()
	cur := cf.sup
	if cur == nil {
		cur = cf.supRing
	}
	if cur != nil && cur.id != e.sup {
		return refuse(ErrMonitorBusy)
	}
	if cur != nil && cur.id == e.sup && e.leg != nil {
		return refuse(ErrMonitorBusy) // already on the call from another leg
	}
	if cf.mode != e.mode {
		cf.mode = e.mode
		c.remix()
		if cf.sup != nil {
			c.publish()
			c.log.Info("supervisor switched mode", "supervisor", e.sup, "mode", e.mode)
			c.m.agentEvent(c.m.cfg.Clock.Now(), c.id, c.agent.queue, e.sup, EventMonitor, e.mode)
		}
	}
	switch {
	case cur != nil: // a mode switch
	case e.leg != nil:
		c.joinSupervisor(c.newParty(partySupervisor, e.sup), e.leg, e.s)
	default:
		c.ringSupervisor(e.sup)
	}
	return nil
}

func (c *Call) stopMonitor() error {
	cf := c.conf
	if cf == nil || (cf.sup == nil && cf.supRing == nil) {
		return ErrNoMonitor
	}
	c.dropSupervisor("monitor ended", true)
	return nil
}

// partyKey: keys 5, 6, 7 from the supervisor's phone switch listen, whisper, barge.
func (c *Call) partyKey(p *party, d rune) {
	cf := c.conf
	if cf == nil || cf.sup != p || c.agent == nil {
		return
	}
	mode := map[rune]string{'5': ModeListen, '6': ModeWhisper, '7': ModeBarge}[d]
	if mode == "" || mode == cf.mode {
		return
	}
	c.monitor(evMonitor{sup: p.id, mode: mode})
}

// monitorByCode serves a supervisor's feature code (*25/*26/*27 followed by the agent's
// id) dialled from their own phone: the call becomes the supervisor's leg on the agent's
// live call. It returns when the supervisor has left.
func (m *Manager) monitorByCode(leg *sip.Inbound, mode, agent string) {
	sup := leg.Agent()
	log := m.log.With("supervisor", sup, "agent", agent, "mode", mode, "sip_call_id", leg.SIPCallID())
	if !m.IsSupervisor(sup) {
		log.Info("monitor refused: not a supervisor")
		leg.Reject(403, "Forbidden")
		return
	}
	c := m.callOfAgent(agent)
	if c == nil {
		log.Info("monitor refused: the agent has no live call")
		leg.Reject(404, "Not Found")
		return
	}
	s, err := m.media.NewStream(log)
	if err != nil {
		leg.Reject(503, "Service Unavailable")
		return
	}
	ctx, cancel := context.WithTimeout(c.ctx, 20*time.Second)
	_, err = leg.Answer(ctx, s.LocalAddr())
	cancel()
	if err != nil {
		s.Close()
		return
	}
	sl := &supervisorLeg{Inbound: leg, released: make(chan struct{})}
	reply := make(chan error, 1)
	if err := m.ask(c.id, evMonitor{sup: sup, mode: mode, leg: sl, s: s, reply: reply}, reply); err != nil {
		log.Info("monitor refused", "error", err)
		if err == ErrNoCall { // the loop never took the leg
			discard(sl, s, "no call")
		}
	} else {
		log.Info("supervisor monitors the call by feature code", "call_id", c.id)
	}
	<-sl.released // the call's loop lets the leg go (hangs up or saw it end)
}

// callOfAgent finds the live call the agent is talking on.
func (m *Manager) callOfAgent(agent string) *Call {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range m.live {
		if v := c.view.Load(); v != nil && v.Agent == agent && v.Stage == StageTalking {
			return c
		}
	}
	return nil
}

// supervisorCode parses a feature code *25<agent>, *26<agent> or *27<agent>.
func supervisorCode(code string) (mode, agent string, ok bool) {
	for _, fc := range []struct{ code, mode string }{{CodeListen, ModeListen}, {CodeWhisper, ModeWhisper}, {CodeBarge, ModeBarge}} {
		if rest, found := strings.CutPrefix(code, fc.code); found && rest != "" {
			return fc.mode, rest, true
		}
	}
	return "", "", false
}
