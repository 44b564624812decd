package mask

import (
	"bytes"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"testing"
)

func TestText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"13800138000", "138****8000"},
		{"+8613800138000", "+86138****8000"},
		{"008613800138000", "0086138****8000"},
		{"2613800138000", "261******8000"},
		{"02912345678", "029****5678"},
		{"62345678", "62****78"},
		{"1234567", "12***67"},
		{"123456", "123456"}, // too short: a service number or an extension
		{"1001", "1001"},
		{"12345", "12345"},
		{"", ""},
		{"sip:13800138000@10.0.0.1:5060;transport=udp", "sip:138****8000@10.0.0.1:5060;transport=udp"},
		{"tel:+8613800138000", "tel:+86138****8000"},
		{"sip:1001@127.0.0.1:5070", "sip:1001@127.0.0.1:5070"},
		{"INVITE sip:13900000001@127.0.0.1:5090 SIP/2.0", "INVITE sip:139****0001@127.0.0.1:5090 SIP/2.0"},
		{"dial 13800138000, then 13900139000", "dial 138****8000, then 139****9000"},
		{"took 1.2345678901s", "took 1.2345678901s"}, // a fraction, not a number
		{"1234567890123456", "1234567890123456"},     // 16 digits: not a phone number
		{"来电 13800138000 号码", "来电 138****8000 号码"},   // around multibyte text
		{"sip", "sip"},
	} {
		if got := Text(tc.in); got != tc.want {
			t.Errorf("Text(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// The handler masks the numbers in the keys that carry them — in With attributes, record
// attributes, groups and errors — and leaves everything else, agent ids included, alone.
func TestHandler(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(NewHandler(slog.NewTextHandler(&buf, nil)))
	u, _ := url.Parse("sip:13900139000@10.0.0.1")
	call := log.With("call_id", "c-12345678901", "from", "13800138000", "to", "12345")
	call.Info("call 13700137000 answered", "agent", "1001", "user", "1001", "target", u,
		"err", errors.New("dial 13600136000: busy"), "caller", "sip", "number", int64(13500135000),
		slog.Group("leg", "contact", "sip:13400134000@10.0.0.2"), "sip_call_id", "9876543210@host",
		"data", "INVITE sip:12345@h SIP/2.0\r\nFrom: <sip:13300133000@h>")
	out := buf.String()
	for _, want := range []string{"call_id=c-12345678901", "from=138****8000", "to=12345", `msg="call 137****7000 answered"`,
		"agent=1001", "user=1001", "target=sip:139****9000@10.0.0.1", `err="dial 136****6000: busy"`, "caller=sip",
		"number=135****5000", "leg.contact=sip:134****4000@10.0.0.2", "sip_call_id=9876543210@host", "133****3000"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
	for _, full := range []string{"13800138000", "13900139000", "13600136000", "13500135000", "13400134000", "13700137000", "13300133000"} {
		if strings.Contains(out, full) {
			t.Errorf("log shows %s in full:\n%s", full, out)
		}
	}
	if !log.Enabled(t.Context(), slog.LevelInfo) || log.Enabled(t.Context(), slog.LevelDebug) {
		t.Error("Enabled does not follow the wrapped handler")
	}
	buf.Reset()
	log.WithGroup("g").Info("x", "phone", "13800138000")
	if !strings.Contains(buf.String(), "g.phone=138****8000") {
		t.Errorf("group: %s", buf.String())
	}
}

// Mask never panics, keeps the length and the non-digits, and leaves no phone number
// (a run of 7-15 digits, not a fraction) in full.
func FuzzText(f *testing.F) {
	for _, s := range []string{"13800138000", "sip:+8613800138000@h", "1.2345678", "1234567890123456", "1001", "", "来电13800138000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m := Text(s)
		if len(m) != len(s) {
			t.Fatalf("Text(%q) = %q: length changed", s, m)
		}
		for i := range len(s) {
			if !isDigit(s[i]) && m[i] != s[i] {
				t.Fatalf("Text(%q) = %q: changed a non-digit at %d", s, m, i)
			}
		}
		for i := 0; i < len(m); {
			if !isDigit(m[i]) {
				i++
				continue
			}
			j := i
			for j < len(m) && isDigit(m[j]) {
				j++
			}
			// a masked number leaves at most 7 digits beside its stars; any other run of 7-15
			// in the output must be a fraction or part of a longer run in the input
			if n := j - i; n >= minDigits && n <= maxDigits && (i == 0 || m[i-1] != '.') {
				if (i > 0 && m[i-1] == '*' || j < len(m) && m[j] == '*') && n > 7 { // 0086138****8000 keeps 7
					t.Fatalf("Text(%q) = %q: digits left around a mask", s, m)
				}
				if s[i:j] == m[i:j] && (i == 0 || !isDigit(s[i-1])) && (j == len(s) || !isDigit(s[j])) {
					t.Fatalf("Text(%q) = %q: number %q left in full", s, m, m[i:j])
				}
			}
			i = j
		}
		if Text(m) != m && strings.Count(m, "*") == strings.Count(s, "*") {
			t.Fatalf("Text(%q) = %q: not stable", s, m)
		}
	})
}
