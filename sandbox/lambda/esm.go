package lambda

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aviary-deploy/aviary/sandbox/protocol"
)

// Event source mappings are stored and answered as Lambda answers them; the sandbox runs no
// pollers, so nothing reads the queue or stream a mapping names. A mapping is Creating (Updating,
// Enabling or Disabling after UpdateEventSourceMapping) until Config.UpdateDelay has passed, then
// Enabled or Disabled; DeleteEventSourceMapping answers it Deleting and it is gone at once.
// Mappings outlive the function or version they name, as on AWS (DeleteFunction's documentation
// sends callers to DeleteEventSourceMapping).

const (
	esmCreating  = "Creating"
	esmEnabled   = "Enabled"
	esmDisabled  = "Disabled"
	esmUpdating  = "Updating"
	esmEnabling  = "Enabling"
	esmDisabling = "Disabling"
	esmDeleting  = "Deleting"
)

var eventSourceARNRE = regexp.MustCompile(`^arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\-])+:([a-z]{2}(-gov)?-[a-z]+-\d{1})?:(\d{12})?:(.*)$`)

// eventSourceMapping is one mapping; exported fields are what --data persists.
type eventSourceMapping struct {
	UUID             string
	EventSourceArn   string
	Function         string // the bare function name
	Qualifier        string // "" for the unqualified function
	BatchSize        int
	BatchingWindow   int
	Enabled          bool
	State            string
	StateReason      string
	StartingPosition string
	LastModified     time.Time
	ReadyAt          time.Time // when Creating/Updating settles
}

func (m *eventSourceMapping) settle(now time.Time) bool {
	if m.ReadyAt.IsZero() || now.Before(m.ReadyAt) {
		return false
	}
	m.ReadyAt = time.Time{}
	m.State = esmDisabled
	if m.Enabled {
		m.State = esmEnabled
	}
	m.LastModified = now
	return true
}

type createEventSourceMappingInput struct {
	EventSourceArn                 *string `json:"EventSourceArn"`
	FunctionName                   string  `json:"FunctionName"`
	Enabled                        *bool   `json:"Enabled"`
	BatchSize                      *int    `json:"BatchSize"`
	MaximumBatchingWindowInSeconds *int    `json:"MaximumBatchingWindowInSeconds"`
	StartingPosition               string  `json:"StartingPosition"`
}

type updateEventSourceMappingInput struct {
	FunctionName                   *string `json:"FunctionName"`
	Enabled                        *bool   `json:"Enabled"`
	BatchSize                      *int    `json:"BatchSize"`
	MaximumBatchingWindowInSeconds *int    `json:"MaximumBatchingWindowInSeconds"`
}

// eventSourceMappingConfiguration is the EventSourceMappingConfiguration output shape.
type eventSourceMappingConfiguration struct {
	UUID                           string             `json:"UUID"`
	EventSourceArn                 string             `json:"EventSourceArn,omitempty"`
	EventSourceMappingArn          string             `json:"EventSourceMappingArn"`
	FunctionArn                    string             `json:"FunctionArn"`
	BatchSize                      int                `json:"BatchSize"`
	MaximumBatchingWindowInSeconds int                `json:"MaximumBatchingWindowInSeconds"`
	StartingPosition               string             `json:"StartingPosition,omitempty"`
	State                          string             `json:"State"`
	StateTransitionReason          string             `json:"StateTransitionReason"`
	LastModified                   protocol.Timestamp `json:"LastModified"`
	LastProcessingResult           string             `json:"LastProcessingResult,omitempty"`
}

type listEventSourceMappingsOutput struct {
	NextMarker          *string                           `json:"NextMarker,omitempty"`
	EventSourceMappings []eventSourceMappingConfiguration `json:"EventSourceMappings"`
}

// sourceKind names the service an event source ARN belongs to: sqs, kinesis or dynamodb.
func sourceKind(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 {
		return ""
	}
	return parts[2]
}

func (s *Service) esmConfiguration(m *eventSourceMapping) eventSourceMappingConfiguration {
	c := eventSourceMappingConfiguration{
		UUID:                           m.UUID,
		EventSourceArn:                 m.EventSourceArn,
		EventSourceMappingArn:          fmt.Sprintf("arn:aws:lambda:%s:%s:event-source-mapping:%s", s.cfg.Region, s.cfg.Account, m.UUID),
		FunctionArn:                    s.qualifiedARN(m.Function, m.Qualifier),
		BatchSize:                      m.BatchSize,
		MaximumBatchingWindowInSeconds: m.BatchingWindow,
		StartingPosition:               m.StartingPosition,
		State:                          m.State,
		StateTransitionReason:          m.StateReason,
		LastModified:                   protocol.Timestamp{Time: m.LastModified},
	}
	if sourceKind(m.EventSourceArn) != "sqs" {
		c.LastProcessingResult = "No records processed"
	}
	return c
}

// esmTarget resolves a mapping's FunctionName: the function, and the version or alias named by
// its qualifier, must exist.
func (s *Service) esmTarget(raw string) (name, qualifier string, err *APIError) {
	f, q, err := s.lookup(raw)
	if err != nil {
		return "", "", err
	}
	if q != "" && q != latest {
		if _, _, err := s.resolve(f, q); err != nil {
			return "", "", err
		}
	}
	return f.Name, q, nil
}

func (s *Service) createEventSourceMapping(in createEventSourceMappingInput) (eventSourceMappingConfiguration, *APIError) {
	if in.EventSourceArn == nil || *in.EventSourceArn == "" {
		return eventSourceMappingConfiguration{}, invalidParam("Unrecognized event source, must be kinesis, dynamodb stream or sqs.")
	}
	src := *in.EventSourceArn
	if !eventSourceARNRE.MatchString(src) {
		return eventSourceMappingConfiguration{}, validation("eventSourceArn", src, `Member must satisfy regular expression pattern: arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\-])+:([a-z]{2}(-gov)?-[a-z]+-\d{1})?:(\d{12})?:(.*)`)
	}
	kind := sourceKind(src)
	batch, maxBatch := 100, 10000
	switch kind {
	case "sqs":
		batch = 10
		if strings.HasSuffix(src, ".fifo") {
			maxBatch = 10
		}
		if in.StartingPosition != "" {
			return eventSourceMappingConfiguration{}, invalidParam("Unsupported starting position for the event source: %s", in.StartingPosition)
		}
	case "kinesis", "dynamodb":
		switch in.StartingPosition {
		case "TRIM_HORIZON", "LATEST":
		case "AT_TIMESTAMP":
			if kind == "dynamodb" {
				return eventSourceMappingConfiguration{}, invalidParam("Unsupported starting position for the event source: AT_TIMESTAMP")
			}
		case "":
			return eventSourceMappingConfiguration{}, invalidParam("StartingPosition must be provided for stream event sources.")
		default:
			return eventSourceMappingConfiguration{}, validation("startingPosition", in.StartingPosition, "Member must satisfy enum value set: [TRIM_HORIZON, LATEST, AT_TIMESTAMP]")
		}
	default:
		return eventSourceMappingConfiguration{}, invalidParam("Unrecognized event source, must be kinesis, dynamodb stream or sqs.")
	}
	if in.BatchSize != nil {
		if err := checkBatchSize(*in.BatchSize, maxBatch); err != nil {
			return eventSourceMappingConfiguration{}, err
		}
		batch = *in.BatchSize
	}
	window := 0
	if in.MaximumBatchingWindowInSeconds != nil {
		if w := *in.MaximumBatchingWindowInSeconds; w < 0 || w > 300 {
			return eventSourceMappingConfiguration{}, validation("maximumBatchingWindowInSeconds", strconv.Itoa(w), "Member must have value less than or equal to 300")
		}
		window = *in.MaximumBatchingWindowInSeconds
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	name, q, err := s.esmTarget(in.FunctionName)
	if err != nil {
		return eventSourceMappingConfiguration{}, err
	}
	fnARN := s.qualifiedARN(name, q)
	for _, m := range s.esms {
		if m.EventSourceArn == src && m.Function == name && m.Qualifier == q {
			return eventSourceMappingConfiguration{}, conflict("The event source arn (\" %s \") and function (\" %s \") provided mapping already exists. Please update or delete the existing mapping with UUID %s", src, fnARN, m.UUID)
		}
	}
	now := s.cfg.Now()
	m := &eventSourceMapping{
		UUID: newRevisionID(), EventSourceArn: src, Function: name, Qualifier: q,
		BatchSize: batch, BatchingWindow: window, Enabled: in.Enabled == nil || *in.Enabled,
		State: esmCreating, StateReason: "USER_INITIATED", StartingPosition: in.StartingPosition,
		LastModified: now, ReadyAt: now.Add(s.cfg.UpdateDelay),
	}
	s.esms[m.UUID] = m
	out := s.esmConfiguration(m) // answered Creating, as AWS answers it, however short UpdateDelay is
	s.save()
	return out, nil
}

func checkBatchSize(n, max int) *APIError {
	if n < 1 || n > 10000 {
		return validation("batchSize", strconv.Itoa(n), "Member must have value less than or equal to 10000")
	}
	if n > max {
		return invalidParam("BatchSize must be between 1 and %d for this event source.", max)
	}
	return nil
}

// esm finds a mapping by UUID, settling its state; the caller holds s.mu.
func (s *Service) esm(uuid string) (*eventSourceMapping, *APIError) {
	m, ok := s.esms[uuid]
	if !ok {
		return nil, notFound("The resource you requested does not exist. (Service: Lambda, Status Code: 404)")
	}
	if m.settle(s.cfg.Now()) {
		s.save()
	}
	return m, nil
}

func (s *Service) getEventSourceMapping(uuid string) (eventSourceMappingConfiguration, *APIError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.esm(uuid)
	if err != nil {
		return eventSourceMappingConfiguration{}, err
	}
	return s.esmConfiguration(m), nil
}

func (s *Service) updateEventSourceMapping(uuid string, in updateEventSourceMappingInput) (eventSourceMappingConfiguration, *APIError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.esm(uuid)
	if err != nil {
		return eventSourceMappingConfiguration{}, err
	}
	if !m.ReadyAt.IsZero() {
		// AWS refuses to change a mapping that is still Creating or Updating.
		return eventSourceMappingConfiguration{}, apiErr("ResourceInUseException", "Cannot update the event source mapping because it is in use (state %s). Try again later.", m.State)
	}
	name, q := m.Function, m.Qualifier
	if in.FunctionName != nil {
		if name, q, err = s.esmTarget(*in.FunctionName); err != nil {
			return eventSourceMappingConfiguration{}, err
		}
	}
	if in.BatchSize != nil {
		max := 10000
		if sourceKind(m.EventSourceArn) == "sqs" && strings.HasSuffix(m.EventSourceArn, ".fifo") {
			max = 10
		}
		if err := checkBatchSize(*in.BatchSize, max); err != nil {
			return eventSourceMappingConfiguration{}, err
		}
	}
	if w := in.MaximumBatchingWindowInSeconds; w != nil && (*w < 0 || *w > 300) {
		return eventSourceMappingConfiguration{}, validation("maximumBatchingWindowInSeconds", strconv.Itoa(*w), "Member must have value less than or equal to 300")
	}
	now := s.cfg.Now()
	m.State = esmUpdating
	if in.Enabled != nil && *in.Enabled != m.Enabled {
		m.Enabled = *in.Enabled
		m.State = esmDisabling
		if m.Enabled {
			m.State = esmEnabling
		}
	}
	m.Function, m.Qualifier = name, q
	if in.BatchSize != nil {
		m.BatchSize = *in.BatchSize
	}
	if in.MaximumBatchingWindowInSeconds != nil {
		m.BatchingWindow = *in.MaximumBatchingWindowInSeconds
	}
	m.StateReason = "USER_INITIATED"
	m.LastModified, m.ReadyAt = now, now.Add(s.cfg.UpdateDelay)
	out := s.esmConfiguration(m)
	s.save()
	return out, nil
}

func (s *Service) deleteEventSourceMapping(uuid string) (eventSourceMappingConfiguration, *APIError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.esm(uuid)
	if err != nil {
		return eventSourceMappingConfiguration{}, err
	}
	if !m.ReadyAt.IsZero() && m.State == esmCreating {
		return eventSourceMappingConfiguration{}, apiErr("ResourceInUseException", "Cannot delete the event source mapping because it is in use (state %s). Try again later.", m.State)
	}
	delete(s.esms, uuid)
	m.State, m.LastModified = esmDeleting, s.cfg.Now()
	s.save()
	return s.esmConfiguration(m), nil
}

// listEventSourceMappings filters by EventSourceArn and FunctionName. FunctionName matches the
// function ARN it names exactly: a plain name lists the mappings of the unqualified function, a
// qualified one ("fn:live", an alias or version ARN) those of that alias or version. AWS documents
// only that a version or alias ARN lists that version's or alias's mappings; the sandbox takes the
// narrower reading, so a caller that must see every mapping of a function (prune) lists without
// the FunctionName filter, which works whichever way AWS reads it. The function need not exist:
// mappings outlive it.
func (s *Service) listEventSourceMappings(functionName, eventSource, marker string, maxItems int) (listEventSourceMappingsOutput, *APIError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var name, q string
	if functionName != "" {
		var err *APIError
		if name, q, err = parseFunctionName(functionName); err != nil {
			return listEventSourceMappingsOutput{}, err
		}
	}
	now := s.cfg.Now()
	var all []eventSourceMappingConfiguration
	for _, id := range slices.Sorted(maps.Keys(s.esms)) {
		m := s.esms[id]
		if eventSource != "" && m.EventSourceArn != eventSource {
			continue
		}
		if functionName != "" && (m.Function != name || m.Qualifier != q) {
			continue
		}
		m.settle(now)
		all = append(all, s.esmConfiguration(m))
	}
	// ListEventSourceMappings answers at most 100 items a page, even if MaxItems is higher.
	if maxItems <= 0 {
		maxItems = 100
	}
	page, next, err := paginate(all, marker, min(maxItems, 100))
	if err != nil {
		return listEventSourceMappingsOutput{}, err
	}
	if page == nil {
		page = []eventSourceMappingConfiguration{}
	}
	return listEventSourceMappingsOutput{EventSourceMappings: page, NextMarker: next}, nil
}
