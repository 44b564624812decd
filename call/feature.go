package call

import (
	"context"
	"time"

	"github.com/hotline12345/hotline/sip"
)

// Feature codes agents dial from their softphones.
const (
	CodeLoginReady = "*21" // log in and become ready
	CodeLogout     = "*22"
	CodePause      = "*23" // pause; *23 followed by digits gives a reason code, e.g. *2301
	CodeReady      = "*24"
)

// HandleAgentCall serves an INVITE from an agent's own phone (sip.Config.OnAgentCall):
// feature codes change the agent's state and answer with a short confirmation prompt; a
// call to a routed number (e.g. 12345, to test) runs like a citizen's call.
func (m *Manager) HandleAgentCall(leg *sip.Inbound) {
	agent, code := leg.Agent(), leg.Called()
	if m.cfg.AgentSRTP == sip.SRTPRequired && leg.Media().SRTP == nil {
		// The sip package took the offer as agents' calls are optional; ours say required.
		m.log.Info("agent call refused: SRTP required", "agent", agent, "sip_call_id", leg.SIPCallID())
		leg.Reject(488, "Not Acceptable Here")
		return
	}
	if _, ok := m.plan.Load().routes[code]; ok {
		m.HandleInbound(leg)
		return
	}
	if mode, target, ok := supervisorCode(code); ok { // *25/*26/*27<agent> (monitor.go)
		m.monitorByCode(leg, mode, target)
		return
	}
	log := m.log.With("agent", agent, "code", code, "sip_call_id", leg.SIPCallID())
	var err error
	var prompt string
	switch {
	case code == CodeLoginReady:
		if err = m.acd.Login(agent); err == nil {
			err = m.acd.Ready(agent)
		}
		prompt = "logged_in"
	case code == CodeLogout:
		err, prompt = m.acd.Logout(agent, "feature-code"), "logged_out"
	case code == CodeReady:
		err, prompt = m.acd.Ready(agent), "ready"
	case len(code) >= len(CodePause) && code[:len(CodePause)] == CodePause:
		reason := "break"
		if len(code) > len(CodePause) {
			reason = "code-" + code[len(CodePause):]
		}
		err, prompt = m.acd.Pause(agent, reason), "paused"
	default:
		log.Info("unknown feature code")
		leg.Reject(404, "Not Found")
		return
	}
	if err != nil {
		log.Info("feature code refused", "error", err)
		leg.Reject(403, "Forbidden")
		return
	}
	log.Info("agent feature code")
	m.confirm(leg, prompt)
}

// confirm answers the agent's feature-code call, plays the confirmation and hangs up.
func (m *Manager) confirm(leg *sip.Inbound, prompt string) {
	log := m.log.With("agent", leg.Agent(), "sip_call_id", leg.SIPCallID())
	s, err := m.media.NewStream(log)
	if err != nil {
		leg.Reject(503, "Service Unavailable")
		return
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(m.base, 20*time.Second)
	defer cancel()
	remote, err := leg.Answer(ctx, s.LocalAddr())
	if err != nil {
		return
	}
	setRemote(s, remote, leg.SignalAddr())
	s.Start(ctx)
	if p, ok := m.prompt(prompt); ok {
		select {
		case <-s.Play(p):
		case <-leg.Done():
		case <-ctx.Done():
		}
	}
	leg.Hangup(context.WithoutCancel(ctx), "feature code done")
}

// AgentReachability follows the registrar (sip.RegistrarConfig.OnChange): an agent whose
// last softphone binding is gone (expired, unregistered, failed qualify) is logged out of
// the queues with that reason, so that no caller is offered to a phone that cannot ring.
func (m *Manager) AgentReachability(user string, bindings []sip.Binding, reason string) {
	if len(bindings) > 0 || reason == sip.ReasonRegister {
		return
	}
	m.log.Info("agent's phone unreachable: logging out", "agent", user, "reason", reason)
	m.acd.Unreachable(user)
}
