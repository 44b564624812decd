package call

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hotline12345/hotline/cdr"
	"github.com/hotline12345/hotline/media"
)

// metrics are the call-path collectors, registered on the registry the server passes in.
type metrics struct {
	active   *prometheus.GaugeVec
	total    *prometheus.CounterVec
	setup    prometheus.Histogram
	handle   *prometheus.HistogramVec
	trunk    *prometheus.GaugeVec
	waitTime *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer, mgr *Manager) (*metrics, error) {
	m := &metrics{
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hotline_calls_active", Help: "Calls in progress by stage (setup, ivr, queued, ringing, talking, rating, ending).",
		}, []string{"stage"}),
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hotline_calls_total", Help: "Calls ended, by direction and disposition.",
		}, []string{"direction", "disposition"}),
		setup: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "hotline_call_setup_seconds", Help: "From INVITE received to ACK of our 200 OK.",
			Buckets: []float64{.001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5},
		}),
		handle: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "hotline_call_handle_seconds", Help: "Handle time of answered calls (talk + hold; wrap-up is counted by the agent events).",
			Buckets: []float64{30, 60, 120, 180, 232, 300, 450, 600, 900, 1800},
		}, []string{"queue"}),
		trunk: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hotline_trunk_channels", Help: "Calls in progress on each trunk.",
		}, []string{"trunk"}),
		waitTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "hotline_queue_wait_seconds", Help: "Time callers spent in a queue before leaving it (answered or not).",
			Buckets: []float64{1, 5, 10, 15, 20, 30, 60, 120, 300, 600},
		}, []string{"queue"}),
	}
	for _, c := range []prometheus.Collector{m.active, m.total, m.setup, m.handle, m.trunk, m.waitTime, newMediaCollector(mgr), newACDCollector(mgr)} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) stage(old, next string) {
	if old != "" {
		m.active.WithLabelValues(old).Dec()
	}
	if next != "" {
		m.active.WithLabelValues(next).Inc()
	}
}

func (m *metrics) ended(rec cdr.Record) {
	m.total.WithLabelValues(rec.Direction, string(rec.Disposition)).Inc()
	if rec.Agent != "" {
		m.handle.WithLabelValues(rec.Queue).Observe((rec.Talk + rec.Hold).Seconds())
	}
}

func (m *metrics) queueLeave(q string, waited time.Duration) {
	m.waitTime.WithLabelValues(q).Observe(waited.Seconds())
}

// mediaCollector reports RTP counters (ended calls plus live ones, read at scrape time) and
// the pacing schedulers' send lateness.
type mediaCollector struct {
	m        *Manager
	packets  *prometheus.Desc
	lost     *prometheus.Desc
	dropped  *prometheus.Desc
	lateness *prometheus.Desc
	streams  *prometheus.Desc
	skipped  *prometheus.Desc
}

func newMediaCollector(m *Manager) *mediaCollector {
	return &mediaCollector{
		m:        m,
		packets:  prometheus.NewDesc("hotline_rtp_packets_total", "RTP packets by direction (in = accepted from callers, out = sent).", []string{"direction"}, nil),
		lost:     prometheus.NewDesc("hotline_rtp_lost_total", "RTP packets from callers missing by sequence number.", nil, nil),
		dropped:  prometheus.NewDesc("hotline_rtp_dropped_total", "Datagrams dropped by reason (stranger = not a latchable source: another address, or not the latched one; probation = a new source not latched yet; srtp = failed SRTP authentication or replay check; garbage = not RTP).", []string{"reason"}, nil),
		lateness: prometheus.NewDesc("hotline_rtp_send_lateness_seconds", "Lateness of paced sends against their 20 ms deadlines (worst send of each scheduler slot).", nil, nil),
		streams:  prometheus.NewDesc("hotline_rtp_streams", "Media streams paced by the schedulers.", nil, nil),
		skipped:  prometheus.NewDesc("hotline_rtp_ticks_skipped_total", "Frames skipped because a scheduler fell more than 20 ms behind.", nil, nil),
	}
}

func (c *mediaCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.packets, c.lost, c.dropped, c.lateness, c.streams, c.skipped} {
		ch <- d
	}
}

func (c *mediaCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.m.rtpTotals()
	ch <- prometheus.MustNewConstMetric(c.packets, prometheus.CounterValue, float64(st.PacketsIn), "in")
	ch <- prometheus.MustNewConstMetric(c.packets, prometheus.CounterValue, float64(st.PacketsOut), "out")
	ch <- prometheus.MustNewConstMetric(c.lost, prometheus.CounterValue, float64(st.Lost))
	ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(st.Strangers), "stranger")
	ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(st.Probation), "probation")
	ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(st.SRTPFailed), "srtp")
	ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(st.Garbage), "garbage")
	if c.m.cfg.Scheduler == nil {
		return
	}
	ss := c.m.cfg.Scheduler.Stats()
	buckets := make(map[float64]uint64, media.LatenessBuckets)
	var cum uint64
	for i, n := range ss.Buckets {
		cum += n
		if b := media.BucketBound(i); b >= 0 {
			buckets[b.Seconds()] = cum
		}
	}
	// The schedulers keep counts, not a sum; the sum is estimated from bucket upper bounds.
	var sum float64
	for i, n := range ss.Buckets {
		b := media.BucketBound(i)
		if b < 0 {
			b = ss.MaxLateness
		}
		sum += float64(n) * b.Seconds()
	}
	ch <- prometheus.MustNewConstHistogram(c.lateness, ss.Measured, sum, buckets)
	ch <- prometheus.MustNewConstMetric(c.streams, prometheus.GaugeValue, float64(ss.Streams))
	ch <- prometheus.MustNewConstMetric(c.skipped, prometheus.CounterValue, float64(ss.Skipped))
}

// acdCollector reports the ACD's live state at scrape time: agents by state, callers waiting
// and the longest wait per queue.
type acdCollector struct {
	m           *Manager
	agents      *prometheus.Desc
	callers     *prometheus.Desc
	longestWait *prometheus.Desc
}

func newACDCollector(m *Manager) *acdCollector {
	return &acdCollector{
		m:           m,
		agents:      prometheus.NewDesc("hotline_agents", "Agents by state (logged_out, ready, reserved, on_call, wrap_up, paused).", []string{"state"}, nil),
		callers:     prometheus.NewDesc("hotline_queue_callers", "Callers waiting in each queue (ringing ones included).", []string{"queue"}, nil),
		longestWait: prometheus.NewDesc("hotline_queue_longest_wait_seconds", "Wait of the longest-waiting caller in each queue.", []string{"queue"}, nil),
	}
}

func (c *acdCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.agents
	ch <- c.callers
	ch <- c.longestWait
}

func (c *acdCollector) Collect(ch chan<- prometheus.Metric) {
	if c.m.acd == nil {
		return
	}
	counts := map[string]int{}
	for _, st := range []string{"logged_out", "ready", "reserved", "on_call", "wrap_up", "paused"} {
		counts[st] = 0
	}
	for _, a := range c.m.acd.Agents() {
		counts[string(a.State)]++
	}
	for st, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.agents, prometheus.GaugeValue, float64(n), st)
	}
	for _, q := range c.m.acd.Queues() {
		ch <- prometheus.MustNewConstMetric(c.callers, prometheus.GaugeValue, float64(q.Waiting), q.Name)
		ch <- prometheus.MustNewConstMetric(c.longestWait, prometheus.GaugeValue, q.LongestWait.Seconds(), q.Name)
	}
}
