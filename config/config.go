// Package config reads hotline.yaml: one YAML document decoded strictly into typed structs,
// defaults as named constants, and validation errors reported as `file:line: field: problem`.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
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
)

// Config is the whole server configuration.
type Config struct {
	NodeID       string              `yaml:"node_id"`
	SIP          SIP                 `yaml:"sip"`
	HTTP         HTTP                `yaml:"http"`
	DataDir      string              `yaml:"data_dir"`
	RTP          RTP                 `yaml:"rtp"`
	DrainTimeout ivr.Duration        `yaml:"drain_timeout"` // SIGTERM: how long live calls may continue
	Prompts      Prompts             `yaml:"prompts"`
	Trunks       []Trunk             `yaml:"trunks"`
	Routes       []ivr.Route         `yaml:"routes"`
	Menus        map[string]ivr.Menu `yaml:"menus"`
	Queues       map[string]Queue    `yaml:"queues"`
	Agents       []Agent             `yaml:"agents"`
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
	ExitPrompt   string       `yaml:"exit_prompt"`   // played when MaxWait is reached
	ServiceLevel ivr.Duration `yaml:"service_level"` // threshold for service level; default 15 s
}

// Agent is a person who answers calls from a SIP softphone.
type Agent struct {
	ID       string         `yaml:"id"`
	Name     string         `yaml:"name"`
	Password string         `yaml:"password"`
	Skills   map[string]int `yaml:"skills"` // skill → level 1-10
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
func Load(name string, data []byte, known Known) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data), yaml.Strict())
	if err := dec.Decode(&c); err != nil {
		return nil, decodeError(name, err)
	}
	c.applyDefaults()
	problems := c.validate(known)
	if len(problems) == 0 {
		return &c, nil
	}
	file, _ := parser.ParseBytes(data, 0)
	errs := make(Errors, 0, len(problems))
	for _, p := range problems {
		errs = append(errs, &Error{File: name, Line: lineOf(file, p.Path), Field: p.Path, Problem: p.Problem})
	}
	slices.SortStableFunc(errs, func(a, b *Error) int { return a.Line - b.Line })
	return nil, errs
}

// decodeError turns a go-yaml error into `file:line: field: problem`.
func decodeError(name string, err error) error {
	var ye yaml.Error
	if errors.As(err, &ye) {
		line := 0
		if tok := ye.GetToken(); tok != nil && tok.Position != nil {
			line = tok.Position.Line
		}
		msg := ye.GetMessage()
		field := ""
		if tok := ye.GetToken(); tok != nil && strings.Contains(msg, "unknown field") {
			field = tok.Value
		}
		return &Error{File: name, Line: line, Field: field, Problem: msg}
	}
	return &Error{File: name, Problem: err.Error()}
}

// lineOf finds the line of a field path like "menus.main.options.7" or "trunks[0].sources[1]",
// falling back to the nearest parent that exists.
func lineOf(file *ast.File, field string) int {
	if file == nil {
		return 0
	}
	parts := splitPath(field)
	for n := len(parts); n > 0; n-- {
		p, err := yaml.PathString("$" + strings.Join(parts[:n], ""))
		if err != nil {
			continue
		}
		node, err := p.FilterFile(file)
		if err != nil || node == nil {
			continue
		}
		if tok := node.GetToken(); tok != nil && tok.Position != nil {
			return tok.Position.Line
		}
	}
	return 0
}

// splitPath turns "a.b[0].c" into [".a", ".b", "[0]", ".c"], quoting keys go-yaml paths reserve.
func splitPath(field string) []string {
	var parts []string
	for _, seg := range strings.Split(field, ".") {
		name, idx, _ := strings.Cut(seg, "[")
		if name != "" {
			if strings.ContainsAny(name, "*'$@") || strings.IndexFunc(name, func(r rune) bool { return r >= '0' && r <= '9' }) == 0 {
				name = "'" + name + "'"
			}
			parts = append(parts, "."+name)
		}
		if idx != "" {
			for _, i := range strings.Split(idx, "[") {
				parts = append(parts, "["+i)
			}
		}
	}
	return parts
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
	for name, m := range c.Menus {
		m.ApplyDefaults()
		c.Menus[name] = m
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
		c.Queues[name] = q
	}
}

// ParsePorts reads "LOW-HIGH".
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
	if low < 1024 || high > 65535 || high-low < 2 {
		return 0, 0, fmt.Errorf("range %d-%d must lie within 1024-65535 and hold at least two ports", low, high)
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
