package cli

import (
	"fmt"
	"io"

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
	account, region, err := policyScope(e, account, region)
	if err != nil {
		return err
	}
	in := iampolicy.RecoverInput{Region: region, Account: account, Stack: c.RecoverStack, Buckets: c.Bucket}
	if len(in.Buckets) == 0 {
		if m, err := manifest.Load(file); err == nil && m.Artifacts.Bucket != "" {
			in.Buckets = []string{m.Artifacts.Bucket}
		}
	}
	in.Partition = partition(region)
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
