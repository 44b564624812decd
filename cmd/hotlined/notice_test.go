package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hotline12345/hotline/call"
	"github.com/hotline12345/hotline/loadtest/phone"
	"github.com/hotline12345/hotline/notice"
)

// toneWAV is a WAV file (8 kHz, 16-bit, mono) of a sine at freq for d.
func toneWAV(freq float64, d time.Duration) []byte {
	n := int(d.Seconds() * 8000)
	var b bytes.Buffer
	w := func(v any) { binary.Write(&b, binary.LittleEndian, v) }
	b.WriteString("RIFF")
	w(uint32(36 + 2*n))
	b.WriteString("WAVEfmt ")
	w(uint32(16))
	w(uint16(1))
	w(uint16(1))
	w(uint32(8000))
	w(uint32(16000))
	w(uint16(2))
	w(uint16(16))
	b.WriteString("data")
	w(uint32(2 * n))
	for i := range n {
		w(int16(8000 * math.Sin(2*math.Pi*freq*float64(i)/8000)))
	}
	return b.Bytes()
}

func apiSend(t *testing.T, method, url, token, contentType string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := anonClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(res.Body)
	return res.StatusCode, buf.String()
}

// waitQueue waits until the call with sipCallID waits in queue.
func waitQueue(t *testing.T, httpAddr, sipCallID, queue string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		lc, ok := liveCall(t, httpAddr, sipCallID)
		if ok && lc.Stage == call.StageQueued && lc.Queue == queue {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("call not queued in %s: %+v (live %v)", queue, lc, ok)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// An emergency notice (应急): a supervisor uploads a recording for route 12345 and the
// next caller hears it before the menu; an emergency menu replaces the entry menu at once;
// removing them restores the menu; bad notices get a JSON error.
func TestEmergencyNoticeRecordingAndMenu(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig(t, "  closed:\n", `  epidemic:
    prompts: [menu_main]
    options:
      "1": queue business
    timeout: 5s
  closed:
`))
	base := "http://" + s.httpAddr() + "/api/v1/notices"
	p := newPhone(t, phone.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// Bad input: not a WAV, an unknown menu, an end before the start, both prompt and menu missing.
	for _, bad := range []struct{ ct, url, body, want string }{
		{"audio/wav", base + "?routes=12345", "not audio", "recording: not a WAV file"},
		{"application/json", base, `{"menu": "nosuch"}`, `menu: "nosuch" is not a configured menu`},
		{"application/json", base, `{"prompt": "welcome", "start": "2026-12-08 10:00", "end": "2026-12-08 09:00"}`, "end: must be after start"},
		{"application/json", base, `{"routes": ["12345"]}`, "one is required"},
		{"application/json", base, `{"prompt": "welcome", "routes": ["99999"]}`, `"99999" is not a configured route`},
		{"application/x-www-form-urlencoded", base, `routes=12345`, "body: invalid character"},
	} {
		code, body := apiSend(t, "POST", bad.url, s.token, bad.ct, []byte(bad.body))
		var e struct{ Error string }
		json.Unmarshal([]byte(body), &e)
		if code/100 != 4 || !strings.Contains(e.Error, bad.want) {
			t.Errorf("POST %s %q: %d %s, want a 4xx saying %q", bad.ct, bad.body, code, body, bad.want)
		}
		wantJSONError(t, bad.body, body)
	}

	code, body := apiSend(t, "POST", base+"?routes=12345&text="+"疫情防控通知", s.token, "audio/wav", toneWAV(1000, 3*time.Second))
	var rec notice.Notice
	if code != http.StatusCreated || json.Unmarshal([]byte(body), &rec) != nil || rec.Prompt != notice.UploadedPrefix+rec.ID || rec.Seconds != 3 {
		t.Fatalf("upload: %d %s", code, body)
	}
	if _, err := os.Stat(filepath.Join(s.cfg.DataDir, "notices", rec.ID+".wav")); err != nil {
		t.Fatalf("the recording is not kept: %v", err)
	}
	// The next caller hears the 1 kHz notice first.
	c, err := p.Dial(ctx, "sip:12345@"+s.sipAddr(), "13900139010")
	if err != nil {
		t.Fatal(err)
	}
	heard := false
	for deadline := time.Now().Add(10 * time.Second); !heard && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		heard = c.DetectTone(1000) > 0.5
	}
	if !heard {
		t.Fatalf("the caller did not hear the notice's 1 kHz tone (audio %+v)", c.Audio())
	}
	c.Hangup(ctx)

	// An emergency menu: key 1 now goes to business.
	code, body = apiSend(t, "POST", base, s.token, "application/json", []byte(`{"menu": "epidemic", "routes": ["12345"]}`))
	var menu notice.Notice
	if code != http.StatusCreated || json.Unmarshal([]byte(body), &menu) != nil {
		t.Fatalf("menu notice: %d %s", code, body)
	}
	code, body = apiSend(t, "GET", base, s.token, "", nil)
	if code != 200 || !strings.Contains(body, rec.ID) || !strings.Contains(body, menu.ID) || !strings.Contains(body, "疫情防控通知") {
		t.Fatalf("list: %d %s", code, body)
	}
	c, err = p.Dial(ctx, "sip:12345@"+s.sipAddr(), "13900139011")
	if err != nil {
		t.Fatal(err)
	}
	waitTone := func(on bool) { // the notice plays first, whole, then the emergency menu
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); (c.DetectTone(1000) > 0.5) != on; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the notice's tone never turned %v", on)
			}
		}
	}
	waitTone(true)
	if err := c.SendDTMF("2", 120*time.Millisecond); err != nil { // during the notice: dropped
		t.Fatal(err)
	}
	waitTone(false)
	if err := c.SendDTMF("1", 120*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	waitQueue(t, s.httpAddr(), c.SIPCallID(), "business")
	c.Hangup(ctx)

	// Removed: the recording goes, and callers get the main menu again (2 → complaint).
	for _, id := range []string{rec.ID, menu.ID} {
		if code, body := apiSend(t, "DELETE", base+"/"+id, s.token, "", nil); code != 200 {
			t.Fatalf("DELETE %s: %d %s", id, code, body)
		}
	}
	if code, body := apiSend(t, "DELETE", base+"/"+rec.ID, s.token, "", nil); code != 404 {
		t.Errorf("DELETE again: %d %s, want 404", code, body)
	}
	if _, err := os.Stat(filepath.Join(s.cfg.DataDir, "notices", rec.ID+".wav")); !os.IsNotExist(err) {
		t.Errorf("the recording is still on disk: %v", err)
	}
	c, err = p.Dial(ctx, "sip:12345@"+s.sipAddr(), "13900139012")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SendDTMF("2", 120*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	waitQueue(t, s.httpAddr(), c.SIPCallID(), "complaint")
	c.Hangup(ctx)
	if code, body := apiSend(t, "POST", base, "", "application/json", []byte(`{"prompt": "welcome"}`)); code != http.StatusUnauthorized {
		t.Errorf("without a token: %d %s", code, body)
	}
}

// POST /api/v1/config/reload with live calls: an invalid file is refused whole with its
// file:line problems; a valid one applies the new menu to new calls while the caller
// already queued stays, and names what needs a restart.
func TestConfigReloadWithLiveCalls(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig(t))
	file := filepath.Join(s.dir, "hotline.yaml")
	url := "http://" + s.httpAddr() + "/api/v1/config/reload"
	p := newPhone(t, phone.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	live, err := p.Dial(ctx, "sip:12345@"+s.sipAddr(), "13900139020")
	if err != nil {
		t.Fatal(err)
	}
	if err := live.SendDTMF("2", 120*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	waitQueue(t, s.httpAddr(), live.SIPCallID(), "complaint")

	if err := os.WriteFile(file, []byte(testConfig(t, `"2": queue complaint`, `"2": queue nosuch`, "    max_retries: 3\n", "    max_retries: many\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	code, body := apiSend(t, "POST", url, s.token, "", nil)
	var refused struct {
		Error    string   `json:"error"`
		Problems []string `json:"problems"`
	}
	if code != http.StatusUnprocessableEntity || json.Unmarshal([]byte(body), &refused) != nil || len(refused.Problems) == 0 {
		t.Fatalf("invalid config: %d %s, want 422 with its problems", code, body)
	}
	for _, pr := range refused.Problems {
		if !strings.HasPrefix(pr, file+":") {
			t.Errorf("problem %q is not file:line: field: problem", pr)
		}
	}
	if code, body := apiSend(t, "POST", url, "", "", nil); code != http.StatusUnauthorized {
		t.Errorf("reload without a token: %d %s", code, body)
	}

	if err := os.WriteFile(file, []byte(testConfig(t, `"2": queue complaint`, `"2": queue business`,
		"  user_agent: hotline\n", "  user_agent: hotline-2\n", "    strategy: longest-idle ", "    strategy: round-robin ")), 0o600); err != nil {
		t.Fatal(err)
	}
	code, body = apiSend(t, "POST", url, s.token, "", nil)
	var res reloadResult
	if code != 200 || json.Unmarshal([]byte(body), &res) != nil {
		t.Fatalf("reload: %d %s", code, body)
	}
	if strings.Join(res.Applied, ",") != "menus" || !strings.Contains(strings.Join(res.RestartNeeded, ","), "sip") ||
		!strings.Contains(strings.Join(res.RestartNeeded, ","), "queues.consult (routing: Strategy)") {
		t.Fatalf("reload result %+v: want menus applied, sip and consult's strategy needing a restart", res)
	}
	// The caller already queued is still there, hearing hold audio.
	waitQueue(t, s.httpAddr(), live.SIPCallID(), "complaint")
	before := live.Audio().AudioPackets
	if err := live.WaitAudio(ctx, -40, 300*time.Millisecond); err != nil || live.Audio().AudioPackets <= before {
		t.Fatalf("the live call's audio stopped after the reload: %v", err)
	}
	// A new caller follows the new menu.
	c, err := p.Dial(ctx, "sip:12345@"+s.sipAddr(), "13900139021")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SendDTMF("2", 120*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	waitQueue(t, s.httpAddr(), c.SIPCallID(), "business")
	c.Hangup(ctx)
	live.Hangup(ctx)
	for _, r := range s.records(t, 2) {
		if r.Disposition != "abandoned" {
			t.Errorf("record %s: %s, want abandoned (no call dropped by the reload)", r.IVRPath, r.Disposition)
		}
	}
}
