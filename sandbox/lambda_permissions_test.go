package sandbox_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

func TestLambdaPermissions(t *testing.T) {
	e := start(t, fast)
	e.createFunction(t, "fn", zips.good)
	e.publish(t, "fn")
	if _, err := e.lambda.CreateAlias(ctx(t), &lambda.CreateAliasInput{FunctionName: aws.String("fn"), Name: aws.String("live"), FunctionVersion: aws.String("1")}); err != nil {
		t.Fatal(err)
	}

	_, err := e.lambda.GetPolicy(ctx(t), &lambda.GetPolicyInput{FunctionName: aws.String("fn")})
	wantAPIError[*lambdatypes.ResourceNotFoundException](t, err, http.StatusNotFound)

	add := func(sid string, mod ...func(*lambda.AddPermissionInput)) (*lambda.AddPermissionOutput, error) {
		in := &lambda.AddPermissionInput{FunctionName: aws.String("fn"), StatementId: aws.String(sid), Action: aws.String("lambda:InvokeFunction"),
			Principal: aws.String("events.amazonaws.com"), SourceArn: aws.String("arn:aws:events:us-east-1:000000000000:rule/r")}
		for _, m := range mod {
			m(in)
		}
		return e.noRetry().AddPermission(ctx(t), in)
	}
	out, err := add("events")
	if err != nil {
		t.Fatalf("AddPermission: %v", err)
	}
	var stmt map[string]any
	if err := json.Unmarshal([]byte(aws.ToString(out.Statement)), &stmt); err != nil {
		t.Fatalf("Statement %q: %v", aws.ToString(out.Statement), err)
	}
	if stmt["Sid"] != "events" || stmt["Resource"] != "arn:aws:lambda:us-east-1:000000000000:function:fn" || stmt["Effect"] != "Allow" {
		t.Errorf("statement = %v", stmt)
	}
	_, err = add("events")
	wantAPIError[*lambdatypes.ResourceConflictException](t, err, http.StatusConflict)
	_, err = add("stale", func(in *lambda.AddPermissionInput) { in.RevisionId = aws.String("not-the-revision") })
	wantAPIError[*lambdatypes.PreconditionFailedException](t, err, http.StatusPreconditionFailed)
	_, err = add("nowhere", func(in *lambda.AddPermissionInput) { in.Qualifier = aws.String("missing") })
	wantAPIError[*lambdatypes.ResourceNotFoundException](t, err, http.StatusNotFound)
	_, err = add("bad-action", func(in *lambda.AddPermissionInput) { in.Action = aws.String("invoke") })
	if errorCode(err) != "ValidationException" {
		t.Errorf("AddPermission with action %q: %v, want ValidationException", "invoke", err)
	}
	_, err = e.noRetry().AddPermission(ctx(t), &lambda.AddPermissionInput{FunctionName: aws.String("nope"), StatementId: aws.String("x"),
		Action: aws.String("lambda:InvokeFunction"), Principal: aws.String("s3.amazonaws.com")})
	wantAPIError[*lambdatypes.ResourceNotFoundException](t, err, http.StatusNotFound)

	// The alias has its own policy; the account principal becomes its root ARN.
	if _, err := add("acct", func(in *lambda.AddPermissionInput) {
		in.Qualifier, in.Principal, in.SourceArn = aws.String("live"), aws.String("111122223333"), nil
	}); err != nil {
		t.Fatal(err)
	}
	pol, err := e.lambda.GetPolicy(ctx(t), &lambda.GetPolicyInput{FunctionName: aws.String("fn"), Qualifier: aws.String("live")})
	if err != nil {
		t.Fatal(err)
	}
	if p := aws.ToString(pol.Policy); !strings.Contains(p, `"AWS":"arn:aws:iam::111122223333:root"`) || strings.Contains(p, `"Sid":"events"`) ||
		!strings.Contains(p, `"Resource":"arn:aws:lambda:us-east-1:000000000000:function:fn:live"`) {
		t.Errorf("alias policy = %s", p)
	}
	pol, err = e.lambda.GetPolicy(ctx(t), &lambda.GetPolicyInput{FunctionName: aws.String("fn")})
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Version   string
		Id        string
		Statement []map[string]any
	}
	if err := json.Unmarshal([]byte(aws.ToString(pol.Policy)), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Version != "2012-10-17" || doc.Id != "default" || len(doc.Statement) != 1 {
		t.Errorf("policy = %s", aws.ToString(pol.Policy))
	}
	cond, _ := doc.Statement[0]["Condition"].(map[string]any)
	if arnLike, _ := cond["ArnLike"].(map[string]any); arnLike["AWS:SourceArn"] != "arn:aws:events:us-east-1:000000000000:rule/r" {
		t.Errorf("condition = %v", cond)
	}
	fn, err := e.lambda.GetFunction(ctx(t), &lambda.GetFunctionInput{FunctionName: aws.String("fn")})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := aws.ToString(pol.RevisionId), aws.ToString(fn.Configuration.RevisionId); got != want {
		t.Errorf("GetPolicy RevisionId %s, function's %s", got, want)
	}

	// RemovePermission: a stale revision and a missing statement are refused by type.
	_, err = e.noRetry().RemovePermission(ctx(t), &lambda.RemovePermissionInput{FunctionName: aws.String("fn"), StatementId: aws.String("events"), RevisionId: aws.String("stale")})
	wantAPIError[*lambdatypes.PreconditionFailedException](t, err, http.StatusPreconditionFailed)
	_, err = e.noRetry().RemovePermission(ctx(t), &lambda.RemovePermissionInput{FunctionName: aws.String("fn"), StatementId: aws.String("nope")})
	wantAPIError[*lambdatypes.ResourceNotFoundException](t, err, http.StatusNotFound)
	if _, err := e.lambda.RemovePermission(ctx(t), &lambda.RemovePermissionInput{FunctionName: aws.String("fn"), StatementId: aws.String("events"), RevisionId: pol.RevisionId}); err != nil {
		t.Fatalf("RemovePermission: %v", err)
	}
	_, err = e.lambda.GetPolicy(ctx(t), &lambda.GetPolicyInput{FunctionName: aws.String("fn")})
	wantAPIError[*lambdatypes.ResourceNotFoundException](t, err, http.StatusNotFound)

	// A function deleted and created again has no permissions: they die with the function.
	if _, err := add("again"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.lambda.DeleteFunction(ctx(t), &lambda.DeleteFunctionInput{FunctionName: aws.String("fn")}); err != nil {
		t.Fatal(err)
	}
	e.createFunction(t, "fn", zips.good)
	_, err = e.lambda.GetPolicy(ctx(t), &lambda.GetPolicyInput{FunctionName: aws.String("fn")})
	wantAPIError[*lambdatypes.ResourceNotFoundException](t, err, http.StatusNotFound)
}

func TestCloudTrailLookupEvents(t *testing.T) {
	e := start(t, fast)
	trail := cloudtrail.NewFromConfig(e.cfg)
	begin := time.Now().Add(-time.Second)
	e.createFunction(t, "one", zips.good)
	e.createFunction(t, "two", zips.good)
	e.updateCode(t, "one", zips.bad)
	_, err := e.noRetry().UpdateFunctionCode(ctx(t), &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("one"), S3Bucket: aws.String("nobucket"), S3Key: aws.String("k.zip")})
	if err == nil {
		t.Fatal("UpdateFunctionCode from a missing bucket succeeded")
	}

	byName := func(name string, max int32, token *string) *cloudtrail.LookupEventsOutput {
		t.Helper()
		out, err := trail.LookupEvents(ctx(t), &cloudtrail.LookupEventsInput{MaxResults: aws.Int32(max), NextToken: token,
			LookupAttributes: []cttypes.LookupAttribute{{AttributeKey: cttypes.LookupAttributeKeyResourceName, AttributeValue: aws.String(name)}}})
		if err != nil {
			t.Fatalf("LookupEvents: %v", err)
		}
		return out
	}
	var names []string
	var token *string
	for page := 0; ; page++ {
		out := byName("one", 1, token)
		if len(out.Events) > 1 {
			t.Fatalf("page of %d events, MaxResults 1", len(out.Events))
		}
		for _, ev := range out.Events {
			if aws.ToString(ev.EventSource) != "lambda.amazonaws.com" || len(ev.Resources) != 1 || aws.ToString(ev.Resources[0].ResourceName) != "one" {
				t.Errorf("event %+v", ev)
			}
			names = append(names, aws.ToString(ev.EventName))
		}
		if token = out.NextToken; token == nil {
			break
		}
	}
	// Newest first; the failed call is recorded too. (The waiters' GetFunction calls are reads.)
	var writes []string
	for _, n := range names {
		if !strings.HasPrefix(n, "GetFunction") {
			writes = append(writes, n)
		}
	}
	if got, want := strings.Join(writes, ","), "UpdateFunctionCode20150331v2,UpdateFunctionCode20150331v2,CreateFunction20150331"; got != want {
		t.Errorf("events of one, newest first = %s, want %s", got, want)
	}
	latest := byName("one", 1, nil).Events[0]
	var rec map[string]any
	if err := json.Unmarshal([]byte(aws.ToString(latest.CloudTrailEvent)), &rec); err != nil {
		t.Fatal(err)
	}
	params, _ := rec["requestParameters"].(map[string]any)
	if rec["errorCode"] != "InvalidParameterValueException" || params["s3Bucket"] != "nobucket" || params["s3Key"] != "k.zip" || params["functionName"] != "one" {
		t.Errorf("CloudTrailEvent = %s", aws.ToString(latest.CloudTrailEvent))
	}

	// A time range that ends before the calls finds nothing.
	out, err := trail.LookupEvents(ctx(t), &cloudtrail.LookupEventsInput{StartTime: aws.Time(begin.Add(-time.Hour)), EndTime: aws.Time(begin)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Events) != 0 {
		t.Errorf("%d events before the calls", len(out.Events))
	}
	_, err = trail.LookupEvents(ctx(t), &cloudtrail.LookupEventsInput{MaxResults: aws.Int32(51)})
	wantAPIError[*cttypes.InvalidMaxResultsException](t, err, http.StatusBadRequest)
	_, err = trail.LookupEvents(ctx(t), &cloudtrail.LookupEventsInput{LookupAttributes: []cttypes.LookupAttribute{
		{AttributeKey: cttypes.LookupAttributeKeyEventName, AttributeValue: aws.String("a")},
		{AttributeKey: cttypes.LookupAttributeKeyResourceName, AttributeValue: aws.String("b")}}})
	wantAPIError[*cttypes.InvalidLookupAttributesException](t, err, http.StatusBadRequest)
	_, err = trail.LookupEvents(ctx(t), &cloudtrail.LookupEventsInput{StartTime: aws.Time(begin), EndTime: aws.Time(begin.Add(-time.Hour))})
	wantAPIError[*cttypes.InvalidTimeRangeException](t, err, http.StatusBadRequest)
}
