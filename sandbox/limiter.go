package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/aviary-deploy/aviary/sandbox/limits"
)

// Faults says which requests fail on purpose, and how.
type Faults struct {
	// Rate is the share of matching requests that fail, from 0 to 1.
	Rate float64 `json:"rate"`
	// Kinds are the failures to choose from: "throttle" (the service's throttling error) and
	// "5xx" (its internal error). Empty means both.
	Kinds []string `json:"kinds,omitempty"`
	// Latency is added to every matching request.
	Latency Duration `json:"latency,omitempty"`
	// Services and Operations narrow which requests match ("lambda", "UpdateAlias", ...); empty
	// matches all.
	Services   []string `json:"services,omitempty"`
	Operations []string `json:"operations,omitempty"`
	// Seed makes the sequence of failures repeatable.
	Seed uint64 `json:"seed,omitempty"`
}

// Duration is a time.Duration written as "50ms" in JSON.
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n int64
		if err2 := json.Unmarshal(b, &n); err2 != nil {
			return fmt.Errorf("latency must be a duration such as \"50ms\": %w", err)
		}
		*d = Duration(n)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

func (f Faults) validate() error {
	if f.Rate < 0 || f.Rate > 1 {
		return fmt.Errorf("fault rate %v is outside 0..1", f.Rate)
	}
	for _, k := range f.Kinds {
		if k != "throttle" && k != "5xx" {
			return fmt.Errorf("fault kind %q is not one of throttle, 5xx", k)
		}
	}
	if f.Latency < 0 {
		return fmt.Errorf("fault latency %v is negative", f.Latency)
	}
	return nil
}

func (f Faults) matches(op limits.Op) bool {
	return (len(f.Services) == 0 || slices.Contains(f.Services, op.Service)) &&
		(len(f.Operations) == 0 || slices.Contains(f.Operations, op.Name))
}

// limiter is the sandbox's [limits.Limiter]: it records each request's operation, adds fault latency,
// injects faults, and enforces Lambda's request quotas with token buckets.
type limiter struct {
	log *requestLog
	now func() time.Time // the quotas' clock

	mu      sync.Mutex
	f       Faults
	rng     *rand.Rand
	buckets map[string]*tokenBucket // by quota name; none when quotas are off
}

// tokenBucket admits rate requests per second, burst at once.
type tokenBucket struct {
	rate, burst, tokens float64
	last                time.Time
}

// take spends a token, or says how long until one is free.
func (b *tokenBucket) take(now time.Time) (ok bool, wait time.Duration) {
	if !b.last.IsZero() && now.After(b.last) {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	if now.After(b.last) {
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
}

// getFunctionRate is GetFunction's own quota on AWS.
const getFunctionRate = 100

func newLimiter(rate float64, burst int, f Faults, log *requestLog) *limiter {
	g := &limiter{log: log, now: time.Now}
	g.setQuota(rate, burst)
	g.setFaults(f)
	return g
}

// setQuota sets the control-plane quota (rate per second, burst at once); rate 0 turns every
// quota off.
func (g *limiter) setQuota(rate float64, burst int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.buckets = map[string]*tokenBucket{}
	if rate <= 0 {
		return
	}
	b := float64(burst)
	if b <= 0 {
		b = max(rate, 1)
	}
	g.buckets[limits.QuotaControlPlane] = &tokenBucket{rate: rate, burst: b, tokens: b}
	g.buckets[limits.QuotaGetFunction] = &tokenBucket{rate: getFunctionRate, burst: getFunctionRate, tokens: getFunctionRate}
}

func (g *limiter) setFaults(f Faults) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.f = f
	g.rng = rand.New(rand.NewPCG(f.Seed, f.Seed^0x9e3779b97f4a7c15))
}

func (g *limiter) faults() Faults {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.f
}

// Admit implements limits.Gate.
func (g *limiter) Admit(r *http.Request, op limits.Op) *limits.Refusal {
	if e := entryFrom(r.Context()); e != nil {
		e.Operation, e.Resource, e.ControlPlane = op.Name, op.Resource, op.Quota == limits.QuotaControlPlane
	}
	g.mu.Lock()
	f := g.f
	var fail limits.Kind
	if f.matches(op) && f.Rate > 0 && g.rng.Float64() < f.Rate {
		fail = limits.InjectedThrottle
		kinds := f.Kinds
		if len(kinds) == 0 {
			kinds = []string{"throttle", "5xx"}
		}
		if kinds[g.rng.IntN(len(kinds))] == "5xx" {
			fail = limits.InjectedServerError
		}
	}
	var wait time.Duration
	limited := false
	if b := g.buckets[op.Quota]; b != nil {
		var ok bool
		ok, wait = b.take(g.now())
		limited = !ok
	}
	g.mu.Unlock()

	if f.Latency > 0 && f.matches(op) {
		sleep(r.Context(), time.Duration(f.Latency))
	}
	switch {
	case limited:
		return &limits.Refusal{Kind: limits.RateLimited, RetryAfter: wait}
	case fail != 0:
		return &limits.Refusal{Kind: fail}
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// Request is one entry of the sandbox's request log.
type Request struct {
	Time         time.Time     `json:"time"`
	Service      string        `json:"service"`
	Operation    string        `json:"operation"`
	Resource     string        `json:"resource,omitempty"`
	ControlPlane bool          `json:"controlPlane,omitempty"`
	Method       string        `json:"method"`
	Path         string        `json:"path"`
	Query        string        `json:"query,omitempty"`
	Status       int           `json:"status"`
	ErrorCode    string        `json:"errorCode,omitempty"`
	Duration     time.Duration `json:"duration"`
	UserAgent    string        `json:"userAgent,omitempty"`
}

// requestLog keeps the most recent requests.
type requestLog struct {
	mu      sync.Mutex
	max     int
	entries []Request
	watch   func(Request)
}

func newRequestLog(max int) *requestLog { return &requestLog{max: max} }

func (l *requestLog) add(r Request) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.entries) >= l.max {
		l.entries = append(l.entries[:0], l.entries[len(l.entries)-l.max/2:]...)
	}
	l.entries = append(l.entries, r)
	if l.watch != nil {
		l.watch(r)
	}
}

func (l *requestLog) all() []Request {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.entries)
}

func (l *requestLog) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = nil
}

type entryKey struct{}

func withEntry(ctx context.Context, e *Request) context.Context {
	return context.WithValue(ctx, entryKey{}, e)
}

func entryFrom(ctx context.Context) *Request {
	e, _ := ctx.Value(entryKey{}).(*Request)
	return e
}
