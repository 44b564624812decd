package main

import (
	"flag"
	"net"
	"net/netip"
	"net/url"
	"os"

	"github.com/hotline12345/hotline/loadtest"
)

// defaultDataDir is where `go run ./cmd/hotlined` keeps its data, and its
// admin.token, relative to the working directory.
const defaultDataDir = "./data"

// tokenFlag registers --token: the server's API token.
func tokenFlag(fs *flag.FlagSet) *string {
	return fs.String("token", os.Getenv("HOTLINE_TOKEN"),
		"the server's API token (default $HOTLINE_TOKEN; else, for a loopback --api, "+defaultDataDir+"/admin.token, where `go run ./cmd/hotlined` writes it)")
}

// useToken makes the requests to each of urls carry token; without one and
// with a loopback API it tries the admin token a server started in this
// directory generated. A missing token is not an error here: the server's
// 401 says what is missing.
func useToken(token string, urls ...string) error {
	if token == "" && len(urls) > 0 && loopbackURL(urls[0]) {
		var err error
		if token, err = loadtest.ReadAdminToken(defaultDataDir); err != nil {
			return err
		}
	}
	for _, u := range urls {
		if u != "" {
			loadtest.UseToken(u, token)
		}
	}
	return nil
}

func loopbackURL(s string) bool {
	u, err := url.Parse(s)
	if err != nil {
		return false
	}
	host, _, err := net.SplitHostPort(u.Host)
	if err != nil {
		host = u.Host
	}
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}
