package call

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/hotline12345/hotline/ivr"
)

// Self-service lookups (ivr.Lookup): the IVR goroutine asks a hook over HTTP with the
// call's context, and the answer becomes prompts. The schema of the hook's answer is
// LookupAnswer; docs/ARCHITECTURE.md ("Self-service lookup") describes it for integrators.

// Errors of a lookup; each makes the IVR say the fallback prompt and take the fallback action.
var (
	ErrLookupUnavailable = errors.New("lookup: hook unavailable")         // no answer in time, connection failed
	ErrLookupStatus      = errors.New("lookup: hook answered an error")   // HTTP status other than 200
	ErrLookupAnswer      = errors.New("lookup: hook answered badly")      // not the JSON schema
	ErrLookupUnknown     = errors.New("lookup: status not in the config") // a status the lookup does not map
)

// LookupAnswer is the JSON a hook answers to GET {url}?case=VALUE (HTTP 200):
//
//	{"status": "processing", "date": "2026-12-08", "amount": 1280}
//
// status is required and must be one of the lookup's configured statuses; date
// (YYYY-MM-DD, e.g. the expected completion date) and amount (yuan, read to the whole
// yuan, 0 to 99999999) are optional and read after the status's prompts, as
// date_pre + the date and amount_pre + the number + yuan. Other fields are ignored.
type LookupAnswer struct {
	Status string   `json:"status"`
	Date   string   `json:"date,omitempty"`
	Amount *float64 `json:"amount,omitempty"`
}

// lookupMaxBody bounds the answer read from a hook.
const lookupMaxBody = 64 << 10

// maxAmount is the largest amount read.
const maxAmount = 99_999_999

// lookupPrompts are the prompts answers are read with, beside the digits.
var lookupPrompts = func() []string {
	p := []string{"date_pre", "amount_pre", "yuan", "ten_thousand", "thousand", "year"}
	for i := 1; i <= 12; i++ {
		p = append(p, "month_"+strconv.Itoa(i))
	}
	for i := 1; i <= 31; i++ {
		p = append(p, "day_"+strconv.Itoa(i))
	}
	return p
}()

// httpHooks is ivr.Hooks over HTTP.
type httpHooks struct {
	lookups map[string]ivr.Lookup
	client  *http.Client
	lang    string
}

func newHTTPHooks(lookups map[string]ivr.Lookup, lang string) *httpHooks {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 16
	return &httpHooks{lookups: lookups, client: &http.Client{Transport: tr}, lang: lang}
}

// Lookup implements ivr.Hooks: GET url?case=value within the lookup's timeout.
func (h *httpHooks) Lookup(ctx context.Context, name, value string) (string, []string, error) {
	l, ok := h.lookups[name]
	if !ok {
		return "", nil, fmt.Errorf("%w: no lookup %q", ErrLookupUnknown, name)
	}
	l.ApplyDefaults()
	ans, err := h.ask(ctx, l, value)
	if err != nil {
		return "", nil, err
	}
	prompts, err := answerPrompts(h.lang, l, ans)
	return ans.Status, prompts, err
}

func (h *httpHooks) ask(ctx context.Context, l ivr.Lookup, value string) (LookupAnswer, error) {
	u, err := url.Parse(l.URL)
	if err != nil {
		return LookupAnswer{}, fmt.Errorf("%w: %v", ErrLookupUnavailable, err)
	}
	q := u.Query()
	q.Set("case", value)
	u.RawQuery = q.Encode()
	ctx, cancel := context.WithTimeout(ctx, l.Timeout.D())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return LookupAnswer{}, fmt.Errorf("%w: %v", ErrLookupUnavailable, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := h.client.Do(req)
	if err != nil {
		return LookupAnswer{}, fmt.Errorf("%w: %v", ErrLookupUnavailable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, lookupMaxBody))
		return LookupAnswer{}, fmt.Errorf("%w: HTTP %d", ErrLookupStatus, resp.StatusCode)
	}
	var ans LookupAnswer
	if err := json.NewDecoder(io.LimitReader(resp.Body, lookupMaxBody)).Decode(&ans); err != nil {
		if ctx.Err() != nil {
			return LookupAnswer{}, fmt.Errorf("%w: %v", ErrLookupUnavailable, err)
		}
		return LookupAnswer{}, fmt.Errorf("%w: %v", ErrLookupAnswer, err)
	}
	return ans, nil
}

// answerPrompts turns an answer into what the caller hears: the status's prompts, then
// the date and the amount if the answer has them.
func answerPrompts(lang string, l ivr.Lookup, ans LookupAnswer) ([]string, error) {
	if ans.Status == "" {
		return nil, fmt.Errorf("%w: no status", ErrLookupAnswer)
	}
	said, ok := l.Statuses[ans.Status]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrLookupUnknown, ans.Status)
	}
	out := append([]string(nil), said...)
	if ans.Date != "" {
		d, err := time.Parse(time.DateOnly, ans.Date)
		if err != nil || d.Year() < 1000 {
			return nil, fmt.Errorf("%w: date %q is not YYYY-MM-DD", ErrLookupAnswer, ans.Date)
		}
		out = append(out, "date_pre")
		out = append(out, datePrompts(lang, d)...)
	}
	if a := ans.Amount; a != nil {
		if math.IsNaN(*a) || *a < 0 || *a > maxAmount {
			return nil, fmt.Errorf("%w: amount %v out of range", ErrLookupAnswer, *a)
		}
		out = append(out, "amount_pre")
		out = append(out, amountPrompts(lang, int(*a))...)
		out = append(out, "yuan")
	}
	return out, nil
}

// datePrompts reads a date: 二零二六年十二月八日 in Mandarin (the year digit by digit, as
// dates are spoken), "December eighth two zero two six" otherwise (years digit by digit, as
// the English number prompts read every number).
func datePrompts(lang string, d time.Time) []string {
	month, day := "month_"+strconv.Itoa(int(d.Month())), "day_"+strconv.Itoa(d.Day())
	year := digitPrompts(strconv.Itoa(d.Year()))
	if lang == "zh" {
		return append(append(year, "year"), month, day)
	}
	return append([]string{month, day}, year...)
}

// amountPrompts reads n (0 to 99999999): in Mandarin with 万, 千, 百 and 十 built from
// the digit, ten_thousand, thousand, hundred and ten prompts (一千零五, 三万二千), digit
// by digit otherwise.
func amountPrompts(lang string, n int) []string {
	n = min(max(n, 0), maxAmount)
	if lang != "zh" {
		return digitPrompts(strconv.Itoa(n))
	}
	if n >= 10000 {
		hi, lo := n/10000, n%10000 // 三万二千, 一百二十万零五百
		out := append(amountPrompts(lang, hi), "ten_thousand")
		switch {
		case lo == 0:
			return out
		case lo < 1000:
			return append(out, afterZero(lang, lo)...)
		}
		return append(out, amountPrompts(lang, lo)...)
	}
	if n < 1000 {
		return numberPrompts(lang, n)
	}
	out := []string{"digit_" + strconv.Itoa(n/1000), "thousand"}
	switch rest := n % 1000; {
	case rest == 0:
		return out
	case rest < 100:
		return append(out, afterZero(lang, rest)...)
	default:
		return append(out, numberPrompts(lang, rest)...)
	}
}

// afterZero reads n (1 to 999) after a skipped place: 零 first, and 一十五 rather than 十五.
func afterZero(lang string, n int) []string {
	out := []string{"digit_0"}
	if n >= 10 && n < 20 {
		out = append(out, "digit_1")
	}
	return append(out, numberPrompts(lang, n)...)
}

// digitPrompts reads the digits of s one by one.
func digitPrompts(s string) []string {
	out := make([]string, 0, len(s))
	for _, ch := range s {
		if ch >= '0' && ch <= '9' {
			out = append(out, "digit_"+string(ch))
		}
	}
	return out
}
