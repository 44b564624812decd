package kamailiotest

import (
	"context"
	"os/exec"
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
