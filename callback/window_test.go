package callback

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestWindowOpen(t *testing.T) {
	sh := shanghaiLoc(t)
	at := func(s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04", s, sh)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	day := Window{From: "09:00", To: "20:00"}
	// 2026-10-01 (Thu) is a holiday; 2026-10-10 is a Saturday worked (调休).
	office := Window{From: "09:00", To: "20:00", Days: []string{"mon-fri"}, Holidays: []string{"2026-10-01"}, Workdays: []string{"2026-10-10"}}
	allDay := Window{From: "00:00", To: "24:00"}
	night := Window{From: "22:00", To: "06:00", Holidays: []string{"2026-10-03"}}
	tests := []struct {
		name string
		w    Window
		at   time.Time
		want bool
	}{
		{"before 09:00", day, at("2026-09-30 08:59"), false},
		{"09:00 opens", day, at("2026-09-30 09:00"), true},
		{"19:59", day, at("2026-09-30 19:59"), true},
		{"20:00 closed", day, at("2026-09-30 20:00"), false},
		{"weekend called without days", day, at("2026-10-04 10:00"), true},
		{"utc instant in shanghai hours", day, time.Date(2026, 9, 30, 1, 0, 0, 0, time.UTC), true}, // 09:00 CST
		{"utc instant before shanghai hours", day, time.Date(2026, 9, 30, 0, 59, 0, 0, time.UTC), false},
		{"holiday", office, at("2026-10-01 10:00"), false},
		{"the day after the holiday", office, at("2026-10-02 10:00"), true},
		{"saturday not in days", office, at("2026-10-03 10:00"), false},
		{"调休 saturday worked", office, at("2026-10-10 10:00"), true},
		{"调休 saturday after hours", office, at("2026-10-10 20:00"), false},
		{"all day at midnight", allDay, at("2026-10-01 00:00"), true},
		{"all day at 23:59", allDay, at("2026-10-01 23:59"), true},
		{"overnight evening", night, at("2026-10-01 23:00"), true},
		{"overnight morning", night, at("2026-10-02 05:59"), true},
		{"overnight day", night, at("2026-10-02 12:00"), false},
		{"overnight holiday evening", night, at("2026-10-03 23:00"), false},
		{"overnight tail of a holiday", night, at("2026-10-04 01:00"), false},
	}
	for _, tt := range tests {
		if got := tt.w.Open(tt.at, sh); got != tt.want {
			t.Errorf("%s: Open(%s) = %v, want %v", tt.name, tt.at.In(sh).Format(time.DateTime), got, tt.want)
		}
	}
}

func TestWindowNext(t *testing.T) {
	sh := shanghaiLoc(t)
	at := func(s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04", s, sh)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	office := Window{From: "09:00", To: "20:00", Days: []string{"mon-fri"}, Holidays: []string{"2026-10-01", "2026-10-02"}, Workdays: []string{"2026-10-10"}}
	night := Window{From: "22:00", To: "06:00", Holidays: []string{"2026-10-03"}}
	tests := []struct {
		name     string
		w        Window
		now      time.Time
		want     time.Time
		wantNone bool
	}{
		{"open now", office, at("2026-09-30 10:00"), at("2026-09-30 10:00"), false},
		{"this morning", office, at("2026-09-30 07:30"), at("2026-09-30 09:00"), false},
		{"over the holidays and the weekend", office, at("2026-09-30 20:00"), at("2026-10-05 09:00"), false},
		{"to the 调休 saturday", office, at("2026-10-09 21:00"), at("2026-10-10 09:00"), false},
		{"overnight this evening", night, at("2026-10-02 12:00"), at("2026-10-02 22:00"), false},
		{"overnight after a holiday", night, at("2026-10-03 12:00"), at("2026-10-04 22:00"), false},
		{"never", Window{From: "09:00", To: "20:00", Days: []string{"mon"}, Workdays: nil, Holidays: mondays(at("2026-09-28 12:00"), 60)}, at("2026-09-28 21:00"), time.Time{}, true},
	}
	for _, tt := range tests {
		got := tt.w.Next(tt.now, sh)
		if tt.wantNone {
			if !got.IsZero() {
				t.Errorf("%s: Next = %s, want none", tt.name, got.In(sh))
			}
			continue
		}
		if !got.Equal(tt.want) {
			t.Errorf("%s: Next(%s) = %s, want %s", tt.name, tt.now.In(sh).Format(time.DateTime), got.In(sh).Format(time.DateTime), tt.want.In(sh).Format(time.DateTime))
		}
		if !tt.w.Open(got, sh) {
			t.Errorf("%s: not open at Next", tt.name)
		}
	}
}

// mondays lists n Mondays from the week of from on as dates.
func mondays(from time.Time, n int) []string {
	var out []string
	for i := range n {
		out = append(out, from.AddDate(0, 0, 7*i).Format(time.DateOnly))
	}
	return out
}

func TestWindowValidate(t *testing.T) {
	if err := (Window{From: "09:00", To: "24:00", Days: []string{"mon-fri"}, Holidays: []string{"2026-10-01"}, Workdays: []string{"2026-10-10"}}).Validate(); err != nil {
		t.Errorf("good window: %v", err)
	}
	tests := []struct {
		w    Window
		want string
	}{
		{Window{From: "9h", To: "20:00"}, "from: bad time"},
		{Window{From: "09:00", To: "25:00"}, "to: bad time"},
		{Window{From: "24:00", To: "20:00"}, "from: bad time"},
		{Window{From: "09:00", To: "20:00", Days: []string{"mon", "someday"}}, "days[1]"},
		{Window{From: "09:00", To: "20:00", Holidays: []string{"10/01"}}, "holidays[0]"},
		{Window{From: "09:00", To: "20:00", Workdays: []string{"2026-10-12"}}, "workdays[0]"}, // a Monday
	}
	for _, tt := range tests {
		err := tt.w.Validate()
		if !errors.Is(err, ErrBadCampaign) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: Validate = %v, want %q", tt.w, err, tt.want)
		}
	}
}
