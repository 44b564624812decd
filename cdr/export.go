package cdr

import (
	"encoding/csv"
	"io"
	"strconv"
	"time"
)

// CSV exports of records and events (the API's format=csv and `hotlined
// events --format csv`). Times are RFC 3339 with their fraction; durations
// are decimal seconds with millisecond precision (FormatSeconds).

// RecordCSVHeader is the column list of WriteRecordsCSV. talk_s, hold_s
// and wrap_up_s are the parts of AHT: AHT = mean of talk_s + hold_s +
// wrap_up_s over the answered calls (connect set). talk_s is
// Record.AgentTalk, as the report reads it.
var RecordCSVHeader = []string{
	"id", "sip_call_id", "direction", "trunk", "caller", "called", "start", "answer", "end",
	"ivr_path", "case_number", "queue", "enqueue", "agent", "connect", "disposition",
	"hangup_side", "hangup_cause", "sip_status", "codec", "node_id",
	"talk_s", "hold_s", "wrap_up_s", "ring_attempts", "transfers", "visits", "satisfaction",
	"campaign", "attempt", "target", "parent",
	"recording_file", "recording_s", "recording_sha256", "voicemail", "handoffs",
}

// WriteRecordsCSV writes recs as CSV with RecordCSVHeader.
func WriteRecordsCSV(w io.Writer, recs []Record) error {
	cw := csv.NewWriter(w)
	_ = cw.Write(RecordCSVHeader)
	for i := range recs {
		r := &recs[i]
		_ = cw.Write([]string{
			r.ID, r.SIPCallID, r.Direction, r.Trunk, r.Caller, r.Called, csvTime(r.Start), csvTime(r.Answer), csvTime(r.End),
			r.IVRPath, r.CaseNumber, r.Queue, csvTime(r.EnqueueTime), r.Agent, csvTime(r.Connect), string(r.Disposition),
			r.HangupSide, r.HangupCause, strconv.Itoa(r.SIPStatus), r.Codec, r.NodeID,
			FormatSeconds(r.AgentTalk()), FormatSeconds(r.Hold), FormatSeconds(r.WrapUp),
			strconv.Itoa(r.RingAttempts), strconv.Itoa(r.Transfers), r.Visits, r.Satisfaction,
			r.Campaign, csvInt(r.Attempt), r.Target, r.Parent,
			r.RecordingFile, csvSeconds(r.RecordingDuration), r.RecordingSHA256, csvBool(r.Voicemail), string(r.Handoffs),
		})
	}
	cw.Flush()
	return cw.Error()
}

// EventCSVHeader is the column list of WriteEventsCSV.
var EventCSVHeader = []string{"id", "time", "call_id", "queue", "agent", "event", "data1", "data2", "data3", "data4", "data5", "node_id"}

// WriteEventsCSV writes evs as CSV with EventCSVHeader.
func WriteEventsCSV(w io.Writer, evs []AgentEvent) error {
	cw := csv.NewWriter(w)
	_ = cw.Write(EventCSVHeader)
	for i := range evs {
		e := &evs[i]
		_ = cw.Write([]string{e.ID, csvTime(e.Time), e.CallID, e.Queue, e.AgentID, e.Event,
			e.Data1, e.Data2, e.Data3, e.Data4, e.Data5, e.NodeID})
	}
	cw.Flush()
	return cw.Error()
}

// csvInt is n, or an empty cell for 0 (a field an inbound record has not).
func csvInt(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

func csvTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(time.RFC3339Nano)
}

// csvSeconds is d in decimal seconds, empty when zero.
func csvSeconds(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return FormatSeconds(d)
}

func csvBool(b bool) string {
	if b {
		return "true"
	}
	return ""
}
