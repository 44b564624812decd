package loadtest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Metric names the load tester reads from the server's /metrics.
const (
	mRTPPackets   = "hotline_rtp_packets_total"
	mRTPLost      = "hotline_rtp_lost_total"
	mRTPSkipped   = "hotline_rtp_ticks_skipped_total"
	mLateness     = "hotline_rtp_send_lateness_seconds"
	mSetup        = "hotline_call_setup_seconds"
	mCallsActive  = "hotline_calls_active"
	mCallsTotal   = "hotline_calls_total"
	mRSS          = "process_resident_memory_bytes"
	mCPU          = "process_cpu_seconds_total"
	mGoroutines   = "go_goroutines"
	mGoHeapInuse  = "go_memstats_heap_inuse_bytes"
	scrapeTimeout = 5 * time.Second
)

// scrapeClient opens a connection per scrape: scrapes are rare, and no idle
// connection (and its goroutines) outlives a run.
var scrapeClient = &http.Client{Transport: WithToken(&http.Transport{DisableKeepAlives: true})}

// Scrape is one reading of a Prometheus text exposition: every sample by
// its name and label set exactly as exposed, e.g.
// `hotline_rtp_packets_total{direction="out"}`.
type Scrape struct {
	At      time.Time
	Samples map[string]float64
}

// ScrapeMetrics fetches and parses url (the server's /metrics).
func ScrapeMetrics(ctx context.Context, url string) (*Scrape, error) {
	ctx, cancel := context.WithTimeout(ctx, scrapeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	res, err := scrapeClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("loadtest: scrape %s: %w", url, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("loadtest: scrape %s: status %d", url, res.StatusCode)
	}
	return ParseMetrics(res.Body)
}

// ParseMetrics parses the Prometheus text format (comments skipped,
// timestamps ignored).
func ParseMetrics(r io.Reader) (*Scrape, error) {
	s := &Scrape{At: time.Now(), Samples: map[string]float64{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		// The value follows the name and labels; label values may hold spaces.
		end := strings.LastIndexByte(line, '}')
		rest := line
		name := ""
		if end >= 0 {
			name, rest = line[:end+1], line[end+1:]
		} else {
			i := strings.IndexAny(line, " \t")
			if i < 0 {
				continue
			}
			name, rest = line[:i], line[i:]
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return nil, fmt.Errorf("loadtest: metrics line %q: %w", line, err)
		}
		s.Samples[withoutNodeID(name)] = v
	}
	return s, sc.Err()
}

// withoutNodeID drops the node_id label a cluster node puts on every series: the load
// tester reads one node's metrics at a time, by the names a lone node uses.
func withoutNodeID(name string) string {
	i := strings.Index(name, `node_id="`)
	if i < 0 {
		return name
	}
	j := strings.IndexByte(name[i+len(`node_id="`):], '"')
	if j < 0 {
		return name
	}
	end := i + len(`node_id="`) + j + 1
	switch {
	case end < len(name) && name[end] == ',': // node_id="x",le="1" → le="1"
		end++
	case name[i-1] == ',': // le="1",node_id="x" → le="1"
		i--
	}
	out := name[:i] + name[end:]
	return strings.TrimSuffix(out, "{}")
}

// Value returns a sample; ok is false when it is absent. A nil Scrape has none.
func (s *Scrape) Value(name string) (float64, bool) {
	if s == nil {
		return 0, false
	}
	v, ok := s.Samples[name]
	return v, ok
}

// Get returns a sample or 0.
func (s *Scrape) Get(name string) float64 {
	v, _ := s.Value(name)
	return v
}

// Sum adds every sample of a metric name whatever its labels.
func (s *Scrape) Sum(name string) float64 {
	if s == nil {
		return 0
	}
	var sum float64
	for k, v := range s.Samples {
		if k == name || strings.HasPrefix(k, name+"{") {
			sum += v
		}
	}
	return sum
}

// Bucket is one cumulative histogram bucket.
type Bucket struct {
	LE    float64 // upper bound; +Inf for the last
	Count float64
}

// Histogram returns the cumulative buckets of a histogram without other
// labels, sorted by bound.
func (s *Scrape) Histogram(name string) []Bucket {
	if s == nil {
		return nil
	}
	prefix := name + `_bucket{le="`
	var bs []Bucket
	for k, v := range s.Samples {
		if !strings.HasPrefix(k, prefix) || !strings.HasSuffix(k, `"}`) {
			continue
		}
		le, err := strconv.ParseFloat(k[len(prefix):len(k)-2], 64)
		if err != nil {
			continue
		}
		bs = append(bs, Bucket{LE: le, Count: v})
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].LE < bs[j].LE })
	return bs
}

// HistogramDelta subtracts the buckets of an earlier scrape (nil: none).
func HistogramDelta(later, earlier []Bucket) []Bucket {
	out := make([]Bucket, len(later))
	for i, b := range later {
		out[i] = b
		for _, e := range earlier {
			if e.LE == b.LE {
				out[i].Count -= e.Count
			}
		}
	}
	return out
}

// Quantile returns the upper bound of the bucket holding quantile q, as
// Prometheus histograms allow no better: +Inf when it lies beyond the last
// finite bound, NaN for an empty histogram.
func Quantile(bs []Bucket, q float64) Bound {
	if len(bs) == 0 || bs[len(bs)-1].Count <= 0 {
		return Bound(math.NaN())
	}
	want := math.Max(1, math.Ceil(q*bs[len(bs)-1].Count))
	for _, b := range bs {
		if b.Count >= want {
			return Bound(b.LE)
		}
	}
	return Bound(math.Inf(1))
}

// FormatBound prints a histogram quantile in milliseconds: "≤ 2 ms",
// "> 20 ms" for +Inf (with the last finite bound), "n/a" when empty.
func FormatBound(b Bound, bs []Bucket) string {
	switch v := float64(b); {
	case math.IsNaN(v):
		return "n/a"
	case math.IsInf(v, 1):
		last := 0.0
		for _, b := range bs {
			if !math.IsInf(b.LE, 1) {
				last = b.LE
			}
		}
		return fmt.Sprintf("> %g ms", last*1000)
	}
	return fmt.Sprintf("≤ %g ms", float64(b)*1000)
}

// processCPU returns this process's user+system CPU time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// udpCounters returns the host's UDP InErrors, RcvbufErrors and SndbufErrors
// from /proc/net/snmp (zeros where unavailable): datagrams the kernel dropped
// for full socket buffers, on either side of the loopback.
func udpCounters() (inErrors, rcvbuf, sndbuf int64) {
	b, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return 0, 0, 0
	}
	var head []string
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "Udp: ") {
			continue
		}
		f := strings.Fields(line)[1:]
		if head == nil {
			head = f
			continue
		}
		for i, name := range head {
			if i >= len(f) {
				break
			}
			v, _ := strconv.ParseInt(f[i], 10, 64)
			switch name {
			case "InErrors":
				inErrors = v
			case "RcvbufErrors":
				rcvbuf = v
			case "SndbufErrors":
				sndbuf = v
			}
		}
		break
	}
	return inErrors, rcvbuf, sndbuf
}

// loadAverage returns /proc/loadavg's first three fields ("" if unavailable).
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
