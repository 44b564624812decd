package main

import (
	"time"

	"github.com/hotline12345/hotline/api"
	"github.com/hotline12345/hotline/cdr"
	"github.com/hotline12345/hotline/webhook"
)

// feedJob is the work-order feed (docs/events.md): the hub that delivers the outbox to the
// webhooks and the SSE stream, and its goroutine.
type feedJob struct {
	hub *webhook.Hub
	run *background
}

// newFeed makes the hub if the record store keeps an outbox (SQLite and PostgreSQL do).
func (a *app) newFeed() error {
	ob, ok := a.store.(cdr.Outbox)
	if !ok {
		return nil
	}
	hooks := make([]webhook.Config, 0, len(a.cfg.Webhooks))
	for _, w := range a.cfg.Webhooks {
		hooks = append(hooks, webhook.Config{ID: w.ID, URL: w.URL, Secret: w.Secret, Events: w.Events,
			Timeout: w.Timeout.D(), MaxAttempts: w.MaxAttempts, RetryMin: w.RetryMin.D(), RetryMax: w.RetryMax.D(),
			FullNumbers: w.FullNumbers})
	}
	var lead func() bool // nil: always (one node)
	if a.cluster != nil {
		lead = a.cluster.delivers.Load // one node of the cluster delivers the shared outbox
	}
	hub, err := webhook.New(webhook.Options{Store: ob, Webhooks: hooks, Mask: api.MaskNumber,
		Logger: a.log.With("caller", "webhooks"), Registerer: a.reg, Lead: lead})
	if err != nil {
		return err
	}
	a.feed = &feedJob{hub: hub, run: newBackground()}
	return nil
}

func (a *app) runFeed() {
	if a.feed != nil {
		a.feed.run.start(a.feed.hub.Run)
	}
}

// stopFeed stops the hub: deliveries in flight are cancelled (sent again, same id, after
// the restart), cursors saved, SSE streams ended.
func (a *app) stopFeed() {
	if a.feed != nil && !a.feed.run.stop(10*time.Second) {
		a.log.Error("the webhook hub did not stop in time")
	}
}

// feedAPI is the hub as the API takes it (an untyped nil without one).
func (a *app) feedAPI() api.Feed {
	if a.feed == nil {
		return nil
	}
	return a.feed.hub
}
