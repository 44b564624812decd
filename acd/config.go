package acd

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Defaults applied by [New] to zero fields of a [QueueConfig].
const (
	DefaultRingTimeout     = 15 * time.Second
	DefaultWrapUp          = 10 * time.Second
	DefaultMaxWait         = 10 * time.Minute
	DefaultServiceLevel    = 15 * time.Second // GB/T 33358-2016: answered within 15 s
	DefaultRetryDelay      = 5 * time.Second
	DefaultAutoPauseReason = "no-answer"
	// DefaultHandleTime is the handle time (talk + wrap-up) assumed by the
	// estimated wait time until a queue has data of its own.
	DefaultHandleTime = 4 * time.Minute

	// MinSkillLevel and MaxSkillLevel bound agent and queue skill levels.
	MinSkillLevel = 1
	MaxSkillLevel = 10
)

// Strategy is how a queue chooses among several ready agents for a caller.
// When one agent becomes ready, the strategy plays no part: the agent takes the
// best caller it is eligible for (see the package documentation).
type Strategy string

// The strategies. The zero Strategy is LongestIdle.
const (
	// LongestIdle rings the eligible agent who has been ready the longest
	// (since the end of their last wrap-up, pause or offer): Asterisk
	// "leastrecent", mod_callcenter "longest-idle-agent".
	LongestIdle Strategy = "longest-idle"
	// FewestCalls rings the eligible agent with the fewest answered calls
	// today; ties by longest idle.
	FewestCalls Strategy = "fewest-calls"
	// RoundRobin rings the next eligible agent after the one the queue rang
	// last, in configuration order (Asterisk "rrmemory").
	RoundRobin Strategy = "round-robin"
	// RingAll rings every eligible ready agent; the first to answer wins and
	// the others are cancelled.
	RingAll Strategy = "ring-all"
	// BestSkill rings the eligible agent with the highest level in the skill
	// the queue is about (its highest required minimum level); ties by longest idle.
	BestSkill Strategy = "best-skill"
	// Random rings a uniformly chosen eligible agent.
	Random Strategy = "random"
)

// ParseStrategy accepts the names above and the usual Asterisk and
// mod_callcenter spellings (leastrecent, longest-idle-agent, fewestcalls,
// agent-with-fewest-calls, rrmemory, ringall, random, best-skill-level).
func ParseStrategy(s string) (Strategy, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "longest-idle", "longest_idle", "leastrecent", "longest-idle-agent":
		return LongestIdle, nil
	case "fewest-calls", "fewest_calls", "fewestcalls", "agent-with-fewest-calls":
		return FewestCalls, nil
	case "round-robin", "round_robin", "rrmemory", "roundrobin":
		return RoundRobin, nil
	case "ring-all", "ring_all", "ringall":
		return RingAll, nil
	case "best-skill", "best_skill", "best-skill-level", "bestskill":
		return BestSkill, nil
	case "random":
		return Random, nil
	}
	return "", fmt.Errorf("%w: unknown strategy %q", ErrConfig, s)
}

// AgentConfig is one agent. Skills map a skill name to a level 1–10.
type AgentConfig struct {
	ID, Name string
	Skills   map[string]int
	// WrapUp overrides the wrap-up time of the queues for this agent; a
	// pointer to 0 means no wrap-up.
	WrapUp *time.Duration
}

// Escalation is one step of a queue's escalation ladder. After is measured
// from when the caller joined this queue. A step either widens the set of
// agents (Skill with MinLevel) or moves the caller to another queue
// (Overflow). Steps only widen; the caller keeps their place throughout.
type Escalation struct {
	After time.Duration
	// Skill, MinLevel: if Skill is already required, its minimum level is
	// lowered to MinLevel; otherwise agents with Skill ≥ MinLevel may now
	// also take the caller (an alternative, not an extra requirement).
	Skill    string
	MinLevel int
	// Overflow names a queue the caller moves into, keeping their original
	// enqueue time as their place. It must be the last step. If the target
	// would refuse the caller (full, or empty and not JoinEmpty) the caller
	// stays where they are.
	Overflow string
}

// PriorityRules raise a caller's priority by their number at Enqueue: the
// caller's Priority becomes the maximum of the one given and any matching
// rule (an exact number, or the longest matching prefix).
type PriorityRules struct {
	Numbers  map[string]int // exact caller number → priority (a VIP list)
	Prefixes map[string]int // number prefix → priority
}

// QueueConfig is one queue. Zero durations take the defaults above; a
// negative WrapUp means no wrap-up and a negative MaxWait means no limit.
type QueueConfig struct {
	Name string
	// Skills: required skill → minimum level; an agent must have all of
	// them. Default {Name: 1}.
	Skills   map[string]int
	Strategy Strategy

	RingTimeout  time.Duration // default 15s
	WrapUp       time.Duration // default 10s; negative: none
	MaxWait      time.Duration // default 10m; negative: no limit
	ServiceLevel time.Duration // default 15s (GB/T 33358)
	// RetryDelay is how long an agent who rejected an offer (or did not
	// answer, with AutoPause off) stays out of routing, while shown ready
	// (mod_callcenter's reject-delay-time). Default 5s.
	RetryDelay time.Duration

	MaxCallers     int  // 0: unlimited
	JoinEmpty      bool // join when no eligible agent is logged in and unpaused
	LeaveWhenEmpty bool // waiting callers leave (Left ExitEmpty) when that happens
	// AutoPause pauses an agent after a ring-no-answer or an unreachable
	// contact; nil means true.
	AutoPause       *bool
	AutoPauseReason string // default "no-answer"

	// For call/: how often to announce position and wait, and the digit
	// that leaves the queue. The ACD only stores them.
	AnnounceFrequency time.Duration
	ExitDigit         string

	Escalations []Escalation
	Priority    PriorityRules
	// Weight is added to the priority of this queue's callers when an agent
	// who serves several queues chooses among them. Default 0.
	Weight int
}

// normalize returns q with defaults applied.
func (q QueueConfig) normalize() QueueConfig {
	if len(q.Skills) == 0 {
		q.Skills = map[string]int{q.Name: 1}
	}
	if s, err := ParseStrategy(string(q.Strategy)); err == nil {
		q.Strategy = s // aliases to the canonical name; validate reports the error
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&q.RingTimeout, DefaultRingTimeout)
	def(&q.WrapUp, DefaultWrapUp)
	def(&q.MaxWait, DefaultMaxWait)
	def(&q.ServiceLevel, DefaultServiceLevel)
	def(&q.RetryDelay, DefaultRetryDelay)
	if q.AutoPause == nil {
		t := true
		q.AutoPause = &t
	}
	if q.AutoPauseReason == "" {
		q.AutoPauseReason = DefaultAutoPauseReason
	}
	return q
}

func (q *QueueConfig) validate(names map[string]bool) error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: queue %q: %s: %s", ErrConfig, q.Name, field, fmt.Sprintf(format, args...)))
	}
	if q.Name == "" {
		bad("name", "empty")
	}
	for s, l := range q.Skills {
		if s == "" {
			bad("skills", "empty skill name")
		}
		if l < MinSkillLevel || l > MaxSkillLevel {
			bad("skills."+s, "level %d outside %d–%d", l, MinSkillLevel, MaxSkillLevel)
		}
	}
	if _, err := ParseStrategy(string(q.Strategy)); err != nil {
		bad("strategy", "unknown strategy %q", q.Strategy)
	}
	for _, d := range []struct {
		f string
		v time.Duration
	}{{"ring_timeout", q.RingTimeout}, {"service_level", q.ServiceLevel}, {"retry_delay", q.RetryDelay}} {
		if d.v <= 0 {
			bad(d.f, "must be positive, got %v", d.v)
		}
	}
	if q.MaxCallers < 0 {
		bad("max_callers", "negative")
	}
	if q.AnnounceFrequency < 0 {
		bad("announce_frequency", "negative")
	}
	if len(q.ExitDigit) > 1 || (q.ExitDigit != "" && !strings.ContainsAny(q.ExitDigit, "0123456789*#")) {
		bad("exit_digit", "%q is not one of 0-9 * #", q.ExitDigit)
	}
	var prev time.Duration
	req := map[string]int{}
	for s, l := range q.Skills {
		req[s] = l
	}
	for i, e := range q.Escalations {
		f := fmt.Sprintf("escalations[%d]", i)
		if e.After <= prev {
			bad(f+".after", "%v must be positive and later than the step before", e.After)
		}
		prev = e.After
		switch {
		case e.Overflow != "" && e.Skill != "":
			bad(f, "set either skill or overflow, not both")
		case e.Overflow != "":
			if i != len(q.Escalations)-1 {
				bad(f+".overflow", "must be the last step")
			}
			if e.Overflow == q.Name {
				bad(f+".overflow", "overflows into itself")
			} else if !names[e.Overflow] {
				bad(f+".overflow", "unknown queue %q", e.Overflow)
			}
		case e.Skill != "":
			if e.MinLevel < MinSkillLevel || e.MinLevel > MaxSkillLevel {
				bad(f+".min_level", "level %d outside %d–%d", e.MinLevel, MinSkillLevel, MaxSkillLevel)
			} else if cur, ok := req[e.Skill]; ok && cur <= e.MinLevel {
				bad(f+".min_level", "%d does not lower %s's minimum of %d", e.MinLevel, e.Skill, cur)
			} else {
				req[e.Skill] = e.MinLevel
			}
		default:
			bad(f, "set skill and min_level, or overflow")
		}
	}
	for n, p := range q.Priority.Numbers {
		if n == "" {
			bad("priority.numbers", "empty number (priority %d)", p)
		}
	}
	for n, p := range q.Priority.Prefixes {
		if n == "" {
			bad("priority.prefixes", "empty prefix (priority %d)", p)
		}
	}
	return errors.Join(errs...)
}

func (c *AgentConfig) validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: agent %q: %s: %s", ErrConfig, c.ID, field, fmt.Sprintf(format, args...)))
	}
	if c.ID == "" {
		bad("id", "empty")
	}
	keys := make([]string, 0, len(c.Skills))
	for s := range c.Skills {
		keys = append(keys, s)
	}
	slices.Sort(keys)
	for _, s := range keys {
		if l := c.Skills[s]; l < MinSkillLevel || l > MaxSkillLevel {
			bad("skills."+s, "level %d outside %d–%d", l, MinSkillLevel, MaxSkillLevel)
		}
	}
	if c.WrapUp != nil && *c.WrapUp < 0 {
		bad("wrap_up", "negative")
	}
	return errors.Join(errs...)
}

// priorityFor applies the rules to a caller's number.
func (r *PriorityRules) priorityFor(number string, given int) int {
	p := given
	if v, ok := r.Numbers[number]; ok && v > p {
		p = v
	}
	best := -1
	bp := 0
	for pre, v := range r.Prefixes {
		if len(pre) > best && strings.HasPrefix(number, pre) {
			best, bp = len(pre), v
		}
	}
	if best >= 0 && bp > p {
		p = bp
	}
	return p
}
