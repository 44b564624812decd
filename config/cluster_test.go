package config

import (
	"strings"
	"testing"
	"time"
)

const testCluster = `cdr_dsn: postgres://postgres@127.0.0.1/test
cluster:
  lease: 3s
  fronts: [127.0.0.1, 10.0.0.0/24]
  nonce_secret: 0123456789abcdef
`

func TestClusterDefaults(t *testing.T) {
	c, err := Load(name, []byte(defaultDoc(t)+testCluster), Known{})
	if err != nil {
		t.Fatal(err)
	}
	cl := c.Cluster
	if cl == nil || cl.Schema != DefaultClusterSchema || cl.Lease.D() != 3*time.Second || c.ClusterDSN() != "postgres://postgres@127.0.0.1/test" {
		t.Fatalf("cluster %+v dsn %q", cl, c.ClusterDSN())
	}
	if p := cl.FrontPrefixes(); len(p) != 2 || p[0].String() != "127.0.0.1/32" || p[1].String() != "10.0.0.0/24" {
		t.Fatalf("fronts %v", p)
	}
	if d, _ := Load(name, []byte(defaultDoc(t)), Known{}); d.Cluster != nil {
		t.Fatal("a config without cluster: is a cluster")
	}
}

// Each bad cluster field is refused with its file:line.
func TestClusterErrors(t *testing.T) {
	for _, tc := range []struct{ old, new, field, problem string }{
		{"cdr_dsn: postgres://postgres@127.0.0.1/test", "cdr_dsn: \"\"", "cluster", "want a postgres:// DSN"},
		{"  lease: 3s", "  lease: 100ms", "cluster.lease", "want 1s to 5m"},
		{"  fronts: [127.0.0.1, 10.0.0.0/24]", "  fronts: [kamailio.local]", "cluster.fronts[0]", `want an IP address or CIDR, got "kamailio.local"`},
		{"  nonce_secret: 0123456789abcdef", "  nonce_secret: short", "cluster.nonce_secret", "at least 16 characters"},
		{"  lease: 3s", "  lease: 3s\n  schema: \"a b\"", "cluster.schema", "want a name"},
	} {
		doc := edit(t, defaultDoc(t)+testCluster, tc.old, tc.new)
		_, err := Load(name, []byte(doc), Known{})
		if err == nil {
			t.Errorf("%q: loaded", tc.new)
			continue
		}
		got := problems(t, err)
		if len(got) != 1 || !strings.HasPrefix(got[0].Field, tc.field) || !strings.Contains(got[0].Problem, tc.problem) || got[0].Line == 0 {
			t.Errorf("%q: %v", tc.new, err)
		}
	}
}
