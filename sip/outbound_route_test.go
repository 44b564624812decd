package sip

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	sipgosip "github.com/emiago/sipgo/sip"
)

// routeFront is a sipgo UAS standing in for the Kamailio front: it records every request it
// gets and answers INVITE with 200 (Record-Route itself, the phone's Contact, SDP), BYE and
// OPTIONS with 200. Nothing is forwarded: the phone's address is unreachable (TEST-NET).
type routeFront struct {
	addr netip.AddrPort
	reqs chan *sipgosip.Request
}

func newRouteFront(t *testing.T) *routeFront {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("front"), sipgo.WithUserAgentHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &routeFront{addr: conn.LocalAddr().(*net.UDPAddr).AddrPort(), reqs: make(chan *sipgosip.Request, 16)}
	rr := "<sip:127.0.0.1:" + strconv.Itoa(int(f.addr.Port())) + ";lr;ftag=front>"
	srv.OnInvite(func(req *sipgosip.Request, tx sipgosip.ServerTransaction) {
		f.reqs <- req
		body := newLocalSDP(netip.MustParseAddrPort("127.0.0.1:40010")).marshal([]uint8{PayloadPCMA}, 0, SendRecv)
		res := sipgosip.NewResponseFromRequest(req, 200, "OK", body)
		res.To().Params.Add("tag", "phone-tag")
		res.AppendHeader(sipgosip.NewHeader("Record-Route", rr))
		res.AppendHeader(sipgosip.NewHeader("Contact", "<sip:1001@192.0.2.10:5062>"))
		res.AppendHeader(sipgosip.NewHeader("Content-Type", "application/sdp"))
		_ = tx.Respond(res)
	})
	srv.OnAck(func(req *sipgosip.Request, tx sipgosip.ServerTransaction) { f.reqs <- req })
	ok := func(req *sipgosip.Request, tx sipgosip.ServerTransaction) {
		f.reqs <- req
		_ = tx.Respond(sipgosip.NewResponseFromRequest(req, 200, "OK", nil))
	}
	srv.OnBye(ok)
	srv.OnOptions(ok)
	served := make(chan error, 1)
	go func() { served <- srv.ServeUDP(conn) }()
	t.Cleanup(func() { conn.Close(); <-served; ua.Close() })
	return f
}

func (f *routeFront) next(t *testing.T, method sipgosip.RequestMethod) *sipgosip.Request {
	t.Helper()
	select {
	case req := <-f.reqs:
		if req.Method != method {
			t.Fatalf("front got %s, want %s", req.StartLine(), method)
		}
		return req
	case <-time.After(5 * time.Second):
		t.Fatalf("no %s reached the front", method)
		return nil
	}
}

func routeValues(req *sipgosip.Request) []string {
	var out []string
	for _, h := range req.GetHeaders("Route") {
		out = append(out, h.Value())
	}
	return out
}

// wantRoute checks that req carries one Route to the front's port with lr, and the
// parameter param if not empty.
func wantRoute(t *testing.T, req *sipgosip.Request, port uint16, param string) {
	t.Helper()
	rs := routeValues(req)
	if len(rs) != 1 {
		t.Fatalf("%s Route = %q, want one", req.Method, rs)
	}
	u, err := parseRouteValue(rs[0])
	if err != nil || u.Port != int(port) || !u.UriParams.Has("lr") || (param != "" && !u.UriParams.Has(param)) {
		t.Fatalf("%s Route = %q (%v), want the front's port %d with lr and %s", req.Method, rs[0], err, port, param)
	}
}

// TestDialThroughPath: a dial with a Route (the binding's Path) sends the INVITE to the
// first hop with the Route header and the contact as Request-URI; the ACK and BYE follow
// the 200's Record-Route to the front, not the contact.
func TestDialThroughPath(t *testing.T) {
	t.Parallel()
	s := outboundServer(t)
	front := newRouteFront(t)
	path := "<sip:127.0.0.1:" + strconv.Itoa(int(front.addr.Port())) + ";lr;received=sip%3A192.0.2.10%3A5062>"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	o, err := s.Dial(ctx, DialOptions{
		Target:   sipgosip.Uri{Scheme: "sip", User: "1001", Host: "192.0.2.10", Port: 5062},
		Route:    []string{path},
		FromUser: "13800138000",
		Local:    netip.MustParseAddrPort("127.0.0.1:40002"),
	})
	if err != nil {
		t.Fatal(err)
	}
	inv := front.next(t, sipgosip.INVITE)
	if got := inv.Recipient.String(); got != "sip:1001@192.0.2.10:5062" {
		t.Fatalf("INVITE Request-URI %s, want the contact", got)
	}
	wantRoute(t, inv, front.addr.Port(), "received")
	if err := o.Wait(); err != nil {
		t.Fatalf("dial: %v", err)
	}
	ack := front.next(t, sipgosip.ACK)
	if got := ack.Recipient.String(); got != "sip:1001@192.0.2.10:5062" {
		t.Fatalf("ACK Request-URI %s, want the 200's Contact", got)
	}
	wantRoute(t, ack, front.addr.Port(), "ftag")
	if err := o.Hangup(ctx, "test"); err != nil {
		t.Fatalf("hangup: %v", err)
	}
	bye := front.next(t, sipgosip.BYE)
	if !strings.HasPrefix(bye.Recipient.String(), "sip:1001@192.0.2.10:5062") {
		t.Fatalf("BYE Request-URI %s", bye.Recipient.String())
	}
	wantRoute(t, bye, front.addr.Port(), "ftag")
}

// TestPingThroughPath: the qualify OPTIONS of a binding with a Path goes to the first hop
// with the Route header, not to the binding's Source.
func TestPingThroughPath(t *testing.T) {
	t.Parallel()
	s := outboundServer(t)
	front := newRouteFront(t)
	path := "<sip:127.0.0.1:" + strconv.Itoa(int(front.addr.Port())) + ";lr;received=sip%3A192.0.2.10%3A5062>"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b := Binding{
		User: "1001", Contact: sipgosip.Uri{Scheme: "sip", User: "1001", Host: "192.0.2.10", Port: 5062},
		Source: netip.MustParseAddrPort("192.0.2.10:5062"), Transport: "UDP", Path: []string{path},
	}
	if err := s.Ping(ctx, b); err != nil {
		t.Fatalf("ping: %v", err)
	}
	opt := front.next(t, sipgosip.OPTIONS)
	if got := opt.Recipient.String(); got != "sip:1001@192.0.2.10:5062" {
		t.Fatalf("OPTIONS Request-URI %s, want the contact", got)
	}
	wantRoute(t, opt, front.addr.Port(), "received")
}
