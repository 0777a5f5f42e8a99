package lambda

import (
	"github.com/aviary-deploy/aviary/sandbox/protocol"
)

// APIError is an error as the Lambda API answers it: a modelled error type (Code) and its
// message; its status and message member come from the model (model_gen.go).
type APIError = protocol.Error

func apiErr(typ, format string, args ...any) *APIError { return protocol.Errorf(typ, format, args...) }

// tooManyRequests is Lambda's throttle: its Reason member and the Retry-After the SDK reads.
func tooManyRequests(msg, reason string, retryAfter int) *APIError {
	return &APIError{Code: "TooManyRequestsException", Message: msg, Fields: map[string]any{"Reason": reason}, RetryAfter: retryAfter}
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
