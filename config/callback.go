package config

// The outbound side of the configuration: outbound trunks and their dial plans, and the
// callback section (campaign defaults, the human callback queue, the after-call rule).

import (
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/hotline12345/hotline/ivr"
)

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
	SRTP     string   `yaml:"srtp"`   // off (default), optional (offer a=crypto), required (offer RTP/SAVP)
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
	// Recording of the campaigns' human callback tasks (agent and citizen); nil = the
	// callback queue's own rule. Survey calls (no agent) are not recorded.
	Recording *Recording `yaml:"recording"`
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
