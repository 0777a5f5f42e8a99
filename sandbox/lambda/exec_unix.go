//go:build unix

package lambda

import (
	"os/exec"
	"syscall"
)

// setProcessAttrs starts the bootstrap in its own process group, so that a timeout kills it and
// everything it started.
func setProcessAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	setDeathSignal(cmd.SysProcAttr)
}

func killProcessGroup(cmd *exec.Cmd) {
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	_ = cmd.Process.Kill()
}
