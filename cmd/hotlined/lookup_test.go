package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hotline12345/hotline/call"
	"github.com/hotline12345/hotline/configs"
	"github.com/hotline12345/hotline/loadtest/phone"
	"github.com/hotline12345/hotline/media"
)

// Self-service lookup through the real server: the caller chooses 9, keys a case number
// and #, the server asks the test hook with that case and speaks the answer, then says
// goodbye; a hook that does not answer within the timeout, or answers 500, sends the
// caller, after the spoken fallback, to the consult queue. One server and one hook serve
// the three callers at once.
func TestLookupHookThroughServer(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var asked []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := r.URL.Query().Get("case")
		mu.Lock()
		asked = append(asked, c)
		mu.Unlock()
		switch c {
		case "20261208001":
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"status":"processing"}`)) // dates and amounts: TestLookupHTTP
		case "20261208500":
			http.Error(w, "database down", http.StatusInternalServerError)
		default: // slower than the lookup's timeout
			<-r.Context().Done()
		}
	}))
	t.Cleanup(hook.Close)
	cfg := testConfig(t,
		`      "3": queue business       # 营商环境专席`, `      "3": queue business
      "9": menu case`,
		"  closed:\n", `  case:
    prompts: [enter_case]
    input: {min_digits: 6, max_digits: 20, store: case_number, next: lookup case_status}
  closed:
`) + `
lookups:
  case_status:
    url: ` + hook.URL + `/case
    timeout: 700ms
    statuses:
      processing: [case_status_pre, status_processing]
    next: play goodbye
    fallback: queue consult
`
	s := startServer(t, cfg)
	p := newPhone(t, phone.Config{})

	// The hook answers: the caller hears the answer and goodbye, and the server hangs up.
	t.Run("answer", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := p.Dial(ctx, "sip:12345@"+s.sipAddr(), "13900139201")
		if err != nil {
			t.Fatal(err)
		}
		if err := c.SendDTMF("920261208001#", 60*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		select {
		case <-c.Done():
		case <-ctx.Done():
			t.Fatal("the server did not hang up after the answer")
		}
		rec := waitRecord(t, s, "13900139201")
		if want := "main>9>case>20261208001#>lookup:processing>play goodbye"; rec.IVRPath != want {
			t.Fatalf("ivr_path %q, want %q", rec.IVRPath, want)
		}
		if rec.CaseNumber != "20261208001" {
			t.Errorf("case number %q on the record", rec.CaseNumber)
		}
		// The answer and goodbye were played to the end before the server hung up.
		ps, err := media.LoadPrompts(configs.FS, configs.PromptsDir)
		if err != nil {
			t.Fatal(err)
		}
		var frames int
		for _, name := range []string{"zh/case_status_pre", "zh/status_processing", "zh/goodbye"} {
			pr, ok := ps.Get(name)
			if !ok {
				t.Fatalf("prompt %s missing", name)
			}
			frames += pr.Len()
		}
		if st := c.Audio(); st.AudioPackets < frames {
			t.Errorf("caller heard %d audio packets, fewer than the answer's %d", st.AudioPackets, frames)
		}
	})

	// The hook is slow, or answers 500: fallback prompt, then the consult queue.
	for _, tc := range []struct{ name, caseNumber, caller string }{
		{"timeout", "20261208002", "13900139202"},
		{"http500", "20261208500", "13900139203"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c, err := p.Dial(ctx, "sip:12345@"+s.sipAddr(), tc.caller)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.SendDTMF("9"+tc.caseNumber+"#", 60*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(20 * time.Second)
			for {
				lc, ok := liveCall(t, s.httpAddr(), c.SIPCallID())
				if ok && lc.Stage == call.StageQueued && lc.Queue == "consult" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the caller did not reach consult after the hook failed: %+v", lc)
				}
				time.Sleep(50 * time.Millisecond)
			}
			if err := c.Hangup(ctx); err != nil {
				t.Fatal(err)
			}
			rec := waitRecord(t, s, tc.caller)
			if want := "main>9>case>" + tc.caseNumber + "#>lookup!>consult"; rec.IVRPath != want {
				t.Fatalf("ivr_path %q, want %q", rec.IVRPath, want)
			}
		})
	}
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		slices.Sort(asked)
		if !slices.Equal(asked, []string{"20261208001", "20261208002", "20261208500"}) {
			t.Errorf("hook asked for %q", asked)
		}
	})
}
