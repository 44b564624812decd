package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hotline12345/hotline/cdr"
	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/configs"
)

const reportUsage = `usage: hotlined report [--data-dir DIR | --cdr-dsn DSN] [--config FILE]
        [--from TIME] [--to TIME] [--queue NAME] [--by hour|day|queue|agent]
        [--format text|csv|json|html] [--tz ZONE] [--short-abandon DUR] [--service-level DUR] [--output FILE]

Prints the hotline's KPIs (offered, answered, abandoned, answer and abandon
rates, ASA, AHT, service level, satisfaction, per queue and per agent, and
the GB/T 33358 line) for the calls that started in [--from, --to).
Satisfaction comes with its denominators: asked to rate, rated, rated share,
满意率, 基本满意率 and 不满意率 over rated; per call in the total, per queue
and agent from the post-call ratings (a transferred call's is the last agent's).

TIME is 2006-01-02, "2006-01-02 15:04", 2006-01-02T15:04:05 or RFC 3339, in
--tz (default: the config's timezone:, else Asia/Shanghai) unless it has an
offset; a --to given as a date includes that whole day.
Without --from and --to the report covers every record; --format html
(the daily report, 日报) then covers today.
Per-queue service-level thresholds come from the config (queues.*.service_level).

`

// reportMain runs `hotlined report ARGS`; it returns the exit status: 0, 1
// on a failure reading the records, 2 on bad usage.
func reportMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hotlined report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, reportUsage)
		fs.PrintDefaults()
	}
	src := addSourceFlags(fs)
	var (
		queue     = fs.String("queue", "", "only the calls that entered this queue, and its queue visits")
		by        = fs.String("by", "", "group by hour, day, queue or agent")
		format    = fs.String("format", "text", "output: text, csv, json or html")
		shortAb   = fs.Duration("short-abandon", cdr.DefaultShortAbandon, "abandons shorter than this are shown apart")
		slDefault = fs.Duration("service-level", 0, "service-level threshold for queues without one in the config (default 15s)")
		output    = fs.String("output", "", "write to this file instead of standard output")
	)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "hotlined report: "+format+"\n", a...)
		return 2
	}
	if fs.NArg() > 0 {
		return usage("unexpected argument %q", fs.Arg(0))
	}
	switch *format {
	case "text", "csv", "json", "html":
	default:
		return usage("--format %q: want text, csv, json or html", *format)
	}
	opts := cdr.ReportOptions{Queue: *queue, By: cdr.GroupBy(*by), ShortAbandon: *shortAb, ServiceLevel: *slDefault}
	switch opts.By {
	case cdr.ByNone, cdr.ByHour, cdr.ByDay, cdr.ByQueue, cdr.ByAgent:
	default:
		return usage("--by %q: want hour, day, queue or agent", *by)
	}
	if *shortAb <= 0 {
		return usage("--short-abandon %s: want a positive duration", *shortAb)
	}
	if *slDefault < 0 {
		return usage("--service-level %s: want a positive duration", *slDefault)
	}
	in, code := src.resolve("hotlined report", stderr)
	if code != 0 {
		return code
	}
	loc, cfg := in.loc, in.cfg
	opts.Location, opts.From, opts.To = loc, in.from, in.to
	if *format == "html" && opts.From.IsZero() && opts.To.IsZero() {
		now := time.Now().In(loc)
		opts.From = time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, loc)
		opts.To = opts.From.AddDate(0, 0, 1)
	}

	opts.QueueServiceLevel = map[string]time.Duration{}
	for name, q := range cfg.Queues {
		if d := q.ServiceLevel.D(); d > 0 {
			opts.QueueServiceLevel[name] = d
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	store, err := cdr.Open(ctx, in.where)
	if err != nil {
		fmt.Fprintln(stderr, "hotlined report:", err)
		return 1
	}
	defer store.Close()
	rep, err := cdr.ReportFromStore(ctx, store, opts)
	if err != nil {
		fmt.Fprintln(stderr, "hotlined report:", err)
		return 1
	}

	out := stdout
	var f *os.File
	if *output != "" {
		if f, err = os.Create(*output); err != nil {
			fmt.Fprintln(stderr, "hotlined report:", err)
			return 1
		}
		out = f
	}
	switch *format {
	case "text":
		err = rep.WriteText(out)
	case "csv":
		err = rep.WriteCSV(out)
	case "json":
		err = rep.WriteJSON(out)
	case "html":
		err = rep.WriteHTML(out)
	}
	if f != nil {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "hotlined report:", err)
		return 1
	}
	return 0
}

// sourceFlags are the flags of the subcommands that read the records
// (report, events): where the records are, the config, the zone and the
// window.
type sourceFlags struct {
	dataDir, dsn, cfgFile, from, to, tz *string
}

func addSourceFlags(fs *flag.FlagSet) *sourceFlags {
	return &sourceFlags{
		dataDir: fs.String("data-dir", "", "data directory holding cdr.db (default from config: ./data)"),
		dsn:     fs.String("cdr-dsn", "", "record store: postgres://... or a SQLite file path (instead of --data-dir)"),
		cfgFile: fs.String("config", "", "config file for the time zone, per-queue service levels and the data dir (default: the embedded one)"),
		from:    fs.String("from", "", "start of the period (inclusive)"),
		to:      fs.String("to", "", "end of the period (exclusive; a date includes that day)"),
		tz:      fs.String("tz", "", `time zone for TIME and for hours and days (default: the config's timezone:, else `+cdr.DefaultTimeZone+`)`),
	}
}

// source is what sourceFlags resolve to.
type source struct {
	cfg      *config.Config
	loc      *time.Location
	from, to time.Time
	where    string // a PostgreSQL DSN or the SQLite file
}

// resolve checks the flags, loads the config and finds the store; on a
// problem it reports it as cmd and returns the exit status (2 for usage,
// 1 for no records).
func (f *sourceFlags) resolve(cmd string, stderr io.Writer) (source, int) {
	fail := func(code int, format string, a ...any) (source, int) {
		fmt.Fprintf(stderr, cmd+": "+format+"\n", a...)
		return source{}, code
	}
	if *f.dataDir != "" && *f.dsn != "" {
		return fail(2, "give --data-dir or --cdr-dsn, not both")
	}
	cfg, zone, err := loadConfigAndZone(*f.cfgFile)
	if err != nil {
		return fail(2, "%v", err)
	}
	var src source
	src.cfg = cfg
	if *f.tz != "" {
		zone = *f.tz
	}
	if src.loc, err = time.LoadLocation(zone); err != nil {
		return fail(2, "--tz %q: %v", zone, err)
	}
	if src.from, _, err = parseReportTime(*f.from, src.loc); err != nil {
		return fail(2, "--from: %v", err)
	}
	var dateOnly bool
	if src.to, dateOnly, err = parseReportTime(*f.to, src.loc); err != nil {
		return fail(2, "--to: %v", err)
	}
	if dateOnly {
		src.to = src.to.AddDate(0, 0, 1)
	}
	if !src.from.IsZero() && !src.to.IsZero() && !src.from.Before(src.to) {
		return fail(2, "impossible range: --from %s is not before --to %s", src.from.Format(time.RFC3339), src.to.Format(time.RFC3339))
	}
	src.where = *f.dsn
	if src.where == "" {
		dir := *f.dataDir
		if dir == "" {
			dir = cfg.DataDir
		}
		src.where = filepath.Join(dir, "cdr.db")
		// Opening would create an empty database: say plainly that there
		// is none instead.
		if _, err := os.Stat(src.where); err != nil {
			return fail(1, "no call records at %s: %v", src.where, err)
		}
	}
	return src, 0
}

// loadConfigAndZone loads the config file, or the embedded default,
// without checking prompts (the subcommands need only queues, the data dir
// and the zone), and its top-level timezone: (cdr.DefaultTimeZone if unset).
func loadConfigAndZone(file string) (*config.Config, string, error) {
	name, data := configs.DefaultName, []byte(nil)
	var err error
	if file != "" {
		name = file
		data, err = os.ReadFile(file)
	} else {
		data, err = fs.ReadFile(configs.FS, configs.DefaultName)
	}
	if err != nil {
		return nil, "", fmt.Errorf("config: %w", err)
	}
	cfg, err := config.Load(name, data, config.Known{})
	if err != nil {
		return nil, "", err
	}
	return cfg, cfg.Timezone, nil // config.Load defaults it to Asia/Shanghai
}

var reportTimeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02T15:04", "2006-01-02 15:04"}

// parseReportTime parses a --from/--to value in loc; dateOnly says it was
// a bare date. An empty string is the zero time.
func parseReportTime(s string, loc *time.Location) (t time.Time, dateOnly bool, err error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, false, nil
	}
	if t, err := time.ParseInLocation(time.DateOnly, s, loc); err == nil {
		return t, true, nil
	}
	for _, l := range reportTimeLayouts {
		if t, err := time.ParseInLocation(l, s, loc); err == nil {
			return t, false, nil
		}
	}
	return time.Time{}, false, fmt.Errorf("%q is not a time: want 2006-01-02, \"2006-01-02 15:04\" or RFC 3339", s)
}
