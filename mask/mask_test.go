package mask

import "testing"

func TestNumber(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"13812348000", "138****8000"},
		{"01012345678", "010****5678"},
		{"+8613812348000", "+86138****8000"},
		{"862112345678", "862*****5678"},
		{"12345678", "12****78"},
		{"1234567", "12***67"},
		{"12345", "***45"},
		{"1234", "****"},
		{"110", "***"},
		{"", ""},
	} {
		if got := Number(tc.in); got != tc.want {
			t.Errorf("Number(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
