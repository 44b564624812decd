package cdr

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"golang.org/x/sync/errgroup"
)

// reportEvents are the events a report reads.
var reportEvents = []string{EventLogin, EventLogout, EventPause, EventUnpause, EventRingNoAnswer,
	EventEnterQueue, EventConnect, EventAbandon, EventExitWithTimeout, EventExitEmpty, EventExitWithKey, EventOverflow,
	EventUnhold, EventCompleteCaller, EventCompleteAgent, EventTransfer, EventWrapUpEnd, EventRating}

// reportRecordScanner is an optional Store capability: Scan, filling only
// the fields a report reads (times, queue, agent, direction, disposition,
// durations, transfers, satisfaction, visits, and the outbound target and
// parent), cheaply.
type reportRecordScanner interface {
	scanReport(ctx context.Context, f Filter, fn func(*Record) error) error
}

// ReportFromStore computes the report of the records and events in s,
// with the same figures as Compute on the same data. Records are streamed
// (Store.Scan), not loaded; when both From and To are set the window is
// split into parts scanned in parallel. Events are read page by page, from
// EventLookback before From (to see logins that began earlier) to
// EventLookahead after To (to see how the window's last visits ended).
func ReportFromStore(ctx context.Context, s Store, opts ReportOptions) (Report, error) {
	opts.defaults()
	parts := 1
	if !opts.From.IsZero() && !opts.To.IsZero() && opts.To.Sub(opts.From) >= time.Hour {
		parts = min(runtime.GOMAXPROCS(0), 8)
	}
	accs := make([]*accumulator, parts)
	g, gctx := errgroup.WithContext(ctx)
	step := opts.To.Sub(opts.From) / time.Duration(parts)
	for i := range parts {
		a := newAccumulator(opts)
		accs[i] = a
		// No queue in the store's filter: the accumulator keeps the calls
		// that visited the queue, first or later.
		f := Filter{From: opts.From, To: opts.To}
		if parts > 1 {
			f.From = opts.From.Add(time.Duration(i) * step)
			if i < parts-1 {
				f.To = opts.From.Add(time.Duration(i+1) * step)
			}
		}
		g.Go(func() error {
			add := func(r *Record) error {
				a.add(r)
				return nil
			}
			if rs, ok := s.(reportRecordScanner); ok {
				return rs.scanReport(gctx, f, add)
			}
			return s.Scan(gctx, f, add)
		})
	}
	ev := newEventAccumulator(opts)
	g.Go(func() error {
		f := EventFilter{Events: reportEvents}
		if !opts.From.IsZero() {
			f.From = opts.From.Add(-EventLookback)
		}
		if !opts.To.IsZero() {
			f.To = opts.To.Add(EventLookahead)
		}
		return eachEvent(gctx, s, f, func(e *AgentEvent) { ev.add(e) })
	})
	if err := g.Wait(); err != nil {
		return Report{}, err
	}
	for _, o := range accs[1:] {
		accs[0].merge(o)
	}
	return accs[0].finish(ev), nil
}

// eachEvent pages through ListEvents (MaxListLimit at a time) and calls fn
// for every event matching f, in time order.
func eachEvent(ctx context.Context, s Store, f EventFilter, fn func(*AgentEvent)) error {
	f.Limit = MaxListLimit
	seen := map[string]bool{} // IDs at the page boundary's time
	for {
		page, err := s.ListEvents(ctx, f)
		if err != nil {
			return err
		}
		for i := range page {
			if !seen[page[i].ID] {
				fn(&page[i])
			}
		}
		if len(page) < f.Limit {
			return nil
		}
		// Next page from the last time seen; skip the IDs already read at
		// that exact time. (A page of one time only would loop: refuse.)
		last := page[len(page)-1].Time
		clear(seen)
		for _, e := range page {
			if e.Time.Equal(last) {
				seen[e.ID] = true
			}
		}
		if page[0].Time.Equal(last) {
			return fmt.Errorf("cdr: more than %d agent events at %s: cannot page through them", f.Limit, last)
		}
		f.From = last
	}
}
