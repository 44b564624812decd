package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/api"
	"github.com/hotline12345/hotline/auth"
	"github.com/hotline12345/hotline/call"
	"github.com/hotline12345/hotline/callback"
	"github.com/hotline12345/hotline/cdr"
	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/configs"
	"github.com/hotline12345/hotline/mask"
	"github.com/hotline12345/hotline/media"
	"github.com/hotline12345/hotline/notice"
	"github.com/hotline12345/hotline/sip"
)

// options are the command-line flags; empty strings keep the config's value.
type options struct {
	ConfigFile string
	SIPListen  string
	HTTPListen string
	DataDir    string
	RTPPorts   string
	CDRDSN     string
	NodeID     string
	Pprof      bool
	// RetentionFirstRun is not a flag: tests shorten the retention job's first run (0 = a minute).
	RetentionFirstRun time.Duration
}

// app is one running server: everything wired, sockets bound.
type app struct {
	cfg       *config.Config
	log       *slog.Logger
	reg       *prometheus.Registry
	sched     *media.Scheduler
	store     cdr.Store
	writer    *cdr.Writer
	calls     *call.Manager
	registrar *sip.Registrar
	campaigns callback.Store // beside the records; nil without outbound trunks
	audit     *api.AuditWriter
	dialer    *callback.Dialer
	dialerRun *background   // the dialer's goroutine; nil without a dialer
	retention *retentionJob // nil when records are kept forever
	feed      *feedJob      // the work-order feed (webhooks, SSE); nil without an outbox
	sip       *sip.Server
	http      *http.Server
	httpLn    net.Listener
	started   time.Time
	memory    *memoryReleaser
	reloads   *reloader           // config reload (reload.go)
	authn     *auth.Authenticator // the API's credentials (tokens replaced by a reload)
	notices   *notice.Store       // emergency notices
	cluster   *clusterNode        // nil: one node alone (no cluster: section)
}

// loadConfig reads the config file (or the embedded default), applies the flags and
// checks every prompt name against the prompt set it names.
func loadConfig(o options) (*config.Config, *media.Prompts, error) {
	name, data := "configs/"+configs.DefaultName, []byte(nil)
	var err error
	if o.ConfigFile != "" {
		name = o.ConfigFile
		if data, err = os.ReadFile(o.ConfigFile); err != nil {
			return nil, nil, fmt.Errorf("config: %w", err)
		}
	} else if data, err = fs.ReadFile(configs.FS, configs.DefaultName); err != nil {
		return nil, nil, fmt.Errorf("embedded config: %w", err)
	}
	cfg, err := config.Load(name, data, config.Known{})
	if err != nil {
		return nil, nil, err
	}
	var prompts *media.Prompts
	if cfg.Prompts.Dir == "" {
		prompts, err = media.LoadPrompts(configs.FS, configs.PromptsDir)
	} else {
		prompts, err = media.LoadPrompts(os.DirFS(cfg.Prompts.Dir), ".")
	}
	if err != nil {
		return nil, nil, fmt.Errorf("prompts: %w", err)
	}
	lang := cfg.Prompts.Language
	cfg, err = config.Load(name, data, config.Known{Prompt: func(p string) bool { return call.HasPrompt(prompts, lang, p) }})
	if err != nil {
		return nil, nil, err
	}
	for flag, v := range map[string]string{"--sip-listen": o.SIPListen, "--http-listen": o.HTTPListen} {
		if v == "" {
			continue
		}
		if _, err := netip.ParseAddrPort(v); err != nil {
			return nil, nil, fmt.Errorf("%s: want IP:PORT, got %q", flag, v)
		}
	}
	if o.RTPPorts != "" {
		if _, _, err := config.ParsePorts(o.RTPPorts); err != nil {
			return nil, nil, fmt.Errorf("--rtp-ports: %v", err)
		}
		cfg.RTP.Ports = o.RTPPorts
	}
	if o.SIPListen != "" {
		cfg.SIP.Listen = o.SIPListen
	}
	if o.HTTPListen != "" {
		cfg.HTTP.Listen = o.HTTPListen
	}
	if o.DataDir != "" {
		cfg.DataDir = o.DataDir
	}
	if o.CDRDSN != "" {
		cfg.CDRDSN = o.CDRDSN
	}
	if o.NodeID != "" {
		cfg.NodeID = o.NodeID
	}
	return cfg, prompts, nil
}

// newApp wires the server and binds its sockets; nothing is served until serve.
func newApp(o options, log *slog.Logger) (_ *app, err error) {
	cfg, prompts, err := loadConfig(o)
	if err != nil {
		return nil, err
	}
	if cfg.Log.Masked() { // citizens' numbers never reach the log in full (log.mask_numbers)
		log = slog.New(mask.NewHandler(log.Handler()))
	} else {
		log.Warn("citizens' numbers are logged in full (log.mask_numbers: false); for debugging only")
	}
	a := &app{cfg: cfg, log: log, reg: prometheus.NewRegistry(), started: time.Now()}
	defer func() {
		if err != nil { // release what was opened before the failure
			a.close()
		}
	}()
	a.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	setMemoryLimit(cfg, log)
	a.memory = newMemoryReleaser(a.reg)

	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	dsn := cfg.CDRDSN
	if dsn == "" {
		dsn = filepath.Join(cfg.DataDir, "cdr.db")
	}
	openCtx, cancelOpen := context.WithTimeout(context.Background(), 15*time.Second)
	store, err := cdr.Open(openCtx, dsn)
	cancelOpen()
	if err != nil {
		return nil, err // store may be a typed nil here: keep it out of a.store
	}
	a.store = store
	if a.writer, err = cdr.NewWriter(a.store, cdr.WriterOptions{
		JournalDir: filepath.Join(cfg.DataDir, "journal"), SpillLimit: cfg.CDRSpillLimit, Logger: log, Registerer: a.reg,
		SharedAgents: cfg.Cluster != nil,
	}); err != nil {
		return nil, err
	}

	if cfg.Cluster != nil {
		if a.cluster, err = openCluster(cfg, log); err != nil {
			return nil, err
		}
	}

	sipAddr := netip.MustParseAddrPort(cfg.SIP.Listen)
	mediaIP := sipAddr.Addr()
	if cfg.SIP.MediaIP != "" {
		mediaIP = netip.MustParseAddr(cfg.SIP.MediaIP)
	}
	if mediaIP.IsUnspecified() {
		return nil, errors.New("config: sip.media_ip: required when sip.listen is a wildcard address (it goes into SDP)")
	}
	low, high, _ := config.ParsePorts(cfg.RTP.Ports)
	ports, err := media.NewPorts(mediaIP, low, high)
	if err != nil {
		return nil, fmt.Errorf("rtp ports: %w", err)
	}
	a.sched = media.NewScheduler(2)
	a.reloads = &reloader{opts: o, started: cfg, cfg: cfg, prompts: prompts}
	a.reloads.setPasswords(cfg.Agents)
	if a.notices, err = notice.Open(filepath.Join(cfg.DataDir, "notices"), a.noticeChecks(), log.With("caller", "notices")); err != nil {
		return nil, err
	}

	queues, acdQueues, agents := acdConfig(cfg)
	tap := &recordsTap{Writer: a.writer}
	outTrunks, err := sipOutboundTrunks(cfg)
	if err != nil {
		return nil, err
	}
	var newACD func(acd.Outbox) (call.ACD, error) // nil: the in-memory ACD
	if a.cluster != nil {
		newACD = a.cluster.newACD(acdQueues, agents)
	}
	var trunkDialer call.Trunks // set below, once the SIP server exists
	lazyTrunks := &lateTrunks{}
	if len(outTrunks) > 0 {
		trunkDialer = lazyTrunks
	}
	if a.calls, err = call.NewManager(call.Config{
		NodeID: cfg.NodeID, Ports: ports, Scheduler: a.sched, Prompts: promptSet{base: prompts, notices: a.notices}, Language: cfg.Prompts.Language,
		RTPTimeout: cfg.RTP.Timeout.D(), RTPProbation: cfg.RTP.LatchProbation, RTPRelatchSilence: cfg.RTP.LatchSilence.D(),
		RTPAnyAddress: cfg.RTP.LatchAnyAddress, AgentSRTP: sip.SRTPPolicy(cfg.RTP.AgentsSRTP), Menus: cfg.Menus, Routes: cfg.Routes, Queues: queues,
		ACDQueues: acdQueues, Agents: agents, Records: tap, Admit: a.writer.Accepting, Logger: log, Registerer: a.reg,
		Trunks: trunkDialer, Surveys: cfg.Surveys, CallbackTrunk: cfg.CallbackSettings().Trunk, CallerIDs: callerIDs(cfg),
		DataDir: cfg.DataDir, CampaignRecording: recordingRule(cfg.CallbackSettings().Recording),
		Voicemail: voicemailConfig(cfg.Voicemail), CallbackQueue: cfg.CallbackSettings().Queue,
		InbandDTMF: inbandTrunks(cfg), Lookups: cfg.Lookups,
		Supervisors: supervisors(cfg), Directory: directory(cfg), NewACD: newACD,
	}); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	a.calls.SetNotices(a.notices)
	onChange := a.calls.AgentReachability
	if a.cluster != nil {
		if err := a.cluster.openBindings(); err != nil {
			return nil, err
		}
		onChange = a.cluster.onBindings(a.calls.AgentReachability)
	}
	a.registrar = sip.NewRegistrar(sip.RegistrarConfig{
		Credentials: a.reloads.password,
		OnChange:    onChange,
		Pinger:      func(ctx context.Context, b sip.Binding) error { return a.sip.Ping(ctx, b) },
		Algorithms:  cfg.SIP.AuthAlgorithms,
		UserAgent:   cfg.SIP.UserAgent,
		// The config's -1 (off) is the registrar's "< 0 disables".
		LockoutFailures: cfg.SIP.Lockout.Failures, LockoutSourceUsers: cfg.SIP.Lockout.SourceUsers,
		LockoutWindow: cfg.SIP.Lockout.Window.D(), LockoutFor: cfg.SIP.Lockout.Duration.D(),
		Logger:        log.With("caller", "registrar"),
		NonceSecret:   nonceSecret(cfg),
		TrustedFronts: trustedFronts(cfg),
	})

	trunks := inboundTrunks(cfg)
	var agentBindings interface{ Bindings(string) []sip.Binding } // nil: the registrar's
	if a.cluster != nil {
		agentBindings = a.cluster.bindings
	}
	tlsAddr, tlsOptional := sipTLSAddr(cfg, sipAddr)
	var sipTLS *tls.Config
	if tlsAddr.IsValid() {
		if sipTLS, err = sipTLSConfig(cfg, sipAddr.Addr(), log); err != nil {
			return nil, err
		}
	}
	if a.sip, err = sip.NewServer(sip.Config{
		TLSListen: tlsAddr, TLS: sipTLS, TLSOptional: tlsOptional,
		Listen: sipAddr, Trunks: trunks, UserAgent: cfg.SIP.UserAgent, Logger: log,
		OnCall: a.calls.HandleInbound, OnReject: a.calls.HandleReject,
		Registrar: a.registrar, OnAgentCall: a.calls.HandleAgentCall, OutboundTrunks: outTrunks, Agents: agentBindings,
		InviteLimit:   sip.RateLimit{Rate: cfg.SIP.RateLimits.Invite.Rate, Burst: cfg.SIP.RateLimits.Invite.Burst},
		RegisterLimit: sip.RateLimit{Rate: cfg.SIP.RateLimits.Register.Rate, Burst: cfg.SIP.RateLimits.Register.Burst},
		TCP:           sip.TCPLimits{IdleTimeout: cfg.SIP.TCP.IdleTimeout.D(), MaxPerSource: cfg.SIP.TCP.MaxPerSource},
	}); err != nil {
		return nil, err
	}
	lazyTrunks.Trunks = call.SIPTrunks(a.sip)
	var agentPhones call.Directory = a.registrar
	if a.cluster != nil { // any node rings any agent, wherever the phone registered
		agentPhones = a.cluster.directory(a.registrar)
	}
	a.calls.SetSIP(agentPhones, a.sip)
	a.reg.MustRegister(newSIPCollector(a.sip, a.registrar))
	if a.httpLn, err = net.Listen("tcp", cfg.HTTP.Listen); err != nil {
		return nil, fmt.Errorf("http: %w", err)
	}
	loc, err := time.LoadLocation(cfg.Timezone) // validated by config.Load
	if err != nil {
		return nil, fmt.Errorf("config: timezone: %w", err)
	}
	queueNames := make(map[string]string, len(cfg.Queues))
	for name, q := range cfg.Queues {
		queueNames[name] = q.Name
	}
	openCtx, cancelOpen = context.WithTimeout(context.Background(), 15*time.Second)
	err = a.newDialer(openCtx, dsn, loc, tap)
	cancelOpen()
	if err != nil {
		return nil, err
	}
	if err := a.newRetention(loc, o.RetentionFirstRun); err != nil {
		return nil, err
	}
	if err := a.newFeed(); err != nil {
		return nil, err
	}
	var campaigns api.Campaigns // an untyped nil without a dialer
	if a.dialer != nil {
		campaigns = a.dialer
	}
	tokens, err := apiTokens(cfg, log)
	if err != nil {
		return nil, err
	}
	if a.authn, err = auth.New(tokens, a.reloads.password); err != nil {
		return nil, fmt.Errorf("config: http.tokens: %w", err)
	}
	var auditLog cdr.AuditLog
	var auditor api.Auditor
	if al, ok := a.store.(cdr.AuditLog); ok {
		auditLog = al
		a.audit = api.NewAuditWriter(al, log.With("caller", "audit"), a.reg)
		auditor = a.audit
	}
	warnPlainHTTP(cfg, log)
	var debug http.Handler
	if o.Pprof {
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		debug = mux
	}
	var liveCalls api.Calls = a.calls
	var gatherer prometheus.Gatherer = a.reg
	var nodes api.Nodes
	if a.cluster != nil {
		liveCalls, gatherer, nodes = clusterCalls{local: a.calls, n: a.cluster}, nodeGatherer{g: a.reg, node: cfg.NodeID}, a.cluster.acd
		if err := a.cluster.start(a.calls, "http://"+a.httpLn.Addr().String(), a.sip.Addr().String()); err != nil {
			return nil, err
		}
	}
	handler := api.New(api.Config{
		Records: a.store, Store: a.store, Report: reportOptions(cfg), Calls: liveCalls, Control: a.calls, ACD: a.calls.ACD(), Gatherer: gatherer, Logger: log, Nodes: nodes,
		Location: loc, QueueNames: queueNames, Campaigns: campaigns,
		Notices: a.notices, Reload: a.reload,
		Auth: a.authn, MetricsOpen: cfg.HTTP.MetricsOpen, Audit: auditor, AuditLog: auditLog,
		MaxBody: cfg.HTTP.MaxBodyBytes(), MaxImportBody: cfg.HTTP.MaxImportBodyBytes(), Debug: debug, DataDir: cfg.DataDir, Feed: a.feedAPI(),
		Health: func() error {
			if a.sip.Draining() {
				return errors.New("draining")
			}
			return a.writer.Accepting()
		},
	})
	a.http = &http.Server{
		Handler: handler, ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout.D(), ReadTimeout: cfg.HTTP.ReadTimeout.D(),
		WriteTimeout: cfg.HTTP.WriteTimeout.D(), IdleTimeout: cfg.HTTP.IdleTimeout.D(),
		ErrorLog: slog.NewLogLogger(log.With("caller", "http").Handler(), slog.LevelDebug),
	}
	if cfg.HTTP.TLSCert != "" {
		if a.http.TLSConfig, err = httpTLSConfig(cfg, log); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// serve runs the SIP and HTTP servers until ctx is done.
func (a *app) serve(ctx context.Context) {
	go func() {
		var err error
		if a.http.TLSConfig != nil {
			err = a.http.ServeTLS(a.httpLn, "", "") // the certificate from TLSConfig, re-read when renewed
		} else {
			err = a.http.Serve(a.httpLn)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("HTTP server failed", "error", err)
		}
	}()
	sipTLS := "off"
	if t := a.sip.TLSAddr(); t.IsValid() {
		sipTLS = t.String()
	}
	a.log.Info("hotline started", "sip", a.sip.Addr().String(), "http", a.httpLn.Addr().String(), "sip_tls", sipTLS,
		"data_dir", a.cfg.DataDir, "rtp_ports", a.cfg.RTP.Ports, "node_id", a.cfg.NodeID)
	go a.registrar.Start(ctx)
	go a.memory.run(ctx)
	a.runDialer()
	a.runRetention()
	a.runFeed()
	a.sip.Serve(ctx)
}

// acdConfig turns the configured queues and agents into what call/ and acd/ take.
func acdConfig(cfg *config.Config) (map[string]call.Queue, []acd.QueueConfig, []acd.AgentConfig) {
	queues := make(map[string]call.Queue, len(cfg.Queues))
	acdQueues := make([]acd.QueueConfig, 0, len(cfg.Queues))
	names := make([]string, 0, len(cfg.Queues))
	for name := range cfg.Queues {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		q := cfg.Queues[name]
		queues[name] = call.Queue{
			Name: q.Name, MusicOnHold: q.MusicOnHold, JoinPrompt: q.JoinPrompt, ExitPrompt: q.ExitPrompt,
			AnnounceFrequency: q.AnnounceFrequency.D(), ExitDigit: q.ExitDigit, ExitMenu: q.ExitMenu,
			Rating: q.Rating == nil || *q.Rating, Recording: recordingRule(q.Recording),
		}
		if cb := q.Callback; cb != nil { // virtual hold
			qc := queues[name]
			qc.CallbackAfter, qc.CallbackDigit = cb.After.D(), cb.Digit
			queues[name] = qc
		}
		strategy, _ := acd.ParseStrategy(q.Strategy)
		aq := acd.QueueConfig{
			Name: name, Skills: q.Skills, Strategy: strategy,
			RingTimeout: q.RingTimeout.D(), WrapUp: q.WrapUp.D(), MaxWait: q.MaxWait.D(), ServiceLevel: q.ServiceLevel.D(),
			RetryDelay: q.RetryDelay.D(), MaxCallers: q.MaxCallers, JoinEmpty: q.JoinEmpty == nil || *q.JoinEmpty,
			LeaveWhenEmpty: q.LeaveWhenEmpty, AutoPause: q.AutoPause,
			AnnounceFrequency: q.AnnounceFrequency.D(), ExitDigit: q.ExitDigit, Weight: q.Weight,
			Priority: acd.PriorityRules{Numbers: q.VIPNumbers},
		}
		for _, e := range q.Escalations {
			aq.Escalations = append(aq.Escalations, acd.Escalation{After: e.After.D(), Skill: e.Skill, MinLevel: e.MinLevel, Overflow: e.Overflow})
		}
		acdQueues = append(acdQueues, aq)
	}
	agents := make([]acd.AgentConfig, 0, len(cfg.Agents))
	for _, ag := range cfg.Agents {
		ac := acd.AgentConfig{ID: ag.ID, Name: ag.Name, Skills: ag.Skills}
		if ag.WrapUp != nil {
			d := ag.WrapUp.D()
			ac.WrapUp = &d
		}
		agents = append(agents, ac)
	}
	return queues, acdQueues, agents
}

// shutdown drains: new calls get 503, live calls may run until ctx ends, then are hung up
// with BYE; every record is flushed.
func (a *app) shutdown(ctx context.Context) {
	a.stopDialer() // first: no new outbound calls; those in flight end interrupted and are saved
	a.sip.Drain()
	a.log.Info("draining: refusing new calls", "live_calls", a.calls.Active())
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for a.calls.Active() > 0 {
		select {
		case <-ctx.Done():
			a.log.Warn("drain timeout: hanging up live calls", "live_calls", a.calls.Active())
			a.calls.HangupAll(call.ErrDrain)
			waitFor(a.sip.Wait, 15*time.Second)
			a.close()
			return
		case <-tick.C:
		}
	}
	a.close()
}

// close releases everything; records still queued are flushed or left in the journal.
func (a *app) close() {
	a.stopFeed() // first: it ends the SSE streams, which the HTTP server's Shutdown would wait for
	if a.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		a.http.Shutdown(ctx)
		cancel()
	} else if a.httpLn != nil {
		a.httpLn.Close()
	}
	a.stopDialer()
	a.stopRetention()
	if a.audit != nil { // after the HTTP server: no more requests to audit
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		a.audit.Close(ctx)
		cancel()
		a.audit = nil
	}
	if a.calls != nil {
		a.calls.Close() // no more agent events after this point
	}
	a.cluster.close()
	a.cluster = nil
	if a.writer != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := a.writer.Close(ctx); err != nil {
			a.log.Error("records not all stored; they stay in the journal for the next start", "error", err)
		}
		cancel()
		a.writer = nil
	}
	if a.registrar != nil {
		a.registrar.Stop()
	}
	if a.store != nil {
		a.store.Close()
		a.store = nil
	}
	if a.campaigns != nil {
		a.campaigns.Close()
		a.campaigns = nil
	}
	if a.sched != nil {
		a.sched.Close()
		a.sched = nil
	}
}

func waitFor(f func(), d time.Duration) {
	done := make(chan struct{})
	go func() { f(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
	}
}

// reportOptions are the report settings the config implies: each queue's service level.
func reportOptions(cfg *config.Config) cdr.ReportOptions {
	o := cdr.ReportOptions{QueueServiceLevel: map[string]time.Duration{}}
	for name, q := range cfg.Queues {
		o.QueueServiceLevel[name] = q.ServiceLevel.D()
	}
	return o
}

// inbandTrunks names the inbound trunks with in-band DTMF detection (inband_dtmf: true).
func inbandTrunks(cfg *config.Config) map[string]bool {
	m := map[string]bool{}
	for _, t := range cfg.Trunks {
		if t.InbandDTMF {
			m[t.Name] = true
		}
	}
	return m
}
