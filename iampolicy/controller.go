package iampolicy

import "fmt"

// releaseRights are the statements of [Build] that driving a release needs.
var releaseRights = map[string]bool{
	"ShipCodeToTheseFunctions": true, "ReadAndWriteArtifacts": true, "SeeTheArtifactBucket": true,
	"ReadLambdaMetrics": true, "ReadFunctionLogs": true, "ReadAlarms": true, "SmokeTestNewVersions": true, "InvokeHooks": true,
	"KeepReleasesInTheStore": true,
	// Publishing a configured function, and an image function (see Controller).
	"ApplyManagedConfiguration": true, "ReadConfigurationParameters": true, "ResolveAndCheckImages": true,
}

// ControllerInput is what the controller's policy covers: one environment's release rights
// (Input: its functions, the artifact bucket, the store's table, its checks) and the controller's
// own function.
type ControllerInput struct {
	Input
	// Function is the controller's function name: it writes its own log, and the schedule
	// (with this role, when the role serves both) invokes it.
	Function string
}

// Controller writes the least-privilege policy of the controller (cmd/aviary-controller) for one
// environment: what driving a release needs — the functions' code, versions and aliases, reading
// the artifacts (the CLI uploads them before it hands a release over: no PutObject), the
// checks' reads and invocations, the store's table — and the controller's own: writing its log
// group (/aws/lambda/FUNCTION) and being invoked by its schedule. No retention rights: the
// controller prunes nothing. A role serving several environments carries one such policy each.
func Controller(in ControllerInput) Policy {
	part := in.Partition
	if part == "" {
		part = "aws"
	}
	full := Build(in.Input)
	var out []Statement
	for _, s := range full.Statement {
		if !releaseRights[s.Sid] {
			continue // retention's and prune's
		}
		if s.Sid == "ReadAndWriteArtifacts" {
			s.Sid, s.Action = "ReadArtifacts", []string{"s3:GetObject"}
		}
		if s.Sid == "ResolveAndCheckImages" {
			// The controller publishes the digest the plan pinned: Lambda's UpdateFunctionCode
			// reads the image as the caller; resolving tags and doctor's checks are not its.
			s.Sid, s.Action = "ReadImagesToShip", []string{"ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"}
		}
		out = append(out, s)
	}
	fn := fmt.Sprintf("arn:%s:lambda:%s:%s:function:%s", part, in.Region, in.Account, in.Function)
	logs := fmt.Sprintf("arn:%s:logs:%s:%s:log-group:/aws/lambda/%s", part, in.Region, in.Account, in.Function)
	out = append(out,
		Statement{Sid: "WriteTheControllersLog", Effect: "Allow", Action: []string{"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"}, Resource: []string{logs, logs + ":*"}},
		Statement{Sid: "TheScheduleInvokesTheController", Effect: "Allow", Action: []string{"lambda:InvokeFunction"}, Resource: []string{fn, fn + ":*"}},
	)
	return Policy{Version: "2012-10-17", Statement: out}
}
