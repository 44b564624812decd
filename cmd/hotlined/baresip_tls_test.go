package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hotline12345/hotline/loadtest/phone"
)

// baresip registers as agent 1001 over SIP TLS (the server's self-signed certificate, made
// in the data dir at start), is rung over its TLS connection when a citizen presses 1,
// answers, and hears the citizen.
func TestBaresipAgentOverTLS(t *testing.T) {
	needBaresip(t)
	t.Parallel()
	s := startServer(t, acdTestConfig(t))
	tlsAddr := s.sip.TLSAddr()
	if !tlsAddr.IsValid() {
		t.Fatal("no SIP TLS listener")
	}
	if _, err := os.Stat(filepath.Join(s.cfg.DataDir, selfSignedCert)); err != nil {
		t.Fatalf("self-signed certificate: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bs := startBaresipAgentAt(t, ctx, s, tlsAddr.String()+";transport=tls", "", "") // registered and ready
	if b := s.registrar.Bindings("1001")[0]; !strings.EqualFold(b.Transport, "TLS") {
		t.Fatalf("binding %+v: want transport TLS", b)
	}
	citizen := citizenToConsult(t, s, phone.Config{})
	waitAgentState(t, s, "1001", "on_call")
	waitTone(t, citizen, 600, "citizen (baresip's tone over a TLS-signalled call)")
	if err := citizen.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	waitAgentState(t, s, "1001", "wrap_up")
	// Our BYE reached baresip over its TLS connection: libre ends a session on a received
	// BYE with ECONNRESET, which baresip prints as "Connection reset by peer".
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(bs.out.String(), "session closed: Connection reset by peer"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("baresip's call did not end with our BYE:\n%s", bs.out.String())
		}
	}
	rec := s.records(t, 1)[0]
	if rec.Agent != "1001" || rec.Disposition != "answered" {
		t.Fatalf("record %+v: want answered by 1001", rec)
	}
}

// The self-signed certificate is made once and reused; SIP over TLS answers OPTIONS;
// tls_listen: off has no TLS listener.
func TestSIPTLSListener(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	certPath := filepath.Join(s.cfg.DataDir, selfSignedCert)
	first, err := os.ReadFile(certPath)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(s.cfg.DataDir, selfSignedKey)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v, want mode 0600", fi, err)
	}
	conn, err := tls.Dial("tcp", s.sip.TLSAddr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if cert := conn.ConnectionState().PeerCertificates[0]; cert.PublicKeyAlgorithm != x509.ECDSA {
		t.Fatalf("certificate key %v, want ECDSA", cert.PublicKeyAlgorithm)
	}
	local := conn.LocalAddr().String()
	fmt.Fprintf(conn, "OPTIONS sip:hotline@%s SIP/2.0\r\nVia: SIP/2.0/TLS %s;branch=z9hG4bK-tls1\r\nFrom: <sip:probe@%s>;tag=1\r\nTo: <sip:hotline@%s>\r\nCall-ID: tls-options-1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
		s.sip.TLSAddr(), local, local, s.sip.TLSAddr())
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil || !strings.HasPrefix(string(buf[:n]), "SIP/2.0 200 OK") {
		t.Fatalf("OPTIONS over TLS: %q, %v", buf[:n], err)
	}
	// A second start on the same data dir keeps the certificate.
	s.shutdownNow()
	s2 := startServer(t, "", func(o *options) { o.DataDir = s.cfg.DataDir })
	if again, err := os.ReadFile(certPath); err != nil || string(again) != string(first) {
		t.Fatalf("certificate remade at the second start (%v)", err)
	}
	if !s2.sip.TLSAddr().IsValid() {
		t.Fatal("no TLS listener at the second start")
	}
	off := startServer(t, testConfig(t, `tls_listen: ""`, "tls_listen: off"))
	if off.sip.TLSAddr().IsValid() {
		t.Fatal("tls_listen: off still listens")
	}
}
