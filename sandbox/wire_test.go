package sandbox_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// signed is a raw request signed (in name only: the sandbox verifies no signature) for service.
func signed(t *testing.T, method, url, service string, body io.Reader, length int64) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = length
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=sandbox/20260101/us-east-1/"+service+"/aws4_request, SignedHeaders=host, Signature=0")
	req.Header.Set("Content-Type", "application/json")
	return req
}

// TestUnknownLambdaPaths: paths no Lambda operation has, normalised or not, answer 404
// UnknownOperationException as Lambda does — a 4xx the SDKs do not retry — never a 500.
func TestUnknownLambdaPaths(t *testing.T) {
	t.Parallel()
	e := start(t, fast)
	for _, c := range []struct{ method, path string }{
		{"GET", "/2015-03-31/functions/../../x"},
		{"GET", "/2015-03-31/bogus"},
		{"POST", "/2015-03-31/functions/f/../../../x"},
		{"GET", "/2015-03-31/functions/f/aliases/a/b"},
		{"PATCH", "/2015-03-31/functions/f"},
	} {
		resp, err := http.DefaultClient.Do(signed(t, c.method, e.srv.URL+c.path, "lambda", nil, 0))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if got := resp.Header.Get("x-amzn-ErrorType"); resp.StatusCode != 404 || got != "UnknownOperationException" {
			t.Errorf("%s %s: %d %s %s, want 404 UnknownOperationException", c.method, c.path, resp.StatusCode, got, body)
		}
	}

	// Through the SDK (its request rewritten to an unknown path): one attempt, no retries.
	e.srv.ResetRequests()
	bogus := middleware.FinalizeMiddlewareFunc("bogus", func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
		if req, ok := in.Request.(*smithyhttp.Request); ok {
			req.URL.Path, req.URL.RawPath = "/2015-03-31/bogus", ""
		}
		return next.HandleFinalize(ctx, in)
	})
	_, err := e.lambda.GetAccountSettings(ctx(t), &lambda.GetAccountSettingsInput{}, func(o *lambda.Options) {
		o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error { return s.Finalize.Add(bogus, middleware.Before) })
	})
	var re *smithyhttp.ResponseError
	if !errors.As(err, &re) || re.HTTPStatusCode() != 404 || errorCode(err) != "UnknownOperationException" {
		t.Fatalf("SDK call to an unknown path: %v, want 404 UnknownOperationException", err)
	}
	if n := len(e.srv.Requests()); n != 1 {
		t.Errorf("the SDK made %d attempts, want 1 (a 4xx is not retried)", n)
	}
}

// endless is an endless body of one byte, so that a huge request costs no memory.
type endless byte

func (b endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(b)
	}
	return len(p), nil
}

// TestOversizedCodeRequest: a CreateFunction or UpdateFunctionCode body larger than Lambda
// accepts (a 50 MB zip, base64 in JSON: 69905067 bytes) answers RequestEntityTooLargeException
// (413), whether the client declares its length or streams it, and the client reads the answer.
func TestOversizedCodeRequest(t *testing.T) {
	t.Parallel()
	e := start(t, fast)
	const size = 107 << 20
	for _, c := range []struct {
		name, method, path string
		length             int64
	}{
		{"CreateFunction", "POST", "/2015-03-31/functions", size},
		{"CreateFunction", "POST", "/2015-03-31/functions", -1}, // chunked: no length declared
		{"UpdateFunctionCode", "PUT", "/2015-03-31/functions/f/code", size},
	} {
		prefix := `{"FunctionName":"big","ZipFile":"`
		body := io.MultiReader(strings.NewReader(prefix), io.LimitReader(endless('A'), size-int64(len(prefix))))
		resp, err := http.DefaultClient.Do(signed(t, c.method, e.srv.URL+c.path, "lambda", body, c.length))
		if err != nil {
			t.Fatalf("%s with a %d MiB body: %v", c.name, size>>20, err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if got := resp.Header.Get("x-amzn-ErrorType"); resp.StatusCode != 413 || got != "RequestEntityTooLargeException" ||
			!strings.Contains(string(msg), "Request must be smaller than 69905067 bytes for the "+c.name+" operation") {
			t.Errorf("%s (length %d): %d %s %s, want 413 RequestEntityTooLargeException", c.name, c.length, resp.StatusCode, got, msg)
		}
	}

	// The SDK, with a zip 2.5 MB over the direct-upload quota.
	zip := make([]byte, 52_500_000)
	_, err := e.noRetry().CreateFunction(ctx(t), &lambda.CreateFunctionInput{
		FunctionName: aws.String("big"), Runtime: "provided.al2023", Handler: aws.String("bootstrap"),
		Role: aws.String("arn:aws:iam::000000000000:role/r"), Code: &lambdatypes.FunctionCode{ZipFile: zip},
	})
	var re *smithyhttp.ResponseError
	if !errors.As(err, &re) || re.HTTPStatusCode() != 413 || errorCode(err) != "RequestEntityTooLargeException" {
		t.Fatalf("SDK CreateFunction of a 52.5 MB zip: %v, want 413 RequestEntityTooLargeException", err)
	}
}

// TestGetCallerIdentity: STS answers for the sandbox's account, through the SDK (query protocol)
// and the AWS CLI, so that tools learning the account from STS need no flag.
func TestGetCallerIdentity(t *testing.T) {
	t.Parallel()
	for _, account := range []string{"", "123456789012"} {
		opts := fast
		opts.Account = account
		e := start(t, opts)
		want := account
		if want == "" {
			want = "000000000000"
		}
		out, err := sts.NewFromConfig(e.cfg).GetCallerIdentity(ctx(t), &sts.GetCallerIdentityInput{})
		if err != nil {
			t.Fatalf("GetCallerIdentity: %v", err)
		}
		if got := aws.ToString(out.Account); got != want {
			t.Errorf("Account = %q, want %q", got, want)
		}
		if got, arn := aws.ToString(out.UserId), aws.ToString(out.Arn); got != want || arn != "arn:aws:iam::"+want+":root" {
			t.Errorf("UserId, Arn = %q, %q, want the account's root", got, arn)
		}
		if reqs := e.srv.Requests(); len(reqs) != 1 || reqs[0].Service != "sts" || reqs[0].Operation != "GetCallerIdentity" {
			t.Errorf("request log = %+v, want one sts GetCallerIdentity", reqs)
		}
		if account != "" {
			continue
		}
		stdout, stderr, code := newCLI(t, e.srv).run("sts", "get-caller-identity")
		if code != 0 || !strings.Contains(stdout, `"Account": "`+want+`"`) {
			t.Errorf("aws sts get-caller-identity: exit %d, %s %s", code, stdout, stderr)
		}
	}
}
