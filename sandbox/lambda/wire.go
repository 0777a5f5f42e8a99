package lambda

// Wire shapes of the Lambda REST-JSON API, named and spelled as the botocore model
// (lambda/2015-03-31) names their members. Only the members the sandbox keeps are declared;
// unknown request members are ignored, as AWS ignores members it does not use.

type functionCode struct {
	ZipFile         []byte  `json:"ZipFile,omitempty"`
	S3Bucket        *string `json:"S3Bucket,omitempty"`
	S3Key           *string `json:"S3Key,omitempty"`
	S3ObjectVersion *string `json:"S3ObjectVersion,omitempty"`
	ImageURI        *string `json:"ImageUri,omitempty"`
}

type environment struct {
	Variables map[string]string `json:"Variables"`
}

type tracingConfig struct {
	Mode string `json:"Mode,omitempty"`
}

type ephemeralStorage struct {
	Size int `json:"Size"`
}

type loggingConfig struct {
	LogFormat           string `json:"LogFormat,omitempty"`
	ApplicationLogLevel string `json:"ApplicationLogLevel,omitempty"`
	SystemLogLevel      string `json:"SystemLogLevel,omitempty"`
	LogGroup            string `json:"LogGroup,omitempty"`
}

type createFunctionInput struct {
	FunctionName     string            `json:"FunctionName"`
	Runtime          string            `json:"Runtime"`
	Role             string            `json:"Role"`
	Handler          string            `json:"Handler"`
	Code             *functionCode     `json:"Code"`
	Description      *string           `json:"Description"`
	Timeout          *int              `json:"Timeout"`
	MemorySize       *int              `json:"MemorySize"`
	Publish          bool              `json:"Publish"`
	PackageType      string            `json:"PackageType"`
	Environment      *environment      `json:"Environment"`
	TracingConfig    *tracingConfig    `json:"TracingConfig"`
	Tags             map[string]string `json:"Tags"`
	Architectures    []string          `json:"Architectures"`
	EphemeralStorage *ephemeralStorage `json:"EphemeralStorage"`
	LoggingConfig    *loggingConfig    `json:"LoggingConfig"`
	ImageConfig      *imageConfig      `json:"ImageConfig"`
	Layers           []string          `json:"Layers"`
}

type updateFunctionCodeInput struct {
	functionCode
	Publish       bool     `json:"Publish"`
	DryRun        bool     `json:"DryRun"`
	RevisionID    *string  `json:"RevisionId"`
	Architectures []string `json:"Architectures"`
}

type updateFunctionConfigurationInput struct {
	Role             *string           `json:"Role"`
	Handler          *string           `json:"Handler"`
	Description      *string           `json:"Description"`
	Timeout          *int              `json:"Timeout"`
	MemorySize       *int              `json:"MemorySize"`
	Environment      *environment      `json:"Environment"`
	Runtime          *string           `json:"Runtime"`
	TracingConfig    *tracingConfig    `json:"TracingConfig"`
	RevisionID       *string           `json:"RevisionId"`
	EphemeralStorage *ephemeralStorage `json:"EphemeralStorage"`
	LoggingConfig    *loggingConfig    `json:"LoggingConfig"`
	ImageConfig      *imageConfig      `json:"ImageConfig"`
	// Layers replaces the function's layers (an empty list removes them); absent: unchanged.
	Layers *[]string `json:"Layers"`
}

type publishVersionInput struct {
	CodeSha256  *string `json:"CodeSha256"`
	Description *string `json:"Description"`
	RevisionID  *string `json:"RevisionId"`
}

type routingConfig struct {
	AdditionalVersionWeights map[string]float64 `json:"AdditionalVersionWeights"`
}

type createAliasInput struct {
	Name            string         `json:"Name"`
	FunctionVersion string         `json:"FunctionVersion"`
	Description     *string        `json:"Description"`
	RoutingConfig   *routingConfig `json:"RoutingConfig"`
}

type updateAliasInput struct {
	FunctionVersion *string        `json:"FunctionVersion"`
	Description     *string        `json:"Description"`
	RoutingConfig   *routingConfig `json:"RoutingConfig"`
	RevisionID      *string        `json:"RevisionId"`
}

type concurrencyInput struct {
	ReservedConcurrentExecutions *int `json:"ReservedConcurrentExecutions"`
}

// functionConfiguration is the FunctionConfiguration output shape.
type functionConfiguration struct {
	FunctionName               string            `json:"FunctionName"`
	FunctionArn                string            `json:"FunctionArn"`
	Runtime                    string            `json:"Runtime,omitempty"`
	Role                       string            `json:"Role"`
	Handler                    string            `json:"Handler,omitempty"`
	CodeSize                   int64             `json:"CodeSize"`
	Description                string            `json:"Description"`
	Timeout                    int               `json:"Timeout"`
	MemorySize                 int               `json:"MemorySize"`
	LastModified               string            `json:"LastModified"`
	CodeSha256                 string            `json:"CodeSha256"`
	Version                    string            `json:"Version"`
	Environment                *environment      `json:"Environment,omitempty"`
	TracingConfig              tracingConfig     `json:"TracingConfig"`
	RevisionID                 string            `json:"RevisionId"`
	State                      string            `json:"State"`
	StateReason                string            `json:"StateReason,omitempty"`
	StateReasonCode            string            `json:"StateReasonCode,omitempty"`
	LastUpdateStatus           string            `json:"LastUpdateStatus,omitempty"`
	LastUpdateStatusReason     string            `json:"LastUpdateStatusReason,omitempty"`
	LastUpdateStatusReasonCode string            `json:"LastUpdateStatusReasonCode,omitempty"`
	PackageType                string            `json:"PackageType"`
	Architectures              []string          `json:"Architectures"`
	EphemeralStorage           ephemeralStorage  `json:"EphemeralStorage"`
	SnapStart                  snapStartResponse `json:"SnapStart"`
	RuntimeVersionConfig       *runtimeVersion   `json:"RuntimeVersionConfig,omitempty"`
	LoggingConfig              loggingConfig     `json:"LoggingConfig"`

	// ImageConfigResponse is an image function's ImageConfig.
	ImageConfigResponse *imageConfigResponse `json:"ImageConfigResponse,omitempty"`
	Layers              []layerOut           `json:"Layers,omitempty"`
}

// layerOut is a function's layer as GetFunctionConfiguration reports it.
type layerOut struct {
	Arn      string `json:"Arn"`
	CodeSize int64  `json:"CodeSize"`
}

type snapStartResponse struct {
	ApplyOn            string `json:"ApplyOn"`
	OptimizationStatus string `json:"OptimizationStatus"`
}

type runtimeVersion struct {
	RuntimeVersionArn string `json:"RuntimeVersionArn"`
}

type getFunctionOutput struct {
	Configuration functionConfiguration `json:"Configuration"`
	Code          codeLocation          `json:"Code"`
	Tags          map[string]string     `json:"Tags,omitempty"`
	Concurrency   *concurrencyOutput    `json:"Concurrency,omitempty"`
}

type codeLocation struct {
	RepositoryType   string `json:"RepositoryType"`
	Location         string `json:"Location,omitempty"`
	ImageURI         string `json:"ImageUri,omitempty"`
	ResolvedImageURI string `json:"ResolvedImageUri,omitempty"`
}

type concurrencyOutput struct {
	ReservedConcurrentExecutions *int `json:"ReservedConcurrentExecutions,omitempty"`
}

type aliasConfiguration struct {
	AliasArn        string         `json:"AliasArn"`
	Name            string         `json:"Name"`
	FunctionVersion string         `json:"FunctionVersion"`
	Description     string         `json:"Description"`
	RoutingConfig   *routingConfig `json:"RoutingConfig,omitempty"`
	RevisionID      string         `json:"RevisionId"`
}

type listVersionsOutput struct {
	NextMarker *string                 `json:"NextMarker,omitempty"`
	Versions   []functionConfiguration `json:"Versions"`
}

type listFunctionsOutput struct {
	NextMarker *string                 `json:"NextMarker,omitempty"`
	Functions  []functionConfiguration `json:"Functions"`
}

type listAliasesOutput struct {
	NextMarker *string              `json:"NextMarker,omitempty"`
	Aliases    []aliasConfiguration `json:"Aliases"`
}

type accountSettingsOutput struct {
	AccountLimit accountLimit `json:"AccountLimit"`
	AccountUsage accountUsage `json:"AccountUsage"`
}

type accountLimit struct {
	TotalCodeSize                  int64 `json:"TotalCodeSize"`
	CodeSizeUnzipped               int64 `json:"CodeSizeUnzipped"`
	CodeSizeZipped                 int64 `json:"CodeSizeZipped"`
	ConcurrentExecutions           int   `json:"ConcurrentExecutions"`
	UnreservedConcurrentExecutions int   `json:"UnreservedConcurrentExecutions"`
}

type accountUsage struct {
	TotalCodeSize int64 `json:"TotalCodeSize"`
	FunctionCount int64 `json:"FunctionCount"`
}
