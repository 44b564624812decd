package call

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hotline12345/hotline/cdr"
	"github.com/hotline12345/hotline/media"
	"github.com/hotline12345/hotline/sip"
)

// A live bridged call may gain parties: a supervisor who listens, whispers or barges in
// (monitor.go), and a department dialled through an outbound trunk for a three-way call
// (directory.go). While any is on the call, the citizen and the agent are not relayed
// by their Bridge but mixed (media.Mixer, N-1: nobody hears themselves) with who hears
// whom set by the supervisor's mode. The call's loop owns all of it: requests from the
// API and the phones arrive in its mailbox; the parties' legs are watched by one
// goroutine each, which only posts.

// Supervisor modes.
const (
	ModeListen  = "listen"  // the supervisor hears citizen and agent; nobody hears the supervisor
	ModeWhisper = "whisper" // the agent hears the supervisor; the citizen does not
	ModeBarge   = "barge"   // everyone hears everyone (three-way)
)

// Errors of supervisor and directory requests (the API maps them to statuses).
var (
	ErrNoCall         = errors.New("no such call")
	ErrNotTalking     = errors.New("the call has no agent bridged")
	ErrNotSupervisor  = errors.New("not a supervisor")
	ErrNotYourCall    = errors.New("an agent may act only on their own call")
	ErrBadMode        = errors.New("mode must be listen, whisper or barge")
	ErrMonitorBusy    = errors.New("another supervisor is on the call")
	ErrNoMonitor      = errors.New("no supervisor on the call")
	ErrUnknownEntry   = errors.New("not in the directory")
	ErrEntryClosed    = errors.New("the directory entry is closed now")
	ErrConferenceBusy = errors.New("a department is already on the call")
	ErrNoConference   = errors.New("no department on the call")
	ErrNoMixing       = errors.New("the media cannot mix")

	// ErrDepartmentHangup: the department hung up after the agent had left it with the
	// citizen; an ErrAgentHangup (side agent: the far side) with its own cause.
	ErrDepartmentHangup = fmt.Errorf("department-hangup: %w", ErrAgentHangup)
)

// Mixer mixes streams (media.Mixer).
type Mixer interface {
	Add(s Stream) error
	Remove(s Stream)
	SetHears(listener Stream, sources ...Stream)
	Close()
}

// mixerMedia is Media that can mix (the RTP media; test fakes need not).
type mixerMedia interface {
	NewMixer() Mixer
}

// Party kinds.
const (
	partySupervisor = "supervisor"
	partyDepartment = "department"
)

// party is a supervisor's or a department's leg on the call.
type party struct {
	kind    string
	id      string // the supervisor's agent id, or the directory entry's name
	leg     AgentLeg
	s       Stream
	ctx     context.Context // ends when the party leaves: its watcher and stream stop
	cancel  context.CancelFunc
	handoff int // a department's index in conference.handoffs
}

// Events of the conference, posted to the call's loop.
type (
	evParty struct { // a ring or dial of a party ended: answered (leg, s) or not (err)
		p   *party
		leg AgentLeg
		s   Stream
		err error
	}
	evPartyGone struct{ p *party } // the party's leg or RTP ended
	evPartyKey  struct {           // a key from the party's phone
		p *party
		d rune
	}
	evAgentKey struct { // a key from the bridged agent's phone
		a *agentLeg
		d rune
	}
)

// conference is what the loop knows of the call's extra parties; made on first use and
// kept to the end (its handoffs go on the record).
type conference struct {
	mx       Mixer
	plain    Bridge    // the agent's own bridge, stopped while mixing
	mixed    *agentLeg // the agent whose bridge is the mixer's face
	held     bool      // the agent holds: citizen and agent are out of the mixer
	mode     string
	sup      *party // answered supervisor
	supRing  *party // supervisor being rung
	dept     *party // answered department (a three-way call, or with the citizen alone)
	deptDial *party // department being dialled
	alone    Bridge // citizen ↔ department once the agent left
	transfer bool   // the department dial is a blind transfer: the agent has gone
	requeue  string // the queue a failed blind transfer returns the citizen to
	handoffs []cdr.Handoff
	keys     []rune // the agent's key sequence (*3<n>)
}

func (c *Call) confState() *conference {
	if c.conf == nil {
		c.conf = &conference{}
	}
	return c.conf
}

// view adds the parties to the API's view of the call; nil-safe.
func (cf *conference) view(v *LiveCall) {
	if cf == nil {
		return
	}
	if cf.sup != nil {
		v.Supervisor, v.Monitor = cf.sup.id, cf.mode
	}
	if cf.dept != nil {
		v.Department = cf.dept.id
	}
}

// handleConf handles the conference's events; it reports false for other events.
func (c *Call) handleConf(e any) bool {
	switch e := e.(type) {
	case evMonitor:
		e.reply <- c.monitor(e)
	case evStopMonitor:
		e.reply <- c.stopMonitor()
	case evConference:
		e.reply <- c.conference(e.entry, e.agent)
	case evLeave:
		e.reply <- c.leaveConference(e.agent)
	case evParty:
		c.partyAnswered(e)
	case evPartyGone:
		c.partyGone(e.p)
	case evPartyKey:
		c.partyKey(e.p, e.d)
	case evAgentKey:
		c.agentKey(e.a, e.d)
	default:
		return false
	}
	return true
}

// bridged reports whether the call has a citizen and an agent bridged (a callback task's
// agent before the citizen answered is not).
func (c *Call) bridged() bool {
	return c.cause == nil && c.agent != nil && c.agent.bridge != nil && c.s != nil
}

// newParty makes a party whose lifetime is a child of the call's.
func (c *Call) newParty(kind, id string) *party {
	ctx, cancel := context.WithCancel(context.WithoutCancel(c.ctx))
	return &party{kind: kind, id: id, ctx: ctx, cancel: cancel}
}

// postParty posts a ring or dial result; after the call is over the leg is hung up.
func (c *Call) postParty(e evParty) {
	if !c.box.post(e) && e.leg != nil {
		discard(e.leg, e.s, "call over")
	}
}

// startParty starts an answered party's stream and its watcher.
func (c *Call) startParty(p *party, leg AgentLeg, s Stream) {
	p.leg, p.s = leg, s
	setRemote(s, leg.Media(), leg.SignalAddr())
	s.Start(p.ctx)
	c.spawn(func() {
		for {
			select {
			case <-p.ctx.Done():
				return
			case <-leg.Done():
				c.post(evPartyGone{p})
				return
			case <-s.Done():
				c.post(evPartyGone{p})
				return
			case d := <-s.Digits():
				c.post(evPartyKey{p, d})
			case d := <-leg.Digits():
				c.post(evPartyKey{p, d})
			}
		}
	})
}

// releaseParty hangs up a party (if bye) and frees it, off the loop.
func (c *Call) releaseParty(p *party, cause string, bye bool) {
	p.cancel()
	if p.leg == nil {
		return
	}
	c.spawn(func() {
		if bye {
			ctx, cancel := context.WithTimeout(context.Background(), byeTimeout)
			if err := p.leg.Hangup(ctx, cause); err != nil {
				c.log.Debug("party BYE failed", "party", p.kind, "id", p.id, "error", err)
			}
			cancel()
		}
		p.leg.Release()
		p.s.Close()
	})
}

// startMix moves the citizen and the agent from their bridge into a mixer.
func (c *Call) startMix() error {
	cf, a := c.confState(), c.agent
	if cf.mx != nil {
		return nil
	}
	mm, ok := c.m.media.(mixerMedia)
	if !ok {
		return ErrNoMixing
	}
	cf.mx = mm.NewMixer()
	cf.plain, cf.mixed, cf.held = a.bridge, a, a.held
	a.bridge.Stop()
	a.bridge = mixFace{c}
	if !a.held {
		cf.mx.Add(c.s)
		cf.mx.Add(a.s)
	}
	return nil
}

// stopMix closes the mixer when nobody but citizen and agent is left: their own bridge
// relays again (unless the agent holds the caller).
func (c *Call) stopMix() {
	cf := c.conf
	if cf == nil || cf.mx == nil || cf.sup != nil || cf.dept != nil {
		return
	}
	cf.mx.Close()
	cf.mx = nil
	if a := cf.mixed; a != nil && c.agent == a {
		a.bridge = cf.plain
		if !a.held {
			a.bridge.Start()
		}
	}
	cf.mixed, cf.plain = nil, nil
}

// remix sets who hears whom: the supervisor hears everyone; the citizen and the
// department hear the agent and each other, and the supervisor only in barge; the agent
// hears the citizen, the department, and the supervisor in whisper and barge.
func (c *Call) remix() {
	cf := c.conf
	if cf == nil || cf.mx == nil {
		return
	}
	var cit, ag, sup, dept Stream
	if !cf.held && cf.mixed != nil {
		cit, ag = c.s, cf.mixed.s
	}
	if cf.sup != nil {
		sup = cf.sup.s
	}
	if cf.dept != nil {
		dept = cf.dept.s
	}
	supFor := func(hears bool) Stream {
		if hears {
			return sup
		}
		return nil
	}
	set := func(l Stream, srcs ...Stream) {
		if l == nil {
			return
		}
		var in []Stream
		for _, s := range srcs {
			if s != nil {
				in = append(in, s)
			}
		}
		cf.mx.SetHears(l, in...)
	}
	set(cit, ag, dept, supFor(cf.mode == ModeBarge))
	set(ag, cit, dept, supFor(cf.mode != ModeListen))
	set(dept, cit, ag, supFor(cf.mode == ModeBarge))
	set(sup, cit, ag, dept)
}

// mixFace is the agent's bridge while the call is mixed: hold takes citizen and agent out
// of the mixer (the citizen hears music on hold), unhold puts them back.
type mixFace struct{ c *Call }

func (f mixFace) Start() {
	cf := f.c.conf
	if cf.mx == nil || !cf.held {
		return
	}
	cf.held = false
	cf.mx.Add(f.c.s)
	cf.mx.Add(cf.mixed.s)
	f.c.remix()
}

func (f mixFace) Stop() {
	cf := f.c.conf
	if cf.mx == nil || cf.held {
		return
	}
	cf.held = true
	cf.mx.Remove(f.c.s)
	cf.mx.Remove(cf.mixed.s)
	f.c.remix()
}

// partyAnswered: a supervisor's phone or the department answered (or did not).
func (c *Call) partyAnswered(e evParty) {
	cf := c.confState()
	p := e.p
	switch p.kind {
	case partySupervisor:
		if cf.supRing != p {
			if e.leg != nil {
				c.spawn(func() { discard(e.leg, e.s, "monitor over") })
			}
			return
		}
		cf.supRing = nil
		if e.err != nil {
			p.cancel()
			c.log.Info("supervisor not reached", "supervisor", p.id, "error", e.err)
			return
		}
		if !c.bridged() {
			p.cancel()
			c.spawn(func() { discard(e.leg, e.s, "call over") })
			return
		}
		c.joinSupervisor(p, e.leg, e.s)
	case partyDepartment:
		c.departmentAnswered(e)
	}
}

// joinSupervisor mixes an answered supervisor into the call in the current mode.
func (c *Call) joinSupervisor(p *party, leg AgentLeg, s Stream) {
	cf := c.conf
	c.startParty(p, leg, s)
	if err := c.startMix(); err != nil {
		c.log.Error("cannot mix the supervisor in", "error", err)
		c.releaseParty(p, "no mixing", true)
		return
	}
	cf.sup = p
	cf.mx.Add(s)
	c.remix()
	c.publish()
	c.log.Info("supervisor joined the call", "supervisor", p.id, "agent", c.agent.id, "mode", cf.mode)
	c.m.agentEvent(c.m.cfg.Clock.Now(), c.id, c.agent.queue, p.id, EventMonitor, cf.mode)
}

// partyGone: a party's leg or RTP ended.
func (c *Call) partyGone(p *party) {
	cf := c.conf
	if cf == nil {
		return
	}
	switch {
	case cf.sup == p:
		c.log.Info("supervisor left the call", "supervisor", p.id)
		c.dropSupervisor("", false)
	case cf.dept == p:
		c.departmentGone(p)
	}
}

// dropSupervisor takes the supervisor out of the call (BYE if bye).
func (c *Call) dropSupervisor(cause string, bye bool) {
	cf := c.conf
	if cf == nil {
		return
	}
	if cf.supRing != nil {
		cf.supRing.cancel()
		cf.supRing = nil
	}
	p := cf.sup
	if p == nil {
		return
	}
	cf.sup = nil
	if cf.mx != nil {
		cf.mx.Remove(p.s)
	}
	c.releaseParty(p, cause, bye)
	c.stopMix()
	c.remix()
	c.publish()
}

// endConference ends every party with the call (stop): rings and dials are cancelled,
// answered parties hung up; the agent's own bridge is back for endTalk to stop.
func (c *Call) endConference() {
	cf := c.conf
	if cf == nil {
		return
	}
	for _, p := range []*party{cf.supRing, cf.deptDial} {
		if p != nil {
			p.cancel()
		}
	}
	cf.supRing, cf.deptDial = nil, nil
	if cf.alone != nil {
		cf.alone.Stop()
		cf.alone = nil
	}
	for _, p := range []*party{cf.sup, cf.dept} {
		if p != nil {
			if cf.mx != nil {
				cf.mx.Remove(p.s)
			}
			c.releaseParty(p, causeText(c.cause), true)
		}
	}
	if cf.dept != nil {
		c.saveHandoffs()
	}
	cf.sup, cf.dept = nil, nil
	c.stopMix()
	c.saveHandoffs()
}

// ringSupervisor rings the supervisor's registered phone off the loop.
func (c *Call) ringSupervisor(sup string) {
	cf := c.confState()
	p := c.newParty(partySupervisor, sup)
	cf.supRing = p
	codecs := []uint8{sip.PayloadPCMA, sip.PayloadPCMU}
	req := RingRequest{Agent: sup, Caller: c.agent.id, CallID: c.id, Queue: "monitor", Codecs: codecs, Timeout: supervisorRing}
	log := c.log.With("supervisor", sup)
	c.spawn(func() {
		res := evParty{p: p}
		defer func() { c.postParty(res) }()
		if c.m.phones == nil {
			res.err = fmt.Errorf("%w: no phones", ErrLocal)
			return
		}
		s, err := c.m.media.NewStream(log)
		if err != nil {
			res.err = fmt.Errorf("%w: %w", ErrLocal, err)
			return
		}
		req.Local = s.LocalAddr()
		ctx, cancel := context.WithTimeout(p.ctx, supervisorRing)
		defer cancel()
		leg, err := c.m.phones.Ring(ctx, req)
		if err != nil {
			s.Close()
			res.err = err
			return
		}
		res.leg, res.s = leg, s
	})
}

// supervisorRing bounds the ring of a supervisor's phone.
const supervisorRing = 30 * time.Second

// EventMonitor is the agent event of a supervisor joining or switching mode on a call.
const EventMonitor = cdr.EventMonitor

// newMixer is rtpMedia's Mixer: a media.Mixer on the shared scheduler.
func (r rtpMedia) NewMixer() Mixer { return rtpMixer{media.NewMixer(r.sched)} }

type rtpMixer struct{ mx *media.Mixer }

func (m rtpMixer) Add(s Stream) error { return m.mx.Add(s.(*media.Session)) }
func (m rtpMixer) Remove(s Stream)    { m.mx.Remove(s.(*media.Session)) }
func (m rtpMixer) Close()             { m.mx.Close() }
func (m rtpMixer) SetHears(l Stream, srcs ...Stream) {
	ss := make([]*media.Session, len(srcs))
	for i, s := range srcs {
		ss[i] = s.(*media.Session)
	}
	m.mx.SetHears(l.(*media.Session), ss...)
}
