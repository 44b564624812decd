package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hotline12345/hotline/callback"
)

const campaignUsage = `usage: hotlined campaign import --file cases.csv [--campaign ID | --name NAME]
        [--script NAME] [--trunk NAME] [--api URL] [--config FILE]
        [--token TOKEN | --token-file FILE]

Imports the cases of a CSV file (a header row names the columns: case_id,
phone, queue, agent, closed_at; Chinese headers such as 工单号 and 电话 work
too) into a new campaign (--name) or an existing one (--campaign) of the
running server. Rows that are bad, outside the trunk's dial plan or
duplicates are reported by line and left out; the rest are imported.
Exit status: 0 all imported, 1 some rows refused or a failure, 2 bad usage.

`

// importChunk is how many targets one request carries.
const importChunk = 10_000

// campaignMain runs `hotlined campaign SUBCOMMAND ARGS`.
func campaignMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "import" {
		fmt.Fprint(stderr, campaignUsage)
		return 2
	}
	fs := flag.NewFlagSet("hotlined campaign import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, campaignUsage); fs.PrintDefaults() }
	var (
		file     = fs.String("file", "", "the CSV file of cases (required)")
		id       = fs.String("campaign", "", "add to this campaign")
		name     = fs.String("name", "", "create a campaign of this name (default: the file's name)")
		script   = fs.String("script", "satisfaction", "survey script of a new campaign")
		trunk    = fs.String("trunk", "", "outbound trunk of a new campaign (default: callback.trunk of the config)")
		apiURL   = fs.String("api", "", "the server's HTTP API (default: http://<http.listen of the config>)")
		confFile = fs.String("config", "", "config file (default: the embedded configs/hotline.yaml)")
		token    = fs.String("token", os.Getenv("HOTLINE_TOKEN"), "an admin token of the API (default $HOTLINE_TOKEN)")
		tokFile  = fs.String("token-file", "", "a file holding the token (default without --token: admin.token in the config's data dir)")
	)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "hotlined campaign import: "+format+"\n", a...)
		return 2
	}
	switch {
	case fs.NArg() > 0:
		return usage("unexpected argument %q", fs.Arg(0))
	case *file == "":
		return usage("--file is required")
	case *id != "" && *name != "":
		return usage("--campaign and --name exclude each other")
	}
	cfg, _, err := loadConfig(options{ConfigFile: *confFile})
	if err != nil {
		fmt.Fprintln(stderr, "hotlined campaign import:", err)
		return 1
	}
	cb := cfg.CallbackSettings()
	if *trunk == "" {
		*trunk = cb.Trunk
	}
	ot, ok := cfg.OutboundTrunk(*trunk)
	if !ok {
		return usage("no outbound trunk %q in the config", *trunk)
	}
	if *apiURL == "" {
		*apiURL = "http://" + cfg.HTTP.Listen
	}
	if *name == "" && *id == "" {
		*name = strings.TrimSuffix(baseName(*file), ".csv")
	}
	if *token == "" {
		if *tokFile == "" {
			*tokFile = filepath.Join(cfg.DataDir, adminTokenFile)
		}
		if *token, err = readAdminToken(*tokFile); err != nil {
			return usage("no API token: give --token, --token-file or $HOTLINE_TOKEN (%v)", err)
		}
	}
	loc, err := time.LoadLocation(cfg.Timezone)
	if err != nil {
		return usage("timezone: %v", err)
	}
	f, err := os.Open(*file)
	if err != nil {
		fmt.Fprintln(stderr, "hotlined campaign import:", err)
		return 1
	}
	defer f.Close()
	start := time.Now()
	// The file is read while the chunks read so far are posted: one goroutine posts, in order.
	imp := importer{api: strings.TrimSuffix(*apiURL, "/"), client: &http.Client{Timeout: 2 * time.Minute}, id: *id, token: *token}
	chunks := make(chan []callback.Target, 2)
	type outcome struct {
		added   int
		refused []importRefusal
		err     error
	}
	posted := make(chan outcome, 1)
	go func() {
		// The first chunk creates the campaign (its id is needed); then two chunks are in
		// flight, so that the server decodes one while it stores the other.
		var (
			mu sync.Mutex
			o  outcome
		)
		add := func(n int, refused []importRefusal, err error) {
			mu.Lock()
			defer mu.Unlock()
			o.added, o.refused = o.added+n, append(o.refused, refused...)
			if o.err == nil {
				o.err = err
			}
		}
		failed := func() bool { mu.Lock(); defer mu.Unlock(); return o.err != nil }
		if imp.id == "" {
			if ts, ok := <-chunks; ok {
				add(imp.post1(*name, *script, *trunk, ts))
			}
		}
		var wg sync.WaitGroup
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ts := range chunks {
					if !failed() { // after a failure, drain: the reader stops at the end
						add(imp.post1(*name, *script, *trunk, ts))
					}
				}
			}()
		}
		wg.Wait()
		posted <- o
	}()
	rows := 0
	bad, err := callback.ScanCSV(f, ot.CompiledDialPlan().Allows, cb.Deadline.D(), loc, importChunk, func(ts []callback.Target) error {
		rows += len(ts)
		chunks <- ts
		return nil
	})
	close(chunks)
	o := <-posted
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", *file, err)
		return 1
	}
	for _, b := range bad {
		fmt.Fprintf(stderr, "%s:%d: %s\n", *file, b.Index, b.Err)
	}
	for _, r := range o.refused {
		fmt.Fprintf(stderr, "%s: case %s: %s\n", *file, r.CaseID, r.Err)
	}
	if o.err != nil {
		fmt.Fprintln(stderr, "hotlined campaign import:", o.err)
		return 1
	}
	if rows == 0 && imp.id == "" {
		fmt.Fprintf(stderr, "%s: no good row: no campaign created\n", *file)
		return 1
	}
	added, refused := o.added, o.refused
	elapsed := time.Since(start)
	fmt.Fprintf(stdout, "campaign %s: %d imported, %d refused (%d bad rows, %d by the server) in %s (%.0f rows/s)\n",
		imp.id, added, len(bad)+len(refused), len(bad), len(refused), elapsed.Round(time.Millisecond),
		float64(rows+len(bad))/max(elapsed.Seconds(), 1e-9))
	if len(bad)+len(refused) > 0 {
		return 1
	}
	return 0
}

func baseName(p string) string {
	if i := strings.LastIndexAny(p, `/\`); i >= 0 {
		return p[i+1:]
	}
	return p
}

// importer posts targets to the API in chunks.
type importer struct {
	api    string
	client *http.Client
	id     string
	token  string
}

type importTarget struct {
	CaseID   string `json:"case_id"`
	Phone    string `json:"phone"`
	Queue    string `json:"queue,omitempty"`
	Agent    string `json:"agent,omitempty"`
	ClosedAt string `json:"closed_at,omitempty"`
}

type importRefusal struct {
	Index  int    `json:"index"`
	CaseID string `json:"case_id"`
	Err    string `json:"error"`
}

// post1 posts one chunk: the first creates the campaign unless one was named.
func (im *importer) post1(name, script, trunk string, chunk []callback.Target) (int, []importRefusal, error) {
	body := make([]importTarget, len(chunk))
	for i, t := range chunk {
		body[i] = importTarget{CaseID: t.CaseID, Phone: t.Phone, Queue: t.Queue, Agent: t.Agent}
		if !t.ClosedAt.IsZero() {
			body[i].ClosedAt = t.ClosedAt.Format(time.RFC3339)
		}
	}
	var res struct {
		ID      string          `json:"id"`
		Added   int             `json:"added"`
		Refused []importRefusal `json:"refused"`
	}
	var err error
	if im.id == "" {
		err = im.post("/api/v1/campaigns", map[string]any{"name": name, "script": script, "trunk": trunk, "targets": body}, http.StatusCreated, &res)
		im.id = res.ID
	} else {
		err = im.post("/api/v1/campaigns/"+im.id+"/targets", map[string]any{"targets": body}, http.StatusOK, &res)
	}
	return res.Added, res.Refused, err
}

func (im *importer) post(path string, body any, want int, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequest(http.MethodPost, im.api+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+im.token)
	resp, err := im.client.Do(req)
	if err != nil {
		return fmt.Errorf("the server's API: %w", err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("POST %s: %s: %s", path, resp.Status, strings.TrimSpace(string(data)))
	}
	if resp.StatusCode != want {
		var e struct {
			Error string `json:"error"`
		}
		json.Unmarshal(data, &e)
		return fmt.Errorf("POST %s: %s: %s", path, resp.Status, e.Error)
	}
	return nil
}
