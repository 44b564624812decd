package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/hotline12345/hotline/auth"
	"github.com/hotline12345/hotline/cdr"
	"github.com/hotline12345/hotline/mask"
)

// access is who may use a route and what it costs.
type access struct {
	// min is the least role that may call the route; "" = public (no
	// credentials asked).
	min auth.Role
	// agent lets an agent (HTTP Basic with its SIP credentials) call the
	// route: on routes with an {id} only for its own id; elsewhere the
	// handler narrows what it shows to the agent's own.
	agent bool
	// export marks a route that shows full citizens' numbers to an admin:
	// each such read is audited.
	export bool
	// personal marks a route that hands out personal data whatever the role
	// (a recording of a citizen's voice): each read is audited.
	personal bool
	// body bounds the request body; 0 = Config.MaxBody.
	body int64
}

// Auditor takes the audit log's rows; it must not block (AuditWriter).
type Auditor interface {
	Audit(cdr.AuditEntry)
}

type principalKey struct{}

// principalOf is the caller of r as the access layer identified it. Without
// an Authenticator (Config.Auth nil: handler tests) every caller is admin.
func principalOf(r *http.Request) auth.Principal {
	if p, ok := r.Context().Value(principalKey{}).(auth.Principal); ok {
		return p
	}
	return auth.Principal{}
}

// route registers h for pattern behind the access layer: authentication,
// the role check, the body limit and the audit log.
func (a *api) route(mux *http.ServeMux, pattern string, ac access, h http.HandlerFunc) {
	if ac.body == 0 {
		ac.body = a.cfg.MaxBody
	}
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		rec := &statusWriter{ResponseWriter: w}
		p, ok := a.admit(rec, r, ac)
		if ok {
			if r.ContentLength > ac.body {
				writeTooLarge(rec, ac.body)
			} else {
				r.Body = http.MaxBytesReader(rec, r.Body, ac.body)
				h(rec, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
			}
		}
		if a.cfg.Audit != nil && (changesState(r.Method) || ac.export && ok && p.Role.SeesNumbers() || ac.personal) {
			a.cfg.Audit.Audit(cdr.AuditEntry{
				Time: time.Now(), Who: p.Name, Role: string(p.Role), Source: r.RemoteAddr,
				Action: r.Pattern, Target: r.URL.RequestURI(), Result: rec.status(),
			})
		}
	})
}

// admit authenticates r and checks its role for ac; it answers 401 or 403
// itself and reports false.
func (a *api) admit(w http.ResponseWriter, r *http.Request, ac access) (auth.Principal, bool) {
	if ac.min == "" {
		return auth.Principal{}, true
	}
	if a.cfg.Auth == nil {
		return auth.Principal{Name: "open", Role: auth.Admin}, true
	}
	p, err := a.cfg.Auth.Authenticate(r)
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="hotline"`)
		msg := "authentication required: send Authorization: Bearer TOKEN (or an agent's SIP id and password as Basic)"
		if !errors.Is(err, auth.ErrNoCredentials) {
			msg = "invalid credentials"
		}
		writeError(w, http.StatusUnauthorized, msg)
		return auth.Principal{}, false
	}
	allowed := p.Role.AtLeast(ac.min)
	if p.Role == auth.Agent && ac.agent {
		id := r.PathValue("id")
		allowed = id == "" || id == p.AgentID
	}
	if !allowed {
		what := "role " + string(p.Role) + " may not " + r.Method + " " + r.URL.Path
		if p.Role == auth.Agent {
			what = "agent " + p.AgentID + " may act only on itself"
		}
		writeError(w, http.StatusForbidden, what)
		return p, false
	}
	return p, true
}

func changesState(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

func writeTooLarge(w http.ResponseWriter, limit int64) {
	size := strconv.FormatInt(limit, 10) + " bytes"
	if limit >= 1<<20 && limit%(1<<20) == 0 {
		size = strconv.FormatInt(limit>>20, 10) + " MiB"
	}
	writeError(w, http.StatusRequestEntityTooLarge, "body: larger than "+size)
}

// statusWriter remembers the status a handler answered.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusWriter) status() int {
	if s.code == 0 {
		return http.StatusOK
	}
	return s.code
}

// maskNumber hides a citizen's number for roles without the right to see it
// (mask.Number). Numbers of 5 digits or fewer are the hotline's own service
// numbers (12345, 110), not personal data, and are shown as they are.
func maskNumber(s string) string {
	if len(s) <= 5 {
		return s
	}
	return mask.Number(s)
}

// maskRecords masks the citizen's side of each record: the caller of an
// inbound call, the called number of an outbound one.
func maskRecords(recs []cdr.Record) {
	for i := range recs {
		recs[i].Caller, recs[i].Called = maskNumber(recs[i].Caller), maskNumber(recs[i].Called)
	}
}

// maskEvents masks the caller's number ENTERQUEUE carries (Data2).
func maskEvents(evs []cdr.AgentEvent) {
	for i := range evs {
		if evs[i].Event == cdr.EventEnterQueue {
			evs[i].Data2 = maskNumber(evs[i].Data2)
		}
	}
}
