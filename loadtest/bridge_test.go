package loadtest

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// A bridge run against the real server: 8 citizens through the menu to 8 agents, all
// pairs held together with each side's tone checked at the other; no loss on loopback,
// and the ground truth agrees with the server's records. (Eight, not more: the tester's
// pacer runs in this race-detector binary on a machine other tests load, and capacity is
// the benchmarks' business.)
func TestRunBridgeAgainstServer(t *testing.T) {
	t.Parallel()
	const (
		maxSkip = 0.5 // the share of its frames the tester may skip on a machine other work saturates
		pairs   = 8
		legs    = 2 * pairs
	)
	h := startDayServer(t, "60000-61998")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a bound: RunBridge stops by itself
	defer cancel()
	var mu sync.Mutex
	var progress []Sample
	rep, truth, err := RunBridge(ctx, BridgeConfig{
		Target: h.SIP, API: "http://" + h.HTTP, Metrics: h.MetricsURL(),
		Pairs: pairs, Rate: pairs, Hold: 3 * time.Second, Seed: 3,
		MaxSkip: maxSkip, // the server is under test, not the tester's share of the machine
	}, func(s Sample) {
		mu.Lock()
		defer mu.Unlock()
		progress = append(progress, s)
	})
	if err != nil {
		t.Fatalf("RunBridge: %v", err)
	}
	var out bytes.Buffer
	rep.WriteText(&out)
	t.Logf("report:\n%s", out.String())
	if rep.Bridged != pairs || rep.PeakBridged != pairs || rep.Failed != 0 || rep.AudioPassed != pairs {
		t.Fatalf("bridged %d, %d up together, failed %d %v, audio passed %d: want all %d", rep.Bridged, rep.PeakBridged, rep.Failed, rep.FailReasons, rep.AudioPassed, pairs)
	}
	if rep.HeldFor < Dur(3*time.Second) || rep.TesterCores <= 0 || rep.ServerCores <= 0 || rep.ServerRSS <= 0 {
		t.Errorf("held %s, tester %.3f cores, server %.3f cores, RSS %d: want the hold and both CPUs measured", rep.HeldFor, rep.TesterCores, rep.ServerCores, rep.ServerRSS)
	}
	// Each leg carried the hold's worth of packets (3 s at 50 packets/s), less the
	// frames the tester may skip when the machine starves it (MaxSkip); what it did send
	// arrived: nothing lost by sequence, and during the hold every leg received what the far
	// side sent.
	const frames = legs * 150
	if min := int64(frames * (1 - maxSkip)); rep.RTPPackets < min || rep.LossPercent > 0.1 {
		t.Errorf("%d RTP packets (want at least %d), %.3f%% lost", rep.RTPPackets, min, rep.LossPercent)
	}
	if min := int64(legs * 140 * (1 - maxSkip)); rep.HoldSent < min || rep.HoldLost != 0 || rep.HoldReceived < rep.HoldSent-legs*holdSlack {
		t.Errorf("hold: %d sent (want at least %d), %d received, %d lost", rep.HoldSent, min, rep.HoldReceived, rep.HoldLost)
	}
	if !rep.Passed() {
		t.Errorf("the report did not pass:\n%s", out.String())
	}
	agents := map[string]bool{}
	for _, c := range truth.Calls {
		if c.Outcome != OutcomeAnswered || c.AudioOK == nil || !*c.AudioOK || c.Agent == "" || c.HungUpBy != ByCaller || c.Talk < Dur(3*time.Second) {
			t.Errorf("call %+v: want answered by an agent, audio both ways, hung up by the caller after the hold", c)
		}
		if agents[c.Agent] {
			t.Errorf("agent %s answered two calls", c.Agent)
		}
		agents[c.Agent] = true
	}
	recs := serverRecords(t, h, truth)
	for _, c := range truth.Calls {
		if r := recs[c.SIPCallID]; r.Disposition != OutcomeAnswered || r.Agent != c.Agent || r.Caller != c.Caller {
			t.Errorf("call %s: the server has %s by %q from %s; the truth answered by %q from %s", c.SIPCallID, r.Disposition, r.Agent, r.Caller, c.Agent, c.Caller)
		}
	}
	cmp, err := Compare(context.Background(), truth, "http://"+h.HTTP)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	cmp.WriteText(&b)
	for _, m := range cmp.Mismatches {
		if m.Field != FieldWait && m.Field != FieldTalk { // times: logged only, as in the day test
			t.Errorf("compare: %+v\n%s", m, b.String())
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(progress) < 3 || len(progress) != len(rep.Samples) {
		t.Errorf("%d progress samples, %d in the report", len(progress), len(rep.Samples))
	}
}

// A bridge run needs no server to check its settings.
func TestBridgeConfigRefusals(t *testing.T) {
	for name, cfg := range map[string]BridgeConfig{
		"no pairs":     {Target: "127.0.0.1:5060", API: "http://127.0.0.1:8080", Rate: 1},
		"no rate":      {Target: "127.0.0.1:5060", API: "http://127.0.0.1:8080", Pairs: 1},
		"no API":       {Target: "127.0.0.1:5060", Pairs: 1, Rate: 1},
		"codec":        {Target: "127.0.0.1:5060", API: "http://127.0.0.1:8080", Pairs: 1, Rate: 1, Codec: "G729"},
		"loss":         {Target: "127.0.0.1:5060", API: "http://127.0.0.1:8080", Pairs: 1, Rate: 1, MaxLoss: 2},
		"bad target":   {Target: "somewhere", API: "http://127.0.0.1:8080", Pairs: 1, Rate: 1},
		"remote":       {Target: "192.0.2.1:5060", API: "http://127.0.0.1:8080", Pairs: 1, Rate: 1},
		"remote stats": {Target: "127.0.0.1:5060", API: "http://127.0.0.1:8080", Metrics: "http://192.0.2.1/metrics", Pairs: 1, Rate: 1},
		"digit":        {Target: "127.0.0.1:5060", API: "http://127.0.0.1:8080", Pairs: 1, Rate: 1, Digit: "12"},
		"sockets":      {Target: "127.0.0.1:5060", API: "http://127.0.0.1:8080", Pairs: 1, Rate: 1, MeterSockets: 1000},
		"hold":         {Target: "127.0.0.1:5060", API: "http://127.0.0.1:8080", Pairs: 1, Rate: 1, Hold: -time.Second},
	} {
		_, _, err := RunBridge(context.Background(), cfg, nil)
		if !errors.Is(err, ErrConfig) && !errors.Is(err, ErrNotLoopback) {
			t.Errorf("%s: %v, want ErrConfig or ErrNotLoopback", name, err)
		}
	}
}

// The hold's figures: a leg whose far side kept sending but which received nothing for
// half the hold (the server stopped relaying: no gap in the sequence numbers) counts its
// shortfall as lost and fails its pair's audio; a leg that received the packets but not
// the tone fails its audio too; a pair in flight by a packet or two passes.
func TestBridgeHoldFigures(t *testing.T) {
	b := &bridge{cfg: BridgeConfig{MaxLoss: DefaultMaxLoss}, pairs: map[string]*bridgePair{}}
	good, silent, noTone, gone := &bridgePair{}, &bridgePair{}, &bridgePair{}, &bridgePair{}
	before := map[*bridgePair][2]holdCounts{
		good:   {{recv: 100, tone: 95, peerSent: 101}, {recv: 100, tone: 100, peerSent: 100}},
		silent: {{recv: 100, tone: 95, peerSent: 100}, {recv: 100, tone: 100, peerSent: 100}},
		noTone: {{recv: 100, tone: 95, peerSent: 100}, {recv: 100, tone: 100, peerSent: 100}},
		gone:   {{recv: 100, tone: 95, peerSent: 100}, {recv: 100, tone: 100, peerSent: 100}},
	}
	after := map[*bridgePair][2]holdCounts{
		good:   {{recv: 1600, tone: 1595, peerSent: 1602}, {recv: 1600, tone: 1600, peerSent: 1600}}, // 1 in flight
		silent: {{recv: 850, tone: 845, peerSent: 1600}, {recv: 1600, tone: 1600, peerSent: 1600}},   // 750 short
		noTone: {{recv: 1600, tone: 95, peerSent: 1600}, {recv: 1600, tone: 1600, peerSent: 1600}},   // packets, not the tone
	}
	var rep BridgeReport
	b.holdFigures(&rep, before, after)
	if rep.HoldSent != 9001 || rep.HoldLost != 750-holdSlack {
		t.Errorf("sent %d, lost %d; want 9001 sent and %d lost", rep.HoldSent, rep.HoldLost, 750-holdSlack)
	}
	for name, c := range map[string]struct {
		pr  *bridgePair
		bad bool
	}{"good": {good, false}, "silent": {silent, true}, "no tone": {noTone, true}, "gone": {gone, true}} {
		if !c.pr.held || c.pr.holdAudioBad != c.bad {
			t.Errorf("%s: held %v, audio bad %v; want held and bad %v", name, c.pr.held, c.pr.holdAudioBad, c.bad)
		}
	}
}
