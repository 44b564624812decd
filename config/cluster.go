package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/hotline12345/hotline/ivr"
)

// Defaults of the cluster section.
const (
	DefaultClusterSchema = "hotline_cluster"
	DefaultClusterLease  = 5 * time.Second
	// MinNonceSecret is the shortest shared nonce secret accepted (bytes).
	MinNonceSecret = 16
)

// Cluster runs this node as one of several behind a SIP front (deploy/kamailio), sharing
// one ACD, the agents' registrations and node leases through PostgreSQL
// (docs/ARCHITECTURE.md, "Several nodes"). Absent: one node, everything in memory.
type Cluster struct {
	// DSN of the PostgreSQL holding the shared state; empty: cdr_dsn (which must then be
	// PostgreSQL).
	DSN    string `yaml:"dsn"`
	Schema string `yaml:"schema"` // default hotline_cluster; one schema per cluster
	// Lease: a node that has not renewed its lease for this long is taken over (its agents
	// freed, its waiting callers called back). Default 5s.
	Lease ivr.Duration `yaml:"lease"`
	// Fronts are the SIP proxies (Kamailio) in front of the nodes: addresses or CIDRs.
	// A REGISTER from a front is taken to come from the phone's address in its Path's
	// received parameter (lockout, NAT); calls from a front are not rate limited.
	Fronts []string `yaml:"fronts"`
	// NonceSecret signs digest nonces: the same on every node, so a phone challenged by one
	// node is accepted by another. At least 16 characters.
	NonceSecret string `yaml:"nonce_secret"`
	// HTTPURL is how the other nodes reach this node's API (the cluster-wide live calls);
	// default http://<http.listen>.
	HTTPURL string `yaml:"http_url"`
}

func (c *Cluster) applyDefaults() {
	if c.Schema == "" {
		c.Schema = DefaultClusterSchema
	}
	if c.Lease == 0 {
		c.Lease = ivr.Duration(DefaultClusterLease)
	}
}

// FrontPrefixes are the fronts as prefixes (validated).
func (c *Cluster) FrontPrefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, f := range c.Fronts {
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
		} else if a, err := netip.ParseAddr(f); err == nil {
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	return out
}

// ClusterDSN is the PostgreSQL of the shared state.
func (c *Config) ClusterDSN() string {
	if c.Cluster != nil && c.Cluster.DSN != "" {
		return c.Cluster.DSN
	}
	return c.CDRDSN
}

func (c *Config) validateCluster() []ivr.FieldError {
	cl := c.Cluster
	if cl == nil {
		return nil
	}
	var errs []ivr.FieldError
	add := func(field, problem string) {
		errs = append(errs, ivr.FieldError{Path: "cluster" + field, Problem: problem})
	}
	if dsn := c.ClusterDSN(); !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
		add(".dsn", "want a postgres:// DSN (here or in cdr_dsn): the nodes share their state in PostgreSQL")
	}
	if !nameRe.MatchString(cl.Schema) {
		add(".schema", fmt.Sprintf("want a name of letters, digits, '-' and '_', got %q", cl.Schema))
	}
	if cl.Lease.D() < time.Second || cl.Lease.D() > 5*time.Minute {
		add(".lease", "want 1s to 5m, got "+cl.Lease.D().String())
	}
	for i, f := range cl.Fronts {
		_, perr := netip.ParsePrefix(f)
		_, aerr := netip.ParseAddr(f)
		if perr != nil && aerr != nil {
			add(fmt.Sprintf(".fronts[%d]", i), fmt.Sprintf("want an IP address or CIDR, got %q", f))
		}
	}
	if len(cl.NonceSecret) < MinNonceSecret {
		add(".nonce_secret", "want at least 16 characters, the same on every node")
	}
	if cl.HTTPURL != "" {
		if u, err := url.Parse(cl.HTTPURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add(".http_url", fmt.Sprintf("want an http:// or https:// URL, got %q", cl.HTTPURL))
		}
	}
	return errs
}
