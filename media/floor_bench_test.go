//go:build linux

package media

import (
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// BenchmarkRelayFloor measures the kernel's floor under BenchmarkBridgePairs:
// a relay of the same shape with nothing of a session in it. 2×N raw UDP
// sockets (one per leg) on the same ports, one epoll loop per core (the
// sockets dealt round-robin, as the poller does), one recvmmsg per ready
// socket, and each datagram sent unchanged with sendto out of the other
// leg's socket to the other leg's peer: no RTP parsing, rewriting, locks or
// counters per session. The same load generator drives it and the figures
// have the same names and meaning (cpu-µs/relayed: this process's CPU over
// the steady window divided by the packets relayed in it), so the two can be
// compared line by line; the difference is what the server adds to the
// kernel's work. Same environment: MEDIA_BRIDGE_PAIRS (1500),
// MEDIA_BRIDGE_SECONDS (5), MEDIA_BRIDGE_LOADGEN=exec.
func BenchmarkRelayFloor(b *testing.B) {
	n := envInt("MEDIA_BRIDGE_PAIRS", 1500)
	ports, err := NewPorts(loopback, 50000, 59999)
	if err != nil {
		b.Fatal(err)
	}
	f := &floorRelay{}
	defer f.close()
	addrs := make([]netip.AddrPort, 0, 2*n)
	for i := range 2 * n {
		err := ports.bind(func(ap netip.AddrPort) error {
			fd, err := bindRaw(ap)
			if err == nil {
				f.fds = append(f.fds, fd)
				addrs = append(addrs, ap)
			}
			return err
		})
		if err != nil {
			b.Fatalf("socket %d: %v", i, err)
		}
	}
	loops := min(runtime.GOMAXPROCS(0), maxPollLoops)
	r := driveRelay(b, addrs, func(peers []netip.AddrPort) {
		f.peers = peers
		if err := f.start(loops); err != nil {
			b.Fatal(err)
		}
	}, f.relayed)
	var sendErrors uint64
	for _, l := range f.loops {
		sendErrors += l.sendErrors.Load()
	}
	r.report(b)
	b.ReportMetric(float64(loops), "loops")
	b.Logf("floor, %d epoll loops, %s", loops, r)
	b.Logf("end to end: %d sent, %d received, loss %.3f%%; send errors %d; %s",
		r.sent, r.recv, r.loss(), sendErrors, r.genNote)
}

// floorRelay is BenchmarkRelayFloor's relay: what socket i receives goes out
// of socket i^1 to peers[i^1].
type floorRelay struct {
	fds   []int
	peers []netip.AddrPort
	loops []*floorLoop
	wg    sync.WaitGroup
}

type floorLoop struct {
	epfd, wakeFD        int
	relayed, sendErrors atomic.Uint64
}

// start deals the sockets to loops epoll loops and starts them.
func (f *floorRelay) start(loops int) error {
	for range loops {
		epfd, wakeFD, err := newEpoll()
		if err != nil {
			return err
		}
		f.loops = append(f.loops, &floorLoop{epfd: epfd, wakeFD: wakeFD})
	}
	for i, fd := range f.fds {
		// The event carries the socket's index (in the data's second half).
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd), Pad: int32(i)}
		if err := unix.EpollCtl(f.loops[i%loops].epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			return err
		}
	}
	for _, l := range f.loops {
		f.wg.Add(1)
		go f.run(l)
	}
	return nil
}

func (f *floorRelay) run(l *floorLoop) {
	defer f.wg.Done()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	rx := newRecvBatch()
	events := make([]unix.EpollEvent, 128)
	for {
		n, err := unix.EpollWait(l.epfd, events, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			panic(err)
		}
		for _, ev := range events[:n] {
			if ev.Fd == int32(l.wakeFD) {
				return
			}
			i := int(ev.Pad)
			k, err := rx.recv(f.fds[i])
			if err != nil {
				panic(err)
			}
			o := i ^ 1
			for j := range k {
				buf, _ := rx.packet(j)
				if sendto(f.fds[o], false, buf, f.peers[o]) == nil {
					l.relayed.Add(1)
				} else {
					l.sendErrors.Add(1)
				}
			}
		}
	}
}

func (f *floorRelay) relayed() (total uint64) {
	for _, l := range f.loops {
		total += l.relayed.Load()
	}
	return total
}

// close stops the loops and closes everything.
func (f *floorRelay) close() {
	one := [8]byte{1}
	for _, l := range f.loops {
		_, _ = unix.Write(l.wakeFD, one[:])
	}
	f.wg.Wait()
	for _, l := range f.loops {
		unix.Close(l.epfd)
		unix.Close(l.wakeFD)
	}
	for _, fd := range f.fds {
		unix.Close(fd)
	}
}
