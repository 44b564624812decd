package phone

import (
	"math"
	"net/netip"
	"testing"

	"github.com/hotline12345/hotline/media"
)

func TestParseInfoDigit(t *testing.T) {
	for _, tc := range []struct {
		ct, body string
		want     rune
		ok       bool
	}{
		{"application/dtmf-relay", "Signal=5\r\nDuration=160\r\n", '5', true},
		{"application/dtmf-relay", "Signal= #\r\nDuration= 250\r\n", '#', true},
		{"application/dtmf-relay", "Signal=11\r\n", '#', true},
		{"application/dtmf", "5", '5', true},
		{"application/dtmf", "*\r\n", '*', true},
		{"application/dtmf", "b", 'B', true},
		{"application/dtmf", "55", 0, false},
		{"application/dtmf-relay", "Duration=160", 0, false},
		{"text/plain", "x", 0, false},
	} {
		got, ok := parseInfoDigit(tc.ct, []byte(tc.body))
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseInfoDigit(%q, %q) = %q,%v want %q,%v", tc.ct, tc.body, got, ok, tc.want, tc.ok)
		}
	}
	if got, ok := parseInfoDigit("application/dtmf-relay", []byte(infoBody('7', "application/dtmf-relay"))); !ok || got != '7' {
		t.Errorf("infoBody round trip: %q %v", got, ok)
	}
}

func TestSDPRoundTripAndSIPpStyle(t *testing.T) {
	body, err := buildSDP(netip.MustParseAddr("127.0.0.1"), 40000, 1, []uint8{PCMA, PCMU}, true, 101, "")
	if err != nil {
		t.Fatal(err)
	}
	o, err := parseSDP(body)
	if err != nil {
		t.Fatal(err)
	}
	if o.addr.String() != "127.0.0.1:40000" || len(o.codecs) != 2 || o.codecs[0] != PCMA || !o.dtmf || o.dtmfPT != 101 {
		t.Errorf("parsed %+v from\n%s", o, body)
	}
	sipp := "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
	o, err = parseSDP([]byte(sipp))
	if err != nil || o.addr.Port() != 6000 || len(o.codecs) != 1 || o.codecs[0] != PCMU || o.dtmf {
		t.Errorf("SIPp SDP: %+v %v", o, err)
	}
	for _, bad := range []string{"", "v=0\r\n", "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=video 5 RTP/AVP 96\r\n"} {
		if _, err := parseSDP([]byte(bad)); err == nil {
			t.Errorf("parseSDP(%q) accepted", bad)
		}
	}
}

func TestGoertzel(t *testing.T) {
	x := make([]float64, toneWindow)
	for i := range x {
		x[i] = 0.3 * math.Sin(2*math.Pi*1000*float64(i)/media.ClockRate)
	}
	if p := goertzel(x, 1000); p < 0.95 || p > 1.05 {
		t.Errorf("goertzel at 1000 = %.3f", p)
	}
	if p := goertzel(x, 2000); p > 0.001 {
		t.Errorf("goertzel at 2000 = %.4f", p)
	}
	if p := goertzel(make([]float64, 100), 1000); p != 0 {
		t.Errorf("silence = %v", p)
	}
}

func FuzzParseSDP(f *testing.F) {
	body, _ := buildSDP(netip.MustParseAddr("127.0.0.1"), 40000, 1, []uint8{PCMA, PCMU}, true, 101, "")
	f.Add(body)
	f.Add([]byte("v=0\r\nc=IN IP4 1.2.3.4/127\r\nm=audio 1 RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if o, err := parseSDP(b); err == nil && !o.addr.IsValid() {
			t.Errorf("accepted SDP without a valid address: %+v", o)
		}
	})
}

func FuzzParseInfoDigit(f *testing.F) {
	f.Add("application/dtmf-relay", []byte("Signal=5\r\nDuration=160\r\n"))
	f.Add("application/dtmf", []byte("#"))
	f.Fuzz(func(t *testing.T, ct string, b []byte) {
		if d, ok := parseInfoDigit(ct, b); ok {
			if _, valid := media.DigitEvent(d); !valid {
				t.Errorf("invalid digit %q accepted", d)
			}
		}
	})
}
