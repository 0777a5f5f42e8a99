// Package codedeploy is the sandbox's AWS CodeDeploy for the EC2/On-Premises compute platform,
// over awsJson1_1: CreateApplication, GetApplication, CreateDeploymentGroup, GetDeploymentGroup,
// CreateDeployment, GetDeployment, ListDeployments and ContinueDeployment.
//
// A deployment runs by itself, one step every StepDelay (the sandbox's --update-delay):
//
//	Created ──▶ InProgress ──▶ (Ready) ──▶ Succeeded
//
// At InProgress a blue/green deployment whose deployment group provisions its green fleet with
// COPY_AUTO_SCALING_GROUP creates the replacement Auto Scaling group, named as CodeDeploy names it,
// CodeDeploy_<deploymentGroupName>_<deploymentId>, copying the original group's configuration
// except its target groups and Classic Load Balancers — CodeDeploy's own behaviour, the gap
// package keeper closes. One step later the replacement is ready for traffic (the DeploymentReady
// trigger); with the deployment ready option STOP_DEPLOYMENT the deployment then waits in Ready
// until ContinueDeployment (the wait time is not enforced). Traffic is rerouted and the
// deployment Succeeded one step after that: the deployment group's Auto Scaling groups become the
// replacement, and the original group is deleted after terminationWaitTimeInMinutes when the
// blue instances' action is TERMINATE (KEEP_ALIVE keeps it). An in-place deployment goes from
// InProgress to Succeeded. EC2 instances, the CodeDeploy agent and load balancer registrations are
// not simulated: every deployment succeeds.
//
// The deployment group's triggers (DeploymentStart, DeploymentReady, DeploymentSuccess,
// DeploymentFailure) publish to their SNS topics the JSON message CodeDeploy documents for
// deployment-based triggers.
//
// The rule it keeps: errors are CodeDeploy's (ApplicationDoesNotExistException,
// DeploymentGroupDoesNotExistException, DeploymentDoesNotExistException, InvalidDeploymentIdException,
// ...), and so are the names and shapes a tool reads. State is kept in memory.
package codedeploy

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/aviary-deploy/aviary/sandbox/limits"
	"github.com/aviary-deploy/aviary/sandbox/protocol"
)

//go:generate go run ../protocol/errorsgen -model codedeploy/2014-10-06 -o model_gen.go

// Groups is the sandbox's Auto Scaling, as a deployment uses it.
type Groups interface {
	HasGroup(name string) bool
	// CopyGroup creates dst with src's configuration but its target groups and load balancers.
	CopyGroup(src, dst string) error
	DeleteGroup(name string)
}

// Topics is the sandbox's SNS, where triggers publish.
type Topics interface {
	Publish(topicARN, subject, message string, attrs map[string]map[string]string) (string, error)
}

// Config sets up a Service.
type Config struct {
	Region, Account string
	Groups          Groups
	Topics          Topics
	// StepDelay is the time between a deployment's steps; zero or negative means 10 ms.
	StepDelay time.Duration
	Now       func() time.Time
	Logger    *slog.Logger
}

// Service is the sandbox's CodeDeploy.
type Service struct {
	cfg         Config
	mu          sync.Mutex
	apps        map[string]*application
	deployments map[string]*deployment
	order       []string // deployment IDs, oldest first
	closed      bool
	timers      []*time.Timer
}

type application struct {
	ID, Name, ComputePlatform string
	Created                   time.Time
	groups                    map[string]*deploymentGroup
}

// New returns a CodeDeploy with no applications.
func New(cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.StepDelay <= 0 {
		cfg.StepDelay = 10 * time.Millisecond
	}
	return &Service{cfg: cfg, apps: map[string]*application{}, deployments: map[string]*deployment{}}
}

// Close stops running deployments where they are.
func (s *Service) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for _, t := range s.timers {
		t.Stop()
	}
}

// Handler serves the CodeDeploy API; l is asked about every request.
func (s *Service) Handler(l limits.Limiter) http.Handler {
	api := &protocol.Service{Name: "codedeploy", Model: apiModel, Limits: l}
	protocol.Handle(api, "CreateApplication", s.createApplication)
	protocol.Handle(api, "GetApplication", s.getApplication)
	protocol.Handle(api, "CreateDeploymentGroup", s.createDeploymentGroup)
	protocol.Handle(api, "GetDeploymentGroup", s.getDeploymentGroup)
	protocol.Handle(api, "CreateDeployment", s.createDeployment)
	protocol.Handle(api, "GetDeployment", s.getDeployment)
	protocol.Handle(api, "ListDeployments", s.listDeployments)
	protocol.Handle(api, "ContinueDeployment", s.continueDeployment)
	return api
}

func errorf(code, format string, args ...any) *protocol.Error {
	return protocol.Errorf(code, format, args...)
}

func newID(prefix string, n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return prefix + string(b)
}

func uuid() string { return protocol.NewRequestID() }

// --- applications ---

type createApplicationInput struct {
	ApplicationName string `json:"applicationName"`
	ComputePlatform string `json:"computePlatform"`
}

type createApplicationOutput struct {
	ApplicationID string `json:"applicationId"`
}

var validName = regexp.MustCompile(`^[A-Za-z0-9._+=,@-]{1,100}$`)

func (s *Service) createApplication(_ context.Context, _ *protocol.Request, in *createApplicationInput) (*createApplicationOutput, *protocol.Error) {
	if in.ApplicationName == "" {
		return nil, errorf("ApplicationNameRequiredException", "Application name is required")
	}
	if !validName.MatchString(in.ApplicationName) {
		return nil, errorf("InvalidApplicationNameException", "Application name is invalid: %s", in.ApplicationName)
	}
	switch in.ComputePlatform {
	case "":
		in.ComputePlatform = "Server"
	case "Server", "Lambda", "ECS":
	default:
		return nil, errorf("InvalidComputePlatformException", "Compute platform is invalid: %s", in.ComputePlatform)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.apps[in.ApplicationName]; ok {
		return nil, errorf("ApplicationAlreadyExistsException", "%s already exists in your account", in.ApplicationName)
	}
	a := &application{ID: uuid(), Name: in.ApplicationName, ComputePlatform: in.ComputePlatform, Created: s.cfg.Now(), groups: map[string]*deploymentGroup{}}
	s.apps[a.Name] = a
	return &createApplicationOutput{ApplicationID: a.ID}, nil
}

type applicationInfo struct {
	ApplicationID   string             `json:"applicationId"`
	ApplicationName string             `json:"applicationName"`
	CreateTime      protocol.Timestamp `json:"createTime"`
	LinkedToGitHub  bool               `json:"linkedToGitHub"`
	ComputePlatform string             `json:"computePlatform"`
}

type getApplicationOutput struct {
	Application applicationInfo `json:"application"`
}

func (s *Service) getApplication(_ context.Context, _ *protocol.Request, in *createApplicationInput) (*getApplicationOutput, *protocol.Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.app(in.ApplicationName)
	if err != nil {
		return nil, err
	}
	return &getApplicationOutput{Application: applicationInfo{a.ID, a.Name, protocol.Timestamp{Time: a.Created}, false, a.ComputePlatform}}, nil
}

func (s *Service) app(name string) (*application, *protocol.Error) {
	if name == "" {
		return nil, errorf("ApplicationNameRequiredException", "Application name is required")
	}
	a, ok := s.apps[name]
	if !ok {
		return nil, errorf("ApplicationDoesNotExistException", "No application found for name: %s", name)
	}
	return a, nil
}

// --- deployment groups ---

type nameRef struct {
	Name string `json:"name,omitempty"`
}

type loadBalancerInfo struct {
	ElbInfoList             []nameRef       `json:"elbInfoList,omitempty"`
	TargetGroupInfoList     []nameRef       `json:"targetGroupInfoList,omitempty"`
	TargetGroupPairInfoList json.RawMessage `json:"targetGroupPairInfoList,omitempty"`
}

type deploymentStyle struct {
	DeploymentType   string `json:"deploymentType,omitempty"`
	DeploymentOption string `json:"deploymentOption,omitempty"`
}

type blueInstanceTermination struct {
	Action                       string `json:"action,omitempty"`
	TerminationWaitTimeInMinutes int    `json:"terminationWaitTimeInMinutes"`
}

type deploymentReadyOption struct {
	ActionOnTimeout   string `json:"actionOnTimeout,omitempty"`
	WaitTimeInMinutes int    `json:"waitTimeInMinutes"`
}

type greenFleetProvisioningOption struct {
	Action string `json:"action,omitempty"`
}

type blueGreenConfig struct {
	TerminateBlueInstancesOnDeploymentSuccess *blueInstanceTermination      `json:"terminateBlueInstancesOnDeploymentSuccess,omitempty"`
	DeploymentReadyOption                     *deploymentReadyOption        `json:"deploymentReadyOption,omitempty"`
	GreenFleetProvisioningOption              *greenFleetProvisioningOption `json:"greenFleetProvisioningOption,omitempty"`
}

type triggerConfig struct {
	TriggerName      string   `json:"triggerName,omitempty"`
	TriggerTargetArn string   `json:"triggerTargetArn,omitempty"`
	TriggerEvents    []string `json:"triggerEvents,omitempty"`
}

type asgInfo struct {
	Name string `json:"name"`
	Hook string `json:"hook,omitempty"`
}

type createDeploymentGroupInput struct {
	ApplicationName                  string            `json:"applicationName"`
	DeploymentGroupName              string            `json:"deploymentGroupName"`
	DeploymentConfigName             string            `json:"deploymentConfigName"`
	Ec2TagFilters                    json.RawMessage   `json:"ec2TagFilters"`
	AutoScalingGroups                []string          `json:"autoScalingGroups"`
	ServiceRoleArn                   string            `json:"serviceRoleArn"`
	TriggerConfigurations            []triggerConfig   `json:"triggerConfigurations"`
	AlarmConfiguration               json.RawMessage   `json:"alarmConfiguration"`
	AutoRollbackConfiguration        json.RawMessage   `json:"autoRollbackConfiguration"`
	OutdatedInstancesStrategy        string            `json:"outdatedInstancesStrategy"`
	DeploymentStyle                  *deploymentStyle  `json:"deploymentStyle"`
	BlueGreenDeploymentConfiguration *blueGreenConfig  `json:"blueGreenDeploymentConfiguration"`
	LoadBalancerInfo                 *loadBalancerInfo `json:"loadBalancerInfo"`
}

type createDeploymentGroupOutput struct {
	DeploymentGroupID string `json:"deploymentGroupId"`
}

// deploymentGroup is a deployment group in the shape GetDeploymentGroup answers it.
type deploymentGroup struct {
	ApplicationName                  string            `json:"applicationName"`
	DeploymentGroupID                string            `json:"deploymentGroupId"`
	DeploymentGroupName              string            `json:"deploymentGroupName"`
	DeploymentConfigName             string            `json:"deploymentConfigName"`
	Ec2TagFilters                    json.RawMessage   `json:"ec2TagFilters,omitempty"`
	AutoScalingGroups                []asgInfo         `json:"autoScalingGroups"`
	ServiceRoleArn                   string            `json:"serviceRoleArn"`
	TriggerConfigurations            []triggerConfig   `json:"triggerConfigurations"`
	AlarmConfiguration               json.RawMessage   `json:"alarmConfiguration,omitempty"`
	AutoRollbackConfiguration        json.RawMessage   `json:"autoRollbackConfiguration,omitempty"`
	DeploymentStyle                  deploymentStyle   `json:"deploymentStyle"`
	OutdatedInstancesStrategy        string            `json:"outdatedInstancesStrategy"`
	BlueGreenDeploymentConfiguration *blueGreenConfig  `json:"blueGreenDeploymentConfiguration,omitempty"`
	LoadBalancerInfo                 *loadBalancerInfo `json:"loadBalancerInfo,omitempty"`
	LastAttemptedDeployment          *lastDeployment   `json:"lastAttemptedDeployment,omitempty"`
	LastSuccessfulDeployment         *lastDeployment   `json:"lastSuccessfulDeployment,omitempty"`
	ComputePlatform                  string            `json:"computePlatform"`
	TerminationHookEnabled           bool              `json:"terminationHookEnabled"`
}

type lastDeployment struct {
	DeploymentID string             `json:"deploymentId"`
	Status       string             `json:"status"`
	EndTime      protocol.Timestamp `json:"endTime,omitzero"`
	CreateTime   protocol.Timestamp `json:"createTime"`
}

var triggerEvents = []string{"DeploymentStart", "DeploymentSuccess", "DeploymentFailure", "DeploymentStop", "DeploymentRollback",
	"DeploymentReady", "InstanceStart", "InstanceSuccess", "InstanceFailure", "InstanceReady"}

func (g *deploymentGroup) blueGreenCopy() bool {
	return g.DeploymentStyle.DeploymentType == "BLUE_GREEN" && g.BlueGreenDeploymentConfiguration != nil &&
		g.BlueGreenDeploymentConfiguration.GreenFleetProvisioningOption != nil &&
		g.BlueGreenDeploymentConfiguration.GreenFleetProvisioningOption.Action == "COPY_AUTO_SCALING_GROUP"
}

func (s *Service) createDeploymentGroup(_ context.Context, _ *protocol.Request, in *createDeploymentGroupInput) (*createDeploymentGroupOutput, *protocol.Error) {
	if in.DeploymentGroupName == "" {
		return nil, errorf("DeploymentGroupNameRequiredException", "Deployment group name is required")
	}
	if !validName.MatchString(in.DeploymentGroupName) {
		return nil, errorf("InvalidDeploymentGroupNameException", "Deployment group name is invalid: %s", in.DeploymentGroupName)
	}
	if in.ServiceRoleArn == "" {
		return nil, errorf("RoleRequiredException", "Role ARN is required")
	}
	if !regexp.MustCompile(`^arn:aws[a-z-]*:iam::\d{12}:role/.+`).MatchString(in.ServiceRoleArn) {
		return nil, errorf("InvalidRoleException", "The service role is invalid: %s", in.ServiceRoleArn)
	}
	style := deploymentStyle{DeploymentType: "IN_PLACE", DeploymentOption: "WITHOUT_TRAFFIC_CONTROL"}
	if in.DeploymentStyle != nil {
		if in.DeploymentStyle.DeploymentType != "" {
			style.DeploymentType = in.DeploymentStyle.DeploymentType
		}
		if in.DeploymentStyle.DeploymentOption != "" {
			style.DeploymentOption = in.DeploymentStyle.DeploymentOption
		}
	}
	if style.DeploymentType != "IN_PLACE" && style.DeploymentType != "BLUE_GREEN" || style.DeploymentOption != "WITH_TRAFFIC_CONTROL" && style.DeploymentOption != "WITHOUT_TRAFFIC_CONTROL" {
		return nil, errorf("InvalidDeploymentStyleException", "Deployment style is invalid: %s, %s", style.DeploymentType, style.DeploymentOption)
	}
	for _, t := range in.TriggerConfigurations {
		if t.TriggerName == "" || !regexp.MustCompile(`^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:.+`).MatchString(t.TriggerTargetArn) {
			return nil, errorf("InvalidTriggerConfigException", "The trigger %q needs a name and an SNS topic ARN", t.TriggerName)
		}
		for _, e := range t.TriggerEvents {
			if !slices.Contains(triggerEvents, e) {
				return nil, errorf("InvalidTriggerConfigException", "Trigger event type %s is not valid", e)
			}
		}
	}
	g := &deploymentGroup{
		ApplicationName: in.ApplicationName, DeploymentGroupID: uuid(), DeploymentGroupName: in.DeploymentGroupName,
		DeploymentConfigName: in.DeploymentConfigName, Ec2TagFilters: in.Ec2TagFilters, ServiceRoleArn: in.ServiceRoleArn,
		TriggerConfigurations: in.TriggerConfigurations, AlarmConfiguration: in.AlarmConfiguration,
		AutoRollbackConfiguration: in.AutoRollbackConfiguration, DeploymentStyle: style,
		OutdatedInstancesStrategy: in.OutdatedInstancesStrategy, BlueGreenDeploymentConfiguration: in.BlueGreenDeploymentConfiguration,
		LoadBalancerInfo: in.LoadBalancerInfo, AutoScalingGroups: []asgInfo{},
	}
	if g.DeploymentConfigName == "" {
		g.DeploymentConfigName = "CodeDeployDefault.OneAtATime"
	}
	if g.OutdatedInstancesStrategy == "" {
		g.OutdatedInstancesStrategy = "UPDATE"
	}
	if g.TriggerConfigurations == nil {
		g.TriggerConfigurations = []triggerConfig{}
	}
	if style.DeploymentType == "BLUE_GREEN" {
		if g.BlueGreenDeploymentConfiguration == nil {
			g.BlueGreenDeploymentConfiguration = &blueGreenConfig{}
		}
		bg := g.BlueGreenDeploymentConfiguration
		if bg.TerminateBlueInstancesOnDeploymentSuccess == nil {
			bg.TerminateBlueInstancesOnDeploymentSuccess = &blueInstanceTermination{Action: "TERMINATE", TerminationWaitTimeInMinutes: 60}
		}
		if bg.DeploymentReadyOption == nil {
			bg.DeploymentReadyOption = &deploymentReadyOption{ActionOnTimeout: "CONTINUE_DEPLOYMENT"}
		}
		if bg.GreenFleetProvisioningOption == nil {
			bg.GreenFleetProvisioningOption = &greenFleetProvisioningOption{Action: "DISCOVER_EXISTING"}
		}
		if style.DeploymentOption == "WITH_TRAFFIC_CONTROL" && (g.LoadBalancerInfo == nil || len(g.LoadBalancerInfo.ElbInfoList)+len(g.LoadBalancerInfo.TargetGroupInfoList) == 0) {
			return nil, errorf("InvalidLoadBalancerInfoException", "A blue/green deployment with traffic control needs a load balancer or target group in loadBalancerInfo")
		}
		if g.blueGreenCopy() && len(in.AutoScalingGroups) != 1 {
			return nil, errorf("InvalidAutoScalingGroupException", "A blue/green deployment group that copies an Auto Scaling group must name exactly one Auto Scaling group")
		}
	}
	for _, name := range in.AutoScalingGroups {
		if s.cfg.Groups != nil && !s.cfg.Groups.HasGroup(name) {
			return nil, errorf("InvalidAutoScalingGroupException", "Auto Scaling group not found: %s", name)
		}
		g.AutoScalingGroups = append(g.AutoScalingGroups, asgInfo{Name: name, Hook: "CodeDeploy-managed-automatic-launch-deployment-hook-" + in.DeploymentGroupName + "-" + uuid()})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.app(in.ApplicationName)
	if err != nil {
		return nil, err
	}
	if _, ok := a.groups[g.DeploymentGroupName]; ok {
		return nil, errorf("DeploymentGroupAlreadyExistsException", "Deployment group %s already exists for application %s", g.DeploymentGroupName, a.Name)
	}
	g.ComputePlatform = a.ComputePlatform
	a.groups[g.DeploymentGroupName] = g
	return &createDeploymentGroupOutput{DeploymentGroupID: g.DeploymentGroupID}, nil
}

type groupRef struct {
	ApplicationName     string `json:"applicationName"`
	DeploymentGroupName string `json:"deploymentGroupName"`
}

type getDeploymentGroupOutput struct {
	DeploymentGroupInfo *deploymentGroup `json:"deploymentGroupInfo"`
}

func (s *Service) group(app, name string) (*deploymentGroup, *protocol.Error) {
	a, err := s.app(app)
	if err != nil {
		return nil, err
	}
	if name == "" {
		return nil, errorf("DeploymentGroupNameRequiredException", "Deployment group name is required")
	}
	g, ok := a.groups[name]
	if !ok {
		return nil, errorf("DeploymentGroupDoesNotExistException", "No Deployment Group found for name: %s", name)
	}
	return g, nil
}

func (s *Service) getDeploymentGroup(_ context.Context, _ *protocol.Request, in *groupRef) (*getDeploymentGroupOutput, *protocol.Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, err := s.group(in.ApplicationName, in.DeploymentGroupName)
	if err != nil {
		return nil, err
	}
	b, _ := json.Marshal(g) // a copy, read outside the lock
	var c deploymentGroup
	_ = json.Unmarshal(b, &c)
	return &getDeploymentGroupOutput{DeploymentGroupInfo: &c}, nil
}

// --- deployments ---

type targetInstances struct {
	AutoScalingGroups []string `json:"autoScalingGroups,omitempty"`
}

type errorInformation struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type overview struct {
	Pending    int `json:"Pending"`
	InProgress int `json:"InProgress"`
	Succeeded  int `json:"Succeeded"`
	Failed     int `json:"Failed"`
	Skipped    int `json:"Skipped"`
	Ready      int `json:"Ready"`
}

// deployment is a deployment in the shape GetDeployment answers it.
type deployment struct {
	ApplicationName                    string             `json:"applicationName"`
	DeploymentGroupName                string             `json:"deploymentGroupName"`
	DeploymentConfigName               string             `json:"deploymentConfigName"`
	DeploymentID                       string             `json:"deploymentId"`
	Revision                           json.RawMessage    `json:"revision,omitempty"`
	Status                             string             `json:"status"`
	ErrorInformation                   *errorInformation  `json:"errorInformation,omitempty"`
	CreateTime                         protocol.Timestamp `json:"createTime"`
	StartTime                          protocol.Timestamp `json:"startTime,omitzero"`
	CompleteTime                       protocol.Timestamp `json:"completeTime,omitzero"`
	DeploymentOverview                 overview           `json:"deploymentOverview"`
	Description                        string             `json:"description,omitempty"`
	Creator                            string             `json:"creator"`
	IgnoreApplicationStopFailures      bool               `json:"ignoreApplicationStopFailures"`
	UpdateOutdatedInstancesOnly        bool               `json:"updateOutdatedInstancesOnly"`
	DeploymentStyle                    deploymentStyle    `json:"deploymentStyle"`
	TargetInstances                    *targetInstances   `json:"targetInstances,omitempty"`
	InstanceTerminationWaitTimeStarted bool               `json:"instanceTerminationWaitTimeStarted"`
	BlueGreenDeploymentConfiguration   *blueGreenConfig   `json:"blueGreenDeploymentConfiguration,omitempty"`
	LoadBalancerInfo                   *loadBalancerInfo  `json:"loadBalancerInfo,omitempty"`
	FileExistsBehavior                 string             `json:"fileExistsBehavior"`
	ComputePlatform                    string             `json:"computePlatform"`

	original string // the Auto Scaling group a blue/green copy copies
}

type createDeploymentInput struct {
	ApplicationName               string          `json:"applicationName"`
	DeploymentGroupName           string          `json:"deploymentGroupName"`
	Revision                      json.RawMessage `json:"revision"`
	DeploymentConfigName          string          `json:"deploymentConfigName"`
	Description                   string          `json:"description"`
	IgnoreApplicationStopFailures bool            `json:"ignoreApplicationStopFailures"`
	UpdateOutdatedInstancesOnly   bool            `json:"updateOutdatedInstancesOnly"`
	FileExistsBehavior            string          `json:"fileExistsBehavior"`
}

type createDeploymentOutput struct {
	DeploymentID string `json:"deploymentId"`
}

// ReplacementGroupName is the name CodeDeploy gives the Auto Scaling group it creates for a
// blue/green deployment that copies the original group.
func ReplacementGroupName(deploymentGroup, deploymentID string) string {
	return "CodeDeploy_" + deploymentGroup + "_" + deploymentID
}

func (s *Service) createDeployment(_ context.Context, _ *protocol.Request, in *createDeploymentInput) (*createDeploymentOutput, *protocol.Error) {
	if len(in.Revision) == 0 || string(in.Revision) == "null" {
		return nil, errorf("RevisionRequiredException", "Revision is required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, err := s.group(in.ApplicationName, in.DeploymentGroupName)
	if err != nil {
		return nil, err
	}
	for _, id := range s.order {
		if d := s.deployments[id]; d.ApplicationName == g.ApplicationName && d.DeploymentGroupName == g.DeploymentGroupName && active(d.Status) {
			return nil, errorf("DeploymentLimitExceededException", "The Deployment Group '%s' already has an active Deployment '%s'", g.DeploymentGroupName, id)
		}
	}
	now := s.cfg.Now()
	d := &deployment{
		ApplicationName: g.ApplicationName, DeploymentGroupName: g.DeploymentGroupName, DeploymentConfigName: g.DeploymentConfigName,
		DeploymentID: newID("d-", 9), Revision: in.Revision, Status: "Created", CreateTime: protocol.Timestamp{Time: now},
		Description: in.Description, Creator: "user", IgnoreApplicationStopFailures: in.IgnoreApplicationStopFailures,
		UpdateOutdatedInstancesOnly: in.UpdateOutdatedInstancesOnly, DeploymentStyle: g.DeploymentStyle,
		BlueGreenDeploymentConfiguration: g.BlueGreenDeploymentConfiguration, LoadBalancerInfo: g.LoadBalancerInfo,
		FileExistsBehavior: in.FileExistsBehavior, ComputePlatform: g.ComputePlatform,
	}
	if in.DeploymentConfigName != "" {
		d.DeploymentConfigName = in.DeploymentConfigName
	}
	if d.FileExistsBehavior == "" {
		d.FileExistsBehavior = "DISALLOW"
	}
	if g.blueGreenCopy() {
		if len(g.AutoScalingGroups) != 1 {
			return nil, errorf("InvalidAutoScalingGroupException", "The deployment group %s must name exactly one Auto Scaling group to copy", g.DeploymentGroupName)
		}
		d.original = g.AutoScalingGroups[0].Name
		d.TargetInstances = &targetInstances{AutoScalingGroups: []string{ReplacementGroupName(g.DeploymentGroupName, d.DeploymentID)}}
	}
	s.deployments[d.DeploymentID] = d
	s.order = append(s.order, d.DeploymentID)
	g.LastAttemptedDeployment = &lastDeployment{DeploymentID: d.DeploymentID, Status: d.Status, CreateTime: d.CreateTime}
	s.after(s.cfg.StepDelay, func() { s.start(d.DeploymentID) })
	return &createDeploymentOutput{DeploymentID: d.DeploymentID}, nil
}

func active(status string) bool {
	switch status {
	case "Created", "Queued", "InProgress", "Baking", "Ready":
		return true
	}
	return false
}

// after runs fn after delay unless the service is closed; the caller holds s.mu.
func (s *Service) after(delay time.Duration, fn func()) {
	if s.closed {
		return
	}
	s.timers = append(s.timers, time.AfterFunc(delay, fn))
}

// step changes a deployment under the lock and sends the triggers it names afterwards.
func (s *Service) step(id string, fn func(d *deployment, g *deploymentGroup) []string) {
	s.mu.Lock()
	d, ok := s.deployments[id]
	if !ok || s.closed {
		s.mu.Unlock()
		return
	}
	g, err := s.group(d.ApplicationName, d.DeploymentGroupName)
	if err != nil {
		s.mu.Unlock()
		return
	}
	events := fn(d, g)
	g.LastAttemptedDeployment = &lastDeployment{DeploymentID: d.DeploymentID, Status: d.Status, CreateTime: d.CreateTime, EndTime: d.CompleteTime}
	if d.Status == "Succeeded" {
		g.LastSuccessfulDeployment = g.LastAttemptedDeployment
	}
	var sends []func()
	for _, e := range events {
		sends = append(sends, s.triggers(d, g, e)...)
	}
	s.mu.Unlock()
	for _, send := range sends {
		send()
	}
}

func (s *Service) start(id string) {
	s.step(id, func(d *deployment, g *deploymentGroup) []string {
		d.Status, d.StartTime = "InProgress", protocol.Timestamp{Time: s.cfg.Now()}
		d.DeploymentOverview.InProgress = 1
		if d.original != "" {
			replacement := d.TargetInstances.AutoScalingGroups[0]
			if err := s.cfg.Groups.CopyGroup(d.original, replacement); err != nil {
				return s.fail(d, "AUTO_SCALING_CONFIGURATION", fmt.Sprintf("The Auto Scaling group %s could not be copied: %v", d.original, err))
			}
			s.cfg.Logger.Info("codedeploy: created the replacement Auto Scaling group", "deployment", d.DeploymentID, "original", d.original, "replacement", replacement)
		}
		s.after(s.cfg.StepDelay, func() { s.ready(id) })
		return []string{"DeploymentStart"}
	})
}

func (s *Service) fail(d *deployment, code, msg string) []string {
	d.Status, d.CompleteTime = "Failed", protocol.Timestamp{Time: s.cfg.Now()}
	d.ErrorInformation = &errorInformation{Code: code, Message: msg}
	d.DeploymentOverview = overview{Failed: 1}
	return []string{"DeploymentStart", "DeploymentFailure"}
}

func (s *Service) ready(id string) {
	s.step(id, func(d *deployment, g *deploymentGroup) []string {
		if d.DeploymentStyle.DeploymentType != "BLUE_GREEN" {
			s.succeed(d, g)
			return []string{"DeploymentSuccess"}
		}
		if o := d.BlueGreenDeploymentConfiguration.DeploymentReadyOption; o != nil && o.ActionOnTimeout == "STOP_DEPLOYMENT" {
			d.Status = "Ready"
			d.DeploymentOverview = overview{Ready: 1}
		} else {
			s.after(s.cfg.StepDelay, func() { s.reroute(id) })
		}
		return []string{"DeploymentReady"}
	})
}

func (s *Service) reroute(id string) {
	s.step(id, func(d *deployment, g *deploymentGroup) []string {
		s.succeed(d, g)
		return []string{"DeploymentSuccess"}
	})
}

// succeed completes a deployment; for a blue/green copy the replacement group becomes the
// deployment group's and the original is terminated as configured.
func (s *Service) succeed(d *deployment, g *deploymentGroup) {
	d.Status, d.CompleteTime = "Succeeded", protocol.Timestamp{Time: s.cfg.Now()}
	d.DeploymentOverview = overview{Succeeded: 1}
	if d.original == "" {
		return
	}
	replacement := d.TargetInstances.AutoScalingGroups[0]
	g.AutoScalingGroups = []asgInfo{{Name: replacement, Hook: "CodeDeploy-managed-automatic-launch-deployment-hook-" + g.DeploymentGroupName + "-" + uuid()}}
	t := d.BlueGreenDeploymentConfiguration.TerminateBlueInstancesOnDeploymentSuccess
	if t == nil || t.Action != "TERMINATE" {
		return
	}
	d.InstanceTerminationWaitTimeStarted = true
	original := d.original
	s.after(time.Duration(t.TerminationWaitTimeInMinutes)*time.Minute, func() { s.cfg.Groups.DeleteGroup(original) })
}

// triggerMessage is the JSON message of a deployment-based trigger: the members CodeDeploy's
// documentation shows, with the status in capitals and the times as CodeDeploy's messages carry
// them ("Thu Dec 13 20:23:06 UTC 2018"; completeTime null until the deployment ends).
type triggerMessage struct {
	Region              string            `json:"region"`
	AccountID           string            `json:"accountId"`
	EventTriggerName    string            `json:"eventTriggerName"`
	ApplicationName     string            `json:"applicationName"`
	DeploymentID        string            `json:"deploymentId"`
	DeploymentGroupName string            `json:"deploymentGroupName"`
	CreateTime          string            `json:"createTime"`
	CompleteTime        *string           `json:"completeTime"`
	DeploymentOverview  map[string]string `json:"deploymentOverview"`
	Status              string            `json:"status"`
	ErrorInformation    map[string]string `json:"errorInformation,omitempty"`
}

func messageTime(t protocol.Timestamp) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format("Mon Jan 02 15:04:05 UTC 2006")
	return &s
}

// triggerStatus is the status a trigger's message and subject carry for each event.
var triggerStatus = map[string]string{"DeploymentStart": "CREATED", "DeploymentReady": "READY", "DeploymentSuccess": "SUCCEEDED",
	"DeploymentFailure": "FAILED", "DeploymentStop": "STOPPED", "DeploymentRollback": "ROLLBACK"}

// triggers returns the sends of the group's triggers for event, as CodeDeploy publishes them.
func (s *Service) triggers(d *deployment, g *deploymentGroup, event string) []func() {
	var sends []func()
	for _, t := range g.TriggerConfigurations {
		if !slices.Contains(t.TriggerEvents, event) {
			continue
		}
		o := d.DeploymentOverview
		m := triggerMessage{
			Region: s.cfg.Region, AccountID: s.cfg.Account, EventTriggerName: t.TriggerName, ApplicationName: d.ApplicationName,
			DeploymentID: d.DeploymentID, DeploymentGroupName: d.DeploymentGroupName, CreateTime: *messageTime(d.CreateTime),
			CompleteTime: messageTime(d.CompleteTime), Status: triggerStatus[event],
			DeploymentOverview: map[string]string{"Failed": strconv.Itoa(o.Failed), "InProgress": strconv.Itoa(o.InProgress),
				"Pending": strconv.Itoa(o.Pending), "Skipped": strconv.Itoa(o.Skipped), "Succeeded": strconv.Itoa(o.Succeeded)},
		}
		if d.ErrorInformation != nil {
			m.ErrorInformation = map[string]string{"ErrorCode": d.ErrorInformation.Code, "ErrorMessage": d.ErrorInformation.Message}
		}
		body, _ := json.Marshal(m)
		subject := fmt.Sprintf("%s: AWS CodeDeploy %s in %s to %s", m.Status, d.DeploymentID, s.cfg.Region, d.ApplicationName)
		topic, log := t.TriggerTargetArn, s.cfg.Logger
		sends = append(sends, func() {
			if _, err := s.cfg.Topics.Publish(topic, subject, string(body), nil); err != nil {
				log.Warn("codedeploy: trigger not sent", "trigger", m.EventTriggerName, "topic", topic, "err", err)
			}
		})
	}
	return sends
}

var deploymentIDPattern = regexp.MustCompile(`^d-[A-Z0-9]{9}$`)

type deploymentRef struct {
	DeploymentID string `json:"deploymentId"`
}

type getDeploymentOutput struct {
	DeploymentInfo *deployment `json:"deploymentInfo"`
}

func (s *Service) deployment(id string) (*deployment, *protocol.Error) {
	if id == "" {
		return nil, errorf("DeploymentIdRequiredException", "Deployment ID is required")
	}
	if !deploymentIDPattern.MatchString(id) {
		return nil, errorf("InvalidDeploymentIdException", "Specified DeploymentId is not in the valid format: %s", id)
	}
	d, ok := s.deployments[id]
	if !ok {
		return nil, errorf("DeploymentDoesNotExistException", "The deployment %s could not be found", id)
	}
	return d, nil
}

func (s *Service) getDeployment(_ context.Context, _ *protocol.Request, in *deploymentRef) (*getDeploymentOutput, *protocol.Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.deployment(in.DeploymentID)
	if err != nil {
		return nil, err
	}
	b, _ := json.Marshal(d)
	var c deployment
	_ = json.Unmarshal(b, &c)
	return &getDeploymentOutput{DeploymentInfo: &c}, nil
}

type listDeploymentsInput struct {
	ApplicationName     string   `json:"applicationName"`
	DeploymentGroupName string   `json:"deploymentGroupName"`
	IncludeOnlyStatuses []string `json:"includeOnlyStatuses"`
	NextToken           string   `json:"nextToken"`
}

type listDeploymentsOutput struct {
	Deployments []string `json:"deployments"`
	NextToken   string   `json:"nextToken,omitempty"`
}

// listPage is how many deployment IDs ListDeployments answers at once.
const listPage = 100

func (s *Service) listDeployments(_ context.Context, _ *protocol.Request, in *listDeploymentsInput) (*listDeploymentsOutput, *protocol.Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if in.ApplicationName != "" {
		if in.DeploymentGroupName != "" {
			if _, err := s.group(in.ApplicationName, in.DeploymentGroupName); err != nil {
				return nil, err
			}
		} else if _, err := s.app(in.ApplicationName); err != nil {
			return nil, err
		}
	} else if in.DeploymentGroupName != "" {
		return nil, errorf("ApplicationNameRequiredException", "Application name is required when a deployment group name is given")
	}
	var ids []string
	for i := len(s.order) - 1; i >= 0; i-- { // newest first
		d := s.deployments[s.order[i]]
		if in.ApplicationName != "" && d.ApplicationName != in.ApplicationName ||
			in.DeploymentGroupName != "" && d.DeploymentGroupName != in.DeploymentGroupName ||
			len(in.IncludeOnlyStatuses) > 0 && !slices.Contains(in.IncludeOnlyStatuses, d.Status) {
			continue
		}
		ids = append(ids, d.DeploymentID)
	}
	start := 0
	if in.NextToken != "" {
		n, err := strconv.Atoi(in.NextToken)
		if err != nil || n < 0 || n > len(ids) {
			return nil, errorf("InvalidNextTokenException", "The next token is not valid")
		}
		start = n
	}
	out := &listDeploymentsOutput{Deployments: []string{}}
	for i := start; i < len(ids); i++ {
		if len(out.Deployments) == listPage {
			out.NextToken = strconv.Itoa(i)
			break
		}
		out.Deployments = append(out.Deployments, ids[i])
	}
	return out, nil
}

type continueDeploymentInput struct {
	DeploymentID       string `json:"deploymentId"`
	DeploymentWaitType string `json:"deploymentWaitType"`
}

func (s *Service) continueDeployment(_ context.Context, _ *protocol.Request, in *continueDeploymentInput) (*struct{}, *protocol.Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.deployment(in.DeploymentID)
	if err != nil {
		return nil, err
	}
	if in.DeploymentWaitType != "" && in.DeploymentWaitType != "READY_WAIT" {
		return nil, errorf("InvalidDeploymentWaitTypeException", "Only READY_WAIT is served by the sandbox; got %s", in.DeploymentWaitType)
	}
	if d.Status != "Ready" {
		return nil, errorf("DeploymentIsNotInReadyStateException", "The deployment %s is not in the Ready state (it is %s)", d.DeploymentID, d.Status)
	}
	d.Status = "InProgress"
	d.DeploymentOverview = overview{InProgress: 1}
	id := d.DeploymentID
	s.after(s.cfg.StepDelay, func() { s.reroute(id) })
	return nil, nil
}
