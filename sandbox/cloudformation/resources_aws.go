package cloudformation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	schedtypes "github.com/aws/aws-sdk-go-v2/service/scheduler/types"
	"github.com/aws/smithy-go"
)

// DynamoDBAPI is the DynamoDB client tables are provisioned through (the sandbox's forward).
type DynamoDBAPI interface {
	CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, opts ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, opts ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	UpdateTable(ctx context.Context, in *dynamodb.UpdateTableInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateTableOutput, error)
	DeleteTable(ctx context.Context, in *dynamodb.DeleteTableInput, opts ...func(*dynamodb.Options)) (*dynamodb.DeleteTableOutput, error)
	UpdateTimeToLive(ctx context.Context, in *dynamodb.UpdateTimeToLiveInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateTimeToLiveOutput, error)
}

// S3API is the S3 client buckets are provisioned through.
type S3API interface {
	CreateBucket(ctx context.Context, in *s3.CreateBucketInput, opts ...func(*s3.Options)) (*s3.CreateBucketOutput, error)
	DeleteBucket(ctx context.Context, in *s3.DeleteBucketInput, opts ...func(*s3.Options)) (*s3.DeleteBucketOutput, error)
	PutBucketVersioning(ctx context.Context, in *s3.PutBucketVersioningInput, opts ...func(*s3.Options)) (*s3.PutBucketVersioningOutput, error)
	PutBucketLifecycleConfiguration(ctx context.Context, in *s3.PutBucketLifecycleConfigurationInput, opts ...func(*s3.Options)) (*s3.PutBucketLifecycleConfigurationOutput, error)
	DeleteBucketLifecycle(ctx context.Context, in *s3.DeleteBucketLifecycleInput, opts ...func(*s3.Options)) (*s3.DeleteBucketLifecycleOutput, error)
}

// IAMAPI is the IAM client roles and OIDC providers are provisioned through.
type IAMAPI interface {
	CreateRole(ctx context.Context, in *iam.CreateRoleInput, opts ...func(*iam.Options)) (*iam.CreateRoleOutput, error)
	DeleteRole(ctx context.Context, in *iam.DeleteRoleInput, opts ...func(*iam.Options)) (*iam.DeleteRoleOutput, error)
	UpdateAssumeRolePolicy(ctx context.Context, in *iam.UpdateAssumeRolePolicyInput, opts ...func(*iam.Options)) (*iam.UpdateAssumeRolePolicyOutput, error)
	UpdateRole(ctx context.Context, in *iam.UpdateRoleInput, opts ...func(*iam.Options)) (*iam.UpdateRoleOutput, error)
	PutRolePolicy(ctx context.Context, in *iam.PutRolePolicyInput, opts ...func(*iam.Options)) (*iam.PutRolePolicyOutput, error)
	DeleteRolePolicy(ctx context.Context, in *iam.DeleteRolePolicyInput, opts ...func(*iam.Options)) (*iam.DeleteRolePolicyOutput, error)
	ListRolePolicies(ctx context.Context, in *iam.ListRolePoliciesInput, opts ...func(*iam.Options)) (*iam.ListRolePoliciesOutput, error)
	AttachRolePolicy(ctx context.Context, in *iam.AttachRolePolicyInput, opts ...func(*iam.Options)) (*iam.AttachRolePolicyOutput, error)
	DetachRolePolicy(ctx context.Context, in *iam.DetachRolePolicyInput, opts ...func(*iam.Options)) (*iam.DetachRolePolicyOutput, error)
	ListAttachedRolePolicies(ctx context.Context, in *iam.ListAttachedRolePoliciesInput, opts ...func(*iam.Options)) (*iam.ListAttachedRolePoliciesOutput, error)
	TagRole(ctx context.Context, in *iam.TagRoleInput, opts ...func(*iam.Options)) (*iam.TagRoleOutput, error)
	UntagRole(ctx context.Context, in *iam.UntagRoleInput, opts ...func(*iam.Options)) (*iam.UntagRoleOutput, error)
	UpdateOpenIDConnectProviderThumbprint(ctx context.Context, in *iam.UpdateOpenIDConnectProviderThumbprintInput, opts ...func(*iam.Options)) (*iam.UpdateOpenIDConnectProviderThumbprintOutput, error)
	AddClientIDToOpenIDConnectProvider(ctx context.Context, in *iam.AddClientIDToOpenIDConnectProviderInput, opts ...func(*iam.Options)) (*iam.AddClientIDToOpenIDConnectProviderOutput, error)
	RemoveClientIDFromOpenIDConnectProvider(ctx context.Context, in *iam.RemoveClientIDFromOpenIDConnectProviderInput, opts ...func(*iam.Options)) (*iam.RemoveClientIDFromOpenIDConnectProviderOutput, error)
	TagOpenIDConnectProvider(ctx context.Context, in *iam.TagOpenIDConnectProviderInput, opts ...func(*iam.Options)) (*iam.TagOpenIDConnectProviderOutput, error)
	UntagOpenIDConnectProvider(ctx context.Context, in *iam.UntagOpenIDConnectProviderInput, opts ...func(*iam.Options)) (*iam.UntagOpenIDConnectProviderOutput, error)
	CreateOpenIDConnectProvider(ctx context.Context, in *iam.CreateOpenIDConnectProviderInput, opts ...func(*iam.Options)) (*iam.CreateOpenIDConnectProviderOutput, error)
	DeleteOpenIDConnectProvider(ctx context.Context, in *iam.DeleteOpenIDConnectProviderInput, opts ...func(*iam.Options)) (*iam.DeleteOpenIDConnectProviderOutput, error)
}

// SchedulerAPI is the EventBridge Scheduler client schedules and groups are provisioned through.
type SchedulerAPI interface {
	CreateSchedule(ctx context.Context, in *scheduler.CreateScheduleInput, opts ...func(*scheduler.Options)) (*scheduler.CreateScheduleOutput, error)
	UpdateSchedule(ctx context.Context, in *scheduler.UpdateScheduleInput, opts ...func(*scheduler.Options)) (*scheduler.UpdateScheduleOutput, error)
	DeleteSchedule(ctx context.Context, in *scheduler.DeleteScheduleInput, opts ...func(*scheduler.Options)) (*scheduler.DeleteScheduleOutput, error)
	CreateScheduleGroup(ctx context.Context, in *scheduler.CreateScheduleGroupInput, opts ...func(*scheduler.Options)) (*scheduler.CreateScheduleGroupOutput, error)
	DeleteScheduleGroup(ctx context.Context, in *scheduler.DeleteScheduleGroupInput, opts ...func(*scheduler.Options)) (*scheduler.DeleteScheduleGroupOutput, error)
}

var (
	_ SchedulerAPI = (*scheduler.Client)(nil)
	_ DynamoDBAPI  = (*dynamodb.Client)(nil)
	_ S3API        = (*s3.Client)(nil)
	_ IAMAPI       = (*iam.Client)(nil)
)

// knownProps are the properties the sandbox provisions, by resource type; noOpProps are those
// it accepts and records without effect (the package doc lists them). Any other property fails
// the resource, as an invalid property fails it on AWS.
var (
	knownProps = map[string][]string{
		typeTable: {"TableName", "KeySchema", "AttributeDefinitions", "BillingMode", "ProvisionedThroughput", "GlobalSecondaryIndexes",
			"LocalSecondaryIndexes", "StreamSpecification", "TimeToLiveSpecification", "Tags"},
		typeBucket: {"BucketName", "VersioningConfiguration", "LifecycleConfiguration"},
		typeRole:   {"RoleName", "AssumeRolePolicyDocument", "Path", "Description", "MaxSessionDuration", "Policies", "ManagedPolicyArns", "Tags"},
		typeOIDC:   {"Url", "ClientIdList", "ThumbprintList", "Tags"},
		typeURL:    {"TargetFunctionArn", "Qualifier", "AuthType", "Cors", "InvokeMode"},
		typeSchedule: {"Name", "GroupName", "Description", "ScheduleExpression", "ScheduleExpressionTimezone", "StartDate", "EndDate",
			"FlexibleTimeWindow", "State", "Target"},
		typeGroup: {"Name", "Tags"},
	}
	noOpProps = map[string][]string{
		typeTable:  {"PointInTimeRecoverySpecification", "SSESpecification", "DeletionProtectionEnabled", "TableClass"},
		typeBucket: {"PublicAccessBlockConfiguration", "BucketEncryption", "OwnershipControls", "Tags"},
	}
)

// checkProps fails a resource whose properties the sandbox does not know, naming them.
func checkProps(r *resource, props map[string]any) error {
	known, ok := knownProps[r.Type]
	if !ok {
		return nil
	}
	var unknown []string
	for k := range props {
		if !slices.Contains(known, k) && !slices.Contains(noOpProps[r.Type], k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	return fmt.Errorf("Properties validation failed for resource %s with message: #: extraneous key [%s] is not permitted (the Aviary sandbox provisions %s with %s)",
		r.LogicalID, strings.Join(unknown, ", "), r.Type, strings.Join(append(slices.Clone(known), noOpProps[r.Type]...), ", "))
}

// serviceError words a failed call to another service as CloudFormation's handlers report it.
func serviceError(service string, err error) error {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return err
	}
	code := "GeneralServiceException"
	switch ae.ErrorCode() {
	case "ValidationException", "ValidationError", "MalformedPolicyDocument", "InvalidInput", "InvalidParameterValueException", "InvalidBucketName":
		code = "InvalidRequest"
	case "ResourceNotFoundException", "NoSuchEntity", "NoSuchBucket":
		code = "NotFound"
	case "ResourceInUseException", "EntityAlreadyExists", "BucketAlreadyExists", "BucketAlreadyOwnedByYou", "ResourceConflictException":
		code = "AlreadyExists"
	case "LimitExceededException", "LimitExceeded":
		code = "ServiceLimitExceeded"
	}
	status, reqID := 0, ""
	var re interface {
		HTTPStatusCode() int
		ServiceRequestID() string
	}
	if errors.As(err, &re) {
		status, reqID = re.HTTPStatusCode(), re.ServiceRequestID()
	}
	return fmt.Errorf("Resource handler returned message: \"%s (Service: %s, Status Code: %d, Request ID: %s)\" (RequestToken: %s, HandlerErrorCode: %s)",
		ae.ErrorMessage(), service, status, reqID, uuid(), code)
}

func notFound(err error, codes ...string) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && slices.Contains(codes, ae.ErrorCode())
}

// document is a policy property as IAM takes it: JSON text (a template gives an object or a
// string).
func document(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func strList(v any) []string {
	var out []string
	for _, e := range list(v) {
		out = append(out, scalarString(e))
	}
	return out
}

// wait polls until done answers true, every PollInterval.
func (s *Service) wait(ctx context.Context, done func() (bool, error)) error {
	for {
		ok, err := done()
		if err != nil || ok {
			return err
		}
		t := time.NewTimer(s.cfg.PollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// DynamoDB tables.

func keySchema(v any) []ddbtypes.KeySchemaElement {
	var out []ddbtypes.KeySchemaElement
	for _, e := range list(v) {
		m, _ := e.(map[string]any)
		out = append(out, ddbtypes.KeySchemaElement{AttributeName: optStr(m, "AttributeName"), KeyType: ddbtypes.KeyType(str(m["KeyType"]))})
	}
	return out
}

func throughput(v any) *ddbtypes.ProvisionedThroughput {
	m, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	r, _ := intProp(m["ReadCapacityUnits"])
	w, _ := intProp(m["WriteCapacityUnits"])
	return &ddbtypes.ProvisionedThroughput{ReadCapacityUnits: aws.Int64(int64(r)), WriteCapacityUnits: aws.Int64(int64(w))}
}

func projection(v any) *ddbtypes.Projection {
	m, _ := v.(map[string]any)
	return &ddbtypes.Projection{ProjectionType: ddbtypes.ProjectionType(str(m["ProjectionType"])), NonKeyAttributes: strList(m["NonKeyAttributes"])}
}

func (s *Service) createTable(ctx context.Context, st *stack, r *resource, props map[string]any) (instance, error) {
	name := str(props["TableName"])
	if name == "" {
		name = physicalName(st.Name, r.LogicalID, 255)
	}
	in := &dynamodb.CreateTableInput{TableName: aws.String(name), KeySchema: keySchema(props["KeySchema"]),
		BillingMode: ddbtypes.BillingMode(str(props["BillingMode"])), ProvisionedThroughput: throughput(props["ProvisionedThroughput"])}
	for _, e := range list(props["AttributeDefinitions"]) {
		m, _ := e.(map[string]any)
		in.AttributeDefinitions = append(in.AttributeDefinitions, ddbtypes.AttributeDefinition{AttributeName: optStr(m, "AttributeName"),
			AttributeType: ddbtypes.ScalarAttributeType(str(m["AttributeType"]))})
	}
	for _, e := range list(props["GlobalSecondaryIndexes"]) {
		m, _ := e.(map[string]any)
		in.GlobalSecondaryIndexes = append(in.GlobalSecondaryIndexes, ddbtypes.GlobalSecondaryIndex{IndexName: optStr(m, "IndexName"),
			KeySchema: keySchema(m["KeySchema"]), Projection: projection(m["Projection"]), ProvisionedThroughput: throughput(m["ProvisionedThroughput"])})
	}
	for _, e := range list(props["LocalSecondaryIndexes"]) {
		m, _ := e.(map[string]any)
		in.LocalSecondaryIndexes = append(in.LocalSecondaryIndexes, ddbtypes.LocalSecondaryIndex{IndexName: optStr(m, "IndexName"),
			KeySchema: keySchema(m["KeySchema"]), Projection: projection(m["Projection"])})
	}
	if ss, ok := props["StreamSpecification"].(map[string]any); ok {
		in.StreamSpecification = &ddbtypes.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: ddbtypes.StreamViewType(str(ss["StreamViewType"]))}
	}
	for _, e := range list(props["Tags"]) {
		m, _ := e.(map[string]any)
		in.Tags = append(in.Tags, ddbtypes.Tag{Key: aws.String(scalarString(m["Key"])), Value: aws.String(scalarString(m["Value"]))})
	}
	if _, err := s.cfg.DynamoDB.CreateTable(ctx, in); err != nil {
		return instance{}, serviceError("DynamoDb", err)
	}
	attrs, err := s.tableActive(ctx, name)
	if err != nil {
		return instance{Physical: name}, err
	}
	if err := s.tableTTL(ctx, name, nil, props["TimeToLiveSpecification"]); err != nil {
		return instance{Physical: name}, err
	}
	return instance{Physical: name, Attrs: attrs}, nil
}

// tableActive waits for a table to be ACTIVE and returns its attributes.
func (s *Service) tableActive(ctx context.Context, name string) (map[string]string, error) {
	var attrs map[string]string
	err := s.wait(ctx, func() (bool, error) {
		out, err := s.cfg.DynamoDB.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
		if err != nil {
			return false, serviceError("DynamoDb", err)
		}
		attrs = map[string]string{"Arn": aws.ToString(out.Table.TableArn)}
		if a := aws.ToString(out.Table.LatestStreamArn); a != "" {
			attrs["StreamArn"] = a
		}
		return out.Table.TableStatus == ddbtypes.TableStatusActive, nil
	})
	return attrs, err
}

// tableTTL applies a TimeToLiveSpecification that changed. An upstream without Time to Live
// (dynalite answers UnknownOperationException) leaves it recorded only, as the package doc says.
func (s *Service) tableTTL(ctx context.Context, name string, from, to any) error {
	if reflectEqual(from, to) {
		return nil
	}
	spec, _ := to.(map[string]any)
	enabled := spec != nil && (spec["Enabled"] == true || str(spec["Enabled"]) == "true")
	attr := str(spec["AttributeName"])
	if !enabled {
		prev, _ := from.(map[string]any)
		if prev == nil || !(prev["Enabled"] == true || str(prev["Enabled"]) == "true") {
			return nil
		}
		attr = str(prev["AttributeName"])
	}
	_, err := s.cfg.DynamoDB.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{TableName: aws.String(name),
		TimeToLiveSpecification: &ddbtypes.TimeToLiveSpecification{AttributeName: aws.String(attr), Enabled: aws.Bool(enabled)}})
	if notFound(err, "UnknownOperationException") {
		s.cfg.Logger.Info("the DynamoDB upstream has no Time to Live: recorded, not applied", "table", name)
		return nil
	}
	if err != nil {
		return serviceError("DynamoDb", err)
	}
	return nil
}

func (s *Service) updateTable(ctx context.Context, r *resource, from, to map[string]any) (map[string]string, error) {
	if !sameExcept(from, to, "BillingMode", "ProvisionedThroughput", "TimeToLiveSpecification", "PointInTimeRecoverySpecification",
		"SSESpecification", "DeletionProtectionEnabled", "TableClass", "Tags", "AttributeDefinitions") {
		return nil, fmt.Errorf("the Aviary sandbox updates a table's BillingMode, ProvisionedThroughput and TimeToLiveSpecification in place, not its GlobalSecondaryIndexes or StreamSpecification")
	}
	if !sameExcept(pick(from, "BillingMode", "ProvisionedThroughput"), pick(to, "BillingMode", "ProvisionedThroughput")) {
		in := &dynamodb.UpdateTableInput{TableName: aws.String(r.Physical), BillingMode: ddbtypes.BillingMode(str(to["BillingMode"])),
			ProvisionedThroughput: throughput(to["ProvisionedThroughput"])}
		if in.BillingMode == "" {
			in.BillingMode = ddbtypes.BillingModeProvisioned
		}
		if _, err := s.cfg.DynamoDB.UpdateTable(ctx, in); err != nil {
			return nil, serviceError("DynamoDb", err)
		}
	}
	attrs, err := s.tableActive(ctx, r.Physical)
	if err != nil {
		return nil, err
	}
	if err := s.tableTTL(ctx, r.Physical, from["TimeToLiveSpecification"], to["TimeToLiveSpecification"]); err != nil {
		return nil, err
	}
	return attrs, nil
}

func pick(m map[string]any, keys ...string) map[string]any {
	out := map[string]any{}
	for _, k := range keys {
		if v, ok := m[k]; ok {
			out[k] = v
		}
	}
	return out
}

func reflectEqual(a, b any) bool {
	return sameExcept(map[string]any{"v": a}, map[string]any{"v": b})
}

// S3 buckets.

func (s *Service) createBucket(ctx context.Context, st *stack, r *resource, props map[string]any) (instance, error) {
	name := str(props["BucketName"])
	if name == "" {
		name = strings.ToLower(physicalName(st.Name, r.LogicalID, 63))
	}
	if _, err := s.cfg.S3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		return instance{}, serviceError("S3", err)
	}
	inst := instance{Physical: name, Attrs: map[string]string{
		"Arn": "arn:aws:s3:::" + name, "DomainName": name + ".s3.amazonaws.com",
		"RegionalDomainName": name + ".s3." + s.cfg.Region + ".amazonaws.com", "DualStackDomainName": name + ".s3.dualstack." + s.cfg.Region + ".amazonaws.com",
		"WebsiteURL": "http://" + name + ".s3-website-" + s.cfg.Region + ".amazonaws.com",
	}}
	if err := s.bucketConfig(ctx, name, nil, props); err != nil {
		return inst, err
	}
	return inst, nil
}

// bucketConfig applies a bucket's versioning and lifecycle as far as they changed.
func (s *Service) bucketConfig(ctx context.Context, name string, from, to map[string]any) error {
	if !reflectEqual(from["VersioningConfiguration"], to["VersioningConfiguration"]) {
		vc, _ := to["VersioningConfiguration"].(map[string]any)
		status := s3types.BucketVersioningStatusSuspended
		if vc != nil {
			status = s3types.BucketVersioningStatus(str(vc["Status"]))
		}
		if vc != nil || from["VersioningConfiguration"] != nil {
			if _, err := s.cfg.S3.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String(name),
				VersioningConfiguration: &s3types.VersioningConfiguration{Status: status}}); err != nil {
				return serviceError("S3", err)
			}
		}
	}
	if !reflectEqual(from["LifecycleConfiguration"], to["LifecycleConfiguration"]) {
		lc, _ := to["LifecycleConfiguration"].(map[string]any)
		if lc == nil {
			if _, err := s.cfg.S3.DeleteBucketLifecycle(ctx, &s3.DeleteBucketLifecycleInput{Bucket: aws.String(name)}); err != nil {
				return serviceError("S3", err)
			}
			return nil
		}
		rules, err := lifecycleRules(lc)
		if err != nil {
			return err
		}
		if _, err := s.cfg.S3.PutBucketLifecycleConfiguration(ctx, &s3.PutBucketLifecycleConfigurationInput{Bucket: aws.String(name),
			LifecycleConfiguration: &s3types.BucketLifecycleConfiguration{Rules: rules}}); err != nil {
			return serviceError("S3", err)
		}
	}
	return nil
}

// lifecycleRules turns CloudFormation's lifecycle rules into S3's: the rule properties the
// sandbox's S3 applies, and an error naming any other.
func lifecycleRules(lc map[string]any) ([]s3types.LifecycleRule, error) {
	known := []string{"Id", "Status", "Prefix", "AbortIncompleteMultipartUpload", "ExpiredObjectDeleteMarker", "ExpirationInDays",
		"NoncurrentVersionExpirationInDays", "NoncurrentVersionExpiration"}
	var out []s3types.LifecycleRule
	for _, e := range list(lc["Rules"]) {
		m, _ := e.(map[string]any)
		for k := range m {
			if !slices.Contains(known, k) {
				return nil, fmt.Errorf("Properties validation failed: LifecycleConfiguration rule property %s is not supported by the Aviary sandbox (it applies %s)", k, strings.Join(known, ", "))
			}
		}
		rule := s3types.LifecycleRule{ID: optStr(m, "Id"), Status: s3types.ExpirationStatus(str(m["Status"])),
			Filter: &s3types.LifecycleRuleFilter{Prefix: aws.String(str(m["Prefix"]))}}
		if a, ok := m["AbortIncompleteMultipartUpload"].(map[string]any); ok {
			n, _ := intProp(a["DaysAfterInitiation"])
			rule.AbortIncompleteMultipartUpload = &s3types.AbortIncompleteMultipartUpload{DaysAfterInitiation: aws.Int32(n)}
		}
		if m["ExpiredObjectDeleteMarker"] == true || str(m["ExpiredObjectDeleteMarker"]) == "true" {
			rule.Expiration = &s3types.LifecycleExpiration{ExpiredObjectDeleteMarker: aws.Bool(true)}
		}
		if n, ok := intProp(m["ExpirationInDays"]); ok {
			rule.Expiration = &s3types.LifecycleExpiration{Days: aws.Int32(n)}
		}
		if n, ok := intProp(m["NoncurrentVersionExpirationInDays"]); ok {
			rule.NoncurrentVersionExpiration = &s3types.NoncurrentVersionExpiration{NoncurrentDays: aws.Int32(n)}
		}
		if nv, ok := m["NoncurrentVersionExpiration"].(map[string]any); ok {
			n, _ := intProp(nv["NoncurrentDays"])
			rule.NoncurrentVersionExpiration = &s3types.NoncurrentVersionExpiration{NoncurrentDays: aws.Int32(n)}
			if k, ok := intProp(nv["NewerNoncurrentVersions"]); ok {
				rule.NoncurrentVersionExpiration.NewerNoncurrentVersions = aws.Int32(k)
			}
		}
		out = append(out, rule)
	}
	return out, nil
}

// IAM roles.

func (s *Service) createRole(ctx context.Context, st *stack, r *resource, props map[string]any) (instance, error) {
	name := str(props["RoleName"])
	if name == "" {
		name = physicalName(st.Name, r.LogicalID, 64)
	}
	in := &iam.CreateRoleInput{RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(document(props["AssumeRolePolicyDocument"])),
		Path: optStr(props, "Path"), Description: optStr(props, "Description"), Tags: iamTags(props["Tags"])}
	if n, ok := intProp(props["MaxSessionDuration"]); ok {
		in.MaxSessionDuration = aws.Int32(n)
	}
	if props["AssumeRolePolicyDocument"] == nil {
		return instance{}, errors.New("Properties validation failed for resource: #: required key [AssumeRolePolicyDocument] not found")
	}
	out, err := s.cfg.IAM.CreateRole(ctx, in)
	if err != nil {
		return instance{}, serviceError("Iam", err)
	}
	inst := instance{Physical: name, Attrs: map[string]string{"Arn": aws.ToString(out.Role.Arn), "RoleId": aws.ToString(out.Role.RoleId)}}
	if err := s.rolePolicies(ctx, name, nil, props); err != nil {
		return inst, err
	}
	return inst, nil
}

func iamTags(v any) []iamtypes.Tag {
	var out []iamtypes.Tag
	for _, e := range list(v) {
		m, _ := e.(map[string]any)
		out = append(out, iamtypes.Tag{Key: aws.String(scalarString(m["Key"])), Value: aws.String(scalarString(m["Value"]))})
	}
	return out
}

func inlinePolicies(props map[string]any) map[string]string {
	out := map[string]string{}
	for _, e := range list(props["Policies"]) {
		m, _ := e.(map[string]any)
		out[str(m["PolicyName"])] = document(m["PolicyDocument"])
	}
	return out
}

// rolePolicies brings a role's inline and managed policies from one set of properties to another.
func (s *Service) rolePolicies(ctx context.Context, name string, from, to map[string]any) error {
	before, after := inlinePolicies(from), inlinePolicies(to)
	for _, p := range slices.Sorted(maps.Keys(after)) {
		if before[p] == after[p] {
			continue
		}
		if _, err := s.cfg.IAM.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String(p), PolicyDocument: aws.String(after[p])}); err != nil {
			return serviceError("Iam", err)
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			if _, err := s.cfg.IAM.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String(p)}); err != nil && !notFound(err, "NoSuchEntity") {
				return serviceError("Iam", err)
			}
		}
	}
	was, now := strList(from["ManagedPolicyArns"]), strList(to["ManagedPolicyArns"])
	for _, arn := range now {
		if !slices.Contains(was, arn) {
			if _, err := s.cfg.IAM.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String(name), PolicyArn: aws.String(arn)}); err != nil {
				return serviceError("Iam", err)
			}
		}
	}
	for _, arn := range was {
		if !slices.Contains(now, arn) {
			if _, err := s.cfg.IAM.DetachRolePolicy(ctx, &iam.DetachRolePolicyInput{RoleName: aws.String(name), PolicyArn: aws.String(arn)}); err != nil && !notFound(err, "NoSuchEntity") {
				return serviceError("Iam", err)
			}
		}
	}
	return nil
}

func (s *Service) updateRole(ctx context.Context, r *resource, from, to map[string]any) (map[string]string, error) {
	name := r.Physical
	if !reflectEqual(from["AssumeRolePolicyDocument"], to["AssumeRolePolicyDocument"]) {
		if _, err := s.cfg.IAM.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String(name),
			PolicyDocument: aws.String(document(to["AssumeRolePolicyDocument"]))}); err != nil {
			return nil, serviceError("Iam", err)
		}
	}
	if !sameExcept(pick(from, "Description", "MaxSessionDuration"), pick(to, "Description", "MaxSessionDuration")) {
		in := &iam.UpdateRoleInput{RoleName: aws.String(name), Description: aws.String(str(to["Description"])), MaxSessionDuration: aws.Int32(3600)}
		if n, ok := intProp(to["MaxSessionDuration"]); ok {
			in.MaxSessionDuration = aws.Int32(n)
		}
		if _, err := s.cfg.IAM.UpdateRole(ctx, in); err != nil {
			return nil, serviceError("Iam", err)
		}
	}
	if !reflectEqual(from["Tags"], to["Tags"]) {
		tags, gone := tagChanges(from["Tags"], to["Tags"])
		if len(gone) > 0 {
			if _, err := s.cfg.IAM.UntagRole(ctx, &iam.UntagRoleInput{RoleName: aws.String(name), TagKeys: gone}); err != nil {
				return nil, serviceError("Iam", err)
			}
		}
		if len(tags) > 0 {
			if _, err := s.cfg.IAM.TagRole(ctx, &iam.TagRoleInput{RoleName: aws.String(name), Tags: tags}); err != nil {
				return nil, serviceError("Iam", err)
			}
		}
	}
	if err := s.rolePolicies(ctx, name, from, to); err != nil {
		return nil, err
	}
	return maps.Clone(r.Attrs), nil
}

// deleteRole removes a role's policies, then the role, as CloudFormation's handler does.
func (s *Service) deleteRole(ctx context.Context, name string) error {
	pols, err := s.cfg.IAM.ListRolePolicies(ctx, &iam.ListRolePoliciesInput{RoleName: aws.String(name)})
	if notFound(err, "NoSuchEntity") {
		return nil
	}
	if err != nil {
		return serviceError("Iam", err)
	}
	for _, p := range pols.PolicyNames {
		if _, err := s.cfg.IAM.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String(p)}); err != nil {
			return serviceError("Iam", err)
		}
	}
	att, err := s.cfg.IAM.ListAttachedRolePolicies(ctx, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(name)})
	if err != nil {
		return serviceError("Iam", err)
	}
	for _, p := range att.AttachedPolicies {
		if _, err := s.cfg.IAM.DetachRolePolicy(ctx, &iam.DetachRolePolicyInput{RoleName: aws.String(name), PolicyArn: p.PolicyArn}); err != nil {
			return serviceError("Iam", err)
		}
	}
	if _, err := s.cfg.IAM.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String(name)}); err != nil && !notFound(err, "NoSuchEntity") {
		return serviceError("Iam", err)
	}
	return nil
}

// tagChanges is what a tags update does: the tags to (re)set and the keys no longer there.
func tagChanges(from, to any) ([]iamtypes.Tag, []string) {
	tags := iamTags(to)
	var gone []string
	for _, t := range iamTags(from) {
		if !slices.ContainsFunc(tags, func(x iamtypes.Tag) bool { return aws.ToString(x.Key) == aws.ToString(t.Key) }) {
			gone = append(gone, aws.ToString(t.Key))
		}
	}
	return tags, gone
}

// IAM OIDC providers.

// updateOIDC changes a provider in place, as CloudFormation does (only its Url replaces it):
// thumbprints replaced whole, client ids added and removed, tags set and removed.
func (s *Service) updateOIDC(ctx context.Context, r *resource, from, to map[string]any) (map[string]string, error) {
	arn := aws.String(r.Physical)
	if !reflectEqual(from["ThumbprintList"], to["ThumbprintList"]) {
		if _, err := s.cfg.IAM.UpdateOpenIDConnectProviderThumbprint(ctx, &iam.UpdateOpenIDConnectProviderThumbprintInput{OpenIDConnectProviderArn: arn,
			ThumbprintList: strList(to["ThumbprintList"])}); err != nil {
			return nil, serviceError("Iam", err)
		}
	}
	was, now := strList(from["ClientIdList"]), strList(to["ClientIdList"])
	for _, id := range now {
		if !slices.Contains(was, id) {
			if _, err := s.cfg.IAM.AddClientIDToOpenIDConnectProvider(ctx, &iam.AddClientIDToOpenIDConnectProviderInput{OpenIDConnectProviderArn: arn, ClientID: aws.String(id)}); err != nil {
				return nil, serviceError("Iam", err)
			}
		}
	}
	for _, id := range was {
		if !slices.Contains(now, id) {
			if _, err := s.cfg.IAM.RemoveClientIDFromOpenIDConnectProvider(ctx, &iam.RemoveClientIDFromOpenIDConnectProviderInput{OpenIDConnectProviderArn: arn, ClientID: aws.String(id)}); err != nil {
				return nil, serviceError("Iam", err)
			}
		}
	}
	if !reflectEqual(from["Tags"], to["Tags"]) {
		tags, gone := tagChanges(from["Tags"], to["Tags"])
		if len(gone) > 0 {
			if _, err := s.cfg.IAM.UntagOpenIDConnectProvider(ctx, &iam.UntagOpenIDConnectProviderInput{OpenIDConnectProviderArn: arn, TagKeys: gone}); err != nil {
				return nil, serviceError("Iam", err)
			}
		}
		if len(tags) > 0 {
			if _, err := s.cfg.IAM.TagOpenIDConnectProvider(ctx, &iam.TagOpenIDConnectProviderInput{OpenIDConnectProviderArn: arn, Tags: tags}); err != nil {
				return nil, serviceError("Iam", err)
			}
		}
	}
	return maps.Clone(r.Attrs), nil
}

func (s *Service) createOIDC(ctx context.Context, props map[string]any) (instance, error) {
	out, err := s.cfg.IAM.CreateOpenIDConnectProvider(ctx, &iam.CreateOpenIDConnectProviderInput{Url: optStr(props, "Url"),
		ClientIDList: strList(props["ClientIdList"]), ThumbprintList: strList(props["ThumbprintList"]), Tags: iamTags(props["Tags"])})
	if err != nil {
		return instance{}, serviceError("Iam", err)
	}
	arn := aws.ToString(out.OpenIDConnectProviderArn)
	return instance{Physical: arn, Attrs: map[string]string{"Arn": arn}}, nil
}

// Lambda function URLs.

func urlCors(v any) *lambdatypes.Cors {
	m, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	c := &lambdatypes.Cors{AllowHeaders: strList(m["AllowHeaders"]), AllowMethods: strList(m["AllowMethods"]), AllowOrigins: strList(m["AllowOrigins"]),
		ExposeHeaders: strList(m["ExposeHeaders"])}
	if b, ok := m["AllowCredentials"]; ok {
		c.AllowCredentials = aws.Bool(b == true || str(b) == "true")
	}
	if n, ok := intProp(m["MaxAge"]); ok {
		c.MaxAge = aws.Int32(n)
	}
	return c
}

func (s *Service) createURL(ctx context.Context, props map[string]any) (instance, error) {
	out, err := s.cfg.Lambda.CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{FunctionName: optStr(props, "TargetFunctionArn"),
		Qualifier: optStr(props, "Qualifier"), AuthType: lambdatypes.FunctionUrlAuthType(str(props["AuthType"])), Cors: urlCors(props["Cors"]),
		InvokeMode: lambdatypes.InvokeMode(str(props["InvokeMode"]))})
	if err != nil {
		return instance{}, handlerError(err)
	}
	arn := aws.ToString(out.FunctionArn)
	return instance{Physical: arn, Attrs: map[string]string{"FunctionArn": arn, "FunctionUrl": aws.ToString(out.FunctionUrl)}}, nil
}

func (s *Service) updateURL(ctx context.Context, r *resource, to map[string]any) (map[string]string, error) {
	in := &lambda.UpdateFunctionUrlConfigInput{FunctionName: optStr(to, "TargetFunctionArn"), Qualifier: optStr(to, "Qualifier"),
		AuthType: lambdatypes.FunctionUrlAuthType(str(to["AuthType"])), InvokeMode: lambdatypes.InvokeMode(str(to["InvokeMode"])),
		Cors: urlCors(to["Cors"])}
	if in.Cors == nil {
		in.Cors = &lambdatypes.Cors{}
	}
	if in.InvokeMode == "" {
		in.InvokeMode = lambdatypes.InvokeModeBuffered
	}
	if _, err := s.cfg.Lambda.UpdateFunctionUrlConfig(ctx, in); err != nil {
		return nil, handlerError(err)
	}
	return maps.Clone(r.Attrs), nil
}

// EventBridge Scheduler's schedules and groups. A schedule's Ref is its name, Fn::GetAtt Arn its
// ARN; a group's Ref is its name. A schedule's Target takes Arn, RoleArn, Input, RetryPolicy and
// DeadLetterConfig (the sandbox's Scheduler invokes Lambda targets).

func scheduleTarget(v any) (*schedtypes.Target, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("Properties validation failed for resource: #: required key [Target] not found")
	}
	for k := range m {
		if !slices.Contains([]string{"Arn", "RoleArn", "Input", "RetryPolicy", "DeadLetterConfig"}, k) {
			return nil, fmt.Errorf("Properties validation failed for resource: #/Target: extraneous key [%s] is not permitted (the Aviary sandbox provisions a schedule's target with Arn, RoleArn, Input, RetryPolicy and DeadLetterConfig)", k)
		}
	}
	t := &schedtypes.Target{Arn: optStr(m, "Arn"), RoleArn: optStr(m, "RoleArn"), Input: optStr(m, "Input")}
	if rp, ok := m["RetryPolicy"].(map[string]any); ok {
		t.RetryPolicy = &schedtypes.RetryPolicy{}
		if n, ok := intProp(rp["MaximumEventAgeInSeconds"]); ok {
			t.RetryPolicy.MaximumEventAgeInSeconds = aws.Int32(n)
		}
		if n, ok := intProp(rp["MaximumRetryAttempts"]); ok {
			t.RetryPolicy.MaximumRetryAttempts = aws.Int32(n)
		}
	}
	if dl, ok := m["DeadLetterConfig"].(map[string]any); ok {
		t.DeadLetterConfig = &schedtypes.DeadLetterConfig{Arn: optStr(dl, "Arn")}
	}
	return t, nil
}

func flexibleWindow(v any) *schedtypes.FlexibleTimeWindow {
	m, _ := v.(map[string]any)
	w := &schedtypes.FlexibleTimeWindow{Mode: schedtypes.FlexibleTimeWindowMode(str(m["Mode"]))}
	if n, ok := intProp(m["MaximumWindowInMinutes"]); ok {
		w.MaximumWindowInMinutes = aws.Int32(n)
	}
	return w
}

// dateProp reads a StartDate or EndDate (ISO 8601).
func dateProp(p map[string]any, k string) (*time.Time, error) {
	v := str(p[k])
	if v == "" {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return nil, fmt.Errorf("Properties validation failed for resource: #/%s: %q is not an ISO 8601 date-time", k, v)
	}
	return &t, nil
}

// scheduleSpec is the part of CreateScheduleInput and UpdateScheduleInput that props give.
type scheduleSpec struct {
	target     *schedtypes.Target
	start, end *time.Time
}

func readSchedule(props map[string]any) (scheduleSpec, error) {
	var sp scheduleSpec
	var err error
	if sp.target, err = scheduleTarget(props["Target"]); err != nil {
		return sp, err
	}
	if sp.start, err = dateProp(props, "StartDate"); err != nil {
		return sp, err
	}
	sp.end, err = dateProp(props, "EndDate")
	return sp, err
}

func (s *Service) createSchedule(ctx context.Context, st *stack, r *resource, props map[string]any) (instance, error) {
	name := str(props["Name"])
	if name == "" {
		name = physicalName(st.Name, r.LogicalID, 64)
	}
	sp, err := readSchedule(props)
	if err != nil {
		return instance{}, err
	}
	out, err := s.cfg.Scheduler.CreateSchedule(ctx, &scheduler.CreateScheduleInput{Name: aws.String(name), GroupName: optStr(props, "GroupName"),
		Description: optStr(props, "Description"), ScheduleExpression: optStr(props, "ScheduleExpression"),
		ScheduleExpressionTimezone: optStr(props, "ScheduleExpressionTimezone"), StartDate: sp.start, EndDate: sp.end,
		FlexibleTimeWindow: flexibleWindow(props["FlexibleTimeWindow"]), State: schedtypes.ScheduleState(str(props["State"])), Target: sp.target})
	if err != nil {
		return instance{}, serviceError("Scheduler", err)
	}
	return instance{Physical: name, Attrs: map[string]string{"Arn": aws.ToString(out.ScheduleArn)}}, nil
}

func (s *Service) updateSchedule(ctx context.Context, r *resource, to map[string]any) (map[string]string, error) {
	sp, err := readSchedule(to)
	if err != nil {
		return nil, err
	}
	out, err := s.cfg.Scheduler.UpdateSchedule(ctx, &scheduler.UpdateScheduleInput{Name: aws.String(r.Physical), GroupName: optStr(to, "GroupName"),
		Description: optStr(to, "Description"), ScheduleExpression: optStr(to, "ScheduleExpression"),
		ScheduleExpressionTimezone: optStr(to, "ScheduleExpressionTimezone"), StartDate: sp.start, EndDate: sp.end,
		FlexibleTimeWindow: flexibleWindow(to["FlexibleTimeWindow"]), State: schedtypes.ScheduleState(str(to["State"])), Target: sp.target})
	if err != nil {
		return nil, serviceError("Scheduler", err)
	}
	return map[string]string{"Arn": aws.ToString(out.ScheduleArn)}, nil
}

func (s *Service) deleteSchedule(ctx context.Context, name string, props map[string]any) error {
	_, err := s.cfg.Scheduler.DeleteSchedule(ctx, &scheduler.DeleteScheduleInput{Name: aws.String(name), GroupName: optStr(props, "GroupName")})
	if err != nil && !notFound(err, "ResourceNotFoundException") {
		return serviceError("Scheduler", err)
	}
	return nil
}

func (s *Service) createGroup(ctx context.Context, st *stack, r *resource, props map[string]any) (instance, error) {
	name := str(props["Name"])
	if name == "" {
		name = physicalName(st.Name, r.LogicalID, 64)
	}
	var tags []schedtypes.Tag
	for _, e := range list(props["Tags"]) {
		m, _ := e.(map[string]any)
		tags = append(tags, schedtypes.Tag{Key: aws.String(scalarString(m["Key"])), Value: aws.String(scalarString(m["Value"]))})
	}
	out, err := s.cfg.Scheduler.CreateScheduleGroup(ctx, &scheduler.CreateScheduleGroupInput{Name: aws.String(name), Tags: tags})
	if err != nil {
		return instance{}, serviceError("Scheduler", err)
	}
	return instance{Physical: name, Attrs: map[string]string{"Arn": aws.ToString(out.ScheduleGroupArn)}}, nil
}

func (s *Service) deleteGroup(ctx context.Context, name string) error {
	_, err := s.cfg.Scheduler.DeleteScheduleGroup(ctx, &scheduler.DeleteScheduleGroupInput{Name: aws.String(name)})
	if err != nil && !notFound(err, "ResourceNotFoundException") {
		return serviceError("Scheduler", err)
	}
	return nil
}
