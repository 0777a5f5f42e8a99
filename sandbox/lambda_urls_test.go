package sandbox_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"
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

	// A NONE URL is public only once the resource policy says so.
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/hello?x=1", nil)
	req.Host = strings.TrimSuffix(strings.TrimPrefix(u, "https://"), "/")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("x-amzn-ErrorType") != "AccessDeniedException" || strings.TrimSpace(string(body)) != `{"Message":"Forbidden"}` {
		t.Errorf("GET a NONE URL without a public permission = %d %s %s, want 403 AccessDeniedException {\"Message\":\"Forbidden\"}", resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"), body)
	}
	// A permission to invoke the function is not one to invoke its URL.
	if _, err := e.lambda.AddPermission(ctx(t), &lambda.AddPermissionInput{FunctionName: aws.String("web"), StatementId: aws.String("invoke"),
		Action: aws.String("lambda:InvokeFunction"), Principal: aws.String("*")}); err != nil {
		t.Fatal(err)
	}
	if resp, err := http.DefaultClient.Do(req.Clone(req.Context())); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("GET a NONE URL with only lambda:InvokeFunction granted = %v, %v; want 403", resp, err)
	}
	if _, err := e.lambda.AddPermission(ctx(t), &lambda.AddPermissionInput{FunctionName: aws.String("web"), StatementId: aws.String("url"),
		Action: aws.String("lambda:InvokeFunctionUrl"), Principal: aws.String("*"), FunctionUrlAuthType: lambdatypes.FunctionUrlAuthTypeNone}); err != nil {
		t.Fatal(err)
	}

	// The URL answers, whatever address the request was sent to, by its host.
	resp, err = http.DefaultClient.Do(req.Clone(req.Context()))
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
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

// urlRequest is a request to a function URL through the sandbox, by its host.
func (e *env) urlRequest(t *testing.T, functionURL, method string, header map[string]string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, e.srv.URL+"/", nil)
	req.Host = strings.TrimSuffix(strings.TrimPrefix(functionURL, "https://"), "/")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// A URL's Cors configuration: its limits, the preflight Lambda answers itself, and the headers
// it adds to the function's answers to allowed origins (and only to those).
func TestLambdaFunctionURLCors(t *testing.T) {
	e := start(t, fast)
	e.createFunction(t, "web", zips.good)
	tooMany := []string{"GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS"}
	for name, cors := range map[string]*lambdatypes.Cors{
		"MaxAge":       {MaxAge: aws.Int32(86401)},
		"AllowMethods": {AllowMethods: tooMany},
		"AllowOrigins": {AllowOrigins: make([]string, 101)},
	} {
		_, err := e.lambda.CreateFunctionUrlConfig(ctx(t), &lambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("web"), AuthType: lambdatypes.FunctionUrlAuthTypeNone, Cors: cors})
		if ae := wantAPIError[smithy.APIError](t, err, 400); ae.ErrorCode() != "ValidationException" {
			t.Errorf("Cors with too large %s: %v, want ValidationException", name, err)
		}
	}
	out, err := e.lambda.CreateFunctionUrlConfig(ctx(t), &lambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("web"), AuthType: lambdatypes.FunctionUrlAuthTypeNone,
		Cors: &lambdatypes.Cors{AllowOrigins: []string{"https://shop.example"}, AllowMethods: []string{"GET", "POST"}, AllowHeaders: []string{"x-token"},
			ExposeHeaders: []string{"x-trace"}, MaxAge: aws.Int32(600), AllowCredentials: aws.Bool(true)}})
	if err != nil {
		t.Fatal(err)
	}
	u := aws.ToString(out.FunctionUrl)
	if _, err := e.lambda.AddPermission(ctx(t), &lambda.AddPermissionInput{FunctionName: aws.String("web"), StatementId: aws.String("url"),
		Action: aws.String("lambda:InvokeFunctionUrl"), Principal: aws.String("*"), FunctionUrlAuthType: lambdatypes.FunctionUrlAuthTypeNone}); err != nil {
		t.Fatal(err)
	}

	pre := e.urlRequest(t, u, http.MethodOptions, map[string]string{"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"})
	for k, want := range map[string]string{"Access-Control-Allow-Origin": "https://shop.example", "Access-Control-Allow-Methods": "GET,POST",
		"Access-Control-Allow-Headers": "x-token", "Access-Control-Max-Age": "600", "Access-Control-Allow-Credentials": "true"} {
		if got := pre.Header.Get(k); got != want {
			t.Errorf("preflight %s = %q, want %q", k, got, want)
		}
	}
	if pre.StatusCode != 200 {
		t.Errorf("preflight status = %d, want 200", pre.StatusCode)
	}
	other := e.urlRequest(t, u, http.MethodOptions, map[string]string{"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
	if got := other.Header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("preflight from a foreign origin: Access-Control-Allow-Origin = %q, want none", got)
	}

	get := e.urlRequest(t, u, http.MethodGet, map[string]string{"Origin": "https://shop.example"})
	if get.StatusCode != 200 || get.Header.Get("Access-Control-Allow-Origin") != "https://shop.example" || get.Header.Get("Access-Control-Expose-Headers") != "x-trace" {
		t.Errorf("GET from an allowed origin = %d %v, want 200 with Access-Control-Allow-Origin and -Expose-Headers", get.StatusCode, get.Header)
	}
	get = e.urlRequest(t, u, http.MethodGet, map[string]string{"Origin": "https://evil.example"})
	if get.StatusCode != 200 || get.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("GET from a foreign origin = %d %v, want 200 without Access-Control-Allow-Origin", get.StatusCode, get.Header)
	}
}

// A URL's qualifier is an alias (never $LATEST nor a version), and ListFunctionUrlConfigs pages.
func TestLambdaFunctionURLQualifiersAndPages(t *testing.T) {
	e := start(t, fast)
	e.createFunction(t, "web", zips.good)
	v := e.publish(t, "web")
	for _, q := range []string{"$LATEST", v} {
		_, err := e.lambda.CreateFunctionUrlConfig(ctx(t), &lambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("web"), Qualifier: aws.String(q), AuthType: lambdatypes.FunctionUrlAuthTypeNone})
		if ae := wantAPIError[smithy.APIError](t, err, 400); ae.ErrorCode() != "ValidationException" {
			t.Errorf("CreateFunctionUrlConfig qualifier %s: %v, want ValidationException", q, err)
		}
	}
	want := []string{"a", "b", "c"}
	for _, alias := range want {
		if _, err := e.lambda.CreateAlias(ctx(t), &lambda.CreateAliasInput{FunctionName: aws.String("web"), Name: aws.String(alias), FunctionVersion: aws.String(v)}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.lambda.CreateFunctionUrlConfig(ctx(t), &lambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("web"), Qualifier: aws.String(alias), AuthType: lambdatypes.FunctionUrlAuthTypeAwsIam}); err != nil {
			t.Fatalf("CreateFunctionUrlConfig %s: %v", alias, err)
		}
	}
	var got []string
	pages := 0
	p := lambda.NewListFunctionUrlConfigsPaginator(e.lambda, &lambda.ListFunctionUrlConfigsInput{FunctionName: aws.String("web"), MaxItems: aws.Int32(2)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, c := range page.FunctionUrlConfigs {
			arn := aws.ToString(c.FunctionArn)
			got = append(got, arn[strings.LastIndex(arn, ":")+1:])
		}
	}
	if strings.Join(got, ",") != strings.Join(want, ",") || pages != 2 {
		t.Errorf("ListFunctionUrlConfigs pages = %d, qualifiers %v; want 2 pages of %v", pages, got, want)
	}
	_, err := e.lambda.ListFunctionUrlConfigs(ctx(t), &lambda.ListFunctionUrlConfigsInput{FunctionName: aws.String("web"), MaxItems: aws.Int32(51)})
	if ae := wantAPIError[smithy.APIError](t, err, 400); ae.ErrorCode() != "ValidationException" {
		t.Errorf("ListFunctionUrlConfigs MaxItems 51: %v, want ValidationException", err)
	}
}
