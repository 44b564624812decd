package sip

import (
	"maps"
	"strconv"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Finished transactions cost memory for as long as sipgo keeps them: an answered INVITE
// stays in the "Accepted" state for Timer L and a BYE in "Completed" for Timer J, 64×T1
// (32 s) each on UDP, holding the parsed request, the response and their headers. At
// 2,000 call setups a second that is some 64,000 calls' worth, over a gigabyte. The
// server ends those transactions as soon as they have done their work (the INVITE's when
// the ACK for our 2xx arrives, a BYE's once it is answered) and keeps only their keys
// here for the same 64×T1, which is all the retransmission rules need:
//   - a BYE retransmitted after its dialog has ended (our 200 was lost) is answered 200
//     again, not 481 (a new BYE for that dialog still gets 481);
//   - a retransmission of an initial INVITE (same Call-ID, From tag, CSeq and Via branch)
//     whose call is up or has just ended is absorbed, as RFC 6026's "Accepted" state
//     does: no answer, never a second call. (Under overload such copies sit in the
//     socket's queue behind the original and arrive after the ACK.)

// An answered INVITE's transaction would hold on for Timer L even after we end it: sipgo
// stops every other timer when a transaction ends, but Timer L's closure keeps the
// transaction (the INVITE, our 200, the leg behind its CANCEL hook) for 32 s. What
// Timer L is for is done elsewhere here: the 2xx is retransmitted by the dialog straight
// to the transport until the ACK (waitACK, RFC 3261 §13.3.1.4), late INVITE copies are
// absorbed by invitesSeen, and the ACK reaches the dialog without the transaction. So
// the "Accepted" state lasts one T1. A CANCEL that arrives after our 200 gets 481, which
// RFC 3261 §9.2 allows (it could not have cancelled anything).
func init() { sip.Timer_L = sip.T1 }

// lingerFor is how long a finished dialog or INVITE is remembered: 64×T1, the longest a
// peer may retransmit a request (RFC 3261 §17.1.2.2).
func lingerFor() time.Duration { return 64 * sip.T1 }

// recent is a set of keys, each either live or remembered until an expiry. Safe for
// concurrent use; the expired keys are swept in the order they ended.
type recent struct {
	mu    sync.Mutex
	m     map[string]time.Time // zero time: live
	ended []recentEnd          // in order of ending, hence of expiry; ended[head:] pending
	head  int
	high  int // most keys held since the map was last made anew
}

type recentEnd struct {
	key     string
	expires time.Time
}

// add marks key live.
func (r *recent) add(key string) {
	r.mu.Lock()
	if r.m == nil {
		r.m = make(map[string]time.Time)
	}
	r.m[key] = time.Time{}
	r.high = max(r.high, len(r.m))
	r.mu.Unlock()
}

// end remembers key until now+ttl.
func (r *recent) end(key string, now time.Time, ttl time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = make(map[string]time.Time)
	}
	exp := now.Add(ttl)
	r.m[key] = exp
	r.high = max(r.high, len(r.m))
	r.ended = append(r.ended, recentEnd{key, exp})
	r.sweepLocked(now)
}

// has reports whether key is live or ended less than its ttl ago.
func (r *recent) has(key string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	exp, ok := r.m[key]
	return ok && (exp.IsZero() || now.Before(exp))
}

// len is the number of keys held (live and remembered).
func (r *recent) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.m)
}

// sweepLocked forgets the keys whose time is up; a key made live again or ended again
// later keeps its newer state.
func (r *recent) sweepLocked(now time.Time) {
	for r.head < len(r.ended) && !now.Before(r.ended[r.head].expires) {
		e := r.ended[r.head]
		if r.m[e.key] == e.expires {
			delete(r.m, e.key)
		}
		r.ended[r.head] = recentEnd{}
		r.head++
	}
	if r.head > 1024 && 2*r.head > len(r.ended) { // amortized: each entry moves at most once
		n := copy(r.ended, r.ended[r.head:])
		clear(r.ended[n:])
		r.ended, r.head = r.ended[:n], 0
	}
	// A Go map keeps the buckets of its largest size: after a storm, copy what is left
	// into a map of its own size (amortized like the slice above).
	if r.high > 1024 && 8*len(r.m) < r.high {
		m := make(map[string]time.Time, len(r.m)) // not maps.Clone: it keeps the size
		maps.Copy(m, r.m)
		r.m = m
		r.high = len(r.m)
		if len(r.ended) == r.head {
			r.ended, r.head = nil, 0
		}
	}
}

// inviteKey identifies an initial INVITE and its retransmissions: Call-ID, From tag, CSeq
// number and the top Via's branch.
func inviteKey(req *sip.Request) string {
	tag, _ := req.From().Params.Get("tag")
	branch := ""
	if v := req.Via(); v != nil {
		branch, _ = v.Params.Get("branch")
	}
	return callID(req) + "\x00" + tag + "\x00" + strconv.FormatUint(uint64(req.CSeq().SeqNo), 10) + "\x00" + branch
}

// byeKey identifies a BYE transaction the way its retransmissions repeat it: Call-ID, our
// tag (in To) and CSeq number.
func byeKey(req *sip.Request) string {
	tag, _ := req.To().Params.Get("tag")
	return callID(req) + "\x00" + tag + "\x00" + strconv.FormatUint(uint64(req.CSeq().SeqNo), 10)
}
