package deploy

import (
	"bytes"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/aviary-deploy/aviary/controller"
	"github.com/aviary-deploy/aviary/iampolicy"
)

func TestTerraformControllerPolicyIsGenerated(t *testing.T) {
	want, err := TerraformControllerPolicy()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(ControllerPolicyFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is not what package iampolicy makes: run `go generate ./deploy`", ControllerPolicyFile)
	}
}

// The controller's role has exactly `aviary iam-policy --controller`'s actions, and is trusted
// by Lambda (which runs it) and EventBridge Scheduler (whose schedule invokes it with it).
func TestTerraformControllerRole(t *testing.T) {
	blocks := tfBlocks(t, "terraform")
	got := statements(t, block(t, blocks, "data", "aws_iam_policy_document", "aviary_controller"))
	if want := policyActions(iampolicy.Controller(SymbolicControllerInput())); !reflect.DeepEqual(got, want) {
		t.Fatalf("the controller's actions are not `aviary iam-policy --controller`'s:\n got  %v\n want %v", got, want)
	}
	pol := block(t, blocks, "resource", "aws_iam_role_policy", "controller")
	if got := traversal(t, pol.Body.Attributes["policy"].Expr); got != "data.aws_iam_policy_document.aviary_controller.json" {
		t.Fatalf("the controller's policy is %s", got)
	}
	trust := block(t, blocks, "data", "aws_iam_policy_document", "controller_trust")
	var ids []string
	for _, s := range nested(trust, "statement") {
		for _, p := range nested(s, "principals") {
			ids = append(ids, strs(t, p, "identifiers")...)
		}
	}
	if want := []string{"lambda.amazonaws.com", "scheduler.amazonaws.com"}; !slices.Equal(ids, want) {
		t.Fatalf("the controller's role trusts %v, want %v", ids, want)
	}
	fn := block(t, blocks, "resource", "aws_lambda_function", "controller")
	if got := traversal(t, fn.Body.Attributes["role"].Expr); got != "aws_iam_role.controller.arn" {
		t.Errorf("the controller runs as %s", got)
	}
}

// The schedule: rate(1 minute), the flexible window off, the controller invoked with the role,
// and an input whose keys are controller.Event's.
func TestTerraformControllerSchedule(t *testing.T) {
	blocks := tfBlocks(t, "terraform")
	s := block(t, blocks, "resource", "aws_scheduler_schedule", "controller")
	if got := str(t, s, "schedule_expression"); got != "rate(1 minute)" {
		t.Errorf("the schedule is %q", got)
	}
	if w := nested(s, "flexible_time_window"); len(w) != 1 || str(t, w[0], "mode") != "OFF" {
		t.Error("the schedule's flexible time window is not OFF")
	}
	tg := nested(s, "target")
	if len(tg) != 1 {
		t.Fatal("the schedule has no target")
	}
	if got := traversal(t, tg[0].Body.Attributes["arn"].Expr); got != "aws_lambda_function.controller.arn" {
		t.Errorf("the schedule invokes %s", got)
	}
	if got := traversal(t, tg[0].Body.Attributes["input"].Expr); got != "local.controller_input" {
		t.Errorf("the schedule's input is %s", got)
	}
	var input hcl.Expression
	for _, l := range blocks {
		if l.Type == "locals" {
			if a, ok := l.Body.Attributes["controller_input"]; ok {
				input = a.Expr
			}
		}
	}
	if input == nil {
		t.Fatal("no local controller_input")
	}
	var keys []string
	hclsyntax.VisitAll(input.(hclsyntax.Expression), func(n hclsyntax.Node) hcl.Diagnostics {
		if o, ok := n.(*hclsyntax.ObjectConsExpr); ok {
			for _, it := range o.Items {
				keys = append(keys, hcl.ExprAsKeyword(it.KeyExpr))
			}
		}
		return nil
	})
	fields := eventFields()
	for _, k := range keys {
		if !fields[k] {
			t.Errorf("the schedule's input has %q, which controller.Event does not read (it reads %v)", k, fields)
		}
	}
	if !slices.Equal(keys, []string{"service", "environment"}) {
		t.Errorf("the schedule's input has %v, want service and environment", keys)
	}
}

// eventFields are controller.Event's JSON names.
func eventFields() map[string]bool {
	out := map[string]bool{}
	ty := reflect.TypeFor[controller.Event]()
	for i := range ty.NumField() {
		out[strings.Split(ty.Field(i).Tag.Get("json"), ",")[0]] = true
	}
	return out
}

// With the controller, the gate may nudge it: lambda:InvokeFunction on it, and its name in
// AVIARY_CONTROLLER_FUNCTION.
func TestTerraformGateNudgesTheController(t *testing.T) {
	blocks := tfBlocks(t, "terraform")
	got := statements(t, block(t, blocks, "data", "aws_iam_policy_document", "gate"))
	if want := []string{"lambda:InvokeFunction"}; !slices.Equal(got["NudgeTheController"], want) {
		t.Errorf("the gate's NudgeTheController: %v, want %v", got["NudgeTheController"], want)
	}
	if !gateReads(t)["AVIARY_CONTROLLER_FUNCTION"] {
		t.Fatal("cmd/aviary-gate does not read AVIARY_CONTROLLER_FUNCTION")
	}
	src, err := os.ReadFile("terraform/gate.tf")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(src, []byte("AVIARY_CONTROLLER_FUNCTION = var.controller_zip == null ? null : local.controller_function")) {
		t.Error("the gate's environment does not name the controller")
	}
}
