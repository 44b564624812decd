package call

import (
	"math/rand/v2"
	"path"
	"path/filepath"

	"github.com/hotline12345/hotline/media"
)

// Call recording (质检). A queue (or the campaigns) says which calls are recorded; the
// decision is taken once per call, when it first joins such a queue (the announcement, if
// any, is played before the join prompt, so before any agent is connected) or, at the
// latest, when an agent is connected. The recorder starts when the caller is first bridged
// and runs to the end of the call: the citizen's stream feeds the left channel, each agent
// bridged in turn the right (hold and transfers leave silence there). The taps are the
// sessions' audio sinks, which the readers call anyway: a copy into the recorder's bounded
// queue per packet, nothing more on the relay path.

// Recording is a recording rule.
type Recording struct {
	Share    float64 // fraction of calls recorded: 0 off, 1 all
	Stereo   bool    // citizen left, agent right; false: mixed mono
	Announce string  // prompt played to the caller before the agent is connected; "" = none
}

// RecordingsDir is the directory under the data dir where recordings and voicemails go.
const RecordingsDir = "recordings"

// recording is a call's recorder and its file.
type recording struct {
	r         *media.Recorder
	file      string // relative to the data dir, slash-separated
	voicemail bool
}

// audioTap is the optional face of a Stream that can feed a recorder (media.Session).
type audioTap interface {
	SetAudioSink(f media.AudioSink)
}

// recordingRule is the rule that applies to this call in queue.
func (c *Call) recordingRule(queue string) Recording {
	if c.rec.Campaign != "" && c.m.cfg.CampaignRecording.Share > 0 {
		return c.m.cfg.CampaignRecording
	}
	return c.plan.Queues[queue].Recording
}

// decideRecording rolls the dice for queue's rule if the call has not been decided yet;
// it reports whether the call is now to be recorded and whether that was decided just now.
func (c *Call) decideRecording(queue string) (record, now bool) {
	if c.recDecided || c.m.cfg.DataDir == "" {
		return c.recWanted, false
	}
	r := c.recordingRule(queue)
	if r.Share <= 0 {
		return false, false // a later queue may still record
	}
	c.recDecided = true
	c.recWanted = r.Share >= 1 || rand.Float64() < r.Share
	return c.recWanted, true
}

// recordingAnnounce is the prompt to put before queue's join prompt, if the call has just
// been chosen for recording and the rule announces it.
func (c *Call) recordingAnnounce(queue string) string {
	if rec, now := c.decideRecording(queue); rec && now {
		return c.recordingRule(queue).Announce
	}
	return ""
}

// recordBridge taps the citizen's and agent a's streams into the call's recorder, starting
// it if the call is to be recorded in a's queue.
func (c *Call) recordBridge(a *agentLeg) {
	if rec, _ := c.decideRecording(a.queue); !rec {
		return
	}
	if c.recording == nil {
		rule := c.recordingRule(a.queue)
		c.recording = c.startRecorder(media.RecorderConfig{Stereo: rule.Stereo}, false)
		if c.recording == nil {
			return
		}
		tap(c.s, c.recording.r.Sink(media.RecordLeft))
	}
	tap(a.s, c.recording.r.Sink(media.RecordRight))
}

// startRecorder opens the call's file, recordings/YYYY/MM/DD/<record id>.wav; nil (logged)
// if it cannot.
func (c *Call) startRecorder(cfg media.RecorderConfig, voicemail bool) *recording {
	day := c.rec.Start
	if day.IsZero() {
		day = c.m.cfg.Clock.Now()
	}
	rel := path.Join(RecordingsDir, day.Format("2006/01/02"), c.rec.ID+".wav")
	cfg.Path, cfg.Logger = filepath.Join(c.m.cfg.DataDir, filepath.FromSlash(rel)), c.log
	r, err := media.NewRecorder(cfg)
	if err != nil {
		c.log.Error("recording not started", "error", err)
		return nil
	}
	c.log.Info("recording", "file", rel, "voicemail", voicemail)
	return &recording{r: r, file: rel, voicemail: voicemail}
}

// tap sets s's audio sink, if s can have one.
func tap(s Stream, f media.AudioSink) {
	if t, ok := s.(audioTap); ok {
		t.SetAudioSink(f)
	}
}

// stopRecording closes the call's recorder, if any, and puts the file on the record.
func (c *Call) stopRecording() (media.RecordingResult, bool) {
	rc := c.recording
	if rc == nil {
		return media.RecordingResult{}, false
	}
	c.recording = nil
	if c.s != nil {
		tap(c.s, nil)
	}
	if c.agent != nil {
		tap(c.agent.s, nil)
	}
	res, err := rc.r.Close()
	if err != nil {
		c.log.Error("recording incomplete", "file", rc.file, "error", err)
	}
	c.rec.RecordingFile, c.rec.RecordingDuration, c.rec.RecordingSHA256 = rc.file, res.Duration, res.SHA256
	c.rec.Voicemail = rc.voicemail
	return res, true
}
