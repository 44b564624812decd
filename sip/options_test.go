package sip

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	sipgosip "github.com/emiago/sipgo/sip"
)

// Server.Ping is the one OPTIONS sender: the registrar's qualify (RegistrarConfig.Pinger).
// These tests run it against real sipgo phones on loopback.

func withRegistrar(r *Registrar) serverOption {
	return func(c *Config, _ *serverKnobs) { c.Registrar = r }
}

// optionsPhone is a sipgo user agent that answers OPTIONS with status and hands each to the
// test. It registers from a UDP socket it serves (so the OPTIONS to that source reaches it,
// as for a phone behind NAT; a plain sipgo client's ephemeral socket would leave its reader
// goroutine behind, see TestMain) or over a TCP connection of its client.
type optionsPhone struct {
	ua        *sipgo.UserAgent
	udpClient *sipgo.Client
	tcpClient *sipgo.Client
	options   chan *sipgosip.Request
	stop      func() // the phone goes away: its socket closes and its user agent stops
}

func newOptionsPhone(t *testing.T, status int) *optionsPhone {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("options-phone"), sipgo.WithUserAgentHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ua.Close() })
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	p := &optionsPhone{ua: ua, options: make(chan *sipgosip.Request, 4)}
	srv.OnOptions(func(req *sipgosip.Request, tx sipgosip.ServerTransaction) {
		p.options <- req
		_ = tx.Respond(sipgosip.NewResponseFromRequest(req, status, "", nil))
	})
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.ServeUDP(conn) }()
	var once sync.Once
	p.stop = func() { once.Do(func() { conn.Close(); <-served; ua.Close() }) }
	t.Cleanup(p.stop)
	addr := conn.LocalAddr().String()
	if p.udpClient, err = sipgo.NewClient(ua, sipgo.WithClientAddr(addr), sipgo.WithClientConnectionAddr(addr)); err != nil {
		t.Fatal(err)
	}
	if p.tcpClient, err = sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1")); err != nil {
		t.Fatal(err)
	}
	// ServeUDP puts the socket in the pool the client sends from a moment after it starts:
	// ask ourselves until it does.
	self := sipgosip.Uri{Scheme: "sip", Host: "127.0.0.1", Port: conn.LocalAddr().(*net.UDPAddr).Port}
	deadline := time.Now().Add(waitLong)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := p.udpClient.Do(ctx, sipgosip.NewRequest(sipgosip.OPTIONS, self))
		cancel()
		if err == nil {
			<-p.options
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("the phone's socket is not served: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// register registers user through ts from the phone, with a Contact at an address nothing
// reaches (192.0.2.10, as behind NAT), and returns the binding the registrar made.
func (p *optionsPhone) register(t *testing.T, ts *testServer, user, transport string) Binding {
	t.Helper()
	client := p.udpClient
	if transport == "TCP" {
		client = p.tcpClient
	}
	env := &regEnv{t: t, r: ts.cfg.Registrar, addr: ts.Addr(), tcpAddr: ts.Addr(), client: client}
	d := env.device(user)
	d.contacts = []sipgosip.Header{regContact("sip:" + user + "@192.0.2.10:5060")}
	if transport == "TCP" {
		d.contacts = []sipgosip.Header{regContact("sip:" + user + "@192.0.2.10:5060;transport=tcp")}
		d.ruri = &sipgosip.Uri{Scheme: "sip", Host: "127.0.0.1", Port: int(ts.Addr().Port()),
			UriParams: sipgosip.HeaderParams{{K: "transport", V: "tcp"}}}
	}
	regWantStatus(t, d.register(), 200)
	bs := ts.cfg.Registrar.Bindings(user)
	if len(bs) != 1 || bs[0].Transport != transport || !bs[0].Source.Addr().IsLoopback() || bs[0].Contact.Host != "192.0.2.10" {
		t.Fatalf("bindings = %+v", bs)
	}
	return bs[0]
}

// TestPingReachesPhoneBehindNAT: the OPTIONS goes where the REGISTER came from — over TCP on
// the phone's own connection — not to the unreachable Contact, and names the Contact as its
// Request-URI; any final response, even an error status, proves the phone is there.
func TestPingReachesPhoneBehindNAT(t *testing.T) {
	for _, tc := range []struct {
		transport string
		status    int
	}{{"UDP", 200}, {"TCP", 200}, {"UDP", 404}} {
		t.Run(tc.transport+"-"+strconv.Itoa(tc.status), func(t *testing.T) {
			ts := startServer(t, withRegistrar(NewRegistrar(RegistrarConfig{
				Credentials: regUsers, Logger: testLogger(t), QualifyInterval: -1,
			})))
			phone := newOptionsPhone(t, tc.status)
			b := phone.register(t, ts, "1001", tc.transport)
			ctx, cancel := context.WithTimeout(context.Background(), waitLong)
			defer cancel()
			if err := ts.Ping(ctx, b); err != nil {
				t.Fatalf("Ping: %v", err)
			}
			var req *sipgosip.Request
			select {
			case req = <-phone.options:
			case <-time.After(waitLong):
				t.Fatal("the phone got no OPTIONS")
			}
			if req.Method != sipgosip.OPTIONS || req.Recipient.Host != "192.0.2.10" || req.Recipient.User != "1001" {
				t.Errorf("phone got %s", req.StartLine())
			}
			if !strings.EqualFold(req.Transport(), tc.transport) {
				t.Errorf("OPTIONS came over %s, want %s", req.Transport(), tc.transport)
			}
			if src, _ := netip.ParseAddrPort(req.Source()); src != ts.Addr() {
				t.Errorf("OPTIONS came from %s, want the server's listening address %s (its Via and the agent's NAT binding)", req.Source(), ts.Addr())
			}
			if from := req.From(); from == nil || from.Params == nil || !from.Params.Has("tag") {
				t.Errorf("OPTIONS without a From tag: %v", req.From())
			}
		})
	}
}

// TestPingSilentPhone: a ping to an address where nothing answers fails when its context
// ends, and the registrar's qualify, pinging with the server, drops the binding after
// QualifyFailures such failures.
func TestPingSilentPhone(t *testing.T) {
	var ts *testServer
	reg := NewRegistrar(RegistrarConfig{
		Credentials: regUsers, Logger: testLogger(t), QualifyInterval: -1,
		QualifyTimeout: 200 * time.Millisecond, QualifyFailures: 2,
		Pinger: func(ctx context.Context, b Binding) error { return ts.Ping(ctx, b) },
	})
	ts = startServer(t, withRegistrar(reg))
	phone := newOptionsPhone(t, 200)
	b := phone.register(t, ts, "1002", "UDP")

	dead, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	silent := b
	silent.Source = dead.LocalAddr().(*net.UDPAddr).AddrPort()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := ts.Ping(ctx, silent); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Ping of a silent port: %v, want its context's deadline", err)
	}

	// The phone goes away: two qualify rounds later its binding is gone.
	phone.stop()
	reg.qualify(context.Background())
	if len(reg.Bindings("1002")) != 1 {
		t.Fatal("binding dropped after one failed ping")
	}
	reg.qualify(context.Background())
	if len(reg.Bindings("1002")) != 0 || reg.Stats().Unreachable != 1 {
		t.Fatalf("after two failed pings: bindings %+v, stats %+v", reg.Bindings("1002"), reg.Stats())
	}
}
