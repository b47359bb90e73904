//go:build integration

// Package integration runs the pipeline against real Temporal servers: the
// l2g binary as server, worker and CLI processes (see README.md).
package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/l2g/l2g/activities"
	"github.com/l2g/l2g/internal/synth"
	"github.com/l2g/l2g/workflows"
)

var (
	bin     string // the l2g binary built by TestMain
	dataDir string // the tiny synthetic dataset
	tiny    string // testdata/tiny.yaml, absolute
)

func TestMain(m *testing.M) {
	os.Exit(setup(m))
}

func setup(m *testing.M) int {
	dir, err := os.MkdirTemp("", "l2g-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin = filepath.Join(dir, "l2g")
	start := time.Now()
	args := []string{"build", "-o", bin}
	if tags := os.Getenv("L2G_BUILD_TAGS"); tags != "" { // make test LIBTORCH=…
		args = append(args, "-tags", tags)
	}
	build := exec.Command("go", append(args, "./cmd/l2g")...)
	build.Dir = filepath.Join("..", "..")
	build.Env = append(os.Environ(), "GOTOOLCHAIN=local")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build l2g: %v\n%s", err, out)
		return 1
	}
	fmt.Fprintf(os.Stderr, "built l2g in %.0f s\n", time.Since(start).Seconds())
	dataDir = filepath.Join(dir, "data")
	o := synth.DefaultOptions()
	o.Classes, o.Train, o.Val, o.Width, o.Height, o.Workers = 3, 24, 8, 32, 32, 2
	if _, err := synth.Generate(context.Background(), dataDir, o); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if tiny, err = filepath.Abs(filepath.Join("testdata", "tiny.yaml")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// cluster is one test's Temporal setup: a temporal.yaml with free ports, a
// state directory and short heartbeat timeouts and retries, a runs folder,
// and the server and worker processes started from it.
type cluster struct {
	t       *testing.T
	dir     string
	config  string // temporal.yaml
	runs    string
	address string
	procs   []*proc
}

// proc is a child l2g process with its output in a log file.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func freePorts(t *testing.T, n int) []int {
	var ls []net.Listener
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// newCluster writes the cluster's temporal.yaml: heartbeat is every
// stage's heartbeat timeout (a killed worker's activity is retried that
// long after its last heartbeat); retries wait a second.
func newCluster(t *testing.T, heartbeat time.Duration) *cluster {
	t.Helper()
	dir := t.TempDir()
	p := freePorts(t, 5)
	c := &cluster{t: t, dir: dir, config: filepath.Join(dir, "temporal.yaml"), runs: filepath.Join(dir, "runs"),
		address: fmt.Sprintf("127.0.0.1:%d", p[0])}
	var b strings.Builder
	fmt.Fprintf(&b, "server:\n  embedded:\n    state_dir: %s\n    ip: 127.0.0.1\n    ui: false\n", filepath.Join(dir, "state"))
	fmt.Fprintf(&b, "    ports: {frontend: %d, http: %d, history: %d, matching: %d, worker: %d}\n", p[0], p[1], p[2], p[3], p[4])
	b.WriteString("stages:\n")
	for _, s := range []string{"saliency", "train", "cam", "cam_eval", "pseudolabel", "segtrain", "evaluate"} {
		fmt.Fprintf(&b, "  %s:\n    start_to_close_timeout: 10m\n    heartbeat_timeout: %s\n", s, heartbeat)
		b.WriteString("    retry: {initial_interval: 1s, backoff_coefficient: 1, maximum_interval: 1s, maximum_attempts: 5}\n")
	}
	if err := os.WriteFile(c.config, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.stopAll)
	return c
}

// start runs `l2g args… --temporal-config <cluster>` in the background.
func (c *cluster) start(name string, args ...string) *proc {
	c.t.Helper()
	log := filepath.Join(c.dir, fmt.Sprintf("%s-%d.log", name, len(c.procs)))
	f, err := os.Create(log)
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(bin, append(args, "--temporal-config", c.config)...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), "L2G_THREADS=1")
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	p := &proc{name: name, cmd: cmd, log: log, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	c.procs = append(c.procs, p)
	return p
}

// startServer starts `l2g server` and waits until a client can dial it.
func (c *cluster) startServer() *proc {
	c.t.Helper()
	p := c.start("server", "server", "--no-ui")
	deadline := time.Now().Add(2 * time.Minute)
	for {
		select {
		case <-p.done:
			c.t.Fatalf("server exited: %s", c.logOf(p))
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		cl, err := client.DialContext(ctx, client.Options{HostPort: c.address, Logger: quiet()})
		cancel()
		if err == nil {
			cl.Close()
			return p
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("server not up after 2 min: %v\n%s", err, c.logOf(p))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (c *cluster) startWorker() *proc { return c.start("worker", "worker", "--queues", "gpu,cpu") }

// kill sends SIGKILL and waits for the process to go.
func (c *cluster) kill(p *proc) {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

func (c *cluster) stopAll() {
	for _, p := range c.procs {
		select {
		case <-p.done:
			continue
		default:
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			c.kill(p)
		}
	}
	if c.t.Failed() {
		for _, p := range c.procs {
			c.t.Logf("--- %s log (%s):\n%s", p.name, p.log, c.logOf(p))
		}
	}
}

func (c *cluster) logOf(p *proc) string {
	b, _ := os.ReadFile(p.log)
	const keep = 6000
	if len(b) > keep {
		b = b[len(b)-keep:]
	}
	return string(b)
}

// l2g runs a CLI command to completion with the cluster's config (when the
// command takes it) and returns stdout, stderr and the error.
func (c *cluster) l2g(args ...string) (string, string, error) {
	c.t.Helper()
	cmd := exec.Command(bin, append(args, "--temporal-config", c.config)...)
	cmd.Env = append(os.Environ(), "L2G_THREADS=1")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

func quiet() *slogLogger { return &slogLogger{} }

// client dials the cluster's server.
func (c *cluster) client() client.Client {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := client.DialContext(ctx, client.Options{HostPort: c.address, Logger: quiet()})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(cl.Close)
	return cl
}

// startRun starts the tiny pipeline (or config) as run id and returns.
func (c *cluster) startRun(id, config, data string) {
	c.t.Helper()
	out, errOut, err := c.l2g("run", "--config", config, "--data", data, "--runs", c.runs, "--id", id, "--detach")
	if err != nil {
		c.t.Fatalf("l2g run: %v\n%s%s", err, out, errOut)
	}
}

// wait waits for run id and returns its result.
func (c *cluster) wait(cl client.Client, id string, limit time.Duration) (workflows.PipelineResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	var res workflows.PipelineResult
	err := cl.GetWorkflow(ctx, id, "").Get(ctx, &res)
	return res, err
}

// manifests reads every stage manifest of a run folder by stage name.
func manifests(t *testing.T, runDir string) map[string]*activities.Manifest {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(runDir, "*", activities.ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*activities.Manifest{}
	for _, p := range paths {
		m, err := activities.ReadManifest(p)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(filepath.Dir(p))] = m
	}
	return out
}

// stageNames are the stage folders of a run of tiny.yaml.
func stageNames(modes ...string) []string {
	names := []string{"saliency", "segtrain", "evaluate-seg"}
	for _, k := range workflows.BranchKinds() {
		for _, m := range modes {
			names = append(names, workflows.BranchName(k, m))
		}
	}
	return names
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// checkOutputs verifies that every output a manifest lists exists with
// its checksum.
func checkOutputs(t *testing.T, name string, m *activities.Manifest) {
	t.Helper()
	if len(m.Outputs) == 0 {
		t.Errorf("%s: no outputs", name)
	}
	for _, f := range m.Outputs {
		if got := sha256File(t, f.Path); got != f.SHA256 {
			t.Errorf("%s: %s hashes to %s, manifest says %s", name, f.Path, got, f.SHA256)
		}
	}
}

// copyTree copies a folder (the dataset, before corrupting the copy).
func copyTree(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "data")
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	return dst
}

// writeConfig writes tiny.yaml with extra lines replacing top-level keys
// (later keys of a YAML mapping are errors, so sections are swapped whole).
func writeConfig(t *testing.T, replace map[string]string) string {
	t.Helper()
	b, err := os.ReadFile(tiny)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	skip := false
	for _, line := range strings.Split(string(b), "\n") {
		if line != "" && line[0] != ' ' && line[0] != '#' {
			key, _, _ := strings.Cut(line, ":")
			if v, ok := replace[key]; ok {
				out = append(out, v)
				skip = true
				continue
			}
			skip = false
		}
		if !skip {
			out = append(out, line)
		}
	}
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(strings.Join(out, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

var errTimeout = errors.New("timed out")

// poll calls f every 200 ms until it returns true or limit passes.
func poll(limit time.Duration, f func() bool) error {
	deadline := time.Now().Add(limit)
	for !f() {
		if time.Now().After(deadline) {
			return errTimeout
		}
		time.Sleep(200 * time.Millisecond)
	}
	return nil
}

// slogLogger keeps the SDK quiet in test output.
type slogLogger struct{}

func (slogLogger) Debug(string, ...any) {}
func (slogLogger) Info(string, ...any)  {}
func (l slogLogger) Warn(msg string, kv ...any) {
	slog.Warn(msg, kv...)
}
func (l slogLogger) Error(msg string, kv ...any) {
	slog.Error(msg, kv...)
}
