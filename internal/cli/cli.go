// Package cli is Aviary's command line: one file per command, each an options struct with a Run
// method. Commands return errors; Main maps them to exit codes, and nothing below Main exits.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/alecthomas/kong"

	"github.com/aviary-deploy/aviary/internal/textsafe"
)

// Exit codes CI can branch on.
const (
	ExitOK       = 0
	ExitFailed   = 1 // something went wrong that a retry or a person must fix
	ExitBadInput = 2 // the command line or its inputs are wrong; nothing was changed
)

// app is the command tree. Every flag has an AVIARY_* environment variable (kong.DefaultEnvars;
// `env:"…"` names another), shown in --help; a flag name means one thing in every command.
type app struct {
	globalFlags

	Deploy   deployCmd   `cmd:"" group:"Releases" help:"Ship the changed functions of an environment: publish, shift traffic step by step, promote (or roll back). A step with too little traffic to judge bakes on to max_bake, then (on_inconclusive: auto) waits at the environment's approval gate, or is promoted and recorded as UNJUDGED."`
	Plan     planCmd     `cmd:"" group:"Releases" help:"Show what a deploy would change, and whether each step's bake can judge at the aliases' recent traffic. Changes nothing."`
	Status   statusCmd   `cmd:"" group:"Releases" help:"Show where a release is and what happened to it."`
	History  historyCmd  `cmd:"" group:"Releases" help:"List an environment's releases, newest first."`
	Rollback rollbackCmd `cmd:"" group:"Releases" help:"Put every function of a release back on its previous version, from any phase."`
	Approve  approveCmd  `cmd:"" group:"Releases" help:"Approve a release waiting at its gate (the first decision wins)."`
	Promote  promoteCmd  `cmd:"" group:"Releases" help:"Skip a release's remaining steps and move all traffic to the new versions."`
	Resume   resumeCmd   `cmd:"" group:"Releases" help:"Continue a release whose process died, from its record."`

	Prune        pruneCmd        `cmd:"" group:"Retention" help:"Delete the function versions nothing needs: no alias, retained release, CloudFront association, event source mapping or provisioned concurrency, nor among the newest."`
	Doctor       doctorCmd       `cmd:"" group:"Retention" help:"Check that every rollback of an environment can still run (artifacts in S3 and the cache, lifecycle rules, versioning, code storage); --restore puts missing artifacts back."`
	RecoverStack recoverStackCmd `cmd:"" name:"recover-stack" group:"Retention" help:"Get a CloudFormation stack out of UPDATE_ROLLBACK_FAILED: find the Lambda code keys its rollback needs, restore them (verified), continue the rollback. Never deletes a function."`
	GC           gcCmd           `cmd:"" name:"gc" group:"Retention" help:"Delete the artifacts nothing reaches (no version of any environment, no retained release) once older than a grace period."`

	Serve serveCmd `cmd:"" group:"Gate" help:"Serve the dashboard and the approval gate (signed links, admin buttons, /metrics) over the store."`
	Link  linkCmd  `cmd:"" group:"Gate" help:"Print fresh signed approve and rollback links for a release waiting at its gate."`

	Store     storeCmd     `cmd:"" group:"Releases" help:"Set up the store that keeps releases, the audit trail and locks."`
	IAMPolicy iamPolicyCmd `cmd:"" name:"iam-policy" group:"Releases" help:"Print the least-privilege IAM policy (JSON) for what Aviary does in an environment."`

	Controller controllerCmd `cmd:"" group:"Releases" help:"Install and inspect the controller: a Lambda, ticked every minute by EventBridge Scheduler, that drives the releases handed to it (deploy --detach) with no process watching."`

	Keeper keeperCmd `cmd:"" group:"Blue/green on EC2" help:"Attach the original Auto Scaling group's target groups to the replacement a CodeDeploy blue/green deployment created."`

	Init     initCmd     `cmd:"" group:"Manifest" help:"Write a starting aviary.yaml from existing functions, chosen by name prefix or tag."`
	Validate validateCmd `cmd:"" group:"Manifest" help:"Check aviary.yaml whole and report every problem with its line."`
	Schema   schemaCmd   `cmd:"" group:"Manifest" help:"Print the JSON Schema of aviary.yaml, for editors."`
	Package  packageCmd  `cmd:"" group:"Manifest" help:"Package files or directories into a reproducible Lambda zip and print its SHA-256."`

	Demo    demoCmd    `cmd:"" group:"Sandbox" help:"Rehearse a release on a local sandbox: a fleet deployed, a canary shifted and rolled back, a release promoted. Needs only Go."`
	Sandbox sandboxCmd `cmd:"" group:"Sandbox" help:"Serve AWS-compatible Lambda, S3, CloudWatch, CloudWatch Logs, STS, CloudFront, CodeDeploy, Auto Scaling, ELB target groups and SNS endpoints on one local port."`
	Traffic trafficCmd `cmd:"" group:"Sandbox" help:"Invoke an environment's aliases at a steady rate and report what answered, by executed version."`

	Completion completionCmd `cmd:"" help:"Print a shell completion script: bash, zsh or fish."`
	Version    versionCmd    `cmd:"" help:"Print Aviary's version."`
}

// globalFlags apply to every command.
type globalFlags struct {
	VersionFlag kong.VersionFlag `name:"version" env:"-" help:"Print Aviary's version and exit."`
	Quiet       bool             `short:"q" help:"Print only errors and the final result (not the progress, nor a gate's approval links: aviary link prints those)."`
	NoColor     bool             `help:"Never colour the output (NO_COLOR, set to anything, does the same)."`
}

// env is what every command gets: where to write, and the context to stop on.
type env struct {
	ctx    context.Context
	stdout io.Writer
	stderr io.Writer
	quiet  bool // print only errors and the final result
	color  bool // colour is allowed (not --no-color, not NO_COLOR); a terminal is still needed
}

// silentExit ends a command with a code and no message: the output already said it all (plan
// --detailed-exitcode's 2, "there are changes").
type silentExit int

func (e silentExit) Error() string { return fmt.Sprintf("exit %d", int(e)) }

// usageError is bad input: the command line or its inputs are wrong and nothing was changed.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func badInput(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

type exitPanic int

// Main runs the command line and returns the process's exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) (code int) {
	defer func() {
		if r := recover(); r != nil {
			c, ok := r.(exitPanic)
			if !ok {
				panic(r)
			}
			code = int(c)
		}
	}()
	var a app
	parser, err := newParser(&a, stdout, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "aviary:", err)
		return ExitFailed
	}
	kctx, err := parser.Parse(args)
	if err != nil {
		fmt.Fprintln(stderr, "aviary:", cleanLines(err.Error()))
		if kctx != nil {
			_ = kctx.PrintUsage(true)
		}
		if detailedExitCode(args) {
			return ExitFailed // 2 would say "changes" to a CI that asked for detailed exit codes
		}
		return ExitBadInput
	}
	e := &env{ctx: ctx, stdout: stdout, stderr: stderr, quiet: a.Quiet, color: !a.NoColor && os.Getenv("NO_COLOR") == ""}
	err = kctx.Run(e, kctx.Model)
	if err == nil {
		return ExitOK
	}
	var silent silentExit
	if errors.As(err, &silent) {
		return int(silent)
	}
	fmt.Fprintln(stderr, "aviary:", cleanLines(err.Error()))
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	var ue usageError
	if errors.As(err, &ue) {
		return ExitBadInput
	}
	return ExitFailed
}

// newParser builds the command line's parser over a.
func newParser(a *app, stdout, stderr io.Writer) (*kong.Kong, error) {
	return kong.New(a,
		kong.Name("aviary"),
		kong.Description("Aviary ships fleets of AWS Lambda functions safely: canary, linear or all-at-once traffic shifts on aliases, health checks, a human gate, and a fleet-wide rollback in seconds."),
		kong.Writers(stdout, stderr),
		kong.Exit(func(c int) { panic(exitPanic(c)) }),
		kong.UsageOnError(),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
		kong.DefaultEnvars("AVIARY"),
		kong.Vars{"version": versionString()},
	)
}

// cleanLines escapes what would act on a terminal in an error message (which may quote a reason,
// a name or an id from the store or AWS), line by line: the message's own line breaks stay.
func cleanLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = textsafe.Clean(l)
	}
	return strings.Join(lines, "\n")
}

// detailedExitCode reports whether the command line (or its variable) asked plan for Terraform's
// exit codes, in which 2 means changes and every error is 1.
func detailedExitCode(args []string) bool {
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "--detailed-exitcode" || strings.HasPrefix(a, "--detailed-exitcode=") && a != "--detailed-exitcode=false" {
			return true
		}
	}
	v, _ := strconv.ParseBool(os.Getenv("AVIARY_DETAILED_EXITCODE"))
	return v
}
