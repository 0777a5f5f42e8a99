// Package cloudtrail is the sandbox's AWS CloudTrail event history: LookupEvents (awsJson1_1)
// over the management events of the sandbox's Lambda control plane — who called what, when,
// with which request parameters, and the error it got — so that a tool can find, as on AWS,
// the S3 keys a failed UpdateFunctionCode asked for.
//
// The rule it keeps: events are recorded as CloudTrail writes them (versioned event names such
// as UpdateFunctionCode20150331v2, the CloudTrailEvent JSON with errorCode, errorMessage and
// requestParameters) and looked up as LookupEvents does: newest first, one lookup attribute,
// a time range, at most 50 a page.
package cloudtrail

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aviary-deploy/aviary/internal/atomicfile"
	"github.com/aviary-deploy/aviary/sandbox/limits"
	"github.com/aviary-deploy/aviary/sandbox/protocol"
)

//go:generate go run ../protocol/errorsgen -model cloudtrail/2013-11-01 -o model_gen.go

// Call is one recorded API call.
type Call struct {
	Time              time.Time
	EventSource       string // e.g. lambda.amazonaws.com
	EventName         string
	ReadOnly          bool
	RequestID         string
	UserAgent         string
	SourceIP          string
	AccessKeyID       string
	ResourceType      string // e.g. AWS::Lambda::Function
	ResourceName      string
	RequestParameters map[string]any
	ErrorCode         string
	ErrorMessage      string
}

// event is a recorded call with its id; exported fields are what DataDir persists.
type event struct {
	ID   string
	Call Call
}

// Config sets up a Service.
type Config struct {
	Region  string
	Account string
	DataDir string
	// MaxEvents bounds the history (AWS keeps 90 days); the oldest go first.
	MaxEvents int
}

// Service is the sandbox's CloudTrail.
type Service struct {
	cfg    Config
	mu     sync.Mutex
	events []event // oldest first
}

// New returns a Service with the persisted history, if any.
func New(cfg Config) (*Service, error) {
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.Account == "" {
		cfg.Account = "000000000000"
	}
	if cfg.MaxEvents <= 0 {
		cfg.MaxEvents = 100000
	}
	s := &Service{cfg: cfg}
	if cfg.DataDir != "" {
		b, err := os.ReadFile(s.path())
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return nil, err
		default:
			if err := json.Unmarshal(b, &s.events); err != nil {
				return nil, fmt.Errorf("read %s: %w", s.path(), err)
			}
		}
	}
	return s, nil
}

func (s *Service) path() string { return filepath.Join(s.cfg.DataDir, "cloudtrail", "events.json") }

// Record adds a call to the event history.
func (s *Service) Record(c Call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, event{ID: protocol.NewRequestID(), Call: c})
	if over := len(s.events) - s.cfg.MaxEvents; over > 0 {
		s.events = s.events[over:]
	}
	if s.cfg.DataDir == "" {
		return
	}
	b, err := json.Marshal(s.events)
	if err == nil {
		if err = os.MkdirAll(filepath.Dir(s.path()), 0o755); err == nil {
			_ = atomicfile.Write(s.path(), b)
		}
	}
}

type lookupAttribute struct {
	AttributeKey   string `json:"AttributeKey"`
	AttributeValue string `json:"AttributeValue"`
}

type lookupEventsInput struct {
	LookupAttributes []lookupAttribute   `json:"LookupAttributes"`
	StartTime        *protocol.Timestamp `json:"StartTime"`
	EndTime          *protocol.Timestamp `json:"EndTime"`
	EventCategory    string              `json:"EventCategory"`
	MaxResults       *int                `json:"MaxResults"`
	NextToken        string              `json:"NextToken"`
}

type resourceOut struct {
	ResourceType string `json:"ResourceType,omitempty"`
	ResourceName string `json:"ResourceName,omitempty"`
}

type eventOut struct {
	EventID         string             `json:"EventId"`
	EventName       string             `json:"EventName"`
	ReadOnly        string             `json:"ReadOnly"`
	AccessKeyID     string             `json:"AccessKeyId,omitempty"`
	EventTime       protocol.Timestamp `json:"EventTime"`
	EventSource     string             `json:"EventSource"`
	Username        string             `json:"Username,omitempty"`
	Resources       []resourceOut      `json:"Resources"`
	CloudTrailEvent string             `json:"CloudTrailEvent"`
}

type lookupEventsOutput struct {
	Events    []eventOut `json:"Events"`
	NextToken string     `json:"NextToken,omitempty"`
}

// Handler serves the CloudTrail API; l is asked about every request.
func (s *Service) Handler(l limits.Limiter) http.Handler {
	api := &protocol.Service{Name: "cloudtrail", Model: apiModel, Limits: l}
	protocol.Handle(api, "LookupEvents", func(_ context.Context, _ *protocol.Request, in *lookupEventsInput) (*lookupEventsOutput, *protocol.Error) {
		return s.lookupEvents(in)
	})
	// The Go SDK names operations "CloudTrail_20131101.LookupEvents", botocore
	// "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents"; AWS answers both.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if t := r.Header.Get("X-Amz-Target"); strings.HasPrefix(t, shortTarget) {
			r.Header.Set("X-Amz-Target", apiModel.TargetPrefix+"."+strings.TrimPrefix(t, shortTarget))
		}
		api.ServeHTTP(w, r)
	})
}

const shortTarget = "CloudTrail_20131101."

var attributeKeys = []string{"EventId", "EventName", "ReadOnly", "Username", "ResourceType", "ResourceName", "EventSource", "AccessKeyId"}

func invalidLookup(format string, args ...any) *protocol.Error {
	return protocol.Errorf("InvalidLookupAttributesException", format, args...)
}

func (s *Service) lookupEvents(in *lookupEventsInput) (*lookupEventsOutput, *protocol.Error) {
	if len(in.LookupAttributes) > 1 {
		return nil, invalidLookup("You cannot specify more than one lookup attribute.")
	}
	var attr *lookupAttribute
	if len(in.LookupAttributes) == 1 {
		attr = &in.LookupAttributes[0]
		if !containsString(attributeKeys, attr.AttributeKey) {
			return nil, invalidLookup("Invalid attribute key: %s", attr.AttributeKey)
		}
		if attr.AttributeValue == "" {
			return nil, invalidLookup("Attribute value cannot be empty.")
		}
	}
	if in.EventCategory != "" && in.EventCategory != "insight" {
		return nil, protocol.Errorf("InvalidEventCategoryException", "Invalid event category: %s", in.EventCategory)
	}
	if in.EventCategory == "insight" {
		return &lookupEventsOutput{Events: []eventOut{}}, nil
	}
	max := 50
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > 50 {
			return nil, protocol.Errorf("InvalidMaxResultsException", "MaxResults must be between 1 and 50.")
		}
		max = *in.MaxResults
	}
	if in.StartTime != nil && in.EndTime != nil && in.StartTime.After(in.EndTime.Time) {
		return nil, protocol.Errorf("InvalidTimeRangeException", "Start time must be before end time.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var matched []event
	for i := len(s.events) - 1; i >= 0; i-- { // newest first
		e := s.events[i]
		if in.StartTime != nil && e.Call.Time.Before(in.StartTime.Time) || in.EndTime != nil && e.Call.Time.After(in.EndTime.Time) {
			continue
		}
		if attr != nil && !matches(e, *attr) {
			continue
		}
		matched = append(matched, e)
	}
	start := 0
	if in.NextToken != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(in.NextToken, "aviary-"))
		if err != nil || !strings.HasPrefix(in.NextToken, "aviary-") || n < 0 || n > len(matched) {
			return nil, protocol.Errorf("InvalidNextTokenException", "Invalid NextToken.")
		}
		start = n
	}
	end := min(start+max, len(matched))
	out := &lookupEventsOutput{Events: []eventOut{}}
	if end < len(matched) {
		out.NextToken = "aviary-" + strconv.Itoa(end)
	}
	for _, e := range matched[start:end] {
		out.Events = append(out.Events, s.render(e))
	}
	return out, nil
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func matches(e event, a lookupAttribute) bool {
	c := e.Call
	switch a.AttributeKey {
	case "EventId":
		return e.ID == a.AttributeValue
	case "EventName":
		return c.EventName == a.AttributeValue
	case "ReadOnly":
		return strconv.FormatBool(c.ReadOnly) == a.AttributeValue
	case "Username":
		return "root" == a.AttributeValue
	case "ResourceType":
		return c.ResourceType == a.AttributeValue
	case "ResourceName":
		return c.ResourceName == a.AttributeValue
	case "EventSource":
		return c.EventSource == a.AttributeValue
	case "AccessKeyId":
		return c.AccessKeyID == a.AttributeValue
	}
	return false
}

// render writes an event as LookupEvents answers it, its CloudTrailEvent as CloudTrail writes
// the record.
func (s *Service) render(e event) eventOut {
	c := e.Call
	identity := map[string]any{"type": "Root", "principalId": s.cfg.Account, "arn": "arn:aws:iam::" + s.cfg.Account + ":root",
		"accountId": s.cfg.Account, "accessKeyId": c.AccessKeyID}
	sourceIP := c.SourceIP
	if strings.HasSuffix(c.UserAgent, ".amazonaws.com") {
		// A call a service made on the caller's behalf (CloudFormation's): CloudTrail names the
		// service as the source and as invokedBy.
		identity["invokedBy"] = c.UserAgent
		sourceIP = c.UserAgent
	}
	rec := map[string]any{
		"eventVersion": "1.08", "userIdentity": identity, "eventTime": c.Time.UTC().Format(time.RFC3339),
		"eventSource": c.EventSource, "eventName": c.EventName, "awsRegion": s.cfg.Region,
		"sourceIPAddress": sourceIP, "userAgent": c.UserAgent, "requestParameters": c.RequestParameters,
		"responseElements": nil, "requestID": c.RequestID, "eventID": e.ID, "readOnly": c.ReadOnly,
		"eventType": "AwsApiCall", "managementEvent": true, "recipientAccountId": s.cfg.Account,
		"eventCategory": "Management",
	}
	if c.ErrorCode != "" {
		rec["errorCode"], rec["errorMessage"] = c.ErrorCode, c.ErrorMessage
	}
	b, _ := json.Marshal(rec)
	out := eventOut{EventID: e.ID, EventName: c.EventName, ReadOnly: strconv.FormatBool(c.ReadOnly), AccessKeyID: c.AccessKeyID,
		EventTime: protocol.Timestamp{Time: c.Time}, EventSource: c.EventSource, Username: "root",
		Resources: []resourceOut{}, CloudTrailEvent: string(b)}
	if c.ResourceName != "" {
		out.Resources = append(out.Resources, resourceOut{ResourceType: c.ResourceType, ResourceName: c.ResourceName})
	}
	return out
}
