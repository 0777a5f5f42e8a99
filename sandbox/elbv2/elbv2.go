// Package elbv2 is the sandbox's Elastic Load Balancing (v2) over the query protocol: target
// groups (CreateTargetGroup, DescribeTargetGroups, DeleteTargetGroup), enough for Auto Scaling
// groups to attach them and for a tool to read them back. Load balancers, listeners and targets
// are not served.
//
// The rule it keeps: names, ARNs and errors as AWS gives them — CreateTargetGroup with the
// settings of an existing group of that name answers that group (it is idempotent), with other
// settings DuplicateTargetGroupName; DescribeTargetGroups naming a group that does not exist
// answers TargetGroupNotFound. State is kept in memory.
package elbv2

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"sync"

	"github.com/aviary-deploy/aviary/sandbox/limits"
	"github.com/aviary-deploy/aviary/sandbox/protocol"
)

//go:generate go run ../protocol/errorsgen -model elbv2/2015-12-01 -o model_gen.go

// Service is the sandbox's Elastic Load Balancing v2.
type Service struct {
	region, account string
	mu              sync.Mutex
	groups          map[string]*targetGroup // by ARN
}

// New returns an Elastic Load Balancing with no target groups.
func New(region, account string) *Service {
	return &Service{region: region, account: account, groups: map[string]*targetGroup{}}
}

type matcher struct {
	HTTPCode string `json:"HttpCode,omitempty" xml:"HttpCode,omitempty"`
}

type targetGroup struct {
	TargetGroupArn             string   `xml:"TargetGroupArn"`
	TargetGroupName            string   `xml:"TargetGroupName"`
	Protocol                   string   `xml:"Protocol,omitempty"`
	Port                       int      `xml:"Port,omitempty"`
	VpcID                      string   `xml:"VpcId,omitempty"`
	HealthCheckProtocol        string   `xml:"HealthCheckProtocol,omitempty"`
	HealthCheckPort            string   `xml:"HealthCheckPort,omitempty"`
	HealthCheckEnabled         bool     `xml:"HealthCheckEnabled"`
	HealthCheckIntervalSeconds int      `xml:"HealthCheckIntervalSeconds"`
	HealthCheckTimeoutSeconds  int      `xml:"HealthCheckTimeoutSeconds"`
	HealthyThresholdCount      int      `xml:"HealthyThresholdCount"`
	UnhealthyThresholdCount    int      `xml:"UnhealthyThresholdCount"`
	HealthCheckPath            string   `xml:"HealthCheckPath,omitempty"`
	Matcher                    *matcher `xml:"Matcher,omitempty"`
	LoadBalancerArns           []string `xml:"LoadBalancerArns>member"`
	TargetType                 string   `xml:"TargetType"`
	ProtocolVersion            string   `xml:"ProtocolVersion,omitempty"`
	IPAddressType              string   `xml:"IpAddressType,omitempty"`
}

// settings are what CreateTargetGroup compares to tell a repeated call from a conflicting one.
func (g *targetGroup) settings() string {
	m := ""
	if g.Matcher != nil {
		m = g.Matcher.HTTPCode
	}
	return fmt.Sprint(g.Protocol, g.Port, g.VpcID, g.TargetType, g.HealthCheckProtocol, g.HealthCheckPort, g.HealthCheckEnabled,
		g.HealthCheckPath, g.HealthCheckIntervalSeconds, g.HealthCheckTimeoutSeconds, g.HealthyThresholdCount, g.UnhealthyThresholdCount, m)
}

// Handler serves the API; l is asked about every request.
func (s *Service) Handler(l limits.Limiter) http.Handler {
	api := &protocol.Service{Name: "elasticloadbalancing", Model: apiModel, Limits: l,
		DecodeError: func(err error) *protocol.Error { return validation("%v", err) }}
	protocol.Handle(api, "CreateTargetGroup", s.create)
	protocol.Handle(api, "DescribeTargetGroups", s.describe)
	protocol.Handle(api, "DeleteTargetGroup", s.delete)
	return api
}

func validation(format string, args ...any) *protocol.Error {
	return &protocol.Error{Code: "ValidationError", Status: http.StatusBadRequest, Message: fmt.Sprintf(format, args...)}
}

type createInput struct {
	Name                       string
	Protocol                   string
	ProtocolVersion            string
	Port                       int
	VpcID                      string `json:"VpcId"`
	HealthCheckProtocol        string
	HealthCheckPort            string
	HealthCheckEnabled         *bool
	HealthCheckPath            string
	HealthCheckIntervalSeconds int
	HealthCheckTimeoutSeconds  int
	HealthyThresholdCount      int
	UnhealthyThresholdCount    int
	Matcher                    *matcher
	TargetType                 string
	IPAddressType              string `json:"IpAddressType"`
}

type groupsOutput struct {
	TargetGroups []*targetGroup `xml:"TargetGroups>member"`
	NextMarker   string         `xml:"NextMarker,omitempty"`
}

var validName = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?$`)

func (s *Service) create(_ context.Context, _ *protocol.Request, in *createInput) (*groupsOutput, *protocol.Error) {
	if !validName.MatchString(in.Name) {
		return nil, validation("Target group name '%s' can only contain characters that are alphanumeric characters or hyphens(-), must not begin or end with a hyphen, and must be at most 32 characters", in.Name)
	}
	if in.TargetType == "" {
		in.TargetType = "instance"
	}
	if in.TargetType != "lambda" {
		switch {
		case in.Protocol == "":
			return nil, validation("A protocol must be specified")
		case in.Port == 0:
			return nil, validation("A port must be specified")
		case in.VpcID == "":
			return nil, validation("A VPC ID must be specified")
		}
	}
	g := &targetGroup{
		TargetGroupName: in.Name, Protocol: in.Protocol, Port: in.Port, VpcID: in.VpcID, TargetType: in.TargetType,
		HealthCheckProtocol: or(in.HealthCheckProtocol, in.Protocol), HealthCheckPort: or(in.HealthCheckPort, "traffic-port"),
		HealthCheckEnabled: in.HealthCheckEnabled == nil || *in.HealthCheckEnabled, HealthCheckPath: in.HealthCheckPath,
		HealthCheckIntervalSeconds: orInt(in.HealthCheckIntervalSeconds, 30), HealthCheckTimeoutSeconds: orInt(in.HealthCheckTimeoutSeconds, 5),
		HealthyThresholdCount: orInt(in.HealthyThresholdCount, 5), UnhealthyThresholdCount: orInt(in.UnhealthyThresholdCount, 2),
		Matcher: in.Matcher, LoadBalancerArns: []string{}, IPAddressType: in.IPAddressType,
	}
	if in.Protocol == "HTTP" || in.Protocol == "HTTPS" {
		g.ProtocolVersion = or(in.ProtocolVersion, "HTTP1")
		g.HealthCheckPath = or(g.HealthCheckPath, "/")
		if g.Matcher == nil {
			g.Matcher = &matcher{HTTPCode: "200"}
		}
	}
	if in.TargetType == "instance" || in.TargetType == "ip" {
		g.IPAddressType = or(g.IPAddressType, "ipv4")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, old := range s.groups {
		if old.TargetGroupName != in.Name {
			continue
		}
		if old.settings() != g.settings() {
			return nil, &protocol.Error{Code: "DuplicateTargetGroupNameException", Message: "A target group with the same name '" + in.Name + "' exists, but with different settings"}
		}
		return &groupsOutput{TargetGroups: []*targetGroup{old}}, nil
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	g.TargetGroupArn = fmt.Sprintf("arn:aws:elasticloadbalancing:%s:%s:targetgroup/%s/%x", s.region, s.account, in.Name, id)
	s.groups[g.TargetGroupArn] = g
	return &groupsOutput{TargetGroups: []*targetGroup{g}}, nil
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func orInt(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}

type describeInput struct {
	LoadBalancerArn string
	TargetGroupArns []string
	Names           []string
	Marker          string
	PageSize        *int
}

func (s *Service) describe(_ context.Context, _ *protocol.Request, in *describeInput) (*groupsOutput, *protocol.Error) {
	limit := 400
	if in.PageSize != nil {
		if *in.PageSize < 1 || *in.PageSize > 400 {
			return nil, validation("1 validation error detected: Value '%d' at 'pageSize' failed to satisfy constraint: Member must have value between 1 and 400", *in.PageSize)
		}
		limit = *in.PageSize
	}
	if n := btoi(in.LoadBalancerArn != "") + btoi(len(in.TargetGroupArns) > 0) + btoi(len(in.Names) > 0); n > 1 {
		return nil, validation("Only one of load balancer ARN, target group ARNs, or names can be specified")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var all []*targetGroup
	for _, g := range s.groups {
		switch {
		case in.LoadBalancerArn != "" && !slices.Contains(g.LoadBalancerArns, in.LoadBalancerArn),
			len(in.TargetGroupArns) > 0 && !slices.Contains(in.TargetGroupArns, g.TargetGroupArn),
			len(in.Names) > 0 && !slices.Contains(in.Names, g.TargetGroupName):
			continue
		}
		all = append(all, g)
	}
	for _, a := range in.TargetGroupArns {
		if _, ok := s.groups[a]; !ok {
			return nil, &protocol.Error{Code: "TargetGroupNotFoundException", Message: "One or more target groups not found"}
		}
	}
	for _, n := range in.Names {
		if !slices.ContainsFunc(all, func(g *targetGroup) bool { return g.TargetGroupName == n }) {
			return nil, &protocol.Error{Code: "TargetGroupNotFoundException", Message: "One or more target groups not found"}
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].TargetGroupArn < all[j].TargetGroupArn })
	start := 0
	if in.Marker != "" {
		i, err := strconv.Atoi(in.Marker)
		if err != nil || i < 0 || i > len(all) {
			return nil, validation("Invalid marker '%s'", in.Marker)
		}
		start = i
	}
	out := &groupsOutput{TargetGroups: []*targetGroup{}}
	for i := start; i < len(all); i++ {
		if len(out.TargetGroups) == limit {
			out.NextMarker = strconv.Itoa(i)
			break
		}
		c := *all[i]
		out.TargetGroups = append(out.TargetGroups, &c)
	}
	return out, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

type deleteInput struct{ TargetGroupArn string }

func (s *Service) delete(_ context.Context, _ *protocol.Request, in *deleteInput) (*struct{}, *protocol.Error) {
	if in.TargetGroupArn == "" {
		return nil, validation("1 validation error detected: Value null at 'targetGroupArn' failed to satisfy constraint: Member must not be null")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.groups, in.TargetGroupArn) // deleting a group that does not exist succeeds, as in AWS
	return &struct{}{}, nil             // the model has an (empty) output shape: awscli expects its element
}

// HasTargetGroup reports whether the target group exists.
func (s *Service) HasTargetGroup(arn string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.groups[arn]
	return ok
}

// TargetGroupARN returns the ARN of the target group with the given name, or "".
func (s *Service) TargetGroupARN(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range s.groups {
		if g.TargetGroupName == name {
			return g.TargetGroupArn
		}
	}
	return ""
}
