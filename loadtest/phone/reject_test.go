package phone

import (
	"errors"
	"testing"
)

// rejecting returns a phone whose OnInvite calls reject on each incoming call and hands the
// call and Reject's error to the test.
func rejecting(t *testing.T, reject func(*Call) error) (*Phone, chan *Call, chan error) {
	t.Helper()
	calls, errs := make(chan *Call, 4), make(chan error, 4)
	p := newPhone(t, Config{OnInvite: func(c *Call) bool {
		errs <- reject(c)
		calls <- c
		return false
	}})
	return p, calls, errs
}

// A phone that rejects with 603 Decline or 404 Not Found from OnInvite: the caller's Dial
// and Err give a *StatusError with that code and reason (not the 486 OnInvite's false would
// send), and the rejected call has ended with the same error and the reason "rejected".
func TestCallReject(t *testing.T) {
	for _, tc := range []struct {
		code   int
		reason string
	}{{603, "Decline"}, {404, "Not Found"}} {
		t.Run(tc.reason, func(t *testing.T) {
			a := newPhone(t, Config{})
			b, incoming, errs := rejecting(t, func(c *Call) error { return c.Reject(tc.code, tc.reason) })
			ca, err := a.DialAsync(ctxT(t, waitLong), b.URI("13900000001"), "12345")
			if err != nil {
				t.Fatal(err)
			}
			recv(t, ca.Answered(), "the final response")
			var se *StatusError
			if !errors.As(ca.Err(), &se) || se.Code != tc.code || se.Reason != tc.reason {
				t.Fatalf("caller Err = %v, want %d %s", ca.Err(), tc.code, tc.reason)
			}
			waitDone(t, ca, "the caller's call")
			if err := recv(t, errs, "Reject's result"); err != nil {
				t.Fatalf("Reject: %v", err)
			}
			cb := recv(t, incoming, "incoming call")
			waitDone(t, cb, "the rejected call")
			if !errors.As(cb.Err(), &se) || se.Code != tc.code || cb.ByeReason() != "rejected" {
				t.Errorf("rejected call: Err %v, reason %q; want %d and \"rejected\"", cb.Err(), cb.ByeReason(), tc.code)
			}
			if err := cb.Reject(tc.code, tc.reason); !errors.Is(err, ErrCallEnded) {
				t.Errorf("second Reject = %v, want ErrCallEnded", err)
			}

			// Dial reports the same.
			if _, err := a.Dial(ctxT(t, waitLong), b.URI("13900000002"), "12345"); !errors.As(err, &se) || se.Code != tc.code {
				t.Errorf("Dial err = %v, want %d", err, tc.code)
			}
			recv(t, errs, "Reject's result")
			recv(t, incoming, "incoming call")
		})
	}
}

// Reject refuses a code that is not a final failure with ErrConfig and sends nothing, so
// OnInvite's false still brings the 486; it refuses outgoing and answered calls.
func TestCallRejectMisuse(t *testing.T) {
	a := newPhone(t, Config{})
	for _, code := range []int{100, 200, 299, 700} {
		b, incoming, errs := rejecting(t, func(c *Call) error { return c.Reject(code, "Odd") })
		_, err := a.Dial(ctxT(t, waitLong), b.URI("1001"), "12345")
		var se *StatusError
		if !errors.As(err, &se) || se.Code != 486 {
			t.Errorf("Reject(%d): Dial err = %v, want the 486 after it", code, err)
		}
		if err := recv(t, errs, "Reject's result"); !errors.Is(err, ErrConfig) {
			t.Errorf("Reject(%d) = %v, want ErrConfig", code, err)
		}
		recv(t, incoming, "incoming call")
	}

	b, incoming := answering(t, Config{})
	ca, err := a.Dial(ctxT(t, waitLong), b.URI("1001"), "12345")
	if err != nil {
		t.Fatal(err)
	}
	cb := answered(t, incoming)
	if err := cb.Reject(603, "Decline"); err == nil {
		t.Error("Reject of an answered call: no error")
	}
	if err := ca.Reject(603, "Decline"); err == nil {
		t.Error("Reject of an outgoing call: no error")
	}
	if cb.ByeReason() != "" || ca.ByeReason() != "" {
		t.Errorf("a refused Reject ended the call: %q %q", cb.ByeReason(), ca.ByeReason())
	}
	if err := ca.Hangup(ctxT(t, waitLong)); err != nil {
		t.Fatal(err)
	}
}
