package loadtest

import (
	"encoding/binary"
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// stampOOBLen fits one SCM_TIMESTAMPNS control message.
var stampOOBLen = unix.CmsgSpace(16)

// stampArrivals asks the kernel to stamp each datagram with its arrival time
// (SO_TIMESTAMPNS), best effort: without it arrivals are stamped when read.
func stampArrivals(c *net.UDPConn) {
	if rc, err := c.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) {
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
		})
	}
}

// arrivalStamp reads the SCM_TIMESTAMPNS control message of a datagram (struct cmsghdr,
// then struct timespec; native byte order), without allocating.
func arrivalStamp(oob []byte) (time.Time, bool) {
	const lenSize = unix.SizeofCmsghdr - 8 // cmsg_len is a size_t
	for len(oob) >= unix.SizeofCmsghdr {
		var l int
		if lenSize == 8 {
			l = int(binary.NativeEndian.Uint64(oob))
		} else {
			l = int(binary.NativeEndian.Uint32(oob))
		}
		level := int32(binary.NativeEndian.Uint32(oob[lenSize:]))
		typ := int32(binary.NativeEndian.Uint32(oob[lenSize+4:]))
		if l < unix.SizeofCmsghdr || l > len(oob) {
			return time.Time{}, false
		}
		if level == unix.SOL_SOCKET && typ == unix.SCM_TIMESTAMPNS && l >= unix.CmsgLen(16) {
			data := oob[unix.CmsgLen(0):]
			sec := int64(binary.NativeEndian.Uint64(data[0:8]))
			nsec := int64(binary.NativeEndian.Uint64(data[8:16]))
			return time.Unix(sec, nsec), true
		}
		oob = oob[min(unix.CmsgSpace(l-unix.CmsgLen(0)), len(oob)):]
	}
	return time.Time{}, false
}

// recvBuffer returns the socket's receive buffer as the kernel granted it (net.core.rmem_max
// caps what SetReadBuffer asks for), 0 if unknown.
func recvBuffer(c *net.UDPConn) int {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0
	}
	n := 0
	_ = rc.Control(func(fd uintptr) {
		n, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
	})
	return n / 2 // Linux reports twice the size asked, half of it for its bookkeeping
}
