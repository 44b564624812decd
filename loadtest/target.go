package loadtest

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
)

// LoopbackAddrPort parses HOST:PORT and checks that HOST is a loopback IP
// address or "localhost" (taken as 127.0.0.1). Names are not resolved: a
// name that a resolver could point elsewhere is refused.
func LoopbackAddrPort(s string) (netip.AddrPort, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%w: target %q: want IP:PORT", ErrConfig, s)
	}
	if strings.EqualFold(host, "localhost") {
		host = "127.0.0.1"
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%w: %q is not an IP address", ErrNotLoopback, host)
	}
	ip = ip.Unmap()
	if !ip.IsLoopback() {
		return netip.AddrPort{}, fmt.Errorf("%w: %s", ErrNotLoopback, ip)
	}
	ap, err := netip.ParseAddrPort(net.JoinHostPort(ip.String(), port))
	if err != nil || ap.Port() == 0 {
		return netip.AddrPort{}, fmt.Errorf("%w: target %q: bad port", ErrConfig, s)
	}
	return ap, nil
}

// LoopbackIP checks that s is a loopback IP address.
func LoopbackIP(s string) (netip.Addr, error) {
	if strings.EqualFold(s, "localhost") {
		s = "127.0.0.1"
	}
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%w: %q is not an IP address", ErrNotLoopback, s)
	}
	if ip = ip.Unmap(); !ip.IsLoopback() {
		return netip.Addr{}, fmt.Errorf("%w: %s", ErrNotLoopback, ip)
	}
	return ip, nil
}

// LoopbackURL checks that an http:// URL (the server's /metrics) points at a
// loopback address.
func LoopbackURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: metrics URL %q: want http://IP:PORT/metrics", ErrConfig, s)
	}
	host := u.Hostname()
	if _, err := LoopbackIP(host); err != nil {
		return nil, fmt.Errorf("metrics URL: %w", err)
	}
	return u, nil
}
