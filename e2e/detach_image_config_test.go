package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/aviary-deploy/aviary/awsconfig"
	"github.com/aviary-deploy/aviary/internal/cli"
)

// `deploy --detach` of a fleet mixing a configured zip function and an image function: the
// controller publishes it, so a configuration that reads ${VAR} the controller's environment
// lacks is refused before anything is recorded; with the variable installed in the controller,
// the release (the image included, which has no artifact to upload) is handed over.
func TestDetachImageAndConfiguredFunctions(t *testing.T) {
	f := newFleet(t, 1, quick, "      all-at-once")
	f.appendManifest("    controller: true\n")
	reg := newRegistry(t, f, "shop/img")
	ctx := context.Background()
	cfg, err := awsconfig.Load(ctx, awsconfig.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ssm.NewFromConfig(cfg).PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String("/shop/db/password"),
		Value: aws.String(ssmSecret), Type: ssmtypes.ParameterTypeSecureString}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SHOP_API_TOKEN", envSecret)

	// Given the controller's function (any function will do: its ticks are not followed here),
	// an Image function, and a first release from this process.
	if _, err := f.lambda.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("aviary-controller"), Runtime: lambdatypes.RuntimeProvidedal2023,
		Handler: aws.String("bootstrap"), Role: aws.String("arn:aws:iam::000000000000:role/ctl"), Code: &lambdatypes.FunctionCode{ZipFile: f.zip(f.names[0])}}); err != nil {
		t.Fatal(err)
	}
	reg.push("shop/img", "v1", "1", built.bootstrap)
	if _, err := f.lambda.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("shop-img-prod"), PackageType: lambdatypes.PackageTypeImage,
		Role: aws.String("arn:aws:iam::000000000000:role/shop"), Code: &lambdatypes.FunctionCode{ImageUri: aws.String(reg.host + "/shop/img:v1")},
	}); err != nil {
		t.Fatal(err)
	}
	f.replaceInManifest("functions:\n", "functions:\n  img:\n    image: shop/img:v1\n")
	f.names = append(f.names, "img")
	f.setEnvironment("fn00", "GREETING: one")
	f.stamp("fn00", "1")
	if code, out, errs := f.aviary("deploy", "-e", "production"); code != 0 {
		t.Fatalf("first deploy: exit %d\n%s\n%s", code, out, errs)
	}
	before := len(f.releases())

	// When the configuration changes and the tag moves, a detach to a controller without
	// SHOP_API_TOKEN is bad input, naming the variable and the field, and records nothing.
	f.setEnvironment("fn00", "GREETING: two")
	second := reg.push("shop/img", "v1", "2", built.bootstrap)
	code, out, errs := f.aviary("deploy", "-e", "production", "--detach")
	if code != cli.ExitBadInput || !strings.Contains(errs, "${SHOP_API_TOKEN} (functions.fn00.configuration.environment.API_TOKEN)") || !strings.Contains(errs, "nothing was recorded") {
		t.Fatalf("detach to a controller without the variable: exit %d, want %d\n%s\n%s", code, cli.ExitBadInput, out, errs)
	}
	if strings.Contains(out+errs, envSecret) {
		t.Errorf("the refusal shows the secret:\n%s\n%s", out, errs)
	}
	if got := len(f.releases()); got != before {
		t.Fatalf("%d releases after the refusal, want %d", got, before)
	}

	// Then, the controller installed with the variable, the release is handed to it.
	if _, err := f.lambda.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("aviary-controller"),
		Environment: &lambdatypes.Environment{Variables: map[string]string{"SHOP_API_TOKEN": envSecret}}}); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := f.aviary("deploy", "-e", "production", "--detach"); code != 0 {
		t.Fatalf("detach: exit %d\n%s\n%s", code, out, errs)
	}
	r := f.latest()
	if !r.Controller || r.Phase.Final() || len(r.Functions) != 2 {
		t.Fatalf("the detached release: controller %v, %s, %+v", r.Controller, r.Phase, r.Functions)
	}
	if img := fnOf(r, "img"); img.CodeSha256 != second || img.ArtifactKey != "" {
		t.Errorf("the detached release ships the image %+v, want digest %s", img, second)
	}
}
