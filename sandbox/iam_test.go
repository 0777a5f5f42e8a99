package sandbox_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
)

const trustLambda = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}`

// IAM roles through the SDK: create, read back (documents URL-encoded, as IAM answers them),
// policies inline and attached, the errors IAM documents, and ListRoles' pagination.
func TestIAMRoles(t *testing.T) {
	e := start(t, fast)
	c := iam.NewFromConfig(e.cfg)
	out, err := c.CreateRole(ctx(t), &iam.CreateRoleInput{RoleName: aws.String("app"), AssumeRolePolicyDocument: aws.String(trustLambda),
		Tags: []iamtypes.Tag{{Key: aws.String("team"), Value: aws.String("shop")}}})
	if err != nil {
		t.Fatalf("CreateRole: %v", err)
	}
	if got, want := aws.ToString(out.Role.Arn), "arn:aws:iam::000000000000:role/app"; got != want {
		t.Errorf("Arn = %s, want %s", got, want)
	}
	if id := aws.ToString(out.Role.RoleId); !strings.HasPrefix(id, "AROA") || len(id) != 21 {
		t.Errorf("RoleId = %s, want AROA + 17", id)
	}
	_, err = c.CreateRole(ctx(t), &iam.CreateRoleInput{RoleName: aws.String("APP"), AssumeRolePolicyDocument: aws.String(trustLambda)})
	wantAPIError[*iamtypes.EntityAlreadyExistsException](t, err, 409)
	_, err = c.CreateRole(ctx(t), &iam.CreateRoleInput{RoleName: aws.String("x"), AssumeRolePolicyDocument: aws.String("{not json")})
	wantAPIError[*iamtypes.MalformedPolicyDocumentException](t, err, 400)
	_, err = c.CreateRole(ctx(t), &iam.CreateRoleInput{RoleName: aws.String("x"), AssumeRolePolicyDocument: aws.String(`{"Version":"2012-10-17"}`)})
	wantAPIError[*iamtypes.MalformedPolicyDocumentException](t, err, 400)

	got, err := c.GetRole(ctx(t), &iam.GetRoleInput{RoleName: aws.String("app")})
	if err != nil {
		t.Fatalf("GetRole: %v", err)
	}
	if doc, _ := url.QueryUnescape(aws.ToString(got.Role.AssumeRolePolicyDocument)); doc != trustLambda {
		t.Errorf("AssumeRolePolicyDocument = %s, want %s", doc, trustLambda)
	}
	_, err = c.GetRole(ctx(t), &iam.GetRoleInput{RoleName: aws.String("nope")})
	wantAPIError[*iamtypes.NoSuchEntityException](t, err, 404)

	policy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}`
	if _, err := c.PutRolePolicy(ctx(t), &iam.PutRolePolicyInput{RoleName: aws.String("app"), PolicyName: aws.String("read"), PolicyDocument: aws.String(policy)}); err != nil {
		t.Fatalf("PutRolePolicy: %v", err)
	}
	rp, err := c.GetRolePolicy(ctx(t), &iam.GetRolePolicyInput{RoleName: aws.String("app"), PolicyName: aws.String("read")})
	if err != nil {
		t.Fatal(err)
	}
	if doc, _ := url.QueryUnescape(aws.ToString(rp.PolicyDocument)); doc != policy {
		t.Errorf("PolicyDocument = %s, want %s", doc, policy)
	}
	const basic = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
	if _, err := c.AttachRolePolicy(ctx(t), &iam.AttachRolePolicyInput{RoleName: aws.String("app"), PolicyArn: aws.String(basic)}); err != nil {
		t.Fatalf("AttachRolePolicy: %v", err)
	}
	att, err := c.ListAttachedRolePolicies(ctx(t), &iam.ListAttachedRolePoliciesInput{RoleName: aws.String("app")})
	if err != nil || len(att.AttachedPolicies) != 1 || aws.ToString(att.AttachedPolicies[0].PolicyName) != "AWSLambdaBasicExecutionRole" {
		t.Fatalf("ListAttachedRolePolicies = %+v, %v", att, err)
	}
	_, err = c.DeleteRole(ctx(t), &iam.DeleteRoleInput{RoleName: aws.String("app")})
	wantAPIError[*iamtypes.DeleteConflictException](t, err, 409)
	if _, err := c.DeleteRolePolicy(ctx(t), &iam.DeleteRolePolicyInput{RoleName: aws.String("app"), PolicyName: aws.String("read")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.DeleteRolePolicy(ctx(t), &iam.DeleteRolePolicyInput{RoleName: aws.String("app"), PolicyName: aws.String("read")})
	wantAPIError[*iamtypes.NoSuchEntityException](t, err, 404)
	_, err = c.DeleteRole(ctx(t), &iam.DeleteRoleInput{RoleName: aws.String("app")})
	wantAPIError[*iamtypes.DeleteConflictException](t, err, 409)
	if _, err := c.DetachRolePolicy(ctx(t), &iam.DetachRolePolicyInput{RoleName: aws.String("app"), PolicyArn: aws.String(basic)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteRole(ctx(t), &iam.DeleteRoleInput{RoleName: aws.String("app")}); err != nil {
		t.Fatalf("DeleteRole: %v", err)
	}

	for _, n := range []string{"r1", "r2", "r3", "r4", "r5"} {
		if _, err := c.CreateRole(ctx(t), &iam.CreateRoleInput{RoleName: aws.String(n), AssumeRolePolicyDocument: aws.String(trustLambda)}); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	pages := 0
	p := iam.NewListRolesPaginator(c, &iam.ListRolesInput{MaxItems: aws.Int32(2)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, r := range page.Roles {
			names = append(names, aws.ToString(r.RoleName))
		}
	}
	if got, want := strings.Join(names, ","), "r1,r2,r3,r4,r5"; got != want || pages != 3 {
		t.Errorf("ListRoles pages = %d, roles %s; want 3 pages of %s", pages, got, want)
	}
}

func TestIAMOIDCProviders(t *testing.T) {
	e := start(t, fast)
	c := iam.NewFromConfig(e.cfg)
	in := &iam.CreateOpenIDConnectProviderInput{Url: aws.String("https://token.actions.githubusercontent.com"),
		ClientIDList: []string{"sts.amazonaws.com"}, ThumbprintList: []string{"6938fd4d98bab03faadb97b34396831e3780aea1"}}
	out, err := c.CreateOpenIDConnectProvider(ctx(t), in)
	if err != nil {
		t.Fatalf("CreateOpenIDConnectProvider: %v", err)
	}
	arn := aws.ToString(out.OpenIDConnectProviderArn)
	if want := "arn:aws:iam::000000000000:oidc-provider/token.actions.githubusercontent.com"; arn != want {
		t.Errorf("arn = %s, want %s", arn, want)
	}
	_, err = c.CreateOpenIDConnectProvider(ctx(t), in)
	wantAPIError[*iamtypes.EntityAlreadyExistsException](t, err, 409)
	got, err := c.GetOpenIDConnectProvider(ctx(t), &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(got.Url) != "token.actions.githubusercontent.com" || len(got.ClientIDList) != 1 || len(got.ThumbprintList) != 1 {
		t.Errorf("GetOpenIDConnectProvider = %+v", got)
	}
	list, err := c.ListOpenIDConnectProviders(ctx(t), &iam.ListOpenIDConnectProvidersInput{})
	if err != nil || len(list.OpenIDConnectProviderList) != 1 {
		t.Fatalf("ListOpenIDConnectProviders = %+v, %v", list, err)
	}
	if _, err := c.DeleteOpenIDConnectProvider(ctx(t), &iam.DeleteOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetOpenIDConnectProvider(ctx(t), &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(arn)})
	wantAPIError[*iamtypes.NoSuchEntityException](t, err, 404)
}
