package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// browser is headless Chromium driven over the DevTools protocol on a pipe
// (--remote-debugging-pipe: the browser reads commands on fd 3 and writes on fd 4, each
// message JSON ended by a NUL), for pages that keep a stream open, where --dump-dom's
// virtual time never ends.
type browser struct {
	t       *testing.T
	cmd     *exec.Cmd
	w       io.Writer
	r       *bufio.Reader
	id      int
	session string
}

// openBrowser starts Chromium on url and attaches to its page.
func openBrowser(t *testing.T, bin, url string) *browser {
	t.Helper()
	toChrome, ours := mustPipe(t)
	theirs, fromChrome := mustPipe(t)
	// A profile directory of our own, removed once Chromium's helper processes (renderer,
	// zygote) are gone too: t.TempDir's removal raced them ("directory not empty").
	profile, err := os.MkdirTemp("", "chromium-profile-")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-quic",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--remote-debugging-pipe",
		"--user-data-dir="+profile, "--window-size=1280,900", url)
	cmd.ExtraFiles = []*os.File{toChrome, fromChrome}     // fd 3, fd 4
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its helpers in its group, killed with it
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	toChrome.Close()
	fromChrome.Close()
	b := &browser{t: t, cmd: cmd, w: ours, r: bufio.NewReader(theirs)}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
		ours.Close()
		theirs.Close()
		for deadline := time.Now().Add(10 * time.Second); os.RemoveAll(profile) != nil && time.Now().Before(deadline); {
			time.Sleep(50 * time.Millisecond) // a helper still exiting
		}
	})
	var targets struct {
		TargetInfos []struct{ TargetID, Type, URL string } `json:"targetInfos"`
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		b.call("Target.getTargets", map[string]any{}, &targets)
		for _, ti := range targets.TargetInfos {
			if ti.Type == "page" {
				var att struct{ SessionID string }
				b.call("Target.attachToTarget", map[string]any{"targetId": ti.TargetID, "flatten": true}, &att)
				b.session = att.SessionID
				return b
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("chromium opened no page")
		}
	}
}

func mustPipe(t *testing.T) (*os.File, *os.File) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	return r, w
}

// call sends one command and decodes its result into out, skipping events.
func (b *browser) call(method string, params, out any) {
	b.t.Helper()
	b.id++
	msg := map[string]any{"id": b.id, "method": method, "params": params}
	if b.session != "" {
		msg["sessionId"] = b.session
	}
	data, _ := json.Marshal(msg)
	if _, err := b.w.Write(append(data, 0)); err != nil {
		b.t.Fatalf("chromium %s: %v", method, err)
	}
	for {
		line, err := b.r.ReadBytes(0)
		if err != nil {
			b.t.Fatalf("chromium %s: %v", method, err)
		}
		var resp struct {
			ID     int             `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  *struct{ Message string }
		}
		if json.Unmarshal(line[:len(line)-1], &resp) != nil || resp.ID != b.id {
			continue // an event, or the answer to another command
		}
		if resp.Error != nil {
			b.t.Fatalf("chromium %s: %s", method, resp.Error.Message)
		}
		if out != nil {
			json.Unmarshal(resp.Result, out)
		}
		return
	}
}

// eval evaluates a JavaScript expression in the page and returns its value as a string.
func (b *browser) eval(expr string) string {
	b.t.Helper()
	var res struct {
		Result struct {
			Value any `json:"value"`
		} `json:"result"`
	}
	b.call("Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}, &res)
	if res.Result.Value == nil {
		return ""
	}
	return fmt.Sprint(res.Result.Value)
}

// waitEval polls expr every 20 ms until it evaluates to want, and returns how long it took.
func (b *browser) waitEval(expr, want string, limit time.Duration) time.Duration {
	b.t.Helper()
	start := time.Now()
	for {
		got := b.eval(expr)
		if got == want {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			b.t.Fatalf("%s is %q after %v, want %q", expr, got, limit, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
