package call

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hotline12345/hotline/cdr"
)

// metrics are the call-path collectors, registered on the registry the server passes in.
type metrics struct {
	active   *prometheus.GaugeVec
	total    *prometheus.CounterVec
	setup    prometheus.Histogram
	callers  *prometheus.GaugeVec
	waitTime *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer, _ *Manager) (*metrics, error) {
	m := &metrics{
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hotline_calls_active", Help: "Calls in progress by stage (setup, ivr, queued, ringing, talking, ending).",
		}, []string{"stage"}),
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hotline_calls_total", Help: "Calls ended, by direction and disposition.",
		}, []string{"direction", "disposition"}),
		setup: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "hotline_call_setup_seconds", Help: "From INVITE received to ACK of our 200 OK.",
			Buckets: []float64{.001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5},
		}),
		callers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hotline_queue_callers", Help: "Callers waiting in each queue.",
		}, []string{"queue"}),
		waitTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "hotline_queue_wait_seconds", Help: "Time callers spent in a queue before leaving it (answered or not).",
			Buckets: []float64{1, 5, 10, 15, 20, 30, 60, 120, 300, 600},
		}, []string{"queue"}),
	}
	for _, c := range []prometheus.Collector{m.active, m.total, m.setup, m.callers, m.waitTime} {
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
	m.total.WithLabelValues(rec.Direction, rec.Disposition).Inc()
}

func (m *metrics) queueJoin(q string) { m.callers.WithLabelValues(q).Inc() }

func (m *metrics) queueLeave(q string, waited time.Duration) {
	m.callers.WithLabelValues(q).Dec()
	m.waitTime.WithLabelValues(q).Observe(waited.Seconds())
}
