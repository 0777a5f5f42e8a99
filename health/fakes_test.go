package health

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	logtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"
	smithymiddleware "github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Hand-written fakes of the checker's seams. They answer as the SDK's clients do, errors included
// (an *smithy.OperationError around the HTTP response error around the modeled one), so that what
// the checker matches by type it matches here too.

var (
	_ LambdaAPI     = (*fakeLambda)(nil)
	_ CloudWatchAPI = (*fakeCloudWatch)(nil)
	_ LogsAPI       = (*fakeLogs)(nil)
)

// fakeClock is a clock the test moves. After does not wait: it notes the wait and fires at once,
// so that a retry's backoff or the logs' rate limit costs no time and can be checked.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	waits []time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waits = append(c.waits, d)
	ch := make(chan time.Time, 1)
	ch <- c.now.Add(d)
	return ch
}

func (c *fakeClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// waited returns the waits asked for since the last call, and forgets them.
func (c *fakeClock) waited() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.waits
	c.waits = nil
	return w
}

// sdkError is err as the SDK returns it for an HTTP status.
func sdkError(service, op string, status int, err error) error {
	return &smithy.OperationError{ServiceID: service, OperationName: op, Err: &awshttp.ResponseError{
		RequestID:     "req-error",
		ResponseError: &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}}, Err: err},
	}}
}

// Lambda's errors, as the SDK returns them.
func lambdaServiceError() error {
	return sdkError("Lambda", "Invoke", 500, &lambdatypes.ServiceException{Message: aws.String("injected")})
}

func lambdaThrottled() error {
	return sdkError("Lambda", "Invoke", 429, &lambdatypes.TooManyRequestsException{Message: aws.String("Rate exceeded")})
}

func lambdaNotFound(name string) error {
	return sdkError("Lambda", "Invoke", 404, &lambdatypes.ResourceNotFoundException{Message: aws.String("Function not found: " + name)})
}

func lambdaAccessDenied() error {
	return sdkError("Lambda", "Invoke", 403, &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not allowed", Fault: smithy.FaultClient})
}

// lambdaCanceled is a call whose context ended, as the SDK reports it.
func lambdaCanceled(err error) error {
	return &smithy.OperationError{ServiceID: "Lambda", OperationName: "Invoke", Err: &smithy.CanceledError{Err: err}}
}

// fakeLambda answers Invoke with invoke and notes every call; GetFunction finds what exists.
type fakeLambda struct {
	mu     sync.Mutex
	invoke func(ctx context.Context, in *lambda.InvokeInput) (*lambda.InvokeOutput, error)
	calls  []*lambda.InvokeInput
	exists map[string]bool
}

func (f *fakeLambda) Invoke(ctx context.Context, in *lambda.InvokeInput, _ ...func(*lambda.Options)) (*lambda.InvokeOutput, error) {
	f.mu.Lock()
	f.calls = append(f.calls, in)
	invoke := f.invoke
	f.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, lambdaCanceled(err)
	}
	return invoke(ctx, in)
}

func (f *fakeLambda) GetFunction(ctx context.Context, in *lambda.GetFunctionInput, _ ...func(*lambda.Options)) (*lambda.GetFunctionOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.exists[aws.ToString(in.FunctionName)] {
		return nil, sdkError("Lambda", "GetFunction", 404, &lambdatypes.ResourceNotFoundException{Message: aws.String("Function not found")})
	}
	return &lambda.GetFunctionOutput{}, nil
}

// setInvoke replaces the answer to Invoke and forgets the calls so far.
func (f *fakeLambda) setInvoke(invoke func(ctx context.Context, in *lambda.InvokeInput) (*lambda.InvokeOutput, error)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.invoke, f.calls = invoke, nil
}

// invoked lists the calls so far as function:qualifier payload, sorted.
func (f *fakeLambda) invoked() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, in := range f.calls {
		s := aws.ToString(in.FunctionName)
		if in.Qualifier != nil {
			s += ":" + aws.ToString(in.Qualifier)
		}
		out = append(out, s+" "+string(in.Payload))
	}
	slices.Sort(out)
	return out
}

// answer is an Invoke's output with a request ID, a payload and, if functionError is set, a
// function error.
func answer(requestID, payload, functionError string) *lambda.InvokeOutput {
	out := &lambda.InvokeOutput{StatusCode: 200, Payload: []byte(payload)}
	if functionError != "" {
		out.FunctionError = aws.String(functionError)
	}
	var md smithymiddleware.Metadata
	awsmiddleware.SetRequestIDMetadata(&md, requestID)
	out.ResultMetadata = md
	return out
}

// fakeCloudWatch holds metric points and alarms.
type fakeCloudWatch struct {
	mu sync.Mutex
	// points by metricKey.
	points map[string][]metricPoint
	alarms map[string]cwtypes.MetricAlarm
	// metricsErr, alarmsErr: the answer to every call, when set.
	metricsErr, alarmsErr error
	metricCalls           []*cloudwatch.GetMetricDataInput
	alarmCalls            int
}

// metricKey names a series: a function's metric under an alias, for one version ("" for the alias
// as a whole), with a statistic.
func metricKey(fn, alias, metric, version, stat string) string {
	return strings.Join([]string{fn, alias, metric, version, stat}, "/")
}

// put adds a point to a Sum series.
func (f *fakeCloudWatch) put(fn, metric, version string, at time.Time, v float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.points == nil {
		f.points = map[string][]metricPoint{}
	}
	k := metricKey(fn, "live", metric, version, "Sum")
	for i, p := range f.points[k] {
		if p.at.Equal(at) {
			f.points[k][i].value = v
			return
		}
	}
	f.points[k] = append(f.points[k], metricPoint{at, v})
}

func (f *fakeCloudWatch) GetMetricData(_ context.Context, in *cloudwatch.GetMetricDataInput, _ ...func(*cloudwatch.Options)) (*cloudwatch.GetMetricDataOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.metricCalls = append(f.metricCalls, in)
	if f.metricsErr != nil {
		return nil, f.metricsErr
	}
	out := &cloudwatch.GetMetricDataOutput{}
	for _, q := range in.MetricDataQueries {
		ms := q.MetricStat
		d := map[string]string{}
		for _, dim := range ms.Metric.Dimensions {
			d[aws.ToString(dim.Name)] = aws.ToString(dim.Value)
		}
		_, alias, _ := strings.Cut(d["Resource"], ":")
		res := cwtypes.MetricDataResult{Id: q.Id}
		for _, p := range f.points[metricKey(d["FunctionName"], alias, aws.ToString(ms.Metric.MetricName), d["ExecutedVersion"], aws.ToString(ms.Stat))] {
			if !p.at.Before(aws.ToTime(in.StartTime)) && p.at.Before(aws.ToTime(in.EndTime)) {
				res.Timestamps = append(res.Timestamps, p.at)
				res.Values = append(res.Values, p.value)
			}
		}
		out.MetricDataResults = append(out.MetricDataResults, res)
	}
	return out, nil
}

func (f *fakeCloudWatch) DescribeAlarms(_ context.Context, in *cloudwatch.DescribeAlarmsInput, _ ...func(*cloudwatch.Options)) (*cloudwatch.DescribeAlarmsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.alarmCalls++
	if f.alarmsErr != nil {
		return nil, f.alarmsErr
	}
	out := &cloudwatch.DescribeAlarmsOutput{}
	for _, n := range in.AlarmNames {
		if a, ok := f.alarms[n]; ok {
			out.MetricAlarms = append(out.MetricAlarms, a)
		}
	}
	return out, nil
}

// setAlarm puts an alarm in a state, changed at the given time.
func (f *fakeCloudWatch) setAlarm(name string, state cwtypes.StateValue, changed time.Time, reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.alarms == nil {
		f.alarms = map[string]cwtypes.MetricAlarm{}
	}
	f.alarms[name] = cwtypes.MetricAlarm{AlarmName: aws.String(name), StateValue: state, StateReason: aws.String(reason),
		StateTransitionedTimestamp: aws.Time(changed), StateUpdatedTimestamp: aws.Time(changed)}
}

func (f *fakeCloudWatch) calls() (metrics, alarms int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.metricCalls), f.alarmCalls
}

// fakeLogs holds log groups' events.
type fakeLogs struct {
	mu     sync.Mutex
	groups map[string][]logtypes.FilteredLogEvent
	err    error
	calls  int
}

// add appends a line to a group's stream.
func (f *fakeLogs) add(group, stream string, at time.Time, msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.groups == nil {
		f.groups = map[string][]logtypes.FilteredLogEvent{}
	}
	id := fmt.Sprintf("ev-%d", len(f.groups[group]))
	f.groups[group] = append(f.groups[group], logtypes.FilteredLogEvent{EventId: aws.String(id), LogStreamName: aws.String(stream),
		Timestamp: aws.Int64(at.UnixMilli()), IngestionTime: aws.Int64(at.UnixMilli()), Message: aws.String(msg)})
}

func (f *fakeLogs) FilterLogEvents(_ context.Context, in *cloudwatchlogs.FilterLogEventsInput, _ ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.FilterLogEventsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	evs, ok := f.groups[aws.ToString(in.LogGroupName)]
	if !ok {
		return nil, sdkError("CloudWatch Logs", "FilterLogEvents", 400, &logtypes.ResourceNotFoundException{Message: aws.String("The specified log group does not exist.")})
	}
	out := &cloudwatchlogs.FilterLogEventsOutput{}
	for _, ev := range evs {
		ts := aws.ToInt64(ev.Timestamp)
		if ts < aws.ToInt64(in.StartTime) || (in.EndTime != nil && ts > aws.ToInt64(in.EndTime)) {
			continue
		}
		if in.LogStreamNamePrefix != nil && !strings.HasPrefix(aws.ToString(ev.LogStreamName), aws.ToString(in.LogStreamNamePrefix)) {
			continue
		}
		out.Events = append(out.Events, ev)
	}
	return out, nil
}

// invocation writes one invocation's Text-format lines to a version's stream: START, an
// aws-lambda-go error line if it failed, REPORT. It was routed at at and ran for 2 ms.
func (f *fakeLogs) invocation(group, version, requestID string, at time.Time, failed bool) {
	stream := at.UTC().Format("2006/01/02") + "/[" + version + "]0123abcd"
	f.add(group, stream, at, "START RequestId: "+requestID+" Version: "+version)
	if failed {
		f.add(group, stream, at.Add(time.Millisecond), at.UTC().Format("2006/01/02 15:04:05")+` {"errorMessage":"failing on purpose","errorType":"errorString"}`)
	}
	f.add(group, stream, at.Add(2*time.Millisecond), "REPORT RequestId: "+requestID+"\tDuration: 2.00 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\tMax Memory Used: 30 MB\t")
}

// testChecker is a checker on fakes, its clock at now.
func testChecker(now time.Time) (*Checker, *fakeClock, *fakeLambda, *fakeCloudWatch, *fakeLogs) {
	clock := &fakeClock{now: now}
	lc := &fakeLambda{invoke: func(context.Context, *lambda.InvokeInput) (*lambda.InvokeOutput, error) {
		return answer("00000000-0000-0000-0000-000000000000", `{}`, ""), nil
	}}
	cw, logs := &fakeCloudWatch{}, &fakeLogs{}
	return &Checker{Lambda: lc, CloudWatch: cw, Logs: logs, Clock: clock}, clock, lc, cw, logs
}

// requestID makes the i-th request ID of a kind, shaped as Lambda's are.
func requestID(kind, i int) string {
	return fmt.Sprintf("%08x-0000-4000-8000-%012x", kind, i)
}
