package config

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/ivr"
)

var (
	nameRe   = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
	numberRe = regexp.MustCompile(`^\+?[0-9*#]+$`)
)

// validate checks the whole document and returns every problem with its field path.
func (c *Config) validate(known Known) []ivr.FieldError {
	var errs []ivr.FieldError
	add := func(path, format string, args ...any) {
		errs = append(errs, ivr.FieldError{Path: path, Problem: fmt.Sprintf(format, args...)})
	}
	if _, err := time.LoadLocation(c.Timezone); err != nil {
		add("timezone", "unknown time zone %q", c.Timezone)
	}
	if _, err := netip.ParseAddrPort(c.SIP.Listen); err != nil {
		add("sip.listen", "want IP:PORT, got %q", c.SIP.Listen)
	}
	if c.SIP.MediaIP != "" {
		if _, err := netip.ParseAddr(c.SIP.MediaIP); err != nil {
			add("sip.media_ip", "want an IP address, got %q", c.SIP.MediaIP)
		}
	}
	if _, err := netip.ParseAddrPort(c.HTTP.Listen); err != nil {
		add("http.listen", "want IP:PORT, got %q", c.HTTP.Listen)
	}
	if _, _, err := ParsePorts(c.RTP.Ports); err != nil {
		add("rtp.ports", "%v", err)
	}
	if c.RTP.Timeout < 0 {
		add("rtp.timeout", "must not be negative")
	}
	if c.DrainTimeout < 0 {
		add("drain_timeout", "must not be negative")
	}
	if !nameRe.MatchString(c.Prompts.Language) {
		add("prompts.language", "invalid language %q", c.Prompts.Language)
	}

	hasQueue := func(q string) bool { _, ok := c.Queues[q]; return ok }
	hasPrompt := func(p string) bool { return known.Prompt == nil || known.Prompt(p) }

	if len(c.Trunks) == 0 {
		add("trunks", "at least one trunk is needed to receive calls")
	}
	trunkNames := map[string]bool{}
	for i, t := range c.Trunks {
		p := fmt.Sprintf("trunks[%d]", i)
		switch {
		case t.Name == "":
			add(p+".name", "required")
		case !nameRe.MatchString(t.Name):
			add(p+".name", "invalid name %q (letters, digits, _ . -)", t.Name)
		case trunkNames[t.Name]:
			add(p+".name", "duplicate trunk %q", t.Name)
		}
		trunkNames[t.Name] = true
		if len(t.Sources) == 0 {
			add(p+".sources", "at least one source address or CIDR is required")
		}
		for j, s := range t.Sources {
			if _, err := ParsePrefix(s); err != nil {
				add(fmt.Sprintf("%s.sources[%d]", p, j), "want an address or CIDR, got %q", s)
			}
		}
		if len(t.DIDs) == 0 {
			add(p+".dids", "at least one called number is required")
		}
		for j, d := range t.DIDs {
			if !numberRe.MatchString(d) {
				add(fmt.Sprintf("%s.dids[%d]", p, j), "want a number, got %q", d)
			}
		}
		if t.AnswerDelay < 0 || t.AnswerDelay.D() > time.Minute {
			add(p+".answer_delay", "must be between 0 and 1m")
		}
		if t.MaxCalls < 0 {
			add(p+".max_calls", "must not be negative")
		}
		for j, codec := range t.Codecs {
			if !slices.Contains([]string{"PCMA", "PCMU", "G711A", "G711U"}, strings.ToUpper(codec)) {
				add(fmt.Sprintf("%s.codecs[%d]", p, j), "unsupported codec %q (PCMA, PCMU)", codec)
			}
		}
	}

	routed := map[string]bool{}
	for i := range c.Routes {
		r := &c.Routes[i]
		p := fmt.Sprintf("routes[%d]", i)
		errs = append(errs, r.Validate(p, c.Menus, hasQueue)...)
		if routed[r.Number] {
			add(p+".number", "duplicate route for %q", r.Number)
		}
		routed[r.Number] = true
	}
	// An unrouted number is reported where the trunk lists it, once per number.
	unrouted := map[string]bool{}
	for i, t := range c.Trunks {
		for j, d := range t.DIDs {
			if !routed[d] && !unrouted[d] && numberRe.MatchString(d) {
				unrouted[d] = true
				add(fmt.Sprintf("trunks[%d].dids[%d]", i, j), "number %q has no route (add one under routes)", d)
			}
		}
	}
	errs = append(errs, ivr.ValidateMenus(c.Menus, hasPrompt, hasQueue)...)

	for name, q := range c.Queues {
		p := "queues." + name
		if !nameRe.MatchString(name) {
			add(p, "invalid queue name %q", name)
		}
		if q.MaxWait < 0 {
			add(p+".max_wait", "must not be negative")
		}
		if q.ServiceLevel < 0 {
			add(p+".service_level", "must not be negative")
		}
		for field, prompt := range map[string]string{"music_on_hold": q.MusicOnHold, "join_prompt": q.JoinPrompt, "exit_prompt": q.ExitPrompt} {
			if !hasPrompt(prompt) {
				add(p+"."+field, "unknown prompt %q", prompt)
			}
		}
		if _, err := acd.ParseStrategy(q.Strategy); err != nil {
			add(p+".strategy", "unknown strategy %q (longest-idle, fewest-calls, round-robin, ring-all, best-skill, random)", q.Strategy)
		}
		for skill, level := range q.Skills {
			if level < 1 || level > 10 {
				add(p+".skills."+skill, "minimum level %d outside 1-10", level)
			}
		}
		for field, d := range map[string]ivr.Duration{"ring_timeout": q.RingTimeout, "wrap_up": q.WrapUp, "retry_delay": q.RetryDelay, "announce_frequency": q.AnnounceFrequency} {
			if d < 0 {
				add(p+"."+field, "must not be negative")
			}
		}
		if q.AnnounceFrequency > 0 && q.AnnounceFrequency.D() < 10*time.Second {
			add(p+".announce_frequency", "at least 10s (or 0 for none)")
		}
		if q.MaxCallers < 0 {
			add(p+".max_callers", "must not be negative")
		}
		if q.ExitDigit != "" && (len(q.ExitDigit) != 1 || !strings.Contains("0123456789*#", q.ExitDigit)) {
			add(p+".exit_digit", "want one of 0-9 * #, got %q", q.ExitDigit)
		}
		if q.ExitMenu != "" {
			if _, ok := c.Menus[q.ExitMenu]; !ok {
				add(p+".exit_menu", "unknown menu %q", q.ExitMenu)
			} else if q.ExitDigit == "" {
				add(p+".exit_menu", "needs exit_digit")
			}
		}
		for i, e := range q.Escalations {
			ep := fmt.Sprintf("%s.escalations[%d]", p, i)
			switch {
			case e.After <= 0:
				add(ep+".after", "required and positive")
			case e.Overflow != "" && !hasQueue(e.Overflow):
				add(ep+".overflow", "unknown queue %q", e.Overflow)
			case e.Overflow != "" && i != len(q.Escalations)-1:
				add(ep+".overflow", "an overflow must be the last step")
			case e.Overflow == "" && (e.Skill == "" || e.MinLevel < 1 || e.MinLevel > 10):
				add(ep, "want skill with min_level 1-10, or overflow")
			}
		}
	}

	ids := map[string]bool{}
	for i, a := range c.Agents {
		p := fmt.Sprintf("agents[%d]", i)
		switch {
		case !numberRe.MatchString(a.ID):
			add(p+".id", "want a numeric id, got %q", a.ID)
		case ids[a.ID]:
			add(p+".id", "duplicate agent %q", a.ID)
		}
		ids[a.ID] = true
		if a.Password == "" {
			add(p+".password", "required (agents register with digest auth)")
		}
		if a.WrapUp != nil && *a.WrapUp < 0 {
			add(p+".wrap_up", "must not be negative")
		}
		for skill, level := range a.Skills {
			if level < 1 || level > 10 {
				add(p+".skills."+skill, "level %d outside 1-10", level)
			}
			if !hasQueue(skill) && !nameRe.MatchString(skill) {
				add(p+".skills."+skill, "invalid skill name")
			}
		}
	}
	// Deterministic order (maps are ranged above); Load re-sorts by line.
	slices.SortStableFunc(errs, func(a, b ivr.FieldError) int {
		if c := compareFields(a.Path, b.Path); c != 0 {
			return c
		}
		return strings.Compare(a.Problem, b.Problem)
	})
	return errs
}
