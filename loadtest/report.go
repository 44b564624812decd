package loadtest

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Bound is a histogram quantile in seconds: the upper bound of its bucket.
// It JSON-encodes NaN (nothing measured) as null and +Inf as "+Inf".
type Bound float64

// MarshalJSON encodes the bound.
func (b Bound) MarshalJSON() ([]byte, error) {
	switch v := float64(b); {
	case math.IsNaN(v):
		return []byte("null"), nil
	case math.IsInf(v, 1):
		return []byte(`"+Inf"`), nil
	default:
		return json.Marshal(v)
	}
}

// Dur is a duration that JSON-encodes as float milliseconds.
type Dur time.Duration

// D returns the time.Duration.
func (d Dur) D() time.Duration { return time.Duration(d) }

func (d Dur) String() string { return roundDur(time.Duration(d)).String() }

// MarshalJSON encodes milliseconds.
func (d Dur) MarshalJSON() ([]byte, error) {
	return json.Marshal(float64(d) / float64(time.Millisecond))
}

func roundDur(d time.Duration) time.Duration {
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond)
	case d >= 10*time.Millisecond:
		return d.Round(100 * time.Microsecond)
	case d >= 10*time.Microsecond:
		return d.Round(time.Microsecond)
	}
	return d
}

// IVRReport is the outcome of RunIVR.
type IVRReport struct {
	Target       string  `json:"target"`
	Number       string  `json:"number"`
	Calls        int     `json:"calls"`
	Rate         float64 `json:"rate"`
	Hold         Dur     `json:"hold_ms"`
	Codec        string  `json:"codec"`
	Digits       string  `json:"digits,omitempty"`
	LoadAvgStart string  `json:"load_average_start"`
	LoadAvgFull  string  `json:"load_average_full"`

	Attempted   int            `json:"attempted"`
	Established int            `json:"established"`
	Failed      int            `json:"failed"`
	FailReasons map[string]int `json:"fail_reasons,omitempty"`
	EndedEarly  int            `json:"ended_early"` // the server hung up during the hold
	EarlyWhy    map[string]int `json:"ended_early_reasons,omitempty"`
	DigitsSent  int            `json:"digits_sent"`
	RampTime    Dur            `json:"ramp_ms"`
	Plateau     Dur            `json:"plateau_ms"`
	Duration    Dur            `json:"duration_ms"`

	SetupP50 Dur `json:"setup_p50_ms"` // INVITE sent → 200 received and ACK sent, per established call
	SetupP99 Dur `json:"setup_p99_ms"`
	SetupMax Dur `json:"setup_max_ms"`

	RTP       RTPStats `json:"rtp"`      // server → citizens, summed over calls (jitter fields: see below)
	LossPct   float64  `json:"loss_pct"` // 100·lost/(received+lost)
	JitterP50 Dur      `json:"jitter_p50_ms"`
	JitterP99 Dur      `json:"jitter_p99_ms"` // of the per-call RFC 3550 jitter at hang-up
	JitterMax Dur      `json:"jitter_max_ms"` // highest per-call jitter estimate at any time
	NoAudio   int      `json:"calls_without_audio"`

	Client ClientFigures  `json:"client"`
	Server *ServerFigures `json:"server,omitempty"`

	MaxLossPct  float64  `json:"max_loss_pct"`
	MaxLateness Dur      `json:"max_lateness_ms"`
	Pass        bool     `json:"pass"`
	Problems    []string `json:"problems,omitempty"`
}

// ClientFigures describe the load tester's own health during the run.
type ClientFigures struct {
	CPUSeconds             float64    `json:"cpu_seconds"`
	PlateauCPUPercent      float64    `json:"plateau_cpu_percent"` // of one core
	UDPInErrors            int64      `json:"udp_in_errors"`       // host-wide, whole run
	UDPRcvbufErrors        int64      `json:"udp_rcvbuf_errors"`
	UDPSndbufErrors        int64      `json:"udp_sndbuf_errors"`
	PlateauUDPRcvbufErrors int64      `json:"plateau_udp_rcvbuf_errors"`
	Meter                  MeterStats `json:"meter"`
}

// ServerFigures are the server's own figures from /metrics.
type ServerFigures struct {
	// Over the plateau (full load).
	PacketsOut         float64  `json:"plateau_rtp_packets_out"`
	PacketsIn          float64  `json:"plateau_rtp_packets_in"`
	LostIn             float64  `json:"plateau_rtp_lost_in"` // citizens → server, by sequence gaps
	LossInPct          float64  `json:"plateau_loss_in_pct"`
	SkippedTicks       float64  `json:"plateau_ticks_skipped"` // frames the schedulers dropped when > 20 ms behind
	SkippedPct         float64  `json:"plateau_skipped_pct"`
	LatenessP50        Bound    `json:"plateau_lateness_p50_s"` // bucket upper bounds (NaN: none measured)
	LatenessP99        Bound    `json:"plateau_lateness_p99_s"`
	LatenessP999       Bound    `json:"plateau_lateness_p999_s"`
	Lateness           []Bucket `json:"-"`
	CPUSeconds         float64  `json:"plateau_cpu_seconds"`
	CPUPercent         float64  `json:"plateau_cpu_percent"` // of one core
	PlateauSeconds     float64  `json:"plateau_seconds"`
	CallsActive        float64  `json:"calls_active_full"`
	Goroutines         float64  `json:"goroutines_full"`
	RSSIdle            float64  `json:"rss_idle_bytes"`
	RSSFull            float64  `json:"rss_full_bytes"`
	RSSAfter           float64  `json:"rss_after_bytes"`
	RSSPerCallKiB      float64  `json:"rss_per_call_kib"`
	HeapInuseFull      float64  `json:"heap_inuse_full_bytes"`
	SetupP99           Bound    `json:"setup_p99_s"` // hotline_call_setup_seconds over the run, bucket bound
	SetupHist          []Bucket `json:"-"`
	CallsEndedTotal    float64  `json:"calls_ended"`
	CPUSecondsWholeRun float64  `json:"cpu_seconds_run"`
}

func (r *IVRReport) fill(results []citizen) {
	r.Attempted = len(results)
	var setups, jit []time.Duration
	for _, c := range results {
		if c.err != nil || c.call == nil {
			r.Failed++
			if r.FailReasons == nil {
				r.FailReasons = map[string]int{}
			}
			r.FailReasons[failureReason(c.err)]++
			continue
		}
		r.Established++
		setups = append(setups, c.setup)
		if c.endedEarly != "" {
			r.EndedEarly++
			if r.EarlyWhy == nil {
				r.EarlyWhy = map[string]int{}
			}
			r.EarlyWhy[c.endedEarly]++
		}
		if c.digitsSent {
			r.DigitsSent++
		}
		st := c.rtp
		r.RTP.Packets += st.Packets
		r.RTP.AudioPackets += st.AudioPackets
		r.RTP.OtherPackets += st.OtherPackets
		r.RTP.Lost += st.Lost
		r.RTP.Duplicates += st.Duplicates
		r.RTP.Late += st.Late
		r.RTP.SSRCChanges += st.SSRCChanges
		r.RTP.Sent += st.Sent
		r.RTP.SendErrors += st.SendErrors
		r.RTP.MaxJitter = max(r.RTP.MaxJitter, st.MaxJitter)
		if st.AudioPackets == 0 {
			r.NoAudio++
		} else {
			jit = append(jit, st.Jitter)
		}
	}
	r.Failed += r.Calls - r.Attempted
	if n := r.RTP.Expected(); n > 0 {
		r.LossPct = 100 * float64(r.RTP.Lost) / float64(n)
	}
	setups, jit = sortedDurations(setups), sortedDurations(jit)
	r.SetupP50, r.SetupP99 = Dur(percentile(setups, 0.5)), Dur(percentile(setups, 0.99))
	if len(setups) > 0 {
		r.SetupMax = Dur(setups[len(setups)-1])
	}
	r.JitterP50, r.JitterP99 = Dur(percentile(jit, 0.5)), Dur(percentile(jit, 0.99))
	r.JitterMax = Dur(r.RTP.MaxJitter)
}

func serverFigures(idle, full0, full1, after *Scrape, established int) *ServerFigures {
	f := &ServerFigures{
		RSSIdle:  idle.Get(mRSS),
		RSSFull:  full1.Get(mRSS),
		RSSAfter: after.Get(mRSS),
	}
	if full0 != nil && full1 != nil {
		secs := full1.At.Sub(full0.At).Seconds()
		f.PlateauSeconds = secs
		f.PacketsOut = full1.Get(mRTPPackets+`{direction="out"}`) - full0.Get(mRTPPackets+`{direction="out"}`)
		f.PacketsIn = full1.Get(mRTPPackets+`{direction="in"}`) - full0.Get(mRTPPackets+`{direction="in"}`)
		f.LostIn = full1.Get(mRTPLost) - full0.Get(mRTPLost)
		if n := f.PacketsIn + f.LostIn; n > 0 {
			f.LossInPct = 100 * f.LostIn / n
		}
		f.SkippedTicks = full1.Get(mRTPSkipped) - full0.Get(mRTPSkipped)
		if n := f.PacketsOut + f.SkippedTicks; n > 0 {
			f.SkippedPct = 100 * f.SkippedTicks / n
		}
		f.Lateness = HistogramDelta(full1.Histogram(mLateness), full0.Histogram(mLateness))
		f.LatenessP50, f.LatenessP99, f.LatenessP999 = Quantile(f.Lateness, 0.5), Quantile(f.Lateness, 0.99), Quantile(f.Lateness, 0.999)
		f.CPUSeconds = full1.Get(mCPU) - full0.Get(mCPU)
		if secs > 0 {
			f.CPUPercent = 100 * f.CPUSeconds / secs
		}
		f.CallsActive = full1.Sum(mCallsActive)
		f.Goroutines = full1.Get(mGoroutines)
		f.HeapInuseFull = full1.Get(mGoHeapInuse)
	}
	if established > 0 && full1 != nil && idle != nil {
		f.RSSPerCallKiB = (f.RSSFull - f.RSSIdle) / float64(established) / 1024
	}
	if idle != nil && after != nil {
		f.SetupHist = HistogramDelta(after.Histogram(mSetup), idle.Histogram(mSetup))
		f.SetupP99 = Quantile(f.SetupHist, 0.99)
		f.CallsEndedTotal = after.Sum(mCallsTotal) - idle.Sum(mCallsTotal)
		f.CPUSecondsWholeRun = after.Get(mCPU) - idle.Get(mCPU)
	}
	return f
}

// judge applies the pass criteria: every call established and held, loss
// (heard by citizens, and frames the server's schedulers skipped) and loss
// into the server below MaxLossPct, p99 send lateness within MaxLateness.
func (r *IVRReport) judge() {
	var p []string
	if r.Failed > 0 {
		p = append(p, fmt.Sprintf("%d of %d calls failed to set up", r.Failed, r.Calls))
	}
	if r.EndedEarly > 0 {
		p = append(p, fmt.Sprintf("%d calls were hung up by the server during the hold", r.EndedEarly))
	}
	if r.NoAudio > 0 {
		p = append(p, fmt.Sprintf("%d established calls received no audio", r.NoAudio))
	}
	if r.LossPct >= r.MaxLossPct {
		p = append(p, fmt.Sprintf("loss heard by citizens %.3f%% ≥ %g%%", r.LossPct, r.MaxLossPct))
	}
	if s := r.Server; s != nil {
		if s.SkippedPct >= r.MaxLossPct {
			p = append(p, fmt.Sprintf("server skipped %.3f%% of frames (scheduler > 20 ms behind) ≥ %g%%", s.SkippedPct, r.MaxLossPct))
		}
		if s.LossInPct >= r.MaxLossPct {
			p = append(p, fmt.Sprintf("loss into the server %.3f%% ≥ %g%%", s.LossInPct, r.MaxLossPct))
		}
		if !(float64(s.LatenessP99) <= r.MaxLateness.D().Seconds()) { // NaN (nothing measured) fails too
			p = append(p, fmt.Sprintf("p99 send lateness %s, want ≤ %s", FormatBound(s.LatenessP99, s.Lateness), r.MaxLateness))
		}
	}
	if r.Client.Meter.PacerSkipped > 0 || r.Client.PlateauCPUPercent > 0 && r.Client.Meter.PacerSlots > 0 &&
		float64(r.Client.Meter.PacerLate)/float64(r.Client.Meter.PacerSlots) > 0.01 {
		p = append(p, "the load tester's own pacer ran late (client short of CPU): caller audio was uneven")
	}
	if n := r.Client.PlateauUDPRcvbufErrors; n > 0 {
		p = append(p, fmt.Sprintf("the host dropped %d datagrams at full load for full receive buffers"+
			" (the load tester's meter sockets when the server's loss in is 0)", n))
	}
	r.Problems, r.Pass = p, len(p) == 0
}

// WriteJSON writes the report as indented JSON.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// WriteText prints the report as a plain two-column table.
func (r *IVRReport) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, a ...any) { fmt.Fprintf(tw, "%s\t%s\n", k, fmt.Sprintf(format, a...)) }
	row("run", "%d calls to %s at %s, %g/s, hold %s, %s%s", r.Calls, r.Number, r.Target, r.Rate, r.Hold, r.Codec, digitsNote(r.Digits))
	row("load average", "%s at start, %s at full load", r.LoadAvgStart, r.LoadAvgFull)
	row("calls established", "%d of %d (failed %d%s)", r.Established, r.Calls, r.Failed, reasons(r.FailReasons))
	row("ended by server early", "%d%s", r.EndedEarly, reasons(r.EarlyWhy))
	if r.Digits != "" {
		row("digits sent", "%d calls", r.DigitsSent)
	}
	row("ramp / full load / total", "%s / %s / %s", r.RampTime, r.Plateau, r.Duration)
	row("setup p50 / p99 / max", "%s / %s / %s (INVITE → 200 → ACK, at the phone)", r.SetupP50, r.SetupP99, r.SetupMax)
	row("RTP received", "%d packets, %d lost by sequence, %d late, %d duplicate, %d SSRC changes", r.RTP.Packets, r.RTP.Lost, r.RTP.Late, r.RTP.Duplicates, r.RTP.SSRCChanges)
	row("loss heard by citizens", "%.4f%% (%d / %d)", r.LossPct, r.RTP.Lost, r.RTP.Expected())
	row("jitter p50 / p99 / max", "%s / %s / %s (RFC 3550, per call)", r.JitterP50, r.JitterP99, r.JitterMax)
	row("RTP sent by citizens", "%d packets, %d send errors", r.RTP.Sent, r.RTP.SendErrors)
	if s := r.Server; s != nil {
		row("server send lateness", "p50 %s, p99 %s, p99.9 %s (full load)", FormatBound(s.LatenessP50, s.Lateness), FormatBound(s.LatenessP99, s.Lateness), FormatBound(s.LatenessP999, s.Lateness))
		row("server frames skipped", "%.0f (%.4f%% of %0.f sent, full load)", s.SkippedTicks, s.SkippedPct, s.PacketsOut)
		row("server loss in", "%.0f of %.0f (%.4f%%, full load)", s.LostIn, s.PacketsIn+s.LostIn, s.LossInPct)
		row("server CPU", "%.1f%% of a core at full load (%.2f s over %.1f s); %.1f s for the whole run", s.CPUPercent, s.CPUSeconds, s.PlateauSeconds, s.CPUSecondsWholeRun)
		row("server RSS", "idle %s, full %s, after hang-up %s", mib(s.RSSIdle), mib(s.RSSFull), mib(s.RSSAfter))
		row("server RSS per call", "%.1f KiB ((full − idle) / %d calls)", s.RSSPerCallKiB, r.Established)
		row("server calls active / goroutines", "%.0f / %.0f (full load)", s.CallsActive, s.Goroutines)
		row("server setup p99", "%s (hotline_call_setup_seconds, INVITE → ACK)", FormatBound(s.SetupP99, s.SetupHist))
	}
	c := r.Client
	row("load tester CPU", "%.1f%% of a core at full load, %.1f s in all", c.PlateauCPUPercent, c.CPUSeconds)
	row("load tester pacer", "%d slots, %d late > 2 ms, max %s, %d frames skipped", c.Meter.PacerSlots, c.Meter.PacerLate, roundDur(c.Meter.PacerMaxLate), c.Meter.PacerSkipped)
	row("host UDP drops", "%d receive-buffer (%d at full load), %d send-buffer, %d in-errors", c.UDPRcvbufErrors, c.PlateauUDPRcvbufErrors, c.UDPSndbufErrors, c.UDPInErrors)
	verdict := "PASS"
	if !r.Pass {
		verdict = "FAIL: " + strings.Join(r.Problems, "; ")
	}
	row("verdict", "%s (loss < %g%%, p99 lateness ≤ %s)", verdict, r.MaxLossPct, r.MaxLateness)
	return tw.Flush()
}

func digitsNote(d string) string {
	if d == "" {
		return ""
	}
	return ", digits " + d
}

func reasons(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] || m[keys[i]] == m[keys[j]] && keys[i] < keys[j] })
	parts := make([]string, 0, len(keys))
	for _, k := range keys[:min(len(keys), 5)] {
		parts = append(parts, fmt.Sprintf("%s ×%d", k, m[k]))
	}
	return ": " + strings.Join(parts, ", ")
}

func mib(b float64) string {
	if b == 0 || math.IsNaN(b) {
		return "n/a"
	}
	return fmt.Sprintf("%.1f MiB", b/(1<<20))
}
