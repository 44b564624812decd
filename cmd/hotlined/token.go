package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/hotline12345/hotline/auth"
	"github.com/hotline12345/hotline/config"
)

// adminTokenFile is where the generated admin token lives, in the data dir.
const adminTokenFile = "admin.token"

// tokenMain is `hotlined token [--name NAME] [--role ROLE]`: it prints a new
// token and the config line that holds its hash. Only the hash goes into
// hotline.yaml; the token is shown once.
func tokenMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hotlined token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("name", "ops", "the token's name (the audit log's who)")
	role := fs.String("role", "admin", "viewer, supervisor or admin")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if _, err := auth.ParseRole(*role); err != nil {
		fmt.Fprintln(stderr, "hotlined token: --role:", err)
		return 2
	}
	tok := auth.NewToken()
	fmt.Fprintf(stdout, "token: %s\n# add under http.tokens in hotline.yaml (only the hash is stored):\n  - {name: %s, role: %s, hash: %q}\n",
		tok, *name, *role, auth.HashToken(tok))
	return 0
}

// apiTokens are the API's bearer tokens: the configured ones, or, when none
// is configured, the admin token of DATA_DIR/admin.token, generated (mode
// 0600) at first start. The log says where the file is, never the token.
func apiTokens(cfg *config.Config, log *slog.Logger) ([]auth.Token, error) {
	var out []auth.Token
	for _, t := range cfg.HTTP.Tokens {
		out = append(out, auth.Token{Name: t.Name, Role: auth.Role(t.Role), Hash: t.Hash})
	}
	if len(out) > 0 {
		return out, nil
	}
	path := filepath.Join(cfg.DataDir, adminTokenFile)
	tok, err := readAdminToken(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		tok = auth.NewToken()
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("admin token: %w", err)
		}
		_, err = f.WriteString(tok + "\n")
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("admin token: %w", err)
		}
		log.Info("no API token configured: generated an admin token; send it as Authorization: Bearer", "file", path)
	case err != nil:
		return nil, err
	default:
		log.Info("no API token configured: using the admin token", "file", path)
	}
	return []auth.Token{{Name: adminTokenFile, Role: auth.Admin, Hash: auth.HashToken(tok)}}, nil
}

// readAdminToken reads the token of path; a file others may read is
// refused, like ssh refuses such a key.
func readAdminToken(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("admin token: %s is readable by others (mode %04o); chmod 600 it", path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("admin token: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if len(tok) < 20 {
		return "", fmt.Errorf("admin token: %s holds no token (delete it to have a new one generated)", path)
	}
	return tok, nil
}

// warnPlainHTTP warns loudly when the API listens beyond loopback without
// TLS: tokens and citizens' numbers would cross the network in clear.
func warnPlainHTTP(cfg *config.Config, log *slog.Logger) {
	ap, err := netip.ParseAddrPort(cfg.HTTP.Listen)
	if err != nil || ap.Addr().IsLoopback() || cfg.HTTP.TLSCert != "" {
		return
	}
	log.Warn("!!! THE HTTP API LISTENS BEYOND LOOPBACK WITHOUT TLS: tokens, agent passwords and citizens' numbers cross the network in clear; set http.tls_cert and http.tls_key !!!",
		"http", cfg.HTTP.Listen)
}
