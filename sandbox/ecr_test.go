package sandbox_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/aviary-deploy/aviary/internal/lambdaimage"
)

// pushImage builds the example function (flavour good or bad) as an image and pushes it to
// repo:tag with the credentials GetAuthorizationToken answers, as docker login would.
func (e *env) pushImage(t *testing.T, repo, tag string, zip []byte, o lambdaimage.Options) v1.Hash {
	t.Helper()
	c := ctx(t)
	tok, err := ecr.NewFromConfig(e.cfg).GetAuthorizationToken(c, &ecr.GetAuthorizationTokenInput{})
	if err != nil {
		t.Fatalf("GetAuthorizationToken: %v", err)
	}
	raw, err := base64.StdEncoding.DecodeString(aws.ToString(tok.AuthorizationData[0].AuthorizationToken))
	if err != nil {
		t.Fatal(err)
	}
	user, pass, _ := strings.Cut(string(raw), ":")
	if user != "AWS" {
		t.Fatalf("token user = %q, want AWS", user)
	}
	if got, want := aws.ToString(tok.AuthorizationData[0].ProxyEndpoint), e.srv.URL; got != want {
		t.Errorf("proxyEndpoint = %s, want %s", got, want)
	}
	img, err := lambdaimage.FromZip(zip, o)
	if err != nil {
		t.Fatal(err)
	}
	d, err := lambdaimage.Push(c, img, strings.TrimPrefix(e.srv.URL, "http://")+"/"+repo+":"+tag, user, pass)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestECRRepositoriesAndImages(t *testing.T) {
	e := start(t, fast)
	c := ctx(t)
	api := ecr.NewFromConfig(e.cfg)
	host := strings.TrimPrefix(e.srv.URL, "http://")

	created, err := api.CreateRepository(c, &ecr.CreateRepositoryInput{RepositoryName: aws.String("team/api")})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := aws.ToString(created.Repository.RepositoryUri), host+"/team/api"; got != want {
		t.Errorf("repositoryUri = %s, want %s", got, want)
	}
	_, err = api.CreateRepository(c, &ecr.CreateRepositoryInput{RepositoryName: aws.String("team/api")})
	wantAPIError[*ecrtypes.RepositoryAlreadyExistsException](t, err, http.StatusBadRequest)
	_, err = api.CreateRepository(c, &ecr.CreateRepositoryInput{RepositoryName: aws.String("Bad_Name")})
	wantAPIError[*ecrtypes.InvalidParameterException](t, err, http.StatusBadRequest)
	_, err = api.DescribeRepositories(c, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{"nope"}})
	wantAPIError[*ecrtypes.RepositoryNotFoundException](t, err, http.StatusBadRequest)

	// A push to a repository that does not exist is refused, as ECR refuses it.
	img, _ := lambdaimage.FromZip(zips.good, lambdaimage.Options{})
	if _, err := lambdaimage.Push(c, img, host+"/nope:v1", "", ""); err == nil || !strings.Contains(err.Error(), "NAME_UNKNOWN") {
		t.Errorf("push to a missing repository: %v, want NAME_UNKNOWN", err)
	}

	d1 := e.pushImage(t, "team/api", "v1", zips.good, lambdaimage.Options{Label: "1"})
	d2 := e.pushImage(t, "team/api", "v2", zips.good, lambdaimage.Options{Label: "2"})
	d3 := e.pushImage(t, "team/api", "v3", zips.good, lambdaimage.Options{Label: "3"})
	// Moving v1 to d2's image leaves d1 untagged.
	e.pushImage(t, "team/api", "v1", zips.good, lambdaimage.Options{Label: "2"})

	di, err := api.DescribeImages(c, &ecr.DescribeImagesInput{RepositoryName: aws.String("team/api"), ImageIds: []ecrtypes.ImageIdentifier{{ImageTag: aws.String("v1")}}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := aws.ToString(di.ImageDetails[0].ImageDigest), d2.String(); got != want {
		t.Errorf("v1 is %s, want %s", got, want)
	}
	if got, want := strings.Join(di.ImageDetails[0].ImageTags, ","), "v1,v2"; got != want {
		t.Errorf("tags = %s, want %s", got, want)
	}
	if di.ImageDetails[0].ImageSizeInBytes == nil || *di.ImageDetails[0].ImageSizeInBytes == 0 || di.ImageDetails[0].ImagePushedAt == nil {
		t.Errorf("size and push time missing: %+v", di.ImageDetails[0])
	}
	_, err = api.DescribeImages(c, &ecr.DescribeImagesInput{RepositoryName: aws.String("team/api"), ImageIds: []ecrtypes.ImageIdentifier{{ImageTag: aws.String("v9")}}})
	wantAPIError[*ecrtypes.ImageNotFoundException](t, err, http.StatusBadRequest)

	// Pagination: three images, two per page.
	var digests []string
	p := ecr.NewDescribeImagesPaginator(api, &ecr.DescribeImagesInput{RepositoryName: aws.String("team/api"), MaxResults: aws.Int32(2)})
	pages := 0
	for p.HasMorePages() {
		out, err := p.NextPage(c)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, d := range out.ImageDetails {
			digests = append(digests, aws.ToString(d.ImageDigest))
		}
	}
	if pages != 2 || len(digests) != 3 {
		t.Errorf("pages=%d digests=%v, want 2 pages of 3 images", pages, digests)
	}
	untagged, err := api.ListImages(c, &ecr.ListImagesInput{RepositoryName: aws.String("team/api"), Filter: &ecrtypes.ListImagesFilter{TagStatus: ecrtypes.TagStatusUntagged}})
	if err != nil {
		t.Fatal(err)
	}
	if len(untagged.ImageIds) != 1 || aws.ToString(untagged.ImageIds[0].ImageDigest) != d1.String() {
		t.Errorf("untagged = %+v, want only %s", untagged.ImageIds, d1)
	}

	bg, err := api.BatchGetImage(c, &ecr.BatchGetImageInput{RepositoryName: aws.String("team/api"),
		ImageIds: []ecrtypes.ImageIdentifier{{ImageDigest: aws.String(d3.String())}, {ImageTag: aws.String("gone")}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(bg.Images) != 1 || len(bg.Failures) != 1 || bg.Failures[0].FailureCode != ecrtypes.ImageFailureCodeImageNotFound {
		t.Fatalf("BatchGetImage = %+v / %+v", bg.Images, bg.Failures)
	}
	var m v1.Manifest
	if err := json.Unmarshal([]byte(aws.ToString(bg.Images[0].ImageManifest)), &m); err != nil || len(m.Layers) != 1 {
		t.Errorf("manifest %s: %v", aws.ToString(bg.Images[0].ImageManifest), err)
	}

	// Deleted through ECR, the image can no longer be pulled.
	del, err := api.BatchDeleteImage(c, &ecr.BatchDeleteImageInput{RepositoryName: aws.String("team/api"), ImageIds: []ecrtypes.ImageIdentifier{{ImageTag: aws.String("v3")}}})
	if err != nil || len(del.ImageIds) != 1 {
		t.Fatalf("BatchDeleteImage: %v %+v", err, del)
	}
	ref, _ := name.ParseReference(host+"/team/api@"+d3.String(), name.Insecure)
	if _, err := remote.Head(ref, remote.WithContext(c)); err == nil {
		t.Errorf("the deleted image can still be pulled")
	}

	// Lifecycle policies.
	_, err = api.GetLifecyclePolicy(c, &ecr.GetLifecyclePolicyInput{RepositoryName: aws.String("team/api")})
	wantAPIError[*ecrtypes.LifecyclePolicyNotFoundException](t, err, http.StatusBadRequest)
	policy := `{"rules":[{"rulePriority":1,"description":"keep 2","selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":2},"action":{"type":"expire"}}]}`
	if _, err := api.PutLifecyclePolicy(c, &ecr.PutLifecyclePolicyInput{RepositoryName: aws.String("team/api"), LifecyclePolicyText: aws.String(policy)}); err != nil {
		t.Fatal(err)
	}
	got, err := api.GetLifecyclePolicy(c, &ecr.GetLifecyclePolicyInput{RepositoryName: aws.String("team/api")})
	if err != nil || aws.ToString(got.LifecyclePolicyText) != policy {
		t.Fatalf("GetLifecyclePolicy = %v, %v", got, err)
	}
	_, err = api.PutLifecyclePolicy(c, &ecr.PutLifecyclePolicyInput{RepositoryName: aws.String("team/api"),
		LifecyclePolicyText: aws.String(strings.Replace(policy, `"expire"`, `"keep"`, 1) + strings.Repeat(" ", 10))})
	wantAPIError[*ecrtypes.InvalidParameterException](t, err, http.StatusBadRequest)
	if _, err := api.DeleteLifecyclePolicy(c, &ecr.DeleteLifecyclePolicyInput{RepositoryName: aws.String("team/api")}); err != nil {
		t.Fatal(err)
	}

	_, err = api.DeleteRepository(c, &ecr.DeleteRepositoryInput{RepositoryName: aws.String("team/api")})
	wantAPIError[*ecrtypes.RepositoryNotEmptyException](t, err, http.StatusBadRequest)
	if _, err := api.DeleteRepository(c, &ecr.DeleteRepositoryInput{RepositoryName: aws.String("team/api"), Force: true}); err != nil {
		t.Fatal(err)
	}
}

func TestLambdaImageFunctions(t *testing.T) {
	e := start(t, fast)
	c := ctx(t)
	api := ecr.NewFromConfig(e.cfg)
	host := strings.TrimPrefix(e.srv.URL, "http://")
	if _, err := api.CreateRepository(c, &ecr.CreateRepositoryInput{RepositoryName: aws.String("fn")}); err != nil {
		t.Fatal(err)
	}
	good := e.pushImage(t, "fn", "live", zips.good, lambdaimage.Options{})
	role := aws.String("arn:aws:iam::000000000000:role/fn")

	_, err := e.lambda.CreateFunction(c, &lambda.CreateFunctionInput{FunctionName: aws.String("missing"), Role: role, PackageType: lambdatypes.PackageTypeImage,
		Code: &lambdatypes.FunctionCode{ImageUri: aws.String(host + "/fn:nope")}})
	wantAPIError[*lambdatypes.InvalidParameterValueException](t, err, http.StatusBadRequest)

	// The ECR form of the URI names the sandbox's registry too.
	ecrURI := "000000000000.dkr.ecr." + e.srv.Region + ".amazonaws.com/fn:live"
	cf, err := e.lambda.CreateFunction(c, &lambda.CreateFunctionInput{FunctionName: aws.String("img"), Role: role, PackageType: lambdatypes.PackageTypeImage,
		Code: &lambdatypes.FunctionCode{ImageUri: aws.String(ecrURI)}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := aws.ToString(cf.CodeSha256), good.Hex; got != want {
		t.Errorf("CodeSha256 = %s, want the digest's hex %s", got, want)
	}
	gf, err := e.lambda.GetFunction(c, &lambda.GetFunctionInput{FunctionName: aws.String("img")})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := aws.ToString(gf.Code.RepositoryType), "ECR"; got != want {
		t.Errorf("RepositoryType = %s", got)
	}
	if got, want := aws.ToString(gf.Code.ImageUri), ecrURI; got != want {
		t.Errorf("ImageUri = %s, want %s", got, want)
	}
	if got, want := aws.ToString(gf.Code.ResolvedImageUri), host+"/fn@"+good.String(); got != want {
		t.Errorf("ResolvedImageUri = %s, want %s", got, want)
	}
	if gf.Configuration.PackageType != lambdatypes.PackageTypeImage {
		t.Errorf("PackageType = %s", gf.Configuration.PackageType)
	}
	out, err := e.lambda.Invoke(c, &lambda.InvokeInput{FunctionName: aws.String("img")})
	if err != nil || out.FunctionError != nil {
		t.Fatalf("invoke: %v %s %s", err, aws.ToString(out.FunctionError), out.Payload)
	}

	// Zip code for an image function, an image for a zip function: refused.
	_, err = e.lambda.UpdateFunctionCode(c, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("img"), ZipFile: zips.good})
	wantAPIError[*lambdatypes.InvalidParameterValueException](t, err, http.StatusBadRequest)
	e.createFunction(t, "zipfn", zips.good)
	_, err = e.lambda.UpdateFunctionCode(c, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("zipfn"), ImageUri: aws.String(host + "/fn:live")})
	wantAPIError[*lambdatypes.InvalidParameterValueException](t, err, http.StatusBadRequest)

	// Moving the tag changes nothing until UpdateFunctionCode, which resolves it again; the
	// RevisionId and CodeSha256 preconditions hold as for zips.
	bad := e.pushImage(t, "fn", "live", zips.bad, lambdaimage.Options{})
	v1pub, err := e.lambda.PublishVersion(c, &lambda.PublishVersionInput{FunctionName: aws.String("img"), CodeSha256: aws.String(good.Hex)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.lambda.UpdateFunctionCode(c, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("img"), ImageUri: aws.String(host + "/fn:live"), RevisionId: aws.String("stale")})
	wantAPIError[*lambdatypes.PreconditionFailedException](t, err, http.StatusPreconditionFailed)
	cur, _ := e.lambda.GetFunction(c, &lambda.GetFunctionInput{FunctionName: aws.String("img")})
	up, err := e.lambda.UpdateFunctionCode(c, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("img"), ImageUri: aws.String(host + "/fn:live"),
		RevisionId: cur.Configuration.RevisionId, Publish: true})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := aws.ToString(up.CodeSha256), bad.Hex; got != want {
		t.Errorf("after the update CodeSha256 = %s, want %s", got, want)
	}
	_, err = e.lambda.PublishVersion(c, &lambda.PublishVersionInput{FunctionName: aws.String("img"), CodeSha256: aws.String(good.Hex)})
	wantAPIError[*lambdatypes.InvalidParameterValueException](t, err, http.StatusBadRequest)
	out, err = e.lambda.Invoke(c, &lambda.InvokeInput{FunctionName: aws.String("img"), Qualifier: up.Version})
	if err != nil || aws.ToString(out.FunctionError) == "" {
		t.Errorf("the bad image's version answered %v %s, want a function error", err, out.Payload)
	}
	out, err = e.lambda.Invoke(c, &lambda.InvokeInput{FunctionName: aws.String("img"), Qualifier: v1pub.Version})
	if err != nil || out.FunctionError != nil {
		t.Errorf("version %s (the good image) answered %v %s", aws.ToString(v1pub.Version), err, out.Payload)
	}

	// A bare image (the bootstrap as entrypoint) with ImageConfig's overrides.
	bare := e.pushImage(t, "fn", "bare", zips.good, lambdaimage.Options{Bare: true})
	_, err = e.lambda.CreateFunction(c, &lambda.CreateFunctionInput{FunctionName: aws.String("bare"), Role: role, PackageType: lambdatypes.PackageTypeImage,
		Code:        &lambdatypes.FunctionCode{ImageUri: aws.String(host + "/fn@" + bare.String())},
		ImageConfig: &lambdatypes.ImageConfig{WorkingDirectory: aws.String("/var/task"), Command: []string{"handler.x"}}})
	if err != nil {
		t.Fatal(err)
	}
	gb, _ := e.lambda.GetFunction(c, &lambda.GetFunctionInput{FunctionName: aws.String("bare")})
	if gb.Configuration.ImageConfigResponse == nil || aws.ToString(gb.Configuration.ImageConfigResponse.ImageConfig.WorkingDirectory) != "/var/task" {
		t.Errorf("ImageConfigResponse = %+v", gb.Configuration.ImageConfigResponse)
	}
	out, err = e.lambda.Invoke(c, &lambda.InvokeInput{FunctionName: aws.String("bare")})
	if err != nil || out.FunctionError != nil {
		t.Fatalf("invoke bare: %v %s", err, out.Payload)
	}
}

func TestAWSCLIDescribesECRRepositories(t *testing.T) {
	srv, err := startSandbox(fast)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c := newCLI(t, srv)
	if _, stderr, code := c.run("ecr", "create-repository", "--repository-name", "cli/repo"); code != 0 {
		t.Fatalf("create-repository: %s", stderr)
	}
	stdout, stderr, code := c.run("ecr", "describe-repositories")
	if code != 0 {
		t.Fatalf("describe-repositories: %s", stderr)
	}
	var out struct {
		Repositories []struct {
			RepositoryName string `json:"repositoryName"`
			RepositoryURI  string `json:"repositoryUri"`
		} `json:"repositories"`
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil || len(out.Repositories) != 1 || out.Repositories[0].RepositoryName != "cli/repo" {
		t.Fatalf("describe-repositories = %s (%v)", stdout, err)
	}
	_, stderr, code = c.run("ecr", "describe-images", "--repository-name", "nope")
	if code == 0 || !strings.Contains(stderr, "RepositoryNotFoundException") {
		t.Errorf("describe-images of a missing repository: exit %d, %s", code, stderr)
	}
}

// With a data directory, repositories, images and image functions survive a restart, and the
// function still runs its image.
func TestECRAndImageFunctionsPersist(t *testing.T) {
	opts := fast
	opts.DataDir = t.TempDir()
	srv, err := startSandbox(opts)
	if err != nil {
		t.Fatal(err)
	}
	e := connect(t, srv)
	c := ctx(t)
	if _, err := ecr.NewFromConfig(e.cfg).CreateRepository(c, &ecr.CreateRepositoryInput{RepositoryName: aws.String("keep")}); err != nil {
		t.Fatal(err)
	}
	d := e.pushImage(t, "keep", "v1", zips.good, lambdaimage.Options{})
	host := strings.TrimPrefix(srv.URL, "http://")
	if _, err := e.lambda.CreateFunction(c, &lambda.CreateFunctionInput{FunctionName: aws.String("kept"), Role: aws.String("arn:aws:iam::000000000000:role/r"),
		PackageType: lambdatypes.PackageTypeImage, Code: &lambdatypes.FunctionCode{ImageUri: aws.String(host + "/keep:v1")}}); err != nil {
		t.Fatal(err)
	}
	srv.Close()

	opts.Addr = host // the same address: repository URIs and resolved image URIs name it
	again, err := startSandbox(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { again.Close() })
	e = connect(t, again)
	di, err := ecr.NewFromConfig(e.cfg).DescribeImages(c, &ecr.DescribeImagesInput{RepositoryName: aws.String("keep")})
	if err != nil || len(di.ImageDetails) != 1 || aws.ToString(di.ImageDetails[0].ImageDigest) != d.String() {
		t.Fatalf("after a restart DescribeImages = %+v, %v", di, err)
	}
	out, err := e.lambda.Invoke(c, &lambda.InvokeInput{FunctionName: aws.String("kept")})
	if err != nil || out.FunctionError != nil {
		t.Fatalf("invoke after a restart: %v %s", err, out.Payload)
	}
}
