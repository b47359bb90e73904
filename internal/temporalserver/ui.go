package temporalserver

import (
	"strings"

	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uioptions "github.com/temporalio/ui-server/v2/server/server_options"
)

// uiServer is the Temporal Web UI, its assets compiled into the binary.
type uiServer struct {
	srv  *uiserver.Server
	done chan struct{}
}

// startUI serves the UI in the background. ui-server's Start blocks and, on
// a bind failure, exits the process through its logger; Start probed the
// port just before, which leaves only a narrow race.
func startUI(o Options) *uiServer {
	host := o.IP
	if strings.Contains(host, ":") {
		host = "[" + host + "]" // ui-server joins host and port with a bare colon
	}
	srv := uiserver.NewServer(uioptions.WithConfigProvider(&uiconfig.Config{
		Host:                host,
		Port:                o.Ports.UI,
		TemporalGRPCAddress: o.addr(o.Ports.Frontend),
		EnableUI:            true,
		DefaultNamespace:    o.Namespaces[0],
		CORS:                uiconfig.CORS{CookieInsecure: true}, // plain HTTP on loopback
		HideLogs:            true,
		DisableNewsFetch:    true, // no calls out of the machine
	}))
	u := &uiServer{srv: srv, done: make(chan struct{})}
	go func() {
		defer close(u.done)
		if err := srv.Start(); err != nil {
			o.Logger.Error("temporal web ui stopped", "err", err)
		}
	}()
	return u
}

// stop closes the listener and waits for the serving goroutine; a Stop
// before the goroutine got to listen makes its Serve return at once.
func (u *uiServer) stop() {
	u.srv.Stop()
	<-u.done
}
