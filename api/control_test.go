package api

import (
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/hotline12345/hotline/auth"
	"github.com/hotline12345/hotline/call"
)

// fakeControl answers as a call with agent 1001 on call "c1" would.
type fakeControl struct{ got []string }

func (f *fakeControl) Monitor(id, sup, mode string) error {
	f.got = append(f.got, "monitor "+id+" "+sup+" "+mode)
	switch {
	case id != "c1":
		return call.ErrNoCall
	case mode != call.ModeListen && mode != call.ModeWhisper && mode != call.ModeBarge:
		return call.ErrBadMode
	case sup != "1010":
		return call.ErrNotSupervisor
	}
	return nil
}

func (f *fakeControl) StopMonitor(id string) error { return call.ErrNoMonitor }

func (f *fakeControl) Conference(id, entry, agent string) error {
	f.got = append(f.got, "conference "+id+" "+entry+" "+agent)
	switch {
	case agent != "" && agent != "1001":
		return call.ErrNotYourCall
	case entry != "12315":
		return call.ErrUnknownEntry
	}
	return nil
}

func (f *fakeControl) LeaveConference(id, agent string) error { return call.ErrNoConference }

// The control routes: the roles (supervisor for monitor; the call's agent or a supervisor
// for conference), body checks, and each call error mapped to its status.
func TestControlRoutes(t *testing.T) {
	sup, viewer := auth.NewToken(), auth.NewToken()
	authn, err := auth.New([]auth.Token{{Name: "s", Role: auth.Supervisor, Hash: auth.HashToken(sup)}, {Name: "v", Role: auth.Viewer, Hash: auth.HashToken(viewer)}},
		func(id string) (string, bool) { return "pw" + id, true })
	if err != nil {
		t.Fatal(err)
	}
	fc := &fakeControl{}
	h := New(Config{Auth: authn, Control: fc})
	basic := func(u string) string {
		r := httptest.NewRequest("GET", "/", nil)
		r.SetBasicAuth(u, "pw"+u)
		return r.Header.Get("Authorization")
	}
	for _, tc := range []struct {
		method, path, authz, body string
		want                      int
	}{
		{"POST", "/api/v1/calls/c1/monitor", "Bearer " + sup, `{"mode":"listen","supervisor":"1010"}`, 202},
		{"PATCH", "/api/v1/calls/c1/monitor", "Bearer " + sup, `{"mode":"barge","supervisor":"1010"}`, 202},
		{"POST", "/api/v1/calls/c1/monitor", "Bearer " + sup, `{"mode":"shout","supervisor":"1010"}`, 400},
		{"POST", "/api/v1/calls/c1/monitor", "Bearer " + sup, `{"mode":"listen","supervisor":"1002"}`, 403},
		{"POST", "/api/v1/calls/c1/monitor", "Bearer " + sup, `{"mode":"listen"}`, 400},
		{"POST", "/api/v1/calls/c1/monitor", "Bearer " + sup, `{"mode":"listen","supervisor":"1010","x":1}`, 400},
		{"POST", "/api/v1/calls/c9/monitor", "Bearer " + sup, `{"mode":"listen","supervisor":"1010"}`, 404},
		{"POST", "/api/v1/calls/c1/monitor", "Bearer " + viewer, `{"mode":"listen","supervisor":"1010"}`, 403},
		{"POST", "/api/v1/calls/c1/monitor", basic("1001"), `{"mode":"listen","supervisor":"1010"}`, 403},
		{"DELETE", "/api/v1/calls/c1/monitor", "Bearer " + sup, ``, 404},
		{"POST", "/api/v1/calls/c1/conference", basic("1001"), `{"entry":"12315"}`, 202},
		{"POST", "/api/v1/calls/c1/conference", basic("1002"), `{"entry":"12315"}`, 403},
		{"POST", "/api/v1/calls/c1/conference", "Bearer " + sup, `{"entry":"13800138000"}`, 404},
		{"POST", "/api/v1/calls/c1/conference", "Bearer " + sup, `{}`, 400},
		{"POST", "/api/v1/calls/c1/conference", "", `{"entry":"12315"}`, 401},
		{"DELETE", "/api/v1/calls/c1/conference", basic("1001"), ``, 409},
	} {
		r := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
		if tc.authz != "" {
			r.Header.Set("Authorization", tc.authz)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tc.want || !strings.Contains(w.Body.String(), "{") {
			t.Errorf("%s %s (%s): %d %s, want %d", tc.method, tc.path, tc.body, w.Code, w.Body, tc.want)
		}
	}
	if want := "conference c1 12315 1001"; !slices.Contains(fc.got, want) {
		t.Errorf("calls %q: the agent's own id was not passed (%q)", fc.got, want)
	}
}
