package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	sipgosip "github.com/emiago/sipgo/sip"

	"github.com/hotline12345/hotline/loadtest/phone"
	"github.com/hotline12345/hotline/sip"
)

// register registers user from p and returns the final status (200 as 0 error).
func registerStatus(t *testing.T, p *phone.Phone, registrar, user, password string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := p.Register(ctx, registrar, user, password, time.Minute)
	var se *phone.StatusError
	switch {
	case err == nil:
		return 200
	case errors.As(err, &se):
		return se.Code
	}
	t.Fatalf("REGISTER %s: %v", user, err)
	return 0
}

// One agent's misconfigured softphone behind the centre's NAT locks out that agent at that
// address, not the other agents behind it; /metrics shows the lockout.
func TestRegisterLockoutPerUser(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig(t, "    failures: 10 ", "    failures: 3 "))
	bad := newPhone(t, phone.Config{})
	for i := range 3 {
		if code := registerStatus(t, bad, s.sipAddr(), "1001", "wrong"); code != 403 {
			t.Fatalf("wrong password %d: %d, want 403", i+1, code)
		}
	}
	if code := registerStatus(t, bad, s.sipAddr(), "1001", "agent1001"); code != 403 {
		t.Fatalf("1001 locked out, right password: %d, want 403", code)
	}
	other := newPhone(t, phone.Config{}) // same address, 127.0.0.1
	if code := registerStatus(t, other, s.sipAddr(), "1002", "agent1002"); code != 200 {
		t.Fatalf("1002 from the same address: %d, want 200", code)
	}
	body := httpGet(t, "http://"+s.httpAddr()+"/metrics", 200)
	for _, want := range []string{
		`hotline_registrar_lockouts_total{scope="user"} 1`,
		`hotline_registrar_lockouts_total{scope="source"} 0`,
		`hotline_registrar_locked{scope="user"} 1`,
		`hotline_registrar_auth_failures_total{reason="locked"} 1`,
		`hotline_registrar_auth_failures_total{reason="password"} 3`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// With sip.auth_algorithms [SHA-256, MD5] a REGISTER is challenged twice, SHA-256 first
// (RFC 8760), and a phone answering with SHA-256 registers; with MD5 alone a SHA-256
// answer is challenged again.
func TestRegisterSHA256(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig(t, "auth_algorithms: [MD5]", "auth_algorithms: [SHA-256, MD5]"))
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("sha-phone"), sipgo.WithUserAgentHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ua.Close() })
	cli, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := sipgosip.ParseAddr(s.sipAddr())
	req := sipgosip.NewRequest(sipgosip.REGISTER, sipgosip.Uri{Scheme: "sip", Host: host, Port: port})
	aor := sipgosip.Uri{Scheme: "sip", User: "1003", Host: host, Port: port}
	from := &sipgosip.FromHeader{Address: aor, Params: sipgosip.NewParams()}
	from.Params.Add("tag", sipgosip.GenerateTagN(16))
	req.AppendHeader(from)
	req.AppendHeader(&sipgosip.ToHeader{Address: aor, Params: sipgosip.NewParams()})
	req.AppendHeader(&sipgosip.ContactHeader{Address: sipgosip.Uri{Scheme: "sip", User: "1003", Host: "127.0.0.1", Port: 5999}})
	req.AppendHeader(sipgosip.NewHeader("Expires", "60"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := cli.Do(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	chals := res.GetHeaders("WWW-Authenticate")
	if res.StatusCode != 401 || len(chals) != 2 ||
		!strings.Contains(chals[0].Value(), "algorithm=SHA-256") || !strings.Contains(chals[1].Value(), "algorithm=MD5") {
		t.Fatalf("challenge %d with %v, want 401 with SHA-256 then MD5", res.StatusCode, chals)
	}
	res, err = cli.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: "1003", Password: "agent1003"})
	if err != nil {
		t.Fatal(err)
	}
	if a := req.GetHeader("Authorization"); res.StatusCode != 200 || a == nil || !strings.Contains(a.Value(), "algorithm=SHA-256") {
		t.Fatalf("REGISTER with SHA-256: %d (Authorization %v), want 200", res.StatusCode, a)
	}
	if bs := s.registrar.Bindings("1003"); len(bs) != 1 {
		t.Fatalf("bindings of 1003: %+v", bs)
	}
}

// runSIPpFlood sends n INVITEs at rate per second from ip to number, once each, without
// waiting for answers.
func runSIPpFlood(t *testing.T, target, ip, number string, n, rate int) {
	t.Helper()
	res := runSIPp(t, target, "uac_flood.xml", "-i", ip, "-s", number, "-m", strconv.Itoa(n),
		"-r", strconv.Itoa(rate), "-l", strconv.Itoa(n))
	if !res.ok {
		t.Fatalf("SIPp flood failed:\n%s", res.output)
	}
}

// A 5,000-INVITE flood from outside the trunks, and 500 misdialled INVITEs from the trunk,
// write no record: they are counted (forbidden, not_found, shed); a citizen's call after
// them is answered and recorded.
func TestSIPpFloodWritesNoRecords(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig(t, "sources: [127.0.0.0/8]", "sources: [127.0.0.1/32]"))
	runSIPpFlood(t, s.sipAddr(), "127.0.0.1", "99999", 500, 1000)
	runSIPpFlood(t, s.sipAddr(), "127.0.0.2", "12345", 5000, 1000)
	deadline := time.Now().Add(20 * time.Second)
	for {
		st := s.sip.Stats()
		if st.NotFound == 500 && st.Forbidden+st.ShedInvites == 5000 {
			if st.ShedInvites < 4000 || st.Invites != 0 || st.Rejected != 0 {
				t.Fatalf("stats %+v: want most of the flood shed, no call", st)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v: want 500 not found and 5000 forbidden or shed", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if res := runSIPp(t, s.sipAddr(), "uac_rfc2833.xml"); !res.ok {
		t.Fatalf("a citizen's call after the flood failed:\n%s", res.output)
	}
	recs := s.records(t, 1)
	if len(recs) != 1 || recs[0].IVRPath != "main>2>complaint" {
		t.Fatalf("records after the flood: %d, want only the citizen's call: %+v", len(recs), recs)
	}
	body := httpGet(t, "http://"+s.httpAddr()+"/metrics", 200)
	for _, want := range []string{
		`hotline_sip_invites_total{outcome="not_found"} 500`,
		`hotline_sip_invites_total{outcome="accepted"} 1`,
		`hotline_cdr_records_written_total 1`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if !strings.Contains(body, `hotline_sip_shed_total{method="INVITE",reason="rate"} `) {
		t.Error("/metrics lacks the shed INVITEs")
	}
}

// Fifty TCP connections that never send a byte are closed after sip.tcp.idle_timeout; the
// per-source cap refuses connections beyond it; an agent registered over TCP keeps its
// connection (its binding is live) and is rung over it afterwards.
func TestTCPIdleClosedAgentKept(t *testing.T) {
	t.Parallel()
	const idle = time.Second
	s := startServer(t, testConfig(t, "    idle_timeout: 5m ", "    idle_timeout: 1s ", "    max_per_source: 500 ", "    max_per_source: 51 ",
		"    ring_timeout: 15s ", "    ring_timeout: 5s "))
	ag := newAgent(t, s, "1001", phone.Config{Transport: "tcp"}, answerAlways)
	addr := net.TCPAddrFromAddrPort(s.sip.Addr())
	idleConns := make([]*net.TCPConn, 0, 50)
	for range 50 {
		c, err := net.DialTCP("tcp", nil, addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		idleConns = append(idleConns, c)
	}
	waitSIPStats(t, s, "51 connections", func(st sip.Stats) bool { return st.TCPOpen == 51 })
	extra, err := net.DialTCP("tcp", nil, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	_ = extra.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := extra.Read(make([]byte, 16)); err == nil || isTimeout(err) {
		t.Fatalf("the 52nd connection from one address was not refused: %v", err)
	}
	// The idle ones are closed by the server (the read sees the end), within a few idle times.
	for i, c := range idleConns {
		_ = c.SetReadDeadline(time.Now().Add(10 * idle))
		if _, err := c.Read(make([]byte, 16)); err == nil || isTimeout(err) {
			t.Fatalf("idle connection %d still open after %v: %v", i, 10*idle, err)
		}
	}
	waitSIPStats(t, s, "50 closed for idleness, the agent's kept", func(st sip.Stats) bool {
		return st.TCPIdle == 50 && st.TCPOpen == 1 && st.TCPRefused == 1
	})
	// The agent, silent for more than the idle time, is still reachable over its connection.
	post(t, "http://"+s.httpAddr()+"/api/v1/agents/1001/ready", http.StatusOK)
	waitAgentState(t, s, "1001", "ready")
	citizen := citizenToConsult(t, s, phone.Config{})
	defer citizen.Hangup(context.Background())
	select {
	case c := <-ag.calls:
		if c == nil {
			t.Fatal("no call")
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the TCP agent was not rung after the idle time")
	}
	waitAgentState(t, s, "1001", "on_call")
	body := httpGet(t, "http://"+s.httpAddr()+"/metrics", 200)
	for _, want := range []string{
		`hotline_sip_tcp_connections_closed_total{reason="idle"} 50`,
		`hotline_sip_tcp_connections_closed_total{reason="per_source_cap"} 1`,
		`hotline_sip_tcp_connections 1`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// waitSIPStats polls the SIP layer's stats until ok.
func waitSIPStats(t *testing.T, s *testServer, what string, ok func(sip.Stats) bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !ok(s.sip.Stats()) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: stats %+v", what, s.sip.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// needLinphonec skips without linphonec, except under CI where it is required.
func needLinphonec(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("linphonec"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("linphonec is required under CI (Debian package linphone-cli)")
		}
		t.Skip("linphonec not installed (Debian package linphone-cli)")
	}
}

// A real softphone answers a SHA-256 challenge: with sip.auth_algorithms [SHA-256] alone,
// linphonec (belle-sip) registers as 1005. (baresip 1.0 cannot: see TestRegistrarBaresip.)
func TestLinphoneRegistersWithSHA256(t *testing.T) {
	needLinphonec(t)
	t.Parallel()
	s := startServer(t, testConfig(t, "auth_algorithms: [MD5]", "auth_algorithms: [SHA-256]"))
	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, ".local", "share", "linphone"), 0o700); err != nil {
		t.Fatal(err)
	}
	rc := fmt.Sprintf(`[sip]
sip_port=%d
sip_tcp_port=0
default_proxy=0
[auth_info_0]
username=1005
userid=1005
passwd=agent1005
realm=hotline
[proxy_0]
reg_proxy=sip:%[2]s
reg_identity=sip:1005@%[2]s
reg_expires=60
reg_sendregister=1
`, freeUDPPort(t), s.sipAddr())
	rcPath := filepath.Join(home, "linphonerc")
	if err := os.WriteFile(rcPath, []byte(rc), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	lp := exec.CommandContext(ctx, "linphonec", "-c", rcPath, "-d", "0")
	lp.Env = append(os.Environ(), "HOME="+home)
	stdin, err := lp.StdinPipe() // linphonec quits at the end of its input
	if err != nil {
		t.Fatal(err)
	}
	out := newTestWriter(t)
	lp.Stdout, lp.Stderr = out, out
	if err := lp.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); lp.Process.Kill(); lp.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for len(s.registrar.Bindings("1005")) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("linphonec did not register with SHA-256; registrar %+v", s.registrar.Stats())
		}
		time.Sleep(50 * time.Millisecond)
	}
	b := s.registrar.Bindings("1005")[0]
	if !strings.Contains(b.UserAgent, "Linphone") {
		t.Fatalf("binding %+v: not linphonec's", b)
	}
	if st := s.registrar.Stats(); st.AuthFailures != 0 {
		t.Fatalf("registrar %+v: failures", st)
	}
	fmt.Fprintln(stdin, "quit")
}
