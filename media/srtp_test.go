package media

import (
	"bytes"
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

var (
	keyA = bytes.Repeat([]byte{0xa1}, srtpMasterLen) // the peer's
	keyB = bytes.Repeat([]byte{0xb2}, srtpMasterLen) // ours
)

// pionContext is the peer's side, made by pion directly.
func pionContext(t testing.TB, key []byte, suite string) *srtp.Context {
	t.Helper()
	profile := srtp.ProtectionProfileAes128CmHmacSha1_80
	if suite == SuiteAES32 {
		profile = srtp.ProtectionProfileAes128CmHmacSha1_32
	}
	c, err := srtp.CreateContext(key[:16], key[16:], profile)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSetSRTPRejectsBadKeys(t *testing.T) {
	s := NewSession(SessionConfig{Timeout: -1})
	for _, k := range []SRTPKeys{
		{Suite: "AES_256_CM_HMAC_SHA1_80", LocalKey: keyB, RemoteKey: keyA},
		{Suite: SuiteAES80, LocalKey: keyB[:16], RemoteKey: keyA},
		{Suite: SuiteAES80, LocalKey: keyB, RemoteKey: nil},
	} {
		if err := s.SetSRTP(&k); !errors.Is(err, ErrSRTPKeys) {
			t.Errorf("%+v: %v", k, err)
		}
	}
}

// What the peer encrypts with pion is received; what is not authentic is dropped; the
// receive path allocates nothing.
func TestSRTPReceive(t *testing.T) {
	for _, suite := range []string{SuiteAES80, SuiteAES32} {
		t.Run(suite, func(t *testing.T) {
			s := socketless(101)
			var got [][]byte
			s.SetAudioSink(func(p *rtp.Packet, _ Codec, _ time.Time) { got = append(got, bytes.Clone(p.Payload)) })
			if err := s.SetSRTP(&SRTPKeys{Suite: suite, LocalKey: keyB, RemoteKey: keyA}); err != nil {
				t.Fatal(err)
			}
			peer := pionContext(t, keyA, suite)
			payload := bytes.Repeat([]byte{0x55}, 160)
			src := newRTPSource(t, 0, 0x1234, payload)
			enc := make([]byte, 0, 1500)
			now := time.Unix(1, 0)
			for range 3 {
				out, err := peer.EncryptRTP(enc[:0], src.next(), nil)
				if err != nil {
					t.Fatal(err)
				}
				s.handlePacket(out, peerAddr, now)
			}
			if st := s.Stats(); st.PacketsIn != 3 || st.SRTPFailed != 0 || len(got) != 3 || !bytes.Equal(got[2], payload) {
				t.Fatalf("stats %+v, %d payloads", st, len(got))
			}
			// Plain RTP, a tampered packet and a replay are all dropped.
			s.handlePacket(src.next(), peerAddr, now)
			out, _ := peer.EncryptRTP(enc[:0], src.next(), nil)
			out[20] ^= 1
			s.handlePacket(out, peerAddr, now)
			out, _ = peer.EncryptRTP(enc[:0], src.next(), nil)
			s.handlePacket(out, peerAddr, now)
			s.handlePacket(out, peerAddr, now) // replayed
			if st := s.Stats(); st.PacketsIn != 4 || st.SRTPFailed != 3 {
				t.Fatalf("stats %+v: want 4 accepted, 3 failed (plain, tampered, replay)", st)
			}
			pkts := make([][]byte, 501) // AllocsPerRun runs once more to warm up
			for i := range pkts {
				out, err := peer.EncryptRTP(nil, src.next(), nil)
				if err != nil {
					t.Fatal(err)
				}
				pkts[i] = out
			}
			i, n := 0, 0
			s.SetAudioSink(func(p *rtp.Packet, _ Codec, _ time.Time) { n += len(p.Payload) }) // the test's sink must not allocate either
			if a := testing.AllocsPerRun(500, func() { s.handlePacket(pkts[i], peerAddr, now); i++ }); a != 0 {
				t.Errorf("%v allocs per SRTP packet received", a)
			}
			if st := s.Stats(); st.PacketsIn != 4+501 || st.SRTPFailed != 3 {
				t.Errorf("stats %+v after the allocation run", st)
			}
		})
	}
}

// What the session sends is SRTP the peer decrypts with pion; the send path allocates
// nothing.
func TestSRTPSend(t *testing.T) { forModes(t, testSRTPSend) }

func testSRTPSend(t *testing.T, ports *Ports) {
	checkLeaks(t)
	sink := listen(t)
	defer sink.Close()
	s := newTestSession(t, ports, SessionConfig{Timeout: -1})
	s.SetRemote(addrOf(sink), PCMU, 101)
	if err := s.SetSRTP(&SRTPKeys{Suite: SuiteAES80, LocalKey: keyB, RemoteKey: keyA}); err != nil {
		t.Fatal(err)
	}
	tone := Tone("t", []float64{1000}, time.Second, 0.3)
	s.Loop(tone)
	d := time.Now()
	tick := func() { d = d.Add(FrameDuration); s.tick(d) }
	tick()
	peer := pionContext(t, keyB, SuiteAES80)
	buf := make([]byte, 1500)
	_ = sink.SetReadDeadline(time.Now().Add(waitLong))
	n, _, err := sink.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != 12+160+10 {
		t.Errorf("SRTP packet of %d bytes, want 182 (header, payload, 80-bit tag)", n)
	}
	if bytes.Equal(buf[12:172], tone.Frames(PCMU)[0]) {
		t.Error("payload sent in clear")
	}
	dec, err := peer.DecryptRTP(nil, buf[:n], nil)
	if err != nil {
		t.Fatalf("peer cannot decrypt: %v", err)
	}
	if !bytes.Equal(dec[12:], tone.Frames(PCMU)[0]) {
		t.Error("decrypted payload differs from the prompt's frame")
	}
	if a := testing.AllocsPerRun(200, tick); a != 0 {
		t.Errorf("SRTP send: %v allocs per packet", a)
	}
	// Same keys again (a re-INVITE): the stream carries on, the peer still decrypts.
	if err := s.SetSRTP(&SRTPKeys{Suite: SuiteAES80, LocalKey: keyB, RemoteKey: keyA}); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.SendErrors != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// A bridge between an SRTP leg and a plain leg: the SRTP peer's tone reaches the plain
// peer in clear, the plain peer's reaches the SRTP peer encrypted.
func TestBridgeSRTPToPlain(t *testing.T) { forModes(t, testBridgeSRTPToPlain) }

func testBridgeSRTPToPlain(t *testing.T, ports *Ports) {
	checkLeaks(t)
	sched := NewScheduler(1)
	defer sched.Close()
	secPeer, plainPeer := listen(t), listen(t)
	defer secPeer.Close()
	defer plainPeer.Close()
	a := newTestSession(t, ports, SessionConfig{Scheduler: sched, Timeout: -1})
	b := newTestSession(t, ports, SessionConfig{Scheduler: sched, Timeout: -1})
	a.SetRemote(addrOf(secPeer), PCMU, 101)
	b.SetRemote(addrOf(plainPeer), PCMA, 101)
	if err := a.SetSRTP(&SRTPKeys{Suite: SuiteAES32, LocalKey: keyB, RemoteKey: keyA}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a.Start(ctx)
	b.Start(ctx)
	br := NewBridge(a, b)
	br.Start()
	defer br.Stop()

	tx := pionContext(t, keyA, SuiteAES32) // the SRTP peer encrypts with its key
	rx := pionContext(t, keyB, SuiteAES32) // and decrypts with ours
	ulaw := bytes.Repeat([]byte{0x15}, 160)
	alaw := bytes.Repeat([]byte{0x3c}, 160)
	read := func(c *net.UDPConn) []byte {
		buf := make([]byte, 1500)
		_ = c.SetReadDeadline(time.Now().Add(waitLong))
		n, _, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("nothing relayed: %v (bridge %+v)", err, br.Stats())
		}
		return buf[:n]
	}
	for seq := uint16(1); seq <= 3; seq++ {
		p := rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq) * 160, SSRC: 7}, Payload: ulaw}
		plain, _ := p.Marshal()
		enc, err := tx.EncryptRTP(nil, plain, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := secPeer.WriteToUDPAddrPort(enc, a.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		var got rtp.Packet
		if err := got.Unmarshal(read(plainPeer)); err != nil || got.PayloadType != uint8(PCMA) || !bytes.Equal(got.Payload, transcode(ulaw, PCMA)) {
			t.Fatalf("plain peer got %v (%v)", got.Header, err)
		}
		p = rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 8, SequenceNumber: seq, Timestamp: uint32(seq) * 160, SSRC: 8}, Payload: alaw}
		plain, _ = p.Marshal()
		if _, err := plainPeer.WriteToUDPAddrPort(plain, b.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		dec, err := rx.DecryptRTP(nil, read(secPeer), nil)
		if err != nil {
			t.Fatalf("SRTP peer cannot decrypt the relayed packet: %v", err)
		}
		if err := got.Unmarshal(dec); err != nil || got.PayloadType != uint8(PCMU) || !bytes.Equal(got.Payload, transcode(alaw, PCMU)) {
			t.Fatalf("SRTP peer got %v (%v)", got.Header, err)
		}
	}
}

// transcode converts a G.711 payload to the law dst, as the bridge does.
func transcode(p []byte, dst Codec) []byte {
	out := make([]byte, len(p))
	for i, v := range p {
		if dst == PCMA {
			out[i] = ulawToAlaw[v]
		} else {
			out[i] = alawToUlaw[v]
		}
	}
	return out
}
