package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/aviary-deploy/aviary/awsconfig"
	"github.com/aviary-deploy/aviary/iampolicy"
	"github.com/aviary-deploy/aviary/release"
	"github.com/aviary-deploy/aviary/store/dynamo"
)

// The policy `aviary iam-policy` prints allows every call Aviary made in a run that exercises every
// path (an alias on $LATEST pinned, an alias created, a rollback that deletes it, a promotion,
// health checks reading metrics, logs and alarms, smoke invocations and hooks), and grants no
// Lambda action the run did not need.
func TestIAMPolicyCoversEveryCall(t *testing.T) {
	f := newFleet(t, 2, quick, "      canary:\n        - weight: 10%\n          bake: 1h")
	f.appendManifest(`
    checks:
      smoke: [{payload: {action: echo}}]
      alarms: ["{service}-errors"]
      hooks: {pre_traffic: "{service}-hook", post_traffic: "{service}-hook"}
      max_bake: 2h
      on_inconclusive: promote
`)
	ctx := context.Background()
	cfg, err := awsconfig.Load(ctx, awsconfig.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cloudwatch.NewFromConfig(cfg).PutMetricAlarm(ctx, &cloudwatch.PutMetricAlarmInput{
		AlarmName: aws.String("shop-errors"), Namespace: aws.String("Shop"), MetricName: aws.String("Failures"), Statistic: cwtypes.StatisticSum,
		Period: aws.Int32(60), EvaluationPeriods: aws.Int32(1), Threshold: aws.Float64(1), ComparisonOperator: cwtypes.ComparisonOperatorGreaterThanOrEqualToThreshold,
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.lambda.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("shop-hook"), Runtime: lambdatypes.RuntimeProvidedal2023,
		Handler: aws.String("bootstrap"), Role: aws.String("arn:aws:iam::000000000000:role/r"), Code: &lambdatypes.FunctionCode{ZipFile: f.zip(f.names[0])}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.lambda.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String(f.fn(f.names[0])), Name: aws.String("live"), FunctionVersion: aws.String("$LATEST")}); err != nil {
		t.Fatal(err)
	}
	f.srv.ResetRequests()
	f.stampAll("1")
	done := make(chan int)
	go func() { code, _, _ := f.aviary("deploy", "-e", "production", "--api-rate", "200"); done <- code }()
	r := f.waitFor("the canary", func(r *release.Release) bool { return r.Phase == release.Shifting && !r.StepStarted.IsZero() })
	time.Sleep(2500 * time.Millisecond) // judged for a while: metrics, logs and alarms read
	if code, _, errs := f.aviary("rollback", r.ID); code != 0 {
		t.Fatal(errs)
	}
	<-done
	f.setBake("0s")
	f.replaceInManifest("max_bake: 2h", "max_bake: 1s") // no traffic here: inconclusive at once, then promote
	if code, _, errs := f.aviary("plan", "-e", "production"); code != 0 {
		t.Fatal(errs)
	}
	if code, _, errs := f.aviary("deploy", "-e", "production", "--api-rate", "200"); code != 0 {
		t.Fatal(errs)
	}

	// A prune: versions no release made go (one deleted, the newest kept), with a CloudFront
	// distribution to read.
	f.publish(f.names[0], "x1")
	f.publish(f.names[0], "x2")
	distribution(t, f.cloudfront(), "iam", "", "")
	if code, _, errs := f.aviary("prune", "-e", "production", "--keep", "1"); code != 0 {
		t.Fatal(errs)
	}
	// Retention's calls: doctor restoring an artifact that went missing (GetFunction's code,
	// PutObject), reading lifecycle, versioning and code storage; gc reading every version and
	// collecting an orphan.
	s3c := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	objs, err := s3c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("shop-artifacts")})
	if err != nil || len(objs.Contents) == 0 {
		t.Fatalf("no artifacts: %v", err)
	}
	for _, o := range objs.Contents {
		if _, err := s3c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("shop-artifacts"), Key: o.Key}); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.RemoveAll(filepath.Join(f.dir, ".aviary", "cache")); err != nil {
		t.Fatal(err)
	}
	orphan := sha256.Sum256([]byte("orphan"))
	if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("shop-artifacts"), Key: aws.String(path.Dir(aws.ToString(objs.Contents[0].Key)) + "/" + hex.EncodeToString(orphan[:]) + ".zip"), Body: strings.NewReader("orphan")}); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := f.aviary("doctor", "-e", "production", "--restore"); code != 0 || !strings.Contains(out, "GetFunction") {
		t.Fatalf("doctor --restore: exit %d\n%s\n%s", code, out, errs)
	}
	if code, out, errs := f.aviary("gc", "-e", "production", "--grace", "0s"); code != 0 || !strings.Contains(out, "Deleted 1 artifact") {
		t.Fatalf("gc: exit %d\n%s\n%s", code, out, errs)
	}

	code, out, errs := f.aviary("iam-policy", "-e", "production", "--store", "dynamodb://aviary-releases")
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
		if action == "sts:GetCallerIdentity" {
			// iam-policy learning the account: AWS needs no permission for it ("No permissions are
			// required to perform this operation", GetCallerIdentity's API reference), and the
			// sandbox answering it is what this run proves.
			used[action] = true
			continue
		}
		var resource string
		switch req.Service {
		case "lambda":
			resource = "arn:aws:lambda:us-east-1:000000000000:function:" + req.Resource
			if q, _ := url.ParseQuery(req.Query); q.Get("Qualifier") != "" {
				resource += ":" + q.Get("Qualifier")
			}
		case "s3":
			resource = "arn:aws:s3:::" + strings.TrimPrefix(req.Path, "/")
		case "logs":
			resource = "arn:aws:logs:us-east-1:000000000000:log-group:" + req.Resource + ":*"
		case "cloudfront":
			resource = "*"
			if req.Operation == "GetDistributionConfig" {
				// /2020-05-31/distribution/ID/config
				parts := strings.Split(strings.Trim(req.Path, "/"), "/")
				resource = "arn:aws:cloudfront::000000000000:distribution/" + parts[len(parts)-2]
			}
		case "monitoring":
			resource = "*"
			if req.Operation == "DescribeAlarms" {
				resource = "arn:aws:cloudwatch:us-east-1:000000000000:alarm:shop-errors"
			}
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
	for _, a := range []string{"lambda:InvokeFunction", "cloudwatch:GetMetricData", "cloudwatch:DescribeAlarms", "logs:FilterLogEvents", "sts:GetCallerIdentity",
		"lambda:DeleteFunction", "lambda:ListVersionsByFunction", "lambda:ListEventSourceMappings", "lambda:ListProvisionedConcurrencyConfigs",
		"cloudfront:ListDistributions", "cloudfront:GetDistributionConfig",
		"lambda:ListAliases", "lambda:GetAccountSettings", "s3:GetLifecycleConfiguration", "s3:GetBucketVersioning", "s3:DeleteObject"} {
		if !used[a] {
			t.Errorf("the run never called %s", a)
		}
	}
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
