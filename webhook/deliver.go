package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/hotline12345/hotline/cdr"
)

// Envelope renders ev as the feed's JSON (docs/events.md), its citizens'
// numbers masked unless full.
func Envelope(ev cdr.OutboxEvent, full bool, mask func(string) string) ([]byte, error) {
	if !full {
		ev.Data = ev.Data.MaskNumbers(mask)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(ev); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// deliver makes one attempt to post ev to k and reports to Run. It runs on
// a goroutine of its own, at most one per webhook at a time; the client's
// timeout bounds it.
func (h *Hub) deliver(ctx context.Context, k *hook, ev cdr.OutboxEvent, attempt int, replay bool) {
	err := h.post(ctx, k, ev, attempt)
	h.results <- result{h: k, ev: ev, replay: replay, err: err}
}

func (h *Hub) post(ctx context.Context, k *hook, ev cdr.OutboxEvent, attempt int) error {
	body, err := Envelope(ev, k.cfg.FullNumbers, h.opts.Mask)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, k.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	ts := time.Now().Unix()
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("User-Agent", "hotline-webhook/1")
	req.Header.Set(HeaderEventID, ev.ID)
	req.Header.Set(HeaderEventType, ev.Type)
	req.Header.Set(HeaderAttempt, strconv.Itoa(attempt))
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, Sign(k.cfg.Secret, ts, body))
	resp, err := k.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // keeps the connection reusable
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}
