package lambda

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
)

type errorShape struct {
	status     int
	messageKey string
}

// APIError is an error as the Lambda API answers it: a modelled error type, its message, and for
// throttles the reason and Retry-After the SDK reads.
type APIError struct {
	Type       string
	Message    string
	Reason     string // TooManyRequestsException only
	RetryAfter int    // seconds; TooManyRequestsException only
}

func (e *APIError) Error() string { return e.Type + ": " + e.Message }

// unmodelledErrors are errors AWS answers that the model does not declare: request validation
// (answered before any operation runs) and oversized bodies.
var unmodelledErrors = map[string]errorShape{
	"ValidationException":            {status: http.StatusBadRequest, messageKey: "message"},
	"RequestEntityTooLargeException": {status: http.StatusRequestEntityTooLarge, messageKey: "message"},
	"UnrecognizedClientException":    {status: http.StatusForbidden, messageKey: "message"},
}

func shapeOf(typ string) errorShape {
	if s, ok := errorShapes[typ]; ok {
		return s
	}
	if s, ok := unmodelledErrors[typ]; ok {
		return s
	}
	return errorShape{status: http.StatusInternalServerError, messageKey: "Message"}
}

// Status is the HTTP status the model gives this error type.
func (e *APIError) Status() int { return shapeOf(e.Type).status }

func apiErr(typ, format string, args ...any) *APIError {
	return &APIError{Type: typ, Message: fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) *APIError {
	return apiErr("ResourceNotFoundException", format, args...)
}

func invalidParam(format string, args ...any) *APIError {
	return apiErr("InvalidParameterValueException", format, args...)
}

func conflict(format string, args ...any) *APIError {
	return apiErr("ResourceConflictException", format, args...)
}

func preconditionFailed(format string, args ...any) *APIError {
	return apiErr("PreconditionFailedException", format, args...)
}

// writeError renders e as rest-json does: the x-amzn-ErrorType header, and a JSON body whose
// message member has the name the model gives it.
func writeError(w http.ResponseWriter, e *APIError) {
	shape := shapeOf(e.Type)
	body := map[string]any{"Type": "User", shape.messageKey: e.Message}
	if shape.status >= 500 {
		body["Type"] = "Service"
	}
	if e.Reason != "" {
		body["Reason"] = e.Reason
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("x-amzn-ErrorType", e.Type)
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	w.WriteHeader(shape.status)
	_ = json.NewEncoder(w).Encode(body)
}
