package cloudformation

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// rollbackOpts is how an update of a resource is a rollback: nested stacks roll back (or, when
// continuing, continue their rollback) instead of taking a new template.
type rollbackOpts struct {
	skip       []string
	continuing bool
}

// create provisions a new physical resource.
func (s *Service) create(ctx context.Context, st *stack, r *resource, props map[string]any) (instance, error) {
	if err := checkProps(r, props); err != nil {
		return instance{}, err
	}
	switch r.Type {
	case typeTable:
		return s.createTable(ctx, st, r, props)
	case typeBucket:
		return s.createBucket(ctx, st, r, props)
	case typeRole:
		return s.createRole(ctx, st, r, props)
	case typeOIDC:
		return s.createOIDC(ctx, props)
	case typeURL:
		return s.createURL(ctx, props)
	case typeSchedule:
		return s.createSchedule(ctx, st, r, props)
	case typeGroup:
		return s.createGroup(ctx, st, r, props)
	case typeFunction:
		return s.createFunction(ctx, st, r, props)
	case typeVersion:
		existing := map[string]bool{}
		p := lambda.NewListVersionsByFunctionPaginator(s.cfg.Lambda, &lambda.ListVersionsByFunctionInput{FunctionName: optStr(props, "FunctionName")})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return instance{}, handlerError(err)
			}
			for _, v := range page.Versions {
				existing[aws.ToString(v.Version)] = true
			}
		}
		out, err := s.cfg.Lambda.PublishVersion(ctx, &lambda.PublishVersionInput{
			FunctionName: optStr(props, "FunctionName"), Description: optStr(props, "Description"), CodeSha256: optStr(props, "CodeSha256"),
		})
		if err != nil {
			return instance{}, handlerError(err)
		}
		if v := aws.ToString(out.Version); existing[v] {
			// Lambda answered the version it already has: nothing changed since it was published.
			return instance{}, fmt.Errorf("A version for this Lambda function exists ( %s ). Modify the function to create a new version.", v)
		}
		return instance{Physical: aws.ToString(out.FunctionArn), Attrs: map[string]string{"Version": aws.ToString(out.Version)}}, nil
	case typeAlias:
		out, err := s.cfg.Lambda.CreateAlias(ctx, &lambda.CreateAliasInput{
			FunctionName: optStr(props, "FunctionName"), Name: optStr(props, "Name"), FunctionVersion: optStr(props, "FunctionVersion"),
			Description: optStr(props, "Description"), RoutingConfig: routing(props),
		})
		if err != nil {
			return instance{}, handlerError(err)
		}
		return instance{Physical: aws.ToString(out.AliasArn), Attrs: map[string]string{"AliasArn": aws.ToString(out.AliasArn)}}, nil
	case typePermission:
		id := physicalName(st.Name, r.LogicalID, 100)
		in := &lambda.AddPermissionInput{
			FunctionName: optStr(props, "FunctionName"), StatementId: aws.String(id), Action: optStr(props, "Action"),
			Principal: optStr(props, "Principal"), SourceArn: optStr(props, "SourceArn"), SourceAccount: optStr(props, "SourceAccount"),
			EventSourceToken: optStr(props, "EventSourceToken"), PrincipalOrgID: optStr(props, "PrincipalOrgID"),
		}
		if v := str(props["FunctionUrlAuthType"]); v != "" {
			in.FunctionUrlAuthType = lambdatypes.FunctionUrlAuthType(v)
		}
		if _, err := s.cfg.Lambda.AddPermission(ctx, in); err != nil {
			return instance{}, handlerError(err)
		}
		return instance{Physical: id, Attrs: map[string]string{}}, nil
	case typeStack:
		return s.createNested(ctx, st, r, props)
	}
	return instance{}, fmt.Errorf("unsupported resource type %s", r.Type)
}

// update changes a resource in place from one set of properties to another.
func (s *Service) update(ctx context.Context, st *stack, r *resource, from, to map[string]any, rb *rollbackOpts) (map[string]string, error) {
	if err := checkProps(r, to); err != nil {
		return nil, err
	}
	switch r.Type {
	case typeTable:
		return s.updateTable(ctx, r, from, to)
	case typeBucket:
		return maps.Clone(r.Attrs), s.bucketConfig(ctx, r.Physical, from, to)
	case typeRole:
		return s.updateRole(ctx, r, from, to)
	case typeURL:
		return s.updateURL(ctx, r, to)
	case typeSchedule:
		return s.updateSchedule(ctx, r, to)
	case typeGroup:
		if sameExcept(from, to, "Tags") {
			return maps.Clone(r.Attrs), nil
		}
		return nil, fmt.Errorf("the Aviary sandbox does not update a schedule group's Tags in place")
	case typeOIDC:
		return s.updateOIDC(ctx, r, from, to)
	case typeFunction:
		return maps.Clone(r.Attrs), s.updateFunction(ctx, r.Physical, from, to)
	case typeAlias:
		_, err := s.cfg.Lambda.UpdateAlias(ctx, &lambda.UpdateAliasInput{
			FunctionName: optStr(to, "FunctionName"), Name: optStr(to, "Name"), FunctionVersion: optStr(to, "FunctionVersion"),
			Description: aws.String(str(to["Description"])), RoutingConfig: emptyRouting(routing(to)),
		})
		if err != nil {
			return nil, handlerError(err)
		}
		return maps.Clone(r.Attrs), nil
	case typeStack:
		return s.updateNested(ctx, st, r, to, rb)
	}
	return nil, fmt.Errorf("%s cannot be updated in place", r.Type)
}

// remove deletes a physical resource; one that is already gone counts as deleted.
func (s *Service) remove(ctx context.Context, st *stack, typ, physical string, props map[string]any) error {
	var err error
	switch typ {
	case typeFunction, typeVersion:
		_, err = s.cfg.Lambda.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String(physical)})
	case typeAlias:
		_, err = s.cfg.Lambda.DeleteAlias(ctx, &lambda.DeleteAliasInput{FunctionName: optStr(props, "FunctionName"), Name: optStr(props, "Name")})
	case typePermission:
		_, err = s.cfg.Lambda.RemovePermission(ctx, &lambda.RemovePermissionInput{FunctionName: optStr(props, "FunctionName"), StatementId: aws.String(physical)})
	case typeTable:
		if _, err := s.cfg.DynamoDB.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(physical)}); err != nil && !notFound(err, "ResourceNotFoundException") {
			return serviceError("DynamoDb", err)
		}
		return nil
	case typeBucket:
		if _, err := s.cfg.S3.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(physical)}); err != nil && !notFound(err, "NoSuchBucket") {
			return serviceError("S3", err)
		}
		return nil
	case typeRole:
		return s.deleteRole(ctx, physical)
	case typeOIDC:
		if _, err := s.cfg.IAM.DeleteOpenIDConnectProvider(ctx, &iam.DeleteOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(physical)}); err != nil && !notFound(err, "NoSuchEntity") {
			return serviceError("Iam", err)
		}
		return nil
	case typeSchedule:
		return s.deleteSchedule(ctx, physical, props)
	case typeGroup:
		return s.deleteGroup(ctx, physical)
	case typeURL:
		_, err = s.cfg.Lambda.DeleteFunctionUrlConfig(ctx, &lambda.DeleteFunctionUrlConfigInput{FunctionName: optStr(props, "TargetFunctionArn"), Qualifier: optStr(props, "Qualifier")})
	case typeStack:
		child := s.byID(physical)
		if child == nil || child.Status == deleteComplete {
			return nil
		}
		if err := s.deleteStack(ctx, child); err != nil {
			return fmt.Errorf("Embedded stack %s was not successfully deleted: %w", physical, err)
		}
		return nil
	}
	var nf *lambdatypes.ResourceNotFoundException
	if errors.As(err, &nf) {
		return nil
	}
	if err != nil {
		return handlerError(err)
	}
	return nil
}

func (s *Service) createFunction(ctx context.Context, st *stack, r *resource, props map[string]any) (instance, error) {
	name := str(props["FunctionName"])
	if name == "" {
		name = physicalName(st.Name, r.LogicalID, 64)
	}
	code, err := functionCode(props)
	if err != nil {
		return instance{}, err
	}
	cfg := functionConfig(props)
	in := &lambda.CreateFunctionInput{
		FunctionName: aws.String(name), Code: code, Role: cfg.Role, Runtime: cfg.Runtime, Handler: cfg.Handler,
		Description: cfg.Description, Timeout: cfg.Timeout, MemorySize: cfg.MemorySize, Environment: cfg.Environment,
		TracingConfig: cfg.TracingConfig, EphemeralStorage: cfg.EphemeralStorage, Tags: tags(props),
	}
	for _, a := range list(props["Architectures"]) {
		in.Architectures = append(in.Architectures, lambdatypes.Architecture(scalarString(a)))
	}
	out, err := s.cfg.Lambda.CreateFunction(ctx, in)
	if err != nil {
		return instance{}, handlerError(err)
	}
	if err := s.settle(ctx, name); err != nil {
		return instance{}, err
	}
	return instance{Physical: name, Attrs: map[string]string{"Arn": aws.ToString(out.FunctionArn)}}, nil
}

// updateFunction updates a function's configuration, then its code, as far as they changed,
// waiting for each update to finish as AWS's handler does.
func (s *Service) updateFunction(ctx context.Context, name string, from, to map[string]any) error {
	if !sameExcept(from, to, "Code", "FunctionName", "Tags", "Architectures") {
		_, err := s.cfg.Lambda.UpdateFunctionConfiguration(ctx, functionConfig(to).withName(name))
		if err != nil {
			return handlerError(err)
		}
		if err := s.settle(ctx, name); err != nil {
			return err
		}
	}
	if !reflect.DeepEqual(normalize(map[string]any{"c": from["Code"], "a": from["Architectures"]}), normalize(map[string]any{"c": to["Code"], "a": to["Architectures"]})) {
		code, err := functionCode(to)
		if err != nil {
			return err
		}
		in := &lambda.UpdateFunctionCodeInput{FunctionName: aws.String(name), S3Bucket: code.S3Bucket, S3Key: code.S3Key,
			S3ObjectVersion: code.S3ObjectVersion, ZipFile: code.ZipFile}
		for _, a := range list(to["Architectures"]) {
			in.Architectures = append(in.Architectures, lambdatypes.Architecture(scalarString(a)))
		}
		if _, err := s.cfg.Lambda.UpdateFunctionCode(ctx, in); err != nil {
			return handlerError(err)
		}
		if err := s.settle(ctx, name); err != nil {
			return err
		}
	}
	return nil
}

// settle waits until a function is Active and its last update is no longer in progress. It
// asks GetFunction, as the SDK's waiters do: GetFunction has its own quota, so waiting does not
// spend the control-plane quota that the stack's changes need.
func (s *Service) settle(ctx context.Context, name string) error {
	for {
		got, err := s.cfg.Lambda.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(name)})
		if err != nil {
			return handlerError(err)
		}
		out := got.Configuration
		switch {
		case out.State == lambdatypes.StateFailed:
			return fmt.Errorf("Resource handler returned message: \"%s\" (HandlerErrorCode: NotStabilized)", aws.ToString(out.StateReason))
		case out.LastUpdateStatus == lambdatypes.LastUpdateStatusFailed:
			return fmt.Errorf("Resource handler returned message: \"%s\" (HandlerErrorCode: NotStabilized)", aws.ToString(out.LastUpdateStatusReason))
		case out.State != lambdatypes.StatePending && out.LastUpdateStatus != lambdatypes.LastUpdateStatusInProgress:
			return nil
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

type fnConfig struct {
	lambda.UpdateFunctionConfigurationInput
}

func (c fnConfig) withName(name string) *lambda.UpdateFunctionConfigurationInput {
	in := c.UpdateFunctionConfigurationInput
	in.FunctionName = aws.String(name)
	return &in
}

// functionConfig reads a function's configuration properties; absent ones are set to Lambda's
// defaults, so that removing a property from the template resets it.
func functionConfig(p map[string]any) fnConfig {
	c := fnConfig{lambda.UpdateFunctionConfigurationInput{
		Role: optStr(p, "Role"), Runtime: lambdatypes.Runtime(str(p["Runtime"])), Handler: optStr(p, "Handler"),
		Description: aws.String(str(p["Description"])), Timeout: aws.Int32(3), MemorySize: aws.Int32(128),
		Environment: &lambdatypes.Environment{Variables: map[string]string{}},
	}}
	if n, ok := intProp(p["Timeout"]); ok {
		c.Timeout = aws.Int32(n)
	}
	if n, ok := intProp(p["MemorySize"]); ok {
		c.MemorySize = aws.Int32(n)
	}
	if env, ok := p["Environment"].(map[string]any); ok {
		if vars, ok := env["Variables"].(map[string]any); ok {
			for k, v := range vars {
				c.Environment.Variables[k] = scalarString(v)
			}
		}
	}
	if tc, ok := p["TracingConfig"].(map[string]any); ok {
		c.TracingConfig = &lambdatypes.TracingConfig{Mode: lambdatypes.TracingMode(str(tc["Mode"]))}
	}
	if es, ok := p["EphemeralStorage"].(map[string]any); ok {
		if n, ok := intProp(es["Size"]); ok {
			c.EphemeralStorage = &lambdatypes.EphemeralStorage{Size: aws.Int32(n)}
		}
	}
	return c
}

// functionCode reads Code: an object in S3, or ZipFile source that CloudFormation zips as the
// handler's file (index.js or index.py), as AWS does for inline code.
func functionCode(p map[string]any) (*lambdatypes.FunctionCode, error) {
	c, _ := p["Code"].(map[string]any)
	if c == nil {
		return nil, errors.New("Properties validation failed for resource: #: required key [Code] not found")
	}
	if src, ok := c["ZipFile"].(string); ok {
		file := "index.js"
		if strings.HasPrefix(str(p["Runtime"]), "python") {
			file = "index.py"
		}
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		w, err := zw.Create(file)
		if err == nil {
			_, err = w.Write([]byte(src))
		}
		if err == nil {
			err = zw.Close()
		}
		if err != nil {
			return nil, err
		}
		return &lambdatypes.FunctionCode{ZipFile: buf.Bytes()}, nil
	}
	return &lambdatypes.FunctionCode{S3Bucket: optStr(c, "S3Bucket"), S3Key: optStr(c, "S3Key"), S3ObjectVersion: optStr(c, "S3ObjectVersion")}, nil
}

func routing(p map[string]any) *lambdatypes.AliasRoutingConfiguration {
	rc, _ := p["RoutingConfig"].(map[string]any)
	if rc == nil {
		return nil
	}
	w := map[string]float64{}
	for _, e := range list(rc["AdditionalVersionWeights"]) {
		m, _ := e.(map[string]any)
		f, _ := strconv.ParseFloat(scalarString(m["FunctionWeight"]), 64)
		w[scalarString(m["FunctionVersion"])] = f
	}
	return &lambdatypes.AliasRoutingConfiguration{AdditionalVersionWeights: w}
}

func emptyRouting(rc *lambdatypes.AliasRoutingConfiguration) *lambdatypes.AliasRoutingConfiguration {
	if rc == nil {
		return &lambdatypes.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{}}
	}
	return rc
}

func tags(p map[string]any) map[string]string {
	out := map[string]string{}
	for _, e := range list(p["Tags"]) {
		m, _ := e.(map[string]any)
		out[scalarString(m["Key"])] = scalarString(m["Value"])
	}
	return out
}

func sameExcept(a, b map[string]any, except ...string) bool {
	strip := func(m map[string]any) map[string]any {
		c := maps.Clone(m)
		for _, k := range except {
			delete(c, k)
		}
		return c
	}
	return reflect.DeepEqual(normalize(strip(a)), normalize(strip(b)))
}

func optStr(p map[string]any, k string) *string {
	v, ok := p[k]
	if !ok || v == nil {
		return nil
	}
	return aws.String(scalarString(v))
}

func intProp(v any) (int32, bool) {
	if v == nil {
		return 0, false
	}
	n, err := strconv.Atoi(scalarString(v))
	return int32(n), err == nil
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

// handlerError words a failed Lambda call as CloudFormation's resource handlers report it in a
// resource's status reason.
func handlerError(err error) error {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return err
	}
	status, reqID := 0, ""
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		status, reqID = re.HTTPStatusCode(), re.ServiceRequestID()
	}
	code := "GeneralServiceException"
	switch ae.ErrorCode() {
	case "InvalidParameterValueException", "ValidationException", "InvalidRequestContentException":
		code = "InvalidRequest"
	case "ResourceNotFoundException":
		code = "NotFound"
	case "ResourceConflictException":
		code = "ResourceConflict"
	case "TooManyRequestsException":
		code = "Throttling"
	case "ServiceException":
		code = "ServiceInternalError"
	case "PreconditionFailedException":
		code = "NotUpdatable"
	}
	return fmt.Errorf("Resource handler returned message: \"%s (Service: Lambda, Status Code: %d, Request ID: %s)\" (RequestToken: %s, HandlerErrorCode: %s)",
		ae.ErrorMessage(), status, reqID, uuid(), code)
}

// fetchTemplate reads a TemplateURL from the sandbox's S3. It accepts virtual-hosted
// (https://BUCKET.s3[.REGION].amazonaws.com/KEY) and path-style (https://s3[.REGION].amazonaws.com/BUCKET/KEY,
// or the sandbox's own URL) addresses.
func (s *Service) fetchTemplate(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return "", fmt.Errorf("TemplateURL must be a supported URL.")
	}
	host := u.Hostname()
	path := strings.TrimPrefix(u.Path, "/")
	var bucket, key string
	switch {
	case strings.HasPrefix(host, "s3.") || strings.HasPrefix(host, "s3-") || !strings.Contains(host, ".s3"):
		bucket, key, _ = strings.Cut(path, "/")
	default:
		bucket, key = host[:strings.Index(host, ".s3")], path
	}
	if bucket == "" || key == "" {
		return "", fmt.Errorf("TemplateURL must be a supported URL.")
	}
	// AWS words every unreadable TemplateURL (no bucket, no key, no access) the same way.
	const unreadable = "TemplateURL must reference a valid S3 object to which you have access."
	if s.cfg.Objects == nil {
		return "", errors.New(unreadable)
	}
	b, err := s.cfg.Objects.GetObject(bucket, key, u.Query().Get("versionId"))
	if err != nil {
		s.cfg.Logger.Debug("read TemplateURL", "url", raw, "err", err)
		return "", errors.New(unreadable)
	}
	return string(b), nil
}

// nestedParams reads a nested stack's Parameters property.
func nestedParams(props map[string]any) []parameter {
	m, _ := props["Parameters"].(map[string]any)
	var out []parameter
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = append(out, parameter{ParameterKey: k, ParameterValue: scalarString(m[k])})
	}
	return out
}

func outputsAttrs(st *stack) map[string]string {
	attrs := map[string]string{}
	for _, o := range st.Outputs {
		attrs["Outputs."+o.OutputKey] = o.OutputValue
	}
	return attrs
}

func (s *Service) createNested(ctx context.Context, parent *stack, r *resource, props map[string]any) (instance, error) {
	body, err := s.fetchTemplate(str(props["TemplateURL"]))
	if err != nil {
		return instance{}, err
	}
	t, err := parseTemplate(body)
	if err != nil {
		return instance{}, err
	}
	params, noEcho, err := resolveParams(t, nestedParams(props), nil)
	if err != nil {
		return instance{}, err
	}
	child := s.newStack(physicalName(parent.Name, r.LogicalID, 128), body, params, noEcho, parent)
	s.locked(func() { r.Physical = child.ID })
	s.setStatus(child, createInProgress, userInitiated)
	if err := s.createStack(ctx, child, t); err != nil {
		var f *failure
		reason := err.Error()
		if errors.As(err, &f) {
			reason = fmt.Sprintf("The following resource(s) failed to create: %s. ", f.names())
		}
		return instance{Physical: child.ID}, fmt.Errorf("Embedded stack %s was not successfully created: %s", child.ID, reason)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return instance{Physical: child.ID, Attrs: outputsAttrs(child)}, nil
}

func (s *Service) updateNested(ctx context.Context, parent *stack, r *resource, props map[string]any, rb *rollbackOpts) (map[string]string, error) {
	child := s.byID(r.Physical)
	if child == nil {
		return nil, fmt.Errorf("Embedded stack %s does not exist", r.Physical)
	}
	if rb != nil {
		s.mu.Lock()
		status := child.Status
		s.mu.Unlock()
		switch status {
		case createComplete, updateComplete, updateRollbackComplete:
			// Not changed by this update (it failed before reaching it), or already rolled back.
		case updateCleanup, updateInProgress:
			s.setStatus(child, updateRollbackInProg, "")
			s.rollback(ctx, child, rb.skip, false)
		case updateRollbackFailed:
			if rb.continuing {
				s.continueRollback(ctx, child, rb.skip)
			}
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if child.Status != updateRollbackComplete && child.Status != createComplete && child.Status != updateComplete {
			return nil, fmt.Errorf("Embedded stack %s was not successfully updated. Currently in %s.", child.ID, child.Status)
		}
		return outputsAttrs(child), nil
	}
	body, err := s.fetchTemplate(str(props["TemplateURL"]))
	if err != nil {
		return nil, err
	}
	t, err := parseTemplate(body)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	prev := child.Params
	s.mu.Unlock()
	params, noEcho, err := resolveParams(t, nestedParams(props), prev)
	if err != nil {
		return nil, err
	}
	s.locked(func() {
		child.PrevBody, child.PrevParams = child.Body, child.Params
		child.Body, child.Params, child.NoEcho = body, params, noEcho
		child.Updated = s.cfg.Now()
	})
	s.setStatus(child, updateInProgress, userInitiated)
	if err := s.updateStack(ctx, child, t); err != nil {
		var f *failure
		reason := err.Error()
		if errors.As(err, &f) {
			reason = fmt.Sprintf("The following resource(s) failed to update: %s. ", f.names())
		}
		return nil, fmt.Errorf("Embedded stack %s was not successfully updated. Currently in %s with reason: %s", child.ID, updateRollbackInProg, reason)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return outputsAttrs(child), nil
}
