package lambda

import "syscall"

// setDeathSignal makes the kernel kill a function's process if the sandbox itself dies.
func setDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }
