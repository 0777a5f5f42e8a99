package e2e

import (
	"context"
	"encoding/json"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/aviary-deploy/aviary/iampolicy"
	"github.com/aviary-deploy/aviary/release"
	"github.com/aviary-deploy/aviary/store/dynamo"
)

// The policy `aviary iam-policy` prints allows every call Aviary made in a run that exercises every
// path (an alias on $LATEST pinned, an alias created, a rollback that deletes it, a promotion),
// and grants no Lambda action the run did not need.
func TestIAMPolicyCoversEveryCall(t *testing.T) {
	f := newFleet(t, 2, quick, "      canary:\n        - weight: 10%\n          bake: 1h")
	ctx := context.Background()
	if _, err := f.lambda.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String(f.fn(f.names[0])), Name: aws.String("live"), FunctionVersion: aws.String("$LATEST")}); err != nil {
		t.Fatal(err)
	}
	f.srv.ResetRequests()
	f.stampAll("1")
	done := make(chan int)
	go func() { code, _, _ := f.aviary("deploy", "-e", "production", "--rate", "200"); done <- code }()
	r := f.waitFor("the canary", func(r *release.Release) bool { return r.Phase == release.Shifting && !r.StepStarted.IsZero() })
	if code, _, errs := f.aviary("rollback", r.ID); code != 0 {
		t.Fatal(errs)
	}
	<-done
	f.setBake("0s")
	if code, _, errs := f.aviary("plan", "-e", "production"); code != 0 {
		t.Fatal(errs)
	}
	if code, _, errs := f.aviary("deploy", "-e", "production", "--rate", "200"); code != 0 {
		t.Fatal(errs)
	}

	code, out, errs := f.aviary("iam-policy", "-e", "production", "--account", "000000000000", "--store", "dynamodb://aviary-releases")
	if code != 0 {
		t.Fatalf("iam-policy: %s", errs)
	}
	var p iampolicy.Policy
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, req := range f.srv.Requests() {
		if !strings.Contains(req.UserAgent, "app/aviary") {
			continue // the test's own calls
		}
		action := iampolicy.Action(req.Service, req.Operation)
		var resource string
		switch req.Service {
		case "lambda":
			resource = "arn:aws:lambda:us-east-1:000000000000:function:" + req.Resource
		case "s3":
			resource = "arn:aws:s3:::" + strings.TrimPrefix(req.Path, "/")
		}
		used[action] = true
		if !p.Allows(action, resource) {
			t.Errorf("the policy does not allow %s on %s (%s %s)", action, resource, req.Method, req.Path)
		}
	}
	for _, st := range p.Statement {
		for _, a := range st.Action {
			if strings.HasPrefix(a, "lambda:") && !used[a] {
				t.Errorf("the policy grants %s, which no call needed", a)
			}
		}
	}
	var seen []string
	for a := range used {
		seen = append(seen, a)
	}
	sort.Strings(seen)
	t.Logf("actions used: %v", seen)
	if len(used) < 9 {
		t.Errorf("the run exercised only %v", seen)
	}

	// The store's calls: every method the DynamoDB store can make is allowed on its table (Init's
	// table creation is a setup step with its own rights).
	table := "arn:aws:dynamodb:us-east-1:000000000000:table/aviary-releases"
	api := reflect.TypeFor[dynamo.API]()
	for i := range api.NumMethod() {
		m := api.Method(i).Name
		if m == "CreateTable" || m == "DescribeTable" {
			continue
		}
		if !p.Allows("dynamodb:"+m, table) || !p.Allows("dynamodb:"+m, table+"/index/"+dynamo.Index) {
			t.Errorf("the policy does not allow dynamodb:%s on the store's table and index", m)
		}
	}
}
