// Log masking: the phone numbers in free text (a log line, a SIP URI, an error) and a
// slog.Handler that masks the attributes that may carry them.
//
// A phone number in text is a run of 7 to 15 digits (E.164 allows 15), optionally after a
// "+", not part of a decimal fraction or of a longer run of digits; it is masked by the
// rule of Number. Shorter runs — agent extensions (1001), service numbers (12345, 110) —
// are not citizens' numbers and stay readable, as does all other text:
// sip:13800138000@10.0.0.1:5060 → sip:138****8000@10.0.0.1:5060.

package mask

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
)

const (
	minDigits = 7  // shorter runs are extensions and service numbers
	maxDigits = 15 // longer runs are not phone numbers (E.164)
)

// Text returns s with every phone number in it masked (see above); s is returned as it
// is when it holds none.
func Text(s string) string {
	var b []byte // allocated at the first number
	last := 0
	for i := 0; i < len(s); {
		if !isDigit(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		n := j - i
		if n >= minDigits && n <= maxDigits && (i == 0 || s[i-1] != '.') {
			if b == nil {
				b = make([]byte, 0, len(s))
			}
			keepHead, keepTail := keep(s[i:j])
			b = append(b, s[last:i+keepHead]...)
			for range n - keepHead - keepTail {
				b = append(b, '*')
			}
			b = append(b, s[j-keepTail:j]...)
			last = j
		}
		i = j
	}
	if b == nil {
		return s
	}
	return string(append(b, s[last:]...))
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// keys are the log attribute keys whose values may carry a citizen's number: the call's
// parties (from, to, caller, called, ...), numbers and targets dialled, SIP URIs, request
// and status lines, sipgo's dump of a message it could not parse (data), and errors (which
// may quote a number). The value of any other key is
// left alone, so call ids, ports and durations stay exact. The component attribute
// "caller" ("sip", "acd") is among them, harmlessly: it holds no digits.
var keys = map[string]bool{
	"caller": true, "callee": true, "called": true, "from": true, "to": true,
	"number": true, "phone": true, "target": true, "ani": true, "dnis": true,
	"uri": true, "ruri": true, "request_uri": true, "contact": true, "user": true,
	"req": true, "request": true, "res": true, "data": true, "err": true, "error": true,
}

// NumberKey reports whether values of the attribute key are masked (case-insensitive).
func NumberKey(key string) bool { return keys[strings.ToLower(key)] }

// Handler is a slog.Handler that masks the phone numbers in the values of NumberKey keys and in
// the message before passing the record on.
type Handler struct{ next slog.Handler }

// NewHandler wraps next.
func NewHandler(next slog.Handler) *Handler { return &Handler{next: next} }

// Enabled reports whether next handles level.
func (h *Handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

// Handle masks r's message and attributes and passes it on.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, Text(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(maskAttr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

// WithAttrs masks attrs once, when the logger is made.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	masked := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		masked[i] = maskAttr(a)
	}
	return &Handler{next: h.next.WithAttrs(masked)}
}

// WithGroup opens a group in next.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{next: h.next.WithGroup(name)}
}

// maskAttr masks a's value if NumberKey(a.Key); groups are walked.
func maskAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		g := v.Group()
		masked := make([]slog.Attr, len(g))
		for i, ga := range g {
			masked[i] = maskAttr(ga)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(masked...)}
	}
	if !NumberKey(a.Key) {
		return a
	}
	switch v.Kind() {
	case slog.KindString:
		if s := v.String(); Text(s) != s {
			return slog.String(a.Key, Text(s))
		}
	case slog.KindInt64, slog.KindUint64:
		s := v.String()
		if m := Text(s); m != s {
			return slog.String(a.Key, m)
		}
	case slog.KindAny: // errors, URIs, addresses: as the text handler would print them (fmt recovers a panicking String)
		s := fmt.Sprint(v.Any())
		if m := Text(s); m != s {
			return slog.String(a.Key, m)
		}
	}
	return a
}
