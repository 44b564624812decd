package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotline12345/hotline/cdr"
	"github.com/hotline12345/hotline/configs"
)

// testServer is a real hotlined, in process, on free loopback ports.
type testServer struct {
	*app
	dir    string
	token  string // the admin token (DATA_DIR/admin.token); "" with tokens in the config
	stop   context.CancelFunc
	served chan struct{}
}

// testConfig returns the embedded default config with each old→new replacement applied.
func testConfig(t *testing.T, replace ...string) string {
	t.Helper()
	data, err := fs.ReadFile(configs.FS, configs.DefaultName)
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	for i := 0; i+1 < len(replace); i += 2 {
		if !strings.Contains(s, replace[i]) {
			t.Fatalf("test config: %q not found in the default config", replace[i])
		}
		s = strings.Replace(s, replace[i], replace[i+1], 1)
	}
	return s
}

// startServer runs hotlined with the given config text (empty: the embedded default);
// edits change the command-line options.
func startServer(t *testing.T, yaml string, edits ...func(*options)) *testServer {
	t.Helper()
	return startServerLog(t, yaml, newTestWriter(t), edits...)
}

// startServerLog is startServer with the server's log (text, level info) written to w.
func startServerLog(t *testing.T, yaml string, w io.Writer, edits ...func(*options)) *testServer {
	t.Helper()
	dir := t.TempDir()
	o := options{SIPListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0", DataDir: filepath.Join(dir, "data"), RTPPorts: "20000-29998"}
	if yaml != "" {
		o.ConfigFile = filepath.Join(dir, "hotline.yaml")
		if err := os.WriteFile(o.ConfigFile, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, edit := range edits {
		edit(&o)
	}
	log := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
	a, err := newApp(o, log)
	if err != nil {
		t.Fatalf("start server: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &testServer{app: a, dir: dir, stop: cancel, served: make(chan struct{})}
	s.token = useAdminToken(t, s.httpAddr(), o.DataDir)
	go func() { a.serve(ctx); close(s.served) }()
	t.Cleanup(func() { s.shutdownNow() })
	return s
}

var shutdownOnce sync.Map

// shutdownNow drains with a short timeout and stops serving; safe to call twice.
func (s *testServer) shutdownNow() {
	if _, done := shutdownOnce.LoadOrStore(s, true); done {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	s.shutdown(ctx)
	cancel()
	s.stop()
	<-s.served
}

func (s *testServer) sipAddr() string  { return s.sip.Addr().String() }
func (s *testServer) httpAddr() string { return s.httpLn.Addr().String() }

// records waits until n records exist (the writer flushes asynchronously) and returns them.
func (s *testServer) records(t *testing.T, n int) []cdr.Record {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		recs, err := s.store.List(context.Background(), cdr.Filter{})
		if err != nil {
			t.Fatalf("list records: %v", err)
		}
		if len(recs) >= n || time.Now().After(deadline) {
			if len(recs) < n {
				t.Fatalf("want %d records, have %d: %+v", n, len(recs), recs)
			}
			return recs
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// record waits until the record of id satisfies ok (a WRAPUPEND, say, completes it later).
func (s *testServer) record(t *testing.T, id string, ok func(cdr.Record) bool) cdr.Record {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		recs, err := s.store.List(context.Background(), cdr.Filter{})
		if err != nil {
			t.Fatalf("list records: %v", err)
		}
		for _, r := range recs {
			if r.ID == id && ok(r) {
				return r
			}
			if r.ID == id && time.Now().After(deadline) {
				t.Fatalf("record %+v never became as wanted", r)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no record %s", id)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// testWriter sends server logs to the test log until the test's cleanup begins; a line
// logged later (by a goroutine still winding down) is dropped, as t.Log would panic.
type testWriter struct {
	t    *testing.T
	done *atomic.Bool
}

func newTestWriter(t *testing.T) testWriter {
	w := testWriter{t: t, done: new(atomic.Bool)}
	t.Cleanup(func() { w.done.Store(true) }) // registered first: runs after the server stopped
	return w
}

func (w testWriter) Write(p []byte) (int, error) {
	if !w.done.Load() {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// needSIPp skips without SIPp, except under CI where SIPp is required.
func needSIPp(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("sipp"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("sipp is required under CI (Debian package sip-tester)")
		}
		t.Skip("sipp not installed (Debian package sip-tester); skipping SIPp interop test")
	}
}

// sippResult is the outcome of one SIPp run.
type sippResult struct {
	ok     bool
	output string
}

// runSIPp runs one SIPp scenario from testdata/sipp against target (HOST:PORT); extra args are appended.
func runSIPp(t *testing.T, target, scenario string, extra ...string) sippResult {
	t.Helper()
	needSIPp(t)
	work := t.TempDir()
	args := []string{
		target, "-sf", filepath.Join("..", "..", "testdata", "sipp", scenario),
		"-s", "12345", "-m", "1", "-nostdin", "-timeout", "30s", "-timeout_error",
		"-trace_err", "-trace_msg", "-p", "0", "-mp", "0",
	}
	hasIP := false
	for _, a := range extra {
		hasIP = hasIP || a == "-i"
	}
	if !hasIP {
		args = append(args, "-i", "127.0.0.1")
	}
	args = append(args, extra...)
	abs, _ := filepath.Abs(filepath.Join("..", "..", "testdata", "sipp", scenario))
	args[2] = abs
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sipp", args...)
	cmd.Dir = work
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	res := sippResult{ok: err == nil, output: out.String()}
	if !res.ok {
		// SIPp keeps its message trace in files beside the scenario run.
		matches, _ := filepath.Glob(filepath.Join(work, "*"))
		for _, m := range matches {
			if b, err := os.ReadFile(m); err == nil && len(b) < 64<<10 {
				res.output += "\n--- " + filepath.Base(m) + " ---\n" + string(b)
			}
		}
	}
	return res
}

// httpClient is the tests' client of the API: it sends the admin token of
// the test server it calls (useAdminToken) unless the request has its own
// Authorization. anonClient sends none.
var (
	httpClient = &http.Client{Timeout: 5 * time.Second, Transport: tokenTransport{http.DefaultTransport}}
	anonClient = &http.Client{Timeout: 5 * time.Second}
)

// adminTokens maps a test server's HTTP address to its admin token.
var adminTokens sync.Map

// useAdminToken reads the admin token a server on httpAddr generated in
// dataDir and has httpClient send it there; "" if the config has tokens
// (no file).
func useAdminToken(t *testing.T, httpAddr, dataDir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, adminTokenFile))
	if errors.Is(err, fs.ErrNotExist) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSpace(string(b))
	adminTokens.Store(httpAddr, tok)
	t.Cleanup(func() { adminTokens.CompareAndDelete(httpAddr, tok) })
	return tok
}

// tokenTransport adds the admin token of the server a request goes to.
type tokenTransport struct{ base http.RoundTripper }

func (tt tokenTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if tok, ok := adminTokens.Load(r.URL.Host); ok && r.Header.Get("Authorization") == "" {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+tok.(string))
	}
	return tt.base.RoundTrip(r)
}

// httpGet fetches url and checks the status code.
func httpGet(t *testing.T, url string, want int) string {
	t.Helper()
	res, err := httpClient.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		t.Fatalf("GET %s: status %d, want %d: %s", url, res.StatusCode, want, b)
	}
	return string(b)
}

// Start-up refuses a data dir it cannot use and a record store it cannot reach, with an
// error that names them, instead of running without records.
func TestStartupRecordStoreErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "not-a-dir")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	base := options{SIPListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0", RTPPorts: "20000-29998"}
	for _, tc := range []struct {
		name string
		edit func(*options)
		want string
	}{
		{"data dir is a file", func(o *options) { o.DataDir = file }, "not-a-dir"},
		{"unreachable PostgreSQL", func(o *options) { o.DataDir = dir; o.CDRDSN = "postgres://hotline@127.0.0.1:1/nowhere" }, "127.0.0.1"},
	} {
		o := base
		tc.edit(&o)
		a, err := newApp(o, log)
		if err == nil {
			a.close()
			t.Errorf("%s: server started", tc.name)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q does not name %q", tc.name, err, tc.want)
		}
	}
}
