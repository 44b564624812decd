package config

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/ivr"
)

var (
	nameRe   = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
	numberRe = regexp.MustCompile(`^\+?[0-9*#]+$`)
)

// Prompts that features play by fixed name; validation checks them (with Known.Prompt)
// where the feature is configured.
var (
	// QueueCallbackPrompts: a queue's callback offer (virtual hold).
	QueueCallbackPrompts = []string{"callback_offer", "callback_confirm_pre", "callback_confirm_post", "callback_enter", "callback_booked"}
	// CallbackTaskPrompts: a human callback task, whispered to the agent with the case number.
	CallbackTaskPrompts = []string{"task_whisper"}
)

// validate checks the whole document and returns every problem with its field path.
func (c *Config) validate(known Known) []ivr.FieldError {
	var errs []ivr.FieldError
	add := func(path, format string, args ...any) {
		errs = append(errs, ivr.FieldError{Path: path, Problem: fmt.Sprintf(format, args...)})
	}
	if _, err := time.LoadLocation(c.Timezone); err != nil {
		add("timezone", "unknown time zone %q", c.Timezone)
	}
	if _, err := netip.ParseAddrPort(c.SIP.Listen); err != nil {
		add("sip.listen", "want IP:PORT, got %q", c.SIP.Listen)
	}
	if c.SIP.MediaIP != "" {
		if _, err := netip.ParseAddr(c.SIP.MediaIP); err != nil {
			add("sip.media_ip", "want an IP address, got %q", c.SIP.MediaIP)
		}
	}
	if l := c.SIP.TLSListen; l != "" && l != TLSOff {
		if _, err := netip.ParseAddrPort(l); err != nil {
			add("sip.tls_listen", "want IP:PORT or off, got %q", l)
		}
	}
	if (c.SIP.TLSCert == "") != (c.SIP.TLSKey == "") {
		add("sip.tls_cert", "tls_cert and tls_key go together (neither: a self-signed certificate is made in the data dir)")
	}
	for i, alg := range c.SIP.AuthAlgorithms {
		if !slices.Contains(AuthAlgorithms, alg) {
			add(fmt.Sprintf("sip.auth_algorithms[%d]", i), "unknown digest algorithm %q (SHA-256, MD5)", alg)
		} else if slices.Index(c.SIP.AuthAlgorithms, alg) != i {
			add(fmt.Sprintf("sip.auth_algorithms[%d]", i), "%s listed twice", alg)
		}
	}
	lo := c.SIP.Lockout
	if lo.Failures < -1 {
		add("sip.lockout.failures", "want a count, or -1 to turn the per-user lockout off")
	}
	if lo.SourceUsers < -1 {
		add("sip.lockout.source_users", "want a count, or -1 to turn the per-source lockout off")
	}
	if lo.Window < 0 {
		add("sip.lockout.window", "must not be negative")
	}
	if lo.Duration < 0 {
		add("sip.lockout.duration", "must not be negative")
	}
	for _, r := range []struct {
		name string
		rl   RateLimit
	}{{"invite", c.SIP.RateLimits.Invite}, {"register", c.SIP.RateLimits.Register}} {
		name, rl := r.name, r.rl
		if rl.Rate < 0 && rl.Rate != -1 {
			add("sip.rate_limits."+name+".rate", "want requests per second, or -1 for no limit")
		}
		if rl.Rate > 0 && rl.Burst < 1 {
			add("sip.rate_limits."+name+".burst", "must be at least 1")
		}
	}
	if c.SIP.TCP.IdleTimeout < 0 && c.SIP.TCP.IdleTimeout.D() != -time.Second {
		add("sip.tcp.idle_timeout", "must not be negative (-1s: never close idle connections)")
	}
	if c.SIP.TCP.MaxPerSource < -1 {
		add("sip.tcp.max_per_source", "want a count, or -1 for no cap")
	}
	c.HTTP.validate(add)
	if _, _, err := ParsePorts(c.RTP.Ports); err != nil {
		add("rtp.ports", "%v", err)
	}
	if c.RTP.Timeout < 0 {
		add("rtp.timeout", "must not be negative")
	}
	if c.RTP.LatchProbation < 0 || c.RTP.LatchProbation > MaxLatchProbation {
		add("rtp.latch_probation", "must be between 0 (default) and %d", MaxLatchProbation)
	}
	if !validSRTP(c.RTP.AgentsSRTP) {
		add("rtp.agents_srtp", "want off, optional or required, got %q", c.RTP.AgentsSRTP)
	}
	if c.RTP.LatchSilence < 0 {
		add("rtp.latch_silence", "must not be negative")
	}
	if c.DrainTimeout < 0 {
		add("drain_timeout", "must not be negative")
	}
	if c.CDRSpillLimit < 0 {
		add("cdr_spill_limit", "must not be negative")
	}
	if c.MemoryLimit != "" {
		if n, err := ParseSize(c.MemoryLimit); err != nil {
			add("memory_limit", "%v, got %q", err, c.MemoryLimit)
		} else if n < 64<<20 {
			add("memory_limit", "%q is below 64MiB: the server would spend its time collecting garbage", c.MemoryLimit)
		}
	}
	errs = append(errs, c.Records.validate()...)
	errs = append(errs, validateWebhooks(c.Webhooks)...)
	errs = append(errs, c.validateDirectory()...)
	errs = append(errs, c.validateCluster()...)
	if !nameRe.MatchString(c.Prompts.Language) {
		add("prompts.language", "invalid language %q", c.Prompts.Language)
	}

	hasQueue := func(q string) bool { _, ok := c.Queues[q]; return ok }
	hasPrompt := func(p string) bool { return known.Prompt == nil || known.Prompt(p) }
	c.validateRecordings(hasPrompt, add)
	codecs := func(p string, list []string) {
		for j, codec := range list {
			if !slices.Contains([]string{"PCMA", "PCMU", "G711A", "G711U"}, strings.ToUpper(codec)) {
				add(fmt.Sprintf("%s.codecs[%d]", p, j), "unsupported codec %q (PCMA, PCMU)", codec)
			}
		}
	}

	if len(c.Trunks) == 0 {
		add("trunks", "at least one trunk is needed to receive calls")
	}
	trunkNames := map[string]bool{}
	for i, t := range c.Trunks {
		p := fmt.Sprintf("trunks[%d]", i)
		if !validSRTP(t.SRTP) {
			add(p+".srtp", "want off, optional or required, got %q", t.SRTP)
		}
		switch {
		case t.Name == "":
			add(p+".name", "required")
		case !nameRe.MatchString(t.Name):
			add(p+".name", "invalid name %q (letters, digits, _ . -)", t.Name)
		case trunkNames[t.Name]:
			add(p+".name", "duplicate trunk %q", t.Name)
		}
		trunkNames[t.Name] = true
		if len(t.Sources) == 0 {
			add(p+".sources", "at least one source address or CIDR is required")
		}
		for j, s := range t.Sources {
			if _, err := ParsePrefix(s); err != nil {
				add(fmt.Sprintf("%s.sources[%d]", p, j), "want an address or CIDR, got %q", s)
			}
		}
		if len(t.DIDs) == 0 {
			add(p+".dids", "at least one called number is required")
		}
		for j, d := range t.DIDs {
			if !numberRe.MatchString(d) {
				add(fmt.Sprintf("%s.dids[%d]", p, j), "want a number, got %q", d)
			}
		}
		if t.AnswerDelay < 0 || t.AnswerDelay.D() > time.Minute {
			add(p+".answer_delay", "must be between 0 and 1m")
		}
		if t.MaxCalls < 0 {
			add(p+".max_calls", "must not be negative")
		}
		codecs(p, t.Codecs)
	}

	// Outbound trunks: names unique among all trunks, inbound included.
	outNames := map[string]bool{}
	for i, t := range c.OutboundTrunks {
		p := fmt.Sprintf("outbound_trunks[%d]", i)
		switch {
		case t.Name == "":
			add(p+".name", "required")
		case !nameRe.MatchString(t.Name):
			add(p+".name", "invalid name %q (letters, digits, _ . -)", t.Name)
		case outNames[t.Name]:
			add(p+".name", "duplicate outbound trunk %q", t.Name)
		case trunkNames[t.Name]:
			add(p+".name", "%q is already the name of an inbound trunk", t.Name)
		}
		outNames[t.Name] = true
		if !validSRTP(t.SRTP) {
			add(p+".srtp", "want off, optional or required, got %q", t.SRTP)
		}
		if t.Gateway == "" {
			add(p+".gateway", "required (the carrier's SIP URI, e.g. sip:192.0.2.1:5060)")
		} else if _, err := ParseGateway(t.Gateway); err != nil {
			add(p+".gateway", "%v", err)
		}
		if t.Transport != "udp" && t.Transport != "tcp" {
			add(p+".transport", "want udp or tcp, got %q", t.Transport)
		}
		if t.Password != "" && t.Username == "" {
			add(p+".username", "required with password")
		}
		if t.CallerID != "" && !numberRe.MatchString(t.CallerID) {
			add(p+".caller_id", "want a number, got %q", t.CallerID)
		}
		if t.MaxChannels < 0 {
			add(p+".max_channels", "must not be negative (0 = default %d)", DefaultOutboundMaxChannels)
		}
		if t.MaxCPS < 0 {
			add(p+".max_cps", "must not be negative (0 = default %d)", DefaultOutboundMaxCPS)
		}
		if t.RingTimeout < 0 {
			add(p+".ring_timeout", "must not be negative (0 = default %s)", DefaultOutboundRingTimeout)
		}
		if len(t.DialPlan) == 0 {
			add(p+".dial_plan", "at least one number pattern is required (nothing outside the dial plan is dialled), e.g. '1[3-9]\\d{9}'")
		}
		for j, pat := range t.DialPlan {
			if strings.TrimSpace(pat) == "" {
				add(fmt.Sprintf("%s.dial_plan[%d]", p, j), "empty pattern")
			} else if _, err := regexp.Compile(pat); err != nil { // the pattern as written, for the message
				add(fmt.Sprintf("%s.dial_plan[%d]", p, j), "bad regular expression %q: %v", pat, strings.TrimPrefix(err.Error(), "error parsing regexp: "))
			}
		}
		codecs(p, t.Codecs)
	}

	for name, s := range c.Surveys {
		p := "surveys." + name
		if !nameRe.MatchString(name) {
			add(p, "invalid survey name %q (letters, digits, _ . -)", name)
		}
		errs = append(errs, s.Validate(p, hasQueue)...)
		if known.Prompt != nil {
			errs = append(errs, s.ValidatePrompts(p, known.Prompt)...)
		}
	}

	if cb := c.Callback; cb != nil {
		errs = append(errs, cb.validate(c, hasQueue, hasPrompt, outNames)...)
	}

	routed := map[string]bool{}
	for i := range c.Routes {
		r := &c.Routes[i]
		p := fmt.Sprintf("routes[%d]", i)
		errs = append(errs, r.Validate(p, c.Menus, hasQueue)...)
		if routed[r.Number] {
			add(p+".number", "duplicate route for %q", r.Number)
		}
		routed[r.Number] = true
	}
	// An unrouted number is reported where the trunk lists it, once per number.
	unrouted := map[string]bool{}
	for i, t := range c.Trunks {
		for j, d := range t.DIDs {
			if !routed[d] && !unrouted[d] && numberRe.MatchString(d) {
				unrouted[d] = true
				add(fmt.Sprintf("trunks[%d].dids[%d]", i, j), "number %q has no route (add one under routes)", d)
			}
		}
	}
	errs = append(errs, ivr.ValidateMenus(c.Menus, hasPrompt, hasQueue)...)
	errs = append(errs, ivr.ValidateLookups(c.Lookups, c.Menus, hasPrompt, hasQueue)...)

	for name, q := range c.Queues {
		p := "queues." + name
		if !nameRe.MatchString(name) {
			add(p, "invalid queue name %q", name)
		}
		if q.MaxWait < 0 {
			add(p+".max_wait", "must not be negative")
		}
		if q.ServiceLevel < 0 {
			add(p+".service_level", "must not be negative")
		}
		for field, prompt := range map[string]string{"music_on_hold": q.MusicOnHold, "join_prompt": q.JoinPrompt, "exit_prompt": q.ExitPrompt} {
			if !hasPrompt(prompt) {
				add(p+"."+field, "unknown prompt %q", prompt)
			}
		}
		if _, err := acd.ParseStrategy(q.Strategy); err != nil {
			add(p+".strategy", "unknown strategy %q (longest-idle, fewest-calls, round-robin, ring-all, best-skill, random)", q.Strategy)
		}
		for skill, level := range q.Skills {
			if level < 1 || level > 10 {
				add(p+".skills."+skill, "minimum level %d outside 1-10", level)
			}
		}
		for field, d := range map[string]ivr.Duration{"ring_timeout": q.RingTimeout, "wrap_up": q.WrapUp, "retry_delay": q.RetryDelay, "announce_frequency": q.AnnounceFrequency} {
			if d < 0 {
				add(p+"."+field, "must not be negative")
			}
		}
		if q.AnnounceFrequency > 0 && q.AnnounceFrequency.D() < 10*time.Second {
			add(p+".announce_frequency", "at least 10s (or 0 for none)")
		}
		if q.MaxCallers < 0 {
			add(p+".max_callers", "must not be negative")
		}
		if q.ExitDigit != "" && (len(q.ExitDigit) != 1 || !strings.Contains("0123456789*#", q.ExitDigit)) {
			add(p+".exit_digit", "want one of 0-9 * #, got %q", q.ExitDigit)
		}
		if q.ExitMenu != "" {
			if _, ok := c.Menus[q.ExitMenu]; !ok {
				add(p+".exit_menu", "unknown menu %q", q.ExitMenu)
			} else if q.ExitDigit == "" {
				add(p+".exit_menu", "needs exit_digit")
			}
		}
		if qc := q.Callback; qc != nil {
			switch {
			case qc.After <= 0:
				add(p+".callback.after", "required and positive (the estimated wait above which callers are offered a callback)")
			case len(c.OutboundTrunks) == 0:
				add(p+".callback", "needs an outbound trunk to call back through (add one under outbound_trunks)")
			}
			switch {
			case len(qc.Digit) != 1 || !strings.Contains("0123456789*#", qc.Digit):
				add(p+".callback.digit", "want one of 0-9 * #, got %q", qc.Digit)
			case qc.Digit == q.ExitDigit:
				add(p+".callback.digit", "%q is also the queue's exit_digit", qc.Digit)
			}
			for _, prompt := range QueueCallbackPrompts {
				if !hasPrompt(prompt) {
					add(p+".callback", "unknown prompt %q (the callback offer needs it)", prompt)
				}
			}
		}
		for i, e := range q.Escalations {
			ep := fmt.Sprintf("%s.escalations[%d]", p, i)
			switch {
			case e.After <= 0:
				add(ep+".after", "required and positive")
			case e.Overflow != "" && !hasQueue(e.Overflow):
				add(ep+".overflow", "unknown queue %q", e.Overflow)
			case e.Overflow != "" && i != len(q.Escalations)-1:
				add(ep+".overflow", "an overflow must be the last step")
			case e.Overflow == "" && (e.Skill == "" || e.MinLevel < 1 || e.MinLevel > 10):
				add(ep, "want skill with min_level 1-10, or overflow")
			}
		}
	}

	ids := map[string]bool{}
	for i, a := range c.Agents {
		p := fmt.Sprintf("agents[%d]", i)
		switch {
		case !numberRe.MatchString(a.ID):
			add(p+".id", "want a numeric id, got %q", a.ID)
		case ids[a.ID]:
			add(p+".id", "duplicate agent %q", a.ID)
		}
		ids[a.ID] = true
		if a.Password == "" {
			add(p+".password", "required (agents register with digest auth)")
		}
		if a.WrapUp != nil && *a.WrapUp < 0 {
			add(p+".wrap_up", "must not be negative")
		}
		for skill, level := range a.Skills {
			if level < 1 || level > 10 {
				add(p+".skills."+skill, "level %d outside 1-10", level)
			}
			if !hasQueue(skill) && !nameRe.MatchString(skill) {
				add(p+".skills."+skill, "invalid skill name")
			}
		}
	}
	// Deterministic order (maps are ranged above); Load re-sorts by line.
	slices.SortStableFunc(errs, func(a, b ivr.FieldError) int {
		if c := compareFields(a.Path, b.Path); c != 0 {
			return c
		}
		return strings.Compare(a.Problem, b.Problem)
	})
	return errs
}

// validate checks the callback section; cb has its defaults applied.
func (cb *Callback) validate(c *Config, hasQueue, hasPrompt func(string) bool, outbound map[string]bool) []ivr.FieldError {
	var errs []ivr.FieldError
	add := func(path, format string, args ...any) {
		errs = append(errs, ivr.FieldError{Path: "callback." + path, Problem: fmt.Sprintf(format, args...)})
	}
	if !hasQueue(cb.Queue) {
		add("queue", "unknown queue %q (the human callback queue must be configured under queues)", cb.Queue)
	}
	for _, prompt := range CallbackTaskPrompts {
		if !hasPrompt(prompt) {
			add("queue", "unknown prompt %q (callback tasks need it)", prompt)
		}
	}
	trunk := func(field, name string) {
		switch {
		case name == "" && len(c.OutboundTrunks) == 0:
			add(field, "no outbound trunk to call through (add one under outbound_trunks)")
		case name != "" && !outbound[name]:
			add(field, "unknown outbound trunk %q", name)
		}
	}
	trunk("trunk", cb.Trunk)
	if cb.Deadline < 0 {
		add("deadline", "must not be negative (0 = default %s)", DefaultCallbackDeadline)
	}
	if cb.AtRisk < 0 {
		add("at_risk", "must not be negative (0 = default %s)", DefaultCallbackAtRisk)
	} else if cb.Deadline > 0 && cb.AtRisk >= cb.Deadline {
		add("at_risk", "%s is not less than deadline %s (every target would be at risk at once)", cb.AtRisk, cb.Deadline)
	}
	w := cb.Window
	for _, e := range ivr.WindowProblems(w.From, w.To, w.Days, w.Holidays, w.Workdays) {
		add("window."+e.Path, "%s", e.Problem)
	}
	if cb.MaxAttempts < 0 {
		add("max_attempts", "must not be negative (0 = default %d)", DefaultCallbackMaxAttempts)
	}
	for field, d := range map[string]ivr.Duration{"retry.busy": cb.Retry.Busy, "retry.no_answer": cb.Retry.NoAnswer,
		"retry.failed": cb.Retry.Failed, "retry.interrupted": cb.Retry.Interrupted, "ring_timeout": cb.RingTimeout} {
		if d < 0 {
			add(field, "must not be negative (0 = the default)")
		}
	}
	if cb.MaxConcurrent < 0 {
		add("max_concurrent", "must not be negative (0 = default %d)", DefaultCallbackMaxConcurrent)
	}
	if cb.MaxCPS < 0 {
		add("max_cps", "must not be negative (0 = default %d)", DefaultCallbackMaxCPS)
	}
	for i, n := range cb.DoNotCall {
		if !numberRe.MatchString(n) {
			add(fmt.Sprintf("do_not_call[%d]", i), "want a number, got %q", n)
		}
	}
	if a := cb.AfterCall; a != nil {
		if len(a.Queues) == 0 {
			add("after_call.queues", "at least one queue is required (calls answered in it get a survey)")
		}
		for i, q := range a.Queues {
			if !hasQueue(q) {
				add(fmt.Sprintf("after_call.queues[%d]", i), "unknown queue %q", q)
			}
		}
		if a.Delay < 0 {
			add("after_call.delay", "must not be negative (0 = as soon as the call ends)")
		}
		if a.Script == "" {
			add("after_call.script", "required (a survey under surveys)")
		} else if _, ok := c.Surveys[a.Script]; !ok {
			add("after_call.script", "unknown survey %q", a.Script)
		}
		trunk("after_call.trunk", a.Trunk)
	}
	return errs
}

// validSRTP reports whether v is an SRTP policy ("" = the default).
func validSRTP(v string) bool {
	switch v {
	case "", "off", "optional", "required":
		return true
	}
	return false
}
