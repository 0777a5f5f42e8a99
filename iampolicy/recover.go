package iampolicy

import "fmt"

// RecoverInput is what recover-stack's policy covers.
type RecoverInput struct {
	Partition string // default "aws"
	Region    string
	Account   string
	// Stack is the root stack's name ("" for every stack). Its nested stacks are named
	// STACK-<logical id>-<random>, and their functions STACK-...: both are covered by STACK-*.
	Stack string
	// Buckets are the artifact buckets the rollback reads its code from (none means every bucket).
	Buckets []string
}

// Recover writes the least-privilege policy of `aviary recover-stack`: read the stack and its
// nested stacks (and continue the root's rollback), look up CloudTrail's failed
// UpdateFunctionCode calls (LookupEvents has no resource-level permissions: *), read the
// artifact buckets' objects and older versions and put restored objects back, and read the
// stacks' functions' versions and code. It never deletes anything. ContinueUpdateRollback
// runs the rollback with the caller's rights unless the stack has a service role: then that
// role needs what the stack's resources need (lambda:UpdateFunctionCode and the rest), as for
// any update of the stack.
func Recover(in RecoverInput) Policy {
	part := in.Partition
	if part == "" {
		part = "aws"
	}
	stack, family := "*", "*"
	if in.Stack != "" {
		stack, family = in.Stack, in.Stack+"-*"
	}
	stackARN := func(name string) string {
		return fmt.Sprintf("arn:%s:cloudformation:%s:%s:stack/%s/*", part, in.Region, in.Account, name)
	}
	stacks := []string{stackARN(stack)}
	if family != stack {
		stacks = append(stacks, stackARN(family))
	}
	fn := fmt.Sprintf("arn:%s:lambda:%s:%s:function:%s", part, in.Region, in.Account, family)
	buckets, objects := []string{}, []string{}
	if len(in.Buckets) == 0 {
		buckets, objects = []string{fmt.Sprintf("arn:%s:s3:::*", part)}, []string{fmt.Sprintf("arn:%s:s3:::*/*", part)}
	}
	for _, b := range in.Buckets {
		buckets = append(buckets, fmt.Sprintf("arn:%s:s3:::%s", part, b))
		objects = append(objects, fmt.Sprintf("arn:%s:s3:::%s/*", part, b))
	}
	return Policy{Version: "2012-10-17", Statement: []Statement{
		{Sid: "ReadTheStacks", Effect: "Allow", Action: []string{"cloudformation:DescribeStackEvents", "cloudformation:DescribeStackResources",
			"cloudformation:DescribeStacks", "cloudformation:GetTemplate"}, Resource: stacks},
		{Sid: "ContinueTheRollback", Effect: "Allow", Action: []string{"cloudformation:ContinueUpdateRollback"}, Resource: []string{stackARN(stack)}},
		{Sid: "FindTheFailedCodeCalls", Effect: "Allow", Action: []string{"cloudtrail:LookupEvents"}, Resource: []string{"*"}},
		{Sid: "ListArtifactVersions", Effect: "Allow", Action: []string{"s3:ListBucket", "s3:ListBucketVersions"}, Resource: buckets},
		{Sid: "ReadAndRestoreArtifacts", Effect: "Allow", Action: []string{"s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"}, Resource: objects},
		{Sid: "ReadTheFunctionsCode", Effect: "Allow", Action: []string{"lambda:GetFunction", "lambda:ListVersionsByFunction"}, Resource: []string{fn, fn + ":*"}},
	}}
}
