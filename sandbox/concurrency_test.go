package sandbox_test

import (
	"context"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// holding runs invocations that sleep ms each, in the background, retrying through throttles (a
// probe may hold a unit for a moment); done is closed when all have answered, and errs holds what
// they answered.
type holding struct {
	done chan struct{}
	mu   sync.Mutex
	errs []error
}

func (e *env) hold(t *testing.T, ms int, targets ...*lambda.InvokeInput) *holding {
	t.Helper()
	h := &holding{done: make(chan struct{})}
	client := lambda.NewFromConfig(e.cfg, func(o *lambda.Options) { o.Retryer = retrying() })
	var wg sync.WaitGroup
	for _, in := range targets {
		in.Payload = []byte(`{"action":"sleep","ms":` + strconv.Itoa(ms) + `}`)
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := client.Invoke(ctx(t), in)
			if err == nil && out.FunctionError != nil {
				err = errors.New(string(out.Payload))
			}
			h.mu.Lock()
			h.errs = append(h.errs, err)
			h.mu.Unlock()
		}()
	}
	go func() { wg.Wait(); close(h.done) }()
	return h
}

// throttledWhileHeld invokes in (one attempt each, one at a time) until it is throttled or the
// holders have all answered, and returns the throttle.
func (e *env) throttledWhileHeld(t *testing.T, h *holding, in *lambda.InvokeInput) *lambdatypes.TooManyRequestsException {
	t.Helper()
	for {
		_, err := e.noRetry().Invoke(ctx(t), in)
		if err != nil {
			return wantAPIError[*lambdatypes.TooManyRequestsException](t, err, 429)
		}
		select {
		case <-h.done:
			t.Fatalf("never throttled while the holding invocations ran (they answered %v)", h.errs)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// longTimeout gives a function time for the holding invocations' sleep (the default is 3 s).
func longTimeout(in *lambda.CreateFunctionInput) { in.Timeout = aws.Int32(60) }

func (e *env) accountSettings(t *testing.T) (limit, unreserved int32) {
	t.Helper()
	out, err := e.lambda.GetAccountSettings(ctx(t), &lambda.GetAccountSettingsInput{})
	if err != nil {
		t.Fatal(err)
	}
	return out.AccountLimit.ConcurrentExecutions, aws.ToInt32(out.AccountLimit.UnreservedConcurrentExecutions)
}

func TestReservedConcurrencyBoundsEveryVersion(t *testing.T) {
	t.Parallel()
	e := start(t, fast)
	c := ctx(t)
	e.createFunction(t, "split", zips.good, longTimeout)
	v1 := e.publish(t, "split")
	v2 := e.publishAnother(t, "split")
	if _, err := e.lambda.PutFunctionConcurrency(c, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("split"), ReservedConcurrentExecutions: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	if limit, unreserved := e.accountSettings(t); limit != 1000 || unreserved != 998 {
		t.Errorf("GetAccountSettings: ConcurrentExecutions %d, UnreservedConcurrentExecutions %d; want 1000, 998", limit, unreserved)
	}
	// One invocation on each version holds the function's two units: a third, on $LATEST, is
	// throttled (the one-at-a-time probe is never itself one of two in flight).
	h := e.hold(t, 8000,
		&lambda.InvokeInput{FunctionName: aws.String("split"), Qualifier: aws.String(v1)},
		&lambda.InvokeInput{FunctionName: aws.String("split"), Qualifier: aws.String(v2)})
	tmr := e.throttledWhileHeld(t, h, &lambda.InvokeInput{FunctionName: aws.String("split")})
	if tmr.Reason != lambdatypes.ThrottleReasonReservedFunctionConcurrentInvocationLimitExceeded || aws.ToString(tmr.Message) != "Rate Exceeded." {
		t.Errorf("throttle: reason %q, message %q", tmr.Reason, aws.ToString(tmr.Message))
	}
	// An asynchronous invocation is not throttled: it waits, and runs once a unit is free.
	tag := "async-" + t.Name()
	out, err := e.noRetry().Invoke(c, &lambda.InvokeInput{FunctionName: aws.String("split"), InvocationType: lambdatypes.InvocationTypeEvent,
		Payload: []byte(`{"action":"log","text":"` + tag + `"}`)})
	if err != nil || out.StatusCode != 202 {
		t.Fatalf("Event invoke at the bound: %v (status %d)", err, out.StatusCode)
	}
	<-h.done
	for _, err := range h.errs {
		if err != nil {
			t.Errorf("holding invocation: %v", err)
		}
	}
	e.waitForLog(t, "/aws/lambda/split", tag)
}

func TestAccountConcurrencyLimit(t *testing.T) {
	t.Parallel()
	opts := fast
	opts.AccountConcurrency = 2
	e := start(t, opts)
	for _, fn := range []string{"a", "b", "c"} {
		e.createFunction(t, fn, zips.good, longTimeout)
	}
	if limit, unreserved := e.accountSettings(t); limit != 2 || unreserved != 2 {
		t.Errorf("GetAccountSettings: ConcurrentExecutions %d, UnreservedConcurrentExecutions %d; want 2, 2", limit, unreserved)
	}
	// Two functions hold the account's two units: a third function is throttled.
	h := e.hold(t, 8000, &lambda.InvokeInput{FunctionName: aws.String("a")}, &lambda.InvokeInput{FunctionName: aws.String("b")})
	tmr := e.throttledWhileHeld(t, h, &lambda.InvokeInput{FunctionName: aws.String("c")})
	if tmr.Reason != lambdatypes.ThrottleReasonConcurrentInvocationLimitExceeded {
		t.Errorf("throttle reason %q, want ConcurrentInvocationLimitExceeded", tmr.Reason)
	}
	<-h.done
	// Once they have answered, it runs.
	if _, err := e.noRetry().Invoke(ctx(t), &lambda.InvokeInput{FunctionName: aws.String("c")}); err != nil {
		t.Errorf("invoke after the holders answered: %v", err)
	}
}

func TestReservedConcurrencyLeavesHundredUnreserved(t *testing.T) {
	t.Parallel()
	e := start(t, fast)
	c := ctx(t)
	e.createFunction(t, "big", zips.good)
	e.createFunction(t, "small", zips.good)
	put := func(fn string, n int32) error {
		_, err := e.lambda.PutFunctionConcurrency(c, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String(fn), ReservedConcurrentExecutions: aws.Int32(n)})
		return err
	}
	wantFloor := func(err error) {
		t.Helper()
		ipv := wantAPIError[*lambdatypes.InvalidParameterValueException](t, err, 400)
		if got, want := aws.ToString(ipv.Message), "Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [100]."; got != want {
			t.Errorf("message %q, want %q", got, want)
		}
	}
	if err := put("big", 900); err != nil {
		t.Fatal(err)
	}
	if _, unreserved := e.accountSettings(t); unreserved != 100 {
		t.Errorf("UnreservedConcurrentExecutions = %d, want 100", unreserved)
	}
	wantFloor(put("small", 1))
	wantFloor(put("big", 901))
	if err := put("big", 900); err != nil {
		t.Errorf("putting the same reservation again: %v", err)
	}
	if err := put("big", 800); err != nil {
		t.Fatal(err)
	}
	if err := put("small", 100); err != nil {
		t.Fatal(err)
	}
	if _, unreserved := e.accountSettings(t); unreserved != 100 {
		t.Errorf("UnreservedConcurrentExecutions = %d, want 100", unreserved)
	}
	if _, err := e.lambda.DeleteFunctionConcurrency(c, &lambda.DeleteFunctionConcurrencyInput{FunctionName: aws.String("big")}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.lambda.DeleteFunction(c, &lambda.DeleteFunctionInput{FunctionName: aws.String("small")}); err != nil {
		t.Fatal(err)
	}
	if limit, unreserved := e.accountSettings(t); limit != 1000 || unreserved != 1000 {
		t.Errorf("after deleting both reservations: %d, %d; want 1000, 1000", limit, unreserved)
	}
}

func TestScalingRateThrottles(t *testing.T) {
	t.Parallel()
	// A function with reserved concurrency (more than it gets to use) is throttled by the same
	// scaling rate, under its own reason.
	for _, tc := range []struct {
		name     string
		reserved int32
		reason   lambdatypes.ThrottleReason
	}{
		{"unreserved", 0, lambdatypes.ThrottleReasonFunctionInvocationRateLimitExceeded},
		{"reserved", 10, lambdatypes.ThrottleReasonReservedFunctionInvocationRateLimitExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			scalingRateThrottles(t, tc.reserved, tc.reason)
		})
	}
}

func scalingRateThrottles(t *testing.T, reserved int32, reason lambdatypes.ThrottleReason) {
	opts := fast
	// Two new environments an hour: nothing refills during the test.
	opts.ScaleBurst, opts.ScaleWindow = 2, time.Hour
	e := start(t, opts)
	e.createFunction(t, "slow", zips.good, longTimeout)
	if reserved > 0 {
		if _, err := e.lambda.PutFunctionConcurrency(ctx(t), &lambda.PutFunctionConcurrencyInput{
			FunctionName: aws.String("slow"), ReservedConcurrentExecutions: aws.Int32(reserved),
		}); err != nil {
			t.Fatal(err)
		}
	}
	h := e.hold(t, 8000, &lambda.InvokeInput{FunctionName: aws.String("slow")}, &lambda.InvokeInput{FunctionName: aws.String("slow")})
	probe := &lambda.InvokeInput{FunctionName: aws.String("slow"), LogType: lambdatypes.LogTypeTail}
	var cold int
	var tmr *lambdatypes.TooManyRequestsException
	for tmr == nil {
		out, err := e.noRetry().Invoke(ctx(t), probe)
		if err != nil {
			tmr = wantAPIError[*lambdatypes.TooManyRequestsException](t, err, 429)
			break
		}
		if coldStart(t, out) {
			cold++
		}
		select {
		case <-h.done:
			// A holder may itself have been the one refused, while a probe held an environment.
			for _, err := range h.errs {
				if err != nil {
					tmr = wantAPIError[*lambdatypes.TooManyRequestsException](t, err, 429)
				}
			}
			if tmr == nil {
				t.Fatal("never throttled while two invocations held the function's two environments")
			}
		case <-time.After(20 * time.Millisecond):
		}
	}
	if tmr.Reason != reason {
		t.Errorf("throttle reason %q, want %s", tmr.Reason, reason)
	}
	if aws.ToString(tmr.RetryAfterSeconds) == "" {
		t.Error("no Retry-After on a scaling-rate throttle")
	}
	<-h.done
	// However many invocations ran, no more than two environments started: the probes that ran
	// found one warm.
	if cold > 2 {
		t.Errorf("%d cold starts, want at most 2", cold)
	}
	// Warm environments still serve.
	for range 3 {
		out, err := e.noRetry().Invoke(ctx(t), probe)
		if err != nil {
			t.Fatalf("warm invoke (cold starts so far %d): %v (%+v)", cold, err, err)
		}
		if coldStart(t, out) {
			t.Error("a cold start past the scaling rate")
		}
	}
}

// coldStart says whether an invocation's tail log has a REPORT line with an Init Duration.
func coldStart(t *testing.T, out *lambda.InvokeOutput) bool {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "REPORT RequestId: ") {
			return strings.Contains(line, "\tInit Duration: ")
		}
	}
	t.Fatalf("no REPORT line in the tail log %q", b)
	return false
}

func TestColdStartsWaitForAStartSlot(t *testing.T) {
	t.Parallel()
	opts := fast
	opts.MaxStarts = 1
	e := start(t, opts)
	e.createFunction(t, "burst", zips.good)
	// Twelve at once, one start at a time: none is throttled, every one answers, and those that
	// started an environment report its Init Duration.
	var wg sync.WaitGroup
	var mu sync.Mutex
	var cold int
	errs := make([]error, 12)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := e.noRetry().Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("burst"), LogType: lambdatypes.LogTypeTail,
				Payload: []byte(`{"action":"sleep","ms":50}`)})
			if err == nil && out.FunctionError != nil {
				err = errors.New(string(out.Payload))
			}
			errs[i] = err
			if err == nil && coldStart(t, out) {
				mu.Lock()
				cold++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Errorf("invoke: %v", err)
		}
	}
	if cold < 1 {
		t.Error("no invocation reported a cold start")
	}
}
