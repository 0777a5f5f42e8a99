package sandbox_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// Function URLs: their configuration through the SDK, in AWS's form, and the URL itself served
// by the sandbox to requests that carry its host.
func TestLambdaFunctionURLs(t *testing.T) {
	e := start(t, fast)
	e.createFunction(t, "web", zips.good)
	out, err := e.lambda.CreateFunctionUrlConfig(ctx(t), &lambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("web"), AuthType: lambdatypes.FunctionUrlAuthTypeNone})
	if err != nil {
		t.Fatalf("CreateFunctionUrlConfig: %v", err)
	}
	u := aws.ToString(out.FunctionUrl)
	if !strings.HasPrefix(u, "https://") || !strings.HasSuffix(u, ".lambda-url.us-east-1.on.aws/") || len(u) != len("https://.lambda-url.us-east-1.on.aws/")+32 {
		t.Errorf("FunctionUrl = %s, want https://<32 chars>.lambda-url.us-east-1.on.aws/", u)
	}
	if out.InvokeMode != lambdatypes.InvokeModeBuffered {
		t.Errorf("InvokeMode = %s, want BUFFERED by default", out.InvokeMode)
	}
	_, err = e.lambda.CreateFunctionUrlConfig(ctx(t), &lambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("web"), AuthType: lambdatypes.FunctionUrlAuthTypeNone})
	wantAPIError[*lambdatypes.ResourceConflictException](t, err, 409)
	_, err = e.lambda.GetFunctionUrlConfig(ctx(t), &lambda.GetFunctionUrlConfigInput{FunctionName: aws.String("web"), Qualifier: aws.String("live")})
	wantAPIError[*lambdatypes.ResourceNotFoundException](t, err, 404)

	// The URL answers, whatever address the request was sent to, by its host.
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/hello?x=1", nil)
	req.Host = strings.TrimSuffix(strings.TrimPrefix(u, "https://"), "/")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "hello from the good flavour") {
		t.Errorf("GET the function URL = %d %s, want 200 with the function's answer", resp.StatusCode, body)
	}

	if _, err := e.lambda.UpdateFunctionUrlConfig(ctx(t), &lambda.UpdateFunctionUrlConfigInput{FunctionName: aws.String("web"), AuthType: lambdatypes.FunctionUrlAuthTypeAwsIam}); err != nil {
		t.Fatalf("UpdateFunctionUrlConfig: %v", err)
	}
	resp, err = http.DefaultClient.Do(req.Clone(req.Context()))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("unsigned GET of an AWS_IAM URL = %d, want 403", resp.StatusCode)
	}
	list, err := e.lambda.ListFunctionUrlConfigs(ctx(t), &lambda.ListFunctionUrlConfigsInput{FunctionName: aws.String("web")})
	if err != nil || len(list.FunctionUrlConfigs) != 1 || list.FunctionUrlConfigs[0].AuthType != lambdatypes.FunctionUrlAuthTypeAwsIam {
		t.Fatalf("ListFunctionUrlConfigs = %+v, %v", list, err)
	}
	if _, err := e.lambda.DeleteFunctionUrlConfig(ctx(t), &lambda.DeleteFunctionUrlConfigInput{FunctionName: aws.String("web")}); err != nil {
		t.Fatal(err)
	}
	_, err = e.lambda.GetFunctionUrlConfig(ctx(t), &lambda.GetFunctionUrlConfigInput{FunctionName: aws.String("web")})
	wantAPIError[*lambdatypes.ResourceNotFoundException](t, err, 404)
}
