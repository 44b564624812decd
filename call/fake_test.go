package call

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hotline12345/hotline/cdr"
	"github.com/hotline12345/hotline/media"
	"github.com/hotline12345/hotline/sip"
)

// Fakes of the interfaces call/ declares, each a small struct the test can steer and read.

// fakeLeg is a SIP leg: inbound (a citizen) or outbound (an agent's phone).
type fakeLeg struct {
	id, caller, called string
	received           time.Time
	delay              time.Duration
	media              sip.Media
	updates            chan sip.Media
	digits             chan rune
	refers             chan *sip.Refer
	done               chan struct{}
	hangupBlock        chan struct{} // if set, Hangup waits for it (a phone that stops answering)

	mu       sync.Mutex
	answered bool
	rejected int
	hungUp   string // the cause we hung up with
	released bool
	side     string
	cause    string
	status   int
}

func newLeg(id string) *fakeLeg {
	return &fakeLeg{
		id: id, caller: "13800138000", called: "12345",
		media:   sip.Media{Addr: netip.MustParseAddrPort("127.0.0.1:40000"), PayloadType: sip.PayloadPCMA, Direction: sip.SendRecv},
		updates: make(chan sip.Media, 1), digits: make(chan rune, 8), refers: make(chan *sip.Refer, 1), done: make(chan struct{}),
	}
}

func (l *fakeLeg) SIPCallID() string              { return l.id }
func (l *fakeLeg) Media() sip.Media               { return l.media }
func (l *fakeLeg) SignalAddr() netip.Addr         { return netip.Addr{} }
func (l *fakeLeg) MediaUpdates() <-chan sip.Media { return l.updates }
func (l *fakeLeg) Digits() <-chan rune            { return l.digits }
func (l *fakeLeg) Refers() <-chan *sip.Refer      { return l.refers }
func (l *fakeLeg) Done() <-chan struct{}          { return l.done }
func (l *fakeLeg) Caller() string                 { return l.caller }
func (l *fakeLeg) Called() string                 { return l.called }
func (l *fakeLeg) Trunk() string                  { return "loopback" }
func (l *fakeLeg) Received() time.Time            { return l.received }
func (l *fakeLeg) AnswerDelay() time.Duration     { return l.delay }
func (l *fakeLeg) Ring() error                    { return nil }
func (l *fakeLeg) Release()                       { l.mu.Lock(); l.released = true; l.mu.Unlock() }
func (l *fakeLeg) End() (side, cause string, status int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.side, l.cause, l.status
}

func (l *fakeLeg) Answer(ctx context.Context, local netip.AddrPort) (sip.Media, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.side != "" {
		return sip.Media{}, sip.ErrLegEnded
	}
	l.answered = true
	return l.media, nil
}

func (l *fakeLeg) Reject(code int, reason string) error {
	l.mu.Lock()
	l.rejected = code
	l.mu.Unlock()
	l.end("system", reason, code)
	return nil
}

func (l *fakeLeg) Hangup(ctx context.Context, cause string) error {
	l.mu.Lock()
	if l.side != "" {
		l.mu.Unlock()
		return nil
	}
	l.hungUp = cause
	l.mu.Unlock()
	if l.hangupBlock != nil {
		select {
		case <-l.hangupBlock:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	l.end(sip.SideSystem, cause, 0)
	return nil
}

// end is the leg ending (the remote's BYE or CANCEL, or ours).
func (l *fakeLeg) end(side, cause string, status int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.side != "" {
		return
	}
	l.side, l.cause, l.status = side, cause, status
	close(l.done)
}

func (l *fakeLeg) hungUpWith() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.hungUp
}

// fakeStream is an RTP session: prompts "play" until the test ends them (or at once).
type fakeStream struct {
	instant bool // prompts end as soon as they start
	digits  chan rune
	done    chan struct{}

	mu      sync.Mutex
	played  [][]string
	looping string
	playing chan struct{}
	closed  bool
}

func (s *fakeStream) LocalAddr() netip.AddrPort                    { return netip.MustParseAddrPort("127.0.0.1:30000") }
func (s *fakeStream) SetRemote(netip.AddrPort, media.Codec, uint8) {}
func (s *fakeStream) SetAudioPayloadType(uint8)                    {}
func (s *fakeStream) AllowSource(netip.Addr)                       {}
func (s *fakeStream) SetSending(bool)                              {}
func (s *fakeStream) SetSRTP(*media.SRTPKeys) error                { return nil }
func (s *fakeStream) Start(context.Context)                        {}
func (s *fakeStream) Digits() <-chan rune                          { return s.digits }
func (s *fakeStream) Done() <-chan struct{}                        { return s.done }
func (s *fakeStream) Err() error                                   { return nil }
func (s *fakeStream) SetInactivityTimeout(time.Duration)           {}
func (s *fakeStream) Stats() media.SessionStats                    { return media.SessionStats{} }
func (s *fakeStream) Close() error                                 { s.mu.Lock(); s.closed = true; s.mu.Unlock(); return nil }

func (s *fakeStream) Play(ps ...*media.Prompt) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.Name
	}
	s.played = append(s.played, names)
	s.looping = ""
	ch := make(chan struct{})
	if s.instant {
		close(ch)
		return ch
	}
	s.playing = ch
	return ch
}

func (s *fakeStream) Loop(p *media.Prompt) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
	s.looping = p.Name
}

func (s *fakeStream) StopPlay() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
	s.looping = ""
}

func (s *fakeStream) stopLocked() {
	if s.playing != nil {
		close(s.playing)
		s.playing = nil
	}
}

// finishPrompt ends the prompt playing now, as if it had played to its end.
func (s *fakeStream) finishPrompt() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.playing == nil {
		return false
	}
	s.stopLocked()
	return true
}

func (s *fakeStream) loop() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.looping
}

func (s *fakeStream) playedFlat() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, p := range s.played {
		out = append(out, p...)
	}
	return out
}

// fakeMedia makes fake streams; the first is the caller's, the rest agents'.
type fakeMedia struct {
	mu      sync.Mutex
	streams []*fakeStream
	bridges []*fakeBridge
	fail    error
}

func (m *fakeMedia) NewStream(*slog.Logger) (Stream, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return nil, m.fail
	}
	s := &fakeStream{instant: true, digits: make(chan rune, 8), done: make(chan struct{})}
	m.streams = append(m.streams, s)
	return s, nil
}

func (m *fakeMedia) Bridge(a, b Stream) Bridge {
	m.mu.Lock()
	defer m.mu.Unlock()
	br := &fakeBridge{}
	m.bridges = append(m.bridges, br)
	return br
}

func (m *fakeMedia) stream(i int) *fakeStream {
	m.mu.Lock()
	defer m.mu.Unlock()
	if i < len(m.streams) {
		return m.streams[i]
	}
	return nil
}

func (m *fakeMedia) bridge(i int) *fakeBridge {
	m.mu.Lock()
	defer m.mu.Unlock()
	if i < len(m.bridges) {
		return m.bridges[i]
	}
	return nil
}

type fakeBridge struct {
	mu      sync.Mutex
	running bool
	starts  int
}

func (b *fakeBridge) Start() { b.mu.Lock(); b.running = true; b.starts++; b.mu.Unlock() }
func (b *fakeBridge) Stop()  { b.mu.Lock(); b.running = false; b.mu.Unlock() }
func (b *fakeBridge) on() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.running
}

// fakePhones holds each ring until the test answers, declines or lets it be cancelled.
type fakePhones struct {
	gate chan struct{} // if set, answered rings wait for it to close before they return
	slow chan struct{} // if set, a cancelled ring returns only once it closes (a slow CANCEL)

	mu    sync.Mutex
	rings map[string]*fakeRing
	log   []string // agents rung, in order
	held  int      // answered rings waiting at the gate
}

type fakeRing struct {
	req     RingRequest
	outcome chan ringOutcome
	ctx     context.Context
}

type ringOutcome struct {
	leg *fakeLeg
	err error
}

func (p *fakePhones) Ring(ctx context.Context, r RingRequest) (AgentLeg, error) {
	fr := &fakeRing{req: r, outcome: make(chan ringOutcome, 1), ctx: ctx}
	p.mu.Lock()
	if p.rings == nil {
		p.rings = map[string]*fakeRing{}
	}
	p.rings[r.Agent] = fr
	p.log = append(p.log, r.Agent)
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		if p.rings[r.Agent] == fr {
			delete(p.rings, r.Agent)
		}
		p.mu.Unlock()
	}()
	select {
	case o := <-fr.outcome:
		if o.err != nil {
			return nil, o.err
		}
		if p.gate != nil {
			p.mu.Lock()
			p.held++
			p.mu.Unlock()
			<-p.gate // a 200 OK that crossed our CANCEL still answers the leg
		}
		return o.leg, nil
	case <-ctx.Done():
		if p.slow != nil {
			<-p.slow
		}
		return nil, ErrRingCancelled
	}
}

func (p *fakePhones) heldCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.held
}

func (p *fakePhones) ringing(agent string) *fakeRing {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rings[agent]
}

func (p *fakePhones) rung() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.log)
}

// fakeRecords keeps what the call path writes.
type fakeRecords struct {
	gate chan struct{} // if set, Begin waits for it (under mu to set)

	mu      sync.Mutex
	begun   []cdr.Record
	written []cdr.Record
	events  []cdr.AgentEvent
}

func (r *fakeRecords) Begin(rec cdr.Record) {
	r.mu.Lock()
	r.begun = append(r.begun, rec)
	gate := r.gate
	r.mu.Unlock()
	if gate != nil {
		<-gate // a slow fsync
	}
}
func (r *fakeRecords) Write(rec cdr.Record) {
	r.mu.Lock()
	r.written = append(r.written, rec)
	r.mu.Unlock()
}
func (r *fakeRecords) Event(ev cdr.AgentEvent) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
}

func (r *fakeRecords) lastBegun() cdr.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.begun) == 0 {
		return cdr.Record{}
	}
	return r.begun[len(r.begun)-1]
}

func (r *fakeRecords) records() []cdr.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.written)
}

func (r *fakeRecords) eventsOf(typ string) []cdr.AgentEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []cdr.AgentEvent
	for _, e := range r.events {
		if e.Event == typ {
			out = append(out, e)
		}
	}
	return out
}

// fakePrompts resolves every name to a short silent prompt of that name.
type fakePrompts struct{ missing map[string]bool }

func (p fakePrompts) Get(name string) (*media.Prompt, bool) {
	if p.missing[name] {
		return nil, false
	}
	return media.Silence(name, 20*time.Millisecond), true
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

var errTest = errors.New("test")

var discardLog = slog.New(slog.NewTextHandler(io.Discard, nil))
