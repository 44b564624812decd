package call

import (
	"context"
	"time"

	"github.com/hotline12345/hotline/media"
)

// Play implements ivr.Media: it plays the named prompts in the caller's language.
func (c *Call) Play(names []string) <-chan struct{} {
	prompts := make([]*media.Prompt, 0, len(names))
	for _, n := range names {
		p, ok := c.m.prompt(n)
		if !ok {
			c.log.Warn("prompt missing", "prompt", n)
			continue
		}
		prompts = append(prompts, p)
	}
	return c.sess.Play(prompts...)
}

// StopPlay implements ivr.Media (barge-in).
func (c *Call) StopPlay() { c.sess.StopPlay() }

// Digits implements ivr.Media: RFC 4733 and SIP INFO digits, merged.
func (c *Call) Digits() <-chan rune { return c.digits }

// Join implements ivr.Queue. Until the ACD exists a queue has no agents: the caller hears
// the join prompt and music on hold until the queue's maximum wait, then the exit prompt.
func (c *Call) Join(ctx context.Context, name string) error {
	q, ok := c.m.cfg.Queues[name]
	if !ok {
		c.log.Error("unknown queue", "queue", name)
		return nil
	}
	enqueued := time.Now()
	c.mu.Lock()
	c.rec.Queue = name
	c.rec.EnqueueTime = enqueued
	c.mu.Unlock()
	c.setStage(StageQueued)
	c.m.metrics.queueJoin(name)
	defer func() { c.m.metrics.queueLeave(name, time.Since(enqueued)) }()

	maxWait := c.m.cfg.Clock.NewTimer(q.MaxWait)
	defer maxWait.Stop()
	done := c.Play([]string{q.JoinPrompt})
	moh, haveMOH := c.m.prompt(q.MusicOnHold)
	for {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-done:
			done = nil
			if haveMOH {
				c.sess.Loop(moh)
			}
		case <-c.digits: // no exit digit configured yet: ignore keys while waiting
		case <-maxWait.C():
			c.sess.StopPlay()
			select {
			case <-c.Play([]string{q.ExitPrompt}):
			case <-ctx.Done():
				return context.Cause(ctx)
			}
			return ErrMaxWait
		}
	}
}
