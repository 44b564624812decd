package loadtest

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"image/png"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// htmlTestSamples is a run of n seconds: a ramp of calls, setups in most
// seconds (none every 7th), callers connected from a queue in some.
func htmlTestSamples(n int) []Sample {
	ss := make([]Sample, n)
	for i := range ss {
		s := &ss[i]
		s.At = Dur(time.Duration(i+1) * time.Second)
		s.Active = min(i*3, 150)
		if i%7 != 0 {
			s.Setups = 3
			s.SetupP50 = Dur(time.Duration(4+i%5) * time.Millisecond)
			s.SetupP99 = Dur(time.Duration(20+i%11) * time.Millisecond)
		}
		if i%13 == 5 {
			s.Failures = 1
		}
		s.LossPercent = float64(i%10) / 100
		s.Waiting = i % 9
		if i%4 == 0 {
			s.WaitP50 = Dur(time.Duration(1500+10*i) * time.Millisecond)
		}
	}
	return ss
}

// svgPlot is what the tests read of one plot.
type svgPlot struct {
	Label     string `xml:"aria-label,attr"`
	Polylines []struct {
		Series string `xml:"data-series,attr"`
		Points string `xml:"points,attr"`
	} `xml:"polyline"`
	Texts []string `xml:"text"`
}

var svgBlock = regexp.MustCompile(`(?s)<svg .*?</svg>`)

// parseHTMLReport checks that page is well-formed XML and returns its plots,
// each <svg> parsed on its own too.
func parseHTMLReport(t *testing.T, page string) []svgPlot {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(page))
	for {
		if _, err := d.Token(); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("the page is not well-formed: %v\n%s", err, page)
		}
	}
	var plots []svgPlot
	for _, block := range svgBlock.FindAllString(page, -1) {
		var p svgPlot
		if err := xml.Unmarshal([]byte(block), &p); err != nil {
			t.Fatalf("svg: %v\n%s", err, block)
		}
		plots = append(plots, p)
	}
	return plots
}

type svgXY struct{ x, y float64 }

func parseSVGPoints(t *testing.T, s string) []svgXY {
	t.Helper()
	var out []svgXY
	for f := range strings.FieldsSeq(s) {
		a, b, ok := strings.Cut(f, ",")
		x, err1 := strconv.ParseFloat(a, 64)
		y, err2 := strconv.ParseFloat(b, 64)
		if !ok || err1 != nil || err2 != nil {
			t.Fatalf("point %q", f)
		}
		out = append(out, svgXY{x, y})
	}
	return out
}

func renderHTMLReport(t *testing.T, r HTMLReport) string {
	t.Helper()
	var b bytes.Buffer
	if err := WriteHTMLReport(&b, r); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestHTMLReportPlots(t *testing.T) {
	ss := htmlTestSamples(120)
	page := renderHTMLReport(t, HTMLReport{Title: "12345 压测 day run", Scenario: "day", Target: "127.0.0.1:5060",
		Started: time.Date(2026, 3, 15, 9, 0, 0, 0, time.UTC), Samples: ss,
		Summary: [][2]string{{"呼叫 Calls", "360"}, {"失败 Failed", "9"}}, Notes: []string{"agents: 8"}})
	plots := parseHTMLReport(t, page)
	count := func(f func(*Sample) bool) int {
		n := 0
		for i := range ss {
			if f(&ss[i]) {
				n++
			}
		}
		return n
	}
	withSetups := count(func(s *Sample) bool { return s.Setups > 0 })
	withWait := count(func(s *Sample) bool { return s.WaitP50 > 0 })
	want := []map[string]int{
		{"active": 120},
		{"setups": 120, "failures": 120},
		{"setup_p50": withSetups, "setup_p99": withSetups},
		{"loss": 120},
		{"waiting": 120},
		{"wait_p50": withWait},
	}
	if len(plots) != len(want) {
		t.Fatalf("%d plots, want %d", len(plots), len(want))
	}
	for i, p := range plots {
		got := map[string]int{}
		for _, pl := range p.Polylines {
			pts := parseSVGPoints(t, pl.Points)
			got[pl.Series] = len(pts)
			for j, pt := range pts {
				if pt.x < plotLeft || pt.x > plotW-plotRight || pt.y < plotTop || pt.y > plotH-plotBottom || j > 0 && pt.x <= pts[j-1].x {
					t.Errorf("%s: point %d %v outside the plot or out of order", pl.Series, j, pt)
				}
			}
		}
		if len(got) != len(want[i]) {
			t.Errorf("plot %q: series %v, want %v", p.Label, got, want[i])
		}
		for k, n := range want[i] {
			if got[k] != n {
				t.Errorf("plot %q: series %s has %d points, want %d", p.Label, k, got[k], n)
			}
		}
		texts := strings.Join(p.Texts, "|")
		if !strings.HasPrefix(texts, "0|") && !strings.HasPrefix(texts, "0.0") {
			t.Errorf("plot %q: the y axis does not start at 0: %s", p.Label, texts)
		}
		// 120 s: x ticks every 15 s as m:ss, the axis named in both languages.
		for _, s := range []string{"|0:00|", "|0:15|", "|2:00|", "运行时间 elapsed"} {
			if !strings.Contains(texts, s) {
				t.Errorf("plot %q: no text %q in %s", p.Label, s, texts)
			}
		}
	}
	// The y axes end at or close above their highest values: 150 calls, 3 setups/s, 30 ms, 0.09 %.
	for i, ticks := range []string{"0|50|100|150|通话数", "0|1|2|3|次/秒", "0|10|20|30|毫秒", "0.00|0.02|0.04|0.06|0.08|0.10|丢包"} {
		if texts := strings.Join(plots[i].Texts, "|"); !strings.HasPrefix(texts, ticks) {
			t.Errorf("plot %q: y ticks %s, want %s", plots[i].Label, texts, ticks)
		}
	}
	if texts := strings.Join(plots[0].Texts, "|"); strings.Contains(texts, "|200|") {
		t.Errorf("concurrency y ticks: %s", texts)
	}
	for _, s := range []string{"<title>12345 压测 day run</title>", "<th>呼叫 Calls</th><td>360</td>", "<li>agents: 8</li>",
		"并发通话 Concurrent calls", "建立时延 Setup latency", "丢包率 RTP loss", "排队人数 Callers waiting", "排队等待 Queue wait p50",
		"2026-03-15 09:00:00 Z", "采样 Samples: 120"} {
		if !strings.Contains(page, s) {
			t.Errorf("page lacks %q", s)
		}
	}
	for _, bad := range []string{"<script", "http://", "https://", "@import", "url("} {
		if strings.Contains(strings.ReplaceAll(page, `xmlns="http://www.w3.org/2000/svg"`, ""), bad) {
			t.Errorf("page is not self-contained: has %q", bad)
		}
	}
}

func TestHTMLReportEscapes(t *testing.T) {
	page := renderHTMLReport(t, HTMLReport{Title: `<script>alert(1)</script> & "x"`, Scenario: "<i>day</i>", Target: "a'b",
		Samples: htmlTestSamples(3), Summary: [][2]string{{"<b>calls</b>", "1 < 2"}}, Notes: []string{`<img src=x onerror=alert(1)>`}})
	parseHTMLReport(t, page)
	for _, bad := range []string{"<script", "<i>", "<b>", "<img", "1 < 2"} {
		if strings.Contains(page, bad) {
			t.Errorf("page has unescaped %q", bad)
		}
	}
	for _, want := range []string{"&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#34;x&#34;", "&lt;img src=x onerror=alert(1)&gt;", "1 &lt; 2"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

func TestHTMLReportEmpty(t *testing.T) {
	page := renderHTMLReport(t, HTMLReport{})
	plots := parseHTMLReport(t, page)
	always := 0
	for _, p := range htmlPlots {
		if !p.optional {
			always++
		}
	}
	if len(plots) != always || strings.Count(page, "<polyline") != 0 || strings.Count(page, "无数据 no data") != always {
		t.Errorf("empty run: %d plots, %d polylines, %d 'no data'", len(plots), strings.Count(page, "<polyline"), strings.Count(page, "无数据 no data"))
	}
	if !strings.Contains(page, "<title>"+defaultHTMLTitle+"</title>") {
		t.Error("no default title")
	}
}

// A long run is drawn with at most HTMLPlotMaxPoints points a series; a
// one-second spike survives (levels by max), rates keep their mean.
func TestHTMLReportLongRun(t *testing.T) {
	ss := make([]Sample, 5000)
	for i := range ss {
		ss[i] = Sample{At: Dur(time.Duration(i+1) * time.Second), Active: 100, Setups: 2 + i%2}
	}
	ss[2345].Active = 999
	plots := parseHTMLReport(t, renderHTMLReport(t, HTMLReport{Samples: ss}))
	every := (len(ss) + HTMLPlotMaxPoints - 1) / HTMLPlotMaxPoints
	wantN := (len(ss) + every - 1) / every
	active := parseSVGPoints(t, plots[0].Polylines[0].Points)
	if len(active) != wantN || wantN > HTMLPlotMaxPoints {
		t.Fatalf("%d points, want %d (≤ %d)", len(active), wantN, HTMLPlotMaxPoints)
	}
	top := 1e9
	for _, p := range active {
		top = min(top, p.y)
	}
	if texts := strings.Join(plots[0].Texts, "|"); !strings.Contains(texts, "|1000|") || top > plotTop+1 {
		t.Errorf("spike lost: highest point y=%.1f, ticks %s", top, texts)
	}
	// Setups alternate 2 and 3: every point is their mean, 2.5, the top of the y axis.
	if texts := strings.Join(plots[1].Texts, "|"); !strings.HasPrefix(texts, "0.0|0.5|1.0|1.5|2.0|2.5|") {
		t.Errorf("setups y ticks %s: want 0 to 2.5", texts)
	}
	for _, p := range parseSVGPoints(t, plots[1].Polylines[0].Points) {
		if p.y != plotTop {
			t.Fatalf("setups point %v: want y %d (2.5)", p, plotTop)
		}
	}
	// Ticks every 10 minutes over 1 h 23 min, as h:mm:ss.
	if texts := strings.Join(plots[0].Texts, "|"); !strings.Contains(texts, "|0:10:00|") || !strings.Contains(texts, "|1:20:00|") {
		t.Errorf("x ticks: %s", texts)
	}
}

func TestHTMLTicks(t *testing.T) {
	for _, tc := range []struct {
		hi     float64
		counts bool
		step   float64
		ticks  int
		label  string // of the top tick
	}{
		{0, false, 0.25, 4, "1.00"}, {0, true, 1, 2, "2"}, {3, true, 1, 3, "3"}, {3, false, 1, 3, "3"},
		{12, true, 5, 3, "15"}, {12, false, 2.5, 5, "12.5"}, {150, true, 50, 3, "150"}, {999, true, 200, 5, "1000"},
		{0.09, false, 0.02, 5, "0.10"}, {0.0123, false, 0.0025, 5, "0.0125"}, {31, false, 10, 4, "40"},
	} {
		step, ticks := yAxis(tc.hi, tc.counts)
		if math.Abs(step-tc.step) > 1e-12 || ticks != tc.ticks {
			t.Errorf("yAxis(%v, %v) = %v, %d; want %v, %d", tc.hi, tc.counts, step, ticks, tc.step, tc.ticks)
		} else if l := formatTick(step*float64(ticks), step); l != tc.label {
			t.Errorf("yAxis(%v): top tick %q, want %q", tc.hi, l, tc.label)
		}
	}
	for _, tc := range []struct {
		t, span time.Duration
		want    string
	}{{45 * time.Second, time.Minute, "45s"}, {90 * time.Second, 10 * time.Minute, "1:30"}, {3725 * time.Second, 2 * time.Hour, "1:02:05"}} {
		if got := formatElapsed(tc.t, tc.span); got != tc.want {
			t.Errorf("formatElapsed(%s, %s) = %q, want %q", tc.t, tc.span, got, tc.want)
		}
	}
}

// htmlChromium finds headless Chromium; skips without it, except under CI=true.
func htmlChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is required under CI (Debian package chromium)")
	}
	t.Skip("chromium not installed (Debian package chromium); skipping the browser test")
	return ""
}

// htmlHeadless runs Chromium on url with extra flags (e.g. --dump-dom or --screenshot=FILE).
func htmlHeadless(t *testing.T, bin, url string, extra ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(), "--window-size=1280,2600", "--virtual-time-budget=2000",
	}, extra...)
	out, err := exec.CommandContext(ctx, bin, append(args, url)...).Output()
	if err != nil {
		t.Fatalf("chromium %v: %v", extra, err)
	}
	return string(out)
}

// The report renders in a real browser, with its plots drawn.
func TestHTMLReportInChromium(t *testing.T) {
	bin := htmlChromium(t)
	path := filepath.Join(t.TempDir(), "report.html")
	page := renderHTMLReport(t, HTMLReport{Title: "压测 Load test", Scenario: "day", Target: "127.0.0.1:5060", Started: time.Now(),
		Samples: htmlTestSamples(300), Summary: [][2]string{{"呼叫 Calls", "900"}}})
	if err := os.WriteFile(path, []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	dom := htmlHeadless(t, bin, "file://"+path, "--dump-dom")
	if n, want := strings.Count(dom, "<svg"), len(htmlPlots)-2; n != want { // the soak's two: no data
		t.Fatalf("DOM has %d <svg>, want %d", n, want)
	}
	if n := strings.Count(dom, "<polyline"); n != 8 || !strings.Contains(dom, "并发通话 Concurrent calls") {
		t.Fatalf("DOM has %d <polyline>, want 8", n)
	}
	shot := filepath.Join(t.TempDir(), "report.png")
	htmlHeadless(t, bin, "file://"+path, "--screenshot="+shot)
	// Not blank, and the lines are drawn in their colours.
	colors := screenshotColors(t, shot)
	if len(colors) < 8 {
		t.Fatalf("screenshot looks blank: %d colours", len(colors))
	}
	for _, c := range []uint32{0x2980b9, 0x27ae60, 0x8e44ad, 0xc0392b, 0xf39c12, 0x16a085} {
		if colors[c] < 20 {
			t.Errorf("screenshot: %d pixels of line colour #%06x", colors[c], c)
		}
	}
}

// screenshotColors counts the PNG's pixels by colour (0xRRGGBB).
func screenshotColors(t *testing.T, path string) map[uint32]int {
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
	colors := map[uint32]int{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			colors[r>>8<<16|g>>8<<8|bl>>8]++
		}
	}
	return colors
}
