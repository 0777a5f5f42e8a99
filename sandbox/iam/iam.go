// Package iam is the sandbox's AWS Identity and Access Management: roles (their trust policy,
// inline policies, attached managed policies and tags) and OpenID Connect providers, over the
// query protocol, with the errors IAM documents — EntityAlreadyExists, NoSuchEntity,
// MalformedPolicyDocument, DeleteConflict, ValidationError — so that CloudFormation stacks and
// tools that create a CI role or a function's execution role work against the sandbox.
//
// The rule it keeps: policies are stored, checked for form and answered back, never enforced.
// The sandbox verifies no signature, so every caller may do everything; a role's policies are
// what a test reads to check that a role grants exactly what it should. IAM is global: its ARNs
// have no region, and the sandbox answers it whatever region a request was signed for.
//
// Where it is simpler than AWS, and says so: managed policies are not modelled (AttachRolePolicy
// accepts any well-formed policy ARN, AWS's own or the account's), and there are no users,
// groups or instance profiles.
package iam

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aviary-deploy/aviary/internal/atomicfile"
	"github.com/aviary-deploy/aviary/sandbox/limits"
	"github.com/aviary-deploy/aviary/sandbox/protocol"
)

//go:generate go run ../protocol/errorsgen -model iam/2010-05-08 -package iam -o model_gen.go

// Config sets up a Service.
type Config struct {
	Account string
	// DataDir keeps roles and providers across restarts; "" keeps them in memory.
	DataDir string
	Now     func() time.Time
	Logger  *slog.Logger
}

// Service is the sandbox's IAM.
type Service struct {
	cfg Config
	mu  sync.Mutex
	st  state
}

// state is what DataDir persists.
type state struct {
	Roles     map[string]*role     // by name, case-insensitively (lower case), as IAM names are unique
	Providers map[string]*provider // by ARN
}

type role struct {
	Name        string
	ID          string
	Path        string
	Trust       string
	Description string
	MaxSession  int32
	Created     time.Time
	Inline      map[string]string // policy name → document
	Attached    []string          // managed policy ARNs, in attach order
	Boundary    string            // the permissions boundary's policy ARN, "" for none
	Tags        []Tag
}

type provider struct {
	URL         string
	Clients     []string
	Thumbprints []string
	Created     time.Time
	Tags        []Tag
}

// Tag is an IAM tag.
type Tag struct {
	Key   string `json:"Key" xml:"Key"`
	Value string `json:"Value" xml:"Value"`
}

// New returns a Service, loading persisted state.
func New(cfg Config) (*Service, error) {
	if cfg.Account == "" {
		cfg.Account = "000000000000"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{cfg: cfg, st: state{Roles: map[string]*role{}, Providers: map[string]*provider{}}}
	if cfg.DataDir == "" {
		return s, nil
	}
	b, err := os.ReadFile(s.statePath())
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &s.st); err != nil {
		return nil, fmt.Errorf("read %s: %w", s.statePath(), err)
	}
	return s, nil
}

func (s *Service) statePath() string { return filepath.Join(s.cfg.DataDir, "iam", "state.json") }

// save persists the state; the caller holds s.mu.
func (s *Service) save() {
	if s.cfg.DataDir == "" {
		return
	}
	b, err := json.Marshal(s.st)
	if err == nil {
		if err = os.MkdirAll(filepath.Dir(s.statePath()), 0o755); err == nil {
			err = atomicfile.Write(s.statePath(), b)
		}
	}
	if err != nil {
		s.cfg.Logger.Error("persist iam state", "err", err)
	}
}

type apiError = protocol.Error

func validationError(format string, args ...any) *apiError {
	return &apiError{Code: "ValidationError", Message: fmt.Sprintf(format, args...), Status: http.StatusBadRequest}
}

func noSuchEntity(format string, args ...any) *apiError {
	return protocol.Errorf("NoSuchEntityException", format, args...)
}

// Handler serves the IAM API; l is asked about every request.
func (s *Service) Handler(l limits.Limiter) http.Handler {
	api := &protocol.Service{Name: "iam", Model: apiModel, Limits: l}
	protocol.Handle(api, "CreateRole", s.createRole)
	protocol.Handle(api, "GetRole", s.getRole)
	protocol.Handle(api, "DeleteRole", s.deleteRole)
	protocol.Handle(api, "ListRoles", s.listRoles)
	protocol.Handle(api, "UpdateAssumeRolePolicy", s.updateAssumeRolePolicy)
	protocol.Handle(api, "UpdateRole", s.updateRole)
	protocol.Handle(api, "PutRolePolicy", s.putRolePolicy)
	protocol.Handle(api, "GetRolePolicy", s.getRolePolicy)
	protocol.Handle(api, "DeleteRolePolicy", s.deleteRolePolicy)
	protocol.Handle(api, "ListRolePolicies", s.listRolePolicies)
	protocol.Handle(api, "AttachRolePolicy", s.attachRolePolicy)
	protocol.Handle(api, "DetachRolePolicy", s.detachRolePolicy)
	protocol.Handle(api, "ListAttachedRolePolicies", s.listAttachedRolePolicies)
	protocol.Handle(api, "TagRole", s.tagRole)
	protocol.Handle(api, "UntagRole", s.untagRole)
	protocol.Handle(api, "ListRoleTags", s.listRoleTags)
	protocol.Handle(api, "CreateOpenIDConnectProvider", s.createOIDCProvider)
	protocol.Handle(api, "GetOpenIDConnectProvider", s.getOIDCProvider)
	protocol.Handle(api, "DeleteOpenIDConnectProvider", s.deleteOIDCProvider)
	protocol.Handle(api, "ListOpenIDConnectProviders", s.listOIDCProviders)
	protocol.Handle(api, "UpdateRoleDescription", s.updateRoleDescription)
	protocol.Handle(api, "PutRolePermissionsBoundary", s.putRolePermissionsBoundary)
	protocol.Handle(api, "DeleteRolePermissionsBoundary", s.deleteRolePermissionsBoundary)
	protocol.Handle(api, "ListInstanceProfilesForRole", s.listInstanceProfilesForRole)
	protocol.Handle(api, "UpdateOpenIDConnectProviderThumbprint", s.updateOIDCThumbprint)
	protocol.Handle(api, "AddClientIDToOpenIDConnectProvider", s.addOIDCClientID)
	protocol.Handle(api, "RemoveClientIDFromOpenIDConnectProvider", s.removeOIDCClientID)
	protocol.Handle(api, "TagOpenIDConnectProvider", s.tagOIDCProvider)
	protocol.Handle(api, "UntagOpenIDConnectProvider", s.untagOIDCProvider)
	protocol.Handle(api, "ListOpenIDConnectProviderTags", s.listOIDCProviderTags)
	return api
}

// Wire shapes (botocore iam/2010-05-08).

type roleOut struct {
	Path                     string             `xml:"Path"`
	RoleName                 string             `xml:"RoleName"`
	RoleID                   string             `xml:"RoleId"`
	Arn                      string             `xml:"Arn"`
	CreateDate               protocol.Timestamp `xml:"CreateDate"`
	AssumeRolePolicyDocument string             `xml:"AssumeRolePolicyDocument,omitempty"`
	Description              string             `xml:"Description,omitempty"`
	MaxSessionDuration       int32              `xml:"MaxSessionDuration,omitempty"`
	PermissionsBoundary      *boundaryOut       `xml:"PermissionsBoundary,omitempty"`
	Tags                     *members[Tag]      `xml:"Tags,omitempty"`
	// RoleLastUsed is only GetRole's, and there always: the sandbox never records a use, and
	// IAM answers an empty element for a role not used in its tracking period.
	RoleLastUsed *struct{} `xml:"RoleLastUsed,omitempty"`
}

type boundaryOut struct {
	PermissionsBoundaryType string `xml:"PermissionsBoundaryType"`
	PermissionsBoundaryArn  string `xml:"PermissionsBoundaryArn"`
}

// members is a query-protocol list that is left out when empty, as IAM leaves it out
// (encoding/xml writes the parent of an empty "A>member,omitempty" list).
type members[T any] struct {
	Member []T `xml:"member"`
}

func listOf[T any](items []T) *members[T] {
	if len(items) == 0 {
		return nil
	}
	return &members[T]{Member: slices.Clone(items)}
}

type roleOutput struct {
	Role roleOut `xml:"Role"`
}

type createRoleInput struct {
	Path                     string `json:"Path"`
	RoleName                 string `json:"RoleName"`
	AssumeRolePolicyDocument string `json:"AssumeRolePolicyDocument"`
	Description              string `json:"Description"`
	MaxSessionDuration       *int32 `json:"MaxSessionDuration"`
	PermissionsBoundary      string `json:"PermissionsBoundary"`
	Tags                     []Tag  `json:"Tags"`
}

type roleNameInput struct {
	RoleName string `json:"RoleName"`
}

type listInput struct {
	PathPrefix string `json:"PathPrefix"`
	RoleName   string `json:"RoleName"`
	Marker     string `json:"Marker"`
	MaxItems   *int32 `json:"MaxItems"`
}

type listRolesOutput struct {
	Roles       []roleOut `xml:"Roles>member"`
	IsTruncated bool      `xml:"IsTruncated"`
	Marker      string    `xml:"Marker,omitempty"`
}

type updateAssumeRolePolicyInput struct {
	RoleName       string `json:"RoleName"`
	PolicyDocument string `json:"PolicyDocument"`
}

type updateRoleInput struct {
	RoleName           string  `json:"RoleName"`
	Description        *string `json:"Description"`
	MaxSessionDuration *int32  `json:"MaxSessionDuration"`
}

type rolePolicyInput struct {
	RoleName       string `json:"RoleName"`
	PolicyName     string `json:"PolicyName"`
	PolicyDocument string `json:"PolicyDocument"`
}

type getRolePolicyOutput struct {
	RoleName       string `xml:"RoleName"`
	PolicyName     string `xml:"PolicyName"`
	PolicyDocument string `xml:"PolicyDocument"`
}

type listRolePoliciesOutput struct {
	PolicyNames []string `xml:"PolicyNames>member"`
	IsTruncated bool     `xml:"IsTruncated"`
	Marker      string   `xml:"Marker,omitempty"`
}

type attachInput struct {
	RoleName  string `json:"RoleName"`
	PolicyArn string `json:"PolicyArn"`
}

type attachedPolicy struct {
	PolicyName string `xml:"PolicyName"`
	PolicyArn  string `xml:"PolicyArn"`
}

type listAttachedOutput struct {
	AttachedPolicies []attachedPolicy `xml:"AttachedPolicies>member"`
	IsTruncated      bool             `xml:"IsTruncated"`
	Marker           string           `xml:"Marker,omitempty"`
}

type tagRoleInput struct {
	RoleName string   `json:"RoleName"`
	Tags     []Tag    `json:"Tags"`
	TagKeys  []string `json:"TagKeys"`
}

type listTagsOutput struct {
	Tags        []Tag  `xml:"Tags>member"`
	IsTruncated bool   `xml:"IsTruncated"`
	Marker      string `xml:"Marker,omitempty"`
}

type updateRoleDescriptionInput struct {
	RoleName    string `json:"RoleName"`
	Description string `json:"Description"`
}

type boundaryInput struct {
	RoleName            string `json:"RoleName"`
	PermissionsBoundary string `json:"PermissionsBoundary"`
}

type listInstanceProfilesOutput struct {
	InstanceProfiles []struct{} `xml:"InstanceProfiles>member"`
	IsTruncated      bool       `xml:"IsTruncated"`
}

type oidcThumbprintInput struct {
	Arn            string   `json:"OpenIDConnectProviderArn"`
	ThumbprintList []string `json:"ThumbprintList"`
}

type oidcClientIDInput struct {
	Arn      string `json:"OpenIDConnectProviderArn"`
	ClientID string `json:"ClientID"`
}

type oidcTagInput struct {
	Arn      string   `json:"OpenIDConnectProviderArn"`
	Tags     []Tag    `json:"Tags"`
	TagKeys  []string `json:"TagKeys"`
	Marker   string   `json:"Marker"`
	MaxItems *int32   `json:"MaxItems"`
}

type createOIDCInput struct {
	URL            string   `json:"Url"`
	ClientIDList   []string `json:"ClientIDList"`
	ThumbprintList []string `json:"ThumbprintList"`
	Tags           []Tag    `json:"Tags"`
}

type createOIDCOutput struct {
	Arn  string        `xml:"OpenIDConnectProviderArn"`
	Tags *members[Tag] `xml:"Tags,omitempty"`
}

type oidcArnInput struct {
	Arn string `json:"OpenIDConnectProviderArn"`
}

type getOIDCOutput struct {
	URL            string             `xml:"Url"`
	ClientIDList   []string           `xml:"ClientIDList>member"`
	ThumbprintList []string           `xml:"ThumbprintList>member"`
	CreateDate     protocol.Timestamp `xml:"CreateDate"`
	Tags           *members[Tag]      `xml:"Tags,omitempty"`
}

type listOIDCOutput struct {
	List []struct {
		Arn string `xml:"Arn"`
	} `xml:"OpenIDConnectProviderList>member"`
}

// Validation, as the model's constraints and IAM's documentation give it.

var (
	roleNameRE   = regexp.MustCompile(`^[\w+=,.@-]{1,64}$`)
	policyNameRE = regexp.MustCompile(`^[\w+=,.@-]{1,128}$`)
	pathRE       = regexp.MustCompile(`^(/|/[\x21-\x7E]{0,510}/)$`)
	policyArnRE  = regexp.MustCompile(`^arn:aws[a-z-]*:iam::(aws|\d{12}):policy/[\x21-\x7E]+$`)
)

func checkRoleName(name string) *apiError {
	if name == "" {
		return validationError("1 validation error detected: Value null at 'roleName' failed to satisfy constraint: Member must not be null")
	}
	if !roleNameRE.MatchString(name) {
		return validationError("1 validation error detected: Value '%s' at 'roleName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+ and have length between 1 and 64", name)
	}
	return nil
}

// policyKind is what a policy document is for: IAM checks the two kinds' statements differently.
type policyKind int

const (
	trustPolicy       policyKind = iota // a role's assume-role policy: whom it trusts
	permissionsPolicy                   // an identity policy: what the role may do, and to what
)

// checkPolicy checks a policy document's form, as IAM does before storing it: JSON, an object,
// a known Version (if given: it defaults to 2008-10-17), and Statement, each with an Effect of
// Allow or Deny and an Action or NotAction. A trust policy's statements name a Principal; a
// permissions policy's name a Resource (or NotResource) and no principal. Whether the
// statements mean anything is not checked.
func checkPolicy(doc string, kind policyKind) *apiError {
	malformed := func(msg string) *apiError { return protocol.Errorf("MalformedPolicyDocumentException", "%s", msg) }
	if strings.TrimSpace(doc) == "" {
		return validationError("1 validation error detected: Value null at 'policyDocument' failed to satisfy constraint: Member must not be null")
	}
	var p map[string]any
	if err := json.Unmarshal([]byte(doc), &p); err != nil {
		return malformed("Syntax errors in policy.")
	}
	if v, ok := p["Version"]; ok && v != "2012-10-17" && v != "2008-10-17" {
		return malformed("The policy must contain a valid version string")
	}
	var statements []any
	switch st := p["Statement"].(type) {
	case map[string]any:
		statements = []any{st}
	case []any:
		statements = st
	default:
		return malformed("Missing required field Statement")
	}
	if len(statements) == 0 {
		return malformed("Policy statement must contain actions.")
	}
	for _, e := range statements {
		m, ok := e.(map[string]any)
		if !ok {
			return malformed("Syntax errors in policy.")
		}
		if eff := m["Effect"]; eff != "Allow" && eff != "Deny" {
			return malformed("Missing required field Effect")
		}
		if _, a := m["Action"]; !a {
			if _, na := m["NotAction"]; !na {
				return malformed("Policy statement must contain actions.")
			}
		}
		_, principal := m["Principal"]
		_, notPrincipal := m["NotPrincipal"]
		_, resource := m["Resource"]
		_, notResource := m["NotResource"]
		switch {
		case kind == trustPolicy && !principal && !notPrincipal:
			return malformed("Missing required field Principal")
		case kind == permissionsPolicy && (principal || notPrincipal):
			return malformed("Policy document should not specify a principal.")
		case kind == permissionsPolicy && !resource && !notResource:
			return malformed("Policy statement must contain resources.")
		}
	}
	return nil
}

// encodePolicy is a policy document as IAM answers it: URL-encoded (RFC 3986).
func encodePolicy(doc string) string {
	return strings.ReplaceAll(url.QueryEscape(doc), "+", "%20")
}

func (s *Service) roleArn(r *role) string {
	return "arn:aws:iam::" + s.cfg.Account + ":role" + r.Path + r.Name
}

func (s *Service) roleOut(r *role, withTrust bool) roleOut {
	out := roleOut{Path: r.Path, RoleName: r.Name, RoleID: r.ID, Arn: s.roleArn(r), CreateDate: protocol.Timestamp{Time: r.Created},
		Description: r.Description, MaxSessionDuration: r.MaxSession, Tags: listOf(r.Tags)}
	if r.Boundary != "" {
		out.PermissionsBoundary = &boundaryOut{PermissionsBoundaryType: "PermissionsBoundaryPolicy", PermissionsBoundaryArn: r.Boundary}
	}
	if withTrust {
		out.AssumeRolePolicyDocument = encodePolicy(r.Trust)
	}
	return out
}

// uniqueID is an IAM unique id: a prefix naming the kind (AROA: role) and 17 characters.
func uniqueID(prefix string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	b := make([]byte, 17)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return prefix + string(b)
}

// findRole finds a role by name; the caller holds s.mu.
func (s *Service) findRole(name string) (*role, *apiError) {
	if err := checkRoleName(name); err != nil {
		return nil, err
	}
	r, ok := s.st.Roles[strings.ToLower(name)]
	if !ok {
		return nil, noSuchEntity("The role with name %s cannot be found.", name)
	}
	return r, nil
}

func checkTags(tags []Tag) *apiError {
	if len(tags) > 50 {
		return protocol.Errorf("LimitExceededException", "Cannot exceed quota for TagsPerRole: 50.")
	}
	for _, t := range tags {
		if t.Key == "" || len(t.Key) > 128 || len(t.Value) > 256 {
			return validationError("1 validation error detected: Value at 'tags' failed to satisfy constraint: tag keys are 1 to 128 characters and values at most 256")
		}
	}
	return nil
}

func (s *Service) createRole(_ context.Context, _ *protocol.Request, in *createRoleInput) (*roleOutput, *apiError) {
	if err := checkRoleName(in.RoleName); err != nil {
		return nil, err
	}
	if in.Path == "" {
		in.Path = "/"
	}
	if !pathRE.MatchString(in.Path) {
		return nil, validationError("The specified value for path is invalid. It must begin and end with / and contain only alphanumeric characters and/or / characters.")
	}
	if err := checkPolicy(in.AssumeRolePolicyDocument, trustPolicy); err != nil {
		return nil, err
	}
	max := int32(3600)
	if in.MaxSessionDuration != nil {
		if *in.MaxSessionDuration < 3600 || *in.MaxSessionDuration > 43200 {
			return nil, validationError("1 validation error detected: Value '%d' at 'maxSessionDuration' failed to satisfy constraint: Member must have value between 3600 and 43200", *in.MaxSessionDuration)
		}
		max = *in.MaxSessionDuration
	}
	if len(in.Description) > 1000 {
		return nil, validationError("1 validation error detected: Value at 'description' failed to satisfy constraint: Member must have length less than or equal to 1000")
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	if in.PermissionsBoundary != "" {
		if err := checkPolicyArn(in.PermissionsBoundary); err != nil {
			return nil, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := strings.ToLower(in.RoleName)
	if _, ok := s.st.Roles[key]; ok {
		return nil, protocol.Errorf("EntityAlreadyExistsException", "Role with name %s already exists.", in.RoleName)
	}
	r := &role{Name: in.RoleName, ID: uniqueID("AROA"), Path: in.Path, Trust: in.AssumeRolePolicyDocument, Description: in.Description,
		MaxSession: max, Created: s.cfg.Now().UTC().Truncate(time.Second), Inline: map[string]string{}, Boundary: in.PermissionsBoundary, Tags: in.Tags}
	s.st.Roles[key] = r
	s.save()
	return &roleOutput{Role: s.roleOut(r, true)}, nil
}

func (s *Service) getRole(_ context.Context, _ *protocol.Request, in *roleNameInput) (*roleOutput, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.findRole(in.RoleName)
	if err != nil {
		return nil, err
	}
	out := s.roleOut(r, true)
	out.RoleLastUsed = &struct{}{}
	return &roleOutput{Role: out}, nil
}

func (s *Service) deleteRole(_ context.Context, _ *protocol.Request, in *roleNameInput) (*struct{}, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.findRole(in.RoleName)
	if err != nil {
		return nil, err
	}
	if len(r.Inline) > 0 {
		return nil, protocol.Errorf("DeleteConflictException", "Cannot delete entity, must delete policies first.")
	}
	if len(r.Attached) > 0 {
		return nil, protocol.Errorf("DeleteConflictException", "Cannot delete entity, must detach all policies first.")
	}
	delete(s.st.Roles, strings.ToLower(r.Name))
	s.save()
	return nil, nil
}

// page cuts a sorted list at marker (the first item of the page, as IAM's opaque markers
// resume) into at most maxItems items.
func page[T any](items []T, key func(T) string, marker string, maxItems *int32) ([]T, bool, string, *apiError) {
	n := 100
	if maxItems != nil {
		if *maxItems < 1 || *maxItems > 1000 {
			return nil, false, "", validationError("1 validation error detected: Value '%d' at 'maxItems' failed to satisfy constraint: Member must have value between 1 and 1000", *maxItems)
		}
		n = int(*maxItems)
	}
	start := 0
	if marker != "" {
		start = slices.IndexFunc(items, func(t T) bool { return key(t) >= marker })
		if start < 0 {
			start = len(items)
		}
	}
	items = items[start:]
	if len(items) <= n {
		return items, false, "", nil
	}
	return items[:n], true, key(items[n]), nil
}

func (s *Service) listRoles(_ context.Context, _ *protocol.Request, in *listInput) (*listRolesOutput, *apiError) {
	prefix := in.PathPrefix
	if prefix == "" {
		prefix = "/"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var roles []*role
	for _, r := range s.st.Roles {
		if strings.HasPrefix(r.Path, prefix) {
			roles = append(roles, r)
		}
	}
	slices.SortFunc(roles, func(a, b *role) int { return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)) })
	got, more, marker, err := page(roles, func(r *role) string { return strings.ToLower(r.Name) }, in.Marker, in.MaxItems)
	if err != nil {
		return nil, err
	}
	out := &listRolesOutput{IsTruncated: more, Marker: marker}
	for _, r := range got {
		// ListRoles answers neither tags nor the permissions boundary (the model says so of both).
		o := s.roleOut(r, true)
		o.Tags, o.PermissionsBoundary = nil, nil
		out.Roles = append(out.Roles, o)
	}
	return out, nil
}

func (s *Service) updateAssumeRolePolicy(_ context.Context, _ *protocol.Request, in *updateAssumeRolePolicyInput) (*struct{}, *apiError) {
	if err := checkPolicy(in.PolicyDocument, trustPolicy); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.findRole(in.RoleName)
	if err != nil {
		return nil, err
	}
	r.Trust = in.PolicyDocument
	s.save()
	return nil, nil
}

func (s *Service) updateRole(_ context.Context, _ *protocol.Request, in *updateRoleInput) (*struct{}, *apiError) {
	if in.MaxSessionDuration != nil && (*in.MaxSessionDuration < 3600 || *in.MaxSessionDuration > 43200) {
		return nil, validationError("1 validation error detected: Value '%d' at 'maxSessionDuration' failed to satisfy constraint: Member must have value between 3600 and 43200", *in.MaxSessionDuration)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.findRole(in.RoleName)
	if err != nil {
		return nil, err
	}
	if in.Description != nil {
		r.Description = *in.Description
	}
	if in.MaxSessionDuration != nil {
		r.MaxSession = *in.MaxSessionDuration
	}
	s.save()
	return &struct{}{}, nil
}

func checkPolicyName(name string) *apiError {
	if !policyNameRE.MatchString(name) {
		return validationError("1 validation error detected: Value '%s' at 'policyName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+ and have length between 1 and 128", name)
	}
	return nil
}

func (s *Service) putRolePolicy(_ context.Context, _ *protocol.Request, in *rolePolicyInput) (*struct{}, *apiError) {
	if err := checkPolicyName(in.PolicyName); err != nil {
		return nil, err
	}
	if err := checkPolicy(in.PolicyDocument, permissionsPolicy); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.findRole(in.RoleName)
	if err != nil {
		return nil, err
	}
	r.Inline[in.PolicyName] = in.PolicyDocument
	s.save()
	return nil, nil
}

func (s *Service) getRolePolicy(_ context.Context, _ *protocol.Request, in *rolePolicyInput) (*getRolePolicyOutput, *apiError) {
	if err := checkPolicyName(in.PolicyName); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.findRole(in.RoleName)
	if err != nil {
		return nil, err
	}
	doc, ok := r.Inline[in.PolicyName]
	if !ok {
		return nil, noSuchEntity("The role policy with name %s cannot be found.", in.PolicyName)
	}
	return &getRolePolicyOutput{RoleName: r.Name, PolicyName: in.PolicyName, PolicyDocument: encodePolicy(doc)}, nil
}

func (s *Service) deleteRolePolicy(_ context.Context, _ *protocol.Request, in *rolePolicyInput) (*struct{}, *apiError) {
	if err := checkPolicyName(in.PolicyName); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.findRole(in.RoleName)
	if err != nil {
		return nil, err
	}
	if _, ok := r.Inline[in.PolicyName]; !ok {
		return nil, noSuchEntity("The role policy with name %s cannot be found.", in.PolicyName)
	}
	delete(r.Inline, in.PolicyName)
	s.save()
	return nil, nil
}

func (s *Service) listRolePolicies(_ context.Context, _ *protocol.Request, in *listInput) (*listRolePoliciesOutput, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.findRole(in.RoleName)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(r.Inline))
	for n := range r.Inline {
		names = append(names, n)
	}
	slices.Sort(names)
	got, more, marker, perr := page(names, func(n string) string { return n }, in.Marker, in.MaxItems)
	if perr != nil {
		return nil, perr
	}
	return &listRolePoliciesOutput{PolicyNames: got, IsTruncated: more, Marker: marker}, nil
}

func checkPolicyArn(arn string) *apiError {
	if !policyArnRE.MatchString(arn) {
		return protocol.Errorf("InvalidInputException", "ARN %s is not valid.", arn)
	}
	return nil
}

func (s *Service) attachRolePolicy(_ context.Context, _ *protocol.Request, in *attachInput) (*struct{}, *apiError) {
	if err := checkPolicyArn(in.PolicyArn); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.findRole(in.RoleName)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(r.Attached, in.PolicyArn) {
		if len(r.Attached) >= 20 {
			return nil, protocol.Errorf("LimitExceededException", "Cannot exceed quota for PoliciesPerRole: 20")
		}
		r.Attached = append(r.Attached, in.PolicyArn)
		s.save()
	}
	return nil, nil
}

func (s *Service) detachRolePolicy(_ context.Context, _ *protocol.Request, in *attachInput) (*struct{}, *apiError) {
	if err := checkPolicyArn(in.PolicyArn); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.findRole(in.RoleName)
	if err != nil {
		return nil, err
	}
	i := slices.Index(r.Attached, in.PolicyArn)
	if i < 0 {
		return nil, noSuchEntity("Policy %s was not found.", in.PolicyArn)
	}
	r.Attached = slices.Delete(r.Attached, i, i+1)
	s.save()
	return nil, nil
}

func (s *Service) listAttachedRolePolicies(_ context.Context, _ *protocol.Request, in *listInput) (*listAttachedOutput, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.findRole(in.RoleName)
	if err != nil {
		return nil, err
	}
	var all []attachedPolicy
	for _, arn := range r.Attached {
		if in.PathPrefix != "" && !strings.Contains(arn, ":policy"+in.PathPrefix) {
			continue
		}
		all = append(all, attachedPolicy{PolicyName: arn[strings.LastIndex(arn, "/")+1:], PolicyArn: arn})
	}
	slices.SortFunc(all, func(a, b attachedPolicy) int { return strings.Compare(a.PolicyArn, b.PolicyArn) })
	got, more, marker, perr := page(all, func(p attachedPolicy) string { return p.PolicyArn }, in.Marker, in.MaxItems)
	if perr != nil {
		return nil, perr
	}
	return &listAttachedOutput{AttachedPolicies: got, IsTruncated: more, Marker: marker}, nil
}

func (s *Service) tagRole(_ context.Context, _ *protocol.Request, in *tagRoleInput) (*struct{}, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.findRole(in.RoleName)
	if err != nil {
		return nil, err
	}
	tags, terr := mergeTags(r.Tags, in.Tags)
	if terr != nil {
		return nil, terr
	}
	r.Tags = tags
	s.save()
	return nil, nil
}

func (s *Service) untagRole(_ context.Context, _ *protocol.Request, in *tagRoleInput) (*struct{}, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.findRole(in.RoleName)
	if err != nil {
		return nil, err
	}
	r.Tags = slices.DeleteFunc(r.Tags, func(t Tag) bool { return slices.Contains(in.TagKeys, t.Key) })
	s.save()
	return nil, nil
}

func (s *Service) listRoleTags(_ context.Context, _ *protocol.Request, in *listInput) (*listTagsOutput, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.findRole(in.RoleName)
	if err != nil {
		return nil, err
	}
	got, more, marker, perr := pageByIndex(r.Tags, in.Marker, in.MaxItems)
	if perr != nil {
		return nil, perr
	}
	return &listTagsOutput{Tags: got, IsTruncated: more, Marker: marker}, nil
}

// pageByIndex pages a list kept in its own order (tags, as they were added); the marker is the
// index the next page starts at.
func pageByIndex[T any](items []T, marker string, maxItems *int32) ([]T, bool, string, *apiError) {
	n := 100
	if maxItems != nil {
		if *maxItems < 1 || *maxItems > 1000 {
			return nil, false, "", validationError("1 validation error detected: Value '%d' at 'maxItems' failed to satisfy constraint: Member must have value between 1 and 1000", *maxItems)
		}
		n = int(*maxItems)
	}
	start := 0
	if marker != "" {
		i, err := strconv.Atoi(marker)
		if err != nil || i < 0 {
			return nil, false, "", protocol.Errorf("InvalidInputException", "Invalid Marker.")
		}
		start = min(i, len(items))
	}
	items = items[start:]
	if len(items) <= n {
		return slices.Clone(items), false, "", nil
	}
	return slices.Clone(items[:n]), true, strconv.Itoa(start + n), nil
}

// providerArn is an OIDC provider's ARN: its URL without the scheme.
func (s *Service) providerArn(u string) string {
	return "arn:aws:iam::" + s.cfg.Account + ":oidc-provider/" + strings.TrimPrefix(u, "https://")
}

func (s *Service) createOIDCProvider(_ context.Context, _ *protocol.Request, in *createOIDCInput) (*createOIDCOutput, *apiError) {
	u, perr := url.Parse(in.URL)
	if in.URL == "" || perr != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, validationError("Invalid value for URL: %q (it must begin with https:// and have no query or fragment)", in.URL)
	}
	if err := checkThumbprints(in.ThumbprintList); err != nil {
		return nil, err
	}
	for _, id := range in.ClientIDList {
		if err := checkClientID(id); err != nil {
			return nil, err
		}
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	arn := s.providerArn(strings.TrimSuffix(u.String(), "/"))
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.st.Providers[arn]; ok {
		return nil, protocol.Errorf("EntityAlreadyExistsException", "Provider with url %s already exists.", in.URL)
	}
	s.st.Providers[arn] = &provider{URL: strings.TrimPrefix(strings.TrimSuffix(u.String(), "/"), "https://"), Clients: in.ClientIDList,
		Thumbprints: in.ThumbprintList, Created: s.cfg.Now().UTC().Truncate(time.Second), Tags: in.Tags}
	s.save()
	return &createOIDCOutput{Arn: arn, Tags: listOf(in.Tags)}, nil
}

func (s *Service) findProvider(arn string) (*provider, *apiError) {
	if arn == "" {
		return nil, validationError("1 validation error detected: Value null at 'openIDConnectProviderArn' failed to satisfy constraint: Member must not be null")
	}
	p, ok := s.st.Providers[arn]
	if !ok {
		return nil, noSuchEntity("OpenIDConnect Provider not found for arn %s", arn)
	}
	return p, nil
}

func (s *Service) getOIDCProvider(_ context.Context, _ *protocol.Request, in *oidcArnInput) (*getOIDCOutput, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.findProvider(in.Arn)
	if err != nil {
		return nil, err
	}
	return &getOIDCOutput{URL: p.URL, ClientIDList: slices.Clone(p.Clients), ThumbprintList: slices.Clone(p.Thumbprints),
		CreateDate: protocol.Timestamp{Time: p.Created}, Tags: listOf(p.Tags)}, nil
}

func (s *Service) deleteOIDCProvider(_ context.Context, _ *protocol.Request, in *oidcArnInput) (*struct{}, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.findProvider(in.Arn); err != nil {
		return nil, err
	}
	delete(s.st.Providers, in.Arn)
	s.save()
	return nil, nil
}

func (s *Service) listOIDCProviders(context.Context, *protocol.Request, *struct{}) (*listOIDCOutput, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := &listOIDCOutput{}
	for _, arn := range slices.Sorted(maps.Keys(s.st.Providers)) {
		out.List = append(out.List, struct {
			Arn string `xml:"Arn"`
		}{arn})
	}
	return out, nil
}

func checkThumbprints(list []string) *apiError {
	for _, th := range list {
		if len(th) != 40 {
			return validationError("1 validation error detected: Value '%s' at 'thumbprintList' failed to satisfy constraint: Member must have length 40", th)
		}
		if _, err := strconv.ParseUint(th[:8], 16, 64); err != nil {
			return protocol.Errorf("InvalidInputException", "Thumbprint %s is not a hexadecimal SHA-1 fingerprint.", th)
		}
	}
	if len(list) > 5 {
		return validationError("1 validation error detected: Value at 'thumbprintList' failed to satisfy constraint: Member must have length less than or equal to 5")
	}
	return nil
}

func checkClientID(id string) *apiError {
	if id == "" || len(id) > 255 {
		return validationError("1 validation error detected: Value '%s' at 'clientID' failed to satisfy constraint: Member must have length between 1 and 255", id)
	}
	return nil
}

func (s *Service) updateRoleDescription(_ context.Context, _ *protocol.Request, in *updateRoleDescriptionInput) (*roleOutput, *apiError) {
	if len(in.Description) > 1000 {
		return nil, validationError("1 validation error detected: Value at 'description' failed to satisfy constraint: Member must have length less than or equal to 1000")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.findRole(in.RoleName)
	if err != nil {
		return nil, err
	}
	r.Description = in.Description
	s.save()
	return &roleOutput{Role: s.roleOut(r, true)}, nil
}

func (s *Service) putRolePermissionsBoundary(_ context.Context, _ *protocol.Request, in *boundaryInput) (*struct{}, *apiError) {
	if err := checkPolicyArn(in.PermissionsBoundary); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.findRole(in.RoleName)
	if err != nil {
		return nil, err
	}
	r.Boundary = in.PermissionsBoundary
	s.save()
	return nil, nil
}

// deleteRolePermissionsBoundary removes a role's boundary; a role without one is left as it is.
func (s *Service) deleteRolePermissionsBoundary(_ context.Context, _ *protocol.Request, in *roleNameInput) (*struct{}, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.findRole(in.RoleName)
	if err != nil {
		return nil, err
	}
	r.Boundary = ""
	s.save()
	return nil, nil
}

// listInstanceProfilesForRole answers an empty list for an existing role: the sandbox has no
// instance profiles (tools such as Terraform ask before deleting a role, to detach it from them).
func (s *Service) listInstanceProfilesForRole(_ context.Context, _ *protocol.Request, in *listInput) (*listInstanceProfilesOutput, *apiError) {
	if _, _, _, err := pageByIndex([]struct{}{}, in.Marker, in.MaxItems); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.findRole(in.RoleName); err != nil {
		return nil, err
	}
	return &listInstanceProfilesOutput{}, nil
}

func (s *Service) updateOIDCThumbprint(_ context.Context, _ *protocol.Request, in *oidcThumbprintInput) (*struct{}, *apiError) {
	if err := checkThumbprints(in.ThumbprintList); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.findProvider(in.Arn)
	if err != nil {
		return nil, err
	}
	p.Thumbprints = slices.Clone(in.ThumbprintList)
	s.save()
	return nil, nil
}

// addOIDCClientID adds a client id (audience); adding one already there changes nothing, as
// IAM documents.
func (s *Service) addOIDCClientID(_ context.Context, _ *protocol.Request, in *oidcClientIDInput) (*struct{}, *apiError) {
	if err := checkClientID(in.ClientID); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.findProvider(in.Arn)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(p.Clients, in.ClientID) {
		if len(p.Clients) >= 100 {
			return nil, protocol.Errorf("LimitExceededException", "Cannot exceed quota for ClientIdsPerOpenIdConnectProvider: 100")
		}
		p.Clients = append(p.Clients, in.ClientID)
		s.save()
	}
	return nil, nil
}

// removeOIDCClientID removes a client id; removing one not there is not an error (IAM: "This
// operation is idempotent").
func (s *Service) removeOIDCClientID(_ context.Context, _ *protocol.Request, in *oidcClientIDInput) (*struct{}, *apiError) {
	if err := checkClientID(in.ClientID); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.findProvider(in.Arn)
	if err != nil {
		return nil, err
	}
	p.Clients = slices.DeleteFunc(p.Clients, func(c string) bool { return c == in.ClientID })
	s.save()
	return nil, nil
}

func (s *Service) tagOIDCProvider(_ context.Context, _ *protocol.Request, in *oidcTagInput) (*struct{}, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.findProvider(in.Arn)
	if err != nil {
		return nil, err
	}
	tags, terr := mergeTags(p.Tags, in.Tags)
	if terr != nil {
		return nil, terr
	}
	p.Tags = tags
	s.save()
	return nil, nil
}

func (s *Service) untagOIDCProvider(_ context.Context, _ *protocol.Request, in *oidcTagInput) (*struct{}, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.findProvider(in.Arn)
	if err != nil {
		return nil, err
	}
	p.Tags = slices.DeleteFunc(p.Tags, func(t Tag) bool { return slices.Contains(in.TagKeys, t.Key) })
	s.save()
	return nil, nil
}

func (s *Service) listOIDCProviderTags(_ context.Context, _ *protocol.Request, in *oidcTagInput) (*listTagsOutput, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.findProvider(in.Arn)
	if err != nil {
		return nil, err
	}
	got, more, marker, perr := pageByIndex(p.Tags, in.Marker, in.MaxItems)
	if perr != nil {
		return nil, perr
	}
	return &listTagsOutput{Tags: got, IsTruncated: more, Marker: marker}, nil
}

// mergeTags is TagRole's and TagOpenIDConnectProvider's change: each tag added, or replacing the
// value of the one with its key; the result checked against IAM's limits.
func mergeTags(have, add []Tag) ([]Tag, *apiError) {
	tags := slices.Clone(have)
	for _, t := range add {
		if i := slices.IndexFunc(tags, func(x Tag) bool { return x.Key == t.Key }); i >= 0 {
			tags[i] = t
		} else {
			tags = append(tags, t)
		}
	}
	if err := checkTags(tags); err != nil {
		return nil, err
	}
	return tags, nil
}
