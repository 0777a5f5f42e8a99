package sandbox_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/smithy-go"
)

// recorder is an HTTP client that keeps the last response body it read, so that a test can
// check what went over the wire as well as what the SDK made of it.
type recorder struct {
	mu   sync.Mutex
	last []byte
}

func (r *recorder) Do(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.last = b
	r.mu.Unlock()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp, nil
}

func (r *recorder) body() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return string(r.last)
}

// The role operations tools call around CreateRole: permissions boundaries, descriptions,
// instance profiles (none, in the sandbox), RoleLastUsed, and tags paged and left out when empty.
func TestIAMRoleToolOperations(t *testing.T) {
	e := start(t, fast)
	rec := &recorder{}
	c := iam.NewFromConfig(e.cfg, func(o *iam.Options) { o.HTTPClient = rec })
	const boundary = "arn:aws:iam::000000000000:policy/boundary"
	out, err := c.CreateRole(ctx(t), &iam.CreateRoleInput{RoleName: aws.String("bounded"), AssumeRolePolicyDocument: aws.String(trustLambda),
		PermissionsBoundary: aws.String(boundary)})
	if err != nil {
		t.Fatalf("CreateRole: %v", err)
	}
	if pb := out.Role.PermissionsBoundary; pb == nil || aws.ToString(pb.PermissionsBoundaryArn) != boundary || pb.PermissionsBoundaryType != iamtypes.PermissionsBoundaryAttachmentTypePolicy {
		t.Errorf("CreateRole PermissionsBoundary = %+v, want %s", pb, boundary)
	}
	_, err = c.CreateRole(ctx(t), &iam.CreateRoleInput{RoleName: aws.String("x"), AssumeRolePolicyDocument: aws.String(trustLambda), PermissionsBoundary: aws.String("nope")})
	wantAPIError[*iamtypes.InvalidInputException](t, err, 400)

	got, err := c.GetRole(ctx(t), &iam.GetRoleInput{RoleName: aws.String("bounded")})
	if err != nil {
		t.Fatal(err)
	}
	if got.Role.RoleLastUsed == nil {
		t.Errorf("GetRole RoleLastUsed = nil, want an empty RoleLastUsed")
	}
	if strings.Contains(rec.body(), "<Tags>") {
		t.Errorf("GetRole of an untagged role sent Tags: %s", rec.body())
	}
	if pb := got.Role.PermissionsBoundary; pb == nil || aws.ToString(pb.PermissionsBoundaryArn) != boundary {
		t.Errorf("GetRole PermissionsBoundary = %+v, want %s", pb, boundary)
	}
	if _, err := c.DeleteRolePermissionsBoundary(ctx(t), &iam.DeleteRolePermissionsBoundaryInput{RoleName: aws.String("bounded")}); err != nil {
		t.Fatalf("DeleteRolePermissionsBoundary: %v", err)
	}
	if got, _ := c.GetRole(ctx(t), &iam.GetRoleInput{RoleName: aws.String("bounded")}); got == nil || got.Role.PermissionsBoundary != nil {
		t.Errorf("after DeleteRolePermissionsBoundary: %+v", got)
	}
	const other = "arn:aws:iam::aws:policy/PowerUserAccess"
	if _, err := c.PutRolePermissionsBoundary(ctx(t), &iam.PutRolePermissionsBoundaryInput{RoleName: aws.String("bounded"), PermissionsBoundary: aws.String(other)}); err != nil {
		t.Fatalf("PutRolePermissionsBoundary: %v", err)
	}
	if got, _ := c.GetRole(ctx(t), &iam.GetRoleInput{RoleName: aws.String("bounded")}); got == nil || got.Role.PermissionsBoundary == nil || aws.ToString(got.Role.PermissionsBoundary.PermissionsBoundaryArn) != other {
		t.Errorf("after PutRolePermissionsBoundary: %+v", got)
	}

	desc, err := c.UpdateRoleDescription(ctx(t), &iam.UpdateRoleDescriptionInput{RoleName: aws.String("bounded"), Description: aws.String("the bounded one")})
	if err != nil {
		t.Fatalf("UpdateRoleDescription: %v", err)
	}
	if got := aws.ToString(desc.Role.Description); got != "the bounded one" {
		t.Errorf("UpdateRoleDescription Role.Description = %q", got)
	}

	ip, err := c.ListInstanceProfilesForRole(ctx(t), &iam.ListInstanceProfilesForRoleInput{RoleName: aws.String("bounded")})
	if err != nil || len(ip.InstanceProfiles) != 0 || ip.IsTruncated {
		t.Errorf("ListInstanceProfilesForRole = %+v, %v; want an empty list", ip, err)
	}
	_, err = c.ListInstanceProfilesForRole(ctx(t), &iam.ListInstanceProfilesForRoleInput{RoleName: aws.String("nope")})
	wantAPIError[*iamtypes.NoSuchEntityException](t, err, 404)

	if _, err := c.ListRoles(ctx(t), &iam.ListRolesInput{}); err != nil {
		t.Fatal(err)
	}
	if b := rec.body(); strings.Contains(b, "<Tags") || strings.Contains(b, "PermissionsBoundary") {
		t.Errorf("ListRoles sent Tags or PermissionsBoundary: %s", b)
	}

	var tags []iamtypes.Tag
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		tags = append(tags, iamtypes.Tag{Key: aws.String(k), Value: aws.String(k + "-value")})
	}
	if _, err := c.TagRole(ctx(t), &iam.TagRoleInput{RoleName: aws.String("bounded"), Tags: tags}); err != nil {
		t.Fatal(err)
	}
	var keys []string
	pages := 0
	in := &iam.ListRoleTagsInput{RoleName: aws.String("bounded"), MaxItems: aws.Int32(2)}
	for {
		page, err := c.ListRoleTags(ctx(t), in)
		if err != nil {
			t.Fatalf("ListRoleTags: %v", err)
		}
		pages++
		for _, tg := range page.Tags {
			keys = append(keys, aws.ToString(tg.Key))
		}
		if !page.IsTruncated {
			break
		}
		in.Marker = page.Marker
	}
	if got, want := strings.Join(keys, ","), "a,b,c,d,e"; got != want || pages != 3 {
		t.Errorf("ListRoleTags pages = %d, keys %s; want 3 pages of %s", pages, got, want)
	}
}

// A trust policy names a principal; a permissions policy names resources and no principal.
func TestIAMPolicyGrammar(t *testing.T) {
	e := start(t, fast)
	c := iam.NewFromConfig(e.cfg)
	for name, trust := range map[string]string{
		"no principal": `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole"}]}`,
	} {
		_, err := c.CreateRole(ctx(t), &iam.CreateRoleInput{RoleName: aws.String("x"), AssumeRolePolicyDocument: aws.String(trust)})
		if ae := wantAPIError[*iamtypes.MalformedPolicyDocumentException](t, err, 400); !strings.Contains(aws.ToString(ae.Message), "Principal") {
			t.Errorf("trust %s: message %q", name, aws.ToString(ae.Message))
		}
	}
	if _, err := c.CreateRole(ctx(t), &iam.CreateRoleInput{RoleName: aws.String("r"), AssumeRolePolicyDocument: aws.String(trustLambda)}); err != nil {
		t.Fatal(err)
	}
	_, err := c.UpdateAssumeRolePolicy(ctx(t), &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String("r"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole"}]}`)})
	wantAPIError[*iamtypes.MalformedPolicyDocumentException](t, err, 400)
	for name, tc := range map[string]struct{ doc, message string }{
		"no resource": {`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject"}]}`, "Policy statement must contain resources."},
		"principal":   {`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"*"}]}`, "Policy document should not specify a principal."},
	} {
		_, err := c.PutRolePolicy(ctx(t), &iam.PutRolePolicyInput{RoleName: aws.String("r"), PolicyName: aws.String("p"), PolicyDocument: aws.String(tc.doc)})
		if ae := wantAPIError[*iamtypes.MalformedPolicyDocumentException](t, err, 400); aws.ToString(ae.Message) != tc.message {
			t.Errorf("%s: message %q, want %q", name, aws.ToString(ae.Message), tc.message)
		}
	}
	ok := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","NotAction":"iam:*","NotResource":"arn:aws:s3:::secret/*"}]}`
	if _, err := c.PutRolePolicy(ctx(t), &iam.PutRolePolicyInput{RoleName: aws.String("r"), PolicyName: aws.String("p"), PolicyDocument: aws.String(ok)}); err != nil {
		t.Errorf("PutRolePolicy with NotResource: %v", err)
	}
}

// OpenID Connect providers change in place: thumbprints, client ids (audiences) and tags.
func TestIAMOIDCProviderMutators(t *testing.T) {
	e := start(t, fast)
	c := iam.NewFromConfig(e.cfg)
	out, err := c.CreateOpenIDConnectProvider(ctx(t), &iam.CreateOpenIDConnectProviderInput{Url: aws.String("https://token.actions.githubusercontent.com"),
		ClientIDList: []string{"sts.amazonaws.com"}, ThumbprintList: []string{"6938fd4d98bab03faadb97b34396831e3780aea1"}})
	if err != nil {
		t.Fatal(err)
	}
	arn := out.OpenIDConnectProviderArn
	const th = "1c58a3a8518e8759bf075b76b750d4f2df264fcd"
	if _, err := c.UpdateOpenIDConnectProviderThumbprint(ctx(t), &iam.UpdateOpenIDConnectProviderThumbprintInput{OpenIDConnectProviderArn: arn, ThumbprintList: []string{th}}); err != nil {
		t.Fatalf("UpdateOpenIDConnectProviderThumbprint: %v", err)
	}
	_, err = c.UpdateOpenIDConnectProviderThumbprint(ctx(t), &iam.UpdateOpenIDConnectProviderThumbprintInput{OpenIDConnectProviderArn: arn, ThumbprintList: []string{"short"}})
	if ae := wantAPIError[smithy.APIError](t, err, 400); ae.ErrorCode() != "ValidationError" {
		t.Errorf("UpdateOpenIDConnectProviderThumbprint with a short thumbprint: %v, want ValidationError", err)
	}
	for _, id := range []string{"aud-2", "aud-2"} { // adding twice is one add
		if _, err := c.AddClientIDToOpenIDConnectProvider(ctx(t), &iam.AddClientIDToOpenIDConnectProviderInput{OpenIDConnectProviderArn: arn, ClientID: aws.String(id)}); err != nil {
			t.Fatalf("AddClientIDToOpenIDConnectProvider: %v", err)
		}
	}
	for _, id := range []string{"sts.amazonaws.com", "never-there"} { // removing an absent id is no error
		if _, err := c.RemoveClientIDFromOpenIDConnectProvider(ctx(t), &iam.RemoveClientIDFromOpenIDConnectProviderInput{OpenIDConnectProviderArn: arn, ClientID: aws.String(id)}); err != nil {
			t.Fatalf("RemoveClientIDFromOpenIDConnectProvider %s: %v", id, err)
		}
	}
	got, err := c.GetOpenIDConnectProvider(ctx(t), &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: arn})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got.ClientIDList, ",") != "aud-2" || strings.Join(got.ThumbprintList, ",") != th {
		t.Errorf("provider = clients %v, thumbprints %v; want [aud-2], [%s]", got.ClientIDList, got.ThumbprintList, th)
	}
	if _, err := c.TagOpenIDConnectProvider(ctx(t), &iam.TagOpenIDConnectProviderInput{OpenIDConnectProviderArn: arn,
		Tags: []iamtypes.Tag{{Key: aws.String("team"), Value: aws.String("ci")}, {Key: aws.String("env"), Value: aws.String("prod")}}}); err != nil {
		t.Fatalf("TagOpenIDConnectProvider: %v", err)
	}
	if _, err := c.UntagOpenIDConnectProvider(ctx(t), &iam.UntagOpenIDConnectProviderInput{OpenIDConnectProviderArn: arn, TagKeys: []string{"env"}}); err != nil {
		t.Fatalf("UntagOpenIDConnectProvider: %v", err)
	}
	tags, err := c.ListOpenIDConnectProviderTags(ctx(t), &iam.ListOpenIDConnectProviderTagsInput{OpenIDConnectProviderArn: arn})
	if err != nil || len(tags.Tags) != 1 || aws.ToString(tags.Tags[0].Key) != "team" {
		t.Errorf("ListOpenIDConnectProviderTags = %+v, %v; want team only", tags, err)
	}
	_, err = c.TagOpenIDConnectProvider(ctx(t), &iam.TagOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(aws.ToString(arn) + "x"),
		Tags: []iamtypes.Tag{{Key: aws.String("k"), Value: aws.String("v")}}})
	wantAPIError[*iamtypes.NoSuchEntityException](t, err, 404)
}
