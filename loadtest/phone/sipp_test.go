package phone

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// sippPath returns the sipp binary, skipping the test when it is missing
// (failing instead when CI=true).
func sippPath(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("sipp")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("sipp is required in CI: %v", err)
		}
		t.Skipf("sipp not on PATH (%v); skipping SIPp interop test", err)
	}
	return path
}

// freeUDPPort returns a UDP port that was free a moment ago (never 5060).
func freeUDPPort(t *testing.T) int {
	t.Helper()
	for {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		port := c.LocalAddr().(*net.UDPAddr).Port
		c.Close()
		if port != 5060 {
			return port
		}
	}
}

type sippRun struct {
	done chan struct{}
	err  error
	out  bytes.Buffer
}

// startSIPp runs sipp in the foreground with -m 1 and a timeout.
func startSIPp(t *testing.T, args ...string) *sippRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	args = append([]string{"-i", "127.0.0.1", "-m", "1", "-nostdin", "-timeout", "15s", "-timeout_error"}, args...)
	cmd := exec.CommandContext(ctx, sippPath(t), args...)
	cmd.Dir = t.TempDir()
	r := &sippRun{done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = &r.out, &r.out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start sipp: %v", err)
	}
	go func() {
		defer cancel()
		r.err = cmd.Wait()
		close(r.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

func (r *sippRun) wait(t *testing.T) {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(20 * time.Second):
		t.Fatal("sipp did not exit")
	}
	if r.err != nil {
		t.Fatalf("sipp failed: %v\n%s", r.err, r.out.String())
	}
}

// waitUDPBound waits until something listens on 127.0.0.1:port (sipp start-up).
func waitUDPBound(t *testing.T, port int) {
	t.Helper()
	for deadline := time.Now().Add(waitLong); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		if err != nil {
			return // bound by sipp
		}
		c.Close()
	}
	t.Fatalf("sipp did not bind port %d", port)
}

// TestSIPpUAS: the phone calls SIPp's built-in UAS, which answers PCMU and
// echoes our RTP; the phone hears its own tone and hangs up.
func TestSIPpUAS(t *testing.T) {
	sippPath(t)
	port, mport := freeUDPPort(t), freeUDPPort(t)
	run := startSIPp(t, "-sn", "uas", "-p", strconv.Itoa(port), "-mi", "127.0.0.1", "-mp", strconv.Itoa(mport), "-rtp_echo")
	waitUDPBound(t, port)

	a := newPhone(t, Config{})
	c, err := a.Dial(ctxT(t, waitLong), "sip:service@127.0.0.1:"+strconv.Itoa(port), "13800138000")
	if err != nil {
		t.Fatalf("Dial SIPp: %v\n%s", err, run.out.String())
	}
	if c.Codec() != PCMU {
		t.Errorf("codec %d, want PCMU from SIPp's answer", c.Codec())
	}
	if c.RemoteRTP().Port() != uint16(mport) {
		t.Errorf("remote RTP %v, want port %d", c.RemoteRTP(), mport)
	}
	toneErr := make(chan error, 1)
	go func() { toneErr <- c.SendTone(1000, time.Second) }()
	if err := c.WaitAudio(ctxT(t, waitLong), -20, 300*time.Millisecond); err != nil {
		t.Errorf("echoed audio: %v (stats %+v)", err, c.Audio())
	} else if p := c.DetectTone(1000); p < 0.5 {
		t.Errorf("DetectTone(1000) on echo = %.3f", p)
	}
	if err := <-toneErr; err != nil {
		t.Fatal(err)
	}
	if err := c.Hangup(ctxT(t, waitLong)); err != nil {
		t.Fatalf("Hangup: %v", err)
	}
	run.wait(t)
}

// TestSIPpUAC: SIPp's built-in UAC calls the phone in answer mode, and hangs up.
func TestSIPpUAC(t *testing.T) {
	sippPath(t)
	b, incoming := answering(t, Config{})
	port := freeUDPPort(t)
	run := startSIPp(t, "-sn", "uac", "-p", strconv.Itoa(port), "-mi", "127.0.0.1", "-mp", strconv.Itoa(freeUDPPort(t)), "-s", "1001", b.Addr().String())
	cb := answered(t, incoming)
	if cb.Codec() != PCMU {
		t.Errorf("codec %d, want PCMU (SIPp offers 0)", cb.Codec())
	}
	waitDone(t, cb, "SIPp call")
	if cb.ByeReason() != "remote BYE" {
		t.Errorf("reason %q", cb.ByeReason())
	}
	run.wait(t)
}
