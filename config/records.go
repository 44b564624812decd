package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hotline12345/hotline/ivr"
)

// Personal data (个人信息保护法): how long records are kept, and whether citizens' numbers
// appear in full in the server's log.

// DefaultRetentionAt is the local time of the daily retention run: the quietest hour of a
// hotline's day.
const DefaultRetentionAt = "03:30"

// MaxRetentionDays bounds records.retention_days (100 years): a bigger value is a typo.
const MaxRetentionDays = 36500

// Records says how long call records are kept.
type Records struct {
	// RetentionDays: records, agent events and finished campaign targets older than this
	// many days are deleted by a daily job. 0 (the default) keeps them forever: deleting is
	// irreversible and the period is the hotline operator's decision (local archive rules
	// for 12345 work orders differ), so the server never deletes records nobody asked it to.
	RetentionDays int `yaml:"retention_days"`
	// RetentionAt is the daily run's time, "HH:MM" in the top-level timezone; default 03:30.
	// The job also runs once a minute after start.
	RetentionAt string `yaml:"retention_at"`
}

// Log is the server log's treatment of personal data.
type Log struct {
	// MaskNumbers masks citizens' numbers in log attributes (13800138000 → 138****8000);
	// default true. Turn it off only to debug, and not on a production server.
	MaskNumbers *bool `yaml:"mask_numbers"`
}

// Masked reports whether citizens' numbers are masked in the log.
func (l Log) Masked() bool { return l.MaskNumbers == nil || *l.MaskNumbers }

// RetentionTime is RetentionAt as the time since local midnight.
func (r Records) RetentionTime() time.Duration {
	d, _ := parseClock(r.RetentionAt)
	return d
}

// parseClock reads "HH:MM" (00:00-23:59).
func parseClock(s string) (time.Duration, error) {
	h, m, ok := strings.Cut(s, ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || len(h) != 2 || len(m) != 2 || hh > 23 || mm > 59 || hh < 0 || mm < 0 {
		return 0, fmt.Errorf("want HH:MM between 00:00 and 23:59, got %q", s)
	}
	return time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute, nil
}

func (r *Records) applyDefaults() {
	if r.RetentionAt == "" {
		r.RetentionAt = DefaultRetentionAt
	}
}

func (r Records) validate() []ivr.FieldError {
	var errs []ivr.FieldError
	if r.RetentionDays < 0 || r.RetentionDays > MaxRetentionDays {
		errs = append(errs, ivr.FieldError{Path: "records.retention_days",
			Problem: fmt.Sprintf("want 0 (keep forever) or 1-%d days, got %d", MaxRetentionDays, r.RetentionDays)})
	}
	if _, err := parseClock(r.RetentionAt); err != nil {
		errs = append(errs, ivr.FieldError{Path: "records.retention_at", Problem: err.Error()})
	}
	return errs
}
