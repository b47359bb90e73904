// Package temporalcfg reads temporal.yaml: where the embedded Temporal server
// keeps its state, how clients reach a server, which task queue runs which
// stage, and each stage's activity timeouts and retry policy. It is imported
// by the CLI, the workers and the workflows, so it must never import the
// Temporal server.
package temporalcfg

import (
	"time"
)

// DefaultFile is the config file read from the working directory when no
// path is given by flag or environment.
const DefaultFile = "temporal.yaml"

// Stage names as they appear under stages: in temporal.yaml and in the task
// queues' stage lists.
const (
	StageSaliency    = "saliency"
	StageTrain       = "train"
	StageCAM         = "cam"
	StageCAMEval     = "cam_eval"
	StagePseudolabel = "pseudolabel"
	StageSegTrain    = "segtrain"
	StageEvaluate    = "evaluate"
)

// StageNames returns every stage in pipeline order.
func StageNames() []string {
	return []string{StageSaliency, StageTrain, StageCAM, StageCAMEval, StagePseudolabel, StageSegTrain, StageEvaluate}
}

// Queue kinds: keys under task_queues: and values of `l2g worker --queues`.
const (
	QueueGPU = "gpu"
	QueueCPU = "cpu"
)

// QueueKinds returns the task queue kinds.
func QueueKinds() []string { return []string{QueueGPU, QueueCPU} }

// Config is temporal.yaml after defaults, environment and flags are applied.
type Config struct {
	Server     Server     `yaml:"server"`
	Connection Connection `yaml:"connection"`
	TaskQueues TaskQueues `yaml:"task_queues"`
	Stages     Stages     `yaml:"stages"`

	// Path is the file the config was read from, "" for built-in defaults.
	Path string `yaml:"-"`
	// sources maps a field to the environment variable or flag that set it,
	// so that a validation error points at the right place.
	sources map[string]string
}

// Server configures the embedded server run by `l2g server`.
type Server struct {
	Embedded Embedded `yaml:"embedded"`
}

// Embedded holds the embedded server's settings.
type Embedded struct {
	// StateDir holds the SQLite history and its lock file. Empty means
	// $L2G_STATE_DIR, else $XDG_STATE_HOME/l2g, else ~/.local/state/l2g.
	StateDir string `yaml:"state_dir"`
	// IP is the address every service binds to.
	IP    string `yaml:"ip"`
	Ports Ports  `yaml:"ports"`
	// UI serves the Temporal Web UI on Ports.UI.
	UI bool `yaml:"ui"`
	// Retention is how long closed workflows are kept in the namespace.
	Retention time.Duration `yaml:"namespace_retention"`
}

// Ports are the embedded server's listening ports. A zero port is derived
// from Frontend (itself 7233 when zero) with Temporal's usual offsets.
type Ports struct {
	Frontend int `yaml:"frontend"` // gRPC, what clients and workers dial
	HTTP     int `yaml:"http"`     // frontend HTTP API, Frontend+10
	History  int `yaml:"history"`  // Frontend+1
	Matching int `yaml:"matching"` // Frontend+2
	Worker   int `yaml:"worker"`   // internal worker service, Frontend+6
	UI       int `yaml:"ui"`       // Web UI, Frontend+1000
}

// DefaultFrontendPort is Temporal's standard client port.
const DefaultFrontendPort = 7233

// WithDefaults returns p with every zero port derived from Frontend.
func (p Ports) WithDefaults() Ports {
	if p.Frontend == 0 {
		p.Frontend = DefaultFrontendPort
	}
	derive := func(port *int, offset int) {
		if *port == 0 {
			*port = p.Frontend + offset
		}
	}
	derive(&p.HTTP, 10)
	derive(&p.History, 1)
	derive(&p.Matching, 2)
	derive(&p.Worker, 6)
	derive(&p.UI, 1000)
	return p
}

// Named lists the ports with their config field names, in a fixed order.
// The UI port is included only when ui is true.
func (p Ports) Named(ui bool) []NamedPort {
	out := []NamedPort{
		{"frontend", p.Frontend},
		{"http", p.HTTP},
		{"history", p.History},
		{"matching", p.Matching},
		{"worker", p.Worker},
	}
	if ui {
		out = append(out, NamedPort{"ui", p.UI})
	}
	return out
}

// NamedPort is one port and its field name under server.embedded.ports.
type NamedPort struct {
	Name string
	Port int
}

// Connection says how clients and workers reach a Temporal server.
type Connection struct {
	// Address is host:port; empty means the embedded server's frontend.
	Address   string `yaml:"address"`
	Namespace string `yaml:"namespace"`
	// APIKey is sent as a bearer token; the SDK turns TLS on when it is set.
	// Prefer $L2G_TEMPORAL_API_KEY to writing it in the file.
	APIKey string `yaml:"api_key"`
	TLS    TLS    `yaml:"tls"`

	// embedded is the embedded frontend's host:port, filled by Load and
	// dialed when Address is empty.
	embedded string
}

// HostPort is the address clients dial: Address, or the embedded server's
// frontend when Address is empty.
func (c Connection) HostPort() string {
	if c.Address != "" {
		return c.Address
	}
	if c.embedded != "" {
		return c.embedded
	}
	return joinHostPort("127.0.0.1", DefaultFrontendPort)
}

// Embedded reports whether clients use the embedded server (no address given).
func (c Connection) Embedded() bool { return c.Address == "" }

// TLS configures the client side of a TLS connection. Setting any file turns
// TLS on.
type TLS struct {
	Enabled    bool   `yaml:"enabled"`
	CAFile     string `yaml:"ca_file"`   // PEM roots; empty means the system pool
	CertFile   string `yaml:"cert_file"` // client certificate for mTLS
	KeyFile    string `yaml:"key_file"`
	ServerName string `yaml:"server_name"` // overrides the name checked in the server certificate
}

// On reports whether the connection uses TLS.
func (t TLS) On() bool {
	return t.Enabled || t.CAFile != "" || t.CertFile != "" || t.KeyFile != ""
}

// TaskQueues maps queue kinds to Temporal task queues. The Pipeline workflow
// itself runs on the CPU queue.
type TaskQueues struct {
	GPU Queue `yaml:"gpu"`
	CPU Queue `yaml:"cpu"`
}

// Get returns the queue of kind ("gpu" or "cpu").
func (q TaskQueues) Get(kind string) (Queue, bool) {
	switch kind {
	case QueueGPU:
		return q.GPU, true
	case QueueCPU:
		return q.CPU, true
	}
	return Queue{}, false
}

// Queue is one task queue and the worker limits that poll it.
type Queue struct {
	Name   string   `yaml:"name"`
	Stages []string `yaml:"stages"`
	// MaxConcurrentActivities bounds the activities one worker runs at once:
	// on the GPU queue, the number of GPUs (one GPU activity per GPU).
	MaxConcurrentActivities int `yaml:"max_concurrent_activities"`
}

// Stages holds each stage's activity options.
type Stages struct {
	Saliency    StageOptions `yaml:"saliency"`
	Train       StageOptions `yaml:"train"`
	CAM         StageOptions `yaml:"cam"`
	CAMEval     StageOptions `yaml:"cam_eval"`
	Pseudolabel StageOptions `yaml:"pseudolabel"`
	SegTrain    StageOptions `yaml:"segtrain"`
	Evaluate    StageOptions `yaml:"evaluate"`
}

// Get returns the options of the named stage.
func (s Stages) Get(name string) (StageOptions, bool) {
	p := s.ptr(name)
	if p == nil {
		return StageOptions{}, false
	}
	return *p, true
}

func (s *Stages) ptr(name string) *StageOptions {
	switch name {
	case StageSaliency:
		return &s.Saliency
	case StageTrain:
		return &s.Train
	case StageCAM:
		return &s.CAM
	case StageCAMEval:
		return &s.CAMEval
	case StagePseudolabel:
		return &s.Pseudolabel
	case StageSegTrain:
		return &s.SegTrain
	case StageEvaluate:
		return &s.Evaluate
	}
	return nil
}

// StageOptions are one stage's activity timeouts and retry policy.
type StageOptions struct {
	// StartToCloseTimeout bounds one attempt.
	StartToCloseTimeout time.Duration `yaml:"start_to_close_timeout" json:"start_to_close_timeout"`
	// HeartbeatTimeout fails an attempt whose worker stopped reporting
	// (a crashed or hung GPU process); stages report once per iteration.
	HeartbeatTimeout time.Duration `yaml:"heartbeat_timeout" json:"heartbeat_timeout"`
	Retry            Retry         `yaml:"retry" json:"retry"`
}

// Retry is a Temporal retry policy.
type Retry struct {
	InitialInterval    time.Duration `yaml:"initial_interval" json:"initial_interval"`
	BackoffCoefficient float64       `yaml:"backoff_coefficient" json:"backoff_coefficient"`
	MaximumInterval    time.Duration `yaml:"maximum_interval" json:"maximum_interval"`
	// MaximumAttempts counts the first attempt; 0 means unlimited.
	MaximumAttempts int32 `yaml:"maximum_attempts" json:"maximum_attempts"`
	// NonRetryableErrorTypes are application error types that fail the
	// stage at once (InvalidInput is what the activities use for bad input).
	NonRetryableErrorTypes []string `yaml:"non_retryable_error_types" json:"non_retryable_error_types"`
}

// Default returns the built-in configuration; temporal.yaml at the
// repository root spells out the same values.
func Default() *Config {
	gpuStage := func(startToClose time.Duration) StageOptions {
		return StageOptions{
			StartToCloseTimeout: startToClose,
			HeartbeatTimeout:    10 * time.Minute,
			Retry:               defaultRetry(),
		}
	}
	cpuStage := func(startToClose time.Duration) StageOptions {
		return StageOptions{
			StartToCloseTimeout: startToClose,
			HeartbeatTimeout:    5 * time.Minute,
			Retry:               defaultRetry(),
		}
	}
	return &Config{
		Server: Server{Embedded: Embedded{
			IP:        "127.0.0.1",
			Ports:     Ports{Frontend: DefaultFrontendPort},
			UI:        true,
			Retention: 30 * 24 * time.Hour,
		}},
		Connection: Connection{Namespace: "default"},
		TaskQueues: TaskQueues{
			GPU: Queue{Name: "l2g-gpu", Stages: []string{StageTrain, StageCAM, StageSegTrain}, MaxConcurrentActivities: 1},
			CPU: Queue{Name: "l2g-cpu", Stages: []string{StageSaliency, StageCAMEval, StagePseudolabel, StageEvaluate}, MaxConcurrentActivities: 2},
		},
		Stages: Stages{
			Saliency:    cpuStage(6 * time.Hour),
			Train:       gpuStage(24 * time.Hour),
			CAM:         gpuStage(12 * time.Hour),
			CAMEval:     cpuStage(6 * time.Hour),
			Pseudolabel: cpuStage(6 * time.Hour),
			SegTrain:    gpuStage(24 * time.Hour),
			Evaluate:    cpuStage(6 * time.Hour),
		},
	}
}

func defaultRetry() Retry {
	return Retry{
		InitialInterval:        30 * time.Second,
		BackoffCoefficient:     2,
		MaximumInterval:        10 * time.Minute,
		MaximumAttempts:        5,
		NonRetryableErrorTypes: []string{"InvalidInput"},
	}
}
