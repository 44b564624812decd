package main

import (
	"bufio"
	"context"
	"log/slog"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hotline12345/hotline/config"
)

// The server's memory policy. A call storm leaves a heap sized for the storm; Go keeps
// those pages until its background scavenger slowly returns them, and a GC cycle (which
// frees the storm's garbage) may not come for two minutes once allocation stops. So:
//   - a soft limit (debug.SetMemoryLimit) below what the machine can give, so the
//     collector works harder rather than the kernel's OOM killer ending every call;
//   - a check every releaseEvery that hands free heap pages back to the kernel once more
//     than releaseAbove of them sit idle (debug.FreeOSMemory: a collection, then every
//     free page returned).

const (
	releaseEvery = 10 * time.Second
	releaseAbove = 64 << 20
)

// setMemoryLimit applies the configured soft limit, or half the memory of the machine or
// its cgroup; GOMEMLIMIT in the environment wins. It returns the limit in force (0: none).
func setMemoryLimit(cfg *config.Config, log *slog.Logger) int64 {
	if os.Getenv("GOMEMLIMIT") != "" {
		limit := debug.SetMemoryLimit(-1)
		log.Info("memory limit from GOMEMLIMIT", "limit_mib", limit>>20)
		return limit
	}
	limit, from := int64(0), "memory_limit"
	if cfg.MemoryLimit != "" {
		limit, _ = config.ParseSize(cfg.MemoryLimit) // validated with the config
	} else if total := availableMemory(); total > 0 {
		limit, from = total/2, "half the machine's memory"
	}
	if limit <= 0 {
		return 0
	}
	debug.SetMemoryLimit(limit)
	log.Info("memory limit set", "limit_mib", limit>>20, "from", from)
	return limit
}

// availableMemory is the cgroup v2 limit when there is one, else the machine's memory.
func availableMemory() int64 {
	if b, err := os.ReadFile("/sys/fs/cgroup/memory.max"); err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && n > 0 {
			return n
		}
	}
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if kb, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(kb), "kB")), 10, 64)
			if err == nil {
				return n << 10
			}
		}
	}
	return 0
}

// memoryReleaser returns idle heap pages to the kernel (see above) until ctx is done.
type memoryReleaser struct {
	released prometheus.Counter
	runs     prometheus.Counter
	sample   []metrics.Sample
	allocs   uint64                               // cumulative heap allocations at the last check
	rates    [releaseWindow / releaseEvery]uint64 // allocations per check over the last minute
	next     int
	followUp time.Time // when to release once more after a fall (zero: none due)
	// readHeap and freeOS are the runtime's (runtime/metrics, debug.FreeOSMemory); tests
	// replace them to drive the decisions with a heap of their own.
	readHeap func() (free, held, live, allocs uint64)
	freeOS   func()
}

// releaseFollowUp is when a release after the load's fall is repeated: SIP transactions
// and the keys that absorb retransmissions outlive the last call by up to 64×T1 (32 s),
// and no collection may come to free them once the server is idle.
const releaseFollowUp = 40 * time.Second

// releaseWindow is how far back the release check looks for the load's peak.
const releaseWindow = time.Minute

func newMemoryReleaser(reg prometheus.Registerer) *memoryReleaser {
	r := &memoryReleaser{
		released: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hotline_memory_returned_bytes_total",
			Help: "Heap memory handed back to the kernel by the server's release check (after call storms).",
		}),
		runs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hotline_memory_releases_total",
			Help: "Times the release check collected garbage and returned idle heap to the kernel.",
		}),
		sample: []metrics.Sample{
			{Name: "/memory/classes/heap/free:bytes"},     // free, not yet returned
			{Name: "/memory/classes/total:bytes"},         // everything the runtime mapped
			{Name: "/memory/classes/heap/released:bytes"}, // returned already
			{Name: "/gc/heap/live:bytes"},                 // live at the last collection
			{Name: "/gc/heap/allocs:bytes"},               // allocated since start
		},
	}
	r.readHeap, r.freeOS = r.readRuntime, debug.FreeOSMemory
	reg.MustRegister(r.released, r.runs)
	_, _, _, r.allocs = r.read() // the first interval counts from now, not from start
	return r
}

// read returns the free heap not yet returned, what the runtime holds from the kernel, the
// live heap at the last collection and the allocations since start.
func (r *memoryReleaser) read() (free, held, live, allocs uint64) { return r.readHeap() }

func (r *memoryReleaser) readRuntime() (free, held, live, allocs uint64) {
	metrics.Read(r.sample)
	var v [5]uint64
	for i, s := range r.sample {
		if s.Value.Kind() == metrics.KindUint64 {
			v[i] = s.Value.Uint64()
		}
	}
	return v[0], v[1] - min(v[1], v[2]), v[3], v[4]
}

// check runs once per releaseEvery. It returns memory when more than releaseAbove of the
// heap is free, or when the load has fallen (this interval allocated under a quarter of
// the minute's peak) and the process holds more than releaseAbove beyond its live heap:
// the storm's garbage, which no collection may come to free for minutes; and once more
// releaseFollowUp after such a fall.
func (r *memoryReleaser) check(now time.Time) {
	free, held, live, allocs := r.read()
	rate := allocs - min(allocs, r.allocs)
	r.allocs = allocs
	peak := rate
	for _, x := range r.rates {
		peak = max(peak, x)
	}
	r.rates[r.next] = rate
	r.next = (r.next + 1) % len(r.rates)
	fell := 4*rate < peak && held >= live+releaseAbove
	due := !r.followUp.IsZero() && !now.Before(r.followUp)
	if free < releaseAbove && !fell && !due {
		return
	}
	switch {
	case fell:
		r.followUp = now.Add(releaseFollowUp)
	case due:
		r.followUp = time.Time{}
	}
	r.freeOS()
	if _, after, _, _ := r.read(); after < held {
		r.released.Add(float64(held - after))
	}
	r.runs.Inc()
	clear(r.rates[:]) // the peak is spent: the next release needs a new rise and fall
}

func (r *memoryReleaser) run(ctx context.Context) {
	t := time.NewTicker(releaseEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			r.check(now)
		}
	}
}
