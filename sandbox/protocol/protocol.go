// Package protocol is the sandbox's one AWS wire layer. A service describes itself with a
// [Model] (generated from its botocore model by errorsgen), registers typed handlers on a
// [Service] — [Handle] for RPC operations (query, awsJson1_0/1_1, Smithy RPC v2 CBOR), [Route]
// for REST ones (REST-JSON, REST-XML) — and the layer does the rest: it recognises the protocol a
// request speaks, reads and decodes its input, asks the sandbox's [limits.Limiter], calls the
// handler, and writes the output or the error in the envelope that protocol's clients expect.
//
// The rule it keeps: a service adds handlers and state, never a codec. What a client can tell
// apart — error codes and statuses, envelopes, request ids, timestamps — is decided here once,
// from the model, for every service.
package protocol

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/aviary-deploy/aviary/sandbox/limits"
)

// Protocol is an AWS wire protocol.
type Protocol int

const (
	Query    Protocol = iota + 1 // awsQuery: form-encoded input, XML output
	JSON10                       // awsJson1_0: POST / with X-Amz-Target
	JSON11                       // awsJson1_1
	RESTJSON                     // restJson1: method and path name the operation
	RESTXML                      // restXml
	CBOR                         // smithy-rpc-v2-cbor: POST /service/S/operation/Op
)

func (p Protocol) String() string {
	switch p {
	case Query:
		return "query"
	case JSON10:
		return "json1.0"
	case JSON11:
		return "json1.1"
	case RESTJSON:
		return "rest-json"
	case RESTXML:
		return "rest-xml"
	case CBOR:
		return "rpc-v2-cbor"
	}
	return fmt.Sprintf("Protocol(%d)", int(p))
}

func (p Protocol) rest() bool { return p == RESTJSON || p == RESTXML }

// Model is what a service's botocore model says about its wire; errorsgen writes one per service.
type Model struct {
	// Protocols are the protocols the service speaks, preferred first.
	Protocols []Protocol
	// TargetPrefix is the X-Amz-Target prefix of JSON operations and the service name in RPC v2
	// CBOR paths.
	TargetPrefix string
	// XMLNamespace is the xmlns of query and REST-XML responses.
	XMLNamespace string
	// Namespace qualifies error types (__type) in awsJson1_0 and CBOR, e.g.
	// "com.amazonaws.cloudwatch".
	Namespace string
	// QueryCompatible services also send their query error code in x-amzn-query-error.
	QueryCompatible bool
	// Errors are the modelled errors, by shape name.
	Errors map[string]ErrorShape
}

// ErrorShape is what the model says about one error.
type ErrorShape struct {
	Status int
	// QueryCode is the code query clients see when it is not the shape name (awsQueryError).
	QueryCode string
	// Server is a fault of the service (Receiver), not of the caller (Sender).
	Server bool
	// MessageMember is the exact name of the message member: "message" or "Message".
	MessageMember string
}

func (m *Model) speaks(p Protocol) bool { return slices.Contains(m.Protocols, p) }

// Service serves one AWS service's API over the protocols its model names.
type Service struct {
	// Name is the service's SigV4 signing name ("lambda", "monitoring"), as limits and the
	// request log see it.
	Name  string
	Model *Model
	// Limits is asked about every request once its operation is known; nil admits everything.
	Limits limits.Limiter
	// Classify names the resource a request acts on and the quota it counts against; nil means
	// none.
	Classify func(req *Request, in any) (resource, quota string)
	// Refused renders a limiter's refusal; nil answers ThrottlingException or InternalFailure.
	Refused func(*limits.Refusal) *Error
	// DecodeError is the error a malformed body answers; nil means SerializationException.
	DecodeError func(error) *Error
	// MaxBody bounds request bodies (default 10 MiB); an operation may set its own.
	MaxBody int64
	// NoErrorWrapping writes REST-XML errors as a bare <Error> (as S3 does), not inside
	// <ErrorResponse>.
	NoErrorWrapping bool
	// Observe, if set, sees every request of a known operation once it is answered: its decoded
	// input (req.Input(), nil if it did not decode), output and error (CloudTrail's record).
	Observe func(req *Request, out any, err *Error)

	ops    map[string]*Operation
	routes []*Operation
}

// DefaultMaxBody bounds request bodies unless a service or operation says otherwise.
const DefaultMaxBody = 10 << 20

// Handler is an operation's typed handler. A nil output is an output without members.
type Handler[In, Out any] func(ctx context.Context, req *Request, in *In) (*Out, *Error)

// Operation is one registered operation.
type Operation struct {
	Name   string
	method string
	path   []string // REST path template segments; "{Label}" matches one segment
	// query is a requestUri's constant query ("?List=ALL"): two operations on one path differ by it.
	query   url.Values
	status  int // REST success status
	maxBody int64
	// tooLarge is the error an oversized body answers; nil means RequestEntityTooLargeException.
	tooLarge func(limit int64) *Error
	call     func(ctx context.Context, req *Request, decode func(any) *Error) (any, *Error)
}

// MaxBody sets the largest request body this operation accepts; a larger one is answered
// RequestEntityTooLargeException (413).
func (o *Operation) MaxBody(n int64) *Operation { o.maxBody = n; return o }

// TooLarge names the modelled error an oversized body answers, for operations whose model has
// one (Lambda's Invoke: RequestTooLargeException).
func (o *Operation) TooLarge(f func(limit int64) *Error) *Operation { o.tooLarge = f; return o }

// Handle registers an RPC operation (query, JSON or CBOR, whichever the request speaks).
func Handle[In, Out any](s *Service, name string, h Handler[In, Out]) *Operation {
	op := &Operation{Name: name, call: typed(h)}
	if s.ops == nil {
		s.ops = map[string]*Operation{}
	}
	s.ops[name] = op
	return op
}

// Route registers a REST operation. pattern is "METHOD /path/{Label}/..." as the model's
// requestUri writes it; status is the model's success code (200 when zero). Input members tagged
// aws:"uri:Label", aws:"query:Name" or aws:"header:Name" are bound from the request, a []byte
// member tagged aws:"body" takes the raw body, a member tagged aws:"payload" is decoded from the
// whole body (the model's "payload"), and otherwise the rest is decoded from the JSON or XML body;
// output members tagged aws:"header:Name", aws:"status", aws:"body" or aws:"payload" shape the
// response (a REST-XML output without a payload member marks its header members xml:"-").
func Route[In, Out any](s *Service, pattern, name string, status int, h Handler[In, Out]) *Operation {
	method, path, ok := strings.Cut(pattern, " ")
	if !ok {
		panic("protocol.Route: pattern must be \"METHOD /path\": " + pattern)
	}
	if status == 0 {
		status = http.StatusOK
	}
	path, rawQuery, _ := strings.Cut(path, "?")
	query, err := url.ParseQuery(rawQuery)
	if err != nil {
		panic("protocol.Route: bad query in " + pattern)
	}
	op := &Operation{Name: name, method: method, path: splitPath(path), query: query, status: status, call: typed(h)}
	s.routes = append(s.routes, op)
	return op
}

func typed[In, Out any](h Handler[In, Out]) func(context.Context, *Request, func(any) *Error) (any, *Error) {
	return func(ctx context.Context, req *Request, decode func(any) *Error) (any, *Error) {
		in := new(In)
		if err := decode(in); err != nil {
			return nil, err
		}
		req.input = in
		out, err := h(ctx, req, in)
		if err != nil {
			return nil, err
		}
		if out == nil {
			return nil, nil
		}
		return out, nil
	}
}

// Operations lists the registered operations' names, sorted.
func (s *Service) Operations() []string {
	var names []string
	for n := range s.ops {
		names = append(names, n)
	}
	for _, r := range s.routes {
		names = append(names, r.Name)
	}
	sort.Strings(names)
	return slices.Compact(names)
}

// Request is one request as a handler sees it.
type Request struct {
	HTTP      *http.Request
	ID        string
	Protocol  Protocol
	Operation string
	// Body is the request body, read whole (up to the operation's limit).
	Body []byte
	// Header is the response's header; a handler may add to it.
	Header http.Header
	labels map[string]string
	form   url.Values
	input  any
}

// Label is a REST path label, unescaped.
func (r *Request) Label(name string) string { return r.labels[name] }

// Query is the URL's query string.
func (r *Request) Query() url.Values { return r.HTTP.URL.Query() }

// Input is the decoded input, once there is one.
func (r *Request) Input() any { return r.input }

// NewRequestID returns an AWS-style request id.
func NewRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// ServeHTTP serves one request of the service.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req := &Request{HTTP: r, ID: NewRequestID(), Header: w.Header()}
	w.Header().Set("x-amzn-RequestId", req.ID)
	op, err := s.identify(req)
	if err != nil {
		s.writeError(w, req, err)
		return
	}
	req.Operation = op.Name
	if err := s.readBody(req, op); err != nil {
		s.admit(req, nil) // the request log still names the operation
		s.writeError(w, req, err)
		return
	}
	out, err := op.call(r.Context(), req, func(in any) *Error {
		if err := s.decode(req, in); err != nil {
			if ref := s.admit(req, nil); ref != nil {
				return ref
			}
			return err
		}
		return s.admit(req, in)
	})
	if s.Observe != nil {
		s.Observe(req, out, err)
	}
	if err != nil {
		s.writeError(w, req, err)
		return
	}
	s.writeOutput(w, req, op, out)
}

// admit asks the limiter about the request; a refusal comes back as the service's error.
func (s *Service) admit(req *Request, in any) *Error {
	var resource, quota string
	if s.Classify != nil {
		resource, quota = s.Classify(req, in)
	}
	ref := limits.Admit(s.Limits, req.HTTP, limits.Op{Service: s.Name, Name: req.Operation, Resource: resource, Quota: quota})
	if ref == nil {
		return nil
	}
	if s.Refused != nil {
		return s.Refused(ref)
	}
	if ref.Kind == limits.InjectedServerError {
		return &Error{Code: "InternalFailure", Status: http.StatusInternalServerError, Server: true,
			Message: "An internal error occurred (injected by the sandbox's fault settings)."}
	}
	return &Error{Code: "ThrottlingException", QueryCode: "Throttling", Status: http.StatusBadRequest, Message: "Rate exceeded"}
}

// identify finds the protocol and operation of a request.
func (s *Service) identify(req *Request) (*Operation, *Error) {
	r, m := req.HTTP, s.Model
	if len(s.routes) > 0 {
		req.Protocol = RESTJSON
		if m.speaks(RESTXML) {
			req.Protocol = RESTXML
		}
		op, labels := s.match(r.Method, r.URL.EscapedPath(), r.URL.Query())
		if op == nil {
			return nil, &Error{Code: "UnknownOperationException", Status: http.StatusNotFound,
				Message: fmt.Sprintf("No operation of %s is served at %s %s.", s.Name, r.Method, r.URL.EscapedPath())}
		}
		req.labels = labels
		return op, nil
	}
	name := ""
	switch target := r.Header.Get("X-Amz-Target"); {
	case m.speaks(CBOR) && strings.HasPrefix(r.URL.Path, "/service/"):
		req.Protocol = CBOR
		parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
		if len(parts) != 4 || parts[2] != "operation" || parts[1] != m.TargetPrefix {
			return nil, &Error{Code: "UnknownOperationException", Status: http.StatusNotFound,
				Message: fmt.Sprintf("%s is not an RPC v2 path of %s (/service/%s/operation/<Operation>).", r.URL.Path, s.Name, m.TargetPrefix)}
		}
		name = parts[3]
	case target != "" && (m.speaks(JSON10) || m.speaks(JSON11)):
		req.Protocol = JSON11
		if m.speaks(JSON10) {
			req.Protocol = JSON10
		}
		op, ok := strings.CutPrefix(target, m.TargetPrefix+".")
		if !ok || r.Method != http.MethodPost {
			return nil, &Error{Code: "UnknownOperationException", Status: http.StatusBadRequest,
				Message: fmt.Sprintf("%s is served as POST / with X-Amz-Target %s.<Operation>; got %s %s with X-Amz-Target %q.", s.Name, m.TargetPrefix, r.Method, r.URL.Path, target)}
		}
		name = op
	case m.speaks(Query):
		req.Protocol = Query
		if err := s.readForm(req); err != nil {
			return nil, err
		}
		name = req.form.Get("Action")
	default:
		req.Protocol = m.Protocols[0]
		return nil, &Error{Code: "UnknownOperationException", Status: http.StatusBadRequest,
			Message: fmt.Sprintf("The request is not one %s's protocols (%v) can carry.", s.Name, m.Protocols)}
	}
	op, ok := s.ops[name]
	if !ok {
		return nil, &Error{Code: "UnknownOperationException", QueryCode: "InvalidAction", Status: http.StatusBadRequest,
			Message: fmt.Sprintf("The action %q is not valid for this web service (the sandbox's %s serves %s).", name, s.Name, strings.Join(s.Operations(), ", "))}
	}
	return op, nil
}

// readForm reads a query-protocol request: the form in the body (or the URL for GET).
func (s *Service) readForm(req *Request) *Error {
	if err := s.readBody(req, nil); err != nil {
		return err
	}
	form, err := url.ParseQuery(string(req.Body))
	if err != nil {
		return &Error{Code: "MalformedQueryString", Status: http.StatusBadRequest, Message: err.Error()}
	}
	for k, v := range req.HTTP.URL.Query() {
		form[k] = append(form[k], v...)
	}
	req.form = form
	return nil
}

// readBody reads the whole body, refusing one larger than the operation's limit.
func (s *Service) readBody(req *Request, op *Operation) *Error {
	if req.Body != nil {
		return nil
	}
	limit := s.MaxBody
	if op != nil && op.maxBody > 0 {
		limit = op.maxBody
	}
	if limit <= 0 {
		limit = DefaultMaxBody
	}
	name := req.Operation
	if name == "" && op != nil {
		name = op.Name
	}
	tooLarge := func() *Error {
		// Read (and drop) the rest, so that a client still writing its body reads the answer
		// instead of a reset connection.
		_, _ = io.CopyN(io.Discard, req.HTTP.Body, 1<<30)
		if op != nil && op.tooLarge != nil {
			return op.tooLarge(limit)
		}
		return &Error{Code: "RequestEntityTooLargeException", Status: http.StatusRequestEntityTooLarge,
			Message: fmt.Sprintf("Request must be smaller than %d bytes for the %s operation", limit, name)}
	}
	if req.HTTP.ContentLength > limit {
		return tooLarge()
	}
	b, err := io.ReadAll(io.LimitReader(req.HTTP.Body, limit+1))
	if err != nil {
		return &Error{Code: "SerializationException", Status: http.StatusBadRequest, Message: "Could not read request body: " + err.Error()}
	}
	if int64(len(b)) > limit {
		return tooLarge()
	}
	if b == nil {
		b = []byte{}
	}
	req.Body = b
	return nil
}

// match finds the REST operation whose method and path template fit.
func (s *Service) match(method, escapedPath string, query url.Values) (*Operation, map[string]string) {
	segs := splitPath(escapedPath)
	for i, seg := range segs {
		u, err := url.PathUnescape(seg)
		if err != nil {
			return nil, nil
		}
		segs[i] = u
	}
	// An operation whose requestUri carries a constant query is more specific than one on the
	// same path without: try those first.
	ordered := make([]*Operation, 0, len(s.routes))
	for _, op := range s.routes {
		if len(op.query) > 0 {
			ordered = append(ordered, op)
		}
	}
	for _, op := range s.routes {
		if len(op.query) == 0 {
			ordered = append(ordered, op)
		}
	}
	for _, op := range ordered {
		if op.method != method || len(op.path) != len(segs) || !hasQuery(query, op.query) {
			continue
		}
		labels := map[string]string{}
		ok := true
		for i, t := range op.path {
			if strings.HasPrefix(t, "{") && strings.HasSuffix(t, "}") {
				if segs[i] == "" {
					ok = false
					break
				}
				labels[t[1:len(t)-1]] = segs[i]
			} else if t != segs[i] {
				ok = false
				break
			}
		}
		if ok {
			return op, labels
		}
	}
	return nil, nil
}

// hasQuery reports whether q carries every constant of want.
func hasQuery(q, want url.Values) bool {
	for k := range want {
		if q.Get(k) != want.Get(k) {
			return false
		}
	}
	return true
}

func splitPath(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

var bytesType = reflect.TypeFor[[]byte]()
