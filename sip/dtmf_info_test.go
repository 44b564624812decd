package sip

import (
	"strings"
	"testing"
)

func TestParseInfoDTMF(t *testing.T) {
	t.Parallel()
	tests := []struct {
		ct, body  string
		digit     rune
		ok, known bool
	}{
		{"application/dtmf-relay", "Signal=5\r\nDuration=160\r\n", '5', true, true},
		{"application/dtmf-relay", "Signal= 11\r\nDuration= 160", '#', true, true},
		{"application/dtmf-relay", "signal=*", '*', true, true},
		{"application/dtmf-relay", "Duration=160\r\nSignal=0\r\n", '0', true, true},
		{"application/dtmf-relay", "Signal=a", 'A', true, true},
		{"application/dtmf-relay", "SIGNAL = 16", 0, false, true},
		{"application/dtmf-relay", "Duration=160", 0, false, true},
		{"application/dtmf-relay", "", 0, false, true},
		{"application/dtmf-relay", "Signal=", 0, false, true},
		{"Application/DTMF-Relay; charset=utf-8", "Signal=9", '9', true, true},
		{" application/dtmf-relay ", "Signal=9", '9', true, true},
		{"application/dtmf", "#", '#', true, true},
		{"application/dtmf", " 7\r\n", '7', true, true},
		{"application/dtmf", "10", '*', true, true},
		{"application/dtmf", "77", 0, false, true},
		{"application/dtmf", "", 0, false, true},
		{"text/plain", "5", 0, false, false},
		{"", "Signal=5", 0, false, false},
		{"application/sdp", "v=0", 0, false, false},
	}
	for _, tt := range tests {
		d, ok, known := parseInfoDTMF(tt.ct, []byte(tt.body))
		if d != tt.digit || ok != tt.ok || known != tt.known {
			t.Errorf("parseInfoDTMF(%q, %q) = %q %v %v, want %q %v %v", tt.ct, tt.body, d, ok, known, tt.digit, tt.ok, tt.known)
		}
	}
}

func TestSignalDigit(t *testing.T) {
	t.Parallel()
	for _, c := range "0123456789*#ABCD" {
		if d, ok := signalDigit(string(c)); !ok || d != c {
			t.Errorf("signalDigit(%q) = %q %v", c, d, ok)
		}
	}
	for in, want := range map[string]rune{"a": 'A', "d": 'D', "10": '*', "11": '#', "12": 'A', "15": 'D'} {
		if d, ok := signalDigit(in); !ok || d != want {
			t.Errorf("signalDigit(%q) = %q %v, want %q", in, d, ok, want)
		}
	}
	for _, in := range []string{"", "E", "e", "x", " ", "9 ", "16", "-1", "09", "1.0", "100", "#5"} {
		if d, ok := signalDigit(in); ok {
			t.Errorf("signalDigit(%q) = %q, want not ok", in, d)
		}
	}
}

// FuzzInfoDTMF: parseInfoDTMF never panics, yields only DTMF digits, and knows exactly
// the two content types.
func FuzzInfoDTMF(f *testing.F) {
	f.Add("application/dtmf-relay", []byte("Signal=5\r\nDuration=160\r\n"))
	f.Add("application/dtmf", []byte("#"))
	f.Add("application/dtmf-relay; x=y", []byte("signal=11"))
	f.Add("text/plain", []byte("5"))
	f.Add("", []byte(""))
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		d, ok, known := parseInfoDTMF(ct, body)
		base := strings.ToLower(strings.TrimSpace(strings.Split(ct, ";")[0]))
		if wantKnown := base == "application/dtmf-relay" || base == "application/dtmf"; known != wantKnown {
			t.Fatalf("known %v for %q", known, ct)
		}
		if ok && !known {
			t.Fatal("ok for an unknown content type")
		}
		if ok != (d != 0) {
			t.Fatalf("ok %v with digit %q", ok, d)
		}
		if ok && !strings.ContainsRune("0123456789*#ABCD", d) {
			t.Fatalf("digit %q", d)
		}
		if base == "application/dtmf" {
			if want, wantOK := signalDigit(strings.TrimSpace(string(body))); d != want || ok != wantOK {
				t.Fatalf("application/dtmf %q: %q %v", body, d, ok)
			}
		}
	})
}
