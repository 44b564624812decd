package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// A citizen calls 12345 offering PCMA/PCMU/telephone-event and presses 2 by RFC 2833.
func TestSIPpRFC2833DigitRoutesToComplaint(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	res := runSIPp(t, s.sipAddr(), "uac_rfc2833.xml")
	if !res.ok {
		t.Fatalf("SIPp failed:\n%s", res.output)
	}
	rec := s.records(t, 1)[0]
	if rec.IVRPath != "main>2>complaint" || rec.Queue != "complaint" {
		t.Fatalf("record path %q queue %q, want main>2>complaint in queue complaint", rec.IVRPath, rec.Queue)
	}
	if rec.Codec != "PCMA" || rec.Disposition != "abandoned" || rec.HangupSide != "caller" || rec.HangupCause != "BYE" {
		t.Fatalf("record %+v: want PCMA, abandoned (caller hung up in queue), caller BYE", rec)
	}
	if rec.Answer.IsZero() || rec.EnqueueTime.Before(rec.Answer) || !rec.End.After(rec.EnqueueTime) {
		t.Fatalf("record times out of order: %+v", rec)
	}
}

// The same by SIP INFO (application/dtmf-relay).
func TestSIPpInfoDigitRoutesToComplaint(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	res := runSIPp(t, s.sipAddr(), "uac_info.xml")
	if !res.ok {
		t.Fatalf("SIPp failed:\n%s", res.output)
	}
	rec := s.records(t, 1)[0]
	if rec.IVRPath != "main>2>complaint" || rec.Queue != "complaint" {
		t.Fatalf("record path %q queue %q, want main>2>complaint", rec.IVRPath, rec.Queue)
	}
}

// A source outside every trunk gets 403 and no record, no media.
func TestSIPpUnknownSourceForbidden(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig(t, "sources: [127.0.0.0/8]", "sources: [127.0.0.1/32]"))
	res := runSIPp(t, s.sipAddr(), "uac_forbidden.xml", "-i", "127.0.0.2")
	if !res.ok {
		t.Fatalf("SIPp from 127.0.0.2 did not get 403:\n%s", res.output)
	}
	if st := s.sip.Stats(); st.Forbidden != 1 || st.Invites != 0 {
		t.Fatalf("stats %+v: want 1 forbidden, 0 calls", st)
	}
	if n := s.calls.Active(); n != 0 {
		t.Fatalf("%d live calls after 403", n)
	}
}

// A G.729-only offer gets 488 and the attempt is recorded as failed.
func TestSIPpG729OnlyNotAcceptable(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	res := runSIPp(t, s.sipAddr(), "uac_g729.xml")
	if !res.ok {
		t.Fatalf("SIPp did not get 488:\n%s", res.output)
	}
	rec := s.records(t, 1)[0]
	if rec.SIPStatus != 488 || rec.Disposition != "failed" {
		t.Fatalf("record %+v: want failed with 488", rec)
	}
}

// CANCEL before answer gets 200 for the CANCEL and 487 for the INVITE; nothing leaks.
func TestSIPpCancelBeforeAnswer(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig(t, "max_calls: 5000", "max_calls: 5000\n    answer_delay: 5s"))
	res := runSIPp(t, s.sipAddr(), "uac_cancel.xml")
	if !res.ok {
		t.Fatalf("SIPp CANCEL scenario failed:\n%s", res.output)
	}
	rec := s.records(t, 1)[0]
	if rec.SIPStatus != 487 || rec.Disposition != "caller-cancelled" || rec.HangupCause != "CANCEL" || !rec.Answer.IsZero() {
		t.Fatalf("record %+v: want cancelled, 487, never answered", rec)
	}
	if n := s.calls.Active(); n != 0 {
		t.Fatalf("%d live calls after CANCEL", n)
	}
}

func TestSIPpRecordsInAPI(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	if res := runSIPp(t, s.sipAddr(), "uac_rfc2833.xml"); !res.ok {
		t.Fatalf("SIPp failed:\n%s", res.output)
	}
	s.records(t, 1)
	body := httpGet(t, "http://"+s.httpAddr()+"/api/v1/cdrs?format=csv", 200)
	if !strings.Contains(body, "main>2>complaint") || !strings.HasPrefix(body, "id,sip_call_id,") {
		t.Fatalf("CSV export lacks the call:\n%s", body)
	}
}

// A caller whose RTP stops (SIPp sends none here) is hung up with BYE after rtp.timeout.
func TestSIPpRTPTimeoutHangsUp(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig(t, "timeout: 30s", "timeout: 1s"))
	if res := runSIPp(t, s.sipAddr(), "uac_wait_bye.xml"); !res.ok {
		t.Fatalf("SIPp was not hung up with BYE:\n%s", res.output)
	}
	rec := s.records(t, 1)[0]
	if rec.HangupCause != "rtp-timeout" || rec.HangupSide != "system" {
		t.Fatalf("record %+v: want system hangup with cause rtp-timeout", rec)
	}
}

// The menu-less profile (GB/T 33358 advises against long menus): the route sends calls
// straight to a queue, and the record's path is just the queue.
func TestSIPpMenuLessProfile(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig(t, "    menu: main ", "    queue: consult "))
	if res := runSIPp(t, s.sipAddr(), "uac_rfc2833.xml"); !res.ok {
		t.Fatalf("SIPp failed:\n%s", res.output)
	}
	rec := s.records(t, 1)[0]
	if rec.IVRPath != "consult" || rec.Queue != "consult" {
		t.Fatalf("record path %q queue %q, want straight to consult", rec.IVRPath, rec.Queue)
	}
}

// /metrics carries the contract's names and labels with values that follow the calls.
func TestMetricsAfterACall(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	if res := runSIPp(t, s.sipAddr(), "uac_rfc2833.xml"); !res.ok {
		t.Fatalf("SIPp failed:\n%s", res.output)
	}
	s.records(t, 1)
	body := httpGet(t, "http://"+s.httpAddr()+"/metrics", 200)
	for _, want := range []string{
		`hotline_calls_total{direction="inbound",disposition="abandoned"} 1`,
		`hotline_call_setup_seconds_count 1`,
		`hotline_agents{state="logged_out"} 20`,
		`hotline_agents{state="ready"} 0`,
		`hotline_queue_callers{queue="complaint"} 0`,
		`hotline_queue_longest_wait_seconds{queue="consult"} 0`,
		`hotline_queue_wait_seconds_count{queue="complaint"} 1`,
		`hotline_trunk_channels{trunk="loopback"} 0`,
		`hotline_calls_active{stage="ivr"} 0`,
		`hotline_cdr_records_written_total 1`,
		`hotline_sip_invites_total{outcome="accepted"} 1`,
		`hotline_registrar_auth_failures_total{reason="password"} 0`,
		`hotline_registrar_lockouts_total{scope="user"} 0`,
		`hotline_registrar_lockouts_total{scope="source"} 0`,
		`hotline_registrar_bindings{kind="contacts"} 0`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	for _, name := range []string{"hotline_rtp_packets_total{direction=\"out\"}", "hotline_rtp_send_lateness_seconds_bucket", "process_resident_memory_bytes"} {
		if !strings.Contains(body, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	// Every metric the shipped Grafana dashboard queries exists.
	dash, err := os.ReadFile(filepath.Join("..", "..", "configs", "grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct{ Targets []struct{ Expr string } }
	}
	if err := json.Unmarshal(dash, &d); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	names := regexp.MustCompile(`\b(hotline|process)_[a-z_]+`)
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			for _, n := range names.FindAllString(tg.Expr, -1) {
				if !strings.Contains(body, "\n"+n) && !strings.Contains(body, n+"{") && !strings.Contains(body, n+" ") {
					t.Errorf("dashboard queries %s, which /metrics does not expose", n)
				}
			}
		}
	}
}
