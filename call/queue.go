package call

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/media"
	"github.com/hotline12345/hotline/sip"
)

// Errors that end a caller's time in a queue.
var (
	ErrNoAgent     = errors.New("no-agent")
	ErrExitKey     = errors.New("exit-key")
	ErrAgentHangup = errors.New("agent hung up")
	errTransfer    = errors.New("transferred")
)

// exitToMenu is a caller who left the queue with the exit digit for a menu.
type exitToMenu struct{ menu string }

func (e exitToMenu) Error() string { return "exit-key to menu " + e.menu }
func (e exitToMenu) Unwrap() error { return ErrExitKey }

// transferError carries the queue a call was transferred to.
type transferError struct{ queue string }

func (e transferError) Error() string { return "transferred to " + e.queue }
func (e transferError) Unwrap() error { return errTransfer }

// Join implements ivr.Queue: the caller waits in the ACD's queue with music on hold and
// announcements until an agent answers, then talks; it returns when the call is over.
func (c *Call) Join(ctx context.Context, name string) error {
	enqueue := true
	for {
		err := c.joinOne(ctx, name, enqueue)
		var te transferError
		if errors.As(err, &te) {
			// The ACD already put the caller in the queue it was transferred to.
			name, enqueue = te.queue, false
			continue
		}
		return err
	}
}

// joinOne waits in one queue; enqueue is false when the ACD placed the caller there itself
// (a transfer).
func (c *Call) joinOne(ctx context.Context, name string, enqueue bool) error {
	m := c.m
	q, ok := m.cfg.Queues[name]
	if !ok {
		c.log.Error("unknown queue", "queue", name)
		return ErrNoAgent
	}
	enqueued := time.Now()
	c.mu.Lock()
	c.leftByKey = false
	c.rec.Queue = name
	if c.rec.EnqueueTime.IsZero() {
		c.rec.EnqueueTime = enqueued
	}
	c.mu.Unlock()
	c.setStage(StageQueued)
	left := false
	leave := func() {
		if !left {
			left = true
			m.metrics.queueLeave(name, time.Since(enqueued))
		}
	}
	defer leave()

	if enqueue {
		if _, err := m.acd.Enqueue(acd.Caller{CallID: c.id, Number: c.rec.Caller, Queue: name, Enqueued: enqueued}); err != nil {
			c.log.Info("queue refused the caller", "queue", name, "error", err)
			c.playWait(ctx, q.ExitPrompt)
			return ErrNoAgent
		}
	}
	playing := c.Play([]string{q.JoinPrompt})
	moh, haveMOH := m.prompt(q.MusicOnHold)
	var announce <-chan time.Time
	if q.AnnounceFrequency > 0 {
		t := time.NewTicker(q.AnnounceFrequency)
		defer t.Stop()
		announce = t.C
	}
	for {
		select {
		case <-ctx.Done():
			m.acd.Abandon(c.id)
			return context.Cause(ctx)
		case <-playing:
			playing = nil
			if haveMOH {
				c.sess.Loop(moh)
			}
		case <-announce:
			if playing != nil {
				continue // still playing the join prompt or the last announcement
			}
			if pos, ewt, ok := m.acd.Position(c.id); ok {
				if names := c.positionPrompts(pos, ewt); len(names) > 0 {
					playing = c.Play(names)
				}
			}
		case d := <-c.digits:
			if q.ExitDigit != "" && string(d) == q.ExitDigit {
				m.acd.ExitKey(c.id)
				c.mu.Lock()
				c.leftByKey = true
				c.mu.Unlock()
				c.sess.StopPlay()
				if q.ExitMenu != "" {
					return exitToMenu{q.ExitMenu}
				}
				return ErrExitKey
			}
		case reason := <-c.exit:
			c.sess.StopPlay()
			c.playWait(ctx, q.ExitPrompt)
			if reason == acd.ExitTimeout {
				return ErrMaxWait
			}
			return ErrNoAgent
		case a := <-c.agent:
			leave()
			return c.talk(ctx, name, a)
		}
	}
}

// playWait plays a prompt to its end, or until the call ends.
func (c *Call) playWait(ctx context.Context, name string) {
	if name == "" {
		return
	}
	select {
	case <-c.Play([]string{name}):
	case <-ctx.Done():
	}
}

// talk bridges the caller with the agent until one of them hangs up or the agent transfers.
func (c *Call) talk(ctx context.Context, queue string, a *agentLeg) error {
	m := c.m
	if a.queue != "" {
		queue = a.queue // an escalation may have overflowed the caller into another queue
	}
	now := time.Now()
	c.sess.StopPlay()
	br := media.NewBridge(c.sess, a.sess)
	br.Start()
	c.mu.Lock()
	c.rec.Agent = a.id
	c.rec.Queue = queue
	if c.rec.Connect.IsZero() {
		c.rec.Connect = now
	}
	c.mu.Unlock()
	c.setStage(StageTalking)
	log := c.log.With("agent", a.id)
	log.Info("caller connected to agent", "queue", queue, "wait", now.Sub(c.rec.EnqueueTime).Round(time.Millisecond))

	talkStart := now
	var held time.Time // when the agent put the caller on hold
	account := func() {
		end := time.Now()
		c.mu.Lock()
		if !held.IsZero() {
			c.rec.Hold += end.Sub(held)
			held = time.Time{}
		} else {
			c.rec.Talk += end.Sub(talkStart)
		}
		c.mu.Unlock()
	}
	finish := func(side string) {
		account()
		br.Stop()
		m.acd.CallEnded(c.id, a.id, side)
		// The record carries the queue's wrap-up time for AHT; an agent who ends wrap-up
		// early (ready) shows in the WRAPUPEND agent event.
		if qc, ok := m.acd.QueueConfig(queue); ok && qc.WrapUp > 0 {
			c.mu.Lock()
			c.rec.WrapUp = qc.WrapUp
			c.mu.Unlock()
		}
	}
	teardown := func() context.Context { return context.WithoutCancel(ctx) }
	for {
		select {
		case <-ctx.Done():
			finish(sip.SideCaller)
			a.hangup(teardown(), causeText(context.Cause(ctx)))
			return context.Cause(ctx)
		case <-a.out.Done():
			finish(sip.SideAgent)
			a.hangup(teardown(), "")
			return ErrAgentHangup
		case <-a.sess.Done():
			log.Warn("agent RTP stopped; ending the call", "error", a.sess.Err())
			finish(sip.SideAgent)
			a.hangup(teardown(), "rtp-timeout")
			return ErrAgentHangup
		case md := <-a.out.MediaUpdates():
			if addrOK(md.Addr) && !md.Addr.Addr().IsUnspecified() {
				setRemote(a.sess, md)
			}
			switch {
			case md.OnHold() && held.IsZero():
				account()
				talkStart, held = time.Time{}, time.Now()
				br.Stop()
				a.sess.SetInactivityTimeout(-1)
				if moh, ok := m.prompt(m.cfg.Queues[queue].MusicOnHold); ok {
					c.sess.Loop(moh)
				}
				log.Info("agent put the caller on hold")
			case !md.OnHold() && !held.IsZero():
				account()
				talkStart = time.Now()
				c.sess.StopPlay()
				a.sess.SetInactivityTimeout(m.cfg.RTPTimeout)
				br.Start()
				log.Info("agent took the caller off hold")
			}
		case r := <-a.out.Refers():
			target := r.Target.User
			if _, ok := m.cfg.Queues[target]; !ok {
				log.Info("transfer refused: unknown target", "target", r.Target.String())
				r.Reject(404)
				continue
			}
			r.Accept()
			account()
			br.Stop()
			if _, err := m.acd.Transferred(c.id, a.id, target); err != nil {
				log.Warn("transfer failed", "target", target, "error", err)
				notifyCtx, cancel := context.WithTimeout(teardown(), 5*time.Second)
				r.Notify(notifyCtx, 503, "Service Unavailable")
				cancel()
				br.Start()
				talkStart = time.Now()
				continue
			}
			notifyCtx, cancel := context.WithTimeout(teardown(), 5*time.Second)
			r.Notify(notifyCtx, 200, "OK")
			cancel()
			c.mu.Lock()
			c.rec.Transfers++
			c.mu.Unlock()
			log.Info("agent transferred the caller", "queue", target)
			a.hangup(teardown(), "transferred")
			return transferError{target}
		}
	}
}

// positionPrompts builds the position and estimated-wait announcement.
func (c *Call) positionPrompts(pos int, ewt time.Duration) []string {
	var names []string
	lang := c.m.cfg.Language
	ahead := pos - 1 // Mandarin says how many are ahead; English says the position
	n := ahead
	if lang != "zh" {
		n = pos
	}
	if n > 0 {
		names = append(names, "position_pre")
		names = append(names, numberPrompts(lang, n)...)
		names = append(names, "position_post")
	}
	names = append(names, "wait_pre")
	if mins := int((ewt + 30*time.Second) / time.Minute); mins < 1 {
		names = append(names, "less_than_one_minute")
	} else {
		names = append(names, numberPrompts(lang, mins)...)
		names = append(names, "minutes")
	}
	return names
}

// numberPrompts reads n (capped at 999) with the digit, ten and hundred prompts: Chinese
// reading for zh (二十三, 一百零五), digit by digit otherwise.
func numberPrompts(lang string, n int) []string {
	n = min(max(n, 0), 999)
	d := func(i int) string { return "digit_" + strconv.Itoa(i) }
	if lang != "zh" {
		var out []string
		for _, ch := range strconv.Itoa(n) {
			out = append(out, d(int(ch-'0')))
		}
		return out
	}
	h, t, u := n/100, n/10%10, n%10
	var out []string
	if h > 0 {
		out = append(out, d(h), "hundred")
		if t == 0 && u != 0 {
			return append(out, d(0), d(u))
		}
	}
	if t > 0 {
		if !(t == 1 && h == 0) { // 十五, but 一百一十五
			out = append(out, d(t))
		}
		out = append(out, "ten")
	}
	if u > 0 || n == 0 {
		out = append(out, d(u))
	}
	return out
}
