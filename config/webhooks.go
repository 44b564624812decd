package config

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/hotline12345/hotline/cdr"
	"github.com/hotline12345/hotline/ivr"
	"github.com/hotline12345/hotline/webhook"
)

// Defaults of a webhook (docs/events.md): the delivery's own.
const (
	DefaultWebhookTimeout     = webhook.DefaultTimeout
	DefaultWebhookMaxAttempts = webhook.DefaultMaxAttempts
	DefaultWebhookRetryMin    = webhook.DefaultRetryMin
	DefaultWebhookRetryMax    = webhook.DefaultRetryMax
	// MinWebhookSecret is the shortest secret accepted (bytes): an HMAC key
	// shorter than this is guessable.
	MinWebhookSecret = 16
)

// Webhook is one receiver of the work-order feed (工单 system).
type Webhook struct {
	ID     string   `yaml:"id"`     // names it in the API, the metrics and its cursor (keep it stable)
	URL    string   `yaml:"url"`    // http:// or https://; events are POSTed here
	Secret string   `yaml:"secret"` // HMAC-SHA256 key of X-Hotline-Signature; at least 16 bytes
	Events []string `yaml:"events"` // event types (docs/events.md), or "*" for all
	// Timeout of one attempt; default 5s.
	Timeout ivr.Duration `yaml:"timeout"`
	// MaxAttempts before an event becomes a dead letter; default 15
	// (about 1.5 hours with the default backoff).
	MaxAttempts int `yaml:"max_attempts"`
	// RetryMin and RetryMax bound the exponential backoff (with jitter); default 1s and 10m.
	RetryMin ivr.Duration `yaml:"retry_min"`
	RetryMax ivr.Duration `yaml:"retry_max"`
	// FullNumbers sends citizens' numbers in full; default false: masked
	// (138****8000). Personal data: only for a receiver entitled to it.
	FullNumbers bool `yaml:"full_numbers"`
}

func applyWebhookDefaults(ws []Webhook) {
	for i := range ws {
		w := &ws[i]
		if w.Timeout == 0 {
			w.Timeout = ivr.Duration(DefaultWebhookTimeout)
		}
		if w.MaxAttempts == 0 {
			w.MaxAttempts = DefaultWebhookMaxAttempts
		}
		if w.RetryMin == 0 {
			w.RetryMin = ivr.Duration(DefaultWebhookRetryMin)
		}
		if w.RetryMax == 0 {
			w.RetryMax = ivr.Duration(max(DefaultWebhookRetryMax, w.RetryMin.D()))
		}
	}
}

func validateWebhooks(ws []Webhook) []ivr.FieldError {
	var errs []ivr.FieldError
	seen := map[string]bool{}
	for i, w := range ws {
		p := fmt.Sprintf("webhooks[%d]", i)
		add := func(field, format string, args ...any) {
			errs = append(errs, ivr.FieldError{Path: p + field, Problem: fmt.Sprintf(format, args...)})
		}
		switch {
		case !nameRe.MatchString(w.ID):
			add(".id", "want a name of letters, digits, '-' and '_', got %q", w.ID)
		case seen[w.ID]:
			add(".id", "%q is used by another webhook", w.ID)
		}
		seen[w.ID] = true
		if u, err := url.Parse(w.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add(".url", "want an http:// or https:// URL, got %q", w.URL)
		}
		if len(w.Secret) < MinWebhookSecret {
			add(".secret", "want at least %d characters (the HMAC key of the signature)", MinWebhookSecret)
		}
		if len(w.Events) == 0 {
			add(".events", "want one or more of %s, or \"*\"", strings.Join(cdr.EventTypes, ", "))
		}
		for j, e := range w.Events {
			if e != "*" && !slices.Contains(cdr.EventTypes, e) {
				add(fmt.Sprintf(".events[%d]", j), "unknown event type %q; want one of %s, or \"*\"", e, strings.Join(cdr.EventTypes, ", "))
			}
		}
		if w.Timeout < 0 || w.Timeout.D() > time.Minute {
			add(".timeout", "want up to 1m, got %s", w.Timeout.D())
		}
		if w.MaxAttempts < 0 || w.MaxAttempts > 100 {
			add(".max_attempts", "want 1-100, got %d", w.MaxAttempts)
		}
		if w.RetryMin < 0 {
			add(".retry_min", "must not be negative")
		}
		if w.RetryMax.D() < w.RetryMin.D() {
			add(".retry_max", "must not be below retry_min (%s)", w.RetryMin.D())
		}
	}
	return errs
}
