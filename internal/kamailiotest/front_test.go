package kamailiotest

import (
	"context"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The shipped config passes kamailio -c, with the defaults and with test-style defines.
func TestConfigChecks(t *testing.T) {
	Require(t)
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	cfg := root + "/deploy/kamailio/kamailio.cfg"
	dir := t.TempDir()
	list := dir + "/dispatcher.list"
	if err := WriteDispatcherList(list, []string{"127.0.0.1:5070", "sip:127.0.0.1:5071;transport=tcp"}); err != nil {
		t.Fatal(err)
	}
	for name, defs := range map[string][]string{
		"defaults": {"DS_LIST=\"" + list + "\""},
		"test": {"LISTEN_PORT=5999", "DS_LIST=\"" + list + "\"", "DS_PING_INTERVAL=5",
			"CTL_SOCK=\"unix:" + dir + "/ctl\"", "WITH_DEBUG", "ADVERTISE_IP=192.0.2.1", "ADVERTISE_PORT=5060"},
	} {
		args := []string{"-c", "-f", cfg, "-Y", dir}
		for _, d := range defs {
			args = append(args, "-A", d)
		}
		out, err := exec.Command(Binary(), args...).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "config file ok") {
			t.Errorf("%s: kamailio -c: %v\n%s", name, err, out)
		}
	}
}

// Start gives a front that answers OPTIONS and reports its nodes; Stop leaves no process.
func TestStartStop(t *testing.T) {
	node := startUAS(t, 0, "")
	f := Start(t, []string{node.addr()})
	if err := Ping(context.Background(), f.Addr(), time.Second); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "node probed up", func() bool { return isUp(nodeFlags(t, f, node.addr())) })
	pid := f.Pid()
	if err := f.Stop(3 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := exec.Command("pgrep", "-g", strconv.Itoa(pid)).Run(); err == nil {
		t.Fatalf("processes left in group %d", pid)
	}
}

// Calls spread over both nodes; a killed node is marked down by the OPTIONS probes within
// 5 s and gets no calls; restarted on its port, it is marked up and gets calls again.
func TestDispatchProbesFailover(t *testing.T) {
	a := startUAS(t, 0, "")
	b := startUAS(t, 0, "")
	f := Start(t, []string{a.addr(), b.addr()})
	waitFor(t, 5*time.Second, "both nodes up", func() bool {
		return isUp(nodeFlags(t, f, a.addr())) && isUp(nodeFlags(t, f, b.addr()))
	})

	const calls = 10
	r := runUAC(t, f.Addr(), "uac_call.xml", calls)
	r.check(t, calls)
	got := r.perNode()
	t.Logf("both up: %d calls in %v, per node%s", calls, r.dur.Round(time.Millisecond), fmtCounts(got))
	if got[a.port] == 0 || got[b.port] == 0 || got[a.port]+got[b.port] != calls {
		t.Fatalf("calls not spread over %d and %d:%s", a.port, b.port, fmtCounts(got))
	}

	// Kill b with no traffic: only the probes can notice.
	b.kill()
	down := waitFor(t, 5*time.Second, "killed node marked down", func() bool {
		return isDown(nodeFlags(t, f, b.addr()))
	})
	t.Logf("kill -> marked down (%s): %v", nodeFlags(t, f, b.addr()), down.Round(10*time.Millisecond))
	if !isUp(nodeFlags(t, f, a.addr())) {
		t.Fatal("survivor marked down too")
	}
	r = runUAC(t, f.Addr(), "uac_call.xml", calls)
	r.check(t, calls)
	got = r.perNode()
	t.Logf("one down: %d calls in %v, per node%s", calls, r.dur.Round(time.Millisecond), fmtCounts(got))
	if got[a.port] != calls {
		t.Fatalf("calls not all on the survivor %d:%s", a.port, fmtCounts(got))
	}
	// None waited for the dead node's timeout (FR_TIMER 2 s).
	if r.dur > 2*time.Second {
		t.Errorf("%d calls took %v: some went to the dead node first", calls, r.dur)
	}

	// Restart b on its port.
	b2 := startUAS(t, b.port, "")
	up := waitFor(t, 5*time.Second, "restarted node marked up", func() bool {
		return isUp(nodeFlags(t, f, b2.addr()))
	})
	t.Logf("restart -> marked up: %v", up.Round(10*time.Millisecond))
	r = runUAC(t, f.Addr(), "uac_call.xml", calls)
	r.check(t, calls)
	got = r.perNode()
	t.Logf("back up: per node%s", fmtCounts(got))
	if got[a.port] == 0 || got[b.port] == 0 {
		t.Fatalf("calls not spread again over %d and %d:%s", a.port, b.port, fmtCounts(got))
	}
}

// With probes too slow to notice, a call sent to a dead node fails over to the other after
// FR_TIMER, and the dead node is marked down at once by that timeout.
func TestInviteTimeoutFailover(t *testing.T) {
	a := startUAS(t, 0, "")
	b := startUAS(t, 0, "")
	// Probes every 60 s: the first round runs at start, then none within this test.
	f := Start(t, []string{a.addr(), b.addr()}, WithPingInterval(60))
	waitFor(t, 5*time.Second, "both nodes up", func() bool {
		return isUp(nodeFlags(t, f, a.addr())) && isUp(nodeFlags(t, f, b.addr()))
	})
	b.kill()
	const calls = 4
	r := runUAC(t, f.Addr(), "uac_call.xml", calls)
	r.check(t, calls)
	got := r.perNode()
	t.Logf("%d calls in %v, per node%s; dead node now %s", calls, r.dur.Round(time.Millisecond),
		fmtCounts(got), nodeFlags(t, f, b.addr()))
	if got[a.port] != calls {
		t.Fatalf("calls not all on the survivor %d:%s", a.port, fmtCounts(got))
	}
	if fl := nodeFlags(t, f, b.addr()); !isDown(fl) {
		t.Fatalf("dead node still %s after an INVITE timed out on it", fl)
	}
	// Exactly one call paid the timeout: the others skipped the node marked down.
	if r.dur < 1500*time.Millisecond || r.dur > 4*time.Second {
		t.Errorf("calls took %v, want one FR_TIMER (2 s) wait", r.dur)
	}
}

// A node refusing INVITEs with 503 stays up (it answers OPTIONS) but every call fails over
// to the other node.
func TestInvite503Failover(t *testing.T) {
	a := startUAS(t, 0, "")
	b := startUAS(t, 0, "uas_503.xml")
	f := Start(t, []string{a.addr(), b.addr()})
	waitFor(t, 5*time.Second, "both nodes up", func() bool {
		return isUp(nodeFlags(t, f, a.addr())) && isUp(nodeFlags(t, f, b.addr()))
	})
	const calls = 6
	r := runUAC(t, f.Addr(), "uac_call.xml", calls)
	r.check(t, calls)
	got := r.perNode()
	t.Logf("%d calls in %v, per node%s", calls, r.dur.Round(time.Millisecond), fmtCounts(got))
	if got[a.port] != calls {
		t.Fatalf("calls not all on %d:%s", a.port, fmtCounts(got))
	}
	if fl := nodeFlags(t, f, b.addr()); !isUp(fl) {
		t.Fatalf("503 node marked %s: it is alive", fl)
	}
}

// A REGISTER through the front reaches one node with a Path whose received= is the phone's
// real source; the same AOR lands on the same node every time. Then a node reaches the
// phone with a Route made from that Path (the R-URI is the phone's unreachable private
// Contact): the front delivers to the received address, and ACK/BYE follow the dialog.
func TestRegisterPathAndNodeToPhone(t *testing.T) {
	a := startUAS(t, 0, "uas_register.xml")
	b := startUAS(t, 0, "uas_register.xml")
	f := Start(t, []string{a.addr(), b.addr()})
	waitFor(t, 5*time.Second, "both nodes up", func() bool {
		return isUp(nodeFlags(t, f, a.addr())) && isUp(nodeFlags(t, f, b.addr()))
	})

	pathRe := regexp.MustCompile(`node (\d+) path\s*<(sip:[^>]*)>`)
	var phonePort int
	var phonePath string
	nodesSeen := map[string]bool{}
	for _, aor := range []string{"8001", "8002", "8003", "8004", "8005", "8006"} {
		r := runUAC(t, f.Addr(), "uac_register.xml", 2, "-s", aor)
		r.check(t, 2)
		var node string
		for _, l := range r.lines {
			m := pathRe.FindStringSubmatch(l)
			if m == nil {
				t.Fatalf("AOR %s: log line %q has no node and Path", aor, l)
			}
			if node != "" && m[1] != node {
				t.Fatalf("AOR %s registered on %s then on %s", aor, node, m[1])
			}
			node = m[1]
			// Path: <sip:FRONT;lr;received=sip:127.0.0.1:PHONEPORT> (order of params aside).
			if !strings.Contains(m[2], "sip:"+f.Addr()) || !strings.Contains(m[2], ";lr") ||
				!strings.Contains(m[2], "received=sip:127.0.0.1:"+strconv.Itoa(r.port)) {
				t.Fatalf("AOR %s: Path %q: want the front's address, lr and received=sip:127.0.0.1:%d", aor, m[2], r.port)
			}
			phonePort, phonePath = r.port, m[2]
		}
		nodesSeen[node] = true
		t.Logf("AOR %s -> node %s, Path <%s>", aor, node, phonePath)
	}
	if len(nodesSeen) < 2 {
		t.Logf("all 6 AORs hashed to one node (possible, not wrong)")
	}

	// The last phone now listens where it registered from.
	phone := startUAS(t, phonePort, "uas_call.xml")
	r := runUAC(t, f.Addr(), "node_invite.xml", 1,
		"-key", "ruri", "sip:8006@10.255.0.1:5060",
		"-key", "route", "Route: <"+phonePath+">")
	r.check(t, 1)
	if got := r.perNode(); got[phone.port] != 1 {
		t.Fatalf("INVITE with Path Route answered by%s, want phone %d", fmtCounts(got), phone.port)
	}

	// A node's out-of-dialog INVITE with the phone's address as R-URI and no Route is
	// relayed to the R-URI.
	r = runUAC(t, f.Addr(), "node_invite.xml", 1,
		"-key", "ruri", "sip:8006@"+phone.addr(),
		"-key", "route", "X-No-Route: 1")
	r.check(t, 1)
	if got := r.perNode(); got[phone.port] != 1 {
		t.Fatalf("relayed INVITE answered by%s, want phone %d", fmtCounts(got), phone.port)
	}
}

// With nodes matched by IP and port (NODE_MATCH=0), a stranger's INVITE to a foreign
// R-URI or with a Route through the front is refused 403: the front is no open relay.
func TestNoOpenRelay(t *testing.T) {
	node := startUAS(t, 0, "")
	phone := startUAS(t, 0, "")
	f := Start(t, []string{node.addr()}, WithDefine("NODE_MATCH=0"))
	for name, route := range map[string]string{
		"to R-URI":   "X-No-Route: 1",
		"with Route": "Route: <sip:" + f.Addr() + ";lr;received=sip:" + phone.addr() + ">",
	} {
		r := runUAC(t, f.Addr(), "node_invite.xml", 1,
			"-key", "ruri", "sip:8006@"+phone.addr(), "-key", "route", route)
		if r.err == nil || !strings.Contains(r.out, "403 Relaying forbidden") {
			t.Errorf("%s: stranger's INVITE not refused 403: err %v, calls %q\n%s", name, r.err, r.lines, r.out)
		}
	}
}
