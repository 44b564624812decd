package ivr

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Defaults applied by [Menu.ApplyDefaults] to zero fields.
const (
	DefaultTimeout           = 5 * time.Second
	DefaultMaxRetries        = 3
	DefaultFallback          = "hangup"
	DefaultMaxDigits         = 20
	DefaultMinDigits         = 1
	DefaultTerminator        = "#"
	DefaultInterDigitTimeout = 3 * time.Second
	// MaxTransitionsWithoutInput bounds menu visits (menu, back, repeat,
	// fallback) without a caller digit in between; see the package doc.
	MaxTransitionsWithoutInput = 50
)

// Menu is one node of the IVR graph.
type Menu struct {
	Greeting      []string          `yaml:"greeting"`       // played before Prompts on the first visit of the call only (not on retries or returns)
	Prompts       []string          `yaml:"prompts"`        // prompt names played in order, e.g. ["zh/welcome", "zh/menu_main"]
	Options       map[string]string `yaml:"options"`        // digit ("0"-"9","*","#") → action string
	Timeout       Duration          `yaml:"timeout"`        // wait for the first digit after the prompts ended; default 5s
	MaxRetries    int               `yaml:"max_retries"`    // invalid+timeout failures before the fallback; default 3
	InvalidPrompt string            `yaml:"invalid_prompt"` // played after an invalid digit; empty = none
	TimeoutPrompt string            `yaml:"timeout_prompt"` // played after no digit; empty = none
	Fallback      string            `yaml:"fallback"`       // action after MaxRetries failures; default "hangup"
	Input         *Input            `yaml:"input"`          // set → this menu collects a multi-digit entry instead of a single-digit choice
}

// Input makes a [Menu] collect a multi-digit entry (a case number, an ID).
type Input struct {
	MaxDigits         int      `yaml:"max_digits"`          // default 20; reaching it ends the entry
	MinDigits         int      `yaml:"min_digits"`          // default 1; fewer → invalid
	Terminator        string   `yaml:"terminator"`          // default "#"; ends the entry, not stored
	InterDigitTimeout Duration `yaml:"inter_digit_timeout"` // default 3s; silence after a digit ends the entry
	Store             string   `yaml:"store"`               // variable name, e.g. "case_number"
	Next              string   `yaml:"next"`                // action after a valid entry
}

// ApplyDefaults sets the zero fields of m (and of *m.Input) to the package
// defaults. Negative values are left for validation to report.
func (m *Menu) ApplyDefaults() {
	if m.Timeout == 0 {
		m.Timeout = Duration(DefaultTimeout)
	}
	if m.MaxRetries == 0 {
		m.MaxRetries = DefaultMaxRetries
	}
	if strings.TrimSpace(m.Fallback) == "" {
		m.Fallback = DefaultFallback
	}
	if in := m.Input; in != nil {
		if in.MaxDigits == 0 {
			in.MaxDigits = DefaultMaxDigits
		}
		if in.MinDigits == 0 {
			in.MinDigits = DefaultMinDigits
		}
		if in.Terminator == "" {
			in.Terminator = DefaultTerminator
		}
		if in.InterDigitTimeout == 0 {
			in.InterDigitTimeout = Duration(DefaultInterDigitTimeout)
		}
	}
}

// withDefaults returns a copy of m with defaults applied, leaving m and its
// Input untouched (menus are shared read-only by concurrent calls).
func (m Menu) withDefaults() Menu {
	if m.Input != nil {
		in := *m.Input
		m.Input = &in
	}
	m.ApplyDefaults()
	return m
}

// Duration is a time.Duration spelled in config as Go duration text ("5s",
// "1m30s", "500ms"). A bare number is taken as seconds ("5" = 5s), as in
// Asterisk and FreeSWITCH configs. It implements encoding.TextUnmarshaler,
// which github.com/goccy/go-yaml uses for scalars.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String returns the Go duration text ("5s").
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "" {
		*d = 0
		return nil
	}
	if plainNumber(s) {
		secs, err := strconv.ParseFloat(s, 64)
		if err != nil || secs > float64(math.MaxInt64)/float64(time.Second) {
			return fmt.Errorf("bad duration %q", s)
		}
		*d = Duration(secs * float64(time.Second))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("bad duration %q (want e.g. 5s, 1m30s, 500ms)", s)
	}
	*d = Duration(v)
	return nil
}

// plainNumber reports whether s is an unsigned decimal number ("5", "2.5").
func plainNumber(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if (r < '0' || r > '9') && r != '.' {
			return false
		}
	}
	return true
}
