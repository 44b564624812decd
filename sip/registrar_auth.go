package sip

// Digest authentication of REGISTER (RFC 3261 §22, RFC 7616, RFC 8760) and the
// brute-force guard.
//
// Nonces are stateless: base64url(issue time ‖ 8 random bytes ‖ HMAC-SHA-256(secret, both)[:16]).
// A challenge costs no memory, so a flood of unauthenticated REGISTERs cannot grow the
// registrar. The only per-nonce state is the highest nonce-count accepted, kept for nonces
// that carried a valid response (bounded by maxNonceUses, see nonceUses).

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// Digest algorithms we offer (RFC 8760 names).
const (
	AlgSHA256 = "SHA-256"
	AlgMD5    = "MD5"
)

const (
	nonceRawLen = 8 + 8 + 16
	// maxNonceUses bounds the table of nonce-counts; see nonceUses.add.
	maxNonceUses = 1 << 16
	// maxLockEntries bounds each brute-force table; see lockEntryFor.
	maxLockEntries = 1 << 14
	// nonceSkew is how far in the future a nonce's issue time may be (clock steps).
	nonceSkew = time.Minute
)

// nonceSigner makes and checks our nonces.
type nonceSigner struct{ key []byte }

func (s nonceSigner) sum(b []byte) []byte {
	mac := hmac.New(sha256.New, s.key)
	mac.Write(b)
	return mac.Sum(nil)[:16]
}

func (s nonceSigner) make(now time.Time) string {
	var b [nonceRawLen]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixNano()))
	_, _ = rand.Read(b[8:16])
	copy(b[16:], s.sum(b[:16]))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// issued returns when we made nonce, or false when we did not make it (another process,
// an earlier run with another secret, or a forgery).
func (s nonceSigner) issued(nonce string) (time.Time, bool) {
	if base64.RawURLEncoding.DecodedLen(len(nonce)) != nonceRawLen {
		return time.Time{}, false
	}
	var b [nonceRawLen]byte
	if n, err := base64.RawURLEncoding.Decode(b[:], []byte(nonce)); err != nil || n != nonceRawLen {
		return time.Time{}, false
	}
	if !hmac.Equal(s.sum(b[:16]), b[16:]) {
		return time.Time{}, false
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(b[:8]))), true
}

// nonceUses remembers the highest nonce-count accepted for each nonce still fresh, so that
// a captured REGISTER cannot be replayed (RFC 7616 §3.4: nc must increase per nonce).
// When the table is full, the oldest half of it is forgotten and floor rises: nonces
// issued at or before floor are treated as stale, so forgetting never re-opens a replay.
type nonceUses struct {
	m     map[string]nonceUse
	floor time.Time
}

type nonceUse struct {
	nc     int
	issued time.Time
}

// add records nc for nonce; false when nc does not exceed a count already accepted or
// the nonce is below the floor.
func (u *nonceUses) add(nonce string, nc int, issued, now time.Time, ttl time.Duration) bool {
	if !issued.After(u.floor) {
		return false
	}
	if prev, ok := u.m[nonce]; ok {
		if nc <= prev.nc {
			return false
		}
		u.m[nonce] = nonceUse{nc: nc, issued: issued}
		return true
	}
	if len(u.m) >= maxNonceUses {
		u.prune(now, ttl)
	}
	if len(u.m) >= maxNonceUses {
		u.floor = now.Add(-ttl / 2)
		u.prune(now, ttl)
	}
	if len(u.m) >= maxNonceUses {
		u.floor = now
		clear(u.m)
		return false
	}
	u.m[nonce] = nonceUse{nc: nc, issued: issued}
	return true
}

// prune forgets nonces that are stale anyway.
func (u *nonceUses) prune(now time.Time, ttl time.Duration) {
	for n, e := range u.m {
		if now.Sub(e.issued) > ttl || !e.issued.After(u.floor) {
			delete(u.m, n)
		}
	}
}

// authResult is the outcome of checking a REGISTER's credentials.
type authResult int

const (
	authOK        authResult = iota
	authChallenge            // no credentials for our realm: 401
	authStale                // right password, but an old or foreign nonce or a reused nc: 401 stale=true
	authReplay               // like authStale, counted apart
	authBad                  // malformed or unacceptable credentials: 400
	authFailed               // unknown user or wrong password: 403, counts towards lockout
)

// dummyPassword is hashed for unknown users, so that they cost the same as known ones.
const dummyPassword = "\x00hotline-no-such-user\x00"

// authenticate checks the Authorization header of req; it returns the authenticated
// username when the result is authOK.
func (r *Registrar) authenticate(req *sip.Request, now time.Time) (string, authResult, string) {
	var cred *digest.Credentials
	for _, h := range req.GetHeaders("Authorization") {
		v := strings.TrimSpace(h.Value())
		if !digest.IsDigest(v) {
			continue
		}
		c, err := digest.ParseCredentials(v)
		if err != nil {
			return "", authBad, "malformed Authorization"
		}
		if c.Realm == r.cfg.Realm {
			cred = c
			break
		}
	}
	if cred == nil {
		return "", authChallenge, "no credentials for realm"
	}
	alg := strings.ToUpper(cred.Algorithm)
	if alg == "" {
		alg = AlgMD5
	}
	if !r.offers(alg) {
		return "", authChallenge, "algorithm not offered: " + cred.Algorithm
	}
	switch {
	case cred.Userhash:
		return "", authBad, "userhash not supported"
	case !strings.EqualFold(cred.QOP, "auth"):
		return "", authBad, "qop=auth required"
	case cred.Nc <= 0 || cred.Cnonce == "":
		return "", authBad, "missing nc or cnonce"
	case cred.Username == "" || cred.Nonce == "" || cred.URI == "" || cred.Response == "":
		return "", authBad, "incomplete credentials"
	}

	password, known := "", false
	if r.cfg.Credentials != nil {
		password, known = r.cfg.Credentials(cred.Username)
	}
	if !known {
		password = dummyPassword
	}
	want, err := digest.Digest(
		&digest.Challenge{Realm: cred.Realm, Nonce: cred.Nonce, Algorithm: alg, QOP: []string{"auth"}},
		digest.Options{
			Method: string(req.Method), URI: cred.URI, Username: cred.Username, Password: password,
			Count: cred.Nc, Cnonce: cred.Cnonce,
		})
	if err != nil {
		return "", authBad, err.Error()
	}
	match := subtle.ConstantTimeCompare([]byte(want.Response), []byte(strings.ToLower(cred.Response))) == 1
	if !match || !known {
		return cred.Username, authFailed, "wrong username or password"
	}
	if !uriMatches(cred.URI, &req.Recipient) {
		return cred.Username, authBad, "digest uri does not match Request-URI"
	}
	issued, ours := r.nonces.issued(cred.Nonce)
	if !ours || now.Sub(issued) > r.cfg.NonceTTL || issued.After(now.Add(nonceSkew)) {
		return cred.Username, authStale, "stale nonce"
	}
	r.mu.Lock()
	fresh := r.uses.add(cred.Nonce, cred.Nc, issued, now, r.cfg.NonceTTL)
	r.mu.Unlock()
	if !fresh {
		return cred.Username, authReplay, "nonce count reused"
	}
	return cred.Username, authOK, ""
}

func (r *Registrar) offers(alg string) bool {
	for _, a := range r.cfg.Algorithms {
		if a == alg {
			return true
		}
	}
	return false
}

// wwwAuthenticate returns one WWW-Authenticate header per offered algorithm, in the
// configured order (RFC 8760 §2.4: the preferred first), each with its own nonce.
func (r *Registrar) wwwAuthenticate(now time.Time, stale bool) []sip.Header {
	hdrs := make([]sip.Header, 0, len(r.cfg.Algorithms))
	for _, alg := range r.cfg.Algorithms {
		c := digest.Challenge{
			Realm: r.cfg.Realm, Nonce: r.nonces.make(now), Algorithm: alg, QOP: []string{"auth"}, Stale: stale,
		}
		hdrs = append(hdrs, sip.NewHeader("WWW-Authenticate", c.String()))
	}
	return hdrs
}

// uriMatches compares the digest uri with the Request-URI (RFC 7616 §3.4.6) by scheme,
// user, host and port; URI parameters are ignored, since clients differ in which they copy.
func uriMatches(digestURI string, reqURI *sip.Uri) bool {
	var u sip.Uri
	if err := sip.ParseUri(digestURI, &u); err != nil {
		return false
	}
	return strings.EqualFold(schemeOf(&u), schemeOf(reqURI)) && u.User == reqURI.User &&
		strings.EqualFold(strings.Trim(u.Host, "[]"), strings.Trim(reqURI.Host, "[]")) &&
		portOf(&u) == portOf(reqURI)
}

func schemeOf(u *sip.Uri) string {
	if u.Scheme == "" {
		return "sip"
	}
	return u.Scheme
}

func portOf(u *sip.Uri) int {
	if u.Port != 0 {
		return u.Port
	}
	if u.IsEncrypted() {
		return 5061
	}
	return 5060
}

// lockouts is the brute-force guard, in two tables (Asterisk and Kamailio key theirs by
// source alone, which at a call centre behind one NAT lets one misconfigured softphone lock
// every agent out):
//   - users, keyed by (user, source IP): LockoutFailures wrong answers for one user from one
//     address within LockoutWindow refuse that user from that address for LockoutFor, right
//     password or not. Other users behind the same address are unaffected.
//   - sources, keyed by source IP: LockoutSourceUsers distinct users failing from one address
//     within LockoutWindow (a scanner walking usernames) refuse the whole address.
//
// Both tables are bounded (maxLockEntries each): when full, entries that are neither locked
// nor within their window are dropped, then the unlocked entry whose window began first. A
// distributed attack from more addresses than that is only partly tracked; memory stays
// bounded. Usernames are cut to maxLockUser bytes in the keys.
type lockouts struct {
	users   map[userSource]*lockEntry
	sources map[netip.Addr]*lockEntry
}

type userSource struct {
	user string
	ip   netip.Addr
}

type lockEntry struct {
	first    time.Time // start of the current failure window
	failures int
	users    []string  // sources: distinct users that failed in the window (at most the threshold)
	until    time.Time // locked until
}

// maxLockUser bounds the username kept in a lockout key.
const maxLockUser = 64

func newLockouts() lockouts {
	return lockouts{users: make(map[userSource]*lockEntry), sources: make(map[netip.Addr]*lockEntry)}
}

func lockUser(user string, ip netip.Addr) userSource {
	if len(user) > maxLockUser {
		user = user[:maxLockUser]
	}
	return userSource{user: user, ip: ip}
}

// sourceLocked reports whether the whole source is locked out.
func (l *lockouts) sourceLocked(ip netip.Addr, now time.Time) bool {
	e := l.sources[ip]
	return e != nil && now.Before(e.until)
}

// userLocked reports whether user is locked out at ip.
func (l *lockouts) userLocked(user string, ip netip.Addr, now time.Time) bool {
	e := l.users[lockUser(user, ip)]
	return e != nil && now.Before(e.until)
}

// fail counts a failure of user from ip; it reports whether it locked the (user, source)
// pair out and whether it locked the whole source out.
func (l *lockouts) fail(user string, ip netip.Addr, now time.Time, c *RegistrarConfig) (userLock, sourceLock bool) {
	if c.LockoutFailures > 0 {
		if e := lockEntryFor(l.users, lockUser(user, ip), now, c); e != nil {
			e.failures++
			if e.failures >= c.LockoutFailures {
				e.until = now.Add(c.LockoutFor)
				e.first, e.failures = now, 0
				userLock = true
			}
		}
	}
	if c.LockoutSourceUsers > 0 {
		if e := lockEntryFor(l.sources, ip, now, c); e != nil {
			u := lockUser(user, ip).user
			if !slices.Contains(e.users, u) {
				e.users = append(e.users, u)
			}
			if len(e.users) >= c.LockoutSourceUsers {
				e.until = now.Add(c.LockoutFor)
				e.first, e.users = now, nil
				sourceLock = true
			}
		}
	}
	return userLock, sourceLock
}

// lockEntryFor returns the entry of k with its window current, adding it (and evicting
// another when the table is full); nil when every tracked key is locked.
func lockEntryFor[K comparable](m map[K]*lockEntry, k K, now time.Time, c *RegistrarConfig) *lockEntry {
	e := m[k]
	if e == nil {
		if len(m) >= maxLockEntries {
			pruneLocks(m, now, c)
		}
		if len(m) >= maxLockEntries {
			var oldest K
			var t time.Time
			for k, e := range m {
				if !now.Before(e.until) && (t.IsZero() || e.first.Before(t)) {
					oldest, t = k, e.first
				}
			}
			if t.IsZero() {
				return nil // every tracked key is locked: do not track more
			}
			delete(m, oldest)
		}
		e = &lockEntry{first: now}
		m[k] = e
	}
	if now.Sub(e.first) > c.LockoutWindow {
		e.first, e.failures, e.users = now, 0, e.users[:0]
	}
	return e
}

// pruneLocks drops entries that are neither locked nor inside their failure window.
func pruneLocks[K comparable](m map[K]*lockEntry, now time.Time, c *RegistrarConfig) {
	for k, e := range m {
		if !now.Before(e.until) && now.Sub(e.first) > c.LockoutWindow {
			delete(m, k)
		}
	}
}

// prune forgets entries that are neither locked nor inside their window.
func (l *lockouts) prune(now time.Time, c *RegistrarConfig) {
	pruneLocks(l.users, now, c)
	pruneLocks(l.sources, now, c)
}

// count returns how many (user, source) pairs and how many sources are locked now.
func (l *lockouts) count(now time.Time) (users, sources int) {
	for _, e := range l.users {
		if now.Before(e.until) {
			users++
		}
	}
	for _, e := range l.sources {
		if now.Before(e.until) {
			sources++
		}
	}
	return users, sources
}
