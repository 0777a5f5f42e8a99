package lambdaurltest

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/aviary-deploy/aviary/internal/examplefn"
	"github.com/aviary-deploy/aviary/sandbox"
)

// Options configure Deploy.
type Options struct {
	// Sandbox is where the function is created; nil starts a new sandbox for the test.
	Sandbox *sandbox.Server
	// Name is the function's name; "" derives one from the package path.
	Name string
	// Vars are the main package's string variables set at link time (-X main.k=v).
	Vars map[string]string
	// Env is the function's environment.
	Env map[string]string
	// Timeout is the function's timeout; zero means 30 seconds.
	Timeout time.Duration
}

// Function is a function deployed in the sandbox, reachable as through a function URL.
type Function struct {
	Sandbox *sandbox.Server
	// Lambda is an SDK client pointed at the sandbox.
	Lambda *lambda.Client
	Name   string
	// URL is the function URL AWS would give it (https://<id>.lambda-url.<region>.on.aws).
	// Requests sent with Client reach the function whatever their host; use URL for realism.
	URL string
	// Client sends requests to the function through a Transport; it has no cookie jar and
	// follows redirects.
	Client *http.Client
}

var (
	buildMu sync.Mutex
	built   = map[string][]byte{}
)

// Build compiles the Go main package pkg ("./web/lambdaurl/internal/testfn", relative to the
// module root) into a Lambda zip holding a bootstrap, once per process for the same pkg and vars.
// It uses the module cache and needs no network once the module's dependencies are downloaded.
func Build(t testing.TB, pkg string, vars map[string]string) []byte {
	t.Helper()
	key := pkg
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		key += "\x00" + k + "=" + vars[k]
	}
	buildMu.Lock()
	defer buildMu.Unlock()
	if zip, ok := built[key]; ok {
		return zip
	}
	root, err := examplefn.Root(".")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	zip, err := examplefn.BuildWith(ctx, root, pkg, vars)
	if err != nil {
		t.Fatalf("build %s: %v", pkg, err)
	}
	built[key] = zip
	return zip
}

// StartSandbox starts an in-memory sandbox for the test, with no update delay and no
// control-plane quota, and stops it when the test ends.
func StartSandbox(t testing.TB) *sandbox.Server {
	t.Helper()
	srv, err := sandbox.Start(context.Background(), sandbox.Options{UpdateDelay: -1, ControlRate: -1})
	if err != nil {
		t.Fatalf("start sandbox: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// LambdaClient is an SDK Lambda client for the sandbox, with the sandbox's static credentials
// (it reads nothing from the environment).
func LambdaClient(srv *sandbox.Server) *lambda.Client {
	return lambda.New(lambda.Options{
		Region:       srv.Region,
		BaseEndpoint: aws.String(srv.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("sandbox", "sandbox", ""),
	})
}

// Deploy builds pkg, creates it as a provided.al2023 function in the sandbox with the real
// Lambda API and waits until it is Active.
func Deploy(t testing.TB, pkg string, opts Options) *Function {
	t.Helper()
	zip := Build(t, pkg, opts.Vars)
	srv := opts.Sandbox
	if srv == nil {
		srv = StartSandbox(t)
	}
	name := opts.Name
	if name == "" {
		name = strings.Trim(strings.NewReplacer("/", "-", ".", "").Replace(pkg), "-")
	}
	timeout := opts.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	c := LambdaClient(srv)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	in := &lambda.CreateFunctionInput{
		FunctionName: aws.String(name),
		Runtime:      lambdatypes.RuntimeProvidedal2023,
		Handler:      aws.String("bootstrap"),
		Role:         aws.String("arn:aws:iam::000000000000:role/lambdaurl-test"),
		Code:         &lambdatypes.FunctionCode{ZipFile: zip},
		Timeout:      aws.Int32(int32(timeout / time.Second)),
	}
	if len(opts.Env) > 0 {
		in.Environment = &lambdatypes.Environment{Variables: opts.Env}
	}
	if _, err := c.CreateFunction(ctx, in); err != nil {
		t.Fatalf("CreateFunction %s: %v", name, err)
	}
	if err := lambda.NewFunctionActiveV2Waiter(c).Wait(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(name)}, time.Minute); err != nil {
		t.Fatalf("wait for %s to be active: %v", name, err)
	}
	return &Function{
		Sandbox: srv,
		Lambda:  c,
		Name:    name,
		URL:     fmt.Sprintf("https://%s.lambda-url.%s.on.aws", urlID(name), srv.Region),
		Client:  &http.Client{Transport: &Transport{Lambda: c, Function: name}},
	}
}

// urlID is a stable 32-character id, shaped like a function URL's.
func urlID(name string) string {
	const digits = "abcdefghijklmnopqrstuvwxyz234567"
	var h uint64 = 14695981039346656037
	id := make([]byte, 32)
	for i := range id {
		for _, c := range []byte(name) {
			h = (h ^ uint64(c)) * 1099511628211
		}
		h = (h ^ uint64(i)) * 1099511628211
		id[i] = digits[h%32]
	}
	return string(id)
}

// Invoke sends ev to the function and returns the function URL's response; it fails the test
// if the Invoke call itself fails.
func (f *Function) Invoke(t testing.TB, ev events.LambdaFunctionURLRequest) events.LambdaFunctionURLResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := Invoke(ctx, f.Lambda, f.Name, "", ev)
	if err != nil {
		t.Fatalf("invoke %s: %v", f.Name, err)
	}
	return res
}

// Event builds the event for a request to the function URL: method, path, raw query, headers
// (any case), cookies ("name=value") and body, sent as AWS would send it.
func (f *Function) Event(t testing.TB, method, path, query string, headers map[string]string, cookies []string, body string) events.LambdaFunctionURLRequest {
	t.Helper()
	target := f.URL + path
	if query != "" {
		target += "?" + query
	}
	r, err := http.NewRequest(method, target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		r.Header.Set(k, v)
	}
	if len(cookies) > 0 {
		r.Header.Set("Cookie", strings.Join(cookies, "; "))
	}
	ev, err := NewEvent(r, "")
	if err != nil {
		t.Fatal(err)
	}
	return ev
}
