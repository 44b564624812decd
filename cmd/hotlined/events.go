package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hotline12345/hotline/cdr"
)

const eventsUsage = `usage: hotlined events [--data-dir DIR | --cdr-dsn DSN] [--config FILE]
        [--from TIME] [--to TIME] [--agent ID] [--queue NAME] [--call ID]
        [--event NAME[,NAME...]] [--limit N] [--format text|csv|json] [--tz ZONE]

Prints the agent and queue event log (queue_log style: LOGIN, PAUSE,
ENTERQUEUE, CONNECT, COMPLETECALLER, TRANSFER, WRAPUPEND, ...), oldest
first, for the events in [--from, --to). TIME is as for hotlined report.

`

// eventsMain runs `hotlined events ARGS`; it returns the exit status: 0, 1
// on a failure reading the events, 2 on bad usage.
func eventsMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hotlined events", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, eventsUsage)
		fs.PrintDefaults()
	}
	src := addSourceFlags(fs)
	var (
		agent  = fs.String("agent", "", "only this agent's events")
		queue  = fs.String("queue", "", "only this queue's events")
		callID = fs.String("call", "", "only this call's events (its record ID)")
		names  = fs.String("event", "", "only these events, comma separated (e.g. LOGIN,LOGOUT)")
		limit  = fs.Int("limit", cdr.DefaultListLimit, fmt.Sprintf("at most this many events (1-%d)", cdr.MaxListLimit))
		format = fs.String("format", "text", "output: text, csv or json")
	)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "hotlined events: "+format+"\n", a...)
		return 2
	}
	if fs.NArg() > 0 {
		return usage("unexpected argument %q", fs.Arg(0))
	}
	switch *format {
	case "text", "csv", "json":
	default:
		return usage("--format %q: want text, csv or json", *format)
	}
	if *limit < 1 || *limit > cdr.MaxListLimit {
		return usage("--limit %d: want 1-%d", *limit, cdr.MaxListLimit)
	}
	f := cdr.EventFilter{AgentID: *agent, Queue: *queue, CallID: *callID, Limit: *limit}
	for name := range strings.SplitSeq(*names, ",") {
		name = strings.ToUpper(strings.TrimSpace(name))
		if name == "" {
			continue
		}
		if !slices.Contains(cdr.EventNames, name) {
			return usage("--event %q: want one of %s", name, strings.Join(cdr.EventNames, ", "))
		}
		f.Events = append(f.Events, name)
	}
	in, code := src.resolve("hotlined events", stderr)
	if code != 0 {
		return code
	}
	f.From, f.To = in.from, in.to

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	store, err := cdr.Open(ctx, in.where)
	if err != nil {
		fmt.Fprintln(stderr, "hotlined events:", err)
		return 1
	}
	defer store.Close()
	evs, err := store.ListEvents(ctx, f)
	if err != nil {
		fmt.Fprintln(stderr, "hotlined events:", err)
		return 1
	}
	switch *format {
	case "csv":
		err = cdr.WriteEventsCSV(stdout, evs)
	case "json":
		if evs == nil {
			evs = []cdr.AgentEvent{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		err = enc.Encode(map[string]any{"events": evs}) // as GET /api/v1/events
	default:
		err = writeEventsText(stdout, evs, in.loc)
	}
	if err != nil {
		fmt.Fprintln(stderr, "hotlined events:", err)
		return 1
	}
	if len(evs) == *limit {
		fmt.Fprintf(stderr, "hotlined events: stopped at --limit %d; narrow the period or raise --limit\n", *limit)
	}
	return 0
}

// writeEventsText writes one aligned line per event, times in loc, the
// data fields that are set as dataN=value.
func writeEventsText(w io.Writer, evs []cdr.AgentEvent, loc *time.Location) error {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "time\tevent\tagent\tqueue\tcall\tdata")
	for i := range evs {
		e := &evs[i]
		var data []string
		for n, v := range []string{e.Data1, e.Data2, e.Data3, e.Data4, e.Data5} {
			if v != "" {
				data = append(data, fmt.Sprintf("data%d=%s", n+1, v))
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.In(loc).Format("2006-01-02 15:04:05.000"),
			e.Event, e.AgentID, e.Queue, e.CallID, strings.Join(data, " "))
	}
	return tw.Flush()
}
