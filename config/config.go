// Package config reads hotline.yaml: one YAML document decoded strictly into typed structs,
// defaults as named constants, and validation errors reported as `file:line: field: problem`.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
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
	DefaultDrainTimeout = 60 * time.Second
	DefaultLanguage     = "zh"
	DefaultMaxWait      = 10 * time.Minute
	DefaultServiceLevel = 15 * time.Second // GB/T 33358-2016: answer within 15 s
	DefaultMusicOnHold  = "moh"
	DefaultJoinPrompt   = "please_hold"
	DefaultExitPrompt   = "no_agents"
	DefaultUserAgent    = "hotline"

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
	NodeID       string       `yaml:"node_id"`
	Timezone     string       `yaml:"timezone"` // IANA zone of routes without their own, reports and the API's dates; default Asia/Shanghai
	SIP          SIP          `yaml:"sip"`
	HTTP         HTTP         `yaml:"http"`
	DataDir      string       `yaml:"data_dir"`
	CDRDSN       string       `yaml:"cdr_dsn"` // postgres://… for PostgreSQL; empty = SQLite in the data dir (the journal stays in the data dir)
	RTP          RTP          `yaml:"rtp"`
	DrainTimeout ivr.Duration `yaml:"drain_timeout"` // SIGTERM: how long live calls may continue
	Prompts      Prompts      `yaml:"prompts"`
	Trunks       []Trunk      `yaml:"trunks"`
	// OutboundTrunks carry survey calls and callbacks to citizens.
	OutboundTrunks []OutboundTrunk     `yaml:"outbound_trunks"`
	Routes         []ivr.Route         `yaml:"routes"`
	Menus          map[string]ivr.Menu `yaml:"menus"`
	Queues         map[string]Queue    `yaml:"queues"`
	Agents         []Agent             `yaml:"agents"`
	// Surveys are the survey scripts of outbound campaigns (云回访), by name.
	Surveys map[string]ivr.Survey `yaml:"surveys"`
	// Callback holds the campaigns' defaults and the human fallback; nil (absent) = no human
	// callback queue and no after-call surveys. Read it through [Config.CallbackSettings].
	Callback *Callback `yaml:"callback"`
}

// SIP is the signalling listener.
type SIP struct {
	Listen    string `yaml:"listen"`     // UDP and TCP
	MediaIP   string `yaml:"media_ip"`   // address put in SDP and bound for RTP; default the SIP listen address
	UserAgent string `yaml:"user_agent"` // Server / User-Agent header
}

// HTTP is the API listener.
type HTTP struct {
	Listen string `yaml:"listen"`
}

// RTP is the media port range and inactivity timeout.
type RTP struct {
	Ports   string       `yaml:"ports"`   // "LOW-HIGH", even-aligned
	Timeout ivr.Duration `yaml:"timeout"` // no RTP from the caller for this long ends the call
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
}

// OutboundTrunk is a carrier interconnect for calls we place: surveys, human callbacks and
// virtual-hold callbacks. Nothing outside its DialPlan is ever dialled.
type OutboundTrunk struct {
	Name        string       `yaml:"name"`
	Gateway     string       `yaml:"gateway"`      // sip:[user@]host[:port], e.g. sip:127.0.0.1:5090; required
	Transport   string       `yaml:"transport"`    // udp (default) or tcp
	Username    string       `yaml:"username"`     // digest credentials for a 401/407 (answered once); optional
	Password    string       `yaml:"password"`     // with username
	CallerID    string       `yaml:"caller_id"`    // number presented to the citizen, e.g. "12345"
	MaxChannels int          `yaml:"max_channels"` // calls at once on this trunk; default 30
	MaxCPS      float64      `yaml:"max_cps"`      // new calls per second; default 10
	RingTimeout ivr.Duration `yaml:"ring_timeout"` // unanswered after this → no-answer; default 30s
	// DialPlan: regular expressions (RE2, matched against the whole number) of the numbers
	// this trunk may dial; at least one. E.g. '1[3-9]\d{9}' for mainland mobiles.
	DialPlan []string `yaml:"dial_plan"`
	Codecs   []string `yaml:"codecs"` // preference order; empty = [PCMA, PCMU]
}

// CompiledDialPlan is t's dial plan compiled; Load has checked that it compiles (a pattern
// that does not is left out, so that nothing unchecked is allowed).
func (t OutboundTrunk) CompiledDialPlan() DialPlan {
	var p DialPlan
	for _, s := range t.DialPlan {
		if re, err := compileFull(s); err == nil {
			p = append(p, re)
		}
	}
	return p
}

// ParsedGateway is t's gateway URI parsed; Load has checked it.
func (t OutboundTrunk) ParsedGateway() (Gateway, error) { return ParseGateway(t.Gateway) }

// DialPlan is a compiled dial plan: a number is allowed if one pattern matches all of it.
type DialPlan []*regexp.Regexp

// Allows reports whether number is in the dial plan. An empty plan allows nothing.
func (p DialPlan) Allows(number string) bool {
	for _, re := range p {
		if re.MatchString(number) {
			return true
		}
	}
	return false
}

// CompileDialPlan compiles patterns, each anchored to match a whole number.
func CompileDialPlan(patterns []string) (DialPlan, error) {
	p := make(DialPlan, 0, len(patterns))
	for _, s := range patterns {
		re, err := compileFull(s)
		if err != nil {
			return nil, fmt.Errorf("dial plan pattern %q: %w", s, err)
		}
		p = append(p, re)
	}
	return p, nil
}

func compileFull(pattern string) (*regexp.Regexp, error) {
	return regexp.Compile(`^(?:` + pattern + `)$`)
}

// Gateway is a parsed outbound gateway URI.
type Gateway struct {
	User string // the user part, "" if none
	Host string // IP address (IPv6 without brackets) or DNS name
	Port int    // 5060 if the URI has none
}

// HostPort is "host:port" ("[::1]:5060" for IPv6).
func (g Gateway) HostPort() string { return net.JoinHostPort(g.Host, strconv.Itoa(g.Port)) }

var hostnameRe = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$`)

// ParseGateway reads sip:[user@]host[:port]: host an IPv4 address, a bracketed IPv6
// address or a DNS name; port 1-65535 (default 5060). URI parameters and headers are
// refused (say transport: tcp instead of ;transport=tcp), and so is sips: (no TLS yet).
func ParseGateway(uri string) (Gateway, error) {
	bad := func(why string) (Gateway, error) {
		return Gateway{}, fmt.Errorf("want a SIP URI such as sip:192.0.2.1:5060, got %q (%s)", uri, why)
	}
	rest, ok := cutPrefixFold(uri, "sip:")
	if !ok {
		return bad("it must start with sip:")
	}
	if strings.ContainsAny(rest, ";?") {
		return bad("no URI parameters or headers; set transport: for the transport")
	}
	g := Gateway{Port: 5060}
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		g.User, rest = rest[:i], rest[i+1:]
		if g.User == "" || strings.ContainsFunc(g.User, func(r rune) bool { return r <= ' ' || r == '@' || r == ':' }) {
			return bad("bad user part")
		}
	}
	host, port := rest, ""
	if strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return bad("unclosed [ of an IPv6 address")
		}
		host, port = rest[1:end], rest[end+1:]
		if a, err := netip.ParseAddr(host); err != nil || !a.Is6() || a.Zone() != "" {
			return bad("bad IPv6 address")
		}
		if port != "" && !strings.HasPrefix(port, ":") {
			return bad("junk after the address")
		}
		port = strings.TrimPrefix(port, ":")
	} else {
		if h, p, found := strings.Cut(rest, ":"); found {
			host, port = h, p
		}
		if a, err := netip.ParseAddr(host); err == nil && !a.Is4() || err != nil && (!hostnameRe.MatchString(host) || len(host) > 253) {
			return bad("bad host")
		}
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || port[0] == '+' {
			return bad("port must be 1-65535")
		}
		g.Port = n
	}
	g.Host = host
	return g, nil
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}

// OutboundTrunk returns the outbound trunk called name.
func (c *Config) OutboundTrunk(name string) (OutboundTrunk, bool) {
	for _, t := range c.OutboundTrunks {
		if t.Name == name {
			return t, true
		}
	}
	return OutboundTrunk{}, false
}

// Callback is the `callback:` section: defaults of outbound campaigns (calling window,
// pacing, retries, deadline), the human callback queue that takes over what the machine
// cannot finish (件件有回音), and the after-call survey rule.
type Callback struct {
	Queue         string       `yaml:"queue"`          // the human callback queue; default "callback"; must be configured
	Trunk         string       `yaml:"trunk"`          // outbound trunk of human and in-queue callbacks; default the first outbound trunk
	Deadline      ivr.Duration `yaml:"deadline"`       // a case is due this long after its closure; default 24h
	AtRisk        ivr.Duration `yaml:"at_risk"`        // targets due within this are at risk; default 2h
	Window        Window       `yaml:"window"`         // calling window; default 09:00-20:00 every day
	MaxAttempts   int          `yaml:"max_attempts"`   // machine attempts per target; default 3
	Retry         Retry        `yaml:"retry"`          // delay before the next attempt, by outcome
	RingTimeout   ivr.Duration `yaml:"ring_timeout"`   // default 30s
	MaxConcurrent int          `yaml:"max_concurrent"` // survey calls at once per campaign; default 30
	MaxCPS        float64      `yaml:"max_cps"`        // new calls per second per campaign; default 5
	// FallbackDissatisfied hands a citizen who answered dissatisfied to a human too; default
	// true (never nil after Load).
	FallbackDissatisfied *bool      `yaml:"fallback_dissatisfied"`
	DoNotCall            []string   `yaml:"do_not_call"` // numbers never dialled
	AfterCall            *AfterCall `yaml:"after_call"`  // nil = no automatic survey after calls
}

// Window is a daily calling window in the config's time zone, with the routes' calendar: no
// calls on Holidays; Workdays (调休) take the rule of a Monday. From equal to To is all day,
// To before From runs past midnight, and To may be "24:00".
type Window struct {
	From     string   `yaml:"from"`     // "09:00"
	To       string   `yaml:"to"`       // "20:00"
	Days     []string `yaml:"days"`     // "mon-fri", "sat"...; empty = every day
	Holidays []string `yaml:"holidays"` // "2026-10-01"
	Workdays []string `yaml:"workdays"` // make-up working days (weekend dates)
}

// Open reports whether now falls in w, read in the IANA zone tz ("" = Asia/Shanghai).
func (w Window) Open(now time.Time, tz string) bool {
	r := w.route(tz)
	return r.Open(now)
}

// route is w as a route's opening rules, which ivr implements and validates.
func (w Window) route(tz string) ivr.Route {
	return ivr.Route{Number: "window", Queue: "window", ClosedMenu: "closed", Timezone: tz,
		Hours: []ivr.Hours{{Days: w.Days, Open: w.From, Close: w.To}}, Holidays: w.Holidays, Workdays: w.Workdays}
}

// Retry is the wait before the next attempt after each retryable outcome (an invalid number
// is not retried).
type Retry struct {
	Busy        ivr.Duration `yaml:"busy"`        // 486/600; default 10m
	NoAnswer    ivr.Duration `yaml:"no_answer"`   // 408/480 or the ring timeout; default 30m
	Failed      ivr.Duration `yaml:"failed"`      // 403/5xx and our own failures; default 5m
	Interrupted ivr.Duration `yaml:"interrupted"` // cut by a crash or a shutdown; default 5m
}

// AfterCall schedules a survey after every answered inbound call of Queues.
type AfterCall struct {
	Queues []string     `yaml:"queues"` // at least one configured queue
	Delay  ivr.Duration `yaml:"delay"`  // after the call ends, e.g. 30m; 0 = at once
	Script string       `yaml:"script"` // a survey name; required
	Trunk  string       `yaml:"trunk"`  // default callback.trunk
}

// CallbackSettings is the callback section with its defaults; when the config has none, the
// defaults with no human callback queue (Queue "") and no after-call rule.
func (c *Config) CallbackSettings() Callback {
	if c.Callback != nil {
		return *c.Callback
	}
	cb := Callback{Queue: "-"} // not defaulted: no human fallback
	cb.applyDefaults(c.OutboundTrunks)
	cb.Queue = ""
	return cb
}

func (cb *Callback) applyDefaults(trunks []OutboundTrunk) {
	setDur := func(d *ivr.Duration, def time.Duration) {
		if *d == 0 {
			*d = ivr.Duration(def)
		}
	}
	if cb.Queue == "" {
		cb.Queue = DefaultCallbackQueue
	}
	if cb.Trunk == "" && len(trunks) > 0 {
		cb.Trunk = trunks[0].Name
	}
	setDur(&cb.Deadline, DefaultCallbackDeadline)
	setDur(&cb.AtRisk, DefaultCallbackAtRisk)
	if cb.Window.From == "" {
		cb.Window.From = DefaultCallbackWindowFrom
	}
	if cb.Window.To == "" {
		cb.Window.To = DefaultCallbackWindowTo
	}
	if cb.MaxAttempts == 0 {
		cb.MaxAttempts = DefaultCallbackMaxAttempts
	}
	setDur(&cb.Retry.Busy, DefaultCallbackRetryBusy)
	setDur(&cb.Retry.NoAnswer, DefaultCallbackRetryNoAnswer)
	setDur(&cb.Retry.Failed, DefaultCallbackRetryFailed)
	setDur(&cb.Retry.Interrupted, DefaultCallbackRetryInterrupted)
	setDur(&cb.RingTimeout, DefaultCallbackRingTimeout)
	if cb.MaxConcurrent == 0 {
		cb.MaxConcurrent = DefaultCallbackMaxConcurrent
	}
	if cb.MaxCPS == 0 {
		cb.MaxCPS = DefaultCallbackMaxCPS
	}
	if cb.FallbackDissatisfied == nil {
		yes := true
		cb.FallbackDissatisfied = &yes
	}
	if a := cb.AfterCall; a != nil && a.Trunk == "" {
		a.Trunk = cb.Trunk
	}
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
	if c.HTTP.Listen == "" {
		c.HTTP.Listen = DefaultHTTPListen
	}
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
