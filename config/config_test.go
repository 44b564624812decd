package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/netip"
	"os"
	"reflect"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/hotline12345/hotline/configs"
	"github.com/hotline12345/hotline/ivr"
)

// name is the file name passed to Load; every error must start with it verbatim.
const name = "/etc/hotline/test.yaml"

// defaultDoc is the embedded default configuration.
func defaultDoc(t testing.TB) string {
	t.Helper()
	b, err := fs.ReadFile(configs.FS, configs.DefaultName)
	if err != nil {
		t.Fatalf("read embedded %s: %v", configs.DefaultName, err)
	}
	return string(b)
}

// edit replaces the first old in doc by new; old must occur, so that a change
// to the default file breaks the test loudly instead of silently testing nothing.
func edit(t testing.TB, doc, old, new string) string {
	t.Helper()
	if !strings.Contains(doc, old) {
		t.Fatalf("edit: %q not in document", old)
	}
	return strings.Replace(doc, old, new, 1)
}

// lineWith is the 1-based line of the n-th (1-based) line of doc containing s.
func lineWith(t testing.TB, doc, s string, n int) int {
	t.Helper()
	for i, l := range strings.Split(doc, "\n") {
		if strings.Contains(l, s) {
			if n--; n == 0 {
				return i + 1
			}
		}
	}
	t.Fatalf("lineWith: %q (#%d) not in document", s, n)
	return 0
}

// embeddedPrompt reports whether the embedded prompt set has name, the way
// cmd/hotlined checks it (language subdirectory first, then the top level).
func embeddedPrompt(lang string) func(string) bool {
	return func(p string) bool {
		for _, f := range []string{lang + "/" + p + ".wav", p + ".wav"} {
			if _, err := fs.Stat(configs.FS, configs.PromptsDir+"/"+f); err == nil {
				return true
			}
		}
		return false
	}
}

// problems flattens a Load error into its located problems; it fails the test
// if err is neither *Error nor Errors.
func problems(t testing.TB, err error) []*Error {
	t.Helper()
	var es Errors
	if errors.As(err, &es) {
		return es
	}
	var e *Error
	if errors.As(err, &e) {
		return []*Error{e}
	}
	t.Fatalf("error %T %q is neither *config.Error nor config.Errors", err, err)
	return nil
}

func TestDefaultConfig(t *testing.T) {
	doc := defaultDoc(t)
	for _, tc := range []struct {
		desc  string
		known Known
	}{
		{"no prompt check", Known{}},
		{"embedded prompts zh", Known{Prompt: embeddedPrompt("zh")}},
		{"embedded prompts en", Known{Prompt: embeddedPrompt("en")}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			c, err := Load(configs.DefaultName, []byte(doc), tc.known)
			if err != nil {
				t.Fatalf("Load(default): %v", err)
			}
			checkDefault(t, c)
		})
	}
}

func checkDefault(t *testing.T, c *Config) {
	t.Helper()
	if c.NodeID != "hotline-1" {
		t.Errorf("node_id = %q, want hotline-1", c.NodeID)
	}

	// Route 12345 → menu main.
	if len(c.Routes) != 1 || c.Routes[0].Number != "12345" || c.Routes[0].Menu != "main" || c.Routes[0].Queue != "" {
		t.Errorf("routes = %+v, want one route 12345 → menu main", c.Routes)
	} else if got := c.Routes[0].Entry(time.Now()); got != (ivr.Action{Kind: ivr.ActMenu, Target: "main"}) {
		t.Errorf("route 12345 entry = %+v, want menu main", got)
	}

	// Menu main: 1/2/3 → consult/complaint/business, fallback consult, 3 retries.
	main, ok := c.Menus["main"]
	if !ok {
		t.Fatalf("no menu main in %v", slices.Collect(maps.Keys(c.Menus)))
	}
	wantOpts := map[string]string{"1": "consult", "2": "complaint", "3": "business"}
	if len(main.Options) != len(wantOpts) {
		t.Errorf("main options = %v, want keys 1, 2, 3", main.Options)
	}
	for key, queue := range wantOpts {
		a, err := ivr.ParseAction(main.Options[key])
		if err != nil || a != (ivr.Action{Kind: ivr.ActQueue, Target: queue}) {
			t.Errorf("main option %s = %q (%v), want queue %s", key, main.Options[key], err, queue)
		}
	}
	if a, err := ivr.ParseAction(main.Fallback); err != nil || a != (ivr.Action{Kind: ivr.ActQueue, Target: "consult"}) {
		t.Errorf("main fallback = %q (%v), want queue consult", main.Fallback, err)
	}
	if main.MaxRetries != 3 {
		t.Errorf("main max_retries = %d, want 3", main.MaxRetries)
	}
	if main.Timeout.D() != 5*time.Second {
		t.Errorf("main timeout = %s, want 5s", main.Timeout)
	}

	// Agents 1001–1020, password agent<id>, consult for all, complaint and callback 1001–1005,
	// business 1006–1010, complaint 1011–1020.
	if len(c.Agents) != 20 {
		t.Errorf("%d agents, want 20", len(c.Agents))
	}
	for i, a := range c.Agents {
		id := fmt.Sprint(1001 + i)
		if a.ID != id {
			t.Errorf("agents[%d].id = %q, want %s", i, a.ID, id)
		}
		if a.Password != "agent"+id {
			t.Errorf("agent %s password = %q, want agent%s", a.ID, a.Password, id)
		}
		extra, other := "complaint", "business"
		if i >= 5 && i < 10 {
			extra, other = other, extra
		}
		n := 2
		if i < 5 {
			n = 3
			if a.Skills["callback"] < 1 {
				t.Errorf("agent %s skills = %v, want callback too", a.ID, a.Skills)
			}
		}
		if len(a.Skills) != n || a.Skills["consult"] < 1 || a.Skills[extra] < 1 || a.Skills[other] != 0 {
			t.Errorf("agent %s skills = %v, want consult and %s", a.ID, a.Skills, extra)
		}
		for s, l := range a.Skills {
			if l < 1 || l > 10 {
				t.Errorf("agent %s skill %s level %d outside 1-10", a.ID, s, l)
			}
		}
	}

	// Trunk loopback allows 127.0.0.0/8 and delivers 12345.
	if len(c.Trunks) != 1 || c.Trunks[0].Name != "loopback" {
		t.Fatalf("trunks = %+v, want one named loopback", c.Trunks)
	}
	tr := c.Trunks[0]
	if !slices.Equal(tr.DIDs, []string{"12345"}) {
		t.Errorf("loopback dids = %v, want [12345]", tr.DIDs)
	}
	var allowed bool
	for _, s := range tr.Sources {
		p, err := ParsePrefix(s)
		if err != nil {
			t.Errorf("loopback source %q: %v", s, err)
		}
		if p == netip.MustParsePrefix("127.0.0.0/8") {
			allowed = true
		}
	}
	if !allowed {
		t.Errorf("loopback sources = %v, want 127.0.0.0/8", tr.Sources)
	}

	// Defaults.
	if c.DrainTimeout.D() != 60*time.Second || c.DrainTimeout.D() != DefaultDrainTimeout {
		t.Errorf("drain_timeout = %s, want 60s", c.DrainTimeout)
	}
	if c.RTP.Timeout.D() != 30*time.Second || c.RTP.Timeout.D() != DefaultRTPTimeout {
		t.Errorf("rtp.timeout = %s, want 30s", c.RTP.Timeout)
	}
	if low, high, err := ParsePorts(c.RTP.Ports); err != nil || low != 10000 || high != 20000 {
		t.Errorf("rtp.ports = %q → %d-%d, %v; want 10000-20000", c.RTP.Ports, low, high, err)
	}
	if want := []string{"business", "callback", "complaint", "consult"}; !slices.Equal(slices.Sorted(maps.Keys(c.Queues)), want) {
		t.Errorf("queues = %v, want %v", slices.Sorted(maps.Keys(c.Queues)), want)
	}
	for qn, q := range c.Queues {
		if q.ServiceLevel.D() != 15*time.Second || q.ServiceLevel.D() != DefaultServiceLevel {
			t.Errorf("queue %s service_level = %s, want 15s", qn, q.ServiceLevel)
		}
		wantWait := 10 * time.Minute
		if qn == "callback" {
			wantWait = 24 * time.Hour // tasks wait for an agent up to the case's deadline
		}
		if q.MaxWait.D() != wantWait {
			t.Errorf("queue %s max_wait = %s, want %s", qn, q.MaxWait, wantWait)
		}
		if q.MusicOnHold != DefaultMusicOnHold || q.JoinPrompt != DefaultJoinPrompt || q.ExitPrompt != DefaultExitPrompt {
			t.Errorf("queue %s prompts = %q/%q/%q, want defaults", qn, q.MusicOnHold, q.JoinPrompt, q.ExitPrompt)
		}
		if q.Name == "" {
			t.Errorf("queue %s has no display name", qn)
		}
	}
	if c.SIP.Listen != DefaultSIPListen || c.HTTP.Listen != DefaultHTTPListen || c.SIP.UserAgent != DefaultUserAgent {
		t.Errorf("listeners = %q %q %q", c.SIP.Listen, c.HTTP.Listen, c.SIP.UserAgent)
	}
	if c.Prompts.Language != "zh" || c.Prompts.Dir != "" || c.DataDir != "./data" {
		t.Errorf("prompts = %+v, data_dir = %q", c.Prompts, c.DataDir)
	}
	checkDefaultCallback(t, c)
}

// checkDefaultCallback checks the 云回访 contracts of the default config (DESIGN.md).
func checkDefaultCallback(t *testing.T, c *Config) {
	t.Helper()
	// Outbound trunk loopback-out → sip:127.0.0.1:5090, caller id 12345, mainland mobiles only.
	out, ok := c.OutboundTrunk("loopback-out")
	if !ok || len(c.OutboundTrunks) != 2 {
		t.Fatalf("outbound_trunks = %+v, want loopback-out and departments", c.OutboundTrunks)
	}
	if g, err := out.ParsedGateway(); err != nil || g.HostPort() != "127.0.0.1:5090" || out.Gateway != "sip:127.0.0.1:5090" {
		t.Errorf("loopback-out gateway %q → %+v, %v; want sip:127.0.0.1:5090", out.Gateway, g, err)
	}
	if out.CallerID != "12345" || out.Transport != "udp" || out.MaxChannels != 30 || out.MaxCPS != 10 || out.RingTimeout.D() != 30*time.Second {
		t.Errorf("loopback-out = %+v", out)
	}
	plan := out.CompiledDialPlan()
	for number, want := range map[string]bool{
		"13900000001": true, "19912345678": true, "13000000000": true,
		"12345": false, "12900000001": false, "1390000000": false, "139000000011": false,
		"+8613900000001": false, "013900000001": false, "110": false, "": false, "1390000000a": false,
	} {
		if got := plan.Allows(number); got != want {
			t.Errorf("loopback-out dial plan allows %q = %v, want %v", number, got, want)
		}
	}

	// Survey satisfaction: 1 satisfied, 2 basically satisfied, 3 dissatisfied, 0 → callback.
	sv, ok := c.Surveys["satisfaction"]
	if !ok {
		t.Fatalf("no survey satisfaction in %v", slices.Collect(maps.Keys(c.Surveys)))
	}
	want := map[string]string{"1": ivr.Satisfied, "2": ivr.BasicallySatisfied, "3": ivr.Dissatisfied}
	if len(sv.Questions) != 1 || sv.Questions[0].Name != "service" || !maps.Equal(sv.Questions[0].Answers, want) ||
		!slices.Equal(sv.Questions[0].Prompts, []string{"survey_question"}) {
		t.Errorf("satisfaction questions = %+v", sv.Questions)
	}
	if sv.SatisfactionQuestion() != 0 || sv.AgentDigit != "0" || sv.AgentQueue != "callback" ||
		!slices.Equal(sv.Intro, []string{"survey_greeting"}) || !slices.Equal(sv.Thanks, []string{"survey_thanks"}) {
		t.Errorf("satisfaction = %+v", sv)
	}
	if sv.Timeout.D() != ivr.DefaultSurveyTimeout || sv.MaxRetries != ivr.DefaultSurveyMaxRetries {
		t.Errorf("satisfaction timeout/max_retries = %s/%d, want the defaults", sv.Timeout, sv.MaxRetries)
	}

	// The callback section writes out the defaults.
	if c.Callback == nil {
		t.Fatal("no callback section")
	}
	cb := c.CallbackSettings()
	wantCB := defaultCallback()
	wantCB.Trunk = "loopback-out"
	if !reflect.DeepEqual(cb, wantCB) {
		t.Errorf("callback = %+v\nwant %+v", cb, wantCB)
	}
	if q := c.Queues["callback"]; q.Name != "回访" || q.Callback != nil {
		t.Errorf("queue callback = %+v, want 回访 without a callback offer", q)
	}
	// Queue consult offers a callback after 2 min of estimated wait, with key 1.
	if qc := c.Queues["consult"].Callback; qc == nil || qc.After.D() != 2*time.Minute || qc.Digit != "1" {
		t.Errorf("queue consult callback = %+v, want after 2m, digit 1", qc)
	}
	for _, qn := range []string{"complaint", "business"} {
		if qc := c.Queues[qn].Callback; qc != nil {
			t.Errorf("queue %s callback = %+v, want none", qn, qc)
		}
	}
}

// defaultCallback is the callback section made of the default constants.
func defaultCallback() Callback {
	yes := true
	return Callback{
		Queue:         DefaultCallbackQueue,
		Deadline:      ivr.Duration(DefaultCallbackDeadline),
		AtRisk:        ivr.Duration(DefaultCallbackAtRisk),
		Window:        Window{From: DefaultCallbackWindowFrom, To: DefaultCallbackWindowTo},
		MaxAttempts:   DefaultCallbackMaxAttempts,
		RingTimeout:   ivr.Duration(DefaultCallbackRingTimeout),
		MaxConcurrent: DefaultCallbackMaxConcurrent,
		MaxCPS:        DefaultCallbackMaxCPS,
		Retry: Retry{
			Busy:        ivr.Duration(DefaultCallbackRetryBusy),
			NoAnswer:    ivr.Duration(DefaultCallbackRetryNoAnswer),
			Failed:      ivr.Duration(DefaultCallbackRetryFailed),
			Interrupted: ivr.Duration(DefaultCallbackRetryInterrupted),
		},
		FallbackDissatisfied: &yes,
		DoNotCall:            []string{},
	}
}

// TestDefaultsApplied loads a minimal config and checks every default constant.
func TestDefaultsApplied(t *testing.T) {
	doc := `
trunks:
  - {name: t, sources: [10.0.0.1], dids: ["12345"]}
routes:
  - {number: "12345", queue: q}
queues:
  q: {}
`
	c, err := Load(name, []byte(doc), Known{})
	if err != nil {
		t.Fatal(err)
	}
	q := c.Queues["q"]
	for _, d := range []struct {
		field     string
		got, want any
	}{
		{"sip.listen", c.SIP.Listen, DefaultSIPListen},
		{"sip.user_agent", c.SIP.UserAgent, DefaultUserAgent},
		{"http.listen", c.HTTP.Listen, DefaultHTTPListen},
		{"data_dir", c.DataDir, DefaultDataDir},
		{"rtp.ports", c.RTP.Ports, DefaultRTPPorts},
		{"rtp.timeout", c.RTP.Timeout.D(), DefaultRTPTimeout},
		{"drain_timeout", c.DrainTimeout.D(), DefaultDrainTimeout},
		{"prompts.language", c.Prompts.Language, DefaultLanguage},
		{"queues.q.max_wait", q.MaxWait.D(), DefaultMaxWait},
		{"queues.q.music_on_hold", q.MusicOnHold, DefaultMusicOnHold},
		{"queues.q.join_prompt", q.JoinPrompt, DefaultJoinPrompt},
		{"queues.q.exit_prompt", q.ExitPrompt, DefaultExitPrompt},
		{"queues.q.service_level", q.ServiceLevel.D(), DefaultServiceLevel},
	} {
		if d.got != d.want {
			t.Errorf("%s = %v, want %v", d.field, d.got, d.want)
		}
	}
	if c.NodeID == "" {
		t.Error("node_id not defaulted to the host name")
	}
	if len(c.Trunks[0].Codecs) != 0 {
		t.Errorf("codecs = %v: Load is not expected to fill them in", c.Trunks[0].Codecs)
	}
}

// want is one expected problem. line is computed from the document; problem
// is matched exactly unless contains is set on the case (go-yaml's wording).
type want struct {
	line    int
	field   string
	problem string
}

type errCase struct {
	desc     string
	doc      string
	known    Known
	want     []want
	contains bool // match problem as a substring (decoder messages)
	// lineAtLeast: the problem may be on want.line or later, and its field
	// is not checked (where exactly a fix reports it is open).
	lineAtLeast bool
	bug         string // known bug: skip with this note while the case fails
}

// errorCases builds the error table from the default document. It is shared
// with FuzzLoad as seed corpus.
func errorCases(t testing.TB) []errCase {
	base := defaultDoc(t)
	ed := func(old, new string) string { return edit(t, base, old, new) }
	ln := func(doc, s string) int { return lineWith(t, doc, s, 1) }

	var cs []errCase
	add := func(c errCase) { cs = append(cs, c) }

	d := ed("node_id: hotline-1\n", "node_id: hotline-1\nbogus: 1\n")
	add(errCase{desc: "unknown top-level key", doc: d, contains: true,
		want: []want{{ln(d, "bogus:"), "bogus", `unknown field "bogus"`}}})

	d = ed("    codecs: [PCMA, PCMU]", "    codex: [PCMA, PCMU]")
	add(errCase{desc: "unknown nested key in a trunk", doc: d, contains: true,
		want: []want{{ln(d, "codex:"), "trunks[0].codex", `unknown field "codex"`}}})

	d = ed("    name: 咨询\n", "    name: 咨询\n    maxwait: 5m\n")
	add(errCase{desc: "unknown nested key in a queue", doc: d, contains: true,
		want: []want{{ln(d, "maxwait:"), "queues.consult.maxwait", `unknown field "maxwait"`}}})

	d = ed(`{id: "1004", name`, `{id: "1004", nmae`)
	add(errCase{desc: "unknown key in a flow mapping", doc: d, contains: true,
		want: []want{{ln(d, "nmae:"), "agents[3].nmae", `unknown field "nmae"`}}})

	d = ed("  user_agent: hotline", "  user_agent: a: b")
	add(errCase{desc: "bad YAML syntax", doc: d, contains: true,
		want: []want{{ln(d, "user_agent: a: b"), "", "mapping value is not allowed"}}})

	d = ed("node_id: hotline-1\n", "node_id: hotline-1\nnode_id: hotline-2\n")
	add(errCase{desc: "duplicate key", doc: d, contains: true,
		want: []want{{ln(d, "node_id: hotline-2"), "node_id", `"node_id" already defined`}}})

	d = ed("auth_algorithms: [MD5]", "auth_algorithms: [SHA-256, SHA-512-256]")
	add(errCase{desc: "unknown digest algorithm", doc: d,
		want: []want{{ln(d, "auth_algorithms:"), "sip.auth_algorithms[1]", `unknown digest algorithm "SHA-512-256" (SHA-256, MD5)`}}})

	d = ed("    source_users: 30", "    source_users: -5")
	add(errCase{desc: "negative lockout threshold", doc: d,
		want: []want{{ln(d, "source_users: -5"), "sip.lockout.source_users", "want a count, or -1 to turn the per-source lockout off"}}})

	d = ed("invite: {rate: 20, burst: 40}", "invite: {rate: 20, burst: -1}")
	add(errCase{desc: "rate limit without a burst", doc: d,
		want: []want{{ln(d, "invite: {rate: 20, burst: -1}"), "sip.rate_limits.invite.burst", "must be at least 1"}}})

	d = ed("    idle_timeout: 5m", "    idle_timeout: -3s")
	add(errCase{desc: "negative TCP idle timeout", doc: d,
		want: []want{{ln(d, "idle_timeout: -3s"), "sip.tcp.idle_timeout", "must not be negative (-1s: never close idle connections)"}}})

	d = ed("max_calls: 5000", "max_calls: many")
	add(errCase{desc: "wrong type", doc: d,
		want: []want{{ln(d, "max_calls: many"), "trunks[0].max_calls", `want a number, got "many"`}}})

	d = ed("    # inband_dtmf: false", "    inband_dtmf: sometimes")
	add(errCase{desc: "trunk inband_dtmf not a bool", doc: d, contains: true,
		want: []want{{ln(d, "inband_dtmf:"), "trunks[0].inband_dtmf", "sometimes"}}})

	d = ed("max_calls: 5000", "max_calls:\n      many")
	add(errCase{desc: "wrong type, value on the next line", doc: d,
		want: []want{{ln(d, "max_calls:"), "trunks[0].max_calls", `want a number, got "many"`}}})

	d = ed("    sources: [127.0.0.0/8]", "    sources: 127.0.0.0/8")
	add(errCase{desc: "scalar where a list belongs", doc: d,
		want: []want{{ln(d, "sources: 127"), "trunks[0].sources", `want a list, got "127.0.0.0/8"`}}})

	d = ed("consult: 6, complaint: 7", "consult: 6, complaint: high")
	add(errCase{desc: "wrong type in a flow mapping", doc: d,
		want: []want{{ln(d, "complaint: high"), "agents[4].skills.complaint", `want a number, got "high"`}}})

	d = ed("  timeout: 30s", "  timeout: soon")
	add(errCase{desc: "bad duration", doc: d, contains: true,
		want: []want{{ln(d, "timeout: soon"), "rtp.timeout", `bad duration "soon"`}}})

	d = ed("  timeout: 30s", "  timeout:\n    soon")
	d = edit(t, d, "    name: 投诉举报\n    max_wait: 10m\n", "    name: 投诉举报\n    max_wait: {m: 10}\n")
	d = edit(t, d, "  closed:\n", "  case.entry:\n    timeout: [5s]\n  closed:\n")
	add(errCase{desc: "bad durations, all reported", doc: d,
		want: []want{
			{ln(d, "  timeout:"), "rtp.timeout", `bad duration "soon" (want e.g. 5s, 1m30s, 500ms)`},
			{ln(d, "timeout: [5s]"), "menus.case.entry.timeout", "want a duration such as 30s, got a list"},
			{ln(d, "max_wait: {m: 10}"), "queues.complaint.max_wait", "want a duration such as 30s, got a mapping"},
		}})

	d = ed("  timeout: 30s", "  timeout: &t soon")
	d = edit(t, d, "    timeout: 1s", "    timeout: *t")
	add(errCase{desc: "bad duration through an alias", doc: d, contains: true,
		want: []want{
			{ln(d, "timeout: &t soon"), "rtp.timeout", `bad duration "soon"`},
			{ln(d, "timeout: *t"), "menus.closed.timeout", `bad duration "soon"`},
		}})

	d = ed("    sources: [127.0.0.0/8]", "    sources:\n      - 127.0.0.0/8\n      - 10.0.0.0/33")
	add(errCase{desc: "bad CIDR", doc: d,
		want: []want{{ln(d, "10.0.0.0/33"), "trunks[0].sources[1]", `want an address or CIDR, got "10.0.0.0/33"`}}})

	d = ed("codecs: [PCMA, PCMU]", "codecs: [PCMA, G729]")
	add(errCase{desc: "bad codec", doc: d,
		want: []want{{ln(d, "G729"), "trunks[0].codecs[1]", `unsupported codec "G729" (PCMA, PCMU)`}}})

	d = ed("ports: 10000-20000", "ports: 20000-10000")
	add(errCase{desc: "rtp ports reversed", doc: d,
		want: []want{{ln(d, "ports:"), "rtp.ports", "range 20000-10000: LOW must be below HIGH"}}})

	d = ed("ports: 10000-20000", "ports: abc")
	add(errCase{desc: "rtp ports not a range", doc: d,
		want: []want{{ln(d, "ports:"), "rtp.ports", `want LOW-HIGH, got "abc"`}}})

	d = ed("ports: 10000-20000", "ports: 10001-20001")
	add(errCase{desc: "rtp ports odd low", doc: d, contains: true,
		want: []want{{ln(d, "ports:"), "rtp.ports", "LOW must be even"}}})

	d = ed("ports: 10000-20000", "ports:\n    10001-20001")
	add(errCase{desc: "rtp ports odd low, value on the next line", doc: d, contains: true,
		want: []want{{ln(d, "ports:"), "rtp.ports", "LOW must be even"}}})

	d = ed(`"2": queue complaint`, `"2": queue nosuch`)
	add(errCase{desc: "menu option to an unknown queue", doc: d,
		want: []want{{ln(d, "queue nosuch"), "menus.main.options.2", `unknown queue "nosuch"`}}})

	d = ed(`"3": queue business`, `"12": queue business`)
	add(errCase{desc: "menu option key 12", doc: d,
		want: []want{{ln(d, `"12":`), "menus.main.options.12", `bad key "12" (want one of 0-9, * and #)`}}})

	d = ed(`"3": queue business`, `"*": menu nosuch`)
	add(errCase{desc: "menu option * to an unknown menu", doc: d,
		want: []want{{ln(d, `"*":`), "menus.main.options.*", `unknown menu "nosuch"`}}})

	d = ed(`"3": queue business`, `"#": play bad!prompt`)
	add(errCase{desc: "menu option # with a bad action", doc: d, contains: true,
		want: []want{{ln(d, `"#":`), "menus.main.options.#", `"play bad!prompt"`}}})

	d = ed("    menu: main ", "    menu: nosuch ")
	add(errCase{desc: "route to an unknown menu", doc: d,
		want: []want{{ln(d, "menu: nosuch"), "routes[0].menu", `unknown menu "nosuch"`}}})

	d = ed(`dids: ["12345"]`, `dids: ["12345", "12346"]`)
	add(errCase{desc: "DID with no route", doc: d,
		want: []want{{ln(d, "dids:"), "trunks[0].dids[1]", `number "12346" has no route (add one under routes)`}}})

	d = ed(`dids: ["12345"]`, `dids: ["12345", "12346"]`)
	d = edit(t, d, "routes:\n  - number: \"12345\"\n    menu: main", `routes: [{number: "12345", menu: main}]`+"\n   ")
	add(errCase{desc: "DID with no route, flow-style routes", doc: d,
		want: []want{{ln(d, "dids:"), "trunks[0].dids[1]", `number "12346" has no route (add one under routes)`}}})

	d = ed(`    dids: ["12345"]`, "    dids:\n      - \"12345\"\n      - \"12346\"")
	add(errCase{desc: "DID with no route, block-style dids", doc: d,
		want: []want{{ln(d, `- "12346"`), "trunks[0].dids[1]", `number "12346" has no route (add one under routes)`}}})

	d = ed("\nroutes:", "  - name: loopback\n    sources: [192.0.2.1]\n    dids: [\"12345\"]\n\nroutes:")
	add(errCase{desc: "duplicate trunk names", doc: d,
		want: []want{{lineWith(t, d, "name: loopback", 2), "trunks[1].name", `duplicate trunk "loopback"`}}})

	d = ed("consult: 3, complaint: 9", "consult: 3, complaint: 11")
	add(errCase{desc: "agent skill level 11", doc: d,
		want: []want{{ln(d, "complaint: 11"), "agents[2].skills.complaint", "level 11 outside 1-10"}}})

	d = ed(`{id: "1008", name: 坐席1008, password: agent1008, skills: {consult: 4, business: 7}}`,
		"id: \"1008\"\n    name: 坐席1008\n    password: agent1008\n    skills:\n      consult: 0\n      business: 7")
	d = edit(t, d, "\n    name: 坐席1008", "\n  - name: 坐席1008")
	d = edit(t, d, "  - id: \"1008\"\n  - name", "  - id: \"1008\"\n    name")
	add(errCase{desc: "agent skill level 0, block style", doc: d,
		want: []want{{ln(d, "consult: 0"), "agents[7].skills.consult", "level 0 outside 1-10"}}})

	d = ed("    prompts: [closed]", "    prompts: [closed, nosuch]")
	add(errCase{desc: "unknown prompt in a menu", doc: d, known: Known{Prompt: embeddedPrompt("zh")},
		want: []want{{ln(d, "[closed, nosuch]"), "menus.closed.prompts[1]", `unknown prompt "nosuch"`}}})
	add(errCase{desc: "unknown prompt in a menu, no check without Known.Prompt", doc: d})

	d = ed("    name: 营商环境专席\n", "    name: 营商环境专席\n    join_prompt: nosuch\n")
	add(errCase{desc: "unknown queue prompt", doc: d, known: Known{Prompt: embeddedPrompt("zh")},
		want: []want{{ln(d, "join_prompt: nosuch"), "queues.business.join_prompt", `unknown prompt "nosuch"`}}})

	noMoh := func(p string) bool { return p != DefaultMusicOnHold && embeddedPrompt("zh")(p) }
	add(errCase{desc: "unknown default queue prompt", doc: base, known: Known{Prompt: noMoh},
		want: []want{
			{ln(base, "  consult:"), "queues.consult.music_on_hold", `unknown prompt "moh"`},
			{ln(base, "  complaint:"), "queues.complaint.music_on_hold", `unknown prompt "moh"`},
			{ln(base, "  business:"), "queues.business.music_on_hold", `unknown prompt "moh"`},
			{ln(base, "  callback:  "), "queues.callback.music_on_hold", `unknown prompt "moh"`},
		}})

	d = ed("  timeout: 30s", "  timeout: -5s")
	add(errCase{desc: "negative rtp.timeout", doc: d,
		want: []want{{ln(d, "timeout: -5s"), "rtp.timeout", "must not be negative"}}})
	d = ed("  # latch_probation: 3", "  latch_probation: 101")
	add(errCase{desc: "rtp.latch_probation too high", doc: d,
		want: []want{{ln(d, "latch_probation: 101"), "rtp.latch_probation", "must be between 0 (default) and 100"}}})
	d = ed("  # latch_silence: 2s", "  latch_silence: -1s")
	add(errCase{desc: "negative rtp.latch_silence", doc: d,
		want: []want{{ln(d, "latch_silence: -1s"), "rtp.latch_silence", "must not be negative"}}})
	d = ed("timezone: Asia/Shanghai", "timezone: Mars/Olympus")
	add(errCase{desc: "unknown timezone", doc: d,
		want: []want{{ln(d, "timezone: Mars"), "timezone", `unknown time zone "Mars/Olympus"`}}})
	d = ed("drain_timeout: 60s", "drain_timeout: -1m")
	add(errCase{desc: "negative drain_timeout", doc: d,
		want: []want{{ln(d, "drain_timeout:"), "drain_timeout", "must not be negative"}}})
	d = ed("drain_timeout: 60s", "memory_limit: 2 GB\ndrain_timeout: 60s")
	add(errCase{desc: "memory_limit unit", doc: d,
		want: []want{{ln(d, "memory_limit:"), "memory_limit", `want a size such as 512MiB or 2GiB (units B, KiB, MiB, GiB, TiB), got "2 GB"`}}})
	d = ed("drain_timeout: 60s", "memory_limit: 16MiB\ndrain_timeout: 60s")
	add(errCase{desc: "memory_limit too small", doc: d,
		want: []want{{ln(d, "memory_limit:"), "memory_limit", `"16MiB" is below 64MiB: the server would spend its time collecting garbage`}}})
	d = ed("    timeout: 5s", "    timeout: -5s")
	add(errCase{desc: "negative menu timeout", doc: d,
		want: []want{{ln(d, "timeout: -5s"), "menus.main.timeout", "must not be negative (0 = default 5s)"}}})
	d = ed("    name: 投诉举报\n    max_wait: 10m\n", "    name: 投诉举报\n    max_wait: -10m\n")
	add(errCase{desc: "negative queue max_wait", doc: d,
		want: []want{{ln(d, "max_wait: -10m"), "queues.complaint.max_wait", "must not be negative"}}})
	d = ed("    service_level: 15s ", "    service_level: -15s ")
	add(errCase{desc: "negative queue service_level", doc: d,
		want: []want{{ln(d, "service_level:"), "queues.consult.service_level", "must not be negative"}}})
	d = ed("    max_calls: 5000", "    max_calls: 5000\n    answer_delay: -1s")
	add(errCase{desc: "negative trunk answer_delay", doc: d,
		want: []want{{ln(d, "answer_delay:"), "trunks[0].answer_delay", "must be between 0 and 1m"}}})

	// Several problems, written so that path order (agents, menus, routes,
	// rtp, trunks) differs from line order.
	d = ed("ports: 10000-20000", "ports: 1-2")
	d = edit(t, d, "codecs: [PCMA, PCMU]", "codecs: [G722, PCMU]")
	d = edit(t, d, "    menu: main ", "    menu: nosuch ")
	d = edit(t, d, `"2": queue complaint`, `"2": queue nosuch`)
	d = edit(t, d, "consult: 7, business: 6}", "consult: 70, business: 6}")
	d = edit(t, d, "drain_timeout: 60s", "drain_timeout: -60s")
	add(errCase{desc: "multiple errors sorted by line", doc: d,
		want: []want{
			{ln(d, "ports: 1-2"), "rtp.ports", "range 1-2 must lie within 1024-65535"},
			{ln(d, "drain_timeout:"), "drain_timeout", "must not be negative"},
			{ln(d, "G722"), "trunks[0].codecs[0]", `unsupported codec "G722" (PCMA, PCMU)`},
			{ln(d, "menu: nosuch"), "routes[0].menu", `unknown menu "nosuch"`},
			{ln(d, "queue nosuch"), "menus.main.options.2", `unknown queue "nosuch"`},
			{ln(d, "consult: 70"), "agents[9].skills.consult", "level 70 outside 1-10"},
		}})

	d = ed("  closed:\n", "  case.entry:\n    options: {\"1\": queue nosuch}\n  closed:\n")
	add(errCase{desc: "problem in a menu whose name has a dot", doc: d,
		want: []want{{ln(d, "queue nosuch"), "menus.case.entry.options.1", `unknown queue "nosuch"`}}})

	d = ed("  closed:\n", "  case:\n    prompts: [x]\n  case.entry:\n    options: {\"1\": queue nosuch}\n  closed:\n")
	add(errCase{desc: "problem in a menu whose name has a dot, next to a menu named like its prefix", doc: d,
		want: []want{{ln(d, "queue nosuch"), "menus.case.entry.options.1", `unknown queue "nosuch"`}}})

	d = base + "---\nbogus: 1\n"
	add(errCase{desc: "second YAML document", doc: d, contains: true,
		want: []want{{ln(d, "---"), "", "a second YAML document is not supported"}}})

	d = base + "---\n"
	add(errCase{desc: "second, empty YAML document", doc: d, contains: true,
		want: []want{{ln(d, "---"), "", "a second YAML document is not supported"}}})

	add(errCase{desc: "duplicate nested key", doc: ed("    max_calls: 5000", "    max_calls: 5000\n    max_calls: 6000"), contains: true,
		want: []want{{ln(ed("    max_calls: 5000", "    max_calls: 5000\n    max_calls: 6000"), "max_calls: 6000"), "trunks[0].max_calls", `"max_calls" already defined on line`}}})

	add(errCase{desc: "top level is a list", doc: "- a\n- b\n", contains: true,
		want: []want{{1, "", "want a mapping (key: value), got a list"}}})

	return append(cs, callbackErrorCases(t, base)...)
}

func TestLoadErrors(t *testing.T) {
	for _, tc := range errorCases(t) {
		t.Run(tc.desc, func(t *testing.T) {
			c, err := Load(name, []byte(tc.doc), tc.known)
			if len(tc.want) == 0 {
				if err != nil || c == nil {
					t.Errorf("Load = %v, want success", err)
				}
				return
			}
			if err == nil {
				fail(t, tc, "Load succeeded, want %d problems", len(tc.want))
				return
			}
			if c != nil {
				t.Errorf("Load returned a config with an error")
			}
			got := problems(t, err)
			if mismatch := compare(tc, got); mismatch != "" {
				fail(t, tc, "%s\ngot:\n%v", mismatch, err)
				return
			}
			// The message is exactly `file:line: field: problem`, one per line.
			var lines []string
			for _, e := range got {
				loc := name
				if e.Line > 0 {
					loc += fmt.Sprintf(":%d", e.Line)
				}
				if e.Field != "" {
					loc += ": " + e.Field
				}
				lines = append(lines, loc+": "+e.Problem)
			}
			if err.Error() != strings.Join(lines, "\n") {
				t.Errorf("error text:\n%s\nwant:\n%s", err, strings.Join(lines, "\n"))
			}
			if tc.bug != "" {
				t.Logf("known bug %q seems fixed: drop the bug note", tc.bug)
			}
		})
	}
}

// fail reports a mismatch: an error for a sound case, a skip for a known bug.
func fail(t *testing.T, tc errCase, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if tc.bug != "" {
		t.Skipf("BUG: %s\n%s", tc.bug, msg)
	}
	t.Error(msg)
}

func compare(tc errCase, got []*Error) string {
	if len(got) != len(tc.want) {
		return fmt.Sprintf("%d problems, want %d", len(got), len(tc.want))
	}
	var b strings.Builder
	for i, w := range tc.want {
		e := got[i]
		okProblem := e.Problem == w.problem || tc.contains && strings.Contains(e.Problem, w.problem)
		okLine := e.Line == w.line && e.Field == w.field || tc.lineAtLeast && e.Line >= w.line
		if e.File != name || !okLine || !okProblem {
			fmt.Fprintf(&b, "problem %d = %s:%d: %s: %s\n   want %s:%d: %s: %s\n",
				i, e.File, e.Line, e.Field, e.Problem, name, w.line, w.field, w.problem)
		}
	}
	return b.String()
}

// TestErrorOrderDeterministic loads a document with several problems that share
// a path and a line; the message must not change between runs.
func TestErrorOrderDeterministic(t *testing.T) {
	doc := edit(t, defaultDoc(t), `dids: ["12345"]`, `dids: ["12345", "1", "2", "3", "4", "5"]`)
	_, err := Load(name, []byte(doc), Known{})
	if err == nil {
		t.Fatal("Load succeeded with unrouted DIDs")
	}
	first := err.Error()
	for range 50 {
		_, err := Load(name, []byte(doc), Known{})
		if err.Error() != first {
			t.Fatalf("error order changed between runs:\n%s\n---\n%s", first, err)
		}
	}
	var fields []string
	for _, p := range problems(t, err) {
		fields = append(fields, p.Field)
	}
	if want := []string{"trunks[0].dids[1]", "trunks[0].dids[2]", "trunks[0].dids[3]", "trunks[0].dids[4]", "trunks[0].dids[5]"}; !slices.Equal(fields, want) {
		t.Errorf("fields = %v, want %v", fields, want)
	}
}

func TestCompareFields(t *testing.T) {
	sorted := []string{"", "a", "a.b", "a[2]", "a[10]", "a[10].b", "b", "trunks[0].dids[9]", "trunks[0].dids[10]", "trunks[2]", "trunks[10]"}
	for i := range sorted {
		for j := range sorted {
			got := compareFields(sorted[i], sorted[j])
			if (i < j) != (got < 0) || (i == j) != (got == 0) {
				t.Errorf("compareFields(%q, %q) = %d", sorted[i], sorted[j], got)
			}
		}
	}
}

// go-yaml v1.19.2 (the newest release) dereferences nil when a tagged scalar
// stands where a sequence is expected: goccy/go-yaml#735, fixed upstream by
// PR #862 but not released. Load rejects tags before decoding, and recovers
// from a decoder panic as a backstop.

// loadNoPanic is Load with a panic turned into a return value and its stack.
func loadNoPanic(data []byte, known Known) (c *Config, err error, panicked any, stack string) {
	defer func() {
		if r := recover(); r != nil {
			panicked, stack = r, string(debug.Stack())
		}
	}()
	c, err = Load(name, data, known)
	return
}

var tagPanicDocs = []string{
	"agents: ! 0\n",
	"agents: !!str 0\n",
	"agents:\n  ! 0000000000",
	"trunks: !x loopback\n",
	"trunks:\n  - name: t\n    sources: !!str 10.0.0.1\n",
}

// tagPanicWant is the first problem for each of tagPanicDocs: at the key's line.
var tagPanicWant = []string{
	name + ":1: agents: YAML tags are not supported",
	name + ":1: agents: YAML tags are not supported",
	name + ":1: agents: YAML tags are not supported",
	name + ":1: trunks: YAML tags are not supported",
	name + ":3: trunks[0].sources: YAML tags are not supported",
}

// TestLoadTaggedScalarForList: a YAML tag on a scalar where a list belongs
// must give `file:line: ...`, not crash start-up.
func TestLoadTaggedScalarForList(t *testing.T) {
	for i, doc := range tagPanicDocs {
		_, err, p, stack := loadNoPanic([]byte(doc), Known{})
		if p != nil {
			t.Errorf("Load(%q) panicked: %v\n%s", doc, p, stack)
			continue
		}
		if err == nil {
			t.Errorf("Load(%q) succeeded", doc)
			continue
		}
		ps := problems(t, err)
		for _, e := range ps {
			if e.File != name || e.Line < 1 {
				t.Errorf("Load(%q) = %q: want %s:LINE: ...", doc, err, name)
			}
		}
		if got := ps[0].Error(); got != tagPanicWant[i] {
			t.Errorf("Load(%q) = %q, want %q", doc, got, tagPanicWant[i])
		}
	}
	// Tags are rejected anywhere, not only where they crash the decoder.
	doc := edit(t, defaultDoc(t), "max_calls: 5000", "max_calls: !!int 5000")
	_, err := Load(name, []byte(doc), Known{})
	want := fmt.Sprintf("%s:%d: trunks[0].max_calls: YAML tags are not supported", name, lineWith(t, doc, "!!int", 1))
	if err == nil || err.Error() != want {
		t.Errorf("Load(tag on max_calls) = %v, want %s", err, want)
	}
}

// TestSafely: the backstop turns a panic in go-yaml into an error.
func TestSafely(t *testing.T) {
	err := safely(func() error { panic("boom") })
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("safely(panic) = %v, want an error naming the panic", err)
	}
	if err := safely(func() error { return nil }); err != nil {
		t.Errorf("safely(nil) = %v", err)
	}
}

// TestEmptyFile: an empty or comment-only file must say something better than
// "EOF" (e.g. the validation problems of an empty document: no trunks).
func TestEmptyFile(t *testing.T) {
	for _, doc := range []string{"", "\n", "# nothing here\n"} {
		_, err := Load(name, []byte(doc), Known{})
		if err == nil {
			t.Fatalf("Load(%q) succeeded", doc)
		}
		for _, p := range problems(t, err) {
			if p.File != name {
				t.Errorf("Load(%q): file %q, want %q", doc, p.File, name)
			}
		}
		if want := name + ": trunks: at least one trunk is needed to receive calls"; err.Error() != want {
			t.Errorf("Load(%q) = %q, want %q", doc, err, want)
		}
	}
}

func TestErrorString(t *testing.T) {
	for _, tc := range []struct {
		e    Error
		want string
	}{
		{Error{File: "a.yaml", Line: 3, Field: "rtp.ports", Problem: "bad"}, "a.yaml:3: rtp.ports: bad"},
		{Error{File: "a.yaml", Line: 3, Problem: "syntax"}, "a.yaml:3: syntax"},
		{Error{File: "a.yaml", Field: "trunks", Problem: "required"}, "a.yaml: trunks: required"},
		{Error{File: "a.yaml", Problem: "EOF"}, "a.yaml: EOF"},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("%+v.Error() = %q, want %q", tc.e, got, tc.want)
		}
	}
	es := Errors{{File: "f", Line: 1, Field: "a", Problem: "x"}, {File: "f", Line: 2, Field: "b", Problem: "y"}}
	if got, want := es.Error(), "f:1: a: x\nf:2: b: y"; got != want {
		t.Errorf("Errors.Error() = %q, want %q", got, want)
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/hotline.yaml"
	doc := edit(t, defaultDoc(t), "codecs: [PCMA, PCMU]", "codecs: [PCMA, G729]")
	if err := writeFile(path, doc); err != nil {
		t.Fatal(err)
	}
	_, err := LoadFile(path, Known{})
	want := fmt.Sprintf(`%s:%d: trunks[0].codecs[1]: unsupported codec "G729" (PCMA, PCMU)`, path, lineWith(t, doc, "G729", 1))
	if err == nil || err.Error() != want {
		t.Errorf("LoadFile = %v, want %s", err, want)
	}
	if _, err := LoadFile(dir+"/missing.yaml", Known{}); err == nil || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadFile(missing) = %v, want fs.ErrNotExist", err)
	}
}

func TestParsePorts(t *testing.T) {
	for _, tc := range []struct {
		in        string
		low, high int
		err       string // substring; "" = success
	}{
		{"10000-20000", 10000, 20000, ""},
		{" 10000 - 20000 ", 10000, 20000, ""},
		{"1024-65535", 1024, 65535, ""},
		{"1024-1026", 1024, 1026, ""},
		{"30000-30002", 30000, 30002, ""},
		{"", 0, 0, `want LOW-HIGH, got ""`},
		{"abc", 0, 0, `want LOW-HIGH, got "abc"`},
		{"10000", 0, 0, `want LOW-HIGH, got "10000"`},
		{"10000-", 0, 0, "want LOW-HIGH"},
		{"-20000", 0, 0, "want LOW-HIGH"},
		{"a-b", 0, 0, "want LOW-HIGH"},
		{"10000-20000-30000", 0, 0, "want LOW-HIGH"},
		{"10000:20000", 0, 0, "want LOW-HIGH"},
		{"0x2710-20000", 0, 0, "want LOW-HIGH"},
		{"99999999999999999999-2", 0, 0, "want LOW-HIGH"},
		{"20000-10000", 0, 0, "range 20000-10000: LOW must be below HIGH"},
		{"10000-10000", 0, 0, "range 10000-10000: LOW must be below HIGH"},
		{"10000-10001", 0, 0, "range 10000-10001 holds one even port; at least two are needed"},
		{"10000-10003", 10000, 10003, ""},
		{"10001-20000", 0, 0, "range 10001-20000: LOW must be even"},
		{"1025-65535", 0, 0, "LOW must be even"},
		{"1-2", 0, 0, "range 1-2 must lie within 1024-65535"},
		{"1023-2000", 0, 0, "range 1023-2000 must lie within 1024-65535"},
		{"0-65535", 0, 0, "must lie within 1024-65535"},
		{"10000-65536", 0, 0, "must lie within 1024-65535"},
		{"-5--3", 0, 0, "want LOW-HIGH"},
	} {
		low, high, err := ParsePorts(tc.in)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("ParsePorts(%q): %v", tc.in, err)
		case tc.err == "" && (low != tc.low || high != tc.high):
			t.Errorf("ParsePorts(%q) = %d, %d; want %d, %d", tc.in, low, high, tc.low, tc.high)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("ParsePorts(%q) = %d, %d, %v; want error containing %q", tc.in, low, high, err, tc.err)
		case tc.err != "" && (low != 0 || high != 0):
			t.Errorf("ParsePorts(%q) = %d, %d with an error; want 0, 0", tc.in, low, high)
		}
	}
}

// TestParsePortsEven: media.NewPorts allocates even ports from LOW and rejects
// an odd LOW; ParsePorts, which validates rtp.ports, must reject it first so
// the error carries file:line.
func TestParsePortsEven(t *testing.T) {
	for _, in := range []string{"10001-20000", "1025-65535", "65533-65535"} {
		if low, high, err := ParsePorts(in); err == nil || !strings.Contains(err.Error(), "LOW must be even") {
			t.Errorf("ParsePorts(%q) = %d, %d, %v; want an error: LOW must be even", in, low, high, err)
		}
	}
}

func TestParsePrefix(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // "" = error
	}{
		{"127.0.0.0/8", "127.0.0.0/8"},
		{"10.1.2.3/8", "10.0.0.0/8"},
		{"192.0.2.1", "192.0.2.1/32"},
		{"192.0.2.1/32", "192.0.2.1/32"},
		{"0.0.0.0/0", "0.0.0.0/0"},
		{"::1", "::1/128"},
		{"2001:db8::1/32", "2001:db8::/32"},
		{"::ffff:192.0.2.1", "::ffff:192.0.2.1/128"},
		{"", ""},
		{"abc", ""},
		{"10.0.0.0/33", ""},
		{"10.0.0.0/-1", ""},
		{"10.0.0.0/", ""},
		{"/8", ""},
		{"1.2.3", ""},
		{"256.1.1.1", ""},
		{" 10.0.0.1", ""},
		{"10.0.0.1 ", ""},
		{"2001:db8::/129", ""},
		{"host.example.com", ""},
		{"fe80::1%eth0/64", ""},
	} {
		p, err := ParsePrefix(tc.in)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("ParsePrefix(%q) = %v, want an error", tc.in, p)
		case tc.want != "" && err != nil:
			t.Errorf("ParsePrefix(%q): %v", tc.in, err)
		case tc.want != "" && p != netip.MustParsePrefix(tc.want):
			t.Errorf("ParsePrefix(%q) = %v, want %s", tc.in, p, tc.want)
		case tc.want != "" && (!p.IsValid() || p != p.Masked()):
			t.Errorf("ParsePrefix(%q) = %v: not a valid masked prefix", tc.in, p)
		}
	}
}

func FuzzLoad(f *testing.F) {
	f.Add([]byte(defaultDoc(f)))
	for _, tc := range errorCases(f) {
		f.Add([]byte(tc.doc))
	}
	f.Add([]byte("trunks: [{name: t, sources: [10.0.0.1], dids: [\"1\"]}]\nroutes: [{number: \"1\", queue: q}]\nqueues: {q: {}}\n"))
	f.Add([]byte("a: &x [1]\nb: *x\n"))
	f.Add([]byte("<<: {node_id: x}\n"))
	for _, doc := range tagPanicDocs {
		f.Add([]byte(doc))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c1, err1, p, stack := loadNoPanic(data, Known{})
		if p != nil {
			t.Fatalf("Load panicked: %v\n%s", p, stack)
		}
		c2, err2 := Load(name, data, Known{})
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("Load twice: %v, then %v", err1, err2)
		}
		if err1 != nil {
			if c1 != nil {
				t.Fatal("Load returned a config with an error")
			}
			ps := problems(t, err1)
			if len(ps) == 0 {
				t.Fatalf("empty Errors %#v", err1)
			}
			for i, p := range ps {
				if p.File != name || p.Line < 0 || p.Problem == "" {
					t.Fatalf("problem %d: %+v", i, p)
				}
				if i > 0 && p.Line < ps[i-1].Line {
					t.Fatalf("problems not sorted by line:\n%v", err1)
				}
			}
			for l := range strings.SplitSeq(err1.Error(), "\n") {
				if !strings.HasPrefix(l, name+":") {
					t.Fatalf("error line %q does not start with %q", l, name+":")
				}
			}
			return
		}
		if !reflect.DeepEqual(c1, c2) {
			t.Fatalf("Load twice gave different configs:\n%+v\n%+v", c1, c2)
		}
		// Defaults are idempotent and the loaded config still validates.
		c2.applyDefaults()
		if !reflect.DeepEqual(c1, c2) {
			t.Fatalf("applyDefaults changed a loaded config:\n%+v\n%+v", c1, c2)
		}
		if ps := c1.validate(Known{}); len(ps) != 0 {
			t.Fatalf("loaded config does not re-validate: %v", ps)
		}
		// What validation accepted, start-up relies on.
		if _, _, err := ParsePorts(c1.RTP.Ports); err != nil {
			t.Fatalf("rtp.ports %q: %v", c1.RTP.Ports, err)
		}
		for _, tr := range c1.Trunks {
			for _, s := range tr.Sources {
				if _, err := ParsePrefix(s); err != nil {
					t.Fatalf("source %q: %v", s, err)
				}
			}
		}
		if ivr.ValidateMenus(c1.Menus, nil, func(q string) bool { _, ok := c1.Queues[q]; return ok }) != nil {
			t.Fatal("menus do not re-validate")
		}
		// Written back out, the config loads to itself.
		out, err := yaml.Marshal(c1)
		if err != nil {
			t.Fatalf("marshal loaded config: %v", err)
		}
		c3, err := Load(name, out, Known{})
		if err != nil {
			t.Fatalf("reload of marshalled config: %v\n%s", err, out)
		}
		// (Compared as YAML: the round trip may turn nil slices and maps into empty ones.)
		if out3, err := yaml.Marshal(c3); err != nil || !bytes.Equal(out, out3) {
			t.Fatalf("marshal round trip changed the config (%v):\n%s\n---\n%s", err, out, out3)
		}
	})
}

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o600) }

// callbackErrorCases are the error cases of the 云回访 keys: outbound_trunks, surveys,
// callback and the queues' callback offer.
func callbackErrorCases(t testing.TB, base string) []errCase {
	ed := func(pairs ...string) string {
		d := base
		for i := 0; i+1 < len(pairs); i += 2 {
			d = edit(t, d, pairs[i], pairs[i+1])
		}
		return d
	}
	ln := func(doc, s string) int { return lineWith(t, doc, s, 1) }
	var cs []errCase
	add := func(c errCase) { cs = append(cs, c) }
	zh := Known{Prompt: embeddedPrompt("zh")}

	d := ed("    gateway: sip:127.0.0.1:5090", "    gateway: http://127.0.0.1:5090")
	add(errCase{desc: "outbound gateway not a sip: URI", doc: d,
		want: []want{{ln(d, "gateway:"), "outbound_trunks[0].gateway", `want a SIP URI such as sip:192.0.2.1:5060, got "http://127.0.0.1:5090" (it must start with sip:)`}}})
	d = ed("    gateway: sip:127.0.0.1:5090", "    gateway: sip:127.0.0.1:5090;transport=tcp")
	add(errCase{desc: "outbound gateway with a URI parameter", doc: d, contains: true,
		want: []want{{ln(d, "gateway:"), "outbound_trunks[0].gateway", "set transport: for the transport"}}})
	d = ed("    gateway: sip:127.0.0.1:5090 ", "    gateway: \"\" ")
	add(errCase{desc: "outbound gateway missing", doc: d,
		want: []want{{ln(d, "gateway:"), "outbound_trunks[0].gateway", "required (the carrier's SIP URI, e.g. sip:192.0.2.1:5060)"}}})
	d = ed("    transport: udp ", "    transport: sctp ")
	add(errCase{desc: "outbound transport sctp", doc: d,
		want: []want{{ln(d, "transport: sctp"), "outbound_trunks[0].transport", `want udp or tcp, got "sctp"`}}})
	d = ed("    # password: secret", "    password: secret")
	add(errCase{desc: "outbound password without username", doc: d,
		want: []want{{ln(d, "  - name: loopback-out"), "outbound_trunks[0].username", "required with password"}}})
	d = ed(`    caller_id: "12345"`, `    caller_id: "hotline"`)
	add(errCase{desc: "outbound caller id not a number", doc: d,
		want: []want{{ln(d, "caller_id:"), "outbound_trunks[0].caller_id", `want a number, got "hotline"`}}})
	d = ed("    max_cps: 10 ", "    max_cps: -1 ", "    max_channels: 30 ", "    max_channels: -30 ")
	add(errCase{desc: "outbound negative limits", doc: d,
		want: []want{
			{ln(d, "max_channels:"), "outbound_trunks[0].max_channels", "must not be negative (0 = default 30)"},
			{ln(d, "max_cps: -1"), "outbound_trunks[0].max_cps", "must not be negative (0 = default 10)"},
		}})
	d = ed(`dial_plan: ['1[3-9]\d{9}']`, `dial_plan: ['1[3-9]\d{9}', '1[3-9\d{9}', '']`)
	add(errCase{desc: "bad dial plan patterns", doc: d,
		want: []want{
			{ln(d, "dial_plan:"), "outbound_trunks[0].dial_plan[1]", "bad regular expression \"1[3-9\\\\d{9}\": missing closing ]: `[3-9\\d{9}`"},
			{ln(d, "dial_plan:"), "outbound_trunks[0].dial_plan[2]", "empty pattern"},
		}})
	d = ed(`dial_plan: ['1[3-9]\d{9}']`, `dial_plan: []`)
	add(errCase{desc: "empty dial plan", doc: d, contains: true,
		want: []want{{ln(d, "dial_plan:"), "outbound_trunks[0].dial_plan", "at least one number pattern is required"}}})
	d = ed("  - name: loopback-out", "  - name: loopback", "  trunk: loopback-out ", "  trunk: loopback ")
	add(errCase{desc: "outbound trunk named like an inbound trunk", doc: d,
		want: []want{
			{lineWith(t, d, "  - name: loopback", 2), "outbound_trunks[0].name", `"loopback" is already the name of an inbound trunk`},
		}})
	d = ed("    codecs: [PCMA, PCMU]\n\nsurveys:", "    codecs: [PCMA, PCMU]\n  - name: loopback-out\n    gateway: sip:192.0.2.1\n    dial_plan: ['1\\d{10}']\n\nsurveys:")
	add(errCase{desc: "duplicate outbound trunk", doc: d,
		want: []want{{lineWith(t, d, "name: loopback-out", 2), "outbound_trunks[2].name", `duplicate outbound trunk "loopback-out"`}}})
	d = ed("    dial_plan:", "    dialplan:")
	add(errCase{desc: "unknown key in an outbound trunk", doc: d, contains: true,
		want: []want{{ln(d, "dialplan:"), "outbound_trunks[0].dialplan", `unknown field "dialplan"`}}})
	d = ed("    ring_timeout: 30s           # unanswered", "    ring_timeout: soon          # unanswered")
	add(errCase{desc: "bad outbound ring_timeout", doc: d, contains: true,
		want: []want{{ln(d, "ring_timeout: soon"), "outbound_trunks[0].ring_timeout", `bad duration "soon"`}}})
	d = ed("codecs: [PCMA, PCMU]\n\nsurveys:", "codecs: [PCMA, G729]\n\nsurveys:")
	add(errCase{desc: "bad outbound codec", doc: d,
		want: []want{{ln(d, "G729"), "outbound_trunks[1].codecs[1]", `unsupported codec "G729" (PCMA, PCMU)`}}})

	d = ed(`answers: {"1": satisfied,`, `answers: {"0": satisfied,`)
	add(errCase{desc: "survey answer on the agent digit", doc: d,
		want: []want{{ln(d, `{"0": satisfied`), "surveys.satisfaction.questions[0].answers.0", `key "0" is the survey's agent_digit`}}})
	d = ed(`"3": dissatisfied}`, `"3": dissatisfied, "10": other}`)
	add(errCase{desc: "survey answer key 10", doc: d,
		want: []want{{ln(d, `"10": other`), "surveys.satisfaction.questions[0].answers.10", `bad key "10" (want one of 0-9, * and #)`}}})
	d = ed("    agent_queue: callback", "    agent_queue: nosuch")
	add(errCase{desc: "survey agent queue unknown", doc: d,
		want: []want{{ln(d, "agent_queue: nosuch"), "surveys.satisfaction.agent_queue", `unknown queue "nosuch"`}}})
	d = ed("    agent_queue: callback", "    agent_queue: \"\"")
	add(errCase{desc: "survey agent digit without a queue", doc: d, contains: true,
		want: []want{{ln(d, "agent_queue:"), "surveys.satisfaction.agent_queue", "required with agent_digit"}}})
	d = ed("        prompts: [survey_question]", "        prompts: [survey_question, nosuch]")
	add(errCase{desc: "survey prompt unknown", doc: d, known: zh,
		want: []want{{ln(d, "[survey_question, nosuch]"), "surveys.satisfaction.questions[0].prompts[1]", `unknown prompt "nosuch"`}}})
	add(errCase{desc: "survey prompt unknown, no check without Known.Prompt", doc: d})
	d = ed("    questions:\n      - name: service\n        prompts: [survey_question]  # a key stops the prompt (barge-in)\n        answers: {\"1\": satisfied, \"2\": basically_satisfied, \"3\": dissatisfied}\n",
		"    questions: []\n")
	add(errCase{desc: "survey without questions", doc: d,
		want: []want{{ln(d, "questions: []"), "surveys.satisfaction.questions", "at least one question is required"}}})
	d = ed("    timeout: 6s ", "    timeout: -6s ")
	add(errCase{desc: "survey negative timeout", doc: d,
		want: []want{{ln(d, "timeout: -6s"), "surveys.satisfaction.timeout", "must not be negative (0 = default 6s)"}}})
	d = ed("    agent_digit: \"0\"", "    agent_digit: \"0\"\n    agnet_queue: x")
	add(errCase{desc: "unknown key in a survey", doc: d, contains: true,
		want: []want{{ln(d, "agnet_queue:"), "surveys.satisfaction.agnet_queue", `unknown field "agnet_queue"`}}})
	d = ed("  satisfaction:\n", "  bad name:\n")
	add(errCase{desc: "bad survey name", doc: d,
		want: []want{{ln(d, "bad name:"), "surveys.bad name", `invalid survey name "bad name" (letters, digits, _ . -)`}}})

	d = ed("  queue: callback ", "  queue: nosuch ")
	add(errCase{desc: "callback queue unknown", doc: d,
		want: []want{{ln(d, "queue: nosuch"), "callback.queue", `unknown queue "nosuch" (the human callback queue must be configured under queues)`}}})
	d = ed("  trunk: loopback-out ", "  trunk: loopback ")
	add(errCase{desc: "callback trunk unknown (an inbound trunk)", doc: d,
		want: []want{{ln(d, "trunk: loopback "), "callback.trunk", `unknown outbound trunk "loopback"`}}})
	d = ed("  at_risk: 2h ", "  at_risk: 24h ")
	add(errCase{desc: "callback at_risk not below deadline", doc: d,
		want: []want{{ln(d, "at_risk:"), "callback.at_risk", "24h0m0s is not less than deadline 24h0m0s (every target would be at risk at once)"}}})
	d = ed(`    from: "09:00"`, `    from: "9am"`, `    to: "20:00"`, `    to: "25:00"`)
	add(errCase{desc: "callback window bad times", doc: d,
		want: []want{
			{ln(d, "from:"), "callback.window.from", `bad time "9am" (want HH:MM, 00:00-23:59)`},
			{ln(d, "to:"), "callback.window.to", `bad time "25:00" (want HH:MM, 00:00-23:59)`},
		}})
	d = ed(`    # days: [mon-sun]`, `    days: [mon-fri, sat-sunday]`, `    # holidays: ["2026-10-01"]  # no calls`, `    holidays: ["2026-10-32"]`,
		`    # workdays: ["2026-10-11"]  # 调休: called like`, `    workdays: ["2026-10-12"]  #`)
	add(errCase{desc: "callback window bad calendar", doc: d,
		want: []want{
			{ln(d, "sat-sunday"), "callback.window.days[1]", `bad day "sat-sunday" (want mon..sun or a range like mon-fri)`},
			{ln(d, "2026-10-32"), "callback.window.holidays[0]", `bad date "2026-10-32" (want YYYY-MM-DD)`},
			{ln(d, "2026-10-12"), "callback.window.workdays[0]", "2026-10-12 is a Monday; make-up working days are weekend dates"},
		}})
	d = ed("  max_attempts: 3 ", "  max_attempts: -1 ", "    no_answer: 30m", "    no_answer: -30m", "  max_cps: 5 ", "  max_cps: -5 ")
	add(errCase{desc: "callback negative numbers", doc: d,
		want: []want{
			{ln(d, "max_attempts:"), "callback.max_attempts", "must not be negative (0 = default 3)"},
			{ln(d, "no_answer:"), "callback.retry.no_answer", "must not be negative (0 = the default)"},
			{ln(d, "max_cps: -5"), "callback.max_cps", "must not be negative (0 = default 5)"},
		}})
	d = ed("    busy: 10m", "    busy: [10m]")
	add(errCase{desc: "callback retry not a duration", doc: d,
		want: []want{{ln(d, "busy:"), "callback.retry.busy", "want a duration such as 30s, got a list"}}})
	d = ed("  do_not_call: [] ", `  do_not_call: ["13900000001", "139-0000"] `)
	add(errCase{desc: "callback do_not_call bad number", doc: d,
		want: []want{{ln(d, "do_not_call:"), "callback.do_not_call[1]", `want a number, got "139-0000"`}}})
	d = ed("  # after_call:  ", "  after_call:  ", "  #   queues: [consult, complaint, business]", "      queues: [consult, nosuch]",
		"  #   delay: 30m", "      delay: -30m", "  #   script: satisfaction", "      script: other", "  #   trunk: loopback-out", "      trunk: none")
	add(errCase{desc: "callback after_call problems", doc: d,
		want: []want{
			{ln(d, "queues: [consult, nosuch]"), "callback.after_call.queues[1]", `unknown queue "nosuch"`},
			{ln(d, "delay: -30m"), "callback.after_call.delay", "must not be negative (0 = as soon as the call ends)"},
			{ln(d, "script: other"), "callback.after_call.script", `unknown survey "other"`},
			{ln(d, "trunk: none"), "callback.after_call.trunk", `unknown outbound trunk "none"`},
		}})
	d = ed("  # after_call:  ", "  after_call:  ", "  #   queues: [consult, complaint, business]", "      queues: [consult]",
		"  #   delay: 30m", "      delay: 30m", "  #   script: satisfaction", "      script: satisfaction")
	add(errCase{desc: "callback after_call valid", doc: d})
	d = ed("  fallback_dissatisfied: true ", "  fallback_dissatisfied: maybe ")
	add(errCase{desc: "callback fallback_dissatisfied not a bool", doc: d, contains: true,
		want: []want{{ln(d, "fallback_dissatisfied:"), "callback.fallback_dissatisfied", "maybe"}}})

	d = ed(`    # exit_digit: "0"`, `    exit_digit: "1"`)
	add(errCase{desc: "queue callback digit is the exit digit", doc: d,
		want: []want{{ln(d, `callback: {after: 2m`), "queues.consult.callback.digit", `"1" is also the queue's exit_digit`}}})
	d = ed(`callback: {after: 2m, digit: "1"}`, `callback: {digit: "12"}`)
	add(errCase{desc: "queue callback without after, bad digit", doc: d,
		want: []want{
			{ln(d, `callback: {digit`), "queues.consult.callback.after", "required and positive (the estimated wait above which callers are offered a callback)"},
			{ln(d, `callback: {digit`), "queues.consult.callback.digit", `want one of 0-9 * #, got "12"`},
		}})
	d = ed(`callback: {after: 2m, digit: "1"}`, `callback: {after: 2m, digit: "1", key: "2"}`)
	add(errCase{desc: "unknown key in a queue's callback", doc: d, contains: true,
		want: []want{{ln(d, `key: "2"`), "queues.consult.callback.key", `unknown field "key"`}}})
	noOffer := func(p string) bool { return p != "callback_offer" && p != "task_whisper" && embeddedPrompt("zh")(p) }
	add(errCase{desc: "callback prompts missing", doc: base, known: Known{Prompt: noOffer},
		want: []want{
			{ln(base, `callback: {after: 2m`), "queues.consult.callback", `unknown prompt "callback_offer" (the callback offer needs it)`},
			{ln(base, "  queue: callback "), "callback.queue", `unknown prompt "task_whisper" (callback tasks need it)`},
		}})
	return cs
}

// TestCallbackDefaultsApplied loads minimal 云回访 sections and checks every default.
func TestCallbackDefaultsApplied(t *testing.T) {
	doc := `
trunks:
  - {name: t, sources: [10.0.0.1], dids: ["12345"]}
routes:
  - {number: "12345", queue: q}
queues:
  q: {callback: {after: 1m}}
  callback: {}
outbound_trunks:
  - {name: out, gateway: "sip:gw.example.com", dial_plan: ['1\d{10}']}
  - {name: out2, gateway: "sip:carrier@[2001:db8::1]:5070", transport: tcp, username: u, password: p, dial_plan: ['\d+']}
surveys:
  s:
    questions: [{name: q1, prompts: [p1], answers: {"1": yes}}]
callback:
  after_call: {queues: [q], script: s}
`
	c, err := Load(name, []byte(doc), Known{})
	if err != nil {
		t.Fatal(err)
	}
	out := c.OutboundTrunks[0]
	cb := c.CallbackSettings()
	for _, d := range []struct {
		field     string
		got, want any
	}{
		{"outbound_trunks[0].transport", out.Transport, "udp"},
		{"outbound_trunks[0].max_channels", out.MaxChannels, 30},
		{"outbound_trunks[0].max_cps", out.MaxCPS, 10.0},
		{"outbound_trunks[0].ring_timeout", out.RingTimeout.D(), 30 * time.Second},
		{"outbound_trunks[1].transport", c.OutboundTrunks[1].Transport, "tcp"},
		{"surveys.s.timeout", c.Surveys["s"].Timeout.D(), 6 * time.Second},
		{"surveys.s.max_retries", c.Surveys["s"].MaxRetries, 2},
		{"queues.q.callback.digit", c.Queues["q"].Callback.Digit, "1"},
		{"queues.q.callback.after", c.Queues["q"].Callback.After.D(), time.Minute},
		{"callback.queue", cb.Queue, "callback"},
		{"callback.trunk", cb.Trunk, "out"},
		{"callback.deadline", cb.Deadline.D(), 24 * time.Hour},
		{"callback.at_risk", cb.AtRisk.D(), 2 * time.Hour},
		{"callback.window.from", cb.Window.From, "09:00"},
		{"callback.window.to", cb.Window.To, "20:00"},
		{"callback.max_attempts", cb.MaxAttempts, 3},
		{"callback.retry.busy", cb.Retry.Busy.D(), 10 * time.Minute},
		{"callback.retry.no_answer", cb.Retry.NoAnswer.D(), 30 * time.Minute},
		{"callback.retry.failed", cb.Retry.Failed.D(), 5 * time.Minute},
		{"callback.retry.interrupted", cb.Retry.Interrupted.D(), 5 * time.Minute},
		{"callback.ring_timeout", cb.RingTimeout.D(), 30 * time.Second},
		{"callback.max_concurrent", cb.MaxConcurrent, 30},
		{"callback.max_cps", cb.MaxCPS, 5.0},
		{"callback.fallback_dissatisfied", *cb.FallbackDissatisfied, true},
		{"callback.after_call.trunk", cb.AfterCall.Trunk, "out"},
		{"callback.after_call.delay", cb.AfterCall.Delay.D(), time.Duration(0)},
	} {
		if d.got != d.want {
			t.Errorf("%s = %v, want %v", d.field, d.got, d.want)
		}
	}
	if g, err := c.OutboundTrunks[1].ParsedGateway(); err != nil || g != (Gateway{User: "carrier", Host: "2001:db8::1", Port: 5070}) {
		t.Errorf("out2 gateway = %+v, %v", g, err)
	}
	if _, ok := c.OutboundTrunk("nosuch"); ok {
		t.Error(`OutboundTrunk("nosuch") found`)
	}

	// Without a callback section: the defaults, no human queue, the first outbound trunk.
	doc = edit(t, doc, "callback:\n  after_call: {queues: [q], script: s}\n", "")
	if c, err = Load(name, []byte(doc), Known{}); err != nil {
		t.Fatal(err)
	}
	want := defaultCallback()
	want.Queue, want.Trunk, want.DoNotCall = "", "out", nil
	if got := c.CallbackSettings(); c.Callback != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("CallbackSettings without a section = %+v\nwant %+v", got, want)
	}
	// A queue's callback offer needs an outbound trunk.
	doc = edit(t, doc, "outbound_trunks:", "unused:")
	doc = edit(t, doc, "unused:\n", "")
	doc = edit(t, doc, "  - {name: out, gateway: \"sip:gw.example.com\", dial_plan: ['1\\d{10}']}\n", "")
	doc = edit(t, doc, "  - {name: out2, gateway: \"sip:carrier@[2001:db8::1]:5070\", transport: tcp, username: u, password: p, dial_plan: ['\\d+']}\n", "")
	_, err = Load(name, []byte(doc), Known{})
	if want := fmt.Sprintf("%s:%d: queues.q.callback: needs an outbound trunk to call back through (add one under outbound_trunks)", name, lineWith(t, doc, "q: {callback", 1)); err == nil || err.Error() != want {
		t.Errorf("queue callback without outbound trunks: %v, want %s", err, want)
	}
	doc = edit(t, doc, "  q: {callback: {after: 1m}}", "  q: {}") + "callback: {}\n"
	_, err = Load(name, []byte(doc), Known{})
	if want := fmt.Sprintf("%s:%d: callback.trunk: no outbound trunk to call through (add one under outbound_trunks)", name, lineWith(t, doc, "callback: {}", 2)); err == nil || err.Error() != want {
		t.Errorf("callback without outbound trunks: %v, want %s", err, want)
	}
}

func TestParseGateway(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Gateway
		err  string // substring; "" = success
	}{
		{"sip:127.0.0.1:5090", Gateway{Host: "127.0.0.1", Port: 5090}, ""},
		{"sip:127.0.0.1", Gateway{Host: "127.0.0.1", Port: 5060}, ""},
		{"SIP:gw.example.com", Gateway{Host: "gw.example.com", Port: 5060}, ""},
		{"sip:hotline@gw.example.com.:5061", Gateway{User: "hotline", Host: "gw.example.com.", Port: 5061}, ""},
		{"sip:[::1]:5090", Gateway{Host: "::1", Port: 5090}, ""},
		{"sip:[2001:db8::1]", Gateway{Host: "2001:db8::1", Port: 5060}, ""},
		{"sips:127.0.0.1", Gateway{}, "it must start with sip:"},
		{"127.0.0.1:5060", Gateway{}, "it must start with sip:"},
		{"sip:", Gateway{}, "bad host"},
		{"sip:127.0.0.1:0", Gateway{}, "port must be 1-65535"},
		{"sip:127.0.0.1:65536", Gateway{}, "port must be 1-65535"},
		{"sip:127.0.0.1:+5", Gateway{}, "port must be 1-65535"},
		{"sip:127.0.0.1:x", Gateway{}, "port must be 1-65535"},
		{"sip:127.0.0.1:5060:1", Gateway{}, "port must be 1-65535"},
		{"sip:::1", Gateway{}, "bad host"},
		{"sip:[::1", Gateway{}, "unclosed ["},
		{"sip:[127.0.0.1]", Gateway{}, "bad IPv6 address"},
		{"sip:[::1]x", Gateway{}, "junk after the address"},
		{"sip:gw_1.example.com", Gateway{}, "bad host"},
		{"sip:-gw.example.com", Gateway{}, "bad host"},
		{"sip:gw.example.com;transport=tcp", Gateway{}, "no URI parameters"},
		{"sip:gw.example.com?x=y", Gateway{}, "no URI parameters"},
		{"sip:@gw.example.com", Gateway{}, "bad user part"},
		{"sip:a b@gw.example.com", Gateway{}, "bad user part"},
		{"sip: gw.example.com", Gateway{}, "bad host"},
	} {
		g, err := ParseGateway(tc.in)
		switch {
		case tc.err == "" && (err != nil || g != tc.want):
			t.Errorf("ParseGateway(%q) = %+v, %v; want %+v", tc.in, g, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("ParseGateway(%q) = %+v, %v; want an error containing %q", tc.in, g, err, tc.err)
		}
	}
	if hp := (Gateway{Host: "::1", Port: 5090}).HostPort(); hp != "[::1]:5090" {
		t.Errorf("HostPort = %q", hp)
	}
}

func TestDialPlan(t *testing.T) {
	p, err := CompileDialPlan([]string{`1[3-9]\d{9}`, `0\d{2,3}\d{7,8}|12345`})
	if err != nil {
		t.Fatal(err)
	}
	for number, want := range map[string]bool{
		"13900000001": true, "02012345678": true, "12345": true,
		"123456": false, "x12345": false, "139000000012": false, "": false,
	} {
		if got := p.Allows(number); got != want {
			t.Errorf("Allows(%q) = %v, want %v", number, got, want)
		}
	}
	if _, err := CompileDialPlan([]string{`1\d+`, `(`}); err == nil || !strings.Contains(err.Error(), `"("`) {
		t.Errorf("CompileDialPlan with a bad pattern: %v", err)
	}
	if (DialPlan{}).Allows("13900000001") {
		t.Error("an empty dial plan allows a number")
	}
	// A pattern that Load would refuse is left out, never allowing anything.
	tr := OutboundTrunk{DialPlan: []string{`(`, `110`}}
	if got := tr.CompiledDialPlan(); len(got) != 1 || !got.Allows("110") || got.Allows("(") {
		t.Errorf("CompiledDialPlan = %v", got)
	}
}

func TestWindowOpen(t *testing.T) {
	sh := time.FixedZone("CST", 8*3600)
	at := func(date, clock string) time.Time {
		tm, err := time.ParseInLocation("2006-01-02 15:04", date+" "+clock, sh)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	day := Window{From: "09:00", To: "20:00", Days: []string{"mon-fri"}, Holidays: []string{"2026-10-01"}, Workdays: []string{"2026-10-10"}}
	for _, tc := range []struct {
		w     Window
		t     time.Time
		want  bool
		label string
	}{
		{day, at("2026-09-30", "08:59"), false, "Wednesday before 09:00"},
		{day, at("2026-09-30", "09:00"), true, "Wednesday 09:00"},
		{day, at("2026-09-30", "19:59"), true, "Wednesday 19:59"},
		{day, at("2026-09-30", "20:00"), false, "Wednesday 20:00"},
		{day, at("2026-10-01", "10:00"), false, "holiday"},
		{day, at("2026-10-03", "10:00"), false, "Saturday"},
		{day, at("2026-10-10", "10:00"), true, "make-up working Saturday"},
		{Window{From: "00:00", To: "24:00"}, at("2026-10-03", "00:00"), true, "all day at midnight"},
		{Window{From: "00:00", To: "24:00"}, at("2026-10-03", "23:59"), true, "all day at 23:59"},
		{Window{From: "20:00", To: "02:00"}, at("2026-10-03", "01:00"), true, "past midnight"},
		{Window{From: "20:00", To: "02:00"}, at("2026-10-03", "03:00"), false, "after a past-midnight window"},
	} {
		if got := tc.w.Open(tc.t, "Asia/Shanghai"); got != tc.want {
			t.Errorf("%s: Open(%s) = %v, want %v", tc.label, tc.t, got, tc.want)
		}
	}
	// The zone matters: 09:30 in Shanghai is 01:30 UTC.
	if !day.Open(at("2026-09-30", "09:30"), "Asia/Shanghai") || day.Open(at("2026-09-30", "09:30"), "UTC") {
		t.Error("Open does not read the time in the given zone")
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1048576": 1 << 20, "512MiB": 512 << 20, "2GiB": 2 << 30, " 3 KiB": 3 << 10, "7B": 7, "1TiB": 1 << 40} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "2GB", "-1MiB", "1.5GiB", "MiB", "99999999999TiB"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q): no error", in)
		}
	}
}

// The http section: token hashes and roles are checked, timeouts and body
// limits get their defaults.
func TestHTTPSection(t *testing.T) {
	doc := defaultDoc(t)
	c, err := Load("h.yaml", []byte(doc), Known{})
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP.ReadHeaderTimeout.D() != DefaultHTTPReadHeaderTimeout || c.HTTP.WriteTimeout.D() != DefaultHTTPWriteTimeout ||
		c.HTTP.MaxBodyBytes() != 1<<20 || c.HTTP.MaxImportBodyBytes() != 16<<20 {
		t.Errorf("defaults: %+v", c.HTTP)
	}
	bad := strings.Replace(doc, "  listen: 127.0.0.1:8080", "  listen: 127.0.0.1:8080\n  tls_cert: a.pem\n  max_body: lots\n  tokens:\n"+
		"    - {name: ops, role: root, hash: \"sha256:00\"}", 1)
	_, err = Load("h.yaml", []byte(bad), Known{})
	for _, want := range []string{"http.tls_cert", "http.tokens[0].role", "http.tokens[0].hash", "http.max_body"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
}
