package sip

import (
	"context"
	"fmt"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Refer is a blind-transfer request (RFC 3515) from the remote party of a leg. The owner of
// the leg must Accept or Reject it promptly; after Accept it reports progress with Notify.
type Refer struct {
	Target     sip.Uri // Refer-To
	ReferredBy string
	d          *dialog
	decision   chan int
}

// Accept answers the REFER with 202 Accepted.
func (r *Refer) Accept() { r.decide(202) }

// Reject answers the REFER with a final error, e.g. 403 (not allowed) or 404 (unknown target).
func (r *Refer) Reject(code int) { r.decide(code) }

func (r *Refer) decide(code int) {
	select {
	case r.decision <- code:
	default:
	}
}

// Notify sends the implicit subscription's NOTIFY with a sipfrag of the transfer's progress
// (e.g. 100 Trying, 200 OK, 503 Service Unavailable); final statuses end the subscription.
func (r *Refer) Notify(ctx context.Context, code int, reason string) error {
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
	r := &Refer{Target: h.Address, d: d, decision: make(chan int, 1)}
	if by := req.ReferredBy(); by != nil {
		r.ReferredBy = by.Address.User
	}
	select {
	case d.refers <- r:
	default:
		d.s.respond(req, tx, 491, "Request Pending") // a transfer is already being decided
		return
	}
	timer := time.NewTimer(3 * time.Second)
	defer timer.Stop()
	select {
	case code := <-r.decision:
		reason := map[int]string{202: "Accepted", 403: "Forbidden", 404: "Not Found", 488: "Not Acceptable Here"}[code]
		if reason == "" {
			reason = "Declined"
		}
		d.s.respond(req, tx, code, reason)
	case <-timer.C:
		select { // take back our unread request (the channel holds one at most)
		case <-d.refers:
		default:
		}
		d.s.respond(req, tx, 403, "Forbidden") // nobody handles transfers on this leg
	case <-d.done:
		d.s.respond(req, tx, 481, "Call/Transaction Does Not Exist")
	}
}
