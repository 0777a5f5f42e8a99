// Package cli is Aviary's command line: one file per command, each an options struct with a Run
// method. Commands return errors; Main maps them to exit codes, and nothing below Main exits.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/alecthomas/kong"
)

// Exit codes CI can branch on.
const (
	ExitOK       = 0
	ExitFailed   = 1 // something went wrong that a retry or a person must fix
	ExitBadInput = 2 // the command line or its inputs are wrong; nothing was changed
)

// app is the command tree.
type app struct {
	Demo    demoCmd    `cmd:"" help:"Rehearse a release on a local sandbox: deploy an example function, shift traffic to a faulty canary, watch it fail in CloudWatch, roll back. Needs only Go."`
	Sandbox sandboxCmd `cmd:"" help:"Serve AWS-compatible Lambda, S3 and CloudWatch endpoints on one local port."`
	Package packageCmd `cmd:"" help:"Package files or directories into a reproducible Lambda zip and print its SHA-256."`
	Version versionCmd `cmd:"" help:"Print Aviary's version."`
}

// env is what every command gets: where to write, and the context to stop on.
type env struct {
	ctx    context.Context
	stdout io.Writer
	stderr io.Writer
}

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
	parser, err := kong.New(&a,
		kong.Name("aviary"),
		kong.Description("Aviary ships fleets of AWS Lambda functions safely: canary, linear or all-at-once traffic shifts on aliases, health checks, a human gate, and a fleet-wide rollback in seconds."),
		kong.Writers(stdout, stderr),
		kong.Exit(func(c int) { panic(exitPanic(c)) }),
		kong.UsageOnError(),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
	)
	if err != nil {
		fmt.Fprintln(stderr, "aviary:", err)
		return ExitFailed
	}
	kctx, err := parser.Parse(args)
	if err != nil {
		fmt.Fprintln(stderr, "aviary:", err)
		if kctx != nil {
			_ = kctx.PrintUsage(true)
		}
		return ExitBadInput
	}
	err = kctx.Run(&env{ctx: ctx, stdout: stdout, stderr: stderr})
	if err == nil {
		return ExitOK
	}
	fmt.Fprintln(stderr, "aviary:", err)
	var ue usageError
	if errors.As(err, &ue) {
		return ExitBadInput
	}
	return ExitFailed
}
