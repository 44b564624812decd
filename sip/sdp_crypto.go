package sip

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// SDES-SRTP (RFC 4568): the a=crypto attribute of an offer or answer.

// SRTPPolicy says whether a peer's media is encrypted.
type SRTPPolicy string

// SRTP policies (config: srtp: off | optional | required).
const (
	// SRTPOff answers plain RTP only: an RTP/SAVP offer gets 488, a=crypto on an
	// RTP/AVP offer is ignored; our offers carry no a=crypto.
	SRTPOff SRTPPolicy = "off"
	// SRTPOptional (the default of trunks) takes SRTP when the offer has usable
	// crypto (RTP/SAVP, or RTP/AVP with a=crypto as baresip's srtp module sends),
	// plain RTP otherwise. Our offers are RTP/AVP with a=crypto: a peer that
	// understands it encrypts, another ignores it.
	SRTPOptional SRTPPolicy = "optional"
	// SRTPRequired refuses offers without usable crypto (488); our offers are RTP/SAVP.
	SRTPRequired SRTPPolicy = "required"
)

// The crypto suites we speak (RFC 4568 §6.2): AES-128 counter mode with an 80- or
// 32-bit HMAC-SHA1 tag; both use a 16-byte master key and a 14-byte master salt.
const (
	SuiteAES80 = "AES_CM_128_HMAC_SHA1_80"
	SuiteAES32 = "AES_CM_128_HMAC_SHA1_32"
)

// masterLen is the length of an inline key: master key (16) then master salt (14).
const masterLen = 30

// ErrNoCrypto is an offer or answer whose media must be SRTP (RTP/SAVP, or our policy
// requires it) without a usable a=crypto line (answered 488).
var ErrNoCrypto = errors.New("sip: no usable SRTP crypto")

// errCrypto is an a=crypto line we cannot use; the line is skipped.
var errCrypto = errors.New("sip: unusable a=crypto")

// SRTP is the negotiated SDES keying of a leg: the remote encrypts with RemoteKey, we
// with LocalKey (each 30 bytes: master key then salt), both in Suite.
type SRTP struct {
	Suite     string
	Tag       int
	LocalKey  []byte
	RemoteKey []byte
}

// cryptoAttr is one a=crypto line.
type cryptoAttr struct {
	tag   int
	suite string
	key   []byte // masterLen bytes
}

// parseCrypto reads the value of an a=crypto attribute: "TAG SUITE inline:KEY[|LIFETIME]".
// Lines we cannot honour — another suite, several keys, an MKI, a lifetime other than a
// power of two or number, or any session parameter (UNENCRYPTED_SRTP, KDR, ...) — are
// errCrypto: RFC 4568 §6 lets the answerer pick another line.
func parseCrypto(v string) (cryptoAttr, error) {
	var c cryptoAttr
	f := strings.Fields(v)
	if len(f) != 3 {
		return c, fmt.Errorf("%w: %d fields", errCrypto, len(f))
	}
	tag, err := strconv.Atoi(f[0])
	if err != nil || tag < 0 || tag > 999999999 || len(f[0]) > 10 {
		return c, fmt.Errorf("%w: tag %q", errCrypto, f[0])
	}
	c.tag = tag
	switch f[1] {
	case SuiteAES80, SuiteAES32:
		c.suite = f[1]
	default:
		return c, fmt.Errorf("%w: suite %q", errCrypto, f[1])
	}
	method, info, ok := strings.Cut(f[2], ":")
	if !ok || method != "inline" || strings.Contains(info, ";") {
		return c, fmt.Errorf("%w: key parameters %q", errCrypto, f[2])
	}
	key, rest, _ := strings.Cut(info, "|")
	if rest != "" {
		life, mki, _ := strings.Cut(rest, "|")
		if mki != "" || strings.Contains(life, ":") || !validLifetime(life) {
			return c, fmt.Errorf("%w: lifetime or MKI %q", errCrypto, rest)
		}
	}
	if len(key) != base64.StdEncoding.EncodedLen(masterLen) {
		return c, fmt.Errorf("%w: key length", errCrypto)
	}
	c.key, err = base64.StdEncoding.DecodeString(key)
	if err != nil || len(c.key) != masterLen {
		return c, fmt.Errorf("%w: key encoding", errCrypto)
	}
	return c, nil
}

// validLifetime reports whether s is "2^N" or a decimal number, as RFC 4568 §9.2 writes it.
func validLifetime(s string) bool {
	if p, ok := strings.CutPrefix(s, "2^"); ok {
		s = p
	}
	if s == "" || len(s) > 20 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// String is the attribute's value: "TAG SUITE inline:KEY".
func (c cryptoAttr) String() string {
	return fmt.Sprintf("%d %s inline:%s", c.tag, c.suite, base64.StdEncoding.EncodeToString(c.key))
}

// newCrypto returns a line with a fresh random key.
func newCrypto(tag int, suite string) (cryptoAttr, error) {
	c := cryptoAttr{tag: tag, suite: suite, key: make([]byte, masterLen)}
	if _, err := rand.Read(c.key); err != nil {
		return c, fmt.Errorf("sip: srtp key: %w", err)
	}
	return c, nil
}

// secureProto reports whether an m= line's transport requires SRTP.
func secureProto(proto string) bool { return proto == "RTP/SAVP" || proto == "RTP/SAVPF" }

// answerSRTP decides the keying of our answer to o under policy: nil for plain RTP, or
// the offer's first usable line with a fresh key of ours. cur is the leg's keying so far
// (a re-INVITE): if the offer repeats its line, our key stays too.
func answerSRTP(o offer, policy SRTPPolicy, cur *SRTP) (*SRTP, error) {
	secure := secureProto(o.proto)
	if policy == SRTPOff || len(o.cryptos) == 0 {
		switch {
		case secure && policy == SRTPOff:
			return nil, fmt.Errorf("%w: %s offered, SRTP is off", ErrNoCrypto, o.proto)
		case secure || policy == SRTPRequired:
			return nil, fmt.Errorf("%w: %s offer, SRTP %s", ErrNoCrypto, o.proto, policy)
		}
		return nil, nil
	}
	c := o.cryptos[0]
	if cur != nil && cur.Suite == c.suite && cur.Tag == c.tag && string(cur.RemoteKey) == string(c.key) {
		return cur, nil
	}
	ours, err := newCrypto(c.tag, c.suite)
	if err != nil {
		return nil, err
	}
	return &SRTP{Suite: c.suite, Tag: c.tag, LocalKey: ours.key, RemoteKey: c.key}, nil
}

// offerCryptos returns the lines of an offer of ours under policy (none when off).
func offerCryptos(policy SRTPPolicy) ([]cryptoAttr, error) {
	if policy != SRTPOptional && policy != SRTPRequired {
		return nil, nil
	}
	var out []cryptoAttr
	for i, suite := range []string{SuiteAES80, SuiteAES32} {
		c, err := newCrypto(i+1, suite)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// answeredSRTP matches the answer a to the lines we offered: the answer's line must
// carry one of our tags with its suite. Without crypto in the answer the leg is plain,
// unless policy requires SRTP.
func answeredSRTP(a offer, offered []cryptoAttr, policy SRTPPolicy) (*SRTP, error) {
	if len(offered) == 0 {
		return nil, nil
	}
	for _, c := range a.cryptos {
		for _, o := range offered {
			if o.tag == c.tag && o.suite == c.suite {
				return &SRTP{Suite: c.suite, Tag: c.tag, LocalKey: o.key, RemoteKey: c.key}, nil
			}
		}
	}
	if policy == SRTPRequired || secureProto(a.proto) {
		return nil, fmt.Errorf("%w: answer %s without a matching line", ErrNoCrypto, a.proto)
	}
	return nil, nil
}
