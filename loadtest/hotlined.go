package loadtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"time"
)

// LoadConfig is a hotlined configuration for load runs: the default menu and
// queues whose max_wait outlasts any hold, a trunk without a practical
// channel limit, and a short drain. The embedded default is the reference
// for each key.
const LoadConfig = `node_id: loadtest
sip:
  listen: 127.0.0.1:5060
  user_agent: hotline
http:
  listen: 127.0.0.1:8080
data_dir: ./data
rtp:
  ports: 10000-30000
  timeout: 30s
drain_timeout: 5s
prompts:
  dir: ""
  language: zh
trunks:
  - name: loopback
    sources: [127.0.0.0/8]
    dids: ["12345"]
    max_calls: 20000
    codecs: [PCMA, PCMU]
routes:
  - number: "12345"
    menu: main
menus:
  main:
    greeting: [welcome]
    prompts: [menu_main]
    options:
      "1": queue consult
      "2": queue complaint
      "3": queue business
    timeout: 5s
    max_retries: 3
    invalid_prompt: invalid
    timeout_prompt: timeout
    fallback: queue consult
queues:
  consult:
    name: 咨询
    max_wait: 2h
  complaint:
    name: 投诉举报
    max_wait: 2h
  business:
    name: 营商环境专席
    max_wait: 2h
`

// Hotlined is a hotlined process started by StartHotlined (tests and
// scripted benchmark runs).
type Hotlined struct {
	SIP, HTTP string // addresses it serves on
	Token     string // its admin token (DATA_DIR/admin.token), which the load tester's requests to it carry
	cmd       *exec.Cmd
	exited    chan struct{}
	err       error
}

var startedRe = regexp.MustCompile(`msg="hotline started" sip=(\S+) http=(\S+)`)

// BuildHotlined builds ./cmd/hotlined of the module that contains the
// working directory into dir and returns the binary's path.
func BuildHotlined(ctx context.Context, dir string) (string, error) {
	root, err := findUp("go.mod")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "hotlined")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/hotlined")
	cmd.Dir = filepath.Dir(root)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("loadtest: go build ./cmd/hotlined: %w\n%s", err, out)
	}
	return bin, nil
}

// StartHotlined runs bin with config (YAML text) on free loopback ports,
// data in dir, and the given RTP port range; it returns once the server
// serves. Its log goes to logw (nil: discarded).
func StartHotlined(bin, config, dir, rtpPorts string, logw io.Writer) (*Hotlined, error) {
	cfg := filepath.Join(dir, "hotline.yaml")
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		return nil, err
	}
	if logw == nil {
		logw = io.Discard
	}
	h := &Hotlined{exited: make(chan struct{})}
	h.cmd = exec.Command(bin, "--config", cfg, "--sip-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
		"--data-dir", filepath.Join(dir, "data"), "--rtp-ports", rtpPorts, "--log-level", "info")
	stderr, err := h.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := h.cmd.Start(); err != nil {
		return nil, err
	}
	ready := make(chan [2]string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logw, line)
			if m := startedRe.FindStringSubmatch(line); m != nil {
				select {
				case ready <- [2]string{m[1], m[2]}:
				default:
				}
			}
		}
		h.err = h.cmd.Wait()
		close(h.exited)
	}()
	select {
	case a := <-ready:
		h.SIP, h.HTTP = a[0], a[1]
		tok, err := ReadAdminToken(filepath.Join(dir, "data"))
		if err != nil {
			h.Stop()
			return nil, fmt.Errorf("loadtest: hotlined's admin token: %w", err)
		}
		h.Token = tok
		UseToken(h.HTTP, tok)
		return h, nil
	case <-h.exited:
		return nil, fmt.Errorf("loadtest: hotlined exited before serving: %v", h.err)
	case <-time.After(30 * time.Second):
		h.Stop()
		return nil, errors.New("loadtest: hotlined did not start within 30 s")
	}
}

// MetricsURL returns the server's /metrics URL.
func (h *Hotlined) MetricsURL() string { return "http://" + h.HTTP + "/metrics" }

// Stop kills the process and waits for it.
func (h *Hotlined) Stop() {
	h.cmd.Process.Kill()
	<-h.exited
}
