package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Signature headers (docs/events.md), Stripe's scheme: the signature covers
// the timestamp and the body, so a captured request cannot be replayed with
// another timestamp, and a receiver refuses timestamps outside its tolerance.
const (
	HeaderSignature = "X-Hotline-Signature" // "sha256=" + hex HMAC-SHA256(secret, timestamp + "." + body)
	HeaderTimestamp = "X-Hotline-Timestamp" // unix seconds of this attempt
	HeaderEventID   = "X-Hotline-Event-Id"  // the envelope's id: the idempotency key
	HeaderEventType = "X-Hotline-Event"     // the envelope's type
	HeaderAttempt   = "X-Hotline-Attempt"   // 1 on the first delivery attempt
)

// DefaultTolerance is how old a timestamp Verify accepts by default.
const DefaultTolerance = 5 * time.Minute

// Errors of Verify.
var (
	ErrBadSignature = errors.New("webhook: signature does not match")
	ErrStale        = errors.New("webhook: timestamp outside the tolerance")
)

// Sign returns the X-Hotline-Signature value of body sent at ts.
func Sign(secret string, ts int64, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(strconv.FormatInt(ts, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a delivery as a receiver should: the signature header sig
// against the timestamp header ts and the raw body, and the timestamp
// within tolerance of now (0: DefaultTolerance).
func Verify(secret string, body []byte, ts, sig string, tolerance time.Duration, now time.Time) error {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	sec, err := strconv.ParseInt(strings.TrimSpace(ts), 10, 64)
	if err != nil {
		return ErrStale
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return ErrStale
	}
	if !hmac.Equal([]byte(Sign(secret, sec, body)), []byte(strings.TrimSpace(sig))) {
		return ErrBadSignature
	}
	return nil
}
