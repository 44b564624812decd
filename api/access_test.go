package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hotline12345/hotline/auth"
	"github.com/hotline12345/hotline/cdr"
)

func TestMaskHelpers(t *testing.T) {
	recs := []cdr.Record{{Caller: "13800138000", Called: "12345"}, {Caller: "12345", Called: "+8613912348000"}}
	maskRecords(recs)
	if recs[0].Caller != "138****8000" || recs[0].Called != "12345" || recs[1].Caller != "12345" || recs[1].Called != "+86139****8000" {
		t.Errorf("maskRecords: %+v", recs)
	}
	evs := []cdr.AgentEvent{{Event: cdr.EventEnterQueue, Data2: "13800138000"}, {Event: cdr.EventConnect, Data2: "13800138000"}}
	maskEvents(evs)
	if evs[0].Data2 != "138****8000" || evs[1].Data2 != "13800138000" {
		t.Errorf("maskEvents: %+v", evs)
	}
}

// The access layer: 401 with WWW-Authenticate and a JSON error, 403 for a
// role below the route's, an agent on its own id only, 413 above the limit.
func TestAccessLayer(t *testing.T) {
	admin, viewer := auth.NewToken(), auth.NewToken()
	authn, err := auth.New([]auth.Token{{Name: "a", Role: auth.Admin, Hash: auth.HashToken(admin)}, {Name: "v", Role: auth.Viewer, Hash: auth.HashToken(viewer)}},
		func(id string) (string, bool) { return "pw" + id, true })
	if err != nil {
		t.Fatal(err)
	}
	a := &api{cfg: Config{Auth: authn, MaxBody: 16}}
	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]string{"who": principalOf(r).Name})
	}
	a.route(mux, "POST /x/{id}", access{min: auth.Supervisor, agent: true}, ok)
	a.route(mux, "GET /open", access{}, ok)
	do := func(method, path, authz, body string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		if authz != "" {
			r.Header.Set("Authorization", authz)
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		return w
	}
	basic := func(u, p string) string {
		r := httptest.NewRequest("GET", "/", nil)
		r.SetBasicAuth(u, p)
		return r.Header.Get("Authorization")
	}
	for _, tc := range []struct {
		method, path, authz, body string
		want                      int
	}{
		{"GET", "/open", "", "", 200},
		{"POST", "/x/1", "", "", 401},
		{"POST", "/x/1", "Bearer nope", "", 401},
		{"POST", "/x/1", "Bearer " + viewer, "", 403},
		{"POST", "/x/1", "Bearer " + admin, "", 200},
		{"POST", "/x/1", "Bearer " + admin, strings.Repeat("x", 17), 413},
		{"POST", "/x/1001", basic("1001", "pw1001"), "", 200},
		{"POST", "/x/1002", basic("1001", "pw1001"), "", 403},
	} {
		w := do(tc.method, tc.path, tc.authz, tc.body)
		if w.Code != tc.want || !strings.Contains(w.Body.String(), "{") {
			t.Errorf("%s %s %q: %d %s, want %d", tc.method, tc.path, tc.authz, w.Code, w.Body, tc.want)
		}
		if w.Code == 401 && w.Header().Get("WWW-Authenticate") == "" {
			t.Errorf("401 without WWW-Authenticate")
		}
	}
}
