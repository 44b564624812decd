package sip

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	sipgosip "github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

func regRandHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

var regT0 = time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)

// regUsers are agents 1001–1010 with password agent<id>, as in the default config.
func regUsers(user string) (string, bool) {
	if n, err := strconv.Atoi(user); err == nil && n >= 1001 && n <= 1010 {
		return "agent" + user, true
	}
	return "", false
}

type regClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *regClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *regClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type regChange struct {
	user     string
	bindings []Binding
	reason   string
}

// regEnv is a registrar behind a real sipgo server on 127.0.0.1, and a sipgo client.
type regEnv struct {
	t       *testing.T
	r       *Registrar
	addr    netip.AddrPort // UDP
	tcpAddr netip.AddrPort
	client  *sipgo.Client // the phones'
	clock   *regClock

	mu      sync.Mutex
	changes []regChange
}

func regLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(regTWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type regTWriter struct{ t *testing.T }

func (w regTWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func newRegEnv(t *testing.T, mutate func(*RegistrarConfig)) *regEnv {
	t.Helper()
	env := &regEnv{t: t, clock: &regClock{t: regT0}}
	cfg := RegistrarConfig{
		Credentials:     regUsers,
		Now:             env.clock.Now,
		Logger:          regLogger(t),
		QualifyInterval: -1,
		OnChange: func(user string, b []Binding, reason string) {
			env.mu.Lock()
			env.changes = append(env.changes, regChange{user, b, reason})
			env.mu.Unlock()
		},
	}
	if mutate != nil {
		mutate(&cfg)
	}
	env.r = NewRegistrar(cfg)

	ua, err := sipgo.NewUA(sipgo.WithUserAgent("hotline-test"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	srv.OnRegister(env.r.HandleRegister)
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	env.addr = conn.LocalAddr().(*net.UDPAddr).AddrPort()
	tcp, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	env.tcpAddr = tcp.Addr().(*net.TCPAddr).AddrPort()
	served := make(chan struct{}, 2)
	go func() { _ = srv.ServeUDP(conn); served <- struct{}{} }()
	go func() { _ = srv.ServeTCP(tcp); served <- struct{}{} }()

	cua, err := sipgo.NewUA(sipgo.WithUserAgent("regtest-phone"), sipgo.WithUserAgentHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	if env.client, err = sipgo.NewClient(cua, sipgo.WithClientHostname("127.0.0.1")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		env.r.Stop()
		cua.Close()
		conn.Close()
		tcp.Close()
		ua.Close()
		for range 2 {
			select {
			case <-served:
			case <-time.After(5 * time.Second):
				t.Error("ServeUDP/ServeTCP did not return")
			}
		}
	})
	return env
}

func (env *regEnv) takeChanges() []regChange {
	env.mu.Lock()
	defer env.mu.Unlock()
	c := env.changes
	env.changes = nil
	return c
}

func (env *regEnv) wantChange(user, reason string, n int) {
	env.t.Helper()
	cs := env.takeChanges()
	if len(cs) != 1 || cs[0].user != user || cs[0].reason != reason || len(cs[0].bindings) != n {
		env.t.Fatalf("OnChange = %+v, want one (%s, %s, %d bindings)", cs, user, reason, n)
	}
}

// regDevice is one softphone's registration state: its Call-ID, CSeq and nonce.
type regDevice struct {
	env      *regEnv
	user     string
	pass     string
	callID   string
	cseq     uint32
	chal     *digest.Challenge
	nc       int
	alg      string
	toUser   string
	contacts []sipgosip.Header
	expires  int // < 0: no Expires header
	extra    []sipgosip.Header
	ruri     *sipgosip.Uri // default sip:127.0.0.1:<UDP port>
}

func (env *regEnv) device(user string) *regDevice {
	return &regDevice{
		env: env, user: user, pass: "agent" + user, callID: regRandHex(8) + "@regtest", cseq: 1, alg: AlgMD5,
		toUser: user, expires: -1,
		contacts: []sipgosip.Header{regContact("sip:" + user + "@127.0.0.1:5099")},
	}
}

func regContact(uri string, params ...string) *sipgosip.ContactHeader {
	h := &sipgosip.ContactHeader{}
	if uri == "*" {
		h.Address.Wildcard = true
		return h
	}
	if err := sipgosip.ParseUri(uri, &h.Address); err != nil {
		panic(err)
	}
	for _, p := range params {
		k, v, _ := strings.Cut(p, "=")
		h.Params.Add(k, v)
	}
	return h
}

// request builds the next REGISTER of the device (CSeq incremented), with credentials when
// it holds a challenge.
func (d *regDevice) request() *sipgosip.Request {
	ruri := sipgosip.Uri{Scheme: "sip", Host: "127.0.0.1", Port: int(d.env.addr.Port())}
	if d.ruri != nil {
		ruri = *d.ruri.Clone()
	}
	req := sipgosip.NewRequest(sipgosip.REGISTER, ruri)
	from := &sipgosip.FromHeader{Address: sipgosip.Uri{Scheme: "sip", User: d.user, Host: "127.0.0.1"}}
	from.Params.Add("tag", "t"+d.callID[:6])
	req.AppendHeader(from)
	req.AppendHeader(&sipgosip.ToHeader{Address: sipgosip.Uri{Scheme: "sip", User: d.toUser, Host: "127.0.0.1"}})
	cid := sipgosip.CallIDHeader(d.callID)
	req.AppendHeader(&cid)
	req.AppendHeader(&sipgosip.CSeqHeader{SeqNo: d.cseq, MethodName: sipgosip.REGISTER})
	d.cseq++
	for _, c := range d.contacts {
		req.AppendHeader(c)
	}
	if d.expires >= 0 {
		req.AppendHeader(sipgosip.NewHeader("Expires", strconv.Itoa(d.expires)))
	}
	req.AppendHeader(sipgosip.NewHeader("User-Agent", "regtest"))
	for _, h := range d.extra {
		req.AppendHeader(h)
	}
	if d.chal != nil {
		d.nc++
		cred, err := digest.Digest(d.chal, digest.Options{
			Method: "REGISTER", URI: ruri.String(), Username: d.user, Password: d.pass, Count: d.nc,
		})
		if err != nil {
			panic(err)
		}
		req.AppendHeader(sipgosip.NewHeader("Authorization", cred.String()))
	}
	return req
}

func (env *regEnv) do(req *sipgosip.Request) *sipgosip.Response {
	env.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := env.client.Do(ctx, req)
	if err != nil {
		env.t.Fatalf("REGISTER: %v", err)
	}
	return res
}

// send sends the next REGISTER; on 401 it takes the challenge of its algorithm.
func (d *regDevice) send() *sipgosip.Response {
	d.env.t.Helper()
	res := d.env.do(d.request())
	if res.StatusCode == 401 {
		d.chal, d.nc = regPickChallenge(d.env.t, res, d.alg), 0
	}
	return res
}

// register sends REGISTERs until the final answer that is not a challenge (at most two).
func (d *regDevice) register() *sipgosip.Response {
	d.env.t.Helper()
	res := d.send()
	if res.StatusCode == 401 {
		res = d.send()
	}
	return res
}

func regPickChallenge(t *testing.T, res *sipgosip.Response, alg string) *digest.Challenge {
	t.Helper()
	for _, h := range res.GetHeaders("WWW-Authenticate") {
		c, err := digest.ParseChallenge(h.Value())
		if err != nil {
			t.Fatalf("challenge %q: %v", h.Value(), err)
		}
		if c.Algorithm == alg {
			return c
		}
	}
	t.Fatalf("no %s challenge in %s", alg, res.StartLine())
	return nil
}

func regWantStatus(t *testing.T, res *sipgosip.Response, code int) {
	t.Helper()
	if res.StatusCode != code {
		t.Fatalf("got %s, want %d", res.StartLine(), code)
	}
}

// regRFC8760 offers SHA-256 and MD5, SHA-256 first.
func regRFC8760(c *RegistrarConfig) { c.Algorithms = []string{AlgSHA256, AlgMD5} }

func TestRegistrarDefaultChallenge(t *testing.T) {
	t.Parallel()
	env := newRegEnv(t, nil)
	res := env.do(env.device("1001").request())
	regWantStatus(t, res, 401)
	hs := res.GetHeaders("WWW-Authenticate")
	if len(hs) != 1 {
		t.Fatalf("WWW-Authenticate: %d headers, want 1", len(hs))
	}
	c, err := digest.ParseChallenge(hs[0].Value())
	if err != nil || c.Algorithm != AlgMD5 || c.Realm != DefaultRealm || len(c.QOP) != 1 || c.QOP[0] != "auth" {
		t.Fatalf("challenge %q: %v", hs[0].Value(), err)
	}

	// The same with sipgo's client.
	res, err = env.client.DoDigestAuth(context.Background(), env.device("1002").request(), res,
		sipgo.DigestAuth{Username: "1002", Password: "agent1002"})
	if err != nil {
		t.Fatal(err)
	}
	regWantStatus(t, res, 200)

	// A SHA-256 answer to a registrar that offers only MD5 is challenged again.
	d := env.device("1003")
	d.alg = AlgMD5
	regWantStatus(t, d.send(), 401)
	d.chal.Algorithm = AlgSHA256
	res = d.send()
	regWantStatus(t, res, 401)
	if len(res.GetHeaders("WWW-Authenticate")) != 1 {
		t.Error("re-challenge offers more than MD5")
	}
}

func TestRegistrarChallengeAndMD5WithSipgoClient(t *testing.T) {
	t.Parallel()
	env := newRegEnv(t, regRFC8760)
	d := env.device("1001")
	req := d.request()
	res := env.do(req)
	regWantStatus(t, res, 401)

	// Two challenges, SHA-256 first (RFC 8760), qop="auth", each with its own nonce.
	hs := res.GetHeaders("WWW-Authenticate")
	if len(hs) != 2 {
		t.Fatalf("WWW-Authenticate: %d headers, want 2", len(hs))
	}
	var nonces []string
	for i, alg := range []string{AlgSHA256, AlgMD5} {
		c, err := digest.ParseChallenge(hs[i].Value())
		if err != nil {
			t.Fatal(err)
		}
		if c.Algorithm != alg || c.Realm != DefaultRealm || !c.SupportsQOP("auth") || len(c.QOP) != 1 || c.Stale {
			t.Errorf("challenge %d = %q", i, hs[i].Value())
		}
		nonces = append(nonces, c.Nonce)
	}
	if nonces[0] == nonces[1] {
		t.Error("both challenges carry the same nonce")
	}

	// sipgo answers the first challenge it finds; keep only MD5 to prove MD5 interop
	// (a client that does not know SHA-256 skips that challenge).
	md5Only := res.Clone()
	md5Only.RemoveHeader("WWW-Authenticate")
	md5Only.AppendHeader(hs[1])
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := env.client.DoDigestAuth(ctx, req, md5Only, sipgo.DigestAuth{Username: "1001", Password: "agent1001"})
	if err != nil {
		t.Fatal(err)
	}
	regWantStatus(t, res, 200)
	if a := req.GetHeader("Authorization").Value(); !strings.Contains(a, "algorithm=MD5") {
		t.Errorf("sipgo sent %q, want MD5", a)
	}

	// The 200 lists the contact with its remaining time, and a Date.
	cs := res.GetHeaders("Contact")
	if len(cs) != 1 {
		t.Fatalf("200 has %d contacts", len(cs))
	}
	if ch := cs[0].(*sipgosip.ContactHeader); ch.Address.Port != 5099 || ch.Params.GetOr("expires", "") != "600" {
		t.Errorf("200 Contact = %q", cs[0].Value())
	}
	if h := res.GetHeader("Date"); h == nil || h.Value() != "Fri, 01 May 2026 09:00:00 GMT" {
		t.Errorf("Date = %v", h)
	}

	bs := env.r.Bindings("1001")
	if len(bs) != 1 {
		t.Fatalf("bindings = %+v", bs)
	}
	b := bs[0]
	if b.User != "1001" || b.Contact.Port != 5099 || b.Transport != "UDP" || !b.Expires.Equal(regT0.Add(600*time.Second)) ||
		b.CallID != d.callID || b.UserAgent != "regtest" || !b.Source.Addr().IsLoopback() || b.Source.Port() == 0 {
		t.Errorf("binding = %+v", b)
	}
	env.wantChange("1001", ReasonRegister, 1)
	if s := env.r.Stats(); s.Registrations != 1 || s.Challenges != 1 || s.Active != 1 || s.Users != 1 {
		t.Errorf("stats = %+v", s)
	}
}

func TestRegistrarSHA256(t *testing.T) {
	t.Parallel()
	env := newRegEnv(t, regRFC8760)

	// sipgo's own client answers the first challenge: SHA-256.
	d := env.device("1002")
	req := d.request()
	res := env.do(req)
	regWantStatus(t, res, 401)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := env.client.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: "1002", Password: "agent1002"})
	if err != nil {
		t.Fatal(err)
	}
	regWantStatus(t, res, 200)
	if a := req.GetHeader("Authorization").Value(); !strings.Contains(a, "algorithm=SHA-256") {
		t.Errorf("sipgo sent %q, want SHA-256", a)
	}

	// By hand with icholy/digest, and the nonce reused with a higher nc.
	d2 := env.device("1003")
	d2.alg = AlgSHA256
	regWantStatus(t, d2.send(), 401)
	regWantStatus(t, d2.send(), 200)
	regWantStatus(t, d2.send(), 200) // nc=2 on the same nonce
	if d2.nc != 2 {
		t.Fatalf("nc = %d", d2.nc)
	}
	if len(env.r.Bindings("1003")) != 1 {
		t.Fatal("no binding for 1003")
	}
	// The refresh changed nothing reachable: one OnChange each for 1002 and 1003.
	if cs := env.takeChanges(); len(cs) != 2 {
		t.Errorf("changes = %+v", cs)
	}
}

func TestRegistrarWrongPassword(t *testing.T) {
	t.Parallel()
	env := newRegEnv(t, nil)
	d := env.device("1001")
	d.pass = "nope"
	regWantStatus(t, d.register(), 403)

	// An unknown user gets exactly the same treatment: 401, then 403.
	u := env.device("9999")
	regWantStatus(t, u.send(), 401)
	regWantStatus(t, u.send(), 403)

	if s := env.r.Stats(); s.AuthFailures != 2 || s.Active != 0 || s.Lockouts != 0 {
		t.Errorf("stats = %+v", s)
	}
	if cs := env.takeChanges(); len(cs) != 0 {
		t.Errorf("changes = %+v", cs)
	}
}

func TestRegistrarStaleNonce(t *testing.T) {
	t.Parallel()
	env := newRegEnv(t, nil)
	d := env.device("1001")
	regWantStatus(t, d.send(), 401)
	regWantStatus(t, d.send(), 200)

	env.clock.advance(DefaultNonceTTL + time.Second)
	res := d.send() // right password, old nonce
	regWantStatus(t, res, 401)
	for _, h := range res.GetHeaders("WWW-Authenticate") {
		if c, _ := digest.ParseChallenge(h.Value()); c == nil || !c.Stale {
			t.Errorf("challenge without stale=true: %q", h.Value())
		}
	}
	regWantStatus(t, d.send(), 200) // with the fresh nonce

	// An old nonce with a wrong password is a failure, not stale.
	env.clock.advance(DefaultNonceTTL + time.Second)
	d.pass = "wrong"
	regWantStatus(t, d.send(), 403)

	// A nonce that is not ours (another secret: a restart), with the right password: stale.
	other := NewRegistrar(RegistrarConfig{Now: env.clock.Now, Logger: regLogger(t)})
	d.pass = "agent1001"
	d.chal.Nonce, d.nc = other.nonces.make(env.clock.Now()), 0
	regWantStatus(t, d.send(), 401)
	if !d.chal.Stale {
		t.Error("foreign nonce: not stale")
	}
	if s := env.r.Stats(); s.Stale != 2 || s.AuthFailures != 1 || s.Registrations != 2 {
		t.Errorf("stats = %+v", s)
	}
}

func TestRegistrarNonceCountReplay(t *testing.T) {
	t.Parallel()
	env := newRegEnv(t, nil)
	d := env.device("1001")
	regWantStatus(t, d.send(), 401)
	regWantStatus(t, d.send(), 200) // nc=1

	d.nc = 0 // the same nc again, in a new transaction
	res := d.send()
	regWantStatus(t, res, 401)
	if !d.chal.Stale {
		t.Error("replayed nc: not stale")
	}
	if s := env.r.Stats(); s.Replays != 1 {
		t.Errorf("stats = %+v", s)
	}

	// A lower nc on a nonce already used at a higher one is refused as well.
	regWantStatus(t, d.send(), 200) // fresh nonce, nc=1
	regWantStatus(t, d.send(), 200) // nc=2
	d.nc = 0
	regWantStatus(t, d.send(), 401)
}

func TestRegistrarExpiresBounds(t *testing.T) {
	t.Parallel()
	env := newRegEnv(t, nil)
	d := env.device("1001")
	d.expires = 30
	res := d.register()
	regWantStatus(t, res, 423)
	if h := res.GetHeader("Min-Expires"); h == nil || h.Value() != "60" {
		t.Errorf("Min-Expires = %v", h)
	}
	// The contact's expires parameter wins over the header.
	d.contacts = []sipgosip.Header{regContact("sip:1001@127.0.0.1:5099", "expires=20")}
	d.expires = 120
	regWantStatus(t, d.send(), 423)

	// Above the maximum is shortened to it.
	d.contacts = []sipgosip.Header{regContact("sip:1001@127.0.0.1:5099")}
	d.expires = 86400
	res = d.send()
	regWantStatus(t, res, 200)
	if v := res.GetHeader("Contact").(*sipgosip.ContactHeader).Params.GetOr("expires", ""); v != "3600" {
		t.Errorf("expires = %s, want 3600", v)
	}
	d.expires = -1
	d.extra = []sipgosip.Header{sipgosip.NewHeader("Expires", "soon")}
	regWantStatus(t, d.send(), 400)
	if s := env.r.Stats(); s.Rejected != 3 {
		t.Errorf("stats = %+v", s)
	}
}

func TestRegistrarContacts(t *testing.T) {
	t.Parallel()
	env := newRegEnv(t, nil)
	desk := env.device("1001")
	desk.contacts = []sipgosip.Header{
		regContact("sip:1001@10.0.0.5:5060"), // a private address: stored as given
		regContact("sip:1001@10.0.0.5:5062;transport=tcp"),
	}
	regWantStatus(t, desk.register(), 200)
	env.wantChange("1001", ReasonRegister, 2)

	env.clock.advance(time.Second)
	mobile := env.device("1001") // another device: another Call-ID
	mobile.contacts = []sipgosip.Header{regContact("sip:1001@127.0.0.1:5070", `+sip.instance="<urn:uuid:0001>"`, "reg-id=1")}
	res := mobile.register()
	regWantStatus(t, res, 200)
	if n := len(res.GetHeaders("Contact")); n != 3 {
		t.Fatalf("200 lists %d contacts, want 3", n)
	}
	bs := env.r.Bindings("1001")
	if len(bs) != 3 || bs[0].Contact.Port != 5070 || bs[0].Instance != "<urn:uuid:0001>" || bs[0].RegID != "1" {
		t.Fatalf("bindings = %+v", bs)
	}
	if bs[1].Contact.Host != "10.0.0.5" || !bs[1].Source.Addr().IsLoopback() {
		t.Errorf("binding = %+v", bs[1])
	}
	env.wantChange("1001", ReasonRegister, 3)

	// The same instance from another port replaces its binding (a restarted phone).
	env.clock.advance(time.Second)
	mobile.contacts = []sipgosip.Header{regContact("sip:1001@127.0.0.1:5072", `+sip.instance="<urn:uuid:0001>"`, "reg-id=1")}
	regWantStatus(t, mobile.send(), 200)
	if bs := env.r.Bindings("1001"); len(bs) != 3 || bs[0].Contact.Port != 5072 {
		t.Fatalf("bindings = %+v", bs)
	}
	env.wantChange("1001", ReasonRegister, 3)

	// A REGISTER without Contact is a query.
	query := env.device("1001")
	query.contacts = nil
	res = query.register()
	regWantStatus(t, res, 200)
	if n := len(res.GetHeaders("Contact")); n != 3 {
		t.Errorf("query lists %d contacts", n)
	}

	// Un-REGISTER one contact.
	desk.contacts = []sipgosip.Header{regContact("sip:1001@10.0.0.5:5062;transport=tcp", "expires=0")}
	res = desk.send()
	regWantStatus(t, res, 200)
	if n := len(res.GetHeaders("Contact")); n != 2 {
		t.Errorf("200 lists %d contacts, want 2", n)
	}
	env.wantChange("1001", ReasonUnregister, 2)

	// Contact: * needs Expires: 0 and no other contact.
	desk.contacts = []sipgosip.Header{regContact("*")}
	desk.expires = 60
	regWantStatus(t, desk.send(), 400)
	desk.expires = -1
	regWantStatus(t, desk.send(), 400)
	desk.contacts = []sipgosip.Header{regContact("*"), regContact("sip:1001@10.0.0.5:5060")}
	desk.expires = 0
	regWantStatus(t, desk.send(), 400)
	desk.contacts = []sipgosip.Header{regContact("*")}
	res = desk.send()
	regWantStatus(t, res, 200)
	if n := len(res.GetHeaders("Contact")); n != 0 || len(env.r.Bindings("1001")) != 0 {
		t.Errorf("after *: %d contacts listed, bindings %+v", n, env.r.Bindings("1001"))
	}
	env.wantChange("1001", ReasonUnregister, 0)
	if s := env.r.Stats(); s.Active != 0 || s.Users != 0 {
		t.Errorf("stats = %+v", s)
	}
}

func TestRegistrarCSeqOrder(t *testing.T) {
	t.Parallel()
	env := newRegEnv(t, nil)
	d := env.device("1001")
	regWantStatus(t, d.register(), 200) // CSeq 2
	d.cseq = 2                          // the same CSeq again, same Call-ID
	regWantStatus(t, d.send(), 500)
	d.cseq = 1
	d.contacts = []sipgosip.Header{regContact("sip:1001@127.0.0.1:5099", "expires=0")}
	regWantStatus(t, d.send(), 500) // an old un-REGISTER must not remove the binding
	if len(env.r.Bindings("1001")) != 1 {
		t.Fatal("binding removed by an out-of-order REGISTER")
	}
	d.cseq = 10
	regWantStatus(t, d.send(), 200)
	if len(env.r.Bindings("1001")) != 0 {
		t.Fatal("binding not removed")
	}
}

func TestRegistrarMaxContacts(t *testing.T) {
	t.Parallel()
	env := newRegEnv(t, func(c *RegistrarConfig) { c.MaxContacts = 2 })
	for port := 5001; port <= 5003; port++ {
		d := env.device("1001")
		d.contacts = []sipgosip.Header{regContact("sip:1001@127.0.0.1:" + strconv.Itoa(port))}
		regWantStatus(t, d.register(), 200)
		env.clock.advance(time.Second)
	}
	bs := env.r.Bindings("1001")
	if len(bs) != 2 || bs[0].Contact.Port != 5003 || bs[1].Contact.Port != 5002 {
		t.Fatalf("bindings = %+v", bs)
	}
	d := env.device("1001")
	d.contacts = []sipgosip.Header{regContact("sip:a@127.0.0.1:1"), regContact("sip:b@127.0.0.1:2"), regContact("sip:c@127.0.0.1:3")}
	regWantStatus(t, d.register(), 403)
}

func TestRegistrarExpiry(t *testing.T) {
	t.Parallel()
	env := newRegEnv(t, nil)
	d := env.device("1001")
	d.expires = 60
	regWantStatus(t, d.register(), 200)
	env.takeChanges()

	env.clock.advance(59 * time.Second)
	env.r.sweep()
	if len(env.r.Bindings("1001")) != 1 {
		t.Fatal("expired too early")
	}
	env.clock.advance(time.Second)
	if len(env.r.Bindings("1001")) != 0 {
		t.Fatal("Bindings returns an expired binding")
	}
	env.r.sweep()
	env.wantChange("1001", ReasonExpired, 0)
	if s := env.r.Stats(); s.Expired != 1 || s.Active != 0 {
		t.Errorf("stats = %+v", s)
	}
}

func TestRegistrarLockout(t *testing.T) {
	t.Parallel()
	env := newRegEnv(t, func(c *RegistrarConfig) { c.LockoutFailures = 3 })
	bad := env.device("1001")
	bad.pass = "guess"
	regWantStatus(t, bad.send(), 401)
	for i := 0; i < 3; i++ {
		bad.chal, bad.nc = nil, 0
		regWantStatus(t, bad.register(), 403)
	}
	s := env.r.Stats()
	if s.AuthFailures != 3 || s.Lockouts != 1 || s.LockedUsers != 1 || s.LockedSources != 0 {
		t.Fatalf("stats = %+v", s)
	}
	// 1001 is locked out at this address: even the right password is refused.
	right := env.device("1001")
	regWantStatus(t, right.register(), 403)
	if s := env.r.Stats(); s.LockedOut != 1 || len(env.r.Bindings("1001")) != 0 {
		t.Errorf("stats = %+v", s)
	}
	// Another agent behind the same address (the centre's NAT) is not affected.
	other := env.device("1002")
	regWantStatus(t, other.register(), 200)
	env.clock.advance(DefaultLockoutFor + time.Second)
	right.chal, right.nc = nil, 0
	regWantStatus(t, right.register(), 200)
	if s := env.r.Stats(); s.LockedUsers != 0 {
		t.Errorf("stats = %+v", s)
	}
}

// TestRegistrarLockoutScanner: many distinct users failing from one address lock the
// whole address, the right password of an existing user included.
func TestRegistrarLockoutScanner(t *testing.T) {
	t.Parallel()
	env := newRegEnv(t, func(c *RegistrarConfig) { c.LockoutSourceUsers = 4 })
	for i := range 3 {
		d := env.device(strconv.Itoa(5000 + i)) // unknown users: a scan
		regWantStatus(t, d.register(), 403)
	}
	good := env.device("1003")
	regWantStatus(t, good.register(), 200) // three distinct users: still open
	scan := env.device("admin")
	regWantStatus(t, scan.register(), 403) // the fourth
	s := env.r.Stats()
	if s.SourceLockouts != 1 || s.LockedSources != 1 || s.Lockouts != 0 {
		t.Fatalf("stats = %+v", s)
	}
	good = env.device("1004")
	regWantStatus(t, good.send(), 403) // refused before any challenge
	if s := env.r.Stats(); s.SourceLockedOut != 1 {
		t.Errorf("stats = %+v", s)
	}
	env.clock.advance(DefaultLockoutFor + time.Second)
	regWantStatus(t, good.register(), 200)
	if s := env.r.Stats(); s.LockedSources != 0 {
		t.Errorf("stats = %+v", s)
	}
}

func TestRegistrarLockoutWindow(t *testing.T) {
	t.Parallel()
	env := newRegEnv(t, func(c *RegistrarConfig) { c.LockoutFailures = 3 })
	bad := env.device("1001")
	bad.pass = "guess"
	regWantStatus(t, bad.register(), 403)
	regWantStatus(t, bad.register(), 403)
	env.clock.advance(DefaultLockoutWindow + time.Second) // the window starts again
	regWantStatus(t, bad.register(), 403)
	regWantStatus(t, bad.register(), 403)
	if s := env.r.Stats(); s.Lockouts != 0 {
		t.Errorf("stats = %+v", s)
	}
}

func TestRegistrarAuthorization(t *testing.T) {
	t.Parallel()
	env := newRegEnv(t, nil)

	// Authenticated as 1001, registering 1002.
	d := env.device("1001")
	d.toUser = "1002"
	regWantStatus(t, d.register(), 403)
	if s := env.r.Stats(); s.Forbidden != 1 || s.AuthFailures != 0 || len(env.r.Bindings("1002")) != 0 {
		t.Errorf("stats = %+v", s)
	}

	// A digest uri other than the Request-URI.
	d = env.device("1001")
	regWantStatus(t, d.send(), 401)
	req := d.request()
	req.RemoveHeader("Authorization")
	cred, _ := digest.Digest(d.chal, digest.Options{
		Method: "REGISTER", URI: "sip:elsewhere.example", Username: "1001", Password: "agent1001", Count: 5,
	})
	req.AppendHeader(sipgosip.NewHeader("Authorization", cred.String()))
	regWantStatus(t, env.do(req), 400)

	// Credentials for another realm: challenged.
	other := *d.chal
	other.Realm = "elsewhere"
	d.chal = &other
	regWantStatus(t, d.send(), 401)

	// Garbage and qop-less credentials.
	for _, a := range []string{
		`Digest username="1001", realm="hotline", nonce=`,
		`Digest username="1001", realm="hotline", nonce="x", uri="sip:127.0.0.1", response="00"`,
	} {
		d.chal = nil
		d.extra = []sipgosip.Header{sipgosip.NewHeader("Authorization", a)}
		regWantStatus(t, d.send(), 400)
	}
	// Require: an extension we do not support.
	d.extra = []sipgosip.Header{sipgosip.NewHeader("Require", "path")}
	res := d.send()
	regWantStatus(t, res, 420)
	if h := res.GetHeader("Unsupported"); h == nil || h.Value() != "path" {
		t.Errorf("Unsupported = %v", h)
	}
}

// TestRegistrarFloodBounded: unauthenticated and failed REGISTERs leave no state behind but
// the lockout entry; the tables have caps.
func TestRegistrarFloodBounded(t *testing.T) {
	t.Parallel()
	env := newRegEnv(t, func(c *RegistrarConfig) { c.LockoutFailures, c.LockoutSourceUsers = -1, -1 })
	for i := 0; i < 200; i++ {
		d := env.device(strconv.Itoa(2000 + i))
		regWantStatus(t, d.register(), 403)
	}
	env.r.mu.Lock()
	users, uses, locks := len(env.r.users), len(env.r.uses.m), len(env.r.locks.users)+len(env.r.locks.sources)
	env.r.mu.Unlock()
	if users != 0 || uses != 0 || locks != 0 {
		t.Errorf("state after flood: users %d, nonce uses %d, lockouts %d", users, uses, locks)
	}

	// The nonce-count table: when full, the old half goes and the floor rises.
	u := nonceUses{m: map[string]nonceUse{}}
	ttl := time.Minute
	for i := 0; i < maxNonceUses; i++ {
		issued := regT0.Add(time.Duration(i) * ttl / maxNonceUses)
		if !u.add(fmt.Sprint(i), 1, issued, regT0.Add(ttl-time.Millisecond), ttl) {
			t.Fatal("add refused")
		}
	}
	now := regT0.Add(ttl)
	if !u.add("new", 1, now, now, ttl) || len(u.m) > maxNonceUses {
		t.Fatalf("add at cap: %d entries", len(u.m))
	}
	if u.add("0", 2, regT0, now, ttl) {
		t.Error("a nonce below the floor was accepted")
	}

	// The lockout tables: a flood of distinct users from distinct addresses.
	l := newLockouts()
	c := RegistrarConfig{LockoutFailures: 10, LockoutSourceUsers: 30, LockoutWindow: time.Minute, LockoutFor: time.Minute}
	for i := 0; i < maxLockEntries+100; i++ {
		ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		l.fail(strings.Repeat("u", 1000)+strconv.Itoa(i), ip, regT0, &c)
	}
	if len(l.users) > maxLockEntries || len(l.sources) > maxLockEntries {
		t.Errorf("lockout tables: %d, %d entries", len(l.users), len(l.sources))
	}
	for k := range l.users {
		if len(k.user) > maxLockUser {
			t.Fatalf("lockout key keeps a %d-byte user", len(k.user))
		}
	}
	// Many users from one address: the source entry keeps at most the threshold.
	one := netip.MustParseAddr("10.9.9.9")
	for i := range 1000 {
		l.fail(strconv.Itoa(i), one, regT0, &c)
	}
	if e := l.sources[one]; e == nil || len(e.users) >= c.LockoutSourceUsers || !l.sourceLocked(one, regT0) {
		t.Errorf("source entry after a scan: %+v", e)
	}
}
