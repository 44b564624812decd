package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeScenario(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "scenario.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// A scenario file's values reach the command (its safety limits refuse them before any
// call), flags on the command line override them, and a bad file is answered with
// file:line: key: problem.
func TestScenarioFiles(t *testing.T) {
	day := writeScenario(t, "scenario: day\ntarget: 127.0.0.1:9\nrate: 50\nmix: {\"1\": 0.5, \"2\": 0.5}\n")
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"the file's rate is checked", []string{"run", day}, 2, "--rate 50 is above --max-rate 20"},
		{"the same with --scenario", []string{"day", "--scenario", day}, 2, "--rate 50 is above --max-rate 20"},
		{"a flag overrides the file", []string{"run", day, "--rate", "30", "--max-rate", "25"}, 2, "--rate 30 is above --max-rate 25"},
		{"no file", []string{"run"}, 2, "want a scenario file"},
		{"missing file", []string{"run", filepath.Join(t.TempDir(), "none.yaml")}, 1, "no such file"},
		{"no scenario key", []string{"run", writeScenario(t, "rate: 1\n")}, 2, "scenario: want one of day, bridge, survey"},
		{"unknown key", []string{"run", writeScenario(t, "scenario: bridge\nagents: 3\npairz: 4\n")}, 2, "scenario.yaml:3: pairz: not a setting of bridge"},
		{"bad value", []string{"run", writeScenario(t, "scenario: day\n\nrate: fast\n")}, 2, `scenario.yaml:3: rate: "fast"`},
		{"wrong command", []string{"bridge", "--scenario", writeScenario(t, "scenario: day\n")}, 2, `scenario "day", but this is the bridge command`},
		{"duplicate key", []string{"run", writeScenario(t, "scenario: day\nrate: 1\nrate: 2\n")}, 2, "rate"},
		{"a list", []string{"run", writeScenario(t, "scenario: day\nmix: [1, 2]\n")}, 2, "scenario.yaml:2: mix: a list is not a flag value"},
		{"not a mapping", []string{"run", writeScenario(t, "- day\n")}, 2, "want a mapping"},
		{"quoted mix keys", []string{"run", writeScenario(t, "scenario: day\nrate: 50\nmix: {\"1\": 0.7, \"#\": 0.3}\n")}, 2, "--rate 50 is above"},
		{"a block scalar", []string{"run", writeScenario(t, "scenario: day\nhtml: |\n  a.html\n")}, 2, "scenario.yaml:2: html: a block scalar"},
		{"an anchor", []string{"run", writeScenario(t, "scenario: day\nrate: &r 5\n")}, 2, "scenario.yaml:2: rate: anchors"},
	} {
		code, stdout, stderr := runCmd(tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) || stdout != "" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want %d and %q", tc.name, code, stdout, stderr, tc.code, tc.want)
		}
	}
}
