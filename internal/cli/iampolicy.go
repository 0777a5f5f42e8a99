package cli

import (
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/aviary-deploy/aviary/awsconfig"
	"github.com/aviary-deploy/aviary/iampolicy"
)

type iamPolicyCmd struct {
	manifestFlags
	storeFlags
	Env     string `short:"e" placeholder:"ENV" help:"The environment whose functions the policy covers (required unless --keeper or --recover)."`
	Account string `placeholder:"ID" help:"The AWS account (default: the caller's, from STS)."`
	Region  string `help:"The region (default: the environment's, else the standard chain's)."`
	Format  string `enum:"json,terraform" default:"json" help:"json (an IAM policy document), or terraform (a data \"aws_iam_policy_document\" \"aviary_ci\" block to attach to the CI role)."`
	keeperPolicyFlags
	recoverPolicyFlags
	Controller bool `help:"With -e: print the policy of the environment's controller (aviary controller install, cmd/aviary-controller) instead of CI's: drive its releases, write its own log, be invoked by its schedule."`
}

func (c *iamPolicyCmd) Help() string {
	return `Prints the IAM policy CI needs to release to ENV, and nothing more: the environment's functions
(and their versions and aliases), the artifact prefix, the store's table and, when the environment
has checks, what they read and invoke: CloudWatch metrics (GetMetricData has no resource-level
permissions, so it is on *), the functions' log groups (their default /aws/lambda/NAME: a
function logging to a custom group needs logs:FilterLogEvents on that group too), the named
alarms, the new versions (for smoke invocations; never $LATEST) and the hook functions. For aviary
doctor, gc and prune: the versions and aliases of every environment's functions (gc marks the
artifacts of every environment sharing the bucket), the account's code storage (GetAccountSettings,
on *), the bucket's lifecycle and versioning, DeleteObject under the prefix, the functions'
provisioned concurrency, deleting their versions (only qualified ARNs: never a function), and
reading what else uses a version (event source mappings, on * as IAM allows no narrower, and
CloudFront distributions).

s3:ListBucket is granted only for listings under the prefix (condition s3:prefix). S3 answers
a HeadObject of a missing key with 404 only to a caller with s3:ListBucket on the bucket, which
that condition does not satisfy, so a missing artifact answers 403 Forbidden. Aviary (deploy's
upload, doctor, deploy's readiness check) then lists the key itself (ListObjectsV2 with
Prefix=KEY, which the condition allows) to tell a missing artifact from a forbidden one.

  aviary iam-policy -e production > policy.json
  aviary iam-policy -e production --format terraform > aviary_ci_policy.tf

The Terraform form is the same policy as a data "aws_iam_policy_document" "aviary_ci" block (use
data.aws_iam_policy_document.aviary_ci.json as a role policy). The module in deploy/terraform
holds the same statements written for its variables.

With --keeper it prints instead the policy of the blue/green keeper (cmd/aviary-keeper, aviary
keeper): read the deployment group's deployments, describe Auto Scaling groups and target groups,
and attach only to the replacement groups CodeDeploy creates for the deployment group. Without
--deployment-group it covers every deployment group of the application (without --application, of
every application), and the Attach resource is then every deployment group's replacement groups
(CodeDeploy_*_d-*): pass --deployment-group to keep the keeper's writes to one.

  aviary iam-policy --keeper --application shop --deployment-group shop-prod

With --recover it prints the policy of aviary recover-stack: read the stack and its nested stacks
(STACK and STACK-*), continue the root's rollback, look up CloudTrail's failed UpdateFunctionCode
calls, read the artifact bucket's objects and older versions and put restored ones back, and read
the stack's functions' versions and code. Nothing to delete. (ContinueUpdateRollback runs the
rollback with the caller's rights unless the stack has a service role.)

  aviary iam-policy --recover --stack degap --bucket degap-deploy

With --controller it prints the policy of the environment's controller (aviary controller
install): what driving the environment's releases needs (its functions, reading the artifacts,
the checks, the store's table) and the controller's own rights (its log group, being invoked by
its schedule); nothing of retention's. aviary controller install puts it on the role it creates.

  aviary iam-policy --controller -e production`
}

var accountRE = regexp.MustCompile(`^[0-9]{12}$`)

func (c *iamPolicyCmd) Run(e *env) error {
	if c.Keeper && c.Recover {
		return badInput("iam-policy: --keeper and --recover print different policies: pass one")
	}
	if c.Keeper {
		return c.keeperPolicy(e, c.Account, c.Region, c.Format)
	}
	if c.Recover {
		return c.recoverPolicy(e, c.File, c.Account, c.Region, c.Format)
	}
	if c.Env == "" {
		return badInput("iam-policy: pass -e ENV (the environment whose policy to print), --keeper or --recover")
	}
	m, err := c.load()
	if err != nil {
		return err
	}
	envm, err := m.Environment(c.Env)
	if err != nil {
		return usageError{err}
	}
	region := c.Region
	if region == "" {
		region = envm.Region
	}
	account := c.Account
	account, region, err = policyScope(e, account, region)
	if err != nil {
		return err
	}
	in := iampolicy.Input{Region: region, Account: account, Bucket: m.Artifacts.Bucket, Prefix: m.Artifacts.Prefix}
	in.Partition = partition(region)
	for _, fn := range m.Functions {
		in.Functions = append(in.Functions, m.FunctionName(envm, fn.Name))
		if img := fn.Image; img != nil {
			in.Repositories = append(in.Repositories, imageRepository(img))
		}
	}
	if in.Configuration = configurationPolicy(m, envm); in.Configuration != nil && len(in.Configuration.Parameters) > 0 {
		fmt.Fprintln(e.stderr, "Note: a SecureString parameter encrypted with a customer managed KMS key also needs kms:Decrypt on that key (the AWS managed key aws/ssm needs nothing more).")
	}
	// gc marks the artifacts of every environment sharing the bucket: it reads all their versions.
	for _, name := range sortedEnvs(m) {
		in.ReadFunctions = append(in.ReadFunctions, functionNames(m, m.Environments[name])...)
	}
	if ch := envm.Checks; ch != nil {
		in.Checks = &iampolicy.Checks{Metrics: ch.Metrics, Alarms: ch.Alarms, Smoke: len(ch.Smoke) > 0}
		if ch.Logs {
			for _, fn := range in.Functions {
				in.Checks.LogGroups = append(in.Checks.LogGroups, "/aws/lambda/"+fn)
			}
		}
		for _, h := range []string{ch.PreTraffic, ch.PostTraffic} {
			if h != "" {
				in.Checks.Hooks = append(in.Checks.Hooks, h)
			}
		}
	}
	if url := c.storeFlags.url(m); strings.HasPrefix(url, "dynamodb://") {
		in.Table = strings.TrimPrefix(url, "dynamodb://")
	}
	if envm.Controller != nil {
		in.Controller = envm.Controller.Function
	}
	policy := iampolicy.Build(in)
	if c.Controller {
		policy = iampolicy.Controller(iampolicy.ControllerInput{Input: in, Function: controllerFunction(envm)})
	}
	if c.Format == "terraform" {
		_, err := io.WriteString(e.stdout, policy.Terraform(iampolicy.Terraform{Name: "aviary_ci"}))
		return err
	}
	if err := writeRaw(e.stdout, policy); err != nil {
		return fmt.Errorf("iam-policy: %w", err)
	}
	return nil
}

// policyScope fills in the account (from STS) and region (from the standard chain) a policy is
// printed for when the flags leave them out, and checks both.
func policyScope(e *env, account, region string) (string, string, error) {
	if account == "" || region == "" {
		cfg, err := awsconfig.Load(e.ctx, awsconfig.Options{Region: region, AppID: appID})
		if err != nil {
			return "", "", err
		}
		if region == "" {
			region = cfg.Region
		}
		if account == "" {
			id, err := sts.NewFromConfig(cfg).GetCallerIdentity(e.ctx, &sts.GetCallerIdentityInput{})
			if err != nil {
				return "", "", badInput("iam-policy: cannot learn the account from STS (%v): pass --account", err)
			}
			account = *id.Account
		}
	}
	if !accountRE.MatchString(account) {
		return "", "", badInput("iam-policy: %q is not an AWS account ID (12 digits)", account)
	}
	if region == "" {
		return "", "", badInput("iam-policy: no region: pass --region or set AWS_REGION")
	}
	return account, region, nil
}

// partition is the AWS partition a region is in ("" for the commercial one).
func partition(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	}
	return ""
}
