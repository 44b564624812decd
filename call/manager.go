package call

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
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
	Rating            bool          // post-call rating (话务"一次一评") after the agent hangs up
	CallbackAfter     time.Duration // virtual hold: offer a callback when the estimated wait exceeds this; 0 = never
	CallbackDigit     string        // the digit that books it
	Recording         Recording     // call recording (质检); zero = off
}

// Config wires a Manager.
type Config struct {
	NodeID     string
	Ports      *media.Ports     // with Scheduler: the media, unless Media is set
	Scheduler  *media.Scheduler // paces generated media; its stats feed the metrics
	Media      Media            // for tests; nil = RTP sessions on Ports paced by Scheduler
	Prompts    Prompts
	Language   string // prompt names are looked up as Language/name, then name
	RTPTimeout time.Duration
	// RTP latching (media.SessionConfig): probation packets, silence before another
	// source may be latched, any address; zero values are media's defaults.
	RTPProbation      int
	RTPRelatchSilence time.Duration
	RTPAnyAddress     bool
	AgentSRTP         sip.SRTPPolicy // what we offer agents' phones ("" = off); required also refuses their plain offers
	Menus             map[string]ivr.Menu
	Routes            []ivr.Route
	Queues            map[string]Queue
	ACDQueues         []acd.QueueConfig
	Agents            []acd.AgentConfig
	ACDClock          acd.Clock // nil: system clock
	// NewACD makes the distributor around the manager's outbox; nil: the in-memory
	// acd.New of ACDQueues and Agents (one node). A cluster passes cluster.NewACD.
	NewACD  func(out acd.Outbox) (ACD, error)
	Records Records
	// Admit, if set, is asked before each inbound call is answered; an error
	// (the records cannot be written: cdr.Writer.Accepting) refuses it with 503.
	Admit   func() error
	Trunks  Trunks                // outbound trunks for surveys and callbacks; nil = none
	Surveys map[string]ivr.Survey // survey scripts by name
	// CallbackTrunk is the outbound trunk that calls back callers who booked a callback.
	CallbackTrunk string
	// CallerIDs is the number each outbound trunk presents (the records' caller).
	CallerIDs map[string]string
	// DataDir is where recordings and voicemails go (under RecordingsDir); "" = none.
	DataDir string
	// CampaignRecording records the campaigns' human callback tasks; zero = the callback
	// queue's own rule. Surveys (no agent) are not recorded.
	CampaignRecording Recording
	Voicemail         Voicemail // the menus' voicemail action
	// CallbackQueue is where a voicemail's callback task waits ("" = no task).
	CallbackQueue string
	// InbandDTMF names the inbound trunks whose callers' keypad tones are read in the audio.
	InbandDTMF map[string]bool
	// Lookups are the self-service hooks of the menus' "lookup NAME" actions; Hooks asks
	// them (nil: over HTTP, call/lookup.go).
	Lookups    map[string]ivr.Lookup
	Hooks      ivr.Hooks
	Clock      Clock // nil: system clock
	Logger     *slog.Logger
	Registerer prometheus.Registerer

	// Supervisors are the agents who may listen, whisper and barge (monitor.go).
	Supervisors []string
	// Directory: departmental hotlines and offices for transfers and three-way calls.
	Directory []DirEntry
}

// Manager runs calls and knows which are live.
type Manager struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	media   Media
	plan    atomic.Pointer[plan]    // for calls starting now (SetPlan); each call keeps the one it started with
	notices atomic.Pointer[Notices] // emergency notices (SetNotices)

	base   context.Context
	cancel context.CancelCauseFunc

	acd    ACD
	dist   Distributor // the ACD, as the calls use it
	phones Phones

	mu    sync.Mutex
	live  map[string]*Call
	ended media.SessionStats // RTP counters of ended calls, for the metrics
}

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
	pl := newPlan(Plan{Menus: cfg.Menus, Routes: cfg.Routes, Queues: cfg.Queues, Surveys: cfg.Surveys,
		Prompts: cfg.Prompts, Language: cfg.Language})
	if err := pl.check(nil); err != nil {
		return nil, err
	}
	if len(cfg.Lookups) > 0 {
		for _, p := range lookupPrompts {
			if !HasPrompt(cfg.Prompts, cfg.Language, p) {
				return nil, fmt.Errorf("self-service lookups read dates and amounts, but prompt %q is missing", p)
			}
		}
		if cfg.Hooks == nil {
			cfg.Hooks = newHTTPHooks(cfg.Lookups, cfg.Language)
		}
	}
	m := &Manager{cfg: cfg, log: cfg.Logger, live: map[string]*Call{}, media: cfg.Media}
	m.plan.Store(pl)
	if m.media == nil {
		m.media = rtpMedia{ports: cfg.Ports, sched: cfg.Scheduler, timeout: cfg.RTPTimeout,
			probation: cfg.RTPProbation, relatch: cfg.RTPRelatchSilence, anyAddr: cfg.RTPAnyAddress}
	}
	var err error
	if cfg.NewACD != nil {
		m.acd, err = cfg.NewACD(outbox{m})
	} else {
		m.acd, err = acd.New(cfg.ACDQueues, cfg.Agents, cfg.ACDClock, outbox{m}, cfg.Logger.With("caller", "acd"))
	}
	if err != nil {
		return nil, err
	}
	m.dist = m.acd
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

// ACD is the manager's call distributor (agents and queues), for the API.
func (m *Manager) ACD() ACD { return m.acd }

// SetPhones gives the manager the way to ring agents' phones; it exists only after the
// manager, as the SIP server's handlers are the manager's.
func (m *Manager) SetPhones(p Phones) { m.phones = p }

// SetSIP rings agents through the registrar (where they are) and the SIP server.
func (m *Manager) SetSIP(dir Directory, dialer Dialer) {
	m.phones = sipPhones{dir: dir, dialer: dialer, srtp: m.cfg.AgentSRTP}
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
	Agent     string    `json:"agent,omitempty"`
	Codec     string    `json:"codec,omitempty"`
	Start     time.Time `json:"start"`
	Answer    time.Time `json:"answer,omitzero"`
	// Supervisor and Monitor: who monitors the call and how (listen, whisper, barge);
	// Department: the directory entry on the call (three-way, or after a transfer).
	Supervisor string `json:"supervisor,omitempty"`
	Monitor    string `json:"monitor,omitempty"`
	Department string `json:"department,omitempty"`
	// Node is the node the call lives on (cluster mode: the API lists every node's calls).
	Node string `json:"node,omitempty"`
}

// Live lists the calls in progress, oldest first.
func (m *Manager) Live() []LiveCall {
	m.mu.Lock()
	out := make([]LiveCall, 0, len(m.live))
	for _, c := range m.live {
		out = append(out, *c.view.Load())
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b LiveCall) int { return a.Start.Compare(b.Start) })
	return out
}

func (m *Manager) call(id string) *Call {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.live[id]
}

func (m *Manager) track(c *Call) {
	m.mu.Lock()
	m.live[c.id] = c
	m.mu.Unlock()
}

func (m *Manager) untrack(c *Call, st media.SessionStats) {
	m.mu.Lock()
	addStats(&m.ended, st)
	delete(m.live, c.id)
	m.mu.Unlock()
}

// rtpTotals sums the RTP counters of ended and live calls.
func (m *Manager) rtpTotals() media.SessionStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.ended
	for _, c := range m.live {
		if s := c.stream.Load(); s != nil {
			addStats(&t, (*s).Stats())
		}
	}
	return t
}

func addStats(t *media.SessionStats, s media.SessionStats) {
	t.PacketsIn += s.PacketsIn
	t.PacketsOut += s.PacketsOut
	t.Lost += s.Lost
	t.Strangers += s.Strangers
	t.Probation += s.Probation
	t.SRTPFailed += s.SRTPFailed
	t.Garbage += s.Garbage
}

// HandleReject records an INVITE from a trunk that was refused before a call existed.
func (m *Manager) HandleReject(r sip.Rejection) {
	o := Classify(Ending{Cause: ErrRejected, LegSide: sip.SideSystem, LegCause: r.Reason, LegStatus: r.Status})
	m.finish(cdr.Record{
		ID: newID(), SIPCallID: r.SIPCallID, Direction: cdr.DirectionInbound, Trunk: r.Trunk,
		Caller: r.From, Called: r.To, Start: r.Time, End: r.Time, NodeID: m.cfg.NodeID,
		Disposition: o.Disposition, HangupSide: o.Side, HangupCause: o.Cause, SIPStatus: o.Status,
	})
}

func (m *Manager) finish(rec cdr.Record) {
	m.metrics.ended(rec)
	m.cfg.Records.Write(rec)
}

// prompt finds a prompt by name in the plan's language first (the newest plan: a live
// call after a reload hears the new recording of a prompt).
func (m *Manager) prompt(name string) (*media.Prompt, bool) {
	if name == "" {
		return nil, false
	}
	pl := m.plan.Load()
	if p, ok := pl.Prompts.Get(pl.Language + "/" + name); ok {
		return p, true
	}
	return pl.Prompts.Get(name)
}

// prompts resolves names, skipping (and logging) the missing ones.
func (m *Manager) prompts(log *slog.Logger, names []string) []*media.Prompt {
	out := make([]*media.Prompt, 0, len(names))
	for _, n := range names {
		if p, ok := m.prompt(n); ok {
			out = append(out, p)
		} else {
			log.Warn("prompt missing", "prompt", n)
		}
	}
	return out
}

// announcementPrompts are the prompts position and wait announcements are made of.
var announcementPrompts = []string{
	"position_pre", "position_post", "wait_pre", "minutes", "less_than_one_minute", "ten", "hundred",
	"digit_0", "digit_1", "digit_2", "digit_3", "digit_4", "digit_5", "digit_6", "digit_7", "digit_8", "digit_9",
}

// HasPrompt reports whether a prompt name resolves (for config validation).
func HasPrompt(ps Prompts, language, name string) bool {
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

// rtpMedia makes RTP sessions on the configured ports, paced by the shared schedulers.
type rtpMedia struct {
	ports   *media.Ports
	sched   *media.Scheduler
	timeout time.Duration

	probation int
	relatch   time.Duration
	anyAddr   bool
}

func (r rtpMedia) NewStream(log *slog.Logger) (Stream, error) {
	s, err := r.ports.NewSession(media.SessionConfig{Scheduler: r.sched, Timeout: r.timeout, Logger: log,
		Probation: r.probation, RelatchSilence: r.relatch, AnyAddress: r.anyAddr})
	if err != nil {
		return nil, err
	}
	return s, nil
}

func (rtpMedia) Bridge(a, b Stream) Bridge {
	return media.NewBridge(a.(*media.Session), b.(*media.Session))
}
