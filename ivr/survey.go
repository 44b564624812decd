package ivr

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"
)

// Survey is an automated satisfaction survey script (云回访): an introduction, ordered
// questions each answered with one key, an optional key for a human agent, and thanks.
type Survey struct {
	Intro         []string   `yaml:"intro"`          // played once, before the first question
	Questions     []Question `yaml:"questions"`      // asked in order
	Thanks        []string   `yaml:"thanks"`         // played at the end, then the server hangs up
	Timeout       Duration   `yaml:"timeout"`        // per question, after its prompts; default 6s
	MaxRetries    int        `yaml:"max_retries"`    // invalid+timeout per question before moving on; default 2
	InvalidPrompt string     `yaml:"invalid_prompt"` // after an invalid key
	TimeoutPrompt string     `yaml:"timeout_prompt"` // after no key
	AgentDigit    string     `yaml:"agent_digit"`    // e.g. "0": the citizen asks for an agent; "" = none
	AgentQueue    string     `yaml:"agent_queue"`    // where that digit goes
}

// Question is one survey question.
type Question struct {
	Name    string            `yaml:"name"`    // e.g. "service"
	Prompts []string          `yaml:"prompts"` // the question
	Answers map[string]string `yaml:"answers"` // digit → meaning, e.g. "1": satisfied
}

// Answer is the citizen's answer to one question. Digit is empty if the question got no
// valid key within its retries.
type Answer struct {
	Question string `json:"question"`
	Digit    string `json:"digit,omitempty"`
	Meaning  string `json:"meaning,omitempty"`
}

// Satisfaction values (好差评), the same words on survey targets, call records and reports.
const (
	Satisfied          = "satisfied"           // 满意
	BasicallySatisfied = "basically_satisfied" // 基本满意
	Dissatisfied       = "dissatisfied"        // 不满意
	NotRated           = "not_rated"           // asked, but no valid key (or the citizen hung up first)
)

// Defaults applied by [Survey.ApplyDefaults] to zero fields.
const (
	DefaultSurveyTimeout    = 6 * time.Second
	DefaultSurveyMaxRetries = 2
)

// ApplyDefaults sets the zero fields of s to the package defaults. Negative values are left
// for validation to report.
func (s *Survey) ApplyDefaults() {
	if s.Timeout == 0 {
		s.Timeout = Duration(DefaultSurveyTimeout)
	}
	if s.MaxRetries == 0 {
		s.MaxRetries = DefaultSurveyMaxRetries
	}
}

// IsSatisfaction reports whether meaning is one of the three rating values (not NotRated).
func IsSatisfaction(meaning string) bool {
	return meaning == Satisfied || meaning == BasicallySatisfied || meaning == Dissatisfied
}

// SatisfactionQuestion is the index of the question that rates satisfaction: the first whose
// answers all mean one of [Satisfied], [BasicallySatisfied] and [Dissatisfied]; -1 if none.
func (s Survey) SatisfactionQuestion() int {
	return slices.IndexFunc(s.Questions, func(q Question) bool {
		if len(q.Answers) == 0 {
			return false
		}
		for _, m := range q.Answers {
			if !IsSatisfaction(m) {
				return false
			}
		}
		return true
	})
}

// SurveyResult is what a survey call got from the citizen.
type SurveyResult struct {
	// Answers has one entry per question asked to its end, in order: answered (Digit and
	// Meaning set) or unanswered after MaxRetries failures (Digit empty). A question cut
	// short by a hang-up or the agent digit has no entry, nor have the questions after it.
	Answers []Answer
	// Satisfaction is the meaning of the answer to the [Survey.SatisfactionQuestion];
	// NotRated if it went unanswered or was never reached; "" if the script has no such
	// question.
	Satisfaction string
	ToAgent      bool // the citizen pressed AgentDigit: hand the call to AgentQueue
	Completed    bool // every question was asked to its end (Thanks started)
}

// SurveyOption configures [RunSurvey].
type SurveyOption func(*surveyOptions)

type surveyOptions struct {
	clock Clock
}

// WithClock makes [RunSurvey] time its waits on c instead of the system clock.
func WithClock(c Clock) SurveyOption {
	return func(o *surveyOptions) {
		if c != nil {
			o.clock = c
		}
	}
}

// RunSurvey asks the citizen on m the questions of s (defaults applied to a copy) and
// returns the answers. The semantics follow the menus' (see the package doc):
//
//   - Intro plays once. A key pressed during it stops it and is the answer to the first
//     question, whose prompts are then skipped.
//   - Each question plays its prompts; a key stops them (barge-in) and answers. After the
//     prompts the citizen has Timeout to press a key.
//   - A key in the question's Answers is recorded. AgentDigit, at any question, ends the
//     survey at once with ToAgent set (no thanks: the caller queues the call). Any other
//     key is a failure (InvalidPrompt), and so is silence (TimeoutPrompt); the failure
//     prompt plays and the question is asked again. A key pressed during the failure prompt
//     stops it and is the next attempt's answer. The MaxRetries-th failure records the
//     question unanswered, without a failure prompt, and the survey moves on.
//   - After the last question Thanks plays to its end; keys are ignored.
//
// When ctx ends (the citizen hung up) RunSurvey stops any prompt and returns promptly the
// result so far with ctx.Err(); a hang-up during Thanks returns Completed set and ctx.Err().
// log may be nil. RunSurvey starts no goroutines.
func RunSurvey(ctx context.Context, s Survey, m Media, log *slog.Logger, opts ...SurveyOption) (SurveyResult, error) {
	o := surveyOptions{clock: SystemClock()}
	for _, opt := range opts {
		opt(&o)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s.ApplyDefaults()
	var res SurveyResult
	if m == nil {
		return res, fmt.Errorf("%w: no Media for the survey", ErrNotConfigured)
	}
	// The prompt and digit routines are the menu runner's (runner_input.go): same barge-in,
	// same type-ahead, same timers.
	sr := &surveyRun{
		s:   s,
		res: &res,
		c: &callRun{
			r:      &Runner{Media: m},
			ctx:    ctx,
			log:    log,
			clock:  o.clock,
			digits: m.Digits(),
		},
	}
	log.Debug("survey start", "questions", len(s.Questions))
	err := sr.run()
	if i := s.SatisfactionQuestion(); i >= 0 {
		res.Satisfaction = NotRated
		if i < len(res.Answers) && res.Answers[i].Meaning != "" {
			res.Satisfaction = res.Answers[i].Meaning
		}
	}
	log.Info("survey end", "answers", answersString(res.Answers), "satisfaction", res.Satisfaction,
		"to_agent", res.ToAgent, "completed", res.Completed, "error", err)
	return res, err
}

// surveyRun is the state of one RunSurvey; only its goroutine touches it.
type surveyRun struct {
	s   Survey
	res *SurveyResult
	c   *callRun // prompts, digits, kept keys and timers
}

func (sr *surveyRun) run() error {
	c := sr.c
	if len(sr.s.Intro) > 0 {
		d, got, err := c.playAll(sr.s.Intro, true)
		if err != nil {
			return err
		}
		if got {
			c.pending = append(c.pending, d)
		}
	}
	for _, q := range sr.s.Questions {
		a, toAgent, err := sr.ask(q)
		if err != nil {
			return err
		}
		if toAgent {
			sr.res.ToAgent = true
			c.dropPending()
			return nil
		}
		sr.res.Answers = append(sr.res.Answers, a)
	}
	sr.res.Completed = true
	c.dropPending()
	if len(sr.s.Thanks) > 0 {
		if _, _, err := c.playAll(sr.s.Thanks, false); err != nil {
			return err
		}
	}
	return nil
}

// ask asks q until a valid key, the agent digit, or MaxRetries failures.
func (sr *surveyRun) ask(q Question) (a Answer, toAgent bool, err error) {
	c, s := sr.c, &sr.s
	a.Question = q.Name
	for failures := 0; ; {
		d, got, err := sr.attempt(q)
		if err != nil {
			return a, false, err
		}
		why, prompt := EventTimeout, s.TimeoutPrompt
		if got {
			key := string(d)
			if s.AgentDigit != "" && key == s.AgentDigit {
				c.log.Info("survey: the citizen asked for an agent", "question", q.Name, "queue", s.AgentQueue)
				return a, true, nil
			}
			if meaning, ok := q.Answers[key]; ok {
				a.Digit, a.Meaning = key, meaning
				c.log.Debug("survey answer", "question", q.Name, "digit", key, "meaning", meaning)
				return a, false, nil
			}
			why, prompt = EventInvalid, s.InvalidPrompt
		}
		failures++
		c.log.Debug("survey failure", "question", q.Name, "event", why, "digit", keyOf(d, got), "failures", failures)
		if failures >= s.MaxRetries {
			c.log.Info("survey question unanswered", "question", q.Name, "failures", failures)
			return a, false, nil
		}
		if prompt != "" {
			d, got, err := c.playAll([]string{prompt}, true)
			if err != nil {
				return a, false, err
			}
			if got {
				c.pending = append(c.pending, d)
			}
		}
	}
}

// attempt gets one key for q: a kept one at once; else q's prompts, which a key stops;
// else a key within Timeout after them. got is false on a timeout.
func (sr *surveyRun) attempt(q Question) (d rune, got bool, err error) {
	c := sr.c
	if d, ok := c.takePending(); ok {
		return d, true, nil
	}
	if len(q.Prompts) > 0 {
		if d, got, err = c.playAll(q.Prompts, true); err != nil || got {
			return d, got, err
		}
	}
	d, expired, err := c.read(sr.s.Timeout)
	return d, !expired && err == nil, err
}

func keyOf(d rune, got bool) string {
	if !got {
		return ""
	}
	return string(d)
}

// answersString is "service=1,speed=" for logs.
func answersString(as []Answer) string {
	parts := make([]string, len(as))
	for i, a := range as {
		parts[i] = a.Question + "=" + a.Digit
	}
	return strings.Join(parts, ",")
}

// Validate checks s; paths start with prefix ("surveys.satisfaction" gives
// "surveys.satisfaction.questions[0].answers.1"). Defaults are taken into account (a zero
// field is fine) and s is not modified. It checks that there is at least one question, that
// questions have a unique name, prompts and answers, that every key is one of 0-9, * and #
// and no answer uses the agent digit, that agent_queue is set exactly when agent_digit is
// and names a queue (hasQueue may be nil to skip that check), and prompt name syntax; see
// [Survey.ValidatePrompts] for whether the prompts exist.
func (s Survey) Validate(prefix string, hasQueue func(string) bool) []FieldError {
	var errs []FieldError
	add := func(field, format string, args ...any) {
		errs = append(errs, FieldError{Path: joinPath(prefix, field), Problem: fmt.Sprintf(format, args...)})
	}
	s.eachPrompt(func(field, name string) {
		if !validName(name) {
			add(field, "bad prompt name %q", name)
		}
	})
	if s.Timeout < 0 {
		add("timeout", "must not be negative (0 = default %s)", DefaultSurveyTimeout)
	}
	if s.MaxRetries < 0 {
		add("max_retries", "must not be negative (0 = default %d)", DefaultSurveyMaxRetries)
	}
	agentKey := s.AgentDigit != "" && isDTMFKey(s.AgentDigit)
	if s.AgentDigit != "" && !agentKey {
		add("agent_digit", "bad key %q (want one of 0-9, * and #)", s.AgentDigit)
	}
	switch {
	case s.AgentDigit != "" && strings.TrimSpace(s.AgentQueue) == "":
		add("agent_queue", "required with agent_digit (the queue the citizen is put through to)")
	case s.AgentDigit == "" && s.AgentQueue != "":
		add("agent_queue", "needs agent_digit (the key that leads there)")
	case s.AgentQueue != "" && hasQueue != nil && !hasQueue(s.AgentQueue):
		add("agent_queue", "unknown queue %q", s.AgentQueue)
	}
	if len(s.Questions) == 0 {
		add("questions", "at least one question is required")
	}
	names := map[string]bool{}
	for i, q := range s.Questions {
		qp := fmt.Sprintf("questions[%d]", i)
		switch {
		case strings.TrimSpace(q.Name) == "":
			add(qp+".name", "required (answers are stored under it)")
		case !validName(q.Name):
			add(qp+".name", "bad question name %q (letters, digits and _-./: only)", q.Name)
		case names[q.Name]:
			add(qp+".name", "duplicate question %q", q.Name)
		}
		names[q.Name] = true
		if len(q.Prompts) == 0 {
			add(qp+".prompts", "at least one prompt is required (the question is asked again after a failure)")
		}
		if len(q.Answers) == 0 {
			add(qp+".answers", "at least one answer is required (digit: meaning)")
		}
		for _, key := range slices.Sorted(maps.Keys(q.Answers)) {
			field := qp + ".answers." + key
			switch meaning := q.Answers[key]; {
			case !isDTMFKey(key):
				add(field, "bad key %q (want one of 0-9, * and #)", key)
			case agentKey && key == s.AgentDigit:
				add(field, "key %q is the survey's agent_digit", key)
			case strings.TrimSpace(meaning) == "" || strings.ContainsFunc(meaning, func(r rune) bool { return r <= ' ' }):
				add(field, "want a meaning without spaces (e.g. %s), got %q", Satisfied, meaning)
			}
		}
	}
	return errs
}

// ValidatePrompts reports the prompts of s that hasPrompt does not know, with paths as in
// [Survey.Validate]. Names that are not valid prompt names are left to Validate.
func (s Survey) ValidatePrompts(prefix string, hasPrompt func(string) bool) []FieldError {
	var errs []FieldError
	s.eachPrompt(func(field, name string) {
		if validName(name) && !hasPrompt(name) {
			errs = append(errs, FieldError{Path: joinPath(prefix, field), Problem: fmt.Sprintf("unknown prompt %q", name)})
		}
	})
	return errs
}

// eachPrompt calls f with the field and name of every prompt s plays.
func (s Survey) eachPrompt(f func(field, name string)) {
	for i, p := range s.Intro {
		f(fmt.Sprintf("intro[%d]", i), p)
	}
	for i, q := range s.Questions {
		for j, p := range q.Prompts {
			f(fmt.Sprintf("questions[%d].prompts[%d]", i, j), p)
		}
	}
	for i, p := range s.Thanks {
		f(fmt.Sprintf("thanks[%d]", i), p)
	}
	if s.InvalidPrompt != "" {
		f("invalid_prompt", s.InvalidPrompt)
	}
	if s.TimeoutPrompt != "" {
		f("timeout_prompt", s.TimeoutPrompt)
	}
}
