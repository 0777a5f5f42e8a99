package cli

import (
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"

	"github.com/aviary-deploy/aviary/awsconfig"
	"github.com/aviary-deploy/aviary/iampolicy"
	"github.com/aviary-deploy/aviary/keeper"
)

type keeperCmd struct {
	DeploymentID string `name:"deployment-id" required:"" placeholder:"ID" help:"The CodeDeploy deployment (d-XXXXXXXXX)."`
	DryRun       bool   `help:"Say what would be attached; attach nothing."`
	Region       string `help:"The region (default: the standard chain's)."`
	Verbose      bool   `short:"v" help:"Also print the keeper's structured log lines (stderr)."`
	outputFlags
}

func (c *keeperCmd) Help() string {
	return `CodeDeploy's blue/green deployment with COPY_AUTO_SCALING_GROUP creates a replacement Auto Scaling
group (CodeDeploy_<deployment group>_<deployment id>) copying the original's configuration but not
its target groups or Classic Load Balancers. This attaches to the replacement what the original has
(or, the original gone, what the deployment group's load balancer info names), and only what it
lacks: run it again and it writes nothing. It writes to no other group. A deployment that is not a
blue/green copy is left alone, and it says so. cmd/aviary-keeper does the same as a Lambda
subscribed to the deployment group's SNS trigger.

  aviary keeper --deployment-id d-ABCDEFGHI --dry-run
  aviary keeper --deployment-id d-ABCDEFGHI`
}

func (c *keeperCmd) Run(e *env) error {
	cfg, err := awsconfig.Load(e.ctx, awsconfig.Options{Region: c.Region, AppID: appID})
	if err != nil {
		return err
	}
	if cfg.Region == "" {
		return badInput("keeper: no AWS region: set AWS_REGION or pass --region")
	}
	log := slog.New(slog.DiscardHandler)
	if c.Verbose {
		log = slog.New(slog.NewTextHandler(e.stderr, nil))
	}
	k := &keeper.Keeper{CodeDeploy: codedeploy.NewFromConfig(cfg), AutoScaling: autoscaling.NewFromConfig(cfg),
		TargetGroups: elb.NewFromConfig(cfg), Log: log}
	r, err := k.Keep(e.ctx, c.DeploymentID, c.DryRun)
	if errors.Is(err, keeper.ErrUnknownDeployment) {
		return badInput("keeper: %v", err)
	}
	if err != nil {
		return fmt.Errorf("keeper: %w", err)
	}
	if c.json() {
		return writeJSON(e.stdout, &keeperOutput{Result: r})
	}
	w := e.stdout
	switch {
	case !r.Act:
		fmt.Fprintf(w, "Nothing to do for %s: %s.\n", safe(r.DeploymentID), safe(r.Reason))
	case r.DryRun:
		fmt.Fprintf(w, "Would attach to %s what %s names:\n", safe(r.Replacement), sourceWords(r.Source))
	default:
		fmt.Fprintf(w, "Attached to %s what %s names:\n", safe(r.Replacement), sourceWords(r.Source))
	}
	if r.Act {
		for _, tg := range r.AttachTargetGroups {
			fmt.Fprintf(w, "  target group   %s\n", safe(tg))
		}
		for _, lb := range r.AttachLoadBalancers {
			fmt.Fprintf(w, "  load balancer  %s\n", safe(lb))
		}
	}
	return nil
}

func sourceWords(s keeper.Source) string {
	if s == keeper.FromOriginal {
		return "the original group"
	}
	return "the deployment group's load balancer info"
}

// keeperOutput is `aviary keeper -o json`.
type keeperOutput struct {
	v1
	keeper.Result
}

// keeperPolicyFlags are iam-policy's flags for the keeper's policy.
type keeperPolicyFlags struct {
	Keeper          bool   `help:"Print the policy of the blue/green keeper (aviary keeper, cmd/aviary-keeper) instead of an environment's."`
	Application     string `placeholder:"APP" help:"With --keeper: the CodeDeploy application (default: every application)."`
	DeploymentGroup string `placeholder:"GROUP" help:"With --keeper: the deployment group (default: every deployment group)."`
}

func (c *keeperPolicyFlags) keeperPolicy(e *env, account, region, format string) error {
	account, region, err := policyScope(e, account, region)
	if err != nil {
		return err
	}
	in := iampolicy.KeeperInput{Region: region, Account: account, Application: c.Application, DeploymentGroup: c.DeploymentGroup}
	in.Partition = partition(region)
	policy := iampolicy.Keeper(in)
	if format == "terraform" {
		_, err := io.WriteString(e.stdout, policy.Terraform(iampolicy.Terraform{Name: "aviary_keeper"}))
		return err
	}
	if err := writeRaw(e.stdout, policy); err != nil {
		return fmt.Errorf("iam-policy: %w", err)
	}
	return nil
}
