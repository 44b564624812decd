package phone

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/hotline12345/hotline/media"
)

// ErrCanceled is the Dial error of a call ended by Call.Cancel before it was answered.
var ErrCanceled = errors.New("phone: call cancelled")

// Call is one call leg of a Phone, outgoing (Dial) or incoming (Config.OnInvite).
type Call struct {
	p        *Phone
	log      *slog.Logger
	outbound bool
	callID   string
	from, to string
	conn     *net.UDPConn   // RTP socket; nil with Config.MediaAddr
	media    netip.AddrPort // the RTP address in the call's SDP
	sessID   uint64
	digits   chan rune
	notifies chan string // sipfrag bodies of NOTIFYs (transfer progress)

	cs     *sipgo.DialogClientSession // outbound
	ss     *sipgo.DialogServerSession // inbound
	offer  mediaOffer                 // inbound: the caller's offer
	target sip.Uri                    // remote target for in-dialog requests

	respMu sync.Mutex // serialises responses to an incoming INVITE
	final  bool       // a final response to the incoming INVITE was sent (guarded by respMu)

	mu        sync.Mutex // guards the fields below
	codec     uint8
	answerDir string // the direction of the answer to our INVITE
	dtmf      bool
	dtmfPT    uint8
	m         *rtpStream
	remote    netip.AddrPort // the peer's RTP address, with Config.MediaAddr
	reason    string
	over      bool // end has run: no media may start

	ctx        context.Context // the call's lifetime; media goroutines stop on it
	cancel     context.CancelCauseFunc
	dialCancel context.CancelCauseFunc // outbound: stops waiting for the answer

	ringing, answered, done chan struct{}
	ringOnce, answerOnce    sync.Once
	endOnce                 sync.Once
	answerErr               error // set before answered is closed
	wg                      sync.WaitGroup
	// answering: our final response to an incoming INVITE (the 200, or Reject's) is on its
	// way; whatever ends the server dialog from then on (a BYE right after the ACK, the end
	// of a rejected dialog) is not a CANCEL.
	answering atomic.Bool
}

func (p *Phone) newCall(outbound bool, callID, from, to string) (*Call, error) {
	var conn *net.UDPConn
	var addr netip.AddrPort
	if p.cfg.MediaAddr != nil {
		addr = p.cfg.MediaAddr()
	} else {
		var err error
		conn, err = net.ListenUDP("udp", &net.UDPAddr{IP: p.cfg.LocalIP.AsSlice()})
		if err != nil {
			return nil, fmt.Errorf("phone: rtp socket: %w", err)
		}
		addr = netip.AddrPortFrom(p.cfg.LocalIP, conn.LocalAddr().(*net.UDPAddr).AddrPort().Port())
	}
	c := &Call{
		p: p, outbound: outbound, callID: callID, from: from, to: to,
		conn: conn, media: addr,
		sessID:   uint64(rand.Uint32()),
		digits:   make(chan rune, 64),
		notifies: make(chan string, 8),
		ringing:  make(chan struct{}),
		answered: make(chan struct{}),
		done:     make(chan struct{}),
	}
	c.log = p.log.With("sip_call_id", callID, "from", from, "to", to)
	c.ctx, c.cancel = context.WithCancelCause(context.Background())
	return c, nil
}

// goroutine runs f on a goroutine that Hangup and Phone.Close wait for.
func (c *Call) goroutine(f func()) {
	c.wg.Add(1)
	c.p.goroutine(func() {
		defer c.wg.Done()
		f()
	})
}

func (c *Call) localSDP(codecs []uint8, dtmf bool, dtmfPT uint8) ([]byte, error) {
	return buildSDP(c.media.Addr(), c.media.Port(), c.sessID, codecs, dtmf, dtmfPT, c.p.cfg.Direction)
}

// DialAsync sends an INVITE with an SDP offer to target (e.g.
// "sip:12345@127.0.0.1:5070") from user from, and returns at once. Ringing
// fires on 180/183, Answered on the final response; Err then tells the
// outcome. ctx bounds the ringing phase only: cancelling it, like Cancel,
// sends CANCEL. The answered call lives until Hangup, a remote BYE or Close.
//
// sipgo gives up on an INVITE after 11 responses (e.g. a peer repeating 180).
func (p *Phone) DialAsync(ctx context.Context, target, from string) (*Call, error) {
	var uri sip.Uri
	if err := sip.ParseUri(target, &uri); err != nil {
		return nil, fmt.Errorf("phone: target %q: %w", target, err)
	}
	callID := fmt.Sprintf("%s@%s", sip.GenerateTagN(20), p.cfg.LocalIP)
	c, err := p.newCall(true, callID, from, uri.User)
	if err != nil {
		return nil, err
	}
	offer, err := c.localSDP(p.cfg.Codecs, !p.cfg.NoDTMF, p.cfg.DTMFPayloadType)
	if err != nil {
		c.end("sdp failed")
		return nil, err
	}
	req := sip.NewRequest(sip.INVITE, uri)
	fromH := &sip.FromHeader{
		DisplayName: from,
		Address:     sip.Uri{Scheme: "sip", User: from, Host: p.cfg.LocalIP.String()},
		Params:      sip.NewParams(),
	}
	fromH.Params.Add("tag", sip.GenerateTagN(16))
	toH := &sip.ToHeader{Address: sip.Uri{Scheme: uri.Scheme, User: uri.User, Host: uri.Host, Port: uri.Port}, Params: sip.NewParams()}
	cid := sip.CallIDHeader(callID)
	contact := p.contact(from)
	ct := sip.ContentTypeHeader("application/sdp")
	req.AppendHeader(fromH)
	req.AppendHeader(toH)
	req.AppendHeader(&cid)
	req.AppendHeader(&contact)
	req.AppendHeader(&ct)
	req.AppendHeader(sip.NewHeader("Allow", "INVITE, ACK, CANCEL, BYE, INFO, OPTIONS"))
	req.SetBody(offer)
	if p.cfg.Transport == "tcp" {
		req.SetTransport("TCP")
	}
	if err := p.register(c); err != nil {
		c.end("phone closed")
		return nil, err
	}
	dctx, dcancel := context.WithCancelCause(ctx)
	c.dialCancel = dcancel
	sess, err := p.dua.WriteInvite(dctx, req)
	if err != nil {
		dcancel(nil)
		c.end("invite failed")
		return nil, fmt.Errorf("phone: invite: %w", err)
	}
	c.cs = sess
	c.log.Debug("INVITE sent", "target", target)
	c.goroutine(func() {
		defer dcancel(nil)
		c.waitAnswer(dctx)
	})
	return c, nil
}

// Dial places a call and waits for the final response. On a non-2xx answer it
// returns a *StatusError; if ctx ends first it cancels the call and returns
// the context's error.
func (p *Phone) Dial(ctx context.Context, target, from string) (*Call, error) {
	c, err := p.DialAsync(ctx, target, from)
	if err != nil {
		return nil, err
	}
	<-c.answered // ctx cancellation is handled by the INVITE's CANCEL
	if c.answerErr != nil {
		c.wg.Wait()
		return nil, c.answerErr
	}
	return c, nil
}

func (c *Call) waitAnswer(ctx context.Context) {
	sess := c.cs
	err := sess.WaitAnswer(ctx, sipgo.AnswerOptions{OnResponse: func(r *sip.Response) error {
		if r.StatusCode == 180 || r.StatusCode == 183 {
			c.ringOnce.Do(func() { close(c.ringing) })
		}
		return nil
	}})
	if err != nil {
		if res := sess.InviteResponse; res != nil && res.IsSuccess() {
			// Answered while we were cancelling: complete and end the dialog.
			tctx, cancel := context.WithTimeout(context.Background(), teardownTimeout)
			defer cancel()
			if sess.Ack(tctx) == nil {
				sess.Bye(tctx)
			}
		}
		var de *sipgo.ErrDialogResponse
		switch {
		case errors.As(err, &de):
			c.endAnswer(&StatusError{Code: de.Res.StatusCode, Reason: de.Res.Reason}, fmt.Sprintf("%d %s", de.Res.StatusCode, de.Res.Reason))
		case ctx.Err() != nil:
			cause := context.Cause(ctx)
			c.endAnswer(cause, "cancelled")
		default:
			c.endAnswer(fmt.Errorf("phone: invite: %w", err), "invite failed")
		}
		return
	}
	res := sess.InviteResponse
	if contact := res.Contact(); contact != nil {
		c.target = contact.Address
	}
	ans, err := parseSDP(res.Body())
	codec, ok := uint8(0), false
	if err == nil {
		for _, pt := range ans.codecs {
			if ok = containsPT(c.p.cfg.Codecs, pt); ok {
				codec = pt
				break
			}
		}
		if !ok {
			err = ErrNoCodec
		}
	}
	actx, cancel := context.WithTimeout(context.Background(), teardownTimeout)
	defer cancel()
	if err != nil {
		if sess.Ack(actx) == nil {
			sess.Bye(actx)
		}
		c.endAnswer(fmt.Errorf("phone: answer: %w", err), "bad answer SDP")
		return
	}
	c.mu.Lock()
	c.codec, c.answerDir = codec, ans.dir
	c.dtmf, c.dtmfPT = ans.dtmf && !c.p.cfg.NoDTMF, ans.dtmfPT
	c.mu.Unlock()
	c.startMedia(ans.addr)
	if err := sess.Ack(actx); err != nil {
		c.endAnswer(fmt.Errorf("phone: ack: %w", err), "ACK failed")
		return
	}
	c.setAnswered(nil)
	c.log.Debug("call answered", "codec", codec)
}

// startMedia starts the call's RTP: the reader goroutine, and sending paced by
// the phone's scheduler until the call ends.
func (c *Call) startMedia(remote netip.AddrPort) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.over {
		return
	}
	if c.conn == nil { // Config.MediaAddr: the media is the caller's
		c.remote = remote
		return
	}
	m := newRTPStream(c.conn, c.log, remote, c.codec, c.dtmf, c.dtmfPT, c.p.silent, c.digits)
	m.remove = c.p.sched.Add(m)
	c.m = m
	c.goroutine(m.readLoop)
}

func (c *Call) mediaOrNil() *rtpStream {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m
}

func (c *Call) setAnswered(err error) {
	c.answerOnce.Do(func() {
		c.answerErr = err
		close(c.answered)
	})
}

func (c *Call) endAnswer(err error, reason string) {
	c.setAnswered(err)
	c.end(reason)
}

// end ends the call locally: it stops media, closes Done and forgets the call.
// It sends nothing and does not wait for goroutines.
func (c *Call) end(reason string) {
	c.endOnce.Do(func() {
		c.mu.Lock()
		c.reason, c.over = reason, true
		m := c.m
		c.mu.Unlock()
		if m != nil {
			m.stop()
		}
		c.setAnswered(ErrCallEnded)
		if c.dialCancel != nil {
			c.dialCancel(ErrCallEnded)
		}
		c.cancel(ErrCallEnded)
		if c.conn != nil {
			c.conn.Close()
		}
		c.p.unregister(c)
		close(c.done)
		c.log.Debug("call ended", "reason", reason)
	})
}

func (c *Call) ended() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

func (c *Call) isAnswered() bool {
	select {
	case <-c.answered:
		return c.answerErr == nil
	default:
		return false
	}
}

// Hangup ends the call: BYE (waiting for its 200) when answered, CANCEL when
// an outgoing call is still ringing, 480 when an incoming one is. It waits for
// the call's goroutines. Hanging up an ended call does nothing.
func (c *Call) Hangup(ctx context.Context) error {
	if c.ended() {
		c.wg.Wait()
		return nil
	}
	if !c.isAnswered() {
		if c.outbound {
			return c.Cancel(ctx)
		}
		select {
		case <-c.answered:
		default:
			c.respond(480, func() error { return c.ss.Respond(480, "Temporarily Unavailable", nil) })
			c.endAnswer(ErrCallEnded, "local hangup while ringing")
			c.wg.Wait()
			return nil
		}
	}
	var err error
	if c.answerErr == nil {
		if c.cs != nil {
			err = c.cs.Bye(ctx)
		} else {
			err = c.ss.Bye(ctx)
		}
	}
	c.end("local BYE")
	c.wg.Wait()
	if err != nil {
		return fmt.Errorf("phone: bye: %w", err)
	}
	return nil
}

// Cancel cancels an outgoing call that is still ringing (CANCEL, then the 487)
// and waits until it has ended; Dial returns ErrCanceled. If the answer won
// the race the call is hung up with BYE instead.
func (c *Call) Cancel(ctx context.Context) error {
	if !c.outbound {
		return errors.New("phone: Cancel on an incoming call")
	}
	c.dialCancel(ErrCanceled)
	select {
	case <-c.answered:
	case <-ctx.Done():
		return ctx.Err()
	}
	if c.answerErr == nil {
		return c.Hangup(ctx)
	}
	c.wg.Wait()
	return nil
}

// SIPCallID returns the SIP Call-ID.
func (c *Call) SIPCallID() string { return c.callID }

// Outbound reports whether this phone placed the call.
func (c *Call) Outbound() bool { return c.outbound }

// From and To return the caller and called user parts.
func (c *Call) From() string { return c.from }
func (c *Call) To() string   { return c.to }

// Ringing is closed when an outgoing call got 180 or 183.
func (c *Call) Ringing() <-chan struct{} { return c.ringing }

// Answered is closed when the call got its final answer; Err tells which.
func (c *Call) Answered() <-chan struct{} { return c.answered }

// Err returns nil once the call was answered, the *StatusError or other
// failure if it was not, and nil while it is still pending.
func (c *Call) Err() error {
	select {
	case <-c.answered:
		return c.answerErr
	default:
		return nil
	}
}

// Done is closed when the call has ended (either side's BYE, CANCEL,
// rejection, Close).
func (c *Call) Done() <-chan struct{} { return c.done }

// ByeReason says why the call ended: "remote BYE", "local BYE",
// "cancelled", "cancelled by caller", "rejected", "486 Busy Here", "phone closed", …
// It is empty while the call is up.
func (c *Call) ByeReason() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reason
}

// AnswerDirection is the SDP direction of the answer to a Dial (sendrecv, sendonly,
// recvonly or inactive); "" before the answer.
func (c *Call) AnswerDirection() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.answerDir
}

// Codec returns the negotiated payload type (0 PCMU or 8 PCMA).
func (c *Call) Codec() uint8 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.codec
}

// DTMFPayloadType returns the negotiated telephone-event payload type and
// whether one was negotiated.
func (c *Call) DTMFPayloadType() (uint8, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dtmfPT, c.dtmf
}

// RemoteRTP returns where the call sends RTP (from the peer's SDP).
func (c *Call) RemoteRTP() netip.AddrPort {
	if m := c.mediaOrNil(); m != nil {
		return m.remote
	}
	c.mu.Lock()
	remote := c.remote
	c.mu.Unlock()
	if remote.IsValid() {
		return remote
	}
	if !c.outbound {
		return c.offer.addr
	}
	return netip.AddrPort{}
}

// LocalRTP returns the RTP address the call's SDP names: its own socket's, or the
// one Config.MediaAddr gave.
func (c *Call) LocalRTP() netip.AddrPort { return c.media }

func (c *Call) activeMedia() (*rtpStream, error) {
	select {
	case <-c.done:
		return nil, ErrCallEnded
	default:
	}
	if !c.isAnswered() {
		return nil, ErrNotAnswered
	}
	m := c.mediaOrNil()
	if m == nil {
		return nil, ErrNotAnswered
	}
	return m, nil
}

// SendDTMF sends digits (0-9 * # A-D) as RFC 4733 events of dur each (<= 0
// means 100 ms; rounded up to 20 ms) on the negotiated telephone-event payload
// type, 40 ms apart, as media.DTMFSender sends them, and returns when the last
// end packet has been sent.
func (c *Call) SendDTMF(digits string, dur time.Duration) error {
	m, err := c.activeMedia()
	if err != nil {
		return err
	}
	if !m.dtmf {
		return ErrNoDTMF
	}
	events := make([]uint8, 0, len(digits))
	for _, d := range digits {
		ev, ok := media.DigitEvent(d)
		if !ok {
			return fmt.Errorf("%w: %q", ErrBadDigit, d)
		}
		events = append(events, ev)
	}
	if len(events) == 0 {
		return nil
	}
	return m.run(context.Background(), c.done, dtmfJob(events, dur))
}

// SendTone sends a -10 dBFS sine of freq Hz for dur as paced 20 ms G.711 frames.
func (c *Call) SendTone(freq float64, dur time.Duration) error {
	m, err := c.activeMedia()
	if err != nil {
		return err
	}
	frames := max(1, int(dur/media.FrameDuration))
	return m.run(context.Background(), c.done, toneJob(freq, frames, !m.silent))
}

// SendInfo sends digit in a SIP INFO with contentType
// "application/dtmf-relay" (Signal=5, Duration=160) or "application/dtmf" (5),
// and waits for a 2xx.
func (c *Call) SendInfo(ctx context.Context, digit rune, contentType string) error {
	if _, ok := media.DigitEvent(digit); !ok {
		return fmt.Errorf("%w: %q", ErrBadDigit, digit)
	}
	if _, err := c.activeMedia(); err != nil {
		return err
	}
	if contentType == "" {
		contentType = "application/dtmf-relay"
	}
	var req *sip.Request
	if c.cs != nil {
		target := c.target
		if target.Host == "" {
			target = c.cs.InviteRequest.Recipient
		}
		req = sip.NewRequest(sip.INFO, *target.Clone())
	} else {
		req = sip.NewRequest(sip.INFO, *c.ss.InviteRequest.Contact().Address.Clone())
	}
	ct := sip.ContentTypeHeader(contentType)
	req.AppendHeader(&ct)
	req.SetBody([]byte(infoBody(digit, contentType)))
	var res *sip.Response
	var err error
	if c.cs != nil {
		res, err = c.cs.Do(ctx, req)
	} else {
		res, err = c.ss.Do(ctx, req)
	}
	if err != nil {
		return fmt.Errorf("phone: info: %w", err)
	}
	if !res.IsSuccess() {
		return &StatusError{Code: res.StatusCode, Reason: res.Reason}
	}
	return nil
}

// Audio returns statistics of the RTP received so far.
func (c *Call) Audio() AudioStats {
	if m := c.mediaOrNil(); m != nil {
		return m.stats()
	}
	return AudioStats{RecentRMS: SilenceDBFS, TotalRMS: SilenceDBFS}
}

// WaitAudio waits until frames adding up to d, each with an RMS level above
// minRMSdBFS, have been received in the negotiated codec after WaitAudio was
// called (they need not be consecutive).
func (c *Call) WaitAudio(ctx context.Context, minRMSdBFS float64, d time.Duration) error {
	need := max(1, int((d+media.FrameDuration-1)/media.FrameDuration))
	got := 0
	from := int64(-1)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if m := c.mediaOrNil(); m != nil {
			if from < 0 {
				from = m.levelsSince(1<<62, nil)
			}
			from = m.levelsSince(from, func(l float32) {
				if float64(l) > minRMSdBFS {
					got++
				}
			})
			if got >= need {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("phone: waiting for audio above %.1f dBFS: got %d of %d frames: %w", minRMSdBFS, got, need, ctx.Err())
		case <-c.done:
			return ErrCallEnded
		case <-tick.C:
		}
	}
}

// DetectTone returns the power at freq Hz of the last 200 ms of received
// audio relative to its total power: near 1 for a pure tone at freq, near 0
// when absent.
func (c *Call) DetectTone(freq float64) float64 {
	if m := c.mediaOrNil(); m != nil {
		return m.detectTone(freq)
	}
	return 0
}

// Digits delivers each DTMF digit received, once: RFC 4733 events
// (de-duplicated on SSRC and timestamp) and SIP INFO. It is buffered (64);
// when full, digits still reach ReceivedDigits.
func (c *Call) Digits() <-chan rune { return c.digits }

// ReceivedDigits returns all digits received so far, in order.
func (c *Call) ReceivedDigits() string {
	if m := c.mediaOrNil(); m != nil {
		m.mu.Lock()
		defer m.mu.Unlock()
		return string(m.digitLog)
	}
	return ""
}

// Reject refuses an incoming call that is not answered yet with the final response code
// (300-699) and reason, then ends the call: its Err is a *StatusError with the code, its
// ByeReason "rejected". Call it from Config.OnInvite, which then returns false (the 486 is
// not sent after it). A code outside 300-699 is an ErrConfig error and leaves the call as
// it was; an outgoing call, or one that already got a final response (answered, cancelled,
// rejected), is refused with an error.
func (c *Call) Reject(code int, reason string) error {
	if c.outbound {
		return errors.New("phone: Reject on an outgoing call")
	}
	if code < 300 || code > 699 {
		return fmt.Errorf("%w: reject status %d: want 300-699", ErrConfig, code)
	}
	if c.ended() {
		return ErrCallEnded
	}
	err := c.respond(code, func() error {
		c.answering.Store(true) // the dialog's end that follows is ours, not a CANCEL
		return c.ss.Respond(code, reason, nil)
	})
	switch {
	case errors.Is(err, ErrCallEnded): // a final response went first
		return fmt.Errorf("phone: reject: a final response was already sent: %w", err)
	case err != nil: // e.g. a CANCEL crossed it: nothing more can be sent
		err = fmt.Errorf("phone: reject %d: %w", code, err)
		c.endAnswer(err, "reject failed")
		return err
	}
	c.endAnswer(&StatusError{Code: code, Reason: reason}, "rejected")
	return nil
}

// respond sends a response to the incoming INVITE unless a final one was already sent, so
// that Hangup (480) cannot race the answer or a rejection. A 2xx is sent without holding
// the lock, as RespondSDP blocks until the ACK; the final flag keeps the others out.
func (c *Call) respond(code int, send func() error) error {
	c.respMu.Lock()
	if c.final {
		c.respMu.Unlock()
		return ErrCallEnded
	}
	if code >= 200 {
		c.final = true
	}
	if code >= 200 && code < 300 {
		c.respMu.Unlock()
		return send()
	}
	defer c.respMu.Unlock()
	return send()
}
