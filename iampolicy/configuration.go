package iampolicy

import (
	"fmt"
	"sort"
	"strings"
)

// Configuration is what releasing managed configuration (`configuration:`) needs: updating the
// configuration of the functions that have one, and reading the SSM parameters their values
// name. A SecureString encrypted with a customer managed KMS key also needs kms:Decrypt on that
// key, which the manifest cannot name (the AWS managed key aws/ssm needs nothing more).
type Configuration struct {
	Functions  []string // Lambda function names whose configuration is managed
	Parameters []string // SSM parameter names, as written ({{ssm:/path}}), selectors allowed
}

// configurationStatements are the rights Configuration names.
func configurationStatements(part string, in Input) []Statement {
	c := in.Configuration
	if c == nil || len(c.Functions) == 0 {
		return nil
	}
	fns := append([]string(nil), c.Functions...)
	sort.Strings(fns)
	var arns []string
	for _, f := range fns {
		arns = append(arns, fmt.Sprintf("arn:%s:lambda:%s:%s:function:%s", part, in.Region, in.Account, f))
	}
	out := []Statement{{Sid: "ApplyManagedConfiguration", Effect: "Allow", Action: []string{"lambda:UpdateFunctionConfiguration"}, Resource: arns}}
	seen := map[string]bool{}
	var params []string
	for _, p := range c.Parameters {
		arn := ParameterARN(part, in.Region, in.Account, p)
		if !seen[arn] {
			seen[arn] = true
			params = append(params, arn)
		}
	}
	if len(params) > 0 {
		sort.Strings(params)
		out = append(out, Statement{Sid: "ReadConfigurationParameters", Effect: "Allow", Action: []string{"ssm:GetParameter", "ssm:GetParameters"}, Resource: params})
	}
	return out
}

// ParameterARN is an SSM parameter's ARN: its name without a :version or :label selector, and
// without the leading slash of a path.
func ParameterARN(part, region, account, name string) string {
	if i := strings.LastIndex(name, ":"); i > 0 {
		name = name[:i]
	}
	return fmt.Sprintf("arn:%s:ssm:%s:%s:parameter/%s", part, region, account, strings.TrimPrefix(name, "/"))
}
