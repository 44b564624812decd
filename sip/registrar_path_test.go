package sip

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	sipgosip "github.com/emiago/sipgo/sip"
)

// regPathOf is the Path Kamailio's add_path_received() puts in front of a REGISTER from a
// phone at phone (received URL-escaped, as Kamailio writes it).
func regPathOf(phone string) string {
	return "<sip:127.0.0.1:5060;lr;received=sip%3A" + strings.ReplaceAll(phone, ":", "%3A") + ">"
}

func regTrustLoopback(c *RegistrarConfig) {
	c.TrustedFronts = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
}

func regPathHeaders(res *sipgosip.Response) []string {
	var out []string
	for _, h := range res.GetHeaders("Path") {
		out = append(out, splitHeaderValues(h.Value())...)
	}
	return out
}

// TestRegistrarPathStoredAndEchoed: the Path values are stored in order (one header with
// two values and a second header), echoed in the 200 only when Supported lists path.
func TestRegistrarPathStoredAndEchoed(t *testing.T) {
	t.Parallel()
	env := newRegEnv(t, nil)
	d := env.device("1001")
	want := []string{"<sip:10.0.0.5:5060;lr>", "<sip:10.0.0.6;lr;transport=tcp>", "<sip:edge.example.com;lr>"}
	d.extra = []sipgosip.Header{
		sipgosip.NewHeader("Supported", "outbound, path"),
		sipgosip.NewHeader("Path", want[0]+", "+want[1]),
		sipgosip.NewHeader("Path", want[2]),
	}
	res := d.register()
	regWantStatus(t, res, 200)
	if got := regPathHeaders(res); !slices.Equal(got, want) {
		t.Fatalf("200 Path = %q, want %q", got, want)
	}
	bs := env.r.Bindings("1001")
	if len(bs) != 1 || !slices.Equal(bs[0].Path, want) {
		t.Fatalf("bindings = %+v, want Path %q", bs, want)
	}
	env.wantChange("1001", ReasonRegister, 1)

	// Without "path" in Supported: stored, not echoed. A new Path is a change.
	d.extra = []sipgosip.Header{sipgosip.NewHeader("Path", want[2])}
	res = d.register()
	regWantStatus(t, res, 200)
	if got := res.GetHeaders("Path"); len(got) != 0 {
		t.Fatalf("200 has Path %v without Supported: path", got)
	}
	if bs := env.r.Bindings("1001"); len(bs) != 1 || !slices.Equal(bs[0].Path, want[2:]) {
		t.Fatalf("bindings = %+v", bs)
	}
	env.wantChange("1001", ReasonRegister, 1)

	// A Path that is not a SIP URI is refused.
	d.extra = []sipgosip.Header{sipgosip.NewHeader("Path", "<tel:+861012345>")}
	regWantStatus(t, d.register(), 400)
}

// TestRegistrarPathTrustedFront: from a trusted front, the first Path's received is the
// phone's address: the binding's Source, and what lockouts are kept for. Two phones of one
// agent behind the front: one locked out, the other still registers.
func TestRegistrarPathTrustedFront(t *testing.T) {
	t.Parallel()
	env := newRegEnv(t, func(c *RegistrarConfig) { regTrustLoopback(c); c.LockoutFailures = 3 })
	phoneA, phoneB := "198.51.100.7:5062", "198.51.100.8:5062"

	bad := env.device("1001")
	bad.pass = "guess"
	bad.extra = []sipgosip.Header{sipgosip.NewHeader("Path", regPathOf(phoneA))}
	for range 3 {
		bad.chal, bad.nc = nil, 0
		regWantStatus(t, bad.register(), 403)
	}
	right := env.device("1001")
	right.extra = bad.extra
	regWantStatus(t, right.register(), 403) // locked out at phone A
	if s := env.r.Stats(); s.Lockouts != 1 || s.LockedUsers != 1 || s.LockedOut != 1 {
		t.Fatalf("stats = %+v", s)
	}

	other := env.device("1001")
	other.contacts = []sipgosip.Header{regContact("sip:1001@192.168.1.20:5062")}
	other.extra = []sipgosip.Header{sipgosip.NewHeader("Path", regPathOf(phoneB))}
	regWantStatus(t, other.register(), 200)
	bs := env.r.Bindings("1001")
	if len(bs) != 1 || bs[0].Source != netip.MustParseAddrPort(phoneB) || !slices.Equal(bs[0].Path, []string{regPathOf(phoneB)}) {
		t.Fatalf("bindings = %+v, want Source %s and the Path", bs, phoneB)
	}

	// Escaped transport inside received, and a front without received: the packet source.
	tcp := env.device("1002")
	tcp.extra = []sipgosip.Header{sipgosip.NewHeader("Path",
		"<sip:127.0.0.1:5060;lr;received=sip%3A198.51.100.9%3A40000%3Btransport%3Dtcp>")}
	regWantStatus(t, tcp.register(), 200)
	if bs := env.r.Bindings("1002"); len(bs) != 1 || bs[0].Source != netip.MustParseAddrPort("198.51.100.9:40000") {
		t.Fatalf("bindings = %+v", bs)
	}
	plain := env.device("1003")
	plain.extra = []sipgosip.Header{sipgosip.NewHeader("Path", "<sip:127.0.0.1:5060;lr>")}
	regWantStatus(t, plain.register(), 200)
	if bs := env.r.Bindings("1003"); len(bs) != 1 || !bs[0].Source.Addr().IsLoopback() {
		t.Fatalf("bindings = %+v", bs)
	}

	env.clock.advance(DefaultLockoutFor + time.Second)
	right.chal, right.nc = nil, 0
	regWantStatus(t, right.register(), 200)
}

// TestRegistrarPathUntrustedReceived: a Path from a source that is not a trusted front is
// kept for routing, but its received is ignored: the binding's Source and the lockout are
// the packet source's.
func TestRegistrarPathUntrustedReceived(t *testing.T) {
	t.Parallel()
	env := newRegEnv(t, func(c *RegistrarConfig) {
		c.TrustedFronts = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
		c.LockoutFailures = 3
	})
	good := env.device("1002")
	good.extra = []sipgosip.Header{sipgosip.NewHeader("Path", regPathOf("198.51.100.7:5062"))}
	regWantStatus(t, good.register(), 200)
	bs := env.r.Bindings("1002")
	if len(bs) != 1 || !bs[0].Source.Addr().IsLoopback() || !slices.Equal(bs[0].Path, []string{regPathOf("198.51.100.7:5062")}) {
		t.Fatalf("bindings = %+v, want the packet source and the Path", bs)
	}

	bad := env.device("1001")
	bad.pass = "guess"
	bad.extra = []sipgosip.Header{sipgosip.NewHeader("Path", regPathOf("198.51.100.7:5062"))}
	for range 3 {
		bad.chal, bad.nc = nil, 0
		regWantStatus(t, bad.register(), 403)
	}
	// Another received behind the same untrusted source: still locked out (by 127.0.0.1).
	other := env.device("1001")
	other.extra = []sipgosip.Header{sipgosip.NewHeader("Path", regPathOf("198.51.100.8:5062"))}
	regWantStatus(t, other.register(), 403)
	if s := env.r.Stats(); s.Lockouts != 1 || s.LockedOut != 1 {
		t.Fatalf("stats = %+v", s)
	}
}

func TestPathReceived(t *testing.T) {
	for v, want := range map[string]string{
		"<sip:127.0.0.1:5060;lr;received=sip:127.0.0.1:5062>":                      "127.0.0.1:5062",
		"<sip:127.0.0.1:5060;lr;received=sip%3A127.0.0.1%3A5062>":                  "127.0.0.1:5062",
		"<sip:127.0.0.1:5060;lr;received=sip%3A10.1.2.3%3A5062%3Btransport%3Dtcp>": "10.1.2.3:5062",
		"<sip:127.0.0.1;lr;received=sip%3A%5B2001%3Adb8%3A%3A1%5D%3A5062>":         "[2001:db8::1]:5062",
		"<sip:127.0.0.1;lr;received=sip%3A10.1.2.3>":                               "10.1.2.3:5060",
		"<sip:127.0.0.1:5060;lr>":                                                  "",
		"<sip:127.0.0.1:5060;lr;received=sip%3Aphone.example.com%3A5062>":          "",
		"<sip:127.0.0.1:5060;lr;received=garbage>":                                 "",
	} {
		got, ok := pathReceived(v)
		if (want == "") == ok || (ok && got.String() != want) {
			t.Errorf("pathReceived(%s) = %v, %v; want %q", v, got, ok, want)
		}
	}
}
