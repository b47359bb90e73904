package temporalcfg_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/temporalcfg"
)

// env returns a LookupEnv over m, so tests never see the real environment.
func env(m map[string]string) temporalcfg.LookupEnv {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRepoFileMatchesDefaults(t *testing.T) {
	state := t.TempDir()
	cfg, err := temporalcfg.Load(temporalcfg.Overrides{ConfigPath: "../../temporal.yaml"},
		env(map[string]string{temporalcfg.EnvStateDir: state}))
	if err != nil {
		t.Fatalf("the checked-in temporal.yaml does not load: %v", err)
	}
	def := temporalcfg.Default()
	if !reflect.DeepEqual(cfg.Stages, def.Stages) {
		t.Errorf("temporal.yaml stages differ from Default():\n file %+v\n code %+v", cfg.Stages, def.Stages)
	}
	if !reflect.DeepEqual(cfg.TaskQueues, def.TaskQueues) {
		t.Errorf("temporal.yaml task_queues differ from Default():\n file %+v\n code %+v", cfg.TaskQueues, def.TaskQueues)
	}
	e := cfg.Server.Embedded
	want := temporalcfg.Ports{Frontend: 7233, HTTP: 7243, History: 7234, Matching: 7235, Worker: 7239, UI: 8233}
	if e.Ports != want || !e.UI || e.Retention != 720*time.Hour || e.StateDir != state {
		t.Errorf("embedded = %+v, want ports %+v, ui on, 720h retention, state dir %s", e, want, state)
	}
	if !cfg.Connection.Embedded() || cfg.Connection.HostPort() != "127.0.0.1:7233" || cfg.Connection.Namespace != "default" {
		t.Errorf("connection = %+v, want the embedded frontend and namespace default", cfg.Connection)
	}
}

func TestDefaultStateDir(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	got, err := temporalcfg.DefaultStateDir(env(nil))
	if err != nil || got != filepath.Join(home, ".local/state/l2g") {
		t.Errorf("no env: %q, %v; want ~/.local/state/l2g", got, err)
	}
	got, _ = temporalcfg.DefaultStateDir(env(map[string]string{"XDG_STATE_HOME": "/xdg"}))
	if got != "/xdg/l2g" {
		t.Errorf("XDG_STATE_HOME=/xdg: %q, want /xdg/l2g", got)
	}
	got, _ = temporalcfg.DefaultStateDir(env(map[string]string{"XDG_STATE_HOME": "/xdg", temporalcfg.EnvStateDir: "/s"}))
	if got != "/s" {
		t.Errorf("L2G_STATE_DIR=/s: %q, want it to win over XDG_STATE_HOME", got)
	}
}

func TestPrecedenceFileEnvFlag(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "t.yaml", `
server:
  embedded:
    state_dir: state
    ports: {frontend: 9000}
connection:
  namespace: from-file
  tls:
    ca_file: certs/ca.pem
`)
	if err := os.MkdirAll(filepath.Join(dir, "certs"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "certs"), "ca.pem", "")

	cfg, err := temporalcfg.Load(temporalcfg.Overrides{ConfigPath: path}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Connection.Namespace != "from-file" {
		t.Errorf("namespace %q, want from-file", cfg.Connection.Namespace)
	}
	// Relative paths in the file are anchored at the file, not the cwd.
	if cfg.Server.Embedded.StateDir != filepath.Join(dir, "state") || cfg.Connection.TLS.CAFile != filepath.Join(dir, "certs/ca.pem") {
		t.Errorf("relative paths not anchored at %s: state %q ca %q", dir, cfg.Server.Embedded.StateDir, cfg.Connection.TLS.CAFile)
	}
	// Ports left out are derived from the file's frontend, and so is the address.
	p := cfg.Server.Embedded.Ports
	if p.History != 9001 || p.Matching != 9002 || p.Worker != 9006 || p.HTTP != 9010 || p.UI != 10000 || cfg.Connection.HostPort() != "127.0.0.1:9000" {
		t.Errorf("derived ports %+v address %q", p, cfg.Connection.HostPort())
	}

	e := env(map[string]string{
		temporalcfg.EnvConfig:    path,
		temporalcfg.EnvNamespace: "from-env",
		temporalcfg.EnvAddress:   "temporal.example:7233",
		temporalcfg.EnvAPIKey:    "k",
		temporalcfg.EnvStateDir:  "/env/state",
	})
	cfg, err = temporalcfg.Load(temporalcfg.Overrides{}, e)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Path != path || cfg.Connection.Namespace != "from-env" || cfg.Connection.HostPort() != "temporal.example:7233" || cfg.Connection.Embedded() ||
		cfg.Connection.APIKey != "k" || cfg.Server.Embedded.StateDir != "/env/state" {
		t.Errorf("env did not override the file: %+v", cfg)
	}

	cfg, err = temporalcfg.Load(temporalcfg.Overrides{Namespace: "from-flag", StateDir: "/flag/state"}, e)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Connection.Namespace != "from-flag" || cfg.Server.Embedded.StateDir != "/flag/state" || cfg.Connection.Address != "temporal.example:7233" {
		t.Errorf("flags did not override env: %+v", cfg)
	}
}

func TestMissingExplicitFile(t *testing.T) {
	_, err := temporalcfg.Load(temporalcfg.Overrides{ConfigPath: "/nonexistent/temporal.yaml"}, env(nil))
	var bi *badinput.Error
	if !errors.As(err, &bi) || bi.Path != "/nonexistent/temporal.yaml" {
		t.Fatalf("err = %v, want a bad-input error naming the file", err)
	}
}

func TestValidationNamesFileAndField(t *testing.T) {
	cases := []struct {
		name, yaml, field, msg string
	}{
		{"port clash", "server: {embedded: {ports: {frontend: 7233, ui: 7233}}}", "server.embedded.ports.ui", "also used by server.embedded.ports.frontend"},
		{"port range", "server: {embedded: {ports: {frontend: 70000}}}", "server.embedded.ports.frontend", "outside 1..65535"},
		{"bad ip", "server: {embedded: {ip: localhost}}", "server.embedded.ip", "not an IP"},
		{"retention", "server: {embedded: {namespace_retention: 1h}}", "server.embedded.namespace_retention", "minimum of 24h"},
		{"state dir uri", "server: {embedded: {state_dir: '/tmp/a?b'}}", "server.embedded.state_dir", "URI syntax"},
		{"address", "connection: {address: nohost}", "connection.address", "not host:port"},
		{"namespace", "connection: {namespace: ''}", "connection.namespace", "is empty"},
		{"cert without key", "connection: {tls: {cert_file: /etc/hostname}}", "connection.tls", "given together"},
		{"missing ca", "connection: {tls: {ca_file: /nonexistent/ca.pem}}", "connection.tls.ca_file", "no such file"},
		{"queue name", "task_queues: {cpu: {name: l2g-gpu}}", "task_queues.cpu.name", "also the name of task_queues.gpu"},
		{"concurrency", "task_queues: {gpu: {max_concurrent_activities: 0}}", "task_queues.gpu.max_concurrent_activities", "at least 1"},
		{"stage on two queues", "task_queues: {cpu: {stages: [saliency, cam_eval, pseudolabel, evaluate, train]}}", "task_queues.cpu.stages", `stage "train" is also on task_queues.gpu`},
		{"unknown stage", "task_queues: {gpu: {stages: [train, cam, segtrain, camm]}}", "task_queues.gpu.stages", `unknown stage "camm"`},
		{"stage on no queue", "task_queues: {gpu: {stages: [train, cam]}}", "task_queues", `stage "segtrain" is on no queue`},
		{"start to close", "stages: {evaluate: {start_to_close_timeout: 0s}}", "stages.evaluate.start_to_close_timeout", "must be positive"},
		{"heartbeat", "stages: {cam: {start_to_close_timeout: 1h, heartbeat_timeout: 2h}}", "stages.cam.heartbeat_timeout", "shorter than start_to_close_timeout"},
		{"backoff", "stages: {train: {retry: {backoff_coefficient: 0.5}}}", "stages.train.retry.backoff_coefficient", "at least 1"},
		{"max interval", "stages: {segtrain: {retry: {initial_interval: 1m, maximum_interval: 10s}}}", "stages.segtrain.retry.maximum_interval", "shorter than initial_interval"},
		{"attempts", "stages: {pseudolabel: {retry: {maximum_attempts: -1}}}", "stages.pseudolabel.retry.maximum_attempts", "must not be negative"},
		{"error type", "stages: {saliency: {retry: {non_retryable_error_types: [InvalidInput, ' ']}}}", "stages.saliency.retry.non_retryable_error_types[1]", "is empty"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, t.TempDir(), "temporal.yaml", tc.yaml)
			_, err := temporalcfg.Load(temporalcfg.Overrides{ConfigPath: path}, env(nil))
			if err == nil {
				t.Fatal("loaded without error")
			}
			var bi *badinput.Error
			if !errors.As(err, &bi) {
				t.Fatalf("err %v is not a *badinput.Error", err)
			}
			var match *badinput.Error
			var list *badinput.List
			if errors.As(err, &list) {
				for _, e := range list.Errs {
					if e.Field == tc.field {
						match = e
					}
				}
			} else if bi.Field == tc.field {
				match = bi
			}
			if match == nil {
				t.Fatalf("no error for field %s in: %v", tc.field, err)
			}
			if match.Path != path || !strings.Contains(match.Error(), tc.msg) {
				t.Errorf("got %q, want file %s and %q", match.Error(), path, tc.msg)
			}
		})
	}
}

func TestParseErrorsNameFile(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"stagez: {}", "field stagez not found"},
		{"stages: {train: {start_to_close_timeout: 5 minutes}}", "5 minutes"},
		{"server: [", "did not find expected"},
	} {
		path := writeFile(t, t.TempDir(), "temporal.yaml", tc.yaml)
		_, err := temporalcfg.Load(temporalcfg.Overrides{ConfigPath: path}, env(nil))
		var bi *badinput.Error
		if !errors.As(err, &bi) || bi.Path != path || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want a bad-input error for %s mentioning %q", tc.yaml, err, path, tc.want)
		}
	}
}

func TestValidationNamesEnvironmentSource(t *testing.T) {
	_, err := temporalcfg.Load(temporalcfg.Overrides{StateDir: t.TempDir()},
		env(map[string]string{temporalcfg.EnvAddress: "nohost"}))
	if err == nil || !strings.Contains(err.Error(), "connection.address (set by $L2G_TEMPORAL_ADDRESS)") {
		t.Fatalf("err = %v, want it to name the field and the variable", err)
	}
	_, err = temporalcfg.Load(temporalcfg.Overrides{StateDir: t.TempDir(), Address: "nohost"}, env(nil))
	if err == nil || !strings.Contains(err.Error(), "connection.address (set by --temporal-address)") {
		t.Fatalf("err = %v, want it to name the field and the flag", err)
	}
}

func TestActivityOptions(t *testing.T) {
	cfg := temporalcfg.Default()
	a, err := cfg.Activity(temporalcfg.StageTrain)
	if err != nil {
		t.Fatal(err)
	}
	if a.TaskQueue != "l2g-gpu" || a.StartToCloseTimeout != 24*time.Hour || a.HeartbeatTimeout != 10*time.Minute {
		t.Errorf("train = %+v", a)
	}
	if a, _ := cfg.Activity(temporalcfg.StageCAMEval); a.TaskQueue != "l2g-cpu" {
		t.Errorf("cam_eval runs on %q, want l2g-cpu", a.TaskQueue)
	}
	if _, err := cfg.Activity("nope"); err == nil {
		t.Error("unknown stage resolved")
	}

	w := a.Workflow()
	if w.TaskQueue != "l2g-gpu" || w.StartToCloseTimeout != 24*time.Hour || w.HeartbeatTimeout != 10*time.Minute ||
		w.RetryPolicy.InitialInterval != 30*time.Second || w.RetryPolicy.BackoffCoefficient != 2 ||
		w.RetryPolicy.MaximumInterval != 10*time.Minute || w.RetryPolicy.MaximumAttempts != 5 ||
		!reflect.DeepEqual(w.RetryPolicy.NonRetryableErrorTypes, []string{"InvalidInput"}) {
		t.Errorf("workflow options %+v retry %+v", w, w.RetryPolicy)
	}

	// The resolved options survive the JSON trip into a workflow input.
	all, err := cfg.Activities()
	if err != nil || len(all) != len(temporalcfg.StageNames()) {
		t.Fatalf("Activities() = %d entries, %v", len(all), err)
	}
	b, err := json.Marshal(all)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]temporalcfg.ActivityOptions
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, all) {
		t.Errorf("JSON round trip changed the options: %v\n%s", err, b)
	}
}

func TestClientOptions(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM := selfSigned(t)
	ca := writeFile(t, dir, "ca.pem", string(certPEM))
	cert := writeFile(t, dir, "cert.pem", string(certPEM))
	key := writeFile(t, dir, "key.pem", string(keyPEM))

	if hp := (temporalcfg.Connection{}).HostPort(); hp != "127.0.0.1:7233" {
		t.Errorf("zero Connection dials %q, want the default embedded frontend", hp)
	}
	plain, err := temporalcfg.Connection{Address: "h:1", Namespace: "ns"}.ClientOptions(nil)
	if err != nil || plain.ConnectionOptions.TLS != nil || plain.Credentials != nil || plain.Logger == nil ||
		plain.HostPort != "h:1" || plain.Namespace != "ns" {
		t.Errorf("plain options %+v, %v", plain, err)
	}

	conn := temporalcfg.Connection{Address: "h:1", Namespace: "ns", APIKey: "secret",
		TLS: temporalcfg.TLS{CAFile: ca, CertFile: cert, KeyFile: key, ServerName: "temporal.internal"}}
	opts, err := conn.ClientOptions(nil)
	if err != nil {
		t.Fatal(err)
	}
	tc := opts.ConnectionOptions.TLS
	if tc == nil || tc.RootCAs == nil || len(tc.Certificates) != 1 || tc.ServerName != "temporal.internal" {
		t.Errorf("tls config %+v", tc)
	}
	if opts.Credentials == nil {
		t.Error("API key not applied")
	}

	conn.TLS.CAFile = key // a key is not a certificate
	if _, err := conn.ClientOptions(nil); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("key as CA: err = %v", err)
	}
}

func selfSigned(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "temporal.internal"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})
}
