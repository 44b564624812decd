package sip

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/pion/sdp/v3"
)

var addr4000 = netip.MustParseAddrPort("192.0.2.5:4000")

var testKey = bytes.Repeat([]byte{0x5a}, masterLen)

func inline(key []byte) string { return "inline:" + base64.StdEncoding.EncodeToString(key) }

func TestParseCrypto(t *testing.T) {
	t.Parallel()
	good := []struct{ in, suite string }{
		{"1 AES_CM_128_HMAC_SHA1_80 " + inline(testKey), SuiteAES80},
		{"2 AES_CM_128_HMAC_SHA1_32 " + inline(testKey), SuiteAES32},
		{"3 AES_CM_128_HMAC_SHA1_80 " + inline(testKey) + "|2^31", SuiteAES80},
		{"4 AES_CM_128_HMAC_SHA1_80 " + inline(testKey) + "|1048576", SuiteAES80},
	}
	for _, tc := range good {
		c, err := parseCrypto(tc.in)
		if err != nil || c.suite != tc.suite || !bytes.Equal(c.key, testKey) {
			t.Errorf("%q: %+v, %v", tc.in, c, err)
		}
	}
	bad := []string{
		"",
		"1 AES_CM_128_HMAC_SHA1_80",
		"x AES_CM_128_HMAC_SHA1_80 " + inline(testKey),
		"-1 AES_CM_128_HMAC_SHA1_80 " + inline(testKey),
		"1 AES_256_CM_HMAC_SHA1_80 " + inline(testKey),                                // suite we do not speak
		"1 AES_CM_128_HMAC_SHA1_80 " + inline(testKey) + "|2^20|1:4",                  // MKI
		"1 AES_CM_128_HMAC_SHA1_80 " + inline(testKey) + ";" + inline(testKey),        // two keys
		"1 AES_CM_128_HMAC_SHA1_80 " + inline(testKey) + " UNENCRYPTED_SRTP",          // session parameter
		"1 AES_CM_128_HMAC_SHA1_80 " + inline(testKey[:29]),                           // short key
		"1 AES_CM_128_HMAC_SHA1_80 inline:" + strings.Repeat("!", 40),                 // not base64
		"1 AES_CM_128_HMAC_SHA1_80 uri:" + base64.StdEncoding.EncodeToString(testKey), // not inline
		"1 AES_CM_128_HMAC_SHA1_80 " + inline(testKey) + "|2^x",
	}
	for _, in := range bad {
		if c, err := parseCrypto(in); !errors.Is(err, errCrypto) {
			t.Errorf("%q accepted: %+v, %v", in, c, err)
		}
	}
}

// An offer's crypto under each policy: the answer's keying or the error (488).
func TestAnswerSRTP(t *testing.T) {
	t.Parallel()
	crypto := "a=crypto:7 AES_CM_128_HMAC_SHA1_32 " + inline(testKey)
	bogus := "a=crypto:1 AES_256_CM_HMAC_SHA1_80 " + inline(testKey)
	tests := []struct {
		name, proto string
		attrs       []string
		policy      SRTPPolicy
		srtp        bool
		err         error
	}{
		{"SAVP with crypto, optional", "RTP/SAVP", []string{bogus, crypto}, SRTPOptional, true, nil},
		{"SAVP with crypto, required", "RTP/SAVP", []string{crypto}, SRTPRequired, true, nil},
		{"SAVP with crypto, off", "RTP/SAVP", []string{crypto}, SRTPOff, false, ErrNoCrypto},
		{"SAVP without usable crypto", "RTP/SAVP", []string{bogus}, SRTPOptional, false, ErrNoCrypto},
		{"SAVP without crypto", "RTP/SAVP", nil, SRTPOptional, false, ErrNoCrypto},
		{"AVP with crypto (best effort), optional", "RTP/AVP", []string{crypto}, SRTPOptional, true, nil},
		{"AVP with crypto, off: plain", "RTP/AVP", []string{crypto}, SRTPOff, false, nil},
		{"AVP plain, optional", "RTP/AVP", nil, SRTPOptional, false, nil},
		{"AVP plain, required", "RTP/AVP", nil, SRTPRequired, false, ErrNoCrypto},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lines := append([]string{"m=audio 4000 " + tc.proto + " 8"}, tc.attrs...)
			o, err := parseSDP([]byte(sdpAudio + sdpBody(lines...)))
			if err != nil {
				t.Fatal(err)
			}
			k, err := answerSRTP(o, tc.policy, nil)
			if !errors.Is(err, tc.err) || (k != nil) != tc.srtp {
				t.Fatalf("keys %+v, err %v; want srtp %v, err %v", k, err, tc.srtp, tc.err)
			}
			if code, _ := statusFor(err); err != nil && code != 488 {
				t.Fatalf("status %d, want 488", code)
			}
			if k == nil {
				return
			}
			if k.Tag != 7 || k.Suite != SuiteAES32 || !bytes.Equal(k.RemoteKey, testKey) || len(k.LocalKey) != masterLen || bytes.Equal(k.LocalKey, testKey) {
				t.Fatalf("keys %+v", k)
			}
			// The answer: the offer's transport, one crypto line with our key and the offer's tag.
			l := newLocalSDP(addr4000)
			l.keys = k
			var sd sdp.SessionDescription
			if err := sd.Unmarshal(l.answer(&o, []uint8{8}, 0, SendRecv)); err != nil {
				t.Fatal(err)
			}
			md := sd.MediaDescriptions[0]
			if got := strings.Join(md.MediaName.Protos, "/"); got != tc.proto {
				t.Errorf("answer transport %s, want %s", got, tc.proto)
			}
			v, ok := md.Attribute("crypto")
			c, err := parseCrypto(v)
			if !ok || err != nil || c.tag != 7 || c.suite != SuiteAES32 || !bytes.Equal(c.key, k.LocalKey) {
				t.Errorf("answer crypto %q (%v)", v, err)
			}
			// A re-INVITE repeating the line keeps our key; a new remote key gets a new one.
			if again, _ := answerSRTP(o, tc.policy, k); again != k {
				t.Error("re-INVITE with the same line changed our key")
			}
			o.cryptos[0].key = bytes.Repeat([]byte{1}, masterLen)
			if again, _ := answerSRTP(o, tc.policy, k); again == k || bytes.Equal(again.LocalKey, k.LocalKey) {
				t.Error("re-INVITE with a new remote key kept our key")
			}
		})
	}
}

// Our offers under each policy, and the keying taken from the answer.
func TestOfferSRTP(t *testing.T) {
	t.Parallel()
	for _, policy := range []SRTPPolicy{SRTPOff, SRTPOptional, SRTPRequired} {
		offered, err := offerCryptos(policy)
		if err != nil {
			t.Fatal(err)
		}
		l := newLocalSDP(addr4000)
		l.offered, l.secure = offered, policy == SRTPRequired
		o, err := parseSDP(l.marshal([]uint8{8, 0}, 101, SendRecv))
		if err != nil {
			t.Fatal(err)
		}
		wantProto := map[SRTPPolicy]string{SRTPOff: "RTP/AVP", SRTPOptional: "RTP/AVP", SRTPRequired: "RTP/SAVP"}[policy]
		if o.proto != wantProto || len(o.cryptos) != len(offered) {
			t.Fatalf("%s: offer %s with %d crypto lines", policy, o.proto, len(o.cryptos))
		}
		if policy == SRTPOff {
			continue
		}
		// The peer answers with the second line (tag 2, the 32-bit tag) and its own key.
		ans := sdpAudio + sdpBody("m=audio 4000 "+wantProto+" 8", "a=crypto:2 AES_CM_128_HMAC_SHA1_32 "+inline(testKey))
		a, err := parseSDP([]byte(ans))
		if err != nil {
			t.Fatal(err)
		}
		k, err := answeredSRTP(a, offered, policy)
		if err != nil || k == nil || k.Tag != 2 || k.Suite != SuiteAES32 || !bytes.Equal(k.LocalKey, offered[1].key) || !bytes.Equal(k.RemoteKey, testKey) {
			t.Fatalf("%s: keys %+v, %v", policy, k, err)
		}
		plain, _ := parseSDP([]byte(sdpAudio + sdpBody("m=audio 4000 RTP/AVP 8")))
		k, err = answeredSRTP(plain, offered, policy)
		if policy == SRTPRequired && !errors.Is(err, ErrNoCrypto) || policy == SRTPOptional && (k != nil || err != nil) {
			t.Fatalf("%s: plain answer: %+v, %v", policy, k, err)
		}
	}
}

// FuzzParseCrypto: any a=crypto value is parsed or refused with errCrypto, never a panic;
// what is accepted formats back to an equal line.
func FuzzParseCrypto(f *testing.F) {
	f.Add("1 AES_CM_128_HMAC_SHA1_80 " + inline(testKey))
	f.Add("2 AES_CM_128_HMAC_SHA1_32 " + inline(testKey) + "|2^31")
	f.Add("1 AES_CM_128_HMAC_SHA1_80 " + inline(testKey) + "|2^20|1:4")
	f.Add("1 AES_CM_128_HMAC_SHA1_80 inline:" + strings.Repeat("A", 40) + " KDR=1")
	f.Add("")
	f.Fuzz(func(t *testing.T, v string) {
		c, err := parseCrypto(v)
		if err != nil {
			if !errors.Is(err, errCrypto) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		if len(c.key) != masterLen {
			t.Fatalf("key of %d bytes", len(c.key))
		}
		again, err := parseCrypto(c.String())
		if err != nil || again.tag != c.tag || again.suite != c.suite || !bytes.Equal(again.key, c.key) {
			t.Fatalf("%q formats to %q: %+v, %v", v, c.String(), again, err)
		}
	})
}
