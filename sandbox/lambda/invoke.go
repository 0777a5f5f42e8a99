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
	// RequestID is the invocation's request ID: the Invoke response's x-amzn-RequestId and the
	// RequestId of its log.
	RequestID      string
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
	lim      concLimits
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
	if req.RequestID == "" {
		req.RequestID = newRevisionID()
	}
	switch req.InvocationType {
	case "DryRun":
		return invokeResponse{Status: http.StatusNoContent}, nil
	case "Event":
		s.async.Add(1)
		go func() {
			defer s.async.Done()
			s.runAsync(t, req.RequestID, req.Payload, clientContext)
		}()
		return invokeResponse{Status: http.StatusAccepted}, nil
	}

	p, err := s.exec.pool(t.key, t.spec)
	if err != nil {
		return invokeResponse{}, apiErr("ServiceException", "%v", err)
	}
	env, err := p.acquire(ctx, t.lim, false)
	if err != nil {
		var th *errThrottled
		if errors.As(err, &th) {
			s.record(t, Invocation{Throttled: true})
			return invokeResponse{}, tooManyRequests("Rate Exceeded.", th.reason, th.retryAfter)
		}
		var se *startError
		if errors.As(err, &se) {
			res := s.startFailed(t, req.RequestID, se)
			out := invokeResponse{Status: http.StatusOK, FunctionError: "Unhandled", ExecutedVersion: t.version, Payload: res.payload}
			return out, nil
		}
		return invokeResponse{}, apiErr("ServiceException", "%v", err)
	}
	o := s.runOn(ctx, p, env, t, req.RequestID, req.Payload, clientContext, req.LogType == "Tail")
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
	if v.PackageType != packageImage && !strings.HasPrefix(v.Runtime, "provided") {
		return target{}, apiErr("InvalidRuntimeException", "The runtime parameter of %s is not supported by the Aviary sandbox: it runs provided.al2023 and provided.al2 functions (a bootstrap in the zip).", v.Runtime)
	}
	resource := f.Name
	if q != "" {
		resource = f.Name + ":" + q
	}
	return target{
		fn: f.Name, resource: resource, arn: s.qualifiedARN(f.Name, q), version: v.Version, alias: a != nil,
		key: poolKey{fn: f.Name, version: v.Version, gen: v.Generation},
		spec: envSpec{
			Function: f.Name, Version: v.Version, Runtime: v.Runtime, Handler: v.Handler, CodeKey: v.RunKey, ImageConfig: cloneImageConfig(v.ImageConfig),
			Timeout: time.Duration(v.Timeout) * time.Second, MemoryMB: v.MemorySize, Env: v.Env,
			LogGroup: v.Logging.LogGroup, LogFormat: v.Logging.LogFormat,
			ApplicationLogLevel: v.Logging.ApplicationLogLevel, SystemLogLevel: v.Logging.SystemLogLevel,
		},
		lim: concLimits{reserved: f.Reserved, unreserved: s.unreservedLocked()},
	}, nil
}

// runAsync runs an Event invocation: it waits for a free environment instead of throttling, as
// Lambda's internal queue does.
func (s *Service) runAsync(t target, id string, payload []byte, clientContext string) {
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
	env, err := p.acquire(ctx, t.lim, true)
	if err != nil {
		var se *startError
		if errors.As(err, &se) {
			s.startFailed(t, id, se)
		}
		return
	}
	s.runOn(ctx, p, env, t, id, payload, clientContext, false)
}

type outcome struct {
	res runtimeResult
	log []byte
}

func (s *Service) runOn(ctx context.Context, p *pool, env *execEnv, t target, id string, payload []byte, clientContext string, wantLog bool) outcome {
	inv := &invocation{id: id, payload: payload, arn: t.arn, clientContext: clientContext, done: make(chan runtimeResult, 1)}
	rep := env.run(ctx, inv)
	for retry := 0; rep.undelivered && retry < 2; retry++ {
		// The warm environment had died between invocations (its runtime exited after its last
		// answer): Lambda starts a fresh one for the next event rather than failing it.
		p.release(env)
		fresh, err := p.acquire(ctx, t.lim, true)
		if err != nil {
			// No environment to run it on: report what the dead one gave.
			s.record(t, Invocation{Error: true, Duration: rep.dur})
			return outcome{res: rep.res}
		}
		env = fresh
		inv.done = make(chan runtimeResult, 1)
		rep = env.run(ctx, inv)
	}
	end := time.Now()
	p.release(env)
	s.record(t, Invocation{Error: rep.res.isError, Duration: rep.dur})
	var log []byte
	if wantLog || s.cfg.Logs != nil {
		l := &invocationLog{id: id, arn: t.arn, region: s.cfg.Region, spec: env.spec, stream: env.stream,
			coldStart: rep.initDur > 0, envStarted: env.started, rep: rep, end: end}
		l.spec.Version = t.version
		evs := l.events()
		s.writeLogs(l.spec, env.stream, evs)
		if wantLog {
			log = logText(evs)
		}
	}
	return outcome{res: rep.res, log: log}
}

// startFailed records an invocation whose execution environment could not start (no bootstrap,
// say), logging it as Lambda does: the init fails, and so does the invocation.
func (s *Service) startFailed(t target, id string, se *startError) runtimeResult {
	res := runtimeResult{isError: true, fault: true, errorType: se.typ, payload: errorPayload(se.typ, fmt.Sprintf("RequestId: %s Error: %s", id, se.msg))}
	s.record(t, Invocation{Error: true})
	if s.cfg.Logs != nil {
		now := time.Now()
		l := &invocationLog{id: id, arn: t.arn, region: s.cfg.Region, spec: t.spec, stream: logStreamName(now, t.version),
			coldStart: true, envStarted: now, rep: runReport{res: res, initFail: true, start: now}, end: now}
		s.writeLogs(t.spec, l.stream, l.events())
	}
	return res
}

func (s *Service) writeLogs(spec envSpec, stream string, evs []LogEvent) {
	if s.cfg.Logs == nil {
		return
	}
	group := spec.LogGroup
	if group == "" {
		group = "/aws/lambda/" + spec.Function
	}
	s.cfg.Logs.WriteLogs(group, stream, evs)
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

// InvokeEvent invokes a function asynchronously (InvocationType Event), as another AWS service
// delivering an event does: SNS for a lambda subscription. functionARN may be a name or an ARN,
// qualified or not.
func (s *Service) InvokeEvent(functionARN string, payload []byte) error {
	if _, err := s.invoke(context.Background(), invokeRequest{FunctionName: functionARN, InvocationType: "Event", Payload: payload}); err != nil {
		return err
	}
	return nil
}
