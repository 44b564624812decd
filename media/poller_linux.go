package media

import (
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// recvBatchSize is how many datagrams one recvmmsg may return.
const recvBatchSize = 8

// poller reads raw UDP sockets with a few epoll loops instead of a parked
// goroutine per socket: each loop waits in epoll_wait on its sockets
// (level-triggered) and reads each ready one with one recvmmsg. The sockets
// are not registered with Go's netpoller, so the runtime is not woken per
// datagram. Sockets are given to the loops round-robin.
type poller struct {
	loops []*pollLoop
	next  atomic.Uint32
}

// newOSPoller returns a poller of n loops, or nil when epoll is unavailable.
func newOSPoller(n int) *poller {
	if !pollerWorks() {
		return nil
	}
	p := &poller{loops: make([]*pollLoop, n)}
	for i := range p.loops {
		p.loops[i] = &pollLoop{wakeFD: -1}
	}
	return p
}

// open binds a non-blocking UDP socket on ap and attaches it to a loop, which
// owns it from now on: only the loop closes it (rawSocket.requestClose).
func (p *poller) open(ap netip.AddrPort) (*rawSocket, error) {
	fd, err := bindRaw(ap)
	if err != nil {
		return nil, err
	}
	l := p.loops[(p.next.Add(1)-1)%uint32(len(p.loops))]
	if err := l.attach(); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &rawSocket{fd: fd, local: ap, v6: ap.Addr().Is6(), loop: l}, nil
}

// pollerWorks tries what the loops need once, so that a system refusing it
// (an old kernel, a sandbox, a seccomp filter) gets the portable mode:
// epoll_create1, an eventfd added with epoll_ctl, and recvmmsg on a UDP
// socket, which must find nothing to read (EAGAIN).
func pollerWorks() bool {
	epfd, wakeFD, err := newEpoll()
	if err != nil {
		return false
	}
	unix.Close(epfd)
	unix.Close(wakeFD)
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	var msg [1]unix.Mmsghdr
	_, _, e := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(fd), uintptr(unsafe.Pointer(&msg[0])), 1, unix.MSG_DONTWAIT, 0, 0)
	return e == unix.EAGAIN
}

// bindRaw returns a non-blocking, close-on-exec UDP socket bound on ap, with
// the buffers Ports.Listen asks for. Its errors are syscall.Errno (EADDRINUSE).
func bindRaw(ap netip.AddrPort) (int, error) {
	family := unix.AF_INET
	var sa unix.Sockaddr
	if ap.Addr().Is4() {
		sa = &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	} else {
		family = unix.AF_INET6
		sa6 := &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
		if z := ap.Addr().Zone(); z != "" {
			if ifi, err := net.InterfaceByName(z); err == nil {
				sa6.ZoneId = uint32(ifi.Index)
			}
		}
		sa = sa6
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return -1, err
	}
	if family == unix.AF_INET6 && ap.Addr().IsUnspecified() {
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0) // dual stack, as net does
	}
	// Best effort: the kernel caps these at net.core.{r,w}mem_max.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rtpReadBuffer)
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, rtpWriteBuffer)
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// newEpoll returns an epoll instance watching a new eventfd (the wake-up).
func newEpoll() (epfd, wakeFD int, err error) {
	if epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return -1, -1, fmt.Errorf("media: epoll_create1: %w", err)
	}
	if wakeFD, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
		unix.Close(epfd)
		return -1, -1, fmt.Errorf("media: eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wakeFD)}
	if err = unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakeFD, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(wakeFD)
		return -1, -1, fmt.Errorf("media: epoll_ctl: %w", err)
	}
	return epfd, wakeFD, nil
}

type pollOp uint8

const (
	opStart pollOp = iota // start reading the socket (EPOLL_CTL_ADD)
	opClose               // stop reading, close the socket, tell the handler
)

type pollReq struct {
	s  *rawSocket
	op pollOp
}

// pollLoop is one epoll loop. Its goroutine, locked to its thread, runs
// while the loop has sockets: attach starts it with a new epoll instance
// and eventfd, and it closes both and exits when its last socket is closed.
// The loop goroutine alone touches epoll and closes the sockets; others
// queue requests and wake it through the eventfd.
type pollLoop struct {
	mu      sync.Mutex
	pending []pollReq // requests not yet taken by the loop
	live    int       // sockets attached and not yet closed
	running bool      // the loop goroutine runs; wakeFD is its eventfd
	wakeFD  int
}

// attach counts a new socket, starting the loop goroutine if it is not running.
func (l *pollLoop) attach() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.running {
		epfd, wakeFD, err := newEpoll()
		if err != nil {
			return err
		}
		l.running, l.wakeFD = true, wakeFD
		go l.run(epfd, wakeFD)
	}
	l.live++
	return nil
}

// request queues op for s, an attached socket not yet closed (so the loop
// runs), and wakes the loop. The eventfd is written under mu: once the loop
// may have handled the request it may also have exited and closed it.
func (l *pollLoop) request(s *rawSocket, op pollOp) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pending = append(l.pending, pollReq{s, op})
	if len(l.pending) == 1 { // otherwise a wake-up is already on its way
		one := [8]byte{1}
		_, _ = unix.Write(l.wakeFD, one[:]) // a counter: cannot fill up
	}
}

// run is the loop goroutine: it waits for ready sockets, reads each once
// (level-triggered: what is left is reported again), then does the queued
// requests.
func (l *pollLoop) run(epfd, wakeFD int) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	socks := make(map[int32]*rawSocket)
	rx := newRecvBatch()
	events := make([]unix.EpollEvent, 128)
	var reqs []pollReq
	for {
		n, err := unix.EpollWait(epfd, events, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			panic(fmt.Sprintf("media: epoll_wait: %v", err)) // EBADF, EFAULT, EINVAL: a bug here
		}
		now := time.Now()
		woken := false
		for _, ev := range events[:n] {
			if ev.Fd == int32(wakeFD) {
				woken = true
			} else if s := socks[ev.Fd]; s != nil && !s.failed {
				rx.read(s, now)
			}
		}
		if !woken {
			continue
		}
		var count [8]byte
		_, _ = unix.Read(wakeFD, count[:])
		l.mu.Lock()
		reqs = append(reqs[:0], l.pending...)
		clear(l.pending)
		l.pending = l.pending[:0]
		l.mu.Unlock()

		closed := 0
		for _, r := range reqs {
			s := r.s
			switch r.op {
			case opStart:
				ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(s.fd)}
				if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, s.fd, &ev); err != nil {
					s.failed = true
					s.h.pollFailed(fmt.Errorf("epoll_ctl add: %w", err))
					continue
				}
				socks[int32(s.fd)] = s
			case opClose:
				if socks[int32(s.fd)] == s {
					_ = unix.EpollCtl(epfd, unix.EPOLL_CTL_DEL, s.fd, nil)
					delete(socks, int32(s.fd))
				}
				s.close()
				s.h.pollClosed()
				closed++
			}
		}
		clear(reqs)

		l.mu.Lock()
		l.live -= closed
		if l.live == 0 && len(l.pending) == 0 {
			l.running, l.wakeFD = false, -1
			l.mu.Unlock()
			unix.Close(epfd)
			unix.Close(wakeFD)
			return
		}
		l.mu.Unlock()
	}
}

// rawSocket is a UDP socket a pollLoop reads: not a net.UDPConn, so that Go's
// netpoller leaves it alone. Its loop owns the descriptor and closes it;
// senders hold mu shared, so no send can use a closed (or reused) descriptor.
type rawSocket struct {
	fd    int
	local netip.AddrPort
	v6    bool
	loop  *pollLoop
	h     pollHandler // set before the first request

	mu     sync.RWMutex
	closed bool

	failed bool // reading failed; the loop's own
}

// start asks the loop to read the socket.
func (s *rawSocket) start() { s.loop.request(s, opStart) }

// requestClose asks the loop to close the socket; h.pollClosed follows.
func (s *rawSocket) requestClose() { s.loop.request(s, opClose) }

// close closes the descriptor once no send is using it; the loop's own.
func (s *rawSocket) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	unix.Close(s.fd)
}

// sendTo sends b to the address to (sendto below); a closed socket sends nothing.
func (s *rawSocket) sendTo(b []byte, to netip.AddrPort) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return net.ErrClosed
	}
	return sendto(s.fd, s.v6, b, to)
}

// sendto sends b from the UDP socket fd (IPv6 if v6) to the address to with
// one sendto, allocating nothing: the socket address is built on the stack.
// A full socket buffer (EAGAIN) is an error: RTP is not worth waiting for.
func sendto(fd int, v6 bool, b []byte, to netip.AddrPort) error {
	if len(b) == 0 {
		return nil
	}
	var (
		sa4   unix.RawSockaddrInet4
		sa6   unix.RawSockaddrInet6
		sa    unsafe.Pointer
		salen uintptr
	)
	if v6 {
		sa6.Family = unix.AF_INET6
		putPort(&sa6.Port, to.Port())
		sa6.Addr = to.Addr().As16() // IPv4 as v4-mapped
		sa, salen = unsafe.Pointer(&sa6), unix.SizeofSockaddrInet6
	} else {
		a := to.Addr().Unmap()
		if !a.Is4() {
			return errAddrFamily
		}
		sa4.Family = unix.AF_INET
		putPort(&sa4.Port, to.Port())
		sa4.Addr = a.As4()
		sa, salen = unsafe.Pointer(&sa4), unix.SizeofSockaddrInet4
	}
	for {
		_, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), 0, uintptr(sa), salen)
		switch e {
		case 0:
			return nil
		case unix.EINTR:
			continue
		}
		return e
	}
}

// putPort stores port in network byte order in a sockaddr's port field.
func putPort(field *uint16, port uint16) {
	b := (*[2]byte)(unsafe.Pointer(field))
	b[0], b[1] = byte(port>>8), byte(port)
}

// getPort reads a sockaddr's port field (network byte order).
func getPort(field *uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(field))
	return uint16(b[0])<<8 | uint16(b[1])
}

// recvBatch is a loop's recvmmsg buffers, set up once.
type recvBatch struct {
	msgs  [recvBatchSize]unix.Mmsghdr
	iovs  [recvBatchSize]unix.Iovec
	names [recvBatchSize]unix.RawSockaddrInet6 // large enough for IPv4 too
	bufs  [recvBatchSize][rxBufferSize]byte
}

func newRecvBatch() *recvBatch {
	r := new(recvBatch)
	for i := range r.msgs {
		r.iovs[i].Base = &r.bufs[i][0]
		r.iovs[i].SetLen(rxBufferSize)
		r.msgs[i].Hdr.Name = (*byte)(unsafe.Pointer(&r.names[i]))
		r.msgs[i].Hdr.Iov = &r.iovs[i]
		r.msgs[i].Hdr.SetIovlen(1)
	}
	return r
}

// recv reads up to recvBatchSize datagrams from fd without waiting and
// returns how many; EAGAIN and EINTR read nothing and are no error.
func (r *recvBatch) recv(fd int) (int, error) {
	for i := range r.msgs {
		r.msgs[i].Hdr.Namelen = unix.SizeofSockaddrInet6
		r.msgs[i].Hdr.Flags = 0
	}
	n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(fd), uintptr(unsafe.Pointer(&r.msgs[0])), recvBatchSize, unix.MSG_DONTWAIT, 0, 0)
	switch e {
	case 0:
		return int(n), nil
	case unix.EAGAIN, unix.EINTR:
		return 0, nil
	}
	return 0, e
}

// packet returns datagram i of the last recv and its source address.
func (r *recvBatch) packet(i int) ([]byte, netip.AddrPort) {
	buf := r.bufs[i][:r.msgs[i].Len]
	sa := &r.names[i]
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return buf, netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), getPort(&sa4.Port))
	case unix.AF_INET6:
		return buf, netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), getPort(&sa.Port))
	}
	return buf, netip.AddrPort{}
}

// read reads one batch from s and hands each datagram to its handler.
func (r *recvBatch) read(s *rawSocket, now time.Time) {
	n, err := r.recv(s.fd)
	if err != nil {
		s.failed = true
		s.h.pollFailed(fmt.Errorf("recvmmsg: %w", err))
		return
	}
	for i := range n {
		buf, from := r.packet(i)
		s.h.handlePacket(buf, from, now)
	}
}
