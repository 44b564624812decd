package loadtest

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Two streams of one meter talk to each other over loopback through the batched send
// and receive paths: each hears the other's tone frame for frame, and a stream listening
// for a tone nobody sends counts none.
func TestMeterStreamsHearEachOther(t *testing.T) {
	m, err := NewMeter(netip.MustParseAddr("127.0.0.1"), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	a, b := m.NextAddr(), m.NextAddr()
	if a == b {
		t.Fatalf("NextAddr gave %s twice", a)
	}
	sa, err := m.AddStream(b, pcmaPT, 0, StreamOptions{Local: a, Tone: AgentTone, Hear: CitizenTone})
	if err != nil {
		t.Fatal(err)
	}
	sb, err := m.AddStream(a, pcmaPT, 0, StreamOptions{Local: b, Tone: CitizenTone, Hear: 450})
	if err != nil {
		t.Fatal(err)
	}
	// sb listens for 450 Hz, which nobody sends; sa hears sb's 1400 Hz.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if st := sa.Stats(); st.ToneFrames >= 50 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("in 20 s: a %+v b %+v", sa.Stats(), sb.Stats())
		}
	}
	stA, stB := sa.Remove(), sb.Remove()
	if stA.ToneFrames != stA.AudioPackets {
		t.Errorf("a heard the tone in %d of %d frames", stA.ToneFrames, stA.AudioPackets)
	}
	if stB.ToneFrames != 0 || stB.AudioPackets < 40 {
		t.Errorf("b: %d frames, %d of them 450 Hz (nobody sent it)", stB.AudioPackets, stB.ToneFrames)
	}
	if stA.Lost != 0 || stB.Lost != 0 || stA.SendErrors != 0 || stB.SendErrors != 0 {
		t.Errorf("loopback loss or send errors: a %+v b %+v", stA, stB)
	}
	// Every packet b sent by the time a was removed reached a, give or take what was
	// in flight.
	if stB.Sent-stA.Packets > 5 || stA.Packets > stB.Sent {
		t.Errorf("b sent %d, a received %d", stB.Sent, stA.Packets)
	}
	// Kernel arrival stamps on loopback: two 20 ms-paced streams show little jitter.
	if stA.Jitter > 10*time.Millisecond {
		t.Errorf("jitter %s on loopback", stA.Jitter)
	}

	if b := m.Stats().RecvBuffer; b < 200<<10 { // the kernel's default at the very least
		t.Errorf("receive buffer %d bytes", b)
	}
	if _, err := m.AddStream(a, pcmaPT, 0, StreamOptions{Tone: 1234}); !errors.Is(err, ErrConfig) {
		t.Errorf("tone 1234 Hz: %v, want ErrConfig", err)
	}
	if _, err := m.AddStream(a, pcmaPT, 0, StreamOptions{Local: netip.MustParseAddrPort("127.0.0.1:9")}); !errors.Is(err, ErrConfig) {
		t.Errorf("a local address that is no meter socket: %v, want ErrConfig", err)
	}
}

func TestArrivalStamp(t *testing.T) {
	oob := make([]byte, unix.CmsgSpace(16)+unix.CmsgSpace(4))
	// A first, unrelated control message, then the timestamp.
	put := func(b []byte, level, typ int32, data []byte) int {
		l := unix.CmsgLen(len(data))
		if unix.SizeofCmsghdr == 16 {
			binary.NativeEndian.PutUint64(b, uint64(l))
		} else {
			binary.NativeEndian.PutUint32(b, uint32(l))
		}
		binary.NativeEndian.PutUint32(b[unix.SizeofCmsghdr-8:], uint32(level))
		binary.NativeEndian.PutUint32(b[unix.SizeofCmsghdr-4:], uint32(typ))
		copy(b[unix.CmsgLen(0):], data)
		return unix.CmsgSpace(len(data))
	}
	ts := make([]byte, 16)
	binary.NativeEndian.PutUint64(ts, 1_700_000_000)
	binary.NativeEndian.PutUint64(ts[8:], 123_456_789)
	n := put(oob, unix.IPPROTO_IP, unix.IP_TOS, []byte{0, 0, 0, 0})
	n += put(oob[n:], unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS, ts)
	at, ok := arrivalStamp(oob[:n])
	if !ok || !at.Equal(time.Unix(1_700_000_000, 123_456_789)) {
		t.Fatalf("arrivalStamp = %v %v", at, ok)
	}
	if _, ok := arrivalStamp(oob[:5]); ok {
		t.Error("a truncated header gave a stamp")
	}
	bad := append([]byte(nil), oob[:n]...)
	binary.NativeEndian.PutUint32(bad, 1000) // a length past the buffer
	if _, ok := arrivalStamp(bad); ok {
		t.Error("a length past the buffer gave a stamp")
	}
}
