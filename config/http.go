package config

import (
	"net/netip"
	"strconv"
	"time"

	"github.com/hotline12345/hotline/auth"
	"github.com/hotline12345/hotline/ivr"
)

// Defaults of the HTTP listener.
const (
	DefaultHTTPReadHeaderTimeout = 5 * time.Second
	DefaultHTTPReadTimeout       = 60 * time.Second
	DefaultHTTPWriteTimeout      = 10 * time.Minute // a CSV export of a year of records takes a while
	DefaultHTTPIdleTimeout       = 2 * time.Minute
	DefaultHTTPMaxBody           = "1MiB"
	DefaultHTTPMaxImportBody     = "16MiB" // campaign targets
)

// HTTP is the API listener: its address, optional TLS, who may use it and
// how long a request may take.
type HTTP struct {
	Listen string `yaml:"listen"`
	// TLSCert and TLSKey (PEM files) serve HTTPS; both or neither. Without
	// them a listener on a non-loopback address logs a loud warning.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// Tokens are the API's bearer tokens, by hash (`hotlined token` makes
	// one). None: an admin token is generated at first start into
	// DATA_DIR/admin.token. Agents sign in with their SIP id and password.
	Tokens []Token `yaml:"tokens"`
	// MetricsOpen serves /metrics without a token (for a Prometheus on a
	// trusted network); default false: /metrics needs a viewer token.
	MetricsOpen       bool         `yaml:"metrics_open"`
	ReadHeaderTimeout ivr.Duration `yaml:"read_header_timeout"` // default 5s (slowloris)
	ReadTimeout       ivr.Duration `yaml:"read_timeout"`        // default 60s
	WriteTimeout      ivr.Duration `yaml:"write_timeout"`       // default 10m: big CSV exports
	IdleTimeout       ivr.Duration `yaml:"idle_timeout"`        // default 2m
	MaxBody           string       `yaml:"max_body"`            // request body limit; default 1MiB
	MaxImportBody     string       `yaml:"max_import_body"`     // campaign creation and target import; default 16MiB
}

// Token is a bearer token of the API as the config holds it.
type Token struct {
	Name string `yaml:"name"`
	Role string `yaml:"role"` // viewer, supervisor or admin
	Hash string `yaml:"hash"` // sha256:<hex> of the token
}

func (h *HTTP) applyDefaults() {
	if h.Listen == "" {
		h.Listen = DefaultHTTPListen
	}
	for _, d := range []struct {
		v   *ivr.Duration
		def time.Duration
	}{
		{&h.ReadHeaderTimeout, DefaultHTTPReadHeaderTimeout}, {&h.ReadTimeout, DefaultHTTPReadTimeout},
		{&h.WriteTimeout, DefaultHTTPWriteTimeout}, {&h.IdleTimeout, DefaultHTTPIdleTimeout},
	} {
		if *d.v == 0 {
			*d.v = ivr.Duration(d.def)
		}
	}
	if h.MaxBody == "" {
		h.MaxBody = DefaultHTTPMaxBody
	}
	if h.MaxImportBody == "" {
		h.MaxImportBody = DefaultHTTPMaxImportBody
	}
}

// MaxBodyBytes and MaxImportBodyBytes are the body limits in bytes (valid
// after Load).
func (h *HTTP) MaxBodyBytes() int64       { n, _ := ParseSize(h.MaxBody); return n }
func (h *HTTP) MaxImportBodyBytes() int64 { n, _ := ParseSize(h.MaxImportBody); return n }

func (h *HTTP) validate(add func(path, format string, args ...any)) {
	if _, err := netip.ParseAddrPort(h.Listen); err != nil {
		add("http.listen", "want IP:PORT, got %q", h.Listen)
	}
	if (h.TLSCert == "") != (h.TLSKey == "") {
		add("http.tls_cert", "tls_cert and tls_key go together")
	}
	names := map[string]bool{}
	for i, t := range h.Tokens {
		at := "http.tokens[" + strconv.Itoa(i) + "]"
		if t.Name == "" {
			add(at+".name", "required (it names the token in the audit log)")
		} else if names[t.Name] {
			add(at+".name", "duplicate token name %q", t.Name)
		}
		names[t.Name] = true
		if _, err := auth.ParseRole(t.Role); err != nil {
			add(at+".role", "%v", err)
		}
		if _, err := auth.ParseHash(t.Hash); err != nil {
			add(at+".hash", `want "sha256:" and 64 hex digits (from hotlined token), never the token itself`)
		}
	}
	for _, d := range []struct {
		path string
		v    ivr.Duration
	}{
		{"http.read_header_timeout", h.ReadHeaderTimeout}, {"http.read_timeout", h.ReadTimeout},
		{"http.write_timeout", h.WriteTimeout}, {"http.idle_timeout", h.IdleTimeout},
	} {
		if d.v < 0 {
			add(d.path, "must not be negative")
		}
	}
	for path, v := range map[string]string{"http.max_body": h.MaxBody, "http.max_import_body": h.MaxImportBody} {
		if n, err := ParseSize(v); err != nil || n <= 0 {
			add(path, "want a size such as 1MiB, got %q", v)
		}
	}
}
