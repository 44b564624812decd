package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-audio/wav"

	"github.com/hotline12345/hotline/auth"
	"github.com/hotline12345/hotline/cdr"
	"github.com/hotline12345/hotline/loadtest/phone"
	"github.com/hotline12345/hotline/media"
)

// Citizen and agent tones of the recording tests: each channel must carry its own.
const (
	citizenTone = 440.0
	agentTone   = 1000.0
)

// wavChannels decodes a WAV (8 kHz 16-bit) into its channels' samples.
func wavChannels(t *testing.T, b []byte) [][]int16 {
	t.Helper()
	d := wav.NewDecoder(bytes.NewReader(b))
	buf, err := d.FullPCMBuffer()
	if err != nil {
		t.Fatalf("decode WAV: %v", err)
	}
	if d.SampleRate != 8000 || d.BitDepth != 16 {
		t.Fatalf("WAV %d Hz %d bits, want 8000 Hz 16 bits", d.SampleRate, d.BitDepth)
	}
	n := int(d.NumChans)
	out := make([][]int16, n)
	for i, v := range buf.Data {
		out[i%n] = append(out[i%n], int16(v))
	}
	return out
}

// loudest returns the 400 ms window of x with the most energy.
func loudest(x []int16) []int16 {
	const w = 3200
	best, at := -1.0, 0
	for i := 0; i+w <= len(x); i += 800 {
		var e float64
		for _, v := range x[i : i+w] {
			e += float64(v) * float64(v)
		}
		if e > best {
			best, at = e, i
		}
	}
	return x[at:min(at+w, len(x))]
}

// A complaint call (recorded in stereo by the default config, here with the announcement):
// the citizen sends 440 Hz and the agent 1000 Hz; the WAV fetched from the API has the
// citizen's tone on the left and the agent's on the right, and not the other way round;
// the record's duration and SHA-256 match the file. Only supervisors and admins may fetch
// it, and each fetch is audited.
func TestRecordingChannelsEndToEnd(t *testing.T) {
	t.Parallel()
	viewer, supervisor, admin := auth.NewToken(), auth.NewToken(), auth.NewToken()
	yaml := testConfig(t, "    ring_timeout: 15s ", "    ring_timeout: 2s ", "    wrap_up: 10s ", "    wrap_up: 1s ",
		`      announce: ""  `, `      announce: recording_notice  `,
		"  listen: 127.0.0.1:8080        # API, /metrics, /healthz\n",
		"  listen: 127.0.0.1:8080\n  tokens:\n"+
			"    - {name: wall, role: viewer, hash: \""+auth.HashToken(viewer)+"\"}\n"+
			"    - {name: lead, role: supervisor, hash: \""+auth.HashToken(supervisor)+"\"}\n"+
			"    - {name: ops, role: admin, hash: \""+auth.HashToken(admin)+"\"}\n")
	s := startServer(t, yaml)
	get := func(path, token string, hdr ...string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+s.httpAddr()+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, b
	}
	postAs := func(path, token string) {
		req, _ := http.NewRequest("POST", "http://"+s.httpAddr()+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("POST %s: %d", path, res.StatusCode)
		}
	}

	ag := newAgent(t, s, "1001", phone.Config{}, answerAlways)
	postAs("/api/v1/agents/1001/ready", supervisor)
	p := newPhone(t, phone.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	citizen, err := p.Dial(ctx, "sip:12345@"+s.sipAddr(), "13700137000")
	if err != nil {
		t.Fatal(err)
	}
	citizen.SendDTMF("2", 100*time.Millisecond) // 投诉举报
	var agentCall *phone.Call
	select {
	case agentCall = <-ag.calls:
	case <-time.After(20 * time.Second):
		t.Fatal("the agent's phone never rang")
	}
	<-agentCall.Answered()
	errs := make(chan error, 2)
	go func() { errs <- citizen.SendTone(citizenTone, 2*time.Second) }()
	go func() { errs <- agentCall.SendTone(agentTone, 2*time.Second) }()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	citizen.Hangup(ctx)
	rec := s.record(t, s.records(t, 1)[0].ID, func(r cdr.Record) bool { return r.RecordingFile != "" })
	if !strings.HasPrefix(rec.RecordingFile, "recordings/"+rec.Start.Format("2006/01/02")+"/") || filepath.Base(rec.RecordingFile) != rec.ID+".wav" || rec.Voicemail {
		t.Errorf("recording file %q", rec.RecordingFile)
	}
	// The recording runs from the connect to the end of the call.
	if talk := rec.End.Sub(rec.Connect); rec.RecordingDuration < talk-time.Second || rec.RecordingDuration > talk+time.Second {
		t.Errorf("recording %v, call connected for %v", rec.RecordingDuration, talk)
	}

	path := "/api/v1/recordings/" + rec.ID
	for _, tc := range []struct {
		token string
		want  int
	}{{"", http.StatusUnauthorized}, {viewer, http.StatusForbidden}} {
		if res, b := get(path, tc.token); res.StatusCode != tc.want {
			t.Errorf("token %q: %d %s, want %d", tc.token, res.StatusCode, b, tc.want)
		}
	}
	req, _ := http.NewRequest("GET", "http://"+s.httpAddr()+path, nil)
	req.SetBasicAuth("1001", "agent1001")
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != http.StatusForbidden {
		t.Errorf("agent: %v %v, want 403", res.Status, err)
	}
	if res, b := get("/api/v1/recordings/no-such-call", supervisor); res.StatusCode != http.StatusNotFound || !strings.Contains(string(b), `"error"`) {
		t.Errorf("unknown call: %d %s", res.StatusCode, b)
	}
	res, body := get(path, supervisor)
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "audio/wav" {
		t.Fatalf("GET %s: %d %s", path, res.StatusCode, res.Header.Get("Content-Type"))
	}
	sum := sha256.Sum256(body)
	if hex.EncodeToString(sum[:]) != rec.RecordingSHA256 {
		t.Errorf("sha256 of the file %x, record %s", sum, rec.RecordingSHA256)
	}
	if res, part := get(path, supervisor, "Range", "bytes=0-43"); res.StatusCode != http.StatusPartialContent || !bytes.Equal(part, body[:44]) {
		t.Errorf("Range: %d, %d bytes", res.StatusCode, len(part))
	}
	chs := wavChannels(t, body)
	if len(chs) != 2 {
		t.Fatalf("%d channels, want stereo", len(chs))
	}
	if d := time.Duration(len(chs[0])) * time.Second / 8000; d != rec.RecordingDuration.Truncate(time.Second/8000) {
		t.Errorf("file %v, record %v", d, rec.RecordingDuration)
	}
	l, r := loudest(chs[0]), loudest(chs[1])
	lc, la := media.ToneRatio(l, citizenTone), media.ToneRatio(l, agentTone)
	rc, ra := media.ToneRatio(r, citizenTone), media.ToneRatio(r, agentTone)
	t.Logf("left: %.0f Hz %.2f, %.0f Hz %.2f; right: %.0f Hz %.2f, %.0f Hz %.2f", citizenTone, lc, agentTone, la, citizenTone, rc, agentTone, ra)
	if lc < 0.5 || la > 0.1 || ra < 0.5 || rc > 0.1 {
		t.Errorf("channels: left must carry the citizen's %.0f Hz, right the agent's %.0f Hz", citizenTone, agentTone)
	}

	// The supervisor's fetches are in the audit log (an admin reads it).
	deadline := time.Now().Add(10 * time.Second)
	for {
		var audit struct {
			Entries []cdr.AuditEntry `json:"audit"`
		}
		if res, b := get("/api/v1/audit", admin); res.StatusCode == http.StatusOK {
			json.Unmarshal(b, &audit)
		}
		n := 0
		for _, e := range audit.Entries {
			if e.Action == "GET /api/v1/recordings/{id}" && e.Who == "lead" && e.Target == path {
				n++
			}
		}
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit %+v: want the supervisor's fetches of %s", audit.Entries, path)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill -9 in the middle of a recorded call: the WAV on disk is whole up to the last
// flush (soxi reads it), with the citizen's tone up to about the kill.
func TestRecordingAfterKill9(t *testing.T) {
	t.Parallel()
	p := startProcess(t, testConfig(t, "    ring_timeout: 15s ", "    ring_timeout: 2s "))
	calls := make(chan *phone.Call, 1)
	ag := newPhone(t, phone.Config{OnInvite: func(c *phone.Call) bool { calls <- c; return true }})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := ag.Register(ctx, p.sip, "1002", "agent1002", 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	post(t, "http://"+p.http+"/api/v1/agents/1002/ready", http.StatusOK)
	cp := newPhone(t, phone.Config{})
	citizen, err := cp.Dial(ctx, "sip:12345@"+p.sip, "13700137000")
	if err != nil {
		t.Fatal(err)
	}
	citizen.SendDTMF("2", 100*time.Millisecond)
	var agentCall *phone.Call
	select {
	case agentCall = <-calls:
	case <-time.After(20 * time.Second):
		t.Fatal("the agent's phone never rang")
	}
	<-agentCall.Answered()
	go agentCall.SendTone(agentTone, 5*time.Second)
	go citizen.SendTone(citizenTone, 5*time.Second)
	time.Sleep(3 * time.Second) // the tones play; the kill comes in the middle
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.exited
	hangUpOnTheDead(ctx, citizen, agentCall)
	files, _ := filepath.Glob(filepath.Join(p.dataDir, "recordings", "*", "*", "*", "*.wav"))
	if len(files) != 1 {
		t.Fatalf("recordings after the kill: %v", files)
	}
	out, err := exec.Command("soxi", "-D", files[0]).CombinedOutput()
	if err != nil {
		t.Fatalf("soxi %s: %v: %s", files[0], err, out)
	}
	t.Logf("soxi -D: %s", strings.TrimSpace(string(out)))
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	chs := wavChannels(t, b)
	d := time.Duration(len(chs[0])) * time.Second / 8000
	// The call was connected for about 3 s when killed; the writer flushes every 250 ms
	// what is 250 ms old: at most ~0.5 s (plus the machine's lateness) is lost.
	if d < 1500*time.Millisecond || d > 4*time.Second {
		t.Fatalf("%v of audio on disk after a kill -9 3 s into the call", d)
	}
	if got := media.ToneRatio(loudest(chs[0]), citizenTone); got < 0.5 {
		t.Errorf("left channel: %.0f Hz ratio %.2f", citizenTone, got)
	}
	if got := media.ToneRatio(loudest(chs[1]), agentTone); got < 0.5 {
		t.Errorf("right channel: %.0f Hz ratio %.2f", agentTone, got)
	}
}

// 留言: a caller presses 9 for voicemail, hears the beep, speaks (a 440 Hz tone) for 2 s and
// presses #; the server thanks them and hangs up. The WAV holds about 2 s of the tone, the
// record says voicemail with the file's duration and SHA-256, and a callback task for the
// caller's number waits in the callback queue.
func TestVoicemailEndToEnd(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig(t, `      "3": queue business       # 营商环境专席`+"\n",
		`      "3": queue business`+"\n"+`      "9": voicemail`+"\n",
		"  prompt: voicemail_greeting ", "  prompt: digit_1 "))
	p := newPhone(t, phone.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const caller = "13800138000"
	citizen, err := p.Dial(ctx, "sip:12345@"+s.sipAddr(), caller)
	if err != nil {
		t.Fatal(err)
	}
	citizen.SendDTMF("9", 100*time.Millisecond)
	// The recording starts after the greeting and the beep: its file appears.
	pattern := filepath.Join(s.cfg.DataDir, "recordings", "*", "*", "*", "*.wav")
	deadline := time.Now().Add(15 * time.Second)
	for {
		if files, _ := filepath.Glob(pattern); len(files) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no voicemail file was started")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := citizen.SendTone(citizenTone, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	citizen.SendDTMF("#", 100*time.Millisecond)
	select {
	case <-citizen.Done(): // thanked and hung up by the server
	case <-time.After(20 * time.Second):
		t.Fatal("the server did not hang up after the message")
	}
	var rec cdr.Record
	deadline = time.Now().Add(10 * time.Second)
	for rec.ID == "" {
		recs, err := s.store.List(context.Background(), cdr.Filter{Direction: cdr.DirectionInbound})
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 1 {
			rec = recs[0]
		} else if time.Now().After(deadline) {
			t.Fatalf("inbound records %+v", recs)
		} else {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if !rec.Voicemail || rec.Disposition != cdr.DispositionIVRHangup || !strings.HasSuffix(rec.IVRPath, ">9>voicemail") {
		t.Errorf("record %+v: want a voicemail ending in the IVR", rec)
	}
	if rec.RecordingDuration < 1800*time.Millisecond || rec.RecordingDuration > 3500*time.Millisecond {
		t.Errorf("message of %v, want about 2 s", rec.RecordingDuration)
	}
	b, err := os.ReadFile(filepath.Join(s.cfg.DataDir, filepath.FromSlash(rec.RecordingFile)))
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != rec.RecordingSHA256 {
		t.Errorf("sha256 %x, record %s", sum, rec.RecordingSHA256)
	}
	chs := wavChannels(t, b)
	if len(chs) != 1 {
		t.Fatalf("%d channels, want mono", len(chs))
	}
	var voiced int // 20 ms frames carrying the tone
	for i := 0; i+160 <= len(chs[0]); i += 160 {
		if media.ToneRatio(chs[0][i:i+160], citizenTone) > 0.5 {
			voiced++
		}
	}
	if voiced < 80 || voiced > 110 {
		t.Errorf("%d frames (%v) of the %.0f Hz tone in the message, want about 2 s", voiced, time.Duration(voiced)*20*time.Millisecond, citizenTone)
	}
	// 件件有回音: the callback task waits in the callback queue for an agent.
	deadline = time.Now().Add(10 * time.Second)
	for {
		var live struct {
			Calls []struct{ Queue, Called, Stage string }
		}
		json.Unmarshal([]byte(httpGet(t, "http://"+s.httpAddr()+"/api/v1/calls", http.StatusOK)), &live)
		if len(live.Calls) == 1 && live.Calls[0].Queue == "callback" && live.Calls[0].Called == caller {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("live calls %+v: want the callback task in queue callback", live.Calls)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
