// Package lambdaurltest plays the function URL in front of a Lambda function in tests: it turns
// HTTP requests into function-URL events (payload format 2.0) the way AWS does, invokes the
// function through the Lambda Invoke API, and turns the function's result back into an HTTP
// response. With Deploy, the function is a real zip (a bootstrap built from a Go main package)
// running in the Aviary sandbox, so an ordinary http.Client can talk to it.
package lambdaurltest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/aviary-deploy/aviary/web/lambdaurl"
)

// SourceIP is the client address events carry when none is given (TEST-NET-3, RFC 5737).
const SourceIP = "203.0.113.7"

// NewEvent builds the event a function URL sends its function for r, as AWS does: lower-case
// header names with several values of one header comma-joined, the Cookie header split into the
// cookies array, the query both raw and parsed, a text body as is and any other body base64.
// sourceIP is the client's address ("" means SourceIP).
func NewEvent(r *http.Request, sourceIP string) (events.LambdaFunctionURLRequest, error) {
	if sourceIP == "" {
		sourceIP = SourceIP
	}
	host := r.Host
	if host == "" && r.URL != nil {
		host = r.URL.Host
	}
	host = strings.TrimSuffix(host, ":443")
	ev := events.LambdaFunctionURLRequest{
		Version:        "2.0",
		RawPath:        r.URL.EscapedPath(),
		RawQueryString: r.URL.RawQuery,
		Headers:        map[string]string{},
	}
	if ev.RawPath == "" {
		ev.RawPath = "/"
	}
	for k, vs := range r.Header {
		k = strings.ToLower(k)
		if k == "cookie" {
			for _, v := range vs {
				for c := range strings.SplitSeq(v, ";") {
					if c = strings.TrimSpace(c); c != "" {
						ev.Cookies = append(ev.Cookies, c)
					}
				}
			}
			continue
		}
		ev.Headers[k] = strings.Join(vs, ",")
	}
	ev.Headers["host"] = host
	ev.Headers["x-forwarded-proto"] = "https"
	ev.Headers["x-forwarded-port"] = "443"
	ev.Headers["x-forwarded-for"] = sourceIP
	if q, err := url.ParseQuery(r.URL.RawQuery); err == nil && len(q) > 0 {
		ev.QueryStringParameters = map[string]string{}
		for k, vs := range q {
			ev.QueryStringParameters[k] = strings.Join(vs, ",")
		}
	}
	if r.Body != nil {
		b, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			return ev, err
		}
		if len(b) > 0 {
			ev.Headers["content-length"] = strconv.Itoa(len(b))
			ev.Body, ev.IsBase64Encoded = Body(b, r.Header.Get("Content-Type"))
		}
	}
	prefix, _, _ := strings.Cut(host, ".")
	now := time.Now().UTC()
	ev.RequestContext = events.LambdaFunctionURLRequestContext{
		AccountID:    "anonymous",
		RequestID:    requestID(),
		APIID:        prefix,
		DomainName:   host,
		DomainPrefix: prefix,
		Time:         now.Format("02/Jan/2006:15:04:05 -0700"),
		TimeEpoch:    now.UnixMilli(),
		HTTP: events.LambdaFunctionURLRequestContextHTTPDescription{
			Method:    r.Method,
			Path:      ev.RawPath,
			Protocol:  "HTTP/1.1",
			SourceIP:  sourceIP,
			UserAgent: r.Header.Get("User-Agent"),
		},
	}
	if ev.RequestContext.HTTP.Method == "" {
		ev.RequestContext.HTTP.Method = http.MethodGet
	}
	return ev, nil
}

// Body encodes b as an event carries it: as is for a text content type, otherwise base64.
func Body(b []byte, contentType string) (body string, isBase64 bool) {
	if lambdaurl.IsText(contentType) {
		return string(b), false
	}
	return base64.StdEncoding.EncodeToString(b), true
}

func requestID() string {
	var b [16]byte
	rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// ParseResult decodes a function's result payload as a function URL does: an object with a
// statusCode is a response; any other result is a 200 with the result as its JSON body.
func ParseResult(payload []byte) (events.LambdaFunctionURLResponse, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(payload, &probe); err == nil {
		if _, ok := probe["statusCode"]; ok {
			var out events.LambdaFunctionURLResponse
			if err := json.Unmarshal(payload, &out); err != nil {
				return out, fmt.Errorf("function URL response: %w", err)
			}
			return out, nil
		}
	}
	return events.LambdaFunctionURLResponse{
		StatusCode: http.StatusOK,
		Headers:    map[string]string{"content-type": "application/json"},
		Body:       string(payload),
	}, nil
}

// NewResponse converts a function-URL response to the *http.Response its client receives: each
// cookie becomes a Set-Cookie header and a base64 body is decoded.
func NewResponse(res events.LambdaFunctionURLResponse, req *http.Request) (*http.Response, error) {
	status := res.StatusCode
	if status == 0 {
		status = http.StatusOK
	}
	var body []byte
	if res.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(res.Body)
		if err != nil {
			return nil, fmt.Errorf("function URL response: body is not base64: %w", err)
		}
		body = b
	} else {
		body = []byte(res.Body)
	}
	h := make(http.Header, len(res.Headers)+len(res.Cookies))
	for k, v := range res.Headers {
		h.Set(k, v)
	}
	for _, c := range res.Cookies {
		h.Add("Set-Cookie", c)
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	return &http.Response{
		Status:        fmt.Sprintf("%d %s", status, http.StatusText(status)),
		StatusCode:    status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       req,
	}, nil
}

// Invoker is the part of the Lambda client the function URL uses.
type Invoker interface {
	Invoke(ctx context.Context, in *lambda.InvokeInput, opts ...func(*lambda.Options)) (*lambda.InvokeOutput, error)
}

// Invoke sends ev to the function and decodes its result as a function URL does. A function
// error is a 502 Bad Gateway, as AWS answers then.
func Invoke(ctx context.Context, c Invoker, function, qualifier string, ev events.LambdaFunctionURLRequest) (events.LambdaFunctionURLResponse, error) {
	payload, err := json.Marshal(ev)
	if err != nil {
		return events.LambdaFunctionURLResponse{}, err
	}
	in := &lambda.InvokeInput{FunctionName: aws.String(function), Payload: payload}
	if qualifier != "" {
		in.Qualifier = aws.String(qualifier)
	}
	out, err := c.Invoke(ctx, in)
	if err != nil {
		return events.LambdaFunctionURLResponse{}, err
	}
	if out.FunctionError != nil {
		return events.LambdaFunctionURLResponse{
			StatusCode: http.StatusBadGateway,
			Headers:    map[string]string{"content-type": "application/json"},
			Body:       `{"Message":"Internal Server Error"}`,
		}, nil
	}
	return ParseResult(out.Payload)
}

// Transport is an http.RoundTripper that sends every request to one function as its function
// URL would, whatever the request's host. Use it in an http.Client (with a cookie jar, if the
// handler keeps a session); the client follows redirects itself.
type Transport struct {
	Lambda    Invoker
	Function  string
	Qualifier string
	// SourceIP is the client address the events carry; "" means SourceIP.
	SourceIP string
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(r *http.Request) (*http.Response, error) {
	ev, err := NewEvent(r, t.SourceIP)
	if err != nil {
		return nil, err
	}
	res, err := Invoke(r.Context(), t.Lambda, t.Function, t.Qualifier, ev)
	if err != nil {
		return nil, err
	}
	return NewResponse(res, r)
}
