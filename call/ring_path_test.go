package call

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"testing"

	sipgosip "github.com/emiago/sipgo/sip"

	"github.com/hotline12345/hotline/sip"
)

type ringPathDir []sip.Binding

func (d ringPathDir) Bindings(string) []sip.Binding { return d }

type ringPathDialer struct{ got *sip.DialOptions }

func (d ringPathDialer) Dial(_ context.Context, o sip.DialOptions) (*sip.Outbound, error) {
	*d.got = o
	return nil, errors.New("not dialling in this test")
}

// A binding registered through a front is rung through its Path (Route, no Destination);
// one registered directly is rung at its source.
func TestRingThroughPath(t *testing.T) {
	src := netip.MustParseAddrPort("198.51.100.7:5062")
	path := []string{"<sip:10.0.0.5:5060;lr;received=sip%3A198.51.100.7%3A5062>"}
	for _, tc := range []struct {
		path      []string
		wantRoute []string
		wantDest  netip.AddrPort
	}{
		{path: path, wantRoute: path},
		{wantDest: src},
	} {
		b := sip.Binding{User: "1001", Source: src, Transport: "UDP", Path: tc.path,
			Contact: sipgosip.Uri{Scheme: "sip", User: "1001", Host: "192.168.1.20", Port: 5062}}
		var got sip.DialOptions
		p := sipPhones{dir: ringPathDir{b}, dialer: ringPathDialer{&got}}
		if _, err := p.Ring(context.Background(), RingRequest{Agent: "1001"}); !errors.Is(err, ErrLocal) {
			t.Fatalf("ring: %v", err)
		}
		if !slices.Equal(got.Route, tc.wantRoute) || got.Destination != tc.wantDest || got.Target.Host != "192.168.1.20" {
			t.Errorf("dial options %+v, want Route %q Destination %v", got, tc.wantRoute, tc.wantDest)
		}
	}
}
