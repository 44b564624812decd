package sip

import (
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"
)

func TestLimiterBucket(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := regT0
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	l := newLimiter(RateLimit{Rate: 2, Burst: 3}, clock)
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	for i := range 3 {
		if !l.allow(a) {
			t.Fatalf("request %d of the burst refused", i+1)
		}
	}
	if l.allow(a) {
		t.Fatal("request beyond the burst allowed")
	}
	if !l.allow(b) {
		t.Fatal("another source shares the first one's bucket")
	}
	advance(500 * time.Millisecond) // one token back at 2/s
	if !l.allow(a) || l.allow(a) {
		t.Fatal("refill is not 2 a second")
	}
	advance(time.Hour) // refills to the burst, not beyond
	for range 3 {
		l.allow(a)
	}
	if l.allow(a) {
		t.Fatal("bucket refilled beyond its burst")
	}
	if got := l.shedCount(); got != 3 {
		t.Fatalf("shed %d, want 3", got)
	}
	if newLimiter(RateLimit{}, clock).allow(a) != true {
		t.Fatal("a zero limit sheds")
	}
}

// The table of sources is bounded; sources whose buckets refilled are forgotten first.
func TestLimiterBounded(t *testing.T) {
	t.Parallel()
	now := regT0
	l := newLimiter(RateLimit{Rate: 1, Burst: 1}, func() time.Time { return now })
	for i := range maxLimiterSources + 500 {
		l.allow(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
	}
	if n := l.sources(); n > maxLimiterSources {
		t.Fatalf("%d sources tracked", n)
	}
	now = now.Add(time.Minute)
	l.allow(netip.MustParseAddr("192.0.2.9"))
	if n := l.sources(); n != 1 {
		t.Fatalf("%d sources after the others refilled, want 1", n)
	}
}

// INVITEs and REGISTERs from a source outside the trunks beyond its burst get no answer;
// the trunks' sources are exempt.
func TestRateLimitShedsUnanswered(t *testing.T) {
	t.Parallel()
	only1 := &Trunk{Name: "only1", Sources: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, DIDs: []string{testDID}}
	limit := RateLimit{Rate: 0.001, Burst: 3}
	ts := startServer(t, withTrunks(only1), func(c *Config, _ *serverKnobs) {
		c.InviteLimit, c.RegisterLimit = limit, limit
		c.Registrar = NewRegistrar(RegistrarConfig{Credentials: regUsers, QualifyInterval: -1, Logger: testLogger(t)})
	})
	p := newPhone(t, "UDP", "127.0.0.2:0", ts.Addr())
	for i := range 3 {
		if res := p.dialog(testDID).call(sdpOffer(4000, "8")); res.StatusCode != 403 {
			t.Fatalf("INVITE %d: %d, want 403", i+1, res.StatusCode)
		}
	}
	shed := p.dialog(testDID).inviteMsg(sdpOffer(4000, "8"))
	p.send(shed.bytes())
	for range 3 { // REGISTERs have their own bucket
		reg := p.dialog("1001").req("REGISTER", 1, "", "")
		if res := p.status(reg); res.StatusCode != 401 {
			t.Fatalf("REGISTER: %d, want 401", res.StatusCode)
		}
	}
	p.send(p.dialog("1001").req("REGISTER", 1, "", "").bytes())
	deadline := time.Now().Add(waitLong)
	for ts.Stats().ShedInvites != 1 || ts.Stats().ShedRegister != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v: want 1 INVITE and 1 REGISTER shed", ts.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case r := <-p.resps:
		t.Fatalf("a shed request was answered: %d %s", r.StatusCode, r.CSeq())
	case <-time.After(300 * time.Millisecond): // the answer would come from loopback at once
	}
	if s := ts.Stats(); s.Forbidden != 3 {
		t.Fatalf("stats %+v", s)
	}
	// The trunk's source is exempt.
	ok := newUDPPhone(t, ts)
	for i := range 5 {
		if res := ok.dialog(strconv.Itoa(i)).call(sdpOffer(4000, "8")); res.StatusCode != 404 {
			t.Fatalf("trunk INVITE %d: %d, want 404", i+1, res.StatusCode)
		}
	}
}
