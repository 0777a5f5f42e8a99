package lambdaurl_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/aviary-deploy/aviary/web/lambdaurl"
)

// seen is what the test handler saw of a request.
type seen struct {
	Method, Path, RawQuery, Host, RemoteAddr, UserAgent, Proto, XFP, ContentType string
	Query, Form                                                                  map[string][]string
	Cookies                                                                      map[string]string
	Multi                                                                        string
	Body                                                                         string
	TLS                                                                          bool
	RequestID                                                                    string
}

// record serves ev with a handler that records the request and answers with respond.
func record(t *testing.T, ctx context.Context, ev events.LambdaFunctionURLRequest, respond func(w http.ResponseWriter, r *http.Request)) (seen, events.LambdaFunctionURLResponse) {
	t.Helper()
	var s seen
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s = seen{
			Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Host: r.Host, RemoteAddr: r.RemoteAddr,
			UserAgent: r.UserAgent(), Proto: r.Proto, XFP: r.Header.Get("X-Forwarded-Proto"),
			ContentType: r.Header.Get("Content-Type"), Query: r.URL.Query(), Cookies: map[string]string{},
			Multi: r.Header.Get("X-Multi"), TLS: r.TLS != nil,
		}
		for _, c := range r.Cookies() {
			s.Cookies[c.Name] = c.Value
		}
		if lc, ok := lambdacontext.FromContext(r.Context()); ok {
			s.RequestID = lc.AwsRequestID
		}
		if r.Method == http.MethodPost && strings.HasPrefix(s.ContentType, "application/x-www-form-urlencoded") {
			if err := r.ParseForm(); err != nil {
				t.Errorf("ParseForm: %v", err)
			}
			s.Form = r.PostForm
		} else {
			b, _ := io.ReadAll(r.Body)
			s.Body = string(b)
		}
		if respond != nil {
			respond(w, r)
		}
	})
	res, err := lambdaurl.Handler(h)(ctx, ev)
	if err != nil {
		t.Fatalf("Handler: %v", err)
	}
	return s, res
}

func event(method, rawPath, rawQuery string) events.LambdaFunctionURLRequest {
	return events.LambdaFunctionURLRequest{
		Version: "2.0", RawPath: rawPath, RawQueryString: rawQuery,
		Headers: map[string]string{"host": "abc123.lambda-url.us-east-1.on.aws", "x-forwarded-proto": "https"},
		RequestContext: events.LambdaFunctionURLRequestContext{
			DomainName: "abc123.lambda-url.us-east-1.on.aws", DomainPrefix: "abc123", RequestID: "req-1",
			HTTP: events.LambdaFunctionURLRequestContextHTTPDescription{
				Method: method, Path: rawPath, Protocol: "HTTP/1.1", SourceIP: "198.51.100.4", UserAgent: "curl/8.0",
			},
		},
	}
}

func TestGetQueryCookiesAndContext(t *testing.T) {
	ev := event("GET", "/releases/r%2F1", "service=api&env=prod&env=staging&q=a+b%26c")
	ev.Cookies = []string{"session=s3cr3t", "theme=dark", "csrf=x=y"}
	ev.Headers["x-multi"] = "one,two"
	ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "aws-req-42"})

	s, res := record(t, ctx, ev, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"ok":true}`))
	})
	if s.Method != "GET" || s.Path != "/releases/r/1" || s.RawQuery != "service=api&env=prod&env=staging&q=a+b%26c" {
		t.Errorf("method %q path %q query %q", s.Method, s.Path, s.RawQuery)
	}
	if want := map[string][]string{"service": {"api"}, "env": {"prod", "staging"}, "q": {"a b&c"}}; !reflect.DeepEqual(s.Query, want) {
		t.Errorf("query = %v, want %v", s.Query, want)
	}
	if want := map[string]string{"session": "s3cr3t", "theme": "dark", "csrf": "x=y"}; !reflect.DeepEqual(s.Cookies, want) {
		t.Errorf("cookies = %v, want %v", s.Cookies, want)
	}
	if s.Multi != "one,two" {
		t.Errorf("X-Multi = %q, want the event's comma-joined value kept", s.Multi)
	}
	if s.Host != "abc123.lambda-url.us-east-1.on.aws" || s.XFP != "https" || !s.TLS || s.Proto != "HTTP/1.1" {
		t.Errorf("host %q, X-Forwarded-Proto %q, TLS %v, proto %q", s.Host, s.XFP, s.TLS, s.Proto)
	}
	if s.UserAgent != "curl/8.0" {
		t.Errorf("User-Agent = %q, want it from requestContext.http.userAgent", s.UserAgent)
	}
	if s.RequestID != "aws-req-42" {
		t.Errorf("the request's context does not carry the Lambda context (request id %q)", s.RequestID)
	}
	if res.StatusCode != 200 || res.Body != `{"ok":true}` || res.IsBase64Encoded || res.Headers["Content-Type"] != "application/json" {
		t.Errorf("response = %+v", res)
	}
}

func TestRemoteAddrParses(t *testing.T) {
	for _, ip := range []string{"198.51.100.4", "2001:db8::1"} {
		ev := event("GET", "/", "")
		ev.RequestContext.HTTP.SourceIP = ip
		s, _ := record(t, context.Background(), ev, nil)
		host, port, err := net.SplitHostPort(s.RemoteAddr)
		if err != nil || host != ip || port != "0" {
			t.Errorf("RemoteAddr %q: SplitHostPort = %q, %q, %v; want %q", s.RemoteAddr, host, port, err, ip)
		}
	}
}

func TestHostFallsBackToDomainName(t *testing.T) {
	ev := event("GET", "/", "")
	delete(ev.Headers, "host")
	ev.Headers["user-agent"] = "from-header"
	s, _ := record(t, context.Background(), ev, nil)
	if s.Host != "abc123.lambda-url.us-east-1.on.aws" {
		t.Errorf("Host = %q, want requestContext.domainName", s.Host)
	}
	if s.UserAgent != "from-header" {
		t.Errorf("User-Agent = %q, want the header's over requestContext's", s.UserAgent)
	}
}

func TestPostBase64Form(t *testing.T) {
	form := "name=Ada+Lovelace&action=approve&note=%C3%A9t%C3%A9"
	ev := event("POST", "/approve", "")
	ev.Headers["content-type"] = "application/x-www-form-urlencoded"
	ev.Body = base64.StdEncoding.EncodeToString([]byte(form))
	ev.IsBase64Encoded = true
	s, res := record(t, context.Background(), ev, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	if want := map[string][]string{"name": {"Ada Lovelace"}, "action": {"approve"}, "note": {"été"}}; !reflect.DeepEqual(s.Form, want) {
		t.Errorf("form = %v, want %v", s.Form, want)
	}
	if res.StatusCode != 204 || res.Body != "" {
		t.Errorf("response = %+v", res)
	}

	// The same body as plain text.
	ev.Body, ev.IsBase64Encoded = form, false
	if s, _ = record(t, context.Background(), ev, nil); s.Form["name"][0] != "Ada Lovelace" {
		t.Errorf("plain form = %v", s.Form)
	}

	// A body that is not base64 fails the invocation.
	ev.Body, ev.IsBase64Encoded = "not base64!", true
	if _, err := lambdaurl.Handler(http.NotFoundHandler())(context.Background(), ev); err == nil {
		t.Error("a bad base64 body was accepted")
	}
}

func TestSetCookieGoesToCookies(t *testing.T) {
	_, res := record(t, context.Background(), event("GET", "/login", ""), func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "session", Value: "abc", Path: "/", HttpOnly: true, Secure: true})
		http.SetCookie(w, &http.Cookie{Name: "flash", Value: "hi", MaxAge: 10})
		w.Header().Add("Vary", "Cookie")
		w.Header().Add("Vary", "Accept")
		w.Header()["x-lower"] = []string{"kept"}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, "<p>hello</p>")
	})
	want := []string{"session=abc; Path=/; HttpOnly; Secure", "flash=hi; Max-Age=10"}
	if !reflect.DeepEqual(res.Cookies, want) {
		t.Errorf("cookies = %q, want %q", res.Cookies, want)
	}
	if _, ok := res.Headers["Set-Cookie"]; ok {
		t.Error("Set-Cookie left in the headers")
	}
	if res.Headers["Vary"] != "Cookie, Accept" {
		t.Errorf("Vary = %q, want the values joined", res.Headers["Vary"])
	}
	if res.Headers["X-Lower"] != "kept" {
		t.Errorf("headers = %v, want a non-canonical key canonicalised", res.Headers)
	}
	if res.Body != "<p>hello</p>" || res.IsBase64Encoded {
		t.Errorf("body %q base64 %v", res.Body, res.IsBase64Encoded)
	}
	// The JSON the runtime sends back has the documented field names.
	b, _ := json.Marshal(res)
	for _, k := range []string{`"statusCode":200`, `"cookies":[`, `"isBase64Encoded":false`, `"headers":{`, `"body":`} {
		if !strings.Contains(string(b), k) {
			t.Errorf("response JSON %s lacks %s", b, k)
		}
	}
}

func TestBinaryResponseIsBase64(t *testing.T) {
	png := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
	_, res := record(t, context.Background(), event("GET", "/shot.png", ""), func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		w.Write(png)
	})
	if !res.IsBase64Encoded {
		t.Fatalf("binary body not base64-encoded: %+v", res)
	}
	if got, _ := base64.StdEncoding.DecodeString(res.Body); string(got) != string(png) {
		t.Errorf("decoded body = %q, want %q", got, png)
	}

	// No Content-Type: it is sniffed, as net/http does, and binary stays base64.
	_, res = record(t, context.Background(), event("GET", "/blob", ""), func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte{0, 1, 2, 0xff})
	})
	if !res.IsBase64Encoded || res.Headers["Content-Type"] != "application/octet-stream" {
		t.Errorf("sniffed binary: %+v", res)
	}
	// Text sniffed as text stays text.
	_, res = record(t, context.Background(), event("GET", "/hi", ""), func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello")
	})
	if res.IsBase64Encoded || res.Body != "hello" || !strings.HasPrefix(res.Headers["Content-Type"], "text/plain") {
		t.Errorf("sniffed text: %+v", res)
	}
	// A text type whose bytes are not UTF-8 cannot go through JSON as is.
	_, res = record(t, context.Background(), event("GET", "/latin1", ""), func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=iso-8859-1")
		w.Write([]byte("caf\xe9"))
	})
	if !res.IsBase64Encoded {
		t.Errorf("non-UTF-8 text sent as is: %+v", res)
	}
	// A compressed body is binary whatever its type.
	_, res = record(t, context.Background(), event("GET", "/gz", ""), func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Encoding", "gzip")
		w.Write([]byte("\x1f\x8b"))
	})
	if !res.IsBase64Encoded {
		t.Errorf("gzip body sent as is: %+v", res)
	}
}

func TestIsText(t *testing.T) {
	for ct, want := range map[string]bool{
		"text/html; charset=utf-8": true, "TEXT/CSS": true, "application/json": true, "application/problem+json": true,
		"application/xml": true, "application/atom+xml": true, "application/javascript": true, "image/svg+xml": true,
		"application/x-www-form-urlencoded": true, "image/png": false, "application/octet-stream": false,
		"application/pdf": false, "": false, "multipart/form-data; boundary=x": false,
	} {
		if got := lambdaurl.IsText(ct); got != want {
			t.Errorf("IsText(%q) = %v, want %v", ct, got, want)
		}
	}
}

func TestRedirect(t *testing.T) {
	ev := event("POST", "/decide", "")
	ev.Headers["content-type"] = "application/x-www-form-urlencoded"
	ev.Body = "action=approve"
	_, res := record(t, context.Background(), ev, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/releases/r1?decided=1", http.StatusSeeOther)
	})
	if res.StatusCode != http.StatusSeeOther || res.Headers["Location"] != "/releases/r1?decided=1" {
		t.Errorf("redirect = %+v", res)
	}
}

func TestDefaultsAndHeaderCase(t *testing.T) {
	ev := event("HEAD", "", "")
	ev.RequestContext.HTTP.Path = "/from-context"
	ev.Headers["X-Mixed-Case"] = "a"
	ev.Headers["content-type"] = "text/plain"
	var keys []string
	var ct, mixed string
	res, err := lambdaurl.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k := range r.Header {
			keys = append(keys, k)
		}
		ct, mixed = r.Header.Get("Content-Type"), r.Header.Get("x-mixed-case")
		if r.URL.Path != "/from-context" {
			t.Errorf("path = %q, want requestContext.http.path when rawPath is empty", r.URL.Path)
		}
		io.WriteString(w, "body of a HEAD")
	}))(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if ct != "text/plain" || mixed != "a" {
		t.Errorf("Content-Type %q, X-Mixed-Case %q: lower-case event headers not readable", ct, mixed)
	}
	for _, k := range keys {
		if k != http.CanonicalHeaderKey(k) {
			t.Errorf("header key %q not canonical", k)
		}
	}
	if slices.Contains(keys, "Host") {
		t.Error("Host left in r.Header; a server moves it to r.Host")
	}
	if res.StatusCode != 200 || res.Body != "" {
		t.Errorf("HEAD response = %+v, want 200 and no body", res)
	}

	// A handler that writes nothing answers 200 with no body.
	res, _ = lambdaurl.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))(context.Background(), event("GET", "/", ""))
	if res.StatusCode != 200 || res.Body != "" || res.IsBase64Encoded {
		t.Errorf("empty response = %+v", res)
	}

	// Headers changed after WriteHeader are not sent, as with a server.
	res, _ = lambdaurl.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Before", "1")
		w.WriteHeader(http.StatusAccepted)
		w.Header().Set("X-After", "1")
	}))(context.Background(), event("GET", "/", ""))
	if res.StatusCode != http.StatusAccepted || res.Headers["X-Before"] != "1" || res.Headers["X-After"] != "" {
		t.Errorf("response = %+v", res)
	}
}

func TestPanicFailsTheInvocation(t *testing.T) {
	defer slog.SetDefault(slog.Default())
	slog.SetDefault(slog.New(slog.DiscardHandler))
	h := lambdaurl.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		panic("boom")
	}))
	res, err := h(context.Background(), event("GET", "/x", ""))
	if err == nil || !strings.Contains(err.Error(), "boom") || res.StatusCode != 0 {
		t.Errorf("panic: response %+v, error %v; want an error and no response", res, err)
	}
}
