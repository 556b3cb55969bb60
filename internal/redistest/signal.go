package redistest

import "syscall"

// Pause stops the server process (SIGSTOP): it keeps its connections and
// answers nothing, as a server stalled by the kernel or a long fork would.
func (s *Server) Pause() error { return s.cmd.Process.Signal(syscall.SIGSTOP) }

// Resume continues a paused server (SIGCONT).
func (s *Server) Resume() error { return s.cmd.Process.Signal(syscall.SIGCONT) }
