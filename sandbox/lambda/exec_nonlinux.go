//go:build unix && !linux

package lambda

import "syscall"

func setDeathSignal(*syscall.SysProcAttr) {}

// peakRSSMB is an exited process's peak resident memory (ru_maxrss is in bytes outside Linux).
func peakRSSMB(ru *syscall.Rusage) int { return int((ru.Maxrss + 1<<20 - 1) >> 20) }
