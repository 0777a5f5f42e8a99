package cloudformation

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"
)

// Stack statuses.
const (
	createInProgress       = "CREATE_IN_PROGRESS"
	createComplete         = "CREATE_COMPLETE"
	createFailed           = "CREATE_FAILED"
	rollbackInProgress     = "ROLLBACK_IN_PROGRESS"
	rollbackComplete       = "ROLLBACK_COMPLETE"
	rollbackFailed         = "ROLLBACK_FAILED"
	deleteInProgress       = "DELETE_IN_PROGRESS"
	deleteComplete         = "DELETE_COMPLETE"
	deleteFailed           = "DELETE_FAILED"
	deleteSkipped          = "DELETE_SKIPPED"
	updateInProgress       = "UPDATE_IN_PROGRESS"
	updateCleanup          = "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"
	updateComplete         = "UPDATE_COMPLETE"
	updateFailed           = "UPDATE_FAILED"
	updateRollbackInProg   = "UPDATE_ROLLBACK_IN_PROGRESS"
	updateRollbackFailed   = "UPDATE_ROLLBACK_FAILED"
	updateRollbackCleanup  = "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS"
	updateRollbackComplete = "UPDATE_ROLLBACK_COMPLETE"
	skippedDuringRollback  = "Resource skipped during UPDATE_ROLLBACK"
	userInitiated          = "User Initiated"
)

// stack is one stack; exported fields are what DataDir persists.
type stack struct {
	ID        string
	Name      string
	ParentID  string
	RootID    string
	Status    string
	Reason    string
	Created   time.Time
	Updated   time.Time
	Deleted   time.Time
	Body      string
	Params    map[string]string
	NoEcho    map[string]bool
	Disable   bool // DisableRollback
	Caps      []string
	Tags      []tag
	Desc      string
	Outputs   []output
	Resources map[string]*resource
	Events    []event

	// PrevBody and PrevParams are what an update rolls back to, while one is under way or stuck.
	PrevBody   string
	PrevParams map[string]string
}

// resource is one resource of a stack.
type resource struct {
	LogicalID      string
	Type           string
	Physical       string
	Status         string
	Reason         string
	Time           time.Time
	Props          map[string]any
	Attrs          map[string]string
	DeletionPolicy string
	// ReplacePolicy is UpdateReplacePolicy: Retain keeps a replaced instance.
	ReplacePolicy string

	// Update bookkeeping, cleared when an update or its rollback completes.
	Prior    *instance  // what the resource was before the update; nil if the update created it
	Pending  bool       // changed by the update and not yet rolled back
	New      bool       // created by the update: the rollback deletes it
	Removed  bool       // not in the new template: the update's cleanup deletes it
	Obsolete []instance // replaced instances: the cleanup deletes them
	Failed   bool       // its rollback failed (UPDATE_FAILED during UPDATE_ROLLBACK)
}

// instance is one physical resource as CloudFormation knows it.
type instance struct {
	Physical string
	Props    map[string]any
	Attrs    map[string]string
}

type event struct {
	ID       string
	Logical  string
	Physical string
	Type     string
	Status   string
	Reason   string
	Props    string
	Time     time.Time
}

func randomID(n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

func uuid() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// physicalName is the name CloudFormation generates for a resource that names none:
// STACK-LOGICALID-RANDOM, shortened to fit max.
func physicalName(stackName, logical string, max int) string {
	suffix := "-" + randomID(12)
	prefix := stackName + "-" + logical
	if room := max - len(suffix); len(prefix) > room {
		prefix = prefix[:room]
	}
	return prefix + suffix
}

// setStatus records a stack status and its event.
func (s *Service) setStatus(st *stack, status, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st.Status, st.Reason = status, reason
	s.addEvent(st, st.Name, st.ID, typeStack, status, reason, "")
	s.save()
}

// resEvent records a resource's status and its event.
func (s *Service) resEvent(st *stack, r *resource, status, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r.Status, r.Reason, r.Time = status, reason, s.cfg.Now()
	props := ""
	if r.Props != nil {
		b, _ := json.Marshal(r.Props)
		props = string(b)
	}
	s.addEvent(st, r.LogicalID, r.Physical, r.Type, status, reason, props)
	s.save()
}

func (s *Service) addEvent(st *stack, logical, physical, typ, status, reason, props string) {
	st.Events = append(st.Events, event{ID: uuid(), Logical: logical, Physical: physical, Type: typ,
		Status: status, Reason: reason, Props: props, Time: s.cfg.Now()})
}

// locked runs f under the service's lock and saves.
func (s *Service) locked(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f()
	s.save()
}

// scopeFor is the evaluation scope of a stack's template with the given parameter values.
func (s *Service) scopeFor(st *stack, t *template, params map[string]string) *scope {
	sc := &scope{params: params, listType: map[string]bool{}, mappings: t.Mappings,
		refs: map[string]string{}, attrs: map[string]map[string]string{},
		pseudo: map[string]string{
			"AWS::Region": s.cfg.Region, "AWS::AccountId": s.cfg.Account, "AWS::StackName": st.Name,
			"AWS::StackId": st.ID, "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com",
		}}
	for name, p := range t.Parameters {
		sc.listType[name] = p.Type == "CommaDelimitedList"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, r := range st.Resources {
		if r.Physical != "" {
			sc.refs[name] = r.Physical
			sc.attrs[name] = maps.Clone(r.Attrs)
		}
	}
	return sc
}

// failure is the resources that failed, and why.
type failure struct {
	logicals []string
	reason   string
}

func (f *failure) Error() string { return strings.Join(f.logicals, ", ") + ": " + f.reason }

// names is the failed resources as status reasons list them: "[A, B]".
func (f *failure) names() string {
	names := slices.Clone(f.logicals)
	slices.Sort(names)
	return "[" + strings.Join(names, ", ") + "]"
}

// provision brings the stack's resources to the template: it creates what is new, updates (or
// replaces) what changed, and marks what the template no longer has for the cleanup. As on AWS,
// a resource starts once those it depends on are done, independent ones at the same time; after
// a failure nothing new starts, and what is under way finishes.
func (s *Service) provision(ctx context.Context, st *stack, t *template, params map[string]string, updating bool) error {
	sc := s.scopeFor(st, t, params)
	t, err := t.resolve(sc)
	if err != nil {
		return &failure{reason: err.Error()}
	}
	type result struct {
		name string
		err  error
	}
	results := make(chan result)
	started, done := map[string]bool{}, map[string]bool{}
	var failed *failure
	running := 0
	for {
		if failed == nil {
			for _, name := range t.order {
				if started[name] || !allDone(t.deps[name], done) {
					continue
				}
				started[name] = true
				running++
				go func() { results <- result{name, s.provisionOne(ctx, st, t, sc, name, updating)} }()
			}
		}
		if running == 0 {
			break
		}
		res := <-results
		running--
		if res.err == nil {
			done[res.name] = true
			continue
		}
		if failed == nil {
			failed = &failure{reason: res.err.Error()}
		}
		failed.logicals = append(failed.logicals, res.name)
	}
	if failed != nil {
		return failed
	}
	s.locked(func() {
		for name, r := range st.Resources {
			if _, ok := t.Resources[name]; !ok {
				r.Removed = true
			}
		}
		st.Outputs = nil
		for _, name := range sortedKeys(t.Outputs) {
			v, err := sc.evalString(t.Outputs[name].Value, "Outputs")
			if err != nil {
				continue
			}
			st.Outputs = append(st.Outputs, output{OutputKey: name, OutputValue: v, Description: t.Outputs[name].Description})
		}
	})
	return nil
}

func allDone(deps []string, done map[string]bool) bool {
	for _, d := range deps {
		if !done[d] {
			return false
		}
	}
	return true
}

// provisionOne creates, updates or replaces one resource; the scope is read and written under
// s.mu, as resources are provisioned concurrently.
func (s *Service) provisionOne(ctx context.Context, st *stack, t *template, sc *scope, name string, updating bool) error {
	def := t.Resources[name]
	s.mu.Lock()
	raw, err := sc.eval(def.Properties)
	r := st.Resources[name]
	s.mu.Unlock()
	if err != nil {
		return s.failResource(st, name, def.Type, updating, err.Error())
	}
	props, _ := raw.(map[string]any)
	switch {
	case r == nil || r.Physical == "" && r.Status != createComplete && r.Status != updateComplete:
		r = &resource{LogicalID: name, Type: def.Type, Props: props, DeletionPolicy: def.DeletionPolicy, ReplacePolicy: def.UpdateReplacePolicy}
		s.locked(func() {
			st.Resources[name] = r
			r.New = updating
			r.Pending = updating
		})
		s.resEvent(st, r, createInProgress, "")
		inst, err := s.create(ctx, st, r, props)
		if err != nil {
			s.resEvent(st, r, createFailed, err.Error())
			return err
		}
		s.locked(func() { r.Physical, r.Attrs = inst.Physical, inst.Attrs })
		s.resEvent(st, r, createComplete, "")
	case r.Type != def.Type:
		return s.failResource(st, name, def.Type, updating,
			fmt.Sprintf("Update of resource type is not permitted. The new template modifies resource type of the following resources: [%s]", name))
	default:
		s.locked(func() { r.DeletionPolicy, r.ReplacePolicy = def.DeletionPolicy, def.UpdateReplacePolicy })
		if r.Type != typeStack && reflect.DeepEqual(normalize(r.Props), normalize(props)) {
			break
		}
		s.locked(func() {
			if r.Prior == nil && !r.New {
				r.Prior = &instance{Physical: r.Physical, Props: r.Props, Attrs: maps.Clone(r.Attrs)}
			}
			r.Pending = true
		})
		if replaces(r.Type, r.Props, props) {
			s.resEvent(st, r, updateInProgress, "Requested update requires the creation of a new physical resource; hence creating one.")
			old := instance{Physical: r.Physical, Props: r.Props, Attrs: r.Attrs}
			inst, err := s.create(ctx, st, r, props)
			if err != nil {
				s.resEvent(st, r, updateFailed, err.Error())
				return err
			}
			s.locked(func() {
				r.Obsolete = append(r.Obsolete, old)
				r.Physical, r.Attrs, r.Props = inst.Physical, inst.Attrs, props
			})
			s.resEvent(st, r, updateComplete, "")
			break
		}
		s.resEvent(st, r, updateInProgress, "")
		from := r.Props
		s.locked(func() { r.Props = props }) // what CloudFormation asked for, applied or not
		attrs, err := s.update(ctx, st, r, from, props, nil)
		if err != nil {
			s.resEvent(st, r, updateFailed, err.Error())
			return err
		}
		s.locked(func() { r.Attrs = attrs })
		s.resEvent(st, r, updateComplete, "")
	}
	s.mu.Lock()
	sc.refs[name], sc.attrs[name] = r.Physical, maps.Clone(r.Attrs)
	s.mu.Unlock()
	return nil
}

func (s *Service) failResource(st *stack, name, typ string, updating bool, reason string) error {
	s.mu.Lock()
	r := st.Resources[name]
	if r == nil {
		r = &resource{LogicalID: name, Type: typ}
		st.Resources[name] = r
	}
	s.mu.Unlock()
	status := createFailed
	if updating && r.Physical != "" {
		status = updateFailed
	}
	s.resEvent(st, r, status, reason)
	return errors.New(reason)
}

// normalize makes property maps comparable whatever their numbers' Go types.
func normalize(v map[string]any) any {
	b, _ := json.Marshal(v)
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}

// replaces reports whether a property change needs a new physical resource.
func replaces(typ string, from, to map[string]any) bool {
	changed := func(keys ...string) bool {
		for _, k := range keys {
			if !reflect.DeepEqual(normalize(map[string]any{"v": from[k]}), normalize(map[string]any{"v": to[k]})) {
				return true
			}
		}
		return false
	}
	switch typ {
	case typeFunction:
		return changed("FunctionName")
	case typeAlias:
		return changed("FunctionName", "Name")
	case typeVersion, typePermission:
		return true
	case typeTable:
		return changed("TableName", "KeySchema", "LocalSecondaryIndexes")
	case typeBucket:
		return changed("BucketName")
	case typeRole:
		return changed("RoleName", "Path")
	case typeOIDC:
		return changed("Url")
	case typeURL:
		return changed("TargetFunctionArn", "Qualifier")
	case typeSchedule:
		return changed("Name", "GroupName")
	case typeGroup:
		return changed("Name")
	}
	return false
}

// failedList is the logical ids, sorted, of the resources in status.
func failedList(st *stack, match func(*resource) bool) string {
	var names []string
	for name, r := range st.Resources {
		if match(r) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return "[" + strings.Join(names, ", ") + "]"
}

// createStack runs a CreateStack: provision, and on failure roll back (delete what was
// created) unless rollback is disabled.
func (s *Service) createStack(ctx context.Context, st *stack, t *template) error {
	err := s.provision(ctx, st, t, st.Params, false)
	if err == nil {
		s.setStatus(st, createComplete, "")
		return nil
	}
	var f *failure
	errors.As(err, &f)
	reason := fmt.Sprintf("The following resource(s) failed to create: %s. ", f.names())
	if st.Disable {
		s.setStatus(st, createFailed, reason)
		return err
	}
	s.setStatus(st, rollbackInProgress, reason+"Rollback requested by user.")
	if failed := s.deleteResources(ctx, st); failed != "" {
		s.setStatus(st, rollbackFailed, "The following resource(s) failed to delete: "+failed+". ")
		return err
	}
	s.setStatus(st, rollbackComplete, "")
	return err
}

// updateStack runs an UpdateStack. A root stack finishes with its cleanup; a nested stack stops
// in UPDATE_COMPLETE_CLEANUP_IN_PROGRESS and is cleaned up when its root is, as on AWS. On
// failure the stack rolls back (and reports the failure to its parent).
func (s *Service) updateStack(ctx context.Context, st *stack, t *template) error {
	err := s.provision(ctx, st, t, st.Params, true)
	if err == nil {
		s.setStatus(st, updateCleanup, "")
		if st.ParentID == "" {
			s.cleanup(ctx, st, updateComplete)
		}
		return nil
	}
	var f *failure
	errors.As(err, &f)
	s.setStatus(st, updateRollbackInProg, fmt.Sprintf("The following resource(s) failed to update: %s. ", f.names()))
	s.rollback(ctx, st, nil, false)
	return err
}

// rollback returns every resource an update changed to what it was, in the previous
// template's dependency order; what cannot be rolled back is left UPDATE_FAILED and the stack
// UPDATE_ROLLBACK_FAILED. skip names resources to treat as rolled back ("Nested.Logical" for a
// nested stack's). continuing is a ContinueUpdateRollback: nested stacks stuck in
// UPDATE_ROLLBACK_FAILED are continued too.
func (s *Service) rollback(ctx context.Context, st *stack, skip []string, continuing bool) {
	s.mu.Lock()
	st.Body, st.Params = st.PrevBody, st.PrevParams
	order := rollbackOrder(st)
	s.mu.Unlock()
	for _, name := range order {
		s.mu.Lock()
		r := st.Resources[name]
		pending, prior := r.Pending && !r.New, r.Prior
		s.mu.Unlock()
		if !pending || prior == nil {
			continue
		}
		if slices.Contains(skip, name) {
			s.locked(func() {
				r.Physical, r.Props, r.Attrs = prior.Physical, prior.Props, prior.Attrs
				r.Pending, r.Failed = false, false
			})
			s.resEvent(st, r, updateComplete, skippedDuringRollback)
			continue
		}
		if r.Physical != prior.Physical {
			// Replaced: the previous instance still exists until the cleanup; go back to it.
			s.resEvent(st, r, updateInProgress, "")
			s.locked(func() {
				r.Obsolete = append(r.Obsolete, instance{Physical: r.Physical, Props: r.Props, Attrs: r.Attrs})
				r.Obsolete = slices.DeleteFunc(r.Obsolete, func(i instance) bool { return i.Physical == prior.Physical })
				r.Physical, r.Props, r.Attrs = prior.Physical, prior.Props, prior.Attrs
				r.Pending, r.Failed = false, false
			})
			s.resEvent(st, r, updateComplete, "")
			continue
		}
		s.resEvent(st, r, updateInProgress, "")
		if r.Type != typeStack && reflect.DeepEqual(normalize(r.Props), normalize(prior.Props)) {
			// Its update never took effect (a replacement that could not be created).
			s.locked(func() { r.Pending, r.Failed = false, false })
			s.resEvent(st, r, updateComplete, "")
			continue
		}
		var nestedSkip []string
		for _, k := range skip {
			if n, rest, ok := strings.Cut(k, "."); ok && n == name {
				nestedSkip = append(nestedSkip, rest)
			}
		}
		attrs, err := s.update(ctx, st, r, r.Props, prior.Props, &rollbackOpts{skip: nestedSkip, continuing: continuing})
		if err != nil {
			s.locked(func() { r.Failed = true })
			s.resEvent(st, r, updateFailed, err.Error())
			continue
		}
		s.locked(func() {
			r.Props, r.Attrs = prior.Props, attrs
			r.Pending, r.Failed = false, false
		})
		s.resEvent(st, r, updateComplete, "")
	}
	s.mu.Lock()
	failed := failedList(st, func(r *resource) bool { return r.Failed })
	anyFailed := failed != "[]"
	s.mu.Unlock()
	if anyFailed {
		s.setStatus(st, updateRollbackFailed, "The following resource(s) failed to update: "+failed+".")
		return
	}
	s.setStatus(st, updateRollbackCleanup, "")
	s.rollbackCleanup(ctx, st)
}

// rollbackOrder lists the stack's resources in the previous template's dependency order
// (falling back to name order if it no longer parses); the caller holds s.mu.
func rollbackOrder(st *stack) []string {
	var order []string
	if t, err := parseTemplate(st.PrevBody); err == nil {
		order = slices.Clone(t.order)
	}
	for _, name := range sortedKeys(st.Resources) {
		if !slices.Contains(order, name) {
			order = append(order, name)
		}
	}
	return order
}

// rollbackCleanup deletes what the failed update created, and finishes the rollback.
func (s *Service) rollbackCleanup(ctx context.Context, st *stack) {
	s.mu.Lock()
	var created []*resource
	for _, name := range slices.Backward(rollbackOrder(st)) {
		r := st.Resources[name]
		if r.New {
			created = append(created, r)
		}
	}
	s.mu.Unlock()
	for _, r := range created {
		if r.Physical != "" {
			s.resEvent(st, r, deleteInProgress, "")
			if err := s.remove(ctx, st, r.Type, r.Physical, r.Props); err != nil {
				s.resEvent(st, r, deleteFailed, err.Error())
			} else {
				s.resEvent(st, r, deleteComplete, "")
			}
		}
		s.locked(func() { delete(st.Resources, r.LogicalID) })
	}
	s.deleteObsolete(ctx, st, false)
	s.locked(func() { clearUpdate(st) })
	s.setStatus(st, updateRollbackComplete, "")
}

// cleanup deletes what the update replaced or removed, cleans up nested stacks, and sets the
// final status.
func (s *Service) cleanup(ctx context.Context, st *stack, final string) {
	s.mu.Lock()
	var nested, removed []*resource
	for _, name := range slices.Backward(rollbackOrder(st)) {
		r := st.Resources[name]
		if r.Type == typeStack && !r.Removed && r.Physical != "" {
			nested = append(nested, r)
		}
		if r.Removed {
			removed = append(removed, r)
		}
	}
	s.mu.Unlock()
	for _, r := range nested {
		if child := s.byID(r.Physical); child != nil && child.Status == updateCleanup {
			s.cleanup(ctx, child, updateComplete)
		}
	}
	s.deleteObsolete(ctx, st, true)
	for _, r := range removed {
		s.deleteOne(ctx, st, r)
		s.locked(func() { delete(st.Resources, r.LogicalID) })
	}
	s.locked(func() { clearUpdate(st) })
	s.setStatus(st, final, "")
}

// deleteObsolete deletes the instances the update replaced (after it, keeping those whose
// UpdateReplacePolicy is Retain when afterUpdate) or created (after a rollback).
func (s *Service) deleteObsolete(ctx context.Context, st *stack, afterUpdate bool) {
	s.mu.Lock()
	type item struct {
		r    *resource
		inst instance
	}
	var items []item
	for _, name := range slices.Backward(rollbackOrder(st)) { // dependents first
		r := st.Resources[name]
		for _, inst := range r.Obsolete {
			items = append(items, item{r, inst})
		}
		r.Obsolete = nil
	}
	s.mu.Unlock()
	for _, it := range items {
		if afterUpdate && it.r.ReplacePolicy == "Retain" {
			s.locked(func() { s.addEvent(st, it.r.LogicalID, it.inst.Physical, it.r.Type, deleteSkipped, "", "") })
			continue
		}
		// AWS records the deletion of a replaced instance under the resource's logical id.
		s.locked(func() {
			s.addEvent(st, it.r.LogicalID, it.inst.Physical, it.r.Type, deleteInProgress, "", "")
		})
		status, reason := deleteComplete, ""
		if err := s.remove(ctx, st, it.r.Type, it.inst.Physical, it.inst.Props); err != nil {
			status, reason = deleteFailed, err.Error()
		}
		s.locked(func() { s.addEvent(st, it.r.LogicalID, it.inst.Physical, it.r.Type, status, reason, "") })
	}
}

func clearUpdate(st *stack) {
	st.PrevBody, st.PrevParams = "", nil
	for _, r := range st.Resources {
		r.Prior, r.Pending, r.New, r.Removed, r.Failed, r.Obsolete = nil, false, false, false, false, nil
	}
}

// continueRollback runs a ContinueUpdateRollback of a stack in UPDATE_ROLLBACK_FAILED.
func (s *Service) continueRollback(ctx context.Context, st *stack, skip []string) {
	s.setStatus(st, updateRollbackInProg, "")
	s.rollback(ctx, st, skip, true)
}

// deleteOne deletes a resource, honouring DeletionPolicy Retain.
func (s *Service) deleteOne(ctx context.Context, st *stack, r *resource) bool {
	if r.DeletionPolicy == "Retain" {
		s.resEvent(st, r, deleteSkipped, "")
		return true
	}
	if r.Physical == "" {
		s.resEvent(st, r, deleteComplete, "")
		return true
	}
	s.resEvent(st, r, deleteInProgress, "")
	if err := s.remove(ctx, st, r.Type, r.Physical, r.Props); err != nil {
		s.resEvent(st, r, deleteFailed, err.Error())
		return false
	}
	s.resEvent(st, r, deleteComplete, "")
	return true
}

// deleteResources deletes every resource of the stack, dependents first; it returns the
// list of those that failed ("" if none).
func (s *Service) deleteResources(ctx context.Context, st *stack) string {
	s.mu.Lock()
	order := rollbackOrder(st)
	if t, err := parseTemplate(st.Body); err == nil {
		order = slices.Clone(t.order)
		for _, name := range sortedKeys(st.Resources) {
			if !slices.Contains(order, name) {
				order = append(order, name)
			}
		}
	}
	s.mu.Unlock()
	var failed []string
	for _, name := range slices.Backward(order) {
		s.mu.Lock()
		r := st.Resources[name]
		s.mu.Unlock()
		if r == nil || r.Status == deleteComplete || r.Status == deleteSkipped {
			continue
		}
		if !s.deleteOne(ctx, st, r) {
			failed = append(failed, name)
		}
	}
	s.deleteObsolete(ctx, st, false)
	if len(failed) == 0 {
		return ""
	}
	slices.Sort(failed)
	return "[" + strings.Join(failed, ", ") + "]"
}

// deleteStack runs a DeleteStack.
func (s *Service) deleteStack(ctx context.Context, st *stack) error {
	s.setStatus(st, deleteInProgress, userInitiated)
	if failed := s.deleteResources(ctx, st); failed != "" {
		reason := "The following resource(s) failed to delete: " + failed + ". "
		s.setStatus(st, deleteFailed, reason)
		return errors.New(reason)
	}
	s.locked(func() { st.Deleted = s.cfg.Now() })
	s.setStatus(st, deleteComplete, "")
	return nil
}

// byID finds a stack by id; it takes s.mu.
func (s *Service) byID(id string) *stack {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range s.stacks {
		if st.ID == id {
			return st
		}
	}
	return nil
}
