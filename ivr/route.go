package ivr

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// DefaultTimezone is the zone of a Route without one.
const DefaultTimezone = "Asia/Shanghai"

// Route picks the entry for a called number by time of day and a holiday
// calendar.
//
// Opening rules, in order, on the calendar date of now in Timezone:
//  1. ClosedMenu empty: always open (Hours and Holidays have no effect).
//  2. The date is in Holidays: closed the whole day (also when Hours is
//     empty, and also for the tail of a span that began the evening before).
//  3. Hours empty: open (24/7).
//  4. Open if an Hours entry covers the time. A date in Workdays (调休, a
//     weekend made a working day) takes the hours of a Monday: the entries
//     whose Days include "mon". A span with Close before Open runs past
//     midnight and belongs to the day it opens: "fri 22:00–06:00" is open from
//     Friday 22:00 to Saturday 06:00. Open equal to Close is open all day.
//     Open is inclusive, Close exclusive; times have minute resolution.
type Route struct {
	Number     string   `yaml:"number"`      // called number (DID), e.g. "12345"
	Menu       string   `yaml:"menu"`        // entry menu while open
	Queue      string   `yaml:"queue"`       // menu-less profile: straight to this queue (exclusive with Menu); GB/T 33358 advises against long menus
	ClosedMenu string   `yaml:"closed_menu"` // entry outside hours and on holidays; empty = always open
	Timezone   string   `yaml:"timezone"`    // IANA zone; default "Asia/Shanghai"
	Hours      []Hours  `yaml:"hours"`       // empty = 24/7 (the national standard asks for 24/7)
	Holidays   []string `yaml:"holidays"`    // "2026-10-01": dates closed
	Workdays   []string `yaml:"workdays"`    // 调休 make-up working days: weekend dates worked with Monday's hours
}

// Hours is one opening span on some days of the week.
type Hours struct {
	Days  []string `yaml:"days"`  // "mon".."sun" or ranges "mon-fri" (wrapping "fri-mon" too); empty = every day
	Open  string   `yaml:"open"`  // "08:30"
	Close string   `yaml:"close"` // "17:30"; before Open spans midnight; "24:00" allowed
}

// Entry returns the action a call to r.Number starts with at now: "menu
// Menu" (or "queue Queue" for the menu-less profile) while open, "menu
// ClosedMenu" while closed. now may be in any zone; it is converted to
// r.Timezone.
func (r *Route) Entry(now time.Time) Action {
	if r.ClosedMenu != "" && !r.Open(now) {
		return Action{Kind: ActMenu, Target: r.ClosedMenu}
	}
	if r.Menu == "" && r.Queue != "" {
		return Action{Kind: ActQueue, Target: r.Queue}
	}
	return Action{Kind: ActMenu, Target: r.Menu}
}

// Open reports whether the route's hours and calendar are open at now (rules
// 2–4 of the Route doc; ClosedMenu is not consulted). Hours entries that do
// not parse are ignored; Validate reports them.
func (r *Route) Open(now time.Time) bool {
	loc, err := loadLocation(r.Timezone)
	if err != nil {
		loc = chinaStandardTime // Validate reports the zone; fail towards the standard's zone
	}
	t := now.In(loc)
	if slices.Contains(r.Holidays, t.Format(time.DateOnly)) {
		return false
	}
	if len(r.Hours) == 0 {
		return true
	}
	mins := t.Hour()*60 + t.Minute()
	today := r.weekday(t)
	y := t.AddDate(0, 0, -1)
	yesterdayClosed := slices.Contains(r.Holidays, y.Format(time.DateOnly))
	yesterday := r.weekday(y)
	for _, h := range r.Hours {
		days, err := parseDays(h.Days)
		if err != nil {
			continue
		}
		open, err1 := parseClock(h.Open, false)
		closeAt, err2 := parseClock(h.Close, true)
		if err1 != nil || err2 != nil {
			continue
		}
		switch {
		case open == closeAt:
			if days.has(today) {
				return true
			}
		case open < closeAt:
			if days.has(today) && mins >= open && mins < closeAt {
				return true
			}
		default: // spans midnight
			if days.has(today) && mins >= open {
				return true
			}
			if !yesterdayClosed && days.has(yesterday) && mins < closeAt {
				return true
			}
		}
	}
	return false
}

// weekday is t's weekday, Monday for a make-up working day.
func (r *Route) weekday(t time.Time) time.Weekday {
	if slices.Contains(r.Workdays, t.Format(time.DateOnly)) {
		return time.Monday
	}
	return t.Weekday()
}

// Validate checks r against the menus and queues; paths start with prefix
// (e.g. "routes[0]" gives "routes[0].hours[1].open"). hasQueue may be nil to
// skip the queue check.
func (r *Route) Validate(prefix string, menus map[string]Menu, hasQueue func(string) bool) []FieldError {
	var errs []FieldError
	add := func(field, format string, args ...any) {
		errs = append(errs, FieldError{Path: joinPath(prefix, field), Problem: fmt.Sprintf(format, args...)})
	}
	if strings.TrimSpace(r.Number) == "" {
		add("number", "required")
	} else if strings.ContainsFunc(r.Number, func(c rune) bool { return c <= ' ' }) {
		add("number", "%q contains white space", r.Number)
	}
	switch {
	case r.Menu != "" && r.Queue != "":
		add("queue", "exclusive with menu (set one)")
	case r.Menu == "" && r.Queue == "":
		add("menu", "one of menu and queue is required")
	}
	if r.Menu != "" {
		if _, ok := menus[r.Menu]; !ok {
			add("menu", "unknown menu %q", r.Menu)
		}
	}
	if r.Queue != "" && hasQueue != nil && !hasQueue(r.Queue) {
		add("queue", "unknown queue %q", r.Queue)
	}
	if r.ClosedMenu != "" {
		if _, ok := menus[r.ClosedMenu]; !ok {
			add("closed_menu", "unknown menu %q", r.ClosedMenu)
		}
	} else if len(r.Hours) > 0 || len(r.Holidays) > 0 {
		add("closed_menu", "required when hours or holidays are set (without it the route is always open)")
	}
	if r.Timezone != "" {
		if _, err := loadLocation(r.Timezone); err != nil {
			add("timezone", "unknown time zone %q", r.Timezone)
		}
	}
	errs = append(errs, ValidateHours(joinPath(prefix, "hours"), r.Hours)...)
	for i, d := range r.Holidays {
		if _, err := time.Parse(time.DateOnly, d); err != nil {
			add(fmt.Sprintf("holidays[%d]", i), "bad date %q (want YYYY-MM-DD)", d)
		}
	}
	for i, d := range r.Workdays {
		p := fmt.Sprintf("workdays[%d]", i)
		t, err := time.Parse(time.DateOnly, d)
		switch {
		case err != nil:
			add(p, "bad date %q (want YYYY-MM-DD)", d)
		case t.Weekday() != time.Saturday && t.Weekday() != time.Sunday:
			add(p, "%s is a %s; make-up working days are weekend dates", d, t.Weekday())
		case slices.Contains(r.Holidays, d):
			add(p, "%s is also listed in holidays", d)
		}
	}
	return errs
}

// ValidateHours checks opening hours; path names the list (e.g. "routes[0].hours").
func ValidateHours(path string, hours []Hours) []FieldError {
	var errs []FieldError
	add := func(field, format string, args ...any) {
		errs = append(errs, FieldError{Path: field, Problem: fmt.Sprintf(format, args...)})
	}
	for i, h := range hours {
		hp := fmt.Sprintf("%s[%d]", path, i)
		for j, d := range h.Days {
			if _, err := parseDays([]string{d}); err != nil {
				add(fmt.Sprintf("%s.days[%d]", hp, j), "%v", err)
			}
		}
		if _, err := parseClock(h.Open, false); err != nil {
			add(hp+".open", "%v", err)
		}
		if _, err := parseClock(h.Close, true); err != nil {
			add(hp+".close", "%v", err)
		}
	}
	return errs
}

// dayMask is a set of weekdays, bit i for time.Weekday(i).
type dayMask uint8

func (m dayMask) has(d time.Weekday) bool { return m&(1<<d) != 0 }

var dayNames = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

// parseDays parses "mon", "mon-fri", "sat-sun", "fri-mon" (wrapping);
// an empty list is every day.
func parseDays(days []string) (dayMask, error) {
	if len(days) == 0 {
		return 0x7f, nil
	}
	var m dayMask
	for _, s := range days {
		s = strings.ToLower(strings.TrimSpace(s))
		from, to, isRange := strings.Cut(s, "-")
		a, ok1 := dayNames[strings.TrimSpace(from)]
		b, ok2 := a, true
		if isRange {
			b, ok2 = dayNames[strings.TrimSpace(to)]
		}
		if !ok1 || !ok2 {
			return 0, fmt.Errorf("bad day %q (want mon..sun or a range like mon-fri)", s)
		}
		for d := a; ; d = (d + 1) % 7 {
			m |= 1 << d
			if d == b {
				break
			}
		}
	}
	return m, nil
}

// parseClock parses "HH:MM" (or "H:MM") into minutes after midnight; "24:00"
// only when allow24.
func parseClock(s string, allow24 bool) (int, error) {
	bad := fmt.Errorf("bad time %q (want HH:MM, 00:00-23:59)", s)
	hh, mm, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok || len(hh) < 1 || len(hh) > 2 || len(mm) != 2 {
		return 0, bad
	}
	h, m := 0, 0
	for _, c := range hh {
		if c < '0' || c > '9' {
			return 0, bad
		}
		h = h*10 + int(c-'0')
	}
	for _, c := range mm {
		if c < '0' || c > '9' {
			return 0, bad
		}
		m = m*10 + int(c-'0')
	}
	if allow24 && h == 24 && m == 0 {
		return 24 * 60, nil
	}
	if h > 23 || m > 59 {
		return 0, bad
	}
	return h*60 + m, nil
}

// chinaStandardTime stands in for Asia/Shanghai when the system has no zone
// database (China has kept UTC+8 without DST since 1991). Binaries should
// import time/tzdata to be independent of the host.
var chinaStandardTime = time.FixedZone("CST", 8*60*60)

var locations sync.Map // zone name → *time.Location

// loadLocation loads and caches a zone; "" is DefaultTimezone.
func loadLocation(name string) (*time.Location, error) {
	if name == "" {
		name = DefaultTimezone
	}
	if l, ok := locations.Load(name); ok {
		return l.(*time.Location), nil
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		if name != DefaultTimezone {
			return nil, err
		}
		l = chinaStandardTime
	}
	locations.Store(name, l)
	return l, nil
}

func joinPath(prefix, field string) string {
	if prefix == "" {
		return field
	}
	return prefix + "." + field
}
