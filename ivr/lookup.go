package ivr

import (
	"context"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Self-service lookups (自助查询): an input menu's entry (a case number) is sent to an HTTP
// hook, and the answer is spoken to the caller from the prompt set. The action
// "lookup NAME" runs lookup NAME with the variable it names (Lookup.Var); the call
// package asks the hook (Hooks) and turns its answer into prompts. After the answer the
// IVR goes on with Lookup.Next; when the hook does not answer in time, fails, or answers
// something the config does not map, the caller hears Lookup.FallbackPrompt and the IVR
// goes on with Lookup.Fallback (usually an agent's queue).

// Defaults applied by [Lookup.ApplyDefaults] to zero fields.
const (
	DefaultLookupTimeout  = 3 * time.Second
	DefaultLookupVar      = "case_number"
	DefaultLookupNext     = "hangup"
	DefaultLookupFallback = "lookup_failed" // the prompt
	MaxLookupTimeout      = 30 * time.Second
)

// Lookup is one configured hook.
type Lookup struct {
	URL     string   `yaml:"url"`     // http(s)://…; asked as GET URL?case=VALUE
	Timeout Duration `yaml:"timeout"` // for the whole request; default 3s
	Var     string   `yaml:"var"`     // the variable sent (an input menu's store); default case_number
	// Statuses maps the answer's "status" to the prompts that say it, e.g.
	// processing: [case_status_pre, status_processing]. A status not listed is a failure.
	Statuses       map[string][]string `yaml:"statuses"`
	Next           string              `yaml:"next"`            // action after the answer; default hangup
	FallbackPrompt string              `yaml:"fallback_prompt"` // said on failure; default lookup_failed
	Fallback       string              `yaml:"fallback"`        // action on failure, e.g. "queue consult"; required
}

// ApplyDefaults sets the zero fields of l to the package defaults.
func (l *Lookup) ApplyDefaults() {
	if l.Timeout == 0 {
		l.Timeout = Duration(DefaultLookupTimeout)
	}
	if l.Var == "" {
		l.Var = DefaultLookupVar
	}
	if strings.TrimSpace(l.Next) == "" {
		l.Next = DefaultLookupNext
	}
	if l.FallbackPrompt == "" {
		l.FallbackPrompt = DefaultLookupFallback
	}
}

// Hooks asks lookups' hooks; the call package implements it over HTTP.
type Hooks interface {
	// Lookup asks the hook of lookup name about value and returns the answer's status
	// and the prompts that speak it, or an error (timeout, HTTP status, bad answer,
	// status not configured). It returns promptly when ctx ends.
	Lookup(ctx context.Context, name, value string) (status string, prompts []string, err error)
}

// lookup (looking_up) runs lookup c.next.Target and speaks its answer or the fallback;
// the IVR then goes on with Next or Fallback.
func (c *callRun) lookup() error {
	name := c.next.Target
	l, ok := c.r.Lookups[name]
	if !ok || c.r.Hooks == nil {
		return fmt.Errorf("%w: lookup %q", ErrNotConfigured, name)
	}
	l.ApplyDefaults()
	status, prompts, err := c.r.Hooks.Lookup(c.ctx, name, c.res.Vars[l.Var])
	if ctxErr := c.ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	next := l.Next
	if err != nil {
		c.log.Warn("ivr lookup failed", "lookup", name, "error", err)
		c.step(c.cur, "", EventLookupFailed)
		prompts, next = []string{l.FallbackPrompt}, l.Fallback
	} else {
		c.log.Info("ivr lookup answered", "lookup", name, "status", status)
		c.step(c.cur, status, EventLookup)
	}
	if _, _, err := c.playAll(prompts, false); err != nil {
		return err
	}
	act, err := ParseAction(next)
	if err != nil {
		return fmt.Errorf("lookup %s: %w", name, err)
	}
	c.next = act
	return c.fire(evLookedUp)
}

// ValidateLookups checks the lookups and the "lookup NAME" actions of the menus: URLs,
// timeouts, variables, statuses and their prompts, actions. hasPrompt and hasQueue may
// be nil to skip those checks. Paths are "lookups.NAME.field" and, for an unknown
// lookup, the menu field that names it.
func ValidateLookups(lookups map[string]Lookup, menus map[string]Menu, hasPrompt, hasQueue func(string) bool) []FieldError {
	var errs []FieldError
	for _, name := range slices.Sorted(maps.Keys(lookups)) {
		l := lookups[name]
		p := "lookups." + name
		add := func(field, format string, args ...any) {
			errs = append(errs, FieldError{Path: p + "." + field, Problem: fmt.Sprintf(format, args...)})
		}
		if !validName(name) {
			errs = append(errs, FieldError{Path: p, Problem: fmt.Sprintf("bad lookup name %q (letters, digits and _-./: only)", name)})
		}
		if u, err := url.Parse(l.URL); l.URL == "" {
			add("url", "required (the hook asked as GET url?case=…)")
		} else if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("url", "want an http:// or https:// URL, got %q", l.URL)
		}
		if l.Timeout < 0 || l.Timeout.D() > MaxLookupTimeout {
			add("timeout", "must be between 0 (default %s) and %s", DefaultLookupTimeout, MaxLookupTimeout)
		}
		if l.Var != "" && !validName(l.Var) {
			add("var", "bad variable name %q", l.Var)
		}
		prompt := func(field, s string) {
			if !validName(s) {
				add(field, "bad prompt name %q", s)
			} else if hasPrompt != nil && !hasPrompt(s) {
				add(field, "unknown prompt %q", s)
			}
		}
		if len(l.Statuses) == 0 {
			add("statuses", "required (each status the hook answers → the prompts that say it)")
		}
		for _, st := range slices.Sorted(maps.Keys(l.Statuses)) {
			if !validName(st) { // it goes into the record's ivr_path
				add("statuses."+st, "bad status %q (letters, digits and _-./: only)", st)
			}
			if len(l.Statuses[st]) == 0 {
				add("statuses."+st, "needs at least one prompt")
			}
			for i, s := range l.Statuses[st] {
				prompt(fmt.Sprintf("statuses.%s[%d]", st, i), s)
			}
		}
		d := l
		d.ApplyDefaults()
		prompt("fallback_prompt", d.FallbackPrompt)
		action := func(field, s string) {
			a, err := ParseAction(s)
			switch {
			case err != nil:
				add(field, "%s", strings.TrimPrefix(err.Error(), ErrBadAction.Error()+": "))
			case a.Kind == ActRepeat || a.Kind == ActBack || a.Kind == ActLookup:
				add(field, "%q cannot follow a lookup (want menu, queue, play or hangup)", s)
			case a.Kind == ActMenu:
				if _, ok := menus[a.Target]; !ok {
					add(field, "unknown menu %q", a.Target)
				}
			case a.Kind == ActQueue && hasQueue != nil && !hasQueue(a.Target):
				add(field, "unknown queue %q", a.Target)
			case a.Kind == ActPlay && hasPrompt != nil && !hasPrompt(a.Target):
				add(field, "unknown prompt %q", a.Target)
			}
		}
		action("next", d.Next)
		if strings.TrimSpace(l.Fallback) == "" {
			add("fallback", "required (where the caller goes when the hook fails, e.g. queue consult)")
		} else {
			action("fallback", l.Fallback)
		}
	}
	// Menus' "lookup NAME" actions must name a lookup.
	for _, mname := range slices.Sorted(maps.Keys(menus)) {
		m := menus[mname]
		check := func(field, s string) {
			if a, err := ParseAction(s); err == nil && a.Kind == ActLookup {
				if _, ok := lookups[a.Target]; !ok {
					errs = append(errs, FieldError{Path: "menus." + mname + "." + field, Problem: fmt.Sprintf("unknown lookup %q", a.Target)})
				}
			}
		}
		for _, key := range slices.Sorted(maps.Keys(m.Options)) {
			check("options."+key, m.Options[key])
		}
		check("fallback", m.Fallback)
		if m.Input != nil {
			check("input.next", m.Input.Next)
		}
	}
	return errs
}
