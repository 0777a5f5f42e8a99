package cloudformation

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/aviary-deploy/aviary/sandbox/limits"
	"github.com/aviary-deploy/aviary/sandbox/protocol"
)

// apiError is a CloudFormation error; status and query code come from the model.
type apiError = protocol.Error

func validationError(format string, args ...any) *apiError {
	return &apiError{Code: "ValidationError", Message: fmt.Sprintf(format, args...), Status: http.StatusBadRequest}
}

var stackNameRE = regexp.MustCompile(`^[a-zA-Z][-a-zA-Z0-9]{0,127}$`)

// Handler serves the CloudFormation API; l is asked about every request.
func (s *Service) Handler(l limits.Limiter) http.Handler {
	api := &protocol.Service{Name: "cloudformation", Model: apiModel, Limits: l,
		Classify: func(req *protocol.Request, in any) (string, string) {
			if n, ok := in.(interface{ stackName() string }); ok {
				return n.stackName(), ""
			}
			return "", ""
		},
	}
	protocol.Handle(api, "CreateStack", func(_ context.Context, _ *protocol.Request, in *createStackInput) (*stackIDOutput, *apiError) {
		return s.apiCreateStack(in)
	})
	protocol.Handle(api, "UpdateStack", func(_ context.Context, _ *protocol.Request, in *updateStackInput) (*stackIDOutput, *apiError) {
		return s.apiUpdateStack(in)
	})
	protocol.Handle(api, "DeleteStack", func(_ context.Context, _ *protocol.Request, in *deleteStackInput) (*struct{}, *apiError) {
		return nil, s.apiDeleteStack(in)
	})
	protocol.Handle(api, "DescribeStacks", func(_ context.Context, _ *protocol.Request, in *stackNameInput) (*describeStacksOutput, *apiError) {
		return s.describeStacks(in)
	})
	protocol.Handle(api, "DescribeStackEvents", func(_ context.Context, _ *protocol.Request, in *stackNameInput) (*describeStackEventsOutput, *apiError) {
		return s.describeStackEvents(in)
	})
	protocol.Handle(api, "DescribeStackResources", func(_ context.Context, _ *protocol.Request, in *describeStackResourcesInput) (*describeStackResourcesOutput, *apiError) {
		return s.describeStackResources(in)
	})
	protocol.Handle(api, "GetTemplate", func(_ context.Context, _ *protocol.Request, in *getTemplateInput) (*getTemplateOutput, *apiError) {
		return s.getTemplate(in)
	})
	protocol.Handle(api, "ContinueUpdateRollback", func(_ context.Context, _ *protocol.Request, in *continueUpdateRollbackInput) (*struct{}, *apiError) {
		// An empty ContinueUpdateRollbackResult, which the model's output shape requires.
		if err := s.apiContinueUpdateRollback(in); err != nil {
			return nil, err
		}
		return &struct{}{}, nil
	})
	return api
}

func (s *Service) stackARN(name string) string {
	return fmt.Sprintf("arn:aws:cloudformation:%s:%s:stack/%s/%s", s.cfg.Region, s.cfg.Account, name, uuid())
}

// newStack registers a stack (a root one when parent is nil).
func (s *Service) newStack(name, body string, params map[string]string, noEcho map[string]bool, parent *stack) *stack {
	now := s.cfg.Now()
	st := &stack{ID: s.stackARN(name), Name: name, Body: body, Params: params, NoEcho: noEcho,
		Created: now, Resources: map[string]*resource{}}
	if t, err := parseTemplate(body); err == nil {
		st.Desc = t.Description
	}
	if parent != nil {
		st.ParentID = parent.ID
		st.RootID = parent.RootID
		if st.RootID == "" {
			st.RootID = parent.ID
		}
	}
	s.locked(func() { s.stacks = append(s.stacks, st) })
	return st
}

// resolveParams gives each template parameter its value: given, previous (UsePreviousValue) or
// default.
func resolveParams(t *template, given []parameter, prev map[string]string) (map[string]string, map[string]bool, error) {
	out, noEcho := map[string]string{}, map[string]bool{}
	var unknown, missing []string
	for _, p := range given {
		if _, ok := t.Parameters[p.ParameterKey]; !ok {
			unknown = append(unknown, p.ParameterKey)
			continue
		}
		if p.UsePreviousValue {
			v, ok := prev[p.ParameterKey]
			if !ok {
				return nil, nil, tmplErr("Invalid input for parameter key %s. Cannot specify usePreviousValue as true for a parameter key not in the previous template", p.ParameterKey)
			}
			out[p.ParameterKey] = v
			continue
		}
		out[p.ParameterKey] = p.ParameterValue
	}
	if len(unknown) > 0 {
		return nil, nil, tmplErr("Parameters: [%s] do not exist in the template", strings.Join(unknown, ", "))
	}
	for _, name := range sortedKeys(t.Parameters) {
		def := t.Parameters[name]
		noEcho[name] = def.NoEcho
		if _, ok := out[name]; !ok {
			if def.Default == nil {
				missing = append(missing, name)
				continue
			}
			out[name] = *def.Default
		}
		if len(def.AllowedValues) > 0 && !slices.Contains(def.AllowedValues, out[name]) {
			return nil, nil, tmplErr("Parameter '%s' must be one of AllowedValues", name)
		}
		if def.Type == "Number" {
			if _, err := strconv.ParseFloat(out[name], 64); err != nil {
				return nil, nil, tmplErr("Parameter '%s' must be a number.", name)
			}
		}
	}
	if len(missing) > 0 {
		return nil, nil, tmplErr("Parameters: [%s] must have values", strings.Join(missing, ", "))
	}
	return out, noEcho, nil
}

// templateOf reads the template a request names: TemplateBody or TemplateURL, exactly one.
func (s *Service) templateOf(body, u string) (string, *template, *apiError) {
	switch {
	case body != "" && u != "":
		return "", nil, validationError("Specify exactly one of TemplateBody or TemplateURL.")
	case body == "" && u == "":
		return "", nil, validationError("Either Template URL or Template Body must be specified.")
	case u != "":
		b, err := s.fetchTemplate(u)
		if err != nil {
			return "", nil, validationError("%s", err.Error())
		}
		body = b
	}
	t, err := parseTemplate(body)
	if err != nil {
		return "", nil, validationError("%s", err.Error())
	}
	return body, t, nil
}

func (s *Service) apiCreateStack(in *createStackInput) (*stackIDOutput, *apiError) {
	if !stackNameRE.MatchString(in.StackName) {
		return nil, validationError("1 validation error detected: Value '%s' at 'stackName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z][-a-zA-Z0-9]*", in.StackName)
	}
	body, t, aerr := s.templateOf(in.TemplateBody, in.TemplateURL)
	if aerr != nil {
		return nil, aerr
	}
	params, noEcho, err := resolveParams(t, in.Parameters, nil)
	if err != nil {
		return nil, validationError("%s", err.Error())
	}
	if aerr := s.checkTemplate(in.StackName, t, params, in.Capabilities); aerr != nil {
		return nil, aerr
	}
	s.mu.Lock()
	exists := s.live(in.StackName) != nil
	s.mu.Unlock()
	if exists {
		return nil, &apiError{Code: "AlreadyExistsException", Message: fmt.Sprintf("Stack [%s] already exists", in.StackName)}
	}
	st := s.newStack(in.StackName, body, params, noEcho, nil)
	s.locked(func() {
		st.Disable = in.DisableRollback || in.OnFailure == "DO_NOTHING"
		st.Caps, st.Tags = in.Capabilities, in.Tags
	})
	s.setStatus(st, createInProgress, userInitiated)
	onFailureDelete := in.OnFailure == "DELETE"
	s.run(func(ctx context.Context) {
		if err := s.createStack(ctx, st, t); err != nil && onFailureDelete {
			_ = s.deleteStack(ctx, st)
		}
	})
	return &stackIDOutput{StackID: st.ID}, nil
}

// live finds the stack a name or id names, not deleted (an id finds a deleted stack too);
// the caller holds s.mu.
func (s *Service) live(nameOrID string) *stack {
	for _, st := range slices.Backward(s.stacks) {
		if st.ID == nameOrID || st.Name == nameOrID && st.Status != deleteComplete {
			return st
		}
	}
	return nil
}

func (s *Service) find(nameOrID string) (*stack, *apiError) {
	if nameOrID == "" {
		return nil, validationError("1 validation error detected: Value null at 'stackName' failed to satisfy constraint: Member must not be null")
	}
	st := s.live(nameOrID)
	if st == nil {
		return nil, validationError("Stack with id %s does not exist", nameOrID)
	}
	return st, nil
}

var updatable = []string{createComplete, updateComplete, updateRollbackComplete}

func (s *Service) apiUpdateStack(in *updateStackInput) (*stackIDOutput, *apiError) {
	s.mu.Lock()
	st, aerr := s.find(in.StackName)
	var body string
	var prevParams map[string]string
	if aerr == nil {
		body, prevParams = st.Body, st.Params
		if st.Status == deleteComplete {
			aerr = validationError("Stack [%s] does not exist", in.StackName)
		} else if !slices.Contains(updatable, st.Status) {
			aerr = validationError("Stack:%s is in %s state and can not be updated.", st.ID, st.Status)
		}
	}
	s.mu.Unlock()
	if aerr != nil {
		return nil, aerr
	}
	var t *template
	if in.UsePreviousTemplate {
		if in.TemplateBody != "" || in.TemplateURL != "" {
			return nil, validationError("You cannot specify both usePreviousTemplate and Template Body/Template URL")
		}
		var err error
		if t, err = parseTemplate(body); err != nil {
			return nil, validationError("%s", err.Error())
		}
	} else {
		body, t, aerr = s.templateOf(in.TemplateBody, in.TemplateURL)
		if aerr != nil {
			return nil, aerr
		}
	}
	params, noEcho, err := resolveParams(t, in.Parameters, prevParams)
	if err != nil {
		return nil, validationError("%s", err.Error())
	}
	if aerr := s.checkTemplate(in.StackName, t, params, in.Capabilities); aerr != nil {
		return nil, aerr
	}
	s.mu.Lock()
	if body == st.Body && mapsEqual(params, st.Params) {
		s.mu.Unlock()
		return nil, validationError("No updates are to be performed.")
	}
	if !slices.Contains(updatable, st.Status) { // changed while the template was read
		s.mu.Unlock()
		return nil, validationError("Stack:%s is in %s state and can not be updated.", st.ID, st.Status)
	}
	st.PrevBody, st.PrevParams = st.Body, st.Params
	st.Body, st.Params, st.NoEcho = body, params, noEcho
	st.Updated = s.cfg.Now()
	if in.Tags != nil {
		st.Tags = in.Tags
	}
	st.Status = updateInProgress // claimed before the lock is released
	s.mu.Unlock()
	s.setStatus(st, updateInProgress, userInitiated)
	s.run(func(ctx context.Context) { _ = s.updateStack(ctx, st, t) })
	return &stackIDOutput{StackID: st.ID}, nil
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func (s *Service) apiDeleteStack(in *deleteStackInput) *apiError {
	s.mu.Lock()
	st := s.live(in.StackName)
	if st == nil || st.Status == deleteComplete {
		s.mu.Unlock()
		return nil // AWS answers success for a stack that does not exist
	}
	if st.Status == deleteInProgress {
		s.mu.Unlock()
		return nil
	}
	if strings.HasSuffix(st.Status, "_IN_PROGRESS") {
		s.mu.Unlock()
		return validationError("Stack [%s] cannot be deleted while in status %s", st.Name, st.Status)
	}
	for _, r := range st.Resources {
		if slices.Contains(in.RetainResources, r.LogicalID) {
			r.DeletionPolicy = "Retain"
		}
	}
	st.Status = deleteInProgress
	s.mu.Unlock()
	s.run(func(ctx context.Context) { _ = s.deleteStack(ctx, st) })
	return nil
}

func (s *Service) apiContinueUpdateRollback(in *continueUpdateRollbackInput) *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, aerr := s.find(in.StackName)
	if aerr != nil {
		return aerr
	}
	if st.ParentID != "" {
		return validationError("Stack %s is a nested stack; continue the update rollback of its root stack %s instead.", st.Name, st.RootID)
	}
	if st.Status != updateRollbackFailed {
		return validationError("Stack %s is in %s state and can not continue update rollback; only a stack in UPDATE_ROLLBACK_FAILED can.", st.ID, st.Status)
	}
	for _, k := range in.ResourcesToSkip {
		if err := s.checkSkip(st, k); err != nil {
			return err
		}
	}
	st.Status = updateRollbackInProg
	skip := slices.Clone(in.ResourcesToSkip)
	s.run(func(ctx context.Context) { s.continueRollback(ctx, st, skip) })
	return nil
}

// checkSkip applies AWS's rules for ResourcesToSkip: only resources whose rollback failed
// (UPDATE_FAILED during the rollback), "NestedStack.LogicalId" for a nested stack's, and a
// nested stack resource itself only when its stack is being deleted or deleted
// (DELETE_IN_PROGRESS, DELETE_COMPLETE or DELETE_FAILED). The caller holds s.mu.
func (s *Service) checkSkip(st *stack, key string) *apiError {
	name, rest, nested := strings.Cut(key, ".")
	r := st.Resources[name]
	if r == nil {
		return validationError("Resource %s does not exist in stack %s", name, st.Name)
	}
	if nested {
		if r.Type != typeStack {
			return validationError("Resource %s is not a nested stack, so %s cannot be skipped", name, key)
		}
		child := s.live(r.Physical)
		if child == nil {
			return validationError("Nested stack %s does not exist", name)
		}
		return s.checkSkip(child, rest)
	}
	if r.Type == typeStack {
		if child := s.live(r.Physical); child == nil || !slices.Contains([]string{deleteInProgress, deleteComplete, deleteFailed}, child.Status) {
			status := ""
			if child != nil {
				status = child.Status
			}
			return validationError("Nested stack resource %s cannot be skipped: its stack is in %s state, and a nested stack can be skipped only in DELETE_IN_PROGRESS, DELETE_COMPLETE or DELETE_FAILED. Skip the failed resources inside it instead, as %s.LogicalResourceId.", name, status, name)
		}
		return nil
	}
	if !r.Failed || r.Status != updateFailed {
		return validationError("Resource %s of stack %s cannot be skipped: only resources whose rollback failed (UPDATE_FAILED during UPDATE_ROLLBACK) can be; it is in %s state.", name, st.Name, r.Status)
	}
	return nil
}

func (s *Service) stackOut(st *stack) stackOut {
	o := stackOut{StackID: st.ID, StackName: st.Name, Description: st.Desc, CreationTime: protocol.Timestamp{Time: st.Created},
		StackStatus: st.Status, StackStatusReason: st.Reason, DisableRollback: st.Disable, Capabilities: listOf(st.Caps),
		Outputs: listOf(st.Outputs), Tags: listOf(st.Tags), ParentID: st.ParentID, RootID: st.RootID}
	o.DriftInformation.StackDriftStatus = "NOT_CHECKED"
	if !st.Updated.IsZero() {
		o.LastUpdatedTime = &protocol.Timestamp{Time: st.Updated}
	}
	if !st.Deleted.IsZero() {
		o.DeletionTime = &protocol.Timestamp{Time: st.Deleted}
	}
	var params []parameter
	for _, k := range sortedKeys(st.Params) {
		v := st.Params[k]
		if st.NoEcho[k] {
			v = "****"
		}
		params = append(params, parameter{ParameterKey: k, ParameterValue: v})
	}
	o.Parameters = listOf(params)
	return o
}

const pageSize = 100

func page(token string, n int) (start int, aerr *apiError) {
	if token == "" {
		return 0, nil
	}
	start, err := strconv.Atoi(strings.TrimPrefix(token, "aviary-"))
	if err != nil || !strings.HasPrefix(token, "aviary-") || start < 0 || start > n {
		return 0, validationError("Invalid NextToken: %s", token)
	}
	return start, nil
}

func next(end, n int) string {
	if end < n {
		return "aviary-" + strconv.Itoa(end)
	}
	return ""
}

func (s *Service) describeStacks(in *stackNameInput) (*describeStacksOutput, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if in.StackName != "" {
		st, aerr := s.find(in.StackName)
		if aerr != nil {
			return nil, aerr
		}
		return &describeStacksOutput{Stacks: []stackOut{s.stackOut(st)}}, nil
	}
	var all []*stack
	for _, st := range slices.Backward(s.stacks) {
		if st.Status != deleteComplete {
			all = append(all, st)
		}
	}
	start, aerr := page(in.NextToken, len(all))
	if aerr != nil {
		return nil, aerr
	}
	end := min(start+pageSize, len(all))
	out := &describeStacksOutput{NextToken: next(end, len(all)), Stacks: []stackOut{}}
	for _, st := range all[start:end] {
		out.Stacks = append(out.Stacks, s.stackOut(st))
	}
	return out, nil
}

func (s *Service) describeStackEvents(in *stackNameInput) (*describeStackEventsOutput, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, aerr := s.find(in.StackName)
	if aerr != nil {
		return nil, aerr
	}
	n := len(st.Events)
	start, aerr := page(in.NextToken, n)
	if aerr != nil {
		return nil, aerr
	}
	end := min(start+pageSize, n)
	out := &describeStackEventsOutput{NextToken: next(end, n), StackEvents: []stackEventOut{}}
	for i := start; i < end; i++ {
		e := st.Events[n-1-i] // newest first
		out.StackEvents = append(out.StackEvents, stackEventOut{StackID: st.ID, EventID: e.ID, StackName: st.Name,
			LogicalResourceID: e.Logical, PhysicalResourceID: e.Physical, ResourceType: e.Type,
			Timestamp: protocol.Timestamp{Time: e.Time}, ResourceStatus: e.Status, ResourceStatusReason: e.Reason,
			ResourceProperties: e.Props})
	}
	return out, nil
}

func (s *Service) describeStackResources(in *describeStackResourcesInput) (*describeStackResourcesOutput, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var st *stack
	switch {
	case in.StackName != "":
		var aerr *apiError
		if st, aerr = s.find(in.StackName); aerr != nil {
			return nil, aerr
		}
	case in.PhysicalResourceID != "":
		for _, cand := range s.stacks {
			for _, r := range cand.Resources {
				if r.Physical == in.PhysicalResourceID && cand.Status != deleteComplete {
					st = cand
				}
			}
		}
		if st == nil {
			return nil, validationError("Stack for %s does not exist", in.PhysicalResourceID)
		}
	default:
		return nil, validationError("Either StackName or PhysicalResourceId must be specified.")
	}
	out := &describeStackResourcesOutput{StackResources: []stackResourceOut{}}
	for _, name := range sortedKeys(st.Resources) {
		r := st.Resources[name]
		if in.LogicalResourceID != "" && name != in.LogicalResourceID {
			continue
		}
		if in.PhysicalResourceID != "" && r.Physical != in.PhysicalResourceID && in.StackName != "" {
			continue
		}
		ro := stackResourceOut{StackName: st.Name, StackID: st.ID, LogicalResourceID: name, PhysicalResourceID: r.Physical,
			ResourceType: r.Type, Timestamp: protocol.Timestamp{Time: r.Time}, ResourceStatus: r.Status, ResourceStatusReason: r.Reason}
		ro.DriftInformation.StackResourceDriftStatus = "NOT_CHECKED"
		out.StackResources = append(out.StackResources, ro)
	}
	return out, nil
}

// getTemplate answers the stack's template. While an update is rolling back, or stuck in
// UPDATE_ROLLBACK_FAILED, that is the template it is rolling back to. Both stages are the
// template as submitted: the sandbox supports no transforms, so processing changes nothing.
func (s *Service) getTemplate(in *getTemplateInput) (*getTemplateOutput, *apiError) {
	if in.ChangeSetName != "" {
		return nil, &apiError{Code: "ChangeSetNotFoundException", Message: fmt.Sprintf("ChangeSet [%s] does not exist", in.ChangeSetName)}
	}
	if in.TemplateStage != "" && in.TemplateStage != "Original" && in.TemplateStage != "Processed" {
		return nil, validationError("1 validation error detected: Value '%s' at 'templateStage' failed to satisfy constraint: Member must satisfy enum value set: [Original, Processed]", in.TemplateStage)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, aerr := s.find(in.StackName)
	if aerr != nil {
		return nil, aerr
	}
	return &getTemplateOutput{TemplateBody: st.Body, StagesAvailable: []string{"Original", "Processed"}}, nil
}

func (in *createStackInput) stackName() string            { return in.StackName }
func (in *updateStackInput) stackName() string            { return in.StackName }
func (in *deleteStackInput) stackName() string            { return in.StackName }
func (in *stackNameInput) stackName() string              { return in.StackName }
func (in *continueUpdateRollbackInput) stackName() string { return in.StackName }

// The request log names the stack of these too (the IAM proofs map a call to its stack).
func (in *describeStackResourcesInput) stackName() string { return in.StackName }
func (in *getTemplateInput) stackName() string            { return in.StackName }

// iamCapabilityTypes are the resource types CreateStack's Capabilities documentation lists as
// needing CAPABILITY_IAM, each with the property that names it (and so needs
// CAPABILITY_NAMED_IAM). Others, AWS::IAM::OIDCProvider among them, need neither.
var iamCapabilityTypes = map[string]string{
	"AWS::IAM::AccessKey": "", "AWS::IAM::Group": "GroupName", "AWS::IAM::InstanceProfile": "InstanceProfileName",
	"AWS::IAM::ManagedPolicy": "ManagedPolicyName", "AWS::IAM::Policy": "", "AWS::IAM::Role": "RoleName",
	"AWS::IAM::User": "UserName", "AWS::IAM::UserToGroupAddition": "",
}

// checkTemplate checks, before a stack operation starts, what CloudFormation checks then: that
// the template's conditions evaluate with these parameters, and that the caller acknowledged
// the IAM resources it creates (CAPABILITY_IAM; CAPABILITY_NAMED_IAM when it names them).
func (s *Service) checkTemplate(stackName string, t *template, params map[string]string, caps []string) *apiError {
	sc := &scope{params: params, listType: map[string]bool{}, mappings: t.Mappings, refs: map[string]string{}, attrs: map[string]map[string]string{},
		pseudo: map[string]string{"AWS::Region": s.cfg.Region, "AWS::AccountId": s.cfg.Account, "AWS::StackName": stackName,
			"AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com"}}
	for name, p := range t.Parameters {
		sc.listType[name] = p.Type == "CommaDelimitedList"
	}
	if _, err := t.resolve(sc); err != nil {
		return validationError("%s", err.Error())
	}
	need := ""
	for _, r := range t.Resources {
		nameProp, ok := iamCapabilityTypes[r.Type]
		if !ok {
			continue
		}
		if need == "" {
			need = "CAPABILITY_IAM"
		}
		if nameProp != "" && r.Properties[nameProp] != nil {
			need = "CAPABILITY_NAMED_IAM"
		}
	}
	switch {
	case need == "", slices.Contains(caps, "CAPABILITY_NAMED_IAM"), need == "CAPABILITY_IAM" && slices.Contains(caps, "CAPABILITY_IAM"):
		return nil
	}
	return &apiError{Code: "InsufficientCapabilitiesException", Message: fmt.Sprintf("Requires capabilities : [%s]", need)}
}
