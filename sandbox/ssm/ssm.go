// Package ssm is the sandbox's AWS Systems Manager Parameter Store (awsJson1_1, AmazonSSM.*):
// PutParameter (String, StringList, SecureString; Overwrite makes a new version),
// GetParameter (with a :version selector), GetParameters, GetParametersByPath (paged) and
// DeleteParameter, so that configuration values can be read from the sandbox as from AWS.
//
// The rule it keeps: answers and errors are SSM's — ParameterNotFound, ParameterAlreadyExists,
// ParameterVersionNotFound, ValidationException with SSM's constraints — and a SecureString's value
// is returned only WithDecryption; without it the caller gets a ciphertext, as from KMS.
package ssm

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aviary-deploy/aviary/internal/atomicfile"
	"github.com/aviary-deploy/aviary/sandbox/limits"
	"github.com/aviary-deploy/aviary/sandbox/protocol"
)

//go:generate go run ../protocol/errorsgen -model ssm/2014-11-06 -o model_gen.go

// Config sets up a Service.
type Config struct {
	Region  string
	Account string
	// DataDir, if set, keeps the parameters across restarts (ssm/parameters.json).
	DataDir string
	Now     func() time.Time
}

// Service is the sandbox's Parameter Store.
type Service struct {
	cfg    Config
	mu     sync.Mutex
	params map[string]*parameter
}

// parameter is one parameter and its history, oldest version first.
type parameter struct {
	Name     string
	Versions []paramVersion
}

type paramVersion struct {
	Version     int64
	Type        string
	Value       string
	Description string
	DataType    string
	Modified    time.Time
}

// Most versions SSM keeps of a parameter.
const maxVersions = 100

// New returns a Service with the persisted parameters, if any.
func New(cfg Config) (*Service, error) {
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.Account == "" {
		cfg.Account = "000000000000"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Service{cfg: cfg, params: map[string]*parameter{}}
	if cfg.DataDir != "" {
		b, err := os.ReadFile(s.path())
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return nil, err
		default:
			if err := json.Unmarshal(b, &s.params); err != nil {
				return nil, fmt.Errorf("read %s: %w", s.path(), err)
			}
		}
	}
	return s, nil
}

func (s *Service) path() string { return filepath.Join(s.cfg.DataDir, "ssm", "parameters.json") }

func (s *Service) save() {
	if s.cfg.DataDir == "" {
		return
	}
	b, err := json.Marshal(s.params)
	if err == nil {
		if err = os.MkdirAll(filepath.Dir(s.path()), 0o700); err == nil {
			_ = atomicfile.Write(s.path(), b)
		}
	}
}

type putParameterInput struct {
	Name        string `json:"Name"`
	Description string `json:"Description"`
	Value       string `json:"Value"`
	Type        string `json:"Type"`
	KeyID       string `json:"KeyId"`
	Overwrite   bool   `json:"Overwrite"`
	Tier        string `json:"Tier"`
	DataType    string `json:"DataType"`
}

type putParameterOutput struct {
	Version int64  `json:"Version"`
	Tier    string `json:"Tier"`
}

type getParameterInput struct {
	Name           string `json:"Name"`
	WithDecryption bool   `json:"WithDecryption"`
}

type parameterOut struct {
	Name             string             `json:"Name"`
	Type             string             `json:"Type"`
	Value            string             `json:"Value"`
	Version          int64              `json:"Version"`
	Selector         string             `json:"Selector,omitempty"`
	LastModifiedDate protocol.Timestamp `json:"LastModifiedDate"`
	ARN              string             `json:"ARN"`
	DataType         string             `json:"DataType"`
}

type getParameterOutput struct {
	Parameter parameterOut `json:"Parameter"`
}

type getParametersInput struct {
	Names          []string `json:"Names"`
	WithDecryption bool     `json:"WithDecryption"`
}

type getParametersOutput struct {
	Parameters        []parameterOut `json:"Parameters"`
	InvalidParameters []string       `json:"InvalidParameters"`
}

type getParametersByPathInput struct {
	Path           string `json:"Path"`
	Recursive      bool   `json:"Recursive"`
	WithDecryption bool   `json:"WithDecryption"`
	MaxResults     *int   `json:"MaxResults"`
	NextToken      string `json:"NextToken"`
}

type getParametersByPathOutput struct {
	Parameters []parameterOut `json:"Parameters"`
	NextToken  string         `json:"NextToken,omitempty"`
}

type deleteParameterInput struct {
	Name string `json:"Name"`
}

type empty struct{}

// Handler serves the SSM API; l is asked about every request.
func (s *Service) Handler(l limits.Limiter) http.Handler {
	api := &protocol.Service{Name: "ssm", Model: apiModel, Limits: l, Classify: classify}
	protocol.Handle(api, "PutParameter", func(_ context.Context, _ *protocol.Request, in *putParameterInput) (*putParameterOutput, *protocol.Error) {
		return s.put(in)
	})
	protocol.Handle(api, "GetParameter", func(_ context.Context, _ *protocol.Request, in *getParameterInput) (*getParameterOutput, *protocol.Error) {
		return s.get(in)
	})
	protocol.Handle(api, "GetParameters", func(_ context.Context, _ *protocol.Request, in *getParametersInput) (*getParametersOutput, *protocol.Error) {
		return s.getMany(in)
	})
	protocol.Handle(api, "GetParametersByPath", func(_ context.Context, _ *protocol.Request, in *getParametersByPathInput) (*getParametersByPathOutput, *protocol.Error) {
		return s.byPath(in)
	})
	protocol.Handle(api, "DeleteParameter", func(_ context.Context, _ *protocol.Request, in *deleteParameterInput) (*empty, *protocol.Error) {
		return s.delete(in)
	})
	return api
}

// classify names the parameter a request reads or writes, as the request log shows it (IAM
// authorizes each on the parameter's ARN).
func classify(_ *protocol.Request, in any) (resource, quota string) {
	switch v := in.(type) {
	case *putParameterInput:
		return v.Name, ""
	case *getParameterInput:
		return v.Name, ""
	case *getParametersInput:
		return strings.Join(v.Names, ","), ""
	case *getParametersByPathInput:
		return v.Path, ""
	case *deleteParameterInput:
		return v.Name, ""
	}
	return "", ""
}

func validation(format string, args ...any) *protocol.Error {
	return protocol.Errorf("ValidationException", format, args...)
}

// checkName applies SSM's naming rules (docs: "Requirements and constraints for parameter names").
func checkName(name string) *protocol.Error {
	switch {
	case name == "" || len(name) > 2048:
		return validation("1 validation error detected: Value '%s' at 'name' failed to satisfy constraint: Member must have length less than or equal to 2048", name)
	case strings.Contains(name, "/") && !strings.HasPrefix(name, "/"):
		return validation("Parameter name must be a fully qualified name.")
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_.-/", r)) {
			return validation("Parameter name: can't be prefixed with \"aws\" or \"ssm\" (case-insensitive). If formed as a path, it can consist of sub-paths divided by slash symbol; each sub-path can be formed as a mix of letters, numbers and the following 3 symbols .-_")
		}
	}
	first := strings.ToLower(strings.TrimPrefix(name, "/"))
	if strings.HasPrefix(first, "aws") || strings.HasPrefix(first, "ssm") {
		return validation("No access to reserved parameter name: %s.", name)
	}
	if strings.Count(name, "/") > 15 {
		return protocol.Errorf("HierarchyLevelLimitExceededException", "A hierarchy can have a maximum of 15 levels. For more information, see Requirements and constraints for parameter names.")
	}
	return nil
}

func (s *Service) put(in *putParameterInput) (*putParameterOutput, *protocol.Error) {
	if err := checkName(in.Name); err != nil {
		return nil, err
	}
	if in.Type == "" {
		in.Type = "String"
	}
	switch in.Type {
	case "String", "StringList", "SecureString":
	default:
		return nil, validation("1 validation error detected: Value '%s' at 'type' failed to satisfy constraint: Member must satisfy enum value set: [SecureString, StringList, String]", in.Type)
	}
	if in.Value == "" {
		return nil, validation("1 validation error detected: Value at 'value' failed to satisfy constraint: Member must have length greater than or equal to 1")
	}
	if len(in.Value) > 4096 && in.Tier != "Advanced" {
		return nil, validation("Standard tier parameters support a maximum parameter value of 4096 characters. To create a larger parameter value, upgrade the parameter to use the advanced-parameter tier. For more information, see https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-advanced-parameters.html")
	}
	if in.DataType == "" {
		in.DataType = "text"
	}
	tier := in.Tier
	if tier == "" || tier == "Intelligent-Tiering" {
		tier = "Standard"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.params[in.Name]
	if p != nil && !in.Overwrite {
		return nil, protocol.Errorf("ParameterAlreadyExists", "The parameter already exists. To overwrite this value, set the overwrite option in the request to true.")
	}
	if p == nil {
		p = &parameter{Name: in.Name}
		s.params[in.Name] = p
	}
	next := int64(1)
	if n := len(p.Versions); n > 0 {
		next = p.Versions[n-1].Version + 1
		if n >= maxVersions {
			return nil, protocol.Errorf("ParameterMaxVersionLimitExceeded", "You attempted to create a new version of %s by calling the PutParameter API with the overwrite flag. Version 1, the oldest version, can't be deleted because it has a label associated with it. Move the label to another version of the parameter, and try again.", in.Name)
		}
	}
	desc := in.Description
	if desc == "" && len(p.Versions) > 0 {
		desc = p.Versions[len(p.Versions)-1].Description
	}
	p.Versions = append(p.Versions, paramVersion{Version: next, Type: in.Type, Value: in.Value, Description: desc, DataType: in.DataType, Modified: s.cfg.Now()})
	s.save()
	return &putParameterOutput{Version: next, Tier: tier}, nil
}

// lookup finds a parameter by name with an optional :version selector. It answers the error
// name (for GetParameters' InvalidParameters) as well as the API error.
func (s *Service) lookup(raw string) (*parameter, *paramVersion, string, *protocol.Error) {
	name, selector := raw, ""
	if i := strings.LastIndex(raw, ":"); i > 0 {
		name, selector = raw[:i], raw[i:]
	}
	p := s.params[name]
	if p == nil {
		return nil, nil, "", protocol.Errorf("ParameterNotFound", "Parameter %s not found.", name)
	}
	if selector == "" {
		return p, &p.Versions[len(p.Versions)-1], "", nil
	}
	n, err := strconv.ParseInt(selector[1:], 10, 64)
	if err != nil {
		// A label selector: the sandbox keeps no labels, so no label matches.
		return nil, nil, "", protocol.Errorf("ParameterVersionNotFound", "Systems Manager could not find version %s of %s. Verify the version and try again.", selector[1:], name)
	}
	for i := range p.Versions {
		if p.Versions[i].Version == n {
			return p, &p.Versions[i], selector, nil
		}
	}
	return nil, nil, "", protocol.Errorf("ParameterVersionNotFound", "Systems Manager could not find version %d of %s. Verify the version and try again.", n, name)
}

func (s *Service) render(p *parameter, v *paramVersion, selector string, decrypt bool) parameterOut {
	value := v.Value
	if v.Type == "SecureString" && !decrypt {
		// What KMS would return: an opaque ciphertext, not the value.
		value = base64.StdEncoding.EncodeToString([]byte("sandbox-kms:" + strconv.FormatInt(v.Version, 10) + ":" + p.Name))
	}
	arn := fmt.Sprintf("arn:aws:ssm:%s:%s:parameter/%s", s.cfg.Region, s.cfg.Account, strings.TrimPrefix(p.Name, "/"))
	return parameterOut{Name: p.Name, Type: v.Type, Value: value, Version: v.Version, Selector: selector,
		LastModifiedDate: protocol.Timestamp{Time: v.Modified}, ARN: arn, DataType: v.DataType}
}

func (s *Service) get(in *getParameterInput) (*getParameterOutput, *protocol.Error) {
	if in.Name == "" {
		return nil, validation("1 validation error detected: Value at 'name' failed to satisfy constraint: Member must have length greater than or equal to 1")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, v, sel, err := s.lookup(in.Name)
	if err != nil {
		return nil, err
	}
	return &getParameterOutput{Parameter: s.render(p, v, sel, in.WithDecryption)}, nil
}

func (s *Service) getMany(in *getParametersInput) (*getParametersOutput, *protocol.Error) {
	if len(in.Names) < 1 || len(in.Names) > 10 {
		return nil, validation("1 validation error detected: Value '%v' at 'names' failed to satisfy constraint: Member must have length less than or equal to 10", in.Names)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := &getParametersOutput{Parameters: []parameterOut{}, InvalidParameters: []string{}}
	seen := map[string]bool{}
	for _, n := range in.Names {
		if seen[n] {
			continue
		}
		seen[n] = true
		p, v, sel, err := s.lookup(n)
		if err != nil {
			out.InvalidParameters = append(out.InvalidParameters, n)
			continue
		}
		out.Parameters = append(out.Parameters, s.render(p, v, sel, in.WithDecryption))
	}
	return out, nil
}

func (s *Service) byPath(in *getParametersByPathInput) (*getParametersByPathOutput, *protocol.Error) {
	if !strings.HasPrefix(in.Path, "/") {
		return nil, validation("The parameter doesn't meet the parameter name requirements. The parameter name must begin with a forward slash \"/\". It can't be prefixed with \"aws\" or \"ssm\" (case-insensitive). It must use only letters, numbers, or the following symbols: . (period), - (hyphen), _ (underscore). Special characters are not allowed. All sub-paths, if specified, must use the forward slash symbol \"/\". Valid example: /get/parameters2-/by1./path0_.")
	}
	max := 10
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > 10 {
			return nil, validation("1 validation error detected: Value '%d' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 10", *in.MaxResults)
		}
		max = *in.MaxResults
	}
	prefix := strings.TrimSuffix(in.Path, "/") + "/"
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	for name := range s.params {
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		if !in.Recursive && strings.Contains(strings.TrimPrefix(name, prefix), "/") {
			continue
		}
		names = append(names, name)
	}
	sort.Strings(names)
	start := 0
	if in.NextToken != "" {
		b, err := base64.RawURLEncoding.DecodeString(in.NextToken)
		if err != nil {
			return nil, protocol.Errorf("InvalidNextToken", "The specified token is not valid.")
		}
		// The token names the last parameter returned: parameters added or deleted meanwhile
		// do not shift the pages.
		start = sort.SearchStrings(names, string(b)+"\x00")
	}
	end := min(start+max, len(names))
	out := &getParametersByPathOutput{Parameters: []parameterOut{}}
	for _, n := range names[start:end] {
		p := s.params[n]
		out.Parameters = append(out.Parameters, s.render(p, &p.Versions[len(p.Versions)-1], "", in.WithDecryption))
	}
	if end < len(names) {
		out.NextToken = base64.RawURLEncoding.EncodeToString([]byte(names[end-1]))
	}
	return out, nil
}

func (s *Service) delete(in *deleteParameterInput) (*empty, *protocol.Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.params[in.Name]; !ok {
		return nil, protocol.Errorf("ParameterNotFound", "Parameter %s not found.", in.Name)
	}
	delete(s.params, in.Name)
	s.save()
	return &empty{}, nil
}
