package loadtest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotline12345/hotline/cdr"
	"github.com/hotline12345/hotline/loadtest/phone"
)

// surveyFreePort returns a loopback UDP port that was free a moment ago (the far end's, put
// into the server's trunk before the far end listens).
func surveyFreePort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// Bad settings are refused with ErrConfig (or ErrNotLoopback), and the defaults are applied.
func TestSurveyConfigValidate(t *testing.T) {
	base := func() SurveyConfig { return SurveyConfig{Duration: time.Second} }
	for _, tc := range []struct {
		name string
		mod  func(*SurveyConfig)
		want error
		text string
	}{
		{"no duration, no campaign", func(c *SurveyConfig) { c.Duration = 0 }, ErrConfig, "duration"},
		{"listen without port", func(c *SurveyConfig) { c.Listen = "127.0.0.1" }, ErrConfig, "want IP:PORT"},
		{"listen port 0", func(c *SurveyConfig) { c.Listen = "127.0.0.1:0" }, ErrConfig, "want IP:PORT"},
		{"listen off loopback", func(c *SurveyConfig) { c.Listen = "192.0.2.1:5090" }, ErrNotLoopback, "192.0.2.1"},
		{"listen a name", func(c *SurveyConfig) { c.Listen = "sbc.example.com:5090" }, ErrConfig, "want IP:PORT"},
		{"API off loopback", func(c *SurveyConfig) { c.API = "http://203.0.113.9:8080" }, ErrNotLoopback, "203.0.113.9"},
		{"API not http", func(c *SurveyConfig) { c.API = "ftp://127.0.0.1" }, ErrConfig, "want http://"},
		{"targets without API", func(c *SurveyConfig) { c.Duration, c.Targets = 0, 5 }, ErrConfig, "need the API"},
		{"targets and duration", func(c *SurveyConfig) { c.API, c.Targets = "http://127.0.0.1:8080", 5 }, ErrConfig, "not with a campaign"},
		{"too many targets", func(c *SurveyConfig) { c.Duration, c.API, c.Targets = 0, "http://127.0.0.1:8080", MaxSurveyTargets+1 }, ErrConfig, "targets"},
		{"negative targets", func(c *SurveyConfig) { c.Targets = -1 }, ErrConfig, "targets -1"},
		{"max calls below targets", func(c *SurveyConfig) { c.Duration, c.API, c.Targets, c.MaxCalls = 0, "http://127.0.0.1:8080", 10, 5 }, ErrConfig, "below the 10 targets"},
		{"max calls too high", func(c *SurveyConfig) { c.MaxCalls = MaxCalls + 1 }, ErrConfig, "max calls"},
		{"busy share above 1", func(c *SurveyConfig) { c.BusyShare = 1.5 }, ErrConfig, "busy share"},
		{"NaN share", func(c *SurveyConfig) { c.InfoShare = math.NaN() }, ErrConfig, "info share"},
		{"shares above 1 together", func(c *SurveyConfig) { c.BusyShare, c.NoAnswerShare = 0.6, 0.5 }, ErrConfig, "above 1"},
		{"reject share above 1", func(c *SurveyConfig) { c.RejectShare = 1.01 }, ErrConfig, "reject share 1.01"},
		{"negative invalid share", func(c *SurveyConfig) { c.InvalidShare = -0.1 }, ErrConfig, "invalid share -0.1"},
		{"four shares above 1", func(c *SurveyConfig) {
			c.BusyShare, c.NoAnswerShare, c.RejectShare, c.InvalidShare = 0.3, 0.3, 0.3, 0.2
		}, ErrConfig, "1.1, above 1"},
		{"rating key 0", func(c *SurveyConfig) { c.RatingMix = map[string]float64{"0": 1} }, ErrConfig, "rating mix"},
		{"rating weights zero", func(c *SurveyConfig) { c.RatingMix = map[string]float64{"1": 0} }, ErrConfig, "positive weight"},
		{"negative answer delay", func(c *SurveyConfig) { c.AnswerDelay = -time.Second }, ErrConfig, "negative"},
		{"infinite cps", func(c *SurveyConfig) { c.CPS = math.Inf(1) }, ErrConfig, "cps"},
	} {
		c := base()
		tc.mod(&c)
		err := c.validate()
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
			t.Errorf("%s: %v; want %v mentioning %q", tc.name, err, tc.want, tc.text)
		}
	}

	c := base()
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	if c.Listen != DefaultSurveyListen || c.MaxCalls != DefaultSurveyMaxCalls || c.MaxDuration != c.Duration+2*time.Minute ||
		c.RatingMix["1"] != 0.8 || c.Survey != DefaultSurveyScript || c.Trunk != DefaultSurveyTrunk || c.Logger == nil {
		t.Errorf("serve defaults: %+v", c)
	}
	c = SurveyConfig{Listen: "localhost:5091", API: "http://127.0.0.1:8080/", Targets: 3}
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:5091" || c.API != "http://127.0.0.1:8080" || c.MaxDuration != DefaultSurveyMaxDuration {
		t.Errorf("campaign defaults: listen %s, API %s, max duration %s", c.Listen, c.API, c.MaxDuration)
	}
}

// Generated numbers are distinct mobiles of the default dial plan.
func TestSurveyNumbers(t *testing.T) {
	plan := regexp.MustCompile(`^1[3-9]\d{9}$`)
	seen := map[string]bool{}
	for i := range MaxSurveyTargets {
		n := SurveyNumber(i)
		if !plan.MatchString(n) || !strings.HasPrefix(n, "1390000") || seen[n] {
			t.Fatalf("number %d: %q (outside the dial plan, not 1390000xxxx, or repeated)", i, n)
		}
		seen[n] = true
	}
}

// A plan depends only on the seed, the number and the attempt; over many draws each share
// comes out near its setting, and attempts of one number are drawn independently.
func TestSurveyPlanDraw(t *testing.T) {
	cfg := SurveyConfig{Duration: time.Second, BusyShare: 0.2, NoAnswerShare: 0.3, RejectShare: 0.1, InvalidShare: 0.05, HangupShare: 0.1,
		InfoShare: 0.4, RatingMix: map[string]float64{"1": 0.6, "2": 0.3, "3": 0.1}, Seed: 42}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	if a, b := drawSurveyPlan(&cfg, "13900000001", 2), drawSurveyPlan(&cfg, "13900000001", 2); a != b {
		t.Fatalf("same seed, number and attempt, different plans: %+v %+v", a, b)
	}
	other := cfg
	other.Seed = 43
	// Without the reject and invalid shares, a seed draws the same busy lines and rings.
	older := cfg
	older.RejectShare, older.InvalidShare = 0, 0
	valid := map[[2]any]bool{{OutcomeAnswered, 0}: true, {OutcomeNoAnswer, 0}: true, {OutcomeBusy, 486}: true, {OutcomeBusy, 603}: true, {OutcomeInvalidNumber, 404}: true}
	const n = 20000
	actions, statuses, keys := map[string]int{}, map[int]int{}, map[rune]int{}
	info, hang, sameAsNext, sameOtherSeed := 0, 0, 0, 0
	for i := range n {
		num := SurveyNumber(i % MaxSurveyTargets)
		p := drawSurveyPlan(&cfg, num, 1+i/MaxSurveyTargets)
		actions[p.action]++
		statuses[p.status]++
		keys[p.key]++
		if !valid[[2]any{p.action, p.status}] {
			t.Fatalf("plan %+v: action and status disagree", p)
		}
		if o := drawSurveyPlan(&older, num, 1+i/MaxSurveyTargets); p.status == 486 || p.action == OutcomeNoAnswer {
			if o != p {
				t.Fatalf("%s attempt %d: %+v with the reject and invalid shares, %+v without", num, 1+i/MaxSurveyTargets, p, o)
			}
		} else if o.action != OutcomeAnswered {
			t.Fatalf("%s attempt %d: %+v without the reject and invalid shares, %+v with: only answers may turn into them", num, 1+i/MaxSurveyTargets, o, p)
		}
		if p.info {
			info++
		}
		if p.hangup {
			hang++
		}
		if p == drawSurveyPlan(&cfg, num, 3+i/MaxSurveyTargets) {
			sameAsNext++
		}
		if p == drawSurveyPlan(&other, num, 1+i/MaxSurveyTargets) {
			sameOtherSeed++
		}
	}
	near := func(what string, got int, want float64) {
		if f := float64(got) / n; math.Abs(f-want) > 0.02 {
			t.Errorf("%s: %.3f of the draws, want %.2f", what, f, want)
		}
	}
	near("busy (486)", statuses[486], 0.2)
	near("no-answer", actions[OutcomeNoAnswer], 0.3)
	near("declined (603)", statuses[603], 0.1)
	near("busy in all", actions[OutcomeBusy], 0.3)
	near("invalid (404)", actions[OutcomeInvalidNumber], 0.05)
	near("answer", actions[OutcomeAnswered], 0.35)
	near("info", info, 0.4)
	near("hang-up", hang, 0.1)
	near("key 1", keys['1'], 0.6)
	near("key 2", keys['2'], 0.3)
	near("key 3", keys['3'], 0.1)
	// Two independent plans agree with probability Σp² over the four draws, about 0.08 here.
	if sameAsNext > n/5 || sameOtherSeed > n/5 {
		t.Errorf("plans agree across attempts %d and across seeds %d of %d times: not independent", sameAsNext, sameOtherSeed, n)
	}
}

// compareSurvey finds no difference where server and truth agree, and each kind of
// difference where they do not.
func TestCompareSurvey(t *testing.T) {
	calls := []TruthCall{
		{SIPCallID: "c1", Caller: "12345", Called: "13900000000", Attempt: 1, Outcome: OutcomeBusy, SIPStatus: 486, HungUpBy: ByCaller},
		{SIPCallID: "c2", Caller: "12345", Called: "13900000001", Attempt: 1, Outcome: OutcomeAnswered, SIPStatus: 200, Digits: "2", Rating: "basically_satisfied", HungUpBy: ByServer},
		{SIPCallID: "c3", Caller: "12345", Called: "13900000000", Attempt: 2, Outcome: OutcomeAnswered, SIPStatus: 200, Rating: RatingNotRated, HungUpBy: ByCaller},
		{SIPCallID: "c4", Caller: "12345", Called: "13900000002", Attempt: 1, Outcome: OutcomeBusy, SIPStatus: 603, HungUpBy: ByCaller},
		{SIPCallID: "c5", Caller: "12345", Called: "13900000003", Attempt: 1, Outcome: OutcomeInvalidNumber, SIPStatus: 404, HungUpBy: ByCaller},
	}
	view := func() *surveyCampaignView {
		v := &surveyCampaignView{ID: "k", State: "done", Targets: []surveyTarget{
			{CaseID: "LT0000", Phone: "13900000000", State: "done", Outcome: "answered", Attempts: 2, Satisfaction: "not_rated"},
			{CaseID: "LT0001", Phone: "13900000001", State: "done", Outcome: "answered", Attempts: 1, Satisfaction: "basically_satisfied"},
			{CaseID: "LT0002", Phone: "13900000002", State: "human", Outcome: "busy", Attempts: 1},
			{CaseID: "LT0003", Phone: "13900000003", State: "failed", Outcome: "invalid-number", Attempts: 1},
		}}
		v.Counts.Outcomes = map[string]int{"answered": 2, "busy": 1, "invalid-number": 1}
		v.Counts.Satisfaction = map[string]int{"not_rated": 1, "basically_satisfied": 1}
		return v
	}
	records := func() []cdr.Record {
		return []cdr.Record{
			{ID: "r1", SIPCallID: "", Called: "13900000000", Attempt: 1, Disposition: "busy", HangupSide: "caller", SIPStatus: 486},
			{ID: "r2", SIPCallID: "c2", Called: "13900000001", Attempt: 1, Disposition: "answered", SurveyAnswers: "2", Satisfaction: "basically_satisfied", HangupSide: "system", SIPStatus: 200},
			{ID: "r3", SIPCallID: "c3", Called: "13900000000", Attempt: 2, Disposition: "answered", Satisfaction: "not_rated", HangupSide: "caller", SIPStatus: 200},
			{ID: "r4", SIPCallID: "c4", Called: "13900000002", Attempt: 1, Disposition: "busy", HangupSide: "caller", SIPStatus: 603},
			{ID: "r5", SIPCallID: "c5", Called: "13900000003", Attempt: 1, Disposition: "invalid-number", HangupSide: "caller", SIPStatus: 404},
		}
	}
	if m := compareSurvey(calls, view(), records()); len(m) != 0 {
		t.Fatalf("agreeing server and truth: mismatches %q", m)
	}
	for _, tc := range []struct {
		name string
		mod  func(v *surveyCampaignView, recs []cdr.Record) []cdr.Record
		want string
	}{
		{"attempts", func(v *surveyCampaignView, r []cdr.Record) []cdr.Record { v.Targets[1].Attempts = 2; return r }, "LT0001 (13900000001): 2 attempts, the far end took 1 calls"},
		{"target outcome", func(v *surveyCampaignView, r []cdr.Record) []cdr.Record { v.Targets[0].Outcome = "busy"; return r }, `outcome "busy"`},
		{"target satisfaction", func(v *surveyCampaignView, r []cdr.Record) []cdr.Record {
			v.Targets[1].Satisfaction = "satisfied"
			return r
		}, `satisfaction "satisfied", the far end's "basically_satisfied"`},
		{"counts", func(v *surveyCampaignView, r []cdr.Record) []cdr.Record { v.Counts.Outcomes["no-answer"] = 1; return r }, "counts: outcome no-answer: server 1, truth 0"},
		{"satisfaction counts", func(v *surveyCampaignView, r []cdr.Record) []cdr.Record {
			delete(v.Counts.Satisfaction, "not_rated")
			return r
		}, "counts: satisfaction not_rated: server 0, truth 1"},
		{"untargeted number", func(v *surveyCampaignView, r []cdr.Record) []cdr.Record { v.Targets = v.Targets[:1]; return r }, "13900000001: the far end took 1 calls to a number not in the campaign"},
		{"missing record", func(v *surveyCampaignView, r []cdr.Record) []cdr.Record { return r[1:] }, "13900000000 attempt 1 (busy): no record"},
		{"extra record", func(v *surveyCampaignView, r []cdr.Record) []cdr.Record {
			return append(r, cdr.Record{ID: "r9", Called: "13900000001", Attempt: 2, Disposition: "no-answer"})
		}, "record r9: 13900000001 attempt 2 (no-answer): no such call at the far end"},
		{"duplicate record", func(v *surveyCampaignView, r []cdr.Record) []cdr.Record { return append(r, r[0]) }, "a second record of 13900000000 attempt 1"},
		{"disposition", func(v *surveyCampaignView, r []cdr.Record) []cdr.Record { r[0].Disposition = "no-answer"; return r }, `disposition "no-answer", the far end's "busy"`},
		{"sip call id", func(v *surveyCampaignView, r []cdr.Record) []cdr.Record { r[1].SIPCallID = "x"; return r }, `sip_call_id "x"`},
		{"answers", func(v *surveyCampaignView, r []cdr.Record) []cdr.Record { r[1].SurveyAnswers = ""; return r }, `survey answers "", the far end pressed "2"`},
		{"record satisfaction", func(v *surveyCampaignView, r []cdr.Record) []cdr.Record { r[2].Satisfaction = "satisfied"; return r }, `satisfaction "satisfied", the far end's "not_rated"`},
		{"hangup side", func(v *surveyCampaignView, r []cdr.Record) []cdr.Record { r[1].HangupSide = "caller"; return r }, `hangup side "caller", the far end's "system"`},
		{"decline status", func(v *surveyCampaignView, r []cdr.Record) []cdr.Record { r[3].SIPStatus = 486; return r }, "record r4 (13900000002 attempt 1): sip_status 486, the far end's 603"},
		{"decline counted", func(v *surveyCampaignView, r []cdr.Record) []cdr.Record {
			v.Counts.Outcomes["busy"], v.Counts.Outcomes["failed"] = 0, 1
			return r
		}, "counts: outcome busy: server 0, truth 1"},
		{"invalid disposition", func(v *surveyCampaignView, r []cdr.Record) []cdr.Record { r[4].Disposition = "failed"; return r }, `disposition "failed", the far end's "invalid-number"`},
		{"invalid target", func(v *surveyCampaignView, r []cdr.Record) []cdr.Record { v.Targets[3].Outcome = "failed"; return r }, `LT0003 (13900000003): outcome "failed", the far end's last call "invalid-number"`},
	} {
		v := view()
		m := compareSurvey(calls, v, tc.mod(v, records()))
		if !slices.ContainsFunc(m, func(s string) bool { return strings.Contains(s, tc.want) }) {
			t.Errorf("%s: mismatches %q, want one with %q", tc.name, m, tc.want)
		}
	}

	// A number dialled again after its 404, the server agreeing about the second call: the
	// retry itself is the mismatch.
	again := append(slices.Clone(calls), TruthCall{SIPCallID: "c6", Called: "13900000003", Attempt: 2, Outcome: OutcomeInvalidNumber, SIPStatus: 404, HungUpBy: ByCaller})
	v := view()
	v.Targets[3].Attempts = 2
	recs := append(records(), cdr.Record{ID: "r6", SIPCallID: "c6", Called: "13900000003", Attempt: 2, Disposition: "invalid-number", SIPStatus: 404})
	if m := compareSurvey(again, v, recs); len(m) != 1 || !strings.Contains(m[0], "13900000003: dialled again after attempt 1 found an invalid number") {
		t.Errorf("a retry after 404: mismatches %q, want that one", m)
	}
}

// The far end on its own, driven by the test phone playing the server: busy gets 486, a
// decline 603, an invalid number 404; a no-answer rings until the CANCEL; an answering citizen presses nothing before the prompt
// plays, then its key (RFC 4733 or INFO) and waits for the BYE; a hanging-up one leaves at
// the prompt. Each run takes one call (MaxCalls) and ends once it ended.
func TestSurveyFarEndAlone(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		cfg    SurveyConfig
		expect TruthCall
	}{
		{"busy", SurveyConfig{BusyShare: 1}, TruthCall{Outcome: OutcomeBusy, SIPStatus: 486, HungUpBy: ByCaller}},
		{"decline", SurveyConfig{RejectShare: 1}, TruthCall{Outcome: OutcomeBusy, SIPStatus: 603, HungUpBy: ByCaller}},
		{"invalid number", SurveyConfig{InvalidShare: 1}, TruthCall{Outcome: OutcomeInvalidNumber, SIPStatus: 404, HungUpBy: ByCaller}},
		{"no answer", SurveyConfig{NoAnswerShare: 1}, TruthCall{Outcome: OutcomeNoAnswer, SIPStatus: 487, HungUpBy: ByServer}},
		{"key by RFC 4733", SurveyConfig{AnswerDelay: 100 * time.Millisecond}, TruthCall{Outcome: OutcomeAnswered, SIPStatus: 200, Digits: "2", DTMF: "rfc4733", Rating: "basically_satisfied", HungUpBy: ByServer}},
		{"key by INFO", SurveyConfig{InfoShare: 1}, TruthCall{Outcome: OutcomeAnswered, SIPStatus: 200, Digits: "2", DTMF: "info", Rating: "basically_satisfied", HungUpBy: ByServer}},
		{"hang-up at the prompt", SurveyConfig{HangupShare: 1}, TruthCall{Outcome: OutcomeAnswered, SIPStatus: 200, Rating: RatingNotRated, HungUpBy: ByCaller}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := tc.cfg
			cfg.Listen = fmt.Sprintf("127.0.0.1:%d", surveyFreePort(t))
			cfg.Duration, cfg.MaxCalls, cfg.RatingMix, cfg.Seed = time.Minute, 1, map[string]float64{"2": 1}, 5
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			type result struct {
				rep   *SurveyReport
				truth *Truth
				err   error
			}
			done := make(chan result, 1)
			go func() {
				rep, truth, err := RunSurvey(ctx, cfg, nil)
				done <- result{rep, truth, err}
			}()
			srv, err := phone.New(phone.Config{})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			playServer(t, ctx, srv, "sip:13900000007@"+cfg.Listen, tc.expect)

			var r result
			select {
			case r = <-done:
			case <-ctx.Done():
				t.Fatal("RunSurvey did not end after its one call")
			}
			if r.err != nil || r.rep.Stopped != "max-calls" || !r.rep.Passed() || len(r.truth.Calls) != 1 || r.rep.Calls != 1 {
				t.Fatalf("run: %v, report %+v, truth %+v; want one call, stopped at max-calls, passed", r.err, r.rep, r.truth)
			}
			got := r.truth.Calls[0]
			if got.Caller != "12345" || got.Called != "13900000007" || got.Attempt != 1 || got.SIPCallID == "" || got.Invite.IsZero() || got.Ended.Before(got.Invite) ||
				got.Outcome != tc.expect.Outcome || got.SIPStatus != tc.expect.SIPStatus || got.Digits != tc.expect.Digits || got.DTMF != tc.expect.DTMF ||
				got.Rating != tc.expect.Rating || got.HungUpBy != tc.expect.HungUpBy || got.Error != "" ||
				(got.Outcome == OutcomeAnswered) == got.Answered.IsZero() {
				t.Fatalf("truth %+v; want %+v", got, tc.expect)
			}
		})
	}
}

// playServer places one call to the far end as the server would, and plays its part for
// the outcome expected: no key may come before the "prompt" (a tone); the key must.
func playServer(t *testing.T, ctx context.Context, srv *phone.Phone, target string, expect TruthCall) {
	t.Helper()
	dctx, dcancel := context.WithTimeout(ctx, 20*time.Second)
	defer dcancel()
	c, err := srv.DialAsync(dctx, target, "12345")
	if err != nil {
		t.Fatal(err)
	}
	defer hangup(ctx, c)
	if expect.Outcome == OutcomeNoAnswer {
		select {
		case <-c.Ringing():
		case <-dctx.Done():
			t.Fatal("no 180 from the far end")
		}
		time.Sleep(300 * time.Millisecond) // rings a while: the far end must not answer
		if err := c.Cancel(dctx); err != nil || c.Err() == nil {
			t.Fatalf("cancel: %v, call %v: want a cancelled call", err, c.Err())
		}
		return
	}
	<-c.Answered()
	var se *phone.StatusError
	if expect.Outcome != OutcomeAnswered { // refused
		if !errors.As(c.Err(), &se) || se.Code != expect.SIPStatus || se.Reason != surveyReasons[expect.SIPStatus] {
			t.Fatalf("call: %v; want %d %s", c.Err(), expect.SIPStatus, surveyReasons[expect.SIPStatus])
		}
		return
	}
	if c.Err() != nil {
		t.Fatalf("call: %v; want an answer", c.Err())
	}
	// Silence first: a person does not press before the prompt.
	quiet := time.NewTimer(500 * time.Millisecond)
	select {
	case d := <-c.Digits():
		t.Fatalf("key %q before any prompt", d)
	case <-c.Done():
		t.Fatalf("the far end hung up before any prompt: %s", c.ByeReason())
	case <-quiet.C:
	}
	// The prompt, until the key comes (or the far end leaves).
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if c.SendTone(440, 100*time.Millisecond) != nil {
				return
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	wait := time.NewTimer(10 * time.Second)
	defer wait.Stop()
	select {
	case d := <-c.Digits():
		if string(d) != expect.Digits {
			t.Fatalf("key %q, want %q", d, expect.Digits)
		}
		// The thanks, then our BYE: the far end waits for it.
		time.Sleep(200 * time.Millisecond)
		if c.ByeReason() != "" {
			t.Fatalf("the far end hung up after its key: %s", c.ByeReason())
		}
	case <-c.Done():
		if expect.Digits != "" || c.ByeReason() != "remote BYE" {
			t.Fatalf("the far end left (%s) without its key %q", c.ByeReason(), expect.Digits)
		}
	case <-wait.C:
		t.Fatal("no key and no hang-up 10 s into the prompt")
	}
}

// surveyTestConfig is the test's campaign: mixed outcomes, quick retries.
func surveyTestConfig(listen, api string) SurveyConfig {
	return SurveyConfig{
		Listen: listen, API: api, Targets: 12, MaxAttempts: 3, Retry: time.Second, RingTimeout: 1500 * time.Millisecond,
		CPS: 10, MaxConcurrent: 12, MaxCalls: 60, MaxDuration: 100 * time.Second,
		BusyShare: 0.2, NoAnswerShare: 0.15, RejectShare: 0.1, InvalidShare: 0.1, AnswerDelay: 100 * time.Millisecond, HangupShare: 0.2, InfoShare: 0.4,
		RatingMix: map[string]float64{"1": 0.5, "2": 0.3, "3": 0.2}, Seed: surveyTestSeed,
	}
}

const surveyTestSeed = 2

// expectedSurvey is what the campaign of cfg must do, number by number: plans until one
// answers, one finds an invalid number (never retried) or the attempts run out.
func expectedSurvey(cfg SurveyConfig) map[string][]surveyPlan {
	out := map[string][]surveyPlan{}
	for i := range cfg.Targets {
		n := SurveyNumber(i)
		for a := 1; a <= cfg.MaxAttempts; a++ {
			p := drawSurveyPlan(&cfg, n, a)
			out[n] = append(out[n], p)
			if p.action == OutcomeAnswered || p.action == OutcomeInvalidNumber {
				break
			}
		}
	}
	return out
}

// The test campaign's seed covers every case: busy, declined, an invalid number, no answer,
// a retry after a decline, answered after a retry, a target whose attempts run out, keys by
// RFC 4733 and INFO, each rating, a hang-up.
func TestSurveyTestSeedCoversEveryCase(t *testing.T) {
	cfg := surveyTestConfig("127.0.0.1:5090", "http://127.0.0.1:8080")
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	have := surveyCases(cfg)
	for _, c := range surveyCaseNames {
		if !have[c] {
			t.Errorf("seed %d: no %s in the test campaign (cases: %v)", surveyTestSeed, c, slices.Sorted(maps.Keys(have)))
		}
	}
}

// surveyCaseNames are the cases the test campaign must have.
var surveyCaseNames = []string{OutcomeBusy, "486", "603", OutcomeInvalidNumber, OutcomeNoAnswer, OutcomeAnswered, "retried after 603",
	"answered after a retry", "attempts run out", "info", "rfc4733", "key 1", "key 2", "key 3", "hang-up"}

// surveyCases returns the cases the campaign of cfg plans.
func surveyCases(cfg SurveyConfig) map[string]bool {
	have := map[string]bool{}
	for _, plans := range expectedSurvey(cfg) {
		for i, p := range plans {
			have[p.action] = true
			have[fmt.Sprint(p.status)] = true
			if p.status == 603 && i < len(plans)-1 {
				have["retried after 603"] = true
			}
			if p.action != OutcomeAnswered {
				continue
			}
			if i > 0 {
				have["answered after a retry"] = true
			}
			if p.hangup {
				have["hang-up"] = true
				continue
			}
			have[map[bool]string{true: "info", false: "rfc4733"}[p.info]] = true
			have["key "+string(p.key)] = true
		}
		if last := plans[len(plans)-1]; len(plans) == cfg.MaxAttempts && last.action != OutcomeAnswered && last.action != OutcomeInvalidNumber {
			have["attempts run out"] = true
		}
	}
	return have
}

// plannedStatus is the final response to the INVITE of a call planned p: the far end's
// refusal, the 487 to the server's CANCEL, or the 200 of the answer.
func plannedStatus(p surveyPlan) int {
	switch {
	case p.status != 0:
		return p.status
	case p.action == OutcomeNoAnswer:
		return 487
	}
	return 200
}

// surveyCampaignCheck is GET /api/v1/campaigns/{id} as the test reads it.
type surveyCampaignCheck struct {
	State  string `json:"state"`
	Counts struct {
		Outcomes     map[string]int `json:"outcomes"`
		Satisfaction map[string]int `json:"satisfaction"`
	} `json:"counts"`
	Targets []struct {
		CaseID       string `json:"case_id"`
		Phone        string `json:"phone"`
		State        string `json:"state"`
		Outcome      string `json:"outcome"`
		Attempts     int    `json:"attempts"`
		Satisfaction string `json:"satisfaction"`
		Answers      string `json:"answers"`
	} `json:"targets"`
}

// A campaign of 12 targets against the real server, its outbound trunk pointing at the far
// end: busy lines (486), declines (603, busy to the server and retried), numbers that do not
// exist (404, invalid-number, never retried), rings nobody answers, answers with keys by RFC
// 4733 and INFO, citizens hanging up at the first prompt, retries after 1 s, up to 3 attempts.
// The far end's truth is exactly the seed's plan, and the server agrees with it: each
// target's attempts, last outcome, state and satisfaction, the campaign's counts, and one
// survey record per attempt with its disposition, SIP status, answers, satisfaction and
// hang-up side.
func TestRunSurveyAgainstServer(t *testing.T) {
	t.Parallel()
	port := surveyFreePort(t)
	h, err := StartHotlined(hotlinedBinary(t), dayServerConfig(t, "gateway: sip:127.0.0.1:5090", fmt.Sprintf("gateway: sip:127.0.0.1:%d", port)),
		t.TempDir(), "50000-50998", testLog{t})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Stop)
	api := "http://" + h.HTTP
	cfg := surveyTestConfig(fmt.Sprintf("127.0.0.1:%d", port), api)
	planned := 0
	for _, plans := range expectedSurvey(cfg) {
		planned += len(plans)
	}
	cfg.MaxCalls = planned                                                  // exactly enough: the bound is not a failure
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a bound: the run ends with its campaign
	defer cancel()
	var mu sync.Mutex
	var samples []Sample
	rep, truth, err := RunSurvey(ctx, cfg, func(s Sample) {
		mu.Lock()
		defer mu.Unlock()
		samples = append(samples, s)
	})
	if err != nil {
		t.Fatalf("RunSurvey: %v", err)
	}
	var text strings.Builder
	rep.WriteText(&text)
	t.Logf("report:\n%s", text.String())
	if !rep.Passed() || rep.Stopped != "campaign-done" || len(rep.Mismatches) != 0 || rep.Server == nil || rep.Campaign == "" {
		t.Fatalf("report: passed %v, stopped %s, mismatches %q, failures %v", rep.Passed(), rep.Stopped, rep.Mismatches, rep.FailReasons)
	}

	// The far end did exactly what the seed planned, each call from the trunk's caller ID
	// (configs/hotline.yaml: 12345) to the target's number, attempts counted from 1.
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	want := expectedSurvey(cfg)
	got := map[string][]TruthCall{}
	for _, c := range truth.Calls {
		got[c.Called] = append(got[c.Called], c)
	}
	total, statuses := 0, map[int]int{}
	for n, plans := range want {
		total += len(plans)
		calls := got[n]
		if len(calls) != len(plans) {
			t.Errorf("%s: %d calls, the plan has %d attempts", n, len(calls), len(plans))
			continue
		}
		for i, p := range plans {
			c := calls[i]
			statuses[p.status]++
			key := ""
			if p.action == OutcomeAnswered && !p.hangup {
				key = string(p.key)
			}
			if c.Attempt != i+1 || c.Caller != "12345" || c.Outcome != p.action || c.SIPStatus != plannedStatus(p) || c.Digits != key || c.Error != "" || c.SIPCallID == "" {
				t.Errorf("%s attempt %d: truth %+v; plan %+v", n, i+1, c, p)
			}
		}
	}
	if len(truth.Calls) != total || rep.Calls != total || truth.Scenario != "survey" {
		t.Errorf("truth: %d calls (scenario %q), report %d; the plan has %d", len(truth.Calls), truth.Scenario, rep.Calls, total)
	}
	if rep.Busy != statuses[486] || rep.Declined != statuses[603] || rep.Invalid != statuses[404] || rep.Declined == 0 || rep.Invalid == 0 {
		t.Errorf("report: %d busy, %d declined, %d invalid; the plan has %d, %d, %d (none may be 0)", rep.Busy, rep.Declined, rep.Invalid, statuses[486], statuses[603], statuses[404])
	}

	// The campaign as the server tells it, read here rather than through RunSurvey.
	var v surveyCampaignCheck
	dayGetJSON(t, api+"/api/v1/campaigns/"+rep.Campaign, &v)
	outcomes, sats := map[string]int{}, map[string]int{}
	for _, tg := range v.Targets {
		plans := want[tg.Phone]
		if len(plans) == 0 {
			t.Errorf("target %+v: not a generated number", tg)
			continue
		}
		last := plans[len(plans)-1]
		outcomes[last.action]++
		wantState, wantSat := "human", "" // no answer after 3 attempts: the human fallback
		if last.action == OutcomeInvalidNumber {
			wantState = "failed" // no retry, no human: there is nobody to call
		}
		if last.action == OutcomeAnswered {
			wantSat = RatingNotRated
			if !last.hangup {
				wantSat = ratingValues[last.key]
			}
			sats[wantSat]++
			wantState = "done"
			if wantSat == "dissatisfied" { // fallback_dissatisfied
				wantState = "human"
			}
		}
		if tg.Attempts != len(plans) || tg.Outcome != last.action || tg.State != wantState || tg.Satisfaction != wantSat {
			t.Errorf("target %+v: want %d attempts, outcome %s, state %s, satisfaction %q", tg, len(plans), last.action, wantState, wantSat)
		}
	}
	if len(v.Targets) != cfg.Targets || !maps.Equal(v.Counts.Outcomes, outcomes) || !maps.Equal(v.Counts.Satisfaction, sats) {
		t.Errorf("campaign: %d targets, counts %v %v; want %d, %v %v", len(v.Targets), v.Counts.Outcomes, v.Counts.Satisfaction, cfg.Targets, outcomes, sats)
	}

	// One survey record per attempt, as the far end saw it.
	var list struct{ CDRs []cdr.Record }
	dayGetJSON(t, api+"/api/v1/cdrs?direction=survey&limit=1000", &list)
	type key struct {
		number  string
		attempt int
	}
	recs := map[key]cdr.Record{}
	for _, r := range list.CDRs {
		if r.Campaign != rep.Campaign {
			continue
		}
		if _, dup := recs[key{r.Called, r.Attempt}]; dup {
			t.Errorf("two records of %s attempt %d", r.Called, r.Attempt)
		}
		recs[key{r.Called, r.Attempt}] = r
	}
	if len(recs) != total {
		t.Errorf("%d survey records of the campaign, want %d", len(recs), total)
	}
	for n, plans := range want {
		for i, p := range plans {
			r, ok := recs[key{n, i + 1}]
			if !ok {
				t.Errorf("%s attempt %d: no record", n, i+1)
				continue
			}
			wantStatus, wantAnswers, wantSat, wantSide := plannedStatus(p), "", "", ""
			if p.action == OutcomeAnswered {
				wantSat, wantSide = RatingNotRated, "caller"
				if !p.hangup {
					wantAnswers, wantSat, wantSide = string(p.key), ratingValues[p.key], cdr.HangupSideSystem
				}
			}
			if string(r.Disposition) != p.action || r.SIPStatus != wantStatus || r.SurveyAnswers != wantAnswers ||
				r.Satisfaction != wantSat || (wantSide != "" && r.HangupSide != wantSide) || r.Trunk != cfg.Trunk {
				t.Errorf("%s attempt %d: record %s: disposition %s, status %d, answers %q, satisfaction %q, side %s, trunk %s; plan %+v",
					n, i+1, r.ID, r.Disposition, r.SIPStatus, r.SurveyAnswers, r.Satisfaction, r.HangupSide, r.Trunk, p)
			}
		}
	}

	mu.Lock()
	defer mu.Unlock()
	setups := 0
	for _, s := range samples {
		setups += s.Setups
	}
	if len(samples) == 0 || setups != rep.Answered {
		t.Errorf("%d samples with %d answers, the report %d", len(samples), setups, rep.Answered)
	}
}

// A campaign the server refuses (an unknown trunk) ends the run at once with ErrCampaign and
// the server's reason; a run whose context ends stops with the context's error.
func TestRunSurveyRefusedAndCancelled(t *testing.T) {
	t.Parallel()
	port := surveyFreePort(t)
	h, err := StartHotlined(hotlinedBinary(t), dayServerConfig(t, "gateway: sip:127.0.0.1:5090", fmt.Sprintf("gateway: sip:127.0.0.1:%d", port)),
		t.TempDir(), "51000-51498", testLog{t})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := SurveyConfig{Listen: fmt.Sprintf("127.0.0.1:%d", port), API: "http://" + h.HTTP, Targets: 2, Trunk: "nowhere"}
	rep, _, err := RunSurvey(ctx, cfg, nil)
	if !errors.Is(err, ErrCampaign) || !strings.Contains(err.Error(), "nowhere") || rep == nil || rep.Stopped != "campaign" || rep.Passed() {
		t.Fatalf("unknown trunk: %v, report %+v; want ErrCampaign naming the trunk", err, rep)
	}

	// Two busy targets with two attempts each need four calls: with three at most, the
	// fourth is refused, the run ends with ErrMaxCalls and cancels its campaign.
	cfg = SurveyConfig{Listen: fmt.Sprintf("127.0.0.1:%d", port), API: "http://" + h.HTTP, Targets: 2, BusyShare: 1,
		MaxAttempts: 2, Retry: 500 * time.Millisecond, MaxCalls: 3}
	rep, truth, err := RunSurvey(ctx, cfg, nil)
	if !errors.Is(err, ErrMaxCalls) || rep.Stopped != "max-calls" || rep.Calls != 3 || rep.Refused < 1 || len(truth.Calls) != 3 || rep.Passed() {
		t.Fatalf("max calls: %v, report %+v", err, rep)
	}
	waitCampaignState(t, h, rep.Campaign, "cancelled")

	// Cancelled while the campaign rings a citizen who never answers: the campaign is
	// cancelled with the run.
	cfg = SurveyConfig{Listen: fmt.Sprintf("127.0.0.1:%d", port), API: "http://" + h.HTTP, Targets: 1, NoAnswerShare: 1, RingTimeout: time.Minute}
	rctx, rcancel := context.WithCancel(ctx)
	var once sync.Once
	rep, truth, err = RunSurvey(rctx, cfg, func(s Sample) {
		if s.Waiting > 0 {
			once.Do(rcancel)
		}
	})
	rcancel()
	if !errors.Is(err, context.Canceled) || rep.Stopped != "cancelled" || len(truth.Calls) != 1 || truth.Calls[0].Error != runStopped || rep.Passed() {
		t.Fatalf("cancelled: %v, report %+v, truth %+v", err, rep, truth)
	}
	waitCampaignState(t, h, rep.Campaign, "cancelled")
}

// waitCampaignState polls campaign id until it is in state.
func waitCampaignState(t *testing.T, h *Hotlined, id, state string) {
	t.Helper()
	var v surveyCampaignCheck
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		dayGetJSON(t, "http://"+h.HTTP+"/api/v1/campaigns/"+id, &v)
		if v.State == state {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("campaign %s: %+v; want %s", id, v, state)
		}
	}
}
