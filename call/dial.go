package call

import (
	"time"

	"github.com/hotline12345/hotline/cdr"
	"github.com/hotline12345/hotline/ivr"
)

// SurveyRequest is one automated survey call to a citizen through an outbound trunk.
type SurveyRequest struct {
	Trunk       string // outbound trunk name
	Number      string // the citizen's number (checked against the trunk's dial plan)
	Script      string // survey name (ivr.Survey)
	Campaign    string
	CaseID      string
	Attempt     int
	RingTimeout time.Duration // 0: the trunk's default
}

// SurveyResult is how a survey call went.
type SurveyResult struct {
	CallID       string          // the call record's id
	Disposition  cdr.Disposition // answered, busy, no-answer, invalid-number, failed, interrupted
	Status       int             // final SIP status of our INVITE (0: never sent)
	Answers      []ivr.Answer    // per question, in order
	Satisfaction string          // the survey's verdict; not_rated if answered without a valid key; "" unanswered
	ToAgent      bool            // the citizen asked for an agent and was queued
	Err          error           // why it failed, for the log and the API
}

// TaskRequest is a human callback: a callback task queued for an agent with the queue's
// skill. When an agent is chosen the server rings the agent first, whispers the task (a
// prompt and the case number), then dials the citizen through the trunk and bridges them
// (progressive dialling).
type TaskRequest struct {
	Queue    string // callback queue
	Trunk    string
	Number   string
	CaseID   string
	Campaign string
	Attempt  int // human attempt number
	Priority int
	Parent   string // the record this task answers (a voicemail's); "" = none
	// Enqueued is the task's place in its queue; zero = now. A caller whose node was lost
	// (cluster) keeps the place they had.
	Enqueued time.Time
}

// TaskResult is how a callback task went.
type TaskResult struct {
	CallID      string
	Disposition cdr.Disposition // answered (the citizen talked to the agent), busy, no-answer, invalid-number, failed, interrupted
	Agent       string
	Status      int
	Err         error
}
