package ivr

import (
	"testing"
	"time"
)

func TestRouteEntry(t *testing.T) {
	sh, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		sh = chinaStandardTime
	}
	at := func(s string) time.Time { // Beijing time
		t.Helper()
		v, err := time.ParseInLocation("2006-01-02 15:04", s, sh)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	officeHours := []Hours{{Days: []string{"mon-fri"}, Open: "08:30", Close: "17:30"}}
	office := Route{Number: "12345", Menu: "main", ClosedMenu: "closed", Hours: officeHours}
	overnight := Route{Number: "12345", Menu: "main", ClosedMenu: "closed",
		Hours: []Hours{{Days: []string{"fri"}, Open: "22:00", Close: "06:00"}}}
	tests := []struct {
		name  string
		route Route
		now   time.Time
		want  string
	}{
		{"24/7 Sunday night", Route{Number: "12345", Menu: "main", ClosedMenu: "closed"}, at("2026-11-29 03:00"), "menu main"},
		{"24/7 without closed menu ignores hours", Route{Number: "12345", Menu: "main", Hours: officeHours}, at("2026-11-29 03:00"), "menu main"},
		{"menu-less profile", Route{Number: "12345", Queue: "consult"}, at("2026-11-29 03:00"), "queue consult"},
		{"weekday before opening", office, at("2026-12-01 08:29"), "menu closed"},
		{"weekday at opening", office, at("2026-12-01 08:30"), "menu main"},
		{"weekday last minute", office, at("2026-12-01 17:29"), "menu main"},
		{"weekday at closing", office, at("2026-12-01 17:30"), "menu closed"},
		{"saturday", office, at("2026-12-05 10:00"), "menu closed"},
		{"overnight before", overnight, at("2026-12-04 21:59"), "menu closed"},
		{"overnight evening", overnight, at("2026-12-04 23:00"), "menu main"},
		{"overnight next morning", overnight, at("2026-12-05 05:59"), "menu main"},
		{"overnight ends", overnight, at("2026-12-05 06:00"), "menu closed"},
		{"overnight wrong day", overnight, at("2026-12-03 23:00"), "menu closed"},
		{"overnight not the next evening", overnight, at("2026-12-05 23:00"), "menu closed"},
		{"holiday closed", withHolidays(office, "2026-10-01"), at("2026-10-01 10:00"), "menu closed"},
		{"day after holiday open", withHolidays(office, "2026-10-01"), at("2026-10-02 10:00"), "menu main"},
		{"holiday closes a 24/7 route", withHolidays(Route{Number: "1", Menu: "main", ClosedMenu: "closed"}, "2026-10-01"), at("2026-10-01 10:00"), "menu closed"},
		{"overnight tail of a holiday is closed", withHolidays(overnight, "2026-12-04"), at("2026-12-05 01:00"), "menu closed"},
		{"调休 workday open on a Sunday", withWorkdays(office, "2026-09-27"), at("2026-09-27 10:00"), "menu main"},
		{"调休 workday keeps Monday hours", withWorkdays(office, "2026-09-27"), at("2026-09-27 18:00"), "menu closed"},
		{"plain Sunday closed", office, at("2026-09-27 10:00"), "menu closed"},
		{"UTC input converted to Shanghai", office, time.Date(2026, 12, 1, 0, 30, 0, 0, time.UTC), "menu main"},
		{"UTC input before Shanghai opening", office, time.Date(2026, 12, 1, 0, 29, 0, 0, time.UTC), "menu closed"},
		{"route in UTC", withZone(office, "UTC"), time.Date(2026, 12, 1, 0, 30, 0, 0, time.UTC), "menu closed"},
		{"route in UTC open", withZone(office, "UTC"), at("2026-12-01 17:00"), "menu main"}, // 09:00 UTC
		{"open equals close is all day", Route{Number: "1", Menu: "main", ClosedMenu: "closed",
			Hours: []Hours{{Days: []string{"sat-sun"}, Open: "00:00", Close: "00:00"}}}, at("2026-12-05 23:59"), "menu main"},
		{"close 24:00", Route{Number: "1", Menu: "main", ClosedMenu: "closed",
			Hours: []Hours{{Open: "20:00", Close: "24:00"}}}, at("2026-12-05 23:59"), "menu main"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.route.Entry(tc.now).String(); got != tc.want {
				t.Errorf("Entry(%s) = %q, want %q", tc.now, got, tc.want)
			}
		})
	}
}

func withHolidays(r Route, d ...string) Route { r.Holidays = d; return r }
func withWorkdays(r Route, d ...string) Route { r.Workdays = d; return r }
func withZone(r Route, z string) Route        { r.Timezone = z; return r }

func TestParseDays(t *testing.T) {
	tests := []struct {
		in   []string
		want []time.Weekday
		ok   bool
	}{
		{nil, []time.Weekday{0, 1, 2, 3, 4, 5, 6}, true},
		{[]string{"mon-fri"}, []time.Weekday{1, 2, 3, 4, 5}, true},
		{[]string{"Sat", " sun "}, []time.Weekday{0, 6}, true},
		{[]string{"fri-mon"}, []time.Weekday{5, 6, 0, 1}, true},
		{[]string{"mon-mon"}, []time.Weekday{1}, true},
		{[]string{"monday"}, nil, false},
		{[]string{"mon-"}, nil, false},
	}
	for _, tc := range tests {
		m, err := parseDays(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("parseDays(%q) error %v", tc.in, err)
			continue
		}
		var want dayMask
		for _, d := range tc.want {
			want |= 1 << d
		}
		if tc.ok && m != want {
			t.Errorf("parseDays(%q) = %07b, want %07b", tc.in, m, want)
		}
	}
}
