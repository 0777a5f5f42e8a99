package lambda

import (
	"context"
	"net/http"
	"strconv"

	"github.com/aviary-deploy/aviary/sandbox/limits"
	"github.com/aviary-deploy/aviary/sandbox/protocol"
)

//go:generate go run ../protocol/errorsgen -model lambda/2015-03-31 -o model_gen.go

// maxCodeRequest is the largest CreateFunction or UpdateFunctionCode request Lambda accepts: a
// 50 MB zip (the direct-upload quota) base64-encoded in JSON. AWS answers a larger one with
// RequestEntityTooLargeException naming this number.
const maxCodeRequest = 69905067

// Handler serves the Lambda API; l is asked about every request once its operation is known.
func (s *Service) Handler(l limits.Limiter) http.Handler {
	api := &protocol.Service{Name: "lambda", Model: apiModel, Limits: l, Classify: classify, Refused: refusalError,
		DecodeError: func(err error) *protocol.Error {
			return apiErr("InvalidRequestContentException", "Could not parse request body into json: %v", err)
		},
	}
	if s.cfg.Trail != nil {
		api.Observe = s.observe
	}
	s.permissionRoutes(api)
	s.urlRoutes(api)
	type none = struct{}
	fn := func(req *protocol.Request) string { return req.Label("FunctionName") }
	q := func(req *protocol.Request, name string) string { return req.Query().Get(name) }

	protocol.Route(api, "POST /2015-03-31/functions", "CreateFunction", http.StatusCreated,
		func(_ context.Context, _ *protocol.Request, in *createFunctionInput) (*functionConfiguration, *APIError) {
			return ptr(s.createFunction(*in))
		}).MaxBody(maxCodeRequest)
	protocol.Route(api, "GET /2015-03-31/functions", "ListFunctions", 0,
		func(_ context.Context, req *protocol.Request, _ *none) (*listFunctionsOutput, *APIError) {
			n, err := maxItems(req)
			if err != nil {
				return nil, err
			}
			return ptr(s.listFunctions(q(req, "Marker"), n, q(req, "FunctionVersion") == "ALL"))
		})
	protocol.Route(api, "GET /2017-03-31/tags/{Resource}", "ListTags", 0,
		func(_ context.Context, req *protocol.Request, _ *none) (*listTagsOutput, *APIError) {
			return ptr(s.listTags(req.Label("Resource")))
		})
	protocol.Route(api, "GET /2015-03-31/functions/{FunctionName}", "GetFunction", 0,
		func(_ context.Context, req *protocol.Request, _ *none) (*getFunctionOutput, *APIError) {
			return ptr(s.getFunction(fn(req), q(req, "Qualifier")))
		})
	protocol.Route(api, "DELETE /2015-03-31/functions/{FunctionName}", "DeleteFunction", http.StatusNoContent,
		func(_ context.Context, req *protocol.Request, _ *none) (*none, *APIError) {
			return nil, s.deleteFunction(fn(req), q(req, "Qualifier"))
		})
	protocol.Route(api, "GET /2015-03-31/functions/{FunctionName}/configuration", "GetFunctionConfiguration", 0,
		func(_ context.Context, req *protocol.Request, _ *none) (*functionConfiguration, *APIError) {
			out, err := s.getFunction(fn(req), q(req, "Qualifier"))
			return ptr(out.Configuration, err)
		})
	protocol.Route(api, "PUT /2015-03-31/functions/{FunctionName}/configuration", "UpdateFunctionConfiguration", 0,
		func(_ context.Context, req *protocol.Request, in *updateFunctionConfigurationInput) (*functionConfiguration, *APIError) {
			return ptr(s.updateFunctionConfiguration(fn(req), *in))
		})
	protocol.Route(api, "PUT /2015-03-31/functions/{FunctionName}/code", "UpdateFunctionCode", 0,
		func(_ context.Context, req *protocol.Request, in *updateFunctionCodeInput) (*functionConfiguration, *APIError) {
			return ptr(s.updateFunctionCode(fn(req), *in))
		}).MaxBody(maxCodeRequest)
	protocol.Route(api, "POST /2015-03-31/functions/{FunctionName}/versions", "PublishVersion", http.StatusCreated,
		func(_ context.Context, req *protocol.Request, in *publishVersionInput) (*functionConfiguration, *APIError) {
			return ptr(s.publishVersion(fn(req), *in))
		})
	protocol.Route(api, "GET /2015-03-31/functions/{FunctionName}/versions", "ListVersionsByFunction", 0,
		func(_ context.Context, req *protocol.Request, _ *none) (*listVersionsOutput, *APIError) {
			n, err := maxItems(req)
			if err != nil {
				return nil, err
			}
			return ptr(s.listVersions(fn(req), q(req, "Marker"), n))
		})
	protocol.Route(api, "POST /2015-03-31/functions/{FunctionName}/aliases", "CreateAlias", http.StatusCreated,
		func(_ context.Context, req *protocol.Request, in *createAliasInput) (*aliasConfiguration, *APIError) {
			return ptr(s.createAlias(fn(req), *in))
		})
	protocol.Route(api, "GET /2015-03-31/functions/{FunctionName}/aliases", "ListAliases", 0,
		func(_ context.Context, req *protocol.Request, _ *none) (*listAliasesOutput, *APIError) {
			n, err := maxItems(req)
			if err != nil {
				return nil, err
			}
			return ptr(s.listAliases(fn(req), q(req, "FunctionVersion"), q(req, "Marker"), n))
		})
	protocol.Route(api, "GET /2015-03-31/functions/{FunctionName}/aliases/{Name}", "GetAlias", 0,
		func(_ context.Context, req *protocol.Request, _ *none) (*aliasConfiguration, *APIError) {
			return ptr(s.getAlias(fn(req), req.Label("Name")))
		})
	protocol.Route(api, "PUT /2015-03-31/functions/{FunctionName}/aliases/{Name}", "UpdateAlias", 0,
		func(_ context.Context, req *protocol.Request, in *updateAliasInput) (*aliasConfiguration, *APIError) {
			return ptr(s.updateAlias(fn(req), req.Label("Name"), *in))
		})
	protocol.Route(api, "DELETE /2015-03-31/functions/{FunctionName}/aliases/{Name}", "DeleteAlias", http.StatusNoContent,
		func(_ context.Context, req *protocol.Request, _ *none) (*none, *APIError) {
			return nil, s.deleteAlias(fn(req), req.Label("Name"))
		})
	protocol.Route(api, "PUT /2017-10-31/functions/{FunctionName}/concurrency", "PutFunctionConcurrency", 0,
		func(_ context.Context, req *protocol.Request, in *concurrencyInput) (*concurrencyOutput, *APIError) {
			return ptr(s.putConcurrency(fn(req), *in))
		})
	protocol.Route(api, "DELETE /2017-10-31/functions/{FunctionName}/concurrency", "DeleteFunctionConcurrency", http.StatusNoContent,
		func(_ context.Context, req *protocol.Request, _ *none) (*none, *APIError) {
			return nil, s.deleteConcurrency(fn(req))
		})
	protocol.Route(api, "GET /2019-09-30/functions/{FunctionName}/concurrency", "GetFunctionConcurrency", 0,
		func(_ context.Context, req *protocol.Request, _ *none) (*concurrencyOutput, *APIError) {
			return ptr(s.getConcurrency(fn(req)))
		})
	s.routeExtras(api)
	protocol.Route(api, "GET /2016-08-19/account-settings", "GetAccountSettings", 0,
		func(_ context.Context, _ *protocol.Request, _ *none) (*accountSettingsOutput, *APIError) {
			out := s.accountSettings()
			return &out, nil
		})
	protocol.Route(api, "POST /2015-03-31/functions/{FunctionName}/invocations", "Invoke", 0, s.httpInvoke).
		MaxBody(maxSyncPayload).
		TooLarge(func(limit int64) *protocol.Error {
			return apiErr("RequestTooLargeException", "Request must be smaller than %d bytes for the InvokeFunction operation", limit)
		})
	return api
}

// ptr adapts an operation's (value, error) to a handler's (pointer, error).
func ptr[T any](v T, err *APIError) (*T, *APIError) {
	if err != nil {
		return nil, err
	}
	return &v, nil
}

// classify names the function a request acts on and the quota it counts against: Invoke has
// none of the control plane's, GetFunction its own.
func classify(req *protocol.Request, in any) (resource, quota string) {
	resource = req.Label("FunctionName")
	if req.Operation == "ListTags" {
		resource = req.Label("Resource")
	}
	if c, ok := in.(*createFunctionInput); ok {
		resource = c.FunctionName
	}
	if name, _, err := parseFunctionName(resource); err == nil {
		resource = name
	}
	switch req.Operation {
	case "Invoke", "GetPolicy": // GetPolicy is outside the control-plane quota (it has its own on AWS)
		return resource, ""
	case "GetFunction":
		return resource, limits.QuotaGetFunction
	}
	return resource, limits.QuotaControlPlane
}

func refusalError(ref *limits.Refusal) *protocol.Error {
	switch ref.Kind {
	case limits.RateLimited:
		secs := max(int(ref.RetryAfter.Seconds()+0.999), 1)
		return tooManyRequests("Rate exceeded", "CallerRateLimitExceeded", secs)
	case limits.InjectedThrottle:
		return tooManyRequests("Rate exceeded", "CallerRateLimitExceeded", 1)
	default:
		return apiErr("ServiceException", "An internal error occurred (injected by the sandbox's fault settings).")
	}
}

func maxItems(req *protocol.Request) (int, *APIError) {
	raw := req.Query().Get("MaxItems")
	if raw == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 || n > 10000 {
		return 0, validation("maxItems", raw, "Member must have value between 1 and 10000")
	}
	return n, nil
}

// invokeInput and invokeOutput are Invoke's shapes: the payload is the raw body, the rest
// travels in the query and headers.
type invokeInput struct {
	Qualifier      string `aws:"query:Qualifier"`
	InvocationType string `aws:"header:X-Amz-Invocation-Type"`
	LogType        string `aws:"header:X-Amz-Log-Type"`
	ClientContext  string `aws:"header:X-Amz-Client-Context"`
	Payload        []byte `aws:"body"`
}

type invokeOutput struct {
	StatusCode      int    `aws:"status"`
	ExecutedVersion string `aws:"header:X-Amz-Executed-Version"`
	FunctionError   string `aws:"header:X-Amz-Function-Error"`
	LogResult       string `aws:"header:X-Amz-Log-Result"`
	ContentType     string `aws:"header:Content-Type"`
	Payload         []byte `aws:"body"`
}

func (s *Service) httpInvoke(ctx context.Context, req *protocol.Request, in *invokeInput) (*invokeOutput, *APIError) {
	out, err := s.invoke(ctx, invokeRequest{
		RequestID:      req.ID,
		FunctionName:   req.Label("FunctionName"),
		Qualifier:      in.Qualifier,
		InvocationType: in.InvocationType,
		LogType:        in.LogType,
		ClientContext:  in.ClientContext,
		Payload:        in.Payload,
	})
	if err != nil {
		return nil, err
	}
	res := &invokeOutput{StatusCode: out.Status, ExecutedVersion: out.ExecutedVersion, FunctionError: out.FunctionError, LogResult: out.LogResult}
	if out.Status == http.StatusOK {
		res.ContentType, res.Payload = "application/json", out.Payload
	}
	return res, nil
}

// maxItemsUpTo reads MaxItems where the model bounds it lower than 10000.
func maxItemsUpTo(req *protocol.Request, limit int) (int, *APIError) {
	raw := req.Query().Get("MaxItems")
	if raw == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 || n > limit {
		return 0, validation("maxItems", raw, "Member must have value between 1 and "+strconv.Itoa(limit))
	}
	return n, nil
}

// routeExtras registers event source mappings and provisioned concurrency.
func (s *Service) routeExtras(api *protocol.Service) {
	type none = struct{}
	fn := func(req *protocol.Request) string { return req.Label("FunctionName") }
	q := func(req *protocol.Request, name string) string { return req.Query().Get(name) }
	protocol.Route(api, "POST /2015-03-31/event-source-mappings", "CreateEventSourceMapping", http.StatusAccepted,
		func(_ context.Context, _ *protocol.Request, in *createEventSourceMappingInput) (*eventSourceMappingConfiguration, *APIError) {
			return ptr(s.createEventSourceMapping(*in))
		})
	protocol.Route(api, "GET /2015-03-31/event-source-mappings", "ListEventSourceMappings", 0,
		func(_ context.Context, req *protocol.Request, _ *none) (*listEventSourceMappingsOutput, *APIError) {
			n, err := maxItems(req)
			if err != nil {
				return nil, err
			}
			return ptr(s.listEventSourceMappings(q(req, "FunctionName"), q(req, "EventSourceArn"), q(req, "Marker"), n))
		})
	protocol.Route(api, "GET /2015-03-31/event-source-mappings/{UUID}", "GetEventSourceMapping", 0,
		func(_ context.Context, req *protocol.Request, _ *none) (*eventSourceMappingConfiguration, *APIError) {
			return ptr(s.getEventSourceMapping(req.Label("UUID")))
		})
	protocol.Route(api, "PUT /2015-03-31/event-source-mappings/{UUID}", "UpdateEventSourceMapping", http.StatusAccepted,
		func(_ context.Context, req *protocol.Request, in *updateEventSourceMappingInput) (*eventSourceMappingConfiguration, *APIError) {
			return ptr(s.updateEventSourceMapping(req.Label("UUID"), *in))
		})
	protocol.Route(api, "DELETE /2015-03-31/event-source-mappings/{UUID}", "DeleteEventSourceMapping", http.StatusAccepted,
		func(_ context.Context, req *protocol.Request, _ *none) (*eventSourceMappingConfiguration, *APIError) {
			return ptr(s.deleteEventSourceMapping(req.Label("UUID")))
		})
	protocol.Route(api, "PUT /2019-09-30/functions/{FunctionName}/provisioned-concurrency", "PutProvisionedConcurrencyConfig", http.StatusAccepted,
		func(_ context.Context, req *protocol.Request, in *putProvisionedInput) (*provisionedOutput, *APIError) {
			return ptr(s.putProvisioned(fn(req), q(req, "Qualifier"), *in))
		})
	protocol.Route(api, "GET /2019-09-30/functions/{FunctionName}/provisioned-concurrency?List=ALL", "ListProvisionedConcurrencyConfigs", 0,
		func(_ context.Context, req *protocol.Request, _ *none) (*listProvisionedOutput, *APIError) {
			n, err := maxItemsUpTo(req, 50)
			if err != nil {
				return nil, err
			}
			return ptr(s.listProvisioned(fn(req), q(req, "Marker"), n))
		})
	protocol.Route(api, "GET /2019-09-30/functions/{FunctionName}/provisioned-concurrency", "GetProvisionedConcurrencyConfig", 0,
		func(_ context.Context, req *protocol.Request, _ *none) (*provisionedOutput, *APIError) {
			return ptr(s.getProvisioned(fn(req), q(req, "Qualifier")))
		})
	protocol.Route(api, "DELETE /2019-09-30/functions/{FunctionName}/provisioned-concurrency", "DeleteProvisionedConcurrencyConfig", http.StatusNoContent,
		func(_ context.Context, req *protocol.Request, _ *none) (*none, *APIError) {
			return nil, s.deleteProvisioned(fn(req), q(req, "Qualifier"))
		})
}
