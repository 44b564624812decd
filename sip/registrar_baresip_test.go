package sip

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// regFreeUDPPort returns a UDP port on 127.0.0.1 that was free a moment ago.
func regFreeUDPPort(t *testing.T) int {
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

// regBaresip runs baresip registering account as 1001 against env, until the registrar
// holds a binding for 1001 (or timeout); it returns baresip's output.
func regBaresip(t *testing.T, env *regEnv, account string) (string, bool) {
	t.Helper()
	bin, err := exec.LookPath("baresip")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("baresip not installed (required in CI)")
		}
		t.Skip("baresip not installed; apt-get install baresip-core to run this test")
	}
	dir := t.TempDir()
	port := regFreeUDPPort(t)
	config := strings.Join([]string{
		"poll_method epoll",
		fmt.Sprintf("sip_listen 127.0.0.1:%d", port),
		"sip_transports udp",
		"module_path /usr/lib/baresip/modules",
		"module g711.so",
		"module_app account.so",
		"audio_player aufile,/dev/null",
		"audio_source aufile,/dev/null",
		"audio_alert aufile,/dev/null",
		"",
	}, "\n")
	if err := os.WriteFile(filepath.Join(dir, "config"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "accounts"), []byte(account+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out regSyncBuffer
	cmd := exec.CommandContext(ctx, bin, "-f", dir, "-t", "15")
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ok := false
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if len(env.r.Bindings("1001")) > 0 {
			ok = true
			break
		}
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	return out.String(), ok
}

type regSyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *regSyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *regSyncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestRegistrarBaresip registers a real softphone, baresip, with digest auth.
func TestRegistrarBaresip(t *testing.T) {
	t.Parallel()
	// Default config: MD5 alone. Offered SHA-256 as well (RFC 8760), baresip 1.0 gives
	// up with "Register: Function not implemented" whatever the order.
	env := newRegEnv(t, nil)
	account := fmt.Sprintf("<sip:1001@127.0.0.1:%d;transport=udp>;auth_pass=agent1001;regint=60", env.addr.Port())
	out, ok := regBaresip(t, env, account)
	if !ok {
		t.Fatalf("baresip did not register; stats %+v; output:\n%s", env.r.Stats(), out)
	}
	b := env.r.Bindings("1001")[0]
	t.Logf("baresip binding: %s from %s, %s, expires in %s, %q", b.Contact.String(), b.Source, b.Transport,
		b.Expires.Sub(env.clock.Now()), b.UserAgent)
	if !strings.Contains(b.UserAgent, "baresip") || !b.Expires.Equal(regT0.Add(60*time.Second)) {
		t.Errorf("binding = %+v", b)
	}
	if s := env.r.Stats(); s.Registrations < 1 || s.AuthFailures != 0 {
		t.Errorf("stats = %+v", s)
	}
}
