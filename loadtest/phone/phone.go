package phone

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/hotline12345/hotline/media"
)

// Defaults.
const (
	DefaultDTMFPayloadType uint8 = 101
	// teardownTimeout bounds the BYEs Close sends for calls still up.
	teardownTimeout = 2 * time.Second
	// closeGrace lets in-flight SIP messages finish before the stack closes.
	closeGrace = 50 * time.Millisecond
)

// Config configures a Phone. The zero value is a UDP phone on 127.0.0.1 that
// offers PCMA, PCMU and telephone-event/8000 on payload type 101.
type Config struct {
	LocalIP         netip.Addr // default 127.0.0.1
	SIPPort         int        // 0 = pick a free port
	Codecs          []uint8    // offered payload types in order, 0 (PCMU) and 8 (PCMA) only; default [8, 0]
	DTMFPayloadType uint8      // default 101
	NoDTMF          bool       // do not offer or accept telephone-event
	Transport       string     // "udp" (default) or "tcp"
	Direction       string     // SDP direction of our offers and answers: "" (sendrecv), "sendonly", "recvonly", "inactive"
	Logger          *slog.Logger

	// Scheduler paces the RTP the phone's calls send (20 ms ticks on
	// drift-free deadlines, shared by all calls). Nil: the phone runs its own
	// with one goroutine and stops it on Close.
	Scheduler *media.Scheduler

	// SendSilence makes calls send G.711 silence whenever nothing else is
	// being sent, as a real phone does, so that a server's RTP inactivity
	// timer does not fire. Nil means true.
	SendSilence *bool

	// MediaAddr, if set, gives each new call the RTP address its SDP names, and the
	// phone opens no RTP socket and runs no media for its calls: the caller carries
	// the media elsewhere (the load tester's shared, batched sockets), reading
	// Call.RemoteRTP and Call.LocalRTP once the call is answered. SendDTMF, SendTone
	// and the audio checks of such a call return ErrNotAnswered.
	MediaAddr func() netip.AddrPort

	// OnInvite, if set, is called for each new incoming INVITE after the phone
	// has sent 180 Ringing; return true to answer (200 OK with SDP), false to
	// reject with 486 Busy Here. It runs on the INVITE's goroutine and may
	// block to ring longer: select on call.Done() to notice a CANCEL.
	// Call.Reject, called from it before returning false, sends another final response
	// instead (603, 404, ...). Without OnInvite incoming calls get 480.
	OnInvite func(*Call) bool
}

// Bool returns a pointer to v, for Config.SendSilence.
func Bool(v bool) *bool { return &v }

// Phone is a SIP user agent with RTP media for tests and load generation.
type Phone struct {
	cfg    Config
	log    *slog.Logger
	silent bool
	addr   netip.AddrPort
	sched  *media.Scheduler

	ua       *sipgo.UserAgent
	srv      *sipgo.Server
	cli      *sipgo.Client
	dua      *sipgo.DialogUA
	listener interface{ Close() error }

	mu     sync.Mutex
	calls  map[string]*Call // by SIP Call-ID, while not ended
	closed bool
	wg     sync.WaitGroup // every goroutine the phone or its calls start
}

func (c *Config) validate() error {
	if !c.LocalIP.IsValid() {
		c.LocalIP = netip.MustParseAddr("127.0.0.1")
	}
	if c.SIPPort < 0 || c.SIPPort > 65535 {
		return fmt.Errorf("%w: SIPPort %d", ErrConfig, c.SIPPort)
	}
	if len(c.Codecs) == 0 {
		c.Codecs = []uint8{PCMA, PCMU}
	}
	for _, pt := range c.Codecs {
		if pt != PCMA && pt != PCMU {
			return fmt.Errorf("%w: codec %d (only 0 PCMU and 8 PCMA)", ErrConfig, pt)
		}
	}
	if c.DTMFPayloadType == 0 {
		c.DTMFPayloadType = DefaultDTMFPayloadType
	}
	if c.DTMFPayloadType < 96 || c.DTMFPayloadType > 127 {
		return fmt.Errorf("%w: DTMFPayloadType %d (96-127)", ErrConfig, c.DTMFPayloadType)
	}
	c.Transport = strings.ToLower(c.Transport)
	if c.Transport == "" {
		c.Transport = "udp"
	}
	if c.Transport != "udp" && c.Transport != "tcp" {
		return fmt.Errorf("%w: transport %q", ErrConfig, c.Transport)
	}
	switch c.Direction {
	case "", "sendrecv", "sendonly", "recvonly", "inactive":
	default:
		return fmt.Errorf("%w: direction %q", ErrConfig, c.Direction)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// New starts a phone listening for SIP on cfg.LocalIP:cfg.SIPPort.
func New(cfg Config) (*Phone, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	p := &Phone{
		cfg:    cfg,
		log:    cfg.Logger.With("caller", "phone"),
		silent: cfg.SendSilence == nil || *cfg.SendSilence,
		calls:  map[string]*Call{},
		sched:  cfg.Scheduler,
	}
	ip := cfg.LocalIP.String()
	sipLog := cfg.Logger.With("caller", "sipgo")
	ua, err := sipgo.NewUA(
		sipgo.WithUserAgent("hotline-test-phone"),
		sipgo.WithUserAgentHostname(ip),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(sipLog)),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(sipLog)),
	)
	if err != nil {
		return nil, err
	}
	p.ua = ua
	if p.sched == nil && cfg.MediaAddr == nil { // with MediaAddr its calls send nothing
		p.sched = media.NewScheduler(1)
	}
	fail := func(err error) (*Phone, error) {
		if p.listener != nil {
			p.listener.Close()
		}
		ua.Close()
		p.wg.Wait()
		p.closeScheduler()
		return nil, err
	}
	if p.srv, err = sipgo.NewServer(ua, sipgo.WithServerLogger(sipLog)); err != nil {
		return fail(err)
	}
	laddr := netip.AddrPortFrom(cfg.LocalIP, uint16(cfg.SIPPort))
	var serve func() error
	switch cfg.Transport {
	case "udp":
		conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(laddr))
		if err != nil {
			return fail(err)
		}
		p.listener = conn
		p.addr = conn.LocalAddr().(*net.UDPAddr).AddrPort()
		serve = func() error { return p.srv.ServeUDP(conn) }
	case "tcp":
		ln, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(laddr))
		if err != nil {
			return fail(err)
		}
		p.listener = ln
		p.addr = ln.Addr().(*net.TCPAddr).AddrPort()
		serve = func() error { return p.srv.ServeTCP(ln) }
	}
	p.addr = netip.AddrPortFrom(cfg.LocalIP, p.addr.Port())
	opts := []sipgo.ClientOption{sipgo.WithClientHostname(ip), sipgo.WithClientLogger(sipLog)}
	if cfg.Transport == "udp" {
		// Send requests from the listening socket, so replies and in-dialog
		// requests come back to the address in Via and Contact.
		opts = append(opts, sipgo.WithClientConnectionAddr(p.addr.String()))
	}
	if p.cli, err = sipgo.NewClient(ua, opts...); err != nil {
		return fail(err)
	}
	p.dua = &sipgo.DialogUA{Client: p.cli, ContactHDR: p.contact("phone")}

	p.srv.OnInvite(p.onInvite)
	p.srv.OnAck(p.onAck)
	p.srv.OnBye(p.onBye)
	p.srv.OnInfo(p.onInfo)
	p.srv.OnNotify(func(req *sip.Request, tx sip.ServerTransaction) {
		c := p.lookup(req)
		if c == nil {
			respond(tx, req, 481, "Call/Transaction Does Not Exist")
			return
		}
		respond(tx, req, 200, "OK")
		select {
		case c.notifies <- strings.TrimSpace(string(req.Body())):
		default:
		}
	})
	p.srv.OnCancel(func(req *sip.Request, tx sip.ServerTransaction) {
		// CANCELs matching a pending INVITE are answered by the transaction layer.
		tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
	})
	p.srv.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})

	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		if err := serve(); err != nil && !errors.Is(err, net.ErrClosed) {
			p.log.Debug("sip serve ended", "error", err)
		}
	}()
	if cfg.Transport == "udp" {
		// Serve registers the socket with the transport layer; requests sent
		// before that would try to bind the address a second time.
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
			if c, _ := ua.TransportLayer().GetConnection("udp", p.addr.String()); c != nil {
				break
			}
			if time.Now().After(deadline) {
				p.Close()
				return nil, fmt.Errorf("phone: sip listener on %s did not start", p.addr)
			}
		}
	}
	p.log.Debug("phone listening", "addr", p.addr, "transport", cfg.Transport)
	return p, nil
}

// Addr returns the SIP address the phone listens on.
func (p *Phone) Addr() netip.AddrPort { return p.addr }

// URI returns a SIP URI that reaches user on this phone, e.g. "sip:1001@127.0.0.1:40000".
func (p *Phone) URI(user string) string {
	u := fmt.Sprintf("sip:%s@%s", user, p.addr)
	if p.cfg.Transport == "tcp" {
		u += ";transport=tcp"
	}
	return u
}

func (p *Phone) contact(user string) sip.ContactHeader {
	h := sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: user, Host: p.addr.Addr().String(), Port: int(p.addr.Port())}}
	if p.cfg.Transport == "tcp" {
		h.Address.UriParams = sip.NewParams()
		h.Address.UriParams.Add("transport", "tcp")
	}
	return h
}

// Close hangs up every call (BYE or CANCEL, bounded by a short timeout),
// stops the SIP stack and waits for all goroutines the phone started.
func (p *Phone) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	calls := make([]*Call, 0, len(p.calls))
	for _, c := range p.calls {
		calls = append(calls, c)
	}
	p.mu.Unlock()

	var wg sync.WaitGroup
	for _, c := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), teardownTimeout)
			defer cancel()
			if err := c.Hangup(ctx); err != nil {
				p.log.Debug("hangup on close", "sip_call_id", c.callID, "error", err)
			}
			c.end("phone closed")
		}()
	}
	wg.Wait()
	// Stop reading first and give messages already read a moment to be
	// handled: sipgo handles each on its own goroutine, and one handled after
	// the transport layer closed opens a new socket that nothing closes.
	p.listener.Close()
	time.Sleep(closeGrace)
	err := p.ua.Close()
	p.wg.Wait()
	p.closeScheduler()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// closeScheduler stops the scheduler if the phone started it.
func (p *Phone) closeScheduler() {
	if p.cfg.Scheduler == nil && p.sched != nil {
		p.sched.Close()
	}
}

func (p *Phone) register(c *Call) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	p.calls[c.callID] = c
	return nil
}

func (p *Phone) unregister(c *Call) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.calls[c.callID] == c {
		delete(p.calls, c.callID)
	}
}

func (p *Phone) lookup(req *sip.Request) *Call {
	id := req.CallID()
	if id == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[id.Value()]
}

// goroutine runs f on a goroutine the phone waits for on Close.
func (p *Phone) goroutine(f func()) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		f()
	}()
}

func respond(tx sip.ServerTransaction, req *sip.Request, code int, reason string) {
	tx.Respond(sip.NewResponseFromRequest(req, code, reason, nil))
}

func (p *Phone) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if to := req.To(); to != nil && to.Params.Has("tag") {
		p.onReInvite(req, tx)
		return
	}
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed || p.cfg.OnInvite == nil {
		respond(tx, req, 480, "Temporarily Unavailable")
		return
	}
	offer, err := parseSDP(req.Body())
	if err != nil {
		respond(tx, req, 488, "Not Acceptable Here")
		return
	}
	codec, ok := uint8(0), false
	for _, pt := range offer.codecs {
		if ok = containsPT(p.cfg.Codecs, pt); ok {
			codec = pt
			break
		}
	}
	if !ok {
		respond(tx, req, 488, "Not Acceptable Here")
		return
	}
	sess, err := p.dua.ReadInvite(req, tx)
	if err != nil {
		respond(tx, req, 500, "Server Internal Error")
		return
	}
	c, err := p.newCall(false, req.CallID().Value(), req.From().Address.User, req.Recipient.User)
	if err != nil {
		respond(tx, req, 503, "Service Unavailable")
		return
	}
	c.ss = sess
	c.offer = offer
	c.codec = codec
	c.dtmf = offer.dtmf && !p.cfg.NoDTMF
	c.dtmfPT = offer.dtmfPT
	if err := p.register(c); err != nil {
		c.end("phone closed")
		respond(tx, req, 480, "Temporarily Unavailable")
		return
	}
	sdpBody, err := c.localSDP([]uint8{codec}, c.dtmf, c.dtmfPT)
	if err != nil {
		c.end("sdp: " + err.Error())
		respond(tx, req, 500, "Server Internal Error")
		return
	}
	if err := c.respond(180, func() error { return sess.Respond(180, "Ringing", nil) }); err != nil {
		c.endAnswer(fmt.Errorf("180: %w", err), "180 failed")
		return
	}
	// A CANCEL ends the server dialog's context before the answer.
	c.goroutine(func() {
		select {
		case <-sess.Context().Done():
			if !c.isAnswered() && !c.answering.Load() { // the answer path reports its own outcome
				c.endAnswer(&StatusError{Code: 487, Reason: "Request Terminated"}, "cancelled by caller")
			}
		case <-c.answered:
		case <-c.done:
		}
	})
	if !p.cfg.OnInvite(c) {
		if c.respond(486, func() error {
			c.answering.Store(true) // the dialog's end from here on is our 486, not a CANCEL
			return sess.Respond(486, "Busy Here", nil)
		}) == nil {
			c.endAnswer(&StatusError{Code: 486, Reason: "Busy Here"}, "rejected")
		}
		c.endAnswer(ErrCallEnded, "rejected")
		return
	}
	if c.ended() {
		return
	}
	c.startMedia(offer.addr)
	c.answering.Store(true)
	if err := c.respond(200, func() error { return sess.RespondSDP(sdpBody) }); err != nil {
		c.endAnswer(fmt.Errorf("answer: %w", err), "answer failed")
		return
	}
	c.setAnswered(nil)
}

// onReInvite answers a re-INVITE for a known call with the same SDP.
func (p *Phone) onReInvite(req *sip.Request, tx sip.ServerTransaction) {
	c := p.lookup(req)
	if c == nil {
		respond(tx, req, 481, "Call/Transaction Does Not Exist")
		return
	}
	c.mu.Lock()
	codec, dtmf, dtmfPT := c.codec, c.dtmf, c.dtmfPT
	c.mu.Unlock()
	body, err := c.localSDP([]uint8{codec}, dtmf, dtmfPT)
	if err != nil {
		respond(tx, req, 500, "Server Internal Error")
		return
	}
	res := sip.NewSDPResponseFromRequest(req, body)
	res.AppendHeader(sip.HeaderClone(&p.dua.ContactHDR))
	tx.Respond(res)
}

func (p *Phone) onAck(req *sip.Request, tx sip.ServerTransaction) {
	if c := p.lookup(req); c != nil && c.ss != nil {
		c.ss.ReadAck(req, tx)
	}
}

func (p *Phone) onBye(req *sip.Request, tx sip.ServerTransaction) {
	c := p.lookup(req)
	if c == nil {
		respond(tx, req, 481, "Call/Transaction Does Not Exist")
		return
	}
	var err error
	if c.cs != nil {
		err = c.cs.ReadBye(req, tx)
	} else {
		err = c.ss.ReadBye(req, tx)
	}
	if err != nil {
		respond(tx, req, 481, "Call/Transaction Does Not Exist")
		return
	}
	c.end("remote BYE")
}

func (p *Phone) onInfo(req *sip.Request, tx sip.ServerTransaction) {
	c := p.lookup(req)
	if c == nil {
		respond(tx, req, 481, "Call/Transaction Does Not Exist")
		return
	}
	ct := ""
	if h := req.ContentType(); h != nil {
		ct = h.Value()
	}
	d, ok := parseInfoDigit(ct, req.Body())
	if !ok {
		respond(tx, req, 415, "Unsupported Media Type")
		return
	}
	// The digit is queued before the 200 goes out: a sender that waits for each answer
	// before its next INFO then sees its digits in order.
	if m := c.mediaOrNil(); m != nil {
		m.mu.Lock()
		m.pushDigit(d)
		m.mu.Unlock()
	}
	respond(tx, req, 200, "OK")
}

func containsPT(pts []uint8, pt uint8) bool {
	for _, v := range pts {
		if v == pt {
			return true
		}
	}
	return false
}
