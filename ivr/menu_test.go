package ivr

import (
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
)

// The config loader decodes YAML straight into these types with goccy/go-yaml;
// Duration relies on its encoding.TextUnmarshaler support.
func TestMenuYAML(t *testing.T) {
	const doc = `
menus:
  main:
    prompts: [zh/welcome, zh/menu_main]
    options:
      "1": queue consult
      "2": queue complaint
      "#": menu case
    timeout: 1m30s
    max_retries: 2
    invalid_prompt: zh/invalid
    fallback: queue consult
  case:
    prompts: [zh/enter_case]
    timeout: 7
    input:
      max_digits: 13
      inter_digit_timeout: 2500ms
      store: case_number
      next: queue complaint
routes:
  - number: "12345"
    menu: main
    closed_menu: case
    hours:
      - days: [mon-fri]
        open: "08:30"
        close: "17:30"
    holidays: ["2026-10-01"]
`
	var cfg struct {
		Menus  map[string]Menu `yaml:"menus"`
		Routes []Route         `yaml:"routes"`
	}
	if err := yaml.UnmarshalWithOptions([]byte(doc), &cfg, yaml.Strict()); err != nil {
		t.Fatal(err)
	}
	main := cfg.Menus["main"]
	if main.Timeout.D() != 90*time.Second || main.MaxRetries != 2 || main.Options["#"] != "menu case" {
		t.Errorf("main = %+v", main)
	}
	c := cfg.Menus["case"]
	if c.Timeout.D() != 7*time.Second || c.Input.InterDigitTimeout.D() != 2500*time.Millisecond || c.Input.MaxDigits != 13 {
		t.Errorf("case = %+v, input %+v", c, c.Input)
	}
	c.ApplyDefaults()
	if c.Input.MinDigits != 1 || c.Input.Terminator != "#" || c.MaxRetries != 3 || c.Fallback != "hangup" {
		t.Errorf("defaults: %+v, input %+v", c, c.Input)
	}
	if r := cfg.Routes[0]; r.Hours[0].Open != "08:30" || r.Holidays[0] != "2026-10-01" {
		t.Errorf("route = %+v", r)
	}

	if err := yaml.Unmarshal([]byte("timeout: 5 parsecs\n"), &struct {
		Timeout Duration `yaml:"timeout"`
	}{}); err == nil || !strings.Contains(err.Error(), "bad duration") {
		t.Errorf("bad duration: %v", err)
	}
	out, err := yaml.Marshal(struct {
		Timeout Duration `yaml:"timeout"`
	}{Duration(5 * time.Second)})
	if err != nil || strings.TrimSpace(string(out)) != "timeout: 5s" {
		t.Errorf("marshal: %q %v", out, err)
	}
}

func TestDurationUnmarshalText(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"5s", 5 * time.Second, true},
		{"1m30s", 90 * time.Second, true},
		{"500ms", 500 * time.Millisecond, true},
		{"5", 5 * time.Second, true},
		{"2.5", 2500 * time.Millisecond, true},
		{"", 0, true},
		{"-1s", -time.Second, true}, // validation reports it
		{"NaN", 0, false},
		{"1e400", 0, false},
		{"99999999999999", 0, false},
		{"5 s", 0, false},
	}
	for _, tc := range tests {
		var d Duration
		err := d.UnmarshalText([]byte(tc.in))
		if (err == nil) != tc.ok || (tc.ok && d.D() != tc.want) {
			t.Errorf("UnmarshalText(%q) = %v, %v", tc.in, d, err)
		}
	}
}
