package sip

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	sipgosip "github.com/emiago/sipgo/sip"

	testphone "github.com/hotline12345/hotline/loadtest/phone"
)

// outboundServer is a Server that only places calls (no trunks needed for that).
func outboundServer(t *testing.T) *Server {
	t.Helper()
	s, err := NewServer(Config{
		Listen: netip.MustParseAddrPort("127.0.0.1:0"), OnCall: func(*Inbound) {},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return s
}

// agentPhone is a test phone in answer mode; answer decides each incoming call.
func agentPhone(t *testing.T, answer func(*testphone.Call) bool) *testphone.Phone {
	t.Helper()
	p, err := testphone.New(testphone.Config{OnInvite: answer})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func dialOptions(p *testphone.Phone) DialOptions {
	a := p.Addr()
	return DialOptions{
		Target:   sipgosip.Uri{Scheme: "sip", User: "1001", Host: a.Addr().String(), Port: int(a.Port())},
		FromUser: "13800138000", AssertedID: "13800138000",
		Local:  netip.MustParseAddrPort("127.0.0.1:40002"),
		Codecs: []uint8{PayloadPCMU, PayloadPCMA},
	}
}

func TestDialAnsweredThenBye(t *testing.T) {
	t.Parallel()
	s := outboundServer(t)
	calls := make(chan *testphone.Call, 1)
	p := agentPhone(t, func(c *testphone.Call) bool { calls <- c; return true })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	o, err := s.Dial(ctx, dialOptions(p))
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Wait(); err != nil {
		t.Fatalf("dial: %v", err)
	}
	if m := o.Media(); m.PayloadType != PayloadPCMU || !m.Addr.IsValid() {
		t.Fatalf("media %+v: want PCMU (our first choice) with the phone's RTP address", m)
	}
	agent := <-calls
	<-agent.Answered() // the phone takes the call as answered once our ACK arrived
	if agent.From() != "13800138000" {
		t.Fatalf("the agent's phone shows %q, want the caller's number", agent.From())
	}
	// The agent hangs up: our leg ends with side agent.
	if err := agent.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-o.Done():
	case <-time.After(3 * time.Second):
		t.Fatal("agent BYE did not end the leg")
	}
	if side, cause, _ := o.End(); side != SideAgent || cause != "BYE" {
		t.Fatalf("end %s/%s, want agent/BYE", side, cause)
	}
}

func TestDialWeHangUp(t *testing.T) {
	t.Parallel()
	s := outboundServer(t)
	calls := make(chan *testphone.Call, 1)
	p := agentPhone(t, func(c *testphone.Call) bool { calls <- c; return true })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	o, err := s.Dial(ctx, dialOptions(p))
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Wait(); err != nil {
		t.Fatal(err)
	}
	agent := <-calls
	<-agent.Answered()
	if err := o.Hangup(ctx, "done"); err != nil {
		t.Fatalf("BYE: %v", err)
	}
	select {
	case <-agent.Done():
	case <-time.After(3 * time.Second):
		t.Fatal("the agent's phone did not get our BYE")
	}
}

func TestDialRejected(t *testing.T) {
	t.Parallel()
	s := outboundServer(t)
	p := agentPhone(t, func(*testphone.Call) bool { return false }) // 486 Busy Here
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	o, err := s.Dial(ctx, dialOptions(p))
	if err != nil {
		t.Fatal(err)
	}
	var de *DialError
	if err := o.Wait(); !errors.As(err, &de) || de.Code != 486 {
		t.Fatalf("wait: %v, want 486", err)
	}
	if side, _, code := o.End(); side != SideAgent || code != 486 {
		t.Fatalf("end %s %d", side, code)
	}
}

// Cancelling the dial context while the phone rings sends CANCEL; the phone sees it.
func TestDialCancelWhileRinging(t *testing.T) {
	t.Parallel()
	s := outboundServer(t)
	ringing := make(chan *testphone.Call, 1)
	p := agentPhone(t, func(c *testphone.Call) bool {
		ringing <- c
		<-c.Done() // ring until cancelled
		return false
	})
	ctx, cancel := context.WithCancel(context.Background())
	o, err := s.Dial(ctx, dialOptions(p))
	if err != nil {
		t.Fatal(err)
	}
	agent := <-ringing
	<-o.Ringing()
	cancel()
	if err := o.Wait(); !errors.Is(err, ErrDialCanceled) {
		t.Fatalf("wait: %v, want ErrDialCanceled", err)
	}
	select {
	case <-agent.Done():
	case <-time.After(3 * time.Second):
		t.Fatal("the phone did not see the CANCEL")
	}
}

// Nobody answers at the target: the INVITE times out as 408 without hanging.
func TestDialNoResponse(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for Timer B (32 s)")
	}
	t.Parallel()
	s := outboundServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	o, err := s.Dial(ctx, DialOptions{
		Target: sipgosip.Uri{Scheme: "sip", User: "1001", Host: "127.0.0.1", Port: 9}, // discard port: nothing answers
		Local:  netip.MustParseAddrPort("127.0.0.1:40004"),
	})
	if err != nil {
		t.Fatal(err)
	}
	// The ring timeout is the caller's job: here ctx ends after 5 s with no provisional,
	// which must give a cancelled outcome promptly (no CANCEL before a provisional).
	if err := o.Wait(); !errors.Is(err, ErrDialCanceled) {
		t.Fatalf("wait: %v, want ErrDialCanceled", err)
	}
}
