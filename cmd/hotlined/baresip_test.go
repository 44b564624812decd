package main

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-audio/audio"
	"github.com/go-audio/wav"

	"github.com/hotline12345/hotline/loadtest/phone"
)

// needBaresip skips without baresip, except under CI where it is required.
func needBaresip(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("baresip"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("baresip is required under CI (Debian package baresip-core)")
		}
		t.Skip("baresip not installed (Debian package baresip-core); skipping the real-softphone test")
	}
}

// writeToneWAV writes an 8 kHz mono 16-bit WAV of a sine at freq.
func writeToneWAV(t *testing.T, path string, freq float64, d time.Duration) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := int(d.Seconds() * 8000)
	buf := &audio.IntBuffer{Format: &audio.Format{NumChannels: 1, SampleRate: 8000}, SourceBitDepth: 16, Data: make([]int, n)}
	for i := range n {
		buf.Data[i] = int(12000 * math.Sin(2*math.Pi*freq*float64(i)/8000))
	}
	enc := wav.NewEncoder(f, 8000, 16, 1, 1)
	if err := enc.Write(buf); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
}

// toneRatio is the share of the signal's energy at freq (Goertzel over the whole file).
func toneRatio(samples []int, rate int, freq float64) float64 {
	if len(samples) == 0 {
		return 0
	}
	k := 2 * math.Cos(2*math.Pi*freq/float64(rate))
	var s1, s2, energy float64
	for _, v := range samples {
		x := float64(v)
		s0 := x + k*s1 - s2
		s2, s1 = s1, s0
		energy += x * x
	}
	power := s1*s1 + s2*s2 - k*s1*s2
	if energy == 0 {
		return 0
	}
	return 2 * power / (float64(len(samples)) * energy)
}

func freeUDPPort(t *testing.T) int {
	t.Helper()
	// baresip binds UDP and TCP on its sip_listen port: find one free for both.
	for range 50 {
		u, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		port := u.LocalAddr().(*net.UDPAddr).Port
		tc, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		u.Close()
		if err == nil {
			tc.Close()
			return port
		}
	}
	t.Fatal("no port free for both UDP and TCP")
	return 0
}

// baresipAgent is a running baresip registered as agent 1001, playing a 600 Hz tone and
// dumping what it decodes into dir.
type baresipAgent struct {
	dir string
	cmd *exec.Cmd
	out *captureWriter
}

// captureWriter logs a process's output in the test and keeps it for assertions.
type captureWriter struct {
	w   testWriter
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *captureWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.buf.Write(p)
	c.mu.Unlock()
	return c.w.Write(p)
}

func (c *captureWriter) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

// startBaresipAgent starts baresip with the extra config lines and account parameters,
// waits for its registration as 1001 and makes the agent ready.
func startBaresipAgent(t *testing.T, ctx context.Context, s *testServer, extraConfig, accountParams string) *baresipAgent {
	t.Helper()
	return startBaresipAgentAt(t, ctx, s, s.sipAddr(), extraConfig, accountParams)
}

// startBaresipAgentAt is startBaresipAgent registering at registrar, the host:port and URI
// parameters of its account line (127.0.0.1:5061;transport=tls).
func startBaresipAgentAt(t *testing.T, ctx context.Context, s *testServer, registrar, extraConfig, accountParams string) *baresipAgent {
	t.Helper()
	dir := t.TempDir()
	writeToneWAV(t, filepath.Join(dir, "tone600.wav"), 600, 30*time.Second)
	port := freeUDPPort(t)
	config := fmt.Sprintf(`module_path /usr/lib/baresip/modules
module g711.so
module aufile.so
module sndfile.so
%smodule account.so
sip_listen 127.0.0.1:%d
audio_player aufile,%s
audio_source aufile,%s
snd_path %s
`, extraConfig, port, filepath.Join(dir, "play.wav"), filepath.Join(dir, "tone600.wav"), dir)
	accounts := fmt.Sprintf("<sip:1001@%s>;auth_pass=agent1001;regint=60;answermode=auto;audio_codecs=PCMA,PCMU%s\n", registrar, accountParams)
	bs, out := runBaresip(t, ctx, s, dir, config, accounts, "1001")
	post(t, "http://"+s.httpAddr()+"/api/v1/agents/1001/ready", http.StatusOK)
	return &baresipAgent{dir: dir, cmd: bs, out: out}
}

// runBaresip writes baresip's config and accounts into dir, starts it (killed at cleanup)
// and waits until the server has user's registration.
func runBaresip(t *testing.T, ctx context.Context, s *testServer, dir, config, accounts, user string) (*exec.Cmd, *captureWriter) {
	t.Helper()
	for name, body := range map[string]string{"config": config, "accounts": accounts} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	bs := exec.CommandContext(ctx, "baresip", "-f", dir)
	out := &captureWriter{w: newTestWriter(t)}
	bs.Stdout, bs.Stderr = out, out
	if err := bs.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bs.Process.Kill(); bs.Wait() })
	deadline := time.Now().Add(15 * time.Second)
	for len(s.agentBindings(user)) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("baresip did not register as %s", user)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return bs, out
}

// heard stops baresip and returns the shares of 1000 Hz and 600 Hz in the audio it
// decoded (its sndfile module's dump).
func (b *baresipAgent) heard(t *testing.T) (at1000, at600 float64) {
	t.Helper()
	b.cmd.Process.Signal(os.Interrupt)
	var dumps []string
	deadline := time.Now().Add(5 * time.Second)
	for {
		dumps, _ = filepath.Glob(filepath.Join(b.dir, "dump-*-dec.wav"))
		if len(dumps) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(dumps) == 0 {
		t.Fatal("baresip wrote no decoded-audio dump")
	}
	// The dump is complete once baresip has exited (or the file stops growing).
	done := make(chan struct{})
	go func() { b.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	f, err := os.Open(dumps[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf, err := wav.NewDecoder(f).FullPCMBuffer()
	if err != nil {
		t.Fatalf("read %s: %v", dumps[0], err)
	}
	rate := buf.Format.SampleRate
	at1000, at600 = toneRatio(buf.Data, rate, 1000), toneRatio(buf.Data, rate, 600)
	t.Logf("baresip heard: %d samples at %d Hz, 1000 Hz share %.3f, 600 Hz share %.3f", len(buf.Data), rate, at1000, at600)
	return at1000, at600
}

// talk puts a citizen through to the baresip agent, waits until the citizen hears the
// agent's 600 Hz tone, sends 1000 Hz for 2 s and hangs up.
func (b *baresipAgent) talk(t *testing.T, ctx context.Context, s *testServer) {
	t.Helper()
	citizen := citizenToConsult(t, s, phone.Config{})
	waitAgentState(t, s, "1001", "on_call")
	waitTone(t, citizen, 600, "citizen (baresip's tone)")
	if err := citizen.SendTone(1000, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := citizen.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
}

// heardCitizen checks, in what baresip decoded (its sndfile module's dump), the
// citizen's 1000 Hz tone.
func (b *baresipAgent) heardCitizen(t *testing.T) {
	t.Helper()
	if at1000, at600 := b.heard(t); at1000 < 0.2 || at1000 < 5*at600 {
		t.Fatalf("baresip did not hear the citizen's 1000 Hz tone (share %.3f, 600 Hz %.3f)", at1000, at600)
	}
}

// A real softphone as the agent: baresip registers as 1001 with digest auth and answers
// automatically; a citizen presses 1 and is bridged to it; a tone from each side is heard
// on the other; after the hang-up the agent wraps up, then is ready, and the record shows
// the queue, the wait, the agent and the talk time.
func TestBaresipAgent(t *testing.T) {
	needBaresip(t)
	t.Parallel()
	s := startServer(t, acdTestConfig(t))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bs := startBaresipAgent(t, ctx, s, "", "")
	bs.talk(t, ctx, s)
	waitAgentState(t, s, "1001", "wrap_up")
	waitAgentState(t, s, "1001", "ready")

	rec := s.records(t, 1)[0]
	if rec.Queue != "consult" || rec.Agent != "1001" || rec.Disposition != "answered" || rec.Talk < 2*time.Second || rec.Connect.Before(rec.EnqueueTime) {
		t.Fatalf("record %+v: want consult answered by 1001 with ≥2 s of talk", rec)
	}
	bs.heardCitizen(t)
}

// baresip as an SRTP agent (srtp menc, SDES over plain SIP/UDP), bridged to a citizen on
// plain RTP: the server offers a=crypto to agents (rtp.agents_srtp: optional), baresip
// takes it, and each side hears the other's tone, through the decrypting and encrypting
// bridge (baresip would hear nothing of packets it cannot decrypt, and the citizen
// nothing of packets the server could not).
func TestBaresipAgentSRTP(t *testing.T) {
	testBaresipAgentSRTP(t, false)
}

// The same with the signalling over SIP TLS as well (issue 11's "baresip registers over TLS
// with SRTP and talks to a citizen on plain RTP"): SDES keys travel only inside TLS.
func TestBaresipAgentTLSAndSRTP(t *testing.T) {
	testBaresipAgentSRTP(t, true)
}

func testBaresipAgentSRTP(t *testing.T, overTLS bool) {
	needBaresip(t)
	t.Parallel()
	s := startServer(t, strings.Replace(acdTestConfig(t), "\nrtp:\n", "\nrtp:\n  agents_srtp: optional\n", 1))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	registrar := s.sipAddr()
	if overTLS {
		registrar = s.sip.TLSAddr().String() + ";transport=tls"
	}
	bs := startBaresipAgentAt(t, ctx, s, registrar, "module srtp.so\n", ";mediaenc=srtp")
	if b := s.registrar.Bindings("1001")[0]; overTLS != strings.EqualFold(b.Transport, "TLS") {
		t.Fatalf("binding %+v: over TLS %v", b, overTLS)
	}
	bs.talk(t, ctx, s)
	if !strings.Contains(bs.out.String(), "SRTP is Enabled") {
		t.Fatal("baresip did not report SRTP enabled for the call")
	}
	bs.heardCitizen(t)
}
