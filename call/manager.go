// Package call is the per-call controller: it joins a SIP leg, its RTP session, the IVR and
// the queue, owns the call's record until it is written, and implements the small
// interfaces that ivr declares (Media, Queue).
package call

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/cdr"
	"github.com/hotline12345/hotline/ivr"
	"github.com/hotline12345/hotline/media"
	"github.com/hotline12345/hotline/sip"
)

// Queue is what the caller hears in a queue; routing settings live in the ACD's QueueConfig.
type Queue struct {
	Name              string // display name
	MusicOnHold       string
	JoinPrompt        string        // played once on entering
	ExitPrompt        string        // played when the caller leaves without an agent (max wait, no agents)
	AnnounceFrequency time.Duration // position and estimated wait every so often; 0 = never
	ExitDigit         string        // a digit that leaves the queue; "" = none
	ExitMenu          string        // the menu that digit leads to; "" = the call ends
}

// Records is where finished and answered calls go (cdr.Writer implements it).
type Records interface {
	Begin(rec cdr.Record)    // the call was answered: made durable before it returns
	Write(rec cdr.Record)    // the call ended: never blocks
	Event(ev cdr.AgentEvent) // an agent or queue event: never blocks
}

// Config wires a Manager.
type Config struct {
	NodeID     string
	Ports      *media.Ports
	Scheduler  *media.Scheduler
	Prompts    *media.Prompts
	Language   string // prompt names are looked up as Language/name, then name
	RTPTimeout time.Duration
	Menus      map[string]ivr.Menu
	Routes     []ivr.Route
	Queues     map[string]Queue
	ACDQueues  []acd.QueueConfig
	Agents     []acd.AgentConfig
	ACDClock   acd.Clock // nil: system clock
	Records    Records
	Clock      ivr.Clock
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Manager runs calls and knows which are live.
type Manager struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	routes  map[string]*ivr.Route

	base   context.Context
	cancel context.CancelCauseFunc

	acd    *acd.ACD
	dir    Directory
	dialer Dialer

	mu    sync.Mutex
	live  map[string]*Call
	rings map[ringKey]context.CancelFunc // agents being rung
	ended media.SessionStats             // RTP counters of ended calls, for the metrics
}

// ACD is the manager's call distributor (agents and queues), for the API.
func (m *Manager) ACD() *acd.ACD { return m.acd }

// SetSIP gives the manager the registrar (where agents are) and the SIP server (to ring
// them); both exist only after the manager, as the server's handlers are the manager's.
func (m *Manager) SetSIP(dir Directory, dialer Dialer) {
	m.dir, m.dialer = dir, dialer
}

// call finds a live call by our call id.
func (m *Manager) call(id string) *Call {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.live[id]
}

// rtpTotals sums the RTP counters of ended and live calls.
func (m *Manager) rtpTotals() media.SessionStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.ended
	for _, c := range m.live {
		if s := c.session(); s != nil {
			addStats(&t, s.Stats())
		}
	}
	return t
}

func addStats(t *media.SessionStats, s media.SessionStats) {
	t.PacketsIn += s.PacketsIn
	t.PacketsOut += s.PacketsOut
	t.Lost += s.Lost
	t.Strangers += s.Strangers
	t.Garbage += s.Garbage
}

// Errors that end calls; outcome maps each to a hangup side and cause.
var (
	ErrCallerHangup = errors.New("caller hung up")
	ErrRTPTimeout   = errors.New("rtp-timeout")
	ErrDrain        = errors.New("drain")
	ErrMaxWait      = errors.New("max-wait")
)

// NewManager checks that every prompt the queues need exists and registers the metrics.
func NewManager(cfg Config) (*Manager, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = ivr.SystemClock()
	}
	if cfg.Registerer == nil {
		cfg.Registerer = prometheus.NewRegistry()
	}
	for name, q := range cfg.Queues {
		if q.AnnounceFrequency <= 0 {
			continue
		}
		for _, p := range announcementPrompts {
			if !HasPrompt(cfg.Prompts, cfg.Language, p) {
				return nil, fmt.Errorf("queue %s announces position and wait, but prompt %q is missing", name, p)
			}
		}
	}
	m := &Manager{cfg: cfg, log: cfg.Logger, live: map[string]*Call{}, rings: map[ringKey]context.CancelFunc{}, routes: map[string]*ivr.Route{}}
	for i := range cfg.Routes {
		m.routes[cfg.Routes[i].Number] = &cfg.Routes[i]
	}
	var err error
	if m.acd, err = acd.New(cfg.ACDQueues, cfg.Agents, cfg.ACDClock, outbox{m}, cfg.Logger.With("caller", "acd")); err != nil {
		return nil, err
	}
	if m.metrics, err = newMetrics(cfg.Registerer, m); err != nil {
		return nil, err
	}
	for name := range cfg.Queues { // series exist from the start, so dashboards show zeros, not gaps
		m.metrics.handle.WithLabelValues(name)
		m.metrics.waitTime.WithLabelValues(name)
	}
	m.base, m.cancel = context.WithCancelCause(context.Background())
	return m, nil
}

// Close stops the ACD's timers (wrap-up, rests, ring timeouts) so that nothing more is
// decided or recorded; call it after the calls ended and before the records are flushed.
func (m *Manager) Close() { m.acd.Close() }

// HangupAll ends every live call with cause (used when the drain timeout runs out).
func (m *Manager) HangupAll(cause error) { m.cancel(cause) }

// Active is the number of live calls.
func (m *Manager) Active() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.live)
}

// LiveCall is a view of a call in progress for the API.
type LiveCall struct {
	ID        string    `json:"id"`
	SIPCallID string    `json:"sip_call_id"`
	Trunk     string    `json:"trunk"`
	Caller    string    `json:"caller"`
	Called    string    `json:"called"`
	Stage     string    `json:"stage"`
	Queue     string    `json:"queue,omitempty"`
	Codec     string    `json:"codec,omitempty"`
	Start     time.Time `json:"start"`
	Answer    time.Time `json:"answer,omitzero"`
}

// Live lists the calls in progress, oldest first.
func (m *Manager) Live() []LiveCall {
	m.mu.Lock()
	out := make([]LiveCall, 0, len(m.live))
	for _, c := range m.live {
		out = append(out, c.view())
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b LiveCall) int { return a.Start.Compare(b.Start) })
	return out
}

func (m *Manager) track(c *Call) {
	m.mu.Lock()
	m.live[c.id] = c
	m.mu.Unlock()
}

func (m *Manager) untrack(c *Call) {
	m.mu.Lock()
	if s := c.session(); s != nil {
		addStats(&m.ended, s.Stats())
	}
	delete(m.live, c.id)
	m.mu.Unlock()
}

// HandleReject records an INVITE from a trunk that was refused before a call existed.
func (m *Manager) HandleReject(r sip.Rejection) {
	rec := cdr.Record{
		ID: newID(), SIPCallID: r.SIPCallID, Direction: "inbound", Trunk: r.Trunk,
		Caller: r.From, Called: r.To, Start: r.Time, End: r.Time,
		Disposition: "failed", HangupSide: sip.SideSystem, HangupCause: r.Reason, SIPStatus: r.Status,
		NodeID: m.cfg.NodeID,
	}
	m.finish(rec)
}

func (m *Manager) finish(rec cdr.Record) {
	m.metrics.ended(rec)
	m.cfg.Records.Write(rec)
}

// prompt finds a prompt by name in the configured language first.
func (m *Manager) prompt(name string) (*media.Prompt, bool) {
	if p, ok := m.cfg.Prompts.Get(m.cfg.Language + "/" + name); ok {
		return p, true
	}
	return m.cfg.Prompts.Get(name)
}

// announcementPrompts are the prompts position and wait announcements are made of.
var announcementPrompts = []string{
	"position_pre", "position_post", "wait_pre", "minutes", "less_than_one_minute", "ten", "hundred",
	"digit_0", "digit_1", "digit_2", "digit_3", "digit_4", "digit_5", "digit_6", "digit_7", "digit_8", "digit_9",
}

// HasPrompt reports whether a prompt name resolves (for config validation).
func HasPrompt(ps *media.Prompts, language, name string) bool {
	if _, ok := ps.Get(language + "/" + name); ok {
		return true
	}
	_, ok := ps.Get(name)
	return ok
}

func newID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}

func addrOK(a netip.AddrPort) bool { return a.IsValid() && a.Port() != 0 }
