package sip

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	sipgosip "github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// mobilePlan is the default config's dial plan: mainland mobile numbers.
var mobilePlan = []*regexp.Regexp{regexp.MustCompile(`1[3-9]\d{9}`)}

func TestOutboundTrunkAllows(t *testing.T) {
	t.Parallel()
	tr := OutboundTrunk{DialPlan: append([]*regexp.Regexp{regexp.MustCompile(`0\d{2,3}\d{7,8}|1|12`)}, mobilePlan...)}
	// 12: the second alternative of the first pattern, a full match though "1" matches first.
	for _, n := range []string{"13900000001", "19912345678", "01088888888", "12", "1"} {
		if !tr.Allows(n) {
			t.Errorf("Allows(%q) = false", n)
		}
	}
	// 139000000012: one digit too many, a substring match is not enough.
	for _, n := range []string{"139000000012", "1390000000", "12345", "+8613900000001", "8613900000001",
		"12900000001", "", "13900000001;user=phone", "13900000001@evil"} {
		if tr.Allows(n) {
			t.Errorf("Allows(%q) = true", n)
		}
	}
	if (&OutboundTrunk{}).Allows("13900000001") {
		t.Error("an empty dial plan allows a number")
	}
	if !(&OutboundTrunk{DialPlan: []*regexp.Regexp{regexp.MustCompile(`.*`)}}).Allows("+8613900000001") {
		t.Error("a plan of .* refuses a number")
	}
}

// The call-rate bucket: burst max(1, CPS), refilled at CPS per second, on the clock given.
func TestTrunkRateBucket(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	for _, tc := range []struct {
		cps   float64
		steps []int // dial times in ms
		want  string
	}{
		{2, []int{0, 0, 0, 499, 500, 500, 10000, 10000, 10000}, "++--+-++-"},
		{0.5, []int{0, 1000, 1999, 2000, 2000}, "+--+-"},
		{3, []int{0, 0, 0, 0, 333, 334, 667}, "+++--++"},
		{0, []int{0, 0, 0, 0}, "++++"},
	} {
		ts := &trunkState{cfg: OutboundTrunk{CPS: tc.cps}, tokens: max(1, tc.cps)}
		var got strings.Builder
		for _, ms := range tc.steps {
			switch err := ts.acquire(at(ms)); {
			case err == nil:
				got.WriteByte('+')
				ts.release()
			case errors.Is(err, ErrTrunkRate):
				got.WriteByte('-')
			default:
				t.Fatalf("cps %v: %v", tc.cps, err)
			}
		}
		if got.String() != tc.want {
			t.Errorf("cps %v at %v ms: %s, want %s", tc.cps, tc.steps, got.String(), tc.want)
		}
	}
}

// trunkServer is a Server with one outbound trunk (edit sets it up) that only places calls.
func trunkServer(t *testing.T, gateway netip.AddrPort, edit func(*OutboundTrunk, *Config)) *Server {
	t.Helper()
	tr := OutboundTrunk{
		Name:     "loopback-out",
		Gateway:  sipgosip.Uri{Scheme: "sip", Host: gateway.Addr().String(), Port: int(gateway.Port())},
		CallerID: "12345",
		DialPlan: mobilePlan,
	}
	cfg := Config{Listen: netip.MustParseAddrPort("127.0.0.1:0"), OnCall: func(*Inbound) {}}
	if edit != nil {
		edit(&tr, &cfg)
	}
	cfg.OutboundTrunks = []OutboundTrunk{tr}
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return s
}

// fakeGateway is a UDP socket that plays a trunk gateway by hand: it yields every request
// it receives and answers what the test tells it to.
type fakeGateway struct {
	conn    *net.UDPConn
	reqs    chan *sipgosip.Request
	seen    map[string]bool     // Via branches of the INVITEs next returned
	skipped []*sipgosip.Request // requests next passed over
}

func newFakeGateway(t *testing.T) *fakeGateway {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	g := &fakeGateway{conn: c, reqs: make(chan *sipgosip.Request, 64), seen: map[string]bool{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65535)
		for {
			n, src, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			msg, err := sipgosip.ParseMessage(bytes.Clone(buf[:n]))
			if req, ok := msg.(*sipgosip.Request); err == nil && ok {
				req.SetSource(src.String())
				select {
				case g.reqs <- req:
				default: // a test that stopped reading: drop
				}
			}
		}
	}()
	t.Cleanup(func() { c.Close(); <-done })
	return g
}

func (g *fakeGateway) addr() netip.AddrPort { return g.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// next returns the next request of method, passing over other methods and retransmitted INVITEs.
func (g *fakeGateway) next(t *testing.T, method sipgosip.RequestMethod) *sipgosip.Request {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case req := <-g.reqs:
			branch, _ := req.Via().Params.Get("branch")
			if req.Method == method && (method != sipgosip.INVITE || !g.seen[branch]) {
				if method == sipgosip.INVITE {
					g.seen[branch] = true
				}
				return req
			}
			g.skipped = append(g.skipped, req)
		case <-deadline:
			t.Fatalf("the gateway got no %s", method)
			return nil
		}
	}
}

func (g *fakeGateway) respond(t *testing.T, req *sipgosip.Request, code int, reason string) {
	t.Helper()
	g.send(t, req, sipgosip.NewResponseFromRequest(req, code, reason, nil))
}

func (g *fakeGateway) send(t *testing.T, req *sipgosip.Request, res *sipgosip.Response) {
	t.Helper()
	if res.StatusCode > 100 {
		res.To().Params.Add("tag", "gw")
	}
	dst, err := netip.ParseAddrPort(req.Source())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.conn.WriteToUDPAddrPort([]byte(res.String()), dst); err != nil {
		t.Fatal(err)
	}
}

func waitDialError(t *testing.T, o *Outbound, code int) *DialError {
	t.Helper()
	var de *DialError
	if err := o.Wait(); !errors.As(err, &de) || de.Code != code {
		t.Fatalf("dial: %v, want %d", err, code)
	}
	select {
	case <-o.Done():
	case <-time.After(3 * time.Second):
		t.Fatal("the failed leg is not done")
	}
	return de
}

// Outside the dial plan (or on an unknown trunk) nothing is sent: the first request the
// gateway sees is the INVITE of the allowed number dialled after them.
func TestDialTrunkNotInDialPlanSendsNothing(t *testing.T) {
	t.Parallel()
	g := newFakeGateway(t)
	s := trunkServer(t, g.addr(), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, n := range []string{"12345", "139000000012", "+8613900000001", "110", ""} {
		if o, err := s.DialTrunk(ctx, "loopback-out", n, DialOptions{}); !errors.Is(err, ErrNotInDialPlan) || o != nil {
			t.Fatalf("DialTrunk(%q) = %v, %v; want ErrNotInDialPlan", n, o, err)
		}
		if s.TrunkAllows("loopback-out", n) {
			t.Errorf("TrunkAllows(%q)", n)
		}
	}
	if _, err := s.DialTrunk(ctx, "nowhere", "13900000001", DialOptions{}); !errors.Is(err, ErrUnknownTrunk) {
		t.Fatalf("unknown trunk: %v", err)
	}
	if s.TrunkAllows("nowhere", "13900000001") || !s.TrunkAllows("loopback-out", "13900000001") {
		t.Fatal("TrunkAllows by trunk")
	}
	o, err := s.DialTrunk(ctx, "loopback-out", "13900000001", DialOptions{Local: netip.MustParseAddrPort("127.0.0.1:40010")})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case req := <-g.reqs:
		if req.Method != sipgosip.INVITE || req.Recipient.String() != "sip:13900000001@"+g.addr().String() {
			t.Fatalf("the gateway's first request: %s, want the INVITE of the allowed number", req.StartLine())
		}
		if u := req.From().Address.User; u != "12345" {
			t.Errorf("From user %q, want the trunk's caller id", u)
		}
		if pai := req.GetHeader("P-Asserted-Identity"); pai == nil || !strings.Contains(pai.Value(), "sip:12345@") {
			t.Errorf("P-Asserted-Identity %v", pai)
		}
		if u := req.To().Address.User; u != "13900000001" {
			t.Errorf("To user %q", u)
		}
		if req.GetHeader("Authorization") != nil {
			t.Error("Authorization without a challenge")
		}
		g.respond(t, req, 486, "Busy Here")
	case <-time.After(5 * time.Second):
		t.Fatal("the allowed number was not dialled")
	}
	waitDialError(t, o, 486)
}

// A channel is held from DialTrunk until the leg is done; opt.FromUser overrides the caller id.
func TestDialTrunkChannelLimit(t *testing.T) {
	t.Parallel()
	g := newFakeGateway(t)
	s := trunkServer(t, g.addr(), func(tr *OutboundTrunk, _ *Config) { tr.MaxChannels = 1 })
	if ch, cps, ok := s.TrunkLimits("loopback-out"); !ok || ch != 1 || cps != 0 {
		t.Fatalf("TrunkLimits = %d %v %v", ch, cps, ok)
	}
	if _, _, ok := s.TrunkLimits("nowhere"); ok {
		t.Fatal("TrunkLimits of an unknown trunk")
	}
	if rt, ok := s.TrunkRingTimeout("loopback-out"); !ok || rt != DefaultRingTimeout {
		t.Fatalf("TrunkRingTimeout = %v %v", rt, ok)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opt := DialOptions{Local: netip.MustParseAddrPort("127.0.0.1:40012"), FromUser: "12345001"}
	first, err := s.DialTrunk(ctx, "loopback-out", "13900000001", opt)
	if err != nil {
		t.Fatal(err)
	}
	inv := g.next(t, sipgosip.INVITE)
	if u := inv.From().Address.User; u != "12345001" {
		t.Errorf("From user %q, want opt.FromUser", u)
	}
	g.respond(t, inv, 180, "Ringing")
	<-first.Ringing()
	if _, err := s.DialTrunk(ctx, "loopback-out", "13900000002", opt); !errors.Is(err, ErrTrunkBusy) {
		t.Fatalf("second dial while the first rings: %v, want ErrTrunkBusy", err)
	}
	g.respond(t, inv, 486, "Busy Here")
	waitDialError(t, first, 486)

	// The channel comes back once the first leg is done (released right after Done).
	var second *Outbound
	for deadline := time.Now().Add(3 * time.Second); second == nil; {
		second, err = s.DialTrunk(ctx, "loopback-out", "13900000002", opt)
		switch {
		case errors.Is(err, ErrTrunkBusy) && time.Now().Before(deadline):
			time.Sleep(5 * time.Millisecond)
		case err != nil:
			t.Fatalf("dial after the first leg ended: %v", err)
		}
	}
	inv = g.next(t, sipgosip.INVITE)
	if inv.Recipient.User != "13900000002" {
		t.Fatalf("INVITE for %s", inv.Recipient.User)
	}
	g.respond(t, inv, 480, "Temporarily Unavailable")
	waitDialError(t, second, 480)
}

// More than CPS dials in a second are refused at once (ErrTrunkRate), on the trunk clock.
func TestDialTrunkRateLimit(t *testing.T) {
	t.Parallel()
	g := newFakeGateway(t)
	var mu sync.Mutex
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	s := trunkServer(t, g.addr(), func(tr *OutboundTrunk, cfg *Config) {
		tr.CPS = 2
		cfg.TrunkClock = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	})
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dials := 0
	dial := func() error {
		o, err := s.DialTrunk(ctx, "loopback-out", "13900000001", DialOptions{Local: netip.MustParseAddrPort("127.0.0.1:40014")})
		if err != nil {
			return err
		}
		dials++
		g.respond(t, g.next(t, sipgosip.INVITE), 486, "Busy Here")
		waitDialError(t, o, 486)
		return nil
	}
	for i, step := range []struct {
		advance time.Duration
		want    error
	}{
		{0, nil}, {0, nil}, {0, ErrTrunkRate}, // burst of 2
		{400 * time.Millisecond, ErrTrunkRate}, {100 * time.Millisecond, nil}, {0, ErrTrunkRate}, // one per 500 ms
		{time.Minute, nil}, {0, nil}, {0, ErrTrunkRate}, // idle time banks no more than the burst
	} {
		advance(step.advance)
		if err := dial(); !errors.Is(err, step.want) {
			t.Fatalf("dial %d: %v, want %v", i, err, step.want)
		}
	}
	if dials != 5 {
		t.Fatalf("%d INVITEs, want 5", dials)
	}
	for len(g.reqs) > 0 { // ACKs of the 486s; a refused dial sent nothing
		if req := <-g.reqs; req.Method == sipgosip.INVITE {
			if b, _ := req.Via().Params.Get("branch"); !g.seen[b] {
				t.Fatalf("an INVITE beyond the rate: %s", req.StartLine())
			}
		}
	}
}

// challenge answers req with 401 or 407 and a Digest challenge (qop=auth, as carriers send).
func (g *fakeGateway) challenge(t *testing.T, req *sipgosip.Request, code int) {
	t.Helper()
	name, reason := "WWW-Authenticate", "Unauthorized"
	if code == 407 {
		name, reason = "Proxy-Authenticate", "Proxy Authentication Required"
	}
	res := sipgosip.NewResponseFromRequest(req, code, reason, nil)
	res.AppendHeader(sipgosip.NewHeader(name, `Digest realm="gw.test", nonce="n`+strconv.Itoa(code)+`", qop="auth, auth-int", algorithm=md5, opaque="op"`))
	g.send(t, req, res)
}

// checkRetry checks the INVITE that answers a challenge: same dialog identifiers, next CSeq,
// new branch, and a digest of our credentials computed over the Request-URI.
func checkRetry(t *testing.T, first, retry *sipgosip.Request, credHdr string) {
	t.Helper()
	branch := func(r *sipgosip.Request) string { b, _ := r.Via().Params.Get("branch"); return b }
	tag := func(r *sipgosip.Request) string { v, _ := r.From().Params.Get("tag"); return v }
	if retry.CallID().Value() != first.CallID().Value() || tag(retry) != tag(first) ||
		retry.CSeq().SeqNo != first.CSeq().SeqNo+1 || branch(retry) == branch(first) {
		t.Fatalf("retry %s / %s / CSeq %d / %s after %s / %s / CSeq %d / %s: want same Call-ID and From tag, CSeq+1, new branch",
			retry.CallID().Value(), tag(retry), retry.CSeq().SeqNo, branch(retry), first.CallID().Value(), tag(first), first.CSeq().SeqNo, branch(first))
	}
	if _, ok := retry.To().Params.Get("tag"); ok {
		t.Error("the retry carries the challenge's To tag")
	}
	if !bytes.Equal(retry.Body(), first.Body()) {
		t.Error("the retry's SDP differs")
	}
	h := retry.GetHeader(credHdr)
	if h == nil {
		t.Fatalf("no %s in the retry", credHdr)
	}
	cred, err := digest.ParseCredentials(h.Value())
	if err != nil {
		t.Fatal(err)
	}
	want, err := digest.Digest(&digest.Challenge{Realm: "gw.test", Nonce: cred.Nonce, Opaque: "op", Algorithm: "MD5", QOP: []string{"auth"}},
		digest.Options{Method: "INVITE", URI: retry.Recipient.String(), Username: "trunkuser", Password: "s3cret", Count: 1, Cnonce: cred.Cnonce})
	if err != nil {
		t.Fatal(err)
	}
	if cred.Username != "trunkuser" || cred.URI != retry.Recipient.String() || cred.QOP != "auth" || cred.Opaque != "op" || cred.Response != want.Response {
		t.Fatalf("%s: %s, want response %s", credHdr, h.Value(), want.Response)
	}
}

// 407 from a proxy: one retry with Proxy-Authorization; a second 407 ends the dial.
func TestDialTrunkProxyAuthFails(t *testing.T) {
	t.Parallel()
	g := newFakeGateway(t)
	s := trunkServer(t, g.addr(), withCredentials)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	o, err := s.DialTrunk(ctx, "loopback-out", "13900000001", DialOptions{Local: netip.MustParseAddrPort("127.0.0.1:40022")})
	if err != nil {
		t.Fatal(err)
	}
	first := g.next(t, sipgosip.INVITE)
	if first.GetHeader("Proxy-Authorization") != nil || first.GetHeader("Authorization") != nil {
		t.Fatal("credentials before a challenge")
	}
	g.challenge(t, first, 407)
	retry := g.next(t, sipgosip.INVITE)
	checkRetry(t, first, retry, "Proxy-Authorization")
	g.challenge(t, retry, 407)
	if de := waitDialError(t, o, 407); de.Reason != "trunk authentication failed" {
		t.Fatalf("reason %q", de.Reason)
	}
	// Both challenges were ACKed (by the transaction layer), and no third INVITE followed.
	acks := 0
	for _, req := range g.skipped {
		if req.Method == sipgosip.ACK {
			acks++
		}
	}
	for deadline := time.After(3 * time.Second); acks < 2; {
		select {
		case req := <-g.reqs:
			switch req.Method {
			case sipgosip.ACK:
				acks++
			case sipgosip.INVITE:
				if b, _ := req.Via().Params.Get("branch"); !g.seen[b] {
					t.Fatal("a third INVITE")
				}
			}
		case <-deadline:
			t.Fatalf("%d ACKs of the challenges, want 2", acks)
		}
	}
}

// Cancelling the dial while the authenticated INVITE rings cancels that transaction.
func TestDialTrunkCancelAfterChallenge(t *testing.T) {
	t.Parallel()
	g := newFakeGateway(t)
	s := trunkServer(t, g.addr(), withCredentials)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o, err := s.DialTrunk(ctx, "loopback-out", "13900000001", DialOptions{Local: netip.MustParseAddrPort("127.0.0.1:40024")})
	if err != nil {
		t.Fatal(err)
	}
	first := g.next(t, sipgosip.INVITE)
	g.respond(t, first, 180, "Ringing") // a provisional of the first transaction must not let CANCEL go early
	g.challenge(t, first, 401)
	retry := g.next(t, sipgosip.INVITE)
	checkRetry(t, first, retry, "Authorization")
	g.respond(t, retry, 180, "Ringing")
	<-o.Ringing()
	cancel()
	c := g.next(t, sipgosip.CANCEL)
	cb, _ := c.Via().Params.Get("branch")
	if rb, _ := retry.Via().Params.Get("branch"); cb != rb || c.CSeq().SeqNo != retry.CSeq().SeqNo {
		t.Fatalf("CANCEL branch %s CSeq %d: want the retry's %s and %d", cb, c.CSeq().SeqNo, rb, retry.CSeq().SeqNo)
	}
	g.respond(t, c, 200, "OK")
	g.respond(t, retry, 487, "Request Terminated")
	if err := o.Wait(); !errors.Is(err, ErrDialCanceled) {
		t.Fatalf("wait: %v, want ErrDialCanceled", err)
	}
}

// Without credentials a challenge is an ordinary failure (agents' phones: unchanged).
func TestDialChallengeWithoutCredentials(t *testing.T) {
	t.Parallel()
	g := newFakeGateway(t)
	s := trunkServer(t, g.addr(), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	o, err := s.DialTrunk(ctx, "loopback-out", "13900000001", DialOptions{Local: netip.MustParseAddrPort("127.0.0.1:40026")})
	if err != nil {
		t.Fatal(err)
	}
	g.challenge(t, g.next(t, sipgosip.INVITE), 401)
	if de := waitDialError(t, o, 401); de.Reason != "Unauthorized" {
		t.Fatalf("reason %q", de.Reason)
	}
}

func withCredentials(tr *OutboundTrunk, _ *Config) { tr.Username, tr.Password = "trunkuser", "s3cret" }

// SIPp as the trunk's gateway (testdata/sipp/uas_trunk_*.xml). Each scenario checks its
// side: the digest of the retry (verifyauth), and that a gateway answering 401 forever
// gets exactly two INVITEs (a third is an unexpected message: SIPp exits non-zero).
func TestDialTrunkSIPp(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("sipp"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("sipp is required under CI (Debian package sip-tester)")
		}
		t.Skip("sipp not installed (Debian package sip-tester)")
	}
	for _, tc := range []struct {
		scenario string
		code     int // 0: answered (then we hang up)
		reason   string
	}{
		{"uas_trunk_auth.xml", 0, ""},
		{"uas_trunk_auth_forever.xml", 401, "trunk authentication failed"},
		{"uas_trunk_busy.xml", 486, "Busy Here"},
	} {
		t.Run(tc.scenario, func(t *testing.T) {
			t.Parallel()
			port, sippDone := runSIPpGateway(t, tc.scenario)
			s := trunkServer(t, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)), withCredentials)
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			o, err := s.DialTrunk(ctx, "loopback-out", "13900000001", DialOptions{Local: netip.MustParseAddrPort("127.0.0.1:40016")})
			if err != nil {
				t.Fatal(err)
			}
			if tc.code == 0 {
				if err := o.Wait(); err != nil {
					t.Fatalf("dial: %v", err)
				}
				if m := o.Media(); m.PayloadType != PayloadPCMA || !m.Addr.IsValid() {
					t.Errorf("media %+v", m)
				}
				if err := o.Hangup(ctx, "survey done"); err != nil {
					t.Fatalf("BYE: %v", err)
				}
			} else {
				de := waitDialError(t, o, tc.code)
				if side, cause, code := o.End(); de.Reason != tc.reason || side != SideAgent || cause != tc.reason || code != tc.code {
					t.Errorf("%v; end %s %q %d: want reason %q", de, side, cause, code, tc.reason)
				}
			}
			select {
			case out := <-sippDone:
				if out != "" {
					t.Fatalf("sipp failed:\n%s", out)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("sipp did not finish")
			}
		})
	}
}

// runSIPpGateway starts SIPp with scenario on a free port and returns the port once SIPp
// listens there, and a channel that yields "" when SIPp succeeded, else its output and traces.
func runSIPpGateway(t *testing.T, scenario string) (int, <-chan string) {
	t.Helper()
	path, err := filepath.Abs(filepath.Join("..", "testdata", "sipp", scenario))
	if err != nil {
		t.Fatal(err)
	}
	port, dir := regFreeUDPPort(t), t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	cmd := exec.CommandContext(ctx, "sipp", "-sf", path, "-i", "127.0.0.1", "-p", strconv.Itoa(port),
		"-mp", strconv.Itoa(regFreeUDPPort(t)), "-m", "1", "-nostdin", "-timeout", "20s", "-timeout_error",
		"-trace_err", "-trace_msg")
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	done, exited := make(chan string, 1), make(chan struct{})
	go func() {
		defer close(exited)
		defer cancel()
		if err := cmd.Wait(); err == nil {
			done <- ""
			return
		}
		files, _ := filepath.Glob(filepath.Join(dir, "*"))
		for _, f := range files {
			if b, err := os.ReadFile(f); err == nil && len(b) < 64<<10 {
				out.WriteString("\n--- " + filepath.Base(f) + " ---\n")
				out.Write(b)
			}
		}
		done <- out.String()
	}()
	t.Cleanup(func() { cancel(); <-exited })
	for deadline := time.Now().Add(5 * time.Second); !udpListening(port); time.Sleep(10 * time.Millisecond) {
		select {
		case <-exited:
			t.Fatalf("sipp exited:\n%s", <-done)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("sipp does not listen on %d", port)
		}
	}
	return port, done
}

// udpListening reports whether a socket is bound to 127.0.0.1:port (from /proc/net/udp:
// probing by binding the port ourselves could take it from SIPp).
func udpListening(port int) bool {
	b, err := os.ReadFile("/proc/net/udp")
	if err != nil {
		return true // cannot tell: the INVITE's retransmissions cover SIPp's start
	}
	return bytes.Contains(b, fmt.Appendf(nil, " 0100007F:%04X ", port))
}
