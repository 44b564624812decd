// Package call is the per-call controller. Each call is one goroutine running one select
// loop (loop.go): leg events, digits, ACD offers, ring results, the agent's answer, hold,
// transfer, timers and the IVR's requests arrive as events, and only that loop writes the
// call's stage and record. The package declares the small interfaces it needs from the
// outside world (below) — a SIP leg, a media stream, the queueing side, the agent phones,
// the record sink and a clock — and its tests drive calls through fakes of them.
package call

import (
	"context"
	"log/slog"
	"net/netip"
	"time"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/cdr"
	"github.com/hotline12345/hotline/ivr"
	"github.com/hotline12345/hotline/media"
	"github.com/hotline12345/hotline/sip"
)

// Leg is one SIP leg of a call as the loop sees it (sip.Inbound and sip.Outbound).
type Leg interface {
	SIPCallID() string
	Media() sip.Media
	SignalAddr() netip.Addr         // where the remote's signalling comes from: RTP may be latched from it (NAT)
	MediaUpdates() <-chan sip.Media // after each accepted re-INVITE (hold, unhold, new address)
	Digits() <-chan rune            // SIP INFO digits
	Refers() <-chan *sip.Refer      // blind transfers asked by the remote party
	Done() <-chan struct{}          // closed when the leg ended
	End() (side, cause string, status int)
	Hangup(ctx context.Context, cause string) error // BYE if the leg is up
}

// InboundLeg is a call we receive (a citizen's, or an agent's own phone dialling in).
type InboundLeg interface {
	Leg
	Caller() string
	Called() string
	Trunk() string
	Received() time.Time
	AnswerDelay() time.Duration
	Ring() error
	Answer(ctx context.Context, local netip.AddrPort) (sip.Media, error)
	Reject(code int, reason string) error
}

// AgentLeg is an answered call to an agent's phone.
type AgentLeg interface {
	Leg
	Release() // forget the dialog once the leg has ended
}

// Stream is a leg's RTP session (media.Session).
type Stream interface {
	LocalAddr() netip.AddrPort
	SetRemote(addr netip.AddrPort, codec media.Codec, dtmfPT uint8)
	SetAudioPayloadType(pt uint8)
	AllowSource(ip netip.Addr)          // RTP may be latched from this address too (the signalling's)
	SetSending(on bool)                 // false: send nothing (the remote is sendonly or inactive)
	SetSRTP(keys *media.SRTPKeys) error // nil: plain RTP
	Start(ctx context.Context)
	Play(prompts ...*media.Prompt) <-chan struct{}
	Loop(p *media.Prompt)
	StopPlay()
	Digits() <-chan rune // RFC 4733
	Done() <-chan struct{}
	Err() error
	SetInactivityTimeout(d time.Duration)
	Stats() media.SessionStats
	Close() error
}

// Bridge relays media between two streams (media.Bridge).
type Bridge interface {
	Start()
	Stop()
}

// Media makes streams and bridges them.
type Media interface {
	NewStream(log *slog.Logger) (Stream, error) // an RTP session on a fresh port
	Bridge(a, b Stream) Bridge
}

// Distributor is the queueing side (acd.ACD).
type Distributor interface {
	Enqueue(c acd.Caller) (pos int, err error)
	Abandon(callID string)
	ExitWithKey(callID, key string)
	Position(callID string) (pos int, ewt time.Duration, ok bool)
	RingAnsweredLeg(callID, agentID, leg string) bool
	RingFailed(callID, agentID string, why acd.RingFailure)
	CallEnded(callID, agentID, side string)
	AgentLost(callID, agentID string) // the agent's phone vanished mid-call: ended, and the agent paused
	Transferred(callID, fromAgent, toQueue string) (pos int, err error)
	QueueConfig(name string) (acd.QueueConfig, bool)
}

// ACD is the whole distributor: what the calls use, the agents' inputs and the views.
// acd.ACD (one node) and cluster.ACD (several, sharing PostgreSQL) are both one.
type ACD interface {
	Distributor
	HasQueue(name string) bool
	Login(agentID string) error
	Ready(agentID string) error
	Pause(agentID, reason string) error
	Logout(agentID, reason string) error
	Unreachable(agentID string)
	Agents() []acd.AgentView
	Queues() []acd.QueueView
	Close()
}

// Phones rings agents' softphones.
type Phones interface {
	// Ring calls the agent's registered phone offering local as our RTP address and
	// returns when the agent answered. Errors: ErrUnreachable (no phone, no answer, or it
	// failed), ErrBusy (the agent declined: 486/600/603), ErrRingCancelled (ctx ended),
	// ErrLocal (our own failure).
	Ring(ctx context.Context, r RingRequest) (AgentLeg, error)
}

// RingRequest is one ring of an agent's phone for a caller.
type RingRequest struct {
	Agent   string
	Caller  string // shown on the agent's phone
	CallID  string
	Queue   string
	Local   netip.AddrPort
	Codecs  []uint8
	Timeout time.Duration // 0: until ctx ends
}

// Records is where records and agent events go (cdr.Writer).
type Records interface {
	Begin(rec cdr.Record)    // the call was answered or moved on (queue, agent): durable before it returns
	Write(rec cdr.Record)    // the call ended: never blocks
	Event(ev cdr.AgentEvent) // an agent or queue event: never blocks
}

// Prompts finds prompts by name (media.Prompts).
type Prompts interface {
	Get(name string) (*media.Prompt, bool)
}

// Clock is the source of time for calls (ivr.Clock): record times, answer delay,
// announcements.
type Clock = ivr.Clock
