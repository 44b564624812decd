package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/hotline12345/hotline/loadtest"
)

// runReport is what every run's report offers the command line.
type runReport interface {
	WriteText(io.Writer) error
	Passed() bool
}

// output ends a run the same way for every command: the truth file if asked, the report
// as JSON or a table, the run's error on stderr, and the exit status: 0 only when the run
// ended by itself and its pass criteria hold.
func output(name string, stdout, stderr io.Writer, rep runReport, truth *loadtest.Truth, truthFile string, jsonOut bool, runErr error) int {
	if truthFile != "" && truth != nil {
		if err := loadtest.WriteTruth(truthFile, truth); err != nil {
			fmt.Fprintf(stderr, "hotline-loadtest %s: truth: %v\n", name, err)
		}
	}
	if jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
	} else {
		rep.WriteText(stdout)
	}
	if runErr != nil {
		fmt.Fprintf(stderr, "hotline-loadtest %s: %v (partial results above)\n", name, runErr)
		return 1
	}
	if !rep.Passed() {
		return 1
	}
	return 0
}

// writeHTML writes a run's HTML report: the final table's rows and the plots of its samples.
func writeHTML(path, title, scenario, target string, started time.Time, samples []loadtest.Sample, table func(io.Writer) error) error {
	var t bytes.Buffer
	if err := table(&t); err != nil {
		return err
	}
	var rows [][2]string
	for line := range strings.SplitSeq(strings.TrimRight(t.String(), "\n"), "\n") {
		k, v, _ := strings.Cut(line, "  ")
		rows = append(rows, [2]string{strings.TrimSpace(k), strings.TrimSpace(v)})
	}
	var b bytes.Buffer
	if err := loadtest.WriteHTMLReport(&b, loadtest.HTMLReport{
		Title: title, Scenario: scenario, Target: target, Started: started, Samples: samples, Summary: rows,
	}); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}
