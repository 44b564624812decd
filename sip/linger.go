package sip

import (
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
//   - an initial INVITE whose Call-ID, From tag and CSeq match a call still up or just
//     ended is a retransmission or a merged request (RFC 3261 §8.2.2.2) and gets 482,
//     never a second call.

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
}

// inviteKey identifies an initial INVITE for the merged-request check: Call-ID, From tag
// and CSeq number.
func inviteKey(req *sip.Request) string {
	tag, _ := req.From().Params.Get("tag")
	return callID(req) + "\x00" + tag + "\x00" + strconv.FormatUint(uint64(req.CSeq().SeqNo), 10)
}

// byeKey identifies a BYE transaction the way its retransmissions repeat it: Call-ID, our
// tag (in To) and CSeq number.
func byeKey(req *sip.Request) string {
	tag, _ := req.To().Params.Get("tag")
	return callID(req) + "\x00" + tag + "\x00" + strconv.FormatUint(uint64(req.CSeq().SeqNo), 10)
}
