package temporalserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"golang.org/x/sys/unix"
)

// Finding is one check of Check: what was looked at, whether it is fine, and
// what to do when it is not.
type Finding struct {
	Check  string // "state dir", "database", "lock", "port frontend", ...
	OK     bool
	Detail string // what was found
	Remedy string // "" when OK
}

// Check tells whether the embedded server can be used with o here and now:
// the state directory is writable, and either no other server holds its
// lock and every port is free, or an l2g server already runs on it and
// answers (which is fine: workers and `l2g run` use it). It changes nothing
// on disk, returns one finding per check, for `l2g doctor`, and takes at
// most a few seconds (the health check of a running server is bounded).
func Check(o Options) []Finding {
	o, err := o.withDefaults()
	if err != nil {
		return []Finding{{Check: "options", Detail: err.Error(),
			Remedy: "fix server.embedded in temporal.yaml"}}
	}
	out := []Finding{
		checkStateDir(o.StateDir),
		checkDatabase(filepath.Join(o.StateDir, DBFile)),
	}
	lock, running := checkLock(o)
	out = append(out, lock)
	for _, p := range o.Ports.Named(o.UI) {
		f := Finding{Check: "port " + p.Name, OK: true, Detail: o.addr(p.Port) + " is free"}
		bad := probePort(o.IP, p.Name, p.Port)
		switch {
		case bad == nil:
		case bad.Busy() && running:
			f.Detail = bad.Addr + " is in use by the running l2g server"
		case bad.Busy():
			f.OK = false
			f.Detail = bad.Addr + " is in use"
			f.Remedy = fmt.Sprintf("stop what listens there (another Temporal server?), or set server.embedded.ports.%s in temporal.yaml", p.Name)
		default:
			f.OK = false
			f.Detail = fmt.Sprintf("cannot bind %s: %v", bad.Addr, bad.Err)
			f.Remedy = "check server.embedded.ip: this host may not have that address"
		}
		out = append(out, f)
	}
	return out
}

func checkStateDir(dir string) Finding {
	f := Finding{Check: "state dir"}
	remedy := "make it writable, or set --state-dir, $L2G_STATE_DIR or server.embedded.state_dir to a writable directory"
	info, err := os.Stat(dir)
	switch {
	case err == nil && !info.IsDir():
		f.Detail, f.Remedy = dir+" exists and is not a directory", remedy
	case err == nil:
		probe, err := os.CreateTemp(dir, ".l2g-doctor-*")
		if err != nil {
			f.Detail, f.Remedy = fmt.Sprintf("%s is not writable: %v", dir, err), remedy
			break
		}
		_ = probe.Close()
		_ = os.Remove(probe.Name())
		f.OK, f.Detail = true, dir+" is writable"
	case errors.Is(err, os.ErrNotExist):
		// Start creates it: the nearest existing parent must let us.
		parent := dir
		for {
			parent = filepath.Dir(parent)
			if _, err := os.Stat(parent); err == nil || parent == filepath.Dir(parent) {
				break
			}
		}
		if err := unix.Access(parent, unix.W_OK|unix.X_OK); err != nil {
			f.Detail, f.Remedy = fmt.Sprintf("%s does not exist and %s is not writable: %v", dir, parent, err), remedy
			break
		}
		f.OK, f.Detail = true, dir+" does not exist yet; `l2g server` will create it"
	default:
		f.Detail, f.Remedy = fmt.Sprintf("cannot inspect %s: %v", dir, err), remedy
	}
	return f
}

func checkDatabase(path string) Finding {
	info, err := os.Stat(path)
	switch {
	case err == nil:
		return Finding{Check: "database", OK: true,
			Detail: fmt.Sprintf("%s holds earlier history (%.1f MiB)", path, float64(info.Size())/(1<<20))}
	case errors.Is(err, os.ErrNotExist):
		return Finding{Check: "database", OK: true, Detail: path + " will be created on first start"}
	default:
		return Finding{Check: "database", Detail: fmt.Sprintf("cannot inspect %s: %v", path, err),
			Remedy: "fix the permissions of the state directory"}
	}
}

// checkLock tries the lock and lets go at once; it never creates the lock
// file, a missing one means nobody holds it. When the lock is held it asks
// the frontend whether a server answers there, and reports that as running.
func checkLock(o Options) (f Finding, running bool) {
	path := filepath.Join(o.StateDir, LockFile)
	f = Finding{Check: "lock"}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		f.OK, f.Detail = true, "no server has used this state dir yet"
		return f, false
	}
	l, err := tryLock(path)
	var locked *LockedError
	switch {
	case errors.As(err, &locked):
		holder := "another process"
		if locked.PID > 0 {
			holder = fmt.Sprintf("process %d", locked.PID)
		}
		if err := frontendAnswers(o); err != nil {
			f.Detail = fmt.Sprintf("%s holds %s, but no server answers at %s (%v)", holder, path, o.addr(o.Ports.Frontend), err)
			f.Remedy = "the holder may still be starting, or be hung: wait, or stop it"
			return f, false
		}
		f.OK = true
		f.Detail = fmt.Sprintf("an l2g server (%s) runs on this state dir and answers at %s", holder, o.addr(o.Ports.Frontend))
		return f, true
	case err != nil:
		f.Detail, f.Remedy = err.Error(), "fix the permissions of "+path
	default:
		_ = l.release()
		f.OK, f.Detail = true, path+" is free"
	}
	return f, false
}

// frontendAnswers asks the frontend's health check, giving up after a few
// seconds.
func frontendAnswers(o Options) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c, err := client.DialContext(ctx, client.Options{
		HostPort: o.addr(o.Ports.Frontend),
		Logger:   sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)),
	})
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.CheckHealth(ctx, &client.CheckHealthRequest{})
	return err
}
