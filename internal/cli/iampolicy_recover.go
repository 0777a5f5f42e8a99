package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/aviary-deploy/aviary/awsconfig"
	"github.com/aviary-deploy/aviary/iampolicy"
	"github.com/aviary-deploy/aviary/manifest"
)

// recoverPolicyFlags are iam-policy's flags for recover-stack's policy.
type recoverPolicyFlags struct {
	Recover      bool     `help:"Print the policy of aviary recover-stack instead of an environment's."`
	RecoverStack string   `name:"stack" placeholder:"STACK" help:"With --recover: the root stack (default: every stack)."`
	Bucket       []string `placeholder:"BUCKET" help:"With --recover: an artifact bucket the stack's code is in (default: the manifest's, else every bucket). Repeatable."`
}

func (c *recoverPolicyFlags) recoverPolicy(e *env, file, account, region, format string) error {
	if account == "" || region == "" {
		cfg, err := awsconfig.Load(e.ctx, awsconfig.Options{Region: region, AppID: appID})
		if err != nil {
			return err
		}
		if region == "" {
			region = cfg.Region
		}
		if account == "" {
			id, err := sts.NewFromConfig(cfg).GetCallerIdentity(e.ctx, &sts.GetCallerIdentityInput{})
			if err != nil {
				return badInput("iam-policy: cannot learn the account from STS (%v): pass --account", err)
			}
			account = *id.Account
		}
	}
	if !accountRE.MatchString(account) {
		return badInput("iam-policy: %q is not an AWS account ID (12 digits)", account)
	}
	if region == "" {
		return badInput("iam-policy: no region: pass --region or set AWS_REGION")
	}
	in := iampolicy.RecoverInput{Region: region, Account: account, Stack: c.RecoverStack, Buckets: c.Bucket}
	if len(in.Buckets) == 0 {
		if m, err := manifest.Load(file); err == nil && m.Artifacts.Bucket != "" {
			in.Buckets = []string{m.Artifacts.Bucket}
		}
	}
	if strings.HasPrefix(region, "cn-") {
		in.Partition = "aws-cn"
	} else if strings.HasPrefix(region, "us-gov-") {
		in.Partition = "aws-us-gov"
	}
	policy := iampolicy.Recover(in)
	if format == "terraform" {
		_, err := io.WriteString(e.stdout, policy.Terraform(iampolicy.Terraform{Name: "aviary_recover"}))
		return err
	}
	if err := writeRaw(e.stdout, policy); err != nil {
		return fmt.Errorf("iam-policy: %w", err)
	}
	return nil
}
