package ivr

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
