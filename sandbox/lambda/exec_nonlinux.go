//go:build unix && !linux

package lambda

import "syscall"

func setDeathSignal(*syscall.SysProcAttr) {}
