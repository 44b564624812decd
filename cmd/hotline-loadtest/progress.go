package main

import (
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/hotline12345/hotline/loadtest"
)

// progress shows a run as it goes: a bar of the calls set up (or failed) out of those
// planned, with the live concurrency, failures, loss and queue of the last second.
type progress struct {
	bar      *progressbar.ProgressBar
	started  int
	failures int
}

// newProgress draws on w (the terminal's stderr); quiet draws nothing.
func newProgress(w io.Writer, total int, quiet bool) *progress {
	if quiet {
		return &progress{}
	}
	bar := progressbar.NewOptions(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetWidth(24),
		progressbar.OptionShowCount(),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionSetDescription("calls"),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
	)
	return &progress{bar: bar}
}

// update takes one second's sample.
func (p *progress) update(s loadtest.Sample) {
	p.started += s.Setups + s.Failures
	p.failures += s.Failures
	if p.bar == nil {
		return
	}
	p.bar.Describe(describe(s, p.failures))
	p.bar.Set(p.started)
}

// describe is the live part of the progress line.
func describe(s loadtest.Sample, failures int) string {
	return fmt.Sprintf("active %d · queued %d · failed %d · loss %.2f%% · setup p99 %s",
		s.Active, s.Waiting, failures, s.LossPercent, s.SetupP99)
}

// finish closes the bar, filled.
func (p *progress) finish() {
	if p.bar != nil {
		p.bar.Finish()
	}
}

// end closes the bar: filled when the run completed (err nil), else left where it stopped.
func (p *progress) end(err error) {
	switch {
	case p.bar == nil:
	case err == nil:
		p.bar.Finish()
	default:
		p.bar.Exit()
	}
}
