// Command aviary ships fleets of AWS Lambda functions safely. See `aviary --help`.
package main

import (
	"context"
	"os"

	"github.com/aviary-deploy/aviary/internal/cli"
)

func main() {
	ctx, stop := cli.NotifyContext(context.Background()) // signal.NotifyContext, its cause saying which signal and when
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
