package config

import (
	"fmt"
	"strings"

	"github.com/hotline12345/hotline/ivr"
)

// DirectoryEntry is a departmental hotline or office agents may transfer a citizen to, or
// add to a three-way call (一号对外, 双向转接, 三方通话). Nothing outside the directory is
// ever dialled for an agent: a REFER or a conference names an entry, never a number.
type DirectoryEntry struct {
	// Name is what agents dial or REFER to (sip:<name>@…) and the API names; e.g. "12315"
	// or "market-regulation". Unique, and not a queue's name.
	Name   string `yaml:"name"`
	Number string `yaml:"number"` // dialled through Trunk; must be in its dial plan
	Trunk  string `yaml:"trunk"`  // an outbound trunk
	// Hours when the entry takes calls, in the top-level timezone; empty = always. Outside
	// them a transfer is refused (480) and a conference is not started.
	Hours []ivr.Hours `yaml:"hours"`
}

// validateDirectory checks the directory against the queues and outbound trunks.
func (c *Config) validateDirectory() []ivr.FieldError {
	var errs []ivr.FieldError
	add := func(path, format string, args ...any) {
		errs = append(errs, ivr.FieldError{Path: path, Problem: fmt.Sprintf(format, args...)})
	}
	names := map[string]bool{}
	for i, e := range c.Directory {
		p := fmt.Sprintf("directory[%d]", i)
		switch {
		case e.Name == "":
			add(p+".name", "required")
		case !nameRe.MatchString(e.Name):
			add(p+".name", "want letters, digits, '.', '_' or '-', got %q", e.Name)
		case names[e.Name]:
			add(p+".name", "duplicate entry %q", e.Name)
		case hasQueueName(c, e.Name):
			add(p+".name", "%q is a queue's name: a transfer to it would be ambiguous", e.Name)
		}
		names[e.Name] = true
		if !numberRe.MatchString(e.Number) || strings.ContainsAny(e.Number, "*#") {
			add(p+".number", "want a number (digits, optional leading +), got %q", e.Number)
		}
		t, ok := c.OutboundTrunk(e.Trunk)
		switch {
		case e.Trunk == "":
			add(p+".trunk", "required (an outbound trunk)")
		case !ok:
			add(p+".trunk", "unknown outbound trunk %q", e.Trunk)
		case e.Number != "" && !t.CompiledDialPlan().Allows(e.Number):
			add(p+".number", "%q is outside the dial plan of trunk %s", e.Number, e.Trunk)
		}
		errs = append(errs, ivr.ValidateHours(p+".hours", e.Hours)...)
	}
	return errs
}

func hasQueueName(c *Config, name string) bool {
	_, ok := c.Queues[name]
	return ok
}
