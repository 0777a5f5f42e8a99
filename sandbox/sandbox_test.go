package sandbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/aviary-deploy/aviary/sandbox"
)

// TestControlPlaneQuota: a burst of control-plane calls beyond AWS's 15 requests per second gets
// 429s with Retry-After; a client with the SDK's retryer gets through them all; GetFunction and
// Invoke do not count against the shared quota.
func TestControlPlaneQuota(t *testing.T) {
	t.Parallel()
	clock := &stoppedClock{}
	e := start(t, sandbox.Options{UpdateDelay: -1, ControlRate: 15, QuotaClock: clock.Now})
	c := ctx(t)
	e.createFunction(t, "quota", zips.good)
	// Two seconds on, the bucket has refilled after the setup calls; then time stands still, so
	// exactly the burst is admitted however long the machine takes to send 40 calls.
	clock.stop(2 * time.Second)

	burst := func(client *lambda.Client, n int) (ok, throttled int, first error) {
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := client.GetFunctionConfiguration(c, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("quota")})
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					ok++
					return
				}
				var tmr *lambdatypes.TooManyRequestsException
				if errors.As(err, &tmr) {
					throttled++
					if first == nil {
						first = err
					}
					return
				}
				t.Errorf("unexpected error: %v", err)
			}()
		}
		wg.Wait()
		return ok, throttled, first
	}

	ok, throttled, first := burst(e.noRetry(), 40)
	if ok != 15 || throttled != 25 {
		t.Fatalf("40 calls at once without retries: %d ok, %d throttled; want 15 ok (the burst), the rest throttled", ok, throttled)
	}
	tmr := wantAPIError[*lambdatypes.TooManyRequestsException](t, first, 429)
	if tmr.Reason != lambdatypes.ThrottleReasonCallerRateLimitExceeded || aws.ToString(tmr.RetryAfterSeconds) == "" || aws.ToString(tmr.Message) != "Rate exceeded" {
		t.Errorf("throttle: reason %s, Retry-After %q, message %q", tmr.Reason, aws.ToString(tmr.RetryAfterSeconds), aws.ToString(tmr.Message))
	}

	// The SDK's retryer recovers: every call of a second burst succeeds, some after 429s.
	clock.run()
	e.srv.ResetRequests()
	retried := lambda.NewFromConfig(e.cfg, func(o *lambda.Options) { o.Retryer = retrying() })
	ok, throttled, _ = burst(retried, 40)
	if ok != 40 || throttled != 0 {
		t.Fatalf("with retries: %d ok, %d throttled, want 40 ok", ok, throttled)
	}
	if n := countStatus(e.srv.Requests(), "GetFunctionConfiguration", 429); n == 0 {
		t.Error("the retried burst saw no 429s: the quota was not exercised")
	}

	// GetFunction (its own 100/s quota) and Invoke are outside the shared quota.
	for range 30 {
		if _, err := e.noRetry().GetFunction(c, &lambda.GetFunctionInput{FunctionName: aws.String("quota")}); err != nil {
			t.Fatalf("GetFunction throttled by the control-plane quota: %v", err)
		}
		if _, err := e.noRetry().Invoke(c, &lambda.InvokeInput{FunctionName: aws.String("quota")}); err != nil {
			t.Fatalf("Invoke throttled by the control-plane quota: %v", err)
		}
	}
}

// stoppedClock is the quotas' clock in a test: running, it is the wall clock (plus the time it
// was moved on); stopped, it stands still.
type stoppedClock struct {
	mu      sync.Mutex
	stopped bool
	at      time.Time
	offset  time.Duration
}

func (c *stoppedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return c.at
	}
	return time.Now().Add(c.offset)
}

// stop moves the clock on by d and stops it there.
func (c *stoppedClock) stop(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.at, c.stopped = time.Now().Add(c.offset+d), true
}

// run starts the clock again from where it stopped.
func (c *stoppedClock) run() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset, c.stopped = c.at.Sub(time.Now()), false
}

func countStatus(reqs []sandbox.Request, op string, status int) int {
	n := 0
	for _, r := range reqs {
		if r.Operation == op && r.Status == status {
			n++
		}
	}
	return n
}

// TestFaultInjection: faults hit only the matching operations, follow their seed, and surface as
// the service's own throttling and internal errors; latency is added.
func TestFaultInjection(t *testing.T) {
	t.Parallel()
	e := start(t, fast)
	c := ctx(t)
	e.createFunction(t, "faulty", zips.good)
	v := e.publish(t, "faulty")
	if _, err := e.lambda.CreateAlias(c, &lambda.CreateAliasInput{FunctionName: aws.String("faulty"), Name: aws.String("live"), FunctionVersion: aws.String(v)}); err != nil {
		t.Fatal(err)
	}

	sequence := func() string {
		var b strings.Builder
		for range 60 {
			_, err := e.noRetry().GetAlias(c, &lambda.GetAliasInput{FunctionName: aws.String("faulty"), Name: aws.String("live")})
			switch {
			case err == nil:
				b.WriteByte('.')
			case errors.As(err, new(*lambdatypes.TooManyRequestsException)):
				wantAPIError[*lambdatypes.TooManyRequestsException](t, err, 429)
				b.WriteByte('T')
			case errors.As(err, new(*lambdatypes.ServiceException)):
				wantAPIError[*lambdatypes.ServiceException](t, err, 500)
				b.WriteByte('5')
			default:
				t.Fatalf("unexpected error: %v", err)
			}
		}
		return b.String()
	}
	f := sandbox.Faults{Rate: 0.5, Operations: []string{"GetAlias"}, Seed: 42}
	if err := e.srv.SetFaults(f); err != nil {
		t.Fatal(err)
	}
	first := sequence()
	if !strings.Contains(first, ".") || !strings.Contains(first, "T") || !strings.Contains(first, "5") {
		t.Fatalf("rate 0.5 of throttles and 5xx gave %s", first)
	}
	// Other operations are untouched.
	for range 20 {
		if _, err := e.noRetry().GetFunctionConfiguration(c, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("faulty")}); err != nil {
			t.Fatalf("GetFunctionConfiguration hit by a GetAlias fault: %v", err)
		}
	}
	// The same seed repeats the same run.
	if err := e.srv.SetFaults(f); err != nil {
		t.Fatal(err)
	}
	if again := sequence(); again != first {
		t.Errorf("seed 42 gave\n%s\nthen\n%s", first, again)
	}

	// Latency, set through the admin API as a user would.
	body := `{"latency":"150ms","services":["s3"]}`
	req, _ := http.NewRequest(http.MethodPut, e.srv.URL+"/_aviary/faults", strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("PUT /_aviary/faults: %v %v", err, resp)
	}
	resp.Body.Close()
	e.srv.ResetRequests()
	if _, err := e.s3.ListBuckets(c, &s3.ListBucketsInput{}); err != nil {
		t.Fatal(err)
	}
	for _, r := range e.srv.Requests() {
		if r.Operation == "ListBuckets" && r.Duration < 150*time.Millisecond {
			t.Errorf("ListBuckets took %v with 150ms of injected latency", r.Duration)
		}
	}
	// Bad settings are refused with a reason.
	req, _ = http.NewRequest(http.MethodPut, e.srv.URL+"/_aviary/faults", strings.NewReader(`{"rate":2}`))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(msg), "outside 0..1") {
		t.Errorf("rate 2: %d %s", resp.StatusCode, msg)
	}
}

// TestRequestLog: the sandbox records each request's service, operation and outcome.
func TestRequestLog(t *testing.T) {
	t.Parallel()
	e := start(t, fast)
	c := ctx(t)
	e.createFunction(t, "logged", zips.good)
	e.lambda.GetFunction(c, &lambda.GetFunctionInput{FunctionName: aws.String("missing")})
	e.s3.CreateBucket(c, &s3.CreateBucketInput{Bucket: aws.String("logged-bucket")})
	e.cw.ListMetrics(c, &cloudwatch.ListMetricsInput{})

	resp, err := http.Get(e.srv.URL + "/_aviary/requests")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var reqs []sandbox.Request
	if err := json.NewDecoder(resp.Body).Decode(&reqs); err != nil {
		t.Fatal(err)
	}
	var seen []string
	for _, r := range reqs {
		seen = append(seen, fmt.Sprintf("%s %s %s %d %s", r.Service, r.Operation, r.Resource, r.Status, r.ErrorCode))
	}
	all := strings.Join(seen, "\n")
	for _, want := range []string{
		"lambda CreateFunction logged 201",
		"lambda GetFunction missing 404 ResourceNotFoundException",
		"s3 CreateBucket logged-bucket 200",
		"monitoring ListMetrics  200",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("request log lacks %q:\n%s", want, all)
		}
	}
}

// TestPersistence: with a data directory, functions, aliases, objects and alarms survive a restart,
// and functions still run.
func TestPersistence(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	opts := fast
	opts.DataDir = dir
	srv, err := sandbox.Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	e := connect(t, srv)
	c := ctx(t)
	e.createFunction(t, "kept", zips.good)
	v := e.publish(t, "kept")
	if _, err := e.lambda.CreateAlias(c, &lambda.CreateAliasInput{FunctionName: aws.String("kept"), Name: aws.String("live"), FunctionVersion: aws.String(v)}); err != nil {
		t.Fatal(err)
	}
	e.s3.CreateBucket(c, &s3.CreateBucketInput{Bucket: aws.String("kept-bucket")})
	e.s3.PutBucketVersioning(c, &s3.PutBucketVersioningInput{Bucket: aws.String("kept-bucket"), VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled}})
	for _, body := range []string{"first", "second"} {
		if _, err := e.s3.PutObject(c, &s3.PutObjectInput{Bucket: aws.String("kept-bucket"), Key: aws.String("k"), Body: strings.NewReader(body)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.cw.PutMetricAlarm(c, &cloudwatch.PutMetricAlarmInput{AlarmName: aws.String("kept-alarm"), Namespace: aws.String("App"), MetricName: aws.String("Errors"),
		Statistic: cwtypes.StatisticSum, Period: aws.Int32(60), EvaluationPeriods: aws.Int32(1), Threshold: aws.Float64(1),
		ComparisonOperator: cwtypes.ComparisonOperatorGreaterThanOrEqualToThreshold}); err != nil {
		t.Fatal(err)
	}
	if out, err := e.lambda.Invoke(c, &lambda.InvokeInput{FunctionName: aws.String("kept:live")}); err != nil || out.FunctionError != nil {
		t.Fatalf("invoke: %v", err)
	}
	srv.Close()

	srv2, err := sandbox.Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer srv2.Close()
	e2 := connect(t, srv2)
	a, err := e2.lambda.GetAlias(c, &lambda.GetAliasInput{FunctionName: aws.String("kept"), Name: aws.String("live")})
	if err != nil || aws.ToString(a.FunctionVersion) != v {
		t.Fatalf("alias after restart: %v %+v", err, a)
	}
	out, err := e2.lambda.Invoke(c, &lambda.InvokeInput{FunctionName: aws.String("kept:live")})
	if err != nil || out.FunctionError != nil || aws.ToString(out.ExecutedVersion) != v {
		t.Fatalf("invoke after restart: %v %+v", err, out)
	}
	got, err := e2.s3.GetObject(c, &s3.GetObjectInput{Bucket: aws.String("kept-bucket"), Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(got.Body)
	if string(body) != "second" {
		t.Errorf("object after restart = %q", body)
	}
	vers, err := e2.s3.ListObjectVersions(c, &s3.ListObjectVersionsInput{Bucket: aws.String("kept-bucket")})
	if err != nil || len(vers.Versions) != 2 {
		t.Errorf("object versions after restart: %v %d", err, len(vers.Versions))
	}
	alarms, err := e2.cw.DescribeAlarms(c, &cloudwatch.DescribeAlarmsInput{AlarmNames: []string{"kept-alarm"}})
	if err != nil || len(alarms.MetricAlarms) != 1 {
		t.Errorf("alarm after restart: %v %+v", err, alarms)
	}
	// Metrics recorded before the restart are still answered: one invocation before, one after.
	stats, err := e2.cw.GetMetricStatistics(c, &cloudwatch.GetMetricStatisticsInput{Namespace: aws.String("AWS/Lambda"), MetricName: aws.String("Invocations"),
		Dimensions: dims("FunctionName", "kept"), StartTime: aws.Time(time.Now().Add(-time.Hour)), EndTime: aws.Time(time.Now().Add(time.Minute)),
		Period: aws.Int32(7200), Statistics: []cwtypes.Statistic{cwtypes.StatisticSum}})
	if err != nil || len(stats.Datapoints) != 1 || aws.ToFloat64(stats.Datapoints[0].Sum) != 2 {
		t.Errorf("Invocations across the restart: %v %+v", err, stats)
	}
	// So are the invocations' logs, and new ones are added to them.
	reports, err := e2.logs.FilterLogEvents(c, &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String("/aws/lambda/kept"), FilterPattern: aws.String(`"REPORT RequestId"`)})
	if err != nil || len(reports.Events) != 2 {
		t.Errorf("REPORT lines across the restart: %v %+v", err, reports)
	}
}

// TestUnknownService: a request signed for a service the sandbox does not serve is refused clearly.
func TestUnknownService(t *testing.T) {
	t.Parallel()
	e := start(t, fast)
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/", bytes.NewReader(nil))
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 400 || !strings.Contains(string(msg), `does not serve the \"sqs\" service`) {
		t.Errorf("sqs request: %d %s", resp.StatusCode, msg)
	}
}
