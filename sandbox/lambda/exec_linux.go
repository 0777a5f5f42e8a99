package lambda

import (
	"syscall"
	"unsafe"
)

// setDeathSignal makes the kernel kill a function's process if the sandbox itself dies.
func setDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }

// processGone says whether pid, a child of this process, has exited (a zombie, or reaped) with
// one waitid that neither blocks nor reaps: cheaper than reading /proc, and asked before every
// warm invocation. ok is false when the kernel did not answer.
func processGone(pid int) (gone, ok bool) {
	var info [16]uint64 // a siginfo_t
	const pPID = 1
	_, _, errno := syscall.Syscall6(syscall.SYS_WAITID, pPID, uintptr(pid), uintptr(unsafe.Pointer(&info[0])),
		syscall.WEXITED|syscall.WNOHANG|syscall.WNOWAIT, 0, 0)
	switch errno {
	case 0:
		// si_pid, after si_signo, si_errno and si_code (and padding to the union's alignment), is
		// set only when the child has exited.
		off := uintptr(12)
		if unsafe.Sizeof(uintptr(0)) == 8 {
			off = 16
		}
		return *(*int32)(unsafe.Add(unsafe.Pointer(&info[0]), off)) != 0, true
	case syscall.ECHILD:
		return true, true // already reaped
	default:
		return false, false
	}
}
