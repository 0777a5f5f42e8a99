package sandbox_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aviary-deploy/aviary/sandbox"
)

// The compatibility test drives the sandbox with Debian's awscli, a real AWS client that speaks
// the older query protocol to CloudWatch, and checks its output against the examples in the AWS
// API documentation (botocore's examples-1.json).

const awsCLI = "/usr/bin/aws"

type cli struct {
	t   *testing.T
	url string
	env []string
}

func newCLI(t *testing.T, srv *sandbox.Server) *cli {
	if _, err := os.Stat(awsCLI); err != nil {
		t.Skip("Debian's awscli is not installed at /usr/bin/aws: run ./test.sh, which installs it")
	}
	home := t.TempDir()
	var base []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			base = append(base, kv)
		}
	}
	return &cli{t: t, url: srv.URL, env: append(base,
		"HOME="+home, "AWS_ACCESS_KEY_ID=sandbox", "AWS_SECRET_ACCESS_KEY=sandbox", "AWS_DEFAULT_REGION="+srv.Region,
		"AWS_CONFIG_FILE="+filepath.Join(home, "config"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(home, "credentials"),
		"AWS_PAGER=", "AWS_CLI_AUTO_PROMPT=off")}
}

// run runs the CLI and returns its stdout, stderr and exit code.
func (c *cli) run(args ...string) (stdout, stderr string, code int) {
	c.t.Helper()
	cmd := exec.Command(awsCLI, append([]string{"--endpoint-url", c.url, "--output", "json"}, args...)...)
	cmd.Env = c.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		c.t.Fatalf("aws %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// ok runs the CLI, fails the test unless it succeeds, and decodes its JSON output.
func (c *cli) ok(args ...string) map[string]any {
	c.t.Helper()
	out, errs, code := c.run(args...)
	if code != 0 {
		c.t.Fatalf("aws %s: exit %d\n%s", strings.Join(args, " "), code, errs)
	}
	m := map[string]any{}
	if strings.TrimSpace(out) != "" {
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			c.t.Fatalf("aws %s: output is not JSON: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	return m
}

// docExamples reads the documented example outputs of an API from botocore's examples-1.json.
func docExamples(t *testing.T, service, version string) map[string][]map[string]any {
	path := "/usr/lib/python3/dist-packages/botocore/data/" + service + "/" + version + "/examples-1.json"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Logf("no documented examples at %s (python3-botocore): output shapes not compared", path)
		return nil
	}
	var doc struct {
		Examples map[string][]struct {
			Output map[string]any `json:"output"`
		} `json:"examples"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	out := map[string][]map[string]any{}
	for op, exs := range doc.Examples {
		for _, ex := range exs {
			if ex.Output != nil {
				out[op] = append(out[op], ex.Output)
			}
		}
	}
	return out
}

// sameShape checks that got has every member the documented example has (except those the
// example shows only because it used a feature the test did not), with the same JSON type.
func sameShape(t *testing.T, op string, got, doc map[string]any, featureOnly ...string) {
	t.Helper()
	skip := map[string]bool{}
	for _, k := range featureOnly {
		skip[k] = true
	}
	for k, dv := range doc {
		if skip[k] {
			continue
		}
		gv, ok := got[k]
		if !ok {
			t.Errorf("%s: output lacks %q, which the AWS documentation's example has", op, k)
			continue
		}
		if kind(gv) != kind(dv) {
			t.Errorf("%s: %q is a %s, the documented example has a %s", op, k, kind(gv), kind(dv))
		}
	}
}

func kind(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "boolean"
	case []any:
		return "list"
	case map[string]any:
		return "object"
	}
	return "null"
}

func TestAWSCLICompatibility(t *testing.T) {
	t.Parallel()
	e := start(t, sandbox.Options{UpdateDelay: 300 * time.Millisecond})
	aws := newCLI(t, e.srv)
	docs := docExamples(t, "lambda", "2015-03-31")
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.zip")
	if err := os.WriteFile(bad, zips.bad, 0o644); err != nil {
		t.Fatal(err)
	}

	created := aws.ok("lambda", "create-function", "--function-name", "cli-fn", "--runtime", "provided.al2023", "--handler", "bootstrap",
		"--role", role, "--zip-file", "fileb://"+zips.goodPath, "--description", "made by the awscli test",
		"--environment", "Variables={GREETING=hi}")
	for _, ex := range docs["CreateFunction"] {
		// The example function has a KMS key and an active tracing config; this one does not.
		sameShape(t, "create-function", created, ex, "KMSKeyArn", "LastUpdateStatus")
	}
	if created["State"] != "Pending" || created["CodeSha256"] != codeSha256(zips.good) {
		t.Errorf("create-function: State %v, CodeSha256 %v", created["State"], created["CodeSha256"])
	}
	aws.ok("lambda", "wait", "function-active-v2", "--function-name", "cli-fn")

	v1 := aws.ok("lambda", "publish-version", "--function-name", "cli-fn")
	again := aws.ok("lambda", "publish-version", "--function-name", "cli-fn")
	if v1["Version"] != "1" || again["Version"] != "1" {
		t.Errorf("publish-version twice: %v then %v, want 1 both times (nothing changed)", v1["Version"], again["Version"])
	}
	for _, ex := range docs["PublishVersion"] {
		sameShape(t, "publish-version", v1, ex, "KMSKeyArn")
	}
	updated := aws.ok("lambda", "update-function-code", "--function-name", "cli-fn", "--zip-file", "fileb://"+bad)
	for _, ex := range docs["UpdateFunctionCode"] {
		sameShape(t, "update-function-code", updated, ex)
	}
	aws.ok("lambda", "wait", "function-updated-v2", "--function-name", "cli-fn")
	v2 := aws.ok("lambda", "publish-version", "--function-name", "cli-fn")
	if v2["Version"] != "2" {
		t.Fatalf("publish after update: %v", v2["Version"])
	}

	alias := aws.ok("lambda", "create-alias", "--function-name", "cli-fn", "--name", "live", "--function-version", "1",
		"--routing-config", `{"AdditionalVersionWeights":{"2":0.5}}`)
	for _, ex := range docs["CreateAlias"] {
		sameShape(t, "create-alias", alias, ex)
	}
	rc, _ := alias["RoutingConfig"].(map[string]any)
	weights, _ := rc["AdditionalVersionWeights"].(map[string]any)
	if weights["2"] != 0.5 {
		t.Errorf("create-alias routing config: %v", alias["RoutingConfig"])
	}
	got := aws.ok("lambda", "get-alias", "--function-name", "cli-fn", "--name", "live")
	for _, ex := range docs["GetAlias"] {
		sameShape(t, "get-alias", got, ex)
	}

	executed := map[string]bool{}
	for range 20 {
		out := filepath.Join(dir, "out.json")
		inv := aws.ok("lambda", "invoke", "--function-name", "cli-fn:live", out)
		for _, ex := range docs["Invoke"] {
			sameShape(t, "invoke", inv, ex, "Payload") // the CLI writes the payload to the file
		}
		if inv["StatusCode"] != 200.0 {
			t.Fatalf("invoke: %v", inv)
		}
		executed[inv["ExecutedVersion"].(string)] = true
		payload, _ := os.ReadFile(out)
		if len(payload) == 0 {
			t.Error("invoke wrote no payload")
		}
	}
	if !executed["1"] || !executed["2"] {
		t.Errorf("20 invocations at weight 0.5 ran versions %v; want both", executed)
	}

	page := aws.ok("lambda", "list-versions-by-function", "--function-name", "cli-fn", "--max-items", "1")
	versions, _ := page["Versions"].([]any)
	if len(versions) != 1 || page["NextToken"] == nil {
		t.Errorf("list-versions-by-function --max-items 1: %d versions, NextToken %v", len(versions), page["NextToken"])
	}
	for _, ex := range docs["ListVersionsByFunction"] {
		sameShape(t, "list-versions-by-function", page, ex, "NextMarker")
	}

	// Deleting a version the alias points to fails as AWS fails it.
	_, stderr, code := aws.run("lambda", "delete-function", "--function-name", "cli-fn", "--qualifier", "1")
	want := "An error occurred (ResourceConflictException) when calling the DeleteFunction operation: Unable to delete version because the following aliases reference it: [live]"
	if code == 0 || !strings.Contains(stderr, want) {
		t.Errorf("delete-function of an aliased version: exit %d\n%s\nwant the message\n%s", code, stderr, want)
	}
	_, stderr, code = aws.run("lambda", "get-function", "--function-name", "no-such-fn")
	if code == 0 || !strings.Contains(stderr, "An error occurred (ResourceNotFoundException) when calling the GetFunction operation: Function not found: arn:aws:lambda:us-east-1:000000000000:function:no-such-fn") {
		t.Errorf("get-function of a missing function: exit %d\n%s", code, stderr)
	}

	// CloudWatch Logs: the invocations above wrote to one stream per execution environment of
	// each version.
	streams := aws.ok("logs", "describe-log-streams", "--log-group-name", "/aws/lambda/cli-fn", "--order-by", "LastEventTime", "--descending")
	list, _ := streams["logStreams"].([]any)
	versionsLogged := map[string]bool{}
	for _, s := range list {
		st := s.(map[string]any)
		name, _ := st["logStreamName"].(string)
		if m := streamNameRE.FindStringSubmatch(name); m != nil {
			versionsLogged[m[1]] = true
		}
		for _, ex := range cliExamples(t, "logs", "describe-log-streams", "logStreams") {
			sameShape(t, "describe-log-streams", st, ex)
		}
		if _, ok := st["lastEventTimestamp"].(float64); !ok {
			t.Errorf("describe-log-streams: stream %v has no lastEventTimestamp", st)
		}
	}
	if !versionsLogged["1"] || !versionsLogged["2"] {
		t.Errorf("describe-log-streams: streams %v, want some of versions 1 and 2", list)
	}
	reports := aws.ok("logs", "filter-log-events", "--log-group-name", "/aws/lambda/cli-fn", "--filter-pattern", `"REPORT RequestId"`)
	events, _ := reports["events"].([]any)
	if len(events) != 20 {
		t.Errorf("filter-log-events: %d REPORT lines for 20 invocations", len(events))
	}
	for _, ev := range events {
		m := ev.(map[string]any)
		msg, _ := m["message"].(string)
		if !reportLineRE.MatchString(msg) || m["eventId"] == nil || m["logStreamName"] == nil || m["ingestionTime"] == nil {
			t.Errorf("filter-log-events event %v", m)
		}
	}
	aws.ok("logs", "create-log-group", "--log-group-name", "/cli/app")
	aws.ok("logs", "put-retention-policy", "--log-group-name", "/cli/app", "--retention-in-days", "7")
	aws.ok("logs", "create-log-stream", "--log-group-name", "/cli/app", "--log-stream-name", "20150601")
	now := time.Now().UnixMilli()
	put := aws.ok("logs", "put-log-events", "--log-group-name", "/cli/app", "--log-stream-name", "20150601", "--log-events",
		fmt.Sprintf("timestamp=%d,message=Example Event 1", now), fmt.Sprintf("timestamp=%d,message=Example Event 2", now+2))
	for _, ex := range cliExamples(t, "logs", "put-log-events", "") {
		sameShape(t, "put-log-events", put, ex)
	}
	groups := aws.ok("logs", "describe-log-groups", "--log-group-name-prefix", "/cli/")
	for _, ex := range cliExamples(t, "logs", "describe-log-groups", "") {
		sameShape(t, "describe-log-groups", groups, ex)
	}
	if g, _ := groups["logGroups"].([]any); len(g) != 1 || g[0].(map[string]any)["retentionInDays"] != 7.0 {
		t.Errorf("describe-log-groups: %v", groups)
	} else {
		for _, ex := range cliExamples(t, "logs", "describe-log-groups", "logGroups") {
			sameShape(t, "describe-log-groups", g[0].(map[string]any), ex)
		}
	}
	got2 := aws.ok("logs", "get-log-events", "--log-group-name", "/cli/app", "--log-stream-name", "20150601")
	for _, ex := range cliExamples(t, "logs", "get-log-events", "") {
		sameShape(t, "get-log-events", got2, ex)
	}
	if evs, _ := got2["events"].([]any); len(evs) != 2 {
		t.Errorf("get-log-events: %v", got2)
	}
	_, stderr, code = aws.run("logs", "create-log-group", "--log-group-name", "/cli/app")
	if code == 0 || !strings.Contains(stderr, "An error occurred (ResourceAlreadyExistsException) when calling the CreateLogGroup operation: The specified log group already exists") {
		t.Errorf("create-log-group twice: exit %d\n%s", code, stderr)
	}
	_, stderr, code = aws.run("logs", "filter-log-events", "--log-group-name", "/cli/app", "--filter-pattern", "{ $.x = ")
	if code == 0 || !strings.Contains(stderr, "An error occurred (InvalidParameterException) when calling the FilterLogEvents operation") {
		t.Errorf("filter-log-events with a broken pattern: exit %d\n%s", code, stderr)
	}
}

// cliExamples reads the example outputs of an AWS CLI command from its documentation (awscli's
// examples/SERVICE/COMMAND.rst); with member set, the items of that list member of each example.
func cliExamples(t *testing.T, service, command, member string) []map[string]any {
	t.Helper()
	path := "/usr/lib/python3/dist-packages/awscli/examples/" + service + "/" + command + ".rst"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Logf("no documented examples at %s: output shapes not compared", path)
		return nil
	}
	var out []map[string]any
	for _, part := range strings.Split(string(b), "Output::")[1:] {
		start := strings.Index(part, "{")
		if start < 0 {
			continue
		}
		var v map[string]any
		if err := json.NewDecoder(strings.NewReader(part[start:])).Decode(&v); err != nil {
			t.Fatalf("%s: example output: %v", path, err)
		}
		if member == "" {
			out = append(out, v)
			continue
		}
		items, _ := v[member].([]any)
		for _, it := range items {
			if m, ok := it.(map[string]any); ok {
				out = append(out, m)
			}
		}
	}
	return out
}

func TestAWSCLIS3AndCloudWatch(t *testing.T) {
	t.Parallel()
	e := start(t, fast)
	aws := newCLI(t, e.srv)
	dir := t.TempDir()

	aws.ok("s3api", "create-bucket", "--bucket", "cli-bucket")
	if _, stderr, code := aws.run("s3", "cp", zips.goodPath, "s3://cli-bucket/artifacts/good.zip"); code != 0 {
		t.Fatalf("s3 cp: %s", stderr)
	}
	listed := aws.ok("s3api", "list-objects-v2", "--bucket", "cli-bucket", "--prefix", "artifacts/")
	contents, _ := listed["Contents"].([]any)
	if len(contents) != 1 || contents[0].(map[string]any)["Size"] != float64(len(zips.good)) {
		t.Errorf("list-objects-v2: %v", listed)
	}
	lifecycle := filepath.Join(dir, "lifecycle.json")
	os.WriteFile(lifecycle, []byte(`{"Rules":[{"ID":"expire","Status":"Enabled","Filter":{"Prefix":"artifacts/"},"Expiration":{"Days":30}}]}`), 0o644)
	aws.ok("s3api", "put-bucket-lifecycle-configuration", "--bucket", "cli-bucket", "--lifecycle-configuration", "file://"+lifecycle)
	lc := aws.ok("s3api", "get-bucket-lifecycle-configuration", "--bucket", "cli-bucket")
	if rules, _ := lc["Rules"].([]any); len(rules) != 1 {
		t.Errorf("get-bucket-lifecycle-configuration: %v", lc)
	}

	// CloudWatch over the query protocol.
	aws.ok("cloudwatch", "put-metric-data", "--namespace", "App", "--metric-name", "Errors", "--dimensions", "Service=web", "--value", "4")
	now := time.Now().UTC()
	stats := aws.ok("cloudwatch", "get-metric-statistics", "--namespace", "App", "--metric-name", "Errors", "--dimensions", "Name=Service,Value=web",
		"--start-time", now.Add(-time.Minute).Format(time.RFC3339), "--end-time", now.Add(time.Minute).Format(time.RFC3339),
		"--period", "3600", "--statistics", "Sum")
	dps, _ := stats["Datapoints"].([]any)
	if len(dps) != 1 || dps[0].(map[string]any)["Sum"] != 4.0 {
		t.Errorf("get-metric-statistics: %v", stats)
	}
	aws.ok("cloudwatch", "put-metric-alarm", "--alarm-name", "web-errors", "--namespace", "App", "--metric-name", "Errors",
		"--dimensions", "Name=Service,Value=web", "--statistic", "Sum", "--period", "60", "--evaluation-periods", "1",
		"--threshold", "1", "--comparison-operator", "GreaterThanOrEqualToThreshold")
	aws.ok("cloudwatch", "set-alarm-state", "--alarm-name", "web-errors", "--state-value", "ALARM", "--state-reason", "rehearsal")
	alarms := aws.ok("cloudwatch", "describe-alarms", "--alarm-names", "web-errors")
	ma, _ := alarms["MetricAlarms"].([]any)
	if len(ma) != 1 || ma[0].(map[string]any)["StateValue"] != "ALARM" {
		t.Errorf("describe-alarms: %v", alarms)
	}
	for _, ex := range docExamples(t, "cloudwatch", "2010-08-01")["DescribeAlarms"] {
		sameShape(t, "describe-alarms", alarms, ex)
	}
	_, stderr, code := aws.run("cloudwatch", "delete-alarms", "--alarm-names", "nope")
	if code == 0 || !strings.Contains(stderr, "ResourceNotFound") {
		t.Errorf("delete-alarms of a missing alarm: exit %d %s", code, stderr)
	}
}
