package main

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/hotline12345/hotline/loadtest"
)

func TestLoopbackURL(t *testing.T) {
	for u, want := range map[string]bool{
		"http://127.0.0.1:8080": true, "http://localhost:8080": true, "http://[::1]:8080/metrics": true,
		"http://10.0.0.5:8080": false, "http://hotline.example:8080": false, "::": false,
	} {
		if got := loopbackURL(u); got != want {
			t.Errorf("loopbackURL(%q) = %v, want %v", u, got, want)
		}
	}
}

// --token reaches the server as a bearer token.
func TestUseTokenSendsBearer(t *testing.T) {
	got := make(chan string, 1)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got <- r.Header.Get("Authorization") }))
	defer s.Close()
	if err := useToken("hl_test", s.URL); err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: loadtest.WithToken(nil)}
	defer c.CloseIdleConnections()
	res, err := c.Get(s.URL + "/api/v1/agents")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if a := <-got; a != "Bearer hl_test" {
		t.Errorf("Authorization %q, want Bearer hl_test", a)
	}
}
