package lambda

import "syscall"

// setDeathSignal makes the kernel kill a function's process if the sandbox itself dies.
func setDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }

// peakRSSMB is an exited process's peak resident memory (Linux reports ru_maxrss in kB).
func peakRSSMB(ru *syscall.Rusage) int { return int((ru.Maxrss + 1023) / 1024) }
