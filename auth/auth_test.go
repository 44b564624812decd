package auth

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRoles(t *testing.T) {
	for _, tc := range []struct {
		r, min Role
		want   bool
	}{
		{Admin, Viewer, true}, {Admin, Supervisor, true}, {Admin, Admin, true},
		{Supervisor, Viewer, true}, {Supervisor, Admin, false},
		{Viewer, Viewer, true}, {Viewer, Supervisor, false},
		{Agent, Viewer, false}, {Agent, Agent, true}, {Admin, Agent, false},
		{"", Viewer, false},
	} {
		if got := tc.r.AtLeast(tc.min); got != tc.want {
			t.Errorf("%q.AtLeast(%q) = %v, want %v", tc.r, tc.min, got, tc.want)
		}
	}
	if _, err := ParseRole("agent"); err == nil {
		t.Error("ParseRole accepts agent: agents sign in with their SIP credentials")
	}
	if r, err := ParseRole("supervisor"); err != nil || r != Supervisor {
		t.Errorf("ParseRole(supervisor) = %q, %v", r, err)
	}
	if Viewer.SeesNumbers() || Supervisor.SeesNumbers() || Agent.SeesNumbers() || !Admin.SeesNumbers() {
		t.Error("only admin sees full numbers")
	}
}

func TestTokens(t *testing.T) {
	tok, tok2 := NewToken(), NewToken()
	if tok == tok2 || !strings.HasPrefix(tok, "hl_") || len(tok) < 40 {
		t.Fatalf("NewToken: %q, %q", tok, tok2)
	}
	h := HashToken(tok)
	if !strings.HasPrefix(h, "sha256:") || len(h) != len("sha256:")+64 {
		t.Fatalf("HashToken: %q", h)
	}
	for _, bad := range []string{"", "sha256:", "md5:" + h[7:], "sha256:" + h[8:], "sha256:zz" + h[9:]} {
		if _, err := ParseHash(bad); !errors.Is(err, ErrBadHash) {
			t.Errorf("ParseHash(%q): %v", bad, err)
		}
	}
	if _, err := New([]Token{{Name: "x", Role: Admin, Hash: "plain"}}, nil); err == nil {
		t.Error("New accepts a token that is not a hash")
	}
	if _, err := New([]Token{{Name: "x", Role: "root", Hash: h}}, nil); err == nil {
		t.Error("New accepts an unknown role")
	}
	a, err := New([]Token{{Name: "ops", Role: Admin, Hash: h}, {Name: "wall", Role: Viewer, Hash: HashToken(tok2)}},
		func(id string) (string, bool) { return map[string]string{"1001": "agent1001"}[id], id == "1001" })
	if err != nil {
		t.Fatal(err)
	}
	req := func(header string) *http.Request {
		r := httptest.NewRequest("GET", "/", nil)
		if header != "" {
			r.Header.Set("Authorization", header)
		}
		return r
	}
	basic := func(u, p string) string {
		r := httptest.NewRequest("GET", "/", nil)
		r.SetBasicAuth(u, p)
		return r.Header.Get("Authorization")
	}
	for _, tc := range []struct {
		header string
		want   Principal
		err    error
	}{
		{"", Principal{}, ErrNoCredentials},
		{"Bearer " + tok, Principal{Name: "ops", Role: Admin}, nil},
		{"bearer " + tok2, Principal{Name: "wall", Role: Viewer}, nil},
		{"Bearer " + tok + "x", Principal{}, ErrBadCredentials},
		{"Bearer " + h, Principal{}, ErrBadCredentials}, // the hash is not the token
		{"Bearer ", Principal{}, ErrBadCredentials},
		{basic("1001", "agent1001"), Principal{Name: "1001", Role: Agent, AgentID: "1001"}, nil},
		{basic("1001", "agent1002"), Principal{}, ErrBadCredentials},
		{basic("1002", ""), Principal{}, ErrBadCredentials},
		{basic("", ""), Principal{}, ErrBadCredentials},
		{"Basic !!!", Principal{}, ErrBadCredentials},
		{"Digest x", Principal{}, ErrBadCredentials},
	} {
		p, err := a.Authenticate(req(tc.header))
		if p != tc.want || !errors.Is(err, tc.err) && !(err == nil && tc.err == nil) {
			t.Errorf("%q: %+v, %v; want %+v, %v", tc.header, p, err, tc.want, tc.err)
		}
	}
}
