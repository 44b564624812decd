// Command hotlined is the hotline server: SIP trunks, RTP media, IVR, queues and records.
//
//	hotlined report --data-dir DIR | --cdr-dsn DSN [--from --to --queue --by hour|day|queue|agent] [--format text|csv|json|html]
//	hotlined campaign import --file cases.csv [--campaign ID | --name NAME] [--api URL]
//	hotlined token [--name NAME] [--role viewer|supervisor|admin]   (a new API token and its config line)
//	hotlined events --data-dir DIR | --cdr-dsn DSN [--from --to --agent --queue --call --event] [--format text|csv|json]
//	hotlined [--config FILE] [--sip-listen HOST:PORT] [--http-listen HOST:PORT]
//	         [--data-dir DIR] [--rtp-ports LOW-HIGH] [--log-level debug|info|warn|error] [--log-format text|json]
//
// SIGTERM (or a first SIGINT) drains: new calls get 503 with Retry-After, live calls may
// run for drain_timeout, then are hung up with BYE and their records flushed. A second
// signal hangs up at once. SIGHUP reloads the configuration (reload.go).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	_ "time/tzdata" // routes use Asia/Shanghai even on hosts without a zone database
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "report":
			os.Exit(reportMain(os.Args[2:], os.Stdout, os.Stderr))
		case "events":
			os.Exit(eventsMain(os.Args[2:], os.Stdout, os.Stderr))
		case "campaign":
			os.Exit(campaignMain(os.Args[2:], os.Stdout, os.Stderr))
		case "token":
			os.Exit(tokenMain(os.Args[2:], os.Stdout, os.Stderr))
		}
	}
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("hotlined", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.ConfigFile, "config", "", "config file (default: the embedded configs/hotline.yaml)")
	fs.StringVar(&o.SIPListen, "sip-listen", "", "SIP address for UDP and TCP (default from config: 127.0.0.1:5060)")
	fs.StringVar(&o.HTTPListen, "http-listen", "", "HTTP API address (default from config: 127.0.0.1:8080)")
	fs.StringVar(&o.DataDir, "data-dir", "", "directory for call records and the journal (default from config: ./data)")
	fs.StringVar(&o.RTPPorts, "rtp-ports", "", "RTP port range LOW-HIGH (default from config: 10000-20000)")
	fs.StringVar(&o.CDRDSN, "cdr-dsn", "", "record store: postgres://USER@HOST/DB (default: SQLite cdr.db in the data dir)")
	fs.StringVar(&o.NodeID, "node-id", "", "this node's id in records, metrics and a cluster (default from config: node_id)")
	fs.BoolVar(&o.Pprof, "pprof", false, "serve Go's profiler at /debug/pprof/ on the HTTP address (for performance work)")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	format := fs.String("log-format", "text", "log format: text or json")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "hotlined: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	log, err := newLogger(stderr, *level, *format)
	if err != nil {
		fmt.Fprintln(stderr, "hotlined:", err)
		return 2
	}
	a, err := newApp(o, log)
	if err != nil {
		fmt.Fprintln(stderr, "hotlined:", err)
		return 1
	}

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	// SIGHUP reloads the configuration (reload.go): validated first, then applied to new
	// calls; live calls go on. (Its default action would end the process, dropping live
	// calls without BYE.)
	hups := make(chan os.Signal, 1)
	signal.Notify(hups, syscall.SIGHUP)
	hupDone := make(chan struct{})
	defer func() { signal.Stop(hups); close(hupDone) }()
	go func() {
		for {
			select {
			case <-hups:
				log.Info("SIGHUP: reloading the configuration", "live_calls", a.calls.Active())
				if _, err := a.reload(context.Background()); err != nil {
					log.Error("SIGHUP: configuration not reloaded", "error", err)
				}
			case <-hupDone:
				return
			}
		}
	}()
	serveCtx, stopServe := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { a.serve(serveCtx); close(served) }()

	sig := <-sigs
	log.Info("signal received: draining", "signal", sig.String(), "drain_timeout", a.cfg.DrainTimeout.D())
	drainCtx, cancelDrain := context.WithTimeout(context.Background(), a.cfg.DrainTimeout.D())
	go func() {
		select {
		case sig := <-sigs:
			log.Warn("second signal: hanging up all calls now", "signal", sig.String())
			cancelDrain()
		case <-drainCtx.Done():
		}
	}()
	a.shutdown(drainCtx)
	cancelDrain()
	stopServe()
	<-served
	log.Info("hotline stopped")
	return 0
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format: want text or json, got %q", format)
}
