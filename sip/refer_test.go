package sip

import (
	"testing"
	"time"

	sipgosip "github.com/emiago/sipgo/sip"
)

// A REFER the leg's owner has taken but decides slowly (a loaded call loop) is answered
// with the owner's decision, not with a 403 for a transfer that then happens anyway — a
// loaded CI machine saw the server transfer a call whose agent had been told 403. A REFER
// nobody takes is still answered 403.
func TestReferSlowDecision(t *testing.T) {
	old := referPickup
	referPickup = 100 * time.Millisecond
	t.Cleanup(func() { referPickup = old })
	ts := startServer(t)
	p := newUDPPhone(t, ts)
	u := p.dialog(testDID)
	tl := u.established(ts, sdpOffer(4000, "8"))

	refer := func() *msg {
		m := u.req("REFER", 0, "", "")
		m.headers = append(m.headers, "Refer-To: <sip:complaint@"+p.server.String()+">")
		return m
	}
	got := make(chan *sipgosip.Response, 1)
	go func() { got <- p.status(refer()) }()
	var r *Refer
	select {
	case r = <-tl.Refers():
	case <-time.After(waitLong):
		t.Fatal("the REFER did not reach the leg's owner")
	}
	time.Sleep(3 * referPickup) // decide well after the pickup time (the behaviour under test)
	r.Accept()
	select {
	case res := <-got:
		if res.StatusCode != 202 {
			t.Fatalf("REFER answered %d %s after the owner accepted it late, want 202", res.StatusCode, res.Reason)
		}
	case <-time.After(waitLong):
		t.Fatal("no answer to the REFER")
	}

	// Nobody takes the next one: 403 once the pickup time is over.
	if res := p.status(refer()); res.StatusCode != 403 {
		t.Fatalf("REFER nobody took answered %d, want 403", res.StatusCode)
	}
}
