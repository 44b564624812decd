package sip

import (
	"strings"
	"testing"
)

// FuzzPathValue: a Path or Route value from the network (a REGISTER's Path, a binding's
// route set) never panics the parsers; a received address, when found, is a usable
// address and port; a route destination, when found, names a port.
func FuzzPathValue(f *testing.F) {
	for _, s := range []string{
		"<sip:127.0.0.1:5060;lr;received=sip:127.0.0.1:40001>",
		"<sip:10.0.0.5;lr;received=sip%3A198.51.100.7%3A5062%3Btransport%3Dtcp>",
		"<sips:[2001:db8::1]:5061;lr;received=sips:[2001:db8::7]>",
		"sip:front.example;lr;received=198.51.100.7:5080",
		"<sip:front;lr;received=\"sip:1.2.3.4:0\">",
		"<tel:+8612345>", "", "<sip:@>", "<sip:a;received=%zz>",
		"<sip:0;reCeived=0.0.0.0:0>", // found by this target in CI: 0.0.0.0:0 was taken as the phone's address
		"<sip:f;lr;received=sip:224.0.0.1:5060>",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if ap, ok := pathReceived(v); ok && (!ap.IsValid() || ap.Port() == 0 || ap.Addr().IsUnspecified() || ap.Addr().IsMulticast()) {
			t.Fatalf("pathReceived(%q) = %v: not a usable address", v, ap)
		}
		if dest, _, err := routeDestination(v); err == nil && !strings.Contains(dest, ":") {
			t.Fatalf("routeDestination(%q) = %q: no port", v, dest)
		}
		for _, part := range splitHeaderValues(v) {
			parseRouteValue(part)
		}
	})
}
