package sip

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	testphone "github.com/hotline12345/hotline/loadtest/phone"
)

// SDES-SRTP through the server: an RTP/SAVP offer with a=crypto is answered RTP/SAVP with
// our own key under the offer's tag, and the leg's media carries both keys; under a
// trunk's srtp: required a plain offer gets 488, under srtp: off an RTP/SAVP one does.
func TestInviteSRTP(t *testing.T) {
	t.Parallel()
	crypto := "a=crypto:3 AES_CM_128_HMAC_SHA1_80 " + inline(testKey)
	savp := strings.Replace(sdpOffer(4000, "8", crypto), "RTP/AVP", "RTP/SAVP", 1)
	for _, tc := range []struct {
		name   string
		policy SRTPPolicy
		body   string
		status int
		proto  string // of the answer
	}{
		{"SAVP with crypto, default policy", "", savp, 200, "RTP/SAVP"},
		{"AVP with crypto (best effort), required", SRTPRequired, sdpOffer(4000, "8", crypto), 200, "RTP/AVP"},
		{"plain, required", SRTPRequired, sdpOffer(4000, "8"), 488, ""},
		{"SAVP, off", SRTPOff, savp, 488, ""},
		{"SAVP with an unusable line", "", strings.Replace(savp, "AES_CM_128_HMAC_SHA1_80", "AES_256_CM_HMAC_SHA1_80", 1), 488, ""},
		{"plain, off", SRTPOff, sdpOffer(4000, "8", crypto), 200, "RTP/AVP"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			trunk := defaultTrunk()
			trunk.SRTP = tc.policy
			ts := startServer(t, withTrunks(trunk))
			p := newUDPPhone(t, ts)
			u := p.dialog(testDID)
			res := p.status(u.req("INVITE", 0, "application/sdp", tc.body))
			if res.StatusCode != tc.status {
				t.Fatalf("status %d %s, want %d", res.StatusCode, res.Reason, tc.status)
			}
			if tc.status != 200 {
				u.ackError()
				return
			}
			u.toTag, _ = res.To().Params.Get("tag")
			tl := ts.nextCall(t)
			u.ack(u.cseq, "")
			tl.waitAnswered(t)
			if tl.answerErr != nil {
				t.Fatal(tl.answerErr)
			}
			ours := answerSDP(t, res.Body())
			if ours.proto != tc.proto {
				t.Errorf("answer transport %s, want %s\n%s", ours.proto, tc.proto, res.Body())
			}
			k := tl.media.SRTP
			if tc.policy == SRTPOff {
				if k != nil || len(ours.cryptos) != 0 {
					t.Fatalf("SRTP with srtp: off: %+v\n%s", k, res.Body())
				}
			} else {
				if k == nil || len(ours.cryptos) != 1 {
					t.Fatalf("keys %+v, answer\n%s", k, res.Body())
				}
				c := ours.cryptos[0]
				if c.tag != 3 || c.suite != SuiteAES80 || !bytes.Equal(c.key, k.LocalKey) || !bytes.Equal(k.RemoteKey, testKey) {
					t.Errorf("answer line %+v, keys %+v", c, k)
				}
			}
			if r := p.status(u.req("BYE", 0, "", "")); r.StatusCode != 200 {
				t.Fatalf("BYE: %d", r.StatusCode)
			}
			tl.waitDone(t)
		})
	}
}

// Re-INVITEs of an SRTP leg: repeating the offer's line keeps our key (hold and unhold
// keep the stream going); a refresh without SDP gets our offer with the leg's own line,
// and the answer in the ACK keeps the keying.
func TestReinviteSRTP(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	p := newUDPPhone(t, ts)
	u := p.dialog(testDID)
	crypto := "a=crypto:1 AES_CM_128_HMAC_SHA1_32 " + inline(testKey)
	offer := func(attrs ...string) string {
		return strings.Replace(sdpOffer(4000, "8", append([]string{crypto}, attrs...)...), "RTP/AVP", "RTP/SAVP", 1)
	}
	tl := u.established(ts, offer())
	first := tl.Media().SRTP
	if first == nil {
		t.Fatal("no SRTP on the leg")
	}
	res := u.reinvite("application/sdp", offer("a=sendonly"))
	if res.StatusCode != 200 {
		t.Fatalf("hold: %d", res.StatusCode)
	}
	ours := answerSDP(t, res.Body())
	if len(ours.cryptos) != 1 || !bytes.Equal(ours.cryptos[0].key, first.LocalKey) || ours.proto != "RTP/SAVP" {
		t.Fatalf("hold answer changed our keying:\n%s", res.Body())
	}
	u.ack(u.cseq, "")
	if m := nextUpdate(t, tl); m.SRTP != first {
		t.Fatalf("hold update keys %+v, want the leg's", m.SRTP)
	}

	res = u.reinvite("", "")
	if res.StatusCode != 200 {
		t.Fatalf("refresh: %d", res.StatusCode)
	}
	ours = answerSDP(t, res.Body())
	if len(ours.cryptos) != 1 || ours.cryptos[0].tag != 1 || !bytes.Equal(ours.cryptos[0].key, first.LocalKey) {
		t.Fatalf("our offer lacks the leg's crypto line:\n%s", res.Body())
	}
	u.ack(u.cseq, offer())
	m := nextUpdate(t, tl)
	if m.SRTP == nil || !bytes.Equal(m.SRTP.LocalKey, first.LocalKey) || !bytes.Equal(m.SRTP.RemoteKey, testKey) {
		t.Fatalf("refresh update keys %+v", m.SRTP)
	}
}

// nextUpdate waits for the leg's next media update.
func nextUpdate(t *testing.T, tl *testLeg) Media {
	t.Helper()
	select {
	case m := <-tl.MediaUpdates():
		return m
	case <-time.After(waitLong):
		t.Fatal("no media update")
	}
	return Media{}
}

// Our offers to a phone that knows no SRTP (the test phone answers RTP/AVP without
// a=crypto): optional ends up plain, required refuses the answer and hangs up.
func TestDialSRTPPolicy(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		policy SRTPPolicy
		err    error
	}{{SRTPOptional, nil}, {SRTPRequired, ErrNoCrypto}} {
		s := outboundServer(t)
		p := agentPhone(t, func(*testphone.Call) bool { return true })
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		opt := dialOptions(p)
		opt.SRTP = tc.policy
		o, err := s.Dial(ctx, opt)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		werr := o.Wait()
		cancel()
		if !errors.Is(werr, tc.err) {
			t.Fatalf("%s: Wait = %v, want %v", tc.policy, werr, tc.err)
		}
		if m := o.Media(); m.SRTP != nil {
			t.Fatalf("%s: keys %+v with a plain answer", tc.policy, m.SRTP)
		}
		if tc.err != nil {
			select {
			case <-o.Done():
			case <-time.After(waitLong):
				t.Fatalf("%s: the leg with a plain answer was not hung up", tc.policy)
			}
		} else {
			o.Hangup(context.Background(), "test over")
		}
	}
}
