package config

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// Each directory mistake comes back as file:line: field: problem.
func TestDirectoryErrors(t *testing.T) {
	base := defaultDoc(t)
	for _, tc := range []struct {
		desc, old, new, want string
	}{
		{"unknown trunk", "    trunk: departments          # an outbound trunk", "    trunk: nowhere", `directory[0].trunk: unknown outbound trunk "nowhere"`},
		{"outside the dial plan", `    number: "12315"             #`, `    number: "13800138000"       #`, `directory[0].number: "13800138000" is outside the dial plan of trunk departments`},
		{"not a number", `    number: "12315"             #`, `    number: "12315*1"           #`, `directory[0].number: want a number`},
		{"duplicate name", `  - name: "12369"`, `  - name: "12315"`, `directory[1].name: duplicate entry "12315"`},
		{"a queue's name", `  - name: "12369"`, `  - name: consult`, `directory[1].name: "consult" is a queue's name`},
		{"bad hours", `open: "00:00", close: "24:00"`, `open: "25:00", close: "24:00"`, `directory[1].hours[0].open:`},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			doc := edit(t, base, tc.old, tc.new)
			_, err := Load("hotline.yaml", []byte(doc), Known{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			n := 1
			if tc.desc == "duplicate name" {
				n = 2
			}
			line := lineWith(t, doc, strings.TrimSpace(strings.SplitN(tc.new, "#", 2)[0]), n)
			if !strings.Contains(err.Error(), "hotline.yaml:"+strconv.Itoa(line)+":") {
				t.Errorf("error %v is not located at line %d", err, line)
			}
		})
	}
}

// The default directory: 12315 always open, found by name or number; 12369 open all week.
func TestDirectoryFindAndHours(t *testing.T) {
	c, err := Load("hotline.yaml", []byte(defaultDoc(t)), Known{})
	if err != nil {
		t.Fatal(err)
	}
	e, i, ok := FindEntry(c.Directory, "12315")
	if !ok || i != 0 || e.Trunk != "departments" {
		t.Fatalf("FindEntry(12315) = %+v %d %v", e, i, ok)
	}
	if _, _, ok := FindEntry(c.Directory, "13800138000"); ok {
		t.Error("a number outside the directory was found")
	}
	now := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	if !e.Open(now, c.Timezone) {
		t.Error("an entry without hours is closed")
	}
	shut := DirectoryEntry{Hours: c.Directory[1].Hours}
	shut.Hours[0].Open, shut.Hours[0].Close = "08:00", "09:00"
	if shut.Open(now, "UTC") {
		t.Error("an entry open 08:00-09:00 is open at 03:00")
	}
}
