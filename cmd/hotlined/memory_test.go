package main

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// fakeHeap is a heap the release check reads instead of the runtime's.
type fakeHeap struct{ free, held, live, allocs uint64 }

const mib = 1 << 20

// The release check's decisions: a steady load never triggers it; a burst does not while it
// lasts (unless a lot of heap is free); the first quiet interval after it releases, once, and
// the follow-up releases once more; an idle server is left alone.
func TestMemoryReleaserDecisions(t *testing.T) {
	h := &fakeHeap{free: 10 * mib, held: 60 * mib, live: 30 * mib}
	r := newMemoryReleaser(prometheus.NewRegistry())
	r.readHeap = func() (uint64, uint64, uint64, uint64) { return h.free, h.held, h.live, h.allocs }
	r.freeOS = func() { h.held, h.free = h.live+10*mib, 0 }
	r.allocs = 0
	now := time.Unix(0, 0)
	tick := func(allocated uint64) {
		h.allocs += allocated
		now = now.Add(releaseEvery)
		r.check(now)
	}
	runs := func() int { return int(testutil.ToFloat64(r.runs)) }
	for range 10 {
		tick(20 * mib) // steady calls
	}
	if runs() != 0 {
		t.Fatalf("%d releases under a steady load", runs())
	}
	h.held, h.live, h.free = 1600*mib, 100*mib, 40*mib
	tick(1500 * mib) // the storm
	if runs() != 0 {
		t.Fatalf("%d releases during the storm (the load had not fallen, little heap free)", runs())
	}
	tick(20 * mib) // the first quiet interval
	if runs() != 1 {
		t.Fatalf("%d releases after the storm, want 1", runs())
	}
	if b := testutil.ToFloat64(r.released); b != float64(1600*mib-110*mib) {
		t.Fatalf("%.0f MiB returned, want 1490", b/mib)
	}
	tick(20 * mib)
	if runs() != 1 {
		t.Fatalf("%d releases: a quiet interval after a release must not release again", runs())
	}
	for range releaseFollowUp/releaseEvery - 1 {
		tick(20 * mib)
	}
	if runs() != 2 {
		t.Fatalf("%d releases %s after the fall, want 2 (the follow-up)", runs(), releaseFollowUp+releaseEvery)
	}
	for range 20 {
		tick(0)
	}
	if runs() != 2 {
		t.Fatalf("%d releases on an idle server, want no more than 2", runs())
	}
	h.free = 100 * mib // a lot of heap free, whatever the load: released
	tick(20 * mib)
	if runs() != 3 {
		t.Fatalf("%d releases with %d MiB free, want 3", runs(), h.free/mib)
	}
}

// With the runtime's own heap: after a burst of allocation (a churning live set of ~100 MiB)
// the check returns the burst's heap to the kernel, at the latest in the first quiet interval
// (during the burst already if the scavenger has not caught up and much of it is free).
func TestMemoryReleaserAfterABurst(t *testing.T) {
	debug.FreeOSMemory() // what other tests of this binary left is not this test's burst
	r := newMemoryReleaser(prometheus.NewRegistry())
	now := time.Unix(0, 0)
	tick := func() { now = now.Add(releaseEvery); r.check(now) }
	tick() // baseline
	keep := make([][]byte, 100)
	for i := range 1500 { // 1.5 GiB allocated, 100 MiB live at any time
		b := make([]byte, 1<<20)
		b[0] = byte(i)
		keep[i%len(keep)] = b
	}
	tick() // the busy interval
	runtime.KeepAlive(keep)
	keep = nil
	tick() // the first quiet interval
	if n := testutil.ToFloat64(r.runs); n < 1 {
		t.Fatalf("%v releases after the burst, want at least 1", n)
	}
	if b := testutil.ToFloat64(r.released); b < 64<<20 {
		t.Fatalf("%.0f MiB returned, want at least 64", b/(1<<20))
	}
}
