// Package mask hides citizens' phone numbers (个人信息保护法): 13812348000 is
// shown as 138****8000. It is a leaf package so that the API, the logs of
// sip/ and call/, and the tools can all use the one rule.
package mask

import "strings"

// Number masks a phone number: the first 3 and last 4 digits stay, every
// character between becomes '*' (138****8000, 010****5678). Shorter numbers
// keep less: 8 to 10 characters keep the first 2 and last 2; 5 to 7 keep the
// last 2; 4 or fewer are all masked, since what remains would be the number.
// Short service numbers (12345, 110) are masked too: the rule does not know
// which short numbers are public. An empty string stays empty. A leading '+'
// is kept and not counted.
func Number(s string) string {
	if s == "" {
		return ""
	}
	prefix := ""
	if strings.HasPrefix(s, "+") {
		prefix, s = "+", s[1:]
	}
	r := []rune(s)
	n := len(r)
	head, tail := 0, 0
	switch {
	case n >= 11:
		head, tail = 3, 4
	case n >= 8:
		head, tail = 2, 2
	case n >= 5:
		head, tail = 0, 2
	}
	var b strings.Builder
	b.WriteString(prefix)
	b.WriteString(string(r[:head]))
	b.WriteString(strings.Repeat("*", n-head-tail))
	b.WriteString(string(r[n-tail:]))
	return b.String()
}
