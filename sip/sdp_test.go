package sip

import (
	"errors"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// sdpBody joins SDP lines with CRLF.
func sdpBody(lines ...string) string { return strings.Join(lines, "\r\n") + "\r\n" }

const (
	sdpHead  = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\n"
	sdpConn  = "c=IN IP4 192.0.2.1\r\n"
	sdpTime  = "t=0 0\r\n"
	sdpAudio = sdpHead + sdpConn + sdpTime // then m= lines
	sdpNoC   = sdpHead + sdpTime           // no session-level c=
)

func TestParseSDP(t *testing.T) {
	t.Parallel()
	addr := netip.MustParseAddrPort("192.0.2.1:4000")
	tests := []struct {
		name string
		body string
		want offer
		err  error
	}{
		{"PCMA PCMU telephone-event", sdpAudio + sdpBody("m=audio 4000 RTP/AVP 8 0 101", "a=rtpmap:8 PCMA/8000", "a=rtpmap:0 PCMU/8000", "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-15"),
			offer{addr: addr, codecs: []uint8{8, 0}, dtmfType: 101, direction: SendRecv}, nil},
		{"static types without rtpmap", sdpAudio + sdpBody("m=audio 4000 RTP/AVP 0 8"),
			offer{addr: addr, codecs: []uint8{0, 8}, dtmfType: 0, direction: SendRecv}, nil},
		{"rtpmap case-insensitive", sdpAudio + sdpBody("m=audio 4000 RTP/AVP 0 96", "a=rtpmap:0 pcmu/8000", "a=rtpmap:96 Telephone-Event/8000"),
			offer{addr: addr, codecs: []uint8{0}, dtmfType: 96, direction: SendRecv}, nil},
		{"telephone-event at 16 kHz ignored", sdpAudio + sdpBody("m=audio 4000 RTP/AVP 8 100 101", "a=rtpmap:100 telephone-event/16000", "a=rtpmap:101 telephone-event/8000"),
			offer{addr: addr, codecs: []uint8{8}, dtmfType: 101, direction: SendRecv}, nil},
		{"first telephone-event wins", sdpAudio + sdpBody("m=audio 4000 RTP/AVP 8 101 96", "a=rtpmap:101 telephone-event/8000", "a=rtpmap:96 telephone-event/8000"),
			offer{addr: addr, codecs: []uint8{8}, dtmfType: 101, direction: SendRecv}, nil},
		{"G.729 only parses with no codecs", sdpAudio + sdpBody("m=audio 4000 RTP/AVP 18", "a=rtpmap:18 G729/8000"),
			offer{addr: addr, codecs: nil, dtmfType: 0, direction: SendRecv}, nil},
		{"static PT redefined as another codec", sdpAudio + sdpBody("m=audio 4000 RTP/AVP 0", "a=rtpmap:0 G722/8000"),
			offer{addr: addr, codecs: nil, dtmfType: 0, direction: SendRecv}, nil},
		{"RTP/AVPF", sdpAudio + sdpBody("m=audio 4000 RTP/AVPF 0"),
			offer{addr: addr, codecs: []uint8{0}, dtmfType: 0, direction: SendRecv}, nil},
		{"session-level c= only", sdpAudio + sdpBody("m=audio 4000 RTP/AVP 8"),
			offer{addr: addr, codecs: []uint8{8}, dtmfType: 0, direction: SendRecv}, nil},
		{"media-level c= overrides session", sdpAudio + sdpBody("m=audio 4000 RTP/AVP 8", "c=IN IP4 198.51.100.7"),
			offer{addr: netip.MustParseAddrPort("198.51.100.7:4000"), codecs: []uint8{8}, dtmfType: 0, direction: SendRecv}, nil},
		{"media-level c= only", sdpNoC + sdpBody("m=audio 4000 RTP/AVP 8", "c=IN IP4 192.0.2.1"),
			offer{addr: addr, codecs: []uint8{8}, dtmfType: 0, direction: SendRecv}, nil},
		{"IPv6", sdpHead + sdpBody("c=IN IP6 2001:db8::1", "t=0 0", "m=audio 4000 RTP/AVP 0"),
			offer{addr: netip.MustParseAddrPort("[2001:db8::1]:4000"), codecs: []uint8{0}, dtmfType: 0, direction: SendRecv}, nil},
		{"IPv4-mapped IPv6 unmapped", sdpHead + sdpBody("c=IN IP6 ::ffff:192.0.2.1", "t=0 0", "m=audio 4000 RTP/AVP 0"),
			offer{addr: netip.MustParseAddrPort("192.0.2.1:4000"), codecs: []uint8{0}, dtmfType: 0, direction: SendRecv}, nil},
		{"hold with 0.0.0.0", sdpHead + sdpBody("c=IN IP4 0.0.0.0", "t=0 0", "m=audio 4000 RTP/AVP 0"),
			offer{addr: netip.MustParseAddrPort("0.0.0.0:4000"), codecs: []uint8{0}, dtmfType: 0, direction: SendRecv}, nil},
		{"audio port 0 skipped for the next audio", sdpAudio + sdpBody("m=audio 0 RTP/AVP 0", "m=video 5000 RTP/AVP 96", "m=audio 4000 RTP/AVP 8"),
			offer{addr: addr, codecs: []uint8{8}, dtmfType: 0, direction: SendRecv}, nil},
		{"LF line ends", strings.ReplaceAll(sdpAudio+sdpBody("m=audio 4000 RTP/AVP 8"), "\r\n", "\n"),
			offer{addr: addr, codecs: []uint8{8}, dtmfType: 0, direction: SendRecv}, nil},
		{"session sendonly", sdpAudio + sdpBody("a=sendonly", "m=audio 4000 RTP/AVP 8"),
			offer{addr: addr, codecs: []uint8{8}, dtmfType: 0, direction: SendOnly}, nil},
		{"media direction overrides session", sdpAudio + sdpBody("a=sendonly", "m=audio 4000 RTP/AVP 8", "a=sendrecv"),
			offer{addr: addr, codecs: []uint8{8}, dtmfType: 0, direction: SendRecv}, nil},
		{"inactive", sdpAudio + sdpBody("m=audio 4000 RTP/AVP 8", "a=inactive"),
			offer{addr: addr, codecs: []uint8{8}, dtmfType: 0, direction: Inactive}, nil},
		{"recvonly", sdpAudio + sdpBody("m=audio 4000 RTP/AVP 8", "a=recvonly"),
			offer{addr: addr, codecs: []uint8{8}, dtmfType: 0, direction: RecvOnly}, nil},

		{"empty", "", offer{}, ErrNoAudio},
		{"not SDP", "hello world", offer{}, ErrBadSDP},
		{"missing o=", "v=0\r\ns=-\r\n" + sdpConn + sdpTime + "m=audio 4000 RTP/AVP 8\r\n", offer{}, ErrBadSDP},
		{"no c= anywhere", sdpNoC + sdpBody("m=audio 4000 RTP/AVP 8"), offer{}, ErrBadSDP},
		{"c= hostname", sdpHead + sdpBody("c=IN IP4 pbx.example.com", "t=0 0", "m=audio 4000 RTP/AVP 8"), offer{}, ErrBadSDP},
		{"c= multicast TTL", sdpHead + sdpBody("c=IN IP4 224.2.1.1/127", "t=0 0", "m=audio 4000 RTP/AVP 8"), offer{}, ErrBadSDP},
		{"c= network type", sdpHead + sdpBody("c=ATM NSAP 47.0005", "t=0 0", "m=audio 4000 RTP/AVP 8"), offer{}, ErrBadSDP},
		{"port 70000", sdpAudio + sdpBody("m=audio 70000 RTP/AVP 8"), offer{}, ErrBadSDP},
		{"negative port", sdpAudio + sdpBody("m=audio -5 RTP/AVP 8"), offer{}, ErrBadSDP},
		{"payload type not a number", sdpAudio + sdpBody("m=audio 4000 RTP/AVP 8 abc"), offer{}, ErrBadSDP},
		{"payload type 200", sdpAudio + sdpBody("m=audio 4000 RTP/AVP 8 200"), offer{}, ErrBadSDP},
		{"video only", sdpAudio + sdpBody("m=video 5000 RTP/AVP 96"), offer{}, ErrNoAudio},
		{"audio port 0 only", sdpAudio + sdpBody("m=audio 0 RTP/AVP 8"), offer{}, ErrNoAudio},
		{"SRTP without crypto parses (refused by answerSRTP)", sdpAudio + sdpBody("m=audio 4000 RTP/SAVP 8"), offer{addr: addr, codecs: []uint8{8}, direction: SendRecv}, nil},
		{"UDP/TLS/RTP/SAVPF", sdpAudio + sdpBody("m=audio 4000 UDP/TLS/RTP/SAVPF 8"), offer{}, ErrNoAudio},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseSDP([]byte(tt.body))
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.addr != tt.want.addr || !slices.Equal(got.codecs, tt.want.codecs) || got.dtmfType != tt.want.dtmfType || got.direction != tt.want.direction {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestNegotiate(t *testing.T) {
	t.Parallel()
	addr := netip.MustParseAddrPort("192.0.2.1:4000")
	tests := []struct {
		name   string
		codecs []uint8
		prefs  []uint8
		want   uint8
		err    error
	}{
		{"our preference wins over the offer's order", []uint8{0, 8}, []uint8{8, 0}, PayloadPCMA, nil},
		{"PCMU preferred", []uint8{8, 0}, []uint8{0, 8}, PayloadPCMU, nil},
		{"only PCMU offered", []uint8{0}, []uint8{8, 0}, PayloadPCMU, nil},
		{"trunk allows PCMA only", []uint8{0}, []uint8{8}, 0, ErrNoCommonCodec},
		{"nothing offered", nil, []uint8{8, 0}, 0, ErrNoCommonCodec},
		{"no preferences", []uint8{8}, nil, 0, ErrNoCommonCodec},
		{"re-INVITE keeps the current codec", []uint8{0, 8}, []uint8{8, 8, 0}, PayloadPCMA, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := offer{addr: addr, codecs: tt.codecs, dtmfType: 101, direction: SendOnly}
			m, err := negotiate(o, tt.prefs)
			if tt.err != nil {
				if !errors.Is(err, tt.err) || m != (Media{}) {
					t.Fatalf("got %+v, %v; want %v", m, err, tt.err)
				}
				return
			}
			want := Media{Addr: addr, PayloadType: tt.want, DTMFType: 101, Direction: SendOnly}
			if err != nil || m != want {
				t.Fatalf("got %+v, %v; want %+v", m, err, want)
			}
		})
	}
}

func TestAnswerDirection(t *testing.T) {
	t.Parallel()
	for remote, want := range map[Direction]Direction{
		SendRecv: SendRecv, SendOnly: RecvOnly, RecvOnly: SendOnly, Inactive: Inactive, "": SendRecv, "bogus": SendRecv,
	} {
		if got := answerDirection(remote); got != want {
			t.Errorf("answerDirection(%q) = %q, want %q", remote, got, want)
		}
	}
}

func TestMediaOnHold(t *testing.T) {
	t.Parallel()
	addr := netip.MustParseAddrPort("192.0.2.1:4000")
	tests := []struct {
		m    Media
		hold bool
	}{
		{Media{Addr: addr, Direction: SendRecv}, false},
		{Media{Addr: addr, Direction: RecvOnly}, false},
		{Media{Addr: addr, Direction: SendOnly}, true},
		{Media{Addr: addr, Direction: Inactive}, true},
		{Media{Addr: netip.MustParseAddrPort("0.0.0.0:4000"), Direction: SendRecv}, true}, // RFC 2543 hold
		{Media{Addr: netip.MustParseAddrPort("[::]:4000"), Direction: SendRecv}, true},
		{Media{Direction: SendRecv}, true},
	}
	for _, tt := range tests {
		if got := tt.m.OnHold(); got != tt.hold {
			t.Errorf("%+v OnHold() = %v, want %v", tt.m, got, tt.hold)
		}
	}
}

func TestLocalSDPRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr string
		pts  []uint8
		dtmf uint8
		dir  Direction
	}{
		{"127.0.0.1:40000", []uint8{8}, 101, SendRecv},
		{"127.0.0.1:40000", []uint8{0}, 96, RecvOnly},
		{"10.0.0.5:20000", []uint8{8, 0}, 101, SendRecv},
		{"10.0.0.5:20000", []uint8{0}, 0, Inactive},
		{"[2001:db8::5]:30000", []uint8{8}, 101, SendOnly},
	}
	for _, tt := range tests {
		addr := netip.MustParseAddrPort(tt.addr)
		l := newLocalSDP(addr)
		body := l.marshal(tt.pts, tt.dtmf, tt.dir)
		o, err := parseSDP(body)
		if err != nil {
			t.Fatalf("%v: our SDP does not parse: %v\n%s", tt, err, body)
		}
		if o.addr != addr || !slices.Equal(o.codecs, tt.pts) || o.dtmfType != tt.dtmf || o.direction != tt.dir {
			t.Errorf("%v: parsed back %+v\n%s", tt, o, body)
		}
		if tt.dtmf != 0 && !strings.Contains(string(body), "a=fmtp:"+strconv.Itoa(int(tt.dtmf))+" 0-16") {
			t.Errorf("no fmtp for telephone-event:\n%s", body)
		}
		if !strings.Contains(string(body), "a=ptime:20") {
			t.Errorf("no ptime:\n%s", body)
		}
	}
	// Each leg gets its own session id; a re-INVITE answer bumps the version.
	a, b := newLocalSDP(netip.MustParseAddrPort("127.0.0.1:1")), newLocalSDP(netip.MustParseAddrPort("127.0.0.1:1"))
	if a.id == b.id {
		t.Fatal("two legs share an SDP session id")
	}
	first := string(a.marshal([]uint8{8}, 0, SendRecv))
	a.version++
	second := string(a.marshal([]uint8{8}, 0, SendRecv))
	if first == second {
		t.Fatal("o= version did not change")
	}
}

func TestStatusFor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		code int
	}{
		{ErrBadSDP, 400},
		{errors.Join(errors.New("x"), ErrBadSDP), 400},
		{ErrNoAudio, 488},
		{ErrNoCommonCodec, 488},
		{ErrNoACK, 500},
		{errors.New("other"), 500},
	}
	for _, tt := range tests {
		if code, _ := statusFor(tt.err); code != tt.code {
			t.Errorf("statusFor(%v) = %d, want %d", tt.err, code, tt.code)
		}
	}
}

func TestCodecNames(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]uint8{"PCMA": 8, "pcma": 8, "G711A": 8, "G.711A": 8, "PCMU": 0, "g711u": 0, "G.711U": 0} {
		if pt, ok := CodecPayload(name); !ok || pt != want {
			t.Errorf("CodecPayload(%q) = %d, %v", name, pt, ok)
		}
	}
	for _, name := range []string{"", "G729", "opus", "PCM"} {
		if _, ok := CodecPayload(name); ok {
			t.Errorf("CodecPayload(%q) ok", name)
		}
	}
	if PayloadName(PayloadPCMA) != "PCMA" || PayloadName(PayloadPCMU) != "PCMU" {
		t.Error("PayloadName")
	}
}

// FuzzParseSDP: any body parses or fails with ErrBadSDP/ErrNoAudio; when an offer is
// acceptable, the answer we would send parses back to the same codec, DTMF type and the
// answering direction.
func FuzzParseSDP(f *testing.F) {
	for _, s := range []string{
		sdpAudio + sdpBody("m=audio 4000 RTP/AVP 8 0 101", "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-15", "a=sendrecv"),
		sdpAudio + sdpBody("m=audio 4000 RTP/AVP 0 96", "a=rtpmap:96 telephone-event/8000", "a=sendonly"),
		sdpHead + sdpBody("c=IN IP6 2001:db8::1", "t=0 0", "m=audio 4000 RTP/AVP 0", "a=inactive"),
		sdpAudio + sdpBody("m=audio 0 RTP/AVP 0", "m=audio 4002 RTP/AVPF 8"),
		sdpAudio + sdpBody("m=audio 4000 RTP/AVP 97", "a=rtpmap:97 PCMU/8000"),
		sdpAudio + sdpBody("m=audio 4000 RTP/AVP 18", "a=rtpmap:18 G729/8000"),
		sdpAudio + sdpBody("m=audio 70000 RTP/AVP 8"),
		sdpAudio + sdpBody("m=audio 4000 RTP/SAVP 8", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20"),
		"v=0\r\n",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		o, err := parseSDP(body)
		if err != nil {
			if !errors.Is(err, ErrBadSDP) && !errors.Is(err, ErrNoAudio) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		if !o.addr.Addr().IsValid() || o.addr.Port() == 0 {
			t.Fatalf("accepted offer without address: %+v", o)
		}
		for _, policy := range []SRTPPolicy{SRTPOff, SRTPOptional, SRTPRequired} {
			if k, err := answerSRTP(o, policy, nil); err != nil && !errors.Is(err, ErrNoCrypto) || k != nil && (len(k.LocalKey) != masterLen || len(k.RemoteKey) != masterLen) {
				t.Fatalf("answerSRTP(%s): %+v, %v", policy, k, err)
			}
		}
		m, err := negotiate(o, []uint8{PayloadPCMA, PayloadPCMU})
		if err != nil {
			if !errors.Is(err, ErrNoCommonCodec) {
				t.Fatalf("negotiate: %v", err)
			}
			return
		}
		local := newLocalSDP(netip.MustParseAddrPort("127.0.0.1:40000"))
		answer := local.marshal([]uint8{m.PayloadType}, m.DTMFType, answerDirection(m.Direction))
		back, err := parseSDP(answer)
		if err != nil {
			t.Fatalf("our answer does not parse: %v\n%s", err, answer)
		}
		again, err := negotiate(back, []uint8{PayloadPCMA, PayloadPCMU})
		if err != nil || again.PayloadType != m.PayloadType {
			t.Fatalf("answer picks %+v (%v), offer picked %+v\n%s", again, err, m, answer)
		}
		if back.dtmfType != m.DTMFType || back.direction != answerDirection(m.Direction) {
			t.Fatalf("answer %+v for media %+v\n%s", back, m, answer)
		}
	})
}
