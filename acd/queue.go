package acd

import (
	"time"
)

type callerSt uint8

const (
	cWaiting callerSt = iota
	cRinging
	cConnected
	cGone
)

type caller struct {
	id     string
	number string
	q      *queue
	prio   int
	enq    time.Time // original enqueue time: the caller's place, kept across overflow and transfer
	enqNs  int64
	seq    uint64    // tie-break among equal enqueue times
	joined time.Time // when this queue visit began (wait, MaxWait, escalation)
	step   int       // escalation step reached in q (0: base)
	st     callerSt

	heapIdx  int // in q.heaps[step] while waiting, else -1
	allIdx   int // in q.all while waiting or ringing
	entryPos int

	offers    []*offer
	attempt   int
	expired   bool // MaxWait passed while ringing: leave when the ring fails
	overTried bool // the overflow was refused by its target; do not retry

	timer Timer // next escalation step, overflow or MaxWait
	tgen  uint64

	agent     *agent // connected
	connected time.Time
}

type offer struct {
	c       *caller
	ag      *agent
	attempt int
	start   time.Time
	timer   Timer
	live    bool
}

func (o *offer) public() Offer {
	return Offer{CallID: o.c.id, AgentID: o.ag.id, Queue: o.c.q.cfg.Name, Attempt: o.attempt}
}

// better reports whether c ranks before d in one queue: higher priority,
// then earlier original enqueue time, then earlier arrival.
func better(c, d *caller) bool {
	if c.prio != d.prio {
		return c.prio > d.prio
	}
	if c.enqNs != d.enqNs {
		return c.enqNs < d.enqNs
	}
	return c.seq < d.seq
}

// betterAcross ranks callers of different queues for an agent who serves
// both: priority plus queue weight, then original enqueue time.
func betterAcross(c, d *caller) bool {
	cp, dp := c.prio+c.q.cfg.Weight, d.prio+d.q.cfg.Weight
	if cp != dp {
		return cp > dp
	}
	if c.enqNs != d.enqNs {
		return c.enqNs < d.enqNs
	}
	return c.seq < d.seq
}

// cheap is a binary heap of waiting callers, best first.
type cheap []*caller

func (h cheap) peek() *caller {
	if len(h) == 0 {
		return nil
	}
	return h[0]
}

func (h *cheap) push(c *caller) {
	c.heapIdx = len(*h)
	*h = append(*h, c)
	h.up(c.heapIdx)
}

func (h *cheap) remove(c *caller) {
	s := *h
	i := c.heapIdx
	n := len(s) - 1
	if i != n {
		s[i] = s[n]
		s[i].heapIdx = i
	}
	s[n] = nil
	*h = s[:n]
	c.heapIdx = -1
	if i < n {
		if !h.down(i) {
			h.up(i)
		}
	}
}

func (h cheap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !better(h[i], h[p]) {
			return
		}
		h[i], h[p] = h[p], h[i]
		h[i].heapIdx, h[p].heapIdx = i, p
		i = p
	}
}

func (h cheap) down(i int) bool {
	start := i
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && better(h[r], h[l]) {
			m = r
		}
		if !better(h[m], h[i]) {
			break
		}
		h[i], h[m] = h[m], h[i]
		h[i].heapIdx, h[m].heapIdx = i, m
		i = m
	}
	return i > start
}

type skillReq struct{ skill, level int }

// alt is one way to qualify: all of req. index is the skill whose ready
// lists are walked (the highest minimum level), minLevel its minimum.
type alt struct {
	req      []skillReq
	index    int
	minLevel int
}

// step is the requirement after a number of escalations: any of alts.
type step struct {
	after time.Duration
	alts  []alt
}

type queueStats struct {
	offered, answered, abandoned, timedOut, empty, exitKey, overflowed, transferred int
	answeredWithin                                                                  int
	waitAnswered                                                                    time.Duration
}

type queue struct {
	idx       int
	cfg       QueueConfig // normalized
	strat     Strategy
	autoPause bool
	wrapUp    time.Duration
	steps     []step
	overflow  *queue
	overAfter time.Duration

	heaps   []cheap   // waiting callers per escalation step
	all     []*caller // waiting and ringing callers
	staffed []int     // per step: eligible agents logged in and not paused
	rrLast  int

	aht   time.Duration // exponential moving average of handle time (talk + wrap-up)
	ahtN  int
	stats queueStats
}

// handle-time EMA: the first samples are averaged with the prior, then α = 0.1.
const ahtAlpha = 0.1

func (q *queue) sampleHandle(d time.Duration) {
	q.ahtN++
	w := 1 / float64(q.ahtN+1)
	if w < ahtAlpha {
		w = ahtAlpha
	}
	q.aht += time.Duration(w * float64(d-q.aht))
}

func (q *queue) addAll(c *caller) {
	c.allIdx = len(q.all)
	q.all = append(q.all, c)
}

func (q *queue) removeAll(c *caller) {
	i, n := c.allIdx, len(q.all)-1
	if i != n {
		q.all[i] = q.all[n]
		q.all[i].allIdx = i
	}
	q.all[n] = nil
	q.all = q.all[:n]
	c.allIdx = -1
}

// position is 1 + the number of the queue's callers (waiting or ringing)
// ranked before c.
func (q *queue) position(c *caller) int {
	p := 1
	for _, d := range q.all {
		if d != c && better(d, c) {
			p++
		}
	}
	return p
}

// ewt estimates the wait of a caller at position pos and escalation step e:
// pos × AHT / staffed eligible agents, capped by what is left of MaxWait.
func (q *queue) ewt(pos, e int, waited time.Duration) time.Duration {
	left := time.Duration(-1)
	if q.cfg.MaxWait > 0 {
		left = max(q.cfg.MaxWait-waited, 0)
	}
	n := q.staffed[len(q.staffed)-1]
	if e < len(q.staffed) {
		n = q.staffed[e]
	}
	if n == 0 {
		n = q.staffed[len(q.staffed)-1] // escalation may still find someone
	}
	if n == 0 {
		if left >= 0 {
			return left
		}
		return q.aht * time.Duration(pos)
	}
	est := time.Duration(int64(pos) * int64(q.aht) / int64(n))
	if left >= 0 && est > left {
		est = left
	}
	return est
}
