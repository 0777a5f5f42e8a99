package lambda

import (
	"encoding/json"
	"net"
	"strings"
	"time"
	"unicode"

	"github.com/aviary-deploy/aviary/sandbox/protocol"
)

// TrailSink receives the control-plane calls CloudTrail records as management events.
type TrailSink interface {
	RecordCall(TrailCall)
}

// TrailCall is one Lambda API call as CloudTrail records it.
type TrailCall struct {
	Time time.Time
	// EventName is the versioned name CloudTrail gives Lambda's operations, e.g.
	// "UpdateFunctionCode20150331v2".
	EventName    string
	ReadOnly     bool
	RequestID    string
	UserAgent    string
	SourceIP     string
	AccessKeyID  string
	FunctionName string // the function it acts on, unqualified, if any
	// RequestParameters are the request's members as CloudTrail writes them: lowerCamelCase,
	// the function name included, code bytes and environment values left out.
	RequestParameters map[string]any
	ErrorCode         string
	ErrorMessage      string
}

// trailNames are CloudTrail's names of Lambda's operations: the API version they belong to,
// and a "v2" for those whose recorded shape changed.
var trailNames = map[string]string{
	"CreateFunction":              "CreateFunction20150331",
	"GetFunction":                 "GetFunction20150331v2",
	"GetFunctionConfiguration":    "GetFunctionConfiguration20150331v2",
	"UpdateFunctionCode":          "UpdateFunctionCode20150331v2",
	"UpdateFunctionConfiguration": "UpdateFunctionConfiguration20150331v2",
	"DeleteFunction":              "DeleteFunction20150331",
	"ListFunctions":               "ListFunctions20150331",
	"PublishVersion":              "PublishVersion20150331",
	"ListVersionsByFunction":      "ListVersionsByFunction20150331",
	"CreateAlias":                 "CreateAlias20150331",
	"GetAlias":                    "GetAlias20150331",
	"UpdateAlias":                 "UpdateAlias20150331",
	"DeleteAlias":                 "DeleteAlias20150331",
	"ListAliases":                 "ListAliases20150331",
	"AddPermission":               "AddPermission20150331v2",
	"RemovePermission":            "RemovePermission20150331v2",
	"GetPolicy":                   "GetPolicy20150331v2",
	"PutFunctionConcurrency":      "PutFunctionConcurrency20171031",
	"DeleteFunctionConcurrency":   "DeleteFunctionConcurrency20171031",
	"GetFunctionConcurrency":      "GetFunctionConcurrency20190930",
	"GetAccountSettings":          "GetAccountSettings20160819",
	"ListTags":                    "ListTags20170331",
}

// observe records a control-plane call (Invoke is a data event, which trails do not record
// by default, and is left out).
func (s *Service) observe(req *protocol.Request, _ any, aerr *protocol.Error) {
	name, ok := trailNames[req.Operation]
	if !ok {
		return
	}
	call := TrailCall{Time: s.cfg.Now(), EventName: name, RequestID: req.ID, UserAgent: req.HTTP.UserAgent(),
		ReadOnly:    strings.HasPrefix(req.Operation, "Get") || strings.HasPrefix(req.Operation, "List"),
		AccessKeyID: accessKeyID(req.HTTP.Header.Get("Authorization"))}
	call.SourceIP, _, _ = net.SplitHostPort(req.HTTP.RemoteAddr)
	params := map[string]any{}
	if in := req.Input(); in != nil {
		if b, err := json.Marshal(in); err == nil {
			var m map[string]any
			if json.Unmarshal(b, &m) == nil {
				for k, v := range m {
					if v == nil || k == "ZipFile" {
						continue
					}
					if k == "Tags" {
						params["tags"] = v // keys that are data
						continue
					}
					params[lowerCamel(k)] = camelKeys(v)
				}
			}
		}
		if env, ok := params["environment"].(map[string]any); ok {
			env["variables"] = "HIDDEN_DUE_TO_SECURITY_REASONS"
		}
	}
	if fn := req.Label("FunctionName"); fn != "" {
		params["functionName"] = fn
	}
	if q := req.Query().Get("Qualifier"); q != "" {
		params["qualifier"] = q
	}
	if n, ok := params["functionName"].(string); ok {
		call.FunctionName = n
		if bare, _, err := parseFunctionName(n); err == nil {
			call.FunctionName = bare
		}
	}
	call.RequestParameters = params
	if aerr != nil {
		call.ErrorCode, call.ErrorMessage = aerr.Code, aerr.Message
	}
	s.cfg.Trail.RecordCall(call)
}

// camelKeys lowerCamelCases the member names of a nested value, as CloudTrail writes them
// (map keys that are data, such as routing weights' versions, are digits and stay as they are).
func camelKeys(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			if k == "ZipFile" {
				continue // code bytes are not recorded
			}
			out[lowerCamel(k)] = camelKeys(e)
		}
		return out
	case []any:
		for i, e := range x {
			x[i] = camelKeys(e)
		}
	}
	return v
}

func lowerCamel(s string) string {
	if s == "" {
		return s
	}
	r := []rune(s)
	r[0] = unicode.ToLower(r[0])
	return string(r)
}

// accessKeyID reads the access key from a SigV4 Authorization header.
func accessKeyID(auth string) string {
	_, rest, ok := strings.Cut(auth, "Credential=")
	if !ok {
		return ""
	}
	key, _, _ := strings.Cut(rest, "/")
	return key
}
