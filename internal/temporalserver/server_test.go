package temporalserver_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/l2g/l2g/internal/temporalcfg"
	"github.com/l2g/l2g/internal/temporalserver"
	"github.com/l2g/l2g/internal/workers"
)

// The test pipeline: one activity on the GPU queue, one on the CPU queue,
// the workflow on the CPU queue, as the real Pipeline will be laid out.

type twoStageInput struct {
	Train    temporalcfg.ActivityOptions
	Evaluate temporalcfg.ActivityOptions
	X        int
}

type stepResult struct {
	Value int
	Queue string // the task queue the activity ran on
}

type twoStageResult struct {
	Y      int
	Queues []string
}

type testActivities struct{}

func (*testActivities) Double(ctx context.Context, x int) (stepResult, error) {
	return stepResult{2 * x, activity.GetInfo(ctx).TaskQueue}, nil
}

func (*testActivities) AddOne(ctx context.Context, x int) (stepResult, error) {
	return stepResult{x + 1, activity.GetInfo(ctx).TaskQueue}, nil
}

func twoStage(ctx workflow.Context, in twoStageInput) (twoStageResult, error) {
	var a *testActivities
	var r1, r2 stepResult
	if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, in.Train.Workflow()), a.Double, in.X).Get(ctx, &r1); err != nil {
		return twoStageResult{}, err
	}
	if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, in.Evaluate.Workflow()), a.AddOne, r1.Value).Get(ctx, &r2); err != nil {
		return twoStageResult{}, err
	}
	return twoStageResult{Y: r2.Value, Queues: []string{r1.Queue, r2.Queue}}, nil
}

func registrations() workers.Registrations {
	a := &testActivities{}
	return workers.Registrations{
		temporalcfg.QueueGPU: func(r worker.Registry) { r.RegisterActivity(a.Double) },
		temporalcfg.QueueCPU: func(r worker.Registry) {
			r.RegisterActivity(a.AddOne)
			r.RegisterWorkflow(twoStage)
		},
	}
}

// freePorts picks a fresh set of ports, all held at once so they differ.
func freePorts(t testing.TB) temporalcfg.Ports {
	t.Helper()
	var ls []net.Listener
	port := func() int {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		return l.Addr().(*net.TCPAddr).Port
	}
	p := temporalcfg.Ports{Frontend: port(), HTTP: port(), History: port(), Matching: port(), Worker: port(), UI: port()}
	for _, l := range ls {
		_ = l.Close()
	}
	return p
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func startServer(t testing.TB, o temporalserver.Options) *temporalserver.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	srv, err := temporalserver.Start(ctx, o)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Logf("server started in %v at %s", time.Since(start).Round(time.Millisecond), srv.Address())
	return srv
}

// harness is a client and the workers of both queues on a running server.
type harness struct {
	cfg    *temporalcfg.Config
	client client.Client
	stop   func()
}

func connect(t testing.TB, srv *temporalserver.Server, withWorkers bool) *harness {
	t.Helper()
	cfg := temporalcfg.Default()
	cfg.Connection.Address = srv.Address()
	cfg.Connection.Namespace = srv.Namespaces()[len(srv.Namespaces())-1]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := temporalcfg.Dial(ctx, cfg.Connection, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{cfg: cfg, client: c, stop: c.Close}
	if withWorkers {
		runCtx, stopWorkers := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- workers.Run(runCtx, c, cfg.TaskQueues, temporalcfg.QueueKinds(), registrations(), testLogger(t))
		}()
		h.stop = func() {
			stopWorkers()
			if err := <-done; err != nil {
				t.Errorf("workers.Run: %v", err)
			}
			c.Close()
		}
	}
	return h
}

func (h *harness) runTwoStage(t testing.TB, id string, x int) twoStageResult {
	t.Helper()
	train, err := h.cfg.Activity(temporalcfg.StageTrain)
	if err != nil {
		t.Fatal(err)
	}
	eval, err := h.cfg.Activity(temporalcfg.StageEvaluate)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run, err := h.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: h.cfg.TaskQueues.CPU.Name},
		twoStage, twoStageInput{Train: train, Evaluate: eval, X: x})
	if err != nil {
		t.Fatalf("ExecuteWorkflow: %v", err)
	}
	var res twoStageResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatalf("workflow %s: %v", id, err)
	}
	return res
}

func TestServerRunsWorkflowAndKeepsHistoryAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	// The workflow runs in a namespace of its own, registered beside default.
	opts := temporalserver.Options{StateDir: dir, Ports: freePorts(t), UI: true, Namespaces: []string{"default", "l2g"},
		Retention: 48 * time.Hour, Logger: testLogger(t)}
	srv := startServer(t, opts)
	stopped := false
	defer func() {
		if !stopped {
			_ = srv.Stop()
		}
	}()

	h := connect(t, srv, true)
	start := time.Now()
	res := h.runTwoStage(t, "two-stage-1", 20)
	t.Logf("two-activity workflow took %v", time.Since(start).Round(time.Millisecond))
	if res.Y != 41 {
		t.Errorf("result %d, want 2*20+1 = 41", res.Y)
	}
	if len(res.Queues) != 2 || res.Queues[0] != "l2g-gpu" || res.Queues[1] != "l2g-cpu" {
		t.Errorf("activities ran on %v, want [l2g-gpu l2g-cpu]", res.Queues)
	}

	// The Web UI answers beside the server.
	resp, err := http.Get(srv.UIURL())
	if err != nil {
		t.Fatalf("web ui: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "<html") {
		t.Errorf("web ui: status %d, body starts %.80q", resp.StatusCode, body)
	}

	// A second server on the same state dir is refused while the first runs,
	// even with ports of its own.
	second := opts
	second.Ports = freePorts(t)
	_, err = temporalserver.Start(context.Background(), second)
	var locked *temporalserver.LockedError
	if !errors.As(err, &locked) || locked.PID != os.Getpid() || !strings.Contains(err.Error(), filepath.Join(dir, temporalserver.LockFile)) {
		t.Fatalf("second server: err = %v, want a LockedError naming the lock file and our pid", err)
	}

	// Doctor sees the running server and finds nothing wrong: the lock is
	// held by a server that answers, and the ports are its own.
	for _, f := range temporalserver.Check(opts) {
		switch {
		case !f.OK:
			t.Errorf("doctor with the server running: %+v", f)
		case f.Check == "lock" && !strings.Contains(f.Detail, fmt.Sprintf("l2g server (process %d) runs", os.Getpid())):
			t.Errorf("doctor lock finding: %+v", f)
		case strings.HasPrefix(f.Check, "port ") && !strings.Contains(f.Detail, "in use by the running l2g server"):
			t.Errorf("doctor port finding: %+v", f)
		}
	}

	h.stop()
	if err := srv.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	stopped = true
	if _, err := os.Stat(srv.DBPath()); err != nil {
		t.Fatalf("database file: %v", err)
	}

	// Same SQLite file, new process-level server, different retention.
	opts.Retention = 72 * time.Hour
	srv2 := startServer(t, opts)
	defer func() { _ = srv2.Stop() }()
	h2 := connect(t, srv2, false)
	defer h2.stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	desc, err := h2.client.DescribeWorkflowExecution(ctx, "two-stage-1", "")
	if err != nil {
		t.Fatalf("describe after restart: %v", err)
	}
	if st := desc.GetWorkflowExecutionInfo().GetStatus(); st != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		t.Errorf("status after restart %v, want COMPLETED", st)
	}
	var completedActivities int
	var last enumspb.EventType
	it := h2.client.GetWorkflowHistory(ctx, "two-stage-1", "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatalf("history after restart: %v", err)
		}
		if ev.GetEventType() == enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED {
			completedActivities++
		}
		last = ev.GetEventType()
	}
	if completedActivities != 2 || last != enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED {
		t.Errorf("history after restart: %d completed activities, last event %v; want 2 and WorkflowExecutionCompleted",
			completedActivities, last)
	}

	for _, name := range []string{"default", "l2g"} {
		ns, err := h2.client.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: name})
		if err != nil {
			t.Fatal(err)
		}
		if got := ns.GetConfig().GetWorkflowExecutionRetentionTtl().AsDuration(); got != 72*time.Hour {
			t.Errorf("retention of %s after restart with 72h: %v", name, got)
		}
	}
}

func TestBusyPortIsNamed(t *testing.T) {
	dir := t.TempDir()
	ports := freePorts(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ports.Matching = l.Addr().(*net.TCPAddr).Port

	opts := temporalserver.Options{StateDir: dir, Ports: ports, Logger: testLogger(t)}
	_, err = temporalserver.Start(context.Background(), opts)
	var pe *temporalserver.PortError
	if !errors.As(err, &pe) || pe.Name != "matching" || !pe.Busy() {
		t.Fatalf("err = %v, want a busy PortError for matching", err)
	}
	if !strings.Contains(err.Error(), "server.embedded.ports.matching") || !strings.Contains(err.Error(), pe.Addr) {
		t.Errorf("message %q does not say which port and what to set", err)
	}
	// The failed start let go of the lock and wrote no database.
	for _, f := range temporalserver.Check(opts) {
		switch f.Check {
		case "lock":
			if !f.OK {
				t.Errorf("lock still held after a failed start: %+v", f)
			}
		case "port matching":
			if f.OK || !strings.Contains(f.Detail, "in use") || !strings.Contains(f.Remedy, "server.embedded.ports.matching") {
				t.Errorf("doctor missed the busy matching port: %+v", f)
			}
		case "port frontend", "state dir", "database":
			if !f.OK {
				t.Errorf("%+v", f)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, temporalserver.DBFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("database created despite the busy port: %v", err)
	}
}

func TestCheckStateDir(t *testing.T) {
	dir := t.TempDir()
	findings := func(stateDir string) map[string]temporalserver.Finding {
		m := map[string]temporalserver.Finding{}
		for _, f := range temporalserver.Check(temporalserver.Options{StateDir: stateDir, Ports: freePorts(t), UI: true}) {
			m[f.Check] = f
		}
		return m
	}

	fresh := findings(filepath.Join(dir, "a", "b"))
	for _, name := range []string{"state dir", "database", "lock", "port frontend", "port http", "port history", "port matching", "port worker", "port ui"} {
		if f, ok := fresh[name]; !ok || !f.OK {
			t.Errorf("fresh state dir: %s = %+v", name, f)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "a")); !errors.Is(err, os.ErrNotExist) {
		t.Error("Check created the state dir")
	}

	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if f := findings(file)["state dir"]; f.OK || !strings.Contains(f.Detail, "not a directory") || f.Remedy == "" {
		t.Errorf("state dir is a file: %+v", f)
	}

	if os.Geteuid() != 0 { // root writes anywhere
		ro := filepath.Join(dir, "ro")
		if err := os.Mkdir(ro, 0o500); err != nil {
			t.Fatal(err)
		}
		if f := findings(ro)["state dir"]; f.OK || !strings.Contains(f.Detail, "not writable") {
			t.Errorf("read-only state dir: %+v", f)
		}
	}

	bad := findings(dir)
	if _, ok := bad["port ui"]; !ok {
		t.Error("UI port not checked with UI on")
	}
}

func TestCheckLockHeldWithoutServer(t *testing.T) {
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, temporalserver.LockFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	for _, fd := range temporalserver.Check(temporalserver.Options{StateDir: dir, Ports: freePorts(t)}) {
		if fd.Check == "lock" && (fd.OK || !strings.Contains(fd.Detail, "no server answers") || fd.Remedy == "") {
			t.Errorf("lock held by a process that serves nothing: %+v", fd)
		}
	}
	_, err = temporalserver.Start(context.Background(), temporalserver.Options{StateDir: dir, Ports: freePorts(t)})
	var locked *temporalserver.LockedError
	if !errors.As(err, &locked) {
		t.Errorf("Start under a held lock: %v", err)
	}
}

func TestOptionsFromConfig(t *testing.T) {
	cfg := temporalcfg.Default()
	cfg.Server.Embedded.StateDir = "/state"
	cfg.Server.Embedded.Ports = temporalcfg.Ports{Frontend: 9000}
	cfg.Connection.Namespace = "l2g"
	o := temporalserver.OptionsFromConfig(cfg, nil)
	if o.StateDir != "/state" || o.IP != "127.0.0.1" || o.Ports.Frontend != 9000 || !o.UI || o.Retention != 720*time.Hour {
		t.Errorf("options %+v", o)
	}
	if len(o.Namespaces) != 2 || o.Namespaces[0] != "default" || o.Namespaces[1] != "l2g" {
		t.Errorf("namespaces %v, want default and the connection's l2g", o.Namespaces)
	}
	cfg.Connection.Namespace = "default"
	if o := temporalserver.OptionsFromConfig(cfg, nil); len(o.Namespaces) != 1 {
		t.Errorf("namespaces %v, want default once", o.Namespaces)
	}
}
