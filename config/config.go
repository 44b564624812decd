// Package config reads hotline.yaml: one YAML document decoded strictly into typed structs,
// defaults as named constants, and validation errors reported as `file:line: field: problem`.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"

	"github.com/hotline12345/hotline/ivr"
)

// Defaults of the server, per DESIGN.md.
const (
	DefaultSIPListen    = "127.0.0.1:5060"
	DefaultHTTPListen   = "127.0.0.1:8080"
	DefaultDataDir      = "./data"
	DefaultRTPPorts     = "10000-20000"
	DefaultRTPTimeout   = 30 * time.Second
	MaxLatchProbation   = 100 // rtp.latch_probation: 2 s of packets
	DefaultDrainTimeout = 60 * time.Second
	DefaultLanguage     = "zh"
	DefaultMaxWait      = 10 * time.Minute
	DefaultServiceLevel = 15 * time.Second // GB/T 33358-2016: answer within 15 s
	DefaultMusicOnHold  = "moh"
	DefaultJoinPrompt   = "please_hold"
	DefaultExitPrompt   = "no_agents"
	DefaultUserAgent    = "hotline"

	// The SIP guards.
	DefaultAuthAlgorithm     = "MD5"
	DefaultLockoutFailures   = 10
	DefaultLockoutSourceUser = 30
	DefaultLockoutWindow     = time.Minute
	DefaultLockoutDuration   = 5 * time.Minute
	DefaultInviteRate        = 20 // per second and source outside the trunks (Kamailio pike's default is 30 per 2 s)
	DefaultInviteBurst       = 40
	DefaultRegisterRate      = 20 // per second and source: a centre's NAT carries many phones
	DefaultRegisterBurst     = 200
	DefaultTCPIdleTimeout    = 5 * time.Minute
	DefaultTCPMaxPerSource   = 500

	// Outbound trunks (云回访 and callbacks).
	DefaultOutboundTransport   = "udp"
	DefaultOutboundMaxChannels = 30
	DefaultOutboundMaxCPS      = 10
	DefaultOutboundRingTimeout = 30 * time.Second

	// The callback section: campaign defaults and the human fallback.
	DefaultCallbackQueue            = "callback"
	DefaultCallbackDeadline         = 24 * time.Hour // a case is called back within 24 h of its closure
	DefaultCallbackAtRisk           = 2 * time.Hour  // targets due within this are at risk
	DefaultCallbackWindowFrom       = "09:00"
	DefaultCallbackWindowTo         = "20:00"
	DefaultCallbackMaxAttempts      = 3
	DefaultCallbackRetryBusy        = 10 * time.Minute
	DefaultCallbackRetryNoAnswer    = 30 * time.Minute
	DefaultCallbackRetryFailed      = 5 * time.Minute
	DefaultCallbackRetryInterrupted = 5 * time.Minute
	DefaultCallbackRingTimeout      = 30 * time.Second
	DefaultCallbackMaxConcurrent    = 30
	DefaultCallbackMaxCPS           = 5
	// DefaultQueueCallbackDigit is the key that books a callback in a queue (virtual hold).
	DefaultQueueCallbackDigit = "1"
)

// Config is the whole server configuration.
type Config struct {
	NodeID   string `yaml:"node_id"`
	Timezone string `yaml:"timezone"` // IANA zone of routes without their own, reports and the API's dates; default Asia/Shanghai
	SIP      SIP    `yaml:"sip"`
	HTTP     HTTP   `yaml:"http"`
	DataDir  string `yaml:"data_dir"`
	CDRDSN   string `yaml:"cdr_dsn"` // postgres://… for PostgreSQL; empty = SQLite in the data dir (the journal stays in the data dir)
	// CDRSpillLimit: records and agent events kept in memory while neither
	// the store nor the journal takes them (a full disk); from then on new
	// calls get 503. 0 = cdr.DefaultSpillLimit.
	CDRSpillLimit int          `yaml:"cdr_spill_limit"`
	RTP           RTP          `yaml:"rtp"`
	DrainTimeout  ivr.Duration `yaml:"drain_timeout"` // SIGTERM: how long live calls may continue
	MemoryLimit   string       `yaml:"memory_limit"`  // soft limit of the Go heap ("1536MiB", "2GiB"); empty = half the memory of the machine or its cgroup; GOMEMLIMIT in the environment wins
	Prompts       Prompts      `yaml:"prompts"`
	Trunks        []Trunk      `yaml:"trunks"`
	// OutboundTrunks carry survey calls and callbacks to citizens.
	OutboundTrunks []OutboundTrunk     `yaml:"outbound_trunks"`
	Routes         []ivr.Route         `yaml:"routes"`
	Menus          map[string]ivr.Menu `yaml:"menus"`
	// Lookups are self-service hooks (自助查询) that menus run with "lookup NAME".
	Lookups map[string]ivr.Lookup `yaml:"lookups"`
	Queues  map[string]Queue      `yaml:"queues"`
	Agents  []Agent               `yaml:"agents"`
	// Surveys are the survey scripts of outbound campaigns (云回访), by name.
	Surveys map[string]ivr.Survey `yaml:"surveys"`
	// Callback holds the campaigns' defaults and the human fallback; nil (absent) = no human
	// callback queue and no after-call surveys. Read it through [Config.CallbackSettings].
	Callback *Callback `yaml:"callback"`
	// Records: retention of records and citizens' data (records.go).
	Records Records `yaml:"records"`
	// Log: masking of citizens' numbers in the server log (records.go).
	Log Log `yaml:"log"`
	// Voicemail: the menus' voicemail action (留言, recording.go).
	Voicemail Voicemail `yaml:"voicemail"`
	// Webhooks receive the work-order feed (webhooks.go, docs/events.md).
	Webhooks []Webhook `yaml:"webhooks"`
	// Directory: departmental hotlines and offices agents transfer to or conference in
	// (directory.go); nothing outside it is dialled for an agent.
	Directory []DirectoryEntry `yaml:"directory"`
	// Cluster: this node is one of several sharing PostgreSQL (cluster.go); nil = alone.
	Cluster *Cluster `yaml:"cluster"`
}

// SIP is the signalling listener.
type SIP struct {
	Listen    string `yaml:"listen"`     // UDP and TCP
	MediaIP   string `yaml:"media_ip"`   // address put in SDP and bound for RTP; default the SIP listen address
	UserAgent string `yaml:"user_agent"` // Server / User-Agent header
	// AuthAlgorithms are the digest algorithms REGISTERs are challenged with, one
	// WWW-Authenticate each, in this order (RFC 8760: SHA-256 first); default [MD5].
	AuthAlgorithms []string   `yaml:"auth_algorithms"`
	Lockout        Lockout    `yaml:"lockout"`
	RateLimits     RateLimits `yaml:"rate_limits"`
	TCP            SIPTCP     `yaml:"tcp"`
	// TLSListen is the SIP over TLS listener. Empty: the listen address with the next port
	// (5060 → 5061; with port 0 a free one), skipped with a warning when it cannot be bound;
	// "off": no TLS.
	TLSListen string `yaml:"tls_listen"`
	// TLSCert and TLSKey are PEM files; both empty: a self-signed ECDSA certificate is
	// made in the data dir at first start (sip-tls.crt, sip-tls.key) and reused after.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
}

// TLSOff is the sip.tls_listen value that turns SIP over TLS off.
const TLSOff = "off"

// Digest algorithms accepted in sip.auth_algorithms.
var AuthAlgorithms = []string{"SHA-256", "MD5"}

// Lockout is the registrar's brute-force guard.
type Lockout struct {
	Failures    int          `yaml:"failures"`     // wrong answers for one user from one address within window lock that user there; -1 = off
	SourceUsers int          `yaml:"source_users"` // distinct users failing from one address within window lock the whole address; -1 = off
	Window      ivr.Duration `yaml:"window"`
	Duration    ivr.Duration `yaml:"duration"` // how long a lockout lasts
}

// RateLimits are per-source-address token buckets for requests that cost us work.
type RateLimits struct {
	Invite   RateLimit `yaml:"invite"`   // initial INVITEs from sources outside the trunks (trunks have max_calls)
	Register RateLimit `yaml:"register"` // REGISTERs
}

// RateLimit is a token bucket: Rate requests per second on average, bursts of Burst.
// Rate -1 disables it.
type RateLimit struct {
	Rate  float64 `yaml:"rate"`
	Burst int     `yaml:"burst"`
}

// SIPTCP bounds the SIP TCP connections.
type SIPTCP struct {
	IdleTimeout  ivr.Duration `yaml:"idle_timeout"`   // a connection that carries nothing for this long is closed (unless a dialog or a fresh binding uses it); -1s = never
	MaxPerSource int          `yaml:"max_per_source"` // connections open at once from one address; -1 = no cap
}

// RTP is the media port range and inactivity timeout.
type RTP struct {
	Ports   string       `yaml:"ports"`   // "LOW-HIGH", even-aligned
	Timeout ivr.Duration `yaml:"timeout"` // no RTP from the caller for this long ends the call

	// Latching (RTP-bleed protection): RTP is accepted only from a source on the SDP's or
	// the signalling's address, after LatchProbation packets in sequence (the SDP's own
	// address and port at once); another source may take over after a new SDP or when the
	// latched one has been silent for LatchSilence.
	LatchProbation  int          `yaml:"latch_probation"`   // 0 = media.DefaultProbation (3)
	LatchSilence    ivr.Duration `yaml:"latch_silence"`     // 0 = media.DefaultRelatchSilence (2s)
	LatchAnyAddress bool         `yaml:"latch_any_address"` // accept sources on any address (probation only): for media relays that use neither address

	// AgentsSRTP is the SRTP policy of the calls we make to agents' phones: off (default,
	// plain RTP/AVP), optional (RTP/AVP with a=crypto: SRTP if the phone takes it),
	// required (RTP/SAVP, and calls from agents' phones without usable crypto get 488).
	// Calls from agents' phones take SRTP when they offer it, whatever the policy.
	AgentsSRTP string `yaml:"agents_srtp"`
}

// Prompts says where the voice prompts are and which language to play.
type Prompts struct {
	Dir      string `yaml:"dir"`      // directory of WAV files; empty = the set built into the binary
	Language string `yaml:"language"` // subdirectory tried first for a prompt name, e.g. "zh"
}

// Trunk is a carrier interconnect.
type Trunk struct {
	Name     string   `yaml:"name"`
	Sources  []string `yaml:"sources"` // CIDRs or addresses
	DIDs     []string `yaml:"dids"`    // called numbers delivered
	MaxCalls int      `yaml:"max_calls"`
	Codecs   []string `yaml:"codecs"` // preference order; default [PCMA, PCMU] as Chinese carriers use A-law
	// AnswerDelay: callers hear ringing (180) this long before we answer; default 0.
	AnswerDelay ivr.Duration `yaml:"answer_delay"`
	// SRTP: off, optional (default: SRTP when the offer has usable a=crypto), required.
	SRTP string `yaml:"srtp"`
	// InbandDTMF: read keypad tones in the callers' audio (gateways that send DTMF only
	// in-band); default false. RFC 4733 events from a call switch it off for that call.
	InbandDTMF bool `yaml:"inband_dtmf"`
}

// Queue is an ACD queue. Until agents exist a queue holds callers with music until MaxWait.
type Queue struct {
	Name         string       `yaml:"name"`          // display name, e.g. 咨询
	MaxWait      ivr.Duration `yaml:"max_wait"`      // then the caller hears ExitPrompt and the call ends (timeout)
	MusicOnHold  string       `yaml:"music_on_hold"` // prompt looped while waiting
	JoinPrompt   string       `yaml:"join_prompt"`   // played once on entering
	ExitPrompt   string       `yaml:"exit_prompt"`   // played when the caller leaves without an agent
	ServiceLevel ivr.Duration `yaml:"service_level"` // threshold for service level; default 15 s

	// Routing, in app_queue / mod_callcenter terms.
	Skills            map[string]int `yaml:"skills"`             // required skill → minimum level; default {queue name: 1}
	Strategy          string         `yaml:"strategy"`           // longest-idle (default), fewest-calls, round-robin, ring-all, best-skill, random
	RingTimeout       ivr.Duration   `yaml:"ring_timeout"`       // per agent; default 15s
	WrapUp            ivr.Duration   `yaml:"wrap_up"`            // after-call work; default 10s
	RetryDelay        ivr.Duration   `yaml:"retry_delay"`        // an agent who rejected is skipped this long; default 5s
	MaxCallers        int            `yaml:"max_callers"`        // 0 = unlimited
	JoinEmpty         *bool          `yaml:"join_empty"`         // wait when no agent is logged in; default true (24/7 hotline)
	LeaveWhenEmpty    bool           `yaml:"leave_when_empty"`   // waiting callers leave when the last agent logs out
	AutoPause         *bool          `yaml:"auto_pause"`         // pause an agent who does not answer; default true
	AnnounceFrequency ivr.Duration   `yaml:"announce_frequency"` // position and estimated wait; 0 = never
	ExitDigit         string         `yaml:"exit_digit"`         // a digit that leaves the queue
	ExitMenu          string         `yaml:"exit_menu"`          // where that digit goes; empty = the call ends
	Weight            int            `yaml:"weight"`             // priority of this queue's callers for agents serving several queues
	Escalations       []Escalation   `yaml:"escalations"`
	VIPNumbers        map[string]int `yaml:"vip_numbers"` // caller number → priority (higher first)
	// Rating: when the agent hangs up, the caller stays on to rate the service with one key
	// (话务"一次一评": 1 satisfied, 2 basically satisfied, 3 dissatisfied); default true.
	Rating *bool `yaml:"rating"`
	// Callback offers waiting callers a callback that keeps their place (virtual hold);
	// nil = never offered.
	Callback *QueueCallback `yaml:"callback"`
	// Recording (质检): off (default), all or a share of the calls, stereo or mono (recording.go).
	Recording *Recording `yaml:"recording"`
}

// QueueCallback is a queue's in-queue callback offer (virtual hold): when the caller's
// estimated wait exceeds After, they hear callback_offer and may press Digit.
type QueueCallback struct {
	After ivr.Duration `yaml:"after"` // estimated wait above which the offer is made; required
	Digit string       `yaml:"digit"` // default "1"; must differ from the queue's exit_digit
}

// Escalation widens who may take a waiting caller, or moves the caller to another queue,
// after a time; the caller keeps their place.
type Escalation struct {
	After    ivr.Duration `yaml:"after"`
	Skill    string       `yaml:"skill"`     // lower this skill's minimum level, or accept agents with it
	MinLevel int          `yaml:"min_level"` // with skill
	Overflow string       `yaml:"overflow"`  // another queue (last step only)
}

// Agent is a person who answers calls from a SIP softphone.
type Agent struct {
	ID       string         `yaml:"id"`
	Name     string         `yaml:"name"`
	Password string         `yaml:"password"`
	Skills   map[string]int `yaml:"skills"`  // skill → level 1-10
	WrapUp   *ivr.Duration  `yaml:"wrap_up"` // overrides the queues' wrap-up time
	// Supervisor: may listen to, whisper to and barge into other agents' calls (API with
	// the supervisor role, or feature codes *25/*26/*27 from this agent's phone).
	Supervisor bool `yaml:"supervisor"`
}

// Error is a configuration problem located in its file.
type Error struct {
	File    string
	Line    int
	Field   string
	Problem string
}

func (e *Error) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc += ":" + strconv.Itoa(e.Line)
	}
	if e.Field == "" {
		return loc + ": " + e.Problem
	}
	return loc + ": " + e.Field + ": " + e.Problem
}

// Errors is every problem found, in file order.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// LoadFile reads and validates a config file.
func LoadFile(path string, known Known) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Load(path, data, known)
}

// Known tells validation which prompt names exist (nil: do not check prompts).
type Known struct {
	Prompt func(name string) bool
}

// Load decodes and validates a config document; name is used in error messages.
// Every problem comes back as *Error or Errors, located as `name:line: field: problem`.
func Load(name string, data []byte, known Known) (*Config, error) {
	var file *ast.File
	err := safely(func() (err error) {
		file, err = parser.ParseBytes(data, 0)
		return err
	})
	if err != nil {
		return nil, parseError(name, data, err)
	}
	// An empty or comments-only file is an empty document: validation then
	// says what is missing.
	var body ast.Node
	if len(file.Docs) > 0 {
		body = file.Docs[0].Body
	}
	l := newLocator(body)
	pre := l.problems // YAML tags: go-yaml v1.19.2 panics on some (goccy/go-yaml#735)
	if len(file.Docs) > 1 {
		d := file.Docs[1]
		line := lineOfToken(d.Start)
		if line == 0 && d.Body != nil {
			line = lineOfToken(d.Body.GetToken())
		}
		pre = append(pre, &Error{Line: line, Problem: "a second YAML document is not supported (the file must hold one document; remove the ---)"})
	}
	pre = append(pre, l.checkText(body)...)
	if len(pre) > 0 {
		for _, e := range pre {
			e.File = name
		}
		return nil, sortErrors(pre)
	}

	var c Config
	if body != nil {
		err := safely(func() error {
			return yaml.NewDecoder(bytes.NewReader(data), yaml.Strict()).Decode(&c)
		})
		if err != nil {
			return nil, l.decodeError(name, err)
		}
	}
	c.applyDefaults()
	problems := c.validate(known)
	if len(problems) == 0 {
		return &c, nil
	}
	errs := make(Errors, 0, len(problems))
	for _, p := range problems {
		errs = append(errs, &Error{File: name, Line: l.lineOf(p.Path), Field: p.Path, Problem: p.Problem})
	}
	return nil, sortErrors(errs)
}

// sortErrors orders problems by line, then field, then text, so that the
// message is the same on every run.
func sortErrors(errs Errors) Errors {
	slices.SortStableFunc(errs, func(a, b *Error) int {
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		if c := compareFields(a.Field, b.Field); c != 0 {
			return c
		}
		return strings.Compare(a.Problem, b.Problem)
	})
	return errs
}

// compareFields compares field paths with numbers in numeric order
// ("dids[2]" before "dids[10]").
func compareFields(a, b string) int {
	for a != "" && b != "" {
		da, db := digitPrefix(a), digitPrefix(b)
		if da > 0 && db > 0 {
			na, nb := strings.TrimLeft(a[:da], "0"), strings.TrimLeft(b[:db], "0")
			if c := len(na) - len(nb); c != 0 {
				return c
			}
			if c := strings.Compare(na, nb); c != 0 {
				return c
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return int(a[0]) - int(b[0])
		}
		a, b = a[1:], b[1:]
	}
	return len(a) - len(b)
}

func digitPrefix(s string) int {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}

var dupKeyRe = regexp.MustCompile(`^mapping key (".*") already defined at \[(\d+):\d+\]$`)

// parseError locates a parser error: syntax errors at their token, duplicate
// keys at the second occurrence with the key's field path.
func parseError(name string, data []byte, err error) error {
	var ye yaml.Error
	if !errors.As(err, &ye) {
		return &Error{File: name, Problem: err.Error()}
	}
	e := &Error{File: name, Line: lineOfToken(ye.GetToken()), Problem: ye.GetMessage()}
	if m := dupKeyRe.FindStringSubmatch(e.Problem); m != nil {
		e.Problem = fmt.Sprintf("duplicate key: %s already defined on line %s", m[1], m[2])
		var file *ast.File
		err := safely(func() (err error) {
			file, err = parser.ParseBytes(data, 0, parser.AllowDuplicateMapKey())
			return err
		})
		p, ok := posOf(ye.GetToken())
		if err == nil && ok && len(file.Docs) > 0 {
			if at := newLocator(file.Docs[0].Body).byKey[p]; at != nil && at.parent != nil {
				e.Field = at.field()
			}
		}
	}
	return e
}

func (c *Config) applyDefaults() {
	if c.SIP.Listen == "" {
		c.SIP.Listen = DefaultSIPListen
	}
	if c.SIP.UserAgent == "" {
		c.SIP.UserAgent = DefaultUserAgent
	}
	if len(c.SIP.AuthAlgorithms) == 0 {
		c.SIP.AuthAlgorithms = []string{DefaultAuthAlgorithm}
	}
	for i, a := range c.SIP.AuthAlgorithms {
		c.SIP.AuthAlgorithms[i] = strings.ToUpper(a)
	}
	lo := &c.SIP.Lockout
	if lo.Failures == 0 {
		lo.Failures = DefaultLockoutFailures
	}
	if lo.SourceUsers == 0 {
		lo.SourceUsers = DefaultLockoutSourceUser
	}
	if lo.Window == 0 {
		lo.Window = ivr.Duration(DefaultLockoutWindow)
	}
	if lo.Duration == 0 {
		lo.Duration = ivr.Duration(DefaultLockoutDuration)
	}
	for _, rl := range []struct {
		l           *RateLimit
		rate, burst int
	}{{&c.SIP.RateLimits.Invite, DefaultInviteRate, DefaultInviteBurst}, {&c.SIP.RateLimits.Register, DefaultRegisterRate, DefaultRegisterBurst}} {
		if rl.l.Rate == 0 {
			rl.l.Rate = float64(rl.rate)
		}
		if rl.l.Burst == 0 {
			rl.l.Burst = max(rl.burst, int(math.Ceil(rl.l.Rate)))
		}
	}
	if c.SIP.TCP.IdleTimeout == 0 {
		c.SIP.TCP.IdleTimeout = ivr.Duration(DefaultTCPIdleTimeout)
	}
	if c.SIP.TCP.MaxPerSource == 0 {
		c.SIP.TCP.MaxPerSource = DefaultTCPMaxPerSource
	}
	c.HTTP.applyDefaults()
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.RTP.Ports == "" {
		c.RTP.Ports = DefaultRTPPorts
	}
	if c.RTP.Timeout == 0 {
		c.RTP.Timeout = ivr.Duration(DefaultRTPTimeout)
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = ivr.Duration(DefaultDrainTimeout)
	}
	if c.Prompts.Language == "" {
		c.Prompts.Language = DefaultLanguage
	}
	if c.NodeID == "" {
		c.NodeID, _ = os.Hostname()
	}
	if c.Timezone == "" {
		c.Timezone = ivr.DefaultTimezone
	}
	for i := range c.Routes {
		if _, err := time.LoadLocation(c.Timezone); err == nil && c.Routes[i].Timezone == "" { // a bad zone is reported once, at timezone
			c.Routes[i].Timezone = c.Timezone
		}
	}
	for name, m := range c.Menus {
		m.ApplyDefaults()
		c.Menus[name] = m
	}
	for name, sv := range c.Surveys {
		sv.ApplyDefaults()
		c.Surveys[name] = sv
	}
	for i := range c.OutboundTrunks {
		t := &c.OutboundTrunks[i]
		if t.Transport == "" {
			t.Transport = DefaultOutboundTransport
		}
		if t.MaxChannels == 0 {
			t.MaxChannels = DefaultOutboundMaxChannels
		}
		if t.MaxCPS == 0 {
			t.MaxCPS = DefaultOutboundMaxCPS
		}
		if t.RingTimeout == 0 {
			t.RingTimeout = ivr.Duration(DefaultOutboundRingTimeout)
		}
	}
	if c.Callback != nil {
		c.Callback.applyDefaults(c.OutboundTrunks)
	}
	c.Records.applyDefaults()
	c.Voicemail.applyDefaults()
	if c.Callback != nil && c.Callback.Recording != nil {
		c.Callback.Recording.applyDefaults()
	}
	applyWebhookDefaults(c.Webhooks)
	if c.Cluster != nil {
		c.Cluster.applyDefaults()
	}
	for name, q := range c.Queues {
		if q.MaxWait == 0 {
			q.MaxWait = ivr.Duration(DefaultMaxWait)
		}
		if q.MusicOnHold == "" {
			q.MusicOnHold = DefaultMusicOnHold
		}
		if q.JoinPrompt == "" {
			q.JoinPrompt = DefaultJoinPrompt
		}
		if q.ExitPrompt == "" {
			q.ExitPrompt = DefaultExitPrompt
		}
		if q.ServiceLevel == 0 {
			q.ServiceLevel = ivr.Duration(DefaultServiceLevel)
		}
		if q.Callback != nil && q.Callback.Digit == "" {
			q.Callback.Digit = DefaultQueueCallbackDigit
		}
		if q.Recording != nil {
			q.Recording.applyDefaults()
		}
		c.Queues[name] = q
	}
}

// ParsePorts reads "LOW-HIGH": 1024 <= LOW < HIGH <= 65535, LOW even, and at
// least two even (RTP) ports in the range, as media.NewPorts allocates them.
func ParsePorts(s string) (low, high int, err error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, fmt.Errorf("want LOW-HIGH, got %q", s)
	}
	if low, err = strconv.Atoi(strings.TrimSpace(a)); err == nil {
		high, err = strconv.Atoi(strings.TrimSpace(b))
	}
	if err != nil {
		return 0, 0, fmt.Errorf("want LOW-HIGH, got %q", s)
	}
	// media.NewPorts hands out the even ports LOW, LOW+2, ... up to HIGH, one
	// per call leg (RTP), and rejects an odd LOW at start-up: check it here,
	// where the error gets file:line.
	switch {
	case low < 1024 || high > 65535:
		err = fmt.Errorf("range %d-%d must lie within 1024-65535", low, high)
	case low >= high:
		err = fmt.Errorf("range %d-%d: LOW must be below HIGH", low, high)
	case low%2 != 0:
		err = fmt.Errorf("range %d-%d: LOW must be even (RTP uses the even ports from LOW on, one per call leg)", low, high)
	case high-low < 2:
		err = fmt.Errorf("range %d-%d holds one even port; at least two are needed (one RTP port per call leg)", low, high)
	}
	if err != nil {
		return 0, 0, err
	}
	return low, high, nil
}

// ParsePrefix reads a CIDR or a single address.
func ParsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// ParseSize parses a memory size the way GOMEMLIMIT writes it: a whole number with an
// optional unit B, KiB, MiB, GiB or TiB.
func ParseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("want a size such as 512MiB or 2GiB (units B, KiB, MiB, GiB, TiB)")
	}
	return n * mult, nil
}
