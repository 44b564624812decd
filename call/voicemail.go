package call

import (
	"time"

	"github.com/hotline12345/hotline/ivr"
	"github.com/hotline12345/hotline/media"
)

// Voicemail (留言). A menu's `voicemail` action ends the IVR; the loop then plays the
// greeting and the beep, records the caller (mono) to recordings/YYYY/MM/DD/<record
// id>.wav until # (the thanks prompt follows, then the server hangs up), a silence of the
// configured length (likewise), the maximum duration (likewise) or the caller's hang-up.
// The record is the inbound call's, with its usual disposition (ivr-hangup, or
// closed-hours from the closed-hours menu), voicemail set and the file, duration and
// SHA-256 of the message. Once it is written, a callback task for the caller's number
// waits in the callback queue like any other (件件有回音): its record has direction
// callback and parent = the voicemail's record.

// StageVoicemail: the caller is leaving a message.
const StageVoicemail = "voicemail"

// Voicemail is the voicemail action's settings.
type Voicemail struct {
	Prompt, Beep, Thanks string        // greeting, beep, and what is said after # or silence
	MaxDuration          time.Duration // the longest message
	Silence              time.Duration // this long without voice ends it; 0 = never
	SilenceLevel         float64       // dBFS RMS below which audio is silence
}

// recCall is a call's recording and voicemail state, owned by the loop.
type recCall struct {
	recording  *recording
	recDecided bool // the recording rule was applied (recWanted says the outcome)
	recWanted  bool
	vm         *voicemail
}

// voicemail is a caller leaving a message.
type voicemail struct {
	playing <-chan struct{} // the greeting and beep, then the thanks
	silent  <-chan struct{} // the recorder's silence detector
	max     ivr.Timer
	thanks  bool // the message is over; the thanks are playing
	task    bool // a callback task is due once the record is written
	number  string
}

// startVoicemail plays the greeting and the beep; the recording starts when they end.
func (c *Call) startVoicemail() {
	cfg := c.m.cfg.Voicemail
	c.vm = &voicemail{}
	c.setStage(StageVoicemail)
	c.log.Info("caller reached voicemail")
	if c.vm.playing = c.play(cfg.Prompt, cfg.Beep); c.vm.playing == nil {
		c.voicemailRecord()
	}
}

// voicemailPlayed: the greeting ended (record), or the thanks did (hang up).
func (c *Call) voicemailPlayed() {
	vm := c.vm
	vm.playing = nil
	if vm.thanks {
		c.stop(ErrIVREnded)
		return
	}
	c.voicemailRecord()
}

// voicemailRecord starts recording the caller.
func (c *Call) voicemailRecord() {
	cfg, vm := c.m.cfg.Voicemail, c.vm
	if c.m.cfg.DataDir == "" {
		c.log.Error("voicemail: no data dir to store messages in")
		c.stop(ErrIVREnded)
		return
	}
	c.recording = c.startRecorder(media.RecorderConfig{Silence: cfg.Silence, SilenceLevel: cfg.SilenceLevel}, true)
	if c.recording == nil {
		c.stop(ErrIVREnded)
		return
	}
	tap(c.s, c.recording.r.Sink(media.RecordLeft))
	vm.task = true
	if cfg.Silence > 0 {
		vm.silent = c.recording.r.Silent()
	}
	vm.max = c.m.cfg.Clock.NewTimer(cfg.MaxDuration)
}

// voicemailDigit: # ends the message (or skips the greeting to the beep's end).
func (c *Call) voicemailDigit(d rune) {
	vm := c.vm
	if d != '#' || vm.thanks {
		return
	}
	if c.recording == nil { // still in the greeting: record at once
		c.s.StopPlay()
		return // the playback's end starts the recording
	}
	c.voicemailEnd("key")
}

// voicemailEnd ends the message (key, silence, max) and thanks the caller.
func (c *Call) voicemailEnd(why string) {
	vm := c.vm
	if vm.max != nil {
		vm.max.Stop()
		vm.max = nil
	}
	vm.silent = nil
	if res, ok := c.stopRecording(); ok {
		c.log.Info("voicemail recorded", "file", c.rec.RecordingFile, "duration", res.Duration.Round(time.Millisecond),
			"voice", res.Voice.Round(time.Millisecond), "ended_by", why)
	}
	vm.thanks = true
	if vm.playing = c.play(c.m.cfg.Voicemail.Thanks); vm.playing == nil {
		c.stop(ErrIVREnded)
	}
}

// voicemailTask queues the callback for a caller who left a message; it runs after the
// call's record is written, as a call of its own (Manager.Task).
func (c *Call) voicemailTask() {
	vm := c.vm
	if vm == nil || !vm.task || c.in == nil {
		return
	}
	m, number := c.m, c.rec.Caller
	switch {
	case m.cfg.CallbackQueue == "" || m.cfg.CallbackTrunk == "":
		c.log.Warn("voicemail: no callback queue or trunk; no callback task")
		return
	case m.cfg.Trunks == nil || !m.cfg.Trunks.TrunkAllows(m.cfg.CallbackTrunk, number):
		c.log.Warn("voicemail: the caller's number is outside the callback trunk's dial plan; no callback task", "number", number)
		return
	}
	req := TaskRequest{Queue: m.cfg.CallbackQueue, Trunk: m.cfg.CallbackTrunk, Number: number, CaseID: c.rec.CaseNumber, Parent: c.rec.ID}
	c.log.Info("voicemail: callback task queued", "queue", req.Queue)
	go m.Task(m.base, req)
}
