package lambdaurl_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/aviary-deploy/aviary/web/lambdaurl/lambdaurltest"
)

// testfn is the main package the sandbox runs; see internal/testfn.
const testfn = "./web/lambdaurl/internal/testfn"

// invokeURL sends one request to fn as its function URL would (an event built as AWS builds it,
// through the Lambda Invoke API) and returns the function URL's response.
func invokeURL(t *testing.T, fn *lambdaurltest.Function, method, path, query string, headers map[string]string, cookies []string, body string) events.LambdaFunctionURLResponse {
	t.Helper()
	return fn.Invoke(t, fn.Event(t, method, path, query, headers, cookies, body))
}

// echo is internal/testfn's /echo answer.
type echo struct {
	Method     string              `json:"method"`
	Path       string              `json:"path"`
	RawQuery   string              `json:"rawQuery"`
	Query      map[string][]string `json:"query"`
	Cookies    map[string]string   `json:"cookies"`
	Form       map[string][]string `json:"form"`
	Host       string              `json:"host"`
	RemoteIP   string              `json:"remoteIP"`
	UserAgent  string              `json:"userAgent"`
	Scheme     string              `json:"scheme"`
	TLS        bool                `json:"tls"`
	Multi      string              `json:"multi"`
	RequestID  string              `json:"requestID"`
	HeaderKeys []string            `json:"headerKeys"`
}

func decodeEcho(t *testing.T, res events.LambdaFunctionURLResponse) echo {
	t.Helper()
	if res.StatusCode != http.StatusOK || res.IsBase64Encoded {
		t.Fatalf("response = %+v, want a 200 with a text body", res)
	}
	var e echo
	if err := json.Unmarshal([]byte(res.Body), &e); err != nil {
		t.Fatalf("body %q: %v", res.Body, err)
	}
	return e
}

// TestThroughSandbox runs internal/testfn, built into a bootstrap zip, as a provided.al2023
// function in the sandbox and sends it function-URL events with the Lambda Invoke API.
func TestThroughSandbox(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a function and starts the sandbox")
	}
	fn := lambdaurltest.Deploy(t, testfn, lambdaurltest.Options{Name: "lambdaurl-testfn"})
	host := strings.TrimPrefix(fn.URL, "https://")

	t.Run("GET with query, cookies and headers", func(t *testing.T) {
		res := invokeURL(t, fn, "GET", "/echo", "service=api&env=prod&env=staging&q=a+b%26c",
			map[string]string{"User-Agent": "lambdaurl-test/1", "X-Multi": "one"}, []string{"session=s3cr3t", "theme=dark"}, "")
		e := decodeEcho(t, res)
		if e.Method != "GET" || e.Path != "/echo" || e.RawQuery != "service=api&env=prod&env=staging&q=a+b%26c" {
			t.Errorf("method %q path %q query %q", e.Method, e.Path, e.RawQuery)
		}
		if want := map[string][]string{"service": {"api"}, "env": {"prod", "staging"}, "q": {"a b&c"}}; !reflect.DeepEqual(e.Query, want) {
			t.Errorf("query = %v, want %v", e.Query, want)
		}
		if want := map[string]string{"session": "s3cr3t", "theme": "dark"}; !reflect.DeepEqual(e.Cookies, want) {
			t.Errorf("cookies = %v, want %v", e.Cookies, want)
		}
		if e.Host != host || e.RemoteIP != lambdaurltest.SourceIP || e.UserAgent != "lambdaurl-test/1" || e.Scheme != "https" || !e.TLS || e.Multi != "one" {
			t.Errorf("echo = %+v", e)
		}
		if e.RequestID == "" {
			t.Error("the handler's context carries no Lambda request id")
		}
		if slices.Contains(e.HeaderKeys, "Host") {
			t.Errorf("header keys %v", e.HeaderKeys)
		}
		if want := []string{"seen=1; Path=/", "session=abc; Path=/; HttpOnly; Secure"}; !reflect.DeepEqual(res.Cookies, want) {
			t.Errorf("cookies = %q, want %q", res.Cookies, want)
		}
		if res.Headers["Content-Type"] != "application/json" {
			t.Errorf("headers = %v", res.Headers)
		}
	})

	t.Run("POST a base64 form", func(t *testing.T) {
		ev := fn.Event(t, "POST", "/echo", "", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, nil, "")
		ev.Body = base64.StdEncoding.EncodeToString([]byte("name=Ada+Lovelace&action=approve&note=%C3%A9t%C3%A9"))
		ev.IsBase64Encoded = true
		e := decodeEcho(t, fn.Invoke(t, ev))
		if want := map[string][]string{"name": {"Ada Lovelace"}, "action": {"approve"}, "note": {"été"}}; e.Method != "POST" || !reflect.DeepEqual(e.Form, want) {
			t.Errorf("method %q form %v, want %v", e.Method, e.Form, want)
		}
	})

	t.Run("POST a form and get redirected", func(t *testing.T) {
		res := invokeURL(t, fn, "POST", "/submit", "", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, nil, "name=Ada+L%26co")
		if res.StatusCode != http.StatusSeeOther || res.Headers["Location"] != "/done?name=Ada+L%26co" {
			t.Errorf("response = %+v, want 303 to /done?name=Ada+L%%26co", res)
		}
	})

	t.Run("binary body", func(t *testing.T) {
		res := invokeURL(t, fn, "GET", "/bin", "", nil, nil, "")
		b, err := base64.StdEncoding.DecodeString(res.Body)
		if res.StatusCode != 200 || !res.IsBase64Encoded || err != nil || string(b) != "\x00\x01\xfe\xff" {
			t.Errorf("response = %+v (decoded %q, %v)", res, b, err)
		}
	})

	t.Run("an http.Client through the function URL", func(t *testing.T) {
		jar, _ := cookiejar.New(nil)
		c := *fn.Client
		c.Jar = jar
		resp, err := c.PostForm(fn.URL+"/submit", url.Values{"name": {"Grace"}})
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "done: Grace" || resp.Request.URL.Path != "/done" {
			t.Errorf("after the redirect: %d %q at %s", resp.StatusCode, body, resp.Request.URL)
		}
		// The cookies set by one response come back with the next request.
		for range 2 {
			resp, err = c.Get(fn.URL + "/echo")
			if err != nil {
				t.Fatal(err)
			}
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		var e echo
		if err := json.Unmarshal(body, &e); err != nil {
			t.Fatal(err)
		}
		if want := map[string]string{"seen": "1", "session": "abc"}; !reflect.DeepEqual(e.Cookies, want) {
			t.Errorf("cookies = %v, want %v", e.Cookies, want)
		}
	})

	// A handler's panic fails the invocation (the function URL's 502) and the function goes on.
	t.Run("a failing handler is a 502", func(t *testing.T) {
		if res := invokeURL(t, fn, "GET", "/fail", "", nil, nil, ""); res.StatusCode != http.StatusBadGateway {
			t.Errorf("response = %+v, want 502", res)
		}
		if res := invokeURL(t, fn, "GET", "/bin", "", nil, nil, ""); res.StatusCode != 200 {
			t.Errorf("after a failure: %+v", res)
		}
	})
}
