package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/api"
	"github.com/hotline12345/hotline/call"
	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/ivr"
	"github.com/hotline12345/hotline/media"
	"github.com/hotline12345/hotline/notice"
	"github.com/hotline12345/hotline/sip"
)

// Configuration reload (SIGHUP, POST /api/v1/config/reload). The file is read and
// validated whole first; on any problem nothing is applied. Then what a running server
// can take is applied to the calls that start from now on, and the rest is reported as
// needing a restart:
//
//   - live: menus, routes (hours, holidays, 调休), the queues' call-side settings (music,
//     prompts, announcements, rating, callback offer), survey scripts, the prompt set and
//     language, the inbound trunks (sources, numbers, limits, codecs, SRTP), agents'
//     passwords, and the API tokens;
//   - restart: listen addresses, TLS, the data dir and record store, RTP, timeouts and
//     guards of SIP, the queues' routing (strategy, skills, timers, escalations), queues
//     or agents added or removed and agents' skills, outbound trunks, the callback
//     section, records and log settings, memory limit.
//
// A call keeps the plan it started with, so no caller changes menu mid-call.

// liveSections are the config's top-level keys a reload applies (in part: queues and
// agents, see acdChanges; http, its tokens).
var liveSections = map[string]bool{"http": true, "prompts": true, "trunks": true, "routes": true,
	"menus": true, "queues": true, "agents": true, "surveys": true}

// reloadResult is the answer of a reload.
type reloadResult struct {
	Config        string   `json:"config"`         // the file read, or "embedded" (no --config: nothing can change)
	Applied       []string `json:"applied"`        // what new calls now follow
	RestartNeeded []string `json:"restart_needed"` // changed, but applied only at the next start
}

// reloader holds what a reload changes besides the call manager's plan.
type reloader struct {
	mu        sync.Mutex // one reload at a time
	opts      options
	started   *config.Config // as started: what needs a restart is compared with it
	cfg       *config.Config // what new calls follow (the last applied)
	passwords atomic.Pointer[map[string]string]
	prompts   *media.Prompts
}

func (r *reloader) password(id string) (string, bool) {
	p, ok := (*r.passwords.Load())[id]
	return p, ok
}

func (r *reloader) setPasswords(agents []config.Agent) {
	m := make(map[string]string, len(agents))
	for _, ag := range agents {
		m[ag.ID] = ag.Password
	}
	r.passwords.Store(&m)
}

// noticeChecks tell the notice store what exists now: prompts, menus and routes of the
// configuration in force.
func (a *app) noticeChecks() notice.Checks {
	r := a.reloads
	cur := func() (*config.Config, *media.Prompts) {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.cfg, r.prompts
	}
	return notice.Checks{
		Prompt: func(name string) bool {
			cfg, ps := cur()
			return call.HasPrompt(ps, cfg.Prompts.Language, name)
		},
		Menu: func(name string) bool { cfg, _ := cur(); _, ok := cfg.Menus[name]; return ok },
		Route: func(number string) bool {
			cfg, _ := cur()
			return slices.ContainsFunc(cfg.Routes, func(rt ivr.Route) bool { return rt.Number == number })
		},
	}
}

// promptSet is the configured prompts with the emergency notices' uploaded recordings.
type promptSet struct {
	base    *media.Prompts
	notices *notice.Store
}

func (p promptSet) Get(name string) (*media.Prompt, bool) {
	if strings.HasPrefix(name, notice.UploadedPrefix) && p.notices != nil {
		return p.notices.Get(name)
	}
	return p.base.Get(name)
}

// reload reads the config file again and applies it (see the top of this file).
func (a *app) reload(ctx context.Context) (any, error) {
	r := a.reloads
	r.mu.Lock()
	defer r.mu.Unlock()
	next, prompts, err := loadConfig(r.opts)
	if err != nil {
		var problems []string
		var es config.Errors
		var e *config.Error
		switch {
		case errors.As(err, &es):
			for _, p := range es {
				problems = append(problems, p.Error())
			}
		case errors.As(err, &e):
			problems = []string{e.Error()}
		default:
			problems = []string{err.Error()}
		}
		a.log.Error("configuration reload refused: nothing applied", "problems", strings.Join(problems, "; "))
		return nil, &api.ReloadError{Problems: problems}
	}
	cur, started := r.cfg, r.started
	res := reloadResult{Config: r.opts.ConfigFile, Applied: []string{}, RestartNeeded: []string{}}
	if res.Config == "" {
		res.Config = "embedded"
	}
	applied := *cur // what is in force after this reload

	// Every section not applied live below is restart-only: reported when it differs from
	// the config as started (a section added to config.Config later is restart-only until
	// it is taught here).
	vs, vn := reflect.ValueOf(*started), reflect.ValueOf(*next)
	for i := range vs.NumField() {
		name, _, _ := strings.Cut(vs.Type().Field(i).Tag.Get("yaml"), ",")
		if liveSections[name] {
			continue
		}
		if !reflect.DeepEqual(vs.Field(i).Interface(), vn.Field(i).Interface()) {
			res.RestartNeeded = append(res.RestartNeeded, name)
		}
	}
	if !reflect.DeepEqual(inbandTrunks(started), inbandTrunks(next)) {
		res.RestartNeeded = append(res.RestartNeeded, "trunks (inband_dtmf)")
	}
	httpOld, httpNew := started.HTTP, next.HTTP
	httpOld.Tokens, httpNew.Tokens = nil, nil
	if !reflect.DeepEqual(httpOld, httpNew) {
		res.RestartNeeded = append(res.RestartNeeded, "http (but tokens)")
	}

	// The ACD's queues and agents are built at start: routing changes wait for a restart.
	oldCall, _, _ := acdConfig(cur)
	_, oldQ, oldA := acdConfig(started)
	newCall, newQ, newA := acdConfig(next)
	callQueuesSame := reflect.DeepEqual(oldCall, newCall)
	res.RestartNeeded = append(res.RestartNeeded, acdChanges(oldQ, newQ, oldA, newA)...)
	queuesSame := slices.EqualFunc(oldQ, newQ, func(x, y acd.QueueConfig) bool { return x.Name == y.Name })

	// The plan: menus, routes, call-side queue settings, surveys, prompts.
	if !reflect.DeepEqual(cur.Menus, next.Menus) || !reflect.DeepEqual(cur.Routes, next.Routes) ||
		!callQueuesSame || !reflect.DeepEqual(cur.Surveys, next.Surveys) ||
		!reflect.DeepEqual(cur.Prompts, next.Prompts) {
		switch {
		case !queuesSame:
			res.RestartNeeded = append(res.RestartNeeded, "menus, routes, queues, surveys, prompts (a queue was added or removed)")
		default:
			err := a.calls.SetPlan(call.Plan{Menus: next.Menus, Routes: next.Routes, Queues: newCall, Surveys: next.Surveys,
				Prompts: promptSet{base: prompts, notices: a.notices}, Language: next.Prompts.Language})
			if err != nil {
				return nil, &api.ReloadError{Problems: []string{err.Error()}}
			}
			applied.Menus, applied.Routes, applied.Queues, applied.Surveys, applied.Prompts =
				next.Menus, next.Routes, next.Queues, next.Surveys, next.Prompts
			r.prompts = prompts
			for _, s := range []struct {
				name string
				same bool
			}{
				{"menus", reflect.DeepEqual(cur.Menus, next.Menus)}, {"routes", reflect.DeepEqual(cur.Routes, next.Routes)},
				{"queues (call settings)", callQueuesSame},
				{"surveys", reflect.DeepEqual(cur.Surveys, next.Surveys)}, {"prompts", reflect.DeepEqual(cur.Prompts, next.Prompts)},
			} {
				if !s.same {
					res.Applied = append(res.Applied, s.name)
				}
			}
		}
	}
	if !reflect.DeepEqual(cur.Trunks, next.Trunks) {
		a.sip.SetTrunks(inboundTrunks(next))
		applied.Trunks = next.Trunks
		res.Applied = append(res.Applied, "trunks")
	}
	if !reflect.DeepEqual(cur.Agents, next.Agents) {
		r.setPasswords(next.Agents)
		applied.Agents = next.Agents // the ACD keeps its agents; acdChanges reported what waits
		if !slices.EqualFunc(cur.Agents, next.Agents, func(x, y config.Agent) bool { return x.ID == y.ID && x.Password == y.Password }) {
			res.Applied = append(res.Applied, "agents (passwords)")
		}
	}
	if !reflect.DeepEqual(cur.HTTP.Tokens, next.HTTP.Tokens) {
		tokens, err := apiTokens(next, a.log)
		if err == nil {
			err = a.authn.SetTokens(tokens)
		}
		if err != nil {
			return res, fmt.Errorf("http.tokens: %w", err)
		}
		applied.HTTP.Tokens = next.HTTP.Tokens
		res.Applied = append(res.Applied, "http.tokens")
	}
	r.cfg = &applied
	a.log.Info("configuration reloaded", "applied", res.Applied, "restart_needed", res.RestartNeeded,
		"live_calls", a.calls.Active())
	return res, nil
}

// acdChanges names the ACD changes a running server does not take.
func acdChanges(oldQ, newQ []acd.QueueConfig, oldA, newA []acd.AgentConfig) []string {
	var out []string
	byName := func(qs []acd.QueueConfig) map[string]acd.QueueConfig {
		m := map[string]acd.QueueConfig{}
		for _, q := range qs {
			m[q.Name] = q
		}
		return m
	}
	o, n := byName(oldQ), byName(newQ)
	for _, m := range []map[string]acd.QueueConfig{o, n} {
		for name, q := range m { // the ACD only checks these; the calls use them (the plan)
			q.AnnounceFrequency, q.ExitDigit = 0, ""
			m[name] = q
		}
	}
	for _, name := range slices.Sorted(maps.Keys(n)) {
		oq, ok := o[name]
		if !ok {
			out = append(out, "queues."+name+" (added)")
			continue
		}
		if fields := differentFields(oq, n[name]); len(fields) > 0 {
			out = append(out, "queues."+name+" (routing: "+strings.Join(fields, ", ")+")")
		}
	}
	for _, name := range slices.Sorted(maps.Keys(o)) {
		if _, ok := n[name]; !ok {
			out = append(out, "queues."+name+" (removed)")
		}
	}
	oa := map[string]acd.AgentConfig{}
	for _, ag := range oldA {
		oa[ag.ID] = ag
	}
	seen := map[string]bool{}
	for _, ag := range newA {
		seen[ag.ID] = true
		old, ok := oa[ag.ID]
		switch {
		case !ok:
			out = append(out, "agents."+ag.ID+" (added)")
		case !reflect.DeepEqual(old, ag):
			out = append(out, "agents."+ag.ID+" (skills, name or wrap-up)")
		}
	}
	for _, ag := range oldA {
		if !seen[ag.ID] {
			out = append(out, "agents."+ag.ID+" (removed)")
		}
	}
	return out
}

// differentFields lists the fields of two structs of one type that differ.
func differentFields(a, b any) []string {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	var out []string
	for i := range va.NumField() {
		if !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			out = append(out, va.Type().Field(i).Name)
		}
	}
	return out
}

// inboundTrunks are the SIP server's trunks of cfg.
func inboundTrunks(cfg *config.Config) []*sip.Trunk {
	trunks := make([]*sip.Trunk, 0, len(cfg.Trunks))
	for _, t := range cfg.Trunks {
		tr := &sip.Trunk{Name: t.Name, DIDs: t.DIDs, MaxCalls: t.MaxCalls, AnswerDelay: t.AnswerDelay.D(), SRTP: sip.SRTPPolicy(t.SRTP)}
		for _, s := range t.Sources {
			p, _ := config.ParsePrefix(s)
			tr.Sources = append(tr.Sources, p)
		}
		for _, c := range t.Codecs {
			pt, _ := sip.CodecPayload(c)
			tr.Codecs = append(tr.Codecs, pt)
		}
		trunks = append(trunks, tr)
	}
	return trunks
}
