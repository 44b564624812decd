package cdr

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

func (w *Writer) register(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	cs := []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "hotline_cdr_queue_depth",
			Help: "Finished call records waiting in the writer's in-memory queue.",
		}, func() float64 { return float64(len(w.queue)) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "hotline_cdr_journal_backlog",
			Help: "Finished call records in the journal waiting for the store.",
		}, func() float64 { return float64(max(w.j.backlog.Load(), 0)) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "hotline_cdr_write_errors_total",
			Help: "Failed CDR store calls and journal appends.",
		}, func() float64 { return float64(w.errs.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "hotline_cdr_journaled_total",
			Help: "Finished call records and agent events that went to the journal instead of the store (the queue was full or the store failing).",
		}, func() float64 { return float64(w.journaled.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "hotline_cdr_records_written_total",
			Help: "Call records committed to the store.",
		}, func() float64 { return float64(w.written.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "hotline_cdr_spilled",
			Help: "Call records and agent events waiting in memory because neither the store nor the journal takes them (a full disk).",
		}, func() float64 { return float64(w.Stats().Spilled) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "hotline_cdr_dropped_total",
			Help: "Records of calls never answered and agent events dropped because too many waited in memory (twice the spill limit).",
		}, func() float64 { return float64(w.dropped.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "hotline_cdr_event_queue_depth",
			Help: "Agent events waiting in the writer's in-memory queue.",
		}, func() float64 { return float64(len(w.events)) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "hotline_cdr_events_written_total",
			Help: "Agent events committed to the store.",
		}, func() float64 { return float64(w.evWritten.Load()) }),
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			for _, done := range w.collectors {
				reg.Unregister(done)
			}
			w.collectors = nil
			return fmt.Errorf("cdr writer: register metrics: %w", err)
		}
		w.collectors = append(w.collectors, c)
	}
	return nil
}

func (w *Writer) unregister() {
	for _, c := range w.collectors {
		w.opts.Registerer.Unregister(c)
	}
	w.collectors = nil
}
