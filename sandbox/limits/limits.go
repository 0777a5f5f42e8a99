// Package limits is the seam between the sandbox's front door and its services: once a service
// knows which operation a request is, it asks a [Limiter] whether the request may run. The
// sandbox's limiter enforces Lambda's request quotas, injects the faults an operator asked for,
// and records the operation in the request log. Each service renders a [Refusal] as its own
// protocol's error (a throttle or a server error).
package limits

import (
	"net/http"
	"time"
)

// Op names an operation as the request log and the quota see it.
type Op struct {
	Service  string // "lambda", "s3", "monitoring", ...
	Name     string // the API operation, e.g. "UpdateAlias"
	Resource string // the function, bucket or alarm it acts on, when there is one
	// Quota names the request-rate quota the call counts against, if any: QuotaControlPlane for
	// Lambda's shared control-plane quota, or an operation's own (QuotaGetFunction).
	Quota string
}

// Quotas AWS applies to Lambda API requests, per account and Region.
const (
	// QuotaControlPlane is shared by every control-plane call except Invoke, GetFunction and
	// GetPolicy: 15 requests per second.
	QuotaControlPlane = "control-plane"
	// QuotaGetFunction is GetFunction's own: 100 requests per second.
	QuotaGetFunction = "GetFunction"
)

// Kind says why a request was refused.
type Kind int

const (
	// RateLimited is a request quota: AWS answers a throttle with Retry-After.
	RateLimited Kind = iota + 1
	// InjectedThrottle is a fault: a throttling error, as under load.
	InjectedThrottle
	// InjectedServerError is a fault: a 5xx service error.
	InjectedServerError
)

// Refusal is a limiter's "no".
type Refusal struct {
	Kind       Kind
	RetryAfter time.Duration
}

// Limiter admits or refuses requests. A nil Limiter admits everything.
type Limiter interface {
	Admit(r *http.Request, op Op) *Refusal
}

// Admit asks l, tolerating a nil limiter.
func Admit(l Limiter, r *http.Request, op Op) *Refusal {
	if l == nil {
		return nil
	}
	return l.Admit(r, op)
}
