package phone

import (
	"strconv"
	"strings"

	"github.com/hotline12345/hotline/media"
)

// infoBody builds a SIP INFO DTMF body for contentType
// "application/dtmf-relay" or "application/dtmf".
func infoBody(d rune, contentType string) string {
	if strings.EqualFold(contentType, "application/dtmf") {
		return string(d)
	}
	return "Signal=" + string(d) + "\r\nDuration=160\r\n"
}

// parseInfoDigit reads the digit of an application/dtmf-relay
// ("Signal=5") or application/dtmf ("5") body.
func parseInfoDigit(contentType string, body []byte) (rune, bool) {
	text := strings.TrimSpace(string(body))
	if strings.Contains(strings.ToLower(contentType), "dtmf-relay") || strings.Contains(strings.ToLower(text), "signal") {
		for _, line := range strings.Split(text, "\n") {
			k, v, ok := strings.Cut(line, "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "signal") {
				text = strings.TrimSpace(v)
				break
			}
		}
	}
	if n, err := strconv.Atoi(text); err == nil && n >= 10 && n <= 15 {
		return media.EventDigit(uint8(n))
	}
	r := []rune(text)
	if len(r) != 1 {
		return 0, false
	}
	if _, ok := media.DigitEvent(r[0]); !ok {
		return 0, false
	}
	if r[0] >= 'a' && r[0] <= 'd' {
		return r[0] - 'a' + 'A', true
	}
	return r[0], true
}
