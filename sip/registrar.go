package sip

// The registrar: agents' softphones REGISTER here with digest auth (RFC 3261 §10.3).
//
// Choices, where the RFCs leave room or common practice differs:
//   - Usernames are not enumerable: an unknown user is challenged like a known one, and its
//     answer is checked against a dummy password (same cost), then refused with 403 exactly
//     like a wrong password. There is no 404.
//   - The AOR is the To user; its host is not checked (one realm, one domain). The
//     authenticated username must equal the To user (403 otherwise; third-party registration
//     is not allowed). The Request-URI must match the digest uri by scheme, user, host, port.
//   - MD5 alone is challenged by default: baresip 1.0 (Debian's) cannot register when a
//     SHA-256 challenge is present at all. SHA-256 (RFC 8760, offered first) is one
//     setting away: Algorithms: {AlgSHA256, AlgMD5}. Answers are checked with the
//     algorithm the client names, if it is one we offer (else a new challenge).
//   - qop=auth is required (RFC 2069 answers without qop have no nonce-count and could be
//     replayed); userhash and auth-int are refused with 400.
//   - A reused nonce-count and a nonce too old (NonceTTL) or not ours (another node, an
//     earlier run) are answered 401 stale=true when the response is right, so a phone
//     re-authenticates silently; a wrong response is 403.
//   - §10.3 step 7: a REGISTER with the same Call-ID as a binding and a CSeq not higher is
//     refused with 500, and nothing of it applies.
//   - The source of the REGISTER (packet source address and port) is always recorded, as
//     if rport were present (Asterisk's force_rport): agents behind NAT are reached there.
//   - Contacts with the same +sip.instance (and reg-id) replace each other (RFC 5626), so a
//     phone restarted on a new port does not pile up bindings. Beyond MaxContacts per user
//     the least recently registered binding is dropped (Asterisk's remove_existing); a single
//     REGISTER with more contacts than that is refused with 403.
//   - A user with LockoutFailures wrong answers from one source address within LockoutWindow
//     is refused with 403 from that address for LockoutFor, right password or not; other
//     users behind the same address (a call centre's NAT) are unaffected. A source from
//     which LockoutSourceUsers distinct users failed within the window (a scanner) is
//     refused as a whole (registrar_auth.go, lockouts).
//   - Path (RFC 3327): the REGISTER's Path values are stored with its bindings, in order, and
//     are the route set of requests to them (INVITE, OPTIONS); they are echoed in the 200
//     when the phone's Supported lists "path". A REGISTER without "path" in Supported is
//     still accepted (Kamailio's path_mode 1). From a TrustedFronts address, the received
//     parameter of the first Path URI (Kamailio's add_path_received) is the phone's address:
//     the binding's Source, and the address lockouts are kept for. From anywhere else the
//     Path is kept for routing but received is ignored (a phone could name any address).
//   - Memory is bounded: nonces are stateless (registrar_auth.go), bindings are capped per
//     user and in total (MaxBindings, then 503), the lockout and nonce-count tables are capped.

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Defaults of RegistrarConfig.
const (
	DefaultRealm           = "hotline"
	DefaultMinExpires      = 60 * time.Second
	DefaultMaxExpires      = 3600 * time.Second
	DefaultExpires         = 600 * time.Second
	DefaultNonceTTL        = 5 * time.Minute
	DefaultMaxContacts     = 5
	DefaultMaxBindings     = 100_000
	DefaultLockoutFailures = 10
	// DefaultLockoutSourceUsers is the number of distinct users failing from one address
	// within the window that locks the whole address: well above one NAT's misconfigured
	// phones, well below a scanner's username list.
	DefaultLockoutSourceUsers = 30
	DefaultLockoutWindow      = time.Minute
	DefaultLockoutFor         = 5 * time.Minute
	DefaultQualifyInterval    = 30 * time.Second
	DefaultQualifyTimeout     = 5 * time.Second
	DefaultQualifyFailures    = 3
)

// Reasons given to RegistrarConfig.OnChange.
const (
	ReasonRegister    = "register"
	ReasonUnregister  = "unregister"
	ReasonExpired     = "expired"
	ReasonUnreachable = "unreachable"
)

// Credentials returns the SIP password of a user, or false when there is no such user.
type Credentials func(user string) (password string, ok bool)

// RegistrarConfig configures a Registrar. Zero values take the defaults above.
type RegistrarConfig struct {
	Realm       string
	Credentials Credentials
	// Algorithms offered, one WWW-Authenticate header each (own nonce), in this order.
	// Default {"MD5"}: baresip 1.0 (Debian's, libre 1.1) fails with ENOSYS on any
	// challenge set that contains SHA-256, in either order (measured, see
	// TestRegistrarBaresip), and Asterisk (supported_algorithms_uas) and Kamailio also
	// default to MD5 alone. {AlgSHA256, AlgMD5} is the RFC 8760 offer: SHA-256 first.
	Algorithms []string
	// NonceSecret signs nonces; give every node behind one SIP front the same secret so a
	// nonce from one is accepted by the others. Default: random per process.
	NonceSecret []byte

	MinExpires, MaxExpires, DefaultExpires time.Duration
	NonceTTL                               time.Duration // an older nonce with a right answer gets 401 stale=true
	MaxContacts                            int           // per user
	MaxBindings                            int           // in total; beyond, new bindings get 503

	// Brute-force guard: LockoutFailures wrong answers for one user from one source IP, or
	// LockoutSourceUsers distinct users failing from one source IP, within LockoutWindow
	// lock that user at that source, or the whole source, for LockoutFor. A value < 0
	// disables that half of the guard.
	LockoutFailures           int
	LockoutSourceUsers        int
	LockoutWindow, LockoutFor time.Duration

	// Qualify: every QualifyInterval (< 0 disables) each binding is pinged with Pinger; a
	// binding is dropped after QualifyFailures consecutive failures (each ping gets
	// QualifyTimeout, at most QualifyInterval). Without a Pinger there is no qualify.
	QualifyInterval time.Duration
	QualifyTimeout  time.Duration
	QualifyFailures int
	Pinger          func(ctx context.Context, b Binding) error

	// OnChange is told when a user's set of reachable bindings changed, with the live
	// bindings (newest first) and one of the Reason constants. Calls are in order, never
	// under the registrar's lock, on the goroutine that caused the change, before the
	// REGISTER is answered: keep it short.
	OnChange func(user string, bindings []Binding, reason string)

	// TrustedFronts are the SIP fronts (Kamailio) whose Path received parameter is
	// believed: a REGISTER from one of them counts as coming from that address.
	TrustedFronts []netip.Prefix

	Now       func() time.Time // default time.Now
	UserAgent string           // Server header; default "hotline"
	Logger    *slog.Logger
}

func (c *RegistrarConfig) setDefaults() {
	if c.Realm == "" {
		c.Realm = DefaultRealm
	}
	if len(c.Algorithms) == 0 {
		c.Algorithms = []string{AlgMD5}
	}
	for i, a := range c.Algorithms {
		c.Algorithms[i] = strings.ToUpper(a)
	}
	if len(c.NonceSecret) == 0 {
		c.NonceSecret = make([]byte, 32)
		_, _ = rand.Read(c.NonceSecret)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.MinExpires, DefaultMinExpires)
	def(&c.MaxExpires, DefaultMaxExpires)
	def(&c.DefaultExpires, DefaultExpires)
	def(&c.NonceTTL, DefaultNonceTTL)
	def(&c.LockoutWindow, DefaultLockoutWindow)
	def(&c.LockoutFor, DefaultLockoutFor)
	def(&c.QualifyTimeout, DefaultQualifyTimeout)
	if c.MaxExpires < c.MinExpires {
		c.MaxExpires = c.MinExpires
	}
	c.DefaultExpires = min(max(c.DefaultExpires, c.MinExpires), c.MaxExpires)
	if c.MaxContacts <= 0 {
		c.MaxContacts = DefaultMaxContacts
	}
	if c.MaxBindings <= 0 {
		c.MaxBindings = DefaultMaxBindings
	}
	if c.LockoutFailures == 0 {
		c.LockoutFailures = DefaultLockoutFailures
	}
	if c.LockoutSourceUsers == 0 {
		c.LockoutSourceUsers = DefaultLockoutSourceUsers
	}
	if c.QualifyInterval == 0 {
		c.QualifyInterval = DefaultQualifyInterval
	}
	if c.QualifyInterval > 0 && c.QualifyTimeout > c.QualifyInterval {
		c.QualifyTimeout = c.QualifyInterval
	}
	if c.QualifyFailures <= 0 {
		c.QualifyFailures = DefaultQualifyFailures
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.UserAgent == "" {
		c.UserAgent = "hotline"
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Binding is one registered contact of a user.
type Binding struct {
	User       string
	Contact    sip.Uri        // as registered
	Source     netip.AddrPort // where the REGISTER came from: reach the agent here (NAT)
	Transport  string         // "UDP", "TCP"... as the REGISTER arrived
	Expires    time.Time
	Registered time.Time // last successful REGISTER of this binding
	CallID     string
	CSeq       uint32
	UserAgent  string
	Instance   string // +sip.instance, without quotes, if any
	RegID      string // reg-id (RFC 5626), if any
	// Path are the REGISTER's Path header values (RFC 3327), in order, each one name-addr
	// as received (e.g. "<sip:10.0.0.5:5060;lr;received=sip:198.51.100.7:5062>"): the
	// Route headers of requests to this binding, sent to the first one's host and port.
	Path []string
}

// RegistrarStats are counters of the registrar, and a few gauges.
type RegistrarStats struct {
	Registrations   uint64 // REGISTERs answered 200 (new, refresh, removal, query)
	Challenges      uint64 // 401s sent, stale ones included
	Stale           uint64 // 401s with stale=true (old or foreign nonce, reused nc)
	Replays         uint64 // of those, a reused nonce-count
	AuthFailures    uint64 // unknown user or wrong password (403)
	Forbidden       uint64 // authenticated, but not as the To user (403)
	Lockouts        uint64 // times a user was locked out at a source address
	SourceLockouts  uint64 // times a whole source address was locked out (many users failed)
	LockedOut       uint64 // REGISTERs refused because their user at that source was locked out
	SourceLockedOut uint64 // REGISTERs refused because their source was locked out
	Rejected        uint64 // other refusals: 400, 403 (too many contacts), 420, 423, 500, 503
	Expired         uint64 // bindings removed because they expired
	Unreachable     uint64 // bindings dropped after failed qualify pings
	Active          int    // live bindings
	Users           int    // users with a live binding
	LockedUsers     int    // (user, source address) pairs locked out now
	LockedSources   int    // source addresses locked out as a whole now
}

// binding is a Binding with the registrar's bookkeeping.
type binding struct {
	Binding
	key      string           // identity within the user: instance or contact URI
	params   sip.HeaderParams // Contact header parameters, echoed in the 200 (expires excluded)
	display  string
	failures int  // consecutive failed qualify pings
	pinging  bool // a qualify ping is in flight
}

// change is an OnChange call waiting to be made.
type change struct {
	user     string
	bindings []Binding
	reason   string
}

// Registrar keeps the bindings of registered users. Its methods are safe for concurrent use.
type Registrar struct {
	cfg    RegistrarConfig
	log    *slog.Logger
	nonces nonceSigner

	mu    sync.Mutex
	users map[string][]*binding // newest first
	total int
	// bySource counts bindings (expired ones not yet swept included) by the address they
	// were registered from; userSources is what each user added to it. The TCP idle check
	// asks whether a connection's address has a binding (tcp.go), for every idle
	// connection: a stranger's must cost a map look-up, not a walk over every binding.
	bySource    map[netip.AddrPort]int
	userSources map[string][]netip.AddrPort
	uses        nonceUses
	locks       lockouts
	pending     []change

	notifyMu sync.Mutex // serialises OnChange calls, in the order changes happened

	registrations, challenges, stale, replays, authFailures, forbidden,
	lockouts, sourceLockouts, lockedOut, sourceLockedOut, rejected, expired, unreachable atomic.Uint64

	runMu  sync.Mutex
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewRegistrar returns a registrar; call Start to expire bindings and qualify them.
func NewRegistrar(cfg RegistrarConfig) *Registrar {
	cfg.Algorithms = slices.Clone(cfg.Algorithms)
	cfg.setDefaults()
	r := &Registrar{
		cfg:      cfg,
		log:      cfg.Logger.With("caller", "sip/registrar"),
		nonces:   nonceSigner{key: slices.Clone(cfg.NonceSecret)},
		users:    make(map[string][]*binding),
		bySource: make(map[netip.AddrPort]int), userSources: make(map[string][]netip.AddrPort),
		uses:  nonceUses{m: make(map[string]nonceUse)},
		locks: newLockouts(),
	}
	if cfg.Credentials == nil {
		r.log.Warn("registrar has no credentials: every REGISTER will be refused")
	}
	return r
}

// HandleRegister answers a REGISTER; the server calls it from its OnRegister handler.
func (r *Registrar) HandleRegister(req *sip.Request, tx sip.ServerTransaction) {
	now := r.cfg.Now()
	pkt, _ := netip.ParseAddrPort(req.Source())
	pkt = netip.AddrPortFrom(pkt.Addr().Unmap(), pkt.Port())
	log := r.log.With("sip_call_id", registerCallID(req))

	if req.Method != sip.REGISTER {
		r.respond(req, tx, 405, "Method Not Allowed", sip.NewHeader("Allow", "REGISTER"))
		return
	}
	path, err := registerPath(req)
	if err != nil {
		log.Debug("REGISTER with a bad Path", "source", pkt.String(), "error", err)
		r.reject(req, tx, 400, "Bad Path")
		return
	}
	// src is who registers: the phone behind a trusted front, else the packet's source.
	src := r.registerSource(pkt, path, log)
	if src != pkt {
		log = log.With("source", src.String(), "front", pkt.String())
	} else {
		log = log.With("source", src.String())
	}
	r.mu.Lock()
	locked := r.locks.sourceLocked(src.Addr(), now)
	r.mu.Unlock()
	if locked {
		r.sourceLockedOut.Add(1)
		r.respond(req, tx, 403, "Forbidden")
		return
	}
	// §10.3 step 2: we support no extension that a registrar could be required to.
	if h := req.GetHeader("Require"); h != nil && strings.TrimSpace(h.Value()) != "" {
		r.reject(req, tx, 420, "Bad Extension", sip.NewHeader("Unsupported", h.Value()))
		return
	}

	// §10.3 step 3 and 4: authenticate and authorise.
	user, res, why := r.authenticate(req, now)
	if res != authChallenge && user != "" {
		r.mu.Lock()
		locked = r.locks.userLocked(user, src.Addr(), now)
		r.mu.Unlock()
		if locked {
			r.lockedOut.Add(1)
			log.Debug("REGISTER refused: user locked out at this source", "user", user)
			r.respond(req, tx, 403, "Forbidden")
			return
		}
	}
	switch res {
	case authChallenge:
		r.challenges.Add(1)
		r.respond(req, tx, 401, "Unauthorized", r.wwwAuthenticate(now, false)...)
		return
	case authStale, authReplay:
		if res == authReplay {
			r.replays.Add(1)
		}
		log.Debug("REGISTER with stale credentials", "user", user, "why", why)
		r.challenges.Add(1)
		r.stale.Add(1)
		r.respond(req, tx, 401, "Unauthorized", r.wwwAuthenticate(now, true)...)
		return
	case authBad:
		log.Debug("REGISTER with bad credentials", "user", user, "why", why)
		r.reject(req, tx, 400, "Bad Request")
		return
	case authFailed:
		r.authFailures.Add(1)
		r.mu.Lock()
		userLock, sourceLock := r.locks.fail(user, src.Addr(), now, &r.cfg)
		r.mu.Unlock()
		if userLock {
			r.lockouts.Add(1)
			log.Warn("user locked out at this source after failed REGISTERs", "user", user,
				"failures", r.cfg.LockoutFailures, "for", r.cfg.LockoutFor)
		}
		if sourceLock {
			r.sourceLockouts.Add(1)
			log.Warn("source locked out: many users failed from it", "last_user", user,
				"users", r.cfg.LockoutSourceUsers, "window", r.cfg.LockoutWindow, "for", r.cfg.LockoutFor)
		}
		if !userLock && !sourceLock {
			log.Debug("REGISTER refused", "user", user, "why", why)
		}
		r.respond(req, tx, 403, "Forbidden")
		return
	}
	if to := req.To(); to == nil || to.Address.User != user {
		r.forbidden.Add(1)
		log.Info("REGISTER for another user refused", "user", user)
		r.respond(req, tx, 403, "Forbidden")
		return
	}

	// §10.3 steps 6 to 8.
	reg, code, reason, hdrs := r.parseContacts(req, user, src, now)
	if reg != nil {
		reg.path = path
		for _, b := range reg.contacts {
			b.Path = path
		}
	}
	if code != 0 {
		r.reject(req, tx, code, reason, hdrs...)
		return
	}
	contacts, code, reason := r.apply(reg, now)
	// OnChange before the answer: when the phone has its 200, the listeners know.
	r.notify()
	if code != 0 {
		r.reject(req, tx, code, reason)
		return
	}
	r.registrations.Add(1)
	hdrs = append(contacts, sip.NewHeader("Date", now.UTC().Format(httpDate)))
	if len(path) > 0 && supportsPath(req) { // RFC 3327 §5.3: echoed, in order
		for _, p := range path {
			hdrs = append(hdrs, sip.NewHeader("Path", p))
		}
	}
	r.respond(req, tx, 200, "OK", hdrs...)
}

// httpDate is the SIP-date format (RFC 3261 §20.17, RFC 1123 in GMT).
const httpDate = "Mon, 02 Jan 2006 15:04:05 GMT"

// registration is a parsed REGISTER.
type registration struct {
	user      string
	wildcard  bool
	contacts  []*binding // Expires zero: remove
	callID    string
	cseq      uint32
	source    netip.AddrPort
	transport string
	userAgent string
	path      []string
}

// parseContacts reads Contact and Expires (§10.3 steps 6 and 7); a non-zero code is the
// error to answer with.
func (r *Registrar) parseContacts(req *sip.Request, user string, src netip.AddrPort, now time.Time) (*registration, int, string, []sip.Header) {
	reg := &registration{user: user, callID: registerCallID(req), source: src, transport: req.Transport()}
	if cs := req.CSeq(); cs != nil {
		reg.cseq = cs.SeqNo
	}
	if h := req.GetHeader("User-Agent"); h != nil {
		reg.userAgent = h.Value()
	}
	headerExp, hasHeaderExp := time.Duration(-1), false
	if h := req.GetHeader("Expires"); h != nil {
		d, ok := parseExpires(h.Value())
		if !ok {
			return nil, 400, "Bad Request", nil
		}
		headerExp, hasHeaderExp = d, true
	}
	hdrs := req.GetHeaders("Contact")
	var tooBrief bool
	for _, h := range hdrs {
		ch, ok := h.(*sip.ContactHeader)
		if !ok {
			return nil, 400, "Bad Request", nil
		}
		if ch.Address.Wildcard {
			if len(hdrs) != 1 || !hasHeaderExp || headerExp != 0 {
				return nil, 400, "Bad Request", nil
			}
			reg.wildcard = true
			return reg, 0, "", nil
		}
		if s := schemeOf(&ch.Address); (s != "sip" && s != "sips") || ch.Address.Host == "" {
			return nil, 400, "Bad Request", nil
		}
		exp := r.cfg.DefaultExpires
		if v, ok := paramGet(ch.Params, "expires"); ok {
			if exp, ok = parseExpires(v); !ok {
				return nil, 400, "Bad Request", nil
			}
		} else if hasHeaderExp {
			exp = headerExp
		}
		if exp > 0 && exp < r.cfg.MinExpires {
			tooBrief = true
		}
		exp = min(exp, r.cfg.MaxExpires)
		b := &binding{
			Binding: Binding{
				User: user, Contact: *ch.Address.Clone(), Source: src, Transport: reg.transport,
				Registered: now, CallID: reg.callID, CSeq: reg.cseq, UserAgent: reg.userAgent,
			},
			display: ch.DisplayName,
		}
		if exp > 0 {
			b.Expires = now.Add(exp)
		}
		for _, p := range ch.Params {
			if !strings.EqualFold(p.K, "expires") {
				b.params = append(b.params, p)
			}
		}
		if v, ok := paramGet(ch.Params, "+sip.instance"); ok {
			b.Instance = strings.Trim(v, `"`)
		}
		b.RegID, _ = paramGet(ch.Params, "reg-id")
		b.key = bindingKey(b)
		// A contact listed twice counts once: the last one wins.
		reg.contacts = slices.DeleteFunc(reg.contacts, func(o *binding) bool { return o.key == b.key })
		reg.contacts = append(reg.contacts, b)
	}
	if tooBrief {
		return nil, 423, "Interval Too Brief",
			[]sip.Header{sip.NewHeader("Min-Expires", strconv.Itoa(int(r.cfg.MinExpires/time.Second)))}
	}
	adding := 0
	for _, b := range reg.contacts {
		if !b.Expires.IsZero() {
			adding++
		}
	}
	if adding > r.cfg.MaxContacts {
		return nil, 403, "Too Many Contacts", nil
	}
	return reg, 0, "", nil
}

// apply updates the user's bindings (§10.3 steps 6 to 8) and returns the Contact headers
// of the 200, or the error to answer with, nothing applied.
func (r *Registrar) apply(reg *registration, now time.Time) ([]sip.Header, int, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expireUserLocked(reg.user, now)
	list := r.users[reg.user]

	// Step 7 (and 6 for "*"): the same Call-ID with a CSeq not higher aborts the request.
	find := func(key string) *binding {
		for _, e := range list {
			if e.key == key {
				return e
			}
		}
		return nil
	}
	outOfOrder := func(e *binding) bool { return e.CallID == reg.callID && reg.cseq <= e.CSeq }
	adding := 0
	if reg.wildcard {
		for _, e := range list {
			if outOfOrder(e) {
				return nil, 500, "Server Internal Error"
			}
		}
	}
	for _, b := range reg.contacts {
		e := find(b.key)
		if e != nil && outOfOrder(e) {
			return nil, 500, "Server Internal Error"
		}
		if e == nil && !b.Expires.IsZero() {
			adding++
		}
	}
	if r.total+adding > r.cfg.MaxBindings {
		r.log.Warn("registrar full", "bindings", r.total, "max", r.cfg.MaxBindings)
		return nil, 503, "Service Unavailable"
	}

	added, changed, removed := false, false, false
	if reg.wildcard {
		removed = len(list) > 0
		list = nil
	}
	for _, b := range reg.contacts {
		e := find(b.key)
		switch {
		case b.Expires.IsZero():
			if e != nil {
				list = slices.DeleteFunc(list, func(o *binding) bool { return o == e })
				removed = true
			}
		case e != nil:
			if e.Source != b.Source || e.Transport != b.Transport || e.Contact.String() != b.Contact.String() ||
				!slices.Equal(e.Path, b.Path) {
				changed = true
			}
			e.Binding, e.params, e.display, e.failures = b.Binding, b.params, b.display, 0
		default:
			list = append(list, b)
			added = true
		}
	}
	// Newest first; beyond MaxContacts the least recently registered go.
	slices.SortStableFunc(list, func(a, b *binding) int { return b.Registered.Compare(a.Registered) })
	if len(list) > r.cfg.MaxContacts {
		list = list[:r.cfg.MaxContacts]
		removed = true
	}
	r.setLocked(reg.user, list)
	if added || changed || removed {
		reason := ReasonRegister
		if !added && !changed {
			reason = ReasonUnregister
		}
		r.queueLocked(reg.user, reason)
		r.log.Info("bindings changed", "user", reg.user, "reason", reason, "bindings", len(list),
			"source", reg.source.String(), "user_agent", reg.userAgent)
	}
	contacts := make([]sip.Header, 0, len(list))
	for _, e := range list {
		h := &sip.ContactHeader{DisplayName: e.display, Address: *e.Contact.Clone(), Params: e.params.Clone()}
		secs := int((e.Expires.Sub(now) + time.Second - 1) / time.Second)
		h.Params.Add("expires", strconv.Itoa(secs))
		contacts = append(contacts, h)
	}
	return contacts, 0, ""
}

// setLocked replaces a user's bindings and keeps the total and the index by source.
func (r *Registrar) setLocked(user string, list []*binding) {
	r.total += len(list) - len(r.users[user])
	for _, src := range r.userSources[user] {
		if r.bySource[src]--; r.bySource[src] <= 0 {
			delete(r.bySource, src)
		}
	}
	delete(r.userSources, user)
	if len(list) > 0 {
		srcs := make([]netip.AddrPort, len(list))
		for i, e := range list {
			srcs[i] = e.Source
			r.bySource[e.Source]++
		}
		r.userSources[user] = srcs
	}
	if len(list) == 0 {
		delete(r.users, user)
		return
	}
	r.users[user] = list
}

// expireUserLocked removes the user's expired bindings; true when some were.
func (r *Registrar) expireUserLocked(user string, now time.Time) bool {
	list := r.users[user]
	n := len(list)
	list = slices.DeleteFunc(slices.Clone(list), func(e *binding) bool { return !now.Before(e.Expires) })
	if len(list) == n {
		return false
	}
	r.expired.Add(uint64(n - len(list)))
	r.setLocked(user, list)
	r.queueLocked(user, ReasonExpired)
	r.log.Info("bindings expired", "user", user, "expired", n-len(list), "bindings", len(list))
	return true
}

// queueLocked records a change for OnChange, with the user's bindings as they are now.
func (r *Registrar) queueLocked(user, reason string) {
	if r.cfg.OnChange == nil {
		return
	}
	r.pending = append(r.pending, change{user: user, bindings: snapshot(r.users[user]), reason: reason})
}

// notify makes the pending OnChange calls, in order, outside the state lock.
func (r *Registrar) notify() {
	if r.cfg.OnChange == nil {
		return
	}
	r.notifyMu.Lock()
	defer r.notifyMu.Unlock()
	for {
		r.mu.Lock()
		batch := r.pending
		r.pending = nil
		r.mu.Unlock()
		if len(batch) == 0 {
			return
		}
		for _, c := range batch {
			r.cfg.OnChange(c.user, c.bindings, c.reason)
		}
	}
}

func snapshot(list []*binding) []Binding {
	if len(list) == 0 {
		return nil
	}
	out := make([]Binding, len(list))
	for i, e := range list {
		out[i] = e.Binding
		out[i].Contact = *e.Contact.Clone()
		out[i].Path = slices.Clone(e.Path)
	}
	return out
}

// Bindings returns the live bindings of user, newest first.
func (r *Registrar) Bindings(user string) []Binding {
	now := r.cfg.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	out := snapshot(r.users[user])
	return slices.DeleteFunc(out, func(b Binding) bool { return !now.Before(b.Expires) })
}

// Users returns the users with at least one live binding, sorted.
func (r *Registrar) Users() []string {
	now := r.cfg.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.users))
	for u, list := range r.users {
		if slices.ContainsFunc(list, func(e *binding) bool { return now.Before(e.Expires) }) {
			out = append(out, u)
		}
	}
	slices.Sort(out)
	return out
}

// Stats returns a snapshot of the counters.
func (r *Registrar) Stats() RegistrarStats {
	now := r.cfg.Now()
	s := RegistrarStats{
		Registrations: r.registrations.Load(), Challenges: r.challenges.Load(), Stale: r.stale.Load(),
		Replays: r.replays.Load(), AuthFailures: r.authFailures.Load(), Forbidden: r.forbidden.Load(),
		Lockouts: r.lockouts.Load(), SourceLockouts: r.sourceLockouts.Load(), LockedOut: r.lockedOut.Load(),
		SourceLockedOut: r.sourceLockedOut.Load(), Rejected: r.rejected.Load(),
		Expired: r.expired.Load(), Unreachable: r.unreachable.Load(),
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, list := range r.users {
		live := 0
		for _, e := range list {
			if now.Before(e.Expires) {
				live++
			}
		}
		s.Active += live
		if live > 0 {
			s.Users++
		}
	}
	s.LockedUsers, s.LockedSources = r.locks.count(now)
	return s
}

func (r *Registrar) respond(req *sip.Request, tx sip.ServerTransaction, code int, reason string, hdrs ...sip.Header) {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	res.AppendHeader(sip.NewHeader("Server", r.cfg.UserAgent))
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	if err := tx.Respond(res); err != nil {
		r.log.Debug("respond failed", "status", code, "error", err)
	}
}

func (r *Registrar) reject(req *sip.Request, tx sip.ServerTransaction, code int, reason string, hdrs ...sip.Header) {
	r.rejected.Add(1)
	r.respond(req, tx, code, reason, hdrs...)
}

// parseExpires reads delta-seconds; values beyond 2³²-1 are taken as that (RFC 3261 §20.19).
func parseExpires(s string) (time.Duration, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		n = 1<<32 - 1
	}
	return time.Duration(n) * time.Second, true
}

func paramGet(p sip.HeaderParams, key string) (string, bool) {
	for _, kv := range p {
		if strings.EqualFold(kv.K, key) {
			return kv.V, true
		}
	}
	return "", false
}

// bindingKey is b.Key().
func bindingKey(b *binding) string { return b.Key() }

// Key identifies a binding within its user: its instance (and reg-id) when given (RFC 5626
// §6), else its contact URI by scheme, user, host, port and transport. A REGISTER with the
// same key replaces the binding.
func (b *Binding) Key() string {
	if b.Instance != "" {
		return "i:" + b.Instance + ";" + b.RegID
	}
	u := &b.Contact
	tp, _ := paramGet(u.UriParams, "transport")
	return "u:" + schemeOf(u) + ":" + u.User + "@" + strings.ToLower(u.Host) + ":" +
		strconv.Itoa(portOf(u)) + ";" + strings.ToLower(tp)
}

func registerCallID(req *sip.Request) string {
	if h := req.CallID(); h != nil {
		return h.Value()
	}
	return ""
}
