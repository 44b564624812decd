package sip

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	sipgosip "github.com/emiago/sipgo/sip"
)

// regFakePinger fails for the contact ports in down.
type regFakePinger struct {
	mu    sync.Mutex
	down  map[int]bool
	pings map[int]int
}

func (p *regFakePinger) ping(ctx context.Context, b Binding) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pings[b.Contact.Port]++
	if p.down[b.Contact.Port] {
		return errors.New("timeout")
	}
	return nil
}

func (p *regFakePinger) set(port int, down bool) {
	p.mu.Lock()
	p.down[port] = down
	p.mu.Unlock()
}

func TestRegistrarQualify(t *testing.T) {
	t.Parallel()
	p := &regFakePinger{down: map[int]bool{}, pings: map[int]int{}}
	env := newRegEnv(t, func(c *RegistrarConfig) { c.Pinger = p.ping })
	for _, port := range []int{5001, 5002} {
		d := env.device("1001")
		d.contacts = []sipgosip.Header{regContact("sip:1001@127.0.0.1:" + strconv.Itoa(port))}
		regWantStatus(t, d.register(), 200)
	}
	env.takeChanges()
	ctx := context.Background()

	// Two failures, then an answer: the count starts again.
	p.set(5001, true)
	env.r.qualify(ctx)
	env.r.qualify(ctx)
	p.set(5001, false)
	env.r.qualify(ctx)
	p.set(5001, true)
	env.r.qualify(ctx)
	env.r.qualify(ctx)
	if len(env.r.Bindings("1001")) != 2 || len(env.takeChanges()) != 0 {
		t.Fatal("binding dropped before QualifyFailures consecutive failures")
	}
	env.r.qualify(ctx)
	bs := env.r.Bindings("1001")
	if len(bs) != 1 || bs[0].Contact.Port != 5002 {
		t.Fatalf("bindings = %+v", bs)
	}
	env.wantChange("1001", ReasonUnreachable, 1)
	if s := env.r.Stats(); s.Unreachable != 1 {
		t.Errorf("stats = %+v", s)
	}
	if p.pings[5002] != 6 {
		t.Errorf("5002 pinged %d times, want 6", p.pings[5002])
	}
}

// TestRegistrarStartStop runs the real loops: qualify on a short interval drops a dead
// binding; Stop ends every goroutine (TestMain checks for leaks).
func TestRegistrarStartStop(t *testing.T) {
	t.Parallel()
	var pings sync.WaitGroup
	blocked := make(chan struct{})
	pinger := func(ctx context.Context, b Binding) error {
		if b.Contact.Port == 5003 { // a ping that hangs until cancelled
			pings.Done()
			<-ctx.Done()
			close(blocked)
			return ctx.Err()
		}
		return errors.New("no answer")
	}
	env := newRegEnv(t, func(c *RegistrarConfig) {
		c.QualifyInterval = 10 * time.Millisecond
		c.QualifyTimeout = time.Hour // capped at the interval
	})
	env.r.setPinger(pinger) // as the Server does
	d := env.device("1001")
	regWantStatus(t, d.register(), 200)
	env.takeChanges()
	env.r.Start(context.Background())
	env.r.Start(context.Background()) // no effect
	var changes []regChange
	for deadline := time.Now().Add(5 * time.Second); len(changes) == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("dead binding not dropped")
		}
		changes = env.takeChanges()
	}
	env.r.Stop()
	if len(changes) != 1 || changes[0].reason != ReasonUnreachable || len(env.r.Bindings("1001")) != 0 {
		t.Fatalf("changes = %+v", changes)
	}

	// A ping in flight is cancelled by Stop, and does not count as a failure.
	env.r.cfg.QualifyTimeout = time.Hour
	d2 := env.device("1002")
	d2.contacts = []sipgosip.Header{regContact("sip:1002@127.0.0.1:5003")}
	regWantStatus(t, d2.register(), 200)
	pings.Add(1)
	env.r.Start(context.Background())
	pings.Wait()
	env.r.Stop()
	<-blocked
	if len(env.r.Bindings("1002")) != 1 {
		t.Fatal("cancelled ping dropped the binding")
	}
}

// TestRegistrarOptionsPinger pings a real sipgo phone with OptionsPinger, and a port where
// nobody answers.
func TestRegistrarOptionsPinger(t *testing.T) {
	t.Parallel()
	phoneUA, err := sipgo.NewUA(sipgo.WithUserAgent("regtest-phone"))
	if err != nil {
		t.Fatal(err)
	}
	phone, _ := sipgo.NewServer(phoneUA)
	got := make(chan *sipgosip.Request, 1)
	phone.OnOptions(func(req *sipgosip.Request, tx sipgosip.ServerTransaction) {
		got <- req
		_ = tx.Respond(sipgosip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { _ = phone.ServeUDP(conn); close(served) }()
	defer func() { conn.Close(); phoneUA.Close(); <-served }()

	ua, _ := sipgo.NewUA(sipgo.WithUserAgent("hotline-test"), sipgo.WithUserAgentHostname("127.0.0.1"))
	defer ua.Close()
	client, _ := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	ping := OptionsPinger(client)

	// The contact names a private address; the ping goes where the REGISTER came from.
	b := Binding{User: "1001", Source: conn.LocalAddr().(*net.UDPAddr).AddrPort(), Transport: "UDP"}
	_ = sipgosip.ParseUri("sip:1001@192.0.2.10:5060", &b.Contact)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ping(ctx, b); err != nil {
		t.Fatal(err)
	}
	if req := <-got; req.Recipient.Host != "192.0.2.10" || req.Method != sipgosip.OPTIONS {
		t.Errorf("phone got %s", req.StartLine())
	}

	dead, _ := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	b.Source = dead.LocalAddr().(*net.UDPAddr).AddrPort()
	defer dead.Close()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	if err := ping(ctx2, b); err == nil {
		t.Fatal("ping of a silent port succeeded")
	}
}

// TestRegistrarQualifyRealPhone: a sipgo phone registers over UDP and TCP with a contact
// that cannot be reached (as behind NAT); OptionsPinger, sending with the registrar side's
// client, reaches it where its REGISTER came from (over TCP, on the same connection).
func TestRegistrarQualifyRealPhone(t *testing.T) {
	t.Parallel()
	for _, tp := range []string{"UDP", "TCP"} {
		t.Run(tp, func(t *testing.T) {
			t.Parallel()
			env := newRegEnv(t, nil)
			phoneUA, err := sipgo.NewUA(sipgo.WithUserAgent("regtest-natphone"), sipgo.WithUserAgentHostname("127.0.0.1"))
			if err != nil {
				t.Fatal(err)
			}
			defer phoneUA.Close()
			phoneSrv, _ := sipgo.NewServer(phoneUA)
			options := make(chan *sipgosip.Request, 4)
			phoneSrv.OnOptions(func(req *sipgosip.Request, tx sipgosip.ServerTransaction) {
				options <- req
				_ = tx.Respond(sipgosip.NewResponseFromRequest(req, 200, "OK", nil))
			})
			env.client, _ = sipgo.NewClient(phoneUA, sipgo.WithClientHostname("127.0.0.1"))

			d := env.device("1001")
			d.contacts = []sipgosip.Header{regContact("sip:1001@192.0.2.10:5060")}
			if tp == "TCP" {
				d.contacts = []sipgosip.Header{regContact("sip:1001@192.0.2.10:5060;transport=tcp")}
				d.ruri = &sipgosip.Uri{Scheme: "sip", Host: "127.0.0.1", Port: int(env.tcpAddr.Port()),
					UriParams: sipgosip.HeaderParams{{K: "transport", V: "tcp"}}}
			}
			regWantStatus(t, d.register(), 200)
			b := env.r.Bindings("1001")[0]
			if b.Transport != tp || !b.Source.Addr().IsLoopback() || b.Contact.Host != "192.0.2.10" {
				t.Fatalf("binding = %+v", b)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := OptionsPinger(env.serverClient)(ctx, b); err != nil {
				t.Fatal(err)
			}
			if req := <-options; req.Recipient.Host != "192.0.2.10" {
				t.Errorf("phone got %s", req.StartLine())
			}
		})
	}
}
