package sip

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	sipgosip "github.com/emiago/sipgo/sip"
)

// regFakePinger fails for the contact ports in down.
type regFakePinger struct {
	mu    sync.Mutex
	down  map[int]bool
	pings map[int]int
}

func (p *regFakePinger) ping(ctx context.Context, b Binding) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pings[b.Contact.Port]++
	if p.down[b.Contact.Port] {
		return errors.New("timeout")
	}
	return nil
}

func (p *regFakePinger) set(port int, down bool) {
	p.mu.Lock()
	p.down[port] = down
	p.mu.Unlock()
}

func TestRegistrarQualify(t *testing.T) {
	t.Parallel()
	p := &regFakePinger{down: map[int]bool{}, pings: map[int]int{}}
	env := newRegEnv(t, func(c *RegistrarConfig) { c.Pinger = p.ping })
	for _, port := range []int{5001, 5002} {
		d := env.device("1001")
		d.contacts = []sipgosip.Header{regContact("sip:1001@127.0.0.1:" + strconv.Itoa(port))}
		regWantStatus(t, d.register(), 200)
	}
	env.takeChanges()
	ctx := context.Background()

	// Two failures, then an answer: the count starts again.
	p.set(5001, true)
	env.r.qualify(ctx)
	env.r.qualify(ctx)
	p.set(5001, false)
	env.r.qualify(ctx)
	p.set(5001, true)
	env.r.qualify(ctx)
	env.r.qualify(ctx)
	if len(env.r.Bindings("1001")) != 2 || len(env.takeChanges()) != 0 {
		t.Fatal("binding dropped before QualifyFailures consecutive failures")
	}
	env.r.qualify(ctx)
	bs := env.r.Bindings("1001")
	if len(bs) != 1 || bs[0].Contact.Port != 5002 {
		t.Fatalf("bindings = %+v", bs)
	}
	env.wantChange("1001", ReasonUnreachable, 1)
	if s := env.r.Stats(); s.Unreachable != 1 {
		t.Errorf("stats = %+v", s)
	}
	if p.pings[5002] != 6 {
		t.Errorf("5002 pinged %d times, want 6", p.pings[5002])
	}
}

// TestRegistrarStartStop runs the real loops: qualify on a short interval drops a dead
// binding; Stop ends every goroutine (TestMain checks for leaks).
func TestRegistrarStartStop(t *testing.T) {
	t.Parallel()
	var pings sync.WaitGroup
	blocked := make(chan struct{})
	pinger := func(ctx context.Context, b Binding) error {
		if b.Contact.Port == 5003 { // a ping that hangs until cancelled
			pings.Done()
			<-ctx.Done()
			close(blocked)
			return ctx.Err()
		}
		return errors.New("no answer")
	}
	env := newRegEnv(t, func(c *RegistrarConfig) {
		c.QualifyInterval = 10 * time.Millisecond
		c.QualifyTimeout = time.Hour // capped at the interval
		c.Pinger = pinger
	})
	d := env.device("1001")
	regWantStatus(t, d.register(), 200)
	env.takeChanges()
	env.r.Start(context.Background())
	env.r.Start(context.Background()) // no effect
	var changes []regChange
	for deadline := time.Now().Add(5 * time.Second); len(changes) == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("dead binding not dropped")
		}
		changes = env.takeChanges()
	}
	env.r.Stop()
	if len(changes) != 1 || changes[0].reason != ReasonUnreachable || len(env.r.Bindings("1001")) != 0 {
		t.Fatalf("changes = %+v", changes)
	}

	// A ping in flight is cancelled by Stop, and does not count as a failure.
	env.r.cfg.QualifyTimeout = time.Hour
	d2 := env.device("1002")
	d2.contacts = []sipgosip.Header{regContact("sip:1002@127.0.0.1:5003")}
	regWantStatus(t, d2.register(), 200)
	pings.Add(1)
	env.r.Start(context.Background())
	pings.Wait()
	env.r.Stop()
	<-blocked
	if len(env.r.Bindings("1002")) != 1 {
		t.Fatal("cancelled ping dropped the binding")
	}
}
