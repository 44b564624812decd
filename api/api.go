// Package api is the HTTP face of hotline: JSON API, Prometheus /metrics and /healthz.
package api

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/hotline12345/hotline/auth"
	"github.com/hotline12345/hotline/call"
	"github.com/hotline12345/hotline/cdr"
	"github.com/hotline12345/hotline/cluster"
)

// Records lists call records.
type Records interface {
	List(ctx context.Context, f cdr.Filter) ([]cdr.Record, error)
}

// Events lists agent and queue events.
type Events interface {
	ListEvents(ctx context.Context, f cdr.EventFilter) ([]cdr.AgentEvent, error)
}

// Calls lists the calls in progress.
type Calls interface {
	Live() []call.LiveCall
}

// Health reports whether the server takes calls; a non-nil error makes /healthz 503.
type Health func() error

// Config wires the handler.
type Config struct {
	Records Records
	Store   cdr.Store // for reports; nil disables /api/v1/reports/summary
	// Events serves /api/v1/events; nil takes Store (nil both: no endpoint).
	Events Events
	Report cdr.ReportOptions
	// Location is the hotline's time zone (the config's timezone:): for
	// dates without an offset in from= and to=, and the default of reports
	// (unless Report.Location is set). Default cdr.DefaultLocation().
	Location *time.Location
	// QueueNames are the queues' display names (咨询) by key (consult), for
	// /api/v1/queues and the wallboard.
	QueueNames map[string]string
	Calls      Calls
	ACD        ACD
	Health     Health
	Gatherer   prometheus.Gatherer
	Logger     *slog.Logger

	// Control acts on live calls: monitor and conference (control.go); nil: no such routes.
	Control CallControl

	// Campaigns serves /api/v1/campaigns (campaigns.go); nil: those routes answer 404.
	Campaigns Campaigns

	// Auth identifies callers (access.go); nil: every request is admin,
	// for tests of the handlers only (the server always sets it).
	Auth *auth.Authenticator
	// MetricsOpen serves /metrics without credentials.
	MetricsOpen bool
	// Audit takes a row for every state-changing request and every read of
	// full numbers; nil: none written. AuditLog serves /api/v1/audit (nil: 404).
	Audit    Auditor
	AuditLog cdr.AuditLog
	// DataDir holds the recordings that /api/v1/recordings/{id} serves (recordings.go);
	// "" or no Records: that route answers 404.
	DataDir string
	// Debug (Go's profiler, --pprof) is served under /debug/pprof/ to admins; nil: not at all.
	Debug http.Handler
	// Feed serves the webhooks' routes and the SSE event stream (feed.go);
	// nil: those routes answer 404. StreamHeartbeat: DefaultStreamHeartbeat.
	Feed            Feed
	StreamHeartbeat time.Duration
	// MaxBody bounds request bodies (default DefaultMaxBody); MaxImportBody
	// those of campaign creation and target import (default MaxCampaignBody).
	MaxBody, MaxImportBody int64
	// Notices serves /api/v1/notices (notices.go); nil: 404.
	Notices Notices
	// Reload serves POST /api/v1/config/reload; nil: 404.
	Reload Reload
	// Nodes serves GET /api/v1/cluster/nodes (cluster mode); nil: 404.
	Nodes Nodes
}

// Nodes lists the nodes of a cluster with their leases.
type Nodes interface {
	Nodes(ctx context.Context) ([]cluster.NodeView, error)
}

// DefaultMaxBody is Config.MaxBody's default.
const DefaultMaxBody = 1 << 20

// New returns the HTTP handler of the API.
func New(cfg Config) http.Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Location == nil {
		cfg.Location = cdr.DefaultLocation()
	}
	if cfg.Report.Location == nil {
		cfg.Report.Location = cfg.Location
	}
	if cfg.Events == nil && cfg.Store != nil {
		cfg.Events = cfg.Store
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.MaxImportBody <= 0 {
		cfg.MaxImportBody = MaxCampaignBody
	}
	a := &api{cfg: cfg}
	mux := http.NewServeMux()
	public, viewer := access{}, access{min: auth.Viewer}
	a.route(mux, "GET /healthz", public, a.healthz)
	metrics := viewer
	if cfg.MetricsOpen {
		metrics = public
	}
	a.route(mux, "GET /metrics", metrics, promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelError)}).ServeHTTP)
	a.route(mux, "GET /api/v1/calls", access{min: auth.Supervisor}, a.calls)
	a.route(mux, "GET /api/v1/cdrs", access{min: auth.Viewer, agent: true, export: true}, a.cdrs)
	if cfg.Store != nil {
		a.route(mux, "GET /api/v1/reports/summary", viewer, a.summary)
	}
	if cfg.Events != nil {
		a.route(mux, "GET /api/v1/events", access{min: auth.Viewer, export: true}, a.events)
	}
	if cfg.AuditLog != nil {
		a.route(mux, "GET /api/v1/audit", access{min: auth.Admin}, a.audit)
	}
	if cfg.ACD != nil {
		// The page holds no data: it asks for a token and sends it with its data calls.
		a.route(mux, "GET /wallboard", public, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Referrer-Policy", "no-referrer")
			w.Write(wallboardHTML)
		})
		a.route(mux, "GET /api/v1/agents", viewer, a.agents)
		a.route(mux, "GET /api/v1/agents/{id}", access{min: auth.Viewer, agent: true}, a.agent)
		a.route(mux, "POST /api/v1/agents/{id}/{action}", access{min: auth.Supervisor, agent: true}, a.agentAction)
		a.route(mux, "GET /api/v1/queues", viewer, a.queues)
	}
	if cfg.Nodes != nil {
		a.route(mux, "GET /api/v1/cluster/nodes", viewer, func(w http.ResponseWriter, r *http.Request) {
			nodes, err := cfg.Nodes.Nodes(r.Context())
			if err != nil {
				writeError(w, http.StatusServiceUnavailable, "cluster state unavailable: "+err.Error())
				return
			}
			writeJSON(w, http.StatusOK, map[string]any{"nodes": nodes})
		})
	}
	a.campaignRoutes(mux)
	a.noticeRoutes(mux)
	if cfg.DataDir != "" && cfg.Records != nil {
		a.route(mux, "GET /api/v1/recordings/{id}", access{min: auth.Supervisor, personal: true}, a.recording)
	}
	a.registerFeed(mux)
	a.controlRoutes(mux)
	if cfg.Debug != nil {
		a.route(mux, "/debug/pprof/", access{min: auth.Admin}, cfg.Debug.ServeHTTP)
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
	live := a.cfg.Calls.Live()
	if !principalOf(r).Role.SeesNumbers() {
		for i := range live {
			live[i].Caller, live[i].Called = maskNumber(live[i].Caller), maskNumber(live[i].Called)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"calls": live})
}

// cdrs serves GET /api/v1/cdrs?from=&to=&queue=&agent=&disposition=&caller=&limit=&format=json|csv.
func (a *api) cdrs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var f cdr.Filter
	var format string
	var err error
	if f.From, f.To, f.Limit, format, err = a.listParams(q); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	f.Queue, f.Disposition, f.Caller, f.Agent = q.Get("queue"), cdr.Disposition(q.Get("disposition")), q.Get("caller"), q.Get("agent")
	f.Direction = q.Get("direction") // inbound, survey, callback
	p := principalOf(r)
	if p.Role == auth.Agent {
		f.Agent = p.AgentID // an agent sees its own calls only
	}
	if f.Caller != "" && !p.Role.SeesNumbers() { // a search by number would tell whether that citizen called
		writeError(w, http.StatusForbidden, "caller: only an admin may search by the citizen's number")
		return
	}
	recs, err := a.cfg.Records.List(r.Context(), f)
	if !p.Role.SeesNumbers() {
		maskRecords(recs)
	}
	writeList(a, w, "cdrs", format, recs, err, cdr.WriteRecordsCSV)
}

// writeList answers a listing: {"<what>": [...]} or CSV (format "csv",
// written by toCSV), or a 500 if err says the listing failed.
func writeList[T any](a *api, w http.ResponseWriter, what, format string, list []T, err error, toCSV func(io.Writer, []T) error) {
	if err != nil {
		a.cfg.Logger.Error("listing "+what+" failed", "error", err)
		writeError(w, http.StatusInternalServerError, what+" unavailable: "+err.Error())
		return
	}
	if format == "csv" {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="`+what+`.csv"`)
		toCSV(w, list)
		return
	}
	if list == nil {
		list = []T{}
	}
	writeJSON(w, http.StatusOK, map[string]any{what: list})
}

// listParams reads the parameters /api/v1/cdrs and /api/v1/events share:
// from, to, limit and format (json, the default, or csv).
func (a *api) listParams(q url.Values) (from, to time.Time, limit int, format string, err error) {
	if from, to, err = a.window(q); err != nil {
		return from, to, 0, "", err
	}
	if s := q.Get("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit < 1 || limit > cdr.MaxListLimit {
			return from, to, 0, "", errors.New("limit: want 1-" + strconv.Itoa(cdr.MaxListLimit))
		}
	}
	format = q.Get("format")
	if format != "" && format != "json" && format != "csv" {
		return from, to, 0, "", errors.New("format: want json or csv")
	}
	return from, to, limit, format, nil
}

// window reads from= and to=: each may be empty (open), and from must be
// before to.
func (a *api) window(q url.Values) (from, to time.Time, err error) {
	if from, err = a.parseTime(q.Get("from")); err != nil {
		return from, to, errors.New("from: " + err.Error())
	}
	if to, err = a.parseTime(q.Get("to")); err != nil {
		return from, to, errors.New("to: " + err.Error())
	}
	if !from.IsZero() && !to.IsZero() && !from.Before(to) {
		return from, to, errors.New("from must be before to")
	}
	return from, to, nil
}

// parseTime accepts RFC 3339, a date (YYYY-MM-DD, in the hotline's time
// zone) or unix seconds.
func (a *api) parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation(time.DateOnly, s, a.cfg.Location); err == nil {
		return t, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0), nil
	}
	return time.Time{}, errors.New("want RFC 3339, YYYY-MM-DD or unix seconds, got " + strconv.Quote(s))
}

// events serves GET /api/v1/events?from=&to=&agent=&queue=&call_id=&event=&limit=&format=json|csv:
// the agent and queue log (cdr.AgentEvent), oldest first. event takes one
// or more names, comma separated or repeated (event=LOGIN,LOGOUT).
func (a *api) events(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var f cdr.EventFilter
	var format string
	var err error
	if f.From, f.To, f.Limit, format, err = a.listParams(q); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	f.AgentID, f.Queue, f.CallID = q.Get("agent"), q.Get("queue"), q.Get("call_id")
	if f.Events, err = eventNames(q["event"]); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	evs, err := a.cfg.Events.ListEvents(r.Context(), f)
	if !principalOf(r).Role.SeesNumbers() {
		maskEvents(evs)
	}
	writeList(a, w, "events", format, evs, err, cdr.WriteEventsCSV)
}

// eventNames reads event= values: names, comma separated or repeated,
// case-insensitive; an unknown name is an error.
func eventNames(vals []string) ([]string, error) {
	var out []string
	for _, v := range vals {
		for name := range strings.SplitSeq(v, ",") {
			name = strings.ToUpper(strings.TrimSpace(name))
			if name == "" {
				continue
			}
			if !slices.Contains(cdr.EventNames, name) {
				return nil, errors.New("event: unknown event " + strconv.Quote(name) + "; want one of " + strings.Join(cdr.EventNames, ", "))
			}
			out = append(out, name)
		}
	}
	return out, nil
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
	if opts.From, opts.To, err = a.window(q); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
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
