package sip

// Path (RFC 3327) in the registrar: the REGISTER's Path values, and the phone's address a
// trusted front (Kamailio's add_path_received) puts in the first one's received parameter.

import (
	"errors"
	"log/slog"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// maxPathValues bounds the Path values kept per REGISTER (each is a Route header of every
// request to the binding).
const maxPathValues = 8

// registerPath returns the Path values of req, in order, each one name-addr as received.
func registerPath(req *sip.Request) ([]string, error) {
	var out []string
	for _, h := range req.GetHeaders("Path") {
		for _, v := range splitHeaderValues(h.Value()) {
			if _, err := parseRouteValue(v); err != nil {
				return nil, err
			}
			out = append(out, v)
		}
	}
	if len(out) > maxPathValues {
		return nil, errors.New("too many Path values")
	}
	return out, nil
}

// splitHeaderValues splits a comma-separated header value at the commas outside <> and
// quotes; empty elements are dropped.
func splitHeaderValues(s string) []string {
	var out []string
	angle, quote, start := false, false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case quote && c == '\\':
			i++
		case c == '"':
			quote = !quote
		case quote:
		case c == '<':
			angle = true
		case c == '>':
			angle = false
		case c == ',' && !angle:
			if v := strings.TrimSpace(s[start:i]); v != "" {
				out = append(out, v)
			}
			start = i + 1
		}
	}
	if v := strings.TrimSpace(s[start:]); v != "" {
		out = append(out, v)
	}
	return out
}

// parseRouteValue parses one Path or Route value (name-addr, or a bare SIP URI).
func parseRouteValue(v string) (sip.Uri, error) {
	var u sip.Uri
	params := sip.NewParams()
	if _, err := sip.ParseAddressValue(v, &u, &params); err != nil {
		return sip.Uri{}, err
	}
	if s := schemeOf(&u); (s != "sip" && s != "sips") || u.Host == "" || u.Wildcard {
		return sip.Uri{}, errors.New("not a SIP URI: " + v)
	}
	return u, nil
}

// pathReceived is the address in the received parameter of a Path value
// ("received=sip:198.51.100.7:5062", possibly URL-escaped, possibly with ";transport=tcp").
func pathReceived(v string) (netip.AddrPort, bool) {
	u, err := parseRouteValue(v)
	if err != nil {
		return netip.AddrPort{}, false
	}
	raw, ok := paramGet(u.UriParams, "received")
	if !ok || raw == "" {
		return netip.AddrPort{}, false
	}
	raw = strings.Trim(raw, `"`)
	if un, err := url.PathUnescape(raw); err == nil {
		raw = un
	}
	var ru sip.Uri
	if !strings.Contains(raw, ":") || sip.ParseUri(raw, &ru) != nil || ru.Host == "" {
		// a bare host:port, as some fronts write it
		if ap, err := netip.ParseAddrPort(raw); err == nil && usableSource(ap.Addr(), int(ap.Port())) {
			return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), true
		}
		return netip.AddrPort{}, false
	}
	addr, err := netip.ParseAddr(strings.Trim(ru.Host, "[]"))
	if err != nil {
		return netip.AddrPort{}, false
	}
	port := ru.Port
	if port == 0 {
		port = 5060
		if schemeOf(&ru) == "sips" {
			port = 5061
		}
	}
	if !usableSource(addr, port) {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(addr.Unmap(), uint16(port)), true
}

// usableSource: an address a phone can send from and be reached at (not 0.0.0.0, not a
// multicast group, port 1-65535).
func usableSource(addr netip.Addr, port int) bool {
	return addr.IsValid() && !addr.IsUnspecified() && !addr.IsMulticast() && port >= 1 && port <= 65535
}

// trustedFront reports whether addr is one of the TrustedFronts.
func (r *Registrar) trustedFront(addr netip.Addr) bool {
	for _, p := range r.cfg.TrustedFronts {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// IsTrustedFront reports whether addr is one of RegistrarConfig.TrustedFronts (for the
// server's per-source REGISTER rate limit, which a front would otherwise trip as a whole).
func (r *Registrar) IsTrustedFront(addr netip.Addr) bool { return r.trustedFront(addr.Unmap()) }

// registerSource is the address a REGISTER counts as coming from: the first Path value's
// received parameter when the packet comes from a trusted front, else the packet source.
func (r *Registrar) registerSource(pkt netip.AddrPort, path []string, log *slog.Logger) netip.AddrPort {
	if len(path) == 0 {
		return pkt
	}
	if !r.trustedFront(pkt.Addr()) {
		if _, ok := pathReceived(path[0]); ok {
			log.Debug("Path received ignored: not from a trusted front")
		}
		return pkt
	}
	if rcv, ok := pathReceived(path[0]); ok {
		return rcv
	}
	return pkt
}

// supportsPath reports whether req's Supported lists the option tag "path".
func supportsPath(req *sip.Request) bool {
	for _, h := range req.GetHeaders("Supported") {
		for _, t := range strings.Split(h.Value(), ",") {
			if strings.EqualFold(strings.TrimSpace(t), "path") {
				return true
			}
		}
	}
	return false
}

// routeDestination is where a request with this first Route value goes: its host and
// port (the default port of its scheme when none), and the transport it names, if any.
func routeDestination(first string) (dest, transport string, err error) {
	u, err := parseRouteValue(first)
	if err != nil {
		return "", "", err
	}
	port := u.Port
	tp, _ := paramGet(u.UriParams, "transport")
	if port == 0 {
		port = 5060
		if schemeOf(&u) == "sips" || strings.EqualFold(tp, "tls") {
			port = 5061
		}
	}
	host := u.Host
	if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
		host = "[" + host + "]"
	}
	return host + ":" + strconv.Itoa(port), strings.ToUpper(tp), nil
}
