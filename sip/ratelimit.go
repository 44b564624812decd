package sip

// Per-source rate limits for the requests that cost us work: initial INVITEs and REGISTERs.
//
// Each source IP has a token bucket per method (Rate tokens a second, at most Burst). The
// trunks' sources are exempt: trusted carriers are bounded by their max_calls, and a
// carrier's legitimate burst must never be shed.
//
// A shed request gets no answer at all and its transaction is ended at once, as Kamailio's
// pike module is used (`if (!pike_check_req()) exit;`) and as Asterisk deployments do with
// fail2ban/iptables: an answer (503, 403) costs a packet per request, confirms that a SIP
// server lives here, and over UDP reflects traffic to spoofed sources. A legitimate phone
// that was shed retransmits (UDP timer A/E) and gets through once its bucket refills. We
// do not send 503: RFC 3261 §21.5.4 makes a 503 tell the client to avoid this server, so
// a phone behind a busy NAT would fail over or give up instead of retrying.

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// RateLimit is a token bucket per source address: Rate requests a second on average,
// bursts of Burst. Rate <= 0 means no limit.
type RateLimit struct {
	Rate  float64
	Burst int
}

// Shed reasons, the label of the shed metric.
const (
	ShedRate = "rate" // the source exceeded its rate limit
)

// maxLimiterSources bounds each limiter's table of sources.
const maxLimiterSources = 1 << 16

// limiter is the token buckets of one method, by source.
type limiter struct {
	limit RateLimit
	now   func() time.Time

	mu      sync.Mutex
	buckets map[netip.Addr]*bucket
	shed    atomic.Uint64
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(l RateLimit, now func() time.Time) *limiter {
	if now == nil {
		now = time.Now
	}
	if l.Burst < 1 {
		l.Burst = max(1, int(l.Rate))
	}
	return &limiter{limit: l, now: now, buckets: make(map[netip.Addr]*bucket)}
}

// allow takes a token for src; false (and counted) when src has none left.
func (l *limiter) allow(src netip.Addr) bool {
	if l == nil || l.limit.Rate <= 0 {
		return true
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[src]
	if b == nil {
		if len(l.buckets) >= maxLimiterSources {
			l.pruneLocked(now)
		}
		if len(l.buckets) >= maxLimiterSources {
			// Every tracked source is still draining its bucket: forget one at random
			// (map order). It starts afresh with a full bucket, which bounds what a
			// distributed flood gains to one burst per eviction.
			for k := range l.buckets {
				delete(l.buckets, k)
				break
			}
		}
		b = &bucket{tokens: float64(l.limit.Burst), last: now}
		l.buckets[src] = b
	}
	b.tokens = min(float64(l.limit.Burst), b.tokens+now.Sub(b.last).Seconds()*l.limit.Rate)
	b.last = now
	if b.tokens < 1 {
		l.shed.Add(1)
		return false
	}
	b.tokens--
	return true
}

// pruneLocked forgets sources whose bucket has refilled: they are as if never seen.
func (l *limiter) pruneLocked(now time.Time) {
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*l.limit.Rate >= float64(l.limit.Burst) {
			delete(l.buckets, k)
		}
	}
}

func (l *limiter) sources() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

func (l *limiter) shedCount() uint64 {
	if l == nil {
		return 0
	}
	return l.shed.Load()
}
