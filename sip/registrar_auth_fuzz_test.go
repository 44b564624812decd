package sip

import (
	"encoding/base64"
	"encoding/binary"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// The Authorization header of a REGISTER is the registrar's most exposed input: anyone
// who reaches the SIP port sends one. In a seed, {nonce} stands for a fresh nonce of ours
// and {response} for the right answer for the credentials the header states (agent<id> is
// the password of 1001-1010), so the fuzzer reaches the checks after the password too.
// Whatever the header: no panic, authOK only for a known user, our own nonce and a
// matching digest uri, and never twice for the same header (the nonce count is spent).
func FuzzRegisterAuthorization(f *testing.F) {
	for _, s := range []string{
		`Digest username="1001", realm="hotline", nonce="{nonce}", uri="sip:127.0.0.1:5060", response="{response}", algorithm=MD5, qop=auth, nc=00000001, cnonce="abc"`,
		`Digest username="1001", realm="hotline", nonce="{nonce}", uri="sip:127.0.0.1:5060", response="0123456789abcdef0123456789abcdef", qop=auth, nc=00000001, cnonce="abc"`,
		`Digest username="9999", realm="hotline", nonce="{nonce}", uri="sip:127.0.0.1:5060", response="{response}", qop=auth, nc=1, cnonce="x"`,
		`Digest username="1001", realm="hotline", nonce="AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", uri="sip:127.0.0.1:5060", response="{response}", qop=auth, nc=1, cnonce="x"`,
		`Digest username="1001", realm="hotline", nonce="{nonce}", uri="sip:other@127.0.0.1", response="{response}", qop=auth, nc=1, cnonce="x"`,
		`Digest username="1001", realm="hotline", nonce="{nonce}", uri="sip:127.0.0.1:5060", response="{response}", algorithm=SHA-256, qop=auth, nc=1, cnonce="x"`,
		`Digest username="1001", realm="elsewhere", nonce="{nonce}"`,
		`Digest realm="hotline", userhash=true`,
		`Digest username="1001", realm="hotline", qop=auth-int, nc=ffffffffffffffff`,
		`Digest `, `Basic dXNlcjpwYXNz`, `Digest username="`, `Digest ,,,,==""`, "",
	} {
		f.Add(s)
	}
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	r := NewRegistrar(RegistrarConfig{
		Credentials: regUsers, Now: func() time.Time { return now }, QualifyInterval: -1,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	f.Cleanup(r.Stop)
	f.Fuzz(func(t *testing.T, header string) {
		header = fillCredentials(r, now, header)
		req := sip.NewRequest(sip.REGISTER, sip.Uri{Host: "127.0.0.1", Port: 5060})
		req.AppendHeader(sip.NewHeader("Authorization", header))
		user, res, why := r.authenticate(req, now)
		if res != authOK {
			return
		}
		c, err := digest.ParseCredentials(strings.TrimSpace(header))
		if err != nil {
			t.Fatalf("authOK (%q) for a header that does not parse: %q", user, header)
		}
		if _, known := regUsers(user); !known || user != c.Username || why != "" {
			t.Fatalf("authOK for user %q (%s): %q", user, why, header)
		}
		if _, ours := r.nonces.issued(c.Nonce); !ours {
			t.Fatalf("authOK with a nonce we did not issue: %q", header)
		}
		if !uriMatches(c.URI, &req.Recipient) {
			t.Fatalf("authOK with digest uri %q for Request-URI %s", c.URI, req.Recipient.String())
		}
		if _, again, _ := r.authenticate(req, now); again == authOK {
			t.Fatalf("the same credentials were accepted twice: %q", header)
		}
	})
}

// fillCredentials puts a fresh nonce of r for {nonce} in header and, for {response}, the
// right answer for the credentials the header states (agent<id> for 1001-1010).
func fillCredentials(r *Registrar, now time.Time, header string) string {
	header = strings.ReplaceAll(header, "{nonce}", r.nonces.make(now))
	if !strings.Contains(header, "{response}") {
		return header
	}
	right := "0"
	if c, err := digest.ParseCredentials(strings.TrimSpace(strings.ReplaceAll(header, "{response}", "0"))); err == nil {
		pw, _ := regUsers(c.Username)
		alg := c.Algorithm
		if alg == "" {
			alg = AlgMD5
		}
		if d, err := digest.Digest(&digest.Challenge{Realm: c.Realm, Nonce: c.Nonce, Algorithm: alg, QOP: []string{"auth"}},
			digest.Options{Method: "REGISTER", URI: c.URI, Username: c.Username, Password: pw, Count: c.Nc, Cnonce: c.Cnonce}); err == nil {
			right = d.Response
		}
	}
	return strings.ReplaceAll(header, "{response}", right)
}

// respondTx is the server transaction of a REGISTER handled in a test: it keeps the
// responses (the registrar uses nothing else of it).
type respondTx struct {
	sip.ServerTransaction
	res []*sip.Response
}

func (tx *respondTx) Respond(res *sip.Response) error { tx.res = append(tx.res, res); return nil }

// A whole REGISTER as it comes off the wire (Contact, Expires, instance ids, Require,
// Authorization with the placeholders of FuzzRegisterAuthorization): one response each,
// never a 5xx, and a 200 only with credentials.
func FuzzRegisterRequest(f *testing.F) {
	const head = "REGISTER sip:127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n" +
		"From: <sip:1001@127.0.0.1>;tag=1\r\nTo: <sip:1001@127.0.0.1>\r\nCall-ID: reg1@127.0.0.1\r\nCSeq: 1 REGISTER\r\n"
	const auth = `Authorization: Digest username="1001", realm="hotline", nonce="{nonce}", uri="sip:127.0.0.1:5060", response="{response}", qop=auth, nc=00000001, cnonce="c1"` + "\r\n"
	for _, tail := range []string{
		"Contact: <sip:1001@127.0.0.1:5070>;expires=3600\r\n",
		auth + "Contact: <sip:1001@127.0.0.1:5070>;expires=3600\r\nExpires: 60\r\n",
		auth + "Contact: <sip:1001@127.0.0.1:5070;transport=tcp>;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000000000001>\";reg-id=1\r\n",
		auth + "Contact: *\r\nExpires: 0\r\n",
		auth + "Contact: <sip:1001@127.0.0.1:5070>;expires=99999999999\r\nContact: <sip:1001@[::1]:5070>\r\n",
		auth + "\r\n", // a query of the bindings
		"Require: gruu\r\n",
		auth + "Contact: <sip:1001@127.0.0.1:5070>\r\nExpires: soon\r\n",
	} {
		f.Add([]byte(head + tail + "Content-Length: 0\r\n\r\n"))
	}
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		// A registrar of its own: the first REGISTER of a Call-ID cannot be out of order (500).
		r := NewRegistrar(RegistrarConfig{
			Credentials: regUsers, Now: func() time.Time { return now }, QualifyInterval: -1,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		defer r.Stop()
		msg, err := sip.ParseMessage(data)
		if err != nil {
			return
		}
		req, ok := msg.(*sip.Request)
		if !ok {
			return
		}
		authorized := false
		for _, h := range req.GetHeaders("Authorization") {
			v := fillCredentials(r, now, h.Value())
			authorized = authorized || strings.Contains(h.Value(), "{response}")
			req.RemoveHeader("Authorization") // one at a time: each filled in turn
			req.AppendHeader(sip.NewHeader("Authorization", v))
		}
		req.SetSource("127.0.0.1:5070")
		tx := &respondTx{}
		r.HandleRegister(req, tx)
		if len(tx.res) != 1 {
			t.Fatalf("%d responses to %q", len(tx.res), data)
		}
		code := tx.res[0].StatusCode
		if code >= 500 || code < 200 {
			t.Fatalf("status %d to %q", code, data)
		}
		if code == 200 && !authorized {
			t.Fatalf("200 without credentials: %q", data)
		}
	})
}

// The digest uri is compared with the Request-URI; any string may come in.
func FuzzDigestURIMatches(f *testing.F) {
	for _, s := range []string{"sip:127.0.0.1:5060", "sips:1001@[::1]:5061;transport=tls", "sip:127.0.0.1", "tel:+8613800138000", "sip:", ":", "sip:a@b:99999", ""} {
		f.Add(s, "sip:127.0.0.1:5060")
	}
	f.Fuzz(func(t *testing.T, digestURI, reqURI string) {
		var u sip.Uri
		uriMatches(digestURI, &u) // an empty Request-URI
		if sip.ParseUri(reqURI, &u) != nil {
			return
		}
		uriMatches(digestURI, &u)
		// A Request-URI, written out as a client would copy it, matches itself.
		var back sip.Uri
		if sip.ParseUri(u.String(), &back) == nil && back.User == u.User && back.Host == u.Host &&
			back.Port == u.Port && schemeOf(&back) == schemeOf(&u) && !uriMatches(u.String(), &u) {
			t.Fatalf("%q does not match itself", u.String())
		}
	})
}

// Nonces come back from anyone; only what we signed is recognised.
func FuzzNonceIssued(f *testing.F) {
	s := nonceSigner{key: []byte("0123456789abcdef0123456789abcdef")}
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	// s.make with fixed random bytes, so that the seed is the same in every fuzz worker
	var b [nonceRawLen]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixNano()))
	copy(b[8:16], "8randoms")
	copy(b[16:], s.sum(b[:16]))
	ours := base64.RawURLEncoding.EncodeToString(b[:])
	if at, ok := s.issued(ours); !ok || !at.Equal(now) {
		f.Fatalf("our own nonce %q not recognised", ours)
	}
	for _, n := range []string{ours, ours[:len(ours)-1] + "A", "", "====", strings.Repeat("A", 43), strings.Repeat("_", 44)} {
		f.Add(n)
	}
	f.Fuzz(func(t *testing.T, nonce string) {
		at, ok := s.issued(nonce)
		// Only the bytes we signed are accepted (the decoder may take another spelling of
		// them: a different digest response then, so no replay).
		if got, err := base64.RawURLEncoding.DecodeString(nonce); ok && (err != nil || string(got) != string(b[:])) {
			t.Fatalf("forged nonce %q accepted (issued %v)", nonce, at)
		}
		if ok && !at.Equal(now) {
			t.Fatalf("our nonce issued at %v, want %v", at, now)
		}
	})
}
