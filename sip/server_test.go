package sip

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	sipgosip "github.com/emiago/sipgo/sip"
	"go.uber.org/goleak"
)

// sipgoDo sends one out-of-dialog request with a sipgo client and returns the response.
// The client sends from a UDP socket it serves (WithClientConnectionAddr), so sipgo never opens
// connections of its own: with -race and parallel tests, the reader of a client-created
// UDP connection sometimes outlived UserAgent.Close (its refcount went negative and the
// pool skipped it), which goleak reports.
func sipgoDo(t *testing.T, ts *testServer, method sipgosip.RequestMethod) *sipgosip.Response {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("sipgo-test"))
	if err != nil {
		t.Fatal(err)
	}
	defer ua.Close()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.ServeUDP(conn) }()
	defer func() { conn.Close(); <-served }()
	c, err := sipgo.NewClient(ua, sipgo.WithClientAddr(conn.LocalAddr().String()), sipgo.WithClientConnectionAddr(conn.LocalAddr().String()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	uri := sipgosip.Uri{Scheme: "sip", User: testDID, Host: "127.0.0.1", Port: int(ts.Addr().Port())}
	req := sipgosip.NewRequest(method, uri)
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	for {
		res, err := c.Do(ctx, req.Clone())
		if err == nil {
			return res
		}
		// Until ServeUDP has put the socket in sipgo's pool, sipgo tries to bind it anew.
		if !strings.Contains(err.Error(), "address already in use") || ctx.Err() != nil {
			t.Fatalf("%s: %v", method, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestOutOfDialogMethods(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	tests := []struct {
		method sipgosip.RequestMethod
		status int
	}{
		{sipgosip.OPTIONS, 200},
		{sipgosip.REGISTER, 405},
		{sipgosip.SUBSCRIBE, 405},
		{sipgosip.MESSAGE, 405},
		{"FOO", 501},
	}
	for _, tt := range tests {
		t.Run(string(tt.method), func(t *testing.T) {
			res := sipgoDo(t, ts, tt.method)
			if res.StatusCode != tt.status {
				t.Fatalf("%s: %d %s, want %d", tt.method, res.StatusCode, res.Reason, tt.status)
			}
			allow := header(res, "Allow")
			for _, m := range []string{"INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "INFO"} {
				if !strings.Contains(allow, m) {
					t.Errorf("Allow %q lacks %s", allow, m)
				}
			}
			if strings.Contains(allow, "REGISTER") {
				t.Errorf("Allow %q offers REGISTER", allow)
			}
			if tt.method == sipgosip.OPTIONS {
				accept := header(res, "Accept")
				for _, ct := range []string{"application/sdp", "application/dtmf-relay", "application/dtmf"} {
					if !strings.Contains(accept, ct) {
						t.Errorf("Accept %q lacks %s", accept, ct)
					}
				}
			}
			if header(res, "Server") != "hotline-test" {
				t.Errorf("Server header %q", header(res, "Server"))
			}
		})
	}
}

func TestOptionsInUnknownDialog(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	p := newUDPPhone(t, ts)
	u := p.dialog(testDID)
	u.toTag = "nosuchdialog"
	if res := p.status(u.req("OPTIONS", 0, "", "")); res.StatusCode != 481 {
		t.Fatalf("OPTIONS in unknown dialog: %d, want 481", res.StatusCode)
	}
}

func TestInviteRefusals(t *testing.T) {
	t.Parallel()

	t.Run("unserved number 404", func(t *testing.T) {
		t.Parallel()
		ts := startServer(t)
		p := newUDPPhone(t, ts)
		u := p.dialog("99999")
		res := u.call(sdpOffer(4000, "8"))
		if res.StatusCode != 404 {
			t.Fatalf("status %d, want 404", res.StatusCode)
		}
		// Counted, not reported for a record: a flood of misdialled INVITEs writes nothing.
		ts.noCall(t)
		select {
		case r := <-ts.rejects:
			t.Fatalf("OnReject called for a 404: %+v", r)
		default:
		}
		if s := ts.Stats(); s.NotFound != 1 || s.Rejected != 0 || s.Invites != 0 {
			t.Fatalf("stats %+v", s)
		}
	})

	t.Run("source outside trunks 403", func(t *testing.T) {
		t.Parallel()
		only1 := &Trunk{Name: "only1", Sources: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, DIDs: []string{testDID}}
		ts := startServer(t, withTrunks(only1))
		p := newPhone(t, "UDP", "127.0.0.2:0", ts.Addr())
		res := p.dialog(testDID).call(sdpOffer(4000, "8"))
		if res.StatusCode != 403 {
			t.Fatalf("status %d, want 403", res.StatusCode)
		}
		ts.noCall(t)
		select {
		case r := <-ts.rejects:
			t.Fatalf("OnReject called for an unknown source: %+v", r)
		default:
		}
		if s := ts.Stats(); s.Forbidden != 1 {
			t.Fatalf("stats %+v", s)
		}
		// The allowed source still gets through.
		ok := newUDPPhone(t, ts)
		u := ok.dialog(testDID)
		u.established(ts, sdpOffer(4000, "8"))
	})

	t.Run("trunk full 503", func(t *testing.T) {
		t.Parallel()
		tr := defaultTrunk()
		tr.MaxCalls = 1
		ts := startServer(t, withTrunks(tr), withRetryAfter(7*time.Second))
		p := newUDPPhone(t, ts)
		first := p.dialog(testDID)
		first.established(ts, sdpOffer(4000, "8"))
		if tr.Active() != 1 {
			t.Fatalf("active %d", tr.Active())
		}
		second := p.dialog(testDID)
		res := second.call(sdpOffer(4002, "8"))
		if res.StatusCode != 503 || header(res, "Retry-After") != "7" {
			t.Fatalf("second call: %d Retry-After %q, want 503 with 7", res.StatusCode, header(res, "Retry-After"))
		}
		if r := ts.nextReject(t); r.Status != 503 {
			t.Fatalf("rejection %+v", r)
		}
		// The first caller hangs up; the trunk has room again.
		if res := p.status(first.req("BYE", 0, "", "")); res.StatusCode != 200 {
			t.Fatalf("BYE: %d", res.StatusCode)
		}
		deadline := time.Now().Add(waitLong)
		for tr.Active() != 0 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		third := p.dialog(testDID)
		third.established(ts, sdpOffer(4004, "8"))
	})

	t.Run("draining 503", func(t *testing.T) {
		t.Parallel()
		ts := startServer(t)
		ts.Drain()
		if !ts.Draining() {
			t.Fatal("not draining")
		}
		p := newUDPPhone(t, ts)
		res := p.dialog(testDID).call(sdpOffer(4000, "8"))
		if res.StatusCode != 503 || header(res, "Retry-After") != "30" {
			t.Fatalf("status %d Retry-After %q, want 503 with 30", res.StatusCode, header(res, "Retry-After"))
		}
		if r := ts.nextReject(t); r.Status != 503 {
			t.Fatalf("rejection %+v", r)
		}
		ts.noCall(t)
	})

	t.Run("missing Contact 400", func(t *testing.T) {
		t.Parallel()
		ts := startServer(t)
		p := newUDPPhone(t, ts)
		m := p.dialog(testDID).inviteMsg(sdpOffer(4000, "8")).without("Contact")
		if res := p.status(m); res.StatusCode != 400 {
			t.Fatalf("status %d, want 400", res.StatusCode)
		}
		ts.noCall(t)
	})
}

func TestInviteSDP(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	tests := []struct {
		name        string
		contentType string
		body        string
		status      int
		payload     string // m= formats of our answer
		media       Media  // expected leg media (Addr, PayloadType, DTMFType, Direction)
	}{
		{name: "malformed", contentType: "application/sdp", body: "this is not SDP\r\n", status: 400},
		{name: "no audio m-line", contentType: "application/sdp", status: 488,
			body: "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=video 5000 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"},
		{name: "audio port 0 only", contentType: "application/sdp", status: 488, body: sdpOffer(0, "8 0")},
		{name: "G.729 only", contentType: "application/sdp", status: 488, body: sdpOffer(4000, "18", "a=rtpmap:18 G729/8000")},
		{name: "SRTP only", contentType: "application/sdp", status: 488, body: strings.Replace(sdpOffer(4000, "8"), "RTP/AVP", "RTP/SAVP", 1)},
		{name: "port 70000", contentType: "application/sdp", status: 400, body: sdpOffer(70000, "8")},
		{name: "text/plain", contentType: "text/plain", status: 415, body: "hello"},
		{name: "no Content-Type", status: 415, body: sdpOffer(4000, "8")},
		{name: "PCMU only", contentType: "application/sdp", status: 200, body: sdpOffer(4000, "0"),
			payload: "0", media: Media{Addr: netip.MustParseAddrPort("127.0.0.1:4000"), PayloadType: PayloadPCMU, Direction: SendRecv}},
		{name: "8 0 101", contentType: "application/sdp", status: 200,
			body:    sdpOffer(4002, "8 0 101", "a=rtpmap:8 PCMA/8000", "a=rtpmap:0 PCMU/8000", "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-15"),
			payload: "8 101", media: Media{Addr: netip.MustParseAddrPort("127.0.0.1:4002"), PayloadType: PayloadPCMA, DTMFType: 101, Direction: SendRecv}},
		{name: "0 8 96 prefers our PCMA, echoes 96", contentType: "application/sdp; charset=utf-8", status: 200,
			body:    sdpOffer(4004, "0 8 96", "a=rtpmap:96 telephone-event/8000", "a=fmtp:96 0-16"),
			payload: "8 96", media: Media{Addr: netip.MustParseAddrPort("127.0.0.1:4004"), PayloadType: PayloadPCMA, DTMFType: 96, Direction: SendRecv}},
		{name: "session-level c= only", contentType: "APPLICATION/SDP", status: 200,
			body:    "v=0\r\no=- 1 1 IN IP4 127.0.0.9\r\ns=-\r\nc=IN IP4 127.0.0.9\r\nt=0 0\r\nm=audio 4006 RTP/AVP 0\r\n",
			payload: "0", media: Media{Addr: netip.MustParseAddrPort("127.0.0.9:4006"), PayloadType: PayloadPCMU, Direction: SendRecv}},
		{name: "second audio m-line usable", contentType: "application/sdp", status: 200,
			body:    sdpOffer(0, "0") + "m=audio 4008 RTP/AVP 8\r\n",
			payload: "8", media: Media{Addr: netip.MustParseAddrPort("127.0.0.1:4008"), PayloadType: PayloadPCMA, Direction: SendRecv}},
		{name: "sendonly offer answered recvonly", contentType: "application/sdp", status: 200,
			body:    sdpOffer(4010, "8", "a=sendonly"),
			payload: "8", media: Media{Addr: netip.MustParseAddrPort("127.0.0.1:4010"), PayloadType: PayloadPCMA, Direction: SendOnly}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newUDPPhone(t, ts)
			u := p.dialog(testDID)
			m := u.req("INVITE", 0, tt.contentType, tt.body)
			res := p.status(m)
			if res.StatusCode != tt.status {
				t.Fatalf("status %d %s, want %d", res.StatusCode, res.Reason, tt.status)
			}
			if tt.status != 200 {
				if tt.status == 415 && !strings.Contains(header(res, "Accept"), "application/sdp") {
					t.Errorf("415 without Accept: application/sdp")
				}
				u.ackError()
				if r := ts.nextReject(t); r.Status != tt.status {
					t.Errorf("rejection %+v", r)
				}
				return
			}
			u.toTag, _ = res.To().Params.Get("tag")
			tl := ts.nextCall(t)
			u.ack(u.cseq, "")
			tl.waitAnswered(t)
			if tl.answerErr != nil {
				t.Fatal(tl.answerErr)
			}
			if got := mLine(res.Body()); got != tt.payload {
				t.Errorf("answer m= formats %q, want %q\n%s", got, tt.payload, res.Body())
			}
			if ct := header(res, "Content-Type"); ct != "application/sdp" {
				t.Errorf("Content-Type %q", ct)
			}
			ours := answerSDP(t, res.Body())
			if ours.addr != rtpLocal {
				t.Errorf("answer address %v, want %v", ours.addr, rtpLocal)
			}
			if want := answerDirection(tt.media.Direction); ours.direction != want {
				t.Errorf("answer direction %s, want %s", ours.direction, want)
			}
			if tl.media != tt.media {
				t.Errorf("media %+v, want %+v", tl.media, tt.media)
			}
			if p := p.status(u.req("BYE", 0, "", "")); p.StatusCode != 200 {
				t.Fatalf("BYE: %d", p.StatusCode)
			}
			tl.waitDone(t)
		})
	}
}

// TestInviteDynamicG711 offers PCMU on a dynamic payload type. RFC 3264 §6.1: the answer
// should use the payload type number the offer used for that codec.
func TestInviteDynamicG711(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	p := newUDPPhone(t, ts)
	u := p.dialog(testDID)
	res := u.call(sdpOffer(4000, "97", "a=rtpmap:97 PCMU/8000"))
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	tl := ts.nextCall(t)
	u.ack(u.cseq, "")
	tl.waitAnswered(t)
	if got := mLine(res.Body()); got != "97" {
		t.Fatalf("answer formats %q, want 97", got)
	}
	if !strings.Contains(string(res.Body()), "a=rtpmap:97 PCMU/8000") {
		t.Fatalf("answer lacks rtpmap 97 PCMU:\n%s", res.Body())
	}
	if tl.media.PayloadType != PayloadPCMU || tl.media.WireType() != 97 {
		t.Fatalf("media %+v: want PCMU carried as payload type 97", tl.media)
	}
	if r := p.status(u.req("BYE", 0, "", "")); r.StatusCode != 200 {
		t.Fatalf("BYE: %d", r.StatusCode)
	}
	tl.waitDone(t)
}

// TestInviteAudioAndVideo offers audio and video. RFC 3264 §6: the answer must have as many
// m= lines as the offer, rejecting video with port 0.
func TestInviteAudioAndVideo(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	p := newUDPPhone(t, ts)
	u := p.dialog(testDID)
	res := u.call(sdpOffer(4000, "8") + "m=video 4002 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n")
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	tl := ts.nextCall(t)
	u.ack(u.cseq, "")
	if n := strings.Count(string(res.Body()), "m="); n != 2 {
		t.Fatalf("answer has %d m= lines, want 2:\n%s", n, res.Body())
	}
	if !strings.Contains(string(res.Body()), "m=video 0 ") {
		t.Fatalf("video not rejected with port 0:\n%s", res.Body())
	}
	if r := p.status(u.req("BYE", 0, "", "")); r.StatusCode != 200 {
		t.Fatalf("BYE: %d", r.StatusCode)
	}
	tl.waitDone(t)
}

func TestLateOffer(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	p := newUDPPhone(t, ts)
	u := p.dialog(testDID)
	res := u.call("")
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	if got := mLine(res.Body()); got != "8 0 101" {
		t.Fatalf("our offer formats %q, want \"8 0 101\"\n%s", got, res.Body())
	}
	ours := answerSDP(t, res.Body())
	if ours.dtmfType != DefaultDTMFPayloadType || ours.direction != SendRecv || ours.addr != rtpLocal {
		t.Fatalf("our offer %+v", ours)
	}
	tl := ts.nextCall(t)
	// The answer in the ACK picks PCMU and a different address.
	u.ack(u.cseq, sdpOffer(5000, "0 101", "a=rtpmap:101 telephone-event/8000"))
	tl.waitAnswered(t)
	if tl.answerErr != nil {
		t.Fatal(tl.answerErr)
	}
	want := Media{Addr: netip.MustParseAddrPort("127.0.0.1:5000"), PayloadType: PayloadPCMU, DTMFType: 101, Direction: SendRecv}
	if tl.media != want || tl.Media() != want {
		t.Fatalf("media %+v (leg %+v), want %+v", tl.media, tl.Media(), want)
	}
}

func TestLateOfferBadAnswerInACK(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	p := newUDPPhone(t, ts)
	u := p.dialog(testDID)
	if res := u.call(""); res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	tl := ts.nextCall(t)
	u.ack(u.cseq, sdpOffer(5000, "18", "a=rtpmap:18 G729/8000"))
	tl.waitAnswered(t)
	if tl.answerErr == nil {
		t.Fatal("Answer accepted a G.729 answer in the ACK")
	}
	// OnCall returns on the error; the server ends the confirmed dialog with BYE.
	bye := p.request("BYE")
	p.respond(bye, 200, "OK")
	tl.waitDone(t)
}

func TestRetransmit200UntilACK(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	p := newUDPPhone(t, ts)
	u := p.dialog(testDID)
	p.send(u.inviteMsg(sdpOffer(4000, "8")).bytes())
	tl := ts.nextCall(t)

	start := time.Now()
	var oks int
	var first *sipgosip.Response
	for oks < 2 {
		r := p.response("INVITE", u.callID, false)
		if r.StatusCode != 200 {
			t.Fatalf("status %d", r.StatusCode)
		}
		if first == nil {
			first = r
		} else if string(r.Body()) != string(first.Body()) || header(r, "To") != header(first, "To") {
			t.Fatal("retransmitted 200 differs from the first")
		}
		oks++
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Fatalf("2 copies of 200 took %v, want the first retransmission at T1", d)
	}
	select {
	case <-tl.answered:
		t.Fatal("Answer returned before the ACK")
	default:
	}
	u.toTag, _ = first.To().Params.Get("tag")
	u.ack(u.cseq, "")
	tl.waitAnswered(t)
	if tl.answerErr != nil {
		t.Fatal(tl.answerErr)
	}
	// Drain any copy already in flight, then no more: the next one would be 1 s later.
	time.Sleep(50 * time.Millisecond)
	for len(p.resps) > 0 {
		<-p.resps
	}
	p.quiet(1100 * time.Millisecond)
	if s := ts.Stats(); s.Retransmit2x < 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestCallerHangsUp(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	p := newUDPPhone(t, ts)
	u := p.dialog(testDID)
	tl := u.established(ts, sdpOffer(4000, "8"))
	if tl.Caller() != testCaller || tl.Called() != testDID || tl.Trunk() != "carrier" || tl.SIPCallID() != u.callID || tl.Transport() != "UDP" {
		t.Fatalf("leg caller %q called %q trunk %q call-id %q transport %q", tl.Caller(), tl.Called(), tl.Trunk(), tl.SIPCallID(), tl.Transport())
	}
	if tl.CallerName() != "Citizen" || tl.Source() != p.local || tl.Header("User-Agent") != "hotline-sip-test" {
		t.Fatalf("leg name %q source %v UA %q", tl.CallerName(), tl.Source(), tl.Header("User-Agent"))
	}
	res := p.status(u.req("BYE", 0, "", ""))
	if res.StatusCode != 200 {
		t.Fatalf("BYE: %d", res.StatusCode)
	}
	tl.waitDone(t)
	if side, cause, code := tl.End(); side != SideCaller || cause != "BYE" || code != 200 {
		t.Fatalf("End() = %s %s %d", side, cause, code)
	}
	if err := tl.Hangup(context.Background(), "late"); err != nil {
		t.Fatalf("Hangup after end: %v", err)
	}
	if _, err := tl.Answer(context.Background(), rtpLocal); err != ErrLegEnded {
		t.Fatalf("Answer after end: %v", err)
	}
	// Once OnCall has returned, the dialog is forgotten: a new BYE is 481.
	ts.waitNoDialogs(t)
	if res := p.status(u.req("BYE", 0, "", "")); res.StatusCode != 481 {
		t.Fatalf("second BYE: %d, want 481", res.StatusCode)
	}
}

func TestCallerCancels(t *testing.T) {
	t.Parallel()
	ts := startServer(t, withoutAnswer())
	p := newUDPPhone(t, ts)
	u := p.dialog(testDID)
	inv := u.inviteMsg(sdpOffer(4000, "8"))
	p.send(inv.bytes())
	tl := ts.nextCall(t)
	if r := p.response("INVITE", u.callID, true); r.StatusCode != 100 && r.StatusCode != 180 {
		t.Fatalf("provisional %d", r.StatusCode)
	}
	cancel := u.req("CANCEL", u.cseq, "", "")
	cancel.headers[0] = inv.headers[0] // same Via branch as the INVITE
	p.send(cancel.bytes())
	if r := p.response("CANCEL", u.callID, false); r.StatusCode != 200 {
		t.Fatalf("CANCEL: %d", r.StatusCode)
	}
	if r := p.response("INVITE", u.callID, false); r.StatusCode != 487 {
		t.Fatalf("INVITE: %d, want 487", r.StatusCode)
	}
	u.ackError()
	tl.waitDone(t)
	if side, cause, code := tl.End(); side != SideCaller || cause != "CANCEL" || code != 487 {
		t.Fatalf("End() = %s %s %d", side, cause, code)
	}
}

func TestUnknownDialog(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	p := newUDPPhone(t, ts)
	u := p.dialog(testDID)
	u.toTag = "stale"
	for _, m := range []*msg{
		u.req("BYE", 0, "", ""),
		u.req("INFO", 0, "application/dtmf-relay", "Signal=5\r\nDuration=160\r\n"),
		u.req("INVITE", 0, "application/sdp", sdpOffer(4000, "8")),
		u.req("CANCEL", 0, "", ""), // matches no INVITE transaction
	} {
		if res := p.status(m); res.StatusCode != 481 {
			t.Errorf("%s for an unknown dialog: %d, want 481", m.method, res.StatusCode)
		}
	}
	if s := ts.Stats(); s.NoDialog != 4 {
		t.Errorf("NoDialog %d, want 4", s.NoDialog)
	}
	ts.noCall(t)
}

func TestServerHangsUp(t *testing.T) {
	t.Parallel()
	for _, proto := range []string{"UDP", "TCP"} {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			ts := startServer(t)
			p := newPhone(t, proto, "127.0.0.1:0", ts.Addr())
			u := p.dialog(testDID)
			tl := u.established(ts, sdpOffer(4000, "8"))
			tl.hangup <- "agent hung up"
			bye := p.request("BYE")

			if tag, _ := bye.From().Params.Get("tag"); tag != u.toTag || tag == "" {
				t.Errorf("BYE From tag %q, want our To tag %q", tag, u.toTag)
			}
			if tag, _ := bye.To().Params.Get("tag"); tag != u.fromTag {
				t.Errorf("BYE To tag %q, want the caller's From tag %q", tag, u.fromTag)
			}
			if bye.To().Address.User != testCaller {
				t.Errorf("BYE To %s", bye.To().Address.String())
			}
			if bye.CallID().Value() != u.callID {
				t.Errorf("BYE Call-ID %q", bye.CallID().Value())
			}
			if bye.CSeq().MethodName != sipgosip.BYE || bye.CSeq().SeqNo < 1 {
				t.Errorf("BYE CSeq %s", bye.CSeq().Value())
			}
			if bye.Recipient.User != testCaller || bye.Recipient.Port != int(p.local.Port()) {
				t.Errorf("BYE Request-URI %s, want the caller's Contact", bye.Recipient.String())
			}
			if !strings.Contains(header(bye, "Reason"), "agent hung up") {
				t.Errorf("BYE Reason %q", header(bye, "Reason"))
			}
			// RFC 3261 §20.14: Content-Length is mandatory over TCP; without it a stream
			// parser cannot find the end of the message (sipgo closes the connection).
			noLength := proto == "TCP" && (bye.ContentLength() == nil || p.framingErrors.Load() > 0)
			p.respond(bye, 200, "OK")
			select {
			case err := <-tl.hungup:
				if err != nil {
					t.Fatalf("Hangup: %v", err)
				}
			case <-time.After(waitLong):
				t.Fatal("Hangup did not return after 200")
			}
			if side, cause, code := tl.End(); side != SideSystem || cause != "agent hung up" || code != 200 {
				t.Fatalf("End() = %s %s %d", side, cause, code)
			}
			tl.waitDone(t)
			if noLength {
				t.Fatal("our BYE had no Content-Length (mandatory on TCP)")
			}
		})
	}
}

// reinvite sends a re-INVITE, retrying as a UAC does on 500 with Retry-After (RFC 3261
// §14.2): the server publishes a media update just before it marks the previous re-INVITE
// finished, so one sent right after an update may meet that window.
func (u *uac) reinvite(contentType, body string) *sipgosip.Response {
	u.p.t.Helper()
	for i := 0; ; i++ {
		res := u.p.status(u.req("INVITE", 0, contentType, body))
		if res.StatusCode != 500 || header(res, "Retry-After") == "" || i == 10 {
			return res
		}
		u.ackError()
		time.Sleep(10 * time.Millisecond)
	}
}

func TestReinviteHold(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	p := newUDPPhone(t, ts)
	u := p.dialog(testDID)
	tl := u.established(ts, sdpOffer(4000, "8 0 101", "a=rtpmap:101 telephone-event/8000"))
	firstVersion := ""
	reinvite := func(attr string, wantDir Direction, wantHold bool) {
		t.Helper()
		res := u.reinvite("application/sdp", sdpOffer(4000, "0 8 101", "a=rtpmap:101 telephone-event/8000", attr))
		if res.StatusCode != 200 {
			t.Fatalf("re-INVITE %s: %d", attr, res.StatusCode)
		}
		ours := answerSDP(t, res.Body())
		if ours.direction != wantDir {
			t.Fatalf("re-INVITE %s: our direction %s, want %s", attr, ours.direction, wantDir)
		}
		// We keep PCMA although the re-offer lists PCMU first.
		if got := mLine(res.Body()); got != "8 101" {
			t.Fatalf("re-INVITE answer formats %q", got)
		}
		o := strings.Split(string(res.Body()), "\r\n")[1]
		if o == firstVersion {
			t.Fatalf("o= line not changed: %s", o)
		}
		firstVersion = o
		u.ack(u.cseq, "")
		select {
		case m := <-tl.MediaUpdates():
			if m.OnHold() != wantHold || m.PayloadType != PayloadPCMA {
				t.Fatalf("update %+v, OnHold %v want %v", m, m.OnHold(), wantHold)
			}
		case <-time.After(waitLong):
			t.Fatal("no media update")
		}
		if tl.Media().OnHold() != wantHold {
			t.Fatalf("leg media %+v", tl.Media())
		}
	}
	reinvite("a=sendonly", RecvOnly, true)
	reinvite("a=sendrecv", SendRecv, false)
	reinvite("a=inactive", Inactive, true)

	// A refresh without SDP: we offer in the 200 and take the answer from the ACK.
	res := u.reinvite("", "")
	if res.StatusCode != 200 || mLine(res.Body()) != "8 0 101" {
		t.Fatalf("re-INVITE without SDP: %d %q", res.StatusCode, mLine(res.Body()))
	}
	u.ack(u.cseq, sdpOffer(4100, "0"))
	select {
	case m := <-tl.MediaUpdates():
		if m.PayloadType != PayloadPCMU || m.Addr.Port() != 4100 || m.OnHold() {
			t.Fatalf("update %+v", m)
		}
	case <-time.After(waitLong):
		t.Fatal("no media update")
	}

	// An unacceptable re-offer keeps the call and its media.
	res = u.reinvite("application/sdp", sdpOffer(4000, "18"))
	if res.StatusCode != 488 {
		t.Fatalf("G.729 re-INVITE: %d, want 488", res.StatusCode)
	}
	if tl.Media().PayloadType != PayloadPCMU {
		t.Fatalf("media changed by a refused re-INVITE: %+v", tl.Media())
	}
	select {
	case <-tl.Done():
		t.Fatal("leg ended by a refused re-INVITE")
	default:
	}
}

func TestInfoDTMF(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	p := newUDPPhone(t, ts)
	u := p.dialog(testDID)
	tl := u.established(ts, sdpOffer(4000, "8"))
	tests := []struct {
		ct, body string
		status   int
		digit    rune
	}{
		{"application/dtmf-relay", "Signal=5\r\nDuration=160\r\n", 200, '5'},
		{"application/dtmf", "#", 200, '#'},
		{"Application/DTMF-Relay; charset=x", "signal= 11\nDuration=100", 200, '#'},
		{"application/dtmf-relay", "Duration=160\r\n", 400, 0},
		{"application/dtmf", "X", 400, 0},
		{"text/plain", "5", 415, 0},
	}
	for _, tt := range tests {
		res := p.status(u.req("INFO", 0, tt.ct, tt.body))
		if res.StatusCode != tt.status {
			t.Errorf("INFO %s %q: %d, want %d", tt.ct, tt.body, res.StatusCode, tt.status)
			continue
		}
		if tt.status == 415 && !strings.Contains(header(res, "Accept"), "application/dtmf-relay") {
			t.Errorf("415 Accept %q", header(res, "Accept"))
		}
		if tt.digit == 0 {
			continue
		}
		select {
		case d := <-tl.Digits():
			if d != tt.digit {
				t.Errorf("INFO %q: digit %q, want %q", tt.body, d, tt.digit)
			}
		case <-time.After(waitLong):
			t.Fatalf("INFO %q: no digit", tt.body)
		}
	}
	select {
	case d := <-tl.Digits():
		t.Fatalf("extra digit %q", d)
	default:
	}
}

// TestGarbage sends malformed input; the server must neither panic nor stop answering.
func TestGarbage(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	p := newUDPPhone(t, ts)

	// Random datagrams: dropped.
	for i := 0; i < 50; i++ {
		b := make([]byte, 1+i*37)
		copy(b, randHex(len(b)))
		p.send(b)
	}
	p.send([]byte("\r\n\r\n")) // keep-alive
	p.send([]byte("INVITE sip:12345@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bKx\r\nFrom: <sip:a@b>;ta"))

	// A Content-Length larger than the body: sipgo drops the datagram (RFC 3261 §18.3 says
	// SHOULD answer 400; sipgo v1.7.3 does not), and it must not reach OnCall.
	u := p.dialog(testDID)
	m := u.inviteMsg(sdpOffer(4000, "8"))
	m.with("Content-Length: 9999")
	p.send(m.bytes())

	// Missing CSeq: sipgo answers 400 statelessly.
	u = p.dialog(testDID)
	p.send(u.inviteMsg(sdpOffer(4000, "8")).without("CSeq").bytes())
	select {
	case r := <-p.resps:
		if r.StatusCode != 400 {
			t.Fatalf("INVITE without CSeq: %d, want 400", r.StatusCode)
		}
	case <-time.After(waitLong):
		t.Fatal("INVITE without CSeq: no 400")
	}

	// Missing Via: 400 or dropped (there is nowhere to send a response).
	u = p.dialog(testDID)
	p.send(u.inviteMsg(sdpOffer(4000, "8")).without("Via").bytes())

	// ~9000 bytes in one datagram: an OPTIONS with a huge header.
	u = p.dialog(testDID)
	big := u.req("OPTIONS", 0, "", "")
	big.with("X-Padding: " + strings.Repeat("a", 9000))
	p.send(big.bytes())
	// An oversized INVITE body of SDP nonsense.
	u = p.dialog(testDID)
	p.send(u.req("INVITE", 0, "application/sdp", "v=0\r\n"+strings.Repeat("a=x\r\n", 1800)).bytes())

	// Still alive: OPTIONS answered.
	time.Sleep(100 * time.Millisecond)
	u = p.dialog(testDID)
	if res := p.status(u.req("OPTIONS", 0, "", "")); res.StatusCode != 200 {
		t.Fatalf("OPTIONS after garbage: %d", res.StatusCode)
	}
	ts.noCall(t)
}

// TestInviteWithoutCallID: Call-ID is mandatory (RFC 3261 §8.1.1); the server should refuse
// the INVITE with 400 instead of creating a call whose dialog has an empty Call-ID.
func TestInviteWithoutCallID(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	p := newUDPPhone(t, ts)
	u := p.dialog(testDID)
	res := p.status(u.inviteMsg(sdpOffer(4000, "8")).without("Call-ID"))
	if res.StatusCode != 400 {
		t.Fatalf("status %d, want 400", res.StatusCode)
	}
	ts.noCall(t)
}

// TestInviteWithoutToOrFrom: a missing To or From header gets 400, not a crash (the handler
// runs on a goroutine sipgo starts per request, without recover: a nil dereference there
// would kill the process). An unparsable To is dropped by sipgo's parser.
func TestInviteWithoutToOrFrom(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	p := newUDPPhone(t, ts)
	for _, m := range []*msg{
		p.dialog(testDID).inviteMsg(sdpOffer(4000, "8")).without("To"),
		p.dialog("99999").inviteMsg(sdpOffer(4000, "8")).without("From"),
		p.dialog(testDID).inviteMsg(sdpOffer(4000, "8")).without("From"),
		p.dialog(testDID).inviteMsg("").without("To").without("From"),
	} {
		if res := p.status(m); res.StatusCode != 400 {
			t.Errorf("status %d, want 400", res.StatusCode)
		}
	}
	p.send(p.dialog(testDID).inviteMsg(sdpOffer(4000, "8")).without("To").with("To: <<<").bytes())
	if res := p.status(p.dialog(testDID).req("OPTIONS", 0, "", "")); res.StatusCode != 200 {
		t.Fatalf("OPTIONS: %d", res.StatusCode)
	}
	ts.noCall(t)
	select {
	case r := <-ts.rejects:
		t.Fatalf("OnReject for a malformed INVITE: %+v", r)
	default:
	}
}

// TestHangupAfterServeReturned hangs up an answered leg after Serve returned. The BYE
// cannot be sent; Hangup should fail at once and must not leave a socket or goroutine
// behind. Not parallel, so that goleak sees only this test's goroutines.
func TestHangupAfterServeReturned(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	legs := make(chan *Inbound, 1)
	release := make(chan struct{})
	srv, err := NewServer(Config{
		Listen: netip.MustParseAddrPort("127.0.0.1:0"),
		Trunks: []*Trunk{defaultTrunk()},
		Logger: testLogger(t),
		OnCall: func(l *Inbound) {
			if _, err := l.Answer(context.Background(), rtpLocal); err != nil {
				t.Error(err)
			}
			legs <- l
			<-release
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	p := newPhone(t, "UDP", "127.0.0.1:0", srv.Addr())
	u := p.dialog(testDID)
	if res := u.call(sdpOffer(4000, "8")); res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	u.ack(u.cseq, "")
	l := <-legs
	cancel()
	<-served

	hctx, hcancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	_ = l.Hangup(hctx, "late")
	hcancel()
	close(release)
	srv.Wait()
	p.close()
}

// TestLargeInviteAnswered: carriers' INVITEs can carry several Via and Record-Route headers,
// all copied into our 200 OK. A response above 1300 bytes must still be sent over UDP
// (RFC 3261 §18.1.1 limits the size of requests, not of responses to them).
func TestLargeInviteAnswered(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	p := newUDPPhone(t, ts)
	u := p.dialog(testDID)
	m := u.inviteMsg(sdpOffer(4000, "8"))
	for i := 0; i < 8; i++ {
		m.with("Record-Route: <sip:sbc" + strings.Repeat("x", 80) + ".example.net;lr;ftag=abcdef" + string(rune('0'+i)) + ">")
	}
	p.send(m.bytes())
	tl := ts.nextCall(t)
	select {
	case <-tl.answered:
		if tl.answerErr != nil {
			t.Fatal("a large 200 OK could not be sent: ", tl.answerErr)
		}
	case <-time.After(100 * time.Millisecond):
	}
	res := p.response("INVITE", u.callID, false)
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	u.toTag, _ = res.To().Params.Get("tag")
	u.ack(u.cseq, "")
	tl.waitAnswered(t)
	if tl.answerErr != nil {
		t.Fatal(tl.answerErr)
	}
	if n := len(res.GetHeaders("Record-Route")); n != 8 {
		t.Fatalf("200 OK has %d Record-Route headers, want 8", n)
	}
}
