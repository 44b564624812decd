package media

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// loadPeer is one simulated phone of BenchmarkBridgePairs: its Tick (on the
// load generator's own Scheduler) sends a 20 ms PCMU frame to its session,
// and a goroutine counts what comes back.
type loadPeer struct {
	conn *net.UDPConn
	dst  netip.AddrPort
	src  *rtpSource
	sent atomic.Uint64
	recv atomic.Uint64
	done chan struct{}
}

func (p *loadPeer) Tick(time.Time) {
	if _, err := p.conn.WriteToUDPAddrPort(p.src.next(), p.dst); err == nil {
		p.sent.Add(1)
	}
}

// loadGen is the load generator: one peer per session address.
type loadGen struct {
	sched   *Scheduler
	peers   []*loadPeer
	removes []func()
}

func newLoadGen(tb testing.TB, dsts []netip.AddrPort) *loadGen {
	frames, _ := toneFrames(PCMU, 1000, 1)
	g := &loadGen{sched: NewScheduler(2)}
	for i, dst := range dsts {
		conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			g.close()
			tb.Fatal(err)
		}
		_ = conn.SetReadBuffer(rtpReadBuffer)
		p := &loadPeer{conn: conn, dst: dst, src: newRTPSource(tb, 0, uint32(i), frames[0]), done: make(chan struct{})}
		go func() {
			defer close(p.done)
			buf := make([]byte, 1500)
			for {
				if _, _, err := conn.ReadFromUDPAddrPort(buf); err != nil {
					return
				}
				p.recv.Add(1)
			}
		}()
		g.peers = append(g.peers, p)
	}
	return g
}

func (g *loadGen) start() {
	for _, p := range g.peers {
		g.removes = append(g.removes, g.sched.Add(p))
	}
}

// stop stops sending, waits for packets in flight and closes everything.
func (g *loadGen) stop() (sent, recv uint64) {
	for _, rm := range g.removes {
		rm()
	}
	time.Sleep(300 * time.Millisecond)
	g.close()
	for _, p := range g.peers {
		sent += p.sent.Load()
		recv += p.recv.Load()
	}
	return sent, recv
}

func (g *loadGen) close() {
	g.sched.Close()
	for _, p := range g.peers {
		p.conn.Close()
		<-p.done
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestBridgeLoadGeneratorProcess is BenchmarkBridgePairs' load generator
// when MEDIA_BRIDGE_LOADGEN=exec runs it in a child process (so that the
// benchmark's process CPU is the server's alone). Protocol on stdin/stdout:
// session addresses in, one per line, then an empty line; "PEER addr" lines
// out; "go" in starts sending, "stop" in stops; "RESULT sent recv cpu_ns" out.
func TestBridgeLoadGeneratorProcess(t *testing.T) {
	if os.Getenv("MEDIA_BRIDGE_LOADGEN_CHILD") != "1" {
		t.Skip("run by BenchmarkBridgePairs")
	}
	in := bufio.NewScanner(os.Stdin)
	var dsts []netip.AddrPort
	for in.Scan() && in.Text() != "" {
		dsts = append(dsts, netip.MustParseAddrPort(in.Text()))
	}
	g := newLoadGen(t, dsts)
	out := bufio.NewWriter(os.Stdout)
	for _, p := range g.peers {
		fmt.Fprintf(out, "PEER %s\n", addrOf(p.conn))
	}
	out.Flush()
	for in.Scan() && in.Text() != "go" {
	}
	cpu0 := cpuTime()
	g.start()
	for in.Scan() && in.Text() != "stop" {
	}
	sent, recv := g.stop()
	fmt.Fprintf(out, "RESULT %d %d %d\n", sent, recv, (cpuTime() - cpu0).Nanoseconds())
	out.Flush()
}

// childLoadGen runs the load generator in a child process (the test binary).
type childLoadGen struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Scanner
	peers []netip.AddrPort
}

func newChildLoadGen(tb testing.TB, dsts []netip.AddrPort) *childLoadGen {
	cmd := exec.Command(os.Args[0], "-test.run=^TestBridgeLoadGeneratorProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "MEDIA_BRIDGE_LOADGEN_CHILD=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	c := &childLoadGen{cmd: cmd, stdin: stdin, out: bufio.NewScanner(stdout)}
	w := bufio.NewWriter(stdin)
	for _, d := range dsts {
		fmt.Fprintln(w, d)
	}
	fmt.Fprintln(w)
	w.Flush()
	for len(c.peers) < len(dsts) && c.out.Scan() {
		if a, ok := strings.CutPrefix(c.out.Text(), "PEER "); ok {
			c.peers = append(c.peers, netip.MustParseAddrPort(a))
		}
	}
	if len(c.peers) != len(dsts) {
		cmd.Process.Kill()
		cmd.Wait()
		tb.Fatalf("load generator process gave %d peers of %d", len(c.peers), len(dsts))
	}
	return c
}

func (c *childLoadGen) start() { fmt.Fprintln(c.stdin, "go") }

func (c *childLoadGen) stop() (sent, recv uint64, cpu time.Duration) {
	fmt.Fprintln(c.stdin, "stop")
	for c.out.Scan() {
		if r, ok := strings.CutPrefix(c.out.Text(), "RESULT "); ok {
			var ns int64
			fmt.Sscan(r, &sent, &recv, &ns)
			cpu = time.Duration(ns)
		}
	}
	c.stdin.Close()
	c.cmd.Wait()
	return sent, recv, cpu
}

// BenchmarkBridgePairs runs N bridged pairs on loopback, each with two peers
// sending 50 packets/s, for a few seconds, and reports end-to-end loss,
// process CPU per relayed packet (getrusage over a steady window divided by
// the packets relayed in it) and Go memory per pair (heap and stacks of the
// sessions and bridges). The load generator runs in this process on its own
// Scheduler (its sends and receives then count in the CPU figure: an upper
// bound), or with MEDIA_BRIDGE_LOADGEN=exec in a child process, so that the
// CPU figure is the server's alone (the child's CPU is reported apart). It
// never asserts timing. MEDIA_BRIDGE_PAIRS / MEDIA_BRIDGE_SECONDS change
// N=1500 / 5 s. The sessions are in the mode NewPorts chooses (epoll on
// Linux; HOTLINE_MEDIA_POLLER=portable for a reader goroutine per session),
// reported as the "epoll" metric (1 or 0).
func BenchmarkBridgePairs(b *testing.B) {
	n := envInt("MEDIA_BRIDGE_PAIRS", 1500)
	ports, err := NewPorts(loopback, 50000, 59999)
	if err != nil {
		b.Fatal(err)
	}
	sched := NewScheduler(0) // the server's: bridged sessions tick but send nothing
	defer sched.Close()
	ctx := context.Background()

	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	sessions := make([]*Session, 0, 2*n)
	bridges := make([]*Bridge, 0, n)
	defer func() {
		for _, br := range bridges {
			br.Stop()
		}
		for _, s := range sessions {
			s.Close()
		}
	}()
	addrs := make([]netip.AddrPort, 0, 2*n)
	for i := range 2 * n {
		s, err := ports.NewSession(SessionConfig{Scheduler: sched, Timeout: -1})
		if err != nil {
			b.Fatalf("session %d: %v", i, err)
		}
		sessions = append(sessions, s)
		addrs = append(addrs, s.LocalAddr())
		s.Start(ctx)
	}
	for i := range n {
		bridges = append(bridges, NewBridge(sessions[2*i], sessions[2*i+1]))
	}
	time.Sleep(100 * time.Millisecond) // let the reader goroutines park
	runtime.GC()
	runtime.ReadMemStats(&m1)
	perPair := float64(m1.HeapAlloc+m1.StackInuse-m0.HeapAlloc-m0.StackInuse) / float64(n)

	relayed := func() (total uint64) {
		for _, br := range bridges {
			st := br.Stats()
			total += st.AToB + st.BToA
		}
		return total
	}
	r := driveRelay(b, addrs, func(peers []netip.AddrPort) {
		for i, s := range sessions {
			s.SetRemote(peers[i], PCMU, 101)
		}
		for _, br := range bridges {
			br.Start()
		}
	}, relayed)

	var st BridgeStats
	for _, br := range bridges {
		s := br.Stats()
		st.Dropped += s.Dropped
		st.SendErrors += s.SendErrors
	}
	epoll := 0.0
	if ports.Mode() == ModeEpoll {
		epoll = 1
	}
	r.report(b)
	b.ReportMetric(epoll, "epoll")
	b.ReportMetric(perPair/1024, "KiB/pair")
	b.Logf("%s mode, %s", ports.Mode(), r)
	b.Logf("end to end: %d sent, %d received, loss %.3f%%; bridge drops %d, send errors %d; Go heap+stacks %.1f KiB per pair (2 sessions + bridge); %s",
		r.sent, r.recv, r.loss(), st.Dropped, st.SendErrors, perPair/1024, r.genNote)
}

// relayLoad is one run of the load generator against a relay under test
// (BenchmarkBridgePairs, BenchmarkRelayFloor).
type relayLoad struct {
	pairs      int
	win        uint64        // packets relayed in the steady window
	wall, cpu  time.Duration // the window, and this process's CPU in it
	sent, recv uint64        // end to end, over the whole run
	genNote    string        // where the generator ran and how it fared
}

// driveRelay starts the load generator with one peer per relay socket
// address (in this process, or in a child process with
// MEDIA_BRIDGE_LOADGEN=exec), calls connect with the peers' addresses (the
// relay sends what it relays out of socket i to peers[i]), starts sending,
// warms up for a second, measures a steady window of MEDIA_BRIDGE_SECONDS
// (5 s) with relayed counting the packets relayed so far, and stops the
// generator, waiting for the packets in flight.
func driveRelay(b *testing.B, addrs []netip.AddrPort, connect func(peers []netip.AddrPort), relayed func() uint64) relayLoad {
	secs := envInt("MEDIA_BRIDGE_SECONDS", 5)
	child := os.Getenv("MEDIA_BRIDGE_LOADGEN") == "exec"
	var (
		gen   *loadGen
		cgen  *childLoadGen
		peers []netip.AddrPort
	)
	if child {
		cgen = newChildLoadGen(b, addrs)
		peers = cgen.peers
	} else {
		gen = newLoadGen(b, addrs)
		for _, p := range gen.peers {
			peers = append(peers, addrOf(p.conn))
		}
	}
	connect(peers)
	if child {
		cgen.start()
	} else {
		gen.start()
	}

	b.ResetTimer()
	time.Sleep(time.Second) // warm-up
	r0, cpu0 := relayed(), cpuTime()
	start := time.Now()
	time.Sleep(time.Duration(secs) * time.Second)
	cpu1, wall, r1 := cpuTime(), time.Since(start), relayed()
	b.StopTimer()

	r := relayLoad{pairs: len(addrs) / 2, win: r1 - r0, wall: wall, cpu: cpu1 - cpu0}
	if child {
		var genCPU time.Duration
		r.sent, r.recv, genCPU = cgen.stop()
		r.genNote = fmt.Sprintf("load generator in a child process: %v CPU for the whole run", genCPU.Round(time.Millisecond))
	} else {
		gs := gen.sched.Stats()
		r.sent, r.recv = gen.stop()
		r.genNote = fmt.Sprintf("load generator in this process (included above): %d send ticks skipped, worst lateness %v", gs.Skipped, gs.MaxLateness)
	}
	return r
}

func (r relayLoad) loss() float64 { return 100 * (1 - float64(r.recv)/float64(r.sent)) }

// perPacket is this process's CPU per relayed packet, in µs.
func (r relayLoad) perPacket() float64 { return float64(r.cpu.Nanoseconds()) / 1000 / float64(r.win) }

// report reports the metrics the relay benchmarks share, under the same names.
func (r relayLoad) report(b *testing.B) {
	b.ReportMetric(float64(r.pairs), "pairs")
	b.ReportMetric(float64(r.win)/r.wall.Seconds(), "relayed/s")
	b.ReportMetric(r.perPacket(), "cpu-µs/relayed")
	b.ReportMetric(100*r.cpu.Seconds()/r.wall.Seconds(), "cpu-%")
	b.ReportMetric(r.loss(), "loss-%")
}

// String is the run's main figures, for the log.
func (r relayLoad) String() string {
	return fmt.Sprintf("%d pairs, %v window: %d relayed (%.0f/s, want %d/s); process CPU %v (%.0f%% of one core) = %.2f µs per relayed packet",
		r.pairs, r.wall.Round(time.Millisecond), r.win, float64(r.win)/r.wall.Seconds(), r.pairs*100,
		r.cpu.Round(time.Millisecond), 100*r.cpu.Seconds()/r.wall.Seconds(), r.perPacket())
}
