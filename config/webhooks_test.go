package config

import (
	"strings"
	"testing"
	"time"
)

const testWebhook = `webhooks:
  - id: gongdan
    url: https://gongdan.example/hotline
    secret: 0123456789abcdef0123
    events: [call.start, call.end]
`

func TestWebhooksDefaults(t *testing.T) {
	doc := edit(t, defaultDoc(t), "webhooks: []\n", testWebhook)
	c, err := Load(name, []byte(doc), Known{})
	if err != nil {
		t.Fatal(err)
	}
	w := c.Webhooks[0]
	if w.ID != "gongdan" || w.Timeout.D() != DefaultWebhookTimeout || w.MaxAttempts != DefaultWebhookMaxAttempts ||
		w.RetryMin.D() != time.Second || w.RetryMax.D() != 10*time.Minute || w.FullNumbers {
		t.Errorf("webhook %+v", w)
	}
}

// Each bad webhook field is refused with its file:line.
func TestWebhooksErrors(t *testing.T) {
	for _, tc := range []struct{ old, new, field, problem string }{
		{"    url: https://gongdan.example/hotline", "    url: ftp://x", "webhooks[0].url", `want an http:// or https:// URL, got "ftp://x"`},
		{"    secret: 0123456789abcdef0123", "    secret: short", "webhooks[0].secret", "want at least 16 characters"},
		{"    events: [call.start, call.end]", "    events: [call.start, call.ended]", "webhooks[0].events[1]", `unknown event type "call.ended"`},
		{"    events: [call.start, call.end]", "    events: []", "webhooks[0].events", "want one or more of"},
		{"  - id: gongdan", "  - id: \"a b\"", "webhooks[0].id", "want a name"},
		{"    events: [call.start, call.end]", "    events: [call.end]\n    max_attempts: 0\n    timeout: 2m", "webhooks[0].timeout", "want up to 1m"},
	} {
		doc := edit(t, edit(t, defaultDoc(t), "webhooks: []\n", testWebhook), tc.old, tc.new)
		_, err := Load(name, []byte(doc), Known{})
		if err == nil {
			t.Errorf("%q: loaded", tc.new)
			continue
		}
		got := problems(t, err)
		last := tc.new[strings.LastIndex(tc.new, "\n")+1:]
		if len(got) != 1 || got[0].Field != tc.field || !strings.Contains(got[0].Problem, tc.problem) || got[0].Line != lineWith(t, doc, last, 1) {
			t.Errorf("%q: %v", tc.new, err)
		}
	}
}
