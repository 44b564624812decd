package main

import (
	"context"
	"errors"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/hotline12345/hotline/call"
	"github.com/hotline12345/hotline/loadtest/phone"
	"github.com/hotline12345/hotline/media"
)

// metricValue reads one sample of the server's /metrics, e.g.
// `hotline_rtp_dropped_total{reason="stranger"}`; -1 if absent.
func metricValue(t *testing.T, httpAddr, sample string) float64 {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` ([0-9.e+]+)$`)
	m := re.FindStringSubmatch(httpGet(t, "http://"+httpAddr+"/metrics", 200))
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// waitStage polls the API until the call is in stage at queue (any queue if "").
func waitStage(t *testing.T, httpAddr, sipCallID, stage, queue string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		lc, ok := liveCall(t, httpAddr, sipCallID)
		if ok && lc.Stage == stage && (queue == "" || lc.Queue == queue) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("call not in stage %s %s: %+v (found %v)", stage, queue, lc, ok)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// RTP bleed (AST-2017-005): a stranger on another address sends RTP to the call's media
// port before the caller does, in sequence and for as long as it likes. It is not
// latched: it gets no media, and the caller's own RFC 4733 digit still drives the IVR.
func TestRTPStrangerCannotTakeTheCall(t *testing.T) {
	s := startServer(t, "")
	// The caller sends nothing until its digit, so the stranger is first for sure.
	p := newPhone(t, phone.Config{SendSilence: phone.Bool(false)})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := p.Dial(ctx, "sip:12345@"+s.sipAddr(), "13900139000")
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	stranger, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP("127.0.0.2")})
	if err != nil {
		t.Fatalf("stranger socket on 127.0.0.2: %v", err)
	}
	defer stranger.Close()
	target := c.RemoteRTP()
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: c.Codec(), SSRC: 0xbad}, Payload: make([]byte, 160)}
	send := func(n int) {
		for range n {
			pkt.SequenceNumber++
			pkt.Timestamp += 160
			b, err := pkt.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := stranger.WriteToUDPAddrPort(b, target); err != nil {
				t.Fatal(err)
			}
		}
	}
	const sample = `hotline_rtp_dropped_total{reason="stranger"}`
	base := metricValue(t, s.httpAddr(), sample)
	send(20)
	deadline := time.Now().Add(10 * time.Second)
	for metricValue(t, s.httpAddr(), sample) < base+20 {
		if time.Now().After(deadline) {
			t.Fatalf("the stranger's 20 packets were not counted: %s = %v (was %v)", sample, metricValue(t, s.httpAddr(), sample), base)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// The caller is heard: digit 2 moves it from the menu to the complaint queue, while
	// the stranger keeps sending.
	if err := c.SendDTMF("2", 120*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	send(10)
	waitStage(t, s.httpAddr(), c.SIPCallID(), call.StageQueued, "complaint")
	if err := c.WaitAudio(ctx, -40, 300*time.Millisecond); err != nil {
		t.Fatalf("the caller hears nothing: %v", err)
	}
	if src := c.Audio().Source; src != target {
		t.Errorf("caller's audio came from %v, want the server's media port %v", src, target)
	}
	// The stranger got nothing back.
	_ = stranger.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	buf := make([]byte, 1500)
	if n, from, err := stranger.ReadFromUDPAddrPort(buf); err == nil {
		t.Fatalf("the stranger received %d bytes from %v", n, from)
	}
	if err := c.Hangup(ctx); err != nil {
		t.Fatalf("hangup: %v", err)
	}
	rec := s.records(t, 1)[0]
	if rec.IVRPath != "main>2>complaint" {
		t.Fatalf("record IVR path %q, want main>2>complaint", rec.IVRPath)
	}
}

// A sendonly or inactive offer gets no RTP from us; the answer mirrors the direction, and
// the call goes on (a sendonly caller's digits still drive the IVR).
func TestSDPDirectionHonoured(t *testing.T) {
	for _, tc := range []struct{ offer, answer string }{
		{"sendonly", "recvonly"},
		{"inactive", "inactive"},
	} {
		t.Run(tc.offer, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, "")
			p := newPhone(t, phone.Config{Direction: tc.offer, SendSilence: phone.Bool(tc.offer == "sendonly")})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c, err := p.Dial(ctx, "sip:12345@"+s.sipAddr(), "13900139000")
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			if got := c.AnswerDirection(); got != tc.answer {
				t.Errorf("answer direction %q, want %q", got, tc.answer)
			}
			// The welcome prompt plays for seconds: over a polled window of 1 s the
			// server sends nothing while the call is up.
			waitStage(t, s.httpAddr(), c.SIPCallID(), call.StageIVR, "")
			deadline := time.Now().Add(time.Second)
			for time.Now().Before(deadline) {
				if n := c.Audio().Packets; n != 0 {
					t.Fatalf("%s offer received %d RTP packets", tc.offer, n)
				}
				time.Sleep(50 * time.Millisecond)
			}
			if _, ok := liveCall(t, s.httpAddr(), c.SIPCallID()); !ok {
				t.Fatal("the call ended")
			}
			if tc.offer == "sendonly" {
				if err := c.SendDTMF("2", 120*time.Millisecond); err != nil {
					t.Fatal(err)
				}
				waitStage(t, s.httpAddr(), c.SIPCallID(), call.StageQueued, "complaint")
				if n := c.Audio().Packets; n != 0 {
					t.Fatalf("received %d RTP packets in the queue", n)
				}
			}
			if err := c.Hangup(ctx); err != nil {
				t.Fatalf("hangup: %v", err)
			}
		})
	}
}

// The caller's re-INVITE to hold (sendonly) stops our RTP; unhold (sendrecv) resumes it.
func TestSDPDirectionReInvite(t *testing.T) {
	s := startServer(t, "")
	p := newPhone(t, phone.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := p.Dial(ctx, "sip:12345@"+s.sipAddr(), "13900139000")
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	if err := c.WaitAudio(ctx, -40, 300*time.Millisecond); err != nil {
		t.Fatalf("no menu audio: %v", err)
	}
	if err := c.Hold(ctx); err != nil {
		t.Fatalf("hold: %v", err)
	}
	// Packets already on their way when the 200 went out may still arrive: once 100 ms
	// passed without one, nothing more for a second (the menu plays for longer).
	deadline := time.Now().Add(5 * time.Second)
	for time.Since(c.Audio().LastPacket) < 100*time.Millisecond {
		if time.Now().After(deadline) {
			t.Fatal("RTP keeps coming after the hold")
		}
		time.Sleep(20 * time.Millisecond)
	}
	held := c.Audio().Packets
	deadline = time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		if n := c.Audio().Packets; n != held {
			t.Fatalf("received %d RTP packets while holding", n-held)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := c.Unhold(ctx); err != nil {
		t.Fatalf("unhold: %v", err)
	}
	deadline = time.Now().Add(15 * time.Second) // the menu may be between prompts
	for c.Audio().Packets < held+10 {
		if time.Now().After(deadline) {
			t.Fatalf("no RTP after unhold: %d packets, %d before", c.Audio().Packets, held)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := c.Hangup(ctx); err != nil {
		t.Fatalf("hangup: %v", err)
	}
}

// rtp.agents_srtp: required refuses a plain call from an agent's own phone with 488 (the
// agent state does not change); the same feature code works with SRTP off.
func TestAgentSRTPRequired(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		policy string
		status int
	}{{"required", 488}, {"off", 200}} {
		s := startServer(t, strings.Replace(acdTestConfig(t), "\nrtp:\n", "\nrtp:\n  agents_srtp: "+tc.policy+"\n", 1))
		ag := newAgent(t, s, "1003", phone.Config{}, answerAlways)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := ag.phone.Dial(ctx, "sip:*21@"+s.sipAddr(), "1003")
		cancel()
		var se *phone.StatusError
		switch {
		case tc.status == 200 && err != nil:
			t.Fatalf("agents_srtp %s: dial *21: %v", tc.policy, err)
		case tc.status == 200:
			waitAgentState(t, s, "1003", "ready")
		case !errors.As(err, &se) || se.Code != tc.status:
			t.Fatalf("agents_srtp %s: dial *21: %v, want %d", tc.policy, err, tc.status)
		default:
			if st, _ := agentState(t, s, "1003"); st == "ready" {
				t.Fatalf("agents_srtp %s: the refused call changed the agent's state", tc.policy)
			}
		}
	}
}

// While a citizen talks to an agent, a stranger on another address sprays the citizen's
// media port with a 600 Hz tone: the agent hears the citizen's 1000 Hz, never the
// stranger's tone.
func TestRTPStrangerNotBridged(t *testing.T) {
	t.Parallel()
	s := startServer(t, acdTestConfig(t))
	ag := newAgent(t, s, "1001", phone.Config{}, answerAlways)
	citizen, agentCall := connected(t, s, ag)
	stranger, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP("127.0.0.2")})
	if err != nil {
		t.Fatalf("stranger socket on 127.0.0.2: %v", err)
	}
	defer stranger.Close()
	frames := media.Tone("stranger", []float64{600}, 3*time.Second, 0.5).Frames(media.Codec(citizen.Codec()))
	stop := make(chan struct{})
	sent := make(chan int)
	go func() {
		tick := time.NewTicker(media.FrameDuration) // the stranger's pace, not a wait
		defer tick.Stop()
		pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: citizen.Codec(), SSRC: 0xbad}}
		n := 0
		for i := 0; ; i++ {
			select {
			case <-stop:
				sent <- n
				return
			case <-tick.C:
			}
			pkt.SequenceNumber++
			pkt.Timestamp += 160
			pkt.Payload = frames[i%len(frames)]
			if b, err := pkt.Marshal(); err == nil {
				if _, err := stranger.WriteToUDPAddrPort(b, citizen.RemoteRTP()); err == nil {
					n++
				}
			}
		}
	}()
	if err := citizen.SendTone(1000, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	waitTone(t, agentCall, 1000, "agent (the citizen's tone)")
	if r := agentCall.DetectTone(600); r > 0.1 {
		t.Fatalf("the agent hears the stranger's 600 Hz (detector %.3f)", r)
	}
	close(stop)
	if n := <-sent; n < 10 {
		t.Fatalf("the stranger sent only %d packets", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := citizen.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
}
