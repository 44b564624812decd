package main

import (
	"strings"
	"testing"
	"time"
)

// A citizen's number is masked in the server's log by default (138****8000, never in
// full), and shown in full only when log.mask_numbers is off.
func TestLogMasksCitizenNumbers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name         string
		edit         []string
		want, reject string
	}{
		{"default", nil, "138****8000", "13800138000"},
		{"mask_numbers off", []string{"  mask_numbers: true ", "  mask_numbers: false "}, "13800138000", "138****8000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			logs := newLogTee(t)
			s := startServerLog(t, testConfig(t, tc.edit...), logs)
			if res := runSIPp(t, s.sipAddr(), "uac_rfc2833.xml"); !res.ok {
				t.Fatalf("SIPp failed:\n%s", res.output)
			}
			rec := s.records(t, 1)[0]
			if rec.Caller != "13800138000" {
				t.Fatalf("record caller %q: the record keeps the full number", rec.Caller)
			}
			deadline := time.Now().Add(5 * time.Second)
			for !strings.Contains(logs.String(), tc.want) {
				if time.Now().After(deadline) {
					t.Fatalf("log never shows %s:\n%s", tc.want, logs.String())
				}
				time.Sleep(20 * time.Millisecond)
			}
			s.shutdownNow() // every line of the call's end is in
			l := logs.String()
			if strings.Contains(l, tc.reject) {
				t.Fatalf("log shows %s:\n%s", tc.reject, l)
			}
			if !strings.Contains(l, "to=12345") {
				t.Fatalf("the hotline's own number is masked:\n%s", l)
			}
		})
	}
}
