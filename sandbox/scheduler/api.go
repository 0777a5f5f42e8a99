package scheduler

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/aviary-deploy/aviary/sandbox/limits"
	"github.com/aviary-deploy/aviary/sandbox/protocol"
)

// Handler serves the EventBridge Scheduler API; l is asked about every request.
func (s *Service) Handler(l limits.Limiter) http.Handler {
	api := &protocol.Service{Name: "scheduler", Model: apiModel, Limits: l,
		DecodeError: func(err error) *protocol.Error { return protocol.Errorf("ValidationException", "%v", err) }}
	protocol.Route(api, "POST /schedules/{Name}", "CreateSchedule", 0, s.createSchedule)
	protocol.Route(api, "GET /schedules/{Name}", "GetSchedule", 0, s.getSchedule)
	protocol.Route(api, "PUT /schedules/{Name}", "UpdateSchedule", 0, s.updateSchedule)
	protocol.Route(api, "DELETE /schedules/{Name}", "DeleteSchedule", 0, s.deleteSchedule)
	protocol.Route(api, "GET /schedules", "ListSchedules", 0, s.listSchedules)
	protocol.Route(api, "POST /schedule-groups/{Name}", "CreateScheduleGroup", 0, s.createGroup)
	protocol.Route(api, "GET /schedule-groups/{Name}", "GetScheduleGroup", 0, s.getGroup)
	protocol.Route(api, "DELETE /schedule-groups/{Name}", "DeleteScheduleGroup", 0, s.deleteGroup)
	protocol.Route(api, "GET /schedule-groups", "ListScheduleGroups", 0, s.listGroups)
	protocol.Route(api, "POST /tags/{ResourceArn}", "TagResource", 0, s.tagResource)
	protocol.Route(api, "DELETE /tags/{ResourceArn}", "UntagResource", 0, s.untagResource)
	protocol.Route(api, "GET /tags/{ResourceArn}", "ListTagsForResource", 0, s.listTags)
	return api
}

type flexibleTimeWindow struct {
	Mode                   string `json:"Mode"`
	MaximumWindowInMinutes *int   `json:"MaximumWindowInMinutes,omitempty"`
}

type retryPolicy struct {
	MaximumEventAgeInSeconds *int `json:"MaximumEventAgeInSeconds,omitempty"`
	MaximumRetryAttempts     *int `json:"MaximumRetryAttempts,omitempty"`
}

type target struct {
	Arn              string       `json:"Arn"`
	RoleArn          string       `json:"RoleArn"`
	Input            *string      `json:"Input,omitempty"`
	RetryPolicy      *retryPolicy `json:"RetryPolicy,omitempty"`
	DeadLetterConfig *struct {
		Arn *string `json:"Arn,omitempty"`
	} `json:"DeadLetterConfig,omitempty"`
	// The other targets' parameters are kept as sent.
	EcsParameters               json.RawMessage `json:"EcsParameters,omitempty"`
	EventBridgeParameters       json.RawMessage `json:"EventBridgeParameters,omitempty"`
	KinesisParameters           json.RawMessage `json:"KinesisParameters,omitempty"`
	SageMakerPipelineParameters json.RawMessage `json:"SageMakerPipelineParameters,omitempty"`
	SqsParameters               json.RawMessage `json:"SqsParameters,omitempty"`
}

// scheduleDef is a schedule as GetSchedule answers it, less its ARN and dates.
type scheduleDef struct {
	ActionAfterCompletion      string              `json:"ActionAfterCompletion"`
	Description                *string             `json:"Description,omitempty"`
	EndDate                    *protocol.Timestamp `json:"EndDate,omitempty"`
	FlexibleTimeWindow         flexibleTimeWindow  `json:"FlexibleTimeWindow"`
	GroupName                  string              `json:"GroupName"`
	KmsKeyArn                  *string             `json:"KmsKeyArn,omitempty"`
	Name                       string              `json:"Name"`
	ScheduleExpression         string              `json:"ScheduleExpression"`
	ScheduleExpressionTimezone string              `json:"ScheduleExpressionTimezone"`
	StartDate                  *protocol.Timestamp `json:"StartDate,omitempty"`
	State                      string              `json:"State"`
	Target                     target              `json:"Target"`
}

// scheduleInput is CreateSchedule's and UpdateSchedule's input (Update replaces everything).
type scheduleInput struct {
	Name                       string              `aws:"uri:Name" json:"-"`
	ActionAfterCompletion      string              `json:"ActionAfterCompletion"`
	ClientToken                string              `json:"ClientToken"`
	Description                *string             `json:"Description"`
	EndDate                    *protocol.Timestamp `json:"EndDate"`
	FlexibleTimeWindow         *flexibleTimeWindow `json:"FlexibleTimeWindow"`
	GroupName                  string              `json:"GroupName"`
	KmsKeyArn                  *string             `json:"KmsKeyArn"`
	ScheduleExpression         *string             `json:"ScheduleExpression"`
	ScheduleExpressionTimezone *string             `json:"ScheduleExpressionTimezone"`
	StartDate                  *protocol.Timestamp `json:"StartDate"`
	State                      string              `json:"State"`
	Target                     *target             `json:"Target"`
}

type scheduleARNOutput struct {
	ScheduleArn string `json:"ScheduleArn"`
}

var (
	namePattern     = regexp.MustCompile(`^[0-9a-zA-Z-_.]+$`)
	tokenPattern    = regexp.MustCompile(`^[a-zA-Z0-9-_]+$`)
	rolePattern     = regexp.MustCompile(`^arn:aws(-[a-z]+)?:iam::\d{12}:role\/[\w+=,.@\/-]+$`)
	kmsPattern      = regexp.MustCompile(`^arn:aws(-[a-z]+)?:kms:[a-z0-9\-]+:\d{12}:(key|alias)\/[0-9a-zA-Z-_]*$`)
	defaultRetryAge = 86400
	defaultRetries  = 185
)

// invalid is a constraint violation in the words of AWS's validation layer.
func invalid(value any, member, constraint string) *protocol.Error {
	v := "null"
	if value != nil {
		v = fmt.Sprintf("'%v'", value)
	}
	return protocol.Errorf("ValidationException", "1 validation error detected: Value %s at '%s' failed to satisfy constraint: %s", v, member, constraint)
}

func checkName(v, member string) *protocol.Error {
	switch {
	case len(v) < 1 || len(v) > 64:
		return invalid(v, member, "Member must have length between 1 and 64")
	case !namePattern.MatchString(v):
		return invalid(v, member, "Member must satisfy regular expression pattern: ^[0-9a-zA-Z-_.]+$")
	}
	return nil
}

func checkToken(v string) *protocol.Error {
	if v != "" && (len(v) > 64 || !tokenPattern.MatchString(v)) {
		return invalid(v, "clientToken", "Member must satisfy regular expression pattern: ^[a-zA-Z0-9-_]+$")
	}
	return nil
}

func checkGroup(name string) (string, *protocol.Error) {
	if name == "" {
		return DefaultGroup, nil
	}
	return name, checkName(name, "groupName")
}

// validated is a schedule input checked and normalised, with its parsed expression.
type validated struct {
	def  scheduleDef
	expr expression
	loc  *time.Location
}

// validate checks a Create or Update input as AWS does, at the scheduler's time now.
func validate(in *scheduleInput, now time.Time) (validated, *protocol.Error) {
	if err := checkName(in.Name, "name"); err != nil {
		return validated{}, err
	}
	if err := checkToken(in.ClientToken); err != nil {
		return validated{}, err
	}
	g, err := checkGroup(in.GroupName)
	if err != nil {
		return validated{}, err
	}
	switch {
	case in.ScheduleExpression == nil:
		return validated{}, invalid(nil, "scheduleExpression", "Member must not be null")
	case in.FlexibleTimeWindow == nil:
		return validated{}, invalid(nil, "flexibleTimeWindow", "Member must not be null")
	case in.Target == nil:
		return validated{}, invalid(nil, "target", "Member must not be null")
	}
	def := scheduleDef{Name: in.Name, GroupName: g, ScheduleExpression: *in.ScheduleExpression, Description: in.Description,
		KmsKeyArn: in.KmsKeyArn, StartDate: in.StartDate, EndDate: in.EndDate, FlexibleTimeWindow: *in.FlexibleTimeWindow,
		Target: *in.Target, State: in.State, ActionAfterCompletion: in.ActionAfterCompletion, ScheduleExpressionTimezone: "UTC"}
	if l := len(def.ScheduleExpression); l < 1 || l > 256 {
		return validated{}, invalid(def.ScheduleExpression, "scheduleExpression", "Member must have length between 1 and 256")
	}
	loc := time.UTC
	if tz := in.ScheduleExpressionTimezone; tz != nil {
		l, lerr := time.LoadLocation(*tz)
		if *tz == "" || *tz == "Local" || len(*tz) > 50 || lerr != nil {
			return validated{}, protocol.Errorf("ValidationException", "Invalid time zone: %s.", *tz)
		}
		loc, def.ScheduleExpressionTimezone = l, *tz
	}
	expr, perr := parseExpression(def.ScheduleExpression, loc)
	if perr != nil {
		return validated{}, protocol.Errorf("ValidationException", "%v", perr)
	}
	switch def.State {
	case "":
		def.State = "ENABLED"
	case "ENABLED", "DISABLED":
	default:
		return validated{}, invalid(def.State, "state", "Member must satisfy enum value set: [ENABLED, DISABLED]")
	}
	switch def.ActionAfterCompletion {
	case "":
		def.ActionAfterCompletion = "NONE"
	case "NONE", "DELETE":
	default:
		return validated{}, invalid(def.ActionAfterCompletion, "actionAfterCompletion", "Member must satisfy enum value set: [NONE, DELETE]")
	}
	if d := def.Description; d != nil && len(*d) > 512 {
		return validated{}, invalid(*d, "description", "Member must have length less than or equal to 512")
	}
	if k := def.KmsKeyArn; k != nil && !kmsPattern.MatchString(*k) {
		return validated{}, invalid(*k, "kmsKeyArn", "Member must satisfy regular expression pattern: "+kmsPattern.String())
	}
	w := def.FlexibleTimeWindow
	switch w.Mode {
	case "OFF":
		if w.MaximumWindowInMinutes != nil {
			return validated{}, protocol.Errorf("ValidationException", "MaximumWindowInMinutes must not be provided when Mode is OFF.")
		}
	case "FLEXIBLE":
		if m := w.MaximumWindowInMinutes; m == nil {
			return validated{}, protocol.Errorf("ValidationException", "MaximumWindowInMinutes must be provided when Mode is FLEXIBLE.")
		} else if *m < 1 || *m > 1440 {
			return validated{}, invalid(*m, "flexibleTimeWindow.maximumWindowInMinutes", "Member must have value between 1 and 1440")
		}
	case "":
		return validated{}, invalid(nil, "flexibleTimeWindow.mode", "Member must not be null")
	default:
		return validated{}, invalid(w.Mode, "flexibleTimeWindow.mode", "Member must satisfy enum value set: [OFF, FLEXIBLE]")
	}
	t := &def.Target
	switch {
	case t.Arn == "" || len(t.Arn) > 1600:
		return validated{}, invalid(nilIfEmpty(t.Arn), "target.arn", "Member must have length between 1 and 1600")
	case t.RoleArn == "":
		return validated{}, invalid(nil, "target.roleArn", "Member must not be null")
	case !rolePattern.MatchString(t.RoleArn):
		return validated{}, invalid(t.RoleArn, "target.roleArn", `Member must satisfy regular expression pattern: ^arn:aws(-[a-z]+)?:iam::\d{12}:role\/[\w+=,.@\/-]+$`)
	case t.Input != nil && *t.Input == "":
		return validated{}, invalid("", "target.input", "Member must have length greater than or equal to 1")
	}
	rp := retryPolicy{MaximumEventAgeInSeconds: &defaultRetryAge, MaximumRetryAttempts: &defaultRetries}
	if t.RetryPolicy != nil {
		if a := t.RetryPolicy.MaximumEventAgeInSeconds; a != nil {
			if *a < 60 || *a > 86400 {
				return validated{}, invalid(*a, "target.retryPolicy.maximumEventAgeInSeconds", "Member must have value between 60 and 86400")
			}
			rp.MaximumEventAgeInSeconds = a
		}
		if n := t.RetryPolicy.MaximumRetryAttempts; n != nil {
			if *n < 0 || *n > 185 {
				return validated{}, invalid(*n, "target.retryPolicy.maximumRetryAttempts", "Member must have value between 0 and 185")
			}
			rp.MaximumRetryAttempts = n
		}
	}
	t.RetryPolicy = &rp
	if expr.at == nil {
		// One-time schedules ignore StartDate and EndDate; recurring ones are checked.
		if sd := def.StartDate; sd != nil && sd.Before(now.Add(-5*time.Minute)) {
			return validated{}, protocol.Errorf("ValidationException", "The StartDate you specify cannot be earlier than 5 minutes before the current time.")
		}
		if ed := def.EndDate; ed != nil {
			if !ed.After(now) {
				return validated{}, protocol.Errorf("ValidationException", "The EndDate you specify cannot be earlier than the current time.")
			}
			if sd := def.StartDate; sd != nil && !ed.After(sd.Time) {
				return validated{}, protocol.Errorf("ValidationException", "The EndDate you specify must be after the StartDate.")
			}
		}
	}
	return validated{def: def, expr: expr, loc: loc}, nil
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (s *Service) createSchedule(_ context.Context, _ *protocol.Request, in *scheduleInput) (*scheduleARNOutput, *protocol.Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	v, err := validate(in, now)
	if err != nil {
		return nil, err
	}
	g, ok := s.groups[v.def.GroupName]
	if !ok {
		return nil, protocol.Errorf("ResourceNotFoundException", "Schedule group %s does not exist.", v.def.GroupName)
	}
	k := key{v.def.GroupName, v.def.Name}
	if old, ok := s.schedules[k]; ok {
		if in.ClientToken != "" && old.Token == in.ClientToken {
			return &scheduleARNOutput{ScheduleArn: s.scheduleARN(k.Group, k.Name)}, nil // a retried create
		}
		return nil, protocol.Errorf("ConflictException", "Schedule %s already exists.", v.def.Name)
	}
	sc := &schedule{Def: v.def, Created: now, Modified: now, Token: in.ClientToken}
	sc.Next = first(v, now)
	s.schedules[k] = sc
	g.Schedules++
	s.save()
	return &scheduleARNOutput{ScheduleArn: s.scheduleARN(k.Group, k.Name)}, nil
}

func (s *Service) updateSchedule(_ context.Context, _ *protocol.Request, in *scheduleInput) (*scheduleARNOutput, *protocol.Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	v, err := validate(in, now)
	if err != nil {
		return nil, err
	}
	k := key{v.def.GroupName, v.def.Name}
	sc, ok := s.schedules[k]
	if !ok {
		return nil, protocol.Errorf("ResourceNotFoundException", "Schedule %s does not exist.", v.def.Name)
	}
	old := sc.Def
	// An update that keeps the timing keeps the schedule's place in it; any other starts anew.
	if old.ScheduleExpression != v.def.ScheduleExpression || old.ScheduleExpressionTimezone != v.def.ScheduleExpressionTimezone ||
		!sameTime(old.StartDate, v.def.StartDate) || !sameTime(old.EndDate, v.def.EndDate) || (old.State == "DISABLED" && v.def.State == "ENABLED") {
		sc.Next = first(v, now)
	}
	sc.Def, sc.Modified = v.def, now
	s.save()
	return &scheduleARNOutput{ScheduleArn: s.scheduleARN(k.Group, k.Name)}, nil
}

func sameTime(a, b *protocol.Timestamp) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(b.Time)
}

type getScheduleInput struct {
	Name      string `aws:"uri:Name" json:"-"`
	GroupName string `aws:"query:groupName" json:"-"`
}

type getScheduleOutput struct {
	Arn                  string             `json:"Arn"`
	CreationDate         protocol.Timestamp `json:"CreationDate"`
	LastModificationDate protocol.Timestamp `json:"LastModificationDate"`
	scheduleDef
}

func (s *Service) lookup(name, groupName string) (*schedule, key, *protocol.Error) {
	if err := checkName(name, "name"); err != nil {
		return nil, key{}, err
	}
	g, err := checkGroup(groupName)
	if err != nil {
		return nil, key{}, err
	}
	k := key{g, name}
	sc, ok := s.schedules[k]
	if !ok {
		return nil, k, protocol.Errorf("ResourceNotFoundException", "Schedule %s does not exist.", name)
	}
	return sc, k, nil
}

func (s *Service) getSchedule(_ context.Context, _ *protocol.Request, in *getScheduleInput) (*getScheduleOutput, *protocol.Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sc, k, err := s.lookup(in.Name, in.GroupName)
	if err != nil {
		return nil, err
	}
	return &getScheduleOutput{Arn: s.scheduleARN(k.Group, k.Name), CreationDate: protocol.Timestamp{Time: sc.Created},
		LastModificationDate: protocol.Timestamp{Time: sc.Modified}, scheduleDef: sc.Def}, nil
}

type deleteScheduleInput struct {
	Name        string `aws:"uri:Name" json:"-"`
	GroupName   string `aws:"query:groupName" json:"-"`
	ClientToken string `aws:"query:clientToken" json:"-"`
}

type emptyOutput struct{}

func (s *Service) deleteSchedule(_ context.Context, _ *protocol.Request, in *deleteScheduleInput) (*emptyOutput, *protocol.Error) {
	if err := checkToken(in.ClientToken); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, k, err := s.lookup(in.Name, in.GroupName)
	if err != nil {
		return nil, err
	}
	s.remove(k)
	s.save()
	return &emptyOutput{}, nil
}

// remove deletes a schedule; the caller holds s.mu and saves.
func (s *Service) remove(k key) {
	delete(s.schedules, k)
	if g := s.groups[k.Group]; g != nil {
		g.Schedules--
	}
}

type listSchedulesInput struct {
	GroupName  string `aws:"query:ScheduleGroup" json:"-"`
	MaxResults *int   `aws:"query:MaxResults" json:"-"`
	NamePrefix string `aws:"query:NamePrefix" json:"-"`
	NextToken  string `aws:"query:NextToken" json:"-"`
	State      string `aws:"query:State" json:"-"`
}

type scheduleSummary struct {
	Arn                  string             `json:"Arn"`
	CreationDate         protocol.Timestamp `json:"CreationDate"`
	GroupName            string             `json:"GroupName"`
	LastModificationDate protocol.Timestamp `json:"LastModificationDate"`
	Name                 string             `json:"Name"`
	State                string             `json:"State"`
	Target               struct {
		Arn string `json:"Arn"`
	} `json:"Target"`
}

type listSchedulesOutput struct {
	NextToken *string           `json:"NextToken,omitempty"`
	Schedules []scheduleSummary `json:"Schedules"`
}

// page checks MaxResults and NextToken and returns the page size and the key after which the
// page starts ("" for the first page).
func page(maxResults *int, token string) (int, string, *protocol.Error) {
	n := 100
	if maxResults != nil {
		if *maxResults < 1 || *maxResults > 100 {
			return 0, "", invalid(*maxResults, "maxResults", "Member must have value between 1 and 100")
		}
		n = *maxResults
	}
	after := ""
	if token != "" {
		b, err := base64.RawURLEncoding.DecodeString(token)
		if err != nil || len(b) == 0 {
			return 0, "", protocol.Errorf("ValidationException", "Invalid NextToken.")
		}
		after = string(b)
	}
	return n, after, nil
}

func nextToken(last string) *string {
	t := base64.RawURLEncoding.EncodeToString([]byte(last))
	return &t
}

func (s *Service) listSchedules(_ context.Context, _ *protocol.Request, in *listSchedulesInput) (*listSchedulesOutput, *protocol.Error) {
	n, after, err := page(in.MaxResults, in.NextToken)
	if err != nil {
		return nil, err
	}
	if in.NamePrefix != "" {
		if err := checkName(in.NamePrefix, "namePrefix"); err != nil {
			return nil, err
		}
	}
	switch in.State {
	case "", "ENABLED", "DISABLED":
	default:
		return nil, invalid(in.State, "state", "Member must satisfy enum value set: [ENABLED, DISABLED]")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if in.GroupName != "" {
		if err := checkName(in.GroupName, "scheduleGroup"); err != nil {
			return nil, err
		}
		if _, ok := s.groups[in.GroupName]; !ok {
			return nil, protocol.Errorf("ResourceNotFoundException", "Schedule group %s does not exist.", in.GroupName)
		}
	}
	var keys []string
	byKey := map[string]*schedule{}
	for k, sc := range s.schedules {
		if (in.GroupName != "" && k.Group != in.GroupName) || !strings.HasPrefix(k.Name, in.NamePrefix) || (in.State != "" && sc.Def.State != in.State) {
			continue
		}
		id := k.Group + "/" + k.Name
		if id > after {
			keys = append(keys, id)
			byKey[id] = sc
		}
	}
	slices.Sort(keys)
	out := &listSchedulesOutput{Schedules: []scheduleSummary{}}
	for i, id := range keys {
		if i == n {
			out.NextToken = nextToken(keys[i-1])
			break
		}
		sc := byKey[id]
		sum := scheduleSummary{Arn: s.scheduleARN(sc.Def.GroupName, sc.Def.Name), CreationDate: protocol.Timestamp{Time: sc.Created},
			GroupName: sc.Def.GroupName, LastModificationDate: protocol.Timestamp{Time: sc.Modified}, Name: sc.Def.Name, State: sc.Def.State}
		sum.Target.Arn = sc.Def.Target.Arn
		out.Schedules = append(out.Schedules, sum)
	}
	return out, nil
}

type createGroupInput struct {
	Name        string `aws:"uri:Name" json:"-"`
	ClientToken string `json:"ClientToken"`
	Tags        []tag  `json:"Tags"`
}

type createGroupOutput struct {
	ScheduleGroupArn string `json:"ScheduleGroupArn"`
}

func (s *Service) createGroup(_ context.Context, _ *protocol.Request, in *createGroupInput) (*createGroupOutput, *protocol.Error) {
	if err := checkName(in.Name, "name"); err != nil {
		return nil, err
	}
	if err := checkToken(in.ClientToken); err != nil {
		return nil, err
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if g, ok := s.groups[in.Name]; ok {
		if in.ClientToken != "" && g.Token == in.ClientToken {
			return &createGroupOutput{ScheduleGroupArn: s.groupARN(in.Name)}, nil
		}
		return nil, protocol.Errorf("ConflictException", "Schedule group %s already exists.", in.Name)
	}
	now := s.now()
	s.groups[in.Name] = &group{Name: in.Name, Created: now, Modified: now, Token: in.ClientToken, Tags: in.Tags}
	s.save()
	return &createGroupOutput{ScheduleGroupArn: s.groupARN(in.Name)}, nil
}

type groupInput struct {
	Name        string `aws:"uri:Name" json:"-"`
	ClientToken string `aws:"query:clientToken" json:"-"`
}

type groupSummary struct {
	Arn                  string             `json:"Arn"`
	CreationDate         protocol.Timestamp `json:"CreationDate"`
	LastModificationDate protocol.Timestamp `json:"LastModificationDate"`
	Name                 string             `json:"Name"`
	State                string             `json:"State"`
}

func (s *Service) summary(g *group) groupSummary {
	return groupSummary{Arn: s.groupARN(g.Name), CreationDate: protocol.Timestamp{Time: g.Created},
		LastModificationDate: protocol.Timestamp{Time: g.Modified}, Name: g.Name, State: "ACTIVE"}
}

func (s *Service) getGroup(_ context.Context, _ *protocol.Request, in *groupInput) (*groupSummary, *protocol.Error) {
	if err := checkName(in.Name, "name"); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.groups[in.Name]
	if !ok {
		return nil, protocol.Errorf("ResourceNotFoundException", "Schedule group %s does not exist.", in.Name)
	}
	out := s.summary(g)
	return &out, nil
}

// deleteGroup deletes a group and the schedules in it (AWS does so asynchronously, the group
// DELETING meanwhile; the sandbox at once).
func (s *Service) deleteGroup(_ context.Context, _ *protocol.Request, in *groupInput) (*emptyOutput, *protocol.Error) {
	if err := checkName(in.Name, "name"); err != nil {
		return nil, err
	}
	if err := checkToken(in.ClientToken); err != nil {
		return nil, err
	}
	if in.Name == DefaultGroup {
		return nil, protocol.Errorf("ValidationException", "The default schedule group cannot be deleted.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.groups[in.Name]; !ok {
		return nil, protocol.Errorf("ResourceNotFoundException", "Schedule group %s does not exist.", in.Name)
	}
	for k := range s.schedules {
		if k.Group == in.Name {
			s.remove(k)
		}
	}
	delete(s.groups, in.Name)
	s.save()
	return &emptyOutput{}, nil
}

type listGroupsInput struct {
	MaxResults *int   `aws:"query:MaxResults" json:"-"`
	NamePrefix string `aws:"query:NamePrefix" json:"-"`
	NextToken  string `aws:"query:NextToken" json:"-"`
}

type listGroupsOutput struct {
	NextToken      *string        `json:"NextToken,omitempty"`
	ScheduleGroups []groupSummary `json:"ScheduleGroups"`
}

func (s *Service) listGroups(_ context.Context, _ *protocol.Request, in *listGroupsInput) (*listGroupsOutput, *protocol.Error) {
	n, after, err := page(in.MaxResults, in.NextToken)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	for name := range s.groups {
		if strings.HasPrefix(name, in.NamePrefix) && name > after {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	out := &listGroupsOutput{ScheduleGroups: []groupSummary{}}
	for i, name := range names {
		if i == n {
			out.NextToken = nextToken(names[i-1])
			break
		}
		out.ScheduleGroups = append(out.ScheduleGroups, s.summary(s.groups[name]))
	}
	return out, nil
}

// Tags: only schedule groups carry them ("You can only assign tags to schedule groups"); the
// model's ARN pattern admits nothing else, so a schedule's ARN is a ValidationException.

var tagARNPattern = regexp.MustCompile(`^arn:aws(-[a-z]+)?:scheduler:[a-z0-9\-]+:\d{12}:schedule-group\/[0-9a-zA-Z-_.]+$`)

type tagResourceInput struct {
	ResourceArn string `aws:"uri:ResourceArn" json:"-"`
	Tags        []tag  `json:"Tags"`
}

type listTagsOutput struct {
	Tags []tag `json:"Tags"`
}

func checkTags(tags []tag) *protocol.Error {
	if len(tags) > 200 {
		return invalid(len(tags), "tags", "Member must have length less than or equal to 200")
	}
	for _, t := range tags {
		if len(t.Key) < 1 || len(t.Key) > 128 {
			return invalid(t.Key, "tags.member.key", "Member must have length between 1 and 128")
		}
		if len(t.Value) < 1 || len(t.Value) > 256 {
			return invalid(t.Value, "tags.member.value", "Member must have length between 1 and 256")
		}
	}
	return nil
}

// taggedGroup finds the group a tag operation's ARN names; the caller holds s.mu.
func (s *Service) taggedGroup(arn string) (*group, *protocol.Error) {
	if len(arn) > 1011 || !tagARNPattern.MatchString(arn) {
		return nil, invalid(arn, "resourceArn", `Member must satisfy regular expression pattern: ^arn:aws(-[a-z]+)?:scheduler:[a-z0-9\-]+:\d{12}:schedule-group\/[0-9a-zA-Z-_.]+$`)
	}
	name := arn[strings.LastIndex(arn, "/")+1:]
	g, ok := s.groups[name]
	if !ok || s.groupARN(name) != arn {
		return nil, protocol.Errorf("ResourceNotFoundException", "Schedule group %s does not exist.", name)
	}
	return g, nil
}

func (s *Service) tagResource(_ context.Context, _ *protocol.Request, in *tagResourceInput) (*emptyOutput, *protocol.Error) {
	if in.Tags == nil {
		return nil, invalid(nil, "tags", "Member must not be null")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, err := s.taggedGroup(in.ResourceArn)
	if err != nil {
		return nil, err
	}
	tags := slices.Clone(g.Tags)
	for _, t := range in.Tags {
		if i := slices.IndexFunc(tags, func(x tag) bool { return x.Key == t.Key }); i >= 0 {
			tags[i] = t
		} else {
			tags = append(tags, t)
		}
	}
	if err := checkTags(tags); err != nil {
		return nil, err
	}
	g.Tags = tags
	s.save()
	return &emptyOutput{}, nil
}

func (s *Service) untagResource(_ context.Context, req *protocol.Request, in *tagResourceInput) (*emptyOutput, *protocol.Error) {
	keys, ok := req.Query()["TagKeys"]
	if !ok {
		return nil, invalid(nil, "tagKeys", "Member must not be null")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, err := s.taggedGroup(in.ResourceArn)
	if err != nil {
		return nil, err
	}
	g.Tags = slices.DeleteFunc(g.Tags, func(t tag) bool { return slices.Contains(keys, t.Key) })
	s.save()
	return &emptyOutput{}, nil
}

func (s *Service) listTags(_ context.Context, _ *protocol.Request, in *tagResourceInput) (*listTagsOutput, *protocol.Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, err := s.taggedGroup(in.ResourceArn)
	if err != nil {
		return nil, err
	}
	return &listTagsOutput{Tags: append([]tag{}, g.Tags...)}, nil
}
