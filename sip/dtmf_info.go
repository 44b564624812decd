package sip

import (
	"strconv"
	"strings"
)

// parseInfoDTMF reads a digit from a SIP INFO body: application/dtmf-relay
// ("Signal=5\r\nDuration=160") or application/dtmf ("5"). known is false for other
// content types; ok is false when the body carries no valid digit.
func parseInfoDTMF(contentType string, body []byte) (digit rune, ok, known bool) {
	ct := strings.ToLower(strings.TrimSpace(strings.Split(contentType, ";")[0]))
	switch ct {
	case "application/dtmf-relay":
		for _, line := range strings.Split(string(body), "\n") {
			k, v, found := strings.Cut(line, "=")
			if found && strings.EqualFold(strings.TrimSpace(k), "signal") {
				d, ok := signalDigit(strings.TrimSpace(v))
				return d, ok, true
			}
		}
		return 0, false, true
	case "application/dtmf":
		d, ok := signalDigit(strings.TrimSpace(string(body)))
		return d, ok, true
	}
	return 0, false, false
}

// signalDigit maps "0"-"9", "*", "#", "A"-"D" and the event numbers "10"-"15" to a digit.
func signalDigit(s string) (rune, bool) {
	if len(s) == 1 {
		c := rune(s[0])
		switch {
		case c >= '0' && c <= '9', c == '*', c == '#':
			return c, true
		case c >= 'A' && c <= 'D':
			return c, true
		case c >= 'a' && c <= 'd':
			return c - 'a' + 'A', true
		}
		return 0, false
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 10 || n > 15 {
		return 0, false
	}
	return rune("*#ABCD"[n-10]), true
}
