package temporalserver

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

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

// Check tells whether Start could run with o here and now: the state
// directory is writable, no other server holds its lock, and every port is
// free. It changes nothing on disk and returns one finding per check, for
// `l2g doctor`.
func Check(o Options) []Finding {
	o, err := o.withDefaults()
	if err != nil {
		return []Finding{{Check: "options", Detail: err.Error(),
			Remedy: "fix server.embedded in temporal.yaml (l2g doctor prints the file it read)"}}
	}
	var out []Finding
	out = append(out, checkStateDir(o.StateDir))
	out = append(out, checkDatabase(filepath.Join(o.StateDir, DBFile)))
	out = append(out, checkLock(filepath.Join(o.StateDir, LockFile)))
	for _, p := range o.Ports.Named(o.UI) {
		f := Finding{Check: "port " + p.Name, OK: true, Detail: o.addr(p.Port) + " is free"}
		if bad := probePort(o.IP, p.Name, p.Port); bad != nil {
			f.OK = false
			f.Detail = bad.Error()
			f.Remedy = fmt.Sprintf("free %s, or set server.embedded.ports.%s in temporal.yaml", bad.Addr, p.Name)
			if !bad.Busy() {
				f.Remedy = "check server.embedded.ip: this host may not have that address"
			}
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

// checkLock tries the lock and lets go at once. It never creates the lock
// file: a missing one means nobody holds it.
func checkLock(path string) Finding {
	f := Finding{Check: "lock"}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		f.OK, f.Detail = true, "no server has used this state dir yet"
		return f
	}
	l, err := tryLock(path)
	var locked *LockedError
	switch {
	case errors.As(err, &locked):
		f.Detail = locked.Error()
		f.Remedy = "an `l2g server` is already running here: point workers at it, or stop it before starting another"
	case err != nil:
		f.Detail, f.Remedy = err.Error(), "fix the permissions of "+path
	default:
		_ = l.release()
		f.OK, f.Detail = true, path+" is free"
	}
	return f
}
