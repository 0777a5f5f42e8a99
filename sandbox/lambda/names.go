package lambda

import (
	"fmt"
	"regexp"
	"strings"
)

var (
	functionNameRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)
	aliasNameRE    = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,128}$`)
	versionRE      = regexp.MustCompile(`^[0-9]+$`)
	qualifierRE    = regexp.MustCompile(`^(\$LATEST|[a-zA-Z0-9_-]{1,128})$`)
)

// parseFunctionName accepts the forms the API accepts for FunctionName: a name, a name with a
// qualifier suffix ("my-function:live"), a partial ARN ("123456789012:function:my-function") and a
// full ARN, each optionally qualified. It returns the bare name and the qualifier, if any.
func parseFunctionName(raw string) (name, qualifier string, err *APIError) {
	if raw == "" || len(raw) > 256 {
		return "", "", validation("functionName", raw, "Member must have length between 1 and 256")
	}
	parts := strings.Split(raw, ":")
	switch {
	case len(parts) >= 7 && parts[0] == "arn" && parts[2] == "lambda" && parts[5] == "function":
		name = parts[6]
		if len(parts) == 8 {
			qualifier = parts[7]
		} else if len(parts) > 8 {
			return "", "", invalidName(raw)
		}
	case len(parts) >= 3 && parts[1] == "function":
		name = parts[2]
		if len(parts) == 4 {
			qualifier = parts[3]
		} else if len(parts) > 4 {
			return "", "", invalidName(raw)
		}
	case len(parts) <= 2:
		name = parts[0]
		if len(parts) == 2 {
			qualifier = parts[1]
		}
	default:
		return "", "", invalidName(raw)
	}
	if !functionNameRE.MatchString(name) {
		return "", "", invalidName(raw)
	}
	if len(parts) > 1 && qualifier == "" && strings.HasSuffix(raw, ":") {
		return "", "", invalidName(raw)
	}
	if qualifier != "" && !qualifierRE.MatchString(qualifier) {
		return "", "", invalidName(raw)
	}
	return name, qualifier, nil
}

func invalidName(raw string) *APIError {
	return validation("functionName", raw,
		`Member must satisfy regular expression pattern: (arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:)?(\d{12}:)?(function:)?([a-zA-Z0-9-_]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?`)
}

// validation is the error AWS's request validation answers before an operation runs.
func validation(field, value, constraint string) *APIError {
	return apiErr("ValidationException", "1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: %s",
		value, field, constraint)
}

// mergeQualifier reconciles a qualifier carried in the function name with the Qualifier parameter.
func mergeQualifier(fromName, param string) (string, *APIError) {
	switch {
	case fromName == "":
		return param, nil
	case param == "" || param == fromName:
		return fromName, nil
	default:
		return "", invalidParam("The derived qualifier from the function name does not match the specified qualifier.")
	}
}

func (s *Service) functionARN(name string) string {
	return fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", s.cfg.Region, s.cfg.Account, name)
}

func (s *Service) qualifiedARN(name, qualifier string) string {
	if qualifier == "" {
		return s.functionARN(name)
	}
	return s.functionARN(name) + ":" + qualifier
}
