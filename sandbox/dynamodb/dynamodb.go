// Package dynamodb is the sandbox's Amazon DynamoDB: it forwards every DynamoDB request, as it
// came, to a DynamoDB-compatible server given as the upstream — dynalite (which Aviary's own
// tests run; `npm install dynalite`) or DynamoDB Local — so that one endpoint (AWS_ENDPOINT_URL)
// serves the DynamoDB store, the sandbox's CloudFormation tables and everything else.
//
// The rule it keeps: the sandbox does not imitate DynamoDB; the upstream is the DynamoDB, and
// what it answers is passed back unchanged. Without an upstream every request is answered
// UnknownOperationException (400), saying how to give one, rather than served half-way.
package dynamodb

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"

	"github.com/aviary-deploy/aviary/sandbox/limits"
)

// TargetPrefix is the X-Amz-Target prefix of DynamoDB's operations.
const TargetPrefix = "DynamoDB_20120810."

// dataPlane are the operations whose throttling error is ProvisionedThroughputExceededException
// (the model lists it for these alone); the others, the control plane, throttle with
// ThrottlingException.
var dataPlane = map[string]bool{
	"BatchGetItem": true, "BatchWriteItem": true, "DeleteItem": true, "ExecuteStatement": true, "ExecuteTransaction": true,
	"GetItem": true, "PutItem": true, "Query": true, "Scan": true, "TransactGetItems": true, "TransactWriteItems": true, "UpdateItem": true,
}

// Forward serves DynamoDB by forwarding to an upstream.
type Forward struct {
	upstream *url.URL
	proxy    *httputil.ReverseProxy
}

// New returns a Forward to the DynamoDB-compatible server at upstream ("" for none).
func New(upstream string) (*Forward, error) {
	if upstream == "" {
		return &Forward{}, nil
	}
	u, err := url.Parse(upstream)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("dynamodb upstream %q: want an http(s) URL such as http://127.0.0.1:8000", upstream)
	}
	f := &Forward{upstream: u}
	f.proxy = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(u) },
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			writeError(w, http.StatusServiceUnavailable, "ServiceUnavailableException",
				fmt.Sprintf("The Aviary sandbox could not reach its DynamoDB upstream %s: %v", u, err))
		},
	}
	return f, nil
}

// Upstream is the server requests go to; nil if there is none.
func (f *Forward) Upstream() *url.URL { return f.upstream }

// Handler serves DynamoDB; l is asked about every request (the sandbox's request log and
// injected faults; DynamoDB has no control-plane quota here).
func (f *Forward) Handler(l limits.Limiter) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), TargetPrefix)
		if ref := limits.Admit(l, r, limits.Op{Service: "dynamodb", Name: op}); ref != nil {
			if ref.Kind == limits.InjectedServerError {
				writeError(w, http.StatusInternalServerError, "InternalServerError", "Internal server error (injected by the Aviary sandbox)")
				return
			}
			if dataPlane[op] {
				writeError(w, http.StatusBadRequest, "ProvisionedThroughputExceededException",
					"The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API.")
				return
			}
			writeError(w, http.StatusBadRequest, "ThrottlingException", "Rate of requests exceeds the allowed throughput.")
			return
		}
		f.ServeHTTP(w, r)
	})
}

// ServeHTTP forwards one request.
func (f *Forward) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.proxy == nil {
		op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), TargetPrefix)
		writeError(w, http.StatusBadRequest, "UnknownOperationException",
			fmt.Sprintf("The Aviary sandbox serves DynamoDB (%s) only by forwarding to a DynamoDB-compatible server: start one (dynalite, DynamoDB Local) and pass its URL with `aviary sandbox --dynamodb URL` (sandbox.Options.DynamoDB).", op))
		return
	}
	f.proxy.ServeHTTP(w, r)
}

// writeError writes an awsJson1_0 error, as DynamoDB does.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.Header().Set("x-amzn-ErrorType", code)
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"__type": "com.amazonaws.dynamodb.v20120810#" + code, "message": msg})
}
