package call

import (
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
