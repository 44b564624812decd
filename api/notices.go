package api

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/hotline12345/hotline/auth"
	"github.com/hotline12345/hotline/notice"
)

// Notices are the emergency notices (应急公告): notice.Store.
type Notices interface {
	List() []notice.Notice
	Add(n notice.Notice, wav []byte) (notice.Notice, error)
	Remove(id string) (notice.Notice, error)
}

// Reload reloads the configuration: validated first (nothing applied on an error, which
// lists every problem as file:line: field: problem), then applied to new calls. The
// result says what was applied and what needs a restart.
type Reload func(ctx context.Context) (any, error)

// ReloadError is a configuration that did not validate: nothing was applied.
type ReloadError struct{ Problems []string }

func (e *ReloadError) Error() string { return strings.Join(e.Problems, "\n") }

func (a *api) noticeRoutes(mux *http.ServeMux) {
	if a.cfg.Notices != nil {
		supervisor := access{min: auth.Supervisor}
		a.route(mux, "GET /api/v1/notices", supervisor, a.listNotices)
		a.route(mux, "POST /api/v1/notices", access{min: auth.Supervisor, body: a.cfg.MaxImportBody}, a.addNotice)
		a.route(mux, "DELETE /api/v1/notices/{id}", supervisor, a.removeNotice)
	}
	if a.cfg.Reload != nil {
		a.route(mux, "POST /api/v1/config/reload", access{min: auth.Admin}, a.reload)
	}
}

func (a *api) listNotices(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"notices": a.cfg.Notices.List()})
}

// noticeIn is a notice as POSTed: JSON, or a WAV body (Content-Type audio/wav, or any
// audio/ type) with the same fields in the query (routes comma separated).
type noticeIn struct {
	Routes []string `json:"routes"`
	Prompt string   `json:"prompt"`
	Menu   string   `json:"menu"`
	Start  string   `json:"start"`
	End    string   `json:"end"`
	Text   string   `json:"text"`
}

func (a *api) addNotice(w http.ResponseWriter, r *http.Request) {
	var in noticeIn
	var wav []byte
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case strings.HasPrefix(ct, "audio/"):
		var err error
		if wav, err = io.ReadAll(r.Body); err != nil {
			if mb := (*http.MaxBytesError)(nil); errors.As(err, &mb) {
				writeTooLarge(w, mb.Limit)
				return
			}
			writeError(w, http.StatusBadRequest, "body: "+err.Error())
			return
		}
		q := r.URL.Query()
		for _, v := range q["routes"] {
			for _, s := range strings.Split(v, ",") {
				if s = strings.TrimSpace(s); s != "" {
					in.Routes = append(in.Routes, s)
				}
			}
		}
		in.Menu, in.Start, in.End, in.Text = q.Get("menu"), q.Get("start"), q.Get("end"), q.Get("text")
	default: // JSON, whatever the type says (curl -d sends application/x-www-form-urlencoded)
		if !readJSON(w, r, &in) {
			return
		}
	}
	n := notice.Notice{Routes: in.Routes, Prompt: in.Prompt, Menu: in.Menu, Text: in.Text, CreatedBy: principalOf(r).Name}
	var err error
	if n.Start, err = a.parseNoticeTime(in.Start); err != nil {
		writeError(w, http.StatusBadRequest, "start: "+err.Error())
		return
	}
	if n.End, err = a.parseNoticeTime(in.End); err != nil {
		writeError(w, http.StatusBadRequest, "end: "+err.Error())
		return
	}
	n, err = a.cfg.Notices.Add(n, wav)
	switch {
	case errors.Is(err, notice.ErrInvalid):
		writeError(w, http.StatusBadRequest, err.Error())
	case err != nil:
		a.cfg.Logger.Error("notice not saved", "error", err)
		writeError(w, http.StatusInternalServerError, "notice not saved: "+err.Error())
	default:
		writeJSON(w, http.StatusCreated, n)
	}
}

// parseNoticeTime takes what parseTime takes and "YYYY-MM-DD HH:MM" in the hotline's zone.
func (a *api) parseNoticeTime(s string) (time.Time, error) {
	if t, err := time.ParseInLocation("2006-01-02 15:04", s, a.cfg.Location); err == nil {
		return t, nil
	}
	t, err := a.parseTime(s)
	if err != nil {
		return t, errors.New(strings.Replace(err.Error(), "want RFC 3339,", `want RFC 3339, "YYYY-MM-DD HH:MM",`, 1))
	}
	return t, nil
}

func (a *api) removeNotice(w http.ResponseWriter, r *http.Request) {
	n, err := a.cfg.Notices.Remove(r.PathValue("id"))
	switch {
	case errors.Is(err, notice.ErrNotFound):
		writeError(w, http.StatusNotFound, "no notice "+r.PathValue("id"))
	case err != nil:
		writeError(w, http.StatusInternalServerError, err.Error())
	default:
		writeJSON(w, http.StatusOK, n)
	}
}

func (a *api) reload(w http.ResponseWriter, r *http.Request) {
	res, err := a.cfg.Reload(r.Context())
	var re *ReloadError
	switch {
	case errors.As(err, &re):
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{
			"error": "configuration not valid: nothing applied", "problems": re.Problems})
	case err != nil:
		writeError(w, http.StatusInternalServerError, err.Error())
	default:
		writeJSON(w, http.StatusOK, res)
	}
}
