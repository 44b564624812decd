package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"

	"github.com/hotline12345/hotline/loadtest"
)

// A scenario file is the flags of one run written down, for runs that are repeated (a
// surge rehearsal before every typhoon season):
//
//	scenario: day                 # day, bridge or survey
//	target: 127.0.0.1:5060
//	api: http://127.0.0.1:8080
//	agents: 20
//	rate: 5
//	duration: 60s
//	mix: {"1": 0.7, "2": 0.3}     # a mapping becomes DIGIT=WEIGHT,...
//
// Keys are the command's flag names ("max-rate" or "max_rate"); flags given on the command
// line override the file. An unknown key or a bad value is reported as file:line: key: problem.

// scenarioCommands are the commands a scenario file may name.
var scenarioCommands = map[string]func(context.Context, []string, io.Writer, io.Writer) int{
	"day": runDay, "bridge": runBridge, "survey": runSurvey,
}

// runScenario is `hotline-loadtest run FILE [flags]`: the command the file names, with the
// file's settings and then the flags.
func runScenario(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintln(stderr, "hotline-loadtest run: want a scenario file: hotline-loadtest run FILE [flags]")
		return 2
	}
	name, _, err := readScenario(args[0])
	if err != nil {
		return fail(stderr, "run", err)
	}
	cmd, ok := scenarioCommands[name]
	if !ok {
		return fail(stderr, "run", fmt.Errorf("%w: %s: scenario: want one of day, bridge, survey", loadtest.ErrConfig, args[0]))
	}
	return cmd(ctx, append([]string{"--scenario", args[0]}, args[1:]...), stdout, stderr)
}

// scenarioSetting is one key of a scenario file.
type scenarioSetting struct {
	key, value string
	line       int
}

// readScenario reads a scenario file: the scenario it names ("" if none) and its settings.
func readScenario(path string) (string, []scenarioSetting, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", nil, err
	}
	f, err := parser.ParseBytes(b, 0)
	if err != nil {
		return "", nil, fmt.Errorf("%w: %s: %v", loadtest.ErrConfig, path, err)
	}
	if len(f.Docs) != 1 || f.Docs[0].Body == nil {
		return "", nil, fmt.Errorf("%w: %s: want one YAML mapping of flag names to values", loadtest.ErrConfig, path)
	}
	var values []*ast.MappingValueNode
	switch n := f.Docs[0].Body.(type) {
	case *ast.MappingNode:
		values = n.Values
	case *ast.MappingValueNode:
		values = []*ast.MappingValueNode{n}
	default:
		return "", nil, fmt.Errorf("%w: %s:%d: want a mapping of flag names to values", loadtest.ErrConfig, path, line(f.Docs[0].Body))
	}
	scenario := ""
	var out []scenarioSetting
	seen := map[string]int{}
	for _, mv := range values {
		at := line(mv.Key)
		k, err := scalarValue(mv.Key)
		if err != nil {
			return "", nil, fmt.Errorf("%w: %s:%d: key: %v", loadtest.ErrConfig, path, at, err)
		}
		key := strings.ReplaceAll(k, "_", "-")
		if first, dup := seen[key]; dup {
			return "", nil, fmt.Errorf("%w: %s:%d: %s: given again (first on line %d)", loadtest.ErrConfig, path, at, key, first)
		}
		seen[key] = at
		v, err := scalarValue(mv.Value)
		if err != nil {
			return "", nil, fmt.Errorf("%w: %s:%d: %s: %v", loadtest.ErrConfig, path, at, key, err)
		}
		if key == "scenario" {
			scenario = v
			continue
		}
		out = append(out, scenarioSetting{key: key, value: v, line: at})
	}
	return scenario, out, nil
}

func line(n ast.Node) int {
	if t := n.GetToken(); t != nil && t.Position != nil {
		return t.Position.Line
	}
	return 0
}

// scalarValue is a value as the flag takes it: a scalar as written, a mapping as
// KEY=VALUE,... (the --mix form).
func scalarValue(n ast.Node) (string, error) {
	switch v := n.(type) {
	case nil, *ast.NullNode:
		return "", errors.New("no value")
	case *ast.StringNode:
		return v.Value, nil
	case *ast.LiteralNode:
		return "", errors.New("a block scalar (| or >) is not a flag value: write it on one line")
	case *ast.AnchorNode, *ast.AliasNode, *ast.TagNode:
		return "", errors.New("anchors, aliases and tags are not taken: write the value itself")
	case *ast.MappingNode, *ast.MappingValueNode:
		var values []*ast.MappingValueNode
		if m, ok := v.(*ast.MappingNode); ok {
			values = m.Values
		} else {
			values = []*ast.MappingValueNode{v.(*ast.MappingValueNode)}
		}
		parts := make([]string, 0, len(values))
		for _, kv := range values {
			k, err := scalarValue(kv.Key)
			if err != nil {
				return "", err
			}
			val, err := scalarValue(kv.Value)
			if err != nil {
				return "", err
			}
			parts = append(parts, k+"="+val)
		}
		return strings.Join(parts, ","), nil
	case *ast.SequenceNode:
		return "", errors.New("a list is not a flag value")
	case ast.ScalarNode:
		return strings.TrimSpace(n.String()), nil
	}
	return "", fmt.Errorf("unexpected %s", n.Type())
}

// applyScenario sets fs's flags from the scenario file path, which must name the command
// (or no scenario); flags set on the command line afterwards override it.
func applyScenario(fs *flag.FlagSet, path string) error {
	scenario, settings, err := readScenario(path)
	if err != nil {
		return err
	}
	if scenario != "" && scenario != fs.Name() {
		return fmt.Errorf("%w: %s: scenario %q, but this is the %s command (hotline-loadtest run %s picks it)", loadtest.ErrConfig, path, scenario, fs.Name(), path)
	}
	for _, s := range settings {
		if s.key == "scenario-file" || fs.Lookup(s.key) == nil || s.key == "scenario" {
			var names []string
			fs.VisitAll(func(f *flag.Flag) {
				if f.Name != "scenario" {
					names = append(names, f.Name)
				}
			})
			slices.Sort(names)
			return fmt.Errorf("%w: %s:%d: %s: not a setting of %s (settings: %s)", loadtest.ErrConfig, path, s.line, s.key, fs.Name(), strings.Join(names, ", "))
		}
		if err := fs.Set(s.key, s.value); err != nil {
			return fmt.Errorf("%w: %s:%d: %s: %q: %v", loadtest.ErrConfig, path, s.line, s.key, s.value, err)
		}
	}
	return nil
}

// scenarioArgs finds --scenario FILE (or --scenario=FILE) in args for commands that take
// one; the flag package then sees it again and ignores it (see scenarioFlag).
func scenarioArgs(args []string) string {
	for i, a := range args {
		if a == "--" {
			break
		}
		for _, p := range []string{"--scenario=", "-scenario="} {
			if v, ok := strings.CutPrefix(a, p); ok {
				return v
			}
		}
		if (a == "--scenario" || a == "-scenario") && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// parseWithScenario registers --scenario, applies the scenario file named in args (if any)
// and then parses args, so that the command line wins over the file.
func parseWithScenario(fs *flag.FlagSet, args []string, stderr io.Writer) (ok bool, code int) {
	fs.String("scenario", "", "a YAML scenario file of this command's settings (flag names as keys); flags given here override it")
	if path := scenarioArgs(args); path != "" {
		if err := applyScenario(fs, path); err != nil {
			return false, fail(stderr, fs.Name(), err)
		}
	}
	return parse(fs, args, stderr)
}
