package main

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
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

// A real softphone as the agent: baresip registers as 1001 with digest auth and answers
// automatically; a citizen presses 1 and is bridged to it; a tone from each side is heard
// on the other; after the hang-up the agent wraps up, then is ready, and the record shows
// the queue, the wait, the agent and the talk time.
func TestBaresipAgent(t *testing.T) {
	needBaresip(t)
	t.Parallel()
	s := startServer(t, acdTestConfig(t))
	bs, dir := startBaresipAgent(t, s, "1001")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	post(t, "http://"+s.httpAddr()+"/api/v1/agents/1001/ready", http.StatusOK)
	citizen := citizenToConsult(t, s, phone.Config{})
	waitAgentState(t, s, "1001", "on_call")
	waitTone(t, citizen, 600, "citizen (baresip's tone)")
	if err := citizen.SendTone(1000, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := citizen.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	waitAgentState(t, s, "1001", "wrap_up")
	waitAgentState(t, s, "1001", "ready")

	rec := s.records(t, 1)[0]
	if rec.Queue != "consult" || rec.Agent != "1001" || rec.Disposition != "answered" || rec.Talk < 2*time.Second || rec.Connect.Before(rec.EnqueueTime) {
		t.Fatalf("record %+v: want consult answered by 1001 with ≥2 s of talk", rec)
	}

	// baresip's sndfile module dumps what it decoded: the citizen's 1000 Hz must be there.
	bs.Process.Signal(os.Interrupt)
	time.Sleep(300 * time.Millisecond)
	dumps, _ := filepath.Glob(filepath.Join(dir, "dump-*-dec.wav"))
	if len(dumps) == 0 {
		t.Fatal("baresip wrote no decoded-audio dump")
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
	at1000, at600 := toneRatio(buf.Data, rate, 1000), toneRatio(buf.Data, rate, 600)
	t.Logf("baresip heard: %d samples at %d Hz, 1000 Hz share %.3f, 600 Hz share %.3f", len(buf.Data), rate, at1000, at600)
	if at1000 < 0.2 || at1000 < 5*at600 {
		t.Fatalf("baresip did not hear the citizen's 1000 Hz tone (share %.3f, 600 Hz %.3f)", at1000, at600)
	}
}

// startBaresipAgent runs baresip registered as agent id (password agent<id>), answering
// automatically and sending a 600 Hz tone; its sndfile module dumps what it decoded in
// dir. It is killed when the test ends.
func startBaresipAgent(t *testing.T, s *testServer, id string) (*exec.Cmd, string) {
	t.Helper()
	needBaresip(t)
	dir := t.TempDir()
	writeToneWAV(t, filepath.Join(dir, "tone600.wav"), 600, 30*time.Second)
	port := freeUDPPort(t)
	config := fmt.Sprintf(`module_path /usr/lib/baresip/modules
module g711.so
module aufile.so
module sndfile.so
module account.so
sip_listen 127.0.0.1:%d
audio_player aufile,%s
audio_source aufile,%s
snd_path %s
`, port, filepath.Join(dir, "play.wav"), filepath.Join(dir, "tone600.wav"), dir)
	accounts := fmt.Sprintf("<sip:%s@%s>;auth_pass=agent%s;regint=60;answermode=auto;audio_codecs=PCMA,PCMU\n", id, s.sipAddr(), id)
	if err := os.WriteFile(filepath.Join(dir, "config"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "accounts"), []byte(accounts), 0o600); err != nil {
		t.Fatal(err)
	}
	bs := exec.Command("baresip", "-f", dir)
	out := newTestWriter(t)
	bs.Stdout, bs.Stderr = out, out
	if err := bs.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bs.Process.Kill(); bs.Wait() })

	deadline := time.Now().Add(15 * time.Second)
	for len(s.registrar.Bindings(id)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("baresip did not register as " + id)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return bs, dir
}
