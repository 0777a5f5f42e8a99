package protocol_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The fuzz targets feed arbitrary requests to the decoders through a whole service, as the
// network would: whatever arrives, the answer is a response (2xx or an AWS error), never a panic.
// Seed corpora are in testdata/fuzz. A longer run:
//
//	go test -run '^$' -fuzz FuzzQuery -fuzztime 5m ./sandbox/protocol

// answered fails unless the service answered with an AWS response.
func answered(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	if rec.Code < 200 || rec.Code >= 600 || rec.Header().Get("x-amzn-RequestId") == "" {
		t.Fatalf("answer %d %v", rec.Code, rec.Header())
	}
	if rec.Code >= 500 {
		t.Fatalf("a malformed request is the caller's fault, answered %d: %s", rec.Code, rec.Body)
	}
}

// FuzzQuery: form-encoded query-protocol bodies.
func FuzzQuery(f *testing.F) {
	f.Add("Action=Put&Name=a&Count=3&Dimensions.member.1.Name=k&Tags.entry.1.key=t&Tags.entry.1.value=u")
	f.Add("Action=Put&Nested.Inner.member.1.Values.member.1=1.5&When=2026-01-02T03:04:05Z")
	f.Add("Action=Put&Dimensions.member.2.Name=x&Dimensions=")
	f.Add("Action=Put&Count=%zz")
	s := rpcService(nil)
	f.Fuzz(func(t *testing.T, body string) {
		answered(t, serve(s, httptest.NewRequest("POST", "/", strings.NewReader(body))))
	})
}

// FuzzJSON: awsJson1_0 bodies.
func FuzzJSON(f *testing.F) {
	f.Add([]byte(`{"Name":"a","Count":3,"Dimensions":[{"Name":"k"}],"Tags":{"t":"u"},"When":1767323045.5}`))
	f.Add([]byte(`{"When":"2026-01-02T03:04:05Z","Nested":{"Inner":[{"Values":[1,2]}]}}`))
	f.Add([]byte(`{"Count":1e400}`))
	s := rpcService(nil)
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest("POST", "/", bytes.NewReader(body))
		req.Header.Set("X-Amz-Target", "TestService_2020.Put")
		answered(t, serve(s, req))
	})
}

// FuzzRESTJSON: REST-JSON requests: path labels, query members, headers and the body.
func FuzzRESTJSON(f *testing.F) {
	f.Add("PUT", "/2020-01-01/things/a%2Fb", "Qualifier=q&Limit=3", "m", []byte(`{"Description":"d"}`))
	f.Add("DELETE", "/2020-01-01/things/x", "", "", []byte(nil))
	f.Add("PUT", "/2020-01-01/things/../../x", "Limit=-1", "accepted", []byte(`[`))
	s := restService()
	f.Fuzz(func(t *testing.T, method, path, query, mode string, body []byte) {
		req, err := http.NewRequest(method, "http://sandbox", bytes.NewReader(body))
		if err != nil {
			return // not a request a client could send
		}
		req.URL.Path, req.URL.RawPath, req.URL.RawQuery = path, "", query
		if !strings.HasPrefix(path, "/") {
			req.URL.Path = "/" + path
		}
		req.Header.Set("X-Amz-Mode", mode)
		answered(t, serve(s, req))
	})
}

// FuzzCBOR: Smithy RPC v2 CBOR bodies.
func FuzzCBOR(f *testing.F) {
	f.Add([]byte("\xa2dNameaaeCount\x03"))
	f.Add([]byte("\xa1dWhen\xc1\xfb\x41\xda\x55\x82\x65\x60\x00\x00"))
	f.Add([]byte("\xbfdNameaa\xff"))
	f.Add([]byte("\x9f\x9f\x9f\x9f\xff\xff\xff\xff"))
	s := rpcService(nil)
	f.Fuzz(func(t *testing.T, body []byte) {
		answered(t, serve(s, httptest.NewRequest("POST", "/service/TestService_2020/operation/Put", bytes.NewReader(body))))
	})
}
