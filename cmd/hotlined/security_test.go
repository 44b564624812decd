package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hotline12345/hotline/auth"
	"github.com/hotline12345/hotline/cdr"
)

// apiDo sends method url with body and the Authorization header authz ("":
// none) through a client that adds nothing, and returns the status and body.
func apiDo(t *testing.T, method, url, authz, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	res, err := anonClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, string(b)
}

func basicAuth(user, pass string) string {
	r, _ := http.NewRequest("GET", "/", nil)
	r.SetBasicAuth(user, pass)
	return r.Header.Get("Authorization")
}

// wantJSONError checks a JSON {"error": ...} body.
func wantJSONError(t *testing.T, what, body string) {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" {
		t.Errorf("%s: body %q is not a JSON error", what, body)
	}
}

// Out of the box: no token configured, so the server generates an admin
// token into DATA_DIR/admin.token (0600), says where (not what) in its log,
// accepts it, refuses requests without it with 401, and reads the same file
// at the next start.
func TestAPIRequiresToken(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	base := "http://" + s.httpAddr()
	path := filepath.Join(s.cfg.DataDir, "admin.token")
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("admin.token mode %04o, want 0600", st.Mode().Perm())
	}
	if !strings.HasPrefix(s.token, "hl_") || len(s.token) < 40 {
		t.Fatalf("admin.token holds %q", s.token)
	}
	for _, p := range []string{"/api/v1/agents", "/api/v1/cdrs", "/api/v1/cdrs?format=csv", "/api/v1/calls", "/api/v1/queues",
		"/api/v1/events", "/api/v1/campaigns", "/api/v1/audit", "/api/v1/reports/summary", "/metrics"} {
		code, h, body := apiDo(t, "GET", base+p, "", "")
		if code != http.StatusUnauthorized || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("GET %s without a token: %d %q, want 401 with WWW-Authenticate: Bearer", p, code, h.Get("WWW-Authenticate"))
		}
		wantJSONError(t, "GET "+p, body)
		if code, _, _ := apiDo(t, "GET", base+p, "Bearer "+s.token, ""); code != http.StatusOK {
			t.Errorf("GET %s with the admin token: %d", p, code)
		}
	}
	if code, _, body := apiDo(t, "POST", base+"/api/v1/agents/1001/login", "", ""); code != http.StatusUnauthorized {
		t.Errorf("POST login without a token: %d %s", code, body)
	}
	if code, _, _ := apiDo(t, "GET", base+"/api/v1/agents", "Bearer "+s.token+"x", ""); code != http.StatusUnauthorized {
		t.Errorf("a wrong token: %d, want 401", code)
	}
	if code, _, _ := apiDo(t, "GET", base+"/api/v1/agents", "Bearer "+auth.HashToken(s.token), ""); code != http.StatusUnauthorized {
		t.Errorf("the token's hash as a token: %d, want 401", code)
	}
	for _, p := range []string{"/healthz", "/wallboard"} { // no data in either
		if code, _, _ := apiDo(t, "GET", base+p, "", ""); code != http.StatusOK {
			t.Errorf("GET %s without a token: %d, want 200", p, code)
		}
	}

	// The next start on the same data dir keeps the token.
	dataDir, token := s.cfg.DataDir, s.token
	s.shutdownNow()
	s2 := startServer(t, "", func(o *options) { o.DataDir = dataDir })
	if s2.token != token {
		t.Fatal("the second start replaced admin.token")
	}
	if code, _, _ := apiDo(t, "GET", "http://"+s2.httpAddr()+"/api/v1/agents", "Bearer "+token, ""); code != http.StatusOK {
		t.Errorf("the admin token after a restart: %d", code)
	}
	// A token file others may read stops the start, like ssh with a key.
	s2.shutdownNow()
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	o := options{SIPListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0", DataDir: dataDir, RTPPorts: "20000-29998"}
	if a, err := newApp(o, testLogger(t)); err == nil || !strings.Contains(err.Error(), "admin.token") {
		if a != nil {
			a.close()
		}
		t.Errorf("start with a world-readable admin.token: %v", err)
	}
}

// An agent signs in with its SIP id and password: it may change its own
// state but not another agent's, sees only its own calls, and nothing else.
func TestAgentCredentials(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	base := "http://" + s.httpAddr()
	me := basicAuth("1001", "agent1001")
	if code, _, body := apiDo(t, "POST", base+"/api/v1/agents/1002/logout", me, ""); code != http.StatusForbidden {
		t.Errorf("agent 1001 logs out 1002: %d %s, want 403", code, body)
	} else {
		wantJSONError(t, "403", body)
	}
	if code, _, body := apiDo(t, "POST", base+"/api/v1/agents/1001/login", me, ""); code != http.StatusOK {
		t.Errorf("agent 1001 logs itself in: %d %s", code, body)
	}
	if code, _, body := apiDo(t, "POST", base+"/api/v1/agents/1001/logout", me, ""); code != http.StatusOK || !strings.Contains(body, `"logged_out"`) {
		t.Errorf("agent 1001 logs itself out: %d %s", code, body)
	}
	if code, _, body := apiDo(t, "GET", base+"/api/v1/agents/1001", me, ""); code != http.StatusOK || !strings.Contains(body, `"id": "1001"`) {
		t.Errorf("agent 1001 reads itself: %d %s", code, body)
	}
	for _, p := range []string{"/api/v1/agents", "/api/v1/agents/1002", "/api/v1/calls", "/api/v1/queues", "/api/v1/campaigns", "/api/v1/audit"} {
		if code, _, _ := apiDo(t, "GET", base+p, me, ""); code != http.StatusForbidden {
			t.Errorf("agent 1001 GET %s: %d, want 403", p, code)
		}
	}
	if code, _, _ := apiDo(t, "POST", base+"/api/v1/agents/1001/login", basicAuth("1001", "agent1002"), ""); code != http.StatusUnauthorized {
		t.Errorf("a wrong SIP password: %d, want 401", code)
	}
	// Its own calls only, with masked numbers, whatever agent= it asks for.
	t0 := time.Now().Add(-time.Hour)
	if err := s.store.Upsert(context.Background(), []cdr.Record{
		{ID: "c1", Direction: "inbound", Caller: "13800138000", Called: "12345", Start: t0, Agent: "1001"},
		{ID: "c2", Direction: "inbound", Caller: "13900139000", Called: "12345", Start: t0.Add(time.Minute), Agent: "1002"},
	}); err != nil {
		t.Fatal(err)
	}
	code, _, body := apiDo(t, "GET", base+"/api/v1/cdrs?agent=1002", me, "")
	if code != http.StatusOK || !strings.Contains(body, `"c1"`) || strings.Contains(body, `"c2"`) ||
		!strings.Contains(body, "138****8000") || strings.Contains(body, "13800138000") {
		t.Errorf("agent 1001's cdrs: %d %s", code, body)
	}
}

// testLogger sends the server's log to the test log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(newTestWriter(t), &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// securityConfig is the default config with a viewer, a supervisor and an
// admin token, a short read-header timeout and a small body limit; the
// campaigns' calling window is shut (today and tomorrow are holidays).
func securityConfig(t *testing.T) (yaml, viewer, supervisor, admin string) {
	viewer, supervisor, admin = auth.NewToken(), auth.NewToken(), auth.NewToken()
	sh, _ := time.LoadLocation("Asia/Shanghai")
	now := time.Now().In(sh)
	yaml = testConfig(t, "  listen: 127.0.0.1:8080        # API, /metrics, /healthz\n",
		"  listen: 127.0.0.1:8080\n  read_header_timeout: 300ms\n  max_body: 1KiB\n  tokens:\n"+
			"    - {name: wall, role: viewer, hash: \""+auth.HashToken(viewer)+"\"}\n"+
			"    - {name: lead, role: supervisor, hash: \""+auth.HashToken(supervisor)+"\"}\n"+
			"    - {name: ops, role: admin, hash: \""+auth.HashToken(admin)+"\"}\n",
		`    # holidays: ["2026-10-01"]  # no calls`,
		`    holidays: ["`+now.Format(time.DateOnly)+`", "`+now.AddDate(0, 0, 1).Format(time.DateOnly)+`"]`)
	return yaml, viewer, supervisor, admin
}

// A viewer sees citizens' numbers masked (138****8000) in JSON and CSV, and
// may not change anything; an admin sees them whole. Every state change and
// every full-number export is in the audit log, which only an admin reads.
func TestRolesMaskingAndAudit(t *testing.T) {
	t.Parallel()
	yaml, viewer, supervisor, admin := securityConfig(t)
	s := startServer(t, yaml)
	if s.token != "" {
		t.Fatal("admin.token generated although tokens are configured")
	}
	base := "http://" + s.httpAddr()
	t0 := time.Now().Add(-time.Hour)
	if err := s.store.Upsert(context.Background(), []cdr.Record{
		{ID: "in1", Direction: "inbound", Caller: "13800138000", Called: "12345", Start: t0, Agent: "1001"},
		{ID: "out1", Direction: "survey", Caller: "12345", Called: "13912348000", Start: t0.Add(time.Minute)},
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.store.AppendEvents(context.Background(), []cdr.AgentEvent{
		{ID: "e1", Time: t0, CallID: "in1", Queue: "consult", Event: cdr.EventEnterQueue, Data2: "13800138000"},
	}); err != nil {
		t.Fatal(err)
	}
	code, _, body := apiDo(t, "POST", base+"/api/v1/campaigns", "Bearer "+admin,
		`{"name": "回访", "script": "satisfaction", "trunk": "loopback-out", "targets": [{"case_id": "M1", "phone": "13700001234"}]}`)
	var created struct {
		ID string `json:"id"`
	}
	if json.Unmarshal([]byte(body), &created); code != http.StatusCreated || created.ID == "" {
		t.Fatalf("admin creates a campaign: %d %s", code, body)
	}
	for _, tc := range []struct {
		who, authz string
		masked     bool
	}{
		{"viewer", "Bearer " + viewer, true}, {"supervisor", "Bearer " + supervisor, true}, {"admin", "Bearer " + admin, false},
	} {
		for _, format := range []string{"json", "csv"} {
			code, _, body := apiDo(t, "GET", base+"/api/v1/cdrs?format="+format, tc.authz, "")
			if code != http.StatusOK {
				t.Fatalf("%s cdrs %s: %d %s", tc.who, format, code, body)
			}
			full := strings.Contains(body, "13800138000") || strings.Contains(body, "13912348000")
			masked := strings.Contains(body, "138****8000") && strings.Contains(body, "139****8000")
			if tc.masked && (full || !masked) || !tc.masked && (!full || masked) {
				t.Errorf("%s cdrs %s: masked=%v, want %v:\n%s", tc.who, format, masked, tc.masked, body)
			}
			if !strings.Contains(body, "12345") {
				t.Errorf("%s cdrs %s: the service number 12345 is masked too", tc.who, format)
			}
		}
		for _, c := range []struct{ path, full, masked string }{
			{"/api/v1/events", "13800138000", "138****8000"},
			{"/api/v1/campaigns/" + created.ID, "13700001234", "137****1234"},
		} {
			code, _, body := apiDo(t, "GET", base+c.path, tc.authz, "")
			if code != http.StatusOK {
				t.Fatalf("%s GET %s: %d %s", tc.who, c.path, code, body)
			}
			if strings.Contains(body, c.full) == tc.masked || strings.Contains(body, c.masked) != tc.masked {
				t.Errorf("%s GET %s: want masked=%v:\n%s", tc.who, c.path, tc.masked, body)
			}
		}
	}
	if code, _, _ := apiDo(t, "GET", base+"/api/v1/cdrs?caller=13800138000", "Bearer "+viewer, ""); code != http.StatusForbidden {
		t.Errorf("viewer searches by a citizen's number: %d, want 403", code)
	}
	// Roles: a viewer may not change an agent's state, a supervisor may; only an admin reads the audit log.
	if code, _, _ := apiDo(t, "POST", base+"/api/v1/agents/1004/ready", "Bearer "+viewer, ""); code != http.StatusForbidden {
		t.Errorf("viewer sets an agent ready: %d, want 403", code)
	}
	if code, _, body := apiDo(t, "POST", base+"/api/v1/agents/1004/ready", "Bearer "+supervisor, ""); code != http.StatusOK {
		t.Errorf("supervisor sets an agent ready: %d %s", code, body)
	}
	if code, _, _ := apiDo(t, "GET", base+"/api/v1/calls", "Bearer "+viewer, ""); code != http.StatusForbidden {
		t.Errorf("viewer reads live calls: %d, want 403", code)
	}
	if code, _, _ := apiDo(t, "GET", base+"/api/v1/audit", "Bearer "+supervisor, ""); code != http.StatusForbidden {
		t.Errorf("supervisor reads the audit log: %d, want 403", code)
	}
	if code, _, _ := apiDo(t, "POST", base+"/api/v1/campaigns", "Bearer "+supervisor, `{}`); code != http.StatusForbidden {
		t.Errorf("supervisor creates a campaign: %d, want 403", code)
	}

	// The audit log: the supervisor's state change, the viewer's refused one, the admin's
	// campaign and full-number reads (records in JSON and CSV, events, targets); not the
	// masked reads.
	type row = cdr.AuditEntry
	want := []row{
		{Who: "wall", Role: "viewer", Action: "POST /api/v1/agents/{id}/{action}", Target: "/api/v1/agents/1004/ready", Result: 403},
		{Who: "lead", Role: "supervisor", Action: "POST /api/v1/agents/{id}/{action}", Target: "/api/v1/agents/1004/ready", Result: 200},
		{Who: "ops", Role: "admin", Action: "GET /api/v1/cdrs", Target: "/api/v1/cdrs?format=json", Result: 200},
		{Who: "ops", Role: "admin", Action: "GET /api/v1/cdrs", Target: "/api/v1/cdrs?format=csv", Result: 200},
		{Who: "ops", Role: "admin", Action: "POST /api/v1/campaigns", Target: "/api/v1/campaigns", Result: 201},
		{Who: "ops", Role: "admin", Action: "GET /api/v1/events", Target: "/api/v1/events", Result: 200},
		{Who: "ops", Role: "admin", Action: "GET /api/v1/campaigns/{id}", Target: "/api/v1/campaigns/" + created.ID, Result: 200},
		{Who: "lead", Role: "supervisor", Action: "POST /api/v1/campaigns", Target: "/api/v1/campaigns", Result: 403},
	}
	deadline := time.Now().Add(10 * time.Second)
	var got struct {
		Audit []row `json:"audit"`
	}
	for {
		code, _, body := apiDo(t, "GET", base+"/api/v1/audit", "Bearer "+admin, "")
		if code != http.StatusOK {
			t.Fatalf("GET /api/v1/audit: %d %s", code, body)
		}
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatal(err)
		}
		if len(got.Audit) >= len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(got.Audit) != len(want) {
		t.Fatalf("audit log: %d rows, want %d: %+v", len(got.Audit), len(want), got.Audit)
	}
	for _, w := range want {
		found := false
		for _, g := range got.Audit {
			if g.Who == w.Who && g.Role == w.Role && g.Action == w.Action && g.Target == w.Target && g.Result == w.Result {
				found = true
				if g.Time.IsZero() || !strings.HasPrefix(g.Source, "127.0.0.1:") {
					t.Errorf("audit row %+v lacks its time or source", g)
				}
			}
		}
		if !found {
			t.Errorf("audit log lacks %+v; has %+v", w, got.Audit)
		}
	}
}

// A client that sends its headers slowly (slowloris) is cut off by the
// read-header timeout; a body above the limit is refused with 413.
func TestHTTPLimits(t *testing.T) {
	t.Parallel()
	yaml, _, supervisor, _ := securityConfig(t)
	s := startServer(t, yaml)
	conn, err := net.Dial("tcp", s.httpAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("GET /healthz HTTP/1.1\r\nHost: hotline\r\nX-Slow: 1")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second)) // the test's own bound, far above the server's 300 ms
	_, err = io.ReadAll(bufio.NewReader(conn))
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the slow connection was still open after %v", time.Since(start))
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the slow connection was closed after %v, want about 300 ms", took)
	}

	base := "http://" + s.httpAddr()
	big := strings.Repeat(" ", 2048) + `{"reason": "lunch"}`
	code, _, body := apiDo(t, "POST", base+"/api/v1/agents/1001/pause", "Bearer "+supervisor, big)
	if code != http.StatusRequestEntityTooLarge {
		t.Errorf("a 2 KiB body with a 1 KiB limit: %d %s, want 413", code, body)
	}
	wantJSONError(t, "413", body)
	if code, _, body := apiDo(t, "POST", base+"/api/v1/agents/1001/login", "Bearer "+supervisor, `{"reason": "x"}`); code != http.StatusOK {
		t.Errorf("a small body: %d %s", code, body)
	}
}

// With http.tls_cert and tls_key the API is served over HTTPS only.
func TestHTTPSListener(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "api.crt"), filepath.Join(dir, "api.key")
	if err := writeSelfSigned(certFile, keyFile, netip.Addr{}, time.Now(), 24*time.Hour); err != nil { // the SIP listener's, for 127.0.0.1
		t.Fatal(err)
	}
	s := startServer(t, testConfig(t, "  listen: 127.0.0.1:8080        # API, /metrics, /healthz\n",
		"  listen: 127.0.0.1:8080\n  tls_cert: "+certFile+"\n  tls_key: "+keyFile+"\n"))
	pool := x509.NewCertPool()
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(certPEM)
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer c.CloseIdleConnections()
	req, _ := http.NewRequest("GET", "https://"+s.httpAddr()+"/api/v1/agents", nil)
	req.Header.Set("Authorization", "Bearer "+s.token)
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("GET over HTTPS: %d", res.StatusCode)
	}
	if res, err := anonClient.Get("http://" + s.httpAddr() + "/healthz"); err == nil {
		res.Body.Close()
		if res.StatusCode == http.StatusOK {
			t.Error("plain HTTP answered 200 on the HTTPS listener")
		}
	}
}

// `hotlined token` prints a new token and the config line with its hash;
// the config accepts the line and the server the token.
func TestTokenCommand(t *testing.T) {
	t.Parallel()
	var out, errb strings.Builder
	if code := tokenMain([]string{"--name", "wall", "--role", "viewer"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var token, line string
	for _, l := range strings.Split(out.String(), "\n") {
		if v, ok := strings.CutPrefix(l, "token: "); ok {
			token = v
		}
		if strings.Contains(l, "hash:") {
			line = l
		}
	}
	if token == "" || !strings.Contains(line, auth.HashToken(token)) || strings.Contains(line, token) {
		t.Fatalf("output:\n%s", out.String())
	}
	s := startServer(t, testConfig(t, "  listen: 127.0.0.1:8080        # API, /metrics, /healthz\n",
		"  listen: 127.0.0.1:8080\n  tokens:\n  "+line+"\n"))
	base := "http://" + s.httpAddr()
	if code, _, body := apiDo(t, "GET", base+"/api/v1/queues", "Bearer "+token, ""); code != http.StatusOK {
		t.Errorf("the printed token: %d %s", code, body)
	}
	if code, _, _ := apiDo(t, "POST", base+"/api/v1/agents/1001/login", "Bearer "+token, ""); code != http.StatusForbidden {
		t.Errorf("a viewer token logs an agent in: %d, want 403", code)
	}
	if code := tokenMain([]string{"--role", "root"}, &out, &errb); code != 2 {
		t.Errorf("--role root: exit %d, want 2", code)
	}
}
