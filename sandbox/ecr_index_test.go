package sandbox_test

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/aviary-deploy/aviary/internal/lambdaimage"
)

// TestLambdaRefusesImageIndexes: Lambda runs single-platform images only; an image index (a
// multi-platform image, what docker buildx pushes by default) is refused by CreateFunction and
// UpdateFunctionCode with InvalidParameterValueException, as AWS does, not run as one of its
// images.
func TestLambdaRefusesImageIndexes(t *testing.T) {
	e := start(t, fast)
	c := ctx(t)
	api := ecr.NewFromConfig(e.cfg)
	host := strings.TrimPrefix(e.srv.URL, "http://")
	if _, err := api.CreateRepository(c, &ecr.CreateRepositoryInput{RepositoryName: aws.String("fn")}); err != nil {
		t.Fatal(err)
	}
	single := e.pushImage(t, "fn", "single", zips.good, lambdaimage.Options{})
	img, err := lambdaimage.FromZip(zips.good, lambdaimage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := api.GetAuthorizationToken(c, &ecr.GetAuthorizationTokenInput{})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(aws.ToString(tok.AuthorizationData[0].AuthorizationToken))
	user, pass, _ := strings.Cut(string(raw), ":")
	if _, err := lambdaimage.PushIndex(c, lambdaimage.Index(img), host+"/fn:multi", user, pass); err != nil {
		t.Fatal(err)
	}
	role := aws.String("arn:aws:iam::000000000000:role/fn")

	_, err = e.lambda.CreateFunction(c, &lambda.CreateFunctionInput{FunctionName: aws.String("multi"), Role: role, PackageType: lambdatypes.PackageTypeImage,
		Code: &lambdatypes.FunctionCode{ImageUri: aws.String(host + "/fn:multi")}})
	wantAPIError[*lambdatypes.InvalidParameterValueException](t, err, http.StatusBadRequest)
	if err == nil || !strings.Contains(err.Error(), "media type for the source image") {
		t.Errorf("CreateFunction of an index: %v", err)
	}

	if _, err := e.lambda.CreateFunction(c, &lambda.CreateFunctionInput{FunctionName: aws.String("img"), Role: role, PackageType: lambdatypes.PackageTypeImage,
		Code: &lambdatypes.FunctionCode{ImageUri: aws.String(host + "/fn@" + single.String())}}); err != nil {
		t.Fatal(err)
	}
	_, err = e.lambda.UpdateFunctionCode(c, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("img"), ImageUri: aws.String(host + "/fn:multi")})
	wantAPIError[*lambdatypes.InvalidParameterValueException](t, err, http.StatusBadRequest)
	gf, err := e.lambda.GetFunction(c, &lambda.GetFunctionInput{FunctionName: aws.String("img")})
	if err != nil || aws.ToString(gf.Configuration.CodeSha256) != single.Hex {
		t.Errorf("after the refused update: %v, CodeSha256 %s, want %s", err, aws.ToString(gf.Configuration.CodeSha256), single.Hex)
	}
}

// TestImageFunctionsRefuseLayersRuntimeAndHandler: an image brings its own runtime, handler and
// files, so Lambda refuses Layers, Runtime and Handler for an Image function, at creation and in
// UpdateFunctionConfiguration, rather than keeping settings the image never uses.
func TestImageFunctionsRefuseLayersRuntimeAndHandler(t *testing.T) {
	e := start(t, fast)
	c := ctx(t)
	host := strings.TrimPrefix(e.srv.URL, "http://")
	if _, err := ecr.NewFromConfig(e.cfg).CreateRepository(c, &ecr.CreateRepositoryInput{RepositoryName: aws.String("fn")}); err != nil {
		t.Fatal(err)
	}
	e.pushImage(t, "fn", "v1", zips.good, lambdaimage.Options{})
	role := aws.String("arn:aws:iam::000000000000:role/fn")
	layer := "arn:aws:lambda:" + e.srv.Region + ":000000000000:layer:deps:1"
	uri := aws.String(host + "/fn:v1")

	_, err := e.lambda.CreateFunction(c, &lambda.CreateFunctionInput{FunctionName: aws.String("layered"), Role: role, PackageType: lambdatypes.PackageTypeImage,
		Code: &lambdatypes.FunctionCode{ImageUri: uri}, Layers: []string{layer}})
	wantAPIError[*lambdatypes.InvalidParameterValueException](t, err, http.StatusBadRequest)

	if _, err := e.lambda.CreateFunction(c, &lambda.CreateFunctionInput{FunctionName: aws.String("img"), Role: role, PackageType: lambdatypes.PackageTypeImage,
		Code: &lambdatypes.FunctionCode{ImageUri: uri}}); err != nil {
		t.Fatal(err)
	}
	for name, in := range map[string]*lambda.UpdateFunctionConfigurationInput{
		"layers":  {Layers: []string{layer}},
		"runtime": {Runtime: lambdatypes.RuntimeProvidedal2023},
		"handler": {Handler: aws.String("bootstrap")},
	} {
		in.FunctionName = aws.String("img")
		_, err := e.lambda.UpdateFunctionConfiguration(c, in)
		wantAPIError[*lambdatypes.InvalidParameterValueException](t, err, http.StatusBadRequest)
		if err == nil {
			t.Errorf("%s on an image function was accepted", name)
		}
	}
	if _, err := e.lambda.UpdateFunctionConfiguration(c, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("img"),
		Environment: &lambdatypes.Environment{Variables: map[string]string{"GREETING": "hi"}}, ImageConfig: &lambdatypes.ImageConfig{Command: []string{"x"}}}); err != nil {
		t.Errorf("environment and ImageConfig on an image function: %v", err)
	}
}
