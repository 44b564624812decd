package callback

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// CSV import of case callbacks (hotlined campaign import --file cases.csv).

// csvColumns maps each target field to the header names it accepts
// (compared case-insensitively, spaces and dashes read as underscores).
var csvColumns = [...]struct {
	field   int
	names   []string
	require bool
}{
	{colCase, []string{"case_id", "case", "caseid", "case_number", "case_no", "工单号", "工单编号", "案件编号"}, true},
	{colPhone, []string{"phone", "number", "phone_number", "mobile", "电话", "电话号码", "手机", "手机号", "联系电话"}, true},
	{colQueue, []string{"queue", "队列", "技能组"}, false},
	{colAgent, []string{"agent", "agent_id", "坐席", "坐席工号", "工号"}, false},
	{colClosed, []string{"closed_at", "closed", "closed_time", "办结时间", "结案时间"}, false},
}

const (
	colCase = iota
	colPhone
	colQueue
	colAgent
	colClosed
	numCols
)

// csvTimeLayouts are the closed_at forms without a zone, read in the
// caller's location (RFC 3339 is tried first).
var csvTimeLayouts = []string{
	"2006-1-2 15:04:05", "2006-1-2 15:04", "2006-1-2T15:04:05", "2006-1-2T15:04",
	"2006/1/2 15:04:05", "2006/1/2 15:04",
}

// ReadCSV reads case callbacks from a CSV file with a header row. Columns
// are found by header name in any order and case: case_id (or case,
// 工单号...), phone (or number, 电话...), and optionally queue, agent and
// closed_at (or closed); other columns are ignored. A UTF-8 byte order mark
// (Excel) is skipped.
//
// A row that cannot be a target is reported in bad by its line number
// (TargetError.Index) and the others are kept: no case id, a phone that is
// not digits (spaces and dashes are dropped, a leading + kept), a number
// allows refuses (ErrNotInDialPlan; a nil allows refuses none), a closed_at
// that is neither RFC 3339 nor "2006-01-02 15:04[:05]" in loc (nil: Local),
// a malformed CSV line, and a case id already on an earlier line. Rows of
// empty cells are skipped. Messages begin with the text of ErrBadTarget,
// ErrNotInDialPlan or ErrDuplicateCase.
//
// Targets are pending, with Deadline = ClosedAt + deadline when both are
// set (a target without closed_at gets no deadline here). err is for the
// file as a whole: no header, a header without case id or phone columns,
// or a read error.
func ReadCSV(r io.Reader, allows func(number string) bool, deadline time.Duration, loc *time.Location) (targets []Target, bad []TargetError, err error) {
	bad, err = ScanCSV(r, allows, deadline, loc, 0, func(ts []Target) error { targets = append(targets, ts...); return nil })
	if err != nil {
		return nil, nil, err
	}
	return targets, bad, nil
}

// ScanCSV is ReadCSV handing the good targets to emit in batches of batch (0: one batch at
// the end) as it reads, so that a caller can send them on while the rest is read. An error
// from emit stops the scan and is returned.
func ScanCSV(r io.Reader, allows func(number string) bool, deadline time.Duration, loc *time.Location, batch int, emit func([]Target) error) (bad []TargetError, err error) {
	var targets []Target
	if loc == nil {
		loc = time.Local
	}
	br := bufio.NewReaderSize(r, 64<<10)
	if b, err := br.Peek(3); err == nil && bytes.Equal(b, []byte("\xef\xbb\xbf")) {
		_, _ = br.Discard(3)
	}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("callback: CSV: %w: empty file, a header row is required", ErrBadTarget)
	} else if err != nil {
		return nil, fmt.Errorf("callback: CSV header: %w", err)
	}
	idx, err := csvHeader(header)
	if err != nil {
		return nil, err
	}
	seen := make(map[string]int) // case id → first line
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				bad = append(bad, TargetError{Index: pe.StartLine, Err: fmt.Sprintf("%v: malformed CSV: %v", ErrBadTarget, pe.Err)})
				continue
			}
			return nil, fmt.Errorf("callback: CSV: %w", err)
		}
		line, _ := cr.FieldPos(0)
		var f [numCols]string
		empty := true
		for c, i := range idx {
			if i >= 0 && i < len(rec) {
				f[c] = strings.TrimSpace(rec[i])
				empty = empty && f[c] == ""
			}
		}
		if empty {
			continue
		}
		t, msg := csvTarget(&f, allows, deadline, loc)
		if t.CaseID != "" {
			if first, dup := seen[t.CaseID]; dup {
				if msg == "" {
					msg = fmt.Sprintf("%v (first on line %d)", ErrDuplicateCase, first)
				}
			} else {
				seen[t.CaseID] = line
			}
		}
		if msg != "" {
			bad = append(bad, TargetError{Index: line, CaseID: t.CaseID, Err: msg})
			continue
		}
		targets = append(targets, t)
		if batch > 0 && len(targets) >= batch {
			if err := emit(targets); err != nil {
				return bad, err
			}
			targets = make([]Target, 0, batch)
		}
	}
	if len(targets) > 0 || batch == 0 {
		if err := emit(targets); err != nil {
			return bad, err
		}
	}
	return bad, nil
}

// csvHeader maps each column kind to its index in header (-1 if absent).
func csvHeader(header []string) ([numCols]int, error) {
	var idx [numCols]int
	for i := range idx {
		idx[i] = -1
	}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(h))
		h = strings.NewReplacer(" ", "_", "-", "_").Replace(h)
		for _, c := range csvColumns {
			for _, name := range c.names {
				if h == name && idx[c.field] < 0 {
					idx[c.field] = i
				}
			}
		}
	}
	for _, c := range csvColumns {
		if c.require && idx[c.field] < 0 {
			return idx, fmt.Errorf("callback: CSV header: %w: no %s column (header: %s)", ErrBadTarget, c.names[0], strings.Join(header, ","))
		}
	}
	return idx, nil
}

// csvTarget builds the target of one row's trimmed fields, or says why
// not.
func csvTarget(f *[numCols]string, allows func(string) bool, deadline time.Duration, loc *time.Location) (Target, string) {
	t := Target{CaseID: f[colCase], Queue: f[colQueue], Agent: f[colAgent], State: TargetPending}
	if t.CaseID == "" {
		return t, ErrBadTarget.Error() + ": missing case id"
	}
	phone, ok := normPhone(f[colPhone])
	if !ok {
		if f[colPhone] == "" {
			return t, ErrBadTarget.Error() + ": missing phone"
		}
		return t, fmt.Sprintf("%v: bad phone %q", ErrBadTarget, f[colPhone])
	}
	t.Phone = phone
	if allows != nil && !allows(phone) {
		return t, fmt.Sprintf("%v: %s", ErrNotInDialPlan, phone)
	}
	if s := f[colClosed]; s != "" {
		closed, err := parseClosed(s, loc)
		if err != nil {
			return t, fmt.Sprintf("%v: bad closed_at %q (want RFC 3339 or 2006-01-02 15:04[:05])", ErrBadTarget, s)
		}
		t.ClosedAt = closed.UTC()
		if deadline > 0 {
			t.Deadline = t.ClosedAt.Add(deadline)
		}
	}
	return t, ""
}

// normPhone drops spaces and dashes and accepts 3 to 20 digits, with a
// leading + kept.
func normPhone(s string) (string, bool) {
	if strings.ContainsAny(s, " -\t") {
		s = strings.Map(func(r rune) rune {
			if r == ' ' || r == '-' || r == '\t' {
				return -1
			}
			return r
		}, s)
	}
	digits := strings.TrimPrefix(s, "+")
	if len(digits) < 3 || len(digits) > 20 {
		return "", false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return "", false
		}
	}
	return s, true
}

func parseClosed(s string, loc *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	var err error
	for _, layout := range csvTimeLayouts {
		var t time.Time
		if t, err = time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, err
}
