package lambda

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/aviary-deploy/aviary/sandbox/protocol"
)

// Function URLs: CreateFunctionUrlConfig, GetFunctionUrlConfig, UpdateFunctionUrlConfig,
// DeleteFunctionUrlConfig and ListFunctionUrlConfigs, and the URLs themselves.
//
// A function URL has AWS's form, https://<url-id>.lambda-url.<region>.on.aws/, and the sandbox
// serves it: a request that reaches the sandbox with that host (Host header; the scheme is the
// sandbox's plain HTTP) is turned into the function URL event (payload version 2.0), the
// function is invoked through the URL's qualifier, and its result is answered as a function URL
// answers it (a function error is 502). An AWS_IAM URL refuses unsigned requests (403) and,
// as everywhere in the sandbox, verifies no signature. A NONE URL answers only when the
// function's resource policy (the URL's qualifier's) grants lambda:InvokeFunctionUrl to "*"
// under the condition lambda:FunctionUrlAuthType = NONE — what AddPermission
// --function-url-auth-type NONE writes — and refuses everyone (403) otherwise, as AWS does.
// Simpler than AWS, and said so: URLs created since October 2025 also need lambda:InvokeFunction
// in AWS; the sandbox asks only for lambda:InvokeFunctionUrl.
//
// A URL with a Cors configuration answers browsers' preflight (OPTIONS with
// Access-Control-Request-Method) itself, without invoking the function, and adds the
// Access-Control-* headers to the function's answers to allowed origins.

var urlQualifierRE = regexp.MustCompile(`^[0-9a-zA-Z-_]{1,128}$`)

// urlErrorTypes are the x-amzn-ErrorType a function URL answers with its own errors.
var urlErrorTypes = map[int]string{
	http.StatusBadRequest:          "BadRequestException",
	http.StatusForbidden:           "AccessDeniedException",
	http.StatusTooManyRequests:     "TooManyRequestsException",
	http.StatusInternalServerError: "InternalServerError",
	http.StatusBadGateway:          "InternalServerError",
}

// urlConfig is a function URL's configuration; it lives and dies with its function.
type urlConfig struct {
	ID         string
	Qualifier  string
	AuthType   string
	InvokeMode string
	Cors       *urlCors `json:",omitempty"`
	Created    time.Time
	Modified   time.Time
}

type urlCors struct {
	AllowCredentials *bool    `json:"AllowCredentials,omitempty"`
	AllowHeaders     []string `json:"AllowHeaders,omitempty"`
	AllowMethods     []string `json:"AllowMethods,omitempty"`
	AllowOrigins     []string `json:"AllowOrigins,omitempty"`
	ExposeHeaders    []string `json:"ExposeHeaders,omitempty"`
	MaxAge           *int     `json:"MaxAge,omitempty"`
}

type urlConfigInput struct {
	AuthType   string   `json:"AuthType"`
	Cors       *urlCors `json:"Cors"`
	InvokeMode string   `json:"InvokeMode"`
}

type urlConfigOutput struct {
	FunctionURL      string   `json:"FunctionUrl"`
	FunctionArn      string   `json:"FunctionArn"`
	AuthType         string   `json:"AuthType"`
	Cors             *urlCors `json:"Cors,omitempty"`
	CreationTime     string   `json:"CreationTime"`
	LastModifiedTime string   `json:"LastModifiedTime,omitempty"`
	InvokeMode       string   `json:"InvokeMode"`
}

type listURLConfigsInput struct {
	Marker   string `json:"-" aws:"query:Marker"`
	MaxItems *int   `json:"-" aws:"query:MaxItems"`
}

type listURLConfigsOutput struct {
	FunctionURLConfigs []urlConfigOutput `json:"FunctionUrlConfigs"`
	NextMarker         string            `json:"NextMarker,omitempty"`
}

const urlTimeLayout = "2006-01-02T15:04:05.000000Z"

// urlRoutes registers the function URL configuration operations.
func (s *Service) urlRoutes(api *protocol.Service) {
	target := func(req *protocol.Request) (string, string) {
		return req.Label("FunctionName"), req.Query().Get("Qualifier")
	}
	protocol.Route(api, "POST /2021-10-31/functions/{FunctionName}/url", "CreateFunctionUrlConfig", http.StatusCreated,
		func(_ context.Context, req *protocol.Request, in *urlConfigInput) (*urlConfigOutput, *APIError) {
			fn, q := target(req)
			return ptr(s.putURLConfig(fn, q, *in, true))
		})
	protocol.Route(api, "PUT /2021-10-31/functions/{FunctionName}/url", "UpdateFunctionUrlConfig", 0,
		func(_ context.Context, req *protocol.Request, in *urlConfigInput) (*urlConfigOutput, *APIError) {
			fn, q := target(req)
			return ptr(s.putURLConfig(fn, q, *in, false))
		})
	protocol.Route(api, "GET /2021-10-31/functions/{FunctionName}/url", "GetFunctionUrlConfig", 0,
		func(_ context.Context, req *protocol.Request, _ *struct{}) (*urlConfigOutput, *APIError) {
			fn, q := target(req)
			return ptr(s.getURLConfig(fn, q))
		})
	protocol.Route(api, "DELETE /2021-10-31/functions/{FunctionName}/url", "DeleteFunctionUrlConfig", http.StatusNoContent,
		func(_ context.Context, req *protocol.Request, _ *struct{}) (*struct{}, *APIError) {
			fn, q := target(req)
			return nil, s.deleteURLConfig(fn, q)
		})
	protocol.Route(api, "GET /2021-10-31/functions/{FunctionName}/urls", "ListFunctionUrlConfigs", 0,
		func(_ context.Context, req *protocol.Request, in *listURLConfigsInput) (*listURLConfigsOutput, *APIError) {
			return ptr(s.listURLConfigs(req.Label("FunctionName"), *in))
		})
}

// FunctionURL is the URL AWS gives a function URL id in the sandbox's region.
func (s *Service) FunctionURL(id string) string {
	return "https://" + id + ".lambda-url." + s.cfg.Region + ".on.aws/"
}

func (s *Service) urlOutput(f *function, c *urlConfig, withModified bool) urlConfigOutput {
	out := urlConfigOutput{FunctionURL: s.FunctionURL(c.ID), FunctionArn: s.functionARN(f.Name), AuthType: c.AuthType, Cors: c.Cors,
		CreationTime: c.Created.UTC().Format(urlTimeLayout), InvokeMode: c.InvokeMode}
	if c.Qualifier != "" {
		out.FunctionArn = s.qualifiedARN(f.Name, c.Qualifier)
	}
	if withModified {
		out.LastModifiedTime = c.Modified.UTC().Format(urlTimeLayout)
	}
	return out
}

// urlTarget finds the function and the qualifier (an alias, $LATEST or none) a URL operation
// names; the caller holds s.mu.
func (s *Service) urlTarget(raw, qualifier string) (*function, string, *APIError) {
	f, q, err := s.lookup(raw)
	if err != nil {
		return nil, "", err
	}
	if q, err = mergeQualifier(q, qualifier); err != nil {
		return nil, "", err
	}
	if q == "" {
		return f, q, nil
	}
	// The model's pattern admits aliases only: neither $LATEST nor a version.
	if !urlQualifierRE.MatchString(q) || versionRE.MatchString(q) {
		return nil, "", validation("qualifier", q, `Member must satisfy regular expression pattern: ((?!^\d+$)^[0-9a-zA-Z-_]+$)`)
	}
	if _, ok := f.Aliases[q]; !ok {
		return nil, "", notFound("The resource you requested does not exist.")
	}
	return f, q, nil
}

func newURLID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

func (s *Service) putURLConfig(raw, qualifier string, in urlConfigInput, create bool) (urlConfigOutput, *APIError) {
	switch in.AuthType {
	case "NONE", "AWS_IAM":
	case "":
		if create {
			return urlConfigOutput{}, validation("authType", "null", "Member must not be null")
		}
	default:
		return urlConfigOutput{}, validation("authType", in.AuthType, "Member must satisfy enum value set: [NONE, AWS_IAM]")
	}
	switch in.InvokeMode {
	case "", "BUFFERED", "RESPONSE_STREAM":
	default:
		return urlConfigOutput{}, validation("invokeMode", in.InvokeMode, "Member must satisfy enum value set: [BUFFERED, RESPONSE_STREAM]")
	}
	if err := checkCors(in.Cors); err != nil {
		return urlConfigOutput{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f, q, err := s.urlTarget(raw, qualifier)
	if err != nil {
		return urlConfigOutput{}, err
	}
	now := s.cfg.Now()
	c := f.URLs[q]
	switch {
	case create && c != nil:
		return urlConfigOutput{}, conflict("Failed to create function url config for [functionArn = %s]. Error message:  FunctionUrlConfig exists for this Lambda function", s.functionARN(f.Name))
	case !create && c == nil:
		return urlConfigOutput{}, notFound("The resource you requested does not exist.")
	case create:
		c = &urlConfig{ID: newURLID(), Qualifier: q, AuthType: in.AuthType, InvokeMode: "BUFFERED", Cors: in.Cors, Created: now, Modified: now}
		if in.InvokeMode != "" {
			c.InvokeMode = in.InvokeMode
		}
		if f.URLs == nil {
			f.URLs = map[string]*urlConfig{}
		}
		f.URLs[q] = c
	default:
		if in.AuthType != "" {
			c.AuthType = in.AuthType
		}
		if in.InvokeMode != "" {
			c.InvokeMode = in.InvokeMode
		}
		if in.Cors != nil {
			c.Cors = in.Cors
		}
		c.Modified = now
	}
	s.save()
	return s.urlOutput(f, c, !create), nil
}

func (s *Service) getURLConfig(raw, qualifier string) (urlConfigOutput, *APIError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, q, err := s.urlTarget(raw, qualifier)
	if err != nil {
		return urlConfigOutput{}, err
	}
	c := f.URLs[q]
	if c == nil {
		return urlConfigOutput{}, notFound("The resource you requested does not exist.")
	}
	return s.urlOutput(f, c, true), nil
}

func (s *Service) deleteURLConfig(raw, qualifier string) *APIError {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, q, err := s.urlTarget(raw, qualifier)
	if err != nil {
		return err
	}
	if f.URLs[q] == nil {
		return notFound("The resource you requested does not exist.")
	}
	delete(f.URLs, q)
	s.save()
	return nil
}

// listURLConfigs pages a function's URL configurations in qualifier order; the marker is the
// qualifier the next page starts at, opaque to the caller.
func (s *Service) listURLConfigs(raw string, in listURLConfigsInput) (listURLConfigsOutput, *APIError) {
	n := 50
	if in.MaxItems != nil {
		if *in.MaxItems < 1 || *in.MaxItems > 50 {
			return listURLConfigsOutput{}, validation("maxItems", strconv.Itoa(*in.MaxItems), "Member must have value between 1 and 50")
		}
		n = *in.MaxItems
	}
	start, ok := "", true
	if in.Marker != "" {
		start, ok = urlMarker(in.Marker)
		if !ok {
			return listURLConfigsOutput{}, invalidParam("Invalid marker: %s", in.Marker)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f, q, err := s.lookup(raw)
	if err != nil {
		return listURLConfigsOutput{}, err
	}
	if q != "" {
		return listURLConfigsOutput{}, invalidParam("Qualifiers are not supported by ListFunctionUrlConfigs.")
	}
	out := listURLConfigsOutput{FunctionURLConfigs: []urlConfigOutput{}}
	for _, k := range slices.Sorted(maps.Keys(f.URLs)) {
		if in.Marker != "" && k < start {
			continue
		}
		if len(out.FunctionURLConfigs) == n {
			out.NextMarker = base64.RawURLEncoding.EncodeToString([]byte("url:" + k))
			break
		}
		out.FunctionURLConfigs = append(out.FunctionURLConfigs, s.urlOutput(f, f.URLs[k], true))
	}
	return out, nil
}

// urlMarker is the qualifier a ListFunctionUrlConfigs marker resumes at.
func urlMarker(m string) (string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(m)
	if err != nil {
		return "", false
	}
	return strings.CutPrefix(string(b), "url:")
}

// checkCors checks a Cors configuration against the model's limits.
func checkCors(c *urlCors) *APIError {
	if c == nil {
		return nil
	}
	if c.MaxAge != nil && (*c.MaxAge < 0 || *c.MaxAge > 86400) {
		return validation("cors.maxAge", strconv.Itoa(*c.MaxAge), "Member must have value between 0 and 86400")
	}
	if len(c.AllowMethods) > 6 {
		return validation("cors.allowMethods", strings.Join(c.AllowMethods, ", "), "Member must have length less than or equal to 6")
	}
	for _, m := range c.AllowMethods {
		if len(m) > 6 {
			return validation("cors.allowMethods.member", m, "Member must have length less than or equal to 6")
		}
	}
	for field, list := range map[string][]string{"cors.allowHeaders": c.AllowHeaders, "cors.exposeHeaders": c.ExposeHeaders, "cors.allowOrigins": c.AllowOrigins} {
		if len(list) > 100 {
			return validation(field, strconv.Itoa(len(list))+" items", "Member must have length less than or equal to 100")
		}
		for _, v := range list {
			if field == "cors.allowOrigins" && (v == "" || len(v) > 253) {
				return validation(field+".member", v, "Member must have length between 1 and 253")
			}
			if len(v) > 1024 {
				return validation(field+".member", v, "Member must have length less than or equal to 1024")
			}
		}
	}
	return nil
}

// publicURLAccess reports whether a resource policy lets anyone invoke a NONE function URL:
// a statement allowing lambda:InvokeFunctionUrl (or every action) to "*", conditioned on
// lambda:FunctionUrlAuthType = NONE.
func publicURLAccess(stmts []statement) bool {
	for _, st := range stmts {
		if st.Effect != "Allow" || st.Principal != "*" {
			continue
		}
		if st.Action != "lambda:InvokeFunctionUrl" && st.Action != "lambda:*" && st.Action != "*" {
			continue
		}
		eq, _ := st.Condition["StringEquals"].(map[string]string)
		if eq == nil {
			// After a restart the condition is read back from JSON.
			if m, ok := st.Condition["StringEquals"].(map[string]any); ok {
				v, _ := m["lambda:FunctionUrlAuthType"].(string)
				eq = map[string]string{"lambda:FunctionUrlAuthType": v}
			}
		}
		if eq["lambda:FunctionUrlAuthType"] == "NONE" {
			return true
		}
	}
	return false
}

// corsOrigin is the Access-Control-Allow-Origin a request's origin is answered with, or "" when
// the configuration does not allow it.
func corsOrigin(c *urlCors, origin string) string {
	if c == nil || origin == "" {
		return ""
	}
	for _, o := range c.AllowOrigins {
		switch {
		case o == "*" && (c.AllowCredentials == nil || !*c.AllowCredentials):
			return "*"
		case o == "*", strings.EqualFold(o, origin):
			return origin
		}
	}
	return ""
}

// writeCorsHeaders adds the headers every answer to an allowed origin carries.
func writeCorsHeaders(h http.Header, c *urlCors, allowOrigin string) {
	h.Set("Access-Control-Allow-Origin", allowOrigin)
	if allowOrigin != "*" {
		h.Add("Vary", "Origin")
	}
	if c.AllowCredentials != nil && *c.AllowCredentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
}

// preflight answers a CORS preflight request for a URL with a Cors configuration, as Lambda does
// without invoking the function.
func preflight(w http.ResponseWriter, r *http.Request, c *urlCors) {
	if allow := corsOrigin(c, r.Header.Get("Origin")); allow != "" {
		writeCorsHeaders(w.Header(), c, allow)
		if len(c.AllowMethods) > 0 {
			w.Header().Set("Access-Control-Allow-Methods", strings.Join(c.AllowMethods, ","))
		}
		if len(c.AllowHeaders) > 0 {
			w.Header().Set("Access-Control-Allow-Headers", strings.Join(c.AllowHeaders, ","))
		}
		if c.MaxAge != nil {
			w.Header().Set("Access-Control-Max-Age", strconv.Itoa(*c.MaxAge))
		}
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
}

// FunctionURLID is the URL id a request's host names when it is a function URL's host
// (<url-id>.lambda-url.<region>.on.aws, with or without a port).
func FunctionURLID(host string) (string, bool) {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	id, rest, ok := strings.Cut(strings.ToLower(host), ".lambda-url.")
	if !ok || id == "" || !strings.HasSuffix(rest, ".on.aws") {
		return "", false
	}
	return id, true
}

// ServeFunctionURL answers a request to the function URL with the given id, as AWS does.
func (s *Service) ServeFunctionURL(w http.ResponseWriter, r *http.Request, id string) {
	fail := func(status int, msg string) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("x-amzn-ErrorType", urlErrorTypes[status])
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]string{"Message": msg})
	}
	var fn string
	var c *urlConfig
	public := false
	s.mu.Lock()
	for _, f := range s.fns {
		for _, u := range f.URLs {
			if u.ID == id {
				fn, c = f.Name, u
				public = publicURLAccess(f.Policy[u.Qualifier])
			}
		}
	}
	var cfg urlConfig
	if c != nil {
		cfg = *c
	}
	s.mu.Unlock()
	if c == nil {
		fail(http.StatusForbidden, "Forbidden")
		return
	}
	if cfg.Cors != nil && r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		preflight(w, r, cfg.Cors)
		return
	}
	if cfg.AuthType == "AWS_IAM" && r.Header.Get("Authorization") == "" && r.URL.Query().Get("X-Amz-Signature") == "" {
		fail(http.StatusForbidden, "Forbidden")
		return
	}
	if cfg.AuthType == "NONE" && !public {
		fail(http.StatusForbidden, "Forbidden")
		return
	}
	ev, err := urlEvent(r, id, s.cfg.Region)
	if err != nil {
		fail(http.StatusBadRequest, err.Error())
		return
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		fail(http.StatusInternalServerError, "Internal Server Error")
		return
	}
	out, aerr := s.invoke(r.Context(), invokeRequest{FunctionName: fn, Qualifier: cfg.Qualifier, Payload: payload})
	switch {
	case aerr != nil && aerr.Code == "TooManyRequestsException":
		fail(http.StatusTooManyRequests, "Rate Exceeded.")
		return
	case aerr != nil:
		fail(http.StatusInternalServerError, aerr.Message)
		return
	case out.FunctionError != "":
		fail(http.StatusBadGateway, "Internal Server Error")
		return
	}
	if allow := corsOrigin(cfg.Cors, r.Header.Get("Origin")); allow != "" {
		// The configuration's headers replace any the function sets itself.
		writeCorsHeaders(w.Header(), cfg.Cors, allow)
		if len(cfg.Cors.ExposeHeaders) > 0 {
			w.Header().Set("Access-Control-Expose-Headers", strings.Join(cfg.Cors.ExposeHeaders, ","))
		}
	}
	writeURLResult(w, out.Payload)
}

// urlEvent is the function URL event (payload format 2.0) for a request.
func urlEvent(r *http.Request, id, region string) (events.LambdaFunctionURLRequest, error) {
	host := id + ".lambda-url." + region + ".on.aws"
	ev := events.LambdaFunctionURLRequest{Version: "2.0", RawPath: r.URL.EscapedPath(), RawQueryString: r.URL.RawQuery,
		Headers: map[string]string{}}
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
	sourceIP, _, _ := net.SplitHostPort(r.RemoteAddr)
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
		b, err := io.ReadAll(io.LimitReader(r.Body, maxSyncPayload+1))
		if err != nil {
			return ev, err
		}
		if len(b) > 0 {
			ev.Headers["content-length"] = strconv.Itoa(len(b))
			if isText(r.Header.Get("Content-Type")) {
				ev.Body = string(b)
			} else {
				ev.Body, ev.IsBase64Encoded = base64.StdEncoding.EncodeToString(b), true
			}
		}
	}
	now := time.Now().UTC()
	ev.RequestContext = events.LambdaFunctionURLRequestContext{
		AccountID: "anonymous", RequestID: newRevisionID(), APIID: id, DomainName: host, DomainPrefix: id,
		Time: now.Format("02/Jan/2006:15:04:05 -0700"), TimeEpoch: now.UnixMilli(),
		HTTP: events.LambdaFunctionURLRequestContextHTTPDescription{Method: r.Method, Path: ev.RawPath, Protocol: "HTTP/1.1",
			SourceIP: sourceIP, UserAgent: r.UserAgent()},
	}
	return ev, nil
}

// isText reports whether a body of this content type travels as text, not base64, as AWS
// decides it for function URLs.
func isText(contentType string) bool {
	ct := strings.ToLower(strings.TrimSpace(contentType))
	return ct == "" || strings.HasPrefix(ct, "text/") || strings.Contains(ct, "json") || strings.Contains(ct, "xml") ||
		strings.Contains(ct, "javascript") || strings.HasPrefix(ct, "application/x-www-form-urlencoded")
}

// writeURLResult answers a function's result as a function URL does: an object with a
// statusCode is a response; any other result is a 200 with the result as its JSON body.
func writeURLResult(w http.ResponseWriter, payload []byte) {
	var probe map[string]json.RawMessage
	var res events.LambdaFunctionURLResponse
	if json.Unmarshal(payload, &probe) == nil && probe["statusCode"] != nil {
		if err := json.Unmarshal(payload, &res); err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
	} else {
		res = events.LambdaFunctionURLResponse{StatusCode: http.StatusOK, Headers: map[string]string{"content-type": "application/json"}, Body: string(payload)}
	}
	body := []byte(res.Body)
	if res.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(res.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		body = b
	}
	for k, v := range res.Headers {
		if strings.HasPrefix(strings.ToLower(k), "access-control-") && w.Header().Get("Access-Control-Allow-Origin") != "" {
			continue // the URL's Cors configuration wins over the function's own
		}
		w.Header().Set(k, v)
	}
	for _, c := range res.Cookies {
		w.Header().Add("Set-Cookie", c)
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	if res.StatusCode == 0 {
		res.StatusCode = http.StatusOK
	}
	w.WriteHeader(res.StatusCode)
	w.Write(body)
}
