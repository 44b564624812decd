package call

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/hotline12345/hotline/cdr"
	"github.com/hotline12345/hotline/ivr"
	"github.com/hotline12345/hotline/media"
	"github.com/hotline12345/hotline/sip"
)

// StageDialing: we are calling the citizen (a survey, or a callback task's citizen leg).
// StageSurvey: the citizen answers the survey.
const (
	StageDialing = "dialing"
	StageSurvey  = "survey"
)

// TrunkLeg is a leg we place through an outbound trunk (sip.Outbound): Wait blocks until it
// is answered (nil), refused (*sip.DialError) or cancelled (sip.ErrDialCanceled).
type TrunkLeg interface {
	AgentLeg
	Wait() error
}

// Trunks places calls through the outbound trunks (the SIP server). A number outside the
// trunk's dial plan is refused with an error wrapping sip.ErrNotInDialPlan, and nothing is sent.
type Trunks interface {
	DialTrunk(ctx context.Context, trunk, number string, o sip.DialOptions) (TrunkLeg, error)
	TrunkAllows(trunk, number string) bool // the trunk's dial plan allows the number
}

// defaultRingTimeout bounds an outbound INVITE nobody answers.
const defaultRingTimeout = 30 * time.Second

// evSurvey: the survey runner's answers (before it hands the citizen to an agent, if asked).
type evSurvey struct{ res ivr.SurveyResult }

// surveyState is what the loop knows of a survey call.
type surveyState struct {
	req    SurveyRequest
	script ivr.Survey
	res    ivr.SurveyResult
	status int
	err    error
}

// Survey places one automated survey call and returns when it is over (record written).
// ctx ending hangs the call up (the dialer stopping): the call ends interrupted.
func (m *Manager) Survey(ctx context.Context, r SurveyRequest) SurveyResult {
	c := m.newCall(cdr.Record{
		Direction: cdr.DirectionSurvey, Trunk: r.Trunk, Caller: m.cfg.CallerIDs[r.Trunk], Called: r.Number, Start: m.cfg.Clock.Now(),
		Campaign: r.Campaign, Target: r.CaseID, Attempt: r.Attempt, CaseNumber: r.CaseID,
	}, "campaign", r.Campaign, "case", r.CaseID)
	st := &surveyState{req: r}
	c.survey = st
	m.runCall(c, func() { c.runSurvey(ctx) })
	res := SurveyResult{
		CallID: c.id, Disposition: c.rec.Disposition, Status: st.status, Answers: st.res.Answers,
		Satisfaction: c.rec.Satisfaction, ToAgent: st.res.ToAgent, Err: st.err,
	}
	if res.Disposition == cdr.DispositionAnswered && res.Satisfaction == "" {
		res.Satisfaction = cdr.SatisfactionNotRated
	}
	return res
}

func (c *Call) runSurvey(ctx context.Context) {
	st := c.survey
	stop := context.AfterFunc(ctx, func() { c.cancel(ErrShutdown) })
	defer stop()
	script, ok := c.plan.Surveys[st.req.Script]
	if !ok {
		c.endDial(fmt.Errorf("%w: unknown survey script %q", ErrLocal, st.req.Script))
		return
	}
	st.script = script
	s, err := c.m.media.NewStream(c.log)
	if err != nil {
		c.endDial(fmt.Errorf("%w: %w", ErrLocal, err))
		return
	}
	c.s = s
	c.stream.Store(&s)
	defer s.Close()
	c.setStage(StageDialing)
	leg, err := c.m.dialCitizen(c.ctx, st.req.Trunk, st.req.Number, st.req.RingTimeout, s.LocalAddr(), nil)
	if err != nil {
		c.endDial(err)
		return
	}
	c.leg = leg
	c.citizenAnswered(leg, s)
	c.startSurvey()
	c.loop()
	c.finish()
}

// dialCitizen calls number through trunk offering local, and waits for the answer, the ring
// timeout (ErrRingTimeout) or ctx. codecs nil: the trunk's order.
func (m *Manager) dialCitizen(ctx context.Context, trunk, number string, timeout time.Duration, local netip.AddrPort, codecs []uint8) (TrunkLeg, error) {
	if m.cfg.Trunks == nil {
		return nil, fmt.Errorf("%w: no outbound trunks", ErrLocal)
	}
	if timeout <= 0 {
		timeout = defaultRingTimeout
	}
	dctx, cancel := context.WithTimeoutCause(ctx, timeout, ErrRingTimeout)
	defer cancel()
	leg, err := m.cfg.Trunks.DialTrunk(dctx, trunk, number, sip.DialOptions{Local: local, Codecs: codecs})
	if err != nil {
		if errors.Is(err, sip.ErrNotInDialPlan) {
			return nil, fmt.Errorf("%w: %w", ErrNotInPlan, err)
		}
		return nil, fmt.Errorf("%w: %w", ErrLocal, err)
	}
	if err := leg.Wait(); err != nil {
		if errors.Is(err, sip.ErrDialCanceled) {
			if cause := context.Cause(dctx); cause != nil {
				return nil, cause
			}
		}
		return nil, err
	}
	return leg, nil
}

// endDial records an outbound call whose citizen leg never answered.
func (c *Call) endDial(err error) {
	e := dialEnding(err)
	if c.ctx.Err() != nil && !errors.Is(err, ErrRingTimeout) {
		e.Cause = context.Cause(c.ctx)
	}
	if c.survey != nil {
		c.survey.status, c.survey.err = e.LegStatus, err
	}
	c.log.Info("citizen not reached", "error", err)
	c.end(e)
}

// citizenAnswered takes the answered citizen leg: media, record, journal.
func (c *Call) citizenAnswered(leg TrunkLeg, s Stream) {
	md := leg.Media()
	now := c.m.cfg.Clock.Now()
	c.rec.SIPCallID = leg.SIPCallID()
	c.rec.Answer, c.rec.Codec, c.rec.SIPStatus = now, media.Codec(md.PayloadType).String(), 200
	if c.survey != nil {
		c.survey.status = 200
	}
	if c.task != nil {
		c.task.status = 200
	}
	setRemote(s, md, leg.SignalAddr())
	s.Start(c.ctx)
	c.applyMedia(md)
	c.m.cfg.Records.Begin(c.rec)
	c.log.Info("citizen answered", "sip_call_id", leg.SIPCallID())
}

// startSurvey runs the survey script on its own goroutine (like the IVR): it plays through
// the citizen's stream, reads the digits the loop hands it, and may queue the citizen for
// an agent.
func (c *Call) startSurvey() {
	ctx, cancel := context.WithCancelCause(c.ctx)
	t := &ivrTask{digits: make(chan rune, 32), cancel: cancel}
	c.ivr = t
	c.setStage(StageSurvey)
	script := c.survey.script
	iq := &ivrQueue{c: c}
	media := ivrMedia{c: c, s: c.s, digits: t.digits}
	c.spawn(func() {
		res, err := ivr.RunSurvey(ctx, script, media, c.log, ivr.WithClock(c.m.cfg.Clock))
		c.post(evSurvey{res: res})
		if err == nil && res.ToAgent && script.AgentQueue != "" {
			err = iq.Join(ctx, script.AgentQueue)
		}
		cancel(nil)
		c.post(evIVRDone{err: err})
	})
}

// surveyAnswered stores the answers on the record.
func (c *Call) surveyAnswered(res ivr.SurveyResult) {
	c.survey.res = res
	digits := make([]string, 0, len(res.Answers))
	for _, a := range res.Answers {
		digits = append(digits, a.Digit)
	}
	c.rec.SurveyAnswers = strings.Join(digits, ",")
	c.rec.Satisfaction = res.Satisfaction
	c.snapshot()
}

// trunkServer is the SIP server's dialling through outbound trunks.
type trunkServer interface {
	DialTrunk(ctx context.Context, trunk, number string, o sip.DialOptions) (*sip.Outbound, error)
	TrunkAllows(trunk, number string) bool
}

// SIPTrunks places calls through the SIP server's outbound trunks.
func SIPTrunks(s trunkServer) Trunks { return sipTrunks{s} }

type sipTrunks struct{ s trunkServer }

func (t sipTrunks) TrunkAllows(trunk, number string) bool { return t.s.TrunkAllows(trunk, number) }

func (t sipTrunks) DialTrunk(ctx context.Context, trunk, number string, o sip.DialOptions) (TrunkLeg, error) {
	out, err := t.s.DialTrunk(ctx, trunk, number, o)
	if err != nil {
		return nil, err
	}
	return out, nil
}
