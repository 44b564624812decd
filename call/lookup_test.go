package call

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hotline12345/hotline/ivr"
)

func TestLookupHTTP(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	release := make(chan struct{})
	var asked []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := r.URL.Query().Get("case")
		asked = append(asked, r.URL.Path+"?"+r.URL.RawQuery)
		switch c {
		case "1001":
			w.Write([]byte(`{"status":"processing","date":"2026-12-08","amount":1280.5,"extra":true}`))
		case "1002":
			w.Write([]byte(`{"status":"not_found"}`))
		case "2000":
			select { // slow: longer than the lookup's timeout
			case <-release:
			case <-r.Context().Done():
			}
		case "5000":
			http.Error(w, "boom", http.StatusInternalServerError)
		case "6000":
			w.Write([]byte(`{"status": "processing",`))
		case "6001":
			w.Write([]byte(`{"status":"archived"}`))
		case "6002":
			w.Write([]byte(`{"status":"processing","date":"8 Dec 2026"}`))
		case "6003":
			w.Write([]byte(`{"status":"processing","amount":-5}`))
		}
	}))
	defer srv.Close()
	defer close(release)
	lookups := map[string]ivr.Lookup{"case_status": {
		URL: srv.URL + "/case?src=ivr", Timeout: ivr.Duration(300 * time.Millisecond), Fallback: "queue consult",
		Statuses: map[string][]string{
			"processing": {"case_status_pre", "status_processing"},
			"not_found":  {"case_not_found"},
		},
	}}
	h := newHTTPHooks(lookups, "zh")
	t.Cleanup(func() { // after the deferred closes: no request or connection left behind
		h.client.CloseIdleConnections()
		goleak.VerifyNone(t, ignore)
	})
	ctx := context.Background()

	status, prompts, err := h.Lookup(ctx, "case_status", "1001")
	want := []string{"case_status_pre", "status_processing", "date_pre",
		"digit_2", "digit_0", "digit_2", "digit_6", "year", "month_12", "day_8",
		"amount_pre", "digit_1", "thousand", "digit_2", "hundred", "digit_8", "ten", "yuan"}
	if err != nil || status != "processing" || !slices.Equal(prompts, want) {
		t.Fatalf("answer: %q %q %v, want processing %q", status, prompts, err, want)
	}
	if asked[0] != "/case?case=1001&src=ivr" {
		t.Fatalf("hook asked %q", asked[0])
	}
	if status, prompts, err := h.Lookup(ctx, "case_status", "1002"); err != nil || status != "not_found" || !slices.Equal(prompts, []string{"case_not_found"}) {
		t.Fatalf("not found: %q %q %v", status, prompts, err)
	}

	start := time.Now()
	_, _, err = h.Lookup(ctx, "case_status", "2000")
	if !errors.Is(err, ErrLookupUnavailable) {
		t.Fatalf("slow hook: %v, want ErrLookupUnavailable", err)
	}
	if d := time.Since(start); d < 250*time.Millisecond || d > 5*time.Second {
		t.Fatalf("slow hook failed after %v, want the 300ms timeout", d)
	}
	for value, wantErr := range map[string]error{
		"5000": ErrLookupStatus, "6000": ErrLookupAnswer, "6001": ErrLookupUnknown,
		"6002": ErrLookupAnswer, "6003": ErrLookupAnswer,
	} {
		if _, _, err := h.Lookup(ctx, "case_status", value); !errors.Is(err, wantErr) {
			t.Errorf("case %s: %v, want %v", value, err, wantErr)
		}
	}
	// The call's context ends the request at once (the caller hung up).
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(50*time.Millisecond, cancel)
	start = time.Now()
	if _, _, err := h.Lookup(cctx, "case_status", "2000"); err == nil || time.Since(start) > 250*time.Millisecond {
		t.Fatalf("cancelled lookup: %v after %v", err, time.Since(start))
	}
	// Nothing listens: unavailable.
	srv.Close()
	if _, _, err := h.Lookup(ctx, "case_status", "1001"); !errors.Is(err, ErrLookupUnavailable) {
		t.Fatalf("closed hook: %v", err)
	}
}

func TestAnswerReading(t *testing.T) {
	date := time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC)
	if got := strings.Join(datePrompts("zh", date), " "); got != "digit_2 digit_0 digit_2 digit_6 year month_12 day_8" {
		t.Errorf("zh date: %s", got)
	}
	if got := strings.Join(datePrompts("en", date), " "); got != "month_12 day_8 digit_2 digit_0 digit_2 digit_6" {
		t.Errorf("en date: %s", got)
	}
	for n, want := range map[int]string{
		0:        "0",
		15:       "T 5",
		105:      "1 H 0 5",
		1000:     "1 K",
		1005:     "1 K 0 5",
		1015:     "1 K 0 1 T 5",
		1280:     "1 K 2 H 8 T",
		10000:    "1 W",
		32000:    "3 W 2 K",
		100500:   "T W 0 5 H",
		1200500:  "1 H 2 T W 0 5 H",
		99999999: "9 K 9 H 9 T 9 W 9 K 9 H 9 T 9",
	} {
		r := strings.NewReplacer("digit_", "", "ten_thousand", "W", "thousand", "K", "hundred", "H", "ten", "T")
		if got := r.Replace(strings.Join(amountPrompts("zh", n), " ")); got != want {
			t.Errorf("zh %d: %s, want %s", n, got, want)
		}
	}
	if got := strings.Join(amountPrompts("en", 1280), " "); got != "digit_1 digit_2 digit_8 digit_0" {
		t.Errorf("en 1280: %s", got)
	}
}

// FuzzLookupAnswer feeds arbitrary hook answers to the JSON decoding and the reading:
// never a panic, and an answer is either prompts that start with its status's or an error.
func FuzzLookupAnswer(f *testing.F) {
	f.Add([]byte(`{"status":"processing","date":"2026-12-08","amount":1280.5}`))
	f.Add([]byte(`{"status":"processing","date":"0000-01-01","amount":1e300}`))
	f.Add([]byte(`{"status":null}`))
	l := ivr.Lookup{Statuses: map[string][]string{"processing": {"status_processing"}}}
	f.Fuzz(func(t *testing.T, body []byte) {
		var ans LookupAnswer
		if json.Unmarshal(body, &ans) != nil {
			return
		}
		for _, lang := range []string{"zh", "en"} {
			prompts, err := answerPrompts(lang, l, ans)
			if err == nil && (len(prompts) == 0 || prompts[0] != "status_processing") {
				t.Fatalf("%s: prompts %q", body, prompts)
			}
		}
	})
}
