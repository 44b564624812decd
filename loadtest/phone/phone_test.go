package phone

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// waitLong is how long a test waits for something that must happen, enough
// for a machine whose CPUs are busy with other work.
const waitLong = 10 * time.Second

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testLogger logs at debug level when PHONE_DEBUG is set.
func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("PHONE_DEBUG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
}

func newPhone(t *testing.T, cfg Config) *Phone {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return p
}

// answering returns a phone that answers every call and hands it to the test.
func answering(t *testing.T, cfg Config) (*Phone, chan *Call) {
	t.Helper()
	calls := make(chan *Call, 8)
	cfg.OnInvite = func(c *Call) bool {
		calls <- c
		return true
	}
	return newPhone(t, cfg), calls
}

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitLong):
		t.Fatalf("timed out waiting for %s", what)
	}
	panic("unreachable")
}

// answered returns the next incoming call once it is answered (ACK received).
func answered(t *testing.T, incoming <-chan *Call) *Call {
	t.Helper()
	c := recv(t, incoming, "incoming call")
	recv(t, c.Answered(), "answer")
	if err := c.Err(); err != nil {
		t.Fatalf("incoming call failed: %v", err)
	}
	return c
}

func waitDone(t *testing.T, c *Call, what string) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(waitLong):
		t.Fatalf("timed out waiting for %s to end", what)
	}
}

// waitAudioStats polls c's receive statistics until cond holds or waitLong
// passes, and returns the last.
func waitAudioStats(t *testing.T, c *Call, cond func(AudioStats) bool) AudioStats {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for {
		st := c.Audio()
		if cond(st) || time.Now().After(deadline) {
			return st
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestPhoneToPhone(t *testing.T) {
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			a := newPhone(t, Config{Transport: transport})
			b, incoming := answering(t, Config{Transport: transport})

			ca, err := a.Dial(ctxT(t, waitLong), b.URI("1001"), "13800138000")
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			cb := answered(t, incoming)
			if ca.Codec() != PCMA || cb.Codec() != PCMA {
				t.Errorf("codec A=%d B=%d, want PCMA (8)", ca.Codec(), cb.Codec())
			}
			if pt, ok := cb.DTMFPayloadType(); !ok || pt != 101 {
				t.Errorf("B telephone-event = %d,%v, want 101", pt, ok)
			}
			if ca.SIPCallID() != cb.SIPCallID() || cb.From() != "13800138000" || cb.To() != "1001" {
				t.Errorf("call ids %q %q, from %q to %q", ca.SIPCallID(), cb.SIPCallID(), cb.From(), cb.To())
			}
			if ca.RemoteRTP() != cb.LocalRTP() || cb.RemoteRTP() != ca.LocalRTP() {
				t.Errorf("RTP addresses: A→%v (B has %v), B→%v (A has %v)", ca.RemoteRTP(), cb.LocalRTP(), cb.RemoteRTP(), ca.LocalRTP())
			}

			// A tone sent by A is detected by B, at its frequency only.
			toneErr := make(chan error, 1)
			go func() { toneErr <- ca.SendTone(1000, 1500*time.Millisecond) }()
			if err := cb.WaitAudio(ctxT(t, waitLong), -20, 300*time.Millisecond); err != nil {
				t.Fatalf("B WaitAudio: %v", err)
			}
			on, off := cb.DetectTone(1000), cb.DetectTone(2000)
			if on < 0.5 || off > 0.01 {
				t.Errorf("B DetectTone(1000)=%.3f (want > 0.5), DetectTone(2000)=%.4f (want < 0.01)", on, off)
			}
			if err := <-toneErr; err != nil {
				t.Fatalf("SendTone: %v", err)
			}
			// SendTone returns once its last frame is sent, not received.
			st := waitAudioStats(t, cb, func(st AudioStats) bool { return st.AudioPackets >= 75 })
			if st.AudioPackets < 75 || st.Lost != 0 || st.SSRCChanges != 0 || st.TotalRMS < -30 || st.Source != ca.LocalRTP() {
				t.Errorf("B audio stats: %+v", st)
			}
			if st := ca.Audio(); st.AudioPackets == 0 || st.RecentRMS > -60 {
				t.Errorf("A should receive B's silence: %+v", st)
			}

			// RFC 4733 digits arrive exactly once each.
			if err := ca.SendDTMF("123#", 100*time.Millisecond); err != nil {
				t.Fatalf("SendDTMF: %v", err)
			}
			var got []rune
			for range 4 {
				got = append(got, recv(t, cb.Digits(), "digit"))
			}
			select {
			case d := <-cb.Digits():
				t.Errorf("extra digit %q", d)
			case <-time.After(300 * time.Millisecond):
			}
			if string(got) != "123#" || cb.ReceivedDigits() != "123#" {
				t.Errorf("B digits %q (log %q), want 123#", string(got), cb.ReceivedDigits())
			}
			// 100 ms: five packets of growing duration, the last of them the
			// first of three end packets.
			if st := waitAudioStats(t, cb, func(st AudioStats) bool { return st.EventPackets >= 4*(5+2) }); st.EventPackets != 4*(5+2) {
				t.Errorf("B event packets = %d, want %d", st.EventPackets, 4*(5+2))
			}

			// SIP INFO both ways, both content types.
			if err := ca.SendInfo(ctxT(t, waitLong), '5', "application/dtmf-relay"); err != nil {
				t.Fatalf("SendInfo dtmf-relay: %v", err)
			}
			if err := ca.SendInfo(ctxT(t, waitLong), '*', "application/dtmf"); err != nil {
				t.Fatalf("SendInfo dtmf: %v", err)
			}
			if d := recv(t, cb.Digits(), "INFO digit"); d != '5' {
				t.Errorf("INFO digit %q, want 5", d)
			}
			if d := recv(t, cb.Digits(), "INFO digit"); d != '*' {
				t.Errorf("INFO digit %q, want *", d)
			}
			if err := cb.SendInfo(ctxT(t, waitLong), '9', ""); err != nil {
				t.Fatalf("B SendInfo: %v", err)
			}
			if d := recv(t, ca.Digits(), "INFO digit from B"); d != '9' {
				t.Errorf("A got INFO digit %q, want 9", d)
			}

			// The callee hangs up: the caller sees the BYE.
			if err := cb.Hangup(ctxT(t, waitLong)); err != nil {
				t.Fatalf("B Hangup: %v", err)
			}
			waitDone(t, ca, "A")
			if ca.ByeReason() != "remote BYE" || cb.ByeReason() != "local BYE" {
				t.Errorf("bye reasons A=%q B=%q", ca.ByeReason(), cb.ByeReason())
			}
			if err := ca.SendTone(440, 20*time.Millisecond); !errors.Is(err, ErrCallEnded) {
				t.Errorf("SendTone after BYE = %v, want ErrCallEnded", err)
			}
			if err := ca.Hangup(ctxT(t, time.Second)); err != nil {
				t.Errorf("Hangup of an ended call = %v", err)
			}
		})
	}
}

func TestCallerHangsUp(t *testing.T) {
	a := newPhone(t, Config{})
	b, incoming := answering(t, Config{})
	ca, err := a.Dial(ctxT(t, waitLong), b.URI("1001"), "1380000")
	if err != nil {
		t.Fatal(err)
	}
	cb := answered(t, incoming)
	if err := ca.Hangup(ctxT(t, waitLong)); err != nil {
		t.Fatalf("Hangup: %v", err)
	}
	waitDone(t, cb, "B")
	if ca.ByeReason() != "local BYE" || cb.ByeReason() != "remote BYE" {
		t.Errorf("bye reasons A=%q B=%q", ca.ByeReason(), cb.ByeReason())
	}
}

func TestNegotiation(t *testing.T) {
	for _, tc := range []struct {
		name          string
		offer, accept []uint8
		noDTMF        bool
		want          uint8
		wantCode      int
	}{
		{name: "default PCMA", want: PCMA},
		{name: "offer PCMU first", offer: []uint8{PCMU, PCMA}, want: PCMU},
		{name: "offer PCMU only", offer: []uint8{PCMU}, want: PCMU},
		{name: "callee PCMU only", accept: []uint8{PCMU}, want: PCMU},
		{name: "callee PCMA only", offer: []uint8{PCMU, PCMA}, accept: []uint8{PCMA}, want: PCMA},
		{name: "no common codec", offer: []uint8{PCMA}, accept: []uint8{PCMU}, wantCode: 488},
		{name: "no DTMF offered", noDTMF: true, want: PCMA},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newPhone(t, Config{Codecs: tc.offer, NoDTMF: tc.noDTMF})
			b, _ := answering(t, Config{Codecs: tc.accept})
			c, err := a.Dial(ctxT(t, waitLong), b.URI("1001"), "1380000")
			if tc.wantCode != 0 {
				var se *StatusError
				if !errors.As(err, &se) || se.Code != tc.wantCode {
					t.Fatalf("Dial err = %v, want status %d", err, tc.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			if c.Codec() != tc.want {
				t.Errorf("codec %d, want %d", c.Codec(), tc.want)
			}
			if _, ok := c.DTMFPayloadType(); ok == tc.noDTMF {
				t.Errorf("telephone-event negotiated = %v, want %v", ok, !tc.noDTMF)
			}
			if tc.noDTMF {
				if err := c.SendDTMF("1", 40*time.Millisecond); !errors.Is(err, ErrNoDTMF) {
					t.Errorf("SendDTMF = %v, want ErrNoDTMF", err)
				}
			}
			if err := c.Hangup(ctxT(t, waitLong)); err != nil {
				t.Errorf("Hangup: %v", err)
			}
		})
	}
}

func TestDTMFPayloadTypeFollowsOffer(t *testing.T) {
	a := newPhone(t, Config{DTMFPayloadType: 96})
	b, incoming := answering(t, Config{})
	ca, err := a.Dial(ctxT(t, waitLong), b.URI("1001"), "1380000")
	if err != nil {
		t.Fatal(err)
	}
	cb := answered(t, incoming)
	if pt, _ := cb.DTMFPayloadType(); pt != 96 {
		t.Errorf("B telephone-event PT %d, want 96", pt)
	}
	if err := cb.SendDTMF("9*", 60*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if d := recv(t, ca.Digits(), "digit"); d != '9' {
		t.Errorf("digit %q", d)
	}
	if d := recv(t, ca.Digits(), "digit"); d != '*' {
		t.Errorf("digit %q", d)
	}
}

func TestReject(t *testing.T) {
	a := newPhone(t, Config{})
	b := newPhone(t, Config{OnInvite: func(*Call) bool { return false }})
	_, err := a.Dial(ctxT(t, waitLong), b.URI("1001"), "1380000")
	var se *StatusError
	if !errors.As(err, &se) || se.Code != 486 {
		t.Fatalf("Dial err = %v, want 486", err)
	}
	none := newPhone(t, Config{}) // no OnInvite
	if _, err := a.Dial(ctxT(t, waitLong), none.URI("1001"), "1380000"); !errors.As(err, &se) || se.Code != 480 {
		t.Fatalf("Dial err = %v, want 480", err)
	}
}

func TestCancelWhileRinging(t *testing.T) {
	a := newPhone(t, Config{})
	ringing := make(chan *Call, 1)
	b := newPhone(t, Config{OnInvite: func(c *Call) bool {
		ringing <- c
		<-c.Done() // never answer
		return false
	}})
	ca, err := a.DialAsync(ctxT(t, waitLong), b.URI("1001"), "1380000")
	if err != nil {
		t.Fatal(err)
	}
	recv(t, ca.Ringing(), "180")
	cb := recv(t, ringing, "incoming call")
	if err := ca.Cancel(ctxT(t, waitLong)); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	if !errors.Is(ca.Err(), ErrCanceled) {
		t.Errorf("Err = %v, want ErrCanceled", ca.Err())
	}
	waitDone(t, ca, "A")
	waitDone(t, cb, "B")
	if cb.ByeReason() != "cancelled by caller" {
		t.Errorf("B reason %q", cb.ByeReason())
	}
}

func TestDialContextCancel(t *testing.T) {
	a := newPhone(t, Config{})
	b := newPhone(t, Config{OnInvite: func(c *Call) bool { <-c.Done(); return false }})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := a.Dial(ctx, b.URI("1001"), "1380000")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial err = %v, want deadline exceeded", err)
	}
}

func TestCloseEndsCalls(t *testing.T) {
	a := newPhone(t, Config{})
	b, incoming := answering(t, Config{})
	ca, err := a.Dial(ctxT(t, waitLong), b.URI("1001"), "1380000")
	if err != nil {
		t.Fatal(err)
	}
	cb := answered(t, incoming)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	waitDone(t, ca, "A")
	waitDone(t, cb, "B")
	if cb.ByeReason() != "remote BYE" {
		t.Errorf("B reason %q", cb.ByeReason())
	}
	if _, err := a.Dial(ctxT(t, time.Second), b.URI("1"), "2"); !errors.Is(err, ErrClosed) {
		t.Errorf("Dial on closed phone = %v", err)
	}
}

func TestSilenceOff(t *testing.T) {
	a := newPhone(t, Config{SendSilence: Bool(false)})
	b, incoming := answering(t, Config{SendSilence: Bool(false)})
	ca, err := a.Dial(ctxT(t, waitLong), b.URI("1001"), "1380000")
	if err != nil {
		t.Fatal(err)
	}
	cb := answered(t, incoming)
	time.Sleep(200 * time.Millisecond)
	if n := cb.Audio().Packets; n != 0 {
		t.Errorf("B received %d packets from a silent phone", n)
	}
	toneErr := make(chan error, 1)
	go func() { toneErr <- ca.SendTone(1000, 400*time.Millisecond) }()
	if err := cb.WaitAudio(ctxT(t, waitLong), -20, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := <-toneErr; err != nil {
		t.Fatal(err)
	}
	waitAudioStats(t, cb, func(st AudioStats) bool { return st.Packets >= 20 })
	time.Sleep(100 * time.Millisecond) // nothing more may come
	if st := cb.Audio(); st.AudioPackets != 20 || st.Packets != 20 {
		t.Errorf("B got %d packets (%d audio), want exactly the 20 tone frames", st.Packets, st.AudioPackets)
	}
}

func TestConfigValidation(t *testing.T) {
	for _, cfg := range []Config{
		{Codecs: []uint8{9}},
		{Transport: "sctp"},
		{DTMFPayloadType: 12},
		{SIPPort: 70000},
	} {
		if _, err := New(cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("New(%+v) = %v, want ErrConfig", cfg, err)
		}
	}
}

func TestURI(t *testing.T) {
	p := newPhone(t, Config{Transport: "tcp"})
	want := fmt.Sprintf("sip:1001@127.0.0.1:%d;transport=tcp", p.Addr().Port())
	if got := p.URI("1001"); got != want || !strings.HasPrefix(p.Addr().String(), "127.0.0.1:") {
		t.Errorf("URI %q, want %q", got, want)
	}
}
