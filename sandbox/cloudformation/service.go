// Package cloudformation is the sandbox's AWS CloudFormation: stacks of Lambda functions,
// versions, aliases, permissions and function URLs, DynamoDB tables, S3 buckets, IAM roles and
// OIDC providers, EventBridge Scheduler schedules and schedule groups, and nested stacks, deployed from JSON or YAML templates
// (TemplateBody, or TemplateURL in the sandbox's S3) over the query protocol, with the
// asynchronous statuses, events and rollbacks AWS documents — including a rollback that cannot
// finish (UPDATE_ROLLBACK_FAILED) and ContinueUpdateRollback.
//
// The rule it keeps: CloudFormation is a client of the sandbox's Lambda, as it is of AWS's. It
// provisions through the Lambda API over HTTP (the SDK, against the sandbox's own URL), so its
// calls meet the same validation, quota, faults and CloudTrail record as anyone's, and a
// rollback updates a function back in place — it never deletes and recreates one that existed
// before the update, so ARNs, roles and permissions survive.
//
// Resources are provisioned as AWS does: each once those it depends on are done, independent
// ones at the same time; after a failure nothing new starts, what is under way finishes, and the
// rollback (one resource at a time) returns what changed. Nested stacks are updated with every
// update of their parent and cleaned up with it.
//
// Tables, buckets, roles, providers, schedules and schedule groups are provisioned the same way,
// through the sandbox's DynamoDB (a forward to its upstream: without one, a table fails saying
// so), S3, IAM and EventBridge Scheduler. A
// property the sandbox does not provision fails its resource with a reason naming it, as an
// invalid property does on AWS, except these, accepted and recorded without effect:
// a table's PointInTimeRecoverySpecification, SSESpecification, DeletionProtectionEnabled and
// TableClass (and its TimeToLiveSpecification when the upstream, like dynalite, has no Time to
// Live); a bucket's PublicAccessBlockConfiguration, BucketEncryption, OwnershipControls and Tags.
// In place, a table's BillingMode, ProvisionedThroughput and TimeToLiveSpecification change (not
// its indexes or stream), and an OIDC provider's ClientIdList, ThumbprintList and Tags change.
// Templates with the IAM resources CreateStack documents need CAPABILITY_IAM (CAPABILITY_NAMED_IAM
// for named ones); an OIDC provider is not one of them.
//
// Where it is simpler than AWS, and says so: templates have no Transforms or Rules; GetTemplate answers, while an update rolls back or is stuck, the template it rolls back
// to; a stack that was mid-operation when the sandbox stopped is left failed
// (UPDATE_ROLLBACK_FAILED for an update, so that ContinueUpdateRollback can finish it).
package cloudformation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/aviary-deploy/aviary/internal/atomicfile"
)

//go:generate go run ../protocol/errorsgen -model cloudformation/2010-05-15 -o model_gen.go

// LambdaAPI is the Lambda client CloudFormation provisions functions through.
type LambdaAPI interface {
	CreateFunction(ctx context.Context, in *lambda.CreateFunctionInput, opts ...func(*lambda.Options)) (*lambda.CreateFunctionOutput, error)
	GetFunction(ctx context.Context, in *lambda.GetFunctionInput, opts ...func(*lambda.Options)) (*lambda.GetFunctionOutput, error)
	UpdateFunctionCode(ctx context.Context, in *lambda.UpdateFunctionCodeInput, opts ...func(*lambda.Options)) (*lambda.UpdateFunctionCodeOutput, error)
	UpdateFunctionConfiguration(ctx context.Context, in *lambda.UpdateFunctionConfigurationInput, opts ...func(*lambda.Options)) (*lambda.UpdateFunctionConfigurationOutput, error)
	DeleteFunction(ctx context.Context, in *lambda.DeleteFunctionInput, opts ...func(*lambda.Options)) (*lambda.DeleteFunctionOutput, error)
	ListVersionsByFunction(ctx context.Context, in *lambda.ListVersionsByFunctionInput, opts ...func(*lambda.Options)) (*lambda.ListVersionsByFunctionOutput, error)
	PublishVersion(ctx context.Context, in *lambda.PublishVersionInput, opts ...func(*lambda.Options)) (*lambda.PublishVersionOutput, error)
	CreateAlias(ctx context.Context, in *lambda.CreateAliasInput, opts ...func(*lambda.Options)) (*lambda.CreateAliasOutput, error)
	UpdateAlias(ctx context.Context, in *lambda.UpdateAliasInput, opts ...func(*lambda.Options)) (*lambda.UpdateAliasOutput, error)
	DeleteAlias(ctx context.Context, in *lambda.DeleteAliasInput, opts ...func(*lambda.Options)) (*lambda.DeleteAliasOutput, error)
	AddPermission(ctx context.Context, in *lambda.AddPermissionInput, opts ...func(*lambda.Options)) (*lambda.AddPermissionOutput, error)
	RemovePermission(ctx context.Context, in *lambda.RemovePermissionInput, opts ...func(*lambda.Options)) (*lambda.RemovePermissionOutput, error)
	CreateFunctionUrlConfig(ctx context.Context, in *lambda.CreateFunctionUrlConfigInput, opts ...func(*lambda.Options)) (*lambda.CreateFunctionUrlConfigOutput, error)
	UpdateFunctionUrlConfig(ctx context.Context, in *lambda.UpdateFunctionUrlConfigInput, opts ...func(*lambda.Options)) (*lambda.UpdateFunctionUrlConfigOutput, error)
	DeleteFunctionUrlConfig(ctx context.Context, in *lambda.DeleteFunctionUrlConfigInput, opts ...func(*lambda.Options)) (*lambda.DeleteFunctionUrlConfigOutput, error)
}

var _ LambdaAPI = (*lambda.Client)(nil)

// ObjectSource reads TemplateURL objects from the sandbox's S3.
type ObjectSource interface {
	GetObject(bucket, key, versionID string) ([]byte, error)
}

// Config sets up a Service.
type Config struct {
	Region  string
	Account string
	// DataDir keeps stacks across restarts; "" keeps them in memory.
	DataDir string
	Lambda  LambdaAPI
	// DynamoDB, S3 and IAM are the clients tables, buckets, roles and OIDC providers are
	// provisioned through: the sandbox's own, over HTTP, as Lambda is.
	DynamoDB DynamoDBAPI
	S3       S3API
	IAM      IAMAPI
	// Scheduler is the client EventBridge Scheduler's schedules and groups are provisioned
	// through.
	Scheduler SchedulerAPI
	Objects   ObjectSource
	// PollInterval is how often a resource checks whether its function has settled (AWS
	// waits for a function to be Active and its update Successful before going on).
	PollInterval time.Duration
	Now          func() time.Time
	Logger       *slog.Logger
}

// Service is the sandbox's CloudFormation.
type Service struct {
	cfg    Config
	mu     sync.Mutex
	stacks []*stack // every stack ever created, oldest first; deleted ones stay describable by id
	ctx    context.Context
	cancel context.CancelFunc
	ops    sync.WaitGroup
}

// New returns a Service, loading persisted stacks. A stack that was in the middle of an
// operation when the sandbox stopped is left failed, as a stack whose operation could not finish.
func New(cfg Config) (*Service, error) {
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.Account == "" {
		cfg.Account = "000000000000"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 50 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{cfg: cfg, ctx: ctx, cancel: cancel}
	if err := s.load(); err != nil {
		cancel()
		return nil, err
	}
	return s, nil
}

// Close stops the operations under way and waits for them.
func (s *Service) Close() error {
	s.cancel()
	s.ops.Wait()
	return nil
}

// run starts a stack operation in the background.
func (s *Service) run(op func(ctx context.Context)) {
	s.ops.Add(1)
	go func() {
		defer s.ops.Done()
		op(s.ctx)
	}()
}

func (s *Service) statePath() string {
	return filepath.Join(s.cfg.DataDir, "cloudformation", "stacks.json")
}

func (s *Service) load() error {
	if s.cfg.DataDir == "" {
		return nil
	}
	b, err := os.ReadFile(s.statePath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, &s.stacks); err != nil {
		return fmt.Errorf("read %s: %w", s.statePath(), err)
	}
	for _, st := range s.stacks {
		if next, ok := interrupted[st.Status]; ok {
			st.Status, st.Reason = next, "The Aviary sandbox stopped while the operation was in progress."
		}
	}
	return nil
}

// interrupted maps the status of an operation the sandbox stopped in to where it is left.
var interrupted = map[string]string{
	"CREATE_IN_PROGRESS":                           "CREATE_FAILED",
	"ROLLBACK_IN_PROGRESS":                         "ROLLBACK_FAILED",
	"DELETE_IN_PROGRESS":                           "DELETE_FAILED",
	"UPDATE_IN_PROGRESS":                           "UPDATE_ROLLBACK_FAILED",
	"UPDATE_COMPLETE_CLEANUP_IN_PROGRESS":          "UPDATE_COMPLETE",
	"UPDATE_ROLLBACK_IN_PROGRESS":                  "UPDATE_ROLLBACK_FAILED",
	"UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS": "UPDATE_ROLLBACK_COMPLETE",
}

// save persists the stacks; the caller holds s.mu.
func (s *Service) save() {
	if s.cfg.DataDir == "" {
		return
	}
	b, err := json.Marshal(s.stacks)
	if err == nil {
		if err = os.MkdirAll(filepath.Dir(s.statePath()), 0o755); err == nil {
			err = atomicfile.Write(s.statePath(), b)
		}
	}
	if err != nil {
		s.cfg.Logger.Error("persist cloudformation state", "err", err)
	}
}
