package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/hotline12345/hotline/auth"
	"github.com/hotline12345/hotline/cdr"
	"github.com/hotline12345/hotline/webhook"
)

// Feed is the work-order feed (docs/events.md): webhooks and the SSE
// stream; *webhook.Hub implements it.
type Feed interface {
	Webhooks() []webhook.Stats
	DeadLetters(ctx context.Context, id string, limit int) ([]cdr.DeadLetter, error)
	Replay(ctx context.Context, id string) (int, error)
	Subscribe() (*webhook.Subscription, error)
	Unsubscribe(*webhook.Subscription)
	Since(ctx context.Context, after, upTo int64, limit int) ([]cdr.OutboxEvent, error)
}

// DefaultStreamHeartbeat is how often the SSE stream sends a comment when
// there are no events (proxies close idle connections).
const DefaultStreamHeartbeat = 15 * time.Second

// maxResume bounds the events a stream resumed with Last-Event-ID replays.
const maxResume = 1000

// MaskNumber is the API's rule for citizens' numbers (mask.Number, service
// numbers of 5 digits or fewer kept), for the feed's consumers too.
func MaskNumber(s string) string { return maskNumber(s) }

// registerFeed adds the feed's routes.
func (a *api) registerFeed(mux *http.ServeMux) {
	if a.cfg.Feed == nil {
		return
	}
	a.route(mux, "GET /api/v1/webhooks", access{min: auth.Supervisor}, a.webhooks)
	a.route(mux, "GET /api/v1/webhooks/{id}/dead", access{min: auth.Admin, export: true}, a.deadLetters)
	a.route(mux, "POST /api/v1/webhooks/{id}/replay", access{min: auth.Admin}, a.replay)
	a.route(mux, "GET /api/v1/events/stream", access{min: auth.Viewer, agent: true}, a.stream)
}

func (a *api) webhooks(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"webhooks": a.cfg.Feed.Webhooks()})
}

// deadLetters serves GET /api/v1/webhooks/{id}/dead?limit=: the events the
// webhook gave up on, oldest first, numbers in full (admin only, audited).
func (a *api) deadLetters(w http.ResponseWriter, r *http.Request) {
	limit := 100
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, http.StatusBadRequest, "limit: want 1-1000")
			return
		}
		limit = n
	}
	dead, err := a.cfg.Feed.DeadLetters(r.Context(), r.PathValue("id"), limit)
	if a.feedError(w, r, err) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"dead": dead})
}

// replay serves POST /api/v1/webhooks/{id}/replay: each dead letter is
// sent once more, with its own id; those delivered leave the list.
func (a *api) replay(w http.ResponseWriter, r *http.Request) {
	n, err := a.cfg.Feed.Replay(r.Context(), r.PathValue("id"))
	if a.feedError(w, r, err) {
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"queued": n})
}

func (a *api) feedError(w http.ResponseWriter, r *http.Request, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, webhook.ErrUnknownWebhook):
		writeError(w, http.StatusNotFound, "unknown webhook "+strconv.Quote(r.PathValue("id")))
	case errors.Is(err, webhook.ErrNotLeading):
		writeError(w, http.StatusConflict, "another node of the cluster delivers the webhooks: ask it (GET /api/v1/cluster/nodes)")
	case errors.Is(err, webhook.ErrClosed):
		writeError(w, http.StatusServiceUnavailable, "the server is stopping")
	default:
		a.cfg.Logger.Error("webhook request failed", "error", err)
		writeError(w, http.StatusInternalServerError, err.Error())
	}
	return true
}

// stream serves GET /api/v1/events/stream: the feed as server-sent events
// (id: the outbox seq, event: the type, data: the envelope). Numbers are
// masked except for admins; an agent gets only the events that name it. A
// client that reconnects with Last-Event-ID (or ?last_event_id=) gets what
// it missed, up to 1000 events, from the outbox. Comments every
// heartbeat keep proxies from closing an idle stream.
func (a *api) stream(w http.ResponseWriter, r *http.Request) {
	sub, err := a.cfg.Feed.Subscribe()
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "event stream unavailable: "+err.Error())
		return
	}
	defer a.cfg.Feed.Unsubscribe(sub)
	last := sub.Head
	if s := r.Header.Get("Last-Event-ID") + r.URL.Query().Get("last_event_id"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "Last-Event-ID: want the id of an event of this stream")
			return
		}
		last = min(n, sub.Head)
	}
	p := principalOf(r)
	full := p.Role.SeesNumbers()
	beat := a.cfg.StreamHeartbeat
	if beat <= 0 {
		beat = DefaultStreamHeartbeat
	}
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	var buf bytes.Buffer
	send := func() bool {
		// The server's write timeout is for requests, not streams: each
		// write gets its own deadline.
		_ = rc.SetWriteDeadline(time.Now().Add(beat + 10*time.Second))
		_, err := w.Write(buf.Bytes())
		buf.Reset()
		return err == nil && rc.Flush() == nil
	}
	add := func(e cdr.OutboxEvent) {
		if p.Role == auth.Agent && e.Data.Agent != p.AgentID {
			return
		}
		body, err := webhook.Envelope(e, full, maskNumber)
		if err != nil {
			return
		}
		fmt.Fprintf(&buf, "id: %d\nevent: %s\ndata: %s\n\n", e.Seq, e.Type, body)
	}
	buf.WriteString("retry: 2000\n: hotline event stream\n\n")
	if last < sub.Head {
		evs, err := a.cfg.Feed.Since(r.Context(), last, sub.Head, maxResume)
		if err != nil {
			a.cfg.Logger.Warn("event stream: resume failed", "error", err)
		}
		for _, e := range evs {
			add(e)
		}
	}
	last = sub.Head
	if !send() {
		return
	}
	tick := time.NewTicker(beat)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case e, ok := <-sub.C:
			if !ok {
				return // fell behind, or the server stops: the client resumes with Last-Event-ID
			}
			if e.Seq <= last {
				continue
			}
			last = e.Seq
			add(e)
			for n := len(sub.C); n > 0; n-- { // what else is waiting, in one write
				if e, ok = <-sub.C; ok && e.Seq > last {
					last = e.Seq
					add(e)
				}
			}
			if buf.Len() > 0 && !send() {
				return
			}
		case <-tick.C:
			buf.WriteString(": ping\n\n")
			if !send() {
				return
			}
		}
	}
}
