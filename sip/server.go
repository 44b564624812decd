// Package sip is the signalling engine of hotline, built on sipgo: UDP and TCP listeners,
// trunk access control, inbound call legs with our own dialog bookkeeping (answer, 2xx
// retransmission, CANCEL, BYE, re-INVITE, INFO), and SDP offer/answer.
//
// It knows nothing of media, menus or queues: the call package joins a leg to those.
package sip

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/google/uuid"
)

// Methods we accept; everything else known is 405, unknown is 501.
const allowMethods = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, REFER"

// allow is the Allow header value: allowMethods, plus REGISTER with a registrar.
func (s *Server) allow() string {
	if s.cfg.Registrar != nil {
		return allowMethods + ", REGISTER"
	}
	return allowMethods
}

// knownMethods are methods of RFC 3261 and its extensions that we know but do not allow.
var knownMethods = map[sip.RequestMethod]bool{
	sip.REGISTER: true, sip.SUBSCRIBE: true, sip.NOTIFY: true, sip.MESSAGE: true,
	sip.PUBLISH: true, sip.PRACK: true, sip.UPDATE: true,
}

// Config configures a Server.
type Config struct {
	Listen     netip.AddrPort // UDP and TCP on the same address; port 0 picks a free one
	Trunks     []*Trunk
	UserAgent  string        // Server/User-Agent header; default "hotline"
	RetryAfter time.Duration // Retry-After on 503 while draining or full; default 30 s
	Logger     *slog.Logger

	// OnCall owns an accepted inbound leg for its whole life; it runs on the INVITE's
	// goroutine. When it returns, the server hangs the leg up if it has not ended.
	OnCall func(*Inbound)
	// OnReject is told of INVITEs from a known trunk that we refused for capacity or
	// drain (503) or whose offer we could not take (415, 488): a citizen's call that was
	// lost, to be recorded (it counts against the 24-hour connection rate). INVITEs refused
	// before any call could exist (403 from outside the trunks, 404 for a number the trunk
	// does not deliver, shed by a rate limit) are only counted (Stats): a flood of them
	// must not write a record each.
	OnReject func(Rejection)

	// InviteLimit and RegisterLimit are per-source rate limits of initial INVITEs and
	// REGISTERs (ratelimit.go); the trunks' sources are exempt. Zero: no limit.
	// Agents finds agents' registrations for recognising their own calls (feature codes,
	// directory transfers); nil: Registrar's. A cluster gives every node's.
	Agents                     interface{ Bindings(user string) []Binding }
	InviteLimit, RegisterLimit RateLimit
	// LimitClock is the rate limits' clock; nil = time.Now.
	LimitClock func() time.Time
	// TCP bounds the accepted TCP and TLS connections (tcp.go), per listener. Zero: no bounds.
	TCP TCPLimits

	// TLSListen, when valid, is the SIP over TLS listener (port 0 picks a free one), with
	// TLS its certificate. TLSOptional makes a failure to bind it a warning, not an error.
	TLSListen   netip.AddrPort
	TLS         *tls.Config
	TLSOptional bool

	// Registrar, when set, takes REGISTERs (agents' softphones).
	Registrar *Registrar
	// OnAgentCall owns an INVITE from a registered agent (the From user has a binding
	// at the INVITE's source): feature codes such as *21, or a test call. Without it,
	// such INVITEs are treated like any other.
	OnAgentCall func(*Inbound)

	// OutboundTrunks are the carrier gateways DialTrunk places calls through.
	OutboundTrunks []OutboundTrunk
	// TrunkClock is the clock of the outbound trunks' call-rate limits; nil = time.Now.
	TrunkClock func() time.Time
}

// Rejection describes an INVITE we answered with a final error.
type Rejection struct {
	Trunk     string
	SIPCallID string
	From, To  string
	Source    netip.AddrPort
	Status    int
	Reason    string
	Time      time.Time
}

// Stats are counters of the signalling layer.
type Stats struct {
	Invites      uint64 // INVITEs that created a call attempt
	Rejected     uint64 // INVITEs answered with a final error
	Forbidden    uint64 // INVITEs from sources outside every trunk (403)
	NotFound     uint64 // INVITEs from a trunk for a number it does not deliver (404; not in Rejected)
	ShedInvites  uint64 // initial INVITEs dropped unanswered by the per-source rate limit
	ShedRegister uint64 // REGISTERs dropped unanswered by the per-source rate limit
	TCPOpen      int    // accepted TCP and TLS connections open now
	TCPIdle      uint64 // TCP and TLS connections closed for idleness
	TCPRefused   uint64 // TCP and TLS connections refused: their address had MaxPerSource open (per listener)
	NoDialog     uint64 // in-dialog requests for unknown dialogs (481)
	Retransmit2x uint64 // 200 OK retransmissions while waiting for ACK
	Absorbed     uint64 // late copies of an INVITE already taken, ignored (linger.go)
}

// Server is our SIP user agent server for trunk calls.
type Server struct {
	cfg      Config
	log      *slog.Logger
	outbound map[string]*trunkState // outbound trunks by name (read-only after NewServer)
	ua       *sipgo.UserAgent
	srv      *sipgo.Server
	client   *sipgo.Client

	udp   *net.UDPConn
	tcp   *net.TCPListener
	tcpLn *tcpListener // tcp, bounded

	tlsTCP  *net.TCPListener // nil without TLS
	tlsLn   *tcpListener     // tlsTCP, bounded
	tlsAddr netip.AddrPort
	addr    netip.AddrPort

	trunks   atomic.Pointer[[]*Trunk] // the inbound trunks: Config.Trunks, then SetTrunks
	draining atomic.Bool
	closed   atomic.Bool // Serve returned: nothing can be sent any more
	dialogs  dialogs
	legs     sync.WaitGroup

	invites, rejected, forbidden, notFound, noDialog, retransmits, absorbed atomic.Uint64
	inviteLimit, registerLimit                                              *limiter
	invitesSeen                                                             recent // initial INVITEs of calls up or ended less than 64×T1 ago (linger.go)
	byesAnswered                                                            recent // BYEs answered 200 less than 64×T1 ago (linger.go)
	warnLimit                                                               rateLimiter
}

// NewServer binds the UDP and TCP listeners. Call Serve to start handling requests.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "hotline"
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = 30 * time.Second
	}
	if cfg.OnCall == nil {
		return nil, errors.New("sip: Config.OnCall is required")
	}
	s := &Server{cfg: cfg, log: cfg.Logger.With("caller", "sip"), outbound: outboundTrunks(cfg.OutboundTrunks)}
	s.dialogs.m = make(map[dialogKey]*dialog)
	counted(cfg.Trunks, nil)
	s.trunks.Store(&cfg.Trunks)
	s.warnLimit.every = time.Second
	s.inviteLimit = newLimiter(cfg.InviteLimit, cfg.LimitClock)
	s.registerLimit = newLimiter(cfg.RegisterLimit, cfg.LimitClock)

	if err := s.listen(cfg.Listen); err != nil {
		return nil, err
	}
	s.tcpLn = newTCPListener(s.tcp, cfg.TCP, s.tcpInUse, func(msg string, args ...any) {
		if s.warnLimit.allow() {
			s.log.Warn(msg, args...)
		}
	})
	if err := s.listenTLS(); err != nil {
		s.closeListeners()
		return nil, err
	}
	ua, err := sipgo.NewUA(sipgo.WithUserAgent(cfg.UserAgent), sipgo.WithUserAgentHostname(s.addr.Addr().String()))
	if err != nil {
		s.closeListeners()
		return nil, fmt.Errorf("sip: user agent: %w", err)
	}
	s.ua = ua
	if s.srv, err = sipgo.NewServer(ua, sipgo.WithServerLogger(s.log)); err != nil {
		s.closeListeners()
		return nil, fmt.Errorf("sip: server: %w", err)
	}
	if s.client, err = sipgo.NewClient(ua, sipgo.WithClientAddr(s.addr.String())); err != nil {
		s.closeListeners()
		return nil, fmt.Errorf("sip: client: %w", err)
	}
	s.srv.OnInvite(s.onInvite)
	s.srv.OnAck(s.onAck)
	s.srv.OnBye(s.inDialog((*dialog).onBye))
	s.srv.OnCancel(s.onCancel)
	s.srv.OnOptions(s.onOptions)
	s.srv.OnInfo(s.inDialog((*dialog).onInfo))
	s.srv.OnRefer(s.inDialog((*dialog).onRefer))
	s.srv.OnNoRoute(s.onNoRoute)
	for m := range knownMethods {
		s.srv.OnRequest(m, s.onNotAllowed)
	}
	if cfg.Registrar != nil {
		s.srv.OnRegister(s.onRegister)
	}
	return s, nil
}

// listen binds UDP first (so port 0 picks a free port) and TCP on the same port.
func (s *Server) listen(want netip.AddrPort) error {
	for attempt := 0; ; attempt++ {
		udp, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(want))
		if err != nil {
			return fmt.Errorf("sip: %w", err)
		}
		// Bursts of INVITEs at high call rates overflow the default buffers.
		_ = udp.SetReadBuffer(4 << 20)
		_ = udp.SetWriteBuffer(4 << 20)
		addr := udp.LocalAddr().(*net.UDPAddr).AddrPort()
		addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
		tcp, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(addr))
		if err != nil {
			udp.Close()
			if want.Port() == 0 && attempt < 10 {
				continue // the free UDP port was taken for TCP; pick another
			}
			return fmt.Errorf("sip: %w", err)
		}
		s.udp, s.tcp, s.addr = udp, tcp, addr
		return nil
	}
}

func (s *Server) closeListeners() {
	if s.udp != nil {
		s.udp.Close()
	}
	if s.tcp != nil {
		s.tcp.Close()
	}
	if s.tlsTCP != nil {
		s.tlsTCP.Close()
	}
}

// listenTLS binds the SIP over TLS listener, if configured.
func (s *Server) listenTLS() error {
	if !s.cfg.TLSListen.IsValid() {
		return nil
	}
	if s.cfg.TLS == nil {
		return errors.New("sip: TLSListen without a TLS config")
	}
	ln, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(s.cfg.TLSListen))
	if err != nil {
		if s.cfg.TLSOptional {
			s.log.Warn("SIP over TLS not started: its port is taken", "tls_listen", s.cfg.TLSListen.String(), "error", err)
			return nil
		}
		return fmt.Errorf("sip: TLS: %w", err)
	}
	addr := ln.Addr().(*net.TCPAddr).AddrPort()
	s.tlsTCP, s.tlsAddr = ln, netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	s.tlsLn = newTCPListener(ln, s.cfg.TCP, s.tcpInUse, s.tcpLn.logger)
	return nil
}

// TLSAddr is the SIP over TLS address, invalid without TLS.
func (s *Server) TLSAddr() netip.AddrPort { return s.tlsAddr }

// contactHeader is our Contact for a dialog over transport: the listener's address that
// transport reaches, with transport=tcp or transport=tls (RFC 3261 §19.1.1) so that the
// peer's in-dialog requests come back over the same kind of connection.
func (s *Server) contactHeader(transport string) sip.Header {
	switch strings.ToUpper(transport) {
	case "TCP":
		return sip.NewHeader("Contact", fmt.Sprintf("<sip:hotline@%s;transport=tcp>", s.addr))
	case "TLS":
		if s.tlsAddr.IsValid() {
			return sip.NewHeader("Contact", fmt.Sprintf("<sip:hotline@%s;transport=tls>", s.tlsAddr))
		}
	}
	return sip.NewHeader("Contact", fmt.Sprintf("<sip:hotline@%s>", s.addr))
}

// Addr is the address the server listens on (UDP and TCP).
func (s *Server) Addr() netip.AddrPort { return s.addr }

// Serve handles requests until ctx is done, then closes the listeners. Calls in progress
// are not touched: the owner hangs them up (see Drain) before cancelling ctx.
func (s *Server) Serve(ctx context.Context) error {
	errc := make(chan error, 2)
	go func() { errc <- s.srv.ServeUDP(s.udp) }()
	go func() { errc <- s.srv.ServeTCP(s.tcpLn) }()
	if s.tlsLn != nil {
		go func() { errc <- s.srv.ServeTLS(tls.NewListener(s.tlsLn, s.cfg.TLS)) }()
	}
	select {
	case <-ctx.Done():
	case err := <-errc:
		s.log.Error("SIP listener failed", "error", err)
	}
	s.closed.Store(true)
	s.closeListeners()
	err := s.ua.Close()
	return err
}

// Drain makes the server refuse new calls with 503 and Retry-After.
func (s *Server) Drain() { s.draining.Store(true) }

// Draining reports whether Drain was called.
func (s *Server) Draining() bool { return s.draining.Load() }

// Ping sends OPTIONS to a registered binding (the registrar's qualify); any final response
// proves the phone is reachable.
func (s *Server) Ping(ctx context.Context, b Binding) error {
	req := sip.NewRequest(sip.OPTIONS, b.Contact)
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "hotline", Host: s.addr.Addr().String(), Port: int(s.addr.Port())}, Params: sip.NewParams()}
	from.Params.Add("tag", uuid.NewString())
	to := &sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: b.User, Host: b.Contact.Host, Port: b.Contact.Port}, Params: sip.NewParams()}
	cid := sip.CallIDHeader(uuid.NewString())
	maxFwd := sip.MaxForwardsHeader(70)
	req.AppendHeader(from)
	req.AppendHeader(to)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.OPTIONS})
	req.AppendHeader(&maxFwd)
	req.SetTransport(b.Transport)
	if len(b.Path) > 0 { // through the front that registered it (RFC 3327)
		if err := setRoute(req, b.Path); err != nil {
			return err
		}
	} else if b.Source.IsValid() {
		req.SetDestination(b.Source.String())
	}
	req.SetBody(nil)
	s.fromListener(req)
	tx, err := s.client.TransactionRequest(ctx, req, sipgo.ClientRequestAddVia)
	if err != nil {
		return err
	}
	defer tx.Terminate()
	for {
		select {
		case res := <-tx.Responses():
			if res.IsProvisional() {
				continue
			}
			return nil
		case <-tx.Done():
			return tx.Err()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Carriers' INVITEs with many Record-Route and Via headers make our 200 OK larger than
// sipgo's default UDP limit (1300 bytes), which it then refuses to send at all. Loopback
// and carrier links carry larger datagrams (IP fragments); the limit is sipgo-global, so
// it is set once, here.
func init() { sip.UDPMTUSize = max(sip.UDPMTUSize, 9000) }

// fromListener makes a UDP request leave from our listening socket, so that replies and
// NAT bindings use the address in our Via and Contact (sipgo would otherwise open a new
// socket on a random port when its pool has no connection to the destination).
func (s *Server) fromListener(req *sip.Request) {
	if !strings.EqualFold(req.Transport(), "UDP") && req.Transport() != "" {
		return
	}
	// Until Serve has registered the listener with sipgo, a Laddr would make sipgo try to
	// bind the listening address a second time.
	if c, _ := s.ua.TransportLayer().GetConnection("udp", s.addr.String()); c == nil {
		return
	}
	req.Laddr = sip.Addr{IP: s.addr.Addr().AsSlice(), Port: int(s.addr.Port()), Hostname: s.addr.Addr().String()}
}

// Wait blocks until every inbound leg handler has returned.
func (s *Server) Wait() { s.legs.Wait() }

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	st := s.stats()
	if s.tlsLn != nil {
		st.TCPOpen += int(s.tlsLn.open.Load())
		st.TCPIdle += s.tlsLn.idleClosed.Load()
		st.TCPRefused += s.tlsLn.refused.Load()
	}
	return st
}

func (s *Server) stats() Stats {
	return Stats{
		Invites: s.invites.Load(), Rejected: s.rejected.Load(), Forbidden: s.forbidden.Load(), NotFound: s.notFound.Load(),
		ShedInvites: s.inviteLimit.shedCount(), ShedRegister: s.registerLimit.shedCount(),
		TCPOpen: int(s.tcpLn.open.Load()), TCPIdle: s.tcpLn.idleClosed.Load(), TCPRefused: s.tcpLn.refused.Load(),
		NoDialog: s.noDialog.Load(), Retransmit2x: s.retransmits.Load(), Absorbed: s.absorbed.Load(),
	}
}

func (s *Server) respond(req *sip.Request, tx sip.ServerTransaction, code int, reason string, hdrs ...sip.Header) {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	res.AppendHeader(sip.NewHeader("Server", s.cfg.UserAgent))
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	if err := tx.Respond(res); err != nil {
		s.log.Debug("respond failed", "status", code, "error", err)
	}
}

// SetTrunks replaces the inbound trunks (a config reload): new INVITEs are matched against
// them; calls under way keep the trunk they came in on.
func (s *Server) SetTrunks(trunks []*Trunk) {
	counted(trunks, *s.trunks.Load())
	s.trunks.Store(&trunks)
}

// trusted reports whether src is a source of some trunk (exempt from the rate limits).
func (s *Server) trusted(src netip.Addr) bool {
	if s.cfg.Registrar != nil && s.cfg.Registrar.IsTrustedFront(src) { // the front limits per phone itself
		return true
	}
	for _, t := range *s.trunks.Load() {
		if t.Allows(src) {
			return true
		}
	}
	return false
}

// shed drops a request over its source's rate limit: no answer, the transaction ended
// at once (ratelimit.go says why).
func (s *Server) shed(req *sip.Request, tx sip.ServerTransaction, src netip.Addr) {
	if s.warnLimit.allow() {
		s.log.Warn("request shed by the per-source rate limit", "method", string(req.Method),
			"source", src.String(), "sip_call_id", callID(req))
	}
	tx.Terminate()
}

// sourceAddr is the packet source of req, IPv4-mapped addresses unmapped.
func sourceAddr(req *sip.Request) (netip.AddrPort, bool) {
	src, err := netip.ParseAddrPort(req.Source())
	if err != nil {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(src.Addr().Unmap(), src.Port()), true
}

func (s *Server) onRegister(req *sip.Request, tx sip.ServerTransaction) {
	if src, ok := sourceAddr(req); ok && !s.trusted(src.Addr()) && !s.registerLimit.allow(src.Addr()) {
		s.shed(req, tx, src.Addr())
		return
	}
	s.cfg.Registrar.HandleRegister(req, tx)
}

func (s *Server) onOptions(req *sip.Request, tx sip.ServerTransaction) {
	if req.To() != nil {
		if _, ok := req.To().Params.Get("tag"); ok && s.lookup(req) == nil {
			s.noSuchDialog(req, tx)
			return
		}
	}
	s.respond(req, tx, 200, "OK",
		sip.NewHeader("Allow", s.allow()),
		sip.NewHeader("Accept", "application/sdp, application/dtmf-relay, application/dtmf"),
		sip.NewHeader("Accept-Language", "zh, en"),
		sip.NewHeader("Supported", ""))
}

func (s *Server) onNotAllowed(req *sip.Request, tx sip.ServerTransaction) {
	s.respond(req, tx, 405, "Method Not Allowed", sip.NewHeader("Allow", s.allow()))
}

func (s *Server) onNoRoute(req *sip.Request, tx sip.ServerTransaction) {
	if knownMethods[req.Method] {
		s.onNotAllowed(req, tx)
		return
	}
	s.respond(req, tx, 501, "Not Implemented", sip.NewHeader("Allow", s.allow()))
}

// reject answers an INVITE from a trunk with a final error and reports it to OnReject
// (see Config.OnReject for which are).
func (s *Server) reject(req *sip.Request, tx sip.ServerTransaction, trunk *Trunk, code int, reason string, hdrs ...sip.Header) {
	if code == 404 {
		s.notFound.Add(1)
	} else {
		s.rejected.Add(1)
	}
	s.respond(req, tx, code, reason, hdrs...)
	if trunk == nil || s.cfg.OnReject == nil || code == 404 {
		return
	}
	src, _ := netip.ParseAddrPort(req.Source())
	s.cfg.OnReject(Rejection{
		Trunk: trunk.Name, SIPCallID: callID(req), From: req.From().Address.User, To: req.Recipient.User,
		Source: src, Status: code, Reason: reason, Time: time.Now(),
	})
}

func (s *Server) retryAfter() sip.Header {
	return sip.NewHeader("Retry-After", strconv.Itoa(int(s.cfg.RetryAfter/time.Second)))
}

func callID(req *sip.Request) string {
	if h := req.CallID(); h != nil {
		return h.Value()
	}
	return ""
}

// rateLimiter lets one event through per interval; used for log lines about bad input.
type rateLimiter struct {
	every time.Duration
	last  atomic.Int64
}

func (r *rateLimiter) allow() bool {
	now := time.Now().UnixNano()
	last := r.last.Load()
	return now-last >= int64(r.every) && r.last.CompareAndSwap(last, now)
}
