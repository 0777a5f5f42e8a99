package deploy

import (
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"testing"

	"github.com/aviary-deploy/aviary/iampolicy"
)

// controllerParams turn the template's controller on.
var controllerParams = map[string]any{"ControllerCodeS3Bucket": "b", "ControllerCodeS3Key": "controller.zip", "ControllerService": "shop", "ControllerEnvironment": "production"}

// The controller's role has exactly `aviary iam-policy --controller`'s actions, with every check
// and with none.
func TestCloudFormationControllerPolicyActions(t *testing.T) {
	all := maps.Clone(controllerParams)
	maps.Copy(all, map[string]any{"EnableMetricsChecks": "true", "EnableLogsChecks": "true", "EnableSmokeChecks": "true", "AlarmNamePrefix": "shop-", "HookFunctionNamePrefix": "shop-hook-"})
	if got, want := cfnRoleStatements(t, template(t, all), "ControllerRole"), policyActions(iampolicy.Controller(SymbolicControllerInput())); !reflect.DeepEqual(got, want) {
		t.Fatalf("with every check, the controller's actions are not `aviary iam-policy --controller`'s:\n got  %v\n want %v", got, want)
	}
	none := SymbolicControllerInput()
	none.Checks = nil
	if got, want := cfnRoleStatements(t, template(t, controllerParams), "ControllerRole"), policyActions(iampolicy.Controller(none)); !reflect.DeepEqual(got, want) {
		t.Fatalf("without checks, the controller's actions are not `aviary iam-policy --controller`'s:\n got  %v\n want %v", got, want)
	}
	// Without the controller's code, the gate has no right on it.
	tpl := template(t, map[string]any{"GateCodeS3Bucket": "b", "GateCodeS3Key": "gate.zip"})
	if _, ok := cfnRoleStatements(t, tpl, "GateRole")["NudgeTheController"]; ok {
		t.Error("the gate may invoke a controller that is not there")
	}
}

// The schedule: rate(1 minute), the flexible window off, the controller invoked with its role,
// the input a controller.Event naming the service and environment.
func TestCloudFormationControllerSchedule(t *testing.T) {
	tpl := template(t, controllerParams)
	s, err := tpl.GetSchedulerScheduleWithName("ControllerSchedule")
	if err != nil {
		t.Fatal(err)
	}
	if s.ScheduleExpression != "rate(1 minute)" || s.FlexibleTimeWindow == nil || s.FlexibleTimeWindow.Mode != "OFF" {
		t.Errorf("the schedule: %q, window %+v", s.ScheduleExpression, s.FlexibleTimeWindow)
	}
	if s.Target == nil || s.Target.Input == nil {
		t.Fatal("the schedule has no target input")
	}
	var in map[string]any
	if err := json.Unmarshal([]byte(*s.Target.Input), &in); err != nil {
		t.Fatalf("the schedule's input %q: %v", *s.Target.Input, err)
	}
	fields := eventFields()
	for k := range in {
		if !fields[k] {
			t.Errorf("the schedule's input has %q, which controller.Event does not read", k)
		}
	}
	if in["service"] != "shop" || in["environment"] != "production" {
		t.Errorf("the schedule's input: %v", in)
	}
	role, err := tpl.GetIAMRoleWithName("ControllerRole")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(role.AssumeRolePolicyDocument)
	var trust struct {
		Statement []struct{ Principal struct{ Service []string } }
	}
	if err := json.Unmarshal(b, &trust); err != nil || len(trust.Statement) != 1 {
		t.Fatalf("the controller's trust %s: %v", b, err)
	}
	if got, want := trust.Statement[0].Principal.Service, []string{"lambda.amazonaws.com", "scheduler.amazonaws.com"}; !slices.Equal(got, want) {
		t.Errorf("the controller's role trusts %v, want %v", got, want)
	}
	// The gate nudges it.
	withGate := maps.Clone(controllerParams)
	maps.Copy(withGate, map[string]any{"GateCodeS3Bucket": "b", "GateCodeS3Key": "gate.zip"})
	tpl = template(t, withGate)
	if got := cfnRoleStatements(t, tpl, "GateRole")["NudgeTheController"]; !slices.Equal(got, []string{"lambda:InvokeFunction"}) {
		t.Errorf("the gate's NudgeTheController: %v", got)
	}
	fn, err := tpl.GetLambdaFunctionWithName("Gate")
	if err != nil {
		t.Fatal(err)
	}
	if got := fn.Environment.Variables["AVIARY_CONTROLLER_FUNCTION"]; got != "aviary-controller" {
		t.Errorf("the gate's AVIARY_CONTROLLER_FUNCTION is %q", got)
	}
}
