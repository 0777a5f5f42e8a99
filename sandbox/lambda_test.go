package sandbox_test

import (
	"archive/zip"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/aviary-deploy/aviary/sandbox"
)

// slowUpdates keeps new functions Pending and updates InProgress for tests that look at them in
// that state.
const slowUpdates = 2 * time.Second

func TestFunctionLifecycle(t *testing.T) {
	t.Parallel()
	// Calls made right after a change must find it still Pending or InProgress: the delay is long
	// enough that a busy machine's pause between two calls does not end it (waiters wait it out).
	e := start(t, sandbox.Options{UpdateDelay: slowUpdates, ControlRate: -1})
	c := ctx(t)

	created, err := e.lambda.CreateFunction(c, &lambda.CreateFunctionInput{
		FunctionName: aws.String("lifecycle"), Runtime: lambdatypes.RuntimeProvidedal2023, Handler: aws.String("bootstrap"),
		Role: aws.String(role), Code: &lambdatypes.FunctionCode{ZipFile: zips.good},
		Timeout: aws.Int32(7), MemorySize: aws.Int32(256),
		Environment: &lambdatypes.Environment{Variables: map[string]string{"GREETING": "hi"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := created.State, lambdatypes.StatePending; got != want {
		t.Errorf("State after create = %s, want %s", got, want)
	}
	if got, want := aws.ToString(created.CodeSha256), codeSha256(zips.good); got != want {
		t.Errorf("CodeSha256 = %s, want %s (base64 SHA-256 of the zip)", got, want)
	}
	if got, want := created.CodeSize, int64(len(zips.good)); got != want {
		t.Errorf("CodeSize = %d, want %d", got, want)
	}
	if got, want := aws.ToString(created.FunctionArn), "arn:aws:lambda:us-east-1:000000000000:function:lifecycle"; got != want {
		t.Errorf("FunctionArn = %s, want %s", got, want)
	}

	// Invoking before the function is Active is a conflict, as on AWS.
	_, err = e.noRetry().Invoke(c, &lambda.InvokeInput{FunctionName: aws.String("lifecycle")})
	wantAPIError[*lambdatypes.ResourceConflictException](t, err, 409)

	if err := lambda.NewFunctionActiveV2Waiter(e.lambda).Wait(c, &lambda.GetFunctionInput{FunctionName: aws.String("lifecycle")}, time.Minute); err != nil {
		t.Fatal(err)
	}
	got, err := e.lambda.GetFunction(c, &lambda.GetFunctionInput{FunctionName: aws.String("lifecycle")})
	if err != nil {
		t.Fatal(err)
	}
	cfg := got.Configuration
	if cfg.State != lambdatypes.StateActive || cfg.LastUpdateStatus != lambdatypes.LastUpdateStatusSuccessful {
		t.Errorf("State %s, LastUpdateStatus %s, want Active, Successful", cfg.State, cfg.LastUpdateStatus)
	}
	if aws.ToInt32(cfg.Timeout) != 7 || aws.ToInt32(cfg.MemorySize) != 256 || cfg.Runtime != lambdatypes.RuntimeProvidedal2023 ||
		aws.ToString(cfg.Handler) != "bootstrap" || aws.ToString(cfg.Role) != role || cfg.Environment.Variables["GREETING"] != "hi" {
		t.Errorf("configuration not stored as given: %+v", cfg)
	}
	// The code location serves the zip back.
	resp, err := http.Get(aws.ToString(got.Code.Location))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(body, zips.good) {
		t.Errorf("Code.Location served %d bytes, want the %d-byte zip", len(body), len(zips.good))
	}

	// A configuration update goes InProgress, then Successful; the RevisionId changes.
	rev := aws.ToString(cfg.RevisionId)
	up, err := e.lambda.UpdateFunctionConfiguration(c, &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String("lifecycle"), Timeout: aws.Int32(9),
		Environment: &lambdatypes.Environment{Variables: map[string]string{"GREETING": "hello"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if up.LastUpdateStatus != lambdatypes.LastUpdateStatusInProgress {
		t.Errorf("LastUpdateStatus after update = %s, want InProgress", up.LastUpdateStatus)
	}
	if aws.ToString(up.RevisionId) == rev {
		t.Error("RevisionId did not change on update")
	}
	// A second change while the first is in progress is refused.
	_, err = e.noRetry().UpdateFunctionConfiguration(c, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("lifecycle"), Timeout: aws.Int32(10)})
	wantAPIError[*lambdatypes.ResourceConflictException](t, err, 409)
	if err := lambda.NewFunctionUpdatedV2Waiter(e.lambda).Wait(c, &lambda.GetFunctionInput{FunctionName: aws.String("lifecycle")}, time.Minute); err != nil {
		t.Fatal(err)
	}
	conf, err := e.lambda.GetFunctionConfiguration(c, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("lifecycle")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToInt32(conf.Timeout) != 9 || conf.Environment.Variables["GREETING"] != "hello" || conf.LastUpdateStatus != lambdatypes.LastUpdateStatusSuccessful {
		t.Errorf("after update: Timeout %d, GREETING %q, LastUpdateStatus %s", aws.ToInt32(conf.Timeout), conf.Environment.Variables["GREETING"], conf.LastUpdateStatus)
	}

	// The function's environment reaches the process.
	out, err := e.lambda.Invoke(c, &lambda.InvokeInput{FunctionName: aws.String("lifecycle"), LogType: lambdatypes.LogTypeTail,
		Payload: []byte(`{"action":"log","text":"marker-from-the-test"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if out.FunctionError != nil {
		t.Fatalf("function error: %s %s", aws.ToString(out.FunctionError), out.Payload)
	}
	logs, _ := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
	for _, want := range []string{"START RequestId: ", "Version: $LATEST", "marker-from-the-test", "END RequestId: ", "REPORT RequestId: ", "Duration: ", "Billed Duration: ", "Memory Size: 256 MB", "Init Duration: "} {
		if !strings.Contains(string(logs), want) {
			t.Errorf("log tail lacks %q:\n%s", want, logs)
		}
	}

	// Unknown functions are 404s; deleting the function makes it unknown.
	_, err = e.lambda.GetFunction(c, &lambda.GetFunctionInput{FunctionName: aws.String("nope")})
	rnf := wantAPIError[*lambdatypes.ResourceNotFoundException](t, err, 404)
	if !strings.Contains(aws.ToString(rnf.Message), "Function not found: arn:aws:lambda:us-east-1:000000000000:function:nope") {
		t.Errorf("message = %q", aws.ToString(rnf.Message))
	}
	if _, err := e.lambda.DeleteFunction(c, &lambda.DeleteFunctionInput{FunctionName: aws.String("lifecycle")}); err != nil {
		t.Fatal(err)
	}
	_, err = e.lambda.GetFunction(c, &lambda.GetFunctionInput{FunctionName: aws.String("lifecycle")})
	wantAPIError[*lambdatypes.ResourceNotFoundException](t, err, 404)
}

func TestCreateFunctionFromS3(t *testing.T) {
	t.Parallel()
	e := start(t, fast)
	c := ctx(t)
	if _, err := e.s3.CreateBucket(c, &s3.CreateBucketInput{Bucket: aws.String("artifacts")}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s3.PutObject(c, &s3.PutObjectInput{Bucket: aws.String("artifacts"), Key: aws.String("fn/good.zip"), Body: bytes.NewReader(zips.good)}); err != nil {
		t.Fatal(err)
	}
	created := e.createFunction(t, "from-s3", nil, func(in *lambda.CreateFunctionInput) {
		in.Code = &lambdatypes.FunctionCode{S3Bucket: aws.String("artifacts"), S3Key: aws.String("fn/good.zip")}
	})
	if got, want := aws.ToString(created.CodeSha256), codeSha256(zips.good); got != want {
		t.Errorf("CodeSha256 = %s, want %s", got, want)
	}
	out, err := e.lambda.Invoke(c, &lambda.InvokeInput{FunctionName: aws.String("from-s3")})
	if err != nil || out.FunctionError != nil {
		t.Fatalf("invoke: %v %s", err, out.Payload)
	}

	// A missing artifact fails as it does on AWS (the message AWS answers).
	_, err = e.lambda.UpdateFunctionCode(c, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("from-s3"), S3Bucket: aws.String("artifacts"), S3Key: aws.String("gone.zip")})
	ipv := wantAPIError[*lambdatypes.InvalidParameterValueException](t, err, 400)
	if want := "Error occurred while GetObject. S3 Error Code: NoSuchKey. S3 Error Message: The specified key does not exist."; aws.ToString(ipv.Message) != want {
		t.Errorf("message = %q, want %q", aws.ToString(ipv.Message), want)
	}
	// So does a file that is not a zip.
	_, err = e.lambda.UpdateFunctionCode(c, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("from-s3"), ZipFile: []byte("not a zip")})
	wantAPIError[*lambdatypes.InvalidParameterValueException](t, err, 400)
}

func TestUpdateCodeAndPublish(t *testing.T) {
	t.Parallel()
	// Calls made right after a change must find it still Pending or InProgress: the delay is long
	// enough that a busy machine's pause between two calls does not end it (waiters wait it out).
	e := start(t, sandbox.Options{UpdateDelay: slowUpdates, ControlRate: -1})
	c := ctx(t)
	e.createFunction(t, "pub", zips.good)

	v1 := e.publish(t, "pub")
	if v1 != "1" {
		t.Fatalf("first version = %s, want 1", v1)
	}
	// Nothing changed: AWS returns the existing version rather than a new one.
	if again := e.publish(t, "pub"); again != v1 {
		t.Errorf("publishing an unchanged function gave version %s, want %s", again, v1)
	}

	conf, err := e.lambda.GetFunctionConfiguration(c, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("pub")})
	if err != nil {
		t.Fatal(err)
	}
	// A stale RevisionId is a precondition failure.
	_, err = e.noRetry().UpdateFunctionCode(c, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("pub"), ZipFile: zips.bad, RevisionId: aws.String("00000000-0000-4000-8000-000000000000")})
	wantAPIError[*lambdatypes.PreconditionFailedException](t, err, 412)
	up, err := e.lambda.UpdateFunctionCode(c, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("pub"), ZipFile: zips.bad, RevisionId: conf.RevisionId})
	if err != nil {
		t.Fatal(err)
	}
	if up.LastUpdateStatus != lambdatypes.LastUpdateStatusInProgress || aws.ToString(up.CodeSha256) != codeSha256(zips.bad) {
		t.Errorf("update answered %s with CodeSha256 %s", up.LastUpdateStatus, aws.ToString(up.CodeSha256))
	}
	// Publishing while the update is in progress is a conflict.
	_, err = e.noRetry().PublishVersion(c, &lambda.PublishVersionInput{FunctionName: aws.String("pub")})
	wantAPIError[*lambdatypes.ResourceConflictException](t, err, 409)
	if err := lambda.NewFunctionUpdatedV2Waiter(e.lambda).Wait(c, &lambda.GetFunctionInput{FunctionName: aws.String("pub")}, time.Minute); err != nil {
		t.Fatal(err)
	}
	// A CodeSha256 that is not $LATEST's is refused.
	_, err = e.lambda.PublishVersion(c, &lambda.PublishVersionInput{FunctionName: aws.String("pub"), CodeSha256: aws.String(codeSha256(zips.good))})
	wantAPIError[*lambdatypes.InvalidParameterValueException](t, err, 400)
	_, err = e.lambda.PublishVersion(c, &lambda.PublishVersionInput{FunctionName: aws.String("pub"), RevisionId: aws.String("stale")})
	wantAPIError[*lambdatypes.PreconditionFailedException](t, err, 412)
	v2, err := e.lambda.PublishVersion(c, &lambda.PublishVersionInput{FunctionName: aws.String("pub"), CodeSha256: up.CodeSha256, Description: aws.String("bad flavour")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(v2.Version) != "2" || aws.ToString(v2.CodeSha256) != codeSha256(zips.bad) || aws.ToString(v2.Description) != "bad flavour" {
		t.Errorf("version 2 = %s %s %q", aws.ToString(v2.Version), aws.ToString(v2.CodeSha256), aws.ToString(v2.Description))
	}
	if got := aws.ToString(v2.FunctionArn); got != "arn:aws:lambda:us-east-1:000000000000:function:pub:2" {
		t.Errorf("version ARN = %s", got)
	}

	// Versions are immutable snapshots: version 1 still runs the good code.
	out, err := e.lambda.Invoke(c, &lambda.InvokeInput{FunctionName: aws.String("pub"), Qualifier: aws.String("1")})
	if err != nil || out.FunctionError != nil || aws.ToString(out.ExecutedVersion) != "1" {
		t.Fatalf("invoke version 1: %v %v %s", err, out.FunctionError, out.Payload)
	}
	out, err = e.lambda.Invoke(c, &lambda.InvokeInput{FunctionName: aws.String("pub:2")})
	if err != nil || aws.ToString(out.FunctionError) != "Unhandled" || aws.ToString(out.ExecutedVersion) != "2" {
		t.Fatalf("invoke version 2: %v %v %s", err, out.FunctionError, out.Payload)
	}
	if !strings.Contains(string(out.Payload), "bad flavour: failing on purpose") {
		t.Errorf("error payload = %s", out.Payload)
	}

	// Update and publish in one call.
	conf, _ = e.lambda.GetFunctionConfiguration(c, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("pub")})
	both, err := e.lambda.UpdateFunctionCode(c, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("pub"), ZipFile: zips.good, Publish: true, RevisionId: conf.RevisionId})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(both.Version) != "3" {
		t.Errorf("UpdateFunctionCode with Publish gave version %q, want 3", aws.ToString(both.Version))
	}
	if err := lambda.NewPublishedVersionActiveWaiter(e.lambda).Wait(c, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("pub"), Qualifier: aws.String("3")}, time.Minute); err != nil {
		t.Fatal(err)
	}
}

func TestListVersionsPagination(t *testing.T) {
	t.Parallel()
	e := start(t, fast)
	c := ctx(t)
	e.createFunction(t, "many", zips.good)
	const n = 120
	for i := 1; i <= n; i++ {
		if _, err := e.lambda.UpdateFunctionConfiguration(c, &lambda.UpdateFunctionConfigurationInput{
			FunctionName: aws.String("many"), Environment: &lambdatypes.Environment{Variables: map[string]string{"NUM": fmt.Sprint(i)}}, // a key has 2+ characters
		}); err != nil {
			t.Fatal(err)
		}
		if v := e.publish(t, "many"); v != fmt.Sprint(i) {
			t.Fatalf("version %s, want %d", v, i)
		}
	}
	// Without MaxItems, a page holds 50 items ($LATEST first).
	first, err := e.lambda.ListVersionsByFunction(c, &lambda.ListVersionsByFunctionInput{FunctionName: aws.String("many")})
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Versions) != 50 || first.NextMarker == nil || aws.ToString(first.Versions[0].Version) != "$LATEST" {
		t.Fatalf("first page: %d versions, marker %v, first %s", len(first.Versions), first.NextMarker, aws.ToString(first.Versions[0].Version))
	}
	var seen []string
	pages := 0
	p := lambda.NewListVersionsByFunctionPaginator(e.lambda, &lambda.ListVersionsByFunctionInput{FunctionName: aws.String("many"), MaxItems: aws.Int32(7)})
	for p.HasMorePages() {
		page, err := p.NextPage(c)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Versions) > 7 {
			t.Fatalf("page of %d items with MaxItems 7", len(page.Versions))
		}
		pages++
		for _, v := range page.Versions {
			seen = append(seen, aws.ToString(v.Version))
		}
	}
	if len(seen) != n+1 || pages != (n+1+6)/7 {
		t.Fatalf("paginated %d versions in %d pages, want %d in %d", len(seen), pages, n+1, (n+1+6)/7)
	}
	for i, v := range seen[1:] {
		if v != fmt.Sprint(i+1) {
			t.Fatalf("version %d listed as %s: not in order", i+1, v)
		}
	}
	// A page never holds more than 50, whatever MaxItems asks.
	big, err := e.lambda.ListVersionsByFunction(c, &lambda.ListVersionsByFunctionInput{FunctionName: aws.String("many"), MaxItems: aws.Int32(100)})
	if err != nil || len(big.Versions) != 50 || big.NextMarker == nil {
		t.Errorf("MaxItems 100: %v, %d versions", err, len(big.Versions))
	}
	_, err = e.lambda.ListVersionsByFunction(c, &lambda.ListVersionsByFunctionInput{FunctionName: aws.String("many"), Marker: aws.String("garbage")})
	wantAPIError[*lambdatypes.InvalidParameterValueException](t, err, 400)
}

func TestAliasesAndRouting(t *testing.T) {
	t.Parallel()
	e := start(t, fast)
	c := ctx(t)
	e.createFunction(t, "routed", zips.good)
	v1 := e.publish(t, "routed")
	e.updateCode(t, "routed", zips.bad)
	v2 := e.publish(t, "routed")
	e.updateCode(t, "routed", append(append([]byte{}, zips.good...), 0)) // trailing byte: still a valid zip, new sha
	v3 := e.publish(t, "routed")

	created, err := e.lambda.CreateAlias(c, &lambda.CreateAliasInput{FunctionName: aws.String("routed"), Name: aws.String("live"), FunctionVersion: aws.String(v1)})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(created.AliasArn); got != "arn:aws:lambda:us-east-1:000000000000:function:routed:live" {
		t.Errorf("AliasArn = %s", got)
	}
	_, err = e.lambda.CreateAlias(c, &lambda.CreateAliasInput{FunctionName: aws.String("routed"), Name: aws.String("live"), FunctionVersion: aws.String(v1)})
	wantAPIError[*lambdatypes.ResourceConflictException](t, err, 409)

	bad := []struct {
		name    string
		primary string
		weights map[string]float64
		check   func(error)
	}{
		{"two extra versions", v1, map[string]float64{v2: 0.1, v3: 0.1}, func(err error) { wantAPIError[*lambdatypes.InvalidParameterValueException](t, err, 400) }},
		{"weight above 1", v1, map[string]float64{v2: 1.5}, func(err error) { wantValidation(t, err) }},
		{"negative weight", v1, map[string]float64{v2: -0.1}, func(err error) { wantValidation(t, err) }},
		{"extra is the primary", v1, map[string]float64{v1: 0.5}, func(err error) { wantAPIError[*lambdatypes.InvalidParameterValueException](t, err, 400) }},
		{"extra is $LATEST", v1, map[string]float64{"$LATEST": 0.5}, func(err error) { wantValidation(t, err) }},
		{"primary is $LATEST with weights", "$LATEST", map[string]float64{v2: 0.5}, func(err error) { wantAPIError[*lambdatypes.InvalidParameterValueException](t, err, 400) }},
		{"extra version does not exist", v1, map[string]float64{"99": 0.5}, func(err error) { wantAPIError[*lambdatypes.ResourceNotFoundException](t, err, 404) }},
		{"primary does not exist", "42", nil, func(err error) { wantAPIError[*lambdatypes.ResourceNotFoundException](t, err, 404) }},
	}
	for _, tc := range bad {
		_, err := e.lambda.UpdateAlias(c, &lambda.UpdateAliasInput{FunctionName: aws.String("routed"), Name: aws.String("live"),
			FunctionVersion: aws.String(tc.primary), RoutingConfig: &lambdatypes.AliasRoutingConfiguration{AdditionalVersionWeights: tc.weights}})
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
			continue
		}
		tc.check(err)
	}
	// Refused updates changed nothing.
	got, err := e.lambda.GetAlias(c, &lambda.GetAliasInput{FunctionName: aws.String("routed"), Name: aws.String("live")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(got.FunctionVersion) != v1 || got.RoutingConfig != nil {
		t.Fatalf("alias changed by refused updates: %s %+v", aws.ToString(got.FunctionVersion), got.RoutingConfig)
	}

	// A canary step, with the alias's RevisionId as precondition.
	_, err = e.lambda.UpdateAlias(c, &lambda.UpdateAliasInput{FunctionName: aws.String("routed"), Name: aws.String("live"), RevisionId: aws.String("stale"),
		RoutingConfig: &lambdatypes.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{v2: 0.25}}})
	wantAPIError[*lambdatypes.PreconditionFailedException](t, err, 412)
	step, err := e.lambda.UpdateAlias(c, &lambda.UpdateAliasInput{FunctionName: aws.String("routed"), Name: aws.String("live"), RevisionId: got.RevisionId,
		FunctionVersion: aws.String(v1), RoutingConfig: &lambdatypes.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{v2: 0.25}}})
	if err != nil {
		t.Fatal(err)
	}
	if step.RoutingConfig == nil || step.RoutingConfig.AdditionalVersionWeights[v2] != 0.25 || aws.ToString(step.RevisionId) == aws.ToString(got.RevisionId) {
		t.Fatalf("after the step: %+v, revision %s", step.RoutingConfig, aws.ToString(step.RevisionId))
	}
	// An alias routing to a version protects it from deletion, by primary or by weight.
	for _, v := range []string{v1, v2} {
		_, err := e.lambda.DeleteFunction(c, &lambda.DeleteFunctionInput{FunctionName: aws.String("routed"), Qualifier: aws.String(v)})
		rce := wantAPIError[*lambdatypes.ResourceConflictException](t, err, 409)
		if !strings.Contains(aws.ToString(rce.Message), "live") {
			t.Errorf("conflict message %q does not name the alias", aws.ToString(rce.Message))
		}
	}
	_, err = e.lambda.DeleteFunction(c, &lambda.DeleteFunctionInput{FunctionName: aws.String("routed"), Qualifier: aws.String("$LATEST")})
	wantAPIError[*lambdatypes.InvalidParameterValueException](t, err, 400)
	// Deleting a version that does not exist succeeds (204), as on AWS.
	if _, err = e.lambda.DeleteFunction(c, &lambda.DeleteFunctionInput{FunctionName: aws.String("routed"), Qualifier: aws.String("77")}); err != nil {
		t.Errorf("delete a missing version: %v", err)
	}
	if _, err := e.lambda.DeleteFunction(c, &lambda.DeleteFunctionInput{FunctionName: aws.String("routed"), Qualifier: aws.String(v3)}); err != nil {
		t.Fatalf("delete the unreferenced version %s: %v", v3, err)
	}

	// Promotion: the new version takes the primary, the weights are cleared.
	promoted, err := e.lambda.UpdateAlias(c, &lambda.UpdateAliasInput{FunctionName: aws.String("routed"), Name: aws.String("live"),
		FunctionVersion: aws.String(v2), RoutingConfig: &lambdatypes.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{}}})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(promoted.FunctionVersion) != v2 || (promoted.RoutingConfig != nil && len(promoted.RoutingConfig.AdditionalVersionWeights) > 0) {
		t.Fatalf("promoted alias: %s %+v", aws.ToString(promoted.FunctionVersion), promoted.RoutingConfig)
	}

	// More aliases, listed with pagination and by version.
	for i := range 5 {
		if _, err := e.lambda.CreateAlias(c, &lambda.CreateAliasInput{FunctionName: aws.String("routed"), Name: aws.String(fmt.Sprintf("a%d", i)), FunctionVersion: aws.String(v1)}); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	ap := lambda.NewListAliasesPaginator(e.lambda, &lambda.ListAliasesInput{FunctionName: aws.String("routed"), MaxItems: aws.Int32(2)})
	for ap.HasMorePages() {
		page, err := ap.NextPage(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range page.Aliases {
			names = append(names, aws.ToString(a.Name))
		}
	}
	if got, want := strings.Join(names, ","), "a0,a1,a2,a3,a4,live"; got != want {
		t.Errorf("aliases = %s, want %s", got, want)
	}
	byVersion, err := e.lambda.ListAliases(c, &lambda.ListAliasesInput{FunctionName: aws.String("routed"), FunctionVersion: aws.String(v2)})
	if err != nil || len(byVersion.Aliases) != 1 || aws.ToString(byVersion.Aliases[0].Name) != "live" {
		t.Errorf("aliases of version %s: %v %+v", v2, err, byVersion)
	}
	if _, err := e.lambda.DeleteAlias(c, &lambda.DeleteAliasInput{FunctionName: aws.String("routed"), Name: aws.String("a0")}); err != nil {
		t.Fatal(err)
	}
	_, err = e.lambda.GetAlias(c, &lambda.GetAliasInput{FunctionName: aws.String("routed"), Name: aws.String("a0")})
	rnf := wantAPIError[*lambdatypes.ResourceNotFoundException](t, err, 404)
	if want := "Cannot find alias arn: arn:aws:lambda:us-east-1:000000000000:function:routed:a0"; aws.ToString(rnf.Message) != want {
		t.Errorf("GetAlias of a missing alias: %q, want %q", aws.ToString(rnf.Message), want)
	}
	_, err = e.lambda.CreateAlias(c, &lambda.CreateAliasInput{FunctionName: aws.String("routed"), Name: aws.String("123"), FunctionVersion: aws.String(v1)})
	wantValidation(t, err)
}

func wantValidation(t *testing.T, err error) {
	t.Helper()
	if code := errorCode(err); code != "ValidationException" {
		t.Fatalf("error = %v, want a ValidationException", err)
	}
}

func TestWeightedRoutingShare(t *testing.T) {
	t.Parallel()
	e := start(t, fast)
	c := ctx(t)
	e.createFunction(t, "share", zips.good)
	v1 := e.publish(t, "share")
	e.updateCode(t, "share", zips.bad)
	v2 := e.publish(t, "share")
	const weight = 0.1
	if _, err := e.lambda.CreateAlias(c, &lambda.CreateAliasInput{FunctionName: aws.String("share"), Name: aws.String("live"), FunctionVersion: aws.String(v1),
		RoutingConfig: &lambdatypes.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{v2: weight}}}); err != nil {
		t.Fatal(err)
	}
	const n = 2400
	var mu sync.Mutex
	counts := map[string]int{}
	failures := map[string]int{}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out, err := e.lambda.Invoke(c, &lambda.InvokeInput{FunctionName: aws.String("share"), Qualifier: aws.String("live")})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				counts["error"]++
				return
			}
			counts[aws.ToString(out.ExecutedVersion)]++
			if out.FunctionError != nil {
				failures[aws.ToString(out.ExecutedVersion)]++
			}
		}()
	}
	wg.Wait()
	if counts["error"] > 0 || counts[v1]+counts[v2] != n {
		t.Fatalf("executed versions: %v", counts)
	}
	// The canary's share is Binomial(n, 0.1): mean 240, sd 14.7. Five sd either side.
	lo, hi := 240-5*14.7, 240+5*14.7
	if got := float64(counts[v2]); got < lo || got > hi {
		t.Errorf("version %s ran %v of %d invocations, outside [%.0f, %.0f]", v2, got, n, lo, hi)
	}
	// Only the canary (bad flavour) fails.
	if failures[v1] != 0 || failures[v2] != counts[v2] {
		t.Errorf("failures %v for counts %v", failures, counts)
	}
	t.Logf("%d invocations through live (weight %.1f on %s): %v", n, weight, v2, counts)
}

func TestInvokeTypesAndErrors(t *testing.T) {
	t.Parallel()
	e := start(t, fast)
	c := ctx(t)
	e.createFunction(t, "inv", zips.good)

	out, err := e.lambda.Invoke(c, &lambda.InvokeInput{FunctionName: aws.String("inv"), Payload: []byte(`{"extra":{"k":"v"}}`)})
	if err != nil {
		t.Fatal(err)
	}
	var resp struct {
		Message, Flavor, Function, Version, RequestID string
		Echo                                          map[string]string
	}
	if err := json.Unmarshal(out.Payload, &resp); err != nil {
		t.Fatalf("payload %s: %v", out.Payload, err)
	}
	if out.StatusCode != 200 || resp.Flavor != "good" || resp.Function != "inv" || resp.Version != "$LATEST" || resp.Echo["k"] != "v" || resp.RequestID == "" {
		t.Errorf("status %d, response %+v", out.StatusCode, resp)
	}
	if aws.ToString(out.ExecutedVersion) != "$LATEST" {
		t.Errorf("ExecutedVersion = %q", aws.ToString(out.ExecutedVersion))
	}
	ev, err := e.lambda.Invoke(c, &lambda.InvokeInput{FunctionName: aws.String("inv"), InvocationType: lambdatypes.InvocationTypeEvent})
	if err != nil || ev.StatusCode != 202 {
		t.Errorf("Event invoke: %v, status %d", err, ev.StatusCode)
	}
	dry, err := e.lambda.Invoke(c, &lambda.InvokeInput{FunctionName: aws.String("inv"), InvocationType: lambdatypes.InvocationTypeDryRun})
	if err != nil || dry.StatusCode != 204 {
		t.Errorf("DryRun invoke: %v, status %d", err, dry.StatusCode)
	}
	// A panic in the handler is a function error, with the runtime's error payload.
	pan, err := e.lambda.Invoke(c, &lambda.InvokeInput{FunctionName: aws.String("inv"), Payload: []byte(`{"action":"panic"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(pan.FunctionError) != "Unhandled" || !strings.Contains(string(pan.Payload), "panicking on purpose") {
		t.Errorf("panic: FunctionError %q, payload %s", aws.ToString(pan.FunctionError), pan.Payload)
	}
	_, err = e.lambda.Invoke(c, &lambda.InvokeInput{FunctionName: aws.String("inv"), Payload: []byte(`not json`)})
	wantAPIError[*lambdatypes.InvalidRequestContentException](t, err, 400)
	_, err = e.lambda.Invoke(c, &lambda.InvokeInput{FunctionName: aws.String("inv"), Qualifier: aws.String("nosuchalias")})
	wantAPIError[*lambdatypes.ResourceNotFoundException](t, err, 404)
	_, err = e.lambda.Invoke(c, &lambda.InvokeInput{FunctionName: aws.String("inv:live"), Qualifier: aws.String("other")})
	wantAPIError[*lambdatypes.InvalidParameterValueException](t, err, 400)
	// A function whose zip has no bootstrap fails as Lambda reports it.
	e.createFunction(t, "nobootstrap", mustZip(t, map[string]string{"README": "no bootstrap here"}))
	nb, err := e.lambda.Invoke(c, &lambda.InvokeInput{FunctionName: aws.String("nobootstrap")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(nb.FunctionError) != "Unhandled" || !strings.Contains(string(nb.Payload), "Runtime.InvalidEntrypoint") {
		t.Errorf("no bootstrap: %q %s", aws.ToString(nb.FunctionError), nb.Payload)
	}
}

func TestTimeoutAndCrash(t *testing.T) {
	t.Parallel()
	e := start(t, fast)
	c := ctx(t)
	e.createFunction(t, "slow", zips.good, func(in *lambda.CreateFunctionInput) { in.Timeout = aws.Int32(1) })

	out, err := e.lambda.Invoke(c, &lambda.InvokeInput{FunctionName: aws.String("slow"), Payload: []byte(`{"action":"sleep","ms":5000}`), LogType: lambdatypes.LogTypeTail})
	if err != nil {
		t.Fatal(err)
	}
	var fe struct{ ErrorType, ErrorMessage string }
	json.Unmarshal(out.Payload, &fe)
	if aws.ToString(out.FunctionError) != "Unhandled" || fe.ErrorType != "Sandbox.Timedout" || !strings.Contains(fe.ErrorMessage, "Task timed out after 1.00 seconds") {
		t.Errorf("timeout: FunctionError %q, payload %s", aws.ToString(out.FunctionError), out.Payload)
	}
	// Lambda's system logs no longer carry a "Task timed out" line (the Developer Guide's "new
	// style"): REPORT says Status: timeout.
	logs, _ := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
	if !strings.Contains(string(logs), "\tStatus: timeout\n") || strings.Contains(string(logs), "Task timed out") {
		t.Errorf("timeout log:\n%s", logs)
	}
	// The timed-out environment was killed; the next invocation gets a fresh one and works.
	ok, err := e.lambda.Invoke(c, &lambda.InvokeInput{FunctionName: aws.String("slow")})
	if err != nil || ok.FunctionError != nil {
		t.Fatalf("after a timeout: %v %s", err, ok.Payload)
	}

	crash, err := e.lambda.Invoke(c, &lambda.InvokeInput{FunctionName: aws.String("slow"), Payload: []byte(`{"action":"crash","code":3}`)})
	if err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(crash.Payload, &fe)
	if aws.ToString(crash.FunctionError) != "Unhandled" || fe.ErrorType != "Runtime.ExitError" || !strings.Contains(fe.ErrorMessage, "exit status 3") {
		t.Errorf("crash: FunctionError %q, payload %s", aws.ToString(crash.FunctionError), crash.Payload)
	}
	ok, err = e.lambda.Invoke(c, &lambda.InvokeInput{FunctionName: aws.String("slow")})
	if err != nil || ok.FunctionError != nil {
		t.Fatalf("after a crash: %v %s", err, ok.Payload)
	}

	// aws-lambda-go reports a panic as the invocation's error and then exits: the exit comes
	// after the answer, between invocations, so the next event gets a fresh environment rather
	// than the dying one's exit error. (A race: tried a few times.)
	for i := range 5 {
		p, err := e.lambda.Invoke(c, &lambda.InvokeInput{FunctionName: aws.String("slow"), Payload: []byte(`{"action":"panic"}`)})
		if err != nil || aws.ToString(p.FunctionError) != "Unhandled" || !strings.Contains(string(p.Payload), "panicking on purpose") {
			t.Fatalf("panic %d: %v %s", i, err, p.Payload)
		}
		ok, err = e.lambda.Invoke(c, &lambda.InvokeInput{FunctionName: aws.String("slow")})
		if err != nil || ok.FunctionError != nil {
			t.Fatalf("right after a panic %d: %v %s", i, err, ok.Payload)
		}
	}
}

// A warm environment killed while idle (its host crashed) never takes the next event: that
// event runs on a fresh environment, as on Lambda, rather than failing with the dead one's exit.
func TestIdleEnvironmentKilled(t *testing.T) {
	t.Parallel()
	e := start(t, fast)
	c := ctx(t)
	e.createFunction(t, "victim", zips.good)
	for i := range 5 {
		if out, err := e.lambda.Invoke(c, &lambda.InvokeInput{FunctionName: aws.String("victim")}); err != nil || out.FunctionError != nil {
			t.Fatalf("warm-up %d: %v %v", i, err, out)
		}
		if n := killFunctionProcesses(t, "victim", e.srv.URL); n == 0 {
			t.Fatalf("round %d: no process of victim to kill", i)
		}
		out, err := e.lambda.Invoke(c, &lambda.InvokeInput{FunctionName: aws.String("victim")})
		if err != nil || out.FunctionError != nil {
			t.Fatalf("round %d, right after the idle environment was killed: %v %s", i, err, out.Payload)
		}
	}
}

// killFunctionProcesses SIGKILLs the processes of function name in the sandbox at endpoint.
func killFunctionProcesses(t *testing.T, name, endpoint string) int {
	t.Helper()
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	n := 0
	for _, d := range dirs {
		env, err := os.ReadFile(filepath.Join(d, "environ"))
		if err != nil {
			continue
		}
		has := func(k, v string) bool {
			kv := []byte(k + "=" + v + "\x00")
			return bytes.HasPrefix(env, kv) || bytes.Contains(env, append([]byte{0}, kv...))
		}
		if !has("AWS_LAMBDA_FUNCTION_NAME", name) || !has("AWS_ENDPOINT_URL", endpoint) {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(d)); err == nil && syscall.Kill(pid, syscall.SIGKILL) == nil {
			waitGone(t, pid)
			n++
		}
	}
	return n
}

// waitGone waits until process pid has died (a zombie, or reaped): kill returns before the
// kernel has ended it, and a crash is what happened before the next event, not during it.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if i := bytes.LastIndexByte(b, ')'); err != nil || i > 0 && i+2 < len(b) && (b[i+2] == 'Z' || b[i+2] == 'X') {
			return
		}
	}
	t.Fatalf("process %d still runs 10 s after SIGKILL", pid)
}

func TestReservedConcurrencyThrottles(t *testing.T) {
	t.Parallel()
	e := start(t, fast)
	c := ctx(t)
	e.createFunction(t, "narrow", zips.good)
	if _, err := e.lambda.PutFunctionConcurrency(c, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("narrow"), ReservedConcurrentExecutions: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	conc, err := e.lambda.GetFunctionConcurrency(c, &lambda.GetFunctionConcurrencyInput{FunctionName: aws.String("narrow")})
	if err != nil || aws.ToInt32(conc.ReservedConcurrentExecutions) != 1 {
		t.Fatalf("GetFunctionConcurrency: %v %+v", err, conc)
	}
	busy := make(chan struct{})
	go func() {
		defer close(busy)
		// It retries through throttles: a probe below may hold the one unit as it arrives.
		lambda.NewFromConfig(e.cfg, func(o *lambda.Options) { o.Retryer = retrying() }).Invoke(c,
			&lambda.InvokeInput{FunctionName: aws.String("narrow"), Payload: []byte(`{"action":"sleep","ms":1500}`)})
	}()
	// While the one allowed invocation runs, another is throttled.
	var throttled error
probe:
	for {
		_, err := e.noRetry().Invoke(c, &lambda.InvokeInput{FunctionName: aws.String("narrow")})
		if err != nil {
			throttled = err
			break
		}
		select {
		case <-busy:
			break probe
		case <-time.After(20 * time.Millisecond):
		}
	}
	tmr := wantAPIError[*lambdatypes.TooManyRequestsException](t, throttled, 429)
	if tmr.Reason != lambdatypes.ThrottleReasonReservedFunctionConcurrentInvocationLimitExceeded {
		t.Errorf("throttle reason = %s", tmr.Reason)
	}
	<-busy
	if _, err := e.lambda.DeleteFunctionConcurrency(c, &lambda.DeleteFunctionConcurrencyInput{FunctionName: aws.String("narrow")}); err != nil {
		t.Fatal(err)
	}
}

func mustZip(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := newZipWriter(&buf)
	for name, body := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, body)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func newZipWriter(w io.Writer) *zip.Writer { return zip.NewWriter(w) }
