package workers_test

import (
	"reflect"
	"strings"
	"testing"

	"go.temporal.io/sdk/worker"

	"github.com/l2g/l2g/internal/workers"
)

func TestParseKinds(t *testing.T) {
	for in, want := range map[string][]string{
		"gpu,cpu":      {"gpu", "cpu"},
		" cpu , gpu ":  {"cpu", "gpu"},
		"gpu,gpu,":     {"gpu"},
		"cpu":          {"cpu"},
		"gpu,cpu,cpu,": {"gpu", "cpu"},
	} {
		got, err := workers.ParseKinds(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ParseKinds(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", ",", "tpu", "gpu,tpu"} {
		if _, err := workers.ParseKinds(in); err == nil || !strings.Contains(err.Error(), "--queues") {
			t.Errorf("ParseKinds(%q) err = %v, want a --queues error", in, err)
		}
	}
}

func TestRegistrationsCheck(t *testing.T) {
	regs := workers.Registrations{"cpu": func(worker.Registry) {}}
	if err := regs.Check([]string{"cpu"}); err != nil {
		t.Errorf("cpu registered: %v", err)
	}
	err := regs.Check([]string{"gpu", "cpu"})
	if err == nil || !strings.Contains(err.Error(), "gpu task queue") {
		t.Errorf("gpu missing: err = %v", err)
	}
}
