package call

import (
	"fmt"
	"time"

	"github.com/hotline12345/hotline/cdr"
	"github.com/hotline12345/hotline/ivr"
	"github.com/hotline12345/hotline/sip"
)

// DirEntry is a departmental hotline or office of the directory (一号对外): agents
// blind-transfer citizens to it (REFER to sip:<name>@…) or add it to a three-way call
// (Manager.Conference, or *3<n> from the agent's phone: the n-th entry). It is dialled
// through its outbound trunk; nothing outside the directory is ever dialled for an agent.
type DirEntry struct {
	Name, Number, Trunk string
	Hours               []ivr.Hours // empty: always open
	Timezone            string
}

// open reports whether the entry takes calls at now.
func (e DirEntry) open(now time.Time) bool {
	r := ivr.Route{Hours: e.Hours, Timezone: e.Timezone}
	return r.Open(now)
}

// dtmfStream is a stream that sends RFC 4733 events (media.Session).
type dtmfStream interface {
	SendDTMF(digit rune, d time.Duration) error
}

// CodeConference is the key sequence an agent presses during a call to add the n-th
// directory entry (1-9) to a three-way call: *3 then the digit, e.g. *31.
const CodeConference = "*3"

// Requests to the call's loop.
type (
	evConference struct {
		entry, agent string // agent: the agent who asked ("" from the API: the bridged one)
		reply        chan error
	}
	evLeave struct {
		agent string
		reply chan error
	}
)

// entry finds a directory entry by name, or failing that by number.
func (m *Manager) entry(name string) (DirEntry, bool) {
	for _, e := range m.cfg.Directory {
		if e.Name == name {
			return e, true
		}
	}
	for _, e := range m.cfg.Directory {
		if e.Number == name {
			return e, true
		}
	}
	return DirEntry{}, false
}

// Conference dials the directory entry into the call callID for a three-way call with the
// citizen and the agent. It returns once the call's loop has started the dial.
// agent, if set, must be the call's agent (an agent may conference only its own call).
func (m *Manager) Conference(callID, entry, agent string) error {
	if _, ok := m.entry(entry); !ok {
		return ErrUnknownEntry
	}
	reply := make(chan error, 1)
	return m.ask(callID, evConference{entry: entry, agent: agent, reply: reply}, reply)
}

// LeaveConference takes the agent out of the three-way call: citizen and department go
// on talking; the agent's leg is hung up and wraps up.
// agent, if set, must be the call's agent.
func (m *Manager) LeaveConference(callID, agent string) error {
	reply := make(chan error, 1)
	return m.ask(callID, evLeave{agent: agent, reply: reply}, reply)
}

// conference starts a three-way call: the department is dialled while citizen and agent
// go on talking; once it answers all three are mixed.
func (c *Call) conference(name, agent string) error {
	if !c.bridged() {
		return ErrNotTalking
	}
	if agent != "" && agent != c.agent.id {
		return ErrNotYourCall
	}
	e, ok := c.m.entry(name)
	if !ok {
		return ErrUnknownEntry
	}
	cf := c.confState()
	if cf.dept != nil || cf.deptDial != nil {
		return ErrConferenceBusy
	}
	if _, ok := c.m.media.(mixerMedia); !ok {
		return ErrNoMixing
	}
	if !c.addHandoff(cdr.HandoffConference, e) {
		return ErrEntryClosed
	}
	c.dialEntry(e, false)
	c.log.Info("agent conferences a department", "agent", c.agent.id, "entry", e.Name)
	return nil
}

// addHandoff records the agent's request; an entry outside its hours is recorded as
// closed and not dialled (false).
func (c *Call) addHandoff(kind string, e DirEntry) bool {
	cf := c.confState()
	now := c.m.cfg.Clock.Now()
	h := cdr.Handoff{Kind: kind, Entry: e.Name, Number: e.Number, Trunk: e.Trunk, Agent: c.agent.id, At: now}
	open := e.open(now)
	if !open {
		h.Outcome = "closed"
	}
	cf.handoffs = append(cf.handoffs, h)
	c.saveHandoffs()
	return open
}

func (c *Call) saveHandoffs() {
	if c.conf != nil {
		c.rec.Handoffs = cdr.MakeHandoffs(c.conf.handoffs)
	}
}

// dialEntry dials the entry through its trunk off the loop (the last handoff is its).
func (c *Call) dialEntry(e DirEntry, transfer bool) {
	cf := c.conf
	p := c.newParty(partyDepartment, e.Name)
	p.handoff = len(cf.handoffs) - 1
	cf.deptDial, cf.transfer = p, transfer
	pt := c.leg.Media().PayloadType
	codecs := []uint8{pt, sip.PayloadPCMA}
	if pt == sip.PayloadPCMA {
		codecs[1] = sip.PayloadPCMU
	}
	log := c.log.With("entry", e.Name)
	c.spawn(func() {
		res := evParty{p: p}
		defer func() { c.postParty(res) }()
		s, err := c.m.media.NewStream(log)
		if err != nil {
			res.err = fmt.Errorf("%w: %w", ErrLocal, err)
			return
		}
		leg, err := c.m.dialCitizen(p.ctx, e.Trunk, e.Number, 0, s.LocalAddr(), codecs)
		if err != nil {
			s.Close()
			res.err = err
			return
		}
		res.leg, res.s = leg, s
	})
}

// departmentAnswered joins the answered department: to the mixer with citizen and agent
// (three-way), or to the citizen alone (a blind transfer).
func (c *Call) departmentAnswered(e evParty) {
	cf, p := c.confState(), e.p
	if cf.deptDial != p || c.cause != nil {
		if e.leg != nil {
			c.spawn(func() { discard(e.leg, e.s, "call over") })
		}
		return
	}
	cf.deptDial = nil
	h := &cf.handoffs[p.handoff]
	if e.err != nil {
		p.cancel()
		o := Classify(dialEnding(e.err))
		h.Outcome, h.Status = string(o.Disposition), o.Status
		c.saveHandoffs()
		c.log.Info("department not reached", "entry", p.id, "outcome", h.Outcome, "error", e.err)
		if cf.transfer {
			c.transferFailed()
		}
		return
	}
	h.Outcome, h.Answered = "answered", c.m.cfg.Clock.Now()
	c.saveHandoffs()
	c.startParty(p, e.leg, e.s)
	cf.dept = p
	c.publish()
	if cf.transfer || c.agent == nil {
		c.aloneWithDepartment()
		c.log.Info("citizen connected to the department", "entry", p.id)
		return
	}
	if err := c.startMix(); err != nil {
		c.log.Error("cannot mix the department in", "error", err)
		cf.dept = nil
		c.releaseParty(p, "no mixing", true)
		return
	}
	cf.mx.Add(p.s)
	c.remix()
	c.log.Info("three-way call: the department joined", "entry", p.id, "agent", c.agent.id)
}

// aloneWithDepartment bridges the citizen with the department (no agent any more).
func (c *Call) aloneWithDepartment() {
	cf := c.conf
	c.s.StopPlay()
	cf.alone = c.m.media.Bridge(c.s, cf.dept.s)
	cf.alone.Start()
	c.setStage(StageTalking)
	c.snapshot()
}

// departmentGone: the department hung up. In a three-way call citizen and agent go on;
// with the citizen alone the call ends.
func (c *Call) departmentGone(p *party) {
	cf := c.conf
	c.log.Info("department hung up", "entry", p.id)
	cf.dept = nil
	c.publish()
	c.saveHandoffs()
	if cf.alone != nil {
		cf.alone.Stop()
		cf.alone = nil
		c.releaseParty(p, "", false)
		c.stop(ErrDepartmentHangup)
		return
	}
	if cf.mx != nil {
		cf.mx.Remove(p.s)
	}
	c.releaseParty(p, "", false)
	c.stopMix()
	c.remix()
}

// leaveConference: the agent drops out of the three-way call (the API); as their BYE.
func (c *Call) leaveConference(agent string) error {
	cf := c.conf
	if c.agent == nil {
		return ErrNotTalking
	}
	if agent != "" && agent != c.agent.id {
		return ErrNotYourCall
	}
	if cf == nil || cf.dept == nil || cf.alone != nil {
		return ErrNoConference
	}
	c.dropOut("left the conference")
	return nil
}

// dropOut takes the agent out of a three-way call with an answered department, leaving
// citizen and department bridged; it reports false when there is no such call, and the
// agent's leaving ends the conversation as usual. byeCause "" means the agent hung up.
func (c *Call) dropOut(byeCause string) bool {
	cf := c.conf
	if cf == nil || cf.dept == nil || c.agent == nil || c.cause != nil {
		return false
	}
	a := c.agent
	cf.handoffs[cf.dept.handoff].AgentLeft = c.m.cfg.Clock.Now()
	c.dropSupervisor("agent left", true)
	c.endTalk(sip.SideAgent, byeCause, byeCause != "")
	if cf.mx != nil {
		cf.mx.Close()
		cf.mx, cf.mixed, cf.plain = nil, nil, nil
	}
	c.aloneWithDepartment()
	c.log.Info("agent left the three-way call; citizen and department go on", "agent", a.id, "entry", cf.dept.id)
	return true
}

// transferToEntry is the agent's blind transfer (REFER) to a directory entry: 480 when
// the entry is closed, else 202; the agent's leg is let go (NOTIFY 200, BYE) and the
// citizen hears music on hold while the department is dialled, then is bridged to it. A
// department that does not answer returns the citizen to the agent's queue.
func (c *Call) transferToEntry(r *sip.Refer, e DirEntry) {
	a := c.agent
	cf := c.confState()
	if cf.dept != nil || cf.deptDial != nil {
		r.Reject(403)
		return
	}
	if !c.addHandoff(cdr.HandoffTransfer, e) {
		c.log.Info("transfer refused: the department is closed", "agent", a.id, "entry", e.Name)
		r.Reject(480)
		return
	}
	c.dropSupervisor("agent transferred", true)
	now := c.m.cfg.Clock.Now()
	if a.held {
		c.m.agentEvent(now, c.id, a.queue, a.id, cdr.EventUnhold, cdr.FormatSeconds(now.Sub(a.since)))
	}
	c.account(a, now)
	a.bridge.Stop()
	r.Accept()
	c.rec.Transfers++
	c.agent = nil
	c.m.dist.CallEnded(c.id, a.id, sip.SideAgent)
	c.spawn(func() { c.release(a, "transferred", true, r) })
	c.log.Info("agent transferred the caller to a department", "agent", a.id, "entry", e.Name)
	cf.requeue = a.queue
	c.dialEntry(e, true)
	if p, ok := c.m.prompt(c.plan.Queues[a.queue].MusicOnHold); ok {
		c.s.Loop(p)
	}
	c.snapshot()
}

// transferFailed returns a citizen whose department did not answer to the queue the
// transferring agent took them from.
func (c *Call) transferFailed() {
	cf := c.conf
	cf.transfer = false
	v := c.q
	if v == nil || c.cause != nil {
		c.stop(ErrNoAgent)
		return
	}
	c.log.Info("department not reached: the citizen goes back to the queue", "queue", cf.requeue)
	c.q = nil
	c.join(cf.requeue, v.reply)
}

// referEntry is transfer's hook for targets that are not queues: a directory entry is
// transferred to (true); anything else is refused by transfer with 404.
func (c *Call) referEntry(r *sip.Refer) bool {
	e, ok := c.m.entry(r.Target.User)
	if !ok {
		return false
	}
	c.transferToEntry(r, e)
	return true
}

// watchAgentKeys forwards the bridged agent's keys (RFC 4733 and INFO) to the loop, for
// *3<n> (three-way call with the n-th directory entry).
func (c *Call) watchAgentKeys(a *agentLeg) {
	c.spawn(func() {
		for {
			select {
			case <-c.ctx.Done():
				return
			case <-a.s.Done():
				return
			case <-a.leg.Done():
				return
			case d := <-a.s.Digits():
				c.post(evAgentKey{a, d})
			case d := <-a.leg.Digits():
				c.post(evAgentKey{a, d})
			}
		}
	})
}

// agentKey follows the agent's keys: *3 then a digit 1-9 conferences that entry; with a
// department on the three-way call every key goes to it instead (its IVR).
func (c *Call) agentKey(a *agentLeg, d rune) {
	cf := c.confState()
	if c.agent != a {
		return
	}
	if cf.dept != nil {
		if ds, ok := cf.dept.s.(dtmfStream); ok {
			if err := ds.SendDTMF(d, 0); err != nil {
				c.log.Debug("key not sent to the department", "digit", string(d), "error", err)
			}
		}
		return
	}
	if d == '*' {
		cf.keys = append(cf.keys[:0], d)
		return
	}
	if len(cf.keys) == 0 {
		return
	}
	cf.keys = append(cf.keys, d)
	seq := string(cf.keys)
	switch {
	case seq == CodeConference:
		return
	case len(seq) == len(CodeConference)+1 && seq[:len(CodeConference)] == CodeConference && d >= '1' && d <= '9':
		cf.keys = cf.keys[:0]
		i := int(d - '1')
		if i >= len(c.m.cfg.Directory) {
			c.log.Info("conference key: no such directory entry", "agent", a.id, "index", i+1)
			return
		}
		if err := c.conference(c.m.cfg.Directory[i].Name, a.id); err != nil {
			c.log.Info("conference key refused", "agent", a.id, "error", err)
		}
	default:
		cf.keys = cf.keys[:0]
	}
}
