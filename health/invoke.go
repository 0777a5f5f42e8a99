package health

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/smithy-go"

	"github.com/aviary-deploy/aviary/release"
)

// smoke invokes every new version (qualifier = the version itself, so no alias traffic is
// involved) with each configured payload. It returns nil when all pass, else the failure: a
// function error or an expectation not met. An invocation Lambda's API could not make (after
// retries) says nothing of the new version: it is the error, unless another invocation failed.
func (c *Checker) smoke(ctx context.Context, r *release.Release, w *watch, when string) (*release.Verdict, error) {
	type job struct {
		fn release.Function
		sm release.Smoke
	}
	var jobs []job
	for _, fn := range r.Functions {
		for _, sm := range r.Checks.Smoke {
			if sm.Function == "" || sm.Function == fn.Name {
				jobs = append(jobs, job{fn, sm})
			}
		}
	}
	var (
		mu       sync.Mutex
		failures []string
		first    string
		errs     []error
		wg       sync.WaitGroup
		sem      = make(chan struct{}, c.parallelism())
	)
	for _, j := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			id, problem, err := c.smokeOne(ctx, j.fn, j.sm)
			mu.Lock()
			defer mu.Unlock()
			if id != "" && r.Checks.Logs {
				w.fns[j.fn.FunctionName].smokeIDs[id] = c.now().UnixMilli()
			}
			if err != nil {
				errs = append(errs, err)
			}
			if problem != "" {
				failures = append(failures, problem)
				if first == "" {
					first = j.fn.FunctionName
				}
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(failures) == 0 {
		if len(errs) > 0 {
			return nil, fmt.Errorf("smoke invocation %s: %w", when, errors.Join(errs...))
		}
		return nil, nil
	}
	sort.Strings(failures)
	v := &release.Verdict{Result: release.Fail, Check: "smoke", Function: first,
		Reason: fmt.Sprintf("smoke invocation %s failed: %s", when, strings.Join(failures, "; "))}
	for _, err := range errs {
		v.Notes = append(v.Notes, err.Error())
	}
	return v, nil
}

// invokeAttempts is how many times a smoke invocation or a hook is tried when Lambda's API
// answers with a transient error (throttling, a 5xx, a lost connection), each try with the SDK's
// own retries.
const invokeAttempts = 3

var retryable = retry.IsErrorRetryables(retry.DefaultRetryables)

// invoke calls Lambda's Invoke, trying again on transient API errors; each try may take at most
// timeout (0: no limit but ctx's).
func (c *Checker) invoke(ctx context.Context, in *lambda.InvokeInput, timeout time.Duration) (*lambda.InvokeOutput, error) {
	wait := c.InvokeBackoff
	if wait <= 0 {
		wait = 500 * time.Millisecond
	}
	for attempt := 1; ; attempt++ {
		tctx, cancel := ctx, context.CancelFunc(func() {})
		if timeout > 0 {
			tctx, cancel = context.WithTimeout(ctx, timeout)
		}
		out, err := c.Lambda.Invoke(tctx, in)
		cancel()
		if err == nil || ctx.Err() != nil || attempt == invokeAttempts || retryable.IsErrorRetryable(err) != aws.TrueTernary {
			return out, err
		}
		select {
		case <-ctx.Done():
			return nil, err // the last answer says more than the context's end
		case <-c.clock().After(wait):
		}
		wait *= 2
	}
}

// smokeOne invokes one version once; it returns the invocation's request ID and, if it failed,
// why. An invocation that Lambda's API did not make (the context's end, throttling or service
// errors after retries, a call that outlived the function's timeout) is the error instead.
func (c *Checker) smokeOne(ctx context.Context, fn release.Function, sm release.Smoke) (string, string, error) {
	timeout := time.Duration(max(fn.Timeout, 3))*time.Second + 10*time.Second
	payload := sm.Payload
	if payload == "" {
		payload = "{}"
	}
	what := fmt.Sprintf("%s version %s with %s", fn.FunctionName, fn.New, abbreviate(payload, 80))
	out, err := c.invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(fn.FunctionName), Qualifier: aws.String(fn.New), Payload: []byte(payload)}, timeout)
	if err != nil {
		if ctx.Err() != nil {
			return "", "", ctx.Err()
		}
		return "", "", fmt.Errorf("%s: %w", what, err)
	}
	id, _ := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
	if out.FunctionError != nil {
		return id, fmt.Sprintf("%s: function error %s: %s", what, aws.ToString(out.FunctionError), abbreviate(string(out.Payload), 200)), nil
	}
	if len(sm.Expect) > 0 {
		var doc any
		if err := json.Unmarshal(out.Payload, &doc); err != nil {
			return id, fmt.Sprintf("%s: the answer is not JSON (%s), so %s cannot be checked", what, abbreviate(string(out.Payload), 80), keys(sm.Expect)), nil
		}
		paths := make([]string, 0, len(sm.Expect))
		for p := range sm.Expect {
			paths = append(paths, p)
		}
		sort.Strings(paths)
		for _, p := range paths {
			got, ok := JSONPath(doc, p)
			want := sm.Expect[p]
			if !ok {
				return id, fmt.Sprintf("%s: the answer has no %s (want %s): %s", what, p, show(want), abbreviate(string(out.Payload), 200)), nil
			}
			if !reflect.DeepEqual(got, want) {
				return id, fmt.Sprintf("%s: %s is %s, want %s", what, p, show(got), show(want)), nil
			}
		}
	}
	return id, "", nil
}

func keys(m map[string]any) string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, ", ")
}

func show(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func abbreviate(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

var pathPartRE = regexp.MustCompile(`^(?:\.([A-Za-z_][A-Za-z0-9_-]*)|\[([0-9]+)\]|\["([^"]*)"\])`)

// JSONPath reads a value at a simple JSON path: $, $.a.b, $.list[0], $["odd key"].
func JSONPath(doc any, path string) (any, bool) {
	if !strings.HasPrefix(path, "$") {
		return nil, false
	}
	rest, cur := path[1:], doc
	for rest != "" {
		m := pathPartRE.FindStringSubmatch(rest)
		if m == nil {
			return nil, false
		}
		rest = rest[len(m[0]):]
		switch {
		case m[2] != "":
			i, _ := strconv.Atoi(m[2])
			list, ok := cur.([]any)
			if !ok || i >= len(list) {
				return nil, false
			}
			cur = list[i]
		default:
			key := m[1] + m[3]
			obj, ok := cur.(map[string]any)
			if !ok {
				return nil, false
			}
			if cur, ok = obj[key]; !ok {
				return nil, false
			}
		}
	}
	return cur, true
}

// HookEvent is what a pre- or post-traffic hook function is invoked with.
type HookEvent struct {
	Hook        string         `json:"hook"` // pre-traffic or post-traffic
	Service     string         `json:"service"`
	Environment string         `json:"environment"`
	Release     string         `json:"release"`
	Alias       string         `json:"alias"`
	Region      string         `json:"region,omitempty"`
	Functions   []HookFunction `json:"functions"`
}

// HookFunction is one function of a hook's event: the version under test and the one it replaces.
type HookFunction struct {
	Name            string `json:"name"`
	FunctionName    string `json:"functionName"`
	PreviousVersion string `json:"previousVersion,omitempty"`
	NewVersion      string `json:"newVersion"`
}

// hook invokes a hook function with the release's facts; it passes when the function answers
// {"status": "success"} within the hook timeout. A hook that cannot be invoked for what it is
// (it does not exist, it may not be invoked) fails; one that Lambda's API could not invoke for
// now (throttling or service errors after retries), or the context's end, is the error.
func (c *Checker) hook(ctx context.Context, r *release.Release, name, which string) (release.Verdict, error) {
	ev := HookEvent{Hook: which, Service: r.Service, Environment: r.Environment, Release: r.ID, Alias: r.Alias, Region: r.Region}
	for _, fn := range r.Functions {
		ev.Functions = append(ev.Functions, HookFunction{Name: fn.Name, FunctionName: fn.FunctionName, PreviousVersion: fn.Previous, NewVersion: fn.New})
	}
	payload, _ := json.Marshal(ev)
	timeout := r.Checks.HookTimeout
	if timeout <= 0 {
		timeout = time.Minute
	}
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	fail := func(format string, args ...any) release.Verdict {
		return release.Verdict{Result: release.Fail, Check: "hook", Reason: fmt.Sprintf("%s hook %s ", which, name) + fmt.Sprintf(format, args...)}
	}
	out, err := c.invoke(hctx, &lambda.InvokeInput{FunctionName: aws.String(name), Payload: payload}, 0)
	var ae smithy.APIError
	switch {
	case err != nil && ctx.Err() != nil:
		return release.Verdict{}, ctx.Err()
	case err != nil && errors.As(err, &ae) && ae.ErrorFault() == smithy.FaultClient && retryable.IsErrorRetryable(err) != aws.TrueTernary:
		return fail("could not be invoked: %v", err), nil
	case err != nil && errors.As(err, &ae), err != nil && retryable.IsErrorRetryable(err) == aws.TrueTernary:
		return release.Verdict{}, fmt.Errorf("%s hook %s could not be invoked: %w", which, name, err)
	case err != nil && errors.Is(hctx.Err(), context.DeadlineExceeded):
		return fail("did not answer within %s", timeout), nil
	case err != nil:
		return release.Verdict{}, fmt.Errorf("%s hook %s: %w", which, name, err)
	case out.FunctionError != nil:
		return fail("failed (%s): %s", aws.ToString(out.FunctionError), abbreviate(string(out.Payload), 300)), nil
	}
	var ans struct {
		Status string `json:"status"`
		Reason string `json:"reason"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(out.Payload), &ans); err != nil || ans.Status == "" {
		return fail(`answered %s; a hook answers {"status": "success"} or {"status": "failure", "reason": "..."}`, abbreviate(string(out.Payload), 200)), nil
	}
	if s := strings.ToLower(ans.Status); s != "success" && s != "succeeded" {
		if ans.Reason != "" {
			return fail("answered %s: %s", ans.Status, ans.Reason), nil
		}
		return fail("answered %s", ans.Status), nil
	}
	return release.Verdict{Result: release.Pass, Check: "hook", Reason: fmt.Sprintf("%s hook %s answered success", which, name)}, nil
}

// alarmState is one alarm as DescribeAlarms tells it.
type alarmState struct {
	name, state, reason string
	updated             time.Time // when its state last changed
	missing             bool
}

// describeAlarms reads alarms by name, metric and composite alike.
func (c *Checker) describeAlarms(ctx context.Context, names []string) ([]alarmState, error) {
	found := map[string]alarmState{}
	for i := 0; i < len(names); i += 100 {
		in := &cloudwatch.DescribeAlarmsInput{AlarmNames: names[i:min(i+100, len(names))],
			AlarmTypes: []cwtypes.AlarmType{cwtypes.AlarmTypeMetricAlarm, cwtypes.AlarmTypeCompositeAlarm}}
		for {
			out, err := c.CloudWatch.DescribeAlarms(ctx, in)
			if err != nil {
				return nil, fmt.Errorf("DescribeAlarms: %w", err)
			}
			for _, a := range out.MetricAlarms {
				found[aws.ToString(a.AlarmName)] = alarmState{name: aws.ToString(a.AlarmName), state: string(a.StateValue), reason: aws.ToString(a.StateReason),
					updated: changed(a.StateTransitionedTimestamp, a.StateUpdatedTimestamp)}
			}
			for _, a := range out.CompositeAlarms {
				found[aws.ToString(a.AlarmName)] = alarmState{name: aws.ToString(a.AlarmName), state: string(a.StateValue), reason: aws.ToString(a.StateReason),
					updated: changed(a.StateTransitionedTimestamp, a.StateUpdatedTimestamp)}
			}
			if out.NextToken == nil {
				break
			}
			in.NextToken = out.NextToken
		}
	}
	out := make([]alarmState, 0, len(names))
	for _, n := range names {
		a, ok := found[n]
		if !ok {
			a = alarmState{name: n, missing: true}
		}
		out = append(out, a)
	}
	return out, nil
}

// changed is when an alarm's state last changed: StateTransitionedTimestamp, which re-evaluations
// in the same state leave alone, or StateUpdatedTimestamp where it is missing.
func changed(transitioned, updated *time.Time) time.Time {
	if transitioned != nil && !transitioned.IsZero() {
		return *transitioned
	}
	return aws.ToTime(updated)
}

// alarmVerdict fails the step if an alarm is in ALARM, unless it has been since before the
// release (and the manifest does not block on that); the rest is noted. An alarm is still as it
// was before the release if its state has not changed since the alarms were read before traffic:
// firingBefore holds when each had last changed as that read told it (kept in the record's judge
// state across restarts). Without it (a release recorded before that state was kept) the cutoff
// is when the verdict before traffic was recorded, a little later.
func alarmVerdict(r *release.Release, alarms []alarmState, firingBefore map[string]time.Time) (*release.Verdict, []string) {
	var notes []string
	var since time.Time
	if r.Health.PreTraffic != nil {
		since = r.Health.PreTraffic.At
	}
	pre := map[string]bool{}
	for _, n := range r.Health.PreexistingAlarms {
		pre[n] = true
	}
	for _, a := range alarms {
		cutoff := since
		if t, ok := firingBefore[a.name]; ok {
			cutoff = t
		}
		switch {
		case a.missing:
			notes = append(notes, fmt.Sprintf("alarm %s no longer exists", a.name))
		case a.state != "ALARM":
		case pre[a.name] && !a.updated.After(cutoff):
			notes = append(notes, fmt.Sprintf("alarm %s is still in ALARM, as it was before the release", a.name))
		default:
			return &release.Verdict{Result: release.Fail, Check: "alarm",
				Reason: fmt.Sprintf("alarm %s went into ALARM at %s: %s", a.name, a.updated.Local().Format(time.TimeOnly), a.reason)}, nil
		}
	}
	return nil, notes
}
