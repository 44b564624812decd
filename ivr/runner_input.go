package ivr

import (
	"fmt"
	"slices"
)

// The handlers of the states that take the caller's input (runner_fsm.go).

// prompt (prompting) starts an attempt: it plays the menu's prompts, which a
// digit stops (barge-in) and answers. A digit kept from the failure prompt
// answers at once: the caller already did, so the prompts are not replayed.
func (c *callRun) prompt() error {
	c.keys = c.keys[:0]
	if d, ok := c.takePending(); ok {
		return c.onDigit(d)
	}
	m := &c.menu
	prompts := m.Prompts
	if len(m.Greeting) > 0 && !c.greeted[c.cur] && !c.r.NoGreeting {
		if c.greeted == nil {
			c.greeted = map[string]bool{}
		}
		c.greeted[c.cur] = true
		prompts = append(slices.Clip(m.Greeting), prompts...)
	}
	if len(prompts) == 0 {
		return c.fire(evPromptDone)
	}
	d, got, err := c.playAll(prompts, true)
	switch {
	case err != nil:
		return err
	case got:
		return c.onDigit(d)
	}
	return c.fire(evPromptDone)
}

// waitFirst (waiting): the prompts ended; no digit within Menu.Timeout is a
// failure.
func (c *callRun) waitFirst() error {
	d, expired, err := c.read(c.menu.Timeout)
	switch {
	case err != nil:
		return err
	case expired:
		return c.failed(EventTimeout, "")
	}
	return c.onDigit(d)
}

// collect (collecting): an input menu's entry goes on; silence for
// InterDigitTimeout completes it.
func (c *callRun) collect() error {
	d, expired, err := c.read(c.menu.Input.InterDigitTimeout)
	switch {
	case err != nil:
		return err
	case expired:
		return c.finishEntry(string(c.keys))
	}
	return c.onDigit(d)
}

// read returns the next digit (a kept one first), or expired when d passes
// without one.
func (c *callRun) read(d Duration) (digit rune, expired bool, err error) {
	t := c.clock.NewTimer(d.D())
	defer t.Stop()
	if digit, ok := c.takePending(); ok {
		return digit, false, nil
	}
	for {
		select {
		case <-c.ctx.Done():
			return 0, false, c.ctx.Err()
		case <-t.C():
			return 0, true, nil
		case digit, ok := <-c.digits:
			if !ok {
				c.digitsClosed()
				continue
			}
			c.noInput = 0
			return digit, false, nil
		}
	}
}

// onDigit takes one key as the answer of the current attempt: a choice, or
// a key of an input menu's entry.
func (c *callRun) onDigit(d rune) error {
	m := &c.menu
	key := string(d)
	if m.Input == nil {
		s, ok := m.Options[key]
		if !ok {
			return c.failed(EventInvalid, key)
		}
		a, err := ParseAction(s)
		if err != nil {
			return fmt.Errorf("menu %s option %s: %w", c.cur, key, err)
		}
		return c.choose(a, key)
	}
	if key == m.Input.Terminator {
		return c.finishEntry(string(c.keys) + key)
	}
	c.keys = append(c.keys, d)
	if len(c.keys) >= m.Input.MaxDigits {
		return c.finishEntry(string(c.keys))
	}
	return c.fire(evDigit)
}

// finishEntry ends an input menu's entry; raw includes a pressed terminator.
func (c *callRun) finishEntry(raw string) error {
	in := c.menu.Input
	if len(c.keys) < in.MinDigits {
		return c.failed(EventInvalid, raw)
	}
	a, err := ParseAction(in.Next)
	if err != nil {
		return fmt.Errorf("menu %s input next: %w", c.cur, err)
	}
	if in.Store != "" {
		c.res.Vars[in.Store] = string(c.keys)
	}
	return c.choose(a, raw)
}

// choose: the caller's input leads to act.
func (c *callRun) choose(act Action, input string) error {
	c.step(c.cur, input, EventDigit)
	c.next = act
	return c.fire(evChoose)
}

// failed counts a failure of the attempt: why is EventInvalid or EventTimeout.
func (c *callRun) failed(why, input string) error {
	c.failures++
	c.failure = why
	c.step(c.cur, input, why)
	if why == EventTimeout {
		return c.fire(evTimeout)
	}
	return c.fire(evInvalid)
}

// fail (failing) plays the invalid or timeout prompt (a digit stops it and
// is kept for the next attempt's answer), then replays the menu, or runs its
// Fallback once the failures reach MaxRetries.
func (c *callRun) fail() error {
	m := &c.menu
	prompt := m.InvalidPrompt
	if c.failure == EventTimeout {
		prompt = m.TimeoutPrompt
	}
	if prompt != "" {
		d, got, err := c.playAll([]string{prompt}, true)
		if err != nil {
			return err
		}
		if got {
			c.pending = append(c.pending, d)
		}
	}
	if c.failures < m.MaxRetries {
		return c.fire(evRetry)
	}
	c.step(c.cur, "", EventFallback)
	act, err := ParseAction(m.Fallback)
	if err != nil {
		return fmt.Errorf("menu %s fallback: %w", c.cur, err)
	}
	c.log.Info("ivr fallback", "menu", c.cur, "failures", c.failures, "action", act.String())
	c.next = act
	return c.fire(evFallback)
}

func (c *callRun) takePending() (rune, bool) {
	if len(c.pending) == 0 {
		return 0, false
	}
	d := c.pending[0]
	c.pending = c.pending[1:]
	return d, true
}

func (c *callRun) digitsClosed() {
	c.log.Debug("ivr digit channel closed")
	c.digits = nil
}

// playAll plays prompts until they end or the call does. With bargeIn a
// digit stops them and is returned (got); without, digits are read and
// dropped so the producer never blocks.
func (c *callRun) playAll(prompts []string, bargeIn bool) (d rune, got bool, err error) {
	done := c.play(prompts)
	for {
		select {
		case <-c.ctx.Done():
			c.r.Media.StopPlay()
			return 0, false, c.ctx.Err()
		case <-done:
			return 0, false, nil
		case d, ok := <-c.digits:
			if !ok {
				c.digitsClosed()
				continue
			}
			if !bargeIn {
				c.log.Debug("ivr ignoring digit during final prompt", "digit", string(d))
				continue
			}
			c.noInput = 0
			c.r.Media.StopPlay()
			return d, true, c.waitStopped(done)
		}
	}
}

var closedChan = func() chan struct{} { ch := make(chan struct{}); close(ch); return ch }()

func (c *callRun) play(prompts []string) <-chan struct{} {
	if ch := c.r.Media.Play(prompts); ch != nil {
		return ch
	}
	return closedChan
}

// waitStopped waits until a stopped playback's channel is closed.
func (c *callRun) waitStopped(done <-chan struct{}) error {
	select {
	case <-done:
		return nil
	case <-c.ctx.Done():
		return c.ctx.Err()
	}
}
