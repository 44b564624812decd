package sip

import (
	"net/netip"
	"slices"
	"sync/atomic"
	"time"
)

// Trunk is a carrier interconnect: who may send us calls, for which numbers, how many at once.
type Trunk struct {
	Name     string
	Sources  []netip.Prefix // source addresses allowed to send INVITEs
	DIDs     []string       // called numbers (Request-URI user) this trunk may deliver
	MaxCalls int            // concurrent calls; 0 = unlimited
	Codecs   []uint8        // payload types in order of preference; empty = PCMA, PCMU
	// AnswerDelay is how long callers hear ringing (180) before we answer; 0 answers at once.
	AnswerDelay time.Duration
	// SRTP is the trunk's media encryption policy; "" = SRTPOptional.
	SRTP SRTPPolicy

	active *atomic.Int64 // calls in progress; shared with the trunk of the same name a reload replaced
}

// counted gives each trunk its call counter, taken over from the trunk of the same name
// in old (a reload: calls under way are counted against the new limit).
func counted(trunks, old []*Trunk) {
	for _, t := range trunks {
		if t.active != nil {
			continue
		}
		if i := slices.IndexFunc(old, func(o *Trunk) bool { return o.Name == t.Name }); i >= 0 && old[i].active != nil {
			t.active = old[i].active
		} else {
			t.active = new(atomic.Int64)
		}
	}
}

// srtpPolicy is the trunk's SRTP policy, SRTPOptional by default.
func (t *Trunk) srtpPolicy() SRTPPolicy {
	if t.SRTP == "" {
		return SRTPOptional
	}
	return t.SRTP
}

// Allows reports whether src is one of the trunk's sources.
func (t *Trunk) Allows(src netip.Addr) bool {
	src = src.Unmap()
	for _, p := range t.Sources {
		if p.Contains(src) {
			return true
		}
	}
	return false
}

// Serves reports whether the trunk delivers calls to number.
func (t *Trunk) Serves(number string) bool { return slices.Contains(t.DIDs, number) }

// Active is the number of calls in progress on the trunk.
func (t *Trunk) Active() int { return int(t.active.Load()) }

func (t *Trunk) acquire() bool {
	if t.MaxCalls <= 0 {
		t.active.Add(1)
		return true
	}
	for {
		n := t.active.Load()
		if n >= int64(t.MaxCalls) {
			return false
		}
		if t.active.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func (t *Trunk) release() { t.active.Add(-1) }

func (t *Trunk) codecs() []uint8 {
	if len(t.Codecs) == 0 {
		return []uint8{PayloadPCMA, PayloadPCMU}
	}
	return t.Codecs
}

// CodecPayload maps a configured codec name (PCMA, PCMU, G711A, G711U) to its payload type.
func CodecPayload(name string) (uint8, bool) { return codecPayload(name) }

// match finds the trunk for a source address and called number. It returns the first
// trunk that allows the source and serves the number; if the source is allowed by some
// trunk but none serves the number, it returns that trunk with served=false.
func match(trunks []*Trunk, src netip.Addr, number string) (t *Trunk, served bool) {
	for _, tr := range trunks {
		if !tr.Allows(src) {
			continue
		}
		if tr.Serves(number) {
			return tr, true
		}
		if t == nil {
			t = tr
		}
	}
	return t, false
}
