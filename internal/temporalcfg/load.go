package temporalcfg

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/l2g/l2g/internal/badinput"
)

// Environment variables read by Load; flags win over them, and they win over
// the file.
const (
	EnvConfig        = "L2G_TEMPORAL_CONFIG"
	EnvStateDir      = "L2G_STATE_DIR"
	EnvAddress       = "L2G_TEMPORAL_ADDRESS"
	EnvNamespace     = "L2G_TEMPORAL_NAMESPACE"
	EnvAPIKey        = "L2G_TEMPORAL_API_KEY"
	EnvTLSCA         = "L2G_TEMPORAL_TLS_CA"
	EnvTLSCert       = "L2G_TEMPORAL_TLS_CERT"
	EnvTLSKey        = "L2G_TEMPORAL_TLS_KEY"
	EnvTLSServerName = "L2G_TEMPORAL_TLS_SERVER_NAME"
)

// Overrides are the command-line settings that win over file and
// environment. Empty fields override nothing.
type Overrides struct {
	ConfigPath    string
	StateDir      string
	Address       string
	Namespace     string
	APIKey        string
	TLSCAFile     string
	TLSCertFile   string
	TLSKeyFile    string
	TLSServerName string
}

// AddServerFlags binds the flags that matter to the embedded server: the
// config file and the state directory.
func (o *Overrides) AddServerFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.ConfigPath, "temporal-config", "", "Temporal config file (default $"+EnvConfig+", else ./"+DefaultFile+" if present, else built-in defaults)")
	fs.StringVar(&o.StateDir, "state-dir", "", "embedded server state directory (default $"+EnvStateDir+" or ~/.local/state/l2g)")
}

// AddFlags binds o to the flags every command that dials Temporal accepts.
func (o *Overrides) AddFlags(fs *pflag.FlagSet) {
	o.AddServerFlags(fs)
	fs.StringVar(&o.Address, "temporal-address", "", "Temporal frontend host:port (env "+EnvAddress+")")
	fs.StringVar(&o.Namespace, "temporal-namespace", "", "Temporal namespace (env "+EnvNamespace+")")
	fs.StringVar(&o.APIKey, "temporal-api-key", "", "Temporal API key; prefer env "+EnvAPIKey+", flags show in ps")
	fs.StringVar(&o.TLSCAFile, "temporal-tls-ca", "", "PEM CA bundle for the server certificate (env "+EnvTLSCA+")")
	fs.StringVar(&o.TLSCertFile, "temporal-tls-cert", "", "PEM client certificate for mTLS (env "+EnvTLSCert+")")
	fs.StringVar(&o.TLSKeyFile, "temporal-tls-key", "", "PEM client key for mTLS (env "+EnvTLSKey+")")
	fs.StringVar(&o.TLSServerName, "temporal-tls-server-name", "", "server name to verify in the server certificate (env "+EnvTLSServerName+")")
}

// LookupEnv is os.LookupEnv's signature; tests pass a map-backed one.
type LookupEnv func(key string) (string, bool)

// Load reads the config file (o.ConfigPath, else $L2G_TEMPORAL_CONFIG, else
// ./temporal.yaml when it exists, else none), applies environment variables
// and then o, fills derived values and validates. Problems come back as
// *badinput.Error values naming the file and field.
func Load(o Overrides, env LookupEnv) (*Config, error) {
	if env == nil {
		env = os.LookupEnv
	}
	path := o.ConfigPath
	if path == "" {
		path, _ = env(EnvConfig)
	}
	explicit := path != ""
	if !explicit {
		if _, err := os.Stat(DefaultFile); err == nil {
			path = DefaultFile
		}
	}

	cfg := Default()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, badinput.New(path, "", "temporal config file not found (given by --temporal-config or $%s)", EnvConfig)
			}
			return nil, fmt.Errorf("read temporal config: %w", err)
		}
		if cfg, err = Parse(path, data); err != nil {
			return nil, err
		}
	}
	cfg.apply(o, env)
	if err := cfg.resolve(env); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// Parse decodes a temporal.yaml document over the defaults: a key left out
// keeps its default, an unknown key is an error. Relative paths in the file
// are taken relative to the file's directory.
func Parse(path string, data []byte) (*Config, error) {
	cfg := Default()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return nil, badinput.Wrap(path, "", fmt.Errorf("parse: %w", err))
	}
	cfg.Path = path
	dir := filepath.Dir(path)
	e := &cfg.Server.Embedded
	t := &cfg.Connection.TLS
	for _, p := range []*string{&e.StateDir, &t.CAFile, &t.CertFile, &t.KeyFile} {
		*p = relativeTo(dir, *p)
	}
	return cfg, nil
}

// relativeTo anchors a relative path at dir; "~/" and absolute paths stay.
func relativeTo(dir, p string) string {
	if p == "" || filepath.IsAbs(p) || p == "~" || strings.HasPrefix(p, "~/") {
		return p
	}
	return filepath.Join(dir, p)
}

// apply overlays environment variables, then flags, remembering which one
// set each field.
func (c *Config) apply(o Overrides, env LookupEnv) {
	fields := []struct {
		field, envName, flag, flagValue string
		dst                             *string
	}{
		{"server.embedded.state_dir", EnvStateDir, "--state-dir", o.StateDir, &c.Server.Embedded.StateDir},
		{"connection.address", EnvAddress, "--temporal-address", o.Address, &c.Connection.Address},
		{"connection.namespace", EnvNamespace, "--temporal-namespace", o.Namespace, &c.Connection.Namespace},
		{"connection.api_key", EnvAPIKey, "--temporal-api-key", o.APIKey, &c.Connection.APIKey},
		{"connection.tls.ca_file", EnvTLSCA, "--temporal-tls-ca", o.TLSCAFile, &c.Connection.TLS.CAFile},
		{"connection.tls.cert_file", EnvTLSCert, "--temporal-tls-cert", o.TLSCertFile, &c.Connection.TLS.CertFile},
		{"connection.tls.key_file", EnvTLSKey, "--temporal-tls-key", o.TLSKeyFile, &c.Connection.TLS.KeyFile},
		{"connection.tls.server_name", EnvTLSServerName, "--temporal-tls-server-name", o.TLSServerName, &c.Connection.TLS.ServerName},
	}
	c.sources = map[string]string{}
	for _, f := range fields {
		if v, ok := env(f.envName); ok && v != "" {
			*f.dst = v
			c.sources[f.field] = "$" + f.envName
		}
		if f.flagValue != "" {
			*f.dst = f.flagValue
			c.sources[f.field] = f.flag
		}
	}
}

// resolve fills what depends on the environment or on other fields: the
// state directory, derived ports and the embedded frontend's address.
func (c *Config) resolve(env LookupEnv) error {
	e := &c.Server.Embedded
	e.Ports = e.Ports.WithDefaults()
	dir, err := resolveStateDir(e.StateDir, env)
	if err != nil {
		return c.fieldErr("server.embedded.state_dir", "%v", err)
	}
	e.StateDir = dir
	c.Connection.embedded = joinHostPort(e.IP, e.Ports.Frontend)
	return nil
}

// DefaultStateDir is where the embedded server keeps its state when nothing
// says otherwise: $L2G_STATE_DIR, else $XDG_STATE_HOME/l2g, else
// ~/.local/state/l2g.
func DefaultStateDir(env LookupEnv) (string, error) {
	return resolveStateDir("", env)
}

func resolveStateDir(dir string, env LookupEnv) (string, error) {
	if env == nil {
		env = os.LookupEnv
	}
	if dir == "" {
		if v, ok := env(EnvStateDir); ok && v != "" {
			dir = v
		} else if v, ok := env("XDG_STATE_HOME"); ok && filepath.IsAbs(v) {
			dir = filepath.Join(v, "l2g")
		} else {
			dir = "~/.local/state/l2g"
		}
	}
	if dir == "~" || strings.HasPrefix(dir, "~/") {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("expand %q: %w", dir, err)
		}
		dir = filepath.Join(home, strings.TrimPrefix(dir, "~"))
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("resolve %q: %w", dir, err)
	}
	return abs, nil
}

// fieldErr builds a bad-input error for field, naming the environment
// variable or flag when one of them set the value.
func (c *Config) fieldErr(field, format string, args ...any) *badinput.Error {
	name := field
	if src, ok := c.sources[field]; ok {
		name = fmt.Sprintf("%s (set by %s)", field, src)
	}
	return badinput.New(c.Path, name, format, args...)
}
