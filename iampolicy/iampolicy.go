// Package iampolicy writes the least-privilege IAM policy for what Aviary does in one environment:
// only its functions (and their versions and aliases), only the artifact bucket and prefix, only the
// store's table: CI holds exactly the rights a release needs, and no more.
package iampolicy

import (
	"fmt"
	"path"
	"sort"
	"strings"
)

// Input is what the policy covers.
type Input struct {
	Partition string // default "aws"
	Region    string
	Account   string
	Functions []string // Lambda function names
	Bucket    string
	Prefix    string
	Table     string // the DynamoDB store's table, if the store is DynamoDB
	// Checks is what the environment's health checks read, if it has any.
	Checks *Checks
	// Repositories are the ECR repositories image functions' images come from, as
	// ACCOUNT/NAME or NAME (the policy's account).
	Repositories []string
	// ReadFunctions are the functions whose versions and aliases `aviary doctor` and `aviary gc`
	// read: gc marks the artifacts of every environment sharing the bucket, so this is every
	// environment's functions. Empty: only Functions.
	ReadFunctions []string
	// Controller is the environment's controller function (`controller:`), which `deploy
	// --detach` and an interrupted deploy check exists and ask for a tick at once; empty: none.
	Controller string
	// Configuration is what managed configuration needs, if any function has some.
	Configuration *Configuration
}

// Checks is what health checks need: metrics, the functions' log groups, alarms, smoke
// invocations of the new versions, hook functions.
type Checks struct {
	// Metrics: the checks read CloudWatch metrics. GetMetricData is granted either way, since
	// `aviary plan` reads the aliases' traffic whenever there are checks.
	Metrics   bool
	LogGroups []string // log group names (a function's default is /aws/lambda/NAME)
	Alarms    []string
	Smoke     bool
	Hooks     []string // function names or ARNs
}

// Policy is an IAM policy document.
type Policy struct {
	Version   string      `json:"Version"`
	Statement []Statement `json:"Statement"`
}

// Statement is one statement of a policy.
type Statement struct {
	Sid       string                       `json:"Sid"`
	Effect    string                       `json:"Effect"`
	Action    []string                     `json:"Action"`
	Resource  []string                     `json:"Resource"`
	Condition map[string]map[string]string `json:"Condition,omitempty"`
}

// Lambda operations Aviary calls, and S3 and DynamoDB actions it needs.
var (
	lambdaActions = []string{"lambda:GetFunction", "lambda:GetAlias", "lambda:UpdateFunctionCode", "lambda:PublishVersion",
		"lambda:CreateAlias", "lambda:UpdateAlias", "lambda:DeleteAlias"}
	dynamoActions = []string{"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
		"dynamodb:Query", "dynamodb:Scan"}
)

// Build writes the policy.
func Build(in Input) Policy {
	part := in.Partition
	if part == "" {
		part = "aws"
	}
	fns := append([]string(nil), in.Functions...)
	sort.Strings(fns)
	var fnARNs []string
	for _, f := range fns {
		arn := fmt.Sprintf("arn:%s:lambda:%s:%s:function:%s", part, in.Region, in.Account, f)
		fnARNs = append(fnARNs, arn, arn+":*") // the function, and its versions and aliases
	}
	prefix := strings.Trim(in.Prefix, "/")
	objects := fmt.Sprintf("arn:%s:s3:::%s/*", part, in.Bucket)
	listPrefix := "*"
	if prefix != "" {
		objects = fmt.Sprintf("arn:%s:s3:::%s/%s/*", part, in.Bucket, prefix)
		listPrefix = prefix + "/*"
	}
	p := Policy{Version: "2012-10-17", Statement: []Statement{
		{Sid: "ShipCodeToTheseFunctions", Effect: "Allow", Action: lambdaActions, Resource: fnARNs},
		{Sid: "ReadAndWriteArtifacts", Effect: "Allow", Action: []string{"s3:GetObject", "s3:PutObject"}, Resource: []string{objects}},
		{Sid: "SeeTheArtifactBucket", Effect: "Allow", Action: []string{"s3:ListBucket"},
			Resource:  []string{fmt.Sprintf("arn:%s:s3:::%s", part, in.Bucket)},
			Condition: map[string]map[string]string{"StringLike": {"s3:prefix": listPrefix}}},
	}}
	p.Statement = append(p.Statement, configurationStatements(part, in)...)
	p.Statement = append(p.Statement, pruneStatements(part, in.Account, fnARNs)...)
	p.Statement = append(p.Statement, retentionStatements(part, in, fnARNs, objects)...)
	p.Statement = append(p.Statement, imageStatements(part, in)...)
	if c := in.Checks; c != nil {
		p.Statement = append(p.Statement, checkStatements(part, in, fnARNs)...)
	}
	if in.Table != "" {
		table := fmt.Sprintf("arn:%s:dynamodb:%s:%s:table/%s", part, in.Region, in.Account, in.Table)
		p.Statement = append(p.Statement, Statement{Sid: "KeepReleasesInTheStore", Effect: "Allow", Action: dynamoActions,
			Resource: []string{table, table + "/index/*"}})
	}
	if in.Controller != "" {
		p.Statement = append(p.Statement, Statement{Sid: "TriggerTheController", Effect: "Allow", Action: []string{"lambda:GetFunction", "lambda:InvokeFunction"},
			Resource: []string{fmt.Sprintf("arn:%s:lambda:%s:%s:function:%s", part, in.Region, in.Account, in.Controller)}})
	}
	return p
}

// Action is the IAM action an API operation needs, as the sandbox's request log names them.
func Action(service, op string) string {
	switch service {
	case "lambda":
		if op == "Invoke" || op == "InvokeWithResponseStream" {
			return "lambda:InvokeFunction"
		}
		return "lambda:" + op
	case "s3":
		switch op {
		case "HeadObject", "GetObject":
			return "s3:GetObject"
		case "HeadBucket", "ListObjects", "ListObjectsV2":
			return "s3:ListBucket"
		case "ListObjectVersions":
			return "s3:ListBucketVersions"
		case "GetBucketLifecycleConfiguration":
			return "s3:GetLifecycleConfiguration"
		case "DeleteObjects":
			return "s3:DeleteObject"
		}
		return "s3:" + op
	case "monitoring":
		return "cloudwatch:" + op
	case "logs":
		return "logs:" + op
	case "dynamodb":
		return "dynamodb:" + op
	}
	return service + ":" + op
}

// Allows reports whether some statement allows the action on the resource (ARN patterns with *
// and ?, as IAM matches them; conditions are not evaluated).
func (p Policy) Allows(action, resource string) bool {
	for _, s := range p.Statement {
		if s.Effect != "Allow" || !anyMatch(s.Action, action) || !anyMatch(s.Resource, resource) {
			continue
		}
		return true
	}
	return false
}

func anyMatch(patterns []string, s string) bool {
	for _, p := range patterns {
		// IAM's wildcards match across the ARN's separators, unlike path.Match's.
		if ok, _ := path.Match(strings.ReplaceAll(p, "/", "\x00"), strings.ReplaceAll(s, "/", "\x00")); ok {
			return true
		}
	}
	return false
}

// checkStatements are the health checks' rights: reading (metrics have no resource-level
// permissions in IAM, so GetMetricData is on *), and invoking the new versions and the hooks.
// GetMetricData is granted with metrics: off too: `aviary plan` reads each alias's recent
// Invocations to say whether the bakes can judge at that traffic.
func checkStatements(part string, in Input, fnARNs []string) []Statement {
	c := in.Checks
	var out []Statement
	out = append(out, Statement{Sid: "ReadLambdaMetrics", Effect: "Allow", Action: []string{"cloudwatch:GetMetricData"}, Resource: []string{"*"}})
	if len(c.LogGroups) > 0 {
		var groups []string
		for _, g := range c.LogGroups {
			groups = append(groups, fmt.Sprintf("arn:%s:logs:%s:%s:log-group:%s:*", part, in.Region, in.Account, g))
		}
		sort.Strings(groups)
		out = append(out, Statement{Sid: "ReadFunctionLogs", Effect: "Allow", Action: []string{"logs:FilterLogEvents"}, Resource: groups})
	}
	if len(c.Alarms) > 0 {
		var alarms []string
		for _, a := range c.Alarms {
			alarms = append(alarms, fmt.Sprintf("arn:%s:cloudwatch:%s:%s:alarm:%s", part, in.Region, in.Account, a))
		}
		sort.Strings(alarms)
		out = append(out, Statement{Sid: "ReadAlarms", Effect: "Allow", Action: []string{"cloudwatch:DescribeAlarms"}, Resource: alarms})
	}
	if c.Smoke {
		var versions []string
		for _, a := range fnARNs {
			if strings.HasSuffix(a, ":*") {
				versions = append(versions, a)
			}
		}
		out = append(out, Statement{Sid: "SmokeTestNewVersions", Effect: "Allow", Action: []string{"lambda:InvokeFunction"}, Resource: versions})
	}
	if len(c.Hooks) > 0 {
		var hooks []string
		for _, h := range c.Hooks {
			if !strings.HasPrefix(h, "arn:") {
				h = fmt.Sprintf("arn:%s:lambda:%s:%s:function:%s", part, in.Region, in.Account, h)
			}
			hooks = append(hooks, h, h+":*")
		}
		sort.Strings(hooks)
		out = append(out, Statement{Sid: "InvokeHooks", Effect: "Allow", Action: []string{"lambda:GetFunction", "lambda:InvokeFunction"}, Resource: hooks})
	}
	return out
}

// pruneStatements are `aviary prune`'s rights (its versions and aliases are read under
// retentionStatements): reading the functions' provisioned concurrency, deleting their versions (DeleteFunction with a qualifier is authorized
// on the qualified ARN, so the functions themselves cannot be deleted), and reading what else
// names a version: event source mappings (ListEventSourceMappings has no resource-level
// permissions) and CloudFront's Lambda@Edge associations.
func pruneStatements(part, account string, fnARNs []string) []Statement {
	var versions []string
	for _, a := range fnARNs {
		if strings.HasSuffix(a, ":*") {
			versions = append(versions, a)
		}
	}
	return []Statement{
		{Sid: "PruneReadVersions", Effect: "Allow", Action: []string{"lambda:ListProvisionedConcurrencyConfigs"}, Resource: fnARNs},
		{Sid: "PruneDeleteVersions", Effect: "Allow", Action: []string{"lambda:DeleteFunction"}, Resource: versions},
		{Sid: "PruneSeeEventSourceMappings", Effect: "Allow", Action: []string{"lambda:ListEventSourceMappings"}, Resource: []string{"*"}},
		{Sid: "PruneSeeLambdaAtEdge", Effect: "Allow", Action: []string{"cloudfront:ListDistributions"}, Resource: []string{"*"}},
		{Sid: "PruneReadDistributions", Effect: "Allow", Action: []string{"cloudfront:GetDistributionConfig"},
			Resource: []string{fmt.Sprintf("arn:%s:cloudfront::%s:distribution/*", part, account)}},
	}
}

// retentionStatements are doctor's and gc's rights: reading versions and aliases (of every
// environment, for gc's marking), the account's code storage (GetAccountSettings has no
// resource-level permissions), the bucket's lifecycle and versioning, and deleting unreachable
// artifacts under the prefix. Restoring an artifact uses GetFunction and PutObject, granted above.
func retentionStatements(part string, in Input, fnARNs []string, objects string) []Statement {
	read := fnARNs
	if len(in.ReadFunctions) > 0 {
		fns := append([]string(nil), in.ReadFunctions...)
		sort.Strings(fns)
		read = nil
		for _, f := range fns {
			arn := fmt.Sprintf("arn:%s:lambda:%s:%s:function:%s", part, in.Region, in.Account, f)
			read = append(read, arn, arn+":*")
		}
	}
	bucket := fmt.Sprintf("arn:%s:s3:::%s", part, in.Bucket)
	return []Statement{
		{Sid: "ReadVersionsAndAliases", Effect: "Allow", Action: []string{"lambda:ListVersionsByFunction", "lambda:ListAliases"}, Resource: read},
		{Sid: "ReadCodeStorage", Effect: "Allow", Action: []string{"lambda:GetAccountSettings"}, Resource: []string{"*"}},
		{Sid: "ReadArtifactBucketRules", Effect: "Allow", Action: []string{"s3:GetLifecycleConfiguration", "s3:GetBucketVersioning"}, Resource: []string{bucket}},
		{Sid: "CollectUnreachableArtifacts", Effect: "Allow", Action: []string{"s3:DeleteObject"}, Resource: []string{objects}},
	}
}
