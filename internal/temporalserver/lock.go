package temporalserver

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// LockedError means another process (or another Server in this one) holds
// the state directory: two servers on one SQLite file corrupt each other.
type LockedError struct {
	Path string // the lock file
	PID  int    // holder's process id as it recorded it, 0 if unknown
}

func (e *LockedError) Error() string {
	holder := "another process"
	if e.PID > 0 {
		holder = fmt.Sprintf("process %d", e.PID)
	}
	return fmt.Sprintf("temporal state is in use: %s holds %s; stop that `l2g server` (or point --state-dir / $L2G_STATE_DIR elsewhere)",
		holder, e.Path)
}

// stateLock is an exclusive flock on a file beside the database. flock
// belongs to the open file, so a second open in the same process conflicts
// too, and the kernel drops it when the process dies: no stale locks.
type stateLock struct {
	f *os.File
}

// acquireLock takes the lock and records our pid in the file for the error
// message a second server will print.
func acquireLock(path string) (*stateLock, error) {
	l, err := tryLock(path)
	if err != nil {
		return nil, err
	}
	if err := l.f.Truncate(0); err == nil {
		_, _ = l.f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return l, nil
}

// tryLock takes the lock without waiting and without writing to the file.
func tryLock(path string) (*stateLock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, &LockedError{Path: path, PID: readPID(f)}
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return &stateLock{f: f}, nil
}

func readPID(f *os.File) int {
	buf := make([]byte, 32)
	n, _ := f.ReadAt(buf, 0)
	pid, err := strconv.Atoi(strings.TrimSpace(string(buf[:n])))
	if err != nil {
		return 0
	}
	return pid
}

// release drops the lock. The file stays: removing it would let a third
// process lock a fresh inode while a second still waits on the old one.
func (l *stateLock) release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the last descriptor releases the flock
	l.f = nil
	return err
}
