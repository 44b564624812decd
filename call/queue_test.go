package call

import (
	"slices"
	"testing"
	"time"
)

func TestNumberPrompts(t *testing.T) {
	for _, tc := range []struct {
		lang string
		n    int
		want []string
	}{
		{"zh", 0, []string{"digit_0"}},
		{"zh", 7, []string{"digit_7"}},
		{"zh", 10, []string{"ten"}},
		{"zh", 15, []string{"ten", "digit_5"}},
		{"zh", 23, []string{"digit_2", "ten", "digit_3"}},
		{"zh", 40, []string{"digit_4", "ten"}},
		{"zh", 100, []string{"digit_1", "hundred"}},
		{"zh", 105, []string{"digit_1", "hundred", "digit_0", "digit_5"}},
		{"zh", 115, []string{"digit_1", "hundred", "digit_1", "ten", "digit_5"}},
		{"zh", 1234, []string{"digit_9", "hundred", "digit_9", "ten", "digit_9"}}, // capped at 999
		{"en", 23, []string{"digit_2", "digit_3"}},
	} {
		if got := numberPrompts(tc.lang, tc.n); !slices.Equal(got, tc.want) {
			t.Errorf("numberPrompts(%s, %d) = %v, want %v", tc.lang, tc.n, got, tc.want)
		}
	}
}

func TestPositionPrompts(t *testing.T) {
	zh := &Call{plan: newPlan(Plan{Language: "zh"})}
	if got, want := zh.positionPrompts(3, 4*time.Minute), []string{"position_pre", "digit_2", "position_post", "wait_pre", "digit_4", "minutes"}; !slices.Equal(got, want) {
		t.Errorf("zh position 3, 4 min: %v, want %v", got, want)
	}
	if got, want := zh.positionPrompts(1, 20*time.Second), []string{"wait_pre", "less_than_one_minute"}; !slices.Equal(got, want) {
		t.Errorf("zh next in line: %v, want %v", got, want)
	}
	en := &Call{plan: newPlan(Plan{Language: "en"})}
	if got, want := en.positionPrompts(1, 90*time.Second), []string{"position_pre", "digit_1", "position_post", "wait_pre", "digit_2", "minutes"}; !slices.Equal(got, want) {
		t.Errorf("en: %v, want %v", got, want)
	}
}
