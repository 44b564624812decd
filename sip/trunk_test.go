package sip

import (
	"net/netip"
	"slices"
	"sync"
	"testing"
)

func TestMatch(t *testing.T) {
	t.Parallel()
	ct := &Trunk{Name: "ct", Sources: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}, DIDs: []string{"12345"}}
	cu := &Trunk{Name: "cu", Sources: []netip.Prefix{netip.MustParsePrefix("10.2.0.0/16"), netip.MustParsePrefix("2001:db8::/32")}, DIDs: []string{"12345", "12315"}}
	cuBackup := &Trunk{Name: "cu-backup", Sources: []netip.Prefix{netip.MustParsePrefix("10.2.3.0/24")}, DIDs: []string{"96110"}}
	overlap := &Trunk{Name: "overlap", Sources: []netip.Prefix{netip.MustParsePrefix("10.1.2.3/32")}, DIDs: []string{"12345"}}
	trunks := []*Trunk{ct, cu, cuBackup, overlap}
	tests := []struct {
		src, number string
		trunk       *Trunk
		served      bool
	}{
		{"10.1.2.3", "12345", ct, true}, // first trunk that serves wins, even if a later one is more specific
		{"10.1.9.9", "12315", ct, false},
		{"10.2.3.4", "12315", cu, true},
		{"10.2.3.4", "96110", cuBackup, true}, // a later trunk serves the number
		{"10.2.3.4", "110", cu, false},        // allowed by two, served by none: the first
		{"2001:db8::7", "12345", cu, true},
		{"::ffff:10.1.0.1", "12345", ct, true}, // IPv4-mapped source
		{"192.0.2.1", "12345", nil, false},
		{"10.3.0.1", "12345", nil, false},
		{"10.1.0.1", "", ct, false},
	}
	for _, tt := range tests {
		tr, served := match(trunks, netip.MustParseAddr(tt.src), tt.number)
		if tr != tt.trunk || served != tt.served {
			name := "<nil>"
			if tr != nil {
				name = tr.Name
			}
			t.Errorf("match(%s, %q) = %s %v, want %v %v", tt.src, tt.number, name, served, tt.trunk, tt.served)
		}
	}
	if tr, served := match(nil, netip.MustParseAddr("10.1.0.1"), "12345"); tr != nil || served {
		t.Error("match with no trunks")
	}
}

func TestTrunkAcquire(t *testing.T) {
	t.Parallel()
	tr := &Trunk{MaxCalls: 3}
	counted([]*Trunk{tr}, nil)
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := 0
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if tr.acquire() {
				mu.Lock()
				got++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if got != 3 || tr.Active() != 3 {
		t.Fatalf("acquired %d, active %d, want 3", got, tr.Active())
	}
	tr.release()
	if !tr.acquire() || tr.acquire() {
		t.Fatal("release did not free exactly one slot")
	}

	unlimited := &Trunk{}
	counted([]*Trunk{unlimited}, nil)
	for i := 0; i < 1000; i++ {
		if !unlimited.acquire() {
			t.Fatal("unlimited trunk refused")
		}
	}
	if unlimited.Active() != 1000 {
		t.Fatalf("active %d", unlimited.Active())
	}
}

func TestTrunkCodecs(t *testing.T) {
	t.Parallel()
	if got := (&Trunk{}).codecs(); !slices.Equal(got, []uint8{PayloadPCMA, PayloadPCMU}) {
		t.Fatalf("default codecs %v", got)
	}
	if got := (&Trunk{Codecs: []uint8{PayloadPCMU}}).codecs(); !slices.Equal(got, []uint8{PayloadPCMU}) {
		t.Fatalf("codecs %v", got)
	}
	tr := &Trunk{DIDs: []string{"12345"}}
	if !tr.Serves("12345") || tr.Serves("1234") || tr.Serves("") {
		t.Fatal("Serves")
	}
}
