package acd

import (
	"errors"
	"fmt"
	"math"
	mbits "math/bits"
	"math/rand/v2"
	"testing"
	"time"
)

// The simulation replays a day of a 12345 hotline through the ACD on a fake
// clock: agents with random skills, Poisson arrivals with priorities, ring
// no-answers, rejects, unreachable phones, abandons (also while ringing),
// exit keys, transfers, lost and late BYEs, pauses and logouts. After every
// event it checks the ACD's invariants (checkInvariants), and at every offer
// decision FIFO within priority (checkDecision).

type simCall struct {
	id       string
	inVisit  bool
	visits   int
	outcome  string // the last visit's end
	final    int    // terminal outcomes recorded
	answered bool   // connected in the current/last visit
	connects int    // CONNECT events
	wrapUps  int    // WRAPUPEND events
	agent    string
}

type simAgent struct {
	id      string
	offer   string // call ringing, as the world sees it
	call    string // connected call not yet reported ended
	shift   bool   // wants to be logged in
	lostBye bool
	loginAt time.Time // of the last LOGIN event
}

type sim struct {
	t         *testing.T
	a         *ACD
	clk       *fakeClock
	out       *fakeOut
	rng       *rand.Rand
	calls     map[string]*simCall
	agents    map[string]*simAgent
	agentCfg  []AgentConfig
	qcfg      []QueueConfig
	elig      [][][]bool // [agent][queue][step] from the raw configuration
	winding   bool
	events    int
	stats     map[string]int
	offerIDs  map[string]bool       // open offers "call>agent"
	wrapOpen  map[string]string     // "call>agent" connected, WRAPUPEND not yet seen → queue
	day       int                   // of the events counted in visits
	visits    map[string]*QueueView // per queue, today's counters from the events
	views     []QueueView           // at the last arrival
	touchedA  map[string]bool       // agents and callers named since the last check
	touchedC  map[string]bool
	eligBits  [][][]uint64 // [queue][step] agents eligible, as a bitset
	listed    []uint64
	lockedErr string
}

func (s *sim) exp(mean time.Duration) time.Duration {
	return time.Duration(-math.Log(1-s.rng.Float64()) * float64(mean))
}

func (s *sim) uni(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(s.rng.Int64N(int64(hi-lo)+1))
}

func (s *sim) after(d time.Duration, f func()) { s.clk.AfterFunc(d, f) }

// failLocked records a failure found under the ACD's lock (t.Fatal there
// would unwind through the ACD's deferred unlock); the loop reports it.
func (s *sim) failLocked(format string, args ...any) {
	if s.lockedErr == "" {
		s.lockedErr = fmt.Sprintf("t=%v event %d: %s", s.clk.Now().Format("15:04:05.000"), s.events, fmt.Sprintf(format, args...))
	}
}

func (s *sim) fail(format string, args ...any) {
	s.t.Helper()
	s.t.Fatalf("t=%v event %d: %s", s.clk.Now().Format("15:04:05.000"), s.events, fmt.Sprintf(format, args...))
}

func simConfig(rng *rand.Rand, nAgents int) ([]QueueConfig, []AgentConfig) {
	strats := []Strategy{LongestIdle, FewestCalls, RoundRobin, RingAll, BestSkill, Random}
	var qs []QueueConfig
	for i := range 10 {
		q := QueueConfig{
			Name:      fmt.Sprintf("q%d", i),
			Skills:    map[string]int{fmt.Sprintf("k%d", i): 1 + rng.IntN(6)},
			Strategy:  strats[i%len(strats)],
			MaxWait:   time.Duration(4+rng.IntN(6)) * time.Minute,
			WrapUp:    time.Duration(5+rng.IntN(20)) * time.Second,
			JoinEmpty: i != 1,
		}
		if q.Skills[q.Name[1:]] == 0 && i%3 == 0 { // a second required skill
			q.Skills[fmt.Sprintf("k%d", (i+5)%10)] = 1
		}
		lvl := q.Skills[fmt.Sprintf("k%d", i)]
		if lvl > 1 {
			q.Escalations = append(q.Escalations, Escalation{After: 30 * time.Second, Skill: fmt.Sprintf("k%d", i), MinLevel: 1})
		}
		if i%2 == 0 {
			q.Escalations = append(q.Escalations, Escalation{After: 60 * time.Second, Skill: fmt.Sprintf("k%d", (i+1)%10), MinLevel: 4})
		}
		if i%4 == 1 {
			q.Escalations = append(q.Escalations, Escalation{After: 120 * time.Second, Overflow: fmt.Sprintf("q%d", (i+3)%10)})
		}
		switch i {
		case 2:
			q.LeaveWhenEmpty = true
		case 3:
			q.MaxCallers = 25
		case 4:
			q.Weight = 1
		case 5:
			off := false
			q.AutoPause = &off
		}
		qs = append(qs, q)
	}
	var ags []AgentConfig
	for i := range nAgents {
		sk := map[string]int{}
		for n := 2 + rng.IntN(3); len(sk) < n; {
			sk[fmt.Sprintf("k%d", rng.IntN(10))] = 1 + rng.IntN(10)
		}
		ac := AgentConfig{ID: fmt.Sprintf("%d", 1001+i), Skills: sk}
		if i%17 == 0 {
			w := time.Duration(rng.IntN(3)) * time.Second
			ac.WrapUp = &w
		}
		ags = append(ags, ac)
	}
	return qs, ags
}

// rawEligible: does an agent with skills qualify for qc after step
// escalations? Computed from the configuration, independently of New.
func rawEligible(skills map[string]int, qc QueueConfig, step int) bool {
	base := map[string]int{}
	for k, v := range qc.Skills {
		base[k] = v
	}
	if len(base) == 0 {
		base[qc.Name] = 1
	}
	alts := []map[string]int{base}
	k := 0
	for _, e := range qc.Escalations {
		if k == step || e.Overflow != "" {
			break
		}
		k++
		found := false
		for _, al := range alts {
			if l, ok := al[e.Skill]; ok {
				found = true
				if e.MinLevel < l {
					al[e.Skill] = e.MinLevel
				}
			}
		}
		if !found {
			alts = append(alts, map[string]int{e.Skill: e.MinLevel})
		}
	}
	for _, al := range alts {
		ok := true
		for sk, l := range al {
			if skills[sk] < l {
				ok = false
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// expectedStep is the escalation step a caller should have reached after waited.
func expectedStep(qc QueueConfig, waited time.Duration) int {
	n := 0
	for _, e := range qc.Escalations {
		if e.Overflow == "" && waited >= e.After {
			n++
		}
	}
	return n
}

func TestSimulation(t *testing.T) {
	nCallers, nAgents := 20000, 200
	if testing.Short() {
		nCallers = 4000
	}
	rng := rand.New(rand.NewPCG(42, 12345))
	qs, ags := simConfig(rng, nAgents)
	s := &sim{t: t, rng: rng, clk: newFakeClock(), out: &fakeOut{}, calls: map[string]*simCall{},
		agents: map[string]*simAgent{}, agentCfg: ags, qcfg: qs, stats: map[string]int{}, offerIDs: map[string]bool{}, wrapOpen: map[string]string{},
		touchedA: map[string]bool{}, touchedC: map[string]bool{}}
	a, err := New(qs, ags, s.clk, s.out, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	s.a = a
	s.elig = make([][][]bool, len(ags))
	for i, ac := range ags {
		s.elig[i] = make([][]bool, len(qs))
		for j, qc := range qs {
			for st := 0; st <= len(qc.Escalations); st++ {
				s.elig[i][j] = append(s.elig[i][j], rawEligible(ac.Skills, qc, st))
			}
		}
		s.agents[ac.ID] = &simAgent{id: ac.ID}
	}
	words := (len(ags) + 63) / 64
	s.listed = make([]uint64, words)
	for j, qc := range qs {
		s.eligBits = append(s.eligBits, nil)
		for st := 0; st <= len(qc.Escalations); st++ {
			b := make([]uint64, words)
			for i := range ags {
				if s.elig[i][j][st] {
					b[i/64] |= 1 << (i % 64)
				}
			}
			s.eligBits[j] = append(s.eligBits[j], b)
		}
	}
	a.hook = s.checkDecision
	s.out.onOffer = s.onOffer
	s.out.onCancel = s.onCancel
	s.out.onEvent = s.onEvent
	s.out.noRecord = true
	s.out.onLeft = func(id string, r ExitReason) { s.stats["left:"+r.String()]++ }

	// Agents log in over the first ten minutes and live their shift.
	for _, ac := range ags {
		s.after(s.uni(0, 10*time.Minute), func() { s.login(ac.ID) })
		s.after(s.exp(40*time.Minute), func() { s.agentBreak(ac.ID) })
		s.after(s.exp(4*time.Hour), func() { s.agentLogout(ac.ID) })
	}
	// Poisson arrivals: ~0.9 calls/s, about the capacity of the agents logged in.
	var arrive func(i int)
	arrive = func(i int) {
		s.newCaller(i)
		if i+1 < nCallers {
			s.after(s.exp(1100*time.Millisecond), func() { arrive(i + 1) })
		} else {
			s.winding = true
			s.views = s.a.Queues()
		}
	}
	s.after(5*time.Minute, func() { arrive(0) })

	for s.clk.Step(s.clk.Now().Add(1000 * time.Hour)) {
		s.events++
		if s.lockedErr != "" {
			t.Fatal(s.lockedErr)
		}
		s.checkInvariants()
		if s.events%4096 == 0 {
			s.checkQueueCounters()
		}
	}
	s.finalChecks(nCallers)
	s.checkQueueCounters()
	t.Logf("simulated %v, %d events; %v", s.clk.Now().Sub(newFakeClock().Now()).Round(time.Second), s.events, s.stats)
	for _, q := range s.views {
		t.Logf("%s: offered %d answered %d abandoned %d timeout %d empty %d key %d overflow %d transfer %d SL %.2f ASA %v AHT %v",
			q.Name, q.Offered, q.Answered, q.Abandoned, q.TimedOut, q.ExitedEmpty, q.ExitedKey, q.Overflowed, q.Transferred, q.ServiceLevel, q.ASA.Round(time.Second), q.AHT.Round(time.Second))
	}
}

func (s *sim) newCaller(i int) {
	id := fmt.Sprintf("c%05d", i)
	c := &simCall{id: id}
	s.calls[id] = c
	prio := 0
	if r := s.rng.IntN(100); r < 10 {
		prio = 1
	} else if r < 13 {
		prio = 5
	}
	q := fmt.Sprintf("q%d", s.rng.IntN(10))
	_, err := s.a.Enqueue(Caller{CallID: id, Number: "1380000" + id[1:], Queue: q, Priority: prio})
	switch {
	case err == nil:
	case errors.Is(err, ErrNoAgents), errors.Is(err, ErrQueueFull):
		if c.inVisit || c.visits != 0 {
			s.fail("%s refused but visited", id)
		}
		c.outcome, c.final = "refused", 1
		s.stats["refused"]++
		return
	default:
		s.fail("enqueue %s: %v", id, err)
	}
	if !c.inVisit {
		s.fail("%s: no ENTERQUEUE", id)
	}
	// Patience: the caller hangs up if not answered by then (while ringing,
	// too); one in five would outwait the queue's MaxWait.
	patience := s.exp(3 * time.Minute)
	if s.rng.IntN(5) == 0 {
		patience = time.Hour
	}
	s.after(patience, func() {
		if c.inVisit {
			s.a.Abandon(id)
			if c.inVisit {
				s.fail("%s: Abandon left it in the queue", id)
			}
		}
	})
	if s.rng.IntN(50) == 0 {
		s.after(s.uni(5*time.Second, time.Minute), func() {
			if c.inVisit {
				s.a.ExitKey(id)
			}
		})
	}
}

func (s *sim) login(id string) {
	ag := s.agents[id]
	ag.shift = true
	if err := s.a.Login(id); err != nil {
		s.fail("login %s: %v", id, err)
	}
}

func (s *sim) agentBreak(id string) {
	if s.winding {
		return
	}
	ag := s.agents[id]
	if ag.shift {
		if err := s.a.Pause(id, "break"); err != nil && !errors.Is(err, ErrNotLoggedIn) {
			s.fail("pause: %v", err)
		}
		s.after(s.uni(time.Minute, 15*time.Minute), func() {
			if ag.shift {
				s.a.Ready(id)
			}
		})
	}
	s.after(s.exp(40*time.Minute), func() { s.agentBreak(id) })
}

func (s *sim) agentLogout(id string) {
	if s.winding {
		return
	}
	ag := s.agents[id]
	ag.shift = false
	s.a.Logout(id, "shift")
	s.after(s.uni(5*time.Minute, 30*time.Minute), func() { s.login(id) })
	s.after(s.exp(4*time.Hour), func() { s.agentLogout(id) })
}

func (s *sim) onOffer(o Offer) {
	s.touchedA[o.AgentID], s.touchedC[o.CallID] = true, true
	ag := s.agents[o.AgentID]
	if ag.offer != "" || ag.call != "" {
		s.fail("agent %s offered %s while ringing %q / on call %q", ag.id, o.CallID, ag.offer, ag.call)
	}
	key := o.CallID + ">" + o.AgentID
	ag.offer = o.CallID
	s.offerIDs[key] = true
	s.stats["offers"]++
	r := s.rng.IntN(100)
	switch {
	case r < 80: // answers
		s.after(s.uni(time.Second, 10*time.Second), func() { s.answer(o) })
	case r < 84: // never answers: the ACD's ring timeout
	case r < 88: // call/ reports the no-answer
		s.after(s.uni(5*time.Second, 14*time.Second), func() { s.ringFail(o, NoAnswer) })
	case r < 95:
		s.after(s.uni(time.Second/2, 3*time.Second), func() { s.ringFail(o, Rejected) })
	case r < 97:
		s.after(100*time.Millisecond, func() { s.ringFail(o, Unreachable) })
	default: // the softphone vanishes while ringing
		s.after(s.uni(time.Second, 5*time.Second), func() { s.unreachable(o.AgentID) })
	}
}

func (s *sim) onCancel(o Offer) {
	s.touchedA[o.AgentID], s.touchedC[o.CallID] = true, true
	key := o.CallID + ">" + o.AgentID
	if !s.offerIDs[key] {
		s.fail("CancelOffer for an offer not open: %s", key)
	}
	delete(s.offerIDs, key)
	s.agents[o.AgentID].offer = ""
	s.stats["cancels"]++
}

func (s *sim) ringFail(o Offer, why RingFailure) {
	key := o.CallID + ">" + o.AgentID
	if !s.offerIDs[key] {
		return // already cancelled: call/ would not report it
	}
	delete(s.offerIDs, key)
	s.agents[o.AgentID].offer = ""
	s.a.RingFailed(o.CallID, o.AgentID, why)
	if why != NoAnswer {
		// The world's agent takes a moment, then readies itself if auto-paused.
		s.after(s.uni(10*time.Second, time.Minute), func() { s.readyIfAutoPaused(o.AgentID) })
	}
}

func (s *sim) readyIfAutoPaused(id string) {
	ag := s.a.aByID[id]
	s.a.mu.Lock()
	auto := ag.state() == AgentPaused && (ag.reason == "no-answer" || ag.reason == "unreachable")
	s.a.mu.Unlock()
	if auto {
		s.a.Ready(id)
	}
}

func (s *sim) answer(o Offer) {
	key := o.CallID + ">" + o.AgentID
	open := s.offerIDs[key]
	ok := s.a.RingAnswered(o.CallID, o.AgentID)
	if ok != open {
		s.fail("RingAnswered(%s) = %v, offer open %v", key, ok, open)
	}
	if !ok {
		s.stats["stale-answers"]++
		return
	}
	delete(s.offerIDs, key)
	ag := s.agents[o.AgentID]
	ag.offer, ag.call = "", o.CallID
	c := s.calls[o.CallID]
	if !c.answered || c.agent != o.AgentID {
		s.fail("answered %s without CONNECT", key)
	}
	talk := s.uni(20*time.Second, 5*time.Minute)
	r := s.rng.IntN(100)
	switch {
	case r < 3: // lost BYE: only the registrar notices, much later
		ag.lostBye = true
		s.stats["lost-bye"]++
		s.after(talk+s.uni(time.Minute, 20*time.Minute), func() {
			if ag.call == o.CallID {
				s.unreachable(o.AgentID)
				s.after(s.uni(time.Minute, 5*time.Minute), func() { s.login(o.AgentID) })
			}
		})
	case r < 5: // late BYE
		s.after(talk+s.uni(time.Minute, 10*time.Minute), func() { s.end(o.CallID, o.AgentID) })
	case r < 9: // blind transfer to another queue
		s.after(talk, func() {
			if ag.call != o.CallID {
				return
			}
			to := fmt.Sprintf("q%d", s.rng.IntN(10))
			ag.call = ""
			if _, err := s.a.Transferred(o.CallID, o.AgentID, to); err != nil {
				if !errors.Is(err, ErrNoAgents) && !errors.Is(err, ErrQueueFull) {
					s.fail("transfer: %v", err)
				}
				ag.call = o.CallID
				s.end(o.CallID, o.AgentID)
				return
			}
			s.stats["transfers"]++
			if !c.inVisit {
				s.fail("transferred %s not in a queue", o.CallID)
			}
		})
	default:
		s.after(talk, func() { s.end(o.CallID, o.AgentID) })
	}
}

func (s *sim) end(callID, agentID string) {
	ag := s.agents[agentID]
	if ag.call != callID {
		s.a.CallEnded(callID, agentID, "caller") // stale: must change nothing
		return
	}
	ag.call = ""
	side := "caller"
	if s.rng.IntN(2) == 0 {
		side = "agent"
	}
	s.a.CallEnded(callID, agentID, side)
	if a := s.a.aByID[agentID]; a.state() == AgentOnCall || a.call != nil {
		s.fail("agent %s still %s after CallEnded", agentID, a.state())
	}
}

func (s *sim) unreachable(id string) {
	ag := s.agents[id]
	ag.call = ""
	ag.shift = false
	s.a.Unreachable(id) // a ringing offer is cancelled through CancelOffer
	if ag.offer != "" {
		s.fail("agent %s unreachable but still ringing %s", id, ag.offer)
	}
	s.after(s.uni(time.Minute, 5*time.Minute), func() { s.login(id) })
}

func (s *sim) onEvent(e Event) {
	s.touchedA[e.AgentID], s.touchedC[e.CallID] = true, true
	s.countVisit(e)
	c := s.calls[e.CallID]
	switch e.Type {
	case EvEnterQueue:
		if c.inVisit {
			s.fail("%s: ENTERQUEUE while in a visit", e.CallID)
		}
		c.inVisit, c.answered = true, false
		c.visits++
	case EvConnect:
		if !c.inVisit {
			s.fail("%s: CONNECT outside a visit", e.CallID)
		}
		c.inVisit, c.answered, c.agent, c.outcome = false, true, e.AgentID, "answered"
		c.connects++
		key := e.CallID + ">" + e.AgentID
		if _, dup := s.wrapOpen[key]; dup {
			s.fail("%s connected again before its WRAPUPEND", key)
		}
		s.wrapOpen[key] = e.Queue
	case EvWrapUpEnd:
		c.wrapUps++
		key := e.CallID + ">" + e.AgentID
		q, ok := s.wrapOpen[key]
		if !ok || e.Queue != q || e.Data.WrapUp < 0 || e.Data.WrapUp > 25*time.Second {
			s.fail("WRAPUPEND %+v: no CONNECT of %s waits for one (%v, in %q)", e, key, ok, q)
		}
		delete(s.wrapOpen, key)
	case EvLogin:
		s.agents[e.AgentID].loginAt = e.Time
	case EvLogout:
		if ag := s.agents[e.AgentID]; e.Data.LoggedIn != e.Time.Sub(ag.loginAt) {
			s.fail("agent %s: LOGOUT after %v logged in, LOGIN at %v", e.AgentID, e.Data.LoggedIn, ag.loginAt)
		}
	case EvAbandon, EvExitTimeout, EvExitEmpty, EvExitKey, EvOverflow:
		if !c.inVisit {
			s.fail("%s: %s outside a visit", e.CallID, e.Type)
		}
		c.inVisit, c.outcome = false, string(e.Type)
	case EvPause:
		if e.Data.Reason == "no-answer" || e.Data.Reason == "unreachable" {
			s.stats["auto-pause"]++
			s.after(s.uni(10*time.Second, time.Minute), func() { s.readyIfAutoPaused(e.AgentID) })
		}
	}
	if e.CallID != "" {
		s.stats[string(e.Type)]++
	}
}

// checkDecision runs under the ACD's lock at every offer: no waiting caller
// ranked before c (priority + queue weight, then original enqueue time) was
// eligible for ag, and ag is eligible for c at c's step.
func (s *sim) checkDecision(ag *agent, c *caller) {
	if c.st != cWaiting {
		s.failLocked("offer of %s in state %d", c.id, c.st)
	}
	if !s.elig[ag.idx][c.q.idx][c.step] {
		s.failLocked("agent %s not eligible for %s in %s at step %d", ag.id, c.id, c.q.cfg.Name, c.step)
	}
	if ag.state() != AgentReady || ag.resting || ag.offer != nil || ag.call != nil {
		s.failLocked("agent %s offered in state %s", ag.id, ag.state())
	}
	rank := func(d *caller) (int, int64, uint64) { return d.prio + s.qcfg[d.q.idx].Weight, d.enqNs, d.seq }
	cp, ce, cs := rank(c)
	for _, d := range s.a.callers {
		if d == c || d.st != cWaiting || !s.elig[ag.idx][d.q.idx][d.step] {
			continue
		}
		dp, de, ds := rank(d)
		if dp > cp || (dp == cp && (de < ce || (de == ce && ds < cs))) {
			s.failLocked("FIFO: %s (%s prio %d) offered to %s before eligible %s (%s prio %d, earlier)", c.id, c.q.cfg.Name, c.prio, ag.id, d.id, d.q.cfg.Name, d.prio)
		}
	}
}

// checkInvariants checks the ACD's state after an event. Every time: each
// agent's state against its offer or call, and routing completeness (no
// routable agent eligible for a waiting caller). In depth (heaps, steps,
// max wait, overflow, fsm, timers): the agents and callers the event named
// in its output every time, everyone every 64 events.
func (s *sim) checkInvariants() {
	a := s.a
	a.mu.Lock()
	defer a.mu.Unlock()
	if s.events%64 == 0 {
		for _, ag := range a.agents {
			s.checkAgent(ag)
		}
		for id, c := range a.callers {
			if c.id != id {
				s.fail("caller map")
			}
			s.checkCaller(c)
		}
		s.checkStaffed()
	} else {
		for id := range s.touchedA {
			if ag, ok := a.aByID[id]; ok {
				s.checkAgent(ag)
			}
		}
		for id := range s.touchedC {
			if c, ok := a.callers[id]; ok {
				s.checkCaller(c)
			}
		}
	}
	clear(s.touchedA)
	clear(s.touchedC)
	// Every agent, every event: reserved and on_call map to exactly one live
	// offer or call of theirs; others have neither.
	// Routing completeness, with bitsets over agents: listed ∧ eligible = ∅.
	clear(s.listed)
	any := false
	for _, ag := range a.agents {
		switch ag.state() {
		case AgentReserved:
			if o := ag.offer; o == nil || !o.live || o.ag != ag || ag.call != nil {
				s.fail("agent %s reserved without its live offer", ag.id)
			}
		case AgentOnCall:
			if c := ag.call; c == nil || c.agent != ag || c.st != cConnected || ag.offer != nil {
				s.fail("agent %s on_call without its call", ag.id)
			}
		default:
			if ag.offer != nil || ag.call != nil {
				s.fail("agent %s %s with an offer or a call", ag.id, ag.state())
			}
		}
		if ag.listed {
			s.listed[ag.idx/64] |= 1 << (ag.idx % 64)
			any = true
		}
	}
	if !any {
		return
	}
	for _, q := range a.queues {
		// Skip queues that no listed agent could serve at any step.
		steps := s.eligBits[q.idx]
		last := steps[len(steps)-1] // steps only widen: the last is the union
		hit := false
		for w, bits := range last {
			hit = hit || bits&s.listed[w] != 0
		}
		if !hit {
			continue
		}
		for _, c := range q.all {
			if c.st != cWaiting {
				continue
			}
			for w, bits := range s.eligBits[q.idx][c.step] {
				if m := bits & s.listed[w]; m != 0 {
					ag := a.agents[w*64+mbits.TrailingZeros64(m)]
					s.fail("agent %s ready while eligible %s waits in %s", ag.id, c.id, q.cfg.Name)
				}
			}
		}
	}
}

// checkStaffed recounts each queue's staffed agents per step from the agents'
// state machines.
func (s *sim) checkStaffed() {
	for _, q := range s.a.queues {
		for e := range q.staffed {
			n := 0
			for _, ag := range s.a.agents {
				if st := ag.state(); st != AgentLoggedOut && st != AgentPaused && int(ag.minStep[q.idx]) <= e {
					n++
				}
			}
			if n != q.staffed[e] {
				s.fail("queue %s step %d: staffed %d, agents say %d", q.cfg.Name, e, q.staffed[e], n)
			}
		}
	}
}

func (s *sim) checkAgent(ag *agent) {
	a := s.a
	st := ag.state()
	switch st {
	case AgentReserved:
		o := ag.offer
		if o == nil || !o.live || o.c.st != cRinging || a.callers[o.c.id] != o.c || ag.call != nil {
			s.fail("agent %s reserved without a live offer", ag.id)
		}
		n := 0
		for _, x := range o.c.offers {
			if x == o {
				n++
			}
		}
		if n != 1 {
			s.fail("agent %s: offer in its caller %d times", ag.id, n)
		}
	case AgentOnCall:
		c := ag.call
		if c == nil || c.st != cConnected || c.agent != ag || a.callers[c.id] != c || ag.offer != nil {
			s.fail("agent %s on_call without its call", ag.id)
		}
	default:
		if ag.offer != nil || ag.call != nil {
			s.fail("agent %s %s with an offer or call", ag.id, st)
		}
	}
	if ag.listed != (st == AgentReady && !ag.resting) {
		s.fail("agent %s: listed %v in %s resting %v", ag.id, ag.listed, st, ag.resting)
	}
	if (st == AgentWrapUp || ag.resting) && ag.timer == nil {
		s.fail("agent %s in %s (resting %v) without a timer", ag.id, st, ag.resting)
	}
}

func (s *sim) checkCaller(c *caller) {
	id, q := c.id, c.q
	now := s.clk.Now()
	switch c.st {
	case cWaiting:
		if c.heapIdx < 0 || c.heapIdx >= len(q.heaps[c.step]) || q.heaps[c.step][c.heapIdx] != c || len(c.offers) != 0 {
			s.fail("waiting %s not in its heap", id)
		}
		w := now.Sub(c.joined)
		qc := s.qcfg[q.idx]
		if lo, hi := expectedStep(qc, w-1), expectedStep(qc, w); c.step < lo || c.step > hi {
			s.fail("%s in %s waited %v at step %d, want %d", id, q.cfg.Name, w, c.step, hi)
		}
		if q.cfg.MaxWait > 0 && w > q.cfg.MaxWait {
			s.fail("%s waited %v beyond max wait %v", id, w, q.cfg.MaxWait)
		}
		if q.overflow != nil && w > q.overAfter && !c.overTried {
			s.fail("%s waited %v beyond overflow", id, w)
		}
	case cRinging:
		if c.heapIdx >= 0 || len(c.offers) == 0 {
			s.fail("ringing %s in a heap or without offers", id)
		}
		for _, o := range c.offers {
			if !o.live || o.ag.offer != o || o.ag.state() != AgentReserved {
				s.fail("ringing %s: dead offer to %s", id, o.ag.id)
			}
		}
	case cConnected:
		if c.agent == nil || c.agent.call != c || c.allIdx >= 0 {
			s.fail("connected %s without its agent", id)
		}
	default:
		s.fail("gone caller %s in the map", id)
	}
	if (c.st != cConnected) != (c.allIdx >= 0 && c.allIdx < len(q.all) && q.all[c.allIdx] == c) {
		s.fail("%s: queue membership", id)
	}
}

func (s *sim) finalChecks(n int) {
	if len(s.offerIDs) != 0 {
		s.fail("offers still open: %v", s.offerIDs)
	}
	if len(s.a.callers) != 0 {
		s.fail("%d callers left in the ACD", len(s.a.callers))
	}
	outcomes := map[string]int{}
	for _, c := range s.calls {
		if c.inVisit || c.outcome == "" || c.outcome == string(EvOverflow) {
			s.fail("%s ends without an outcome (%q, in visit %v)", c.id, c.outcome, c.inVisit)
		}
		outcomes[c.outcome]++
		if c.wrapUps != c.connects {
			s.fail("%s: %d CONNECT, %d WRAPUPEND", c.id, c.connects, c.wrapUps)
		}
	}
	if len(s.calls) != n {
		s.fail("%d callers, want %d", len(s.calls), n)
	}
	for _, v := range s.a.Agents() {
		switch v.State {
		case AgentReady, AgentPaused, AgentLoggedOut:
		default:
			s.fail("agent %s stuck %s", v.ID, v.State)
		}
	}
	if p := s.clk.Pending(); p != 0 {
		s.fail("%d timers pending", p)
	}
	s.t.Logf("outcomes %v", outcomes)
	if outcomes["answered"] < n/2 || outcomes[string(EvAbandon)] == 0 || (!testing.Short() && outcomes[string(EvExitTimeout)] == 0) {
		s.fail("implausible outcomes %v", outcomes)
	}
}

// countVisit counts e into today's per-queue figures, as a report reading the
// event log would: per queue visit.
func (s *sim) countVisit(e Event) {
	if d := dayKey(e.Time); d != s.day || s.visits == nil {
		s.day, s.visits = d, map[string]*QueueView{}
	}
	if e.Queue == "" {
		return
	}
	v := s.visits[e.Queue]
	if v == nil {
		v = &QueueView{Name: e.Queue}
		s.visits[e.Queue] = v
	}
	switch e.Type {
	case EvEnterQueue:
		v.Offered++
	case EvConnect:
		v.Answered++
		v.ASA += e.Data.Wait // summed here, divided in checkQueueCounters
		if e.Data.Wait <= s.a.qByName[e.Queue].cfg.ServiceLevel {
			v.AnsweredWithin++
		}
	case EvAbandon:
		v.Abandoned++
	case EvExitTimeout:
		v.TimedOut++
	case EvExitEmpty:
		v.ExitedEmpty++
	case EvExitKey:
		v.ExitedKey++
	case EvOverflow:
		v.Overflowed++
	case EvTransfer:
		v.Transferred++
	}
}

// checkQueueCounters: each queue's view of today agrees with the event log
// counted per visit, and every visit ended once.
func (s *sim) checkQueueCounters() {
	if d := dayKey(s.clk.Now()); d != s.day { // no event yet today
		s.day, s.visits = d, map[string]*QueueView{}
	}
	for _, got := range s.a.Queues() {
		want := QueueView{Name: got.Name}
		if v := s.visits[got.Name]; v != nil {
			want = *v
		}
		if want.Answered > 0 {
			want.ASA /= time.Duration(want.Answered)
		}
		g := [...]any{got.Offered, got.Answered, got.Abandoned, got.TimedOut, got.ExitedEmpty, got.ExitedKey, got.Overflowed, got.Transferred, got.AnsweredWithin, got.ASA}
		w := [...]any{want.Offered, want.Answered, want.Abandoned, want.TimedOut, want.ExitedEmpty, want.ExitedKey, want.Overflowed, want.Transferred, want.AnsweredWithin, want.ASA}
		if g != w {
			s.fail("queue %s: view %v, events %v", got.Name, g, w)
		}
		// Every visit offered today has ended once or is still in the queue
		// (visits begun before midnight and ended today add to ended).
		ended := got.Answered + got.Abandoned + got.TimedOut + got.ExitedEmpty + got.ExitedKey + got.Overflowed
		if ended+got.Waiting < got.Offered {
			s.fail("queue %s: offered %d, %d visits ended and %d waiting", got.Name, got.Offered, ended, got.Waiting)
		}
	}
}
