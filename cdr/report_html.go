package cdr

import (
	"fmt"
	"html"
	"html/template"
	"io"
	"slices"
	"strings"
	"time"
)

// WriteHTML writes the daily report (日报): one self-contained HTML page,
// in Chinese with English labels, its charts inline SVG drawn here — no
// scripts, fonts or network needed to view or print it.
func (r *Report) WriteHTML(w io.Writer) error {
	loc := r.location()
	t := r.Total
	data := struct {
		R                          *Report
		Title, Period              string
		KPIs                       []kpi
		Hourly, Waits, AHTByQueue  template.HTML
		Generated, SL, ShortAbndon string
		RatingRows                 []ratingRow
		Outbound                   *outboundView // nil without outbound records
	}{
		R:     r,
		Title: "12345 热线日报 Daily report " + r.From.In(loc).Format("2006-01-02"),
		Period: fmt.Sprintf("%s – %s (%s)", r.From.In(loc).Format("2006-01-02 15:04"),
			r.To.In(loc).Format("2006-01-02 15:04"), r.Location),
		KPIs: []kpi{
			{"呼入量", "Offered", fmt.Sprint(t.Offered), "进入队列 entered a queue", ""},
			{"接通量", "Answered", fmt.Sprint(t.Answered), "接通率 answer rate " + pct(t.AnswerRate), ""},
			{"放弃量", "Abandoned", fmt.Sprint(t.Abandoned), fmt.Sprintf("放弃率 %s；短时放弃 short %d", pct(t.AbandonRate), t.ShortAbandoned), ""},
			{"平均应答", "ASA", secs(t.ASA), "最长等待 longest " + secs(t.LongestWait), ""},
			{"平均处理时长", "AHT", secs(t.AHT), "通话+保持+话后 talk+hold+wrap", ""},
			{"服务水平", "Service level", pct(t.ServiceLevelOffered), fmt.Sprintf("%s 内接通/呼入；/接通 %s", secs(r.ServiceLevel), pct(t.ServiceLevelAnswered)), ""},
			{"满意度", "Satisfaction", satisfaction(&t.Ratings), fmt.Sprintf("满意率 %s · 基本满意率 %s · 不满意率 %s；参评 rated %d / 邀评 asked %d，参评率 %s",
				ratePct(t.SatisfiedRate, t.Rated), ratePct(t.BasicallySatisfiedRate, t.Rated), ratePct(t.DissatisfiedRate, t.Rated),
				t.Rated, t.RatingsAsked, ratePct(t.RatedShare, t.RatingsAsked)), ""},
			{"15秒接通率", "GB/T 33358 ≤15 s", pct(r.GBT.AnsweredWithin15s), met(r.GBT.Within15sMet), okClass(r.GBT.Within15sMet)},
			{"24小时接通率", "GB/T 33358 connection", pct(r.GBT.ConnectionRate), "目标 target ≥" + pct(r.GBT.Target) + " " + met(r.GBT.ConnectionRateMet), okClass(r.GBT.ConnectionRateMet)},
		},
		Hourly:      hourlyChart(r, loc),
		Waits:       waitChart(r),
		AHTByQueue:  ahtChart(r),
		Generated:   time.Now().In(loc).Format("2006-01-02 15:04:05"),
		SL:          secs(r.ServiceLevel),
		ShortAbndon: secs(r.ShortAbandon),
		RatingRows:  r.ratingRows(),
		Outbound:    newOutboundView(&r.Outbound),
	}
	return htmlReport.Execute(w, data)
}

// outboundView is the outbound section of the HTML report.
type outboundView struct {
	KPIs   []kpi
	Rows   []outboundRow
	Survey Ratings
}

// outboundRow is a line of the outbound calls table: the calls and their
// counts by outboundDispositions, then the other dispositions.
type outboundRow struct {
	Name   string
	Calls  int
	Counts []int
}

func newOutboundView(o *Outbound) *outboundView {
	if o.Calls() == 0 {
		return nil
	}
	s, c, v, cr := &o.Surveys, &o.Callbacks, &o.VirtualHold, &o.CallbackRate
	row := func(name string, calls int, m map[Disposition]int) outboundRow {
		counts := make([]int, len(outboundDispositions)+1)
		for _, dc := range dispositionCounts(m) {
			if i := slices.Index(outboundDispositions, dc.D); i >= 0 {
				counts[i] = dc.N
			} else {
				counts[len(counts)-1] += dc.N
			}
		}
		return outboundRow{name, calls, counts}
	}
	return &outboundView{
		KPIs: []kpi{
			{"回访率", "Callback rate", ratePct(cr.ReachedRate, cr.Cases), fmt.Sprintf("已接通案件 reached %d / 案件 cases %d；机器 by machine %d · 人工 by human %d",
				cr.Reached, cr.Cases, cr.ReachedByMachine, cr.ReachedByHuman), ""},
			{"件件有回音", "Every case answered", ratePct(cr.ReachedOrTriedRate, cr.Cases), fmt.Sprintf("已接通或人工已回访 reached or tried by a human %d / %d；人工回访 human tried %d",
				cr.ReachedOrTried, cr.Cases, cr.HumanTried), ""},
			{"回访满意度", "Survey satisfaction", satisfaction(&s.Ratings), fmt.Sprintf("满意率 %s · 基本满意率 %s · 不满意率 %s；参评 rated %d / 邀评 asked %d",
				ratePct(s.SatisfiedRate, s.Rated), ratePct(s.BasicallySatisfiedRate, s.Rated), ratePct(s.DissatisfiedRate, s.Rated), s.Rated, s.RatingsAsked), ""},
			{"回访呼出", "Survey calls", fmt.Sprint(s.Dialled), fmt.Sprintf("接通 answered %d；案件 cases %d，已接通 reached %d", s.Answered, s.Targets, s.TargetsReached), ""},
			{"回拨", "Callback calls", fmt.Sprint(c.Made), fmt.Sprintf("接通 reached %d", c.Reached), ""},
			{"预约回拨", "Virtual hold", fmt.Sprint(v.Requested), fmt.Sprintf("申请 requested；已回拨 made %d，接通 reached %d", v.Made, v.Reached), ""},
		},
		Rows:   []outboundRow{row("回访 Survey calls", s.Dialled, s.ByDisposition), row("回拨 Callback calls", c.Made, c.ByDisposition)},
		Survey: s.Ratings,
	}
}

type kpi struct{ Zh, En, Value, Note, Class string }

func okClass(ok bool) string {
	if ok {
		return "ok"
	}
	return "bad"
}

var htmlReport = template.Must(template.New("report").Funcs(template.FuncMap{
	"pct": pct, "secs": secs, "satisfaction": func(r Ratings) string { return satisfaction(&r) },
	"ratePct": ratePct,
	"occ": func(a AgentStats) string {
		if a.LoggedIn <= a.Paused {
			return "-"
		}
		return pct(a.Occupancy)
	},
}).Parse(`<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
body{font-family:"Noto Sans CJK SC","Microsoft YaHei","PingFang SC",sans-serif;margin:24px;color:#222;background:#fafafa}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px;border-left:4px solid #c0392b;padding-left:8px}
.period{color:#666;font-size:13px}
.kpis{display:grid;grid-template-columns:repeat(auto-fill,minmax(190px,1fr));gap:10px;margin-top:16px}
.kpi{background:#fff;border:1px solid #ddd;border-radius:6px;padding:10px 12px}
.kpi .l{font-size:13px;color:#555}.kpi .v{font-size:26px;font-weight:600;margin:4px 0}.kpi .n{font-size:12px;color:#777}
.kpi.ok{border-color:#27ae60}.kpi.ok .v{color:#27ae60}.kpi.bad{border-color:#c0392b}.kpi.bad .v{color:#c0392b}
.chart{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px;overflow-x:auto}
table{border-collapse:collapse;background:#fff;font-size:13px}th,td{border:1px solid #ddd;padding:4px 8px;text-align:right}
th{background:#f0f0f0}td:first-child,th:first-child{text-align:left}
.note{font-size:12px;color:#666;margin-top:8px}
</style></head><body>
<h1>{{.Title}}</h1>
<div class="period">统计时段 Period: {{.Period}}{{if .R.Queue}} · 队列 queue {{.R.Queue}}{{end}}</div>
<div class="kpis">{{range .KPIs}}<div class="kpi {{.Class}}"><div class="l">{{.Zh}} {{.En}}</div><div class="v">{{.Value}}</div><div class="n">{{.Note}}</div></div>{{end}}</div>
<h2>分时段呼入与接通 Hourly offered vs answered</h2>
<div class="chart">{{.Hourly}}</div>
<h2>等待时长分布 Wait-time distribution</h2>
<div class="chart">{{.Waits}}</div>
<h2>各队列平均处理时长 AHT by queue</h2>
<div class="chart">{{.AHTByQueue}}</div>
<h2>队列 Queues</h2>
<table><tr><th>队列 Queue</th><th>呼入 Offered</th><th>接通 Answered</th><th>接通率 Answer %</th><th>放弃 Abandoned</th><th>短时放弃 Short</th><th>溢出 Overflowed</th><th>转接 Transfers</th><th>ASA</th><th>AHT</th><th>服务水平 SL/offered</th><th>SL/answered</th><th>最长等待 Longest</th><th>满意度 Satisf.</th></tr>
{{range .R.Queues}}<tr><td>{{.Key}}</td><td>{{.Offered}}</td><td>{{.Answered}}</td><td>{{pct .AnswerRate}}</td><td>{{.Abandoned}}</td><td>{{.ShortAbandoned}}</td><td>{{.Overflowed}}</td><td>{{.Transfers}}</td><td>{{secs .ASA}}</td><td>{{secs .AHT}}</td><td>{{pct .ServiceLevelOffered}}</td><td>{{pct .ServiceLevelAnswered}}</td><td>{{secs .LongestWait}}</td><td>{{satisfaction .Ratings}}</td></tr>
{{end}}</table>
<h2>坐席 Agents</h2>
<table><tr><th>坐席 Agent</th><th>接听 Calls</th><th>通话 Talk</th><th>保持 Hold</th><th>话后 Wrap-up</th><th>AHT</th><th>转接 Transfers</th><th>未接 Ring-no-answer</th><th>签入 Logged in</th><th>小休 Paused</th><th>占用率 Occupancy</th></tr>
{{range .R.Agents}}<tr><td>{{.Agent}}</td><td>{{.Calls}}</td><td>{{secs .Talk}}</td><td>{{secs .Hold}}</td><td>{{secs .WrapUp}}</td><td>{{secs .AHT}}</td><td>{{.Transfers}}</td><td>{{.RingNoAnswer}}</td><td>{{secs .LoggedIn}}</td><td>{{secs .Paused}}</td><td>{{occ .}}</td></tr>
{{end}}</table>
<h2>满意度 Satisfaction (话务“一次一评” post-call rating)</h2>
<table><tr><th>队列/坐席 Queue/agent</th><th>邀评 Asked</th><th>参评 Rated</th><th>参评率 Rated %</th><th>未评价 Not rated</th><th>满意 Satisfied</th><th>基本满意 Basically</th><th>不满意 Dissatisfied</th><th>满意率</th><th>基本满意率</th><th>不满意率</th><th>满意度 Satisfaction</th></tr>
{{with .R.Total.Ratings}}<tr><td>全部来电 all calls</td>{{template "ratings" .}}</tr>
{{end}}{{range .RatingRows}}<tr><td>{{if eq .Kind "queue"}}队列 queue{{else}}坐席 agent{{end}} {{.Key}}</td>{{template "ratings" .R}}</tr>
{{end}}</table>
{{with .Outbound}}<h2>外呼回访 Outbound (云回访，不计入呼入 not in the inbound figures)</h2>
<div class="kpis">{{range .KPIs}}<div class="kpi {{.Class}}"><div class="l">{{.Zh}} {{.En}}</div><div class="v">{{.Value}}</div><div class="n">{{.Note}}</div></div>{{end}}</div>
<table><tr><th>类型 Kind</th><th>呼出 Calls</th><th>接通 Answered</th><th>忙 Busy</th><th>无应答 No answer</th><th>空号 Invalid number</th><th>失败 Failed</th><th>中断 Interrupted</th><th>其他 Other</th></tr>
{{range .Rows}}<tr><td>{{.Name}}</td><td>{{.Calls}}</td>{{range .Counts}}<td>{{.}}</td>{{end}}</tr>
{{end}}</table>
<table><tr><th>回访满意度 Survey</th><th>邀评 Asked</th><th>参评 Rated</th><th>参评率 Rated %</th><th>未评价 Not rated</th><th>满意 Satisfied</th><th>基本满意 Basically</th><th>不满意 Dissatisfied</th><th>满意率</th><th>基本满意率</th><th>不满意率</th><th>满意度 Satisfaction</th></tr>
<tr><td>回访 survey calls</td>{{template "ratings" .Survey}}</tr>
</table>
<div class="note">案件 cases = 回访与回拨记录中的不同案件 distinct case ids of the survey and callback records；回访率 callback rate = 已接通的案件 / 案件 (机器回访或人工回拨接通 reached by the survey or by a human)；件件有回音 = (已接通 或 已交人工回访 reached, or tried by a human) / 案件。按时限的回访率（如结案后 24 小时内）见回访任务 deadlines: see the campaign (/api/v1/campaigns)。预约回拨 virtual hold: 申请 = 排队中按键预约回拨的来电 callers who asked in the queue；已回拨 = 回拨记录 callback calls made for them。</div>
{{end}}<h2>口径 Denominators</h2>
<div class="note">
呼入 Offered = 进入队列的来电 calls that entered a queue (每通来电计一次 once per call)；接通率 answer rate = 接通/呼入，不含短时放弃 excluding short abandons (&lt; {{.ShortAbndon}}): {{pct .R.Total.AnswerRateExclShort}}。
未进入队列 Not offered: IVR 自助结束 ended in the IVR {{.R.Total.IVROnly}}，接听前挂机 gave up before answer {{.R.Total.CallerCancelled}}，拒接 refused {{.R.Total.Failed}}；
队列中超时 timeout {{.R.Total.TimedOut}}，无坐席 no agent {{.R.Total.NoAgent}}，按键退出 exit key {{.R.Total.ExitKey}}，预约回拨 callback requested {{.R.Total.CallbackRequests}}。
队列表按进入队列次数统计 the queue table counts queue visits: 溢出、转入的来电计入目标队列的呼入 an overflow or a transfer is offered to its target queue too。
服务水平 service level: {{.SL}} 内接通 / 呼入 (answered within T / offered) 与 / 接通 (/ answered)。
GB/T 33358-2016: 15 秒内接通 / 接通 (answered within 15 s / answered)；24 小时接通率 = 接通 / 呼入，全天 24 h。
满意度 satisfaction = (满意 + 基本满意) / 参评 (satisfied + basically satisfied) / rated；满意率、基本满意率、不满意率 = 各项 / 参评 (over rated)；参评率 rated share = 参评 / 邀评 (rated / asked)，邀评 = 参评 + 未评价 (挂机或未按键 hung up or no key)。
全部来电按呼入记录统计（回访的评价见外呼回访 survey answers: see the outbound section），队列与坐席按评价事件统计：转接的来电计入最后接听的坐席及其队列 the total counts call records, queues and agents the ratings of the agent who had the call last。
</div>
<div class="note">生成时间 Generated {{.Generated}} · hotlined</div>
</body></html>
{{define "ratings"}}<td>{{.RatingsAsked}}</td><td>{{.Rated}}</td><td>{{ratePct .RatedShare .RatingsAsked}}</td><td>{{.NotRated}}</td><td>{{.Satisfied}}</td><td>{{.BasicallySatisfied}}</td><td>{{.Dissatisfied}}</td><td>{{ratePct .SatisfiedRate .Rated}}</td><td>{{ratePct .BasicallySatisfiedRate .Rated}}</td><td>{{ratePct .DissatisfiedRate .Rated}}</td><td>{{satisfaction .}}</td>{{end}}`))

const svgFont = `font-family="sans-serif" font-size="11"`

// barChart draws grouped vertical bars: one group per label, one bar per
// series. Returns an inline <svg>.
func barChart(labels []string, series []svgSeries, yLabel string, labelEvery int) template.HTML {
	const h, top, bottom, left, right = 260, 30, 40, 50, 10
	longest := 0
	for i, l := range labels {
		if labelEvery <= 1 || i%labelEvery == 0 {
			longest = max(longest, len([]rune(l)))
		}
	}
	groupW := max(12*len(series)+8, 24, 7*longest/max(labelEvery, 1)+6)
	wd := left + right + groupW*max(len(labels), 1)
	maxV := 0.0
	for _, s := range series {
		for _, v := range s.Values {
			maxV = max(maxV, v)
		}
	}
	maxV = niceCeil(maxV)
	plotH := float64(h - top - bottom)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img">`, wd, h, wd, h)
	for i := 0; i <= 4; i++ { // grid and y axis
		y := float64(top) + plotH*float64(4-i)/4
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#e5e5e5"/>`, left, wd-right, y, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" %s>%s</text>`, left-4, y+4, svgFont, trimFloat(maxV*float64(i)/4))
	}
	fmt.Fprintf(&b, `<text x="4" y="14" %s>%s</text>`, svgFont, html.EscapeString(yLabel))
	barW := 10
	for gi, l := range labels {
		x0 := left + gi*groupW + 4
		for si, s := range series {
			v := s.Values[gi]
			bh := 0.0
			if maxV > 0 {
				bh = plotH * v / maxV
			}
			fmt.Fprintf(&b, `<rect x="%d" y="%.1f" width="%d" height="%.1f" fill="%s"><title>%s %s: %s</title></rect>`,
				x0+si*(barW+2), float64(top)+plotH-bh, barW, bh, s.Color, html.EscapeString(l), html.EscapeString(s.Name), trimFloat(v))
		}
		if labelEvery <= 1 || gi%labelEvery == 0 {
			fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" %s>%s</text>`, x0+groupW/2-4, h-bottom+14, svgFont, html.EscapeString(l))
		}
	}
	lx := left
	for _, s := range series { // legend
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="10" height="10" fill="%s"/><text x="%d" y="%d" %s>%s</text>`,
			lx, h-14, s.Color, lx+14, h-5, svgFont, html.EscapeString(s.Name))
		lx += 16 + 8*len([]rune(s.Name))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // every text in it is escaped above
}

type svgSeries struct {
	Name, Color string
	Values      []float64
}

func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := 1.0
	for p*10 <= v {
		p *= 10
	}
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func trimFloat(v float64) string {
	s := fmt.Sprintf("%.1f", v)
	return strings.TrimSuffix(s, ".0")
}

// hourlyChart: offered and answered per hour. A one-day report shows the
// 24 hours of the day, empty ones included.
func hourlyChart(r *Report, loc *time.Location) template.HTML {
	var labels []string
	var off, ans []float64
	idx := map[string]Summary{}
	for _, s := range r.Hours {
		idx[s.Key] = s
	}
	start := r.From.In(loc).Truncate(time.Hour) // zones here have whole-hour offsets
	n := int(r.To.Sub(start).Hours() + 0.999)
	if n <= 0 || n > 24*31 {
		for _, s := range r.Hours {
			labels = append(labels, s.Key[len("2006-01-02 "):])
			off, ans = append(off, float64(s.Offered)), append(ans, float64(s.Answered))
		}
	} else {
		for i := range n {
			t := start.Add(time.Duration(i) * time.Hour)
			s := idx[t.Format("2006-01-02 15:00")]
			label := t.Format("15")
			if n > 24 {
				label = t.Format("01-02 15")
			}
			labels = append(labels, label)
			off, ans = append(off, float64(s.Offered)), append(ans, float64(s.Answered))
		}
	}
	every := 1
	if len(labels) > 48 {
		every = len(labels) / 24
	}
	return barChart(labels, []svgSeries{{"呼入 Offered", "#2980b9", off}, {"接通 Answered", "#27ae60", ans}}, "来电数 calls", every)
}

func waitChart(r *Report) template.HTML {
	var labels []string
	prev := time.Duration(0)
	for _, b := range r.WaitBuckets {
		labels = append(labels, fmt.Sprintf("%s–%s", trimFloat(prev.Seconds()), trimFloat(b.Seconds())))
		prev = b
	}
	labels = append(labels, ">"+trimFloat(prev.Seconds()))
	ans := make([]float64, len(labels))
	abn := make([]float64, len(labels))
	for i := range labels {
		if i < len(r.Total.WaitHistAnswered) {
			ans[i] = float64(r.Total.WaitHistAnswered[i])
			abn[i] = float64(r.Total.WaitHistAbandoned[i])
		}
	}
	return barChart(labels, []svgSeries{{"接通 Answered", "#27ae60", ans}, {"放弃 Abandoned", "#c0392b", abn}}, "来电数 calls (等待秒 wait s)", 1)
}

// ahtChart: horizontal stacked bars of talk, hold and wrap-up per queue.
func ahtChart(r *Report) template.HTML {
	const rowH, left, wd = 26, 110, 640
	qs := r.Queues
	h := 40 + rowH*max(len(qs), 1)
	maxV := 0.0
	for _, q := range qs {
		maxV = max(maxV, q.AHT.Seconds())
	}
	maxV = niceCeil(maxV)
	scale := float64(wd-left-60) / maxV
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img">`, wd, h, wd, h)
	if len(qs) == 0 {
		fmt.Fprintf(&b, `<text x="10" y="24" %s>无数据 no data</text>`, svgFont)
	}
	parts := []struct {
		name, color string
		v           func(Summary) time.Duration
	}{
		{"通话 talk", "#2980b9", func(s Summary) time.Duration { return s.AvgTalk }},
		{"保持 hold", "#f39c12", func(s Summary) time.Duration { return s.AvgHold }},
		{"话后 wrap-up", "#8e44ad", func(s Summary) time.Duration { return s.AvgWrapUp }},
	}
	for i, q := range qs {
		y := 10 + i*rowH
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end" %s>%s</text>`, left-6, y+14, svgFont, html.EscapeString(q.Key))
		x := float64(left)
		for _, p := range parts {
			w := p.v(q).Seconds() * scale
			fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="18" fill="%s"><title>%s %s: %s</title></rect>`,
				x, y, w, p.color, html.EscapeString(q.Key), p.name, secs(p.v(q)))
			x += w
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" %s>AHT %s</text>`, x+4, y+14, svgFont, secs(q.AHT))
	}
	lx := left
	for _, p := range parts {
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="10" height="10" fill="%s"/><text x="%d" y="%d" %s>%s</text>`,
			lx, h-16, p.color, lx+14, h-7, svgFont, p.name)
		lx += 110
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}
