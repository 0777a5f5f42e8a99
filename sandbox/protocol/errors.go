package protocol

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"strconv"
)

// Error is an AWS error as a service answers it. Code is the model's shape name (what JSON, CBOR
// and REST clients match on); the rest is filled from the service's [Model] when left zero.
type Error struct {
	Code    string
	Message string
	// Status is the HTTP status; zero takes the model's (or 400 for an unknown client error).
	Status int
	// QueryCode is the code query clients see; "" takes the model's awsQueryError code, or Code.
	QueryCode string
	// Server marks a fault of the service (query Type Receiver).
	Server bool
	// Fields are further members of a JSON error body (e.g. Lambda's Reason).
	Fields map[string]any
	// RetryAfter, in seconds, is sent as Retry-After.
	RetryAfter int
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf returns an error of the given modelled type.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Internal wraps an unexpected failure as a 500.
func Internal(err error) *Error {
	return &Error{Code: "InternalFailure", QueryCode: "InternalFailure", Status: http.StatusInternalServerError, Server: true, Message: err.Error()}
}

// commonErrors are errors every AWS service may answer that models do not declare.
var commonErrors = map[string]ErrorShape{
	"UnknownOperationException":      {Status: http.StatusBadRequest, QueryCode: "InvalidAction"},
	"SerializationException":         {Status: http.StatusBadRequest},
	"ValidationException":            {Status: http.StatusBadRequest},
	"ValidationError":                {Status: http.StatusBadRequest},
	"MalformedQueryString":           {Status: http.StatusBadRequest},
	"MissingParameter":               {Status: http.StatusBadRequest},
	"RequestEntityTooLargeException": {Status: http.StatusRequestEntityTooLarge},
	"ThrottlingException":            {Status: http.StatusBadRequest, QueryCode: "Throttling"},
	"InternalFailure":                {Status: http.StatusInternalServerError, Server: true},
	"ServiceUnavailableException":    {Status: http.StatusServiceUnavailable, Server: true},
}

// resolved fills an error's status, query code, fault and message member from the model.
type resolved struct {
	*Error
	status    int
	queryCode string
	server    bool
	message   string
}

func (s *Service) resolve(e *Error) resolved {
	shape, ok := s.Model.Errors[e.Code]
	if !ok {
		shape, ok = commonErrors[e.Code]
	}
	if !ok {
		shape = ErrorShape{Status: http.StatusBadRequest}
	}
	r := resolved{Error: e, status: shape.Status, queryCode: shape.QueryCode, server: shape.Server || e.Server, message: shape.MessageMember}
	if e.Status != 0 {
		r.status = e.Status
	}
	if r.status == 0 {
		r.status = http.StatusBadRequest
		if r.server {
			r.status = http.StatusInternalServerError
		}
	}
	if r.status >= 500 {
		r.server = true
	}
	if e.QueryCode != "" {
		r.queryCode = e.QueryCode
	}
	if r.queryCode == "" {
		r.queryCode = e.Code
	}
	if r.message == "" {
		r.message = "message"
	}
	return r
}

func (r resolved) fault() string {
	if r.server {
		return "Receiver"
	}
	return "Sender"
}

// writeError writes e in the envelope of the request's protocol.
func (s *Service) writeError(w http.ResponseWriter, req *Request, e *Error) {
	r := s.resolve(e)
	h := w.Header()
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	if s.Model.QueryCompatible && req.Protocol != Query {
		h.Set("x-amzn-query-error", r.queryCode+";"+r.fault())
	}
	body := func(typ string) map[string]any {
		b := map[string]any{"__type": typ, r.message: e.Message}
		for k, v := range e.Fields {
			b[k] = v
		}
		return b
	}
	switch req.Protocol {
	case Query:
		h.Set("Content-Type", "text/xml")
		w.WriteHeader(r.status)
		fmt.Fprintf(w, `<?xml version="1.0"?>`+"\n"+`<ErrorResponse xmlns="%s"><Error><Type>%s</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>%s</RequestId></ErrorResponse>`,
			s.Model.XMLNamespace, r.fault(), escape(r.queryCode), escape(e.Message), req.ID)
	case RESTXML:
		h.Set("Content-Type", "application/xml")
		w.WriteHeader(r.status)
		inner := fmt.Sprintf(`<Type>%s</Type><Code>%s</Code><Message>%s</Message>`, r.fault(), escape(e.Code), escape(e.Message))
		if s.NoErrorWrapping {
			fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<Error>%s<RequestId>%s</RequestId></Error>`, inner, req.ID)
			return
		}
		fmt.Fprintf(w, `<?xml version="1.0"?>`+"\n"+`<ErrorResponse xmlns="%s"><Error>%s</Error><RequestId>%s</RequestId></ErrorResponse>`, s.Model.XMLNamespace, inner, req.ID)
	case CBOR:
		b, _ := cborEnc.Marshal(body(s.qualified(e.Code)))
		h.Set("Smithy-Protocol", "rpc-v2-cbor")
		h.Set("Content-Type", "application/cbor")
		w.WriteHeader(r.status)
		w.Write(b)
	case JSON10, JSON11:
		h.Set("x-amzn-ErrorType", e.Code)
		h.Set("Content-Type", "application/x-amz-json-1."+map[bool]string{true: "0", false: "1"}[req.Protocol == JSON10])
		w.WriteHeader(r.status)
		typ := e.Code
		if req.Protocol == JSON10 {
			typ = s.qualified(e.Code)
		}
		_ = json.NewEncoder(w).Encode(body(typ))
	default: // REST-JSON
		b := body(e.Code)
		delete(b, "__type")
		if _, ok := b["Type"]; !ok {
			b["Type"] = map[bool]string{true: "Service", false: "User"}[r.server]
		}
		h.Set("x-amzn-ErrorType", e.Code)
		h.Set("Content-Type", "application/json")
		w.WriteHeader(r.status)
		_ = json.NewEncoder(w).Encode(b)
	}
}

func (s *Service) qualified(code string) string {
	if s.Model.Namespace == "" {
		return code
	}
	return s.Model.Namespace + "#" + code
}

func escape(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
