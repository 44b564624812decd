package sip

import (
	"fmt"
	"testing"
	"time"
)

func TestRecentSet(t *testing.T) {
	var r recent
	t0 := time.Unix(1000, 0)
	if r.has("a", t0) {
		t.Fatal("empty set has a")
	}
	r.add("a")
	if !r.has("a", t0.Add(time.Hour)) {
		t.Fatal("a live key must stay")
	}
	r.end("a", t0, 32*time.Second)
	if !r.has("a", t0.Add(31*time.Second)) || r.has("a", t0.Add(32*time.Second)) {
		t.Fatal("an ended key is remembered for its ttl, no longer")
	}
	// Made live again before its expiry: the sweep must not drop it.
	r.add("a")
	r.end("b", t0.Add(40*time.Second), 32*time.Second) // sweeps a's old expiry
	if !r.has("a", t0.Add(100*time.Second)) {
		t.Fatal("a key made live again was swept")
	}
	// Many keys end and expire: the set shrinks back (nothing kept beyond the ttl).
	for i := range 5000 {
		r.end(fmt.Sprint("k", i), t0.Add(time.Duration(i)*time.Millisecond), time.Second)
	}
	r.end("last", t0.Add(time.Hour), time.Second)
	if n := r.len(); n != 2 { // a (live) and last
		t.Fatalf("%d keys held, want 2", n)
	}
	if len(r.ended)-r.head != 1 {
		t.Fatalf("%d pending expiries, want 1", len(r.ended)-r.head)
	}
	if r.high > 1024 {
		t.Fatalf("the map was not made anew after the keys expired (high water %d)", r.high)
	}
}

// The INVITE and BYE transactions end as soon as their work is done (not 32 s later), and
// what their timers were for still holds: a late copy of the INVITE is absorbed (no answer,
// no second call); a BYE retransmitted after its dialog ended gets 200 again; a new BYE for the
// ended dialog gets 481.
func TestRetransmissionsAfterTransactionsEnd(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	p := newUDPPhone(t, ts)
	u := p.dialog(testDID)
	inv := u.inviteMsg(sdpOffer(4000, "8"))
	res := p.status(inv)
	if res.StatusCode != 200 {
		t.Fatalf("INVITE: %d", res.StatusCode)
	}
	u.toTag, _ = res.To().Params.Get("tag")
	tl := ts.nextCall(t)
	u.ack(u.cseq, "")
	tl.waitAnswered(t)
	if tl.answerErr != nil {
		t.Fatal(tl.answerErr)
	}

	p.send(inv.bytes())             // the INVITE again after the ACK
	p.quiet(700 * time.Millisecond) // not even the 100 Trying sipgo sends after 200 ms
	ts.noCall(t)
	if s := ts.Stats(); s.Absorbed != 1 {
		t.Fatalf("Absorbed %d, want 1", s.Absorbed)
	}

	bye := u.req("BYE", 0, "", "")
	if r := p.status(bye); r.StatusCode != 200 {
		t.Fatalf("BYE: %d", r.StatusCode)
	}
	tl.waitDone(t)
	ts.waitNoDialogs(t)
	if r := p.status(bye); r.StatusCode != 200 {
		t.Fatalf("the BYE again after its dialog ended: %d, want 200", r.StatusCode)
	}
	if r := p.status(u.req("BYE", 0, "", "")); r.StatusCode != 481 {
		t.Fatalf("a new BYE for the ended dialog: %d, want 481", r.StatusCode)
	}
	// A late copy of the INVITE after the call ended is still no new call.
	p.send(inv.bytes())
	p.quiet(700 * time.Millisecond)
	ts.noCall(t)
	if s := ts.Stats(); s.Absorbed != 2 {
		t.Fatalf("Absorbed %d, want 2", s.Absorbed)
	}
}
