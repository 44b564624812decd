package loadtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hotline12345/hotline/loadtest/phone"
	"github.com/hotline12345/hotline/media"
)

// agentSetupParallel bounds the registrations and API requests in flight at the start.
const agentSetupParallel = 16

// agentPool is the run's simulated agents: one test phone each, registered with digest
// auth and made ready through the API. Each answers what rings after the ring delay (or
// lets it ring by NoAnswerShare, then goes ready again), checks the audio both ways, talks
// and hangs up or waits for the citizen. The server's wrap-up needs nothing from them.
type agentPool struct {
	d      *day
	log    *slog.Logger
	ctx    context.Context // the agents' calls; cancelled at the end of the drain
	cancel context.CancelFunc
	http   *http.Client
	agents []*simAgent

	mu      sync.Mutex
	closing bool
	calls   sync.WaitGroup // OnInvite handlers and conversations
	active  atomic.Int64   // conversations and rings in progress

	stopRefresh chan struct{}
	refresh     sync.WaitGroup
}

// simAgent is one agent.
type simAgent struct {
	pool         *agentPool
	id, password string
	ph           *phone.Phone
	registered   bool // set during setup, read at stop
	ready        bool

	mu  sync.Mutex // guards rng
	rng *rand.Rand
}

// startAgents creates, registers and readies the agents; on any failure it undoes what it
// did and returns the error naming the agent.
func startAgents(ctx context.Context, d *day, sched *media.Scheduler) (*agentPool, error) {
	cfg := &d.cfg
	p := &agentPool{
		d: d, log: d.log,
		http:        &http.Client{Timeout: cfg.SetupTimeout, Transport: WithToken(&http.Transport{MaxIdleConnsPerHost: agentSetupParallel})},
		stopRefresh: make(chan struct{}),
	}
	p.ctx, p.cancel = context.WithCancel(ctx)
	for i, id := range cfg.agentIDs() {
		a := &simAgent{pool: p, id: id, password: cfg.password(id), rng: rand.New(rand.NewPCG(cfg.Seed, uint64(i)+1))}
		pcfg := phone.Config{LocalIP: cfg.LocalIP, Logger: cfg.Logger, Scheduler: sched, OnInvite: a.onInvite}
		if d.bridge != nil {
			pcfg.MediaAddr, pcfg.OnInvite = d.bridge.meter.NextAddr, a.bridgeInvite
		}
		ph, err := phone.New(pcfg)
		if err != nil {
			p.stop(ctx)
			return nil, portError("agent "+id+" phone", err)
		}
		a.ph = ph
		p.agents = append(p.agents, a)
	}
	errs := make([]error, len(p.agents))
	sem := make(chan struct{}, agentSetupParallel)
	var wg sync.WaitGroup
	for i, a := range p.agents {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if errs[i] = a.register(ctx); errs[i] != nil {
				return
			}
			a.registered = true
			if _, errs[i] = p.post(ctx, a.id, "ready"); errs[i] == nil {
				a.ready = true
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		p.stop(ctx)
		for _, e := range errs { // the first one says it best
			if e != nil {
				return nil, e
			}
		}
	}
	if ctx.Err() != nil {
		p.stop(ctx)
		return nil, context.Cause(ctx)
	}
	for _, a := range p.agents {
		p.refresh.Add(1)
		go a.keepRegistered()
	}
	p.log.Info("agents ready", "agents", len(p.agents))
	return p, nil
}

// register registers the agent's phone, naming the agent in the error.
func (a *simAgent) register(ctx context.Context) error {
	cfg := &a.pool.d.cfg
	rctx, cancel := context.WithTimeout(ctx, cfg.SetupTimeout)
	defer cancel()
	err := a.ph.Register(rctx, cfg.Target, a.id, a.password, DefaultRegisterExpiry)
	var se *phone.StatusError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &se):
		return fmt.Errorf("%w: agent %s: registration refused by %s: %d %s (wrong password or unknown agent?)", ErrAgentRefused, a.id, cfg.Target, se.Code, se.Reason)
	case ctx.Err() != nil:
		return context.Cause(ctx)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: no answer to agent %s's REGISTER from %s within %s", ErrUnreachable, a.id, cfg.Target, cfg.SetupTimeout)
	}
	return fmt.Errorf("loadtest: agent %s: register: %w", a.id, err)
}

// keepRegistered re-registers at half the expiry until the pool stops.
func (a *simAgent) keepRegistered() {
	p := a.pool
	defer p.refresh.Done()
	// The first refresh at a random point of the middle fifth of the expiry, then every half
	// expiry: a thousand agents registered together must not refresh in one burst inside
	// the measurement.
	a.mu.Lock()
	first := time.Duration((0.4 + 0.2*a.rng.Float64()) * float64(DefaultRegisterExpiry))
	a.mu.Unlock()
	t := time.NewTimer(first)
	defer t.Stop()
	for {
		select {
		case <-p.stopRefresh:
			return
		case <-t.C:
			if err := a.register(p.ctx); err != nil {
				p.log.Warn("agent re-registration failed", "agent", a.id, "error", err)
			}
			t.Reset(DefaultRegisterExpiry / 2)
		}
	}
}

// post sends POST {API}/api/v1/agents/{id}/{action} and returns the agent's state.
func (p *agentPool) post(ctx context.Context, id, action string) (string, error) {
	api := p.d.cfg.API
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, api+"/api/v1/agents/"+id+"/"+action, strings.NewReader(""))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := p.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return "", context.Cause(ctx)
		}
		return "", fmt.Errorf("%w: agent %s %s: API %s: %v", ErrUnreachable, id, action, api, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%w: agent %s %s: API answered %d: %s", ErrAgentRefused, id, action, res.StatusCode, strings.TrimSpace(string(body)))
	}
	var v struct {
		State string `json:"state"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return "", fmt.Errorf("loadtest: agent %s %s: API answer: %w", id, action, err)
	}
	return v.State, nil
}

// track counts a handler or conversation; false once the pool is closing.
func (p *agentPool) track() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closing || p.ctx.Err() != nil {
		return false
	}
	p.calls.Add(1)
	p.active.Add(1)
	return true
}

func (p *agentPool) untrack() {
	p.active.Add(-1)
	p.calls.Done()
}

// drain waits up to grace for the agents' calls to end (the server ends them after the
// citizens'), then hangs up the rest.
func (p *agentPool) drain(grace time.Duration) {
	deadline := time.Now().Add(grace)
	for p.active.Load() > 0 && time.Now().Before(deadline) && p.ctx.Err() == nil {
		time.Sleep(tonePoll) // polling a counter the handlers update
	}
	p.cancel()
}

// stop ends every agent: calls hung up, logout through the API, unregister, phone closed.
func (p *agentPool) stop(ctx context.Context) {
	p.mu.Lock()
	p.closing = true
	p.mu.Unlock()
	close(p.stopRefresh)
	p.refresh.Wait()
	p.cancel()
	p.calls.Wait()
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), teardownTimeout)
	defer cancel()
	var wg sync.WaitGroup
	sem := make(chan struct{}, agentSetupParallel)
	for _, a := range p.agents {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if a.ready {
				if _, err := p.post(tctx, a.id, "logout"); err != nil {
					p.log.Warn("agent logout failed", "agent", a.id, "error", err)
				}
			}
			if a.registered {
				if err := a.ph.Register(tctx, p.d.cfg.Target, a.id, a.password, 0); err != nil {
					p.log.Warn("agent unregistration failed", "agent", a.id, "error", err)
				}
			}
			a.ph.Close()
		}()
	}
	wg.Wait()
	p.http.CloseIdleConnections()
}

// ringPlan draws whether the agent lets this ring go unanswered, or declines it (486).
func (a *simAgent) ringPlan() (noAnswer, busy bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	x := a.rng.Float64()
	cfg := &a.pool.d.cfg
	return x < cfg.NoAnswerShare, x >= cfg.NoAnswerShare && x < cfg.NoAnswerShare+cfg.BusyShare
}

// onInvite is the agent's phone ringing (phone.Config.OnInvite): answer after the ring
// delay, or let it ring.
func (a *simAgent) onInvite(c *phone.Call) bool {
	p := a.pool
	if !p.track() {
		return false
	}
	defer p.untrack()
	cfg := &p.d.cfg
	dc := p.d.lookup(c.From())
	letRing, busy := a.ringPlan()
	t := time.NewTimer(cfg.RingDelay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-c.Done(): // the caller left, or the ring timed out
		a.readyAgain()
		return false
	case <-p.ctx.Done():
		return false
	}
	if busy {
		p.d.declined.Add(1)
		return false // 486 Busy Here: the ACD rests the agent (shown ready) and offers the caller again
	}
	if letRing || (dc != nil && !dc.commit()) {
		// Ring on until the server gives up (ring timeout: the ACD pauses the agent before it
		// cancels) or the caller has gone; then back to ready, as a person would.
		select {
		case <-c.Done():
			a.readyAgain()
		case <-p.ctx.Done():
		}
		return false
	}
	answerAt := time.Now()
	if !p.track() {
		if dc != nil {
			dc.uncommit()
		}
		return false
	}
	go func() {
		defer p.untrack()
		a.converse(c, dc, answerAt)
	}()
	return true
}

// readyAgain makes the agent ready after a ring it did not answer (a no-op when the
// server did not pause it).
func (a *simAgent) readyAgain() {
	p := a.pool
	if p.ctx.Err() != nil {
		return
	}
	if _, err := p.post(p.ctx, a.id, "ready"); err != nil && p.ctx.Err() == nil {
		p.log.Warn("agent could not go ready again", "agent", a.id, "error", err)
	}
}

// converse is the agent's side of an answered call: audio check, talk, hang up or wait.
func (a *simAgent) converse(c *phone.Call, dc *dayCall, answerAt time.Time) {
	p := a.pool
	ctx := p.ctx
	select {
	case <-c.Answered():
	case <-ctx.Done():
		hangup(ctx, c)
	}
	if c.Err() != nil || ctx.Err() != nil {
		if dc != nil {
			dc.uncommit()
		}
		hangup(ctx, c)
		return
	}
	p.d.meter.addLive(c, false)
	defer p.d.meter.endLive(c)
	talk, hangs := p.d.cfg.Talk, true
	if dc != nil {
		turn := dc.connect(a.id, answerAt)
		audioCheck(ctx, c, AgentTone, CitizenTone, dc.audioOf(turn), sideAgent, p.d.cfg.ToneTimeout)
		talk, hangs = dc.plan.turnTalk(turn), dc.plan.agentHangs
		if turn == 0 && dc.plan.transfer && a.transfer(c, dc, answerAt.Add(dc.plan.referAfter())) {
			return
		}
	} // else a call from outside the run: talk for the mean time
	var end <-chan time.Time
	if hangs {
		t := time.NewTimer(time.Until(answerAt.Add(talk)))
		defer t.Stop()
		end = t.C
	}
	select {
	case <-c.Done():
		return
	case <-ctx.Done():
	case <-end:
		if dc != nil {
			dc.markAgentBye(time.Now())
		}
	}
	hangup(ctx, c)
}

// transferEnd bounds the wait for the server's NOTIFY and BYE after an accepted REFER;
// notifyGrace is how long a NOTIFY may trail the BYE that followed it.
const (
	transferEnd = 15 * time.Second
	notifyGrace = 500 * time.Millisecond
)

// transfer sends the agent's blind transfer (REFER to the transfer queue) at at, and
// after the server accepted it waits for the server to end the agent's leg (NOTIFY, BYE).
// It reports whether the transfer was made; if not (the call ended first, or the server
// refused the REFER: counted), the agent talks on as planned.
func (a *simAgent) transfer(c *phone.Call, dc *dayCall, at time.Time) bool {
	p := a.pool
	cfg := &p.d.cfg
	t := time.NewTimer(time.Until(at))
	defer t.Stop()
	select {
	case <-t.C:
	case <-c.Done():
		return false
	case <-p.ctx.Done():
		return false
	}
	if !dc.referring() {
		return false
	}
	sent := time.Now()
	rctx, cancel := context.WithTimeout(p.ctx, cfg.SetupTimeout)
	err := c.Refer(rctx, "sip:"+cfg.TransferQueue+"@"+cfg.Target)
	cancel()
	if err != nil {
		why := ""
		if p.ctx.Err() == nil && !errors.Is(err, phone.ErrCallEnded) {
			why = "transfer to " + cfg.TransferQueue + ": " + failureReason(err)
			p.d.meter.referRefused(why)
			p.log.Warn("transfer refused", "agent", a.id, "queue", cfg.TransferQueue, "error", err)
		}
		dc.referred(sent, false, why)
		return false
	}
	dc.referred(sent, true, "")
	// The server reports the transfer's success (NOTIFY, sipfrag "SIP/2.0 200 OK"), then
	// hangs up: a leg it ends without the NOTIFY is counted as a failed transfer.
	end := time.NewTimer(transferEnd)
	defer end.Stop()
	notified := false
	for ended := false; !ended; {
		select {
		case n := <-c.Notifies():
			notified = notified || strings.HasPrefix(n, "SIP/2.0 200")
		case <-c.Done():
			ended = true
		case <-end.C:
			p.log.Warn("the server did not end the transferring agent's leg", "agent", a.id, "within", transferEnd)
			hangup(p.ctx, c)
			return true
		case <-p.ctx.Done():
			hangup(p.ctx, c)
			return true
		}
	}
	if !notified { // its handler may still be handing the NOTIFY over as the BYE ends the call
		grace := time.NewTimer(notifyGrace)
		defer grace.Stop()
	trail:
		for !notified {
			select {
			case n := <-c.Notifies():
				notified = strings.HasPrefix(n, "SIP/2.0 200")
			case <-grace.C:
				break trail
			}
		}
	}
	if !notified {
		p.d.meter.referRefused("transfer to " + cfg.TransferQueue + ": no NOTIFY 200 before the BYE")
		p.log.Warn("the server ended a transferred leg without a NOTIFY 200", "agent", a.id)
	}
	return true
}
