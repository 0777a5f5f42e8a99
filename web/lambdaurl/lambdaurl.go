// Package lambdaurl runs an http.Handler as an AWS Lambda function behind a function URL.
//
// A function URL hands the function each HTTP request as an event in payload format 2.0 and
// expects the response as a JSON object (statusCode, headers, cookies, body, isBase64Encoded);
// see https://docs.aws.amazon.com/lambda/latest/dg/urls-invocation.html. Handler converts one
// to an *http.Request, serves it with the handler into a buffered response, and converts that
// back. Responses are buffered (the function URL's BUFFERED invoke mode), not streamed.
package lambdaurl

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

// Handler adapts an http.Handler to Lambda's function-URL event (payload format 2.0).
//
// The request it builds: method from requestContext.http.method, path from rawPath, query from
// rawQueryString, headers as given (a multi-valued header arrives comma-joined and stays so),
// the cookies array as a Cookie header, the body base64-decoded when isBase64Encoded, Host from
// the host header or requestContext.domainName, RemoteAddr "sourceIp:0" (net.SplitHostPort
// parses it), User-Agent from requestContext.http.userAgent when the header is missing, and
// X-Forwarded-Proto "https" with a non-nil TLS field, since function URLs are served over HTTPS
// only. Its context is the invocation's (lambdacontext.FromContext works on it).
//
// The response: the status the handler wrote (200 if none), its headers (several values of one
// header joined with ", "), every Set-Cookie in the cookies array, and the body as is for text
// (text/*, JSON, XML, JavaScript, forms, SVG; valid UTF-8) or base64-encoded otherwise. Like
// net/http's server it sniffs a missing Content-Type and drops the body of a HEAD request.
//
// A handler's panic is recovered, as net/http's server does: it is logged with its stack (to the
// function's log) and the invocation fails with an error, so the function URL answers 502 and
// the execution environment stays warm. An event that cannot be converted fails it too.
func Handler(h http.Handler) func(ctx context.Context, ev events.LambdaFunctionURLRequest) (events.LambdaFunctionURLResponse, error) {
	return func(ctx context.Context, ev events.LambdaFunctionURLRequest) (res events.LambdaFunctionURLResponse, err error) {
		r, err := Request(ctx, ev)
		if err != nil {
			return events.LambdaFunctionURLResponse{}, err
		}
		defer func() {
			if p := recover(); p != nil {
				if p != http.ErrAbortHandler {
					slog.ErrorContext(ctx, "lambdaurl: panic serving a request", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				}
				res, err = events.LambdaFunctionURLResponse{}, fmt.Errorf("lambdaurl: panic serving %s %s: %v", r.Method, r.URL.Path, p)
			}
		}()
		w := newRecorder()
		h.ServeHTTP(w, r)
		return w.response(r.Method), nil
	}
}

// Start runs h as the Lambda's handler (lambda.Start); it does not return.
func Start(h http.Handler) {
	lambda.Start(Handler(h))
}

// Request converts a function-URL event to the *http.Request a server would have read, with ctx
// as its context.
func Request(ctx context.Context, ev events.LambdaFunctionURLRequest) (*http.Request, error) {
	hc := ev.RequestContext.HTTP
	method := hc.Method
	if method == "" {
		method = http.MethodGet
	}
	rawPath := ev.RawPath
	if rawPath == "" {
		rawPath = hc.Path
	}
	if rawPath == "" {
		rawPath = "/"
	}
	uri := rawPath
	if ev.RawQueryString != "" {
		uri += "?" + ev.RawQueryString
	}
	u, err := url.ParseRequestURI(uri)
	if err != nil {
		return nil, fmt.Errorf("function URL event: bad path %q: %w", uri, err)
	}

	var body []byte
	if ev.IsBase64Encoded {
		body, err = base64.StdEncoding.DecodeString(ev.Body)
		if err != nil {
			return nil, fmt.Errorf("function URL event: body is not base64: %w", err)
		}
	} else {
		body = []byte(ev.Body)
	}

	r, err := http.NewRequestWithContext(ctx, method, uri, nil)
	if err != nil {
		return nil, fmt.Errorf("function URL event: %w", err)
	}
	r.URL = u
	r.RequestURI = uri
	if hc.Protocol != "" {
		if major, minor, ok := http.ParseHTTPVersion(hc.Protocol); ok {
			r.Proto, r.ProtoMajor, r.ProtoMinor = hc.Protocol, major, minor
		}
	}

	r.Header = make(http.Header, len(ev.Headers)+4)
	for k, v := range ev.Headers {
		r.Header.Add(k, v)
	}
	if len(ev.Cookies) > 0 {
		r.Header.Add("Cookie", strings.Join(ev.Cookies, "; "))
	}
	if r.Header.Get("User-Agent") == "" && hc.UserAgent != "" {
		r.Header.Set("User-Agent", hc.UserAgent)
	}
	if r.Header.Get("X-Forwarded-Proto") == "" {
		r.Header.Set("X-Forwarded-Proto", "https")
	}

	r.Host = r.Header.Get("Host")
	if r.Host == "" {
		r.Host = ev.RequestContext.DomainName
	}
	r.Header.Del("Host") // a server moves it to r.Host
	r.TLS = &tls.ConnectionState{HandshakeComplete: true, ServerName: hostOnly(r.Host)}

	ip := hc.SourceIP
	if ip == "" {
		if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
			ip = strings.TrimSpace(strings.Split(xff, ",")[0])
		}
	}
	if ip != "" {
		r.RemoteAddr = net.JoinHostPort(ip, "0")
	}

	r.ContentLength = int64(len(body))
	r.Body = http.NoBody
	r.Header.Del("Content-Length")
	if len(body) > 0 {
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.Header.Set("Content-Length", strconv.Itoa(len(body)))
	}
	return r, nil
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return hostport
}

// recorder is a buffered http.ResponseWriter. Headers are captured when the status is written,
// as a server sends them then.
type recorder struct {
	header      http.Header
	sent        http.Header
	status      int
	wroteHeader bool
	body        bytes.Buffer
}

func newRecorder() *recorder { return &recorder{header: make(http.Header)} }

func (w *recorder) Header() http.Header { return w.header }

func (w *recorder) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if code < 200 {
		return // informational responses cannot be relayed through a function URL
	}
	w.wroteHeader = true
	w.status = code
	w.sent = w.header.Clone()
}

func (w *recorder) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		if _, ok := w.header["Content-Type"]; !ok && w.header.Get("Content-Encoding") == "" {
			w.header.Set("Content-Type", http.DetectContentType(b))
		}
		w.WriteHeader(http.StatusOK)
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	return w.body.Write(b)
}

// Flush does nothing: the response is sent when the handler returns.
func (w *recorder) Flush() {}

func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}

func (w *recorder) response(method string) events.LambdaFunctionURLResponse {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	out := events.LambdaFunctionURLResponse{StatusCode: w.status, Headers: map[string]string{}}
	for k, vs := range w.sent {
		if len(vs) == 0 {
			continue
		}
		k = http.CanonicalHeaderKey(k)
		if k == "Set-Cookie" {
			out.Cookies = append(out.Cookies, vs...)
			continue
		}
		v := strings.Join(vs, ", ")
		if prev, ok := out.Headers[k]; ok {
			v = prev + ", " + v
		}
		out.Headers[k] = v
	}
	b := w.body.Bytes()
	if method == http.MethodHead || len(b) == 0 {
		return out
	}
	if IsText(w.sent.Get("Content-Type")) && w.sent.Get("Content-Encoding") == "" && utf8.Valid(b) {
		out.Body = string(b)
	} else {
		out.Body = base64.StdEncoding.EncodeToString(b)
		out.IsBase64Encoded = true
	}
	return out
}

// IsText reports whether a body of this Content-Type travels as text in the event or response
// JSON rather than base64: text/*, JSON, XML, JavaScript, YAML, form-urlencoded and SVG.
func IsText(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		mt, _, _ = strings.Cut(strings.ToLower(strings.TrimSpace(contentType)), ";")
		mt = strings.TrimSpace(mt)
	}
	if mt == "" {
		return false
	}
	if strings.HasPrefix(mt, "text/") || strings.HasSuffix(mt, "+json") || strings.HasSuffix(mt, "+xml") {
		return true
	}
	switch mt {
	case "application/json", "application/xml", "application/javascript", "application/x-javascript",
		"application/ecmascript", "application/x-www-form-urlencoded", "application/yaml",
		"application/x-yaml", "application/x-ndjson", "image/svg+xml":
		return true
	}
	return false
}
