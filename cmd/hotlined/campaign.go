package main

import (
	"context"
	"fmt"
	"regexp"
	"sync/atomic"
	"time"

	sipgosip "github.com/emiago/sipgo/sip"

	"github.com/hotline12345/hotline/call"
	"github.com/hotline12345/hotline/callback"
	"github.com/hotline12345/hotline/cdr"
	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/sip"
)

// The outbound side: trunks for calls we place, the campaign dialer (云回访) and the hook
// that schedules a survey after an answered inbound call.

// sipOutboundTrunks turns the configured outbound trunks into the SIP server's.
func sipOutboundTrunks(cfg *config.Config) ([]sip.OutboundTrunk, error) {
	out := make([]sip.OutboundTrunk, 0, len(cfg.OutboundTrunks))
	for _, t := range cfg.OutboundTrunks {
		var gw sipgosip.Uri
		if err := sipgosip.ParseUri(t.Gateway, &gw); err != nil {
			return nil, fmt.Errorf("config: outbound trunk %s: gateway: %w", t.Name, err)
		}
		ot := sip.OutboundTrunk{
			Name: t.Name, Gateway: gw, Transport: t.Transport, Username: t.Username, Password: t.Password,
			CallerID: t.CallerID, MaxChannels: t.MaxChannels, CPS: t.MaxCPS, RingTimeout: t.RingTimeout.D(),
			DialPlan: []*regexp.Regexp(t.CompiledDialPlan()), SRTP: sip.SRTPPolicy(t.SRTP),
		}
		for _, c := range t.Codecs {
			pt, _ := sip.CodecPayload(c)
			ot.Codecs = append(ot.Codecs, pt)
		}
		out = append(out, ot)
	}
	return out, nil
}

// recordsTap is the records sink of the calls: the writer, and the after-call rule's look
// at every finished record (set once the dialer exists).
type recordsTap struct {
	*cdr.Writer
	after atomic.Pointer[func(cdr.Record)]
}

func (r *recordsTap) Write(rec cdr.Record) {
	r.Writer.Write(rec)
	if f := r.after.Load(); f != nil {
		(*f)(rec)
	}
}

// campaignDefaults are the callback section as a campaign's defaults.
func campaignDefaults(cb config.Callback) callback.Campaign {
	c := callback.Campaign{
		Trunk: cb.Trunk,
		Window: callback.Window{From: cb.Window.From, To: cb.Window.To, Days: cb.Window.Days,
			Holidays: cb.Window.Holidays, Workdays: cb.Window.Workdays},
		MaxConcurrent: cb.MaxConcurrent, CPS: cb.MaxCPS, MaxAttempts: cb.MaxAttempts,
		Retry: callback.RetryDelays{Busy: cb.Retry.Busy.D(), NoAnswer: cb.Retry.NoAnswer.D(),
			Failed: cb.Retry.Failed.D(), Interrupted: cb.Retry.Interrupted.D()},
		RingTimeout: cb.RingTimeout.D(), Deadline: cb.Deadline.D(), Fallback: cb.Queue,
		DoNotCall: cb.DoNotCall,
	}
	if cb.FallbackDissatisfied != nil {
		c.FallbackDissatisfied = *cb.FallbackDissatisfied
	}
	return c
}

// newDialer opens the campaign store beside the records and makes the dialer; it runs
// from serve and stops first on shutdown.
func (a *app) newDialer(ctx context.Context, dsn string, loc *time.Location, tap *recordsTap) error {
	if len(a.cfg.OutboundTrunks) == 0 {
		return nil // no outbound trunk: no campaigns
	}
	store, err := callback.OpenStore(ctx, dsn)
	if err != nil {
		return fmt.Errorf("campaign store: %w", err)
	}
	a.campaigns = store
	cb := a.cfg.CallbackSettings()
	var rule *callback.AfterCallRule
	if ac := cb.AfterCall; ac != nil {
		trunk := ac.Trunk
		if trunk == "" {
			trunk = cb.Trunk
		}
		rule = &callback.AfterCallRule{Queues: ac.Queues, Delay: ac.Delay.D(), Script: ac.Script, Trunk: trunk}
	}
	d, err := callback.New(callback.Config{
		Store: store, Calls: a.calls, Trunks: a.sip, Location: loc, AtRisk: cb.AtRisk.D(),
		Scripts:  func(name string) bool { _, ok := a.cfg.Surveys[name]; return ok },
		Defaults: campaignDefaults(cb), AfterCall: rule, Admit: a.writer.Accepting, Logger: a.log, Registerer: a.reg,
	})
	if err != nil {
		return err
	}
	a.dialer = d
	a.dialerRun = newBackground()
	if rule != nil {
		f := d.AfterCall
		tap.after.Store(&f)
	}
	return nil
}

// runDialer runs the dialer until stopDialer.
func (a *app) runDialer() {
	a.dialerRun.start(func(ctx context.Context) {
		if err := a.dialer.Run(ctx); err != nil && ctx.Err() == nil {
			a.log.Error("campaign dialer stopped", "error", err)
		}
	})
}

// dialerStopTimeout bounds the dialer's stop: its calls are hung up and saved as interrupted.
const dialerStopTimeout = 20 * time.Second

// stopDialer stops dialling: calls in flight end interrupted and are saved, to be retried
// after the restart by the campaign's rules.
func (a *app) stopDialer() {
	if !a.dialerRun.stop(dialerStopTimeout) {
		a.log.Error("the campaign dialer did not stop in time", "timeout", dialerStopTimeout)
	}
}

// lateTrunks is call.Trunks before the SIP server exists (the manager is made first, as
// the server's handlers are the manager's).
type lateTrunks struct{ call.Trunks }

// callerIDs maps each outbound trunk to the number it presents.
func callerIDs(cfg *config.Config) map[string]string {
	m := make(map[string]string, len(cfg.OutboundTrunks))
	for _, t := range cfg.OutboundTrunks {
		m[t.Name] = t.CallerID
	}
	return m
}
