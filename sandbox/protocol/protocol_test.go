package protocol_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/aviary-deploy/aviary/sandbox/limits"
	"github.com/aviary-deploy/aviary/sandbox/protocol"
)

// Shapes of a made-up service, rich enough to exercise every decoder: nested structures, lists,
// maps, pointers, numbers, booleans and timestamps.
type dimension struct {
	Name  string `json:"Name" xml:"Name"`
	Value string `json:"Value" xml:"Value"`
}

type putInput struct {
	Name       string              `json:"Name"`
	Count      *int                `json:"Count"`
	Ratio      float64             `json:"Ratio"`
	On         bool                `json:"On"`
	When       *protocol.Timestamp `json:"When"`
	Dimensions []dimension         `json:"Dimensions"`
	Tags       map[string]string   `json:"Tags"`
	Nested     *struct {
		Inner []struct {
			Values []float64 `json:"Values"`
		} `json:"Inner"`
	} `json:"Nested"`
}

type putOutput struct {
	Name  string `json:"Name" xml:"Name"`
	Count int    `json:"Count" xml:"Count"`
	Dims  int    `json:"Dims" xml:"Dims"`
}

var testModel = &protocol.Model{
	Protocols:       []protocol.Protocol{protocol.CBOR, protocol.JSON10, protocol.Query},
	TargetPrefix:    "TestService_2020",
	XMLNamespace:    "http://test.amazonaws.com/doc/2020/",
	Namespace:       "com.amazonaws.test",
	QueryCompatible: true,
	Errors: map[string]protocol.ErrorShape{
		"NotFoundException": {Status: 404, QueryCode: "NotFound", MessageMember: "Message"},
	},
}

func put(_ context.Context, _ *protocol.Request, in *putInput) (*putOutput, *protocol.Error) {
	if in.Name == "missing" {
		return nil, protocol.Errorf("NotFoundException", "no %s", in.Name)
	}
	out := &putOutput{Name: in.Name, Dims: len(in.Dimensions)}
	if in.Count != nil {
		out.Count = *in.Count
	}
	return out, nil
}

func rpcService(l limits.Limiter) *protocol.Service {
	s := &protocol.Service{Name: "test", Model: testModel, Limits: l}
	protocol.Handle(s, "Put", put)
	return s
}

type restIn struct {
	Name      string  `json:"-" aws:"uri:Name"`
	Qualifier *string `json:"-" aws:"query:Qualifier"`
	Mode      string  `json:"-" aws:"header:X-Amz-Mode"`
	Limit     *int    `json:"-" aws:"query:Limit"`
	Body      putInput
	Desc      string `json:"Description"`
}

type restOut struct {
	Status int    `json:"-" aws:"status"`
	Mode   string `json:"-" aws:"header:X-Amz-Mode"`
	Name   string `json:"Name"`
	Qual   string `json:"Qualifier"`
	Desc   string `json:"Description"`
}

var restModel = &protocol.Model{Protocols: []protocol.Protocol{protocol.RESTJSON},
	Errors: map[string]protocol.ErrorShape{"ResourceNotFoundException": {Status: 404, MessageMember: "Message"}}}

func restService() *protocol.Service {
	s := &protocol.Service{Name: "rest", Model: restModel}
	protocol.Route(s, "PUT /2020-01-01/things/{Name}", "PutThing", 201, func(_ context.Context, req *protocol.Request, in *restIn) (*restOut, *protocol.Error) {
		if in.Name == "missing" {
			return nil, protocol.Errorf("ResourceNotFoundException", "Function not found: %s", in.Name)
		}
		out := &restOut{Mode: in.Mode, Name: in.Name, Desc: in.Desc}
		if in.Qualifier != nil {
			out.Qual = *in.Qualifier
		}
		if in.Mode == "accepted" {
			out.Status = 202
		}
		return out, nil
	}).MaxBody(1 << 10)
	protocol.Route(s, "DELETE /2020-01-01/things/{Name}", "DeleteThing", 204, func(context.Context, *protocol.Request, *struct{}) (*struct{}, *protocol.Error) {
		return nil, nil
	})
	return s
}

func serve(h http.Handler, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestRPCProtocols(t *testing.T) {
	s := rpcService(nil)
	// The same operation in each protocol.
	form := url.Values{"Action": {"Put"}, "Version": {"2020"}, "Name": {"a"}, "Count": {"3"},
		"Dimensions.member.1.Name": {"k"}, "Dimensions.member.1.Value": {"v"}, "Dimensions.member.2.Name": {"k2"},
		"Tags.entry.1.key": {"t"}, "Tags.entry.1.value": {"u"}, "When": {"2026-01-02T03:04:05Z"}}
	q := serve(s, httptest.NewRequest("POST", "/", strings.NewReader(form.Encode())))
	if got := q.Body.String(); q.Code != 200 || !strings.Contains(got, `<PutResponse xmlns="http://test.amazonaws.com/doc/2020/"><PutResult><Name>a</Name><Count>3</Count><Dims>2</Dims></PutResult><ResponseMetadata><RequestId>`) {
		t.Errorf("query: %d %s", q.Code, got)
	}

	jreq := httptest.NewRequest("POST", "/", strings.NewReader(`{"Name":"a","Count":3,"Dimensions":[{"Name":"k"},{"Name":"k2"}],"When":1767323045}`))
	jreq.Header.Set("X-Amz-Target", "TestService_2020.Put")
	j := serve(s, jreq)
	if got := j.Body.String(); j.Code != 200 || j.Header().Get("Content-Type") != "application/x-amz-json-1.0" || got != `{"Name":"a","Count":3,"Dims":2}` {
		t.Errorf("json: %d %s %s", j.Code, j.Header(), got)
	}

	body, _ := cbor.Marshal(map[string]any{"Name": "a", "Count": 3, "Dimensions": []any{map[string]any{"Name": "k"}}})
	c := serve(s, httptest.NewRequest("POST", "/service/TestService_2020/operation/Put", bytes.NewReader(body)))
	var out putOutput
	if err := cbor.Unmarshal(c.Body.Bytes(), &out); err != nil || c.Code != 200 || c.Header().Get("Smithy-Protocol") != "rpc-v2-cbor" || out != (putOutput{Name: "a", Count: 3, Dims: 1}) {
		t.Errorf("cbor: %d %v %+v", c.Code, err, out)
	}
}

// TestErrorEnvelopes: each protocol's clients find the code, message and status where they look.
func TestErrorEnvelopes(t *testing.T) {
	s := rpcService(nil)
	q := serve(s, httptest.NewRequest("POST", "/", strings.NewReader("Action=Put&Name=missing")))
	if got := q.Body.String(); q.Code != 404 || !strings.Contains(got, `<ErrorResponse xmlns="http://test.amazonaws.com/doc/2020/"><Error><Type>Sender</Type><Code>NotFound</Code><Message>no missing</Message></Error><RequestId>`) {
		t.Errorf("query error: %d %s", q.Code, got)
	}

	jreq := httptest.NewRequest("POST", "/", strings.NewReader(`{"Name":"missing"}`))
	jreq.Header.Set("X-Amz-Target", "TestService_2020.Put")
	j := serve(s, jreq)
	var jb map[string]string
	_ = json.Unmarshal(j.Body.Bytes(), &jb)
	if j.Code != 404 || jb["__type"] != "com.amazonaws.test#NotFoundException" || jb["Message"] != "no missing" ||
		j.Header().Get("x-amzn-query-error") != "NotFound;Sender" || j.Header().Get("x-amzn-ErrorType") != "NotFoundException" {
		t.Errorf("json error: %d %v %s", j.Code, j.Header(), j.Body)
	}

	body, _ := cbor.Marshal(map[string]any{"Name": "missing"})
	c := serve(s, httptest.NewRequest("POST", "/service/TestService_2020/operation/Put", bytes.NewReader(body)))
	var cb map[string]string
	if err := cbor.Unmarshal(c.Body.Bytes(), &cb); err != nil || c.Code != 404 || cb["__type"] != "com.amazonaws.test#NotFoundException" || cb["Message"] != "no missing" {
		t.Errorf("cbor error: %d %v %v", c.Code, err, cb)
	}

	unknown := serve(s, httptest.NewRequest("POST", "/", strings.NewReader("Action=Nope")))
	if unknown.Code != 400 || !strings.Contains(unknown.Body.String(), "<Code>InvalidAction</Code>") {
		t.Errorf("unknown query action: %d %s", unknown.Code, unknown.Body)
	}
	bad := serve(s, httptest.NewRequest("POST", "/", strings.NewReader("Action=Put&Count=many")))
	if bad.Code != 400 || !strings.Contains(bad.Body.String(), "<Code>MalformedInput</Code>") {
		t.Errorf("malformed query input: %d %s", bad.Code, bad.Body)
	}

	xs := &protocol.Service{Name: "xml", Model: &protocol.Model{Protocols: []protocol.Protocol{protocol.RESTXML}, XMLNamespace: "http://x/"}}
	protocol.Route(xs, "GET /x", "GetX", 0, func(context.Context, *protocol.Request, *struct{}) (*struct{}, *protocol.Error) {
		return nil, &protocol.Error{Code: "NoSuchThing", Status: 404, Message: "a <b>"}
	})
	x := serve(xs, httptest.NewRequest("GET", "/x", nil))
	if got := x.Body.String(); x.Code != 404 || !strings.Contains(got, `<ErrorResponse xmlns="http://x/"><Error><Type>Sender</Type><Code>NoSuchThing</Code><Message>a &lt;b&gt;</Message></Error><RequestId>`) {
		t.Errorf("rest-xml error: %d %s", x.Code, got)
	}
}

func TestREST(t *testing.T) {
	s := restService()
	req := httptest.NewRequest("PUT", "/2020-01-01/things/th%2Fing?Qualifier=q1", strings.NewReader(`{"Description":"d"}`))
	req.Header.Set("X-Amz-Mode", "m")
	rec := serve(s, req)
	if got := rec.Body.String(); rec.Code != 201 || rec.Header().Get("X-Amz-Mode") != "m" || got != `{"Name":"th/ing","Qualifier":"q1","Description":"d"}` {
		t.Errorf("PutThing: %d %v %s", rec.Code, rec.Header(), got)
	}
	req = httptest.NewRequest("PUT", "/2020-01-01/things/x", nil)
	req.Header.Set("X-Amz-Mode", "accepted")
	if rec := serve(s, req); rec.Code != 202 {
		t.Errorf("status member: %d", rec.Code)
	}
	if rec := serve(s, httptest.NewRequest("DELETE", "/2020-01-01/things/x", nil)); rec.Code != 204 || rec.Body.Len() != 0 {
		t.Errorf("DeleteThing: %d %q", rec.Code, rec.Body)
	}
	rec = serve(s, httptest.NewRequest("PUT", "/2020-01-01/things/missing", nil))
	var b map[string]string
	_ = json.Unmarshal(rec.Body.Bytes(), &b)
	if rec.Code != 404 || rec.Header().Get("x-amzn-ErrorType") != "ResourceNotFoundException" || b["Message"] != "Function not found: missing" || b["Type"] != "User" {
		t.Errorf("rest-json error: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	for _, p := range []string{"/2020-01-01/things/../../x", "/2020-01-01/things", "/2020-01-01/things/a/b", "/"} {
		if rec := serve(s, httptest.NewRequest("PUT", p, nil)); rec.Code != 404 || rec.Header().Get("x-amzn-ErrorType") != "UnknownOperationException" {
			t.Errorf("PUT %s: %d %s", p, rec.Code, rec.Body)
		}
	}
	rec = serve(s, httptest.NewRequest("PUT", "/2020-01-01/things/x", strings.NewReader(strings.Repeat(" ", 2<<10))))
	if rec.Code != 413 || rec.Header().Get("x-amzn-ErrorType") != "RequestEntityTooLargeException" {
		t.Errorf("oversized body: %d %s", rec.Code, rec.Body)
	}
	rec = serve(s, httptest.NewRequest("PUT", "/2020-01-01/things/x?Limit=lots", nil))
	if rec.Code != 400 || rec.Header().Get("x-amzn-ErrorType") != "SerializationException" {
		t.Errorf("bad query member: %d %s", rec.Code, rec.Body)
	}
}

// refuseAll is a limiter that throttles everything and remembers what it was asked.
type refuseAll struct{ ops []limits.Op }

func (r *refuseAll) Admit(_ *http.Request, op limits.Op) *limits.Refusal {
	r.ops = append(r.ops, op)
	return &limits.Refusal{Kind: limits.InjectedThrottle}
}

func TestLimiterRefusal(t *testing.T) {
	l := &refuseAll{}
	rec := serve(rpcService(l), httptest.NewRequest("POST", "/", strings.NewReader("Action=Put&Name=a")))
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), "<Code>Throttling</Code>") {
		t.Errorf("refusal: %d %s", rec.Code, rec.Body)
	}
	if len(l.ops) != 1 || l.ops[0] != (limits.Op{Service: "test", Name: "Put"}) {
		t.Errorf("limiter asked %+v", l.ops)
	}
}

// TestQueryListIsLinear: a list of many members decodes in one pass over the form (the decoder
// indexes member prefixes; scanning the form per member would be n² and take minutes here).
func TestQueryListIsLinear(t *testing.T) {
	const n = 50000
	form := url.Values{}
	for i := 1; i <= n; i++ {
		form.Set(fmt.Sprintf("Dimensions.member.%d.Name", i), "k")
	}
	var in putInput
	if err := protocol.DecodeQuery(form, &in); err != nil || len(in.Dimensions) != n {
		t.Fatalf("decoded %d dimensions (%v), want %d", len(in.Dimensions), err, n)
	}
}

// A REST-XML service whose input and output are payloads, as CloudFront's are.
type xmlConfig struct {
	Comment string `xml:"Comment"`
	Inner   []byte `xml:",innerxml"`
}

type xmlPutIn struct {
	ID      string     `aws:"uri:Id"`
	IfMatch string     `aws:"header:If-Match"`
	Config  *xmlConfig `aws:"payload"`
}

type xmlThing struct {
	ID     string `xml:"Id"`
	Config struct {
		Inner []byte `xml:",innerxml"`
	} `xml:"Config"`
}

type xmlPutOut struct {
	ETag  string    `aws:"header:ETag"`
	Thing *xmlThing `aws:"payload" xml:"Thing"`
}

func TestRESTXMLPayload(t *testing.T) {
	model := &protocol.Model{Protocols: []protocol.Protocol{protocol.RESTXML}, XMLNamespace: "http://test.amazonaws.com/doc/2020/",
		Errors: map[string]protocol.ErrorShape{"PreconditionFailed": {Status: 412, MessageMember: "Message"}}}
	s := &protocol.Service{Name: "xml", Model: model}
	protocol.Route(s, "PUT /2020/thing/{Id}/config", "PutThing", 0, func(_ context.Context, _ *protocol.Request, in *xmlPutIn) (*xmlPutOut, *protocol.Error) {
		if in.IfMatch != "E1" {
			return nil, protocol.Errorf("PreconditionFailed", "stale %s", in.IfMatch)
		}
		if in.Config == nil {
			return &xmlPutOut{ETag: "E2"}, nil
		}
		out := &xmlPutOut{ETag: "E2", Thing: &xmlThing{ID: in.ID}}
		out.Thing.Config.Inner = in.Config.Inner
		return out, nil
	})
	body := `<Config xmlns="http://test.amazonaws.com/doc/2020/"><Comment>c</Comment><Unknown><A>1</A></Unknown></Config>`
	req := httptest.NewRequest("PUT", "/2020/thing/t1/config", strings.NewReader(body))
	req.Header.Set("If-Match", "E1")
	rec := serve(s, req)
	want := `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<Thing xmlns="http://test.amazonaws.com/doc/2020/"><Id>t1</Id><Config><Comment>c</Comment><Unknown><A>1</A></Unknown></Config></Thing>`
	if got := rec.Body.String(); rec.Code != 200 || rec.Header().Get("ETag") != "E2" || got != want {
		t.Errorf("PutThing: %d %v\n got %s\nwant %s", rec.Code, rec.Header(), got, want)
	}
	req = httptest.NewRequest("PUT", "/2020/thing/t1/config", nil)
	req.Header.Set("If-Match", "E1")
	if rec := serve(s, req); rec.Code != 200 || rec.Body.Len() != 0 {
		t.Errorf("empty payload: %d %q", rec.Code, rec.Body)
	}
	req = httptest.NewRequest("PUT", "/2020/thing/t1/config", strings.NewReader(body))
	req.Header.Set("If-Match", "E0")
	rec = serve(s, req)
	wantErr := `<ErrorResponse xmlns="http://test.amazonaws.com/doc/2020/"><Error><Type>Sender</Type><Code>PreconditionFailed</Code><Message>stale E0</Message></Error>`
	if rec.Code != 412 || !strings.Contains(rec.Body.String(), wantErr) {
		t.Errorf("rest-xml error: %d %s", rec.Code, rec.Body)
	}
	req = httptest.NewRequest("PUT", "/2020/thing/t1/config", strings.NewReader("<Config><unclosed>"))
	req.Header.Set("If-Match", "E1")
	if rec := serve(s, req); rec.Code != 400 || !strings.Contains(rec.Body.String(), "<Code>SerializationException</Code>") {
		t.Errorf("malformed payload: %d %s", rec.Code, rec.Body)
	}
}
