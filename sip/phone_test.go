package sip

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sipgosip "github.com/emiago/sipgo/sip"
)

// Test fixtures: a real Server on loopback, and a raw test phone that writes SIP by hand
// so that tests control every byte (retransmissions, missing ACKs, malformed input).

const (
	testDID    = "12345"
	testCaller = "13800138000"
	waitLong   = 3 * time.Second // how long a test waits for something that must happen
)

// rtpLocal is the RTP address the test OnCall answers with; nothing listens there.
var rtpLocal = netip.MustParseAddrPort("127.0.0.1:40000")

// testLeg is an inbound leg as the test OnCall saw it.
type testLeg struct {
	*Inbound
	answered  chan struct{} // closed when Answer returned
	media     Media         // valid after answered
	answerErr error         // valid after answered
	hangup    chan string   // send a cause to make OnCall hang up
	hungup    chan error    // Hangup's result
}

// testServer is a Server started on 127.0.0.1:0 with an OnCall that answers and then waits
// for the caller to hang up or the test to ask for a hangup.
type testServer struct {
	*Server
	calls   chan *testLeg
	rejects chan Rejection
}

type serverOption func(*Config, *serverKnobs)

type serverKnobs struct {
	noAnswer bool // OnCall rings but does not answer
}

func withTrunks(trunks ...*Trunk) serverOption {
	return func(c *Config, _ *serverKnobs) { c.Trunks = trunks }
}

func withRetryAfter(d time.Duration) serverOption {
	return func(c *Config, _ *serverKnobs) { c.RetryAfter = d }
}

func withoutAnswer() serverOption {
	return func(_ *Config, k *serverKnobs) { k.noAnswer = true }
}

// defaultTrunk serves testDID to all of 127.0.0.0/8.
func defaultTrunk() *Trunk {
	return &Trunk{
		Name:    "carrier",
		Sources: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		DIDs:    []string{testDID},
	}
}

func startServer(t *testing.T, opts ...serverOption) *testServer {
	t.Helper()
	ts := &testServer{calls: make(chan *testLeg, 16), rejects: make(chan Rejection, 16)}
	stop := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())         // Serve
	callCtx, callCancel := context.WithCancel(context.Background()) // Answer
	var knobs serverKnobs
	cfg := Config{
		Listen:    netip.MustParseAddrPort("127.0.0.1:0"),
		Trunks:    []*Trunk{defaultTrunk()},
		UserAgent: "hotline-test",
		Logger:    testLogger(t),
		OnReject:  func(r Rejection) { ts.rejects <- r },
	}
	for _, o := range opts {
		o(&cfg, &knobs)
	}
	cfg.OnCall = func(l *Inbound) {
		tl := &testLeg{Inbound: l, answered: make(chan struct{}), hangup: make(chan string, 1), hungup: make(chan error, 1)}
		ts.calls <- tl
		if knobs.noAnswer {
			_ = l.Ring()
		} else {
			tl.media, tl.answerErr = l.Answer(callCtx, rtpLocal)
		}
		close(tl.answered)
		if tl.answerErr != nil {
			return // the server ends the leg
		}
		select {
		case <-l.Done():
		case cause := <-tl.hangup:
			hctx, hcancel := context.WithTimeout(context.Background(), 2*time.Second)
			tl.hungup <- l.Hangup(hctx, cause)
			hcancel()
		case <-stop:
			// End the leg quickly: the phone may be gone and would never answer our BYE.
			hctx, hcancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			_ = l.Hangup(hctx, "test over")
			hcancel()
		}
	}
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts.Server = srv
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		// Legs first, then the listeners: a BYE sent after Serve returned would make sipgo
		// open a new socket on the server's port (see TestHangupAfterServeReturned).
		close(stop)
		callCancel()
		waited := make(chan struct{})
		go func() { srv.Wait(); close(waited) }()
		select {
		case <-waited:
		case <-time.After(5 * time.Second):
			t.Error("OnCall handlers did not return")
		}
		cancel()
		select {
		case <-served:
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return")
		}
	})
	return ts
}

// nextCall waits for OnCall.
func (ts *testServer) nextCall(t *testing.T) *testLeg {
	t.Helper()
	select {
	case l := <-ts.calls:
		return l
	case <-time.After(waitLong):
		t.Fatal("OnCall was not called")
		return nil
	}
}

func (ts *testServer) noCall(t *testing.T) {
	t.Helper()
	select {
	case l := <-ts.calls:
		t.Fatalf("OnCall was called for %s", l.SIPCallID())
	default:
	}
}

func (ts *testServer) nextReject(t *testing.T) Rejection {
	t.Helper()
	select {
	case r := <-ts.rejects:
		return r
	case <-time.After(waitLong):
		t.Fatal("OnReject was not called")
		return Rejection{}
	}
}

// waitNoDialogs waits until the server forgets every dialog (OnCall returned).
func (ts *testServer) waitNoDialogs(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for {
		ts.dialogs.mu.Lock()
		n := len(ts.dialogs.m)
		ts.dialogs.mu.Unlock()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d dialogs still known", n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitAnswered waits for Answer to return on the leg.
func (tl *testLeg) waitAnswered(t *testing.T) {
	t.Helper()
	select {
	case <-tl.answered:
	case <-time.After(waitLong):
		t.Fatal("Answer did not return")
	}
}

func (tl *testLeg) waitDone(t *testing.T) {
	t.Helper()
	select {
	case <-tl.Done():
	case <-time.After(waitLong):
		t.Fatal("leg did not end")
	}
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// rawPhone is a raw SIP endpoint over UDP or TCP.
type rawPhone struct {
	t      *testing.T
	proto  string // "UDP" or "TCP"
	udp    net.PacketConn
	tcp    net.Conn
	local  netip.AddrPort
	server netip.AddrPort
	resps  chan *sipgosip.Response
	// framingErrors counts TCP reads that a strict stream parser (sipgo's) rejected.
	framingErrors atomic.Int32
	reqs          chan *sipgosip.Request
	wg            sync.WaitGroup
}

func newPhone(t *testing.T, proto string, local string, server netip.AddrPort) *rawPhone {
	t.Helper()
	p := &rawPhone{t: t, proto: proto, server: server, resps: make(chan *sipgosip.Response, 64), reqs: make(chan *sipgosip.Request, 64)}
	switch proto {
	case "UDP":
		c, err := net.ListenPacket("udp", local)
		if err != nil {
			t.Fatal(err)
		}
		p.udp = c
		p.local = c.LocalAddr().(*net.UDPAddr).AddrPort()
	case "TCP":
		d := net.Dialer{Timeout: time.Second}
		if local != "" {
			d.LocalAddr = net.TCPAddrFromAddrPort(netip.MustParseAddrPort(local))
		}
		c, err := d.Dial("tcp", server.String())
		if err != nil {
			t.Fatal(err)
		}
		p.tcp = c
		p.local = c.LocalAddr().(*net.TCPAddr).AddrPort()
	default:
		t.Fatalf("proto %q", proto)
	}
	p.wg.Add(1)
	go p.read()
	t.Cleanup(p.close)
	return p
}

// close closes the socket and waits for the reader; it may be called more than once.
func (p *rawPhone) close() {
	if p.udp != nil {
		p.udp.Close()
	} else {
		p.tcp.Close()
	}
	p.wg.Wait()
}

func newUDPPhone(t *testing.T, ts *testServer) *rawPhone {
	return newPhone(t, "UDP", "127.0.0.1:0", ts.Addr())
}

func (p *rawPhone) read() {
	defer p.wg.Done()
	deliver := func(m sipgosip.Message) {
		switch m := m.(type) {
		case *sipgosip.Response:
			p.resps <- m
		case *sipgosip.Request:
			p.reqs <- m
		}
	}
	buf := make([]byte, 65536)
	if p.udp != nil {
		for {
			n, _, err := p.udp.ReadFrom(buf)
			if err != nil {
				return
			}
			if m, err := sipgosip.ParseMessage(buf[:n]); err == nil {
				deliver(m)
			}
		}
	}
	stream := sipgosip.NewParser().NewSIPStream()
	for {
		n, err := p.tcp.Read(buf)
		if err != nil {
			return
		}
		if err := stream.ParseSIPStream(buf[:n], deliver); err != nil && !errors.Is(err, sipgosip.ErrParseSipPartial) {
			// A message the stream parser cannot frame (no Content-Length): note it, take
			// the read as one whole message so the test can inspect it, and start over.
			p.framingErrors.Add(1)
			if m, err := sipgosip.ParseMessage(buf[:n]); err == nil {
				deliver(m)
			}
			stream = sipgosip.NewParser().NewSIPStream()
		}
	}
}

// send writes raw bytes.
func (p *rawPhone) send(b []byte) {
	p.t.Helper()
	var err error
	if p.udp != nil {
		_, err = p.udp.WriteTo(b, net.UDPAddrFromAddrPort(p.server))
	} else {
		_, err = p.tcp.Write(b)
	}
	if err != nil {
		p.t.Fatalf("phone send: %v", err)
	}
}

// response waits for a final response (or any response when provisional is true) to
// method in the call callID, skipping others.
func (p *rawPhone) response(method, callID string, provisional bool) *sipgosip.Response {
	p.t.Helper()
	timeout := time.After(waitLong)
	for {
		select {
		case r := <-p.resps:
			if r.CSeq() == nil || string(r.CSeq().MethodName) != method {
				continue
			}
			if id := r.CallID(); (id == nil && callID != "") || (id != nil && id.Value() != callID) {
				continue
			}
			if r.IsProvisional() && !provisional {
				continue
			}
			return r
		case <-timeout:
			p.t.Fatalf("no response to %s", method)
			return nil
		}
	}
}

// status sends req and returns the final response's status code.
func (p *rawPhone) status(req *msg) *sipgosip.Response {
	p.t.Helper()
	p.send(req.bytes())
	return p.response(req.method, req.callID(), false)
}

// request waits for a request from the server.
func (p *rawPhone) request(method string) *sipgosip.Request {
	p.t.Helper()
	timeout := time.After(waitLong)
	for {
		select {
		case r := <-p.reqs:
			if string(r.Method) == method {
				return r
			}
		case <-timeout:
			p.t.Fatalf("no %s from the server", method)
			return nil
		}
	}
}

// quiet asserts nothing arrives for d.
func (p *rawPhone) quiet(d time.Duration) {
	p.t.Helper()
	select {
	case r := <-p.resps:
		p.t.Fatalf("unexpected response %s", r.StartLine())
	case r := <-p.reqs:
		p.t.Fatalf("unexpected request %s", r.StartLine())
	case <-time.After(d):
	}
}

// msg is a SIP request written by hand.
type msg struct {
	method  string
	uri     string
	headers []string // "Name: value", in order
	body    string
}

func (m *msg) bytes() []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s SIP/2.0\r\n", m.method, m.uri)
	for _, h := range m.headers {
		b.WriteString(h)
		b.WriteString("\r\n")
	}
	if !m.has("Content-Length") {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(m.body))
	}
	b.WriteString("\r\n")
	b.WriteString(m.body)
	return []byte(b.String())
}

func (m *msg) callID() string {
	for _, h := range m.headers {
		if v, ok := strings.CutPrefix(h, "Call-ID: "); ok {
			return v
		}
	}
	return ""
}

func (m *msg) has(name string) bool {
	for _, h := range m.headers {
		if strings.HasPrefix(strings.ToLower(h), strings.ToLower(name)+":") {
			return true
		}
	}
	return false
}

// without drops the headers named name.
func (m *msg) without(name string) *msg {
	out := m.headers[:0]
	for _, h := range m.headers {
		if !strings.HasPrefix(strings.ToLower(h), strings.ToLower(name)+":") {
			out = append(out, h)
		}
	}
	m.headers = out
	return m
}

// with adds a header.
func (m *msg) with(h string) *msg {
	m.headers = append(m.headers, h)
	return m
}

// uac is the caller's side of one dialog, built by hand.
type uac struct {
	p       *rawPhone
	callID  string
	fromTag string
	toTag   string // the server's tag, once known
	to      string // called number
	cseq    uint32
	invite  *sipgosip.Response // the 200 OK
	branch  string             // of the last INVITE
}

func (p *rawPhone) dialog(to string) *uac {
	return &uac{p: p, callID: randHex(8) + "@test", fromTag: randHex(4), to: to}
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// req builds a request in the dialog; cseq 0 takes the next number.
func (u *uac) req(method string, cseq uint32, contentType, body string) *msg {
	if cseq == 0 {
		u.cseq++
		cseq = u.cseq
	}
	p := u.p
	transport := ""
	if p.proto == "TCP" {
		transport = ";transport=tcp"
	}
	branch := "z9hG4bK" + randHex(8)
	if method == "INVITE" {
		u.branch = branch
	}
	to := fmt.Sprintf("To: <sip:%s@%s>", u.to, p.server)
	if u.toTag != "" {
		to += ";tag=" + u.toTag
	}
	m := &msg{
		method: method,
		uri:    fmt.Sprintf("sip:%s@%s%s", u.to, p.server, transport),
		headers: []string{
			fmt.Sprintf("Via: SIP/2.0/%s %s;branch=%s;rport", p.proto, p.local, branch),
			"Max-Forwards: 70",
			fmt.Sprintf(`From: "Citizen" <sip:%s@%s>;tag=%s`, testCaller, p.local.Addr(), u.fromTag),
			to,
			"Call-ID: " + u.callID,
			fmt.Sprintf("CSeq: %d %s", cseq, method),
			fmt.Sprintf("Contact: <sip:%s@%s%s>", testCaller, p.local, transport),
			"User-Agent: hotline-sip-test",
		},
		body: body,
	}
	if contentType != "" {
		m.headers = append(m.headers, "Content-Type: "+contentType)
	}
	return m
}

func (u *uac) inviteMsg(sdpBody string) *msg {
	ct := ""
	if sdpBody != "" {
		ct = "application/sdp"
	}
	return u.req("INVITE", 0, ct, sdpBody)
}

// call sends an INVITE and waits for its final response; a 2xx sets the dialog's To tag.
func (u *uac) call(sdpBody string) *sipgosip.Response {
	u.p.t.Helper()
	res := u.p.status(u.inviteMsg(sdpBody))
	if res.IsSuccess() {
		u.toTag, _ = res.To().Params.Get("tag")
		u.invite = res
	}
	return res
}

// ack acknowledges the INVITE with CSeq cseq (a 2xx ACK: new branch, its own transaction).
func (u *uac) ack(cseq uint32, sdpBody string) {
	ct := ""
	if sdpBody != "" {
		ct = "application/sdp"
	}
	m := u.req("ACK", cseq, ct, sdpBody)
	u.p.send(m.bytes())
}

// ackError acknowledges a non-2xx final response to the last INVITE: same branch, so
// it ends the INVITE server transaction's retransmissions (RFC 3261 §17.1.1.3).
func (u *uac) ackError() {
	m := u.req("ACK", u.cseq, "", "")
	m.headers[0] = fmt.Sprintf("Via: SIP/2.0/%s %s;branch=%s;rport", u.p.proto, u.p.local, u.branch)
	u.p.send(m.bytes())
}

// established calls and ACKs, and returns the server's leg.
func (u *uac) established(ts *testServer, sdpBody string) *testLeg {
	t := u.p.t
	t.Helper()
	res := u.call(sdpBody)
	if res.StatusCode != 200 {
		t.Fatalf("INVITE: %d %s", res.StatusCode, res.Reason)
	}
	tl := ts.nextCall(t)
	u.ack(u.cseq, "")
	tl.waitAnswered(t)
	if tl.answerErr != nil {
		t.Fatalf("Answer: %v", tl.answerErr)
	}
	return tl
}

// respond answers a request from the server.
func (p *rawPhone) respond(req *sipgosip.Request, code int, reason string) {
	p.t.Helper()
	res := sipgosip.NewResponseFromRequest(req, code, reason, nil)
	p.send([]byte(res.String()))
}

// sdpOffer writes a caller's SDP with the given m= formats and extra attribute lines.
func sdpOffer(port int, formats string, attrs ...string) string {
	lines := []string{
		"v=0",
		"o=citizen 53655765 2353687637 IN IP4 127.0.0.1",
		"s=-",
		"c=IN IP4 127.0.0.1",
		"t=0 0",
		fmt.Sprintf("m=audio %d RTP/AVP %s", port, formats),
	}
	lines = append(lines, attrs...)
	return strings.Join(lines, "\r\n") + "\r\n"
}

// answerSDP parses the SDP of a response with our own parser.
func answerSDP(t *testing.T, body []byte) offer {
	t.Helper()
	o, err := parseSDP(body)
	if err != nil {
		t.Fatalf("our SDP does not parse: %v\n%s", err, body)
	}
	return o
}

// mLine returns the formats of the first m=audio line of body.
func mLine(body []byte) string {
	for _, l := range strings.Split(string(body), "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "m=audio ") && !strings.HasPrefix(l, "m=audio 0 ") { // rejected streams have port 0
			f := strings.Fields(l)
			if len(f) > 3 {
				return strings.Join(f[3:], " ")
			}
		}
	}
	return ""
}

func header(m interface{ GetHeader(string) sipgosip.Header }, name string) string {
	if h := m.GetHeader(name); h != nil {
		return h.Value()
	}
	return ""
}

func atoi(s string) int {
	n, _ := strconv.Atoi(strings.TrimSpace(s))
	return n
}
