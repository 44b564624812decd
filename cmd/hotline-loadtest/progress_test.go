package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/hotline12345/hotline/loadtest"
)

func TestProgressCountsAndDescribes(t *testing.T) {
	var b bytes.Buffer
	p := newProgress(&b, 10, false)
	p.update(loadtest.Sample{Active: 3, Setups: 3})
	p.update(loadtest.Sample{Active: 4, Setups: 2, Failures: 1, Waiting: 2, LossPercent: 0.5, SetupP99: loadtest.Dur(12 * time.Millisecond)})
	p.finish()
	if p.started != 6 || p.failures != 1 {
		t.Fatalf("started %d failures %d", p.started, p.failures)
	}
	out := b.String()
	for _, want := range []string{"active 4", "queued 2", "failed 1", "loss 0.50%", "setup p99 12ms"} {
		if !strings.Contains(out, want) {
			t.Errorf("progress %q lacks %q", out, want)
		}
	}
	q := newProgress(&b, 10, true)
	q.update(loadtest.Sample{Setups: 1})
	q.finish()
	if q.started != 1 {
		t.Error("a quiet progress still counts")
	}
}
