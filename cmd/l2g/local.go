package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/l2g/l2g/internal/temporalcfg"
	"github.com/l2g/l2g/internal/temporalserver"
)

// localStack is what `l2g run --local` starts for the length of one run:
// the embedded Temporal server in this process (unless one already
// answers) and an `l2g worker` child process, so that a libtorch abort in
// a stage kills only the worker, which is then restarted.
type localStack struct {
	srv     *temporalserver.Server
	mu      sync.Mutex
	worker  *exec.Cmd
	exited  chan struct{}
	stopped bool
	done    sync.WaitGroup
}

// startLocal brings up the server (when connection.address is empty and
// nothing answers there) and the worker, logging the worker to logPath.
func startLocal(ctx context.Context, ov temporalcfg.Overrides, tcfg *temporalcfg.Config, logPath string, msg io.Writer) (*localStack, error) {
	s := &localStack{}
	if tcfg.Connection.Embedded() {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		c, err := temporalcfg.Dial(pctx, tcfg.Connection, quietLogger())
		cancel()
		if err == nil {
			c.Close()
			fmt.Fprintf(msg, "using the Temporal server at %s\n", tcfg.Connection.HostPort())
		} else {
			start := time.Now()
			opts := temporalserver.OptionsFromConfig(tcfg, quietLogger())
			srv, err := temporalserver.Start(ctx, opts)
			if err != nil {
				return nil, err
			}
			s.srv = srv
			fmt.Fprintf(msg, "started the embedded Temporal server at %s in %.1fs (history %s)\n", srv.Address(), time.Since(start).Seconds(), srv.DBPath())
			if u := srv.UIURL(); u != "" {
				fmt.Fprintf(msg, "Web UI at %s\n", u)
			}
		}
	}
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		s.stop()
		return nil, err
	}
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.stop()
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		s.stop()
		return nil, fmt.Errorf("local worker: %w", err)
	}
	args := append([]string{"worker", "--queues", "gpu,cpu"}, overrideArgs(ov)...)
	if err := s.startWorker(exe, args, log); err != nil {
		log.Close()
		s.stop()
		return nil, err
	}
	fmt.Fprintf(msg, "started a worker (pid %d), log in %s\n", s.worker.Process.Pid, logPath)
	s.done.Add(1)
	go s.supervise(exe, args, log, msg)
	return s, nil
}

func (s *localStack) startWorker(exe string, args []string, log *os.File) error {
	cmd := exec.Command(exe, args...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("local worker: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	s.mu.Lock()
	s.worker, s.exited = cmd, exited
	s.mu.Unlock()
	return nil
}

// supervise restarts the worker when it dies (a crash in a stage); the
// stage's activity is retried, resuming from its last checkpoint.
func (s *localStack) supervise(exe string, args []string, log *os.File, msg io.Writer) {
	defer s.done.Done()
	defer log.Close()
	for restarts := 0; ; restarts++ {
		s.mu.Lock()
		exited, cmd := s.exited, s.worker
		s.mu.Unlock()
		<-exited
		s.mu.Lock()
		stopped := s.stopped
		s.mu.Unlock()
		if stopped {
			return
		}
		fmt.Fprintf(msg, "the worker (pid %d) exited: %v; restarting it (log %s)\n", cmd.Process.Pid, cmd.ProcessState, log.Name())
		if restarts >= 5 {
			fmt.Fprintln(msg, "the worker keeps dying; not restarting it again")
			return
		}
		if err := s.startWorker(exe, args, log); err != nil {
			fmt.Fprintln(msg, err)
			return
		}
	}
}

// stop ends the worker (SIGTERM, then SIGKILL after 30 s: a stage writes a
// checkpoint when interrupted) and the server.
func (s *localStack) stop() {
	s.mu.Lock()
	s.stopped = true
	cmd, exited := s.worker, s.exited
	s.mu.Unlock()
	if cmd != nil && cmd.Process != nil {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	s.done.Wait()
	if s.srv != nil {
		_ = s.srv.Stop()
	}
}

// overrideArgs passes the Temporal flags this command got on to a child.
func overrideArgs(ov temporalcfg.Overrides) []string {
	var args []string
	add := func(flag, v string) {
		if v != "" {
			args = append(args, "--"+flag, v)
		}
	}
	add("temporal-config", ov.ConfigPath)
	add("state-dir", ov.StateDir)
	add("temporal-address", ov.Address)
	add("temporal-namespace", ov.Namespace)
	add("temporal-tls-ca", ov.TLSCAFile)
	add("temporal-tls-cert", ov.TLSCertFile)
	add("temporal-tls-key", ov.TLSKeyFile)
	add("temporal-tls-server-name", ov.TLSServerName)
	// An API key given as a flag goes by environment: argv shows in ps.
	return args
}
