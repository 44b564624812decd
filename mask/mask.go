// Package mask hides citizens' phone numbers (个人信息保护法): 13812348000 is
// shown as 138****8000. It is a leaf package so that the API, the logs of
// sip/ and call/, and the tools can all use the one rule.
package mask

import "strings"

// Number masks a phone number: from 11 digits on (a mainland mobile, a landline with its
// area code) the first 3 and the last 4 stay, 138****8000, 010****5678; with the country
// code (+86, 0086) before a mainland number, the code stays too, +86138****8000; 7 to 10
// digits (a local landline) keep the first 2 and last 2, 62****78; 5 and 6 keep the last
// 2; 4 or fewer are all masked, since what remains would be the number. Short service
// numbers (12345, 110) are masked too: the rule does not know which short numbers are
// public (callers that know leave them out). An empty string stays empty. A leading '+'
// is kept and not counted.
func Number(s string) string {
	if s == "" {
		return ""
	}
	prefix := ""
	if strings.HasPrefix(s, "+") {
		prefix, s = "+", s[1:]
	}
	head, tail := keep(s)
	r := []rune(s)
	n := len(r)
	var b strings.Builder
	b.WriteString(prefix)
	b.WriteString(string(r[:head]))
	b.WriteString(strings.Repeat("*", n-head-tail))
	b.WriteString(string(r[n-tail:]))
	return b.String()
}

// keep is how many characters of the number s stay at its head and its tail.
func keep(s string) (head, tail int) {
	n := len([]rune(s))
	switch {
	case n == 13 && strings.HasPrefix(s, "86"): // +86 and a mainland number: as the number alone
		return 5, 4
	case n == 15 && strings.HasPrefix(s, "0086"):
		return 7, 4
	case n >= 11:
		return 3, 4
	case n >= 7:
		return 2, 2
	case n >= 5:
		return 0, 2
	}
	return 0, 0
}
