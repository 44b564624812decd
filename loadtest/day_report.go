package loadtest

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/hotline12345/hotline/cdr"
	"github.com/hotline12345/hotline/loadtest/phone"
)

// DayReport is the outcome of RunDay in call-center terms.
type DayReport struct {
	Target   string    `json:"target"`
	Number   string    `json:"number"`
	Agents   int       `json:"agents"`
	Rate     float64   `json:"rate"`
	Duration Dur       `json:"duration_ms"`
	Seed     uint64    `json:"seed"`
	Started  time.Time `json:"started"`
	Elapsed  Dur       `json:"elapsed_ms"`
	// Stopped says why arrivals stopped: duration, max-calls, cancelled, max-duration,
	// unreachable, no-local-port, agents (the agents' setup failed).
	Stopped string `json:"stopped"`
	Error   string `json:"error,omitempty"`

	Calls       int            `json:"calls"`     // citizens who dialled
	Offered     int            `json:"offered"`   // reached a queue: answered + abandoned
	Answered    int            `json:"answered"`  // an agent answered
	Abandoned   int            `json:"abandoned"` // gave up in the queue
	Failed      int            `json:"failed"`    // refused (503, …), timed out, or ended by the server before an agent
	Other       int            `json:"other"`     // the run stopped them before the queue (cancelled, ivr-hangup)
	FailReasons map[string]int `json:"fail_reasons,omitempty"`
	AnswerRate  float64        `json:"answer_rate"` // answered / offered
	ASA         Dur            `json:"asa_ms"`      // mean wait of the answered calls (menu key → agent's answer)
	WaitP50     Dur            `json:"wait_p50_ms"`
	WaitP90     Dur            `json:"wait_p90_ms"`
	WaitMax     Dur            `json:"wait_max_ms"`
	AbandonMean Dur            `json:"abandon_mean_ms"` // mean wait of the abandoned calls
	MeanTalk    Dur            `json:"mean_talk_ms"`
	HungUpBy    map[string]int `json:"hung_up_by"`
	AudioPassed int            `json:"audio_passed"` // answered calls where each side heard the other's tone (both agents' after a transfer)
	AudioFailed int            `json:"audio_failed"`
	Ratings     map[string]int `json:"ratings"` // satisfaction value → calls, not_rated included

	AgentsDeclined int `json:"agents_declined"` // rings the agents answered 486 Busy Here (--busy-share)

	// Blind transfers (DayConfig.TransferShare): calls the server transferred to the
	// transfer queue, of which a second agent answered, the citizen gave up waiting again,
	// or the server hung up while they waited (failed); and REFERs the server refused.
	Transferred       int            `json:"transferred"`
	TransferAnswered  int            `json:"transfer_answered"`
	TransferAbandoned int            `json:"transfer_abandoned"`
	TransferFailed    int            `json:"transfer_failed"` // dropped after the transfer, or refused
	TransferErrors    map[string]int `json:"transfer_errors,omitempty"`

	SetupP50 Dur `json:"setup_p50_ms"` // INVITE → 200 at the citizen's phone
	SetupP90 Dur `json:"setup_p90_ms"`
	SetupP99 Dur `json:"setup_p99_ms"`
	SetupMax Dur `json:"setup_max_ms"`

	RTPPackets  int     `json:"rtp_packets"` // received by citizens and agents
	RTPLost     int     `json:"rtp_lost"`    // missing by sequence number
	LossPercent float64 `json:"loss_percent"`

	Samples []Sample `json:"samples"`
}

// Passed reports the run's pass criteria: it ran to its end, no call failed, every
// answered call's audio crossed both ways, and no transfer was refused or dropped.
func (r *DayReport) Passed() bool {
	return r.Error == "" && r.Failed == 0 && r.AudioFailed == 0 && r.TransferFailed == 0
}

// buildDayReport counts the truth's calls; referErrors are the REFERs the server refused
// (reason → count), which the truth's calls do not show as transfers.
func buildDayReport(cfg *DayConfig, t *Truth, samples []Sample, pkts, lost int, referErrors map[string]int) *DayReport {
	r := &DayReport{
		Target: cfg.Target, Number: cfg.Number, Agents: cfg.Agents, Rate: cfg.Rate, Duration: Dur(cfg.Duration),
		Seed: cfg.Seed, Started: t.Started, Elapsed: Dur(t.Ended.Sub(t.Started)),
		FailReasons: map[string]int{}, HungUpBy: map[string]int{}, Ratings: map[string]int{},
		RTPPackets: pkts, RTPLost: lost, Samples: samples, Calls: len(t.Calls),
		TransferErrors: map[string]int{},
	}
	for why, n := range referErrors {
		r.TransferFailed += n
		r.TransferErrors[why] += n
	}
	if pkts+lost > 0 {
		r.LossPercent = 100 * float64(lost) / float64(pkts+lost)
	}
	var setups, waits []time.Duration
	var talk, abandon time.Duration
	for _, c := range t.Calls {
		if !c.Answered.IsZero() {
			setups = append(setups, c.Answered.Sub(c.Invite))
		}
		if c.HungUpBy != "" {
			r.HungUpBy[c.HungUpBy]++
		}
		if c.Rating != "" {
			r.Ratings[c.Rating]++
		}
		if c.Transfers > 0 {
			r.Transferred++
			switch vs := cdr.ParseVisits(c.Visits); {
			case len(vs) > 0 && vs[len(vs)-1].Agent != "":
				r.TransferAnswered++
			case c.HungUpBy == ByServer:
				r.TransferFailed++
				r.TransferErrors[c.Error]++
			default:
				r.TransferAbandoned++
			}
		}
		switch c.Outcome {
		case OutcomeAnswered:
			r.Answered++
			waits = append(waits, c.Wait.D())
			talk += c.Talk.D()
			if c.AudioOK != nil && *c.AudioOK {
				r.AudioPassed++
			} else {
				r.AudioFailed++
			}
		case OutcomeAbandoned:
			r.Abandoned++
			abandon += c.AbandonAt.D()
		case OutcomeFailed:
			r.Failed++
			r.FailReasons[c.Error]++
		default:
			r.Other++
		}
	}
	r.Offered = r.Answered + r.Abandoned
	if r.Offered > 0 {
		r.AnswerRate = float64(r.Answered) / float64(r.Offered)
	}
	if r.Answered > 0 {
		r.MeanTalk = Dur(talk / time.Duration(r.Answered))
		var sum time.Duration
		for _, w := range waits {
			sum += w
		}
		r.ASA = Dur(sum / time.Duration(len(waits)))
	}
	if r.Abandoned > 0 {
		r.AbandonMean = Dur(abandon / time.Duration(r.Abandoned))
	}
	waits, setups = sortedDurations(waits), sortedDurations(setups)
	r.WaitP50, r.WaitP90 = Dur(percentile(waits, 0.5)), Dur(percentile(waits, 0.9))
	r.SetupP50, r.SetupP90, r.SetupP99 = Dur(percentile(setups, 0.5)), Dur(percentile(setups, 0.9)), Dur(percentile(setups, 0.99))
	if len(waits) > 0 {
		r.WaitMax = Dur(waits[len(waits)-1])
	}
	if len(setups) > 0 {
		r.SetupMax = Dur(setups[len(setups)-1])
	}
	return r
}

// WriteText writes the report as a table for people.
func (r *DayReport) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, a ...any) { fmt.Fprintf(tw, "%s\t%s\n", k, fmt.Sprintf(format, a...)) }
	row("run", "%s at %s: %d agents, %g citizens/s for %s (seed %d), %s in all", r.Number, r.Target, r.Agents, r.Rate, r.Duration, r.Seed, r.Elapsed)
	row("stopped", "%s%s", r.Stopped, errNote(r.Error))
	row("citizens", "%d: %d offered to a queue, %d failed%s, %d other", r.Calls, r.Offered, r.Failed, reasons(r.FailReasons), r.Other)
	row("answered / abandoned", "%d / %d (answer rate %.1f%%)", r.Answered, r.Abandoned, 100*r.AnswerRate)
	row("ASA / wait p50 / p90 / max", "%s / %s / %s / %s", r.ASA, r.WaitP50, r.WaitP90, r.WaitMax)
	row("mean talk / mean abandon wait", "%s / %s", r.MeanTalk, r.AbandonMean)
	row("hung up by", "%s", counts(r.HungUpBy))
	if r.AgentsDeclined > 0 {
		row("agents declined (486)", "%d rings", r.AgentsDeclined)
	}
	row("audio both ways", "%d passed, %d failed", r.AudioPassed, r.AudioFailed)
	row("ratings", "%s", counts(r.Ratings))
	if r.Transferred+r.TransferFailed == 0 {
		row("transfers", "none")
	} else {
		row("transfers", "%d: %d answered again, %d abandoned in the second queue, %d failed%s", r.Transferred, r.TransferAnswered, r.TransferAbandoned, r.TransferFailed, reasons(r.TransferErrors))
	}
	row("setup p50 / p90 / p99 / max", "%s / %s / %s / %s (INVITE → 200 at the citizen)", r.SetupP50, r.SetupP90, r.SetupP99, r.SetupMax)
	row("RTP received", "%d packets, %d lost (%.4f%%)", r.RTPPackets, r.RTPLost, r.LossPercent)
	verdict := "PASS"
	if !r.Passed() {
		verdict = "FAIL"
	}
	row("verdict", "%s", verdict)
	return tw.Flush()
}

// counts lists a count map, largest first ("none" when empty).
func counts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	return strings.TrimPrefix(reasons(m), ": ")
}

func errNote(e string) string {
	if e == "" {
		return ""
	}
	return " (" + e + ")"
}

// dayMeter gathers the live figures of a run for the per-second samples. Citizens and
// agents report to it; no I/O under its lock.
type dayMeter struct {
	start time.Time

	mu              sync.Mutex
	active, waiting int
	setups, waits   []time.Duration      // of this second
	failures        int                  // of this second
	live            map[audioSource]bool // → counts as an active citizen
	endedPkts       int
	endedLost       int
	lastPkts        int
	lastLost        int
	all             []Sample
	referErrors     map[string]int // REFERs the server refused, by reason
}

func newDayMeter(start time.Time) *dayMeter {
	return &dayMeter{start: start, live: map[audioSource]bool{}}
}

func (m *dayMeter) setup(d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.setups = append(m.setups, d)
}

func (m *dayMeter) failure() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failures++
}

func (m *dayMeter) referRefused(why string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.referErrors == nil {
		m.referErrors = map[string]int{}
	}
	m.referErrors[why]++
}

// refusedRefers returns a copy of the refused REFERs by reason.
func (m *dayMeter) refusedRefers() map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.referErrors)
}

func (m *dayMeter) queued(delta int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.waiting += delta
}

func (m *dayMeter) connected(wait time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.waits = append(m.waits, wait)
}

// audioSource is what the dayMeter reads a call's received RTP from: the test phone's
// own media, or a meter Stream.
type audioSource interface {
	received() (pkts, lost int)
}

type phoneAudio struct{ c *phone.Call }

func (a phoneAudio) received() (pkts, lost int) {
	s := a.c.Audio()
	return s.Packets, s.Lost
}

func (s *Stream) received() (pkts, lost int) {
	st := s.Stats()
	return int(st.Packets), int(st.Lost)
}

// addLive counts a call's received RTP from now on; citizen calls count as active.
func (m *dayMeter) addLive(c *phone.Call, citizen bool) { m.add(phoneAudio{c}, citizen) }

// endLive folds an ended call's final RTP counts in.
func (m *dayMeter) endLive(c *phone.Call) { m.end(phoneAudio{c}) }

func (m *dayMeter) add(src audioSource, citizen bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.live[src] = citizen
	if citizen {
		m.active++
	}
}

func (m *dayMeter) end(src audioSource) {
	pkts, lost := src.received()
	m.mu.Lock()
	defer m.mu.Unlock()
	citizen, ok := m.live[src]
	if !ok {
		return
	}
	delete(m.live, src)
	if citizen {
		m.active--
	}
	m.endedPkts += pkts
	m.endedLost += lost
}

// totals returns the RTP received and lost so far by all calls (m.mu held).
func (m *dayMeter) totals() (pkts, lost int) {
	pkts, lost = m.endedPkts, m.endedLost
	for src := range m.live {
		p, l := src.received()
		pkts += p
		lost += l
	}
	return pkts, lost
}

// sample closes the current second.
func (m *dayMeter) sample(now time.Time) Sample {
	m.mu.Lock()
	defer m.mu.Unlock()
	pkts, lost := m.totals()
	setups, waits := sortedDurations(m.setups), sortedDurations(m.waits)
	s := Sample{
		At: Dur(now.Sub(m.start)), Active: m.active, Setups: len(setups), Failures: m.failures,
		SetupP50: Dur(percentile(setups, 0.5)), SetupP99: Dur(percentile(setups, 0.99)),
		Waiting: m.waiting, WaitP50: Dur(percentile(waits, 0.5)),
	}
	if dp, dl := pkts-m.lastPkts, lost-m.lastLost; dp+dl > 0 {
		s.LossPercent = 100 * float64(dl) / float64(dp+dl)
	}
	m.lastPkts, m.lastLost = pkts, lost
	m.setups, m.waits, m.failures = m.setups[:0], m.waits[:0], 0
	m.all = append(m.all, s)
	return s
}

// run samples every second, calling progress (if not nil) with each sample, until the
// returned stop is called; stop takes a last sample of the partial second.
func (m *dayMeter) run(progress func(Sample)) (stop func()) {
	m.mu.Lock()
	m.start = time.Now() // samples count from the first arrival
	m.mu.Unlock()
	quit := make(chan struct{})
	done := make(chan struct{})
	emit := func(s Sample) {
		if progress != nil {
			progress(s)
		}
	}
	go func() {
		defer close(done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case now := <-t.C:
				emit(m.sample(now))
			}
		}
	}()
	return func() {
		close(quit)
		<-done
		emit(m.sample(time.Now()))
	}
}

func (m *dayMeter) samples() []Sample {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.all)
}

func (m *dayMeter) loss() (pkts, lost int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.totals()
}
