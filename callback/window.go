package callback

import (
	"fmt"
	"strings"
	"time"

	"github.com/hotline12345/hotline/ivr"
)

// The calling window reuses the routes' opening rules (ivr.Route.Open): one
// span From–To on Days, no calls on Holidays, a 调休 Workday called with a
// Monday's hours. Times have minute resolution, From inclusive, To exclusive;
// "00:00"–"24:00" (or From equal to To) is all day, and To before From runs
// past midnight.

// windowHorizon bounds the search of Window.Next: an opening further away
// than this is reported as none.
const windowHorizon = 400 // days

// Window defaults when a campaign and the dialer's defaults set none.
const (
	DefaultWindowFrom = "09:00"
	DefaultWindowTo   = "20:00"
)

// IsZero reports whether w sets neither From nor To (the defaults apply).
func (w Window) IsZero() bool { return w.From == "" && w.To == "" }

// route is w as a route on wall-clock time (see wall).
func (w Window) route() ivr.Route {
	return ivr.Route{
		Timezone: "UTC",
		Hours:    []ivr.Hours{{Days: w.Days, Open: w.From, Close: w.To}},
		Holidays: w.Holidays,
		Workdays: w.Workdays,
	}
}

// wall is t's wall clock in loc written as a UTC time, so that the route's
// rules (dates, weekdays, minutes) see loc's calendar whatever kind of
// location loc is (a named zone or a fixed offset).
func wall(t time.Time, loc *time.Location) time.Time {
	if loc == nil {
		loc = time.UTC
	}
	t = t.In(loc)
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
}

// Open reports whether calls may be made at now in loc.
func (w Window) Open(now time.Time, loc *time.Location) bool {
	r := w.route()
	return r.Open(wall(now, loc))
}

// Next returns the first moment at or after now when w is open: now itself
// while open, else the next opening (a From, or a midnight ending a holiday or
// starting an allowed day). The zero time means no opening within 400 days.
func (w Window) Next(now time.Time, loc *time.Location) time.Time {
	if loc == nil {
		loc = time.UTC
	}
	if w.Open(now, loc) {
		return now
	}
	from, ok := clockMinutes(w.From)
	if !ok {
		return time.Time{}
	}
	t := now.In(loc)
	y, m, d := t.Date()
	for i := 0; i <= windowHorizon; i++ {
		for _, c := range []time.Time{
			time.Date(y, m, d+i, 0, 0, 0, 0, loc),
			time.Date(y, m, d+i, from/60, from%60, 0, 0, loc),
		} {
			if c.After(now) && w.Open(c, loc) {
				return c
			}
		}
	}
	return time.Time{}
}

// Validate checks the window's times, days and dates; problems name the
// window's fields ("from", "days[1]", "holidays[0]").
func (w Window) Validate() error {
	var probs []string
	for _, e := range ivr.WindowProblems(w.From, w.To, w.Days, w.Holidays, w.Workdays) {
		probs = append(probs, e.Path+": "+e.Problem)
	}
	if len(probs) > 0 {
		return fmt.Errorf("%w: window: %s", ErrBadCampaign, strings.Join(probs, "; "))
	}
	return nil
}

// clockMinutes parses "HH:MM" into minutes after midnight.
func clockMinutes(s string) (int, bool) {
	t, err := time.Parse("15:04", strings.TrimSpace(s))
	if err != nil {
		return 0, false
	}
	return t.Hour()*60 + t.Minute(), true
}
