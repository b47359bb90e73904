// Package temporalserver runs a Temporal server inside the l2g process, with
// its history in a SQLite file under the state directory so that workflow
// runs survive restarts. It is the only package that imports
// go.temporal.io/server (minutes to compile); only cmd/l2g imports it.
package temporalserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/membership/static"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/common/primitives"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/l2g/l2g/internal/temporalcfg"
)

// File names inside the state directory.
const (
	DBFile   = "temporal.db"
	LockFile = DBFile + ".lock"
)

// clusterName is the single cluster's name; it is persisted in the database,
// so it must never change.
const clusterName = "active"

// Options configure Start. The zero value runs the documented defaults.
type Options struct {
	// StateDir holds the SQLite file and its lock; "" means
	// temporalcfg.DefaultStateDir.
	StateDir string
	// IP every service binds to; "" means 127.0.0.1.
	IP string
	// Ports; zero ports are derived from Frontend (see temporalcfg.Ports).
	Ports temporalcfg.Ports
	// UI serves the Temporal Web UI on Ports.UI.
	UI bool
	// Namespaces registered at start; empty means just "default".
	Namespaces []string
	// Retention of closed workflows in those namespaces; 0 means 30 days.
	Retention time.Duration
	// Logger receives the server's logs; nil means slog.Default().
	Logger *slog.Logger
	// LogLevel drops server logs below it; nil means slog.LevelError, as the
	// server logs every shard and ring change at info.
	LogLevel slog.Leveler
}

// OptionsFromConfig takes the embedded server settings from temporal.yaml
// and registers the namespace clients will use beside "default".
func OptionsFromConfig(c *temporalcfg.Config, logger *slog.Logger) Options {
	e := c.Server.Embedded
	ns := []string{"default"}
	if c.Connection.Namespace != "" && c.Connection.Namespace != "default" {
		ns = append(ns, c.Connection.Namespace)
	}
	return Options{
		StateDir:   e.StateDir,
		IP:         e.IP,
		Ports:      e.Ports,
		UI:         e.UI,
		Namespaces: ns,
		Retention:  e.Retention,
		Logger:     logger,
	}
}

func (o Options) withDefaults() (Options, error) {
	if o.StateDir == "" {
		dir, err := temporalcfg.DefaultStateDir(nil)
		if err != nil {
			return o, fmt.Errorf("temporal server: %w", err)
		}
		o.StateDir = dir
	}
	if o.IP == "" {
		o.IP = "127.0.0.1"
	}
	if net.ParseIP(o.IP) == nil {
		return o, fmt.Errorf("temporal server: IP %q is not an IP address", o.IP)
	}
	o.Ports = o.Ports.WithDefaults()
	seen := map[int]string{}
	for _, p := range o.Ports.Named(o.UI) {
		if p.Port < 1 || p.Port > 65535 {
			return o, fmt.Errorf("temporal server: port %s=%d is outside 1..65535", p.Name, p.Port)
		}
		if other, ok := seen[p.Port]; ok {
			return o, fmt.Errorf("temporal server: ports %s and %s are both %d", other, p.Name, p.Port)
		}
		seen[p.Port] = p.Name
	}
	if len(o.Namespaces) == 0 {
		o.Namespaces = []string{"default"}
	}
	if o.Retention == 0 {
		o.Retention = 30 * 24 * time.Hour
	}
	if o.Retention < 24*time.Hour {
		return o, fmt.Errorf("temporal server: retention %v is shorter than Temporal's minimum of 24h", o.Retention)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.LogLevel == nil {
		o.LogLevel = slog.LevelError
	}
	return o, nil
}

func (o Options) addr(port int) string { return net.JoinHostPort(o.IP, strconv.Itoa(port)) }

// Server is a running embedded server. Stop it to release the state lock.
type Server struct {
	opts   Options
	srv    temporal.Server
	ui     *uiServer
	lock   *stateLock
	dbPath string
	// stopping quiets the server's logs during shutdown (see slogLogger).
	stopping *atomic.Bool

	stopOnce sync.Once
	stopErr  error
}

// Start takes the state directory's lock, checks every port, creates the
// SQLite schema if the file is new, registers the namespaces and starts the
// frontend, history, matching and worker services (and the Web UI when
// asked). It returns once the frontend answers for every namespace.
//
// Errors: *LockedError when another server holds the state directory,
// *PortError (possibly several, joined) for ports that cannot be bound.
func Start(ctx context.Context, o Options) (*Server, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("temporal server: create state dir: %w", err)
	}
	lock, err := acquireLock(filepath.Join(o.StateDir, LockFile))
	if err != nil {
		return nil, err
	}
	s := &Server{opts: o, lock: lock, dbPath: filepath.Join(o.StateDir, DBFile), stopping: new(atomic.Bool)}
	started := false
	defer func() {
		if !started {
			_ = s.Stop()
		}
	}()

	if bad := checkPorts(o.IP, o.Ports.Named(o.UI)); len(bad) > 0 {
		errs := make([]error, len(bad))
		for i, b := range bad {
			errs[i] = b
		}
		return nil, errors.Join(errs...)
	}

	// Phase timings at debug level say where a slow start went.
	mark := time.Now()
	phase := func(name string) {
		o.Logger.Debug("temporal server start", "phase", name, "took", time.Since(mark))
		mark = time.Now()
	}
	sqlCfg := o.sqlConfig(s.dbPath)
	if err := ensureSchema(sqlCfg); err != nil {
		return nil, err
	}
	phase("schema")
	if err := o.createNamespaces(sqlCfg); err != nil {
		return nil, err
	}
	phase("namespaces")
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	srv, err := temporal.NewServer(o.serverOptions(sqlCfg, s.stopping)...)
	if err != nil {
		return nil, fmt.Errorf("temporal server: build: %w", err)
	}
	s.srv = srv // so that a failed start stops the services that did start
	phase("build")
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("temporal server: start: %w", err)
	}
	phase("services")
	if o.UI {
		s.ui = startUI(o)
	}
	if err := s.awaitNamespaces(ctx); err != nil {
		return nil, err
	}
	phase("ready")
	started = true
	return s, nil
}

// Address is the frontend's host:port, what clients and workers dial.
func (s *Server) Address() string { return s.opts.addr(s.opts.Ports.Frontend) }

// UIURL is the Web UI's address, "" when the UI is off.
func (s *Server) UIURL() string {
	if !s.opts.UI {
		return ""
	}
	return "http://" + s.opts.addr(s.opts.Ports.UI)
}

// DBPath is the SQLite file holding the history.
func (s *Server) DBPath() string { return s.dbPath }

// Namespaces are the namespaces registered at start.
func (s *Server) Namespaces() []string { return slices.Clone(s.opts.Namespaces) }

// Stop shuts the UI and the services down and releases the state lock. It
// is safe to call more than once.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		s.stopping.Store(true)
		var errs []error
		if s.ui != nil {
			s.ui.stop()
		}
		if s.srv != nil {
			if err := s.srv.Stop(); err != nil {
				errs = append(errs, fmt.Errorf("temporal server: stop: %w", err))
			}
		}
		if err := s.lock.release(); err != nil {
			errs = append(errs, fmt.Errorf("temporal server: release lock: %w", err))
		}
		s.stopErr = errors.Join(errs...)
	})
	return s.stopErr
}

// sqlConfig is the SQLite store. WAL makes each commit one append to the
// log instead of a rollback journal plus the database page writes.
func (o Options) sqlConfig(dbPath string) *config.SQL {
	return &config.SQL{
		PluginName:        sqliteplugin.PluginName,
		DatabaseName:      dbPath,
		ConnectAttributes: map[string]string{"mode": "rwc", "journal_mode": "wal"},
	}
}

// ensureSchema creates the tables when the database file does not exist yet.
// It builds the schema in a side file and renames it into place, so a crash
// half-way leaves no database that looks complete but is not.
func ensureSchema(cfg *config.SQL) error {
	final := cfg.DatabaseName
	if _, err := os.Stat(final); err == nil {
		return nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("temporal server: stat database: %w", err)
	}
	tmp := final + ".new"
	for _, p := range []string{tmp, tmp + "-journal"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("temporal server: remove leftover %s: %w", p, err)
		}
	}
	// Rollback-journal mode here: nothing stays in a -wal file beside tmp
	// when it is renamed.
	setup := &config.SQL{
		PluginName:        cfg.PluginName,
		DatabaseName:      tmp,
		ConnectAttributes: map[string]string{"mode": "rwc"},
	}
	if err := sqliteschema.SetupSchema(setup); err != nil {
		return fmt.Errorf("temporal server: create schema in %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("temporal server: install schema: %w", err)
	}
	return nil
}

// createNamespaces writes the namespaces straight into the database before
// the server starts; ones that exist are left alone (their retention is
// brought in line later, through the API).
func (o Options) createNamespaces(cfg *config.SQL) error {
	nss := make([]*sqliteschema.NamespaceConfig, 0, len(o.Namespaces))
	for _, name := range o.Namespaces {
		ns, err := sqliteschema.NewNamespaceConfig(clusterName, name, false, nil)
		if err != nil {
			return fmt.Errorf("temporal server: namespace %s: %w", name, err)
		}
		ns.Detail.Config.Retention = durationpb.New(o.Retention)
		nss = append(nss, ns)
	}
	if err := sqliteschema.CreateNamespaces(cfg, nss...); err != nil {
		return fmt.Errorf("temporal server: register namespaces: %w", err)
	}
	return nil
}

func (o Options) serverOptions(sqlCfg *config.SQL, stopping *atomic.Bool) []temporal.ServerOption {
	cfg := o.serverConfig(sqlCfg)
	logger := slogLogger{l: o.Logger, level: o.LogLevel, stopping: stopping}
	hosts := map[primitives.ServiceName]static.Hosts{
		primitives.FrontendService: static.SingleLocalHost(o.addr(o.Ports.Frontend)),
		primitives.HistoryService:  static.SingleLocalHost(o.addr(o.Ports.History)),
		primitives.MatchingService: static.SingleLocalHost(o.addr(o.Ports.Matching)),
		primitives.WorkerService:   static.SingleLocalHost(o.addr(o.Ports.Worker)),
	}
	dc := dynamicconfig.StaticClient{
		// The server would otherwise report its version to Temporal's servers.
		dynamicconfig.EnableServerVersionCheck.Key(): false,
	}
	return []temporal.ServerOption{
		temporal.WithConfig(cfg),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithStaticHosts(hosts),
		temporal.WithLogger(logger),
		temporal.WithDynamicConfigClient(dc),
		temporal.WithAuthorizer(authorization.NewNoopAuthorizer()),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper {
			return authorization.NewNoopClaimMapper()
		}),
	}
}

func (o Options) serverConfig(sqlCfg *config.SQL) *config.Config {
	frontend := o.addr(o.Ports.Frontend)
	service := func(port, httpPort int) config.Service {
		return config.Service{RPC: config.RPC{GRPCPort: port, HTTPPort: httpPort, BindOnIP: o.IP}}
	}
	var c config.Config
	c.Global.Membership.MaxJoinDuration = 30 * time.Second
	c.Global.Membership.BroadcastAddress = o.IP
	c.Persistence.DefaultStore = "sqlite"
	c.Persistence.VisibilityStore = "sqlite"
	c.Persistence.NumHistoryShards = 1 // one process, one SQLite writer: more shards only add contention
	c.Persistence.DataStores = map[string]config.DataStore{"sqlite": {SQL: sqlCfg}}
	c.ClusterMetadata = &cluster.Config{
		FailoverVersionIncrement: 10,
		MasterClusterName:        clusterName,
		CurrentClusterName:       clusterName,
		ClusterInformation: map[string]cluster.ClusterInformation{clusterName: {
			Enabled:                true,
			InitialFailoverVersion: 1,
			RPCAddress:             frontend,
			HTTPAddress:            o.addr(o.Ports.HTTP),
		}},
	}
	c.DCRedirectionPolicy.Policy = "noop"
	c.Services = map[string]config.Service{
		string(primitives.FrontendService): service(o.Ports.Frontend, o.Ports.HTTP),
		string(primitives.HistoryService):  service(o.Ports.History, 0),
		string(primitives.MatchingService): service(o.Ports.Matching, 0),
		string(primitives.WorkerService):   service(o.Ports.Worker, 0),
	}
	c.Archival.History.State = "disabled"
	c.Archival.Visibility.State = "disabled"
	c.NamespaceDefaults.Archival.History.State = "disabled"
	c.NamespaceDefaults.Archival.Visibility.State = "disabled"
	c.PublicClient.HostPort = frontend
	return &c
}
