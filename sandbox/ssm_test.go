package sandbox_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"
)

// Parameter Store as the SDK sees it: versions on overwrite, SecureString decrypted only when
// asked, selectors, GetParameters' InvalidParameters, paged paths and SSM's errors.
func TestSSMParameters(t *testing.T) {
	e := start(t, fast)
	c := ssm.NewFromConfig(e.cfg)
	put := func(name, value string, typ ssmtypes.ParameterType, overwrite bool) (int64, error) {
		out, err := c.PutParameter(ctx(t), &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String(value), Type: typ, Overwrite: aws.Bool(overwrite)})
		if err != nil {
			return 0, err
		}
		return out.Version, nil
	}
	if v, err := put("/shop/db/password", "hunter2", ssmtypes.ParameterTypeSecureString, false); err != nil || v != 1 {
		t.Fatalf("PutParameter = %d, %v", v, err)
	}
	_, err := put("/shop/db/password", "again", ssmtypes.ParameterTypeSecureString, false)
	var exists *ssmtypes.ParameterAlreadyExists
	if !errors.As(err, &exists) {
		t.Fatalf("PutParameter without Overwrite on an existing name: %v, want ParameterAlreadyExists", err)
	}
	if v, err := put("/shop/db/password", "correct horse", ssmtypes.ParameterTypeSecureString, true); err != nil || v != 2 {
		t.Fatalf("PutParameter with Overwrite = %d, %v; want version 2", v, err)
	}
	got, err := c.GetParameter(ctx(t), &ssm.GetParameterInput{Name: aws.String("/shop/db/password"), WithDecryption: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	if p := got.Parameter; aws.ToString(p.Value) != "correct horse" || p.Version != 2 || p.Type != ssmtypes.ParameterTypeSecureString {
		t.Errorf("GetParameter WithDecryption = %q v%d %s", aws.ToString(p.Value), p.Version, p.Type)
	}
	enc, err := c.GetParameter(ctx(t), &ssm.GetParameterInput{Name: aws.String("/shop/db/password")})
	if err != nil || aws.ToString(enc.Parameter.Value) == "correct horse" {
		t.Errorf("GetParameter without decryption shows the value: %v", err)
	}
	old, err := c.GetParameter(ctx(t), &ssm.GetParameterInput{Name: aws.String("/shop/db/password:1"), WithDecryption: aws.Bool(true)})
	if err != nil || aws.ToString(old.Parameter.Value) != "hunter2" || aws.ToString(old.Parameter.Selector) != ":1" {
		t.Errorf("GetParameter :1 = %+v, %v", old, err)
	}
	var vnf *ssmtypes.ParameterVersionNotFound
	if _, err := c.GetParameter(ctx(t), &ssm.GetParameterInput{Name: aws.String("/shop/db/password:9")}); !errors.As(err, &vnf) {
		t.Errorf("GetParameter :9 = %v, want ParameterVersionNotFound", err)
	}
	var nf *ssmtypes.ParameterNotFound
	if _, err := c.GetParameter(ctx(t), &ssm.GetParameterInput{Name: aws.String("/shop/nope")}); !errors.As(err, &nf) {
		t.Errorf("GetParameter of a missing name = %v, want ParameterNotFound", err)
	}
	for name, bad := range map[string]struct {
		name string
		typ  ssmtypes.ParameterType
	}{"not fully qualified": {"shop/x", "String"}, "reserved prefix": {"/aws/x", "String"}, "bad type": {"/shop/t", "Number"}} {
		_, err := put(bad.name, "v", bad.typ, false)
		var api smithy.APIError
		if !errors.As(err, &api) || api.ErrorCode() != "ValidationException" {
			t.Errorf("%s: %v, want ValidationException", name, err)
		}
	}
	many, err := c.GetParameters(ctx(t), &ssm.GetParametersInput{Names: []string{"/shop/db/password", "/shop/missing"}, WithDecryption: aws.Bool(true)})
	if err != nil || len(many.Parameters) != 1 || len(many.InvalidParameters) != 1 || many.InvalidParameters[0] != "/shop/missing" {
		t.Errorf("GetParameters = %+v, %v", many, err)
	}
	for i := range 12 {
		if _, err := put(fmt.Sprintf("/shop/flags/f%02d", i), "on", ssmtypes.ParameterTypeString, false); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	p := ssm.NewGetParametersByPathPaginator(c, &ssm.GetParametersByPathInput{Path: aws.String("/shop"), Recursive: aws.Bool(true), MaxResults: aws.Int32(5)})
	pages := 0
	for p.HasMorePages() {
		out, err := p.NextPage(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, x := range out.Parameters {
			names = append(names, aws.ToString(x.Name))
		}
	}
	if len(names) != 13 || pages != 3 {
		t.Errorf("GetParametersByPath recursive: %d parameters in %d pages, want 13 in 3", len(names), pages)
	}
	flat, err := c.GetParametersByPath(ctx(t), &ssm.GetParametersByPathInput{Path: aws.String("/shop")})
	if err != nil || len(flat.Parameters) != 0 {
		t.Errorf("GetParametersByPath /shop, not recursive: %d parameters, %v; want none (all are deeper)", len(flat.Parameters), err)
	}
	if _, err := c.DeleteParameter(ctx(t), &ssm.DeleteParameterInput{Name: aws.String("/shop/db/password")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteParameter(ctx(t), &ssm.DeleteParameterInput{Name: aws.String("/shop/db/password")}); !errors.As(err, &nf) {
		t.Errorf("DeleteParameter twice = %v, want ParameterNotFound", err)
	}
}
