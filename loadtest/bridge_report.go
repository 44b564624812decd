package loadtest

import (
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"
)

// BridgeReport is what a bridge run measured.
type BridgeReport struct {
	Target  string    `json:"target"`
	Pairs   int       `json:"pairs"`
	Rate    float64   `json:"rate"`
	Hold    Dur       `json:"hold_ms"`
	MaxLoss float64   `json:"max_loss"`
	MaxSkip float64   `json:"max_skip"`
	Started time.Time `json:"started"`
	Elapsed Dur       `json:"elapsed_ms"`
	Stopped string    `json:"stopped"`
	Error   string    `json:"error,omitempty"`

	Bridged     int            `json:"bridged"`      // pairs where the citizen heard the agent
	PeakBridged int            `json:"peak_bridged"` // pairs up together at the most
	HeldFor     Dur            `json:"held_for_ms"`  // how long they were held together
	Failed      int            `json:"failed"`
	FailReasons map[string]int `json:"fail_reasons,omitempty"`
	AudioPassed int            `json:"audio_passed"` // bridged pairs where each side heard the other
	AudioFailed int            `json:"audio_failed"`

	SetupP50   Dur `json:"setup_p50_ms"` // INVITE → 200
	SetupP99   Dur `json:"setup_p99_ms"`
	SetupMax   Dur `json:"setup_max_ms"`
	ConnectP50 Dur `json:"connect_p50_ms"` // menu key → the agent's tone heard
	ConnectP99 Dur `json:"connect_p99_ms"`

	RTPPackets  int64   `json:"rtp_packets"` // received on both legs of every pair, whole calls
	RTPLost     int64   `json:"rtp_lost"`    // missing by sequence number
	LossPercent float64 `json:"loss_percent"`
	LegsLossy   int     `json:"legs_lossy"` // legs that lost any packet by sequence number

	// During the hold, leg by leg: what the far side sent against what arrived, so that a
	// leg the server stopped relaying (no gap in the numbers, just silence) counts as lost.
	HoldSent        int64   `json:"hold_sent"`
	HoldReceived    int64   `json:"hold_received"`
	HoldLost        int64   `json:"hold_lost"` // short by more than the few packets in flight
	HoldLossPercent float64 `json:"hold_loss_percent"`
	HostUDPDrops    int64   `json:"host_udp_drops"` // /proc/net/snmp InErrors + RcvbufErrors during the run (either side)
	JitterP99       Dur     `json:"jitter_p99_ms"`
	JitterMax       Dur     `json:"jitter_max_ms"` // the highest any leg's estimate reached

	TesterSent  int64      `json:"tester_sent"`            // RTP packets the tester sent, both legs of every pair
	TesterCores float64    `json:"tester_cores"`           // this process's CPU while all pairs were held
	ServerCores float64    `json:"server_cores,omitempty"` // the server's (from its /metrics)
	ServerRSS   int64      `json:"server_rss_bytes,omitempty"`
	Meter       MeterStats `json:"meter"`

	Samples []Sample `json:"samples"`
}

// Passed: every pair bridged with the audio heard both ways, loss within MaxLoss, and the
// offered load delivered (the tester's skipped frames within MaxSkip of its frames).
func (r *BridgeReport) Passed() bool {
	return r.Error == "" && r.Failed == 0 && r.Bridged == r.Pairs && r.AudioFailed == 0 &&
		r.HoldSent > 0 && r.LossPercent <= 100*r.MaxLoss && r.HoldLossPercent <= 100*r.MaxLoss &&
		float64(r.Meter.PacerSkipped) <= r.MaxSkip*float64(r.TesterSent+int64(r.Meter.PacerSkipped))
}

func (r *BridgeReport) build(b *bridge, t *Truth, samples []Sample, ms MeterStats, elapsed time.Duration) {
	r.Elapsed, r.Samples, r.Meter = Dur(elapsed), samples, ms
	r.PeakBridged = int(b.peak.Load())
	var setups, connects, jitters []time.Duration
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range t.Calls {
		if !c.Answered.IsZero() {
			setups = append(setups, c.Answered.Sub(c.Invite))
		}
		pr := b.pairs[c.Caller]
		if c.Outcome != OutcomeAnswered || pr == nil || c.Error != "" {
			r.Failed++
			if r.FailReasons == nil {
				r.FailReasons = map[string]int{}
			}
			r.FailReasons[c.Outcome+": "+reasonKey(c.Error)]++
		}
		if c.Outcome != OutcomeAnswered || pr == nil {
			continue
		}
		if pr.connect > 0 {
			r.Bridged++
			connects = append(connects, pr.connect)
		}
		if c.AudioOK != nil && *c.AudioOK && !pr.holdAudioBad {
			r.AudioPassed++
		} else {
			r.AudioFailed++
		}
		for _, leg := range []RTPStats{pr.citizen, pr.agent} {
			r.TesterSent += leg.Sent
			r.RTPPackets += leg.Packets
			r.RTPLost += leg.Lost
			if leg.Lost > 0 {
				r.LegsLossy++
			}
			jitters = append(jitters, leg.Jitter)
			r.JitterMax = max(r.JitterMax, Dur(leg.MaxJitter))
		}
	}
	if n := r.RTPPackets + r.RTPLost; n > 0 {
		r.LossPercent = 100 * float64(r.RTPLost) / float64(n)
	}
	if r.HoldSent > 0 {
		r.HoldLossPercent = 100 * float64(r.HoldLost) / float64(r.HoldSent)
	}
	setups, connects, jitters = sortedDurations(setups), sortedDurations(connects), sortedDurations(jitters)
	r.SetupP50, r.SetupP99 = Dur(percentile(setups, 0.5)), Dur(percentile(setups, 0.99))
	if len(setups) > 0 {
		r.SetupMax = Dur(slices.Max(setups))
	}
	r.ConnectP50, r.ConnectP99 = Dur(percentile(connects, 0.5)), Dur(percentile(connects, 0.99))
	r.JitterP99 = Dur(percentile(jitters, 0.99))
}

// reasonKey shortens a failure to its kind for the counts ("refused: 503 …" → "refused: 503").
func reasonKey(e string) string {
	if e == "" {
		return "no reason"
	}
	if r := []rune(e); len(r) > 40 { // a Reason header may be Chinese: cut on a character
		return string(r[:40]) + "…"
	}
	return e
}

// WriteText writes the report as a two-column table.
func (r *BridgeReport) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, a ...any) { fmt.Fprintf(tw, "%s\t%s\n", k, fmt.Sprintf(format, a...)) }
	row("run", "%d pairs at %s, %g citizens/s, held %s together, %s in all", r.Pairs, r.Target, r.Rate, r.Hold, r.Elapsed)
	row("stopped", "%s%s", r.Stopped, errNote(r.Error))
	row("bridged", "%d of %d (at most %d up together, for %s)", r.Bridged, r.Pairs, r.PeakBridged, r.HeldFor)
	row("failed", "%d%s", r.Failed, reasons(r.FailReasons))
	row("audio both ways", "%d passed, %d failed", r.AudioPassed, r.AudioFailed)
	row("setup (INVITE→200)", "p50 %s, p99 %s, max %s", r.SetupP50, r.SetupP99, r.SetupMax)
	row("connect (key→agent heard)", "p50 %s, p99 %s", r.ConnectP50, r.ConnectP99)
	row("RTP while held", "%d sent, %d received, %d lost (%.4f%%; criterion %.4f%%)", r.HoldSent, r.HoldReceived, r.HoldLost, r.HoldLossPercent, 100*r.MaxLoss)
	row("RTP whole calls", "%d packets, %d lost by sequence (%.4f%%), %d legs with loss; host UDP drops %d", r.RTPPackets, r.RTPLost, r.LossPercent, r.LegsLossy, r.HostUDPDrops)
	row("jitter", "p99 %s, max %s (includes the tester's own send lateness: see the pacer)", r.JitterP99, r.JitterMax)
	server := "not measured (no --metrics)"
	if r.ServerCores > 0 {
		server = fmt.Sprintf("%.2f cores, RSS %.0f MiB", r.ServerCores, float64(r.ServerRSS)/(1<<20))
	}
	row("CPU while held", "tester %.2f cores; server %s", r.TesterCores, server)
	row("tester pacer", "%d slots, %d late > 2 ms, max %s, %d frames skipped%s", r.Meter.PacerSlots, r.Meter.PacerLate, Dur(r.Meter.PacerMaxLate), r.Meter.PacerSkipped, skipNote(r.Meter.PacerSkipped, r.MaxSkip))
	if b := r.Meter.RecvBuffer; b > 0 && b < 1<<20 {
		row("tester sockets", "receive buffers %d KiB each: net.core.rmem_max caps them; a pacer stall of a few ms overflows them at a thousand pairs (sysctl -w net.core.rmem_max=4194304)", b>>10)
	}
	verdict := "PASSED"
	if !r.Passed() {
		verdict = "FAILED"
	}
	row("verdict", "%s", verdict)
	return tw.Flush()
}

func skipNote(skipped uint64, maxSkip float64) string {
	if skipped == 0 {
		return ""
	}
	return fmt.Sprintf(" (the tester ran short of CPU; above %g%% of its frames the run fails: give it a core of its own or a second machine)", 100*maxSkip)
}
