package loadtest

import (
	"math"
	"strings"
	"testing"
)

const exposition = `# HELP hotline_rtp_packets_total RTP packets by direction.
# TYPE hotline_rtp_packets_total counter
hotline_rtp_packets_total{direction="in"} 1200
hotline_rtp_packets_total{direction="out"} 5e+03
hotline_calls_active{stage="ivr"} 3
hotline_calls_active{stage="queued"} 4
hotline_rtp_send_lateness_seconds_bucket{le="0.0005"} 90
hotline_rtp_send_lateness_seconds_bucket{le="0.001"} 98
hotline_rtp_send_lateness_seconds_bucket{le="0.002"} 99
hotline_rtp_send_lateness_seconds_bucket{le="+Inf"} 100
hotline_rtp_send_lateness_seconds_sum 0.1
hotline_rtp_send_lateness_seconds_count 100
process_resident_memory_bytes 3.2e+07
odd_metric{path="/a b"} 7 1700000000000
`

func TestParseMetrics(t *testing.T) {
	s, err := ParseMetrics(strings.NewReader(exposition))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]float64{
		`hotline_rtp_packets_total{direction="out"}`: 5000,
		`process_resident_memory_bytes`:              32e6,
		`odd_metric{path="/a b"}`:                    7,
	} {
		if got, ok := s.Value(name); !ok || got != want {
			t.Errorf("%s = %v (%v), want %v", name, got, ok, want)
		}
	}
	if got := s.Sum("hotline_calls_active"); got != 7 {
		t.Errorf("sum of hotline_calls_active = %v, want 7", got)
	}
	h := s.Histogram("hotline_rtp_send_lateness_seconds")
	if len(h) != 4 || h[0].LE != 0.0005 || !math.IsInf(h[3].LE, 1) || h[3].Count != 100 {
		t.Fatalf("histogram %+v", h)
	}
	for _, tc := range []struct {
		q    float64
		want float64
	}{{0.5, 0.0005}, {0.9, 0.0005}, {0.95, 0.001}, {0.99, 0.002}, {0.999, math.Inf(1)}} {
		if got := float64(Quantile(h, tc.q)); got != tc.want {
			t.Errorf("q%g = %v, want %v", tc.q, got, tc.want)
		}
	}
	// Over an interval: only what happened since the earlier scrape counts.
	earlier := []Bucket{{0.0005, 90}, {0.001, 90}, {0.002, 90}, {math.Inf(1), 90}}
	d := HistogramDelta(h, earlier)
	if d[3].Count != 10 || float64(Quantile(d, 0.5)) != 0.001 {
		t.Fatalf("delta %+v: want 10 observations with median ≤ 1 ms", d)
	}
	if got := FormatBound(Quantile(d, 0.99), d); got != "> 2 ms" {
		t.Errorf("formatted p99 %q, want \"> 2 ms\"", got)
	}
	if got := FormatBound(Quantile(nil, 0.99), nil); got != "n/a" {
		t.Errorf("empty histogram: %q", got)
	}
}

// A cluster node's node_id label is dropped, so its series read as a lone node's.
func TestParseMetricsWithoutNodeID(t *testing.T) {
	s, err := ParseMetrics(strings.NewReader(`process_cpu_seconds_total{node_id="node1"} 12.5
hotline_call_setup_seconds_bucket{le="0.1",node_id="node1"} 7
hotline_calls_total{direction="inbound",node_id="node1",outcome="answered"} 3
`))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]float64{
		"process_cpu_seconds_total":                                   12.5,
		`hotline_call_setup_seconds_bucket{le="0.1"}`:                 7,
		`hotline_calls_total{direction="inbound",outcome="answered"}`: 3,
	} {
		if v, ok := s.Value(name); !ok || v != want {
			t.Errorf("%s = %v %v, want %v (samples %v)", name, v, ok, want, s.Samples)
		}
	}
}
