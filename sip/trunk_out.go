package sip

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// DefaultRingTimeout is an outbound trunk's ring timeout when none is configured.
const DefaultRingTimeout = 30 * time.Second

// Errors of DialTrunk. Nothing is sent when one of them is returned.
var (
	// ErrUnknownTrunk is a trunk name that is not among Config.OutboundTrunks.
	ErrUnknownTrunk = errors.New("sip: unknown outbound trunk")
	// ErrNotInDialPlan is a number that no pattern of the trunk's dial plan fully matches.
	ErrNotInDialPlan = errors.New("sip: number not in the trunk's dial plan")
	// ErrTrunkBusy is a dial while MaxChannels legs of the trunk are ringing or up.
	ErrTrunkBusy = errors.New("sip: all channels of the trunk are busy")
	// ErrTrunkRate is a dial beyond the trunk's calls per second.
	ErrTrunkRate = errors.New("sip: trunk call rate exceeded")
)

// OutboundTrunk is a carrier gateway we place calls through (survey calls, callbacks).
type OutboundTrunk struct {
	Name      string
	Gateway   sip.Uri // where INVITEs go, e.g. sip:127.0.0.1:5090 (port 0 = 5060)
	Transport string  // "UDP" (default) or "TCP"
	// Username and Password answer one digest challenge (401/407) of each INVITE; empty = none.
	Username, Password string
	CallerID           string  // From user and P-Asserted-Identity presented, e.g. "12345"
	MaxChannels        int     // legs ringing or up at once; 0 = unlimited
	CPS                float64 // new calls per second (burst max(1, CPS)); 0 = unlimited
	// DialPlan: a number may be dialled only if it fully matches one of these; empty = none.
	DialPlan    []*regexp.Regexp
	Codecs      []uint8       // offered in this order; empty = PCMA, PCMU
	RingTimeout time.Duration // how long a citizen's phone may ring; 0 = DefaultRingTimeout
	SRTP        SRTPPolicy    // what our offers ask for; "" = SRTPOff
}

// Allows reports whether number may be dialled through the trunk: it is a dial string
// (digits, '+', '*', '#') that fully matches a pattern of the dial plan.
func (t *OutboundTrunk) Allows(number string) bool {
	if number == "" || strings.Trim(number, "0123456789+*#") != "" {
		return false
	}
	for _, re := range t.DialPlan {
		if re != nil && fullMatch(re, number) {
			return true
		}
	}
	return false
}

// anchoredPlans caches the anchored form of each dial plan pattern (by its source).
var anchoredPlans sync.Map

// fullMatch reports whether re matches all of s (not just a substring, as MatchString does).
func fullMatch(re *regexp.Regexp, s string) bool {
	src := re.String()
	a, ok := anchoredPlans.Load(src)
	if !ok {
		// Cannot fail for the source of a compiled pattern; if it did, nothing matches.
		anchored, _ := regexp.Compile(`^(?:` + src + `)$`)
		a, _ = anchoredPlans.LoadOrStore(src, anchored)
	}
	anchored := a.(*regexp.Regexp)
	return anchored != nil && anchored.MatchString(s)
}

// trunkState is a trunk's configuration and its live limits: channels held, rate bucket.
type trunkState struct {
	cfg OutboundTrunk

	mu     sync.Mutex
	active int       // legs ringing or up
	tokens float64   // call-rate bucket, at most max(1, CPS)
	last   time.Time // when tokens was last refilled
}

// outboundTrunks builds the server's trunk states by name (the first of a name wins).
func outboundTrunks(ts []OutboundTrunk) map[string]*trunkState {
	m := make(map[string]*trunkState, len(ts))
	for _, t := range ts {
		if _, dup := m[t.Name]; !dup {
			m[t.Name] = &trunkState{cfg: t, tokens: max(1, t.CPS)}
		}
	}
	return m
}

// outboundTrunk returns the trunk named name, or nil. The map is read-only after NewServer.
func (s *Server) outboundTrunk(name string) *trunkState { return s.outbound[name] }

func (s *Server) trunkNow() time.Time {
	if s.cfg.TrunkClock != nil {
		return s.cfg.TrunkClock()
	}
	return time.Now()
}

// acquire takes a channel and a call-rate token, or neither.
func (t *trunkState) acquire(now time.Time) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cfg.MaxChannels > 0 && t.active >= t.cfg.MaxChannels {
		return ErrTrunkBusy
	}
	if t.cfg.CPS > 0 {
		if el := now.Sub(t.last).Seconds(); !t.last.IsZero() && el > 0 {
			t.tokens = min(max(1, t.cfg.CPS), t.tokens+el*t.cfg.CPS)
		}
		if !now.Before(t.last) {
			t.last = now
		}
		if t.tokens < 1-1e-9 { // float sums of refills may fall a hair short of 1
			return ErrTrunkRate
		}
		t.tokens = max(0, t.tokens-1)
	}
	t.active++
	return nil
}

func (t *trunkState) release() {
	t.mu.Lock()
	t.active--
	t.mu.Unlock()
}

// DialTrunk calls number through the outbound trunk named trunk: Request-URI
// sip:NUMBER@gateway, To the number, From and P-Asserted-Identity the trunk's caller id
// (opt.FromUser overrides both, opt.AssertedID the latter), the trunk's codecs unless
// opt.Codecs, its credentials unless opt.Auth. Target, Destination, Transport and ToUser
// of opt are the trunk's. Like Dial it returns at once; Wait gives the outcome.
//
// Nothing is sent for a number outside the dial plan (ErrNotInDialPlan, checked first),
// while MaxChannels legs are held (ErrTrunkBusy: a channel is held from here until the
// leg's Done is closed), or beyond CPS (ErrTrunkRate; the caller decides when to retry).
// The ring timeout is the caller's: cancel ctx after TrunkRingTimeout.
func (s *Server) DialTrunk(ctx context.Context, trunk, number string, opt DialOptions) (*Outbound, error) {
	t := s.outboundTrunk(trunk)
	if t == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownTrunk, trunk)
	}
	if !t.cfg.Allows(number) {
		return nil, fmt.Errorf("%w: %q (trunk %s)", ErrNotInDialPlan, number, trunk)
	}
	if err := t.acquire(s.trunkNow()); err != nil {
		return nil, fmt.Errorf("%w: %s", err, trunk)
	}
	gw := t.cfg.Gateway
	port := gw.Port
	if port == 0 {
		port = 5060
	}
	opt.Target = sip.Uri{Scheme: "sip", User: number, Host: gw.Host, Port: port}
	opt.Destination = netip.AddrPort{}
	opt.ToUser = number
	opt.Transport = t.cfg.Transport
	if opt.Transport == "" && gw.UriParams != nil {
		opt.Transport, _ = gw.UriParams.Get("transport")
	}
	if opt.FromUser == "" {
		opt.FromUser = t.cfg.CallerID
	}
	if opt.AssertedID == "" {
		opt.AssertedID = opt.FromUser
	}
	if len(opt.Codecs) == 0 {
		opt.Codecs = t.cfg.Codecs
	}
	if opt.SRTP == "" {
		opt.SRTP = t.cfg.SRTP
	}
	if opt.Auth == nil && t.cfg.Username != "" {
		opt.Auth = &DigestCredentials{Username: t.cfg.Username, Password: t.cfg.Password}
	}
	o, err := s.Dial(ctx, opt)
	if err != nil {
		t.release()
		return nil, err
	}
	o.log.Debug("trunk dial", "trunk", trunk, "to", number, "from", opt.FromUser)
	go func() {
		<-o.Done()
		t.release()
	}()
	return o, nil
}

// TrunkAllows reports whether number may be dialled through trunk (false for an unknown trunk).
func (s *Server) TrunkAllows(trunk, number string) bool {
	t := s.outboundTrunk(trunk)
	return t != nil && t.cfg.Allows(number)
}

// TrunkLimits returns the trunk's channels (0 = unlimited) and calls per second (0 = unlimited).
func (s *Server) TrunkLimits(trunk string) (channels int, cps float64, ok bool) {
	t := s.outboundTrunk(trunk)
	if t == nil {
		return 0, 0, false
	}
	return t.cfg.MaxChannels, t.cfg.CPS, true
}

// TrunkRingTimeout returns how long the trunk's calls may ring (DefaultRingTimeout when unset).
func (s *Server) TrunkRingTimeout(trunk string) (time.Duration, bool) {
	t := s.outboundTrunk(trunk)
	if t == nil {
		return 0, false
	}
	if t.cfg.RingTimeout <= 0 {
		return DefaultRingTimeout, true
	}
	return t.cfg.RingTimeout, true
}
