// Package autoscaling is the sandbox's Amazon EC2 Auto Scaling over the query protocol:
// CreateAutoScalingGroup, DescribeAutoScalingGroups, DeleteAutoScalingGroup, and the attaching
// and detaching of target groups (AttachLoadBalancerTargetGroups, DetachLoadBalancerTargetGroups)
// and Classic Load Balancers (AttachLoadBalancers, DetachLoadBalancers) — what a blue/green
// deployment tool reads and writes. CodeDeploy copies groups through [Service.CopyGroup].
//
// The rule it keeps: a group's configuration is kept and answered as AWS does, with its errors
// (ValidationError for an unknown group, AlreadyExists, ResourceInUse); EC2 instances are not
// simulated: a group has a DesiredCapacity but lists no Instances. Target group ARNs are checked
// against the sandbox's Elastic Load Balancing; Classic Load Balancer names are taken as given,
// as the sandbox serves no Classic Load Balancing. State is kept in memory.
package autoscaling

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/aviary-deploy/aviary/sandbox/limits"
	"github.com/aviary-deploy/aviary/sandbox/protocol"
)

//go:generate go run ../protocol/errorsgen -model autoscaling/2011-01-01 -o model_gen.go

// TargetGroups says whether a target group exists (the sandbox's Elastic Load Balancing).
type TargetGroups interface {
	HasTargetGroup(arn string) bool
}

// Config sets up a Service.
type Config struct {
	Region, Account string
	// TargetGroups checks target group ARNs; nil accepts any.
	TargetGroups TargetGroups
	Now          func() time.Time
}

// Service is the sandbox's Auto Scaling.
type Service struct {
	cfg    Config
	mu     sync.Mutex
	groups map[string]*Group
}

// New returns an empty Auto Scaling.
func New(cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{cfg: cfg, groups: map[string]*Group{}}
}

// LaunchTemplate names a launch template and version.
type LaunchTemplate struct {
	LaunchTemplateID   string `json:"LaunchTemplateId,omitempty" xml:"LaunchTemplateId,omitempty"`
	LaunchTemplateName string `json:"LaunchTemplateName,omitempty" xml:"LaunchTemplateName,omitempty"`
	Version            string `json:"Version,omitempty" xml:"Version,omitempty"`
}

// Tag is a group's tag as CreateAutoScalingGroup takes it and Describe answers it.
type Tag struct {
	ResourceID        string `json:"ResourceId,omitempty" xml:"ResourceId,omitempty"`
	ResourceType      string `json:"ResourceType,omitempty" xml:"ResourceType,omitempty"`
	Key               string `json:"Key" xml:"Key"`
	Value             string `json:"Value" xml:"Value"`
	PropagateAtLaunch bool   `json:"PropagateAtLaunch" xml:"PropagateAtLaunch"`
}

type trafficSource struct {
	Identifier string `xml:"Identifier"`
	Type       string `xml:"Type"`
}

// Group is an Auto Scaling group, in the shape DescribeAutoScalingGroups answers.
type Group struct {
	AutoScalingGroupName             string             `xml:"AutoScalingGroupName"`
	AutoScalingGroupARN              string             `xml:"AutoScalingGroupARN"`
	LaunchConfigurationName          string             `xml:"LaunchConfigurationName,omitempty"`
	LaunchTemplate                   *LaunchTemplate    `xml:"LaunchTemplate,omitempty"`
	MinSize                          int                `xml:"MinSize"`
	MaxSize                          int                `xml:"MaxSize"`
	DesiredCapacity                  int                `xml:"DesiredCapacity"`
	DefaultCooldown                  int                `xml:"DefaultCooldown"`
	AvailabilityZones                []string           `xml:"AvailabilityZones>member"`
	LoadBalancerNames                []string           `xml:"LoadBalancerNames>member"`
	TargetGroupARNs                  []string           `xml:"TargetGroupARNs>member"`
	HealthCheckType                  string             `xml:"HealthCheckType"`
	HealthCheckGracePeriod           int                `xml:"HealthCheckGracePeriod"`
	Instances                        []struct{}         `xml:"Instances>member"`
	CreatedTime                      protocol.Timestamp `xml:"CreatedTime"`
	SuspendedProcesses               []struct{}         `xml:"SuspendedProcesses>member"`
	VPCZoneIdentifier                string             `xml:"VPCZoneIdentifier,omitempty"`
	EnabledMetrics                   []struct{}         `xml:"EnabledMetrics>member"`
	Tags                             []Tag              `xml:"Tags>member"`
	TerminationPolicies              []string           `xml:"TerminationPolicies>member"`
	NewInstancesProtectedFromScaleIn bool               `xml:"NewInstancesProtectedFromScaleIn"`
	ServiceLinkedRoleARN             string             `xml:"ServiceLinkedRoleARN"`
	MaxInstanceLifetime              int                `xml:"MaxInstanceLifetime,omitempty"`
	CapacityRebalance                bool               `xml:"CapacityRebalance"`
	TrafficSources                   []trafficSource    `xml:"TrafficSources>member"`
}

func (g *Group) clone() *Group {
	c := *g
	if g.LaunchTemplate != nil {
		lt := *g.LaunchTemplate
		c.LaunchTemplate = &lt
	}
	c.AvailabilityZones = slices.Clone(g.AvailabilityZones)
	c.LoadBalancerNames = slices.Clone(g.LoadBalancerNames)
	c.TargetGroupARNs = slices.Clone(g.TargetGroupARNs)
	c.Tags = slices.Clone(g.Tags)
	c.TerminationPolicies = slices.Clone(g.TerminationPolicies)
	c.TrafficSources = slices.Clone(g.TrafficSources)
	return &c
}

// syncTrafficSources keeps TrafficSources (the newer view of the same attachments) in step.
func (g *Group) syncTrafficSources() {
	g.TrafficSources = nil
	for _, n := range g.LoadBalancerNames {
		g.TrafficSources = append(g.TrafficSources, trafficSource{Identifier: n, Type: "elb"})
	}
	for _, a := range g.TargetGroupARNs {
		g.TrafficSources = append(g.TrafficSources, trafficSource{Identifier: a, Type: "elbv2"})
	}
}

// Handler serves the Auto Scaling API; l is asked about every request.
func (s *Service) Handler(l limits.Limiter) http.Handler {
	api := &protocol.Service{Name: "autoscaling", Model: apiModel, Limits: l,
		DecodeError: func(err error) *protocol.Error { return validation("%v", err) }}
	protocol.Handle(api, "CreateAutoScalingGroup", s.createGroup)
	protocol.Handle(api, "DescribeAutoScalingGroups", s.describeGroups)
	protocol.Handle(api, "DeleteAutoScalingGroup", s.deleteGroup)
	protocol.Handle(api, "AttachLoadBalancerTargetGroups", s.attachTargetGroups)
	protocol.Handle(api, "DetachLoadBalancerTargetGroups", s.detachTargetGroups)
	protocol.Handle(api, "AttachLoadBalancers", s.attachLoadBalancers)
	protocol.Handle(api, "DetachLoadBalancers", s.detachLoadBalancers)
	return api
}

func validation(format string, args ...any) *protocol.Error {
	return &protocol.Error{Code: "ValidationError", Status: http.StatusBadRequest, Message: fmt.Sprintf(format, args...)}
}

func notFound(name string) *protocol.Error {
	return validation("AutoScalingGroup name not found - AutoScalingGroup '%s' not found", name)
}

type createGroupInput struct {
	AutoScalingGroupName             string
	LaunchConfigurationName          string
	LaunchTemplate                   *LaunchTemplate
	InstanceID                       string `json:"InstanceId"`
	MinSize                          *int
	MaxSize                          *int
	DesiredCapacity                  *int
	DefaultCooldown                  *int
	AvailabilityZones                []string
	LoadBalancerNames                []string
	TargetGroupARNs                  []string
	HealthCheckType                  string
	HealthCheckGracePeriod           *int
	VPCZoneIdentifier                string
	TerminationPolicies              []string
	NewInstancesProtectedFromScaleIn bool
	CapacityRebalance                bool
	Tags                             []Tag
	ServiceLinkedRoleARN             string
	MaxInstanceLifetime              int
}

func (s *Service) arn(name string) string {
	return fmt.Sprintf("arn:aws:autoscaling:%s:%s:autoScalingGroup:%s:autoScalingGroupName/%s",
		s.cfg.Region, s.cfg.Account, protocol.NewRequestID(), name)
}

func (s *Service) createGroup(_ context.Context, _ *protocol.Request, in *createGroupInput) (*struct{}, *protocol.Error) {
	if in.AutoScalingGroupName == "" || len(in.AutoScalingGroupName) > 255 {
		return nil, validation("1 validation error detected: Value at 'autoScalingGroupName' failed to satisfy constraint: Member must have length between 1 and 255")
	}
	if in.MinSize == nil || in.MaxSize == nil {
		return nil, validation("MinSize and MaxSize are required")
	}
	if in.LaunchConfigurationName == "" && in.LaunchTemplate == nil && in.InstanceID == "" {
		return nil, validation("Valid requests must contain either LaunchTemplate, LaunchConfigurationName, InstanceId or MixedInstancesPolicy parameter.")
	}
	if *in.MinSize > *in.MaxSize {
		return nil, validation("Max bound, %d, must be greater than or equal to min bound, %d", *in.MaxSize, *in.MinSize)
	}
	desired := *in.MinSize
	if in.DesiredCapacity != nil {
		desired = *in.DesiredCapacity
		if desired < *in.MinSize || desired > *in.MaxSize {
			return nil, validation("Desired capacity:%d must be between the specified min size:%d and max size:%d", desired, *in.MinSize, *in.MaxSize)
		}
	}
	if len(in.AvailabilityZones) == 0 && in.VPCZoneIdentifier == "" {
		in.AvailabilityZones = []string{s.cfg.Region + "a"}
	}
	if err := s.checkTargetGroups(in.TargetGroupARNs); err != nil {
		return nil, err
	}
	g := &Group{
		AutoScalingGroupName: in.AutoScalingGroupName, AutoScalingGroupARN: s.arn(in.AutoScalingGroupName),
		LaunchConfigurationName: in.LaunchConfigurationName, LaunchTemplate: in.LaunchTemplate,
		MinSize: *in.MinSize, MaxSize: *in.MaxSize, DesiredCapacity: desired, DefaultCooldown: 300,
		AvailabilityZones: in.AvailabilityZones, LoadBalancerNames: dedupe(in.LoadBalancerNames), TargetGroupARNs: dedupe(in.TargetGroupARNs),
		HealthCheckType: "EC2", VPCZoneIdentifier: in.VPCZoneIdentifier, TerminationPolicies: in.TerminationPolicies,
		NewInstancesProtectedFromScaleIn: in.NewInstancesProtectedFromScaleIn, CapacityRebalance: in.CapacityRebalance,
		ServiceLinkedRoleARN: in.ServiceLinkedRoleARN, MaxInstanceLifetime: in.MaxInstanceLifetime,
		CreatedTime: protocol.Timestamp{Time: s.cfg.Now().UTC()},
	}
	if in.DefaultCooldown != nil {
		g.DefaultCooldown = *in.DefaultCooldown
	}
	if in.HealthCheckType != "" {
		g.HealthCheckType = in.HealthCheckType
	}
	if in.HealthCheckGracePeriod != nil {
		g.HealthCheckGracePeriod = *in.HealthCheckGracePeriod
	}
	if len(g.TerminationPolicies) == 0 {
		g.TerminationPolicies = []string{"Default"}
	}
	if g.ServiceLinkedRoleARN == "" {
		g.ServiceLinkedRoleARN = "arn:aws:iam::" + s.cfg.Account + ":role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
	}
	for _, t := range in.Tags {
		t.ResourceID, t.ResourceType = g.AutoScalingGroupName, "auto-scaling-group"
		g.Tags = append(g.Tags, t)
	}
	g.syncTrafficSources()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.groups[g.AutoScalingGroupName]; ok {
		return nil, &protocol.Error{Code: "AlreadyExistsFault", Message: fmt.Sprintf("AutoScalingGroup by this name already exists - A group with the name %s already exists", g.AutoScalingGroupName)}
	}
	s.groups[g.AutoScalingGroupName] = g
	return nil, nil
}

func (s *Service) checkTargetGroups(arns []string) *protocol.Error {
	if s.cfg.TargetGroups == nil {
		return nil
	}
	for _, a := range arns {
		if !s.cfg.TargetGroups.HasTargetGroup(a) {
			return validation("Provided Target Groups may not be valid. Please ensure they exist and try again.")
		}
	}
	return nil
}

func dedupe(xs []string) []string {
	var out []string
	for _, x := range xs {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

type describeGroupsInput struct {
	AutoScalingGroupNames []string
	NextToken             string
	MaxRecords            *int
}

type describeGroupsOutput struct {
	AutoScalingGroups []*Group `xml:"AutoScalingGroups>member"`
	NextToken         string   `xml:"NextToken,omitempty"`
}

func (s *Service) describeGroups(_ context.Context, _ *protocol.Request, in *describeGroupsInput) (*describeGroupsOutput, *protocol.Error) {
	limit := 50
	if in.MaxRecords != nil {
		if *in.MaxRecords < 1 || *in.MaxRecords > 100 {
			return nil, validation("1 validation error detected: Value '%d' at 'maxRecords' failed to satisfy constraint: Member must have value between 1 and 100", *in.MaxRecords)
		}
		limit = *in.MaxRecords
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	for n := range s.groups {
		if len(in.AutoScalingGroupNames) == 0 || slices.Contains(in.AutoScalingGroupNames, n) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	start := 0
	if in.NextToken != "" {
		i, err := strconv.Atoi(in.NextToken)
		if err != nil || i < 0 || i > len(names) {
			return nil, &protocol.Error{Code: "InvalidNextToken", Message: "The token '" + in.NextToken + "' is invalid."}
		}
		start = i
	}
	out := &describeGroupsOutput{AutoScalingGroups: []*Group{}}
	for i := start; i < len(names); i++ {
		if len(out.AutoScalingGroups) == limit {
			out.NextToken = strconv.Itoa(i)
			break
		}
		out.AutoScalingGroups = append(out.AutoScalingGroups, s.groups[names[i]].clone())
	}
	return out, nil
}

type deleteGroupInput struct {
	AutoScalingGroupName string
	ForceDelete          bool
}

func (s *Service) deleteGroup(_ context.Context, _ *protocol.Request, in *deleteGroupInput) (*struct{}, *protocol.Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.groups[in.AutoScalingGroupName]
	if !ok {
		return nil, notFound(in.AutoScalingGroupName)
	}
	if g.DesiredCapacity > 0 && !in.ForceDelete {
		return nil, &protocol.Error{Code: "ResourceInUseFault", Message: "You cannot delete an AutoScalingGroup while there are instances or pending Spot instance request(s) still in the group."}
	}
	delete(s.groups, in.AutoScalingGroupName)
	return nil, nil
}

type targetGroupsInput struct {
	AutoScalingGroupName string
	TargetGroupARNs      []string
}

type loadBalancersInput struct {
	AutoScalingGroupName string
	LoadBalancerNames    []string
}

// attachLimit is how many target groups or load balancers one call may attach or detach.
const attachLimit = 10

func (s *Service) attachTargetGroups(_ context.Context, _ *protocol.Request, in *targetGroupsInput) (*struct{}, *protocol.Error) {
	if in.TargetGroupARNs == nil {
		return nil, validation("1 validation error detected: Value null at 'targetGroupARNs' failed to satisfy constraint: Member must not be null")
	}
	if len(in.TargetGroupARNs) > attachLimit {
		return nil, validation("Cannot attach more than %d target groups in one call.", attachLimit)
	}
	if err := s.checkTargetGroups(in.TargetGroupARNs); err != nil {
		return nil, err
	}
	return result(s.update(in.AutoScalingGroupName, func(g *Group) { g.TargetGroupARNs = dedupe(append(g.TargetGroupARNs, in.TargetGroupARNs...)) }))
}

func (s *Service) detachTargetGroups(_ context.Context, _ *protocol.Request, in *targetGroupsInput) (*struct{}, *protocol.Error) {
	if in.TargetGroupARNs == nil {
		return nil, validation("1 validation error detected: Value null at 'targetGroupARNs' failed to satisfy constraint: Member must not be null")
	}
	return result(s.update(in.AutoScalingGroupName, func(g *Group) {
		g.TargetGroupARNs = slices.DeleteFunc(g.TargetGroupARNs, func(a string) bool { return slices.Contains(in.TargetGroupARNs, a) })
	}))
}

func (s *Service) attachLoadBalancers(_ context.Context, _ *protocol.Request, in *loadBalancersInput) (*struct{}, *protocol.Error) {
	if in.LoadBalancerNames == nil {
		return nil, validation("1 validation error detected: Value null at 'loadBalancerNames' failed to satisfy constraint: Member must not be null")
	}
	if len(in.LoadBalancerNames) > attachLimit {
		return nil, validation("Cannot attach more than %d load balancers in one call.", attachLimit)
	}
	return result(s.update(in.AutoScalingGroupName, func(g *Group) { g.LoadBalancerNames = dedupe(append(g.LoadBalancerNames, in.LoadBalancerNames...)) }))
}

func (s *Service) detachLoadBalancers(_ context.Context, _ *protocol.Request, in *loadBalancersInput) (*struct{}, *protocol.Error) {
	if in.LoadBalancerNames == nil {
		return nil, validation("1 validation error detected: Value null at 'loadBalancerNames' failed to satisfy constraint: Member must not be null")
	}
	return result(s.update(in.AutoScalingGroupName, func(g *Group) {
		g.LoadBalancerNames = slices.DeleteFunc(g.LoadBalancerNames, func(n string) bool { return slices.Contains(in.LoadBalancerNames, n) })
	}))
}

// result is the empty output of an operation whose model has an output shape: query clients
// (awscli) expect its <OperationResult/> element.
func result(err *protocol.Error) (*struct{}, *protocol.Error) {
	if err != nil {
		return nil, err
	}
	return &struct{}{}, nil
}

func (s *Service) update(name string, fn func(*Group)) *protocol.Error {
	if name == "" {
		return validation("1 validation error detected: Value null at 'autoScalingGroupName' failed to satisfy constraint: Member must not be null")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.groups[name]
	if !ok {
		return notFound(name)
	}
	fn(g)
	g.syncTrafficSources()
	return nil
}

// HasGroup reports whether the group exists.
func (s *Service) HasGroup(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.groups[name]
	return ok
}

// CopyGroup creates dst with src's configuration, as CodeDeploy's blue/green deployment with
// COPY_AUTO_SCALING_GROUP does — and, as CodeDeploy does, without src's target groups and load
// balancers: whoever deploys must put them back (package keeper does).
func (s *Service) CopyGroup(src, dst string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.groups[src]
	if !ok {
		return fmt.Errorf("auto scaling group %s does not exist", src)
	}
	if _, ok := s.groups[dst]; ok {
		return fmt.Errorf("auto scaling group %s already exists", dst)
	}
	c := g.clone()
	c.AutoScalingGroupName, c.AutoScalingGroupARN = dst, s.arn(dst)
	c.CreatedTime = protocol.Timestamp{Time: s.cfg.Now().UTC()}
	c.TargetGroupARNs, c.LoadBalancerNames = nil, nil
	for i := range c.Tags {
		c.Tags[i].ResourceID = dst
	}
	c.syncTrafficSources()
	s.groups[dst] = c
	return nil
}

// DeleteGroup deletes a group, as CodeDeploy does when it terminates the original environment.
func (s *Service) DeleteGroup(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.groups, name)
}
