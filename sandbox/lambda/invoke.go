package lambda

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"
)

type invokeRequest struct {
	FunctionName   string
	Qualifier      string
	InvocationType string
	LogType        string
	ClientContext  string
	Payload        []byte
}

type invokeResponse struct {
	Status          int
	Payload         []byte
	FunctionError   string
	ExecutedVersion string
	LogResult       string
}

const (
	maxSyncPayload  = 6 * 1024 * 1024
	maxAsyncPayload = 1024 * 1024
)

// target is what an Invoke resolved to, captured under the lock.
type target struct {
	fn       string
	resource string
	arn      string
	version  string
	alias    bool
	key      poolKey
	spec     envSpec
}

func (s *Service) invoke(ctx context.Context, req invokeRequest) (invokeResponse, *APIError) {
	switch req.InvocationType {
	case "", "RequestResponse", "Event", "DryRun":
	default:
		return invokeResponse{}, validation("invocationType", req.InvocationType, "Member must satisfy enum value set: [Event, RequestResponse, DryRun]")
	}
	switch req.LogType {
	case "", "None", "Tail":
	default:
		return invokeResponse{}, validation("logType", req.LogType, "Member must satisfy enum value set: [None, Tail]")
	}
	limit := maxSyncPayload
	if req.InvocationType == "Event" {
		limit = maxAsyncPayload
	}
	if len(req.Payload) > limit {
		return invokeResponse{}, apiErr("RequestTooLargeException", "Request must be smaller than %d bytes for the InvokeFunction operation", limit)
	}
	if len(req.Payload) == 0 {
		req.Payload = []byte("{}")
	} else if !json.Valid(req.Payload) {
		return invokeResponse{}, apiErr("InvalidRequestContentException", "Could not parse request body into json: Could not parse payload into json: Unexpected character: was expecting a JSON value")
	}
	clientContext := ""
	if req.ClientContext != "" {
		b, err := base64.StdEncoding.DecodeString(req.ClientContext)
		if err != nil || !json.Valid(b) {
			return invokeResponse{}, apiErr("InvalidRequestContentException", "Client context must be a valid Base64-encoded JSON object.")
		}
		clientContext = string(b)
	}

	t, aerr := s.target(req.FunctionName, req.Qualifier)
	if aerr != nil {
		return invokeResponse{}, aerr
	}
	switch req.InvocationType {
	case "DryRun":
		return invokeResponse{Status: http.StatusNoContent}, nil
	case "Event":
		s.async.Add(1)
		go func() {
			defer s.async.Done()
			s.runAsync(t, req.Payload, clientContext)
		}()
		return invokeResponse{Status: http.StatusAccepted}, nil
	}

	p, err := s.exec.pool(t.key, t.spec)
	if err != nil {
		return invokeResponse{}, apiErr("ServiceException", "%v", err)
	}
	env, err := p.acquire(ctx, false)
	if err != nil {
		var th errThrottled
		if errors.As(err, &th) {
			s.record(t, Invocation{Throttled: true})
			reason := "ConcurrentInvocationLimitExceeded"
			if th.reserved {
				reason = "ReservedFunctionConcurrentInvocationLimitExceeded"
			}
			return invokeResponse{}, &APIError{Type: "TooManyRequestsException", Message: "Rate Exceeded.", Reason: reason}
		}
		var se *startError
		if errors.As(err, &se) {
			out := invokeResponse{Status: http.StatusOK, FunctionError: "Unhandled", ExecutedVersion: t.version,
				Payload: errorPayload(se.typ, fmt.Sprintf("RequestId: %s Error: %s", newRevisionID(), se.msg))}
			s.record(t, Invocation{Error: true})
			return out, nil
		}
		return invokeResponse{}, apiErr("ServiceException", "%v", err)
	}
	o := s.runOn(ctx, p, env, t, req.Payload, clientContext, req.LogType == "Tail")
	out := invokeResponse{Status: http.StatusOK, Payload: o.res.payload, ExecutedVersion: t.version}
	if o.res.isError {
		out.FunctionError = "Unhandled"
	}
	if req.LogType == "Tail" {
		out.LogResult = base64.StdEncoding.EncodeToString(tail(o.log, 4096))
	}
	return out, nil
}

// target resolves a function and qualifier to the version to run, choosing by weight through
// an alias with a routing configuration.
func (s *Service) target(raw, qualifier string) (target, *APIError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, q, err := s.lookup(raw)
	if err != nil {
		return target{}, err
	}
	if q, err = mergeQualifier(q, qualifier); err != nil {
		return target{}, err
	}
	v, a, err := s.resolve(f, q)
	if err != nil {
		return target{}, err
	}
	if a != nil {
		for extra, w := range a.Weights {
			if rand.Float64() < w {
				v = f.Versions[extra]
			}
		}
	}
	if v.State == statePending {
		return target{}, conflict("The operation cannot be performed at this time. The function is currently in the following state: Pending")
	}
	if !strings.HasPrefix(v.Runtime, "provided") {
		return target{}, apiErr("InvalidRuntimeException", "The runtime parameter of %s is not supported by the Aviary sandbox: it runs provided.al2023 and provided.al2 functions (a bootstrap in the zip).", v.Runtime)
	}
	limit := s.cfg.MaxConcurrency
	resource := f.Name
	if q != "" {
		resource = f.Name + ":" + q
	}
	return target{
		fn: f.Name, resource: resource, arn: s.qualifiedARN(f.Name, q), version: v.Version, alias: a != nil,
		key: poolKey{fn: f.Name, version: v.Version, gen: v.Generation},
		spec: envSpec{
			Function: f.Name, Version: v.Version, Runtime: v.Runtime, Handler: v.Handler, CodeKey: v.RunKey,
			Timeout: time.Duration(v.Timeout) * time.Second, MemoryMB: v.MemorySize, Env: v.Env,
			LogGroup: v.Logging.LogGroup, Limit: limit, Reserved: f.Reserved,
		},
	}, nil
}

// runAsync runs an Event invocation: it waits for a free environment instead of throttling, as
// Lambda's internal queue does.
func (s *Service) runAsync(t target, payload []byte, clientContext string) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	p, err := s.exec.pool(t.key, t.spec)
	if err != nil {
		return
	}
	env, err := p.acquire(ctx, true)
	if err != nil {
		var se *startError
		if errors.As(err, &se) {
			s.record(t, Invocation{Error: true})
		}
		return
	}
	s.runOn(ctx, p, env, t, payload, clientContext, false)
}

type outcome struct {
	res runtimeResult
	log []byte
}

func (s *Service) runOn(ctx context.Context, p *pool, env *execEnv, t target, payload []byte, clientContext string, wantLog bool) outcome {
	inv := &invocation{id: newRevisionID(), payload: payload, arn: t.arn, clientContext: clientContext, done: make(chan runtimeResult, 1)}
	res, initDur, dur, out := env.run(ctx, inv)
	var log []byte
	if wantLog {
		log = formatLog(env, s.cfg.Region, inv.id, t.version, res, initDur, dur, out)
	}
	p.release(env)
	s.record(t, Invocation{Error: res.isError, Duration: dur})
	return outcome{res: res, log: log}
}

func (s *Service) record(t target, inv Invocation) {
	if s.cfg.Metrics == nil {
		return
	}
	inv.Time = s.cfg.Now()
	inv.FunctionName = t.fn
	inv.Resource = t.resource
	inv.ExecutedVersion = t.version
	inv.ThroughAlias = t.alias
	s.cfg.Metrics.RecordInvocation(inv)
}

// formatLog writes an invocation's log as Lambda does: START, the function's output, END and
// REPORT, with INIT_START first on a cold start.
func formatLog(env *execEnv, region, id, version string, res runtimeResult, initDur, dur time.Duration, out []byte) []byte {
	var b strings.Builder
	if initDur > 0 {
		fmt.Fprintf(&b, "INIT_START Runtime Version: %s\tRuntime Version ARN: arn:aws:lambda:%s::runtime:%s\n",
			strings.Replace(env.spec.Runtime, ".", ":", 1)+".v1", region, runtimeVersionID(env.spec.Runtime))
	}
	fmt.Fprintf(&b, "START RequestId: %s Version: %s\n", id, version)
	b.Write(out)
	if len(out) > 0 && out[len(out)-1] != '\n' {
		b.WriteByte('\n')
	}
	switch res.errorType {
	case "Sandbox.Timedout":
		fmt.Fprintf(&b, "%s %s Task timed out after %.2f seconds\n", time.Now().UTC().Format("2006-01-02T15:04:05.000Z"), id, env.spec.Timeout.Seconds())
	case "Runtime.ExitError":
		var p struct{ ErrorMessage string }
		_ = json.Unmarshal(res.payload, &p)
		fmt.Fprintf(&b, "%s\nRuntime.ExitError\n", p.ErrorMessage)
	}
	fmt.Fprintf(&b, "END RequestId: %s\n", id)
	ms := float64(dur.Microseconds()) / 1000
	fmt.Fprintf(&b, "REPORT RequestId: %s\tDuration: %.2f ms\tBilled Duration: %d ms\tMemory Size: %d MB\tMax Memory Used: %d MB\t",
		id, ms, billed(dur+initDur), env.spec.MemoryMB, env.maxMemoryMB())
	if initDur > 0 {
		fmt.Fprintf(&b, "Init Duration: %.2f ms\t", float64(initDur.Microseconds())/1000)
	}
	if res.errorType == "Sandbox.Timedout" {
		b.WriteString("Status: timeout")
	}
	b.WriteString("\n")
	return []byte(b.String())
}

// billed rounds a duration up to the next millisecond, as Lambda bills provided runtimes (init
// included).
func billed(d time.Duration) int64 {
	ms := d.Milliseconds()
	if d%time.Millisecond != 0 || ms == 0 {
		ms++
	}
	return ms
}

func tail(b []byte, n int) []byte {
	if len(b) <= n {
		return b
	}
	return b[len(b)-n:]
}
