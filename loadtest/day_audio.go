package loadtest

import (
	"context"
	"sync"
	"time"

	"github.com/hotline12345/hotline/loadtest/phone"
)

const (
	sideCitizen = 0
	sideAgent   = 1
)

// audioPair holds whether each side heard the other's tone.
type audioPair struct {
	mu    sync.Mutex
	heard [2]bool
	set   [2]bool
	done  chan struct{} // closed when both sides reported
}

func (p *audioPair) report(side int, heard bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.set[side] {
		return
	}
	p.heard[side], p.set[side] = heard, true
	if p.set[0] && p.set[1] {
		close(p.done)
	}
}

func (p *audioPair) both() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.heard[0] && p.heard[1]
}

// audioCheck sends the tone send in short bursts and polls for the tone hear until heard
// or timeout; it reports to pair and keeps sending until the other side has reported too
// (or the timeout), so that each side hears the other while it listens. When it returns,
// the last burst has been sent.
func audioCheck(ctx context.Context, c *phone.Call, send, hear float64, pair *audioPair, side int, timeout time.Duration) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	stop := make(chan struct{})
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if c.SendTone(send, toneChunk) != nil {
				return
			}
		}
	}()
	defer func() {
		close(stop)
		<-sent
	}()
	tick := time.NewTicker(tonePoll)
	defer tick.Stop()
	heard, expired := false, false
listen:
	for {
		if c.DetectTone(hear) > toneThreshold {
			heard = true
			break
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			expired = true
			break listen
		case <-c.Done():
			break listen
		case <-ctx.Done():
			break listen
		}
	}
	pair.report(side, heard)
	if heard && !expired {
		select {
		case <-pair.done:
		case <-deadline.C:
		case <-c.Done():
		case <-ctx.Done():
		}
	}
	return heard
}
