package lambda

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/aviary-deploy/aviary/sandbox/protocol"
)

// Resource-based policies: AddPermission, GetPolicy and RemovePermission.
//
// What the sandbox enforces is the policy's own bookkeeping, as AWS does: statement ids are
// unique per policy (ResourceConflictException), a qualifier names an existing version or alias
// (each has its own policy), the RevisionId precondition holds (PreconditionFailedException), the
// policy stays within 20 KB (PolicyLengthExceededException), and a function's policy lives and
// dies with the function — deleting a function deletes its permissions, so recreating it by
// hand leaves it with none (seed 000's trap). Invoke is not authorized against the policy: the
// sandbox verifies no signatures, every caller is the account itself, and a resource policy
// grants other principals, never restricts the account.

var (
	statementIDRE = regexp.MustCompile(`^[a-zA-Z0-9-_.]{1,100}$`)
	actionRE      = regexp.MustCompile(`^(lambda:[*]|lambda:[a-zA-Z]+|[*])$`)
	accountRE     = regexp.MustCompile(`^\d{12}$`)
)

const maxPolicySize = 20480

// statement is one statement of a function's resource-based policy.
type statement struct {
	Sid       string         `json:"Sid"`
	Effect    string         `json:"Effect"`
	Principal any            `json:"Principal"`
	Action    string         `json:"Action"`
	Resource  string         `json:"Resource"`
	Condition map[string]any `json:"Condition,omitempty"`
}

type addPermissionInput struct {
	StatementID         string  `json:"StatementId"`
	Action              string  `json:"Action"`
	Principal           string  `json:"Principal"`
	SourceArn           string  `json:"SourceArn"`
	SourceAccount       string  `json:"SourceAccount"`
	EventSourceToken    string  `json:"EventSourceToken"`
	RevisionID          *string `json:"RevisionId"`
	PrincipalOrgID      string  `json:"PrincipalOrgID"`
	FunctionURLAuthType string  `json:"FunctionUrlAuthType"`
	Qualifier           string  `json:"-" aws:"query:Qualifier"`
}

type addPermissionOutput struct {
	Statement string `json:"Statement"`
}

type getPolicyOutput struct {
	Policy     string `json:"Policy"`
	RevisionID string `json:"RevisionId"`
}

func (s *Service) permissionRoutes(api *protocol.Service) {
	protocol.Route(api, "POST /2015-03-31/functions/{FunctionName}/policy", "AddPermission", http.StatusCreated,
		func(_ context.Context, req *protocol.Request, in *addPermissionInput) (*addPermissionOutput, *APIError) {
			return ptr(s.addPermission(req.Label("FunctionName"), req.Query().Get("Qualifier"), *in))
		})
	protocol.Route(api, "GET /2015-03-31/functions/{FunctionName}/policy", "GetPolicy", 0,
		func(_ context.Context, req *protocol.Request, _ *struct{}) (*getPolicyOutput, *APIError) {
			return ptr(s.getPolicy(req.Label("FunctionName"), req.Query().Get("Qualifier")))
		})
	protocol.Route(api, "DELETE /2015-03-31/functions/{FunctionName}/policy/{StatementId}", "RemovePermission", http.StatusNoContent,
		func(_ context.Context, req *protocol.Request, _ *struct{}) (*struct{}, *APIError) {
			var rev *string
			if q := req.Query(); q.Has("RevisionId") {
				r := q.Get("RevisionId")
				rev = &r
			}
			return nil, s.removePermission(req.Label("FunctionName"), req.Query().Get("Qualifier"), req.Label("StatementId"), rev)
		})
}

// policyTarget finds the function and qualifier a policy operation names, and the revision its
// RevisionId precondition compares with; the caller holds s.mu.
func (s *Service) policyTarget(raw, qualifier string) (*function, string, *string, *APIError) {
	f, q, err := s.lookup(raw)
	if err != nil {
		return nil, "", nil, err
	}
	if q, err = mergeQualifier(q, qualifier); err != nil {
		return nil, "", nil, err
	}
	if q == latest {
		return nil, "", nil, invalidParam("We currently do not support adding policies for $LATEST.")
	}
	if q == "" {
		return f, "", &f.Latest.RevisionID, nil
	}
	v, a, err := s.resolve(f, q)
	if err != nil {
		return nil, "", nil, notFound("The resource you requested does not exist.")
	}
	if a != nil {
		return f, q, &a.RevisionID, nil
	}
	return f, q, &v.RevisionID, nil
}

func (s *Service) principal(p string) any {
	switch {
	case p == "*":
		return "*"
	case accountRE.MatchString(p):
		return map[string]string{"AWS": "arn:aws:iam::" + p + ":root"}
	case strings.HasPrefix(p, "arn:"):
		return map[string]string{"AWS": p}
	}
	return map[string]string{"Service": p}
}

func (s *Service) addPermission(raw, qualifier string, in addPermissionInput) (addPermissionOutput, *APIError) {
	switch {
	case !statementIDRE.MatchString(in.StatementID):
		return addPermissionOutput{}, validation("statementId", in.StatementID, `Member must satisfy regular expression pattern: ([a-zA-Z0-9-_.]+)`)
	case !actionRE.MatchString(in.Action):
		return addPermissionOutput{}, validation("action", in.Action, `Member must satisfy regular expression pattern: (lambda:[*]|lambda:[a-zA-Z]+|[*])`)
	case in.Principal == "":
		return addPermissionOutput{}, validation("principal", "null", "Member must not be null")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f, q, rev, err := s.policyTarget(raw, qualifier)
	if err != nil {
		return addPermissionOutput{}, err
	}
	if err := checkRevision(in.RevisionID, *rev, "GetPolicy"); err != nil {
		return addPermissionOutput{}, err
	}
	if slices.ContainsFunc(f.Policy[q], func(st statement) bool { return st.Sid == in.StatementID }) {
		return addPermissionOutput{}, conflict("The statement id (%s) provided already exists. Please provide a new statement id, or remove the existing statement.", in.StatementID)
	}
	st := statement{Sid: in.StatementID, Effect: "Allow", Principal: s.principal(in.Principal), Action: in.Action,
		Resource: s.qualifiedARN(f.Name, q)}
	cond := map[string]any{}
	addCond := func(op, key, val string) {
		if val == "" {
			return
		}
		m, _ := cond[op].(map[string]string)
		if m == nil {
			m = map[string]string{}
			cond[op] = m
		}
		m[key] = val
	}
	addCond("ArnLike", "AWS:SourceArn", in.SourceArn)
	addCond("StringEquals", "AWS:SourceAccount", in.SourceAccount)
	addCond("StringEquals", "lambda:EventSourceToken", in.EventSourceToken)
	addCond("StringEquals", "aws:PrincipalOrgID", in.PrincipalOrgID)
	addCond("StringEquals", "lambda:FunctionUrlAuthType", in.FunctionURLAuthType)
	if len(cond) > 0 {
		st.Condition = cond
	}
	stmts := append(slices.Clone(f.Policy[q]), st)
	if doc := policyDocument(stmts); len(doc) > maxPolicySize {
		return addPermissionOutput{}, apiErr("PolicyLengthExceededException", "The final policy size (%d) is bigger than the limit (%d).", len(doc), maxPolicySize)
	}
	if f.Policy == nil {
		f.Policy = map[string][]statement{}
	}
	f.Policy[q] = stmts
	*rev = newRevisionID() // a policy change is a change of the function (or alias, or version)
	s.save()
	b, _ := json.Marshal(st)
	return addPermissionOutput{Statement: string(b)}, nil
}

func policyDocument(stmts []statement) string {
	b, _ := json.Marshal(struct {
		Version   string      `json:"Version"`
		ID        string      `json:"Id"`
		Statement []statement `json:"Statement"`
	}{"2012-10-17", "default", stmts})
	return string(b)
}

func (s *Service) getPolicy(raw, qualifier string) (getPolicyOutput, *APIError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, q, rev, err := s.policyTarget(raw, qualifier)
	if err != nil {
		return getPolicyOutput{}, err
	}
	if len(f.Policy[q]) == 0 {
		return getPolicyOutput{}, notFound("The resource you requested does not exist.")
	}
	return getPolicyOutput{Policy: policyDocument(f.Policy[q]), RevisionID: *rev}, nil
}

func (s *Service) removePermission(raw, qualifier, sid string, revision *string) *APIError {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, q, rev, err := s.policyTarget(raw, qualifier)
	if err != nil {
		return err
	}
	if err := checkRevision(revision, *rev, "GetPolicy"); err != nil {
		return err
	}
	i := slices.IndexFunc(f.Policy[q], func(st statement) bool { return st.Sid == sid })
	if i < 0 {
		return notFound("Statement %s is not found in resource policy.", sid)
	}
	f.Policy[q] = slices.Delete(slices.Clone(f.Policy[q]), i, i+1)
	if len(f.Policy[q]) == 0 {
		delete(f.Policy, q)
	}
	*rev = newRevisionID()
	s.save()
	return nil
}
