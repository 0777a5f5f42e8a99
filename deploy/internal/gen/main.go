// Command gen writes deploy/terraform/ci_policy.tf and controller_policy.tf from package
// iampolicy (run by `go generate ./deploy`).
package main

import (
	"fmt"
	"os"

	"github.com/aviary-deploy/aviary/deploy"
)

func main() {
	b, err := deploy.TerraformCIPolicy()
	if err == nil {
		err = os.WriteFile(deploy.CIPolicyFile, b, 0o644)
	}
	if err == nil {
		if b, err = deploy.TerraformControllerPolicy(); err == nil {
			err = os.WriteFile(deploy.ControllerPolicyFile, b, 0o644)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}
