package callback

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the dialer's collectors, registered on the registry the server passes in.
type metrics struct {
	calls       *prometheus.CounterVec
	active      prometheus.Gauge
	tasks       *prometheus.CounterVec
	tasksActive prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, d *Dialer) (*metrics, error) {
	m := &metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hotline_campaign_calls_total", Help: "Survey calls of campaigns ended, by outcome (interrupted includes calls cut by a crash, counted at recovery).",
		}, []string{"outcome"}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hotline_campaign_calls_active", Help: "Survey calls of campaigns in progress.",
		}),
		tasks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hotline_campaign_tasks_total", Help: "Human callback tasks ended, by outcome.",
		}, []string{"outcome"}),
		tasksActive: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hotline_campaign_tasks_active", Help: "Human callback tasks in progress (queued or talking).",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.calls, m.active, m.tasks, m.tasksActive, &targetsCollector{d: d}} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// targetsCollector reports hotline_campaign_targets{state}: the targets of the
// running and paused campaigns by state, read from the store at scrape time.
type targetsCollector struct{ d *Dialer }

var targetsDesc = prometheus.NewDesc("hotline_campaign_targets",
	"Targets of running and paused campaigns by state (pending, in_progress, done, failed, cancelled).", []string{"state"}, nil)

// scrapeTimeout bounds the store reads of one scrape.
const scrapeTimeout = 2 * time.Second

func (c *targetsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- targetsDesc }

func (c *targetsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	cs, err := c.d.store.Campaigns(ctx)
	if err != nil {
		c.d.log.Warn("metrics: campaigns", "err", err)
		return
	}
	var sum Counts
	now := c.d.clock.Now()
	for _, camp := range cs {
		if camp.State != CampaignRunning && camp.State != CampaignPaused {
			continue
		}
		n, err := c.d.store.Counts(ctx, camp.ID, now, c.d.cfg.AtRisk)
		if err != nil {
			c.d.log.Warn("metrics: campaign counts", "campaign", camp.ID, "err", err)
			return
		}
		sum.Pending += n.Pending
		sum.InProgress += n.InProgress
		sum.Done += n.Done
		sum.Failed += n.Failed
		sum.Cancelled += n.Cancelled
	}
	for state, v := range map[string]int{TargetPending: sum.Pending, "in_progress": sum.InProgress,
		TargetDone: sum.Done, TargetFailed: sum.Failed, TargetCancelled: sum.Cancelled} {
		ch <- prometheus.MustNewConstMetric(targetsDesc, prometheus.GaugeValue, float64(v), state)
	}
}
