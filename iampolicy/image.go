package iampolicy

import (
	"fmt"
	"sort"
	"strings"
)

// ecrActions are what image functions need on their repositories: plan resolves a tag to its
// digest (DescribeRepositories, DescribeImages); doctor checks the digests releases need are
// there and reads the lifecycle policy (GetLifecyclePolicy); and Lambda's UpdateFunctionCode
// with an ImageUri reads the image as the caller (BatchGetImage, GetDownloadUrlForLayer).
var ecrActions = []string{"ecr:DescribeRepositories", "ecr:DescribeImages", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:GetLifecyclePolicy"}

func imageStatements(part string, in Input) []Statement {
	if len(in.Repositories) == 0 {
		return nil
	}
	var arns []string
	seen := map[string]bool{}
	for _, r := range in.Repositories {
		account, name := in.Account, r
		if a, n, ok := strings.Cut(r, "/"); ok && len(a) == 12 && strings.Trim(a, "0123456789") == "" {
			account, name = a, n
		}
		arn := fmt.Sprintf("arn:%s:ecr:%s:%s:repository/%s", part, in.Region, account, name)
		if !seen[arn] {
			seen[arn] = true
			arns = append(arns, arn)
		}
	}
	sort.Strings(arns)
	return []Statement{{Sid: "ResolveAndCheckImages", Effect: "Allow", Action: ecrActions, Resource: arns}}
}
