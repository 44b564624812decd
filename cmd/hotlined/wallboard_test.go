package main

import (
	"context"
	"encoding/json"
	"image/png"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hotline12345/hotline/loadtest/phone"
)

// chromium finds headless Chromium; skips without it, except under CI.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is required under CI (Debian package chromium)")
	}
	t.Skip("chromium not installed (Debian package chromium); skipping the browser test")
	return ""
}

// headless runs Chromium on url with extra flags (e.g. --dump-dom or --screenshot=FILE).
func headless(t *testing.T, bin, url string, extra ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(), "--window-size=1280,900", "--virtual-time-budget=4000",
	}, extra...)
	out, err := exec.CommandContext(ctx, bin, append(args, url)...).Output()
	if err != nil {
		t.Fatalf("chromium %v: %v", extra, err)
	}
	return string(out)
}

// The wallboard renders live queue and agent data in a real browser.
func TestWallboardInChromium(t *testing.T) {
	bin := chromium(t)
	t.Parallel()
	s := startServer(t, "")
	post(t, "http://"+s.httpAddr()+"/api/v1/agents/1004/ready", http.StatusOK)
	url := "http://" + s.httpAddr() + "/wallboard#token=" + s.token
	dom := headless(t, bin, url, "--dump-dom")
	// Queues by their display names (咨询 for consult), keys kept as data attributes.
	for _, want := range []string{`data-queue="consult"`, `data-queue="complaint"`, `data-agent="1004"`, "就绪 ready", "坐席1004",
		`title="consult">咨询</h2>`, `title="complaint">投诉举报</h2>`, "溢出/转出 Overflowed/transferred"} {
		if !strings.Contains(dom, want) {
			t.Fatalf("wallboard DOM lacks %q", want)
		}
	}
	// The clock shows the hotline's time zone (Asia/Shanghai by default), not the host's (UTC here).
	sh, _ := time.LoadLocation("Asia/Shanghai")
	before, after := time.Now().In(sh), time.Now().In(sh).Add(time.Minute)
	m := regexp.MustCompile(`id="clock"[^>]*>([^<]*)<`).FindStringSubmatch(dom)
	if m == nil || !strings.Contains(m[1], before.Format(" 15:")) && !strings.Contains(m[1], after.Format(" 15:")) {
		t.Errorf("wallboard clock %q: want the hour in Asia/Shanghai (%s)", m, before.Format("15:04"))
	}
	shot := filepath.Join(t.TempDir(), "wallboard.png")
	headless(t, bin, url, "--screenshot="+shot)
	notBlank(t, shot)
}

// The HTML daily report (日报) renders in a real browser, with its charts.
func TestHTMLReportInChromium(t *testing.T) {
	bin := chromium(t)
	t.Parallel()
	s := startServer(t, "")
	if res := runSIPp(t, s.sipAddr(), "uac_rfc2833.xml"); !res.ok {
		t.Fatalf("SIPp failed:\n%s", res.output)
	}
	s.records(t, 1)
	out := filepath.Join(t.TempDir(), "daily.html")
	var stderr strings.Builder
	if code := reportMain([]string{"--data-dir", s.cfg.DataDir, "--format", "html", "--output", out}, io.Discard, &stderr); code != 0 {
		t.Fatalf("hotlined report: exit %d: %s", code, stderr.String())
	}
	dom := headless(t, bin, "file://"+out, "--dump-dom")
	if strings.Count(dom, "<svg") < 3 || !strings.Contains(dom, "complaint") {
		t.Fatalf("report DOM lacks its charts or the queue (%d svg)", strings.Count(dom, "<svg"))
	}
	shot := filepath.Join(t.TempDir(), "report.png")
	headless(t, bin, "file://"+out, "--screenshot="+shot)
	notBlank(t, shot)
}

// notBlank fails unless the PNG at path shows at least a few distinct colours.
func notBlank(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	colors := map[uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 4 {
		for x := b.Min.X; x < b.Max.X; x += 4 {
			r, g, bl, _ := img.At(x, y).RGBA()
			colors[r>>12<<8|g>>12<<4|bl>>12] = true
		}
	}
	if len(colors) < 8 {
		t.Fatalf("%s looks blank: %d colours", filepath.Base(path), len(colors))
	}
}

// The wallboard's callback panel (回访) shows a running campaign with its counts.
func TestWallboardShowsCampaigns(t *testing.T) {
	bin := chromium(t)
	t.Parallel()
	// The window is shut (today and tomorrow are holidays): the targets stay pending.
	sh, _ := time.LoadLocation("Asia/Shanghai")
	now := time.Now().In(sh)
	s := startServer(t, testConfig(t, `    # holidays: ["2026-10-01"]  # no calls`,
		`    holidays: ["`+now.Format(time.DateOnly)+`", "`+now.AddDate(0, 0, 1).Format(time.DateOnly)+`"]`))
	body := `{"name": "十二月回访", "script": "satisfaction", "trunk": "loopback-out",
		"targets": [{"case_id": "W1", "phone": "13900000001"}, {"case_id": "W2", "phone": "13900000002"}]}`
	resp, err := httpClient.Post("http://"+s.httpAddr()+"/api/v1/campaigns", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var created struct {
		ID string `json:"id"`
	}
	err = json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusCreated || created.ID == "" {
		t.Fatalf("POST campaign: %d %v", resp.StatusCode, err)
	}
	dom := headless(t, bin, "http://"+s.httpAddr()+"/wallboard#token="+s.token, "--dump-dom")
	row := regexp.MustCompile(`(?s)<tr data-campaign="` + created.ID + `">(.*?)</tr>`).FindStringSubmatch(dom)
	if row == nil || !strings.Contains(dom, "回访") || !strings.Contains(row[1], "十二月回访") || !strings.Contains(row[1], "进行中 running") {
		t.Fatalf("wallboard lacks the campaign row: %q", row)
	}
	if strings.Contains(dom, `id="campaigns-panel" hidden`) {
		t.Error("the campaigns panel is hidden with a running campaign")
	}
}

// The wallboard follows the event stream: with the page open in Chromium (its stream
// connected, polling off), an agent paused through the API shows paused within 1 s, the
// row set by the stream; an answered call shows in the agent's row as the current call
// (the caller's number in full: the page has an admin's token; a viewer's is masked) and
// leaves it when the agent hangs up, counted in the agent's calls of the day.
func TestWallboardAgentPanelFollowsStream(t *testing.T) {
	bin := chromium(t)
	t.Parallel()
	s := startServer(t, acdTestConfig(t))
	ag := newAgent(t, s, "1001", phone.Config{}, answerAlways)
	post(t, "http://"+s.httpAddr()+"/api/v1/agents/1004/ready", http.StatusOK)
	b := openBrowser(t, bin, "http://"+s.httpAddr()+"/wallboard#token="+s.token)
	b.waitEval(`document.body.dataset.stream`, "open", 20*time.Second)
	row := func(id, cell string) string {
		return `(document.querySelector('tr[data-agent="` + id + `"] ` + cell + `') || {}).textContent || ""`
	}
	b.waitEval(`document.querySelector('tr[data-agent="1004"]') !== null`, "true", 10*time.Second)

	post(t, "http://"+s.httpAddr()+"/api/v1/agents/1004/pause", http.StatusOK)
	// A refresh that was under way may show the pause first; the stream's event must come
	// within 1 s all the same.
	took := b.waitEval(`(`+row("1004", "td:nth-child(3)")+`).startsWith("小休 paused") && document.querySelector('tr[data-agent="1004"]').dataset.via === "stream"`, "true", 3*time.Second)
	if took > time.Second {
		t.Errorf("the wallboard showed the pause from the stream after %v, want within 1 s", took)
	}
	t.Logf("pause shown %v after the API call", took.Round(time.Millisecond))

	citizen, agentCall := connected(t, s, ag)
	b.waitEval(`(`+row("1001", ".call")+`).includes("13700137000")`, "true", 3*time.Second) // an admin's token: in full
	b.waitEval(`(`+row("1001", "td:nth-child(3)")+`).startsWith("通话 on call")`, "true", 3*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	agentCall.Hangup(ctx)
	citizen.Hangup(ctx)
	b.waitEval(row("1001", ".call"), "", 5*time.Second)
	b.waitEval(row("1001", ".calls"), "1", 5*time.Second)
}
