// Command aviary ships fleets of AWS Lambda functions safely. See `aviary --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/aviary-deploy/aviary/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
