//go:build unix && !linux

package lambda

import "syscall"

func setDeathSignal(*syscall.SysProcAttr) {}

// processGone leaves exited to the Wait goroutine and /proc where there is one.
func processGone(int) (gone, ok bool) { return false, false }
