package lambda

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/aviary-deploy/aviary/sandbox/limits"
)

// route is one request, matched to its operation.
type route struct {
	op     string
	fn     string // FunctionName path label, unescaped
	alias  string // Name path label
	handle func(s *Service, w http.ResponseWriter, r *http.Request, rt route)
}

// match maps method and path to an operation, as the model's requestUri templates do.
func match(method, escapedPath string) (route, bool) {
	segs := strings.Split(strings.Trim(escapedPath, "/"), "/")
	for i, s := range segs {
		u, err := url.PathUnescape(s)
		if err != nil {
			return route{}, false
		}
		segs[i] = u
	}
	if len(segs) < 2 {
		return route{}, false
	}
	ver, coll := segs[0], segs[1]
	rest := segs[2:]
	switch {
	case ver == "2016-08-19" && coll == "account-settings" && len(rest) == 0 && method == http.MethodGet:
		return route{op: "GetAccountSettings", handle: (*Service).httpAccountSettings}, true
	case coll != "functions":
		return route{}, false
	}
	if ver == "2015-03-31" && len(rest) == 0 {
		switch method {
		case http.MethodPost:
			return route{op: "CreateFunction", handle: (*Service).httpCreateFunction}, true
		case http.MethodGet:
			return route{op: "ListFunctions", handle: (*Service).httpListFunctions}, true
		}
		return route{}, false
	}
	if len(rest) == 0 {
		return route{}, false
	}
	fn := rest[0]
	sub := rest[1:]
	r := func(op string, h func(*Service, http.ResponseWriter, *http.Request, route)) (route, bool) {
		return route{op: op, fn: fn, handle: h}, true
	}
	switch ver {
	case "2017-10-31":
		if len(sub) == 1 && sub[0] == "concurrency" {
			switch method {
			case http.MethodPut:
				return r("PutFunctionConcurrency", (*Service).httpPutConcurrency)
			case http.MethodDelete:
				return r("DeleteFunctionConcurrency", (*Service).httpDeleteConcurrency)
			}
		}
		return route{}, false
	case "2019-09-30":
		if len(sub) == 1 && sub[0] == "concurrency" && method == http.MethodGet {
			return r("GetFunctionConcurrency", (*Service).httpGetConcurrency)
		}
		return route{}, false
	case "2015-03-31":
	default:
		return route{}, false
	}
	switch {
	case len(sub) == 0 && method == http.MethodGet:
		return r("GetFunction", (*Service).httpGetFunction)
	case len(sub) == 0 && method == http.MethodDelete:
		return r("DeleteFunction", (*Service).httpDeleteFunction)
	case len(sub) == 1 && sub[0] == "configuration" && method == http.MethodGet:
		return r("GetFunctionConfiguration", (*Service).httpGetFunctionConfiguration)
	case len(sub) == 1 && sub[0] == "configuration" && method == http.MethodPut:
		return r("UpdateFunctionConfiguration", (*Service).httpUpdateFunctionConfiguration)
	case len(sub) == 1 && sub[0] == "code" && method == http.MethodPut:
		return r("UpdateFunctionCode", (*Service).httpUpdateFunctionCode)
	case len(sub) == 1 && sub[0] == "versions" && method == http.MethodPost:
		return r("PublishVersion", (*Service).httpPublishVersion)
	case len(sub) == 1 && sub[0] == "versions" && method == http.MethodGet:
		return r("ListVersionsByFunction", (*Service).httpListVersions)
	case len(sub) == 1 && sub[0] == "aliases" && method == http.MethodPost:
		return r("CreateAlias", (*Service).httpCreateAlias)
	case len(sub) == 1 && sub[0] == "aliases" && method == http.MethodGet:
		return r("ListAliases", (*Service).httpListAliases)
	case len(sub) == 2 && sub[0] == "aliases":
		var rt route
		var ok bool
		switch method {
		case http.MethodGet:
			rt, ok = r("GetAlias", (*Service).httpGetAlias)
		case http.MethodPut:
			rt, ok = r("UpdateAlias", (*Service).httpUpdateAlias)
		case http.MethodDelete:
			rt, ok = r("DeleteAlias", (*Service).httpDeleteAlias)
		}
		rt.alias = sub[1]
		return rt, ok
	case len(sub) == 1 && sub[0] == "invocations" && method == http.MethodPost:
		return r("Invoke", (*Service).httpInvoke)
	}
	return route{}, false
}

// Handler serves the Lambda API; gate is asked about every request once its operation is known.
func (s *Service) Handler(l limits.Limiter) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("x-amzn-RequestId", newRevisionID())
		rt, ok := match(r.Method, r.URL.EscapedPath())
		if !ok {
			writeError(w, &APIError{Type: "UnknownOperationException", Message: "Unknown operation " + r.Method + " " + r.URL.Path})
			return
		}
		resource := rt.fn
		if rt.op == "CreateFunction" {
			resource = peekFunctionName(r)
		}
		if name, _, err := parseFunctionName(resource); err == nil {
			resource = name
		}
		quota := limits.QuotaControlPlane
		switch rt.op {
		case "Invoke":
			quota = ""
		case "GetFunction":
			quota = limits.QuotaGetFunction
		}
		if ref := limits.Admit(l, r, limits.Op{Service: "lambda", Name: rt.op, Resource: resource, Quota: quota}); ref != nil {
			writeError(w, refusalError(ref))
			return
		}
		rt.handle(s, w, r, rt)
	})
}

// peekFunctionName reads CreateFunction's FunctionName from the body, leaving the body to be read
// again.
func peekFunctionName(r *http.Request) string {
	b, err := io.ReadAll(io.LimitReader(r.Body, 80<<20))
	r.Body = io.NopCloser(bytes.NewReader(b))
	if err != nil {
		return ""
	}
	var in struct{ FunctionName string }
	_ = json.Unmarshal(b, &in)
	return in.FunctionName
}

func refusalError(ref *limits.Refusal) *APIError {
	switch ref.Kind {
	case limits.RateLimited:
		secs := int(ref.RetryAfter.Seconds() + 0.999)
		if secs < 1 {
			secs = 1
		}
		return &APIError{Type: "TooManyRequestsException", Message: "Rate exceeded", Reason: "CallerRateLimitExceeded", RetryAfter: secs}
	case limits.InjectedThrottle:
		return &APIError{Type: "TooManyRequestsException", Message: "Rate exceeded", Reason: "CallerRateLimitExceeded", RetryAfter: 1}
	default:
		return &APIError{Type: "ServiceException", Message: "An internal error occurred (injected by the sandbox's fault settings)."}
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// decode reads a JSON request body into v; an empty body is an empty object.
func decode(r *http.Request, v any) *APIError {
	b, err := io.ReadAll(io.LimitReader(r.Body, 80<<20))
	if err != nil {
		return apiErr("InvalidRequestContentException", "Could not read request body: %v", err)
	}
	if len(b) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return apiErr("InvalidRequestContentException", "Could not parse request body into json: %v", err)
	}
	return nil
}

func maxItems(r *http.Request) (int, *APIError) {
	raw := r.URL.Query().Get("MaxItems")
	if raw == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 || n > 10000 {
		return 0, validation("maxItems", raw, "Member must have value between 1 and 10000")
	}
	return n, nil
}

func (s *Service) httpCreateFunction(w http.ResponseWriter, r *http.Request, _ route) {
	var in createFunctionInput
	if err := decode(r, &in); err != nil {
		writeError(w, err)
		return
	}
	out, err := s.createFunction(in)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, out)
}

func (s *Service) httpListFunctions(w http.ResponseWriter, r *http.Request, _ route) {
	n, err := maxItems(r)
	if err != nil {
		writeError(w, err)
		return
	}
	q := r.URL.Query()
	out, err := s.listFunctions(q.Get("Marker"), n, q.Get("FunctionVersion") == "ALL")
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Service) httpGetFunction(w http.ResponseWriter, r *http.Request, rt route) {
	out, err := s.getFunction(rt.fn, r.URL.Query().Get("Qualifier"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Service) httpGetFunctionConfiguration(w http.ResponseWriter, r *http.Request, rt route) {
	out, err := s.getFunction(rt.fn, r.URL.Query().Get("Qualifier"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out.Configuration)
}

func (s *Service) httpDeleteFunction(w http.ResponseWriter, r *http.Request, rt route) {
	if err := s.deleteFunction(rt.fn, r.URL.Query().Get("Qualifier")); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Service) httpUpdateFunctionCode(w http.ResponseWriter, r *http.Request, rt route) {
	var in updateFunctionCodeInput
	if err := decode(r, &in); err != nil {
		writeError(w, err)
		return
	}
	out, err := s.updateFunctionCode(rt.fn, in)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Service) httpUpdateFunctionConfiguration(w http.ResponseWriter, r *http.Request, rt route) {
	var in updateFunctionConfigurationInput
	if err := decode(r, &in); err != nil {
		writeError(w, err)
		return
	}
	out, err := s.updateFunctionConfiguration(rt.fn, in)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Service) httpPublishVersion(w http.ResponseWriter, r *http.Request, rt route) {
	var in publishVersionInput
	if err := decode(r, &in); err != nil {
		writeError(w, err)
		return
	}
	out, err := s.publishVersion(rt.fn, in)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, out)
}

func (s *Service) httpListVersions(w http.ResponseWriter, r *http.Request, rt route) {
	n, err := maxItems(r)
	if err != nil {
		writeError(w, err)
		return
	}
	out, err := s.listVersions(rt.fn, r.URL.Query().Get("Marker"), n)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Service) httpCreateAlias(w http.ResponseWriter, r *http.Request, rt route) {
	var in createAliasInput
	if err := decode(r, &in); err != nil {
		writeError(w, err)
		return
	}
	out, err := s.createAlias(rt.fn, in)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, out)
}

func (s *Service) httpListAliases(w http.ResponseWriter, r *http.Request, rt route) {
	n, err := maxItems(r)
	if err != nil {
		writeError(w, err)
		return
	}
	q := r.URL.Query()
	out, err := s.listAliases(rt.fn, q.Get("FunctionVersion"), q.Get("Marker"), n)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Service) httpGetAlias(w http.ResponseWriter, r *http.Request, rt route) {
	out, err := s.getAlias(rt.fn, rt.alias)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Service) httpUpdateAlias(w http.ResponseWriter, r *http.Request, rt route) {
	var in updateAliasInput
	if err := decode(r, &in); err != nil {
		writeError(w, err)
		return
	}
	out, err := s.updateAlias(rt.fn, rt.alias, in)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Service) httpDeleteAlias(w http.ResponseWriter, r *http.Request, rt route) {
	if err := s.deleteAlias(rt.fn, rt.alias); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Service) httpPutConcurrency(w http.ResponseWriter, r *http.Request, rt route) {
	var in concurrencyInput
	if err := decode(r, &in); err != nil {
		writeError(w, err)
		return
	}
	out, err := s.putConcurrency(rt.fn, in)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Service) httpGetConcurrency(w http.ResponseWriter, r *http.Request, rt route) {
	out, err := s.getConcurrency(rt.fn)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Service) httpDeleteConcurrency(w http.ResponseWriter, r *http.Request, rt route) {
	if err := s.deleteConcurrency(rt.fn); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Service) httpAccountSettings(w http.ResponseWriter, r *http.Request, _ route) {
	writeJSON(w, http.StatusOK, s.accountSettings())
}

func (s *Service) httpInvoke(w http.ResponseWriter, r *http.Request, rt route) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxSyncPayload+1))
	if err != nil {
		writeError(w, apiErr("InvalidRequestContentException", "Could not read request body: %v", err))
		return
	}
	out, aerr := s.invoke(r.Context(), invokeRequest{
		RequestID:      w.Header().Get("x-amzn-RequestId"),
		FunctionName:   rt.fn,
		Qualifier:      r.URL.Query().Get("Qualifier"),
		InvocationType: r.Header.Get("X-Amz-Invocation-Type"),
		LogType:        r.Header.Get("X-Amz-Log-Type"),
		ClientContext:  r.Header.Get("X-Amz-Client-Context"),
		Payload:        body,
	})
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	h := w.Header()
	if out.ExecutedVersion != "" {
		h.Set("X-Amz-Executed-Version", out.ExecutedVersion)
	}
	if out.FunctionError != "" {
		h.Set("X-Amz-Function-Error", out.FunctionError)
	}
	if out.LogResult != "" {
		h.Set("X-Amz-Log-Result", out.LogResult)
	}
	if out.Status == http.StatusOK {
		h.Set("Content-Type", "application/json")
	}
	w.WriteHeader(out.Status)
	if out.Status == http.StatusOK {
		w.Write(out.Payload)
	}
}
