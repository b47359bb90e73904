package temporalserver

import (
	"context"
	"errors"
	"fmt"
	"time"

	namespacepb "go.temporal.io/api/namespace/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"google.golang.org/protobuf/types/known/durationpb"
)

// awaitNamespaces waits until the frontend describes every namespace, and
// sets the retention of those created by an earlier run with another value:
// the database-level registration leaves existing namespaces untouched.
func (s *Server) awaitNamespaces(ctx context.Context) error {
	nc, err := client.NewNamespaceClient(client.Options{
		HostPort: s.Address(),
		Logger:   sdklog.NewStructuredLogger(s.opts.Logger.With("component", "temporal-server")),
	})
	if err != nil {
		return fmt.Errorf("temporal server: namespace client: %w", err)
	}
	defer nc.Close()

	for _, name := range s.opts.Namespaces {
		desc, err := describeWhenReady(ctx, nc, name)
		if err != nil {
			return fmt.Errorf("temporal server: frontend at %s did not serve namespace %s: %w", s.Address(), name, err)
		}
		if desc.GetConfig().GetWorkflowExecutionRetentionTtl().AsDuration() == s.opts.Retention {
			continue
		}
		err = nc.Update(ctx, &workflowservice.UpdateNamespaceRequest{
			Namespace: name,
			Config:    &namespacepb.NamespaceConfig{WorkflowExecutionRetentionTtl: durationpb.New(s.opts.Retention)},
		})
		if err != nil {
			return fmt.Errorf("temporal server: set retention of namespace %s to %v: %w", name, s.opts.Retention, err)
		}
	}
	return nil
}

// describeWhenReady retries while the services are still joining; any other
// error, or ctx ending, stops it.
func describeWhenReady(ctx context.Context, nc client.NamespaceClient, name string) (*workflowservice.DescribeNamespaceResponse, error) {
	const attempts = 40
	delay := 50 * time.Millisecond
	for i := 1; ; i++ {
		desc, err := nc.Describe(ctx, name)
		var unavailable *serviceerror.Unavailable
		if err == nil || i == attempts || !errors.As(err, &unavailable) {
			return desc, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, time.Second)
	}
}
