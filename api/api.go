// Package api is the HTTP face of hotline: JSON API, Prometheus /metrics and /healthz.
package api

import (
	"context"
	_ "embed"
	"encoding/csv"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/hotline12345/hotline/call"
	"github.com/hotline12345/hotline/cdr"
)

// Records lists call records.
type Records interface {
	List(ctx context.Context, f cdr.Filter) ([]cdr.Record, error)
}

// Calls lists the calls in progress.
type Calls interface {
	Live() []call.LiveCall
}

// Health reports whether the server takes calls; a non-nil error makes /healthz 503.
type Health func() error

// Config wires the handler.
type Config struct {
	Records  Records
	Store    cdr.Store // for reports; nil disables /api/v1/reports/summary
	Report   cdr.ReportOptions
	Calls    Calls
	ACD      ACD
	Health   Health
	Gatherer prometheus.Gatherer
	Logger   *slog.Logger
}

// New returns the HTTP handler of the API.
func New(cfg Config) http.Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	a := &api{cfg: cfg}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", a.healthz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelError)}))
	mux.HandleFunc("GET /api/v1/calls", a.calls)
	mux.HandleFunc("GET /api/v1/cdrs", a.cdrs)
	if cfg.Store != nil {
		mux.HandleFunc("GET /api/v1/reports/summary", a.summary)
	}
	if cfg.ACD != nil {
		mux.HandleFunc("GET /wallboard", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Write(wallboardHTML)
		})
		mux.HandleFunc("GET /api/v1/agents", a.agents)
		mux.HandleFunc("POST /api/v1/agents/{id}/{action}", a.agentAction)
		mux.HandleFunc("GET /api/v1/queues", a.queues)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	return mux
}

type api struct{ cfg Config }

// wallboardHTML is the live wallboard: one self-contained page polling the API.
//
//go:embed static/wallboard.html
var wallboardHTML []byte

func (a *api) healthz(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Health != nil {
		if err := a.cfg.Health(); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": err.Error()})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (a *api) calls(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"calls": a.cfg.Calls.Live()})
}

// cdrs serves GET /api/v1/cdrs?from=&to=&queue=&agent=&disposition=&caller=&limit=&format=json|csv.
func (a *api) cdrs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var f cdr.Filter
	var err error
	if f.From, err = parseTime(q.Get("from")); err != nil {
		writeError(w, http.StatusBadRequest, "from: "+err.Error())
		return
	}
	if f.To, err = parseTime(q.Get("to")); err != nil {
		writeError(w, http.StatusBadRequest, "to: "+err.Error())
		return
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		writeError(w, http.StatusBadRequest, "from must be before to")
		return
	}
	if s := q.Get("limit"); s != "" {
		if f.Limit, err = strconv.Atoi(s); err != nil || f.Limit < 1 || f.Limit > cdr.MaxListLimit {
			writeError(w, http.StatusBadRequest, "limit: want 1-"+strconv.Itoa(cdr.MaxListLimit))
			return
		}
	}
	f.Queue, f.Disposition, f.Caller, f.Agent = q.Get("queue"), cdr.Disposition(q.Get("disposition")), q.Get("caller"), q.Get("agent")
	format := q.Get("format")
	if format != "" && format != "json" && format != "csv" {
		writeError(w, http.StatusBadRequest, "format: want json or csv")
		return
	}
	recs, err := a.cfg.Records.List(r.Context(), f)
	if err != nil {
		a.cfg.Logger.Error("listing records failed", "error", err)
		writeError(w, http.StatusInternalServerError, "records unavailable: "+err.Error())
		return
	}
	if format == "csv" {
		writeCSV(w, recs)
		return
	}
	if recs == nil {
		recs = []cdr.Record{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"cdrs": recs})
}

// parseTime accepts RFC 3339, a date (YYYY-MM-DD, local time) or unix seconds.
func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation(time.DateOnly, s, time.Local); err == nil {
		return t, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0), nil
	}
	return time.Time{}, errors.New("want RFC 3339, YYYY-MM-DD or unix seconds, got " + strconv.Quote(s))
}

var csvHeader = []string{
	"id", "sip_call_id", "direction", "trunk", "caller", "called", "start", "answer", "end",
	"ivr_path", "case_number", "queue", "enqueue", "agent", "connect", "disposition",
	"hangup_side", "hangup_cause", "sip_status", "codec", "node_id",
}

func writeCSV(w http.ResponseWriter, recs []cdr.Record) {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="cdrs.csv"`)
	cw := csv.NewWriter(w)
	cw.Write(csvHeader)
	ts := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.Format(time.RFC3339Nano)
	}
	for _, r := range recs {
		cw.Write([]string{
			r.ID, r.SIPCallID, r.Direction, r.Trunk, r.Caller, r.Called, ts(r.Start), ts(r.Answer), ts(r.End),
			r.IVRPath, r.CaseNumber, r.Queue, ts(r.EnqueueTime), r.Agent, ts(r.Connect), string(r.Disposition),
			r.HangupSide, r.HangupCause, strconv.Itoa(r.SIPStatus), r.Codec, r.NodeID,
		})
	}
	cw.Flush()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// summary serves GET /api/v1/reports/summary?from=&to=&queue=&by=: the figures of
// `hotlined report`, as JSON.
func (a *api) summary(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	opts := a.cfg.Report
	var err error
	if opts.From, err = parseTime(q.Get("from")); err != nil {
		writeError(w, http.StatusBadRequest, "from: "+err.Error())
		return
	}
	if opts.To, err = parseTime(q.Get("to")); err != nil {
		writeError(w, http.StatusBadRequest, "to: "+err.Error())
		return
	}
	if !opts.From.IsZero() && !opts.To.IsZero() && !opts.From.Before(opts.To) {
		writeError(w, http.StatusBadRequest, "from must be before to")
		return
	}
	opts.Queue = q.Get("queue")
	switch by := q.Get("by"); by {
	case "":
	case "hour", "day", "queue", "agent":
		opts.By = cdr.GroupBy(by)
	default:
		writeError(w, http.StatusBadRequest, "by: want hour, day, queue or agent")
		return
	}
	rep, err := cdr.ReportFromStore(r.Context(), a.cfg.Store, opts)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "report: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	rep.WriteJSON(w)
}
