package lambda

import (
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

var runtimes = map[string]bool{
	"provided.al2023": true, "provided.al2": true, "provided": true,
	"nodejs18.x": true, "nodejs20.x": true, "nodejs22.x": true, "nodejs24.x": true,
	"python3.9": true, "python3.10": true, "python3.11": true, "python3.12": true, "python3.13": true, "python3.14": true,
	"java11": true, "java17": true, "java21": true, "java25": true, "java8.al2": true,
	"dotnet8": true, "dotnet10": true, "ruby3.2": true, "ruby3.3": true, "ruby3.4": true, "go1.x": true,
}

// fetchCode reads code from a FunctionCode: the inline zip, or an object in the sandbox's S3.
func (s *Service) fetchCode(c functionCode) ([]byte, *APIError) {
	hasZip := len(c.ZipFile) > 0
	hasS3 := c.S3Bucket != nil || c.S3Key != nil
	switch {
	case c.ImageURI != nil:
		return nil, invalidParam("Please don't provide ImageUri when updating a function with packageType Zip.")
	case hasZip && hasS3:
		return nil, invalidParam("Please provide a source for function code.")
	case hasZip:
		return c.ZipFile, nil
	case hasS3:
		if c.S3Bucket == nil || c.S3Key == nil {
			return nil, invalidParam("Please provide a source for function code.")
		}
		if s.cfg.Objects == nil {
			return nil, invalidParam("Error occurred while GetObject. S3 Error Code: NoSuchBucket. S3 Error Message: The specified bucket does not exist")
		}
		ver := ""
		if c.S3ObjectVersion != nil {
			ver = *c.S3ObjectVersion
		}
		b, err := s.cfg.Objects.GetObject(*c.S3Bucket, *c.S3Key, ver)
		if err != nil {
			code, msg := "InternalError", err.Error()
			if oe, ok := err.(*ObjectError); ok {
				code, msg = oe.Code, oe.Message
			}
			return nil, invalidParam("Error occurred while GetObject. S3 Error Code: %s. S3 Error Message: %s", code, msg)
		}
		return b, nil
	default:
		return nil, invalidParam("Please provide a source for function code.")
	}
}

// CreateFunction creates a function whose $LATEST is Pending for UpdateDelay.
func (s *Service) createFunction(in createFunctionInput) (functionConfiguration, *APIError) {
	name, q, err := parseFunctionName(in.FunctionName)
	if err != nil {
		return functionConfiguration{}, err
	}
	if q != "" {
		return functionConfiguration{}, invalidParam("Unsupported FunctionName: qualified names cannot be created.")
	}
	if in.PackageType == packageImage {
		return s.createImageFunction(name, in)
	}
	if in.PackageType != "" && in.PackageType != packageZip {
		return functionConfiguration{}, validation("packageType", in.PackageType, "Member must satisfy enum value set: [Zip, Image]")
	}
	if in.Code != nil && in.Code.ImageURI != nil {
		return functionConfiguration{}, invalidParam("Please don't provide ImageUri when creating a function with packageType Zip.")
	}
	if in.Runtime == "" || in.Handler == "" {
		return functionConfiguration{}, invalidParam("Runtime and Handler are mandatory parameters for functions created with deployment packages.")
	}
	if !runtimes[in.Runtime] {
		return functionConfiguration{}, invalidParam("Value %s at 'runtime' failed to satisfy constraint: Member must satisfy enum value set", in.Runtime)
	}
	if in.Role == "" || !strings.HasPrefix(in.Role, "arn:") || !strings.Contains(in.Role, ":role/") {
		return functionConfiguration{}, validation("role", in.Role, `Member must satisfy regular expression pattern: arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+`)
	}
	if in.Code == nil {
		return functionConfiguration{}, invalidParam("Please provide a source for function code.")
	}
	v := &version{
		Version: latest, Runtime: in.Runtime, Role: in.Role, Handler: in.Handler,
		Timeout: 3, MemorySize: 128, Tracing: "PassThrough", Architectures: []string{"x86_64"},
		Ephemeral: 512, PackageType: "Zip",
		Logging: loggingConfig{LogFormat: "Text", LogGroup: "/aws/lambda/" + name},
	}
	if aerr := applyConfig(v, configChange{
		Description: in.Description, Timeout: in.Timeout, MemorySize: in.MemorySize, Environment: in.Environment,
		TracingConfig: in.TracingConfig, EphemeralStorage: in.EphemeralStorage, LoggingConfig: in.LoggingConfig,
		Layers: layersOf(in.Layers),
	}); aerr != nil {
		return functionConfiguration{}, aerr
	}
	if err := checkArchitectures(in.Architectures); err != nil {
		return functionConfiguration{}, err
	}
	if len(in.Architectures) > 0 {
		v.Architectures = slices.Clone(in.Architectures)
	}
	zipBytes, aerr := s.fetchCode(*in.Code)
	if aerr != nil {
		return functionConfiguration{}, aerr
	}
	if aerr := checkZip(zipBytes); aerr != nil {
		return functionConfiguration{}, aerr
	}
	key, sha, ferr := s.code.put(zipBytes)
	if ferr != nil {
		return functionConfiguration{}, apiErr("ServiceException", "store code: %v", ferr)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Now()
	if _, exists := s.fns[name]; exists {
		return functionConfiguration{}, conflict("Function already exist: %s", name)
	}
	v.CodeSha256, v.CodeKey, v.CodeSize = sha, key, int64(len(zipBytes))
	v.LastModified, v.RevisionID = now, newRevisionID()
	v.RunKey, v.Generation = key, 1
	v.State, v.StateReason, v.StateReasonCode = statePending, "The function is being created.", "Creating"
	v.ReadyAt = now.Add(s.cfg.UpdateDelay)
	v.PendingRevisionNew = true // AWS gives the function a new RevisionId when it becomes Active
	f := &function{Name: name, Latest: v, Versions: map[string]*version{}, Aliases: map[string]*alias{}, Tags: maps.Clone(in.Tags)}
	s.fns[name] = f
	f.settle(now)
	out := s.configuration(f, v, "")
	if in.Publish {
		pv := s.publish(f, nil, now)
		out = s.configuration(f, pv, pv.Version)
	}
	s.save()
	return out, nil
}

// layersOf is CreateFunction's Layers as a change: absent changes nothing.
func layersOf(l []string) *[]string {
	if l == nil {
		return nil
	}
	return &l
}

// checkArchitectures: at most one, x86_64 or arm64.
func checkArchitectures(a []string) *APIError {
	if len(a) > 1 || len(a) == 1 && a[0] != "x86_64" && a[0] != "arm64" {
		return validation("architectures", strings.Join(a, ","), "Member must have length less than or equal to 1 and satisfy enum value set: [x86_64, arm64]")
	}
	return nil
}

type configChange struct {
	Role, Handler, Runtime, Description *string
	Timeout, MemorySize                 *int
	Environment                         *environment
	TracingConfig                       *tracingConfig
	EphemeralStorage                    *ephemeralStorage
	LoggingConfig                       *loggingConfig
	Layers                              *[]string
}

var (
	layerARNRE = regexp.MustCompile(`^arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\d{12}:layer:[a-zA-Z0-9-_]+:[0-9]+$`)
	envKeyRE   = regexp.MustCompile(`^[a-zA-Z]([a-zA-Z0-9_])+$`)
)

func applyConfig(v *version, c configChange) *APIError {
	if c.Timeout != nil && (*c.Timeout < 1 || *c.Timeout > 900) {
		return validation("timeout", strconv.Itoa(*c.Timeout), "Member must have value less than or equal to 900")
	}
	if c.MemorySize != nil && (*c.MemorySize < 128 || *c.MemorySize > 10240) {
		return validation("memorySize", strconv.Itoa(*c.MemorySize), "Member must have value greater than or equal to 128 and less than or equal to 10240")
	}
	if c.Description != nil && len(*c.Description) > 256 {
		return validation("description", *c.Description, "Member must have length less than or equal to 256")
	}
	if c.Runtime != nil && !runtimes[*c.Runtime] {
		return invalidParam("Value %s at 'runtime' failed to satisfy constraint: Member must satisfy enum value set", *c.Runtime)
	}
	if c.EphemeralStorage != nil && (c.EphemeralStorage.Size < 512 || c.EphemeralStorage.Size > 10240) {
		return validation("ephemeralStorage.size", strconv.Itoa(c.EphemeralStorage.Size), "Member must have value greater than or equal to 512 and less than or equal to 10240")
	}
	if c.Layers != nil {
		if len(*c.Layers) > 5 {
			return invalidParam("Cannot reference more than 5 layers.")
		}
		for _, l := range *c.Layers {
			if len(l) > 140 || !layerARNRE.MatchString(l) {
				return validation("layers", l, "Member must satisfy regular expression pattern: arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\\d{12}:layer:[a-zA-Z0-9-_]+:[0-9]+")
			}
		}
	}
	if c.Environment != nil {
		total := 0
		for k, val := range c.Environment.Variables {
			if !envKeyRE.MatchString(k) {
				// Keys are sensitive: AWS's message names no value. A key is at least two characters.
				return apiErr("ValidationException", "1 validation error detected: Value at 'environment.variables' failed to satisfy constraint: Map keys must satisfy constraint: [Member must satisfy regular expression pattern: [a-zA-Z]([a-zA-Z0-9_])+]")
			}
			total += len(k) + len(val)
			if strings.HasPrefix(k, "AWS_") && reservedEnv[k] {
				return invalidParam("Lambda was unable to configure your environment variables because the environment variables you have provided contains reserved keys that are currently not supported for modification. Reserved keys used in this request: %s", k)
			}
		}
		if total > 4096 {
			return invalidParam("Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit. String measured: %d", total)
		}
	}
	if c.Role != nil {
		v.Role = *c.Role
	}
	if c.Handler != nil {
		v.Handler = *c.Handler
	}
	if c.Runtime != nil {
		v.Runtime = *c.Runtime
	}
	if c.Description != nil {
		v.Description = *c.Description
	}
	if c.Timeout != nil {
		v.Timeout = *c.Timeout
	}
	if c.MemorySize != nil {
		v.MemorySize = *c.MemorySize
	}
	if c.Environment != nil {
		v.Env = maps.Clone(c.Environment.Variables)
	}
	if c.Layers != nil {
		v.Layers = slices.Clone(*c.Layers)
	}
	if c.TracingConfig != nil && c.TracingConfig.Mode != "" {
		v.Tracing = c.TracingConfig.Mode
	}
	if c.EphemeralStorage != nil {
		v.Ephemeral = c.EphemeralStorage.Size
	}
	if c.LoggingConfig != nil {
		if c.LoggingConfig.LogFormat != "" {
			v.Logging.LogFormat = c.LoggingConfig.LogFormat
		}
		if c.LoggingConfig.LogGroup != "" {
			v.Logging.LogGroup = c.LoggingConfig.LogGroup
		}
		v.Logging.ApplicationLogLevel = c.LoggingConfig.ApplicationLogLevel
		v.Logging.SystemLogLevel = c.LoggingConfig.SystemLogLevel
	}
	return nil
}

// reservedEnv are the variables Lambda sets itself and refuses in a function's Environment.
var reservedEnv = map[string]bool{
	"AWS_REGION": true, "AWS_DEFAULT_REGION": true, "AWS_EXECUTION_ENV": true, "AWS_LAMBDA_FUNCTION_NAME": true,
	"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": true, "AWS_LAMBDA_FUNCTION_VERSION": true, "AWS_LAMBDA_INITIALIZATION_TYPE": true,
	"AWS_LAMBDA_LOG_GROUP_NAME": true, "AWS_LAMBDA_LOG_STREAM_NAME": true, "AWS_ACCESS_KEY": true,
	"AWS_ACCESS_KEY_ID": true, "AWS_SECRET_ACCESS_KEY": true, "AWS_SESSION_TOKEN": true,
	"AWS_LAMBDA_RUNTIME_API": true,
}

func (s *Service) lookup(raw string) (*function, string, *APIError) {
	name, q, err := parseFunctionName(raw)
	if err != nil {
		return nil, "", err
	}
	f, ok := s.fns[name]
	if !ok {
		return nil, "", notFound("Function not found: %s", s.functionARN(name))
	}
	if f.settle(s.cfg.Now()) {
		s.save() // a settled state (and its new RevisionId) outlives a restart
	}
	return f, q, nil
}

// getFunction answers GetFunction and GetFunctionConfiguration.
func (s *Service) getFunction(raw, qualifier string) (getFunctionOutput, *APIError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, q, err := s.lookup(raw)
	if err != nil {
		return getFunctionOutput{}, err
	}
	if q, err = mergeQualifier(q, qualifier); err != nil {
		return getFunctionOutput{}, err
	}
	v, a, err := s.resolve(f, q)
	if err != nil {
		return getFunctionOutput{}, err
	}
	arnQ := ""
	switch {
	case a != nil:
		arnQ = a.Name
	case v.Version != latest:
		arnQ = v.Version
	}
	out := getFunctionOutput{
		Configuration: s.configuration(f, v, arnQ),
		Code:          codeLocation{RepositoryType: "S3", Location: s.cfg.BaseURL + "/_aviary/lambda/code/" + v.CodeKey + ".zip"},
	}
	if v.PackageType == packageImage {
		out.Code = codeLocation{RepositoryType: "ECR", ImageURI: v.ImageURI, ResolvedImageURI: v.ResolvedImageURI}
	}
	if q == "" {
		out.Tags = maps.Clone(f.Tags)
		if out.Tags == nil {
			out.Tags = map[string]string{}
		}
	}
	if f.Reserved != nil {
		out.Concurrency = &concurrencyOutput{ReservedConcurrentExecutions: f.Reserved}
	}
	return out, nil
}

// CodeZip returns the zip stored under a hex key, for GetFunction's code location.
func (s *Service) CodeZip(key string) ([]byte, error) { return s.code.get(key) }

func checkRevision(want *string, have string, kind string) *APIError {
	if want != nil && *want != have {
		return preconditionFailed("The Revision Id provided does not match the latest Revision Id. Call the %s API to retrieve the latest Revision Id", kind)
	}
	return nil
}

// changeable finds the function a change to $LATEST names, and checks it may change now: the
// name is unqualified, no update is in progress, and the RevisionId precondition (if any) holds.
func (s *Service) changeable(raw, op string, revision *string) (*function, *APIError) {
	f, q, err := s.lookup(raw)
	if err == nil && q != "" {
		err = invalidParam("Unsupported qualifier: %s acts on $LATEST only.", op)
	}
	if err == nil {
		err = s.busy(f)
	}
	if err == nil {
		err = checkRevision(revision, f.Latest.RevisionID, "GetFunction/GetAlias")
	}
	return f, err
}

// unqualified finds the function an alias operation names: aliases belong to the unqualified
// function.
func (s *Service) unqualified(raw string) (*function, *APIError) {
	f, q, err := s.lookup(raw)
	if err == nil && q != "" {
		err = invalidParam("Unsupported qualifier: aliases belong to the unqualified function.")
	}
	return f, err
}

func (s *Service) updateFunctionCode(raw string, in updateFunctionCodeInput) (functionConfiguration, *APIError) {
	s.mu.Lock()
	f0, err := s.changeable(raw, "UpdateFunctionCode", in.RevisionID)
	isImage := err == nil && f0.Latest.PackageType == packageImage
	s.mu.Unlock()
	if err != nil {
		return functionConfiguration{}, err
	}
	if isImage {
		return s.updateImageCode(raw, in)
	}
	if err := checkArchitectures(in.Architectures); err != nil {
		return functionConfiguration{}, err
	}
	zipBytes, err := s.fetchCode(in.functionCode)
	if err != nil {
		return functionConfiguration{}, err
	}
	if err := checkZip(zipBytes); err != nil {
		return functionConfiguration{}, err
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	// The code was fetched without the lock: check again that nothing moved meanwhile.
	f, err := s.changeable(raw, "UpdateFunctionCode", in.RevisionID)
	if err != nil {
		return functionConfiguration{}, err
	}
	now := s.cfg.Now()
	if in.DryRun {
		v := f.Latest.clone()
		v.CodeSha256, v.CodeSize = sha256Base64(zipBytes), int64(len(zipBytes))
		return s.configuration(f, v, ""), nil
	}
	key, sha, ferr := s.code.put(zipBytes)
	if ferr != nil {
		return functionConfiguration{}, apiErr("ServiceException", "store code: %v", ferr)
	}
	v := f.Latest
	if len(in.Architectures) > 0 {
		v.Architectures = slices.Clone(in.Architectures)
	}
	v.CodeSha256, v.CodeKey, v.CodeSize = sha, key, int64(len(zipBytes))
	s.beginUpdate(f, now)
	out := s.configuration(f, v, "")
	if in.Publish {
		pv := s.publish(f, nil, now)
		out = s.configuration(f, pv, pv.Version)
	}
	s.save()
	return out, nil
}

// beginUpdate marks $LATEST as changed: a new RevisionId, LastUpdateStatus InProgress until
// UpdateDelay passes, after which invocations run the new code and config.
func (s *Service) beginUpdate(f *function, now time.Time) {
	v := f.Latest
	v.LastModified, v.RevisionID = now, newRevisionID()
	v.LastUpdate, v.LastUpdateReason, v.LastUpdateCode = updateInProgress, "The function is being created.", "Creating"
	v.PendingRunKey, v.PendingGeneration = v.CodeKey, v.Generation+1
	v.PendingRevisionNew = true
	v.ReadyAt = now.Add(s.cfg.UpdateDelay)
	v.settle(now)
}

func (s *Service) updateFunctionConfiguration(raw string, in updateFunctionConfigurationInput) (functionConfiguration, *APIError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := s.changeable(raw, "UpdateFunctionConfiguration", in.RevisionID)
	if err != nil {
		return functionConfiguration{}, err
	}
	next := f.Latest.clone()
	if next.PackageType == packageImage {
		// An image brings its own runtime, handler and files.
		switch {
		case in.Layers != nil:
			return functionConfiguration{}, invalidParam("Lambda layers are not supported for functions created with container images.")
		case in.Runtime != nil || in.Handler != nil:
			return functionConfiguration{}, invalidParam("Please don't provide Handler or Runtime or Layer when the intended function PackageType is Image.")
		}
	}
	if err := applyConfig(next, configChange{
		Role: in.Role, Handler: in.Handler, Runtime: in.Runtime, Description: in.Description,
		Timeout: in.Timeout, MemorySize: in.MemorySize, Environment: in.Environment,
		TracingConfig: in.TracingConfig, EphemeralStorage: in.EphemeralStorage, LoggingConfig: in.LoggingConfig,
		Layers: in.Layers,
	}); err != nil {
		return functionConfiguration{}, err
	}
	if in.ImageConfig != nil {
		if next.PackageType != packageImage {
			return functionConfiguration{}, invalidParam("ImageConfig is supported only for functions with packageType Image.")
		}
		if err := checkImageConfig(in.ImageConfig); err != nil {
			return functionConfiguration{}, err
		}
		next.ImageConfig = cloneImageConfig(in.ImageConfig)
	}
	f.Latest = next
	s.beginUpdate(f, s.cfg.Now())
	s.save()
	return s.configuration(f, next, ""), nil
}

func (s *Service) publishVersion(raw string, in publishVersionInput) (functionConfiguration, *APIError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := s.changeable(raw, "PublishVersion", in.RevisionID)
	if err == nil && in.CodeSha256 != nil && *in.CodeSha256 != f.Latest.CodeSha256 {
		err = invalidParam("CodeSHA256 (%s) is different from current CodeSHA256 in $LATEST (%s). Please try again with the CodeSHA256 in $LATEST.", *in.CodeSha256, f.Latest.CodeSha256)
	}
	if err != nil {
		return functionConfiguration{}, err
	}
	v := s.publish(f, in.Description, s.cfg.Now())
	s.save()
	return s.configuration(f, v, v.Version), nil
}

// publish snapshots $LATEST as a new version, unless nothing changed since the last one was
// published: then that version is returned, as AWS does.
func (s *Service) publish(f *function, description *string, now time.Time) *version {
	fp := f.Latest.fingerprint()
	if last := f.lastPublished(); last != nil && last.Version == f.PublishedVersion && f.Published == fp {
		return last
	}
	v := f.Latest.clone()
	f.LastVersion++
	v.Version = strconv.Itoa(f.LastVersion)
	v.RevisionID = newRevisionID()
	v.LastModified = now
	v.LastUpdate, v.LastUpdateReason, v.LastUpdateCode = updateSuccessful, "", ""
	if description != nil {
		v.Description = *description
	}
	v.RunKey, v.PendingRunKey = v.CodeKey, ""
	v.PendingRevisionNew = false
	if f.Latest.LastUpdate == updateInProgress || f.Latest.State == statePending {
		// Published from an update still settling: the version is Pending until it settles.
		v.State, v.StateReason, v.StateReasonCode = statePending, "The function is being created.", "Creating"
		v.ReadyAt = f.Latest.ReadyAt
	} else {
		v.State, v.StateReason, v.StateReasonCode = stateActive, "", ""
		v.ReadyAt = time.Time{}
	}
	f.Versions[v.Version] = v
	f.Published, f.PublishedVersion = fp, v.Version
	f.Latest.RevisionID = newRevisionID() // publishing changes $LATEST's RevisionId too, as on AWS
	return v
}

func (s *Service) listVersions(raw, marker string, maxItems int) (listVersionsOutput, *APIError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, q, err := s.lookup(raw)
	if err == nil && q != "" {
		err = invalidParam("Unsupported qualifier: ListVersionsByFunction lists every version of the function.")
	}
	if err != nil {
		return listVersionsOutput{}, err
	}
	all := []functionConfiguration{s.configuration(f, f.Latest, latest)}
	for _, v := range f.sortedVersions() {
		all = append(all, s.configuration(f, v, v.Version))
	}
	// ListVersionsByFunction answers at most 50 items a page, even if MaxItems is higher.
	page, next, err := paginate(all, marker, min(maxItems, 50))
	if err != nil {
		return listVersionsOutput{}, err
	}
	return listVersionsOutput{Versions: page, NextMarker: next}, nil
}

func (s *Service) listFunctions(marker string, maxItems int, allVersions bool) (listFunctionsOutput, *APIError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Now()
	names := slices.Sorted(maps.Keys(s.fns))
	var all []functionConfiguration
	for _, n := range names {
		f := s.fns[n]
		f.settle(now)
		all = append(all, s.configuration(f, f.Latest, ""))
		if allVersions {
			for _, v := range f.sortedVersions() {
				all = append(all, s.configuration(f, v, v.Version))
			}
		}
	}
	// ListFunctions answers at most 50 items a page, even if MaxItems is higher.
	page, next, err := paginate(all, marker, min(maxItems, 50))
	if err != nil {
		return listFunctionsOutput{}, err
	}
	if page == nil {
		page = []functionConfiguration{}
	}
	return listFunctionsOutput{Functions: page, NextMarker: next}, nil
}

// paginate pages a list as Lambda's Marker/MaxItems do: at most 50 items unless MaxItems says
// otherwise, and an opaque marker to continue from.
func paginate[T any](all []T, marker string, maxItems int) ([]T, *string, *APIError) {
	start := 0
	if marker != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(marker, "aviary-"))
		if err != nil || !strings.HasPrefix(marker, "aviary-") || n < 0 || n > len(all) {
			return nil, nil, invalidParam("Invalid Marker: %s", marker)
		}
		start = n
	}
	if maxItems <= 0 {
		maxItems = 50
	}
	end := min(start+maxItems, len(all))
	var next *string
	if end < len(all) {
		m := "aviary-" + strconv.Itoa(end)
		next = &m
	}
	return all[start:end], next, nil
}

func (s *Service) deleteFunction(raw, qualifier string) *APIError {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, q, err := s.lookup(raw)
	if err != nil {
		return err
	}
	if q, err = mergeQualifier(q, qualifier); err != nil {
		return err
	}
	switch {
	case q == "":
		for _, v := range f.sortedVersions() {
			if err := s.checkReplicated(f, v.Version); err != nil {
				return err
			}
		}
		delete(s.fns, f.Name)
		s.exec.retire(f.Name, "")
	case q == latest:
		return invalidParam("$LATEST version cannot be deleted without deleting the function.")
	case !versionRE.MatchString(q):
		return invalidParam("Deletion of aliases is not currently supported.")
	default:
		if _, ok := f.Versions[q]; !ok {
			return nil // AWS answers 204 for a version that does not exist
		}
		if err := s.checkReplicated(f, q); err != nil {
			return err
		}
		if refs := f.aliasesReferencing(q); len(refs) > 0 {
			return conflict("Unable to delete version because the following aliases reference it: [%s]", strings.Join(refs, ", "))
		}
		delete(f.Versions, q)
		delete(f.Provisioned, q) // the version's provisioned concurrency goes with it
		s.exec.retire(f.Name, q)
	}
	s.save()
	return nil
}

// checkReplicated refuses to delete a version CloudFront replicates, in AWS's words.
func (s *Service) checkReplicated(f *function, version string) *APIError {
	if s.cfg.Replicas == nil || !s.cfg.Replicas.Replicated(s.functionARN(f.Name), version) {
		return nil
	}
	return invalidParam("Lambda was unable to delete %s because it is a replicated function. Please see our documentation for Deleting Lambda@Edge Functions and Replicas.",
		s.qualifiedARN(f.Name, version))
}

// HasVersion reports whether the function that the unqualified ARN names has the published
// version; CloudFront asks it about a Lambda@Edge association.
func (s *Service) HasVersion(functionARN, version string) bool {
	i := strings.LastIndex(functionARN, ":")
	if i < 0 || functionARN != s.functionARN(functionARN[i+1:]) {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.fns[functionARN[i+1:]]
	if !ok {
		return false
	}
	_, ok = f.Versions[version]
	return ok
}

func (s *Service) createAlias(raw string, in createAliasInput) (aliasConfiguration, *APIError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := s.unqualified(raw)
	if err != nil {
		return aliasConfiguration{}, err
	}
	if err := checkAliasName(in.Name); err != nil {
		return aliasConfiguration{}, err
	}
	if in.FunctionVersion == "" {
		return aliasConfiguration{}, validation("functionVersion", "", "Member must not be null")
	}
	var weights map[string]float64
	if in.RoutingConfig != nil {
		weights = in.RoutingConfig.AdditionalVersionWeights
	}
	if err := s.checkRouting(f, in.FunctionVersion, weights); err != nil {
		return aliasConfiguration{}, err
	}
	if _, exists := f.Aliases[in.Name]; exists {
		return aliasConfiguration{}, conflict("Alias already exists: %s", s.qualifiedARN(f.Name, in.Name))
	}
	a := &alias{Name: in.Name, FunctionVersion: in.FunctionVersion, Weights: maps.Clone(weights), RevisionID: newRevisionID()}
	if in.Description != nil {
		a.Description = *in.Description
	}
	f.Aliases[a.Name] = a
	s.save()
	return s.aliasConfiguration(f, a), nil
}

func checkAliasName(name string) *APIError {
	if !aliasNameRE.MatchString(name) || versionRE.MatchString(name) {
		return validation("name", name, `Member must satisfy regular expression pattern: (?!^[0-9]+$)([a-zA-Z0-9-_]+)`)
	}
	return nil
}

func (s *Service) aliasOf(raw, name, missing string) (*function, *alias, *APIError) {
	f, err := s.unqualified(raw)
	if err != nil {
		return nil, nil, err
	}
	if err := checkAliasName(name); err != nil {
		return nil, nil, err
	}
	a, ok := f.Aliases[name]
	if !ok {
		return nil, nil, notFound(missing, s.qualifiedARN(f.Name, name))
	}
	return f, a, nil
}

func (s *Service) getAlias(raw, name string) (aliasConfiguration, *APIError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, a, err := s.aliasOf(raw, name, "Cannot find alias arn: %s")
	if err != nil {
		return aliasConfiguration{}, err
	}
	return s.aliasConfiguration(f, a), nil
}

func (s *Service) updateAlias(raw, name string, in updateAliasInput) (aliasConfiguration, *APIError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, a, err := s.aliasOf(raw, name, "Alias not found: %s")
	if err != nil {
		return aliasConfiguration{}, err
	}
	if err := checkRevision(in.RevisionID, a.RevisionID, "GetFunction/GetAlias"); err != nil {
		return aliasConfiguration{}, err
	}
	primary, weights := a.FunctionVersion, a.Weights
	if in.FunctionVersion != nil {
		primary = *in.FunctionVersion
	}
	if in.RoutingConfig != nil {
		weights = in.RoutingConfig.AdditionalVersionWeights
	}
	if err := s.checkRouting(f, primary, weights); err != nil {
		return aliasConfiguration{}, err
	}
	a.FunctionVersion, a.Weights = primary, maps.Clone(weights)
	if len(a.Weights) == 0 {
		a.Weights = nil
	}
	if in.Description != nil {
		a.Description = *in.Description
	}
	a.RevisionID = newRevisionID()
	s.save()
	return s.aliasConfiguration(f, a), nil
}

func (s *Service) deleteAlias(raw, name string) *APIError {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := s.unqualified(raw)
	if err != nil {
		return err
	}
	if err := checkAliasName(name); err != nil {
		return err
	}
	// AWS answers 204 for an alias that does not exist.
	delete(f.Aliases, name)
	s.save()
	return nil
}

func (s *Service) listAliases(raw, functionVersion, marker string, maxItems int) (listAliasesOutput, *APIError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := s.unqualified(raw)
	if err != nil {
		return listAliasesOutput{}, err
	}
	var all []aliasConfiguration
	for _, n := range slices.Sorted(maps.Keys(f.Aliases)) {
		a := f.Aliases[n]
		if functionVersion != "" && a.FunctionVersion != functionVersion {
			if _, ok := a.Weights[functionVersion]; !ok {
				continue
			}
		}
		all = append(all, s.aliasConfiguration(f, a))
	}
	page, next, err := paginate(all, marker, maxItems)
	if err != nil {
		return listAliasesOutput{}, err
	}
	if page == nil {
		page = []aliasConfiguration{}
	}
	return listAliasesOutput{Aliases: page, NextMarker: next}, nil
}

func (s *Service) putConcurrency(raw string, in concurrencyInput) (concurrencyOutput, *APIError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, q, err := s.lookup(raw)
	if err == nil && q != "" {
		err = invalidParam("Unsupported qualifier: concurrency is set on the unqualified function.")
	}
	if err != nil {
		return concurrencyOutput{}, err
	}
	if in.ReservedConcurrentExecutions == nil {
		return concurrencyOutput{}, validation("reservedConcurrentExecutions", "null", "Member must not be null")
	}
	n := *in.ReservedConcurrentExecutions
	if n < 0 {
		return concurrencyOutput{}, validation("reservedConcurrentExecutions", strconv.Itoa(n), "Member must have value greater than or equal to 0")
	}
	// The reservation may not leave less than the floor unreserved; the function's own current
	// reservation is given back first.
	unreserved := s.unreservedLocked()
	if f.Reserved != nil {
		unreserved += *f.Reserved
	}
	if floor := s.unreservedFloor(); unreserved-n < floor {
		return concurrencyOutput{}, invalidParam("Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [%d].", floor)
	}
	f.Reserved = &n
	s.save()
	return concurrencyOutput{ReservedConcurrentExecutions: &n}, nil
}

func (s *Service) getConcurrency(raw string) (concurrencyOutput, *APIError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, _, err := s.lookup(raw)
	if err != nil {
		return concurrencyOutput{}, err
	}
	return concurrencyOutput{ReservedConcurrentExecutions: f.Reserved}, nil
}

func (s *Service) deleteConcurrency(raw string) *APIError {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, _, err := s.lookup(raw)
	if err != nil {
		return err
	}
	f.Reserved = nil
	s.save()
	return nil
}

func (s *Service) accountSettings() accountSettingsOutput {
	s.mu.Lock()
	defer s.mu.Unlock()
	var total int64
	for _, f := range s.fns {
		total += f.Latest.CodeSize
		for _, v := range f.Versions {
			total += v.CodeSize
		}
	}
	return accountSettingsOutput{
		AccountLimit: accountLimit{
			TotalCodeSize: 80530636800, CodeSizeUnzipped: 262144000, CodeSizeZipped: 52428800,
			ConcurrentExecutions: s.cfg.AccountConcurrency, UnreservedConcurrentExecutions: s.unreservedLocked(),
		},
		AccountUsage: accountUsage{TotalCodeSize: total, FunctionCount: int64(len(s.fns))},
	}
}

// unreservedLocked is the account's unreserved concurrency: its limit less every function's
// reservation. The caller holds s.mu.
func (s *Service) unreservedLocked() int {
	n := s.cfg.AccountConcurrency
	for _, f := range s.fns {
		if f.Reserved != nil {
			n -= *f.Reserved
		}
	}
	return max(n, 0)
}

// unreservedFloor is the unreserved concurrency PutFunctionConcurrency must leave: 100, as AWS
// documents, or the whole limit of an account allowed less.
func (s *Service) unreservedFloor() int {
	return min(100, s.cfg.AccountConcurrency)
}
