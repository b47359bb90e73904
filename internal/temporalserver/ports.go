package temporalserver

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"

	"github.com/l2g/l2g/internal/temporalcfg"
)

// PortError names a port the server needs but cannot bind. The server itself
// panics on a busy port, so Start probes every port first.
type PortError struct {
	Name string // field under server.embedded.ports
	Addr string // ip:port
	Err  error  // from net.Listen
}

// Busy reports whether something else listens on the port (as opposed to,
// say, an IP address this host does not have).
func (e *PortError) Busy() bool { return errors.Is(e.Err, syscall.EADDRINUSE) }

func (e *PortError) Error() string {
	if e.Busy() {
		return fmt.Sprintf("port %s (server.embedded.ports.%s) is in use: stop what listens there "+
			"(another `l2g server`, or `temporal server start-dev`?) or set server.embedded.ports.%s in temporal.yaml",
			e.Addr, e.Name, e.Name)
	}
	return fmt.Sprintf("cannot bind %s (server.embedded.ports.%s): %v; check server.embedded.ip and the port in temporal.yaml",
		e.Addr, e.Name, e.Err)
}

func (e *PortError) Unwrap() error { return e.Err }

// checkPorts binds and releases each port in turn and reports every one that
// fails, so that a user fixes them all in one go.
func checkPorts(ip string, ports []temporalcfg.NamedPort) []*PortError {
	var bad []*PortError
	for _, p := range ports {
		if err := probePort(ip, p.Name, p.Port); err != nil {
			bad = append(bad, err)
		}
	}
	return bad
}

// probePort binds ip:port and lets go at once; closing a listener that
// accepted nothing leaves no TIME_WAIT behind.
func probePort(ip, name string, port int) *PortError {
	addr := net.JoinHostPort(ip, strconv.Itoa(port))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return &PortError{Name: name, Addr: addr, Err: err}
	}
	_ = l.Close()
	return nil
}
