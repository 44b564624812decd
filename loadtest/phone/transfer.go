package phone

import (
	"context"
	"fmt"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// Hold puts the other party on hold with a re-INVITE offering a=sendonly (RFC 3264 §8.4);
// Unhold resumes with a=sendrecv. The phone keeps its codec and RTP socket.
func (c *Call) Hold(ctx context.Context) error { return c.reinvite(ctx, "sendonly") }

// Unhold takes the other party off hold.
func (c *Call) Unhold(ctx context.Context) error { return c.reinvite(ctx, "sendrecv") }

func (c *Call) reinvite(ctx context.Context, dir string) error {
	if !c.isAnswered() || c.ended() {
		return ErrCallEnded
	}
	c.mu.Lock()
	codec, dtmf, dtmfPT := c.codec, c.dtmf, c.dtmfPT
	c.mu.Unlock()
	c.sessID++
	body, err := c.localSDP([]uint8{codec}, dtmf, dtmfPT)
	if err != nil {
		return err
	}
	body = []byte(strings.Replace(string(body), "a=sendrecv", "a="+dir, 1))
	req := sip.NewRequest(sip.INVITE, c.remoteTarget())
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(body)
	res, err := c.do(ctx, req)
	if err != nil {
		return fmt.Errorf("phone: re-INVITE: %w", err)
	}
	if res.StatusCode != 200 {
		return &StatusError{Code: res.StatusCode, Reason: res.Reason}
	}
	ack := sip.NewRequest(sip.ACK, c.remoteTarget())
	ack.SetBody(nil)
	return c.write(ack)
}

// Refer asks the other party to transfer the call to target (a blind transfer, RFC 3515),
// e.g. "sip:complaint@127.0.0.1:5060". It returns when the REFER is answered: nil for
// 202 Accepted, a *StatusError otherwise.
func (c *Call) Refer(ctx context.Context, target string) error {
	if !c.isAnswered() || c.ended() {
		return ErrCallEnded
	}
	req := sip.NewRequest(sip.REFER, c.remoteTarget())
	req.AppendHeader(sip.NewHeader("Refer-To", "<"+target+">"))
	req.SetBody(nil)
	res, err := c.do(ctx, req)
	if err != nil {
		return fmt.Errorf("phone: REFER: %w", err)
	}
	if res.StatusCode != 202 {
		return &StatusError{Code: res.StatusCode, Reason: res.Reason}
	}
	return nil
}

// do sends an in-dialog request through whichever dialog session the call has.
func (c *Call) do(ctx context.Context, req *sip.Request) (*sip.Response, error) {
	if c.cs != nil {
		return c.cs.Do(ctx, req)
	}
	return c.ss.Do(ctx, req)
}

func (c *Call) write(req *sip.Request) error {
	if c.cs != nil {
		return c.cs.WriteRequest(req)
	}
	return c.ss.WriteRequest(req)
}

// Notifies yields the sipfrag bodies of NOTIFYs received in the call, e.g. "SIP/2.0 200 OK"
// when a transfer this phone asked for succeeded.
func (c *Call) Notifies() <-chan string { return c.notifies }

// remoteTarget is where in-dialog requests go: the other party's Contact.
func (c *Call) remoteTarget() sip.Uri {
	if c.target.Host != "" {
		return c.target
	}
	if c.ss != nil {
		if ct := c.ss.InviteRequest.Contact(); ct != nil {
			return ct.Address
		}
	}
	return c.cs.InviteRequest.Recipient
}
