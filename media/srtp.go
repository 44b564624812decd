package media

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// SRTP suites (RFC 4568 names) that SetSRTP accepts.
const (
	SuiteAES80 = "AES_CM_128_HMAC_SHA1_80"
	SuiteAES32 = "AES_CM_128_HMAC_SHA1_32"
)

// srtpReplayWindow is how many packets back a received sequence number is checked
// against replays (RFC 3711 §3.3.2 asks at least 64).
const srtpReplayWindow = 128

// srtpMasterLen is an SDES key: a 16-byte master key then a 14-byte master salt.
const srtpMasterLen = 30

// SRTPKeys are a leg's SDES keys: the remote encrypts with RemoteKey, we with LocalKey.
type SRTPKeys struct {
	Suite     string
	LocalKey  []byte // srtpMasterLen bytes: master key then salt
	RemoteKey []byte
}

func (k *SRTPKeys) equal(o *SRTPKeys) bool {
	return k.Suite == o.Suite && bytes.Equal(k.LocalKey, o.LocalKey) && bytes.Equal(k.RemoteKey, o.RemoteKey)
}

// srtpState is a session's SRTP: the receive context is the reader's (goroutine or
// poller loop) alone; the send context is shared by the tick and a bridge relaying into
// the session, so it is used under txMu. The buffers are reused: nothing is allocated
// per packet.
type srtpState struct {
	keys SRTPKeys

	rx    *srtp.Context
	rxHdr rtp.Header
	rxBuf [rxBufferSize]byte

	txMu  sync.Mutex
	tx    *srtp.Context
	txHdr rtp.Header
	txBuf [rxBufferSize + 16]byte
}

func newSRTPState(k SRTPKeys) (*srtpState, error) {
	var profile srtp.ProtectionProfile
	switch k.Suite {
	case SuiteAES80:
		profile = srtp.ProtectionProfileAes128CmHmacSha1_80
	case SuiteAES32:
		profile = srtp.ProtectionProfileAes128CmHmacSha1_32
	default:
		return nil, fmt.Errorf("%w: suite %q", ErrSRTPKeys, k.Suite)
	}
	if len(k.LocalKey) != srtpMasterLen || len(k.RemoteKey) != srtpMasterLen {
		return nil, fmt.Errorf("%w: keys of %d and %d bytes", ErrSRTPKeys, len(k.LocalKey), len(k.RemoteKey))
	}
	st := &srtpState{keys: SRTPKeys{Suite: k.Suite, LocalKey: bytes.Clone(k.LocalKey), RemoteKey: bytes.Clone(k.RemoteKey)}}
	var err error
	if st.tx, err = srtp.CreateContext(k.LocalKey[:16], k.LocalKey[16:], profile); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSRTPKeys, err)
	}
	if st.rx, err = srtp.CreateContext(k.RemoteKey[:16], k.RemoteKey[16:], profile, srtp.SRTPReplayProtection(srtpReplayWindow)); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSRTPKeys, err)
	}
	return st, nil
}

// SetSRTP makes the session SRTP with keys (SDES), or plain RTP with nil: what it sends
// is encrypted with LocalKey, what it receives must authenticate and decrypt with
// RemoteKey (packets that do not are dropped and counted in Stats.SRTPFailed). Keys
// equal to the current ones change nothing (a re-INVITE repeating them), so the rollover
// and replay state carry on.
func (s *Session) SetSRTP(keys *SRTPKeys) error {
	if keys == nil {
		s.srtp.Store(nil)
		return nil
	}
	if cur := s.srtp.Load(); cur != nil && cur.keys.equal(keys) {
		return nil
	}
	st, err := newSRTPState(*keys)
	if err != nil {
		return err
	}
	s.srtp.Store(st)
	s.log.Debug("srtp keys set", "suite", keys.Suite)
	return nil
}

// decrypt authenticates and decrypts an SRTP packet into st.rxBuf; the reader's.
func (st *srtpState) decrypt(buf []byte) ([]byte, error) {
	return st.rx.DecryptRTP(st.rxBuf[:0], buf, &st.rxHdr)
}
