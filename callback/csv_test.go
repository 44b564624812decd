package callback

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

var shanghai = time.FixedZone("CST", 8*3600)

// mainlandMobile is the default config's dial plan.
var mainlandMobile = regexp.MustCompile(`^1[3-9][0-9]{9}$`).MatchString

func TestReadCSVGood(t *testing.T) {
	in := "case_id,phone,queue,agent,closed_at\n" +
		"C1,13900000001,complaint,1001,2026-03-15 09:30\n" +
		"C2,139-0000-0002,consult,1002,2026-03-15T10:00:00+08:00\n" +
		"C3,13900000003,,,\n" +
		"\"C4\",\" 13900000004 \",business,1003,2026/3/15 8:05:09\n"
	ts, bad, err := ReadCSV(strings.NewReader(in), mainlandMobile, 24*time.Hour, shanghai)
	if err != nil || len(bad) != 0 {
		t.Fatalf("err %v, bad %v", err, bad)
	}
	closed1 := time.Date(2026, 3, 15, 1, 30, 0, 0, time.UTC)
	closed4 := time.Date(2026, 3, 15, 0, 5, 9, 0, time.UTC)
	want := []Target{
		{CaseID: "C1", Phone: "13900000001", Queue: "complaint", Agent: "1001", ClosedAt: closed1, Deadline: closed1.Add(24 * time.Hour), State: TargetPending},
		{CaseID: "C2", Phone: "13900000002", Queue: "consult", Agent: "1002", ClosedAt: closed1.Add(30 * time.Minute), Deadline: closed1.Add(24*time.Hour + 30*time.Minute), State: TargetPending},
		{CaseID: "C3", Phone: "13900000003", State: TargetPending},
		{CaseID: "C4", Phone: "13900000004", Queue: "business", Agent: "1003", ClosedAt: closed4, Deadline: closed4.Add(24 * time.Hour), State: TargetPending},
	}
	if fmt.Sprintf("%+v", ts) != fmt.Sprintf("%+v", want) {
		t.Errorf("targets:\n got %+v\nwant %+v", ts, want)
	}
}

func TestReadCSVBadLines(t *testing.T) {
	in := "case_id,phone,closed_at\n" + // line 1
		"C1,13900000001,2026-03-15 09:30\n" + // 2 ok
		",13900000002,\n" + // 3 missing case id
		"C3,abc,\n" + // 4 bad phone
		"C4,01012345678,\n" + // 5 outside the dial plan
		"C5,13900000005,yesterday\n" + // 6 bad closed_at
		"C1,13900000006,\n" + // 7 duplicate of line 2
		"\n" + // 8 empty: skipped
		",,\n" + // 9 empty cells: skipped
		"C10,13900000010,\"2026-03-15 10:00\"\n" + // 10 ok
		"C11,\"multi\nline\",\n" + // 11-12 bad phone, reported at its first line
		"C13,139000000\"13,\n" + // 13 malformed quote
		"C14\n" + // 14 missing phone
		"C15,13900000015,2026-03-15 10:00\n" // 15 ok
	ts, bad, err := ReadCSV(strings.NewReader(in), mainlandMobile, time.Hour, shanghai)
	if err != nil {
		t.Fatal(err)
	}
	if got := caseIDs(ts); fmt.Sprint(got) != "[C1 C10 C15]" {
		t.Errorf("kept %v, want [C1 C10 C15]", got)
	}
	want := []struct {
		line   int
		prefix error
		has    string
	}{
		{3, ErrBadTarget, "missing case id"},
		{4, ErrBadTarget, `bad phone "abc"`},
		{5, ErrNotInDialPlan, "01012345678"},
		{6, ErrBadTarget, `bad closed_at "yesterday"`},
		{7, ErrDuplicateCase, "first on line 2"},
		{11, ErrBadTarget, "bad phone"},
		{13, ErrBadTarget, "malformed CSV"},
		{14, ErrBadTarget, "missing phone"},
	}
	if len(bad) != len(want) {
		t.Fatalf("bad = %+v, want %d lines", bad, len(want))
	}
	for i, w := range want {
		b := bad[i]
		if b.Index != w.line || !strings.HasPrefix(b.Err, w.prefix.Error()) || !strings.Contains(b.Err, w.has) {
			t.Errorf("bad[%d] = %+v, want line %d, %q ... %q", i, b, w.line, w.prefix, w.has)
		}
	}
	if bad[4].CaseID != "C1" {
		t.Errorf("duplicate reported for case %q, want C1", bad[4].CaseID)
	}
}

func TestReadCSVHeaders(t *testing.T) {
	// BOM, aliases in any order and case, extra columns ignored.
	in := "\xef\xbb\xbf备注, 电话 ,工单号,Closed,QUEUE,Agent\r\n" +
		"x,13900000001,A-1,2026-03-15 09:30:00,complaint,1001\r\n"
	ts, bad, err := ReadCSV(strings.NewReader(in), nil, 0, shanghai)
	if err != nil || len(bad) != 0 || len(ts) != 1 {
		t.Fatalf("targets %+v, bad %v, err %v", ts, bad, err)
	}
	tg := ts[0]
	if tg.CaseID != "A-1" || tg.Phone != "13900000001" || tg.Queue != "complaint" || tg.Agent != "1001" ||
		!tg.ClosedAt.Equal(time.Date(2026, 3, 15, 9, 30, 0, 0, shanghai)) || !tg.Deadline.IsZero() {
		t.Errorf("target %+v", tg)
	}
	for _, h := range []string{"case,number", "Case ID,Phone Number", "CASE_ID,mobile"} {
		ts, bad, err := ReadCSV(strings.NewReader(h+"\nk,13900000001\n"), nil, 0, nil)
		if err != nil || len(bad) != 0 || len(ts) != 1 || ts[0].CaseID != "k" {
			t.Errorf("header %q: %+v, %v, %v", h, ts, bad, err)
		}
	}
	for _, in := range []string{"", "\xef\xbb\xbf", "phone,queue\n13900000001,q\n", "case_id,agent\nk,1\n", "13900000001,k\n"} {
		if _, _, err := ReadCSV(strings.NewReader(in), nil, 0, nil); !errors.Is(err, ErrBadTarget) {
			t.Errorf("ReadCSV(%q): %v, want ErrBadTarget for the file", in, err)
		}
	}
}

func TestReadCSVDialPlan(t *testing.T) {
	in := "case_id,phone\nk1,13900000001\nk2,+8613900000002\nk3,12345\nk4,15900000004\n"
	ts, bad, err := ReadCSV(strings.NewReader(in), mainlandMobile, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := caseIDs(ts); fmt.Sprint(got) != "[k1 k4]" {
		t.Errorf("kept %v, want [k1 k4]", got)
	}
	if len(bad) != 2 || bad[0].Index != 3 || bad[1].Index != 4 {
		t.Fatalf("bad %+v, want lines 3 and 4", bad)
	}
	for _, b := range bad {
		if !strings.HasPrefix(b.Err, ErrNotInDialPlan.Error()) {
			t.Errorf("line %d: %q, want %q", b.Index, b.Err, ErrNotInDialPlan)
		}
	}
}

func benchCSV(n int) []byte {
	var b bytes.Buffer
	b.WriteString("\xef\xbb\xbfcase_id,phone,queue,agent,closed_at\n")
	for i := range n {
		fmt.Fprintf(&b, "C2026%07d,139%08d,complaint,%d,2026-03-15 %02d:%02d:%02d\n", i, i, 1001+i%50, i/3600%24, i/60%60, i%60)
	}
	return b.Bytes()
}

// BenchmarkReadCSV reads 100,000 rows per op (rows/s reported).
func BenchmarkReadCSV(b *testing.B) {
	const n = 100_000
	data := benchCSV(n)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		ts, bad, err := ReadCSV(bytes.NewReader(data), mainlandMobile, 24*time.Hour, shanghai)
		if err != nil || len(bad) != 0 || len(ts) != n {
			b.Fatalf("%d targets, %d bad, %v", len(ts), len(bad), err)
		}
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "rows/s")
}

// ScanCSV hands the good rows on in batches as it reads, the bad ones reported by line.
func TestScanCSVBatches(t *testing.T) {
	data := append(benchCSV(25), "\nX1,110,consult,1001,2026-12-07 10:00\n"...)
	var sizes []int
	total := 0
	bad, err := ScanCSV(bytes.NewReader(data), mainlandMobile, time.Hour, shanghai, 10, func(ts []Target) error {
		sizes = append(sizes, len(ts))
		total += len(ts)
		return nil
	})
	if err != nil || fmt.Sprint(sizes) != "[10 10 5]" || total != 25 || len(bad) != 1 || bad[0].CaseID != "X1" {
		t.Fatalf("batches %v, total %d, bad %+v, err %v", sizes, total, bad, err)
	}
	stop := errors.New("stop")
	if _, err := ScanCSV(bytes.NewReader(data), mainlandMobile, time.Hour, shanghai, 10, func([]Target) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("emit's error: %v", err)
	}
}

// Whatever the file, ReadCSV does not panic, keeps only targets with a case id and a number
// the dial plan allows, and never the same case id twice.
func FuzzReadCSV(f *testing.F) {
	f.Add([]byte("case_id,phone\nA1,13900000001\nA1,13900000002\n"))
	f.Add([]byte("\ufeff工单号,电话,办结时间\nB1,139 0000 0001,2026-12-07 10:00\nB2,110,x\n"))
	f.Add([]byte("phone\n\"unterminated\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ts, bad, err := ReadCSV(bytes.NewReader(data), mainlandMobile, time.Hour, shanghai)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, tg := range ts {
			if tg.CaseID == "" || !mainlandMobile(tg.Phone) || seen[tg.CaseID] {
				t.Fatalf("target %+v (bad %d)", tg, len(bad))
			}
			seen[tg.CaseID] = true
		}
	})
}
