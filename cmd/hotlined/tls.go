package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/hotline12345/hotline/config"
)

// Files of the self-signed SIP TLS certificate made in the data dir at first start.
const (
	selfSignedCert = "sip-tls.crt"
	selfSignedKey  = "sip-tls.key"
)

// sipTLSAddr is where SIP over TLS listens: sip.tls_listen, or (empty) the SIP address
// with the next port, which is optional (a warning if taken); invalid when off.
func sipTLSAddr(cfg *config.Config, sipAddr netip.AddrPort) (addr netip.AddrPort, optional bool) {
	switch cfg.SIP.TLSListen {
	case config.TLSOff:
		return netip.AddrPort{}, false
	case "":
		port := sipAddr.Port()
		if port != 0 {
			port++
		}
		return netip.AddrPortFrom(sipAddr.Addr(), port), true
	}
	return netip.MustParseAddrPort(cfg.SIP.TLSListen), false // validated by config.Load
}

// sipTLSConfig loads the configured certificate, or makes (once) and loads a self-signed
// ECDSA P-256 one in the data dir for host.
func sipTLSConfig(cfg *config.Config, host netip.Addr, log *slog.Logger) (*tls.Config, error) {
	certFile, keyFile := cfg.SIP.TLSCert, cfg.SIP.TLSKey
	if certFile == "" {
		certFile, keyFile = filepath.Join(cfg.DataDir, selfSignedCert), filepath.Join(cfg.DataDir, selfSignedKey)
		if _, err := os.Stat(certFile); errors.Is(err, fs.ErrNotExist) {
			if err := writeSelfSigned(certFile, keyFile, host); err != nil {
				return nil, fmt.Errorf("sip tls: self-signed certificate: %w", err)
			}
			log.Warn("SIP over TLS uses a self-signed certificate made now; set sip.tls_cert and sip.tls_key for production",
				"cert", certFile)
		}
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("sip tls: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, nil
}

func writeSelfSigned(certFile, keyFile string, host netip.Addr) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return err
	}
	hostname, _ := os.Hostname()
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "hotline SIP", Organization: []string{"hotline"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(825 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if hostname != "" {
		tmpl.DNSNames = append(tmpl.DNSNames, hostname)
	}
	if host.IsValid() && !host.IsUnspecified() && !host.IsLoopback() {
		tmpl.IPAddresses = append(tmpl.IPAddresses, host.AsSlice())
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	// The key first, so that a certificate never exists without it.
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}
