package sandbox_test

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// A stack of IAM roles, an OIDC provider and a bucket, with conditions: what the conditions
// leave out is not created, Fn::If picks its branch, the resources exist with the properties
// the template gave, an update changes them in place and a delete removes them.
func TestCloudFormationRolesBucketsConditions(t *testing.T) {
	e := startCFN(t)
	c := iam.NewFromConfig(e.cfg)
	const tmpl = `
Parameters:
  WithProvider: {Type: String, AllowedValues: ["yes", "no"]}
  Days: {Type: Number, Default: 7}
Conditions:
  Provider: !Equals [!Ref WithProvider, "yes"]
  NoProvider: !Not [{Condition: Provider}]
Resources:
  OIDC:
    Type: AWS::IAM::OIDCProvider
    Condition: Provider
    Properties:
      Url: https://token.actions.githubusercontent.com
      ClientIdList: [sts.amazonaws.com]
      ThumbprintList: [6938fd4d98bab03faadb97b34396831e3780aea1]
  Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Action: sts:AssumeRoleWithWebIdentity
            Principal: {Federated: !If [Provider, !Ref OIDC, "arn:aws:iam::000000000000:oidc-provider/elsewhere"]}
      ManagedPolicyArns: [arn:aws:iam::aws:policy/ReadOnlyAccess]
      Policies:
        - PolicyName: read
          PolicyDocument:
            Version: "2012-10-17"
            Statement:
              - {Effect: Allow, Action: ["s3:GetObject"], Resource: !Sub "${Bucket.Arn}/*"}
  Bucket:
    Type: AWS::S3::Bucket
    Properties:
      VersioningConfiguration: {Status: Enabled}
      PublicAccessBlockConfiguration: {BlockPublicAcls: true}
      LifecycleConfiguration:
        Rules:
          - {Id: uploads, Status: Enabled, Prefix: tmp/, AbortIncompleteMultipartUpload: {DaysAfterInitiation: !Ref Days}}
Outputs:
  RoleArn: {Value: !GetAtt Role.Arn}
  Provider: {Condition: Provider, Value: !GetAtt OIDC.Arn}
  Elsewhere: {Condition: NoProvider, Value: "none"}
`
	params := func(provider, days string) []cfntypes.Parameter {
		return []cfntypes.Parameter{{ParameterKey: aws.String("WithProvider"), ParameterValue: aws.String(provider)},
			{ParameterKey: aws.String("Days"), ParameterValue: aws.String(days)}}
	}
	_, err := e.cfn.CreateStack(ctx(t), &cloudformation.CreateStackInput{StackName: aws.String("infra"), TemplateBody: aws.String(tmpl), Parameters: params("no", "7")})
	wantAPIError[*cfntypes.InsufficientCapabilitiesException](t, err, 400)
	created, err := e.cfn.CreateStack(ctx(t), &cloudformation.CreateStackInput{StackName: aws.String("infra"), TemplateBody: aws.String(tmpl),
		Parameters: params("no", "7"), Capabilities: []cfntypes.Capability{cfntypes.CapabilityCapabilityIam}})
	if err != nil {
		t.Fatal(err)
	}
	e.waitCreate(t, "infra")
	res := e.resources(t, "infra")
	if _, ok := res["OIDC"]; ok {
		t.Errorf("the OIDC provider was created although its condition is false")
	}
	role := aws.ToString(res["Role"].PhysicalResourceId)
	bucket := aws.ToString(res["Bucket"].PhysicalResourceId)
	if !strings.HasPrefix(role, "infra-Role-") || !strings.HasPrefix(bucket, "infra-bucket-") {
		t.Errorf("generated names: role %s, bucket %s", role, bucket)
	}
	got, err := c.GetRole(ctx(t), &iam.GetRoleInput{RoleName: aws.String(role)})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(aws.ToString(got.Role.AssumeRolePolicyDocument), "elsewhere") {
		t.Errorf("trust policy %s: want the Fn::If branch of a false condition", aws.ToString(got.Role.AssumeRolePolicyDocument))
	}
	if v, err := e.s3.GetBucketVersioning(ctx(t), &s3.GetBucketVersioningInput{Bucket: aws.String(bucket)}); err != nil || v.Status != s3types.BucketVersioningStatusEnabled {
		t.Errorf("versioning = %+v, %v", v, err)
	}

	// The update creates the provider, points the role at it and changes the lifecycle.
	if _, err := e.cfn.UpdateStack(ctx(t), &cloudformation.UpdateStackInput{StackName: aws.String("infra"), UsePreviousTemplate: aws.Bool(true),
		Parameters: params("yes", "3"), Capabilities: []cfntypes.Capability{cfntypes.CapabilityCapabilityIam}}); err != nil {
		t.Fatal(err)
	}
	e.waitUpdate(t, "infra")
	got, err = c.GetRole(ctx(t), &iam.GetRoleInput{RoleName: aws.String(role)})
	if err != nil || !strings.Contains(aws.ToString(got.Role.AssumeRolePolicyDocument), "token.actions.githubusercontent.com") {
		t.Errorf("trust policy after the update = %v, %v", got, err)
	}
	lc, err := e.s3.GetBucketLifecycleConfiguration(ctx(t), &s3.GetBucketLifecycleConfigurationInput{Bucket: aws.String(bucket)})
	if err != nil || aws.ToInt32(lc.Rules[0].AbortIncompleteMultipartUpload.DaysAfterInitiation) != 3 {
		t.Errorf("lifecycle after the update = %+v, %v", lc, err)
	}

	if _, err := e.cfn.DeleteStack(ctx(t), &cloudformation.DeleteStackInput{StackName: aws.String("infra")}); err != nil {
		t.Fatal(err)
	}
	if st := e.settled(t, aws.ToString(created.StackId)); st.StackStatus != cfntypes.StackStatusDeleteComplete {
		t.Fatalf("delete: %s\n%s", st.StackStatus, e.eventLog(t, aws.ToString(created.StackId)))
	}
	_, err = c.GetRole(ctx(t), &iam.GetRoleInput{RoleName: aws.String(role)})
	wantAPIError[*iamtypes.NoSuchEntityException](t, err, 404)
	if _, err := e.s3.HeadBucket(ctx(t), &s3.HeadBucketInput{Bucket: aws.String(bucket)}); err == nil {
		t.Errorf("bucket %s survived the stack's deletion", bucket)
	}
}

// A property the sandbox does not provision fails the resource with a reason naming it, and a
// table without a DynamoDB upstream fails saying how to give one: neither is dropped silently.
func TestCloudFormationUnsupportedPropertyFails(t *testing.T) {
	e := startCFN(t)
	for name, tmpl := range map[string]string{
		"role":  `Resources: {R: {Type: AWS::IAM::Role, Properties: {AssumeRolePolicyDocument: {Version: "2012-10-17", Statement: [{Effect: Allow, Action: "sts:AssumeRole", Principal: {Service: lambda.amazonaws.com}}]}, PermissionsBoundary: "arn:aws:iam::aws:policy/X"}}}`,
		"table": `Resources: {T: {Type: AWS::DynamoDB::Table, Properties: {BillingMode: PAY_PER_REQUEST, AttributeDefinitions: [{AttributeName: pk, AttributeType: S}], KeySchema: [{AttributeName: pk, KeyType: HASH}]}}}`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := e.cfn.CreateStack(ctx(t), &cloudformation.CreateStackInput{StackName: aws.String(name), TemplateBody: aws.String(tmpl),
				Capabilities: []cfntypes.Capability{cfntypes.CapabilityCapabilityIam}}); err != nil {
				t.Fatal(err)
			}
			if st := e.settled(t, name); st.StackStatus != cfntypes.StackStatusRollbackComplete {
				t.Fatalf("stack is %s, want ROLLBACK_COMPLETE", st.StackStatus)
			}
			want := map[string]string{"role": "extraneous key [PermissionsBoundary]", "table": "--dynamodb"}[name]
			var reason string
			for _, ev := range e.events(t, name) {
				if ev.ResourceStatus == cfntypes.ResourceStatusCreateFailed {
					reason = aws.ToString(ev.ResourceStatusReason)
				}
			}
			if !strings.Contains(reason, want) {
				t.Errorf("CREATE_FAILED reason = %q, want it to say %q", reason, want)
			}
		})
	}
}

// An OIDC provider alone needs no capability (CreateStack's documentation lists the IAM types
// that do, and it is not one); its client ids, thumbprints and tags change in place, and a role's
// removed tags are removed.
func TestCloudFormationOIDCProviderInPlaceAndRoleTags(t *testing.T) {
	e := startCFN(t)
	c := iam.NewFromConfig(e.cfg)
	tmpl := func(clients, thumbprint, tags string) string {
		return `
Resources:
  OIDC:
    Type: AWS::IAM::OIDCProvider
    Properties:
      Url: https://token.actions.githubusercontent.com
      ClientIdList: [` + clients + `]
      ThumbprintList: [` + thumbprint + `]
      Tags: [` + tags + `]
`
	}
	const th1, th2 = "6938fd4d98bab03faadb97b34396831e3780aea1", "1c58a3a8518e8759bf075b76b750d4f2df264fcd"
	if _, err := e.cfn.CreateStack(ctx(t), &cloudformation.CreateStackInput{StackName: aws.String("oidc"),
		TemplateBody: aws.String(tmpl("sts.amazonaws.com", th1, "{Key: team, Value: ci}, {Key: env, Value: prod}"))}); err != nil {
		t.Fatalf("CreateStack of an OIDC provider without capabilities: %v", err)
	}
	e.waitCreate(t, "oidc")
	arn := aws.ToString(e.resources(t, "oidc")["OIDC"].PhysicalResourceId)
	if _, err := e.cfn.UpdateStack(ctx(t), &cloudformation.UpdateStackInput{StackName: aws.String("oidc"),
		TemplateBody: aws.String(tmpl("aud-2", th2, "{Key: team, Value: ops}"))}); err != nil {
		t.Fatal(err)
	}
	e.waitUpdate(t, "oidc")
	if got := aws.ToString(e.resources(t, "oidc")["OIDC"].PhysicalResourceId); got != arn {
		t.Errorf("the provider was replaced: %s, then %s", arn, got)
	}
	p, err := c.GetOpenIDConnectProvider(ctx(t), &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	var tags []string
	for _, tg := range p.Tags {
		tags = append(tags, aws.ToString(tg.Key)+"="+aws.ToString(tg.Value))
	}
	if strings.Join(p.ClientIDList, ",") != "aud-2" || strings.Join(p.ThumbprintList, ",") != th2 || strings.Join(tags, ",") != "team=ops" {
		t.Errorf("provider after the update: clients %v, thumbprints %v, tags %v; want [aud-2], [%s], [team=ops]", p.ClientIDList, p.ThumbprintList, tags, th2)
	}

	role := func(tags string) string {
		return `
Resources:
  Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: {Version: "2012-10-17", Statement: [{Effect: Allow, Action: "sts:AssumeRole", Principal: {Service: lambda.amazonaws.com}}]}
      Tags: [` + tags + `]
`
	}
	_, err = e.cfn.CreateStack(ctx(t), &cloudformation.CreateStackInput{StackName: aws.String("role"), TemplateBody: aws.String(role("{Key: a, Value: '1'}"))})
	wantAPIError[*cfntypes.InsufficientCapabilitiesException](t, err, 400)
	caps := []cfntypes.Capability{cfntypes.CapabilityCapabilityIam}
	if _, err := e.cfn.CreateStack(ctx(t), &cloudformation.CreateStackInput{StackName: aws.String("role"), TemplateBody: aws.String(role("{Key: a, Value: '1'}, {Key: b, Value: '2'}")), Capabilities: caps}); err != nil {
		t.Fatal(err)
	}
	e.waitCreate(t, "role")
	if _, err := e.cfn.UpdateStack(ctx(t), &cloudformation.UpdateStackInput{StackName: aws.String("role"), TemplateBody: aws.String(role("{Key: b, Value: '3'}")), Capabilities: caps}); err != nil {
		t.Fatal(err)
	}
	e.waitUpdate(t, "role")
	name := aws.ToString(e.resources(t, "role")["Role"].PhysicalResourceId)
	rt, err := c.ListRoleTags(ctx(t), &iam.ListRoleTagsInput{RoleName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	if len(rt.Tags) != 1 || aws.ToString(rt.Tags[0].Key) != "b" || aws.ToString(rt.Tags[0].Value) != "3" {
		t.Errorf("role tags after the update = %+v, want b=3 only", rt.Tags)
	}
}
