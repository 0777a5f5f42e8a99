package sandbox_test

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// invokeID invokes and returns the response and its x-amzn-RequestId.
func (e *env) invokeID(t *testing.T, in *lambda.InvokeInput) (*lambda.InvokeOutput, string) {
	t.Helper()
	out, err := e.lambda.Invoke(ctx(t), in)
	if err != nil {
		t.Fatalf("invoke %s: %v", aws.ToString(in.FunctionName), err)
	}
	id, ok := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
	if !ok || id == "" {
		t.Fatal("Invoke answered no x-amzn-RequestId")
	}
	return out, id
}

// invocationLog finds an invocation's log by its request ID: the name of the stream it is in and
// the stream's events from the end of the previous invocation's to this one's report. Within
// wait it waits for the report to appear.
func (e *env) invocationLog(t *testing.T, group, id string, wait time.Duration) (string, []string) {
	t.Helper()
	c := ctx(t)
	var stream string
	for deadline := time.Now().Add(wait); ; time.Sleep(20 * time.Millisecond) {
		out, err := e.logs.FilterLogEvents(c, &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String(group),
			FilterPattern: aws.String(`?"REPORT RequestId: ` + id + `" ?"platform.report"`)})
		if err == nil {
			for _, ev := range out.Events {
				if strings.Contains(aws.ToString(ev.Message), id) {
					stream = aws.ToString(ev.LogStreamName)
				}
			}
		}
		if stream != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no report of %s in %s after %s (last error %v)", id, group, wait, err)
		}
	}
	var msgs []string
	in := &cloudwatchlogs.GetLogEventsInput{LogGroupName: aws.String(group), LogStreamName: aws.String(stream), StartFromHead: aws.Bool(true)}
	for {
		out, err := e.logs.GetLogEvents(c, in)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range out.Events {
			msgs = append(msgs, aws.ToString(ev.Message))
		}
		if len(out.Events) == 0 {
			break
		}
		in.NextToken = out.NextForwardToken
	}
	isReport := func(m string) bool {
		return strings.HasPrefix(m, "REPORT RequestId: ") || strings.Contains(m, `"type":"platform.report"`)
	}
	end := -1
	for i, m := range msgs {
		if isReport(m) && strings.Contains(m, id) {
			end = i
		}
	}
	begin := 0
	for i := end - 1; i >= 0; i-- {
		if isReport(msgs[i]) {
			begin = i + 1
			break
		}
	}
	return stream, msgs[begin : end+1]
}

var (
	streamNameRE = regexp.MustCompile(`^\d{4}/\d{2}/\d{2}/\[([^\]]+)\][0-9a-f]{32}$`)
	reportLineRE = regexp.MustCompile(`^REPORT RequestId: ([0-9a-f-]{36})\tDuration: \d+\.\d{2} ms\tBilled Duration: \d+ ms\tMemory Size: 128 MB\tMax Memory Used: \d+ MB\t(Init Duration: \d+\.\d{2} ms\t)?(Status: [a-z]+(\tError Type: [A-Za-z.]+)?)?\n$`)
)

func TestLambdaLogsText(t *testing.T) {
	t.Parallel()
	e := start(t, fast)
	e.createFunction(t, "texty", zips.good, func(in *lambda.CreateFunctionInput) { in.Timeout = aws.Int32(1) })
	v1 := e.publish(t, "texty")
	group := "/aws/lambda/texty"
	today := time.Now().UTC().Format("2006/01/02")

	// Success, cold then warm, on a published version: the version's stream.
	_, id := e.invokeID(t, &lambda.InvokeInput{FunctionName: aws.String("texty"), Qualifier: aws.String(v1), Payload: []byte(`{"action":"log","text":"hello from texty"}`)})
	stream, msgs := e.invocationLog(t, group, id, 0)
	if m := streamNameRE.FindStringSubmatch(stream); m == nil || m[1] != v1 || !strings.HasPrefix(stream, today) {
		t.Errorf("stream %q is not today's stream of version %s", stream, v1)
	}
	if len(msgs) != 5 || !strings.HasPrefix(msgs[0], "INIT_START Runtime Version: provided:al2023.v1\tRuntime Version ARN: arn:aws:lambda:us-east-1::runtime:") ||
		msgs[1] != "START RequestId: "+id+" Version: "+v1+"\n" || msgs[2] != "hello from texty\n" || msgs[3] != "END RequestId: "+id+"\n" {
		t.Fatalf("cold invocation log:\n%s", strings.Join(msgs, ""))
	}
	if m := reportLineRE.FindStringSubmatch(msgs[4]); m == nil || m[1] != id || m[2] == "" || m[3] != "" {
		t.Errorf("cold REPORT line %q", msgs[4])
	}
	_, id2 := e.invokeID(t, &lambda.InvokeInput{FunctionName: aws.String("texty"), Qualifier: aws.String(v1)})
	stream2, msgs := e.invocationLog(t, group, id2, 0)
	if stream2 != stream || len(msgs) != 3 || msgs[0] != "START RequestId: "+id2+" Version: "+v1+"\n" {
		t.Fatalf("warm invocation log in %s:\n%s", stream2, strings.Join(msgs, ""))
	}
	if m := reportLineRE.FindStringSubmatch(msgs[2]); m == nil || m[2] != "" || m[3] != "" {
		t.Errorf("warm REPORT line %q", msgs[2])
	}

	// A timeout: no line of its own, REPORT says Status: timeout; the environment is replaced.
	_, tid := e.invokeID(t, &lambda.InvokeInput{FunctionName: aws.String("texty"), Payload: []byte(`{"action":"sleep","ms":3000}`)})
	tstream, msgs := e.invocationLog(t, group, tid, 0)
	if m := streamNameRE.FindStringSubmatch(tstream); m == nil || m[1] != "$LATEST" {
		t.Errorf("unpublished code logged to %q", tstream)
	}
	last := msgs[len(msgs)-1]
	if m := reportLineRE.FindStringSubmatch(last); m == nil || m[3] != "Status: timeout" || !strings.Contains(last, "\tDuration: 1000.00 ms\t") {
		t.Errorf("timeout REPORT line %q", last)
	}
	if msgs[len(msgs)-2] != "END RequestId: "+tid+"\n" || strings.Contains(strings.Join(msgs, ""), "Task timed out") {
		t.Errorf("timeout log:\n%s", strings.Join(msgs, ""))
	}

	// A crash: the function's last words, then REPORT with Status: error and the error type.
	_, cid := e.invokeID(t, &lambda.InvokeInput{FunctionName: aws.String("texty"), Payload: []byte(`{"action":"crash","code":3}`)})
	cstream, msgs := e.invocationLog(t, group, cid, 0)
	if cstream == tstream {
		t.Error("the invocation after a timeout ran in the timed-out environment's stream")
	}
	if !strings.Contains(strings.Join(msgs, ""), "crashing on purpose\n") {
		t.Errorf("crash log lacks the function's output:\n%s", strings.Join(msgs, ""))
	}
	if m := reportLineRE.FindStringSubmatch(msgs[len(msgs)-1]); m == nil || m[3] != "Status: error\tError Type: Runtime.ExitError" || strings.Contains(m[0], "Max Memory Used: 0 MB") {
		t.Errorf("crash REPORT line %q", msgs[len(msgs)-1])
	}

	// A handled error (posted to /invocation/error): Lambda adds no platform line and REPORT is
	// as on success; the runtime logs the error itself.
	e.createFunction(t, "texty-bad", zips.bad)
	out, hid := e.invokeID(t, &lambda.InvokeInput{FunctionName: aws.String("texty-bad")})
	if aws.ToString(out.FunctionError) != "Unhandled" {
		t.Fatalf("bad flavour did not fail: %s", out.Payload)
	}
	_, msgs = e.invocationLog(t, "/aws/lambda/texty-bad", hid, 0)
	all := strings.Join(msgs, "")
	if !strings.Contains(all, `"errorMessage":"bad flavour: failing on purpose"`) || strings.Contains(all, "Status:") {
		t.Errorf("handled error log:\n%s", all)
	}
	if m := reportLineRE.FindStringSubmatch(msgs[len(msgs)-1]); m == nil || m[3] != "" {
		t.Errorf("handled error REPORT line %q", msgs[len(msgs)-1])
	}

	// An Event invocation logs too, under the request ID Invoke answered.
	ev, eid := e.invokeID(t, &lambda.InvokeInput{FunctionName: aws.String("texty"), Qualifier: aws.String(v1), InvocationType: lambdatypes.InvocationTypeEvent,
		Payload: []byte(`{"action":"log","text":"async hello"}`)})
	if ev.StatusCode != 202 {
		t.Fatalf("Event invoke: %d", ev.StatusCode)
	}
	_, msgs = e.invocationLog(t, group, eid, 5*time.Second)
	if !strings.Contains(strings.Join(msgs, ""), "START RequestId: "+eid+" Version: "+v1+"\nasync hello\nEND RequestId: "+eid+"\n") {
		t.Errorf("Event invocation log:\n%s", strings.Join(msgs, ""))
	}

	// A custom log group, created on first use.
	e.createFunction(t, "texty-custom", zips.good, func(in *lambda.CreateFunctionInput) {
		in.LoggingConfig = &lambdatypes.LoggingConfig{LogGroup: aws.String("/custom/texty")}
	})
	_, gid := e.invokeID(t, &lambda.InvokeInput{FunctionName: aws.String("texty-custom")})
	e.invocationLog(t, "/custom/texty", gid, 0)
}

// platformRecord is a JSON-format system log record.
type platformRecord struct {
	Time   string `json:"time"`
	Type   string `json:"type"`
	Record struct {
		RequestID   string `json:"requestId"`
		Version     string `json:"version"`
		FunctionArn string `json:"functionArn"`
		Status      string `json:"status"`
		ErrorType   string `json:"errorType"`
		Phase       string `json:"phase"`
		Metrics     struct {
			DurationMs       *float64 `json:"durationMs"`
			BilledDurationMs *int64   `json:"billedDurationMs"`
			MemorySizeMB     *int     `json:"memorySizeMB"`
			MaxMemoryUsedMB  *int     `json:"maxMemoryUsedMB"`
			InitDurationMs   *float64 `json:"initDurationMs"`
		} `json:"metrics"`
	} `json:"record"`
}

func records(t *testing.T, msgs []string) (recs []platformRecord, app []string) {
	t.Helper()
	for _, m := range msgs {
		var r platformRecord
		if json.Unmarshal([]byte(m), &r) == nil && strings.HasPrefix(r.Type, "platform.") {
			if _, err := time.Parse("2006-01-02T15:04:05.000Z", r.Time); err != nil {
				t.Errorf("record time %q: %v", r.Time, err)
			}
			recs = append(recs, r)
		} else {
			app = append(app, m)
		}
	}
	return recs, app
}

func TestLambdaLogsJSON(t *testing.T) {
	t.Parallel()
	e := start(t, fast)
	jsonFormat := func(in *lambda.CreateFunctionInput) {
		in.Timeout = aws.Int32(1)
		in.LoggingConfig = &lambdatypes.LoggingConfig{LogFormat: lambdatypes.LogFormatJson}
	}
	e.createFunction(t, "jay", zips.good, jsonFormat)
	v1 := e.publish(t, "jay")
	group := "/aws/lambda/jay"

	_, id := e.invokeID(t, &lambda.InvokeInput{FunctionName: aws.String("jay"), Qualifier: aws.String(v1), Payload: []byte(`{"action":"log","text":"hello json"}`)})
	stream, msgs := e.invocationLog(t, group, id, 0)
	if m := streamNameRE.FindStringSubmatch(stream); m == nil || m[1] != v1 {
		t.Errorf("stream %q", stream)
	}
	recs, app := records(t, msgs)
	if len(recs) != 3 || recs[0].Type != "platform.initStart" || recs[1].Type != "platform.start" || recs[2].Type != "platform.report" {
		t.Fatalf("cold JSON log:\n%s", strings.Join(msgs, "\n"))
	}
	if len(app) != 1 || app[0] != "hello json\n" {
		t.Errorf("function output in JSON format: %q", app)
	}
	if recs[0].Record.Phase != "init" {
		t.Errorf("initStart: %+v", recs[0].Record)
	}
	if s := recs[1].Record; s.RequestID != id || s.Version != v1 || !strings.HasSuffix(s.FunctionArn, ":function:jay:"+v1) {
		t.Errorf("platform.start: %+v", s)
	}
	r := recs[2].Record
	if r.RequestID != id || r.Status != "success" || r.ErrorType != "" || r.Metrics.DurationMs == nil || aws.ToInt64(r.Metrics.BilledDurationMs) < 1 ||
		aws.ToInt(r.Metrics.MemorySizeMB) != 128 || r.Metrics.MaxMemoryUsedMB == nil || r.Metrics.InitDurationMs == nil {
		t.Errorf("cold platform.report: %s", msgs[len(msgs)-1])
	}
	_, id2 := e.invokeID(t, &lambda.InvokeInput{FunctionName: aws.String("jay"), Qualifier: aws.String(v1)})
	_, msgs = e.invocationLog(t, group, id2, 0)
	recs, _ = records(t, msgs)
	if len(recs) != 2 || recs[1].Record.Status != "success" || recs[1].Record.Metrics.InitDurationMs != nil {
		t.Errorf("warm JSON log:\n%s", strings.Join(msgs, "\n"))
	}

	// Failures: the report's status and error type tell them apart.
	for _, c := range []struct {
		fn, payload, status, errorType string
	}{
		{"jay", `{"action":"sleep","ms":3000}`, "timeout", ""},
		{"jay", `{"action":"crash","code":3}`, "error", "Runtime.ExitError"},
		{"jay-bad", `{}`, "error", "errorString"},
	} {
		if c.fn == "jay-bad" {
			e.createFunction(t, "jay-bad", zips.bad, jsonFormat)
		}
		_, fid := e.invokeID(t, &lambda.InvokeInput{FunctionName: aws.String(c.fn), Payload: []byte(c.payload)})
		_, msgs := e.invocationLog(t, "/aws/lambda/"+c.fn, fid, 0)
		recs, _ := records(t, msgs)
		rep := recs[len(recs)-1]
		if rep.Type != "platform.report" || rep.Record.RequestID != fid || rep.Record.Status != c.status || rep.Record.ErrorType != c.errorType {
			t.Errorf("%s %s: report %s", c.fn, c.payload, msgs[len(msgs)-1])
		}
	}

	// Log levels: DEBUG system logs add platform.runtimeDone; application lines below WARN go.
	e.createFunction(t, "jay-levels", zips.good, func(in *lambda.CreateFunctionInput) {
		in.LoggingConfig = &lambdatypes.LoggingConfig{LogFormat: lambdatypes.LogFormatJson,
			SystemLogLevel: lambdatypes.SystemLogLevelDebug, ApplicationLogLevel: lambdatypes.ApplicationLogLevelWarn}
	})
	for _, text := range []string{"plain text is INFO", `{"level":"debug","msg":"dropped"}`, `{"level":"ERROR","msg":"kept"}`} {
		payload, _ := json.Marshal(map[string]string{"action": "log", "text": text})
		_, lid := e.invokeID(t, &lambda.InvokeInput{FunctionName: aws.String("jay-levels"), Payload: payload})
		_, msgs := e.invocationLog(t, "/aws/lambda/jay-levels", lid, 0)
		recs, app := records(t, msgs)
		if recs[len(recs)-2].Type != "platform.runtimeDone" || recs[len(recs)-2].Record.Status != "success" {
			t.Errorf("no platform.runtimeDone at DEBUG:\n%s", strings.Join(msgs, "\n"))
		}
		if kept := strings.Contains(text, "ERROR"); kept != (len(app) == 1) {
			t.Errorf("application line %q at WARN: %q", text, app)
		}
	}
}
