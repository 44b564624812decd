package main

import (
	"bytes"
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
	"sync"
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

// sipTLSConfig serves the configured certificate, or a self-signed ECDSA P-256 one made
// in the data dir for host (at first start, and again when it nears its end).
func sipTLSConfig(cfg *config.Config, host netip.Addr, log *slog.Logger) (*tls.Config, error) {
	certs := &certFiles{cert: cfg.SIP.TLSCert, key: cfg.SIP.TLSKey, host: host, now: time.Now,
		log: log.With("caller", "sip-tls")}
	if certs.cert == "" {
		certs.cert, certs.key = filepath.Join(cfg.DataDir, selfSignedCert), filepath.Join(cfg.DataDir, selfSignedKey)
		certs.selfSigned = true
	}
	return certs.tlsConfig()
}

// httpTLSConfig serves http.tls_cert and tls_key, re-read when they change.
func httpTLSConfig(cfg *config.Config, log *slog.Logger) (*tls.Config, error) {
	certs := &certFiles{cert: cfg.HTTP.TLSCert, key: cfg.HTTP.TLSKey, now: time.Now, log: log.With("caller", "http-tls")}
	return certs.tlsConfig()
}

// Certificate upkeep: the files are looked at again at most once a minute (at a handshake);
// a self-signed certificate is made anew this long before it ends; a configured one that
// ends within renewWarn is warned about once a day.
const (
	certCheckEvery   = time.Minute
	selfSignedValid  = 825 * 24 * time.Hour
	selfSignedRenew  = 30 * 24 * time.Hour
	renewWarn        = 30 * 24 * time.Hour
	renewWarnRepeats = 24 * time.Hour
)

// certFiles is a certificate and key in PEM files, loaded again when the files change: an
// operator's renewed certificate (certbot, a CA's rotation) is served from the next
// handshake on, without a restart and without dropping a call.
type certFiles struct {
	cert, key  string
	selfSigned bool       // made and renewed by us (sip-tls.crt in the data dir)
	host       netip.Addr // of a self-signed one
	now        func() time.Time
	log        *slog.Logger

	mu       sync.Mutex
	pair     *tls.Certificate
	loaded   []byte // the certificate file as loaded (compared, not its mtime: two writes within one clock tick share one)
	checked  time.Time
	warned   time.Time
	notAfter time.Time
}

func (c *certFiles) tlsConfig() (*tls.Config, error) {
	if err := c.refresh(c.now()); err != nil {
		return nil, err
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: c.get}, nil
}

// get is the handshake's tls.Config.GetCertificate: the loaded pair, refreshed first when
// certCheckEvery has passed; a refresh that fails keeps the pair that works (and logs).
func (c *certFiles) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	now := c.now()
	c.mu.Lock()
	due := now.Sub(c.checked) >= certCheckEvery
	c.mu.Unlock()
	if due {
		if err := c.refresh(now); err != nil {
			c.log.Error("certificate not reloaded; the previous one is served", "cert", c.cert, "err", err)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pair, nil
}

// refresh loads the files when the certificate changed since the last load; a
// self-signed certificate that is missing or near its end is made anew first.
func (c *certFiles) refresh(now time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.checked = now
	err := c.load()
	if c.selfSigned && (errors.Is(err, fs.ErrNotExist) || err == nil && c.notAfter.Sub(now) < selfSignedRenew) {
		if err := writeSelfSigned(c.cert, c.key, c.host, now, selfSignedValid); err != nil {
			return fmt.Errorf("sip tls: self-signed certificate: %w", err)
		}
		c.log.Warn("SIP over TLS uses a self-signed certificate made now; set sip.tls_cert and sip.tls_key for production",
			"cert", c.cert, "renewed", c.pair != nil)
		err = c.load()
	}
	if err != nil {
		return err
	}
	if left := c.notAfter.Sub(now); !c.selfSigned && left < renewWarn && now.Sub(c.warned) >= renewWarnRepeats {
		c.warned = now
		c.log.Warn("certificate ends soon: renew it (the new files are read without a restart)",
			"cert", c.cert, "not_after", c.notAfter, "days_left", int(left.Hours()/24))
	}
	return nil
}

// load reads the pair again when the certificate file's bytes differ from the loaded
// ones (c.mu held).
func (c *certFiles) load() error {
	certPEM, err := os.ReadFile(c.cert)
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	if c.pair != nil && bytes.Equal(certPEM, c.loaded) {
		return nil
	}
	pair, err := tls.LoadX509KeyPair(c.cert, c.key)
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	if c.pair != nil {
		c.log.Info("certificate reloaded", "cert", c.cert, "not_after", pair.Leaf.NotAfter)
	}
	c.pair, c.loaded, c.notAfter = &pair, certPEM, pair.Leaf.NotAfter
	return nil
}

// writeSelfSigned writes a self-signed certificate valid from now for validity, and its
// key, replacing both files whole (a handshake reading them never sees half of one).
func writeSelfSigned(certFile, keyFile string, host netip.Addr, now time.Time, validity time.Duration) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return err
	}
	hostname, _ := os.Hostname()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "hotline SIP", Organization: []string{"hotline"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(validity),
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
	if err := writeReplace(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	return writeReplace(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

// writeReplace writes data to a temporary file beside path and renames it over path.
func writeReplace(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	if err := os.Chmod(tmp, mode); err != nil { // WriteFile keeps an old file's mode
		return err
	}
	return os.Rename(tmp, path)
}
