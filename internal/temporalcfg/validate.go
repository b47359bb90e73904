package temporalcfg

import (
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/l2g/l2g/internal/badinput"
)

// minRetention is the shortest namespace retention Temporal accepts.
const minRetention = 24 * time.Hour

// Validate reports every problem at once as a *badinput.List whose entries
// name the file and the field (server.embedded.ports.ui, stages.train.retry...).
func (c *Config) Validate() error {
	var errs badinput.List
	add := func(field, format string, args ...any) { errs.Add(c.fieldErr(field, format, args...)) }

	c.validateEmbedded(add)
	c.validateConnection(add)
	c.validateQueues(add)
	for _, name := range StageNames() {
		opts, _ := c.Stages.Get(name)
		validateStage("stages."+name, opts, add)
	}
	return errs.Err()
}

type addFunc func(field, format string, args ...any)

func (c *Config) validateEmbedded(add addFunc) {
	e := c.Server.Embedded
	if strings.ContainsAny(e.StateDir, "?#") {
		// The SQLite plugin builds a file: URI from the path.
		add("server.embedded.state_dir", "%q contains '?' or '#', which SQLite would read as URI syntax", e.StateDir)
	}
	if net.ParseIP(e.IP) == nil {
		add("server.embedded.ip", "%q is not an IP address (use 127.0.0.1 to stay local)", e.IP)
	}
	seen := map[int]string{}
	for _, p := range e.Ports.WithDefaults().Named(e.UI) {
		field := "server.embedded.ports." + p.Name
		if p.Port < 1 || p.Port > 65535 {
			add(field, "port %d is outside 1..65535", p.Port)
			continue
		}
		if other, ok := seen[p.Port]; ok {
			add(field, "port %d is also used by server.embedded.ports.%s", p.Port, other)
			continue
		}
		seen[p.Port] = p.Name
	}
	if e.Retention < minRetention {
		add("server.embedded.namespace_retention", "%v is shorter than Temporal's minimum of 24h", e.Retention)
	}
}

func (c *Config) validateConnection(add addFunc) {
	conn := c.Connection
	if conn.Address != "" {
		if host, port, err := net.SplitHostPort(conn.Address); err != nil || host == "" {
			add("connection.address", "%q is not host:port (leave it empty for the embedded server)", conn.Address)
		} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			add("connection.address", "%q has no valid port", conn.Address)
		}
	}
	if conn.Namespace == "" {
		add("connection.namespace", "is empty (the embedded server registers \"default\")")
	}
	t := conn.TLS
	if (t.CertFile == "") != (t.KeyFile == "") {
		add("connection.tls", "cert_file and key_file must be given together (got cert_file %q, key_file %q)", t.CertFile, t.KeyFile)
	}
	for _, f := range []struct{ field, path string }{
		{"connection.tls.ca_file", t.CAFile},
		{"connection.tls.cert_file", t.CertFile},
		{"connection.tls.key_file", t.KeyFile},
	} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			add(f.field, "%v", err)
		}
	}
}

func (c *Config) validateQueues(add addFunc) {
	owner := map[string]string{}
	names := map[string]string{}
	for _, kind := range QueueKinds() {
		q, _ := c.TaskQueues.Get(kind)
		field := "task_queues." + kind
		if q.Name == "" {
			add(field+".name", "is empty")
		} else if other, ok := names[q.Name]; ok {
			add(field+".name", "%q is also the name of task_queues.%s", q.Name, other)
		} else {
			names[q.Name] = kind
		}
		if q.MaxConcurrentActivities < 1 {
			add(field+".max_concurrent_activities", "%d must be at least 1", q.MaxConcurrentActivities)
		}
		for _, s := range q.Stages {
			switch other, ok := owner[s]; {
			case !slices.Contains(StageNames(), s):
				add(field+".stages", "unknown stage %q (stages are %s)", s, strings.Join(StageNames(), ", "))
			case ok && other == kind:
				add(field+".stages", "stage %q is listed twice", s)
			case ok:
				add(field+".stages", "stage %q is also on task_queues.%s", s, other)
			default:
				owner[s] = kind
			}
		}
	}
	for _, s := range StageNames() {
		if _, ok := owner[s]; !ok {
			add("task_queues", "stage %q is on no queue; add it to task_queues.gpu.stages or task_queues.cpu.stages", s)
		}
	}
}

func validateStage(field string, o StageOptions, add addFunc) {
	if o.StartToCloseTimeout <= 0 {
		add(field+".start_to_close_timeout", "%v must be positive", o.StartToCloseTimeout)
	}
	if o.HeartbeatTimeout < 0 {
		add(field+".heartbeat_timeout", "%v must not be negative (0 disables heartbeat timeouts)", o.HeartbeatTimeout)
	} else if o.StartToCloseTimeout > 0 && o.HeartbeatTimeout >= o.StartToCloseTimeout {
		add(field+".heartbeat_timeout", "%v must be shorter than start_to_close_timeout %v", o.HeartbeatTimeout, o.StartToCloseTimeout)
	}
	r := o.Retry
	rf := field + ".retry"
	if r.InitialInterval <= 0 {
		add(rf+".initial_interval", "%v must be positive", r.InitialInterval)
	}
	if r.BackoffCoefficient < 1 {
		add(rf+".backoff_coefficient", "%v must be at least 1", r.BackoffCoefficient)
	}
	if r.MaximumInterval < r.InitialInterval {
		add(rf+".maximum_interval", "%v is shorter than initial_interval %v", r.MaximumInterval, r.InitialInterval)
	}
	if r.MaximumAttempts < 0 {
		add(rf+".maximum_attempts", "%d must not be negative (0 means unlimited)", r.MaximumAttempts)
	}
	for i, t := range r.NonRetryableErrorTypes {
		if strings.TrimSpace(t) == "" {
			add(fmt.Sprintf("%s.non_retryable_error_types[%d]", rf, i), "is empty")
		}
	}
}

func joinHostPort(host string, port int) string {
	return net.JoinHostPort(host, strconv.Itoa(port))
}
