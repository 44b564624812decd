package loadtest

import (
	"errors"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// The server's API wants a bearer token on every call but /healthz. The
// load tester's requests get it from this table: API address (host:port) →
// token, filled by UseToken (the command line's --token) and StartHotlined
// (the admin token its server generated).
var apiTokens sync.Map

// UseToken makes every request of the load tester to the server at api (a
// URL such as http://127.0.0.1:8080 or a host:port) carry token.
func UseToken(api, token string) {
	if token == "" {
		return
	}
	apiTokens.Store(hostOf(api), token)
}

func hostOf(api string) string {
	if u, err := url.Parse(api); err == nil && u.Host != "" {
		return u.Host
	}
	return api
}

// AdminTokenFile is where hotlined keeps the admin token it generated, in
// its data dir.
const AdminTokenFile = "admin.token"

// ReadAdminToken reads the admin token of a hotlined whose data dir is
// dataDir; ("", nil) if the file does not exist.
func ReadAdminToken(dataDir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, AdminTokenFile))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	return strings.TrimSpace(string(b)), err
}

// WithToken wraps base (nil: http.DefaultTransport) so that requests to an
// address given to UseToken carry its token, unless they have their own
// Authorization header.
func WithToken(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return tokenTransport{base}
}

type tokenTransport struct{ base http.RoundTripper }

func (t tokenTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if tok, ok := apiTokens.Load(r.URL.Host); ok && r.Header.Get("Authorization") == "" {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+tok.(string))
	}
	return t.base.RoundTrip(r)
}

// CloseIdleConnections passes on to base (http.Client.CloseIdleConnections).
func (t tokenTransport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
