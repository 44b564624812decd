package call

import (
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	sipgosip "github.com/emiago/sipgo/sip"

	"github.com/hotline12345/hotline/cdr"
	"github.com/hotline12345/hotline/ivr"
	"github.com/hotline12345/hotline/sip"
)

// mixMedia is fakeMedia that can mix: its mixers record members and who hears whom.
type mixMedia struct {
	*fakeMedia
	mu     sync.Mutex
	mixers []*fakeMixer
	dtmf   bool        // streams record the keys sent out of them
	keyed  []*dtmfFake // those streams, in order
}

func (m *mixMedia) NewStream(log *slog.Logger) (Stream, error) {
	s, err := m.fakeMedia.NewStream(log)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil || !m.dtmf {
		return s, err
	}
	k := &dtmfFake{fakeStream: s.(*fakeStream)}
	m.keyed = append(m.keyed, k)
	return k, nil
}

func (m *mixMedia) keyedStream(i int) *dtmfFake {
	m.mu.Lock()
	defer m.mu.Unlock()
	if i < len(m.keyed) {
		return m.keyed[i]
	}
	return nil
}

func (m *mixMedia) NewMixer() Mixer {
	m.mu.Lock()
	defer m.mu.Unlock()
	mx := &fakeMixer{hears: map[Stream][]Stream{}}
	m.mixers = append(m.mixers, mx)
	return mx
}

func (m *mixMedia) mixer(i int) *fakeMixer {
	m.mu.Lock()
	defer m.mu.Unlock()
	if i < len(m.mixers) {
		return m.mixers[i]
	}
	return nil
}

type fakeMixer struct {
	mu      sync.Mutex
	members []Stream
	hears   map[Stream][]Stream
	closed  bool
}

func (x *fakeMixer) Add(s Stream) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if !slices.Contains(x.members, s) {
		x.members = append(x.members, s)
	}
	return nil
}

func (x *fakeMixer) Remove(s Stream) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.members = slices.DeleteFunc(x.members, func(m Stream) bool { return m == s })
	delete(x.hears, s)
}

func (x *fakeMixer) SetHears(l Stream, srcs ...Stream) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.hears[l] = slices.Clone(srcs)
}

func (x *fakeMixer) Close() { x.mu.Lock(); x.closed = true; x.members = nil; x.mu.Unlock() }

// heard reports whether l hears src.
func (x *fakeMixer) heard(l, src Stream) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return slices.Contains(x.hears[l], src)
}

func (x *fakeMixer) isClosed() bool { x.mu.Lock(); defer x.mu.Unlock(); return x.closed }

func (x *fakeMixer) size() int { x.mu.Lock(); defer x.mu.Unlock(); return len(x.members) }

// newMixHarness is a harness whose media mixes, with 1009 a supervisor and a directory.
func newMixHarness(t *testing.T) (*harness, *mixMedia, *fakeTrunks) {
	mm := &mixMedia{fakeMedia: &fakeMedia{}}
	trunks := &fakeTrunks{}
	h := newHarness(t, func(c *Config) {
		c.Media = mm
		c.Supervisors = []string{"1009"}
		c.Directory = []DirEntry{{Name: "dept", Number: "13900000000", Trunk: "out"},
			{Name: "night", Number: "13900000001", Trunk: "out", Timezone: "UTC", Hours: []ivr.Hours{{Open: "20:00", Close: "22:00"}}}}
		c.Trunks = trunks
	})
	h.media = mm.fakeMedia
	return h, mm, trunks
}

// The loop's matrix per mode: listening nobody hears the supervisor; whispering only the
// agent does; barging everyone; a switch, a stop and the agent's hang-up follow.
func TestMonitorModes(t *testing.T) {
	h, mm, _ := newMixHarness(t)
	_, ag, br, _ := h.connected()
	id := h.m.Live()[0].ID
	cit, agS := h.media.stream(0), h.media.stream(1)

	for _, tc := range []struct {
		sup, mode string
		err       error
	}{{"1002", ModeListen, ErrNotSupervisor}, {"1009", "shout", ErrBadMode}} {
		if err := h.m.Monitor(id, tc.sup, tc.mode); !errors.Is(err, tc.err) {
			t.Errorf("Monitor(%s, %s) = %v, want %v", tc.sup, tc.mode, err, tc.err)
		}
	}
	if err := h.m.Monitor("nope", "1009", ModeListen); !errors.Is(err, ErrNoCall) {
		t.Errorf("Monitor(no call) = %v", err)
	}
	if err := h.m.Monitor(id, "1009", ModeListen); err != nil {
		t.Fatal(err)
	}
	r := h.waitRing("1009")
	want(t, "supervisor ring shows the agent", r.req.Caller, "1001")
	supLeg := h.answer(r, "s1")
	var mx *fakeMixer
	eventually(t, "supervisor mixed", func() bool { mx = mm.mixer(0); return mx != nil && mx.size() == 3 })
	sup := h.media.stream(2)
	want(t, "the agent's bridge stopped", br.on(), false)
	check := func(mode string, citHearsSup, agHearsSup bool) {
		t.Helper()
		eventually(t, mode, func() bool {
			return mx.heard(cit, agS) && mx.heard(agS, cit) && mx.heard(sup, cit) && mx.heard(sup, agS) &&
				mx.heard(cit, sup) == citHearsSup && mx.heard(agS, sup) == agHearsSup
		})
	}
	check(ModeListen, false, false)
	if err := h.m.Monitor(id, "1009", ModeWhisper); err != nil {
		t.Fatal(err)
	}
	check(ModeWhisper, false, true)
	eventually(t, "the API's view", func() bool { v := h.m.Live()[0]; return v.Supervisor == "1009" && v.Monitor == ModeWhisper })
	sup.digits <- '7'
	check(ModeBarge, true, true)
	if err := h.m.Monitor(id, "1008", ModeListen); !errors.Is(err, ErrNotSupervisor) {
		t.Errorf("a second, unknown supervisor: %v", err)
	}

	if err := h.m.StopMonitor(id); err != nil {
		t.Fatal(err)
	}
	eventually(t, "mixer closed, bridge back", func() bool { return mx.isClosed() && br.on() })
	eventually(t, "supervisor hung up", func() bool { return supLeg.hungUpWith() != "" })
	if err := h.m.StopMonitor(id); !errors.Is(err, ErrNoMonitor) {
		t.Errorf("StopMonitor twice: %v", err)
	}

	// Again, then the agent hangs up: the supervisor leaves with them.
	if err := h.m.Monitor(id, "1009", ModeBarge); err != nil {
		t.Fatal(err)
	}
	sup2 := h.answer(h.waitRing("1009"), "s2")
	eventually(t, "second mixer", func() bool { m := mm.mixer(1); return m != nil && m.size() == 3 })
	ag.end(sip.SideCaller, "BYE", 0) // the agent's BYE (the agent is the remote's caller side)
	eventually(t, "supervisor hung up with the agent", func() bool { return sup2.hungUpWith() != "" })
}

// A three-way call with a directory entry: the department is dialled through its trunk,
// mixed with citizen and agent; the agent drops out and citizen and department are bridged;
// the department's hang-up ends the call; the record keeps the conference.
func TestConferenceAndDropOut(t *testing.T) {
	h, mm, trunks := newMixHarness(t)
	leg, ag, _, done := h.connected()
	id := h.m.Live()[0].ID
	if err := h.m.Conference(id, "13800138000", ""); !errors.Is(err, ErrUnknownEntry) {
		t.Errorf("outside the directory: %v", err)
	}
	if err := h.m.Conference(id, "dept", "1002"); !errors.Is(err, ErrNotYourCall) {
		t.Errorf("another agent's call: %v", err)
	}
	if err := h.m.Conference(id, "dept", "1001"); err != nil {
		t.Fatal(err)
	}
	d := trunks.waitDial(t, 0)
	want(t, "number dialled", d.number, "13900000000")
	d.outcome <- nil
	var mx *fakeMixer
	eventually(t, "department mixed", func() bool { mx = mm.mixer(0); return mx != nil && mx.size() == 3 })
	want(t, "the API's view", h.m.Live()[0].Department, "dept")
	if err := h.m.Conference(id, "dept", ""); !errors.Is(err, ErrConferenceBusy) {
		t.Errorf("a second department: %v", err)
	}
	if err := h.m.LeaveConference(id, ""); err != nil {
		t.Fatal(err)
	}
	eventually(t, "agent hung up", func() bool { return ag.hungUpWith() != "" })
	eventually(t, "citizen and department bridged", func() bool { b := h.media.bridge(1); return b != nil && b.on() && mx.isClosed() })
	want(t, "the citizen is still up", leg.hungUpWith(), "")
	d.end(sip.SideCaller, "BYE", 0)
	rec := h.record(done)
	want(t, "disposition", rec.Disposition, cdr.DispositionAnswered)
	want(t, "cause", rec.HangupCause, "department-hangup")
	hs := rec.Handoffs.List()
	if len(hs) != 1 || hs[0].Kind != cdr.HandoffConference || hs[0].Outcome != "answered" || hs[0].AgentLeft.IsZero() || hs[0].Agent != "1001" {
		t.Errorf("handoffs %+v", hs)
	}
	if leg.hungUpWith() == "" {
		t.Error("the citizen was not hung up after the department left")
	}
}

// Nothing outside the directory is dialled: a REFER to an unknown target gets 404, one to
// an entry outside its hours 480 (and a conference with it ErrEntryClosed), and the
// record keeps the closed attempts; the agent stays with the citizen.
func TestDirectoryRefusals(t *testing.T) {
	h, _, trunks := newMixHarness(t)
	leg, ag, br, done := h.connected()
	id := h.m.Live()[0].ID
	for _, tc := range []struct {
		target string
		code   int
	}{{"13800138000", 404}, {"night", 480}} {
		r := sip.NewRefer(sipgosip.Uri{User: tc.target, Host: "127.0.0.1"}, "1001")
		ag.refers <- r
		eventually(t, "REFER answered", func() bool { return r.Answer() != 0 })
		want(t, "REFER to "+tc.target, r.Answer(), tc.code)
	}
	if err := h.m.Conference(id, "night", ""); !errors.Is(err, ErrEntryClosed) {
		t.Errorf("conference outside the hours: %v", err)
	}
	want(t, "dials", trunks.count(), 0)
	want(t, "the agent still bridged", br.on(), true)
	leg.end(sip.SideCaller, "BYE", 0)
	rec := h.record(done)
	hs := rec.Handoffs.List()
	if len(hs) != 2 || hs[0].Kind != cdr.HandoffTransfer || hs[0].Outcome != "closed" || hs[1].Kind != cdr.HandoffConference || hs[1].Outcome != "closed" {
		t.Errorf("handoffs %+v, want the closed transfer and conference", hs)
	}
	want(t, "transfers", rec.Transfers, 0)
}

// The agent holds the citizen while a supervisor listens: citizen and agent leave the
// mixer and the citizen hears music on hold; unhold puts them back.
func TestMonitorAcrossHold(t *testing.T) {
	h, mm, _ := newMixHarness(t)
	_, ag, _, _ := h.connected()
	id := h.m.Live()[0].ID
	if err := h.m.Monitor(id, "1009", ModeListen); err != nil {
		t.Fatal(err)
	}
	h.answer(h.waitRing("1009"), "s1")
	var mx *fakeMixer
	eventually(t, "supervisor mixed", func() bool { mx = mm.mixer(0); return mx != nil && mx.size() == 3 })
	hold(ag)
	eventually(t, "held: only the supervisor mixed, music to the citizen", func() bool {
		return mx.size() == 1 && h.media.stream(0).loop() == "zh/moh"
	})
	ag.updates <- ag.media // unhold (sendrecv)
	eventually(t, "unheld: all three mixed", func() bool { return mx.size() == 3 && h.media.stream(0).loop() == "" })
	if !mx.heard(h.media.stream(2), h.media.stream(0)) {
		t.Error("after unhold the supervisor does not hear the citizen")
	}
}

// dtmfFake is a fake stream that records the keys sent out of it.
type dtmfFake struct {
	*fakeStream
	mu   sync.Mutex
	sent []rune
}

func (s *dtmfFake) SendDTMF(d rune, _ time.Duration) error {
	s.mu.Lock()
	s.sent = append(s.sent, d)
	s.mu.Unlock()
	return nil
}

func (s *dtmfFake) keys() string { s.mu.Lock(); defer s.mu.Unlock(); return string(s.sent) }

// The agent's keys start the three-way call (*31), then go to the department's IVR.
func TestConferenceByKeysThenKeysToDepartment(t *testing.T) {
	h, mm, trunks := newMixHarness(t)
	mm.dtmf = true
	h.connected()
	agS := h.media.stream(1)
	for _, d := range "*31" {
		agS.digits <- d
	}
	d := trunks.waitDial(t, 0)
	want(t, "number dialled", d.number, "13900000000")
	d.outcome <- nil
	eventually(t, "department mixed", func() bool { mx := mm.mixer(0); return mx != nil && mx.size() == 3 })
	for _, k := range "2#" {
		agS.digits <- k
	}
	dept := mm.keyedStream(2) // citizen, agent, department
	eventually(t, "keys to the department", func() bool { return dept.keys() == "2#" })
	want(t, "keys to the citizen", mm.keyedStream(0).keys(), "")
}
