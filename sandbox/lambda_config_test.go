package sandbox_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"
)

// A published version snapshots its configuration: invoking version N runs with N's environment
// whatever $LATEST has since. Layers are kept and reported; reserved variables and bad names are
// refused with Lambda's errors.
func TestVersionsSnapshotConfiguration(t *testing.T) {
	t.Parallel()
	e := start(t, fast)
	c := ctx(t)
	name := "snapshot"
	e.createFunction(t, name, zips.good, func(in *lambda.CreateFunctionInput) {
		in.Environment = &lambdatypes.Environment{Variables: map[string]string{"GREETING": "one"}}
	})
	v1 := e.publish(t, name)
	layer := "arn:aws:lambda:us-east-1:000000000000:layer:otel:3"
	if _, err := e.lambda.UpdateFunctionConfiguration(c, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String(name),
		Environment: &lambdatypes.Environment{Variables: map[string]string{"GREETING": "two"}}, Layers: []string{layer}}); err != nil {
		t.Fatal(err)
	}
	if err := lambda.NewFunctionUpdatedV2Waiter(e.lambda).Wait(c, &lambda.GetFunctionInput{FunctionName: aws.String(name)}, time.Minute); err != nil {
		t.Fatal(err)
	}
	v2 := e.publish(t, name)
	if v1 == v2 {
		t.Fatalf("a configuration change published no new version (%s)", v2)
	}
	greeting := func(q string) string {
		out, err := e.lambda.Invoke(c, &lambda.InvokeInput{FunctionName: aws.String(name), Qualifier: aws.String(q), Payload: []byte(`{"action":"env","text":"GREETING"}`)})
		if err != nil || out.FunctionError != nil {
			t.Fatalf("invoke %s: %v %s", q, err, out.Payload)
		}
		var r struct{ Env map[string]string }
		if err := json.Unmarshal(out.Payload, &r); err != nil {
			t.Fatal(err)
		}
		return r.Env["GREETING"]
	}
	if got := greeting(v1); got != "one" {
		t.Errorf("version %s sees GREETING=%q, want one", v1, got)
	}
	if got := greeting(v2); got != "two" {
		t.Errorf("version %s sees GREETING=%q, want two", v2, got)
	}
	conf, err := e.lambda.GetFunctionConfiguration(c, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(name), Qualifier: aws.String(v2)})
	if err != nil || len(conf.Layers) != 1 || aws.ToString(conf.Layers[0].Arn) != layer {
		t.Errorf("version %s's layers: %+v, %v", v2, conf.Layers, err)
	}
	old, err := e.lambda.GetFunctionConfiguration(c, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(name), Qualifier: aws.String(v1)})
	if err != nil || len(old.Layers) != 0 || old.Environment.Variables["GREETING"] != "one" {
		t.Errorf("version %s changed: %+v, %v", v1, old, err)
	}
	_, err = e.noRetry().UpdateFunctionConfiguration(c, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String(name),
		Environment: &lambdatypes.Environment{Variables: map[string]string{"AWS_REGION": "eu-west-1"}}})
	wantAPIError[*lambdatypes.InvalidParameterValueException](t, err, 400)
	_, err = e.noRetry().UpdateFunctionConfiguration(c, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String(name),
		Layers: []string{"arn:aws:lambda:us-east-1:000000000000:layer:otel"}})
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != "ValidationException" {
		t.Errorf("a layer ARN without a version: %v, want ValidationException", err)
	}
	_, err = e.noRetry().UpdateFunctionConfiguration(c, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String(name),
		Layers: []string{layer, layer, layer, layer, layer, layer}})
	wantAPIError[*lambdatypes.InvalidParameterValueException](t, err, 400)
}
