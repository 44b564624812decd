package config

import (
	"strconv"
	"strings"
	"testing"
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

// The default directory: 12315 and 12369 through the departments trunk.
func TestDefaultDirectory(t *testing.T) {
	c, err := Load("hotline.yaml", []byte(defaultDoc(t)), Known{})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Directory) != 2 || c.Directory[0].Name != "12315" || c.Directory[0].Trunk != "departments" || len(c.Directory[1].Hours) != 1 {
		t.Fatalf("directory = %+v", c.Directory)
	}
}
