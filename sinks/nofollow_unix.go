//go:build unix

package sinks

import "syscall"

// noFollow makes OpenFile refuse a symbolic link in the last path element.
const noFollow = syscall.O_NOFOLLOW
