package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aviary-deploy/aviary/release"
)

// Kinds of target.
const (
	// TargetSlack is a Slack incoming webhook: the notice goes as Block Kit (SlackMessage).
	TargetSlack = "slack"
	// TargetWebhook is any URL taking a POST of generic JSON (WebhookMessage).
	TargetWebhook = "webhook"
)

// Target is where notices go.
type Target struct {
	Kind string // TargetSlack or TargetWebhook
	// URL is where to POST. A Slack webhook's URL is its secret: it is never logged or recorded.
	URL string
}

// Defaults of a Sender.
const (
	DefaultAttempts = 4
	DefaultBackoff  = 500 * time.Millisecond
	DefaultQueue    = 256
	DefaultTimeout  = 10 * time.Second
	// maxWait caps a wait between attempts, however long a receiver's Retry-After asks for.
	maxWait = 30 * time.Second
	// recordTimeout bounds one call of Record.
	recordTimeout = 30 * time.Second
)

// Sender sends notices in the background: Send never blocks the release and never fails it.
// Each target has its own queue and worker, so notices reach a target in the order they were
// sent, and a target that hangs holds up only itself.
//
// Set the fields before the first Send; a Sender must not be copied after it.
type Sender struct {
	Targets []Target
	// Client posts the notices; nil: a client with a 10 s timeout.
	Client *http.Client
	// Attempts is how many times a notice is tried on each target (default 4). Network errors,
	// 429 and 5xx answers are tried again; other answers are final.
	Attempts int
	// Backoff is the wait before the first retry, doubling after each (default 500ms), with
	// jitter. A 429's Retry-After (in seconds or a date) is honoured instead, up to 30 s.
	Backoff time.Duration
	// Queue is how many notices may wait for each target (default 256); a notice that finds its
	// target's queue full is dropped, logged and recorded.
	Queue int
	// Log is where notices not sent are reported (nil: nowhere).
	Log io.Writer
	// Record, if set, is called once per notice and target with an audit entry of kind
	// release.EventNotice saying whether it was sent, with Data {"target", "notice",
	// "attempts", "ok", "error", "status"}. It is called from the workers, concurrently for
	// different targets; its error is only logged.
	Record func(ctx context.Context, e release.Event) error

	start   sync.Once
	mu      sync.Mutex // guards closed and the queues' closing
	closed  bool
	workers []*worker
	wg      sync.WaitGroup
	ctx     context.Context // ends when Close gives up waiting
	abort   context.CancelCauseFunc
	client  *http.Client
	log     *slog.Logger
	unsent  atomic.Int64 // notices given up on because Close stopped waiting
}

// worker delivers the notices of one target, one at a time.
type worker struct {
	target Target
	host   string // the URL's host: what logs and records name, the URL being a secret
	bad    error  // why the target cannot be sent to at all
	queue  chan item
}

// item is a notice encoded for one target, with what its audit entry says of the release.
type item struct {
	kind  Kind
	id    string
	phase release.Phase
	step  int
	body  []byte
}

// init starts the workers, once.
func (s *Sender) init() {
	s.start.Do(func() {
		s.ctx, s.abort = context.WithCancelCause(context.Background())
		s.client = s.Client
		if s.client == nil {
			s.client = &http.Client{Timeout: DefaultTimeout}
		}
		w := s.Log
		if w == nil {
			w = io.Discard
		}
		s.log = slog.New(slog.NewTextHandler(w, nil))
		size := s.Queue
		if size <= 0 {
			size = DefaultQueue
		}
		for _, t := range s.Targets {
			wk := &worker{target: t, queue: make(chan item, size)}
			u, err := url.Parse(t.URL)
			switch {
			case t.Kind != TargetSlack && t.Kind != TargetWebhook:
				wk.bad = fmt.Errorf("unknown kind of target %q: it is %s or %s", t.Kind, TargetSlack, TargetWebhook)
			case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
				wk.bad = errors.New("the target's URL is not an http or https URL")
			default:
				wk.host = u.Host
			}
			s.workers = append(s.workers, wk)
			s.wg.Go(func() { s.run(wk) })
		}
	})
}

// Send queues a notice for every target and returns at once. A notice that finds a target's
// queue full, or comes after Close, is not sent there: that is logged (and, when the queue was
// full, recorded).
func (s *Sender) Send(n Notice) {
	s.init()
	if n.Time.IsZero() {
		n.Time = time.Now()
	}
	// Encoding now keeps nothing of the caller's release for later: it may change it at once.
	var slack, hook []byte
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range s.workers {
		if s.closed {
			s.log.Warn(fmt.Sprintf("%s notice %q of release %s not sent: the sender is closed", w.target.Kind, n.Kind, n.Release.ID),
				"release", n.Release.ID, "target", w.target.Kind, "notice", string(n.Kind))
			continue
		}
		it := item{kind: n.Kind, id: n.Release.ID, phase: n.Release.Phase, step: stepNumber(n.Release)}
		switch w.target.Kind {
		case TargetSlack:
			if slack == nil {
				slack = encode(SlackMessage(n))
			}
			it.body = slack
		case TargetWebhook:
			if hook == nil {
				hook = encode(WebhookMessage(n))
			}
			it.body = hook
		}
		select {
		case w.queue <- it:
		default:
			err := fmt.Errorf("%d notices were already waiting to be sent", cap(w.queue))
			s.log.Warn(fmt.Sprintf("%s notice %q of release %s dropped: %v", w.target.Kind, n.Kind, n.Release.ID, err),
				"release", n.Release.ID, "target", w.target.Kind, "notice", string(n.Kind))
			// Recorded aside: Record may be slow, and Send must not wait for it. Close waits.
			s.wg.Go(func() {
				s.record(w, it, fmt.Sprintf("%s notice %q dropped: %v", w.target.Kind, it.kind, err), 0, false, 0, err)
			})
		}
	}
}

func encode(m map[string]any) []byte {
	b, err := json.Marshal(m)
	if err != nil {
		// The payloads are maps of strings, numbers and such: this cannot happen.
		panic(fmt.Sprintf("notify: encode payload: %v", err))
	}
	return b
}

// Close stops taking notices and waits for those queued to be delivered (or given up on). If ctx
// ends first, what is being sent is abandoned, what is left is logged as not sent, and Close
// says how many were not.
func (s *Sender) Close(ctx context.Context) error {
	s.init()
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		for _, w := range s.workers {
			close(w.queue)
		}
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	cause := context.Cause(ctx)
	s.abort(cause)
	// Every wait of the workers ends with s.ctx: they now only log what is left.
	<-done
	if n := s.unsent.Load(); n > 0 {
		return fmt.Errorf("%d notices not sent: %w", n, cause)
	}
	return nil
}

// run delivers a target's notices in order until its queue is closed and empty.
func (s *Sender) run(w *worker) {
	for it := range w.queue {
		if s.ctx.Err() != nil {
			s.notSent(w, it)
			continue
		}
		s.deliver(w, it)
	}
}

// notSent logs a notice abandoned because Close stopped waiting.
func (s *Sender) notSent(w *worker, it item) {
	s.unsent.Add(1)
	s.log.Warn(fmt.Sprintf("%s notice %q of release %s not sent: %v", w.target.Kind, it.kind, it.id, context.Cause(s.ctx)),
		"release", it.id, "target", w.target.Kind, "notice", string(it.kind))
}

// deliver tries a notice until it is delivered, refused, or out of attempts.
func (s *Sender) deliver(w *worker, it item) {
	if w.bad != nil {
		s.failed(w, it, 0, 0, w.bad)
		return
	}
	attempts := s.Attempts
	if attempts <= 0 {
		attempts = DefaultAttempts
	}
	var err error
	var status int
	for i := 1; i <= attempts; i++ {
		var retry bool
		var wait time.Duration
		status, retry, wait, err = s.post(w, it.body)
		if err == nil {
			msg := fmt.Sprintf("%s notice %q sent", w.target.Kind, it.kind)
			if i > 1 {
				msg += fmt.Sprintf(" on attempt %d", i)
			}
			s.record(w, it, msg, i, true, status, nil)
			return
		}
		if s.ctx.Err() != nil {
			s.notSent(w, it)
			return
		}
		if !retry || i == attempts {
			s.failed(w, it, i, status, err)
			return
		}
		if wait == 0 {
			wait = s.backoff(i)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-s.ctx.Done():
			t.Stop()
			s.notSent(w, it)
			return
		}
	}
}

// failed logs and records a notice that could not be delivered.
func (s *Sender) failed(w *worker, it item, attempts, status int, err error) {
	msg := fmt.Sprintf("%s notice %q failed after %s: %v", w.target.Kind, it.kind, plural(attempts, "attempt"), err)
	s.log.Warn(fmt.Sprintf("release %s: %s", it.id, msg),
		"release", it.id, "target", w.target.Kind, "host", w.host, "notice", string(it.kind), "attempts", attempts, "status", status)
	s.record(w, it, msg, attempts, false, status, err)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

// record writes the audit entry of a notice to one target.
func (s *Sender) record(w *worker, it item, msg string, attempts int, ok bool, status int, err error) {
	if s.Record == nil {
		return
	}
	data := map[string]any{"target": w.target.Kind, "notice": string(it.kind), "attempts": attempts, "ok": ok}
	if w.host != "" {
		data["host"] = w.host
	}
	if err != nil {
		data["error"] = err.Error()
	}
	if status != 0 {
		data["status"] = status
	}
	e := release.Event{
		ReleaseID: it.id, Time: time.Now(), Actor: "aviary", Kind: release.EventNotice,
		Phase: it.phase, Step: it.step, Message: msg, Data: data,
	}
	ctx, cancel := context.WithTimeout(s.ctx, recordTimeout)
	defer cancel()
	if err := s.Record(ctx, e); err != nil {
		s.log.Warn(fmt.Sprintf("release %s: could not record that %s: %v", it.id, msg, err), "release", it.id)
	}
}

// post makes one attempt. It says whether another is worth making, and how long a 429 asked to
// wait first (0: it did not say).
func (s *Sender) post(w *worker, body []byte) (status int, retry bool, wait time.Duration, err error) {
	req, err := http.NewRequestWithContext(s.ctx, http.MethodPost, w.target.URL, bytes.NewReader(body))
	if err != nil {
		return 0, false, 0, errors.New("the target's URL cannot be posted to")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "aviary-notify")
	resp, err := s.client.Do(req)
	if err != nil {
		// url.Error quotes the URL, which for Slack is the secret.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = fmt.Errorf("%s: %w", strings.ToLower(ue.Op), ue.Err)
		}
		return 0, true, 0, err
	}
	defer resp.Body.Close()
	head, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp.StatusCode, false, 0, nil
	}
	err = fmt.Errorf("the receiver answered %s", resp.Status)
	if b := strings.TrimSpace(string(head)); b != "" {
		err = fmt.Errorf("%w: %s", err, clip(strings.Join(strings.Fields(b), " "), 200))
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		return resp.StatusCode, true, retryAfter(resp.Header.Get("Retry-After")), err
	case resp.StatusCode >= 500:
		return resp.StatusCode, true, 0, err
	}
	return resp.StatusCode, false, 0, err
}

// retryAfter reads a Retry-After header, in seconds or as a date, capped at maxWait; 0: none.
func retryAfter(h string) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.Atoi(h); err == nil {
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(h); err == nil {
		d = time.Until(t)
	}
	return min(max(d, 0), maxWait)
}

// backoff is the wait after attempt i failed: Backoff doubled each time, ±50% jitter so that
// senders retrying together spread out, capped at maxWait.
func (s *Sender) backoff(i int) time.Duration {
	b := s.Backoff
	if b <= 0 {
		b = DefaultBackoff
	}
	d := b
	for range i - 1 {
		if d >= maxWait {
			break
		}
		d *= 2
	}
	d = min(d, maxWait)
	return min(d/2+rand.N(d), maxWait)
}
