package lambda

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

const (
	latest = "$LATEST"

	stateActive  = "Active"
	statePending = "Pending"

	updateSuccessful = "Successful"
	updateInProgress = "InProgress"

	lastModifiedLayout = "2006-01-02T15:04:05.000-0700"
)

// function is one Lambda function: its unpublished $LATEST, its published versions and aliases.
// Exported fields are what --data persists.
type function struct {
	Name        string
	Latest      *version
	Versions    map[string]*version
	LastVersion int // the highest number ever published; numbers are never reused
	Aliases     map[string]*alias
	Reserved    *int
	Tags        map[string]string
	// Provisioned holds provisioned-concurrency configurations by qualifier (version or alias).
	Provisioned map[string]*provisioned
	// Published is the fingerprint of $LATEST when PublishedVersion was published from it:
	// PublishVersion on an unchanged function returns that version, as AWS does.
	Published        string
	PublishedVersion string
	// Policy is the resource-based policy's statements, by qualifier ("" is the unqualified
	// function): see permissions.go.
	Policy map[string][]statement `json:",omitempty"`
	// URLs are the function URLs' configurations, by qualifier ("" is the unqualified
	// function): see urls.go.
	URLs map[string]*urlConfig `json:",omitempty"`
}

// version is $LATEST or a published version. Published versions are immutable except for their
// state settling from Pending to Active.
type version struct {
	Version       string
	Runtime       string
	Role          string
	Handler       string
	Description   string
	Timeout       int
	MemorySize    int
	Env           map[string]string
	Tracing       string
	Architectures []string
	// Layers are the layer version ARNs, in order (the sandbox keeps no layer contents).
	Layers      []string `json:",omitempty"`
	Ephemeral   int
	Logging     loggingConfig
	PackageType string

	CodeSha256   string // base64 of the zip's SHA-256, as AWS reports it (an image's: its digest in hex)
	CodeKey      string // hex SHA-256: where the code store keeps the zip
	CodeSize     int64
	LastModified time.Time
	RevisionID   string

	State              string
	StateReason        string
	StateReasonCode    string
	LastUpdate         string
	LastUpdateReason   string
	LastUpdateCode     string
	ReadyAt            time.Time // when a Pending state or InProgress update settles
	RunKey             string    // the code invocations run; lags CodeKey while an update is in progress
	Generation         int64     // bumped on every change that needs fresh execution environments
	PendingGeneration  int64
	PendingRunKey      string
	PendingRevisionNew bool

	// ImageURI is an image function's Code.ImageUri as given, ResolvedImageURI the same pinned
	// to the digest it named then (CodeKey is "image:" and it); ImageConfig overrides the image's
	// entrypoint, command and working directory.
	ImageURI         string       `json:",omitempty"`
	ResolvedImageURI string       `json:",omitempty"`
	ImageConfig      *imageConfig `json:",omitempty"`
}

type alias struct {
	Name            string
	FunctionVersion string
	Description     string
	Weights         map[string]float64
	RevisionID      string
}

func newRevisionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// settle applies a due state transition: Pending becomes Active, an InProgress update becomes
// Successful and its code becomes the code invocations run. It reports whether anything changed.
func (v *version) settle(now time.Time) bool {
	if v.ReadyAt.IsZero() || now.Before(v.ReadyAt) {
		return false
	}
	v.ReadyAt = time.Time{}
	if v.State == statePending {
		v.State, v.StateReason, v.StateReasonCode = stateActive, "", ""
		if v.Version == latest {
			v.LastUpdate = updateSuccessful
		}
	}
	if v.LastUpdate == updateInProgress {
		v.LastUpdate, v.LastUpdateReason, v.LastUpdateCode = updateSuccessful, "", ""
	}
	if v.PendingRunKey != "" {
		v.RunKey, v.PendingRunKey = v.PendingRunKey, ""
		v.Generation = v.PendingGeneration
	}
	if v.PendingRevisionNew {
		// AWS gives the function a new RevisionId when an update finishes, so a RevisionId read
		// before the update settled no longer matches.
		v.RevisionID = newRevisionID()
		v.PendingRevisionNew = false
	}
	return true
}

func (f *function) settle(now time.Time) bool {
	changed := f.Latest.settle(now)
	for _, v := range f.Versions {
		if v.settle(now) {
			changed = true
		}
	}
	return changed
}

// fingerprint identifies what a published version captures of $LATEST: code and configuration.
func (v *version) fingerprint() string {
	keys := slices.Sorted(maps.Keys(v.Env))
	var b strings.Builder
	fmt.Fprintf(&b, "%s|%s|%s|%s|%s|%d|%d|%s|%v|%d|%+v|", v.CodeSha256, v.Runtime, v.Role, v.Handler,
		v.Description, v.Timeout, v.MemorySize, v.Tracing, v.Architectures, v.Ephemeral, v.Logging)
	fmt.Fprintf(&b, "%v|", v.Layers)
	for _, k := range keys {
		fmt.Fprintf(&b, "%q=%q;", k, v.Env[k])
	}
	if v.ImageConfig != nil {
		fmt.Fprintf(&b, "|image:%q", *v.ImageConfig)
	}
	return b.String()
}

func sha256Base64(b []byte) string {
	sum := sha256.Sum256(b)
	return base64.StdEncoding.EncodeToString(sum[:])
}

func (v *version) clone() *version {
	c := *v
	c.Env = maps.Clone(v.Env)
	c.Architectures = slices.Clone(v.Architectures)
	c.ImageConfig = cloneImageConfig(v.ImageConfig)
	c.Layers = slices.Clone(v.Layers)
	return &c
}

// updating reports why $LATEST cannot take another change now, if it cannot.
func (s *Service) busy(f *function) *APIError {
	v := f.Latest
	switch {
	case v.State == statePending:
		return conflict("The operation cannot be performed at this time. The function is currently in the following state: Pending")
	case v.LastUpdate == updateInProgress:
		return conflict("The operation cannot be performed at this time. An update is in progress for resource: %s", s.functionARN(f.Name))
	}
	return nil
}

func (s *Service) configuration(f *function, v *version, arnQualifier string) functionConfiguration {
	c := functionConfiguration{
		FunctionName:     f.Name,
		FunctionArn:      s.qualifiedARN(f.Name, arnQualifier),
		Runtime:          v.Runtime,
		Role:             v.Role,
		Handler:          v.Handler,
		CodeSize:         v.CodeSize,
		Description:      v.Description,
		Timeout:          v.Timeout,
		MemorySize:       v.MemorySize,
		LastModified:     v.LastModified.UTC().Format(lastModifiedLayout),
		CodeSha256:       v.CodeSha256,
		Version:          v.Version,
		TracingConfig:    tracingConfig{Mode: v.Tracing},
		RevisionID:       v.RevisionID,
		State:            v.State,
		StateReason:      v.StateReason,
		StateReasonCode:  v.StateReasonCode,
		LastUpdateStatus: v.LastUpdate,

		LastUpdateStatusReason:     v.LastUpdateReason,
		LastUpdateStatusReasonCode: v.LastUpdateCode,

		PackageType:      v.PackageType,
		Architectures:    v.Architectures,
		EphemeralStorage: ephemeralStorage{Size: v.Ephemeral},
		SnapStart:        snapStartResponse{ApplyOn: "None", OptimizationStatus: "Off"},
		LoggingConfig:    v.Logging,
	}
	if len(v.Env) > 0 {
		c.Environment = &environment{Variables: v.Env}
	}
	if v.ImageConfig != nil {
		c.ImageConfigResponse = &imageConfigResponse{ImageConfig: *cloneImageConfig(v.ImageConfig)}
	}
	for _, l := range v.Layers {
		c.Layers = append(c.Layers, layerOut{Arn: l})
	}
	if strings.HasPrefix(v.Runtime, "provided") {
		c.RuntimeVersionConfig = &runtimeVersion{RuntimeVersionArn: fmt.Sprintf("arn:aws:lambda:%s::runtime:%s", s.cfg.Region, runtimeVersionID(v.Runtime))}
	}
	return c
}

func runtimeVersionID(runtime string) string {
	// A stable, plausible runtime version id per runtime.
	var h uint64 = 1469598103934665603
	for _, c := range runtime {
		h = (h ^ uint64(c)) * 1099511628211
	}
	return fmt.Sprintf("%016x%016x%016x%016x", h, h*31, h*37, h*41)
}

func (s *Service) aliasConfiguration(f *function, a *alias) aliasConfiguration {
	c := aliasConfiguration{
		AliasArn:        s.qualifiedARN(f.Name, a.Name),
		Name:            a.Name,
		FunctionVersion: a.FunctionVersion,
		Description:     a.Description,
		RevisionID:      a.RevisionID,
	}
	if len(a.Weights) > 0 {
		c.RoutingConfig = &routingConfig{AdditionalVersionWeights: maps.Clone(a.Weights)}
	}
	return c
}

// sortedVersions lists published versions in ascending numeric order.
func (f *function) sortedVersions() []*version {
	vs := slices.Collect(maps.Values(f.Versions))
	sort.Slice(vs, func(i, j int) bool {
		a, _ := strconv.Atoi(vs[i].Version)
		b, _ := strconv.Atoi(vs[j].Version)
		return a < b
	})
	return vs
}

// lastPublished is the highest-numbered version that still exists.
func (f *function) lastPublished() *version {
	vs := f.sortedVersions()
	if len(vs) == 0 {
		return nil
	}
	return vs[len(vs)-1]
}

// aliasesReferencing lists, sorted, the aliases that route any traffic to version v.
func (f *function) aliasesReferencing(v string) []string {
	var names []string
	for _, a := range f.Aliases {
		if a.FunctionVersion == v {
			names = append(names, a.Name)
			continue
		}
		if _, ok := a.Weights[v]; ok {
			names = append(names, a.Name)
		}
	}
	sort.Strings(names)
	return names
}

// resolve finds what a qualifier names: "" and $LATEST the unpublished version, a number a
// published version, anything else an alias.
func (s *Service) resolve(f *function, qualifier string) (*version, *alias, *APIError) {
	switch {
	case qualifier == "" || qualifier == latest:
		return f.Latest, nil, nil
	case versionRE.MatchString(qualifier):
		if v, ok := f.Versions[qualifier]; ok {
			return v, nil, nil
		}
		return nil, nil, notFound("Function not found: %s", s.qualifiedARN(f.Name, qualifier))
	default:
		a, ok := f.Aliases[qualifier]
		if !ok {
			return nil, nil, notFound("Function not found: %s", s.qualifiedARN(f.Name, qualifier))
		}
		v, _, err := s.resolve(f, a.FunctionVersion)
		return v, a, err
	}
}

// checkRouting validates an alias's target as AWS does: the primary version exists; at most one
// additional version, published, not $LATEST, not the primary, weighted within [0, 1]; and no
// weights at all on an alias whose primary is $LATEST.
func (s *Service) checkRouting(f *function, primary string, weights map[string]float64) *APIError {
	if primary != latest {
		if !versionRE.MatchString(primary) {
			return validation("functionVersion", primary, `Member must satisfy regular expression pattern: (\$LATEST|[0-9]+)`)
		}
		if _, ok := f.Versions[primary]; !ok {
			return notFound("Function not found: %s", s.qualifiedARN(f.Name, primary))
		}
	}
	if len(weights) == 0 {
		return nil
	}
	// Request validation first, as AWS validates the request's shape before its meaning.
	for _, v := range slices.Sorted(maps.Keys(weights)) {
		w := weights[v]
		shown := fmt.Sprintf("{%s=%s}", v, strconv.FormatFloat(w, 'f', -1, 64))
		switch {
		case !versionRE.MatchString(v):
			return validation("routingConfig.additionalVersionWeights", shown,
				"Map keys must satisfy constraint: [Member must have length less than or equal to 1024, Member must have length greater than or equal to 1, Member must satisfy regular expression pattern: [0-9]+, Member must not be null]")
		case w < 0 || w > 1 || w != w:
			return validation("routingConfig.additionalVersionWeights", shown,
				"Map value must satisfy constraint: [Member must have value less than or equal to 1.0, Member must have value greater than or equal to 0.0, Member must not be null]")
		}
	}
	if len(weights) > 1 {
		return invalidParam("Number of items in AdditionalVersionWeights cannot be greater than 1")
	}
	if primary == latest {
		return invalidParam("$LATEST is not supported for an alias pointing to more than 1 version")
	}
	for v := range weights {
		if v == primary {
			return invalidParam("Invalid function version %s. Function version %s is already included in routing configuration.", v, v)
		}
		extra, ok := f.Versions[v]
		if !ok {
			return notFound("Function not found: %s", s.qualifiedARN(f.Name, v))
		}
		// Both versions must have the same execution role (AWS's weighted-alias rules).
		if p := f.Versions[primary]; p.Role != extra.Role {
			return invalidParam("Versions %s and %s of the function have different execution roles; an alias can route traffic only between versions with the same execution role.", primary, v)
		}
	}
	return nil
}
