// Package auth identifies the callers of the HTTP API and says what their
// role lets them do. Tokens are configured as hashes ("sha256:<hex>" of a
// high-entropy token, see [HashToken] and `hotlined token`); agents sign in
// with their SIP id and password (HTTP Basic). Every comparison of a secret
// is constant-time.
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
)

// Role is what a caller may do.
type Role string

// The roles, from least to most powerful; Agent stands apart: an agent acts
// only on itself.
const (
	Viewer     Role = "viewer"     // wallboard, reports, lists with masked numbers
	Supervisor Role = "supervisor" // + agent state changes, live calls
	Admin      Role = "admin"      // everything, full numbers
	Agent      Role = "agent"      // its own state and its own calls
)

var rank = map[Role]int{Viewer: 1, Supervisor: 2, Admin: 3}

// ParseRole reads a configured role name (viewer, supervisor or admin; agents
// are never configured by token).
func ParseRole(s string) (Role, error) {
	if r := Role(s); rank[r] > 0 {
		return r, nil
	}
	return "", fmt.Errorf("unknown role %q: want viewer, supervisor or admin", s)
}

// AtLeast reports whether r has every right of min. An agent is at least
// nothing but an agent.
func (r Role) AtLeast(min Role) bool {
	if r == Agent || min == Agent {
		return r == min
	}
	return rank[r] > 0 && rank[r] >= rank[min]
}

// SeesNumbers reports whether r may see citizens' numbers unmasked.
func (r Role) SeesNumbers() bool { return r == Admin }

// Principal is an authenticated caller.
type Principal struct {
	Name    string // the token's name, or the agent's id
	Role    Role
	AgentID string // Role Agent only
}

// Token is a configured bearer token.
type Token struct {
	Name string
	Role Role
	Hash string // "sha256:<64 hex digits>"
}

// Errors of Authenticate.
var (
	ErrNoCredentials  = errors.New("auth: no credentials")
	ErrBadCredentials = errors.New("auth: bad credentials")
	ErrBadHash        = errors.New(`auth: token hash: want "sha256:" and 64 hex digits`)
)

// HashPrefix starts every token hash.
const HashPrefix = "sha256:"

// HashToken is the hash of token as the config holds it.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return HashPrefix + hex.EncodeToString(sum[:])
}

// NewToken returns a fresh token: 32 random bytes, URL-safe base64, with a
// "hl_" prefix that secret scanners can recognise.
func NewToken() string {
	var b [32]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	return "hl_" + base64.RawURLEncoding.EncodeToString(b[:])
}

// ParseHash checks a configured hash and returns its digest.
func ParseHash(h string) ([]byte, error) {
	if !strings.HasPrefix(h, HashPrefix) {
		return nil, ErrBadHash
	}
	d, err := hex.DecodeString(h[len(HashPrefix):])
	if err != nil || len(d) != sha256.Size {
		return nil, ErrBadHash
	}
	return d, nil
}

type tokenEntry struct {
	digest []byte
	p      Principal
}

// Authenticator checks the credentials of requests.
type Authenticator struct {
	tokens atomic.Pointer[[]tokenEntry] // replaced whole by SetTokens (a config reload)
	agents func(id string) (password string, ok bool)
}

// New returns an Authenticator for tokens; agentPassword (nil: no agent
// sign-in) gives an agent's SIP password by id.
func New(tokens []Token, agentPassword func(id string) (string, bool)) (*Authenticator, error) {
	a := &Authenticator{agents: agentPassword}
	if err := a.SetTokens(tokens); err != nil {
		return nil, err
	}
	return a, nil
}

// SetTokens replaces the bearer tokens (a config reload): the next request is checked
// against the new ones. On an error nothing changes.
func (a *Authenticator) SetTokens(tokens []Token) error {
	entries := make([]tokenEntry, 0, len(tokens))
	for _, t := range tokens {
		d, err := ParseHash(t.Hash)
		if err != nil {
			return fmt.Errorf("token %q: %w", t.Name, err)
		}
		if _, err := ParseRole(string(t.Role)); err != nil {
			return fmt.Errorf("token %q: %w", t.Name, err)
		}
		entries = append(entries, tokenEntry{digest: d, p: Principal{Name: t.Name, Role: t.Role}})
	}
	a.tokens.Store(&entries)
	return nil
}

// Authenticate identifies the caller of r by its Authorization header:
// "Bearer TOKEN" or "Basic" with an agent's id and SIP password.
func (a *Authenticator) Authenticate(r *http.Request) (Principal, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return Principal{}, ErrNoCredentials
	}
	scheme, rest, _ := strings.Cut(h, " ")
	switch strings.ToLower(scheme) {
	case "bearer":
		return a.bearer(strings.TrimSpace(rest))
	case "basic":
		user, pass, ok := r.BasicAuth()
		if !ok {
			return Principal{}, ErrBadCredentials
		}
		return a.agent(user, pass)
	}
	return Principal{}, ErrBadCredentials
}

// bearer finds the token among the configured ones. Every entry is compared
// (constant time each), so the time taken does not say which one matched.
func (a *Authenticator) bearer(token string) (Principal, error) {
	if token == "" {
		return Principal{}, ErrBadCredentials
	}
	sum := sha256.Sum256([]byte(token))
	var found Principal
	match := 0
	for _, t := range *a.tokens.Load() {
		eq := subtle.ConstantTimeCompare(sum[:], t.digest)
		if eq == 1 && match == 0 {
			found = t.p
		}
		match |= eq
	}
	if match == 0 {
		return Principal{}, ErrBadCredentials
	}
	return found, nil
}

// agent checks an agent's SIP credentials; an unknown agent costs the same
// comparison as a known one.
func (a *Authenticator) agent(id, password string) (Principal, error) {
	if a.agents == nil || id == "" {
		return Principal{}, ErrBadCredentials
	}
	want, ok := a.agents(id)
	if want == "" {
		ok = false
	}
	w, g := sha256.Sum256([]byte(want)), sha256.Sum256([]byte(password))
	if subtle.ConstantTimeCompare(w[:], g[:]) != 1 || !ok {
		return Principal{}, ErrBadCredentials
	}
	return Principal{Name: id, Role: Agent, AgentID: id}, nil
}
