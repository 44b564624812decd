package sip

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Refer is a blind-transfer request (RFC 3515) from the remote party of a leg. The owner of
// the leg must Accept or Reject it promptly; after Accept it reports progress with Notify.
// Accept and Reject return once the answer has been sent, so a NOTIFY can never overtake
// the 202 (RFC 3515 §2.4.4: the NOTIFY follows the acceptance of the REFER).
type Refer struct {
	Target     sip.Uri // Refer-To
	ReferredBy string
	d          *dialog  // nil for a detached Refer (NewRefer)
	decision   chan int // the owner's answer, read once by the REFER's transaction
	answered   chan struct{}
	mu         sync.Mutex
	notified   []int // a detached Refer's NOTIFY statuses
}

// NewRefer makes a Refer that belongs to no dialog, for tests of a leg's owner: Accept and
// Reject record the answer (Answer tells it) and Notify records the status (Notified).
func NewRefer(target sip.Uri, referredBy string) *Refer {
	r := &Refer{Target: target, ReferredBy: referredBy, decision: make(chan int, 1), answered: make(chan struct{})}
	return r
}

// Accept answers the REFER with 202 Accepted.
func (r *Refer) Accept() { r.decide(202) }

// Reject answers the REFER with a final error, e.g. 403 (not allowed) or 404 (unknown target).
func (r *Refer) Reject(code int) { r.decide(code) }

// Answer is the status the owner answered with, 0 if it has not answered yet.
func (r *Refer) Answer() int {
	select {
	case code := <-r.decision:
		r.decision <- code
		return code
	default:
		return 0
	}
}

// Notified lists the statuses a detached Refer was notified with.
func (r *Refer) Notified() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.notified)
}

// decide hands the answer to the REFER's transaction and waits (briefly: the answer is a
// local send) until it has been sent, or the leg ended.
func (r *Refer) decide(code int) {
	select {
	case r.decision <- code:
	default:
		return // answered already
	}
	if r.d == nil {
		return
	}
	t := time.NewTimer(2 * time.Second)
	defer t.Stop()
	select {
	case <-r.answered:
	case <-r.d.done:
	case <-t.C:
	}
}

// Notify sends the implicit subscription's NOTIFY with a sipfrag of the transfer's progress
// (e.g. 100 Trying, 200 OK, 503 Service Unavailable); final statuses end the subscription.
func (r *Refer) Notify(ctx context.Context, code int, reason string) error {
	if r.d == nil {
		r.mu.Lock()
		r.notified = append(r.notified, code)
		r.mu.Unlock()
		return nil
	}
	select { // never before the REFER's answer
	case <-r.answered:
	case <-ctx.Done():
		return ctx.Err()
	}
	if r.d.ended() {
		return ErrLegEnded
	}
	req := r.d.newRequest(sip.NOTIFY)
	req.AppendHeader(r.d.contact)
	req.AppendHeader(sip.NewHeader("Event", "refer"))
	state := "active;expires=60"
	if code >= 200 {
		state = "terminated;reason=noresource"
	}
	req.AppendHeader(sip.NewHeader("Subscription-State", state))
	req.AppendHeader(sip.NewHeader("Content-Type", "message/sipfrag;version=2.0"))
	req.SetBody(fmt.Appendf(nil, "SIP/2.0 %d %s\r\n", code, reason))
	res, err := r.d.request(ctx, req)
	if err != nil {
		return err
	}
	if res.StatusCode >= 300 {
		return fmt.Errorf("sip: NOTIFY answered %d", res.StatusCode)
	}
	return nil
}

// onRefer hands a REFER to the leg's owner and answers with its decision.
func (d *dialog) onRefer(req *sip.Request, tx sip.ServerTransaction) {
	h := req.ReferTo()
	if h == nil {
		d.s.respond(req, tx, 400, "Missing Refer-To")
		return
	}
	r := &Refer{Target: h.Address, d: d, decision: make(chan int, 1), answered: make(chan struct{})}
	defer close(r.answered)
	if by := req.ReferredBy(); by != nil {
		r.ReferredBy = by.Address.User
	}
	select {
	case d.refers <- r:
	default:
		d.s.respond(req, tx, 491, "Request Pending") // a transfer is already being decided
		return
	}
	answer := func(code int) {
		reason := map[int]string{202: "Accepted", 403: "Forbidden", 404: "Not Found", 488: "Not Acceptable Here"}[code]
		if reason == "" {
			reason = "Declined"
		}
		d.s.respond(req, tx, code, reason)
	}
	timer := time.NewTimer(referPickup)
	defer timer.Stop()
	select {
	case code := <-r.decision:
		answer(code)
		return
	case <-timer.C:
	case <-d.done:
		d.s.respond(req, tx, 481, "Call/Transaction Does Not Exist")
		return
	}
	select { // take back our request if it is still unread (the channel holds one at most)
	case <-d.refers:
		d.s.respond(req, tx, 403, "Forbidden") // nobody handles transfers on this leg
		return
	default:
	}
	// The owner has it: it is deciding (a busy call loop, a slow ACD) and will act on its
	// decision, so the answer must be that decision, not a 403 for a transfer that happens.
	select {
	case code := <-r.decision:
		answer(code)
	case <-d.done:
		d.s.respond(req, tx, 481, "Call/Transaction Does Not Exist")
	}
}

// referPickup is how long a REFER waits for the leg's owner to take it before it is
// answered 403 (a leg whose owner handles no transfers). A var for tests.
var referPickup = 3 * time.Second
