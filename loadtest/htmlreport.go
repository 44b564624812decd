package loadtest

import (
	"fmt"
	"html"
	"html/template"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// HTMLReport is what WriteHTMLReport draws: a run's per-second samples and
// its final figures.
type HTMLReport struct {
	Title    string // default "hotline-loadtest 压测报告 Load test report"
	Scenario string // "day", "bridge", ...
	Target   string
	Started  time.Time
	Samples  []Sample    // one a second, At since Started
	Summary  [][2]string // label, value: the summary table
	Notes    []string    // free text under the plots
}

// HTMLPlotMaxPoints bounds the points of a plotted series: longer runs are
// drawn with a point for every few seconds (levels, latencies and loss at
// their maximum over those seconds, rates at their mean).
const HTMLPlotMaxPoints = 1500

// defaultHTMLTitle is the title of a report without one.
const defaultHTMLTitle = "hotline-loadtest 压测报告 Load test report"

// WriteHTMLReport writes r as one self-contained HTML page: the summary
// table, then line plots over the run's time of concurrency, setups and
// failures per second, setup latency p50/p99, RTP loss, callers waiting and
// their wait p50, each an inline SVG drawn here — no scripts, fonts or
// network needed to view or print it. Every text is escaped.
func WriteHTMLReport(w io.Writer, r HTMLReport) error {
	title := r.Title
	if title == "" {
		title = defaultHTMLTitle
	}
	started := "—"
	if !r.Started.IsZero() {
		started = r.Started.Format("2006-01-02 15:04:05 Z07:00")
	}
	span := runSpan(r.Samples)
	every := plotEvery(len(r.Samples))
	var plots []htmlPlot
	for _, p := range htmlPlots {
		if p.optional && !p.hasData(r.Samples) {
			continue
		}
		plots = append(plots, htmlPlot{Title: p.title, SVG: p.svg(r.Samples, span, every)})
	}
	data := struct {
		Title, Scenario, Target, Started, Duration, Every, Generated string
		N                                                            int
		Summary                                                      [][2]string
		Plots                                                        []htmlPlot
		Notes                                                        []string
	}{
		Title: title, Scenario: dashIfEmpty(r.Scenario), Target: dashIfEmpty(r.Target), Started: started,
		Duration: formatElapsed(span, span), N: len(r.Samples),
		Generated: time.Now().Format("2006-01-02 15:04:05 Z07:00"),
		Summary:   r.Summary, Plots: plots, Notes: r.Notes,
	}
	if every > 1 {
		data.Every = strconv.Itoa(every) + " 秒 s"
	}
	return htmlReportPage.Execute(w, data)
}

type htmlPlot struct {
	Title string
	SVG   template.HTML
}

// The page is well-formed XML as well as HTML (void elements closed), so
// that tests can parse it with encoding/xml.
var htmlReportPage = template.Must(template.New("loadtest").Parse(`<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"/>
<meta name="viewport" content="width=device-width, initial-scale=1"/>
<title>{{.Title}}</title>
<style>
body{font-family:"Noto Sans CJK SC","Microsoft YaHei","PingFang SC",sans-serif;margin:24px;color:#222;background:#fafafa}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px;border-left:4px solid #c0392b;padding-left:8px}
.meta{color:#666;font-size:13px}
.chart{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px;max-width:960px}
.chart svg{width:100%;height:auto;display:block}
table{border-collapse:collapse;background:#fff;font-size:13px}th,td{border:1px solid #ddd;padding:4px 8px}
th{background:#f0f0f0;text-align:left;font-weight:normal}td{text-align:right}
ul{font-size:13px;color:#444}.note{font-size:12px;color:#666;margin-top:16px}
</style></head><body>
<h1>{{.Title}}</h1>
<div class="meta">场景 Scenario: {{.Scenario}} · 目标 Target: {{.Target}} · 开始 Started: {{.Started}} · 时长 Duration: {{.Duration}} · 采样 Samples: {{.N}}{{with .Every}} · 每点 one point per {{.}}{{end}}</div>
<h2>汇总 Summary</h2>
<table>{{range .Summary}}<tr><th>{{index . 0}}</th><td>{{index . 1}}</td></tr>{{else}}<tr><td>—</td></tr>{{end}}</table>
{{range .Plots}}<h2>{{.Title}}</h2>
<div class="chart">{{.SVG}}</div>
{{end}}{{with .Notes}}<h2>说明 Notes</h2>
<ul>{{range .}}<li>{{.}}</li>{{end}}</ul>
{{end}}<div class="note">横轴为自开始起的运行时间 the x axis is the time since the start · 生成时间 Generated {{.Generated}} · hotline-loadtest</div>
</body></html>
`))

// plotSeries is one line of a plot: value gives a sample's value, or false
// when that second has nothing to show (no setups: no setup latency).
type plotSeries struct {
	key, name, color string
	mean             bool // aggregate by mean (rates), else by max
	value            func(*Sample) (float64, bool)
}

type plotSpec struct {
	title, yLabel string
	counts        bool // whole numbers: no fractional y ticks
	series        []plotSeries
	optional      bool // left out of a report that has no data for it
}

func plotAlways(f func(*Sample) float64) func(*Sample) (float64, bool) {
	return func(s *Sample) (float64, bool) { return f(s), true }
}

func durMS(d Dur) float64 { return float64(d) / float64(time.Millisecond) }

// htmlPlots are the report's plots, in page order.
var htmlPlots = []plotSpec{
	{"并发通话 Concurrent calls", "通话数 calls", true, []plotSeries{
		{"active", "并发 active", "#2980b9", false, plotAlways(func(s *Sample) float64 { return float64(s.Active) })},
	}, false},
	{"每秒建立与失败 Setups and failures per second", "次/秒 per s", false, []plotSeries{
		{"setups", "建立 setups/s", "#27ae60", true, plotAlways(func(s *Sample) float64 { return float64(s.Setups) })},
		{"failures", "失败 failures/s", "#c0392b", true, plotAlways(func(s *Sample) float64 { return float64(s.Failures) })},
	}, false},
	{"建立时延 Setup latency (INVITE → 200)", "毫秒 ms", false, []plotSeries{
		{"setup_p50", "p50", "#2980b9", false, func(s *Sample) (float64, bool) { return durMS(s.SetupP50), s.Setups > 0 }},
		{"setup_p99", "p99", "#8e44ad", false, func(s *Sample) (float64, bool) { return durMS(s.SetupP99), s.Setups > 0 }},
	}, false},
	{"丢包率 RTP loss", "丢包 loss %", false, []plotSeries{
		{"loss", "丢包率 loss %", "#c0392b", false, plotAlways(func(s *Sample) float64 { return s.LossPercent })},
	}, false},
	{"排队人数 Callers waiting", "人数 callers", true, []plotSeries{
		{"waiting", "排队 waiting", "#f39c12", false, plotAlways(func(s *Sample) float64 { return float64(s.Waiting) })},
	}, false},
	{"排队等待 Queue wait p50 (callers connected in each second)", "秒 s", false, []plotSeries{
		{"wait_p50", "等待 wait p50", "#16a085", false, func(s *Sample) (float64, bool) {
			return s.WaitP50.D().Seconds(), s.WaitP50 > 0
		}},
	}, false},
	{"服务器内存 Server memory (soak)", "MiB", false, []plotSeries{
		{"server_rss", "RSS", "#2c3e50", false, func(s *Sample) (float64, bool) { return s.ServerRSSMiB, s.ServerRSSMiB > 0 }},
	}, true},
	{"服务器协程与文件 Server goroutines and open files (soak)", "个 count", true, []plotSeries{
		{"server_goroutines", "协程 goroutines", "#8e44ad", false, func(s *Sample) (float64, bool) {
			return float64(s.ServerGoroutines), s.ServerGoroutines > 0
		}},
		{"server_fds", "文件 open files", "#d35400", false, func(s *Sample) (float64, bool) {
			return float64(s.ServerOpenFDs), s.ServerOpenFDs > 0
		}},
	}, true},
}

// hasData reports whether any sample has a value for one of p's series.
func (p *plotSpec) hasData(ss []Sample) bool {
	for i := range p.series {
		for j := range ss {
			if _, ok := p.series[i].value(&ss[j]); ok {
				return true
			}
		}
	}
	return false
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// runSpan is the time the samples cover (at least a second).
func runSpan(ss []Sample) time.Duration {
	span := time.Second
	for i := range ss {
		span = max(span, ss[i].At.D())
	}
	return span
}

// plotEvery is how many samples make one point.
func plotEvery(n int) int { return max(1, (n+HTMLPlotMaxPoints-1)/HTMLPlotMaxPoints) }

type plotPoint struct {
	t time.Duration
	v float64
}

// points aggregates s's values, every samples a point, at the time of the
// last sample of each group.
func (s *plotSeries) points(ss []Sample, every int) []plotPoint {
	var out []plotPoint
	for i := 0; i < len(ss); i += every {
		group := ss[i:min(i+every, len(ss))]
		n, sum, hi := 0, 0.0, math.Inf(-1)
		for j := range group {
			v, ok := s.value(&group[j])
			if !ok || math.IsNaN(v) || math.IsInf(v, 0) {
				continue
			}
			n, sum, hi = n+1, sum+v, max(hi, v)
		}
		if n == 0 {
			continue
		}
		v := hi
		if s.mean {
			v = sum / float64(n)
		}
		out = append(out, plotPoint{group[len(group)-1].At.D(), v})
	}
	return out
}

// Plot geometry (SVG user units).
const (
	plotW, plotH                             = 960, 250
	plotLeft, plotRight, plotTop, plotBottom = 64, 20, 30, 46
	plotFont                                 = `font-family="sans-serif" font-size="12"`
	plotMaxYTicks                            = 5
	plotMaxXTicks                            = 10
)

// svg draws the plot: y grid and ticks, x ticks in elapsed time, one
// polyline per series, a legend.
func (p *plotSpec) svg(ss []Sample, span time.Duration, every int) template.HTML {
	series := make([][]plotPoint, len(p.series))
	top := 0.0
	for i := range p.series {
		series[i] = p.series[i].points(ss, every)
		for _, pt := range series[i] {
			top = max(top, pt.v)
		}
	}
	step, ticks := yAxis(top, p.counts)
	top = step * float64(ticks)
	x0, x1 := float64(plotLeft), float64(plotW-plotRight)
	y0, y1 := float64(plotH-plotBottom), float64(plotTop)
	xOf := func(t time.Duration) float64 { return x0 + (x1-x0)*float64(t)/float64(span) }
	yOf := func(v float64) float64 { return y0 - (y0-y1)*v/top }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="%s">`,
		plotW, plotH, plotW, plotH, html.EscapeString(p.title))
	for i := 0; i <= ticks; i++ { // y grid and tick labels
		v := step * float64(i)
		y := yOf(v)
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#e5e5e5"/>`, x0, x1, y, y)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end" %s>%s</text>`, x0-6, y+4, plotFont, formatTick(v, step))
	}
	fmt.Fprintf(&b, `<text x="%d" y="16" %s>%s</text>`, 6, plotFont, html.EscapeString(p.yLabel))
	xs := elapsedStep(span)
	for t := time.Duration(0); t <= span; t += xs { // x ticks
		x := xOf(t)
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#999"/>`, x, x, y0, y0+5)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" %s>%s</text>`, x, y0+18, plotFont, formatElapsed(t, span))
	}
	fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#999"/>`, x0, x1, y0, y0)
	fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#999"/>`, x0, x0, y0, y1)
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="end" %s>运行时间 elapsed</text>`, x1, plotH-6, plotFont)
	empty := true
	for i, pts := range series {
		s := &p.series[i]
		if len(pts) == 0 {
			continue
		}
		empty = false
		fmt.Fprintf(&b, `<polyline data-series="%s" fill="none" stroke="%s" stroke-width="1.6" stroke-linejoin="round" points="`, s.key, s.color)
		for j, pt := range pts {
			if j > 0 {
				b.WriteByte(' ')
			}
			fmt.Fprintf(&b, "%.1f,%.1f", xOf(pt.t), yOf(pt.v))
		}
		b.WriteString(`"/>`)
		if len(pts) == 1 { // a lone point draws no line
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="2.5" fill="%s"/>`, xOf(pts[0].t), yOf(pts[0].v), s.color)
		}
	}
	if empty {
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" %s>无数据 no data</text>`, (x0+x1)/2, (y0+y1)/2, plotFont)
	}
	lx := x0 + 8
	for _, s := range p.series { // legend, along the top
		fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="14" height="3" fill="%s"/><text x="%.1f" y="%d" %s>%s</text>`,
			lx+120, 10, s.color, lx+138, 15, plotFont, html.EscapeString(s.name))
		lx += 40 + 8*float64(len([]rune(s.name)))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // every text in it is escaped above
}

// yAxis chooses the y axis for values up to hi: ticks intervals of step,
// step 1, 2, 2.5 or 5 times a power of ten (no 2.5 and at least 1 for
// counts), at most plotMaxYTicks of them, ending at or just above hi.
func yAxis(hi float64, counts bool) (step float64, ticks int) {
	if hi <= 0 || math.IsNaN(hi) || math.IsInf(hi, 0) {
		if counts {
			return 1, 2
		}
		return 0.25, 4
	}
	step = niceStep(hi/plotMaxYTicks, counts)
	return step, max(1, int(math.Ceil(hi/step-1e-9)))
}

// niceStep rounds raw up to 1, 2, 2.5 or 5 times a power of ten; for
// counts, to 1, 2 or 5 times a power of ten, at least 1.
func niceStep(raw float64, counts bool) float64 {
	if counts && raw <= 1 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	ms := []float64{1, 2, 2.5, 5, 10}
	if counts {
		ms = []float64{1, 2, 5, 10}
	}
	for _, m := range ms {
		if m*p >= raw*(1-1e-9) {
			return m * p
		}
	}
	return 10 * p
}

// formatTick prints v with as many decimals as step needs.
func formatTick(v, step float64) string {
	dec := 0
	for dec < 6 && math.Abs(step*math.Pow(10, float64(dec))-math.Round(step*math.Pow(10, float64(dec)))) > 1e-6 {
		dec++
	}
	return strconv.FormatFloat(v, 'f', dec, 64)
}

// elapsedSteps are the x tick intervals to choose from.
var elapsedSteps = []time.Duration{
	time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour,
}

// elapsedStep is the smallest tick interval giving at most plotMaxXTicks intervals over span.
func elapsedStep(span time.Duration) time.Duration {
	for _, s := range elapsedSteps {
		if span/s <= plotMaxXTicks {
			return s
		}
	}
	return span / plotMaxXTicks
}

// formatElapsed prints t as seconds ("45s") on a run under two minutes,
// else as m:ss, or h:mm:ss on a run of an hour or more.
func formatElapsed(t, span time.Duration) string {
	t = t.Round(time.Second)
	s := int64(t / time.Second)
	switch {
	case span < 2*time.Minute:
		return strconv.FormatInt(s, 10) + "s"
	case span < time.Hour:
		return fmt.Sprintf("%d:%02d", s/60, s%60)
	}
	return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
}
