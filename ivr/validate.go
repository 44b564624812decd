package ivr

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// FieldError is one configuration problem. Path names the field the way the
// YAML nests it ("menus.main.options.7", "routes[0].hours[1].open") so the
// config loader can map it to file:line.
type FieldError struct {
	Path    string
	Problem string
}

// Error returns "Path: Problem".
func (e FieldError) Error() string { return e.Path + ": " + e.Problem }

// ValidateMenus checks the menu graph: menu names, option keys (one of 0-9, *
// and #), action strings, the menus, queues and prompts they name, durations,
// retry counts and input settings. Defaults are taken into account (a zero
// field is fine) and menus are not modified. hasPrompt and hasQueue may be nil
// to skip those checks. Problems come sorted by menu name, then field.
// Reachability is not checked.
func ValidateMenus(menus map[string]Menu, hasPrompt func(string) bool, hasQueue func(string) bool) []FieldError {
	var errs []FieldError
	for _, name := range slices.Sorted(maps.Keys(menus)) {
		m := menus[name]
		p := "menus." + name
		add := func(field, format string, args ...any) {
			errs = append(errs, FieldError{Path: p + "." + field, Problem: fmt.Sprintf(format, args...)})
		}
		if !validName(name) {
			errs = append(errs, FieldError{Path: p, Problem: fmt.Sprintf("bad menu name %q (letters, digits and _-./: only)", name)})
		}
		prompt := func(field, s string) {
			if !validName(s) {
				add(field, "bad prompt name %q", s)
			} else if hasPrompt != nil && !hasPrompt(s) {
				add(field, "unknown prompt %q", s)
			}
		}
		action := func(field, s string) {
			a, err := ParseAction(s)
			if err != nil {
				add(field, "%s", strings.TrimPrefix(err.Error(), ErrBadAction.Error()+": "))
				return
			}
			switch a.Kind {
			case ActMenu:
				if _, ok := menus[a.Target]; !ok {
					add(field, "unknown menu %q", a.Target)
				}
			case ActQueue:
				if hasQueue != nil && !hasQueue(a.Target) {
					add(field, "unknown queue %q", a.Target)
				}
			case ActPlay:
				if hasPrompt != nil && !hasPrompt(a.Target) {
					add(field, "unknown prompt %q", a.Target)
				}
			}
		}

		for i, s := range m.Greeting {
			prompt(fmt.Sprintf("greeting[%d]", i), s)
		}
		for i, s := range m.Prompts {
			prompt(fmt.Sprintf("prompts[%d]", i), s)
		}
		if m.InvalidPrompt != "" {
			prompt("invalid_prompt", m.InvalidPrompt)
		}
		if m.TimeoutPrompt != "" {
			prompt("timeout_prompt", m.TimeoutPrompt)
		}
		if m.Timeout < 0 {
			add("timeout", "must not be negative (0 = default %s)", DefaultTimeout)
		}
		if m.MaxRetries < 0 {
			add("max_retries", "must not be negative (0 = default %d)", DefaultMaxRetries)
		}
		if strings.TrimSpace(m.Fallback) != "" {
			if a, err := ParseAction(m.Fallback); err == nil && a.Kind == ActRepeat {
				add("fallback", "\"repeat\" would replay the menu forever; use \"menu %s\" for a fresh try", name)
			} else {
				action("fallback", m.Fallback)
			}
		}
		for _, key := range slices.Sorted(maps.Keys(m.Options)) {
			field := "options." + key
			if !isDTMFKey(key) {
				add(field, "bad key %q (want one of 0-9, * and #)", key)
				continue
			}
			action(field, m.Options[key])
		}
		if in := m.Input; in != nil {
			if len(m.Options) > 0 {
				add("options", "not used when input is set (an input menu collects an entry, not a choice)")
			}
			d := *in
			(&Menu{Input: &d}).ApplyDefaults()
			if in.MaxDigits < 0 {
				add("input.max_digits", "must not be negative (0 = default %d)", DefaultMaxDigits)
			}
			if in.MinDigits < 0 {
				add("input.min_digits", "must not be negative (0 = default %d)", DefaultMinDigits)
			}
			if in.MaxDigits >= 0 && in.MinDigits >= 0 && d.MinDigits > d.MaxDigits {
				add("input.min_digits", "%d is more than max_digits %d", d.MinDigits, d.MaxDigits)
			}
			if in.Terminator != "" && !isDTMFKey(in.Terminator) {
				add("input.terminator", "bad key %q (want one of 0-9, * and #)", in.Terminator)
			}
			if in.InterDigitTimeout < 0 {
				add("input.inter_digit_timeout", "must not be negative (0 = default %s)", DefaultInterDigitTimeout)
			}
			if strings.TrimSpace(in.Store) == "" {
				add("input.store", "required (the variable that keeps the entry)")
			}
			if strings.TrimSpace(in.Next) == "" {
				add("input.next", "required (the action after a valid entry)")
			} else {
				action("input.next", in.Next)
			}
		}
	}
	return errs
}

// isDTMFKey reports whether s is one DTMF key a caller can press in a menu.
func isDTMFKey(s string) bool {
	return len(s) == 1 && (s[0] >= '0' && s[0] <= '9' || s[0] == '*' || s[0] == '#')
}
