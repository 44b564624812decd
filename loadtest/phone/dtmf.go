package phone

import (
	"encoding/binary"
	"strconv"
	"strings"
)

const (
	dtmfGapFrames = 5  // 100 ms of audio between digits
	dtmfEndRepeat = 3  // RFC 4733 §2.5.1.4: the end packet is sent three times
	dtmfVolume    = 10 // -10 dBm0
)

// dtmfEvent maps a digit to its RFC 4733 event code.
func dtmfEvent(d rune) (uint8, bool) {
	switch {
	case d >= '0' && d <= '9':
		return uint8(d - '0'), true
	case d == '*':
		return 10, true
	case d == '#':
		return 11, true
	case d >= 'A' && d <= 'D':
		return uint8(d-'A') + 12, true
	case d >= 'a' && d <= 'd':
		return uint8(d-'a') + 12, true
	}
	return 0, false
}

// dtmfDigit maps an RFC 4733 event code to its digit.
func dtmfDigit(ev uint8) (rune, bool) {
	switch {
	case ev <= 9:
		return rune('0' + ev), true
	case ev == 10:
		return '*', true
	case ev == 11:
		return '#', true
	case ev <= 15:
		return rune('A' + ev - 12), true
	}
	return 0, false
}

// telephoneEvent is the 4-byte RFC 4733 payload.
type telephoneEvent struct {
	Event    uint8
	End      bool
	Volume   uint8
	Duration uint16
}

func (e telephoneEvent) appendTo(b []byte) []byte {
	flags := e.Volume & 0x3f
	if e.End {
		flags |= 0x80
	}
	b = append(b, e.Event, flags)
	return binary.BigEndian.AppendUint16(b, e.Duration)
}

func parseTelephoneEvent(b []byte) (telephoneEvent, bool) {
	if len(b) < 4 {
		return telephoneEvent{}, false
	}
	return telephoneEvent{
		Event:    b[0],
		End:      b[1]&0x80 != 0,
		Volume:   b[1] & 0x3f,
		Duration: binary.BigEndian.Uint16(b[2:4]),
	}, true
}

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
		return dtmfDigit(uint8(n))
	}
	r := []rune(text)
	if len(r) != 1 {
		return 0, false
	}
	if _, ok := dtmfEvent(r[0]); !ok {
		return 0, false
	}
	if r[0] >= 'a' && r[0] <= 'd' {
		return r[0] - 'a' + 'A', true
	}
	return r[0], true
}
