package acd

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/looplab/fsm"
)

const (
	levelDebug = slog.LevelDebug
	levelError = slog.LevelError
)

// Caller is a call entering a queue. Priority: higher is served first
// (raised by the queue's PriorityRules); Enqueued is the caller's place in
// line, zero meaning now (set it to keep a place earned elsewhere).
type Caller struct {
	CallID, Number, Queue string
	Priority              int
	Enqueued              time.Time
}

// ACD is the automatic call distributor: queues, agents and routing. All of
// its state is guarded by one mutex, under which it does no I/O; what it
// decides is delivered to its Outbox after the mutex is released. Its
// methods are safe for concurrent use and do not block on the Outbox of
// another goroutine.
type ACD struct {
	mu    sync.Mutex
	clock Clock
	out   Outbox
	log   *slog.Logger

	skillIdx map[string]int
	queues   []*queue
	qByName  map[string]*queue
	agents   []*agent
	aByID    map[string]*agent
	callers  map[string]*caller // waiting, ringing or connected
	lists    [][MaxSkillLevel + 1]alist

	now     time.Time
	day     int
	seq     uint64
	epoch   uint64
	rng     *rand.Rand
	scratch []*agent

	dirtyA     []*agent
	dirtyAHead int
	dirtyC     []*caller
	dirtyCHead int
	emptyQ     []*queue

	outq, spare []output
	delivering  bool
	closed      bool

	hook func(ag *agent, c *caller) // tests: called at each offer decision
}

// New validates the configuration and returns an ACD with every agent
// logged out. clock nil means SystemClock; log nil discards.
func New(queues []QueueConfig, agents []AgentConfig, clock Clock, out Outbox, log *slog.Logger) (*ACD, error) {
	if out == nil {
		return nil, fmt.Errorf("%w: nil Outbox", ErrConfig)
	}
	if clock == nil {
		clock = SystemClock()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var errs []error
	names := map[string]bool{}
	for _, q := range queues {
		if names[q.Name] {
			errs = append(errs, fmt.Errorf("%w: queue %q: name: duplicate", ErrConfig, q.Name))
		}
		names[q.Name] = true
	}
	norm := make([]QueueConfig, len(queues))
	for i, q := range queues {
		norm[i] = q.normalize()
		errs = append(errs, norm[i].validate(names))
	}
	ids := map[string]bool{}
	for _, ag := range agents {
		if ids[ag.ID] {
			errs = append(errs, fmt.Errorf("%w: agent %q: id: duplicate", ErrConfig, ag.ID))
		}
		ids[ag.ID] = true
		errs = append(errs, ag.validate())
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	a := &ACD{
		clock: clock, out: out, log: log,
		skillIdx: map[string]int{},
		qByName:  map[string]*queue{},
		aByID:    map[string]*agent{},
		callers:  map[string]*caller{},
	}
	now := clock.Now()
	a.now = now
	a.day = dayKey(now)
	a.rng = rand.New(rand.NewPCG(uint64(now.UnixNano()), 0x1234_5678_9abc_def0))

	// Skills get dense indexes, in name order.
	var skillNames []string
	addSkill := func(s string) {
		if _, ok := a.skillIdx[s]; !ok {
			a.skillIdx[s] = -1
			skillNames = append(skillNames, s)
		}
	}
	for _, q := range norm {
		for s := range q.Skills {
			addSkill(s)
		}
		for _, e := range q.Escalations {
			if e.Skill != "" {
				addSkill(e.Skill)
			}
		}
	}
	for _, ag := range agents {
		for s := range ag.Skills {
			addSkill(s)
		}
	}
	slices.Sort(skillNames)
	for i, s := range skillNames {
		a.skillIdx[s] = i
	}
	a.lists = make([][MaxSkillLevel + 1]alist, len(skillNames))

	for i, qc := range norm {
		q := &queue{idx: i, cfg: qc, strat: qc.Strategy, autoPause: *qc.AutoPause, rrLast: -1, aht: DefaultHandleTime}
		q.wrapUp = max(qc.WrapUp, 0)
		q.steps = a.buildSteps(qc)
		q.heaps = make([]cheap, len(q.steps))
		q.staffed = make([]int, len(q.steps))
		a.queues = append(a.queues, q)
		a.qByName[qc.Name] = q
	}
	for _, q := range a.queues {
		if n := len(q.cfg.Escalations); n > 0 && q.cfg.Escalations[n-1].Overflow != "" {
			q.overflow = a.qByName[q.cfg.Escalations[n-1].Overflow]
			q.overAfter = q.cfg.Escalations[n-1].After
		}
	}
	for i, ac := range agents {
		ag := &agent{
			idx: i, id: ac.ID, name: ac.Name, wrapUp: ac.WrapUp,
			level:   make([]uint8, len(skillNames)),
			nodes:   make([]node, len(skillNames)),
			minStep: make([]uint8, len(a.queues)),
			fsm:     fsm.NewFSM(string(AgentLoggedOut), agentEvents, nil),
			since:   now,
		}
		for s, l := range ac.Skills {
			ag.level[a.skillIdx[s]] = uint8(l)
		}
		for s, l := range ag.level {
			if l > 0 {
				ag.has = append(ag.has, s)
			}
		}
		for _, q := range a.queues {
			ag.minStep[q.idx] = noStep
			for e, st := range q.steps {
				if ag.qualifies(st) {
					ag.minStep[q.idx] = uint8(e)
					ag.serves = append(ag.serves, serve{q: q, minStep: e})
					break
				}
			}
		}
		a.agents = append(a.agents, ag)
		a.aByID[ac.ID] = ag
	}
	return a, nil
}

// buildSteps turns a queue's skills and escalations into requirement steps.
func (a *ACD) buildSteps(qc QueueConfig) []step {
	base := alt{}
	for s, l := range qc.Skills {
		base.req = append(base.req, skillReq{a.skillIdx[s], l})
	}
	steps := []step{{alts: []alt{base}}}
	for _, e := range qc.Escalations {
		if e.Overflow != "" {
			break
		}
		prev := steps[len(steps)-1].alts
		alts := make([]alt, len(prev))
		found := false
		si := a.skillIdx[e.Skill]
		for i, al := range prev {
			alts[i].req = slices.Clone(al.req)
			for j := range alts[i].req {
				if r := &alts[i].req[j]; r.skill == si {
					found = true
					r.level = min(r.level, e.MinLevel)
				}
			}
		}
		if !found {
			alts = append(alts, alt{req: []skillReq{{si, e.MinLevel}}})
		}
		steps = append(steps, step{after: e.After, alts: alts})
	}
	for _, st := range steps {
		for i := range st.alts {
			al := &st.alts[i]
			slices.SortFunc(al.req, func(x, y skillReq) int {
				return cmp.Or(cmp.Compare(y.level, x.level), cmp.Compare(x.skill, y.skill))
			})
			al.index, al.minLevel = al.req[0].skill, al.req[0].level
		}
	}
	return steps
}

func (ag *agent) qualifies(st step) bool {
	for _, al := range st.alts {
		ok := true
		for _, r := range al.req {
			if int(ag.level[r.skill]) < r.level {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func dayKey(t time.Time) int { return t.Year()*400 + t.YearDay() }

// lock takes the ACD's lock and reads the clock; unlock routes, releases
// the lock and delivers output.
func (a *ACD) lock() {
	a.mu.Lock()
	a.now = a.clock.Now()
	if d := dayKey(a.now); d != a.day {
		a.day = d
		for _, ag := range a.agents {
			ag.callsToday, ag.talkToday = 0, 0
		}
		for _, q := range a.queues {
			q.stats = queueStats{}
		}
	}
}

func (a *ACD) unlock() {
	if !a.closed {
		a.settle()
	}
	a.mu.Unlock()
	a.flush()
}

// ReasonShutdown is the logout reason of the agents still logged in at Close.
const ReasonShutdown = "shutdown"

// Close logs out every agent still logged in (LOGOUT with reason
// "shutdown", after WRAPUPEND with reason "logout" for a wrap-up in
// progress) and stops every timer of the ACD; later inputs are ignored or
// return ErrClosed. Callers and offers stay as they are, and no CancelOffer
// is sent: call/ ends its calls itself.
func (a *ACD) Close() {
	a.lock()
	defer a.unlock()
	if a.closed {
		return
	}
	a.closed = true
	for _, ag := range a.agents {
		a.endWrapUp(ag, "logout")
		a.logout(ag, ReasonShutdown)
		a.stopAgentTimer(ag)
		if o := ag.offer; o != nil && o.timer != nil {
			o.timer.Stop()
			o.timer = nil
		}
	}
	for _, c := range a.callers {
		a.stopCallerTimer(c)
	}
}

// HasQueue reports whether the ACD has a queue of that name.
func (a *ACD) HasQueue(name string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.qByName[name]
	return ok
}

// Enqueue puts a caller in a queue and returns their position (1 = next).
// Errors: ErrUnknownQueue, ErrQueueFull, ErrNoAgents, ErrDuplicateCall,
// ErrClosed. Routing happens at once: the Offer may be delivered before
// Enqueue returns.
func (a *ACD) Enqueue(c Caller) (pos int, err error) {
	a.lock()
	defer a.unlock()
	if a.closed {
		return 0, ErrClosed
	}
	q, ok := a.qByName[c.Queue]
	if !ok {
		return 0, fmt.Errorf("%w: %q", ErrUnknownQueue, c.Queue)
	}
	if c.CallID == "" {
		return 0, fmt.Errorf("%w: empty CallID", ErrUnknownCall)
	}
	if _, dup := a.callers[c.CallID]; dup {
		return 0, fmt.Errorf("%w: %q", ErrDuplicateCall, c.CallID)
	}
	if err := q.refuses(); err != nil {
		return 0, fmt.Errorf("%w: queue %q", err, q.cfg.Name)
	}
	enq := c.Enqueued
	if enq.IsZero() {
		enq = a.now
	}
	a.seq++
	cl := &caller{id: c.CallID, number: c.Number, prio: c.Priority, enq: enq, enqNs: enq.UnixNano(), seq: a.seq, heapIdx: -1, allIdx: -1}
	a.callers[c.CallID] = cl
	a.join(cl, q, "", "")
	return cl.entryPos, nil
}

// Abandon: the caller hung up while waiting or while an agent rang (the
// offers are cancelled and the agents go back to ready). Unknown or
// connected calls are ignored.
func (a *ACD) Abandon(callID string) { a.leave(callID, EvAbandon, "caller-abandoned", "") }

// ExitKey is ExitWithKey without the digit.
func (a *ACD) ExitKey(callID string) { a.ExitWithKey(callID, "") }

// ExitWithKey: the caller left the queue with the exit digit key (the
// EXITWITHKEY event carries it). Unknown or connected calls are ignored.
func (a *ACD) ExitWithKey(callID, key string) { a.leave(callID, EvExitKey, "exit-key", key) }

func (a *ACD) leave(callID string, typ EventType, why, key string) {
	a.lock()
	defer a.unlock()
	c, ok := a.callers[callID]
	if !ok || c.st == cConnected || a.closed {
		a.logf(levelDebug, "acd: stale caller input", "call_id", callID, "event", string(typ))
		return
	}
	a.exitQueue(c, typ, 0, why, key)
}

// RingAnswered is RingAnsweredLeg without the agent leg's id.
func (a *ACD) RingAnswered(callID, agentID string) bool {
	return a.RingAnsweredLeg(callID, agentID, "")
}

// RingAnsweredLeg: the agent answered the offer on the agent leg leg (its SIP
// Call-ID, carried by the CONNECT event). It returns false if the offer is
// stale (caller gone, ring timed out, another agent won): call/ must then
// hang up that agent leg.
func (a *ACD) RingAnsweredLeg(callID, agentID, leg string) bool {
	a.lock()
	defer a.unlock()
	if o := a.findOffer(callID, agentID); o != nil {
		a.answer(o, leg)
		return true
	}
	a.logf(levelDebug, "acd: stale answer", "call_id", callID, "agent", agentID)
	return false
}

// RingFailed: the offer did not connect. The caller keeps their place and
// the next agent is tried at once; the agent is auto-paused (NoAnswer,
// Unreachable, if the queue's AutoPause) or rests for RetryDelay. Stale
// reports are ignored.
func (a *ACD) RingFailed(callID, agentID string, why RingFailure) {
	a.lock()
	defer a.unlock()
	if o := a.findOffer(callID, agentID); o != nil {
		a.failOffer(o, why)
	}
}

func (a *ACD) findOffer(callID, agentID string) *offer {
	c, ok := a.callers[callID]
	if !ok || c.st != cRinging || a.closed {
		return nil
	}
	for _, o := range c.offers {
		if o.ag.id == agentID {
			return o
		}
	}
	return nil
}

// CallEnded: the bridged call ended; side is "caller" or "agent" (who hung
// up). The agent goes to wrap-up (its own WrapUp, else the queue's), then
// ready, unless it paused or logged out meanwhile. agentID may be empty.
// Stale reports (the call already ended, e.g. via Unreachable) are ignored.
func (a *ACD) CallEnded(callID, agentID, side string) {
	a.lock()
	defer a.unlock()
	c := a.connected(callID, agentID, "call end")
	if c == nil {
		return
	}
	typ := EvCompleteCaller
	if side == "agent" {
		typ = EvCompleteAgent
	}
	a.endCall(c, typ, "")
}

// ReasonAgentLost is the reason of the COMPLETEAGENT and the pause given by AgentLost.
const ReasonAgentLost = "agent-lost"

// AgentLost: the agent's softphone vanished during the bridged call (its RTP stopped and
// no BYE came). The call ends as CallEnded with side "agent" would, COMPLETEAGENT with
// reason agent-lost, and after the wrap-up the agent is paused with that reason instead of
// becoming ready again: nobody is rung into a dead phone. The agent (or a supervisor) makes
// them ready once the phone is back. Stale reports are ignored, as in CallEnded.
func (a *ACD) AgentLost(callID, agentID string) {
	a.lock()
	defer a.unlock()
	c := a.connected(callID, agentID, "agent loss")
	if c == nil {
		return
	}
	if ag := c.agent; ag.pending != pendLogout { // a logout asked for during the call still wins
		ag.pending, ag.pendingReason = pendPause, ReasonAgentLost
	}
	a.endCall(c, EvCompleteAgent, ReasonAgentLost)
}

// connected is the caller of callID while bridged (to agentID, unless empty), or nil for
// a stale report (the call ended already, e.g. via Unreachable), logged as what.
func (a *ACD) connected(callID, agentID, what string) *caller {
	c, ok := a.callers[callID]
	if !ok || c.st != cConnected || (agentID != "" && c.agent.id != agentID) || a.closed {
		a.logf(levelDebug, "acd: stale "+what, "call_id", callID, "agent", agentID)
		return nil
	}
	return c
}

func (a *ACD) endCall(c *caller, typ EventType, reason string) {
	ag, q := c.agent, c.q
	talk := a.now.Sub(c.connected)
	ag.talkToday += talk
	ag.call = nil
	c.agent = nil
	c.st = cGone
	delete(a.callers, c.id)
	a.emitEvent(Event{Type: typ, Queue: q.cfg.Name, CallID: c.id, AgentID: ag.id,
		Data: EventData{Reason: reason, Wait: c.connected.Sub(c.joined), Talk: talk}})
	a.startWrapUp(ag, q, c.id, talk)
}

// Transferred: the agent blind-transferred the caller to another queue. The
// agent goes to wrap-up as after CallEnded, with the talk time so far. The
// caller starts a new visit of toQueue: they keep their original enqueue
// time as their place in line (a citizen is not sent to the back), while
// wait, service level and MaxWait of the new visit count from now. On error
// (ErrUnknownCall, ErrUnknownQueue, ErrQueueFull, ErrNoAgents) nothing
// changes: the call stays with the agent.
func (a *ACD) Transferred(callID, fromAgent, toQueue string) (pos int, err error) {
	a.lock()
	defer a.unlock()
	if a.closed {
		return 0, ErrClosed
	}
	c, ok := a.callers[callID]
	if !ok || c.st != cConnected || (fromAgent != "" && c.agent.id != fromAgent) {
		return 0, fmt.Errorf("%w: %q with agent %q", ErrUnknownCall, callID, fromAgent)
	}
	t, ok := a.qByName[toQueue]
	if !ok {
		return 0, fmt.Errorf("%w: %q", ErrUnknownQueue, toQueue)
	}
	if err := t.refuses(); err != nil {
		return 0, fmt.Errorf("%w: queue %q", err, toQueue)
	}
	ag, q := c.agent, c.q
	talk := a.now.Sub(c.connected)
	ag.talkToday += talk
	ag.call = nil
	c.agent = nil
	q.stats.transferred++
	a.emitEvent(Event{Type: EvTransfer, Queue: q.cfg.Name, CallID: c.id, AgentID: ag.id,
		Data: EventData{Target: toQueue, Wait: c.connected.Sub(c.joined), Talk: talk}})
	a.startWrapUp(ag, q, c.id, talk)
	a.join(c, t, "transfer", q.cfg.Name)
	return c.entryPos, nil
}

func (a *ACD) agentByID(id string) (*agent, error) {
	if a.closed {
		return nil, ErrClosed
	}
	ag, ok := a.aByID[id]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownAgent, id)
	}
	return ag, nil
}

// Login logs the agent in, ready. Logging in a logged-in agent does nothing.
func (a *ACD) Login(agentID string) error {
	a.lock()
	defer a.unlock()
	ag, err := a.agentByID(agentID)
	if err != nil {
		return err
	}
	a.login(ag)
	return nil
}

func (a *ACD) login(ag *agent) {
	if ag.state() != AgentLoggedOut {
		return
	}
	a.fire(ag, evLogin)
	ag.loginAt = a.now
	a.emitEvent(Event{Type: EvLogin, AgentID: ag.id})
	a.becomeReady(ag, false)
}

// Ready makes the agent ready: it logs in a logged-out agent, unpauses a
// paused one, ends a wrap-up early, ends a rest after a rejected offer, and
// cancels a pending pause or logout (of an agent ringing, on a call, or in
// the wrap-up of a call during which it asked to pause).
func (a *ACD) Ready(agentID string) error {
	a.lock()
	defer a.unlock()
	ag, err := a.agentByID(agentID)
	if err != nil {
		return err
	}
	ag.pending, ag.pendingReason = pendNone, ""
	switch ag.state() {
	case AgentLoggedOut:
		a.login(ag)
	case AgentPaused:
		a.emitEvent(Event{Type: EvUnpause, AgentID: ag.id, Data: EventData{Reason: ag.reason}})
		a.becomeReady(ag, false)
	case AgentWrapUp:
		a.endWrapUp(ag, "ready")
		a.becomeReady(ag, false)
	case AgentReady:
		if ag.resting {
			a.becomeReady(ag, true)
		}
	}
	return nil
}

// Pause pauses the agent with a reason. Ready and wrap-up agents pause at
// once (the wrap-up ends); paused agents change reason; an agent ringing or
// on a call pauses when the offer fails or after the call's wrap-up.
func (a *ACD) Pause(agentID, reason string) error {
	a.lock()
	defer a.unlock()
	ag, err := a.agentByID(agentID)
	if err != nil {
		return err
	}
	switch ag.state() {
	case AgentLoggedOut:
		return fmt.Errorf("%w: %q", ErrNotLoggedIn, agentID)
	case AgentReady, AgentPaused:
		a.pause(ag, reason)
	case AgentWrapUp:
		a.endWrapUp(ag, "paused")
		a.pause(ag, reason)
	case AgentReserved, AgentOnCall:
		ag.pending, ag.pendingReason = pendPause, reason
	}
	return nil
}

// Logout logs the agent out. A ringing offer is cancelled (the caller keeps
// their place); an agent on a call logs out when the call ends (no wrap-up).
func (a *ACD) Logout(agentID, reason string) error {
	a.lock()
	defer a.unlock()
	ag, err := a.agentByID(agentID)
	if err != nil {
		return err
	}
	switch ag.state() {
	case AgentReserved:
		o := ag.offer
		a.cancelOffer(o, "logout", false)
		a.backToWaiting(o.c)
		a.logout(ag, reason)
	case AgentOnCall:
		ag.pending, ag.pendingReason = pendLogout, reason
	case AgentWrapUp:
		a.endWrapUp(ag, "logout")
		a.logout(ag, reason)
	default:
		a.logout(ag, reason)
	}
	return nil
}

// ReasonUnreachable is the logout reason given by Unreachable.
const ReasonUnreachable = "unreachable"

// Unreachable: the registrar lost the agent's softphone. The agent is logged
// out with reason "unreachable" at once: a ringing offer fails (CancelOffer
// is sent, the caller keeps their place) and a call in progress is taken as
// ended (COMPLETEAGENT with reason "unreachable"; a later CallEnded is stale).
func (a *ACD) Unreachable(agentID string) {
	a.lock()
	defer a.unlock()
	ag, err := a.agentByID(agentID)
	if err != nil {
		a.logf(levelDebug, "acd: unreachable agent", "agent", agentID, "error", err)
		return
	}
	switch ag.state() {
	case AgentReserved:
		o := ag.offer
		a.endOffer(o)
		a.emitCancel(o.public())
		a.emitEvent(Event{Type: EvRingNoAnswer, Queue: o.c.q.cfg.Name, CallID: o.c.id, AgentID: ag.id,
			Data: EventData{Reason: ReasonUnreachable, Ring: a.now.Sub(o.start)}})
		a.backToWaiting(o.c)
	case AgentOnCall:
		ag.pending, ag.pendingReason = pendLogout, ReasonUnreachable
		a.endCall(ag.call, EvCompleteAgent, ReasonUnreachable)
		return
	case AgentWrapUp:
		a.endWrapUp(ag, "logout")
	}
	a.logout(ag, ReasonUnreachable)
}
