package ivr

import (
	"fmt"
	"strings"
	"unicode"
)

// ActionKind says what an [Action] does. The zero value is no action.
type ActionKind int

// Action kinds. The config spelling is given in each comment.
const (
	ActMenu      ActionKind = iota + 1 // "menu NAME": enter menu NAME
	ActQueue                           // "queue NAME": join queue NAME (ends the IVR)
	ActPlay                            // "play PROMPT": play PROMPT, then hang up (ends the IVR)
	ActHangup                          // "hangup": hang up (ends the IVR)
	ActRepeat                          // "repeat": replay this menu; keeps the failure count
	ActBack                            // "back": previous menu; at the entry menu, replay it
	ActVoicemail                       // "voicemail": leave a message to be called back (ends the IVR; the call records it)
	ActLookup                          // "lookup NAME": ask the self-service hook NAME and speak its answer (lookup.go)
)

var kindWords = [...]string{
	ActMenu:   "menu",
	ActQueue:  "queue",
	ActPlay:   "play",
	ActHangup: "hangup",
	ActRepeat: "repeat",
	ActBack:   "back",

	ActVoicemail: "voicemail",
	ActLookup:    "lookup",
}

// String returns the config keyword of k ("menu", "queue", ...), or "" for
// the zero or an unknown kind.
func (k ActionKind) String() string {
	if k <= 0 || int(k) >= len(kindWords) {
		return ""
	}
	return kindWords[k]
}

// hasTarget reports whether the kind takes a NAME argument.
func (k ActionKind) hasTarget() bool {
	return k == ActMenu || k == ActQueue || k == ActPlay || k == ActLookup
}

// Terminal reports whether the action ends the IVR (queue, play, hangup, voicemail).
func (a Action) Terminal() bool {
	return a.Kind == ActQueue || a.Kind == ActPlay || a.Kind == ActHangup || a.Kind == ActVoicemail
}

// Action is a parsed action string: what to do after a digit, an entry or a
// failure. Target is the menu, queue or prompt name for ActMenu, ActQueue and
// ActPlay, and empty otherwise.
type Action struct {
	Kind   ActionKind
	Target string
}

// ParseAction parses "menu NAME", "queue NAME", "play PROMPT", "hangup",
// "repeat", "back", "voicemail" or "lookup NAME". Keywords are lower case; words are separated by
// white space, leading and trailing space is ignored. Names are made of
// letters, digits and "_-./:" (prompt names such as "zh/welcome"). Errors wrap
// [ErrBadAction].
func ParseAction(s string) (Action, error) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return Action{}, fmt.Errorf("%w: empty", ErrBadAction)
	}
	var kind ActionKind
	for k := ActMenu; k <= ActLookup; k++ {
		if f[0] == kindWords[k] {
			kind = k
			break
		}
	}
	if kind == 0 {
		return Action{}, fmt.Errorf("%w: %q: unknown action %q (want menu, queue, play, hangup, repeat, back, voicemail or lookup)", ErrBadAction, s, f[0])
	}
	if !kind.hasTarget() {
		if len(f) != 1 {
			return Action{}, fmt.Errorf("%w: %q: %s takes no argument", ErrBadAction, s, kind)
		}
		return Action{Kind: kind}, nil
	}
	if len(f) != 2 {
		return Action{}, fmt.Errorf("%w: %q: want %q followed by one name", ErrBadAction, s, kind.String())
	}
	if !validName(f[1]) {
		return Action{}, fmt.Errorf("%w: %q: bad name %q (letters, digits and _-./: only)", ErrBadAction, s, f[1])
	}
	return Action{Kind: kind, Target: f[1]}, nil
}

// String returns the config spelling of a: "queue consult", "hangup". The
// zero Action is "". ParseAction(a.String()) == a for every parsed action.
func (a Action) String() string {
	if a.Kind.hasTarget() {
		return a.Kind.String() + " " + a.Target
	}
	return a.Kind.String()
}

// validName reports whether s can be a menu, queue or prompt name.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		switch {
		case unicode.IsLetter(r), unicode.IsDigit(r):
		case r == '_', r == '-', r == '.', r == '/', r == ':':
		default:
			return false
		}
	}
	return true
}
