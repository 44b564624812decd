package call

import "sync"

// mailbox is the loop's inbox: posting never blocks (the ACD may post from inside a call
// the loop makes), and the loop takes everything queued at once.
type mailbox struct {
	mu     sync.Mutex
	q      []any
	closed bool
	signal chan struct{}
}

func (b *mailbox) init() { b.signal = make(chan struct{}, 1) }

func (b *mailbox) post(e any) bool {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return false
	}
	b.q = append(b.q, e)
	b.mu.Unlock()
	select {
	case b.signal <- struct{}{}:
	default:
	}
	return true
}

func (b *mailbox) take() []any {
	b.mu.Lock()
	defer b.mu.Unlock()
	q := b.q
	b.q = nil
	return q
}

// close refuses further posts and hands what is left to f.
func (b *mailbox) close(f func(any)) {
	b.mu.Lock()
	b.closed = true
	q := b.q
	b.q = nil
	b.mu.Unlock()
	for _, e := range q {
		f(e)
	}
}
