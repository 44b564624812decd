package ivr

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// testSurvey is the default config's satisfaction survey.
func testSurvey() Survey {
	return Survey{
		Intro: []string{"survey_intro"},
		Questions: []Question{{
			Name:    "service",
			Prompts: []string{"survey_question"},
			Answers: map[string]string{"1": Satisfied, "2": BasicallySatisfied, "3": Dissatisfied},
		}},
		Thanks:        []string{"survey_thanks"},
		InvalidPrompt: "invalid",
		TimeoutPrompt: "timeout",
		AgentDigit:    "0",
		AgentQueue:    "callback",
	}
}

// twoQuestions asks whether the case was resolved, then the satisfaction question.
func twoQuestions() Survey {
	s := testSurvey()
	s.Questions = append([]Question{{
		Name:    "resolved",
		Prompts: []string{"q_resolved"},
		Answers: map[string]string{"1": "yes", "2": "no"},
	}}, s.Questions...)
	return s
}

// surveyHarness runs RunSurvey on the fakes of fake_test.go.
type surveyHarness struct {
	*harness
	sres SurveyResult
}

func startSurvey(t *testing.T, s Survey) *surveyHarness {
	h := &surveyHarness{harness: newHarness(t)}
	go func() {
		defer close(h.done)
		h.sres, h.err = RunSurvey(h.ctx, s, h.media, testLogger(t), WithClock(h.clock))
	}()
	return h
}

const (
	playIntro    = "play survey_intro"
	playQuestion = "play survey_question"
	playThanks   = "play survey_thanks"
)

// quietQuestion is one pass of the question with no key: prompts end, 6 s pass.
func quietQuestion() []step {
	return seq(expect(playQuestion), finish(), expect("timer 6s"), fire())
}

func TestRunSurvey(t *testing.T) {
	tests := []struct {
		name    string
		survey  func() Survey // nil: testSurvey
		script  []step
		want    SurveyResult
		wantErr error
	}{
		{
			name:   "answered 1 during the question: satisfied",
			script: seq(expect(playIntro), finish(), expect(playQuestion), press("1"), expect("stop"), expect(playThanks), finish()),
			want:   SurveyResult{Answers: []Answer{{"service", "1", Satisfied}}, Satisfaction: Satisfied, Completed: true},
		},
		{
			name: "answered 3 after the question: dissatisfied",
			script: seq(expect(playIntro), finish(), expect(playQuestion), finish(), expect("timer 6s"), press("3"),
				expect(playThanks), finish()),
			want: SurveyResult{Answers: []Answer{{"service", "3", Dissatisfied}}, Satisfaction: Dissatisfied, Completed: true},
		},
		{
			name: "invalid key, then 2: basically satisfied",
			script: seq(expect(playIntro), finish(), expect(playQuestion), finish(), expect("timer 6s"), press("9"),
				expect("play invalid"), finish(),
				expect(playQuestion), finish(), expect("timer 6s"), press("2"),
				expect(playThanks), finish()),
			want: SurveyResult{Answers: []Answer{{"service", "2", BasicallySatisfied}}, Satisfaction: BasicallySatisfied, Completed: true},
		},
		{
			name: "timeouts up to max_retries: unanswered, not_rated, no failure prompt after the last",
			script: seq(expect(playIntro), finish(),
				quietQuestion(), expect("play timeout"), finish(),
				quietQuestion(),
				expect(playThanks), finish()),
			want: SurveyResult{Answers: []Answer{{Question: "service"}}, Satisfaction: NotRated, Completed: true},
		},
		{
			name: "invalid then timeout: unanswered",
			script: seq(expect(playIntro), finish(), expect(playQuestion), press("7"), expect("stop"),
				expect("play invalid"), finish(), quietQuestion(), expect(playThanks), finish()),
			want: SurveyResult{Answers: []Answer{{Question: "service"}}, Satisfaction: NotRated, Completed: true},
		},
		{
			name: "max_retries 3 and timeout 2s from the script",
			survey: func() Survey {
				s := testSurvey()
				s.MaxRetries, s.Timeout = 3, Duration(2*time.Second)
				return s
			},
			script: seq(expect(playIntro), finish(),
				expect(playQuestion), finish(), expect("timer 2s"), fire(), expect("play timeout"), finish(),
				expect(playQuestion), finish(), expect("timer 2s"), press("5"), expect("play invalid"), finish(),
				expect(playQuestion), finish(), expect("timer 2s"), press("1"),
				expect(playThanks), finish()),
			want: SurveyResult{Answers: []Answer{{"service", "1", Satisfied}}, Satisfaction: Satisfied, Completed: true},
		},
		{
			name:   "agent digit: ToAgent at once, no thanks",
			script: seq(expect(playIntro), finish(), expect(playQuestion), press("0"), expect("stop")),
			want:   SurveyResult{Satisfaction: NotRated, ToAgent: true},
		},
		{
			name: "agent digit after a failure",
			script: seq(expect(playIntro), finish(), quietQuestion(), expect("play timeout"), finish(),
				expect(playQuestion), finish(), expect("timer 6s"), press("0")),
			want: SurveyResult{Satisfaction: NotRated, ToAgent: true},
		},
		{
			name:    "hang-up during the question",
			script:  seq(expect(playIntro), finish(), expect(playQuestion), cancel(), expect("stop")),
			want:    SurveyResult{Satisfaction: NotRated},
			wantErr: context.Canceled,
		},
		{
			name:    "hang-up while waiting for the key",
			script:  seq(expect(playIntro), finish(), expect(playQuestion), finish(), expect("timer 6s"), cancel()),
			want:    SurveyResult{Satisfaction: NotRated},
			wantErr: context.Canceled,
		},
		{
			name:    "hang-up during the intro",
			script:  seq(expect(playIntro), cancel(), expect("stop")),
			want:    SurveyResult{Satisfaction: NotRated},
			wantErr: context.Canceled,
		},
		{
			name: "hang-up during the thanks: complete, with ctx's error",
			script: seq(expect(playIntro), finish(), expect(playQuestion), press("1"), expect("stop"),
				expect(playThanks), cancel(), expect("stop")),
			want:    SurveyResult{Answers: []Answer{{"service", "1", Satisfied}}, Satisfaction: Satisfied, Completed: true},
			wantErr: context.Canceled,
		},
		{
			name:   "key during the intro answers the first question; its prompts are skipped",
			script: seq(expect(playIntro), press("1"), expect("stop"), expect(playThanks), finish()),
			want:   SurveyResult{Answers: []Answer{{"service", "1", Satisfied}}, Satisfaction: Satisfied, Completed: true},
		},
		{
			name: "key during the failure prompt is the next answer",
			script: seq(expect(playIntro), finish(), quietQuestion(), expect("play timeout"), press("2"), expect("stop"),
				expect(playThanks), finish()),
			want: SurveyResult{Answers: []Answer{{"service", "2", BasicallySatisfied}}, Satisfaction: BasicallySatisfied, Completed: true},
		},
		{
			name: "keys during the thanks are ignored",
			script: seq(expect(playIntro), finish(), expect(playQuestion), press("1"), expect("stop"),
				expect(playThanks), press("3"), finish()),
			want: SurveyResult{Answers: []Answer{{"service", "1", Satisfied}}, Satisfaction: Satisfied, Completed: true},
		},
		{
			name:   "two questions, the second rates satisfaction",
			survey: twoQuestions,
			script: seq(expect(playIntro), finish(), expect("play q_resolved"), press("2"), expect("stop"),
				expect(playQuestion), finish(), expect("timer 6s"), press("3"), expect(playThanks), finish()),
			want: SurveyResult{Answers: []Answer{{"resolved", "2", "no"}, {"service", "3", Dissatisfied}},
				Satisfaction: Dissatisfied, Completed: true},
		},
		{
			name:   "two questions, the first unanswered",
			survey: twoQuestions,
			script: seq(expect(playIntro), finish(),
				expect("play q_resolved"), finish(), expect("timer 6s"), fire(), expect("play timeout"), finish(),
				expect("play q_resolved"), finish(), expect("timer 6s"), press("8"),
				expect(playQuestion), press("1"), expect("stop"), expect(playThanks), finish()),
			want: SurveyResult{Answers: []Answer{{Question: "resolved"}, {"service", "1", Satisfied}},
				Satisfaction: Satisfied, Completed: true},
		},
		{
			name:    "two questions, hang-up in the second: the first is kept",
			survey:  twoQuestions,
			script:  seq(expect(playIntro), finish(), expect("play q_resolved"), press("1"), expect("stop"), expect(playQuestion), cancel(), expect("stop")),
			want:    SurveyResult{Answers: []Answer{{"resolved", "1", "yes"}}, Satisfaction: NotRated},
			wantErr: context.Canceled,
		},
		{
			name:   "two questions, type-ahead into the second",
			survey: twoQuestions,
			script: seq(expect(playIntro), finish(), expect("play q_resolved"), press("1"), expect("stop"),
				expect(playQuestion), press("2"), expect("stop"), expect(playThanks), finish()),
			want: SurveyResult{Answers: []Answer{{"resolved", "1", "yes"}, {"service", "2", BasicallySatisfied}},
				Satisfaction: BasicallySatisfied, Completed: true},
		},
		{
			name: "no satisfaction question, no intro, no agent digit, no failure prompts",
			survey: func() Survey {
				return Survey{Questions: []Question{{Name: "resolved", Prompts: []string{"q_resolved"}, Answers: map[string]string{"1": "yes"}}},
					Thanks: []string{"survey_thanks"}}
			},
			script: seq(expect("play q_resolved"), press("0"), expect("stop"),
				expect("play q_resolved"), finish(), expect("timer 6s"), fire(), expect(playThanks), finish()),
			want: SurveyResult{Answers: []Answer{{Question: "resolved"}}, Completed: true},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := testSurvey()
			if tc.survey != nil {
				s = tc.survey()
			}
			h := startSurvey(t, s)
			for _, st := range tc.script {
				st(h.harness)
			}
			h.wait()
			if !errors.Is(h.err, tc.wantErr) || (tc.wantErr == nil) != (h.err == nil) {
				t.Errorf("error = %v, want %v", h.err, tc.wantErr)
			}
			if !reflect.DeepEqual(h.sres, tc.want) {
				t.Errorf("result = %+v\nwant     %+v", h.sres, tc.want)
			}
		})
	}
}

func TestRunSurveyNoMedia(t *testing.T) {
	_, err := RunSurvey(context.Background(), testSurvey(), nil, nil)
	if !errors.Is(err, ErrNotConfigured) {
		t.Errorf("RunSurvey(nil media) = %v, want ErrNotConfigured", err)
	}
}

// A closed digit channel leaves only timeouts; the survey still ends.
func TestRunSurveyDigitsClosed(t *testing.T) {
	h := &surveyHarness{harness: newHarness(t)}
	close(h.media.digits)
	go func() {
		defer close(h.done)
		h.sres, h.err = RunSurvey(h.ctx, testSurvey(), h.media, nil, WithClock(h.clock))
	}()
	for _, st := range seq(expect(playIntro), finish(), quietQuestion(), expect("play timeout"), finish(), quietQuestion(),
		expect(playThanks), finish()) {
		st(h.harness)
	}
	h.wait()
	if h.err != nil || h.sres.Satisfaction != NotRated || !h.sres.Completed {
		t.Errorf("RunSurvey = %+v, %v; want completed, not_rated", h.sres, h.err)
	}
}

func TestSurveyApplyDefaults(t *testing.T) {
	var s Survey
	s.ApplyDefaults()
	if s.Timeout.D() != DefaultSurveyTimeout || s.Timeout.D() != 6*time.Second {
		t.Errorf("timeout = %s, want 6s", s.Timeout)
	}
	if s.MaxRetries != 2 {
		t.Errorf("max_retries = %d, want 2", s.MaxRetries)
	}
	s = Survey{Timeout: Duration(time.Second), MaxRetries: 5}
	s.ApplyDefaults()
	if s.Timeout.D() != time.Second || s.MaxRetries != 5 {
		t.Errorf("ApplyDefaults changed set fields: %+v", s)
	}
	s = Survey{Timeout: -1, MaxRetries: -1}
	s.ApplyDefaults()
	if s.Timeout != -1 || s.MaxRetries != -1 {
		t.Errorf("ApplyDefaults changed negative fields: %+v", s)
	}
}

func TestSatisfactionQuestion(t *testing.T) {
	if i := testSurvey().SatisfactionQuestion(); i != 0 {
		t.Errorf("default survey: %d, want 0", i)
	}
	if i := twoQuestions().SatisfactionQuestion(); i != 1 {
		t.Errorf("two questions: %d, want 1", i)
	}
	s := testSurvey()
	s.Questions[0].Answers["4"] = "other"
	if i := s.SatisfactionQuestion(); i != -1 {
		t.Errorf("with a non-rating answer: %d, want -1", i)
	}
	s.Questions[0].Answers = map[string]string{"1": Satisfied, "2": Dissatisfied}
	if i := s.SatisfactionQuestion(); i != 0 {
		t.Errorf("two rating answers: %d, want 0", i)
	}
	if i := (Survey{Questions: []Question{{Name: "q"}}}).SatisfactionQuestion(); i != -1 {
		t.Errorf("no answers: %d, want -1", i)
	}
}

func TestSurveyValidateClean(t *testing.T) {
	for _, s := range []Survey{testSurvey(), twoQuestions()} {
		if errs := s.Validate("surveys.satisfaction", set("callback")); len(errs) != 0 {
			t.Errorf("Validate: %v", errs)
		}
	}
	s := testSurvey()
	s.AgentDigit, s.AgentQueue = "", ""
	if errs := s.Validate("", nil); len(errs) != 0 {
		t.Errorf("Validate without agent digit: %v", errs)
	}
	if errs := testSurvey().Validate("s", nil); len(errs) != 0 {
		t.Errorf("Validate with hasQueue nil: %v", errs)
	}
}

func TestSurveyValidate(t *testing.T) {
	tests := []struct {
		name     string
		edit     func(s *Survey)
		wantPath string
		wantText string
	}{
		{"no questions", func(s *Survey) { s.Questions = nil }, "surveys.x.questions", "at least one question"},
		{"digit 12", func(s *Survey) { s.Questions[0].Answers["12"] = "other" }, "surveys.x.questions[0].answers.12", `bad key "12"`},
		{"digit a", func(s *Survey) { s.Questions[0].Answers["a"] = "other" }, "surveys.x.questions[0].answers.a", `bad key "a"`},
		{"answer uses the agent digit", func(s *Survey) { s.Questions[0].Answers["0"] = "other" },
			"surveys.x.questions[0].answers.0", `key "0" is the survey's agent_digit`},
		{"empty meaning", func(s *Survey) { s.Questions[0].Answers["4"] = "" }, "surveys.x.questions[0].answers.4", "want a meaning"},
		{"bad agent digit", func(s *Survey) { s.AgentDigit = "00" }, "surveys.x.agent_digit", `bad key "00"`},
		{"agent digit without queue", func(s *Survey) { s.AgentQueue = "" }, "surveys.x.agent_queue", "required with agent_digit"},
		{"agent queue without digit", func(s *Survey) { s.AgentDigit = "" }, "surveys.x.agent_queue", "needs agent_digit"},
		{"unknown agent queue", func(s *Survey) { s.AgentQueue = "nosuch" }, "surveys.x.agent_queue", `unknown queue "nosuch"`},
		{"question without name", func(s *Survey) { s.Questions[0].Name = "" }, "surveys.x.questions[0].name", "required"},
		{"duplicate question", func(s *Survey) { s.Questions = append(s.Questions, s.Questions[0]) },
			"surveys.x.questions[1].name", `duplicate question "service"`},
		{"question without prompts", func(s *Survey) { s.Questions[0].Prompts = nil }, "surveys.x.questions[0].prompts", "at least one prompt"},
		{"question without answers", func(s *Survey) { s.Questions[0].Answers = nil }, "surveys.x.questions[0].answers", "at least one answer"},
		{"negative timeout", func(s *Survey) { s.Timeout = -1 }, "surveys.x.timeout", "must not be negative (0 = default 6s)"},
		{"negative max_retries", func(s *Survey) { s.MaxRetries = -1 }, "surveys.x.max_retries", "must not be negative (0 = default 2)"},
		{"bad prompt name", func(s *Survey) { s.Thanks = []string{"bad prompt"} }, "surveys.x.thanks[0]", `bad prompt name "bad prompt"`},
		{"bad question prompt name", func(s *Survey) { s.Questions[0].Prompts = []string{"q", "a b"} },
			"surveys.x.questions[0].prompts[1]", "bad prompt name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := testSurvey()
			tc.edit(&s)
			errs := s.Validate("surveys.x", set("callback"))
			if len(errs) != 1 || errs[0].Path != tc.wantPath || !strings.Contains(errs[0].Problem, tc.wantText) {
				t.Errorf("Validate = %v, want one problem %s: …%s…", errs, tc.wantPath, tc.wantText)
			}
		})
	}
}

func TestSurveyValidatePrompts(t *testing.T) {
	s := twoQuestions()
	s.Intro = append(s.Intro, "bad name") // Validate's business, not reported here
	known := set("survey_intro", "survey_question", "survey_thanks", "invalid")
	var got []string
	for _, e := range s.ValidatePrompts("surveys.x", known) {
		got = append(got, e.Error())
	}
	want := []string{
		`surveys.x.questions[0].prompts[0]: unknown prompt "q_resolved"`,
		`surveys.x.timeout_prompt: unknown prompt "timeout"`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("ValidatePrompts = %q\nwant %q", got, want)
	}
}
