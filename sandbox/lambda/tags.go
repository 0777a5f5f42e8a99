package lambda

import (
	"maps"
	"strings"
)

// listTagsOutput is ListTags' answer.
type listTagsOutput struct {
	Tags map[string]string `json:"Tags"`
}

// listTags answers ListTags for a function's ARN (the tags CreateFunction set). As on AWS, the
// resource is an ARN, and tags belong to the function, never to one of its versions or aliases.
// Event source mappings and code signing configurations, which AWS tags too, carry none here.
func (s *Service) listTags(resource string) (listTagsOutput, *APIError) {
	if !strings.HasPrefix(resource, "arn:") {
		return listTagsOutput{}, apiErr("ValidationException", "1 validation error detected: Value '%s' at 'resource' failed to satisfy constraint: Member must satisfy regular expression pattern: arn:(aws[a-zA-Z-]*):lambda:[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{1}:\\d{12}:(function:[a-zA-Z0-9-_]+(:(\\$LATEST|[a-zA-Z0-9-_]+))?|code-signing-config:csc-[a-z0-9]{17}|event-source-mapping:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})", resource)
	}
	if !strings.Contains(resource, ":function:") {
		return listTagsOutput{Tags: map[string]string{}}, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f, q, err := s.lookup(resource)
	if err != nil {
		return listTagsOutput{}, err
	}
	if q != "" {
		return listTagsOutput{}, apiErr("InvalidParameterValueException", "Tags are not supported on function versions or aliases: %s", resource)
	}
	tags := maps.Clone(f.Tags)
	if tags == nil {
		tags = map[string]string{}
	}
	return listTagsOutput{Tags: tags}, nil
}
