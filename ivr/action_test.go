package ivr

import (
	"errors"
	"testing"
)

func TestParseAction(t *testing.T) {
	tests := []struct {
		in   string
		want Action
		ok   bool
	}{
		{"menu main", Action{ActMenu, "main"}, true},
		{"  queue   complaint ", Action{ActQueue, "complaint"}, true},
		{"play zh/closed", Action{ActPlay, "zh/closed"}, true},
		{"queue 投诉", Action{ActQueue, "投诉"}, true},
		{"hangup", Action{Kind: ActHangup}, true},
		{"repeat", Action{Kind: ActRepeat}, true},
		{"back", Action{Kind: ActBack}, true},
		{"", Action{}, false},
		{"dial 110", Action{}, false},
		{"menu", Action{}, false},
		{"menu a b", Action{}, false},
		{"hangup now", Action{}, false},
		{"Queue consult", Action{}, false},
		{"queue a>b", Action{}, false},
	}
	for _, tc := range tests {
		got, err := ParseAction(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseAction(%q) = %v, %v; want %v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrBadAction) {
			t.Errorf("ParseAction(%q) error %v does not wrap ErrBadAction", tc.in, err)
		}
	}
}

func FuzzParseAction(f *testing.F) {
	for _, s := range []string{"menu main", "queue consult", "play zh/welcome", "hangup", "repeat", "back",
		"dial 110", "", " menu  x ", "queue 投诉举报", "play a\x00b", "menu\tmain"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAction(s)
		if err != nil {
			if !errors.Is(err, ErrBadAction) {
				t.Fatalf("error %v does not wrap ErrBadAction", err)
			}
			return
		}
		b, err := ParseAction(a.String())
		if err != nil || b != a {
			t.Fatalf("round trip of %q: %q → %v, %v", s, a.String(), b, err)
		}
	})
}
