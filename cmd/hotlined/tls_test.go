package main

import (
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A self-signed certificate found near its end at start, or reaching it while the server
// runs, is made anew and served from the next handshake on.
func TestSelfSignedCertificateRenewed(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, selfSignedCert), filepath.Join(dir, selfSignedKey)
	now := time.Now()
	if err := writeSelfSigned(certFile, keyFile, netip.Addr{}, now.Add(-800*24*time.Hour), 810*24*time.Hour); err != nil {
		t.Fatal(err) // ends in 10 days
	}
	clock := now
	c := &certFiles{cert: certFile, key: keyFile, selfSigned: true, now: func() time.Time { return clock }, log: slog.New(slog.DiscardHandler)}
	cfg, err := c.tlsConfig()
	if err != nil {
		t.Fatal(err)
	}
	leaf := served(t, cfg)
	if left := leaf.NotAfter.Sub(now); left < selfSignedValid-48*time.Hour {
		t.Fatalf("served a certificate ending in %v, want one made anew (%v)", left, selfSignedValid)
	}
	first := leaf.SerialNumber
	// 800 days later, the check after certCheckEvery renews it again.
	clock = now.Add(800 * 24 * time.Hour)
	if leaf := served(t, cfg); leaf.SerialNumber.Cmp(first) == 0 || leaf.NotAfter.Before(clock.Add(selfSignedValid-48*time.Hour)) {
		t.Fatalf("at day 800: serial %v ending %v, want a new one", leaf.SerialNumber, leaf.NotAfter)
	}
	if st, err := os.Stat(keyFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v %v, want mode 0600", st.Mode(), err)
	}
}

// An operator's renewed certificate (new files) is served without a restart; broken files
// keep the working certificate.
func TestConfiguredCertificateReloaded(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "sip.crt"), filepath.Join(dir, "sip.key")
	now := time.Now()
	if err := writeSelfSigned(certFile, keyFile, netip.Addr{}, now, 20*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	clock := now
	c := &certFiles{cert: certFile, key: keyFile, now: func() time.Time { return clock }, log: slog.New(slog.DiscardHandler)}
	cfg, err := c.tlsConfig()
	if err != nil {
		t.Fatal(err)
	}
	first := served(t, cfg).SerialNumber
	if c.warned.IsZero() {
		t.Error("a certificate ending in 20 days: no warning")
	}
	if err := writeSelfSigned(certFile, keyFile, netip.Addr{}, now, 365*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	if got := served(t, cfg).SerialNumber; got.Cmp(first) != 0 {
		t.Fatal("files re-read before certCheckEvery")
	}
	clock = clock.Add(certCheckEvery)
	renewed := served(t, cfg)
	if renewed.SerialNumber.Cmp(first) == 0 {
		t.Fatal("the renewed certificate is not served")
	}
	if err := os.WriteFile(certFile, []byte("not PEM"), 0o644); err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(certCheckEvery)
	if got := served(t, cfg).SerialNumber; got.Cmp(renewed.SerialNumber) != 0 {
		t.Fatal("a broken file replaced the working certificate")
	}
}

func served(t *testing.T, cfg *tls.Config) *x509.Certificate {
	t.Helper()
	pair, err := cfg.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil || pair == nil || pair.Leaf == nil {
		t.Fatalf("GetCertificate: %v %v", pair, err)
	}
	return pair.Leaf
}
