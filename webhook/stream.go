package webhook

import (
	"context"

	"github.com/hotline12345/hotline/cdr"
)

// Subscription is a client of the SSE stream: it receives the events Run
// passes from now on. C is closed when the subscriber fell subBuffer
// events behind (it should reconnect with Last-Event-ID) or the hub stopped.
type Subscription struct {
	C    <-chan cdr.OutboxEvent
	c    chan cdr.OutboxEvent
	Head int64 // the outbox seq Run had passed when the subscription began
}

// Subscribe adds a subscriber; Unsubscribe must follow.
func (h *Hub) Subscribe() (*Subscription, error) {
	c := make(chan cdr.OutboxEvent, subBuffer)
	s := &Subscription{C: c, c: c}
	h.subMu.Lock()
	defer h.subMu.Unlock()
	if h.subs == nil {
		return nil, ErrClosed
	}
	s.Head = h.head.Load()
	h.subs[s] = struct{}{}
	return s, nil
}

// Unsubscribe removes s (safe after it was dropped).
func (h *Hub) Unsubscribe(s *Subscription) {
	h.subMu.Lock()
	defer h.subMu.Unlock()
	if _, ok := h.subs[s]; ok {
		delete(h.subs, s)
		close(s.c)
	}
}

// Subscribers is the number of subscribers.
func (h *Hub) Subscribers() int {
	h.subMu.Lock()
	defer h.subMu.Unlock()
	return len(h.subs)
}

// fanOut offers evs to every subscriber without blocking; one whose buffer
// is full is dropped.
func (h *Hub) fanOut(evs []cdr.OutboxEvent) {
	h.subMu.Lock()
	defer h.subMu.Unlock()
	for s := range h.subs {
		for _, e := range evs {
			select {
			case s.c <- e:
				continue
			default:
			}
			delete(h.subs, s)
			close(s.c)
			break
		}
	}
}

func (h *Hub) closeSubs() {
	h.subMu.Lock()
	defer h.subMu.Unlock()
	for s := range h.subs {
		close(s.c)
	}
	h.subs = nil
}

// Since returns the events after seq after up to upTo (the outbox's),
// for a stream that resumes with Last-Event-ID.
func (h *Hub) Since(ctx context.Context, after, upTo int64, limit int) ([]cdr.OutboxEvent, error) {
	return h.opts.Store.ListOutbox(ctx, after, upTo, limit)
}
